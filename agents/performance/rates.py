"""Interface rates from two successive counter polls of a device.

A rate is reported only when it can be trusted. Everything that would turn into a
spike in a graph is reported as a :class:`Discontinuity` instead, and the interval
yields no rate: a counter wrap is undone, an agent restart, a moved
ifCounterDiscontinuityTime, a missed poll, a 64-bit counter going backwards, an
ifIndex now naming another interface. Pure: no I/O, no clock; time comes from the
samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from collectors.counters import CounterSample, InterfaceCounters

__all__ = [
    "Discontinuity",
    "DiscontinuityReason",
    "RateEngine",
    "RateSample",
    "counter_delta",
    "utilisation_pct",
]

DiscontinuityReason = Literal[
    "agent-restart", "discontinuity", "gap", "counter-backwards", "first-sample",
    "index-changed",
]

TICKS_PER_S = 100                      # sysUpTime is in hundredths of a second
TIMETICKS_MODULUS = 2**32              # TimeTicks wrap after 497 days
_HOUR_TICKS = 3600 * TICKS_PER_S
CLOCK_TOLERANCE = 0.10                 # sysUpTime and wall time "agree" within 10 %
SPEED_TOLERANCE = 0.10                 # a wrap may imply at most speed + 10 %
ERROR_COUNTER_BITS = 32                # errors and discards are Counter32 (IF-MIB, ietf-interfaces)


@dataclass(frozen=True)
class RateSample:
    """One interface's rates over ``t_start``..``t_end`` (Unix s, wall clock).

    A field is ``None`` when a counter it needs was missing from either poll;
    ``*_pps`` sum unicast, multicast and broadcast packets, whichever are present.
    """

    device: str
    interface: str
    if_index: int
    t_start: float
    t_end: float
    in_bps: float | None
    out_bps: float | None
    in_pps: float | None
    out_pps: float | None
    in_errors_ps: float | None
    out_errors_ps: float | None
    in_discards_ps: float | None
    out_discards_ps: float | None
    in_util_pct: float | None
    out_util_pct: float | None
    in_octets_delta: int | None
    out_octets_delta: int | None
    speed_mbps: int | None
    oper_status: str | None


@dataclass(frozen=True)
class Discontinuity:
    """Why an interface has no rate for the interval ending at ``at`` (Unix s)."""

    device: str
    interface: str
    if_index: int
    at: float
    reason: DiscontinuityReason
    detail: str


def counter_delta(prev: int | None, cur: int | None, bits: int) -> tuple[int | None, str]:
    """How far a counter moved: ``(delta, "ok" | "wrap" | "backwards" | "missing")``.

    A 32-bit counter below its previous value wrapped once (more wraps cannot be seen).
    A 64-bit one cannot wrap within a poll (2**64 octets at 400 Gb/s take 11 years),
    so it went backwards, unless it was within 2**32 of the top and the wrapped delta
    is under half the range (RFC 1982). ``delta`` is ``None`` unless "ok" or "wrap".
    """
    if bits not in (32, 64):
        raise ValueError(f"a counter is 32 or 64 bits wide, not {bits}")
    if prev is None or cur is None:
        return None, "missing"
    if cur >= prev:
        return cur - prev, "ok"
    wrapped = cur + 2**bits - prev
    if bits == 32 or (2**64 - prev <= 2**32 and wrapped < 2**63):
        return wrapped, "wrap"
    return None, "backwards"


def utilisation_pct(bps: float | None, speed_mbps: int | None) -> float | None:
    """``bps`` as a percentage of the interface speed; ``None`` when either is unknown or 0."""
    if bps is None or speed_mbps is None or speed_mbps <= 0:
        return None
    return bps * 100 / (speed_mbps * 1e6)


def _agrees(measured_s: float, wall_s: float) -> bool:
    return abs(measured_s - wall_s) <= CLOCK_TOLERANCE * wall_s


def _agent_clock(prev_ticks: int | None, cur_ticks: int | None,
                 wall_s: float) -> tuple[float | None, str | None]:
    """(seconds the agent's sysUpTime advanced or ``None``, why the agent restarted or ``None``)."""
    if prev_ticks is None or cur_ticks is None:
        return None, None
    if cur_ticks < prev_ticks:
        wrapped_s = (cur_ticks + TIMETICKS_MODULUS - prev_ticks) / TICKS_PER_S
        if (prev_ticks >= TIMETICKS_MODULUS - _HOUR_TICKS and cur_ticks < _HOUR_TICKS
                and _agrees(wrapped_s, wall_s)):
            return wrapped_s, None
        return None, f"sysUpTime went back from {prev_ticks} to {cur_ticks} ticks"
    if cur_ticks / TICKS_PER_S < wall_s * (1 - CLOCK_TOLERANCE):
        return None, (f"sysUpTime {cur_ticks} ticks is shorter than the {wall_s:g} s "
                      "since the previous poll")
    return (cur_ticks - prev_ticks) / TICKS_PER_S, None


def _per_s(delta: int | None, interval_s: float) -> float | None:
    return None if delta is None else delta / interval_s


def _bps(delta: int | None, interval_s: float) -> float | None:
    return None if delta is None else delta * 8 / interval_s


def _packets(before: InterfaceCounters, cur: InterfaceCounters,
             direction: str) -> int | str | None:
    """Sum of the packet deltas present in both polls; a field name if one went backwards."""
    total: int | None = None
    for kind in ("ucast", "mcast", "bcast"):
        name = f"{direction}_{kind}_pkts"
        delta, status = counter_delta(getattr(before, name), getattr(cur, name),
                                      cur.counter_bits)
        if status == "backwards":
            return name
        if delta is not None:
            total = delta + (total or 0)
    return total


class RateEngine:
    """Turns each device's successive counter polls into rates and discontinuities.

    Keeps the previous :class:`CounterSample` per device; every update replaces it,
    so after any discontinuity the next poll yields rates again (never an average
    across a gap or a restart).
    """

    def __init__(self) -> None:
        self._previous: dict[str, CounterSample] = {}

    def forget(self, device: str) -> None:
        """Drop the device's previous sample: its next poll is a first sample."""
        self._previous.pop(device, None)

    def update(
        self, device: str, sample: CounterSample, *, expected_interval_s: float,
        max_gap_factor: float = 1.5,
    ) -> tuple[list[RateSample], list[Discontinuity]]:
        """Rates since the device's previous poll, and why any interface has none."""
        if expected_interval_s <= 0:
            raise ValueError(f"expected_interval_s must be positive, not {expected_interval_s}")
        if max_gap_factor < 1:
            raise ValueError(f"max_gap_factor must be at least 1, not {max_gap_factor}")
        prev = self._previous.get(device)
        self._previous[device] = sample
        if prev is None:
            return [], _everywhere(device, sample, "first-sample", "first poll of the device")
        wall_s = sample.taken_at - prev.taken_at
        if wall_s <= 0:
            return [], _everywhere(device, sample, "gap",
                                   f"wall clock did not advance ({wall_s:g} s)")
        uptime_s, restart = _agent_clock(prev.sys_uptime_ticks, sample.sys_uptime_ticks, wall_s)
        if restart is not None:
            return [], _everywhere(device, sample, "agent-restart", restart)
        if wall_s > max_gap_factor * expected_interval_s:
            return [], _everywhere(
                device, sample, "gap",
                f"{wall_s:g} s since the previous poll, more than "
                f"{max_gap_factor:g} x {expected_interval_s:g} s")
        if sample.source != prev.source:
            return [], _everywhere(device, sample, "discontinuity",
                                   f"counters now from {sample.source}, were from {prev.source}")
        interval_s = uptime_s if uptime_s is not None and _agrees(uptime_s, wall_s) else wall_s
        earlier = {ifc.if_index: ifc for ifc in prev.interfaces}
        rates: list[RateSample] = []
        events: list[Discontinuity] = []
        for cur in sample.interfaces:
            result = _interface(device, prev.taken_at, sample.taken_at, interval_s,
                                earlier.get(cur.if_index), cur)
            if isinstance(result, RateSample):
                rates.append(result)
            else:
                events.append(result)
        return rates, events


def _label(cur: InterfaceCounters, before: InterfaceCounters | None = None) -> str:
    if cur.name is not None:
        return cur.name
    if before is not None and before.name is not None:
        return before.name
    return f"ifIndex {cur.if_index}"


def _everywhere(device: str, sample: CounterSample, reason: DiscontinuityReason,
                detail: str) -> list[Discontinuity]:
    return [Discontinuity(device, _label(ifc), ifc.if_index, sample.taken_at, reason, detail)
            for ifc in sample.interfaces]


def _interface(
    device: str, t_start: float, t_end: float, interval_s: float,
    before: InterfaceCounters | None, cur: InterfaceCounters,
) -> RateSample | Discontinuity:
    """One interface's rates, or why it has none this interval."""

    def flag(reason: DiscontinuityReason, detail: str) -> Discontinuity:
        return Discontinuity(device, _label(cur, before), cur.if_index, t_end, reason, detail)

    if before is None:
        return flag("first-sample", f"ifIndex {cur.if_index} was not in the previous poll")
    if before.name is not None and cur.name is not None and before.name != cur.name:
        return flag("index-changed",
                    f"ifIndex {cur.if_index} was {before.name!r}, now {cur.name!r}")
    if before.counter_bits != cur.counter_bits:
        return flag("discontinuity", f"counters now {cur.counter_bits}-bit, "
                    f"were {before.counter_bits}-bit")
    if (before.discontinuity_ticks is not None and cur.discontinuity_ticks is not None
            and before.discontinuity_ticks != cur.discontinuity_ticks):
        return flag("discontinuity", f"ifCounterDiscontinuityTime moved from "
                    f"{before.discontinuity_ticks} to {cur.discontinuity_ticks} ticks")

    bits = cur.counter_bits
    speeds = [s for s in (before.speed_mbps, cur.speed_mbps) if s]
    octets: dict[str, int | None] = {}
    for name in ("in_octets", "out_octets"):
        old, new = getattr(before, name), getattr(cur, name)
        delta, status = counter_delta(old, new, bits)
        if status == "backwards":
            return flag("counter-backwards", f"{name} went from {old} to {new}")
        if status == "wrap" and delta is not None and speeds:
            bps = delta * 8 / interval_s
            limit_bps = max(speeds) * 1e6 * (1 + SPEED_TOLERANCE)
            if bps > limit_bps:
                what = (f"{name} from {old} to {new} would be {bps:.0f} b/s "
                        f"on a {max(speeds)} Mb/s interface")
                if bits == 64:
                    return flag("counter-backwards", what)
                return flag("discontinuity", f"implausible wrap: {what}")
        octets[name] = delta
    pkts: dict[str, int | None] = {}
    for direction in ("in", "out"):
        total = _packets(before, cur, direction)
        if isinstance(total, str):
            return flag("counter-backwards", f"{total} went from {getattr(before, total)} "
                        f"to {getattr(cur, total)}")
        pkts[direction] = total
    small = {name: counter_delta(getattr(before, name), getattr(cur, name),
                                 ERROR_COUNTER_BITS)[0]
             for name in ("in_errors", "out_errors", "in_discards", "out_discards")}

    in_bps = _bps(octets["in_octets"], interval_s)
    out_bps = _bps(octets["out_octets"], interval_s)
    return RateSample(
        device=device, interface=_label(cur, before), if_index=cur.if_index,
        t_start=t_start, t_end=t_end,
        in_bps=in_bps, out_bps=out_bps,
        in_pps=_per_s(pkts["in"], interval_s), out_pps=_per_s(pkts["out"], interval_s),
        in_errors_ps=_per_s(small["in_errors"], interval_s),
        out_errors_ps=_per_s(small["out_errors"], interval_s),
        in_discards_ps=_per_s(small["in_discards"], interval_s),
        out_discards_ps=_per_s(small["out_discards"], interval_s),
        in_util_pct=utilisation_pct(in_bps, cur.speed_mbps),
        out_util_pct=utilisation_pct(out_bps, cur.speed_mbps),
        in_octets_delta=octets["in_octets"], out_octets_delta=octets["out_octets"],
        speed_mbps=cur.speed_mbps, oper_status=cur.oper_status,
    )
