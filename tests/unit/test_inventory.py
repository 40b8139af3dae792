"""Unit tests for topology.db, topology.inventory and topology.reconcile (SQLite in tmp_path)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from ipaddress import ip_network
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError
from sqlmodel import Session, col, select

from topology.db import database_url, dispose_engines, get_engine, init_db, session_scope
from topology.errors import StatusCode
from topology.inventory import (
    Change,
    ChangePublic,
    Device,
    DevicePublic,
    DevicesPublic,
    DiscoveryRun,
    HardwareComponent,
    Interface,
    InterfacePublic,
    IpAddress,
    Link,
    link_publics,
)
from topology.observations import (
    AddressObservation,
    DeviceObservation,
    HardwareObservation,
    InterfaceObservation,
    NeighborObservation,
)
from topology.reconcile import LinkResult, ReconcileSummary, build_links, reconcile
from topology.settings import get_settings

SCOPE = [ip_network("172.20.20.0/24")]
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    yield
    dispose_engines()


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = get_engine(f"sqlite:///{tmp_path / 'inv.db'}")
    init_db(eng)
    return eng


# --------------------------------------------------------------------------- builders


def nbr(local: str, sys_name: str | None, port: str | None, *,
        chassis: str | None = None, descr: str | None = None) -> NeighborObservation:
    return NeighborObservation(local_interface=local, remote_chassis_id=chassis,
                               remote_port_id=port, remote_sys_name=sys_name,
                               remote_port_description=descr)


def router(n: int, *, neighbors: Sequence[NeighborObservation] = (),
           mgmt: str | None = None, **overrides: object) -> DeviceObservation:
    name = f"r{n}"
    mgmt = mgmt or f"172.20.20.{10 + n}"
    obs = DeviceObservation(
        name=name, mgmt_address=mgmt, addresses_answered=(mgmt,), sys_name=name,
        sys_object_id="1.3.6.1.4.1.8072.3.2.10", sys_descr="Linux frr",
        engine_id=f"80001f88{n:04x}",
        chassis_id=f"aa:bb:cc:00:00:{n:02x}", vendor="net-snmp", os_name="FRR",
        os_version="9.1", role="router", role_reason="forwarding + routing daemon",
        planes=("snmp",), credential_profile="lab",
        interfaces=(
            InterfaceObservation("eth0", 1, "mgmt", None, 6, 1000, f"02:00:00:00:{n:02x}:00",
                                 1500, "up", "up"),
            InterfaceObservation("eth1", 2, "to-a", None, 6, 1000, f"02:00:00:00:{n:02x}:01",
                                 1500, "up", "up"),
            InterfaceObservation("eth2", 3, "to-b", None, 6, 1000, f"02:00:00:00:{n:02x}:02",
                                 1500, "up", "up"),
        ),
        addresses=(AddressObservation(mgmt, 24, "eth0"),
                   AddressObservation(f"10.0.{n}.1", 30, "eth1"),
                   AddressObservation("127.0.0.1", 8, None)),
        hardware=(HardwareObservation(1, "chassis", "FRR box", "chassis", f"SN{n}"),),
        neighbors=tuple(neighbors),
    )
    return replace(obs, **overrides)  # type: ignore[arg-type]


def run_once(engine: Engine, observations: Sequence[DeviceObservation], *,
             scope: Sequence[object] | None = SCOPE, at: datetime = T0,
             links: bool = False) -> tuple[ReconcileSummary, LinkResult | None, int]:
    with session_scope(engine) as session:
        run = DiscoveryRun(targets="172.20.20.0/24", profiles="lab", started_at=at)
        summary = reconcile(session, run, observations, scope=scope, now=at)  # type: ignore[arg-type]
        link_summary = None
        if links:
            link_summary = build_links(session, run, observations,
                                       device_ids=summary.device_ids, now=at)
        assert run.id is not None
        return summary, link_summary, run.id


def changes(session: Session, run_id: int) -> list[Change]:
    return list(session.exec(select(Change).where(Change.run_id == run_id)
                             .order_by(col(Change.id))).all())


def link_changes(engine: Engine, run_id: int) -> list[tuple[str, str | None, str | None]]:
    with Session(engine) as session:
        return [(c.attribute, c.old_value, c.new_value) for c in changes(session, run_id)
                if c.entity == "link"]


def missing_links(engine: Engine) -> list[Link]:
    with Session(engine) as session:
        return list(session.exec(select(Link).where(col(Link.missing).is_(True))).all())


def device(session: Session, name: str) -> Device:
    return session.exec(select(Device).where(Device.name == name)).one()


# --------------------------------------------------------------------------- database


def test_database_url_default_and_env_override(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWITCHBOARD_DATABASE_URL", raising=False)
    settings = get_settings(tmp_path)
    assert database_url(settings) == f"sqlite:///{tmp_path.resolve() / 'switchboard.db'}"
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", "sqlite:///tmp/x.db")
    assert database_url(settings) == "sqlite:///tmp/x.db"
    assert database_url() == "sqlite:///tmp/x.db"
    # the engine follows the override
    target = tmp_path / "sub" / "x.db"
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", f"sqlite:///{target}")
    eng = get_engine()
    assert eng.url.database == str(target)
    init_db(eng)
    assert target.exists()


def test_engine_cached_and_sqlite_pragmas(engine: Engine, tmp_path: Path) -> None:
    assert get_engine(f"sqlite:///{tmp_path / 'inv.db'}") is engine
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_in_memory_engine_keeps_one_database() -> None:
    eng = get_engine("sqlite://")
    init_db(eng)
    with session_scope(eng) as session:
        session.add(Device(name="x"))
    with session_scope(eng) as session:
        assert device(session, "x").name == "x"


def test_session_scope_rolls_back_on_error(engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        session.add(Device(name="ghost"))
        session.flush()
        raise RuntimeError("boom")
    with session_scope(engine) as session:
        assert session.exec(select(Device)).all() == []


def test_foreign_keys_enforced(engine: Engine) -> None:
    with pytest.raises(Exception, match="FOREIGN KEY"), session_scope(engine) as session:
        session.add(Interface(device_id=999, name="eth0"))


def test_datetimes_are_utc_aware_and_naive_refused(engine: Engine) -> None:
    paris = timezone(timedelta(hours=1))
    with session_scope(engine) as session:
        session.add(Device(name="r1", first_seen=datetime(2025, 1, 1, 13, tzinfo=paris),
                           last_seen=T0))
    with Session(engine) as session:
        stored = device(session, "r1")
        assert stored.first_seen == T0
        assert stored.first_seen.tzinfo is not None
        assert stored.first_seen.utcoffset() == timedelta(0)
    with pytest.raises(StatementError, match="naive"), session_scope(engine) as session:
        session.add(Device(name="naive", last_seen=datetime(2025, 1, 1)))


# --------------------------------------------------------------------------- reconcile


def test_first_run_adds_everything_with_presence_changes(engine: Engine) -> None:
    summary, _, run_id = run_once(engine, [router(1), router(2)])
    assert summary.new == ["r1", "r2"]
    assert summary.changed == summary.unchanged == summary.missing == []
    with Session(engine) as session:
        r1 = device(session, "r1")
        assert (r1.engine_id, r1.planes, r1.status, r1.role) == ("80001f880001", "snmp", "ok",
                                                                  "router")
        assert r1.first_seen == r1.last_seen == T0
        assert r1.last_run_id == run_id
        ifaces = session.exec(select(Interface).where(Interface.device_id == r1.id)).all()
        assert sorted(i.name for i in ifaces) == ["eth0", "eth1", "eth2"]
        addrs = session.exec(select(IpAddress).where(IpAddress.device_id == r1.id)).all()
        eth0 = next(i for i in ifaces if i.name == "eth0")
        mgmt = next(a for a in addrs if a.address == "172.20.20.11")
        assert (mgmt.prefix_length, mgmt.interface_id) == (24, eth0.id)
        assert len(session.exec(select(HardwareComponent)).all()) == 2
        rows = changes(session, run_id)
        assert all(c.attribute == "presence" and (c.old_value, c.new_value) ==
                   ("absent", "present") for c in rows)
        keys = {(c.entity, c.entity_key) for c in rows}
        assert {("device", "r1"), ("interface", "r1:eth1"), ("address", "r1:10.0.1.1"),
                ("hardware", "r1:entity-1"), ("device", "r2")} <= keys
        # 2 devices x (1 device + 3 interfaces + 3 addresses + 1 hardware)
        assert len(rows) == 16
        run = session.get(DiscoveryRun, run_id)
        assert run is not None
        assert (run.devices_new, run.changes_count) == (2, 16)
        assert run.started_at == T0


def test_second_identical_run_changes_nothing(engine: Engine) -> None:
    observed = [router(1, neighbors=[nbr("eth1", "r2", "eth1")]),
                router(2, neighbors=[nbr("eth1", "r1", "eth1")])]
    run_once(engine, observed, links=True)
    summary, links, run_id = run_once(engine, observed, at=T0 + timedelta(hours=1), links=True)
    assert summary.unchanged == ["r1", "r2"]
    assert summary.new == summary.changed == summary.missing == []
    assert summary.changes == []
    assert links is not None and links.unresolved == 0 and len(links.links) == 1
    assert links.links[0].first_seen == T0
    with Session(engine) as session:
        assert changes(session, run_id) == []
        r1 = device(session, "r1")
        assert r1.first_seen == T0
        assert r1.last_seen == T0 + timedelta(hours=1)
        assert r1.identity_rule == "engine-id"
        stamps = [*((r.first_seen, r.last_seen) for r in session.exec(select(Interface))),
                  *((r.first_seen, r.last_seen) for r in session.exec(select(IpAddress))),
                  *((r.first_seen, r.last_seen)
                    for r in session.exec(select(HardwareComponent))),
                  *((r.first_seen, r.last_seen) for r in session.exec(select(Link)))]
        assert len(stamps) == 2 * (3 + 3 + 1) + 1
        assert set(stamps) == {(T0, T0 + timedelta(hours=1))}
    # objects handed back carry the new last_seen too
    assert links.links[0].last_seen == T0 + timedelta(hours=1)


def test_interface_description_and_oper_status_give_exactly_two_changes(
        engine: Engine) -> None:
    run_once(engine, [router(1)])
    first = router(1)
    eth1 = replace(first.interfaces[1], description="to-core", oper_status="down")
    changed = replace(first, interfaces=(first.interfaces[0], eth1, first.interfaces[2]))
    summary, _, run_id = run_once(engine, [changed])
    assert summary.changed == ["r1"]
    with Session(engine) as session:
        rows = changes(session, run_id)
        got = sorted((c.entity, c.entity_key, c.attribute, c.old_value, c.new_value)
                     for c in rows)
        assert got == [("interface", "r1:eth1", "description", "to-a", "to-core"),
                       ("interface", "r1:eth1", "oper_status", "up", "down")]
        assert all(c.run_id == run_id and c.at == T0 and c.device_id == device(session, "r1").id
                   for c in rows)


def test_device_attribute_change_is_one_row_each(engine: Engine) -> None:
    run_once(engine, [router(1)])
    summary, _, _ = run_once(engine, [router(1, os_version="10.0", planes=("snmp", "cli"))])
    assert [(c.attribute, c.old_value, c.new_value) for c in summary.changes] == [
        ("os_version", "9.1", "10.0"), ("planes", "snmp", "snmp,cli")]


def test_same_engine_id_under_another_address_is_one_device(engine: Engine) -> None:
    run_once(engine, [router(1)])
    # seen through its 10.0.1.1 address, with another name and a fresh sysName
    again = router(1, name="10.0.1.1", mgmt_address="10.0.1.1", sys_name="r1-renamed",
                   addresses_answered=("10.0.1.1",))
    summary, _, run_id = run_once(engine, [again], scope=[ip_network("10.0.0.0/8")])
    assert summary.new == []
    with Session(engine) as session:
        devices = session.exec(select(Device)).all()
        assert [d.name for d in devices] == ["r1"]
        r1 = devices[0]
        assert r1.identity_rule is not None and r1.identity_rule.startswith("engine-id")
        # it still holds 172.20.20.11 in IP-MIB: the management address does not flap
        assert r1.mgmt_address == "172.20.20.11"
        assert [(c.attribute, c.new_value) for c in changes(session, run_id)] == [
            ("sys_name", "r1-renamed")]


def test_mgmt_address_moves_when_the_device_no_longer_has_it(engine: Engine) -> None:
    run_once(engine, [router(1)])
    moved = router(1, mgmt="172.20.20.91")  # its addresses now hold .91, not .11
    summary, _, _ = run_once(engine, [moved])
    assert ("device", "mgmt_address", "172.20.20.11", "172.20.20.91") in {
        (c.entity, c.attribute, c.old_value, c.new_value) for c in summary.changes}


def test_hardware_changes_and_missing(engine: Engine) -> None:
    run_once(engine, [router(1)])
    swapped = router(1, hardware=(HardwareObservation(1, "chassis", "FRR box", "chassis", "SN9"),
                                  HardwareObservation(2, "psu", "PSU", "powerSupply",
                                                      parent_index=1)))
    summary, _, _ = run_once(engine, [swapped])
    assert sorted((c.entity_key, c.attribute, c.old_value, c.new_value)
                  for c in summary.changes) == [
        ("r1:entity-1", "serial", "SN1", "SN9"),
        ("r1:entity-2", "presence", "absent", "present")]
    summary, _, _ = run_once(engine, [router(1)])
    assert sorted((c.entity_key, c.attribute, c.new_value) for c in summary.changes) == [
        ("r1:entity-1", "serial", "SN1"), ("r1:entity-2", "presence", "missing")]


def test_identity_falls_back_to_address(engine: Engine) -> None:
    run_once(engine, [router(1)])
    anonymous = router(1, name="host-x", engine_id=None, chassis_id=None, serial=None,
                       sys_name=None, mgmt="10.0.1.1", addresses_answered=("10.0.1.1",))
    summary, _, _ = run_once(engine, [anonymous], scope=[])
    assert summary.new == []
    with Session(engine) as session:
        assert device(session, "r1").identity_rule == "address 10.0.1.1"


def test_loopback_address_never_merges_devices(engine: Engine) -> None:
    run_once(engine, [router(1)])
    other = router(9, engine_id=None, chassis_id=None, sys_name=None, name="h9",
                   mgmt="127.0.0.1", addresses_answered=("127.0.0.1",))
    summary, _, _ = run_once(engine, [other], scope=[])
    assert summary.new == ["h9"]


def test_missing_in_scope_marked_out_of_scope_untouched(engine: Engine) -> None:
    outside = router(3, mgmt="192.168.5.3", addresses_answered=("192.168.5.3",))
    run_once(engine, [router(1), router(2), outside], scope=None)
    summary, _, run_id = run_once(engine, [router(1)])
    assert summary.missing == ["r2"]
    with Session(engine) as session:
        r2, r3 = device(session, "r2"), device(session, "r3")
        assert r2.status == "missing"
        assert r3.status == "ok"
        assert r3.last_run_id != run_id
        assert [(c.entity_key, c.attribute, c.old_value, c.new_value)
                for c in changes(session, run_id)] == [("r2", "presence", "present", "missing")]
        # nothing deleted, interfaces of a missing device untouched
        ifaces = session.exec(select(Interface).where(Interface.device_id == r2.id)).all()
        assert len(ifaces) == 3 and not any(i.missing for i in ifaces)
    # missing once is logged once
    summary, _, run_id = run_once(engine, [router(1)])
    assert summary.missing == [] and summary.changes == []
    # it comes back
    summary, _, run_id = run_once(engine, [router(1), router(2)])
    assert summary.changed == ["r2"]
    assert [(c.attribute, c.old_value, c.new_value) for c in summary.changes] == [
        ("presence", "missing", "present")]


def test_default_scope_is_the_runs_targets(engine: Engine) -> None:
    run_once(engine, [router(1), router(2)])
    with session_scope(engine) as session:
        outside = DiscoveryRun(targets="192.168.9.0/24, lab:core")
        assert reconcile(session, outside, [router(1)], now=T0).missing == []
    with session_scope(engine) as session:
        inside = DiscoveryRun(targets="192.168.9.0/24, lab:core,172.20.20.12")
        summary = reconcile(session, inside, [router(1)], now=T0)
        assert summary.missing == ["r2"]
        assert (inside.devices_missing, inside.devices_unchanged) == (1, 1)


def test_failed_observation_updates_status_only(engine: Engine) -> None:
    run_once(engine, [router(1)])
    timeout = DeviceObservation(name="172.20.20.11", mgmt_address="172.20.20.11",
                                status=StatusCode.TIMEOUT, status_detail="no answer, 3 retries")
    summary, _, run_id = run_once(engine, [timeout])
    assert summary.failed == 1
    assert summary.missing == [] and summary.new == []
    with Session(engine) as session:
        r1 = device(session, "r1")
        assert (r1.status, r1.status_detail, r1.sys_name) == ("timeout", "no answer, 3 retries",
                                                              "r1")
        assert r1.last_seen == T0
        assert [(c.attribute, c.old_value, c.new_value) for c in changes(session, run_id)] == [
            ("status", "ok", "timeout")]
        assert not any(i.missing for i in session.exec(select(Interface)).all())


def test_failed_observation_of_unknown_device_creates_nothing(engine: Engine) -> None:
    failed = DeviceObservation(name="10.9.9.9", mgmt_address="10.9.9.9",
                               status=StatusCode.AUTH_FAILED)
    summary, _, _ = run_once(engine, [failed])
    assert summary.failed == 1 and summary.new == []
    with Session(engine) as session:
        assert session.exec(select(Device)).all() == []


def test_interface_and_address_gone_marked_missing_not_deleted(engine: Engine) -> None:
    run_once(engine, [router(1)])
    first = router(1)
    fewer = replace(first, interfaces=first.interfaces[:2],
                    addresses=(*first.addresses[:1], AddressObservation("10.0.1.5", 30, "eth1")))
    summary, _, _ = run_once(engine, [fewer])
    got = sorted((c.entity, c.entity_key, c.old_value, c.new_value) for c in summary.changes)
    assert got == [("address", "r1:10.0.1.1", "present", "missing"),
                   ("address", "r1:10.0.1.5", "absent", "present"),
                   ("address", "r1:127.0.0.1", "present", "missing"),
                   ("interface", "r1:eth2", "present", "missing")]
    with Session(engine) as session:
        eth2 = session.exec(select(Interface).where(Interface.name == "eth2")).one()
        assert eth2.missing
    # and back again
    summary, _, _ = run_once(engine, [first])
    assert ("interface", "r1:eth2", "missing", "present") in {
        (c.entity, c.entity_key, c.old_value, c.new_value) for c in summary.changes}


def test_partial_observation_keeps_what_it_did_not_read(engine: Engine) -> None:
    run_once(engine, [router(1)])
    partial = router(1, status=StatusCode.PARTIAL, os_version=None, role="unknown",
                     interfaces=router(1).interfaces[:1], addresses=(), hardware=())
    summary, _, _ = run_once(engine, [partial])
    assert [(c.attribute, c.new_value) for c in summary.changes] == [("status", "partial")]
    with Session(engine) as session:
        r1 = device(session, "r1")
        assert (r1.os_version, r1.role) == ("9.1", "router")
        assert not any(i.missing for i in session.exec(select(Interface)).all())


def test_interface_renamed_with_same_if_index(engine: Engine) -> None:
    run_once(engine, [router(1)])
    first = router(1)
    renamed = replace(first, interfaces=(first.interfaces[0],
                                         replace(first.interfaces[1], name="ens1"),
                                         first.interfaces[2]),
                      addresses=(first.addresses[0], AddressObservation("10.0.1.1", 30, "ens1"),
                                 first.addresses[2]))
    summary, _, _ = run_once(engine, [renamed])
    assert [(c.entity_key, c.attribute, c.old_value, c.new_value) for c in summary.changes] == [
        ("r1:ens1", "name", "eth1", "ens1")]


def test_name_taken_by_another_device_is_disambiguated(engine: Engine) -> None:
    run_once(engine, [router(1)])
    imposter = router(5, name="r1", sys_name="other", mgmt="172.20.20.99",
                      addresses_answered=("172.20.20.99",), addresses=())
    summary, _, _ = run_once(engine, [router(1), imposter])
    assert summary.new == ["r1@172.20.20.99"]


# --------------------------------------------------------------------------- links


def link_rows(session: Session) -> list[Link]:
    return list(session.exec(select(Link).order_by(col(Link.id))).all())


def test_both_ends_reporting_make_one_confirmed_link(engine: Engine) -> None:
    r1 = router(1, neighbors=[nbr("eth1", "r2", "eth1")])
    r2 = router(2, neighbors=[nbr("eth1", "r1", "eth1")])
    _, links, run_id = run_once(engine, [r1, r2], links=True)
    assert links is not None and len(links.links) == 1 and links.unresolved == 0
    with Session(engine) as session:
        rows = link_rows(session)
        assert len(rows) == 1
        link = rows[0]
        assert link.a_interface_id < link.b_interface_id
        assert link.confirmed and link.disagreement is None and not link.missing
        public = link_publics(session, rows)[0]
        assert {public.a, public.b} == {"r1:eth1", "r2:eth1"}
        link_changes = [c for c in changes(session, run_id) if c.entity == "link"]
        assert [(c.entity_key, c.attribute, c.new_value) for c in link_changes] == [
            (f"{public.a}--{public.b}", "presence", "present")]
        run = session.get(DiscoveryRun, run_id)
        assert run is not None and run.links_count == 1


def test_one_side_reporting_is_unconfirmed(engine: Engine) -> None:
    r1 = router(1, neighbors=[nbr("eth1", "r2", "eth1")])
    _, links, _ = run_once(engine, [r1, router(2)], links=True)
    assert links is not None
    assert [link.confirmed for link in links.links] == [False]
    assert links.links[0].disagreement is None


def test_remote_resolved_by_chassis_id_and_mac(engine: Engine) -> None:
    # chassis id spelled differently, port id given as the remote interface's MAC
    r1 = router(1, neighbors=[nbr("eth1", None, "0200.0000.0201", chassis="AA-BB-CC-00-00-02")])
    _, links, _ = run_once(engine, [r1, router(2)], links=True)
    assert links is not None and len(links.links) == 1
    with Session(engine) as session:
        public = link_publics(session, links.links)[0]
        assert {public.a, public.b} == {"r1:eth1", "r2:eth1"}


def test_disagreement_is_flagged(engine: Engine) -> None:
    r1 = router(1, neighbors=[nbr("eth2", "r3", "eth2")])
    r2 = router(2)
    r3 = router(3, neighbors=[nbr("eth2", "r2", "eth9")])  # eth9 does not exist
    _, links, _ = run_once(engine, [r1, r2, r3], links=True)
    assert links is not None
    assert links.unresolved == 1  # r3's report names an interface r2 does not have
    assert len(links.links) == 1
    link = links.links[0]
    assert not link.confirmed
    assert link.disagreement == "r1:eth2 says r3:eth2 but r3:eth2 sees r2:eth9"
    with Session(engine) as session:
        assert len(session.exec(select(Device)).all()) == 3  # nothing invented


def test_unresolvable_neighbours_are_counted_not_invented(engine: Engine) -> None:
    r1 = router(1, neighbors=[nbr("eth1", "stranger", "ge-0/0/0", chassis="de:ad:be:ef:00:01"),
                              nbr("eth7", "r2", "eth1")])  # no local eth7
    _, links, run_id = run_once(engine, [r1, router(2)], links=True)
    assert links is not None and links.links == [] and links.unresolved == 2
    with Session(engine) as session:
        assert sorted(d.name for d in session.exec(select(Device)).all()) == ["r1", "r2"]
        run = session.get(DiscoveryRun, run_id)
        assert run is not None and run.neighbors_unresolved == 2


def test_link_disappearing_is_missing_with_change_then_back(engine: Engine) -> None:
    r1 = router(1, neighbors=[nbr("eth1", "r2", "eth1")])
    r2 = router(2, neighbors=[nbr("eth1", "r1", "eth1")])
    run_once(engine, [r1, r2], links=True)
    # one side stops reporting: still seen, no longer confirmed
    _, links, run_id = run_once(engine, [r1, router(2)], links=True)
    assert links is not None and len(links.links) == 1
    assert link_changes(engine, run_id) == [("confirmed", "true", "false")]
    # nobody reports it
    _, links, run_id = run_once(engine, [router(1), router(2)], links=True)
    assert links is not None and links.links == []
    assert link_changes(engine, run_id) == [("presence", "present", "missing")]
    assert len(missing_links(engine)) == 1
    with Session(engine) as session:
        assert len(link_rows(session)) == 1  # flagged, not deleted
        run = session.get(DiscoveryRun, run_id)
        assert run is not None and run.links_count == 0
    # reported again
    _, links, run_id = run_once(engine, [r1, r2], links=True)
    assert sorted(link_changes(engine, run_id)) == [
        ("confirmed", "false", "true"), ("presence", "missing", "present")]
    assert missing_links(engine) == []


def test_link_not_missing_when_its_devices_were_not_read(engine: Engine) -> None:
    r1 = router(1, neighbors=[nbr("eth1", "r2", "eth1")])
    r2 = router(2, neighbors=[nbr("eth1", "r1", "eth1")])
    run_once(engine, [r1, r2], links=True)
    timeouts = [DeviceObservation(name=f"r{n}", mgmt_address=f"172.20.20.1{n}",
                                  status=StatusCode.TIMEOUT) for n in (1, 2)]
    _, links, run_id = run_once(engine, timeouts, links=True)
    assert links is not None and links.links == []
    assert link_changes(engine, run_id) == [] and missing_links(engine) == []


def test_build_links_without_device_ids_matches_again(engine: Engine) -> None:
    r1 = router(1, neighbors=[nbr("eth1", "r2", "eth1")])
    r2 = router(2, neighbors=[nbr("eth1", "r1", "eth1")])
    with session_scope(engine) as session:
        run = DiscoveryRun(targets="172.20.20.0/24")
        reconcile(session, run, [r1, r2], now=T0)
        links, unresolved = build_links(session, run, [r1, r2], now=T0)
        assert [link.confirmed for link in links] == [True] and unresolved == 0


# --------------------------------------------------------------------------- public models


def test_public_models_serialise(engine: Engine) -> None:
    r1 = router(1, neighbors=[nbr("eth1", "r2", "eth1")])
    r2 = router(2, neighbors=[nbr("eth1", "r1", "eth1")])
    run_once(engine, [r1, r2], links=True)
    with Session(engine) as session:
        dev = DevicePublic.model_validate(device(session, "r1"))
        data = json.loads(dev.model_dump_json())
        assert data["name"] == "r1" and data["engine_id"] == "80001f880001"
        assert data["first_seen"].endswith("Z") or data["first_seen"].endswith("+00:00")
        page = DevicesPublic(data=[dev], count=1)
        assert json.loads(page.model_dump_json())["count"] == 1
        iface = InterfacePublic.model_validate(session.exec(select(Interface)).first())
        assert json.loads(iface.model_dump_json())["speed_mbps"] == 1000
        link = link_publics(session, link_rows(session))[0]
        assert json.loads(link.model_dump_json())["a"] in ("r1:eth1", "r2:eth1")
        change = ChangePublic.model_validate(session.exec(select(Change)).first())
        assert json.loads(change.model_dump_json())["attribute"] == "presence"
