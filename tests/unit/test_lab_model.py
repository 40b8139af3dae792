"""Unit tests for lab.model (Topology, NodeSpec) and the pure parts of lab.daemons,
lab.runtime and lab.pytest_plugin."""

from __future__ import annotations

import json
import os
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from lab import daemons, pytest_plugin
from lab.daemons import _frr_daemons, required_binaries
from lab.model import Bind, Endpoint, NodeSpec, Role, Topology
from lab.parser import load_topology
from lab.runtime import DestroyReport, Lab, _parse_trap_target, running_labs
from lab.state import STATE_FILE
from topology.errors import LabRuntimeError, LabStateError
from topology.settings import Settings, get_settings

TOPOLOGIES = Path(__file__).resolve().parents[2] / "lab" / "topologies"


@pytest.fixture(scope="module")
def core() -> Topology:
    return load_topology(TOPOLOGIES / "core.clab.yml")


# --------------------------------------------------------------------------- relocate


def test_relocate_keeps_host_offsets(core: Topology) -> None:
    moved = core.relocate("t-core", "172.31.20.0/24")
    assert moved.name == "t-core"
    assert core.name == "core"  # the original is untouched
    assert moved.mgmt.subnet == IPv4Network("172.31.20.0/24")
    assert moved.mgmt.gateway == IPv4Address("172.31.20.1")
    assert moved.nodes["r1"].mgmt_ipv4 == IPv4Address("172.31.20.11")
    assert moved.nodes["vnf1"].mgmt_ipv4 == IPv4Address("172.31.20.31")
    assert moved.nodes["srv1"].mgmt_ipv4 == IPv4Address("172.31.20.111")
    for name, spec in core.nodes.items():
        offset = int(spec.mgmt_ipv4) - int(core.mgmt.subnet.network_address)
        new = moved.nodes[name].mgmt_ipv4
        assert int(new) - int(moved.mgmt.subnet.network_address) == offset
        assert new in moved.mgmt.subnet
    assert core.nodes["r1"].mgmt_ipv4 == IPv4Address("172.20.20.11")


def test_relocate_keeps_everything_else(core: Topology) -> None:
    moved = core.relocate("t-core", IPv4Network("172.31.20.0/24"))
    assert moved.links == core.links
    assert list(moved.nodes) == list(core.nodes)
    assert moved.credentials == core.credentials
    assert moved.path == core.path
    assert moved.mgmt.network != core.mgmt.network
    for name, spec in core.nodes.items():
        other = moved.nodes[name]
        assert (other.role, other.kind, other.image, other.binds, other.startup_config,
                other.exec) == (spec.role, spec.kind, spec.image, spec.binds,
                                spec.startup_config, spec.exec)


def test_relocate_to_larger_subnet(core: Topology) -> None:
    moved = core.relocate("big", "10.99.0.0/16")
    assert moved.nodes["r1"].mgmt_ipv4 == IPv4Address("10.99.0.11")
    assert moved.mgmt.gateway == IPv4Address("10.99.0.1")


@pytest.mark.parametrize("subnet", ["172.31.20.0/25", "172.31.20.0/28"])
def test_relocate_refuses_smaller_subnet(core: Topology, subnet: str) -> None:
    with pytest.raises(ValueError, match="smaller"):
        core.relocate("t-core", subnet)


# --------------------------------------------------------------------------- interfaces, peer


def test_interfaces(core: Topology) -> None:
    assert core.interfaces("r1") == ["eth1", "eth2", "eth3", "eth4"]
    assert core.interfaces("r3") == ["eth1", "eth2", "eth3"]
    assert core.interfaces("sw1") == ["eth1", "eth2", "eth3"]
    assert core.interfaces("cust1") == ["eth1"]
    assert core.interfaces("nope") == []


def test_peer(core: Topology) -> None:
    assert core.peer(Endpoint("r1", "eth3")) == Endpoint("cust1", "eth1")
    assert core.peer(Endpoint("cust1", "eth1")) == Endpoint("r1", "eth3")
    assert core.peer(Endpoint("r2", "eth2")) == Endpoint("r3", "eth1")
    assert core.peer(Endpoint("r1", "eth9")) is None
    assert str(Endpoint("r1", "eth3")) == "r1:eth3"


def test_roles_of_core(core: Topology) -> None:
    assert {n: s.role for n, s in core.nodes.items()} == {
        "r1": Role.ROUTER, "r2": Role.ROUTER, "r3": Role.ROUTER, "sw1": Role.SWITCH,
        "vnf1": Role.VNF, "cust1": Role.HOST, "cust2": Role.HOST, "srv1": Role.HOST}
    assert Role.ROUTER.managed and Role.SWITCH.managed and Role.VNF.managed
    assert not Role.HOST.managed


# --------------------------------------------------------------------------- frr_config


def _spec(**kw: object) -> NodeSpec:
    return NodeSpec(name="r", kind="linux", image="frr", role=Role.ROUTER,
                    mgmt_ipv4=IPv4Address("10.0.0.2"), **kw)  # type: ignore[arg-type]


def test_frr_config_from_core(core: Topology) -> None:
    assert core.nodes["r1"].frr_config == TOPOLOGIES / "core" / "r1.conf"  # a bind
    assert core.nodes["r2"].frr_config == TOPOLOGIES / "core" / "r2.conf"  # startup-config
    assert core.nodes["cust1"].frr_config is None


def test_frr_config_startup_config_wins(tmp_path: Path) -> None:
    spec = _spec(startup_config=tmp_path / "startup.conf",
                 binds=(Bind(tmp_path / "bound.conf", "/etc/frr/frr.conf"),))
    assert spec.frr_config == tmp_path / "startup.conf"


def test_frr_config_from_bind(tmp_path: Path) -> None:
    spec = _spec(binds=(Bind(tmp_path / "daemons", "/etc/frr/daemons"),
                        Bind(tmp_path / "bound.conf", "/etc/frr/frr.conf", "ro")))
    assert spec.frr_config == tmp_path / "bound.conf"


def test_frr_config_none(tmp_path: Path) -> None:
    assert _spec().frr_config is None
    assert _spec(binds=(Bind(tmp_path / "x", "/etc/frr/other.conf"),)).frr_config is None


# --------------------------------------------------------------------------- _frr_daemons


@pytest.fixture
def frr_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake /usr/lib/frr holding every daemon (only installed daemons are started)."""
    d = tmp_path / "frr"
    d.mkdir()
    for name in ("zebra", "staticd", "ospfd", "ospf6d", "bgpd", "isisd", "ripd", "bfdd",
                 "pimd", "ldpd"):
        (d / name).touch()
    monkeypatch.setattr(daemons, "FRR_DIR", d)
    return d


def test_frr_daemons_minimum(frr_dir: Path) -> None:
    assert _frr_daemons("hostname r1\n", None) == ["zebra", "staticd"]
    assert _frr_daemons("", "") == ["zebra", "staticd"]


def test_frr_daemons_ospf(frr_dir: Path) -> None:
    conf = "hostname r1\n!\nrouter ospf\n network 10.0.0.0/8 area 0\n"
    assert _frr_daemons(conf, None) == ["zebra", "staticd", "ospfd"]


def test_frr_daemons_several_sorted_after_zebra(frr_dir: Path) -> None:
    conf = "router ospf6\n!\nrouter bgp 65000\n!\nrouter ospf\n!\nbfd\n"
    assert _frr_daemons(conf, None) == ["zebra", "staticd", "bfdd", "bgpd", "ospf6d", "ospfd"]


def test_frr_daemons_from_daemons_file(frr_dir: Path) -> None:
    daemons_file = "zebra=yes\nbgpd=yes\nospfd=no\n  ldpd = yes\nisisd=yesno\n"
    assert _frr_daemons("hostname r1\n", daemons_file) == ["zebra", "staticd", "bgpd", "ldpd"]


def test_frr_daemons_ignore_indented_and_commented(frr_dir: Path) -> None:
    conf = ("hostname r1\n ! router ospf\n router bgp 65000\n! router isis\n"
            "# router rip\ndescription router ospf\n")
    assert _frr_daemons(conf, None) == ["zebra", "staticd"]
    assert _frr_daemons("hostname r1\n", "#bgpd=yes\n") == ["zebra", "staticd"]


def test_frr_daemons_only_installed(frr_dir: Path) -> None:
    (frr_dir / "bgpd").unlink()
    assert _frr_daemons("router bgp 1\nrouter ospf\n", None) == ["zebra", "staticd", "ospfd"]


def test_frr_daemons_shipped_configs(frr_dir: Path, core: Topology) -> None:
    for name in ("r1", "r2", "r3"):
        path = core.nodes[name].frr_config
        assert path is not None
        # every shipped router runs OSPF and nothing else beyond zebra and staticd
        assert _frr_daemons(path.read_text(), None) == ["zebra", "staticd", "ospfd"]


# --------------------------------------------------------------------------- required_binaries


def test_required_binaries() -> None:
    host = required_binaries(Role.HOST)
    assert "ip" in host and "nsenter" in host
    assert "snmpd" not in host
    router = required_binaries(Role.ROUTER)
    assert {"snmpd", "lldpd", "vtysh", "sshd", "/usr/lib/frr/zebra"} <= set(router)
    assert "netconfd" not in router
    vnf = required_binaries(Role.VNF)
    assert {"snmpd", "netconfd", "netconf-subsystem", "sshd"} <= set(vnf)
    assert "vtysh" not in vnf
    switch = required_binaries(Role.SWITCH)
    assert "snmpd" in switch and "sshd" not in switch


def test_lab_unavailable_not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    reason = pytest_plugin.lab_unavailable()
    assert reason is not None and "root" in reason


def test_lab_unavailable_missing_programs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(pytest_plugin, "which", lambda name: None)
    monkeypatch.setattr(daemons, "FRR_DIR", Path("/nonexistent-frr-dir"))
    reason = pytest_plugin.lab_unavailable()
    assert reason is not None
    assert reason.startswith("missing lab programs: ")
    assert "snmpd" in reason and "netconfd" in reason
    assert "/nonexistent-frr-dir/zebra" in reason


def test_lab_available(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(pytest_plugin, "which", lambda name: f"/usr/bin/{name}")
    assert pytest_plugin.lab_unavailable() is None


# --------------------------------------------------------------------------- _parse_trap_target


def test_trap_target_default(core: Topology) -> None:
    assert _parse_trap_target(None, core) == ("172.20.20.1", 162)
    assert _parse_trap_target("", core) == ("172.20.20.1", 162)
    moved = core.relocate("t-core", "172.31.20.0/24")
    assert _parse_trap_target(None, moved) == ("172.31.20.1", 162)


def test_trap_target_inside_subnet(core: Topology) -> None:
    assert _parse_trap_target("172.20.20.1:1162", core) == ("172.20.20.1", 1162)
    assert _parse_trap_target("172.20.20.200:65535", core) == ("172.20.20.200", 65535)
    assert _parse_trap_target("172.20.20.5", core) == ("172.20.20.5", 162)


@pytest.mark.parametrize("value", ["10.0.0.1:162", "127.0.0.1:1162", "172.20.21.1:162",
                                   "8.8.8.8"])
def test_trap_target_outside_subnet(core: Topology, value: str) -> None:
    with pytest.raises(LabRuntimeError) as info:
        _parse_trap_target(value, core)
    assert "outside the lab's mgmt subnet" in str(info.value)
    assert "172.20.20.0/24" in str(info.value)
    assert info.value.operation == "preflight"
    assert info.value.lab == "core"


@pytest.mark.parametrize("value", ["172.20.20.1:0", "172.20.20.1:65536", "172.20.20.1:-1"])
def test_trap_target_port_out_of_range(core: Topology, value: str) -> None:
    with pytest.raises(LabRuntimeError, match="out of range"):
        _parse_trap_target(value, core)


@pytest.mark.parametrize("value", ["172.20.20.1:abc", "gateway:162", "::1", "[::1]:162",
                                   "fe80::1:162", "172.20.20:162", "172.20.20.1:", ":162",
                                   "172.20.20.1:162:1"])
def test_trap_target_not_ipv4(core: Topology, value: str) -> None:
    with pytest.raises(LabRuntimeError, match="not HOST:PORT with an IPv4 address"):
        _parse_trap_target(value, core)


# --------------------------------------------------------------------------- runtime, no root


@pytest.fixture
def home(tmp_path: Path) -> Settings:
    return get_settings(tmp_path)


def _fake_lab(settings: Settings, name: str) -> None:
    d = settings.labs_dir / name
    d.mkdir(parents=True)
    (d / STATE_FILE).write_text(json.dumps({
        "name": name, "source_file": "x", "created": "now", "subnet": "172.20.20.0/24",
        "gateway": "172.20.20.1", "bridge": f"sb-{name}", "trap_host": "172.20.20.1",
        "trap_port": 162, "nodes": {}}))


def test_running_labs(home: Settings) -> None:
    assert running_labs(home) == []
    _fake_lab(home, "zz")
    _fake_lab(home, "aa")
    (home.labs_dir / "no-state").mkdir()
    assert running_labs(home) == ["aa", "zz"]


def test_lab_load_none_deployed(home: Settings) -> None:
    with pytest.raises(LabStateError, match="no lab is deployed"):
        Lab.load(None, home)


def test_lab_load_by_name(home: Settings) -> None:
    _fake_lab(home, "core")
    lab = Lab.load(None, home)
    assert lab.name == "core"
    assert lab.state.directory == home.labs_dir / "core"
    assert Lab.load("core", home).state.bridge == "sb-core"


def test_lab_load_unknown_name(home: Settings) -> None:
    _fake_lab(home, "core")
    with pytest.raises(LabStateError) as info:
        Lab.load("mini", home)
    assert info.value.lab == "mini"
    assert "no lab named 'mini'" in str(info.value)
    assert "deployed: core" in str(info.value)


def test_lab_load_ambiguous(home: Settings) -> None:
    _fake_lab(home, "core")
    _fake_lab(home, "mini")
    with pytest.raises(LabStateError, match=r"several labs are deployed \(core, mini\)"):
        Lab.load(None, home)


def test_lab_node_unknown(home: Settings) -> None:
    _fake_lab(home, "core")
    with pytest.raises(LabStateError, match="has no node 'r9'"):
        Lab.load("core", home).node("r9")


def test_destroy_report_defaults() -> None:
    a, b = DestroyReport(lab="x"), DestroyReport(lab="y")
    assert (a.processes, a.namespaces, a.links, a.left) == (0, [], [], [])
    a.left.append("pid 1")
    assert b.left == []  # no shared mutable default
