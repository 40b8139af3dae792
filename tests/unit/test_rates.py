"""Unit tests for agents.performance.rates: every rule with numbers checkable by hand."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agents.performance import (
    Discontinuity,
    RateEngine,
    RateSample,
    counter_delta,
    utilisation_pct,
)
from collectors.counters import CounterSample, InterfaceCounters

T0 = 1_700_000_000.0
UPTIME0 = 10_000_000  # ticks: the agent has been up ~27.8 hours


def ifc(if_index: int = 1, name: str | None = "eth0", bits: int = 64,
        **counters: int | str | None) -> InterfaceCounters:
    values: dict[str, int | str | None] = {"speed_mbps": 1000, "oper_status": "up"}
    values.update(counters)
    return InterfaceCounters(if_index, name, bits, **values)  # type: ignore[arg-type]


def sample(t_s: float, ticks: int | None, *interfaces: InterfaceCounters,
           host: str = "r1", source: str = "snmp") -> CounterSample:
    return CounterSample(host, T0 + t_s, ticks, tuple(interfaces), source=source)


def two_polls(first: CounterSample, second: CounterSample, interval_s: float = 60.0,
              ) -> tuple[list[RateSample], list[Discontinuity]]:
    engine = RateEngine()
    assert engine.update("r1", first, expected_interval_s=interval_s) == (
        [], [Discontinuity("r1", i.name or f"ifIndex {i.if_index}", i.if_index, first.taken_at,
                           "first-sample", "first poll of the device")
             for i in first.interfaces])
    return engine.update("r1", second, expected_interval_s=interval_s)


def only_rate(result: tuple[list[RateSample], list[Discontinuity]]) -> RateSample:
    rates, events = result
    assert events == []
    assert len(rates) == 1
    return rates[0]


# -- counter_delta -------------------------------------------------------------------

def test_counter_delta_ok_and_missing() -> None:
    assert counter_delta(100, 350, 32) == (250, "ok")
    assert counter_delta(7, 7, 64) == (0, "ok")
    assert counter_delta(None, 5, 32) == (None, "missing")
    assert counter_delta(5, None, 64) == (None, "missing")


def test_counter_delta_32_bit_wrap() -> None:
    assert counter_delta(4_294_967_000, 1000, 32) == (1296, "wrap")
    # "backwards" by one on a 32-bit counter is indistinguishable from a full wrap
    assert counter_delta(10, 9, 32) == (2**32 - 1, "wrap")


def test_counter_delta_64_bit_near_max_wraps() -> None:
    assert counter_delta(2**64 - 1000, 500, 64) == (1500, "wrap")
    assert counter_delta(2**64 - 2**32, 0, 64) == (2**32, "wrap")  # the edge of the window


def test_counter_delta_64_bit_backwards() -> None:
    assert counter_delta(10_000_000, 5_000, 64) == (None, "backwards")
    assert counter_delta(2**64 - 2**32 - 1, 0, 64) == (None, "backwards")  # outside the window
    # near the top but fell back by 10: a wrap would be a delta of almost 2**64
    assert counter_delta(2**64 - 10, 2**64 - 20, 64) == (None, "backwards")


def test_counter_delta_refuses_other_widths() -> None:
    with pytest.raises(ValueError, match="not 16"):
        counter_delta(1, 2, 16)


# -- utilisation -------------------------------------------------------------------------

def test_utilisation_pct() -> None:
    assert utilisation_pct(500_000_000.0, 1000) == 50.0
    assert utilisation_pct(2_500_000.0, 10) == 25.0
    assert utilisation_pct(500.0, 0) is None
    assert utilisation_pct(500.0, None) is None
    assert utilisation_pct(None, 1000) is None


# -- the engine: plain rates ----------------------------------------------------------

def test_rates_and_utilisation_50_pct() -> None:
    # 500 Mb/s for 60 s = 3.75e9 octets; 600 packets/s; 2 errors, 6 discards
    first = sample(0, UPTIME0, ifc(in_octets=1_000, out_octets=0, in_ucast_pkts=0,
                                   in_errors=10, in_discards=100, out_errors=0,
                                   out_discards=0))
    second = sample(60, UPTIME0 + 6000, ifc(
        in_octets=1_000 + 3_750_000_000, out_octets=750_000_000, in_ucast_pkts=36_000,
        in_errors=12, in_discards=106, out_errors=0, out_discards=0))
    rate = only_rate(two_polls(first, second))
    assert rate == RateSample(
        device="r1", interface="eth0", if_index=1, t_start=T0, t_end=T0 + 60,
        in_bps=500_000_000.0, out_bps=100_000_000.0, in_pps=600.0, out_pps=None,
        in_errors_ps=2 / 60, out_errors_ps=0.0, in_discards_ps=0.1, out_discards_ps=0.0,
        in_util_pct=50.0, out_util_pct=10.0,
        in_octets_delta=3_750_000_000, out_octets_delta=750_000_000,
        speed_mbps=1000, oper_status="up")


def test_packets_sum_unicast_multicast_broadcast() -> None:
    first = sample(0, UPTIME0, ifc(in_ucast_pkts=100, in_mcast_pkts=10, in_bcast_pkts=1,
                                   out_ucast_pkts=50, out_mcast_pkts=5))
    second = sample(60, UPTIME0 + 6000, ifc(in_ucast_pkts=1300, in_mcast_pkts=130,
                                            in_bcast_pkts=61, out_ucast_pkts=650,
                                            out_mcast_pkts=5))
    rate = only_rate(two_polls(first, second))
    assert rate.in_pps == (1200 + 120 + 60) / 60 == 23.0
    assert rate.out_pps == (600 + 0) / 60 == 10.0  # no broadcast counter: the others


def test_missing_counters_give_none_fields() -> None:
    first = sample(0, UPTIME0, ifc(in_octets=0, out_octets=0, in_errors=0,
                                   in_ucast_pkts=5))
    second = sample(60, UPTIME0 + 6000, ifc(in_octets=600, out_octets=None, in_errors=None,
                                            out_errors=3, in_ucast_pkts=None))
    rate = only_rate(two_polls(first, second))
    assert rate.in_bps == 80.0
    assert rate.in_octets_delta == 600
    assert rate.out_bps is None
    assert rate.out_octets_delta is None
    assert rate.out_util_pct is None
    assert rate.in_errors_ps is None
    assert rate.out_errors_ps is None      # only in the second poll
    assert rate.in_pps is None
    assert rate.in_discards_ps is None
    assert rate.in_util_pct == 8e-06


def test_zero_speed_interface_has_no_utilisation() -> None:
    first = sample(0, UPTIME0, ifc(name="lo", speed_mbps=0, in_octets=0, out_octets=0))
    second = sample(60, UPTIME0 + 6000, ifc(name="lo", speed_mbps=0, in_octets=6000,
                                            out_octets=6000))
    rate = only_rate(two_polls(first, second))
    assert rate.in_bps == 800.0
    assert rate.out_bps == 800.0
    assert rate.in_util_pct is None
    assert rate.out_util_pct is None
    assert rate.speed_mbps == 0


# -- wraps ---------------------------------------------------------------------------------

def test_32_bit_wrap_gives_the_true_rate() -> None:
    first = sample(0, UPTIME0, ifc(bits=32, in_octets=4_294_967_000, out_octets=0))
    second = sample(60, UPTIME0 + 6000, ifc(bits=32, in_octets=1000, out_octets=0))
    rate = only_rate(two_polls(first, second))
    assert rate.in_octets_delta == 1296
    assert rate.in_bps == 1296 * 8 / 60 == 172.8


def test_64_bit_near_max_wrap_gives_the_true_rate() -> None:
    first = sample(0, UPTIME0, ifc(in_octets=2**64 - 1000, out_octets=0))
    second = sample(60, UPTIME0 + 6000, ifc(in_octets=500, out_octets=0))
    rate = only_rate(two_polls(first, second))
    assert rate.in_octets_delta == 1500
    assert rate.in_bps == 200.0


def test_64_bit_backwards_is_reported_not_a_spike() -> None:
    first = sample(0, UPTIME0, ifc(1, "eth0", in_octets=10_000_000, out_octets=0),
                   ifc(2, "eth1", in_octets=0, out_octets=0))
    second = sample(60, UPTIME0 + 6000, ifc(1, "eth0", in_octets=5_000, out_octets=600),
                    ifc(2, "eth1", in_octets=60, out_octets=0))
    rates, events = two_polls(first, second)
    assert events == [Discontinuity("r1", "eth0", 1, T0 + 60, "counter-backwards",
                                    "in_octets went from 10000000 to 5000")]
    assert [(r.interface, r.in_bps) for r in rates] == [("eth1", 8.0)]


def test_64_bit_packet_counter_backwards() -> None:
    first = sample(0, UPTIME0, ifc(in_octets=0, out_ucast_pkts=900))
    second = sample(60, UPTIME0 + 6000, ifc(in_octets=60, out_ucast_pkts=300))
    rates, events = two_polls(first, second)
    assert rates == []
    assert events == [Discontinuity("r1", "eth0", 1, T0 + 60, "counter-backwards",
                                    "out_ucast_pkts went from 900 to 300")]


def test_implausible_32_bit_wrap_on_10_mbps() -> None:
    # one wrap would mean 4_244_967_296 octets in 60 s = 565.995... Mb/s on a 10 Mb/s port
    first = sample(0, UPTIME0, ifc(bits=32, speed_mbps=10, in_octets=100_000_000))
    second = sample(60, UPTIME0 + 6000, ifc(bits=32, speed_mbps=10, in_octets=50_000_000))
    rates, events = two_polls(first, second)
    assert rates == []
    assert events == [Discontinuity(
        "r1", "eth0", 1, T0 + 60, "discontinuity",
        "implausible wrap: in_octets from 100000000 to 50000000 would be 565995639 b/s "
        "on a 10 Mb/s interface")]


def test_plausible_32_bit_wrap_on_10_mbps_up_to_speed_plus_10_pct() -> None:
    # 82_500_000 octets in 60 s = 11 Mb/s: exactly speed + 10 %, still believed
    first = sample(0, UPTIME0, ifc(bits=32, speed_mbps=10, in_octets=2**32 - 2_500_000))
    second = sample(60, UPTIME0 + 6000, ifc(bits=32, speed_mbps=10, in_octets=80_000_000))
    rate = only_rate(two_polls(first, second))
    assert rate.in_octets_delta == 82_500_000
    assert rate.in_bps == 11_000_000.0
    assert rate.in_util_pct == 110.0


def test_implausible_64_bit_wrap_is_counter_backwards() -> None:
    # 2**32 octets in 60 s = 572.6 Mb/s on a 100 Mb/s port: not a wrap
    first = sample(0, UPTIME0, ifc(speed_mbps=100, in_octets=2**64 - 2**31))
    second = sample(60, UPTIME0 + 6000, ifc(speed_mbps=100, in_octets=2**31))
    rates, events = two_polls(first, second)
    assert rates == []
    assert [(e.reason, e.detail) for e in events] == [(
        "counter-backwards",
        f"in_octets from {2**64 - 2**31} to {2**31} would be 572662306 b/s "
        "on a 100 Mb/s interface")]


# -- the agent's clock -----------------------------------------------------------------------

def test_agent_restart_flags_every_interface_and_gives_no_rates() -> None:
    first = sample(0, 6000, ifc(1, "eth0", in_octets=5_000_000), ifc(2, "eth1", in_octets=7))
    second = sample(60, 300, ifc(1, "eth0", in_octets=1_000), ifc(2, "eth1", in_octets=9))
    rates, events = two_polls(first, second)
    assert rates == []
    detail = "sysUpTime went back from 6000 to 300 ticks"
    assert events == [Discontinuity("r1", "eth0", 1, T0 + 60, "agent-restart", detail),
                      Discontinuity("r1", "eth1", 2, T0 + 60, "agent-restart", detail)]


def test_agent_restart_seen_when_uptime_is_shorter_than_the_interval() -> None:
    # up 10 s at the first poll, 30 s at the second, 60 s later: it restarted in between
    first = sample(0, 1000, ifc(bits=32, in_octets=4_000_000_000))
    second = sample(60, 3000, ifc(bits=32, in_octets=2_000))
    rates, events = two_polls(first, second)
    assert rates == []
    assert [(e.reason, e.detail) for e in events] == [(
        "agent-restart", "sysUpTime 3000 ticks is shorter than the 60 s since the previous poll")]


def test_sysuptime_timeticks_wrap_is_not_a_restart() -> None:
    # 30 s before the 497-day wrap, then 30 s after it: 6000 ticks = 60 s, as the wall says
    first = sample(0, 2**32 - 3000, ifc(in_octets=0))
    second = sample(60, 3000, ifc(in_octets=60_000))
    rate = only_rate(two_polls(first, second))
    assert rate.in_bps == 8000.0


def test_sysuptime_wrap_must_agree_with_the_wall_clock() -> None:
    # from the top of the range to 3000 would be 60 s, but 300 s passed: a restart
    first = sample(0, 2**32 - 3000, ifc(in_octets=0))
    second = sample(300, 3000, ifc(in_octets=60_000))
    rates, events = two_polls(first, second, interval_s=300)
    assert rates == []
    assert [e.reason for e in events] == ["agent-restart"]


def test_late_answer_uses_the_agents_own_interval() -> None:
    # the answer arrived 61.5 s after the previous one, the agent's clock says 60 s
    first = sample(0, UPTIME0, ifc(in_octets=0))
    second = sample(61.5, UPTIME0 + 6000, ifc(in_octets=600_000))
    rate = only_rate(two_polls(first, second))
    assert rate.in_bps == 600_000 * 8 / 60 == 80_000.0
    assert (rate.t_start, rate.t_end) == (T0, T0 + 61.5)


def test_wall_time_used_when_the_agents_clock_disagrees() -> None:
    # the agent claims 80 s for 60 s of wall time (more than 10 % off): trust the wall
    first = sample(0, UPTIME0, ifc(in_octets=0))
    second = sample(60, UPTIME0 + 8000, ifc(in_octets=600_000))
    assert only_rate(two_polls(first, second)).in_bps == 80_000.0


def test_netconf_device_without_sysuptime_uses_wall_time() -> None:
    first = sample(0, None, ifc(in_octets=0), source="netconf")
    second = sample(62, None, ifc(in_octets=620_000), source="netconf")
    assert only_rate(two_polls(first, second)).in_bps == 80_000.0


# -- per-interface discontinuities -----------------------------------------------------------

def test_discontinuity_time_moved_on_one_interface_only() -> None:
    first = sample(0, UPTIME0, ifc(1, "eth0", in_octets=0, discontinuity_ticks=0),
                   ifc(2, "eth1", in_octets=0, discontinuity_ticks=0))
    second = sample(60, UPTIME0 + 6000,
                    ifc(1, "eth0", in_octets=6_000, discontinuity_ticks=0),
                    ifc(2, "eth1", in_octets=50, discontinuity_ticks=UPTIME0 + 5500))
    rates, events = two_polls(first, second)
    assert [(r.interface, r.in_bps) for r in rates] == [("eth0", 800.0)]
    assert events == [Discontinuity(
        "r1", "eth1", 2, T0 + 60, "discontinuity",
        "ifCounterDiscontinuityTime moved from 0 to 10005500 ticks")]


def test_index_changed() -> None:
    first = sample(0, UPTIME0, ifc(3, "eth2", in_octets=900_000))
    second = sample(60, UPTIME0 + 6000, ifc(3, "eth5", in_octets=100))
    rates, events = two_polls(first, second)
    assert rates == []
    assert events == [Discontinuity("r1", "eth5", 3, T0 + 60, "index-changed",
                                    "ifIndex 3 was 'eth2', now 'eth5'")]


def test_new_interface_is_a_first_sample() -> None:
    first = sample(0, UPTIME0, ifc(1, "eth0", in_octets=0))
    second = sample(60, UPTIME0 + 6000, ifc(1, "eth0", in_octets=60),
                    ifc(7, None, in_octets=99))
    rates, events = two_polls(first, second)
    assert [(r.interface, r.in_bps) for r in rates] == [("eth0", 8.0)]
    assert events == [Discontinuity("r1", "ifIndex 7", 7, T0 + 60, "first-sample",
                                    "ifIndex 7 was not in the previous poll")]


def test_counter_width_change_is_a_discontinuity() -> None:
    first = sample(0, UPTIME0, ifc(bits=32, in_octets=4_000_000_000))
    second = sample(60, UPTIME0 + 6000, ifc(bits=64, in_octets=90_000_000_000))
    rates, events = two_polls(first, second)
    assert rates == []
    assert [(e.reason, e.detail) for e in events] == [
        ("discontinuity", "counters now 64-bit, were 32-bit")]


def test_source_change_is_a_discontinuity() -> None:
    first = sample(0, UPTIME0, ifc(in_octets=0))
    second = sample(60, None, ifc(in_octets=600), source="netconf")
    rates, events = two_polls(first, second)
    assert rates == []
    assert [(e.reason, e.detail) for e in events] == [
        ("discontinuity", "counters now from netconf, were from snmp")]


# -- gaps, state ------------------------------------------------------------------------------

def test_missed_poll_is_a_gap_then_rates_resume() -> None:
    engine = RateEngine()
    engine.update("r1", sample(0, UPTIME0, ifc(in_octets=0)), expected_interval_s=60)
    # 150 s > 1.5 x 60 s: no average across the gap
    rates, events = engine.update("r1", sample(150, UPTIME0 + 15_000, ifc(in_octets=9_000_000)),
                                  expected_interval_s=60)
    assert rates == []
    assert events == [Discontinuity("r1", "eth0", 1, T0 + 150, "gap",
                                    "150 s since the previous poll, more than 1.5 x 60 s")]
    rates, events = engine.update("r1", sample(210, UPTIME0 + 21_000, ifc(in_octets=9_060_000)),
                                  expected_interval_s=60)
    assert events == []
    assert [(r.t_start, r.t_end, r.in_octets_delta, r.in_bps) for r in rates] == [
        (T0 + 150, T0 + 210, 60_000, 8000.0)]


def test_interval_within_the_gap_factor_gives_rates() -> None:
    first = sample(0, UPTIME0, ifc(in_octets=0))
    second = sample(90, UPTIME0 + 9000, ifc(in_octets=90_000))  # exactly 1.5 x 60 s
    assert only_rate(two_polls(first, second)).in_bps == 8000.0


def test_wall_clock_not_advancing_is_a_gap() -> None:
    engine = RateEngine()
    engine.update("r1", sample(60, UPTIME0, ifc(in_octets=0)), expected_interval_s=60)
    rates, events = engine.update("r1", sample(60, UPTIME0, ifc(in_octets=0)),
                                  expected_interval_s=60)
    assert rates == []
    assert [(e.reason, e.detail) for e in events] == [
        ("gap", "wall clock did not advance (0 s)")]


def test_devices_are_kept_apart_and_forget_starts_afresh() -> None:
    engine = RateEngine()
    engine.update("r1", sample(0, UPTIME0, ifc(in_octets=0)), expected_interval_s=60)
    rates, events = engine.update("r2", sample(60, UPTIME0 + 6000, ifc(in_octets=60),
                                               host="r2"), expected_interval_s=60)
    assert rates == []
    assert [(e.device, e.reason) for e in events] == [("r2", "first-sample")]
    engine.forget("r1")
    engine.forget("never-seen")
    rates, events = engine.update("r1", sample(60, UPTIME0 + 6000, ifc(in_octets=60)),
                                  expected_interval_s=60)
    assert rates == []
    assert [(e.device, e.reason) for e in events] == [("r1", "first-sample")]


def test_update_refuses_nonsense_intervals() -> None:
    engine = RateEngine()
    first = sample(0, UPTIME0, ifc())
    with pytest.raises(ValueError, match="expected_interval_s"):
        engine.update("r1", first, expected_interval_s=0)
    with pytest.raises(ValueError, match="max_gap_factor"):
        engine.update("r1", first, expected_interval_s=60, max_gap_factor=0.5)


def test_samples_are_frozen() -> None:
    event = Discontinuity("r1", "eth0", 1, T0, "gap", "")
    with pytest.raises(AttributeError):
        event.reason = "first-sample"  # type: ignore[misc]
    assert replace(event, reason="first-sample").reason == "first-sample"
