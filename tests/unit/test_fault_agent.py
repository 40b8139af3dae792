"""The fault agent on a small inventory: de-duplication, flapping, correlation, the
operators' actions, service impact. Traps are built as the receiver hands them over."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, create_engine, select

from agents.fault.agent import FaultAgent
from agents.fault.alarms import (
    AlarmConflict,
    AlarmFilter,
    acknowledge,
    add_comment,
    alarm_detail,
    list_alarms,
    unacknowledge,
)
from agents.fault.model import Alarm, init_fault_db
from agents.fault.rules import FaultRulesError, load_fault_rules
from agents.fault.settings import FaultSettings
from agents.performance.thresholds import PerfEvent
from collectors.ber import VarBind
from collectors.traps import Trap
from topology.inventory import Device, Interface, IpAddress, Link, utcnow
from topology.queries import NotFound
from topology.services import ServiceBinding

LINK_DOWN, LINK_UP = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4"
COLD_START = "1.3.6.1.6.3.1.1.5.1"
OSPF_NBR = "1.3.6.1.2.1.14.16.2.2"
MGMT = {"r1": "172.20.20.11", "r2": "172.20.20.12", "r3": "172.20.20.13"}
# (a, b, a address, b address): the core lab's triangle
LINKS = [("r1:eth1", "r2:eth1", "10.0.12.1", "10.0.12.2"),
         ("r1:eth2", "r3:eth1", "10.0.13.1", "10.0.13.3"),
         ("r2:eth2", "r3:eth2", "10.0.23.2", "10.0.23.3")]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = create_engine(f"sqlite:///{tmp_path / 'fault.db'}")
    init_fault_db(eng)
    from agents.performance.store import init_perf_db

    init_perf_db(eng)
    with Session(eng) as s:
        devices = {}
        for name, mgmt in MGMT.items():
            d = Device(name=name, sys_name=name, mgmt_address=mgmt, role="router")
            s.add(d)
            s.flush()
            devices[name] = d
        ifaces = {}
        for name, d in devices.items():
            for index in (1, 2, 3):
                itf = Interface(device_id=d.id or 0, if_index=index + 1, name=f"eth{index}")
                s.add(itf)
                s.flush()
                ifaces[f"{name}:eth{index}"] = itf
        for a, b, aa, ba in LINKS:
            s.add(Link(a_interface_id=ifaces[a].id or 0, b_interface_id=ifaces[b].id or 0,
                       confirmed=True))
            for end, address in ((a, aa), (b, ba)):
                s.add(IpAddress(device_id=ifaces[end].device_id, interface_id=ifaces[end].id,
                                address=address, prefix_length=24))
        s.add(ServiceBinding(service_id="svc-1", service_type="internet-access",
                             customer="ACME Ltd", device_id=devices["r1"].id or 0,
                             interface_id=ifaces["r1:eth3"].id))
        s.commit()
    yield eng
    eng.dispose()


def agent(engine: Engine, **settings: float) -> FaultAgent:
    return FaultAgent(engine, load_fault_rules(), FaultSettings(**settings))  # type: ignore[arg-type]


def link_trap(device: str, if_index: int, up: bool, *, ago_s: float = 0.0) -> Trap:
    status = 1 if up else 2
    return Trap(MGMT[device], 40000, "v2c", "trap", "lab", LINK_UP if up else LINK_DOWN, 100,
                (VarBind(f"1.3.6.1.2.1.2.2.1.1.{if_index}", if_index, "Integer32"),
                 VarBind(f"1.3.6.1.2.1.2.2.1.7.{if_index}", status, "Integer32"),
                 VarBind(f"1.3.6.1.2.1.2.2.1.8.{if_index}", status, "Integer32")),
                received_at=time.time() - ago_s)


def ospf_trap(device: str, neighbour: str, state: int) -> Trap:
    return Trap(MGMT[device], 40000, "v2c", "trap", "lab", OSPF_NBR, 100,
                (VarBind("1.3.6.1.2.1.14.1.1.0", "1.1.1.1", "IpAddress"),
                 VarBind(f"1.3.6.1.2.1.14.10.1.1.{neighbour}.0", neighbour, "IpAddress"),
                 VarBind(f"1.3.6.1.2.1.14.10.1.6.{neighbour}.0", state, "Integer32")))


def active(engine: Engine, *, root_only: bool = False) -> list[Alarm]:
    with Session(engine) as s:
        return list_alarms(s, AlarmFilter(active=True, root_only=root_only)).items


def children(engine: Engine, alarm: Alarm) -> list[Alarm]:
    with Session(engine) as s:
        return list(s.exec(select(Alarm).where(Alarm.parent_id == alarm.id)).all())


def perf_event(engine: Engine, device: str, kind: str) -> None:
    with Session(engine) as s:
        s.add(PerfEvent(device=device, rule="device-unreachable", kind=kind,
                        severity="critical", metric="poll_failed", detail="3 polls failed",
                        status_code="TIMEOUT"))
        s.commit()


def test_link_seen_from_both_ends(engine: Engine) -> None:
    fa = agent(engine)
    fa.handle_traps([link_trap("r1", 2, up=False)])
    [root] = active(engine, root_only=True)
    assert root.resource_type == "link" and "seen from r1:eth1 only" in root.specific_problem
    fa.handle_traps([link_trap("r2", 2, up=False)])
    [root] = active(engine, root_only=True)
    assert root.resource == "r1:eth1--r2:eth1"
    assert "seen from both ends" in root.specific_problem
    kids = children(engine, root)
    assert sorted((k.device, k.resource) for k in kids) == [("r1", "eth1"), ("r2", "eth1")]
    assert all("end of link r1:eth1--r2:eth1" in k.correlation for k in kids)
    assert len(active(engine)) == 3
    fa.handle_traps([link_trap("r1", 2, up=True), link_trap("r2", 2, up=True)])
    assert active(engine) == []


def test_thousand_identical_traps_are_one_alarm(engine: Engine) -> None:
    fa = agent(engine)
    for _ in range(4):
        fa.handle_traps([link_trap("r3", 4, up=False)] * 250)  # r3:eth3 has no link
    [alarm] = active(engine)
    assert (alarm.device, alarm.resource, alarm.count) == ("r3", "eth3", 1000)
    assert fa.stats.repeats == 999 and fa.stats.raised == 1


def test_flapping_interface_is_one_flapping_alarm_until_quiet(engine: Engine) -> None:
    fa = agent(engine, flap_count=4, flap_window_s=120.0, flap_quiet_s=30.0)
    # three down/up cycles that happened 100 .. 50 s ago
    traps = [link_trap("r3", 4, up=bool(i % 2), ago_s=100 - 10 * i) for i in range(6)]
    for t in traps:
        fa.handle_traps([t])
    with Session(engine) as s:
        alarms = s.exec(select(Alarm)).all()
    assert len(alarms) == 1
    [alarm] = alarms
    assert alarm.flapping and alarm.active and alarm.count == 3 and alarm.transitions == 6
    assert alarm.held_clear_at is not None  # the last clear is held, not lost
    fa.tick()  # the last clear was 50 s ago, quiet is 30 s
    assert active(engine) == []
    with Session(engine) as s:
        detail = alarm_detail(s, alarm.id or 0)
    actions = [h["action"] for h in detail["x_history"]]
    assert actions[:4] == ["raised", "cleared", "reopened", "flapping"]
    assert actions[-1] == "cleared" and "after flapping" in detail["x_history"][-1]["note"]


def test_a_device_that_stops_answering_is_the_root_of_its_neighbours_link_alarms(
        engine: Engine) -> None:
    fa = agent(engine)
    # r2 goes away: r1 and r3 see their links to it go down, and their OSPF neighbours
    fa.handle_traps([link_trap("r1", 2, up=False), link_trap("r3", 3, up=False),
                     ospf_trap("r1", "10.0.12.2", 1)])
    roots = active(engine, root_only=True)
    assert sorted(r.resource for r in roots) == ["r1:eth1--r2:eth1", "r2:eth2--r3:eth2"]
    perf_event(engine, "r2", "raise")
    fa.consume_perf_events()
    [root] = active(engine, root_only=True)
    assert (root.device, root.problem, root.severity) == ("r2", "device-unreachable",
                                                         "critical")
    links = children(engine, root)
    assert sorted(k.resource for k in links) == ["r1:eth1--r2:eth1", "r2:eth2--r3:eth2"]
    assert all("leads to r2, which does not answer" in k.correlation for k in links)
    r1_link = next(k for k in links if k.resource == "r1:eth1--r2:eth1")
    under = children(engine, r1_link)
    assert sorted((k.resource_type, k.resource) for k in under) == [
        ("interface", "eth1"), ("ospf-neighbour", "10.0.12.2")]
    # r2 answers again, before its links are back: the link alarms stand alone again
    perf_event(engine, "r2", "clear")
    fa.consume_perf_events()
    roots = active(engine, root_only=True)
    assert sorted(r.resource for r in roots) == ["r1:eth1--r2:eth1", "r2:eth2--r3:eth2"]
    with Session(engine) as s:
        hist = alarm_detail(s, r1_link.id or 0)["x_history"]
    assert hist[-1]["action"] == "uncorrelated"
    fa.handle_traps([link_trap("r1", 2, up=True), link_trap("r3", 3, up=True),
                     ospf_trap("r1", "10.0.12.2", 8)])
    assert active(engine) == []


def test_perf_events_are_taken_once(engine: Engine) -> None:
    fa = agent(engine)
    perf_event(engine, "r1", "raise")
    fa.consume_perf_events()
    assert fa.consume_perf_events() == []
    [alarm] = active(engine)
    assert alarm.source == "poller" and alarm.count == 1


def test_unknown_source_and_unknown_trap_are_counted_not_alarms(engine: Engine) -> None:
    fa = agent(engine)
    stranger = Trap("192.0.2.9", 162, "v2c", "trap", "lab", LINK_DOWN, 1, ())
    odd = Trap(MGMT["r1"], 162, "v2c", "trap", "lab", "1.3.6.1.4.1.99999.0.1", 1, ())
    fa.handle_traps([stranger, odd])
    assert active(engine) == []
    assert fa.stats.unknown_source == 1 and fa.stats.no_rule == 1


def test_unmatched_clear_is_counted(engine: Engine) -> None:
    fa = agent(engine)
    fa.handle_traps([link_trap("r1", 2, up=True)])
    assert fa.stats.clears_unmatched == 1 and active(engine) == []


def test_cold_start_is_a_record_not_a_standing_alarm(engine: Engine) -> None:
    fa = agent(engine)
    cold = Trap(MGMT["r1"], 162, "v2c", "trap", "lab", COLD_START, 1, ())
    fa.handle_traps([cold])
    fa.handle_traps([cold])
    assert active(engine) == []
    with Session(engine) as s:
        [alarm] = s.exec(select(Alarm)).all()
    assert (alarm.problem, alarm.state, alarm.count) == ("agent-restart", "cleared", 2)


def test_acknowledge_unacknowledge_comment(engine: Engine) -> None:
    fa = agent(engine)
    fa.handle_traps([link_trap("r3", 4, up=False)])
    [alarm] = active(engine)
    aid = alarm.id or 0
    with Session(engine) as s:
        acked = acknowledge(s, aid, user="olga", note="fibre cut, ticket 42")
        assert acked.ack_user == "olga" and acked.ack_note == "fibre cut, ticket 42"
        assert acked.ack_time is not None and utcnow() - acked.ack_time < timedelta(minutes=1)
        with pytest.raises(AlarmConflict, match="already acknowledged by olga"):
            acknowledge(s, aid, user="ivan", note="me too")
        add_comment(s, aid, user="ivan", text="splicer on site")
        unacknowledge(s, aid, user="ivan")
        with pytest.raises(NotFound, match="no alarm 999"):
            acknowledge(s, 999, user="olga", note="x")
        with pytest.raises(AlarmConflict, match="must not be empty"):
            acknowledge(s, aid, user="olga", note="  ")
        d = alarm_detail(s, aid)
    assert d["ackState"] == "unacknowledged"
    assert [c["comment"] for c in d["comment"]] == ["splicer on site"]
    acts = [(h["action"], h["userId"]) for h in d["x_history"]]
    assert ("acknowledged", "olga") in acts and ("unacknowledged", "ivan") in acts
    unack = next(h for h in d["x_history"] if h["action"] == "unacknowledged")
    assert "olga" in unack["note"] and "ticket 42" in unack["note"]
    fa.handle_traps([link_trap("r3", 4, up=True)])
    with Session(engine) as s, pytest.raises(AlarmConflict, match="is cleared"):
        acknowledge(s, aid, user="olga", note="late")


def test_impact_lists_the_customer_bound_to_the_port(engine: Engine) -> None:
    fa = agent(engine)
    fa.handle_traps([link_trap("r1", 4, up=False)])  # r1:eth3 serves ACME
    [alarm] = active(engine)
    with Session(engine) as s:
        d = alarm_detail(s, alarm.id or 0)
    assert d["x_impact"] == [{"serviceId": "svc-1", "serviceType": "internet-access",
                              "customer": "ACME Ltd", "customerId": None}]
    assert d["alarmedObject"]["name"] == "r1:eth3" and d["perceivedSeverity"] == "major"


def test_rules_file_with_mistakes_is_refused_with_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("traps:\n  - name: Bad_Name\n    trap: not-an-oid\n    action: maybe\n"
                   "    problem: x\n  - name: ok\n    trap: 1.3.6.1.4.1.1.0.1\n"
                   "    action: raise\n    problem: p\n    severity: apocalyptic\n")
    with pytest.raises(FaultRulesError) as info:
        load_fault_rules(bad)
    text = str(info.value)
    for piece in ("kebab-case", "not a numeric OID", "action must be raise or clear",
                  "severity 'apocalyptic'"):
        assert piece in text


def test_fault_settings_are_read_and_checked(tmp_path: Path) -> None:
    from agents.fault.settings import load_fault_settings
    from topology.errors import ConfigError
    from topology.settings import get_settings

    home = get_settings(tmp_path)
    (tmp_path / "settings.yaml").write_text(
        "fault:\n  listen_port: 16200\n  flap_count: 3\n  webhooks: [http://127.0.0.1:9/x]\n")
    got = load_fault_settings(home)
    assert (got.listen_port, got.flap_count, got.webhooks) == (16200, 3,
                                                                ("http://127.0.0.1:9/x",))
    for bad, reason in (("fault:\n  flap_cnt: 3\n", "unknown keys ['flap_cnt']"),
                        ("fault:\n  webhooks: [ftp://x]\n", "http(s) URLs"),
                        ("fault:\n  listen_port: 70000\n", "out of range"),
                        ("fault: [1]\n", "'fault' must be a mapping")):
        (tmp_path / "settings.yaml").write_text(bad)
        with pytest.raises(ConfigError, match=re.escape(reason)):
            load_fault_settings(home)


def test_repeats_after_an_acknowledgement_keep_it(engine: Engine) -> None:
    """The agent holds open alarms in memory: an operator's acknowledgement made between
    batches must survive the next repeats (the agent writes only its own columns)."""
    fa = agent(engine)
    fa.handle_traps([link_trap("r3", 4, up=False)])
    [alarm] = active(engine)
    with Session(engine) as s:
        acknowledge(s, alarm.id or 0, user="olga", note="known")
    fa.handle_traps([link_trap("r3", 4, up=False)] * 5)
    [after] = active(engine)
    assert (after.id, after.count, after.ack_user, after.ack_note) == (
        alarm.id, 6, "olga", "known")


def test_an_alarm_cleared_by_hand_is_reopened_not_counted_by_a_repeat(engine: Engine) -> None:
    """An operator clears an alarm the agent holds in memory as open: the next report of
    the same problem reopens it as a new transition (the flap window), it is not counted
    as a repeat of an alarm the agent wrongly believes still open."""
    from agents.fault.alarms import clear_alarm

    fa = agent(engine)
    fa.handle_traps([link_trap("r3", 4, up=False)])
    [alarm] = active(engine)
    with Session(engine) as s:
        clear_alarm(s, alarm.id or 0, user="olga", note="false alarm")
    assert active(engine) == []
    fa.handle_traps([link_trap("r3", 4, up=False)])
    [again] = active(engine)
    assert (again.id, again.transitions, again.cleared_at) == (alarm.id, 2, None)
    assert fa.stats.reopened == 1 and fa.stats.repeats == 0
    with Session(engine) as s:
        acts = [(h["action"], h["userId"]) for h in alarm_detail(s, alarm.id or 0)["x_history"]]
    assert acts.index(("cleared", "olga")) < len(acts) - 1  # the reopening came after it
