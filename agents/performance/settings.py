"""The poller's knobs: ``performance:`` in ``$SWITCHBOARD_HOME/settings.yaml``.

Keys (defaults in :class:`PerfSettings`): interval_s, jitter_s, budget_s, concurrency,
timeout_s, retries, roles (interval per role), devices (interval per device, wins over
its role), thresholds_file (relative to SWITCHBOARD_HOME), raw_retention_s. An example
is in docs/performance.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from topology.errors import ConfigError
from topology.settings import Settings, get_settings, settings_section

__all__ = ["PerfSettings", "load_perf_settings"]


@dataclass(frozen=True)
class PerfSettings:
    """Polling settings with their defaults."""

    interval_s: float = 60.0
    jitter_s: float = 5.0
    budget_s: float = 20.0
    concurrency: int = 32
    timeout_s: float = 2.0
    retries: int = 1
    roles: dict[str, float] = field(default_factory=dict)
    devices: dict[str, float] = field(default_factory=dict)
    thresholds_file: Path | None = None
    raw_retention_s: float = 2 * 86400

    def interval_for(self, device: str, role: str | None) -> float:
        """The device's own interval, else its role's, else the default."""
        if device in self.devices:
            return self.devices[device]
        if role is not None and role in self.roles:
            return self.roles[role]
        return self.interval_s


def load_perf_settings(settings: Settings | None = None) -> PerfSettings:
    """Read ``performance:`` from settings.yaml (defaults where absent)."""
    settings = settings or get_settings()
    path, raw = settings_section("performance", settings)
    try:
        thresholds = raw.get("thresholds_file")
        out = PerfSettings(
            interval_s=float(raw.get("interval_s", 60.0)),
            jitter_s=float(raw.get("jitter_s", 5.0)),
            budget_s=float(raw.get("budget_s", 20.0)),
            concurrency=int(raw.get("concurrency", 32)),
            timeout_s=float(raw.get("timeout_s", 2.0)),
            retries=int(raw.get("retries", 1)),
            roles={str(k): float(v) for k, v in (raw.get("roles") or {}).items()},
            devices={str(k): float(v) for k, v in (raw.get("devices") or {}).items()},
            thresholds_file=(settings.home / thresholds) if thresholds else None,
            raw_retention_s=float(raw.get("raw_retention_s", 2 * 86400)),
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{path}: performance settings: {exc}") from None
    if out.interval_s <= 0 or any(v <= 0 for v in (*out.roles.values(),
                                                    *out.devices.values())):
        raise ConfigError(f"{path}: performance intervals must be positive")
    return out
