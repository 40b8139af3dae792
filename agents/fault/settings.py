"""The fault agent's knobs: ``fault:`` in ``$SWITCHBOARD_HOME/settings.yaml``.

Keys (defaults in :class:`FaultSettings`): rules_file (relative to SWITCHBOARD_HOME),
listen_host, listen_port, queue_size, batch_max, flap_count, flap_window_s,
flap_quiet_s, archive_after_s, perf_events_every_s, unknown_source_alarm, webhooks
(a list of URLs). An example is in docs/fault.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from topology.errors import ConfigError
from topology.settings import Settings, get_settings, settings_section

__all__ = ["FaultSettings", "load_fault_settings"]


@dataclass(frozen=True)
class FaultSettings:
    """Fault settings with their defaults."""

    rules_file: Path | None = None
    listen_host: str = "0.0.0.0"  # noqa: S104 - traps come from the managed network
    listen_port: int = 162
    queue_size: int = 20_000
    batch_max: int = 2_000
    flap_count: int = 5
    """Raise/clear transitions within ``flap_window_s`` that make an alarm flapping."""
    flap_window_s: float = 120.0
    """Also how long after a clear a new raise reopens the same alarm."""
    flap_quiet_s: float = 60.0
    """A flapping alarm clears once it has stayed clear this long."""
    archive_after_s: float = 7 * 86400
    perf_events_every_s: float = 2.0
    unknown_source_alarm: bool = False
    webhooks: tuple[str, ...] = field(default_factory=tuple)


def load_fault_settings(settings: Settings | None = None) -> FaultSettings:
    """Read ``fault:`` from settings.yaml (defaults where absent)."""
    settings = settings or get_settings()
    path, raw = settings_section("fault", settings)
    known = set(FaultSettings.__dataclass_fields__)
    if set(raw) - known:
        raise ConfigError(f"{path}: fault settings: unknown keys {sorted(set(raw) - known)}")
    try:
        rules = raw.get("rules_file")
        hooks = raw.get("webhooks") or []
        if not isinstance(hooks, list) or not all(
                isinstance(h, str) and h.startswith(("http://", "https://")) for h in hooks):
            raise ValueError("webhooks must be a list of http(s) URLs")
        out = FaultSettings(
            rules_file=(settings.home / rules) if rules else None,
            listen_host=str(raw.get("listen_host", "0.0.0.0")),  # noqa: S104
            listen_port=int(raw.get("listen_port", 162)),
            queue_size=int(raw.get("queue_size", 20_000)),
            batch_max=int(raw.get("batch_max", 2_000)),
            flap_count=int(raw.get("flap_count", 5)),
            flap_window_s=float(raw.get("flap_window_s", 120.0)),
            flap_quiet_s=float(raw.get("flap_quiet_s", 60.0)),
            archive_after_s=float(raw.get("archive_after_s", 7 * 86400)),
            perf_events_every_s=float(raw.get("perf_events_every_s", 2.0)),
            unknown_source_alarm=bool(raw.get("unknown_source_alarm", False)),
            webhooks=tuple(hooks),
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{path}: fault settings: {exc}") from None
    if (out.queue_size < 1 or out.batch_max < 1 or out.flap_count < 2
            or min(out.flap_window_s, out.flap_quiet_s, out.perf_events_every_s) <= 0
            or not 0 < out.listen_port < 65536):
        raise ConfigError(f"{path}: fault settings out of range (queue_size, batch_max >= 1; "
                          "flap_count >= 2; windows > 0; a valid port)")
    return out
