"""Unit tests for agents.discovery.classify (role rules, platforms) and the discovery
agent's pure helpers (identity merging, observations, address filtering, lab targets)."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from agents.discovery.agent import (
    SILENT,
    AddressResult,
    _capabilities_seen,
    _inventory_address,
    _observation,
    lab_targets,
    merge_by_identity,
)
from agents.discovery.classify import (
    DeviceEvidence,
    Platform,
    RoleRules,
    identify_platform,
    load_role_rules,
)
from collectors.netconf import NetconfFacts, NetconfInterface, NetconfSystem
from collectors.snmp_facts import (
    InterfaceFacts,
    IpAddressFacts,
    LldpLocal,
    LldpNeighbor,
    SnmpFacts,
    SystemFacts,
)
from topology.errors import ConfigError, StatusCode

FRR_DESCR = "FRRouting 8.4.4 router r1 on Linux 6.18.44-fc-v669 (switchboard lab)"
SWITCH_DESCR = "Linux bridge switch sw1 on Linux 6.1.0-13-amd64 (switchboard lab)"
VNF_DESCR = "yuma123 netconfd VNF vnf1 on Linux 6.1.0 (switchboard lab)"
IOS_DESCR = ("Cisco IOS Software, C2960 Software (C2960-LANBASEK9-M), Version 12.2(55)SE7, "
             "RELEASE SOFTWARE (fc1)\r\nTechnical Support: http://www.cisco.com/techsupport")
NET_SNMP_OID = "1.3.6.1.4.1.8072.3.2.10"


@pytest.fixture(scope="module")
def shipped() -> RoleRules:
    return load_role_rules()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- role rules


@pytest.mark.parametrize(("evidence", "role", "reason"), [
    pytest.param(DeviceEvidence(lldp_capabilities=frozenset({"router", "bridge"})),
                 "router", "LLDP neighbours see the router capability enabled", id="lldp-router"),
    pytest.param(DeviceEvidence(netconf=True, sys_services=72),
                 "vnf", "answers NETCONF on port 830 and does not route", id="netconf"),
    # the bridge rule comes before the sysServices rules: layer 3 in sysServices loses
    pytest.param(DeviceEvidence(lldp_capabilities=frozenset({"bridge"}), sys_services=78),
                 "switch", "LLDP neighbours see the bridge capability enabled", id="lldp-bridge"),
    pytest.param(DeviceEvidence(sys_services=78),
                 "router", "sysServices 78 has the network layer (3)", id="services-l3"),
    pytest.param(DeviceEvidence(sys_services=6),
                 "router", "sysServices 6 has the network layer (3)", id="services-l2-l3"),
    pytest.param(DeviceEvidence(sys_services=2),
                 "switch", "sysServices 2 has only the physical and datalink layers",
                 id="services-l2"),
    pytest.param(DeviceEvidence(sys_services=3),
                 "switch", "sysServices 3 has only the physical and datalink layers",
                 id="services-l1-l2"),
    pytest.param(DeviceEvidence(sys_services=72),  # net-snmp's default: layers 4 and 7
                 "host", "no routing, switching or NETCONF evidence", id="host-72"),
    pytest.param(DeviceEvidence(sys_services=66),  # layer 2 and 7: not *only* 1-2
                 "host", "no routing, switching or NETCONF evidence", id="host-66"),
    pytest.param(DeviceEvidence(sys_services=0),  # no layer at all is not "only 1 and 2"
                 "host", "no routing, switching or NETCONF evidence", id="host-0"),
    pytest.param(DeviceEvidence(),
                 "host", "no routing, switching or NETCONF evidence", id="host-nothing"),
])
def test_each_shipped_rule(shipped: RoleRules, evidence: DeviceEvidence, role: str,
                           reason: str) -> None:
    assert shipped.decide(evidence) == (role, reason)


def test_shipped_rules_are_read_from_the_package(shipped: RoleRules) -> None:
    assert shipped.source.endswith("agents/discovery/data/roles.yaml")
    assert [r.role for r in shipped.rules] == ["router", "vnf", "switch", "router", "switch",
                                               "host"]


def test_router_capability_beats_netconf(shipped: RoleRules) -> None:
    both = DeviceEvidence(netconf=True, lldp_capabilities=frozenset({"router"}),
                          sys_services=72)
    assert shipped.decide(both)[0] == "router"


def test_netconf_without_router_capability_is_vnf_even_with_layer_3(
        shipped: RoleRules) -> None:
    for caps in (frozenset(), frozenset({"bridge"}), frozenset({"station"})):
        ev = DeviceEvidence(netconf=True, sys_services=78, lldp_capabilities=caps)
        assert shipped.decide(ev)[0] == "vnf", caps


def test_user_rules_file_overrides_the_shipped_one(tmp_path: Path) -> None:
    path = write(tmp_path / "roles.yaml", """
rules:
  - role: firewall
    when: {sys_descr_regex: "(?i)firewall"}
    reason: "sysDescr {sys_descr!r} says so"
  - role: router
    when: {sys_object_id_prefix: 1.3.6.1.4.1.9.1, sys_services_layer: 3}
    reason: "Cisco {sys_object_id} with sysServices {sys_services}"
  - role: edge
    when: {lldp_capability: Router, netconf: false}
    reason: "caps {lldp_capabilities}"
""")
    rules = load_role_rules(path)
    assert rules.source == str(path)
    assert len(rules.rules) == 3
    assert rules.decide(DeviceEvidence(sys_descr="ACME Firewall 3.1")) == (
        "firewall", "sysDescr 'ACME Firewall 3.1' says so")
    assert rules.decide(DeviceEvidence(sys_object_id="1.3.6.1.4.1.9.1.1208",
                                       sys_services=6)) == (
        "router", "Cisco 1.3.6.1.4.1.9.1.1208 with sysServices 6")
    # every condition of a rule must hold: the same OID without layer 3 is not a router
    assert rules.decide(DeviceEvidence(sys_object_id="1.3.6.1.4.1.9.1.1208",
                                       sys_services=2)) == ("unknown", "no role rule matched")
    # capability names compare in lower case; the capabilities are joined sorted
    assert rules.decide(DeviceEvidence(lldp_capabilities=frozenset({"router", "bridge"}))) == (
        "edge", "caps bridge,router")
    assert rules.decide(DeviceEvidence(netconf=True,
                                       lldp_capabilities=frozenset({"router"})))[0] == "unknown"
    # the shipped rules are replaced, not extended: a plain layer-3 box matches nothing
    assert rules.decide(DeviceEvidence(sys_services=78)) == ("unknown", "no role rule matched")


def test_rules_file_without_role_names_the_rule(tmp_path: Path) -> None:
    path = write(tmp_path / "roles.yaml", """
rules:
  - role: router
    when: {netconf: false}
  - when: {netconf: true}
    reason: "forgot the role"
""")
    with pytest.raises(ConfigError, match=r"rule 2\b") as info:
        load_role_rules(path)
    assert str(path) in str(info.value)
    assert "role" in str(info.value)


def test_rules_file_with_unknown_condition_names_rule_and_condition(tmp_path: Path) -> None:
    path = write(tmp_path / "roles.yaml", """
rules:
  - role: router
    when: {lldp_capability: router}
  - role: switch
    when: {lldp_capability: bridge}
  - role: vnf
    when: {netconf: true, lldp_capabilty: station}
""")
    with pytest.raises(ConfigError, match=r"rule 3\b") as info:
        load_role_rules(path)
    assert "lldp_capabilty" in str(info.value)
    assert "rule 1" not in str(info.value) and "rule 2" not in str(info.value)


def test_rules_file_unreadable_or_not_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml"):
        load_role_rules(tmp_path / "nope.yaml")
    bad = write(tmp_path / "bad.yaml", "rules: [ {role: router\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_role_rules(bad)


def test_empty_rules_file_decides_unknown(tmp_path: Path) -> None:
    rules = load_role_rules(write(tmp_path / "empty.yaml", ""))
    assert rules.rules == ()
    assert rules.decide(DeviceEvidence(sys_services=78)) == ("unknown", "no role rule matched")


# Malformed user rules files that crash with a raw exception instead of a ConfigError,
# some of them only later, in decide(), i.e. in the middle of a discovery run after every
# address has been probed.
@pytest.mark.parametrize("text", [
    pytest.param("- role: router\n", id="top-level-list"),
    pytest.param("rules:\n  - router\n", id="rule-not-a-mapping"),
    pytest.param("rules:\n  - role: router\n    when: [netconf]\n", id="when-a-list"),
    pytest.param("rules:\n  - role: switch\n    when: {sys_services_only: 2}\n",
                 id="only-not-a-list"),
    pytest.param("rules:\n  - role: fw\n    when: {sys_descr_regex: '('}\n", id="bad-regex"),
    pytest.param("rules:\n  - role: host\n    reason: 'seen {sysname}'\n",
                 id="unknown-placeholder"),
])
def test_malformed_rules_file_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "roles.yaml", text)
    with pytest.raises(ConfigError):
        rules = load_role_rules(path)
        rules.decide(DeviceEvidence(sys_descr="x", sys_services=2))


# --------------------------------------------------------------------------- platforms


@pytest.mark.parametrize(("descr", "oid", "expected"), [
    pytest.param(FRR_DESCR, NET_SNMP_OID, Platform("FRRouting", "FRRouting", "8.4.4"),
                 id="frr"),
    pytest.param(SWITCH_DESCR, NET_SNMP_OID, Platform("Linux", "Linux", "6.1.0-13-amd64"),
                 id="linux-bridge"),
    pytest.param(VNF_DESCR, NET_SNMP_OID, Platform("yuma123", "Linux", "6.1.0"), id="yuma123"),
    pytest.param(IOS_DESCR, "1.3.6.1.4.1.9.1.1208", Platform("Cisco", "IOS", "12.2(55)SE7"),
                 id="cisco-ios"),
    pytest.param("Arista Networks EOS version 4.28.3M running on an Arista DCS-7050SX", "",
                 Platform("Arista", "EOS", "4.28.3M"), id="arista"),
    pytest.param("Linux h1 5.10.0-8-amd64 #1 SMP Debian x86_64", NET_SNMP_OID,
                 Platform("net-snmp", "Linux", "5.10.0-8-amd64"), id="plain-linux"),
    pytest.param("", NET_SNMP_OID, Platform("net-snmp", "Linux", None), id="oid-only"),
    pytest.param("Acme Widget OS 1.0", "1.3.6.1.4.1.99999.1", Platform(), id="unknown"),
    pytest.param("", "", Platform(), id="nothing"),
])
def test_identify_platform(descr: str, oid: str, expected: Platform) -> None:
    assert identify_platform(descr, oid) == expected


def test_identify_platform_unknown_is_all_none() -> None:
    p = identify_platform("something else entirely", "")
    assert (p.vendor, p.os_name, p.os_version, p.model) == (None, None, None, None)


def test_identify_platform_custom_table_first_match_and_model() -> None:
    table = [
        {"sys_descr": r"^Acme (?P<model>\S+) v(?P<version>\S+)", "vendor": "Acme",
         "os_name": "AcmeOS"},
        {"sys_descr": r"^Acme", "vendor": "Acme-generic"},
        {"sys_object_id": "1.3.6.1.4.1.4242", "vendor": "Oid Corp",
         "version_from": r"release (?P<version>\d+)"},
        {"vendor": "no selector: never matches"},
    ]
    assert identify_platform("Acme X9 v2.3.1", "", table) == Platform("Acme", "AcmeOS", "2.3.1",
                                                                     "X9")
    assert identify_platform("Acme something", "", table) == Platform("Acme-generic")
    assert identify_platform("box release 7", "1.3.6.1.4.1.4242.1", table) == Platform(
        "Oid Corp", None, "7")
    assert identify_platform("box", "1.3.6.1.4.1.4242.1", table) == Platform("Oid Corp")
    assert identify_platform("box", "1.3.6.1.4.1.1", table) == Platform()


# --------------------------------------------------------------------------- agent helpers


def system(name: str = "r1", descr: str = FRR_DESCR, services: int | None = 72) -> SystemFacts:
    return SystemFacts(descr=descr, object_id=NET_SNMP_OID, uptime_s=100.0, contact="",
                       name=name, location="", services=services)


def neighbor(local: str, chassis: str, port: str, caps: Sequence[str],
             sys_name: str = "") -> LldpNeighbor:
    return LldpNeighbor(local_port=local, chassis_id=chassis, chassis_id_subtype="macAddress",
                        port_id=port, port_id_subtype="interfaceName", port_descr="",
                        sys_name=sys_name, sys_descr="", capabilities_enabled=list(caps),
                        mgmt_address=None)


def snmp(name: str = "r1", *, engine_id: str | None = "80001f8803aabbcc000001",
         chassis: str | None = "aa:bb:cc:00:00:01", descr: str = FRR_DESCR,
         services: int | None = 72, interfaces: Sequence[InterfaceFacts] = (),
         addresses: Sequence[IpAddressFacts] = (),
         neighbors: Sequence[LldpNeighbor] = ()) -> SnmpFacts:
    return SnmpFacts(
        system=system(name, descr, services), engine_id=engine_id,
        interfaces=list(interfaces), addresses=list(addresses), entities=[],
        lldp_local=LldpLocal(chassis, "macAddress", {}, name) if chassis else None,
        lldp_neighbors=list(neighbors), partial=[])


def result(address: str, facts: SnmpFacts | None = None, *,
           status: StatusCode = StatusCode.OK, netconf: NetconfFacts | None = None,
           ) -> AddressResult:
    return AddressResult(address, status, profile="lab", snmp=facts, netconf=netconf)


def netconf(hostname: str | None = "vnf1") -> NetconfFacts:
    return NetconfFacts(
        capabilities=("urn:ietf:params:netconf:base:1.1",), modules=(),
        supports_candidate=True, supports_confirmed_commit=False, supports_validate=True,
        interfaces=(NetconfInterface("eth1", "ethernetCsmacd", "up", "up", "02:00:00:00:09:01",
                                     10_000_000_000, None, None, None, None),),
        system=NetconfSystem(hostname=hostname, os_name="Linux", os_release="6.1.0"))


def test_merge_same_engine_id_is_one_device_naming_both_addresses() -> None:
    a = result("172.20.20.11", snmp("r1"))
    b = result("10.0.12.1", snmp("r1-other-name", chassis="aa:bb:cc:00:00:99"))
    merged = merge_by_identity([a, b])
    assert len(merged) == 1
    keep, answered, rule = merged[0]
    assert keep is a
    assert answered == ["172.20.20.11", "10.0.12.1"]
    assert rule == ("engine-id 80001f8803aabbcc000001: answered on 172.20.20.11, "
                    "10.0.12.1")


def test_merge_keeps_the_result_that_answered_fully() -> None:
    partial = result("172.20.20.11", snmp("r1"), status=StatusCode.PARTIAL)
    full = result("10.0.12.1", snmp("r1"))
    [(keep, answered, rule)] = merge_by_identity([partial, full])
    assert keep is full
    assert answered == ["172.20.20.11", "10.0.12.1"]
    assert rule is not None and "172.20.20.11" in rule and "10.0.12.1" in rule


def test_merge_keeps_distinct_engine_ids_apart() -> None:
    # same sysName and chassis id, different engine ids: the engine id decides
    a = result("172.20.20.11", snmp("r1", engine_id="80001f8801"))
    b = result("172.20.20.12", snmp("r1", engine_id="80001f8802"))
    merged = merge_by_identity([a, b])
    assert [(k.address, ans, rule) for k, ans, rule in merged] == [
        ("172.20.20.11", ["172.20.20.11"], None), ("172.20.20.12", ["172.20.20.12"], None)]


def test_merge_falls_back_to_chassis_id_then_sys_name() -> None:
    by_chassis = [result("172.20.20.11", snmp("r1", engine_id=None)),
                  result("10.0.12.1", snmp("other", engine_id=None))]
    [(_, answered, rule)] = merge_by_identity(by_chassis)
    assert answered == ["172.20.20.11", "10.0.12.1"]
    assert rule == "chassis-id aa:bb:cc:00:00:01: answered on 172.20.20.11, 10.0.12.1"

    by_name = [result("172.20.20.13", snmp("sw1", engine_id=None, chassis=None)),
               result("10.0.0.13", snmp("sw1", engine_id=None, chassis=None)),
               result("10.0.0.14", snmp("sw2", engine_id=None, chassis=None))]
    merged = merge_by_identity(by_name)
    assert [(ans, rule) for _, ans, rule in merged] == [
        (["172.20.20.13", "10.0.0.13"], "sys-name sw1: answered on 172.20.20.13, 10.0.0.13"),
        (["10.0.0.14"], None)]


def test_merge_netconf_hostname_then_address() -> None:
    nc = [result("172.20.20.21", netconf=netconf("vnf1")),
          result("10.0.9.1", netconf=netconf("vnf1")),
          result("172.20.20.22", netconf=netconf(None)),
          result("172.20.20.23", netconf=netconf(None))]
    merged = merge_by_identity(nc)
    assert [(ans, rule) for _, ans, rule in merged] == [
        (["172.20.20.21", "10.0.9.1"], "sys-name vnf1: answered on 172.20.20.21, 10.0.9.1"),
        (["172.20.20.22"], None), (["172.20.20.23"], None)]


@pytest.mark.parametrize(("text", "kept"), [
    ("10.0.0.1", True), ("172.20.20.11", True), ("2001:db8::1", True),
    ("127.0.0.1", False), ("127.1.2.3", False), ("::1", False), ("fe80::1", False),
    ("fe80::a8bb:ccff:fe00:1", False), ("169.254.1.1", False), ("0.0.0.0", False),
    ("::", False), ("not-an-address", False), ("", False),
])
def test_inventory_address(text: str, kept: bool) -> None:
    assert _inventory_address(text) is kept


def test_lab_targets_leave_out_gateway_network_and_broadcast() -> None:
    targets = lab_targets(IPv4Network("172.20.20.0/24"), IPv4Address("172.20.20.1"))
    assert len(targets) == 253
    assert targets[0] == IPv4Network("172.20.20.2/32")
    assert targets[-1] == IPv4Network("172.20.20.254/32")
    assert all(t.prefixlen == 32 for t in targets)
    hosts = {t.network_address for t in targets}
    for left_out in ("172.20.20.0", "172.20.20.1", "172.20.20.255"):
        assert IPv4Address(left_out) not in hosts


def test_lab_targets_gateway_anywhere() -> None:
    targets = lab_targets(IPv4Network("10.1.0.0/29"), IPv4Address("10.1.0.3"))
    assert [str(t) for t in targets] == ["10.1.0.1/32", "10.1.0.2/32", "10.1.0.4/32",
                                         "10.1.0.5/32", "10.1.0.6/32"]


def test_silent_statuses() -> None:
    assert {StatusCode.TIMEOUT, StatusCode.REFUSED, StatusCode.UNREACHABLE} == SILENT
    assert StatusCode.AUTH_FAILED not in SILENT
    assert StatusCode.PROTOCOL_ERROR not in SILENT


def test_capabilities_seen_by_neighbours() -> None:
    r1 = result("172.20.20.11", snmp("r1", neighbors=[
        neighbor("eth1", "aa:bb:cc:00:00:02", "eth1", ["Router", "Bridge"]),
        neighbor("eth2", "aa:bb:cc:00:00:03", "eth1", ["bridge"]),
        neighbor("eth3", "", "eth1", ["router"])]))  # no chassis id: nothing to key on
    r2 = result("172.20.20.12", snmp("r2", chassis="aa:bb:cc:00:00:02", neighbors=[
        neighbor("eth1", "aa:bb:cc:00:00:01", "eth1", ["router"]),
        neighbor("eth2", "aa:bb:cc:00:00:03", "eth2", ["stationOnly"])]))
    nc_only = result("172.20.20.21", netconf=netconf())
    assert _capabilities_seen([r1, r2, nc_only]) == {
        "aa:bb:cc:00:00:01": frozenset({"router"}),
        "aa:bb:cc:00:00:02": frozenset({"router", "bridge"}),
        "aa:bb:cc:00:00:03": frozenset({"bridge", "stationonly"}),
    }


def test_observation_from_snmp(shipped: RoleRules) -> None:
    facts = snmp("r1", interfaces=[
        InterfaceFacts(1, "lo", "lo", "", 24, 65536, 10.0, None, "up", "up"),
        InterfaceFacts(2, "mgmt0", "mgmt0", "", 6, 1500, 10000.0, "02:00:00:00:01:00", "up",
                       "up"),
        InterfaceFacts(3, "eth1", "eth1", "to r2", 6, 1500, 10000.0, "02:00:00:00:01:01", "up",
                       "down"),
    ], addresses=[
        IpAddressFacts("127.0.0.1", 8, 1), IpAddressFacts("::1", 128, 1),
        IpAddressFacts("172.20.20.11", 24, 2), IpAddressFacts("10.0.12.1", 30, 3),
        IpAddressFacts("fe80::1", 64, 3), IpAddressFacts("2001:db8::1", 64, 3),
        IpAddressFacts("10.255.0.1", 32, None),
    ], neighbors=[neighbor("eth1", "aa:bb:cc:00:00:02", "eth1", ["router"], "r2")])
    r = result("172.20.20.11", facts)
    obs = _observation(r, ["172.20.20.11", "10.0.12.1"], "engine-id x: answered on ...",
                       frozenset({"router"}), shipped)
    assert (obs.name, obs.mgmt_address, obs.sys_name) == ("r1", "172.20.20.11", "r1")
    assert obs.addresses_answered == ("172.20.20.11", "10.0.12.1")
    assert (obs.vendor, obs.os_name, obs.os_version) == ("FRRouting", "FRRouting", "8.4.4")
    assert (obs.role, obs.role_reason) == ("router",
                                           "LLDP neighbours see the router capability enabled")
    assert (obs.engine_id, obs.chassis_id) == ("80001f8803aabbcc000001", "aa:bb:cc:00:00:01")
    assert obs.planes == ("snmp",)
    assert obs.identity_rule == "engine-id x: answered on ..."
    assert [(a.address, a.prefix_length, a.interface_name) for a in obs.addresses] == [
        ("172.20.20.11", 24, "mgmt0"), ("10.0.12.1", 30, "eth1"), ("2001:db8::1", 64, "eth1"),
        ("10.255.0.1", 32, None)]
    eth1 = obs.interfaces[2]
    assert (eth1.name, eth1.if_index, eth1.alias, eth1.speed_mbps, eth1.oper_status) == (
        "eth1", 3, "to r2", 10000, "down")
    assert [(n.local_interface, n.remote_chassis_id, n.remote_sys_name)
            for n in obs.neighbors] == [("eth1", "aa:bb:cc:00:00:02", "r2")]
    # without neighbours' LLDP evidence the sysServices rule decides (72: no layer 3)
    plain = _observation(r, ["172.20.20.11"], None, frozenset(), shipped)
    assert plain.role == "host"


def test_observation_from_netconf_only(shipped: RoleRules) -> None:
    r = result("172.20.20.21", netconf=netconf("vnf1"))
    obs = _observation(r, ["172.20.20.21"], None, frozenset(), shipped)
    assert (obs.name, obs.sys_name, obs.role) == ("vnf1", "vnf1", "vnf")
    assert obs.role_reason == "answers NETCONF on port 830 and does not route"
    assert (obs.os_name, obs.os_version, obs.vendor) == ("Linux", "6.1.0", None)
    assert obs.planes == ("netconf",)
    assert [(i.name, i.speed_mbps, i.mac) for i in obs.interfaces] == [
        ("eth1", 10000, "02:00:00:00:09:01")]
    assert obs.addresses == () and obs.engine_id is None
