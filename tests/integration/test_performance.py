"""The poller against the core lab's real agents: octet deltas that match real traffic on
both ends of every crossed link, no spike after an agent restart, and a threshold
raised by real traffic that clears when it stops."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from agents.performance.poller import Poller, PollOutcome
from agents.performance.rates import RateSample
from agents.performance.settings import PerfSettings
from agents.performance.store import PerfStore
from agents.performance.thresholds import PerfEvent, ThresholdEngine, load_rules
from lab.pytest_plugin import LabHandle
from tests.integration.peers import NetSnmp
from topology.db import get_engine

pytestmark = pytest.mark.lab
HEADER_OCTETS = 14 + 20 + 32  # Ethernet, IPv4, TCP with timestamps (Linux default)
SNMPD_CACHE_S = 6             # net-snmp refreshes IF-MIB from the kernel every few seconds


@pytest.fixture(scope="module")
def discovered(core_lab: LabHandle) -> LabHandle:
    res = subprocess.run([sys.executable, "-m", "northbound.cli", "discover", "--lab",
                          core_lab.name, "--json"], capture_output=True, text=True,
                         timeout=300, check=False, env=os.environ.copy())
    assert res.returncode == 0, res.stderr
    assert len(json.loads(res.stdout)["found"]) == len(core_lab.managed())
    return core_lab


def poller(interval_s: float = 60.0, thresholds: ThresholdEngine | None = None) -> Poller:
    return Poller(get_engine(), PerfSettings(interval_s=interval_s, budget_s=30),
                  thresholds=thresholds)


_LOOPS: dict[int, asyncio.AbstractEventLoop] = {}


def cycle(p: Poller) -> dict[str, PollOutcome]:
    """One poll cycle; each poller keeps its event loop (its SNMP engine lives in it)."""
    loop = _LOOPS.setdefault(id(p), asyncio.new_event_loop())
    return {o.device: o for o in loop.run_until_complete(p.cycle())}


def rates_between(p: Poller, before: float) -> dict[tuple[str, str], RateSample]:
    from datetime import UTC, datetime

    store = PerfStore(p.engine)
    out = {}
    for dev in ("r1", "r2", "r3", "sw1"):
        for row in store.latest(dev):
            if row.t_end.replace(tzinfo=UTC) >= datetime.fromtimestamp(before, UTC):
                out[(dev, row.interface)] = row
    return out  # type: ignore[return-value]


def route_dev(lab: LabHandle, node: str, dst: str) -> str:
    out = lab.nodes[node].run("ip", "-j", "route", "get", dst).stdout
    return str(json.loads(out)[0]["dev"])


def test_octet_deltas_on_both_ends_of_every_crossed_link_match_the_traffic(
        discovered: LabHandle) -> None:
    lab = discovered
    # the path cust1 -> srv1, as the routers' own FIBs have it (OSPF decides)
    r1_out = route_dev(lab, "r1", "198.51.100.10")
    assert r1_out == "eth2", "r1 should reach the server LAN directly over r1-r3"
    crossed = [  # (device, interface, direction the data leaves/enters)
        ("r1", "eth3", "in"), ("r1", "eth2", "out"), ("r3", "eth2", "in"),
        ("r3", "eth3", "out"), ("sw1", "eth1", "in"), ("sw1", "eth2", "out")]
    p = poller()
    cycle(p)
    time.sleep(SNMPD_CACHE_S)
    cycle(p)  # a clean baseline after the cache refreshed
    nbytes = 20_000_000
    started = time.time()
    report = lab.lab.traffic("cust1", "srv1", nbytes)
    assert report.bytes_received == nbytes
    time.sleep(SNMPD_CACHE_S)
    outcomes = cycle(p)
    assert all(o.status.value == "ok" for o in outcomes.values()), outcomes
    rates = rates_between(p, started)
    for dev, iface, direction in crossed:
        row: Any = rates[(dev, iface)]
        octets = row.in_octets if direction == "in" else row.out_octets
        pps = row.in_pps if direction == "in" else row.out_pps
        seconds = (row.t_end - row.t_start).total_seconds()
        packets = pps * seconds
        expected = report.attempts * nbytes + packets * HEADER_OCTETS
        assert abs(octets - expected) <= 0.02 * expected, \
            f"{dev}:{iface} {direction}: {octets} octets, expected {expected:.0f}"
        bps = row.in_bps if direction == "in" else row.out_bps
        # the rate times the interval is the octets counted in it: the engine divides by
        # the agent's own sysUpTime interval, t_start/t_end are wall clock, and the two
        # differ by how late the agent answered
        assert bps * seconds / 8 == pytest.approx(octets, rel=0.05)


def test_restarting_an_agent_during_polling_gives_no_spike_and_a_visible_gap(
        discovered: LabHandle) -> None:
    lab = discovered
    p = poller()
    cycle(p)
    time.sleep(2)
    assert cycle(p)["r1"].rates > 0
    before = time.time()
    lab.lab.restart_daemon("r1", "snmpd")
    after_restart = cycle(p)["r1"]
    assert after_restart.status.value == "ok"
    assert after_restart.rates == 0
    assert any("agent-restart" in g for g in after_restart.gaps), after_restart.gaps
    from datetime import UTC, datetime

    store = PerfStore(p.engine)
    gaps = store.gaps("r1", "eth1", datetime.fromtimestamp(before, UTC),
                      datetime.now(UTC))
    assert [g.reason for g in gaps] == ["agent-restart"]
    time.sleep(2)
    again = cycle(p)["r1"]
    assert again.rates > 0
    for row in store.latest("r1"):
        # no spike: nothing near the counters' absolute values (veth speed is 10 Gb/s)
        assert (row.in_bps or 0) < 1e9 and (row.out_bps or 0) < 1e9, row


def test_real_traffic_raises_a_threshold_event_that_clears_when_it_stops(
        discovered: LabHandle, tmp_path: Path) -> None:
    lab = discovered
    rules = tmp_path / "thresholds.yaml"
    rules.write_text("""
rules:
  - name: busy-link
    description: more than 0.05 % of the 10 Gb/s lab link (5 Mb/s)
    metric: util_pct
    raise_when: {above: 0.05, samples: 2}
    clear_when: {below: 0.01, samples: 1}
    severity: major
""")
    p = poller(interval_s=60, thresholds=ThresholdEngine(load_rules(rules)))
    stop = threading.Event()

    def stream() -> None:
        while not stop.is_set():
            lab.lab.traffic("cust1", "srv1", 5_000_000)
            time.sleep(0.2)

    cycle(p)
    sender = threading.Thread(target=stream, daemon=True)
    sender.start()
    raised: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while not raised and time.monotonic() < deadline:
            time.sleep(SNMPD_CACHE_S)
            raised = [e for o in cycle(p).values() for e in o.events if "busy-link" in e]
    finally:
        stop.set()
        sender.join(timeout=60)
    assert raised, "no busy-link event while traffic flowed"
    cleared: list[str] = []
    deadline = time.monotonic() + 60
    while not cleared and time.monotonic() < deadline:
        time.sleep(SNMPD_CACHE_S)
        cycle(p)
        with Session(p.engine) as session:
            cleared = [e.detail for e in session.exec(
                select(PerfEvent).where(PerfEvent.rule == "busy-link",
                                        PerfEvent.kind == "clear")).all()]
    assert cleared, "busy-link did not clear after the traffic stopped"
    with Session(p.engine) as session:
        events = session.exec(select(PerfEvent).where(PerfEvent.rule == "busy-link")).all()
    raises = [e for e in events if e.kind == "raise"]
    assert raises and all(e.resource for e in raises)
    assert {e.device for e in raises} <= {"r1", "r3", "sw1"}
    assert "busy-link" in raises[0].detail


def test_metrics_expose_counters_rates_and_poller_health(discovered: LabHandle) -> None:
    from fastapi.testclient import TestClient

    from northbound.api import create_app

    p = poller()
    cycle(p)
    time.sleep(2)
    cycle(p)
    text = TestClient(create_app(get_engine())).get("/metrics").text
    snmp = NetSnmp(discovered.credentials)
    r1 = discovered.nodes["r1"]
    idx = snmp.if_index(r1.mgmt_ipv4)["eth1"]
    live = int(snmp.get(r1.mgmt_ipv4, f"1.3.6.1.2.1.31.1.1.1.6.{idx}"))
    line = next(ln for ln in text.splitlines()
                if ln.startswith('switchboard_interface_in_octets_total{device="r1",'
                                 'interface="eth1"}'))
    exposed = float(line.rsplit(" ", 1)[1])
    assert 0 < exposed <= live  # what the poller read, never more than the agent has now
    assert 'switchboard_interface_in_bits_per_second{device="r1",interface="eth1"}' in text
    polls = next(ln for ln in text.splitlines() if ln.startswith("switchboard_poller_polls_total"))
    assert float(polls.rsplit(" ", 1)[1]) >= 2 * len(discovered.managed())
