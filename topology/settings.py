"""Where the suite keeps its state, resolved once: argument > environment > default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Settings", "get_settings", "settings_section"]


@dataclass(frozen=True)
class Settings:
    """Filesystem locations of the suite's state.

    ``home`` holds everything: ``labs/`` (one directory per deployed lab) and
    ``credentials/`` (credential profiles, mode 0600).
    """

    home: Path

    @property
    def labs_dir(self) -> Path:
        return self.home / "labs"

    @property
    def credentials_dir(self) -> Path:
        return self.home / "credentials"


def _default_home() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/switchboard")
    xdg = os.environ.get("XDG_DATA_HOME")
    return Path(xdg) / "switchboard" if xdg else Path.home() / ".local/share/switchboard"


def get_settings(home: Path | str | None = None) -> Settings:
    """Settings from the argument, else ``SWITCHBOARD_HOME``, else the default location."""
    if home is None:
        env = os.environ.get("SWITCHBOARD_HOME")
        home = Path(env) if env else _default_home()
    return Settings(home=Path(home).resolve())


def settings_section(name: str, settings: Settings | None = None) -> tuple[Path, dict[str, Any]]:
    """``$SWITCHBOARD_HOME/settings.yaml`` and its ``name:`` mapping ({} where absent);
    ``ConfigError`` naming the file when it is not YAML or not mappings."""
    import yaml

    from topology.errors import ConfigError

    path = (settings or get_settings()).home / "settings.yaml"
    if not path.exists():
        return path, {}
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping at the top")
    raw = loaded.get(name) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: '{name}' must be a mapping")
    return path, raw
