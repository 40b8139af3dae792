"""Unit tests for topology.export and topology.queries on a small inventory built with
topology.reconcile (SQLite in tmp_path)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import Engine
from sqlmodel import Session

from lab.model import Role
from lab.parser import load_topology
from topology.db import dispose_engines, get_engine, init_db, session_scope
from topology.errors import StatusCode, SwitchboardError
from topology.export import TopologySnapshot, load_snapshot, to_clab, to_dot, to_json
from topology.inventory import Device, DiscoveryRun, Interface, Link
from topology.observations import (
    AddressObservation,
    DeviceObservation,
    InterfaceObservation,
    NeighborObservation,
)
from topology.queries import (
    MAX_LIMIT,
    NotFound,
    device_detail,
    list_changes,
    list_devices,
    list_links,
    parse_since,
)
from topology.reconcile import build_links, reconcile

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
SCOPE = [IPv4Network("172.20.20.0/24")]


# --------------------------------------------------------------------------- the inventory


def chassis(n: int) -> str:
    return f"aa:bb:cc:00:00:{n:02x}"


def lldp(local: str, n: int, name: str, port: str) -> NeighborObservation:
    return NeighborObservation(local_interface=local, remote_chassis_id=chassis(n),
                               remote_port_id=port, remote_sys_name=name)


def observe(name: str, n: int, role: str, ifaces: Sequence[str],
            addrs: Sequence[AddressObservation] = (),
            neighbors: Sequence[NeighborObservation] = (),
            descriptions: dict[str, str] | None = None) -> DeviceObservation:
    mgmt = f"172.20.20.{10 + n}"
    descriptions = descriptions or {}
    return DeviceObservation(
        name=name, mgmt_address=mgmt, addresses_answered=(mgmt,), sys_name=name,
        engine_id=f"80001f88{n:04x}", chassis_id=chassis(n), role=role,
        role_reason=f"test says {role}", vendor="FRRouting" if role == "router" else "Linux",
        os_name="FRRouting" if role == "router" else "Linux", os_version="8.4.4",
        planes=("snmp",), credential_profile="lab",
        interfaces=tuple(InterfaceObservation(i, k + 1, descriptions.get(i), None, 6, 1000,
                                              f"02:00:00:00:{n:02x}:{k:02x}", 1500, "up", "up")
                         for k, i in enumerate(ifaces)),
        addresses=(AddressObservation(mgmt, 24, "mgmt0"), *addrs),
        neighbors=tuple(neighbors))


def r1() -> DeviceObservation:
    return observe("r1", 1, "router", ["lo", "mgmt0", "eth1", "eth2"],
                   [AddressObservation("127.0.0.1", 8, "lo"),
                    AddressObservation("10.255.0.1", 32, "lo"),
                    AddressObservation("10.0.12.1", 30, "eth1"),
                    AddressObservation("2001:db8:12::1", 64, "eth1"),
                    AddressObservation("10.0.13.1", 24, "eth2")],
                   [lldp("eth1", 2, "r2", "eth1")], {"eth1": "to r2"})


def r2(**overrides: object) -> DeviceObservation:
    obs = observe("r2", 2, "router", ["lo", "mgmt0", "eth1"],
                  [AddressObservation("10.0.12.2", 30, "eth1")],
                  [lldp("eth1", 1, "r1", "eth1")])
    return replace(obs, **overrides)  # type: ignore[arg-type]


def sw1(**overrides: object) -> DeviceObservation:
    # sw1 sees r1 on its eth1; r1 does not report sw1: a one-sided link
    obs = observe("sw1", 3, "switch", ["mgmt0", "eth1", "eth2"],
                  neighbors=[lldp("eth1", 1, "r1", "eth2")])
    return replace(obs, **overrides)  # type: ignore[arg-type]


def run(engine: Engine, observations: Sequence[DeviceObservation], at: datetime) -> int:
    with session_scope(engine) as session:
        disc = DiscoveryRun(targets="172.20.20.0/24", profiles="lab", started_at=at)
        summary = reconcile(session, disc, observations, scope=SCOPE, now=at)
        build_links(session, disc, observations, device_ids=summary.device_ids, now=at)
        assert disc.id is not None
        return disc.id


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    yield
    dispose_engines()


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = get_engine(f"sqlite:///{tmp_path / 'x.db'}")
    init_db(eng)
    return eng


@pytest.fixture
def inventory(engine: Engine) -> Engine:
    """Run 1 at T0 finds everything; run 2 at T1: r2 upgraded, sw1 read partially."""
    run(engine, [r1(), r2(), sw1()], T0)
    run(engine, [r1(), r2(os_version="9.1"), sw1(status=StatusCode.PARTIAL,
                                                  status_detail="SNMP tables failed: x")], T1)
    return engine


@pytest.fixture
def snap(inventory: Engine) -> TopologySnapshot:
    with Session(inventory) as session:
        return load_snapshot(session)


# --------------------------------------------------------------------------- snapshot, JSON


def test_snapshot_holds_the_three_devices_and_two_links(snap: TopologySnapshot) -> None:
    assert [d.name for d in snap.devices] == ["r1", "r2", "sw1"]
    assert len(snap.links) == 2
    assert sorted(link.confirmed for link in snap.links) == [False, True]


def test_to_json_nodes_and_links(snap: TopologySnapshot) -> None:
    data = json.loads(to_json(snap))
    assert [(n["name"], n["role"], n["mgmt_address"], n["status"]) for n in data["nodes"]] == [
        ("r1", "router", "172.20.20.11", "ok"), ("r2", "router", "172.20.20.12", "ok"),
        ("sw1", "switch", "172.20.20.13", "partial")]
    r2_node = data["nodes"][1]
    assert (r2_node["vendor"], r2_node["os"], r2_node["os_version"]) == ("FRRouting",
                                                                         "FRRouting", "9.1")
    links = sorted((lk["a"], lk["b"], lk["confirmed"], lk["learnt_via"], lk["disagreement"])
                   for lk in data["links"])
    assert links == [("r1:eth1", "r2:eth1", True, "lldp", None),
                     ("r1:eth2", "sw1:eth1", False, "lldp", None)]


def test_missing_device_left_out_of_the_snapshot_unless_asked(inventory: Engine) -> None:
    run(inventory, [r1(), r2()], T1 + timedelta(hours=1))  # sw1 gone
    with Session(inventory) as session:
        present = load_snapshot(session)
        everything = load_snapshot(session, include_missing=True)
    assert [d.name for d in present.devices] == ["r1", "r2"]
    assert [link.confirmed for link in present.links] == [True]
    assert [d.name for d in everything.devices] == ["r1", "r2", "sw1"]
    assert len(everything.links) == 2


# --------------------------------------------------------------------------- dot

_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')


def _check_dot_syntax(dot: str) -> None:
    lines = dot.splitlines()
    assert lines[0] == "graph switchboard {"
    assert lines[-1] == "}"
    assert dot.endswith("}\n")
    for line in lines[1:-1]:
        bare = _QUOTED.sub("ID", line)
        assert '"' not in bare, f"unbalanced quote in {line!r}"
        assert bare.endswith(";"), line
        assert bare.count("[") == bare.count("]") == 1, line
        assert "->" not in bare  # an undirected graph uses --


def test_to_dot_edges_and_styles(snap: TopologySnapshot) -> None:
    dot = to_dot(snap)
    _check_dot_syntax(dot)
    assert '  "r1" [shape=ellipse, ' in dot
    assert '  "sw1" [shape=box, ' in dot
    edges = [line.strip() for line in dot.splitlines() if " -- " in line]
    assert sorted(edges) == [
        '"r1" -- "r2" [taillabel="eth1", headlabel="eth1", style=solid];',
        '"r1" -- "sw1" [taillabel="eth2", headlabel="eth1", style=dashed];']


def _hand_snapshot(names: Sequence[str]) -> TopologySnapshot:
    devices = [Device(id=i + 1, name=name, role="router", mgmt_address=f"10.0.0.{i + 2}")
               for i, name in enumerate(names)]
    ifaces = {10 + i: Interface(id=10 + i, device_id=i + 1, name="eth1")
              for i in range(len(names))}
    links = [Link(id=1, a_interface_id=10, b_interface_id=11, confirmed=True)]
    return TopologySnapshot(devices, ifaces, [], links)


def test_to_dot_escapes_quotes_and_backslashes() -> None:
    dot = to_dot(_hand_snapshot(['core "A"', "edge\\1"]))
    _check_dot_syntax(dot)
    assert '"core \\"A\\"" -- "edge\\\\1"' in dot
    assert '  "core \\"A\\"" [shape=ellipse, label="core \\"A\\"' in dot


def test_to_dot_label_breaks_the_line(snap: TopologySnapshot) -> None:
    dot = to_dot(snap)
    assert 'label="r1\\nrouter 172.20.20.11"' in dot  # one backslash: DOT's line break


# --------------------------------------------------------------------------- clab


def test_to_clab_is_accepted_by_the_lab_parser(snap: TopologySnapshot, tmp_path: Path) -> None:
    path = to_clab(snap, tmp_path / "export", name="Discovered Lab!")
    assert path == tmp_path / "export" / "discovered-lab.clab.yml"
    topo = load_topology(path)
    assert topo.name == "discovered-lab"
    assert list(topo.nodes) == ["r1", "r2", "sw1"]
    assert topo.mgmt.subnet == IPv4Network("172.20.20.0/24")
    # mgmt addresses kept
    assert {n: s.mgmt_ipv4 for n, s in topo.nodes.items()} == {
        "r1": IPv4Address("172.20.20.11"), "r2": IPv4Address("172.20.20.12"),
        "sw1": IPv4Address("172.20.20.13")}
    # roles and images
    assert {n: s.role for n, s in topo.nodes.items()} == {
        "r1": Role.ROUTER, "r2": Role.ROUTER, "sw1": Role.SWITCH}
    assert topo.nodes["r1"].image.startswith("frrouting/frr:")
    assert topo.nodes["r2"].image.startswith("frrouting/frr:")
    assert not topo.nodes["sw1"].image.startswith("frrouting/")
    assert topo.nodes["sw1"].startup_config is None
    # only the confirmed link is exported
    assert [(str(lk.a), str(lk.b)) for lk in topo.links] == [("r1:eth1", "r2:eth1")]


def test_to_clab_router_configs(snap: TopologySnapshot, tmp_path: Path) -> None:
    topo = load_topology(to_clab(snap, tmp_path, name="disc"))
    conf = topo.nodes["r1"].startup_config
    assert conf is not None and conf == (tmp_path / "disc" / "r1.conf").resolve()
    text = conf.read_text()
    assert "hostname r1\n" in text
    assert "interface eth1\n description to r2\n ip address 10.0.12.1/30\n!" in text
    assert "interface eth2\n ip address 10.0.13.1/24\n!" in text
    assert "interface lo\n ip address 10.255.0.1/32\n!" in text
    assert "172.20.20.11" not in text  # the mgmt interface is the lab's, not FRR's
    assert "mgmt0" not in text
    assert "127.0.0.1" not in text
    assert "2001:db8" not in text  # IPv6 is left out of "ip address"
    assert "not reconstructed" in text
    r2_conf = topo.nodes["r2"].frr_config
    assert r2_conf is not None
    r2_text = r2_conf.read_text()
    assert "hostname r2\n" in r2_text and " ip address 10.0.12.2/30\n" in r2_text
    assert not (tmp_path / "disc" / "sw1.conf").exists()


def test_to_clab_without_a_common_24_drops_mgmt(inventory: Engine, tmp_path: Path) -> None:
    moved = r1()
    moved = replace(moved, mgmt_address="192.168.50.11", addresses_answered=("192.168.50.11",),
                    addresses=(AddressObservation("192.168.50.11", 24, "mgmt0"),))
    run(inventory, [moved, r2(), sw1()], T1 + timedelta(hours=1))
    with Session(inventory) as session:
        snap = load_snapshot(session)
    assert [d.mgmt_address for d in snap.devices] == ["192.168.50.11", "172.20.20.12",
                                                      "172.20.20.13"]
    path = to_clab(snap, tmp_path)
    doc = yaml.safe_load(path.read_text())
    assert "mgmt" not in doc
    assert all("mgmt-ipv4" not in node for node in doc["topology"]["nodes"].values())
    load_topology(path)  # still deployable: the lab assigns addresses itself


def test_to_clab_with_fqdn_device_names(engine: Engine, tmp_path: Path) -> None:
    run(engine, [replace(r1(), name="r1.lab.example", sys_name="r1.lab.example"),
                 replace(r2(), neighbors=(lldp("eth1", 1, "r1.lab.example", "eth1"),))], T0)
    with Session(engine) as session:
        snap = load_snapshot(session)
    assert [link.confirmed for link in snap.links] == [True]
    topo = load_topology(to_clab(snap, tmp_path))
    assert len(topo.nodes) == 2 and len(topo.links) == 1


# --------------------------------------------------------------------------- queries


def test_list_devices_paging(inventory: Engine) -> None:
    with Session(inventory) as session:
        first = list_devices(session, limit=2)
        assert [d.name for d in first.items] == ["r1", "r2"]
        assert (first.total, first.offset, first.limit) == (3, 0, 2)
        second = list_devices(session, offset=2, limit=2)
        assert [d.name for d in second.items] == ["sw1"]
        assert (second.total, second.offset, second.limit) == (3, 2, 2)
        beyond = list_devices(session, offset=10)
        assert beyond.items == [] and beyond.total == 3
        assert list_devices(session, limit=0).limit == 1
        assert len(list_devices(session, limit=0).items) == 1
        assert list_devices(session, limit=10**6).limit == MAX_LIMIT


def test_list_devices_filters(inventory: Engine) -> None:
    with Session(inventory) as session:
        routers = list_devices(session, role="router")
        assert [d.name for d in routers.items] == ["r1", "r2"] and routers.total == 2
        partial = list_devices(session, status="partial")
        assert [d.name for d in partial.items] == ["sw1"] and partial.total == 1
        ok_routers = list_devices(session, role="router", status="ok", limit=1)
        assert [d.name for d in ok_routers.items] == ["r1"] and ok_routers.total == 2
        assert list_devices(session, role="vnf").total == 0


def test_list_links_filters(inventory: Engine) -> None:
    with Session(inventory) as session:
        every = list_links(session)
        assert every.total == 2
        assert sorted((lk.a, lk.b, lk.confirmed) for lk in every.items) == [
            ("r1:eth1", "r2:eth1", True), ("r1:eth2", "sw1:eth1", False)]
        confirmed = list_links(session, confirmed=True)
        assert [(lk.a, lk.b) for lk in confirmed.items] == [("r1:eth1", "r2:eth1")]
        unconfirmed = list_links(session, confirmed=False)
        assert [(lk.a, lk.b) for lk in unconfirmed.items] == [("r1:eth2", "sw1:eth1")]
        assert list_links(session, device="r1").total == 2
        assert [(lk.a, lk.b) for lk in list_links(session, device="sw1").items] == [
            ("r1:eth2", "sw1:eth1")]
        assert list_links(session, device="r2", confirmed=False).total == 0
        assert list_links(session, device="sw1", confirmed=False).total == 1
        page = list_links(session, device="r1", limit=1, offset=1)
        assert (len(page.items), page.total) == (1, 2)
        assert list_links(session, device="nobody").total == 0


def test_list_changes_since(inventory: Engine) -> None:
    with Session(inventory) as session:
        everything = list_changes(session)
        assert everything.total > 2
        assert [c.id for c in everything.items] == sorted(c.id for c in everything.items)
        later = list_changes(session, since=T0 + timedelta(minutes=30))
        got = [(c.entity_key, c.attribute, c.old_value, c.new_value) for c in later.items]
        assert got == [("r2", "os_version", "8.4.4", "9.1"), ("sw1", "status", "ok", "partial")]
        assert later.total == 2
        assert all(c.at == T1 for c in later.items)
        # the same moment given with another zone, and as a naive (UTC) ISO time
        for text in ("2025-01-01T14:30:00+02:00", "2025-01-01T12:30:00"):
            assert list_changes(session, since=parse_since(text)).total == 2, text
        # relative to a given now
        assert list_changes(session, since=parse_since("45m", now=T1 + timedelta(
            minutes=30))).total == 2
        assert list_changes(session, since=parse_since("2h", now=T1)).total == everything.total
        assert list_changes(session, since=T1 + timedelta(seconds=1)).total == 0
        assert [c.entity_key for c in list_changes(session, since=T1, device="sw1").items] == [
            "sw1"]
        with pytest.raises(NotFound, match="'ghost'"):
            list_changes(session, device="ghost")


@pytest.mark.parametrize(("text", "ago"), [
    ("90s", timedelta(seconds=90)), ("15m", timedelta(minutes=15)),
    ("1h", timedelta(hours=1)), ("2d", timedelta(days=2)), ("1w", timedelta(weeks=1)),
    (" 15 m ", timedelta(minutes=15)), ("0s", timedelta(0)),
])
def test_parse_since_relative(text: str, ago: timedelta) -> None:
    assert parse_since(text, now=T1) == T1 - ago


def test_parse_since_relative_default_now() -> None:
    before = datetime.now(UTC)
    got = parse_since("15m")
    after = datetime.now(UTC)
    assert before - timedelta(minutes=15) <= got <= after - timedelta(minutes=15)


def test_parse_since_iso() -> None:
    plus2 = timezone(timedelta(hours=2))
    with_zone = parse_since("2025-01-01T14:30:00+02:00")
    assert with_zone == datetime(2025, 1, 1, 12, 30, tzinfo=UTC)
    assert with_zone.utcoffset() == plus2.utcoffset(None)
    naive = parse_since("2025-01-01T12:30:00")
    assert naive == datetime(2025, 1, 1, 12, 30, tzinfo=UTC)
    assert naive.tzinfo is UTC
    assert parse_since("2025-01-01") == datetime(2025, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("text", ["soon", "", "15", "15x", "m15", "-1h", "2025-13-01"])
def test_parse_since_refuses(text: str) -> None:
    with pytest.raises(SwitchboardError, match="--since"):
        parse_since(text)


def test_device_detail(inventory: Engine) -> None:
    with Session(inventory) as session:
        detail = device_detail(session, "r1")
        assert detail.device.name == "r1" and detail.device.role == "router"
        assert [i.name for i in detail.interfaces] == ["lo", "mgmt0", "eth1", "eth2"]
        assert sorted(a.address for a in detail.addresses) == [
            "10.0.12.1", "10.0.13.1", "10.255.0.1", "127.0.0.1", "172.20.20.11",
            "2001:db8:12::1"]
        assert sorted((lk.a, lk.b) for lk in detail.links) == [("r1:eth1", "r2:eth1"),
                                                              ("r1:eth2", "sw1:eth1")]
        assert device_detail(session, "sw1").device.status == "partial"


def test_device_detail_unknown_name(inventory: Engine) -> None:
    with Session(inventory) as session, pytest.raises(NotFound, match="'r9'") as info:
        device_detail(session, "r9")
    assert isinstance(info.value, SwitchboardError)
