"""What one poll of a device's counters returns: the contract between the counter
collectors (SNMP, NETCONF) and the performance agent's rate engine.

Raw values, as the device reported them: ``None`` where the device has no such
counter. Nothing is computed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CounterSample", "HealthSample", "InterfaceCounters", "StorageUse"]


@dataclass(frozen=True, slots=True)
class InterfaceCounters:
    """One interface's counters at one poll. ``counter_bits`` is 64 when the octet and
    packet counters came from ifXTable (ifHC*), 32 when from ifTable."""

    if_index: int
    name: str | None
    counter_bits: int
    in_octets: int | None = None
    out_octets: int | None = None
    in_ucast_pkts: int | None = None
    out_ucast_pkts: int | None = None
    in_mcast_pkts: int | None = None
    out_mcast_pkts: int | None = None
    in_bcast_pkts: int | None = None
    out_bcast_pkts: int | None = None
    in_errors: int | None = None
    out_errors: int | None = None
    in_discards: int | None = None
    out_discards: int | None = None
    oper_status: str | None = None
    speed_mbps: int | None = None          # ifHighSpeed (else ifSpeed / 1e6)
    discontinuity_ticks: int | None = None  # ifCounterDiscontinuityTime (sysUpTime ticks)


@dataclass(frozen=True, slots=True)
class CounterSample:
    """A device's interface counters at one poll.

    ``taken_at`` is the wall-clock time (Unix seconds, UTC) the answer arrived;
    ``sys_uptime_ticks`` the agent's sysUpTime in hundredths of a second (``None``
    for NETCONF devices, which carry a discontinuity time per interface instead).
    """

    host: str
    taken_at: float
    sys_uptime_ticks: int | None
    interfaces: tuple[InterfaceCounters, ...]
    if_number: int | None = None
    source: str = "snmp"                  # "snmp" | "netconf"
    index_refreshed: bool = False         # the ifIndex -> name table was re-read this poll


@dataclass(frozen=True, slots=True)
class StorageUse:
    """One storage area (HOST-RESOURCES-MIB hrStorageTable)."""

    descr: str
    kind: str                              # "ram", "virtual", "disk", "other"
    size_bytes: int
    used_bytes: int


@dataclass(frozen=True, slots=True)
class HealthSample:
    """Device health where the agent has it; ``None`` where it does not."""

    host: str
    taken_at: float
    cpu_percent: float | None = None       # HOST-RESOURCES hrProcessorLoad avg, or UCD
    mem_total_bytes: int | None = None
    mem_used_bytes: int | None = None      # UCD memTotalReal - memAvailReal (- buffers/cache)
    storage: tuple[StorageUse, ...] = field(default=())
