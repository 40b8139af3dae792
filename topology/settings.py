"""Where the suite keeps its state, resolved once: argument > environment > default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings", "get_settings"]


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
