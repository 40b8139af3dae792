"""Unit tests for lab.parser: containerlab topology files -> lab.model.Topology."""

from __future__ import annotations

import textwrap
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from lab.model import DEFAULT_CREDENTIALS, Bind, Endpoint, Role, Topology
from lab.parser import __all__ as parser_all
from lab.parser import load_topology, parse_topology
from topology.errors import LabError, Problem, TopologyFileError

TOPOLOGIES = Path(__file__).resolve().parents[2] / "lab" / "topologies"


def write(tmp_path: Path, text: str, name: str = "lab.clab.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Topology:
    return load_topology(write(tmp_path, text))


def refuse(tmp_path: Path, text: str) -> list[Problem]:
    with pytest.raises(TopologyFileError) as info:
        load(tmp_path, text)
    return info.value.problems


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


def touch(tmp_path: Path, *names: str) -> None:
    for name in names:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("hostname x\n", encoding="utf-8")


# A valid one-host lab; tests append or alter lines. Line numbers are fixed:
#  1 name, 2 topology, 3 defaults, 4 kind, 5 nodes, 6 h1, 7 image
HOST_LAB = """\
name: t
topology:
  defaults:
    kind: linux
  nodes:
    h1:
      image: alpine:3.20
"""


# --------------------------------------------------------------------------- shipped files


def test_public_api() -> None:
    assert sorted(parser_all) == ["load_topology", "parse_topology"]


def test_mini_parses() -> None:
    topo = load_topology(TOPOLOGIES / "mini.clab.yml")
    assert topo.name == "mini"
    assert topo.path == (TOPOLOGIES / "mini.clab.yml").resolve()
    assert list(topo.nodes) == ["r1", "r2", "h1"]
    assert {n: s.role for n, s in topo.nodes.items()} == {
        "r1": Role.ROUTER, "r2": Role.ROUTER, "h1": Role.HOST}
    assert topo.mgmt.network == "clab-mini"
    assert topo.mgmt.subnet == IPv4Network("172.20.21.0/24")
    assert topo.mgmt.gateway == IPv4Address("172.20.21.1")
    assert topo.nodes["r1"].mgmt_ipv4 == IPv4Address("172.20.21.11")
    assert topo.nodes["r2"].mgmt_ipv4 == IPv4Address("172.20.21.12")
    assert topo.nodes["h1"].mgmt_ipv4 == IPv4Address("172.20.21.21")
    assert topo.nodes["r1"].frr_config == TOPOLOGIES / "mini" / "r1.conf"
    assert topo.nodes["r2"].frr_config == TOPOLOGIES / "mini" / "r2.conf"
    assert topo.nodes["h1"].frr_config is None
    assert topo.nodes["h1"].image == "alpine:3.20"  # from topology.kinds.linux
    assert topo.nodes["r1"].image == "frrouting/frr:v8.4.1"
    assert topo.nodes["h1"].exec[0] == "ip addr add 192.168.2.10/24 dev eth1"
    assert len(topo.links) == 2
    assert topo.links[0].a == Endpoint("r1", "eth1")
    assert topo.links[0].b == Endpoint("r2", "eth1")
    assert topo.interfaces("r2") == ["eth1", "eth2"]
    assert topo.credentials == DEFAULT_CREDENTIALS


def test_core_parses() -> None:
    topo = load_topology(TOPOLOGIES / "core.clab.yml")
    assert topo.name == "core"
    assert list(topo.nodes) == ["r1", "r2", "r3", "sw1", "vnf1", "cust1", "cust2", "srv1"]
    roles = {n: s.role for n, s in topo.nodes.items()}
    assert roles == {
        "r1": Role.ROUTER, "r2": Role.ROUTER, "r3": Role.ROUTER, "sw1": Role.SWITCH,
        "vnf1": Role.VNF, "cust1": Role.HOST, "cust2": Role.HOST, "srv1": Role.HOST,
    }
    r1, r2 = topo.nodes["r1"], topo.nodes["r2"]
    assert r1.startup_config is None
    assert r1.binds == (Bind(TOPOLOGIES / "core" / "r1.conf", "/etc/frr/frr.conf", "rw"),)
    assert r1.frr_config == TOPOLOGIES / "core" / "r1.conf"
    assert r2.startup_config == TOPOLOGIES / "core" / "r2.conf"
    assert r2.frr_config == TOPOLOGIES / "core" / "r2.conf"
    assert r1.group == "routers"
    assert r1.image == "frrouting/frr:v8.4.1"  # group beats kind
    assert r1.labels == {"switchboard.role": "router", "site": "edge"}
    assert topo.nodes["vnf1"].image == "yuma123/netconfd:2.13"
    assert topo.nodes["sw1"].image == "alpine:3.20"
    assert topo.nodes["srv1"].group == "hosts"
    assert r1.line == 38
    addresses = {n: str(s.mgmt_ipv4) for n, s in topo.nodes.items()}
    assert addresses == {
        "r1": "172.20.20.11", "r2": "172.20.20.12", "r3": "172.20.20.13",
        "sw1": "172.20.20.21", "vnf1": "172.20.20.31", "cust1": "172.20.20.101",
        "cust2": "172.20.20.102", "srv1": "172.20.20.111",
    }
    assert topo.mgmt.network == "clab-core"
    assert topo.mgmt.gateway == IPv4Address("172.20.20.1")
    assert len(topo.links) == 8
    assert topo.interfaces("r1") == ["eth1", "eth2", "eth3", "eth4"]
    assert topo.peer(Endpoint("r1", "eth4")) == Endpoint("cust2", "eth1")
    assert topo.links[0].line == 84
    assert all(s.kind == "linux" for s in topo.nodes.values())


def test_parse_topology_from_string_resolves_against_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    touch(tmp_path, "cfg/r1.conf")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    text = textwrap.dedent("""\
        name: t
        topology:
          nodes:
            r1:
              kind: linux
              image: frrouting/frr:v8.4.1
              startup-config: cfg/r1.conf
        """)
    topo = parse_topology(text, tmp_path / "never-written.clab.yml")
    assert topo.nodes["r1"].startup_config == (tmp_path / "cfg" / "r1.conf").resolve()
    assert not (tmp_path / "never-written.clab.yml").exists()


def test_parsing_creates_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, HOST_LAB)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    load_topology(path)
    with pytest.raises(TopologyFileError):
        load_topology(write(tmp_path, "name: BAD\n", "bad.clab.yml"))
    after = sorted(p.name for p in tmp_path.rglob("*"))
    assert after == sorted([*before, "bad.clab.yml"])


def test_defaults_when_no_mgmt_block(tmp_path: Path) -> None:
    topo = load(tmp_path, HOST_LAB)
    assert topo.mgmt.network == "clab"
    assert topo.mgmt.subnet == IPv4Network("172.20.20.0/24")
    assert topo.mgmt.gateway == IPv4Address("172.20.20.1")
    assert topo.nodes["h1"].mgmt_ipv4 == IPv4Address("172.20.20.2")
    assert topo.nodes["h1"].role is Role.HOST
    assert topo.links == ()


def test_unknown_keys_and_mgmt_ipv6_are_ignored(tmp_path: Path) -> None:
    topo = load(tmp_path, """\
        name: t
        prefix: ""
        mgmt:
          network: lab-net
          ipv4-subnet: 10.9.0.0/24
          ipv6-subnet: 3fff:172:20:20::/64
          ipv6-gw: 3fff:172:20:20::1
          mtu: 1500
        topology:
          defaults:
            kind: linux
            env: {A: b}
          nodes:
            h1:
              image: alpine:3.20
              cpu: 2
              ports: ["80:8080"]
        """)
    assert topo.mgmt.network == "lab-net"
    assert topo.mgmt.gateway == IPv4Address("10.9.0.1")
    assert topo.nodes["h1"].mgmt_ipv4 == IPv4Address("10.9.0.2")


def test_mgmt_subnet_up_to_slash_29(tmp_path: Path) -> None:
    topo = load(tmp_path, "mgmt:\n  ipv4-subnet: 10.1.0.8/29\n" + HOST_LAB)
    assert topo.mgmt.gateway == IPv4Address("10.1.0.9")
    assert topo.nodes["h1"].mgmt_ipv4 == IPv4Address("10.1.0.10")


# --------------------------------------------------------------------------- precedence


def test_precedence_node_group_kind_defaults(tmp_path: Path) -> None:
    for name in ("d.conf", "k.conf", "g.conf", "n.conf", "g-startup.conf", "n-startup.conf"):
        touch(tmp_path, name)
    topo = load(tmp_path, """\
        name: t
        topology:
          defaults:
            kind: linux
            image: img/defaults
            labels: {a: defaults, b: defaults, c: defaults, d: defaults}
            exec: ["echo defaults"]
            binds:
              - d.conf:/t1
              - d.conf:/t4:ro
          kinds:
            linux:
              image: img/kind
              labels: {b: kind, c: kind}
              binds: ["k.conf:/t2"]
          groups:
            g:
              image: img/group
              labels: {c: group}
              exec: ["echo group"]
              startup-config: g-startup.conf
              binds: ["g.conf:/t1"]
          nodes:
            plain: {}
            grouped:
              group: g
            own:
              group: g
              image: img/node
              labels: {d: node, e: node}
              exec: ["echo node 1", "echo node 2"]
              startup-config: n-startup.conf
              binds: ["n.conf:/t2:ro", "n.conf:/t3"]
        """)
    plain, grouped, own = topo.nodes["plain"], topo.nodes["grouped"], topo.nodes["own"]
    assert (plain.image, grouped.image, own.image) == ("img/kind", "img/group", "img/node")
    assert plain.labels == {"a": "defaults", "b": "kind", "c": "kind", "d": "defaults"}
    assert grouped.labels == {"a": "defaults", "b": "kind", "c": "group", "d": "defaults"}
    assert own.labels == {"a": "defaults", "b": "kind", "c": "group", "d": "node", "e": "node"}
    assert plain.exec == ("echo defaults",)
    assert grouped.exec == ("echo group",)
    assert own.exec == ("echo node 1", "echo node 2")
    assert plain.startup_config is None
    assert grouped.startup_config == tmp_path / "g-startup.conf"
    assert own.startup_config == tmp_path / "n-startup.conf"
    assert {b.target: (b.source.name, b.mode) for b in plain.binds} == {
        "/t1": ("d.conf", "rw"), "/t2": ("k.conf", "rw"), "/t4": ("d.conf", "ro")}
    assert {b.target: (b.source.name, b.mode) for b in grouped.binds} == {
        "/t1": ("g.conf", "rw"), "/t2": ("k.conf", "rw"), "/t4": ("d.conf", "ro")}
    assert {b.target: (b.source.name, b.mode) for b in own.binds} == {
        "/t1": ("g.conf", "rw"), "/t2": ("n.conf", "ro"), "/t3": ("n.conf", "rw"),
        "/t4": ("d.conf", "ro")}
    assert (plain.group, grouped.group, own.group) == (None, "g", "g")


def test_image_from_defaults_and_kind_from_group(tmp_path: Path) -> None:
    topo = load(tmp_path, """\
        name: t
        topology:
          defaults:
            image: img/defaults
            mgmt-ipv4: 172.20.20.50
          groups:
            g: {kind: linux}
          nodes:
            h1: {group: g}
        """)
    assert topo.nodes["h1"].image == "img/defaults"
    assert topo.nodes["h1"].kind == "linux"
    assert topo.nodes["h1"].mgmt_ipv4 == IPv4Address("172.20.20.50")


def test_node_exec_overrides_with_empty_list(tmp_path: Path) -> None:
    topo = load(tmp_path, """\
        name: t
        topology:
          defaults: {kind: linux, image: alpine, exec: ["echo hi"]}
          nodes:
            a: {}
            b: {exec: []}
        """)
    assert topo.nodes["a"].exec == ("echo hi",)
    assert topo.nodes["b"].exec == ()


# --------------------------------------------------------------------------- roles


@pytest.mark.parametrize(("image", "role"), [
    ("frrouting/frr:v8.4.1", Role.ROUTER),
    ("frrouting/frr", Role.ROUTER),
    ("quay.io/frrouting/frr:9.1.0", Role.ROUTER),
    ("localhost:5000/frrouting/frr:latest", Role.ROUTER),
    ("docker.io/frrouting/frr@sha256:" + "a" * 64, Role.ROUTER),
    ("registry.example.net/mirror/frrouting/frr:v8", Role.ROUTER),
    ("alpine:3.20", Role.HOST),
    ("frrouting/frr-debian:latest", Role.HOST),
    ("notfrrouting/frr:1", Role.HOST),
    ("docker.io/library/nginx", Role.HOST),
])
def test_role_from_image(tmp_path: Path, image: str, role: Role) -> None:
    touch(tmp_path, "frr.conf")
    topo = load(tmp_path, f"""\
        name: t
        topology:
          nodes:
            n1:
              kind: linux
              image: "{image}"
              startup-config: frr.conf
        """)
    assert topo.nodes["n1"].role is role


def test_role_label_beats_image(tmp_path: Path) -> None:
    topo = load(tmp_path, """\
        name: t
        topology:
          defaults: {kind: linux}
          nodes:
            frr-as-host:
              image: frrouting/frr:v8.4.1
              labels: {switchboard.role: host}
            alpine-switch:
              image: alpine
              labels: {switchboard.role: switch}
        """)
    assert topo.nodes["frr-as-host"].role is Role.HOST
    assert topo.nodes["alpine-switch"].role is Role.SWITCH


def test_router_by_label_with_frr_bind(tmp_path: Path) -> None:
    touch(tmp_path, "r.conf")
    topo = load(tmp_path, """\
        name: t
        topology:
          nodes:
            r1:
              kind: linux
              image: alpine
              labels: {switchboard.role: router}
              binds: ["r.conf:/etc/frr/frr.conf:ro"]
        """)
    assert topo.nodes["r1"].role is Role.ROUTER
    assert topo.nodes["r1"].frr_config == tmp_path / "r.conf"


# --------------------------------------------------------------------------- mgmt addresses


def test_auto_mgmt_assignment_skips_explicit(tmp_path: Path) -> None:
    topo = load(tmp_path, """\
        name: t
        mgmt:
          ipv4-subnet: 10.1.0.0/29
        topology:
          defaults: {kind: linux, image: alpine}
          nodes:
            a: {}
            b: {mgmt-ipv4: 10.1.0.2}
            c: {}
            d: {mgmt-ipv4: 10.1.0.4}
            e: {}
        """)
    got = {n: str(s.mgmt_ipv4) for n, s in topo.nodes.items()}
    assert got == {"a": "10.1.0.3", "b": "10.1.0.2", "c": "10.1.0.5", "d": "10.1.0.4",
                   "e": "10.1.0.6"}


def test_mgmt_subnet_runs_out(tmp_path: Path) -> None:
    problems = refuse(tmp_path, """\
        name: t
        mgmt:
          ipv4-subnet: 10.1.0.0/29
        topology:
          defaults: {kind: linux, image: alpine}
          nodes:
            a: {}
            b: {}
            c: {mgmt-ipv4: 10.1.0.6}
            d: {}
            e: {}
            f: {}
            g: {}
        """)
    # .1 is the gateway, .7 broadcast, c holds .6: a, b, d, e get .2 to .5
    assert [(p.line, p.reason) for p in problems] == [
        (12, "node 'f': no free address left in the mgmt subnet 10.1.0.0/29 to assign as "
             "mgmt-ipv4"),
        (13, "node 'g': no free address left in the mgmt subnet 10.1.0.0/29 to assign as "
             "mgmt-ipv4"),
    ]


@pytest.mark.parametrize(("address", "why"), [
    ("10.2.0.77", "is outside the mgmt subnet 172.20.20.0/24"),
    ("172.20.20.0", "is the network address of the mgmt subnet 172.20.20.0/24"),
    ("172.20.20.255", "is the broadcast address of the mgmt subnet 172.20.20.0/24"),
    ("172.20.20.1", "is the mgmt gateway (the first host address of the subnet)"),
])
def test_mgmt_ipv4_refused(tmp_path: Path, address: str, why: str) -> None:
    p = only(refuse(tmp_path, HOST_LAB + f"      mgmt-ipv4: {address}\n"))
    assert p.line == 8
    assert p.reason == f"node 'h1': mgmt-ipv4 {address} {why}"


def test_mgmt_ipv4_not_an_address(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, HOST_LAB + "      mgmt-ipv4: 172.20.20.300\n"))
    assert (p.line, p.reason) == (8, "node 'h1': mgmt-ipv4 '172.20.20.300' is not an IPv4 address")


def test_mgmt_ipv4_duplicate_names_first_node(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, """\
        name: t
        topology:
          defaults: {kind: linux, image: alpine}
          nodes:
            a:
              mgmt-ipv4: 172.20.20.9
            b: {}
            c:
              mgmt-ipv4: 172.20.20.9
        """))
    assert p.line == 9
    assert p.reason == "node 'c': mgmt-ipv4 172.20.20.9 is already used by node 'a'"


@pytest.mark.parametrize(("subnet", "reason"), [
    ("172.20.20.0/30", "mgmt ipv4-subnet '172.20.20.0/30' is too small: the prefix length "
                       "must be at most /29"),
    ("172.20.20.1/24", "mgmt ipv4-subnet '172.20.20.1/24' is not a valid IPv4 network "
                       "(172.20.20.1/24 has host bits set)"),
    ("3fff:1::/64", "mgmt ipv4-subnet '3fff:1::/64' is not a valid IPv4 network"),
    ("banana", "mgmt ipv4-subnet 'banana' is not a valid IPv4 network"),
])
def test_mgmt_subnet_refused(tmp_path: Path, subnet: str, reason: str) -> None:
    p = only(refuse(tmp_path, f"mgmt:\n  network: m\n  ipv4-subnet: '{subnet}'\n" + HOST_LAB))
    assert p.line == 3
    assert p.reason.startswith(reason)


# --------------------------------------------------------------------------- refusals


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, """\
        name: t
        topology:
          nodes:
            h1: {kind: linux, image: alpine
            h2: {}
        """))
    assert p.line == 5
    assert p.reason.startswith("YAML syntax error: while parsing a flow mapping")


def test_yaml_bad_indentation(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, "name: t\ntopology:\n  nodes:\n   h1: {}\n  bad\n"))
    # the scanner notices at the start of line 6; the message names line 5 as well
    assert p.line == 6
    assert p.reason == ("YAML syntax error: while scanning a simple key (line 5): could not "
                        "find expected ':'")


def test_repeated_key_refused(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, HOST_LAB + "    h1:\n      image: busybox\n"))
    assert p.line == 8
    assert p.reason == ("key 'h1' appears twice in one mapping (first at line 6); "
                        "YAML would silently keep only the last one")


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_top_level_must_be_mapping(tmp_path: Path, text: str) -> None:
    p = only(refuse(tmp_path, text))
    assert p.reason == "the top level must be a mapping (name, mgmt, topology)"


def test_name_missing(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, HOST_LAB.replace("name: t\n", "")))
    assert (p.line, p.reason) == (None, "'name' is missing: the lab needs a name")


@pytest.mark.parametrize("name", ["Core", "core_lab", "-core", "a" * 21, "12.5"])
def test_name_invalid(tmp_path: Path, name: str) -> None:
    p = only(refuse(tmp_path, HOST_LAB.replace("name: t", f"name: {name}")))
    assert p.line == 1
    assert "is invalid: it must be 1 to 20 characters of a-z, 0-9 and '-'" in p.reason
    assert "network namespaces and interfaces" in p.reason


def test_name_of_twenty_characters_is_fine(tmp_path: Path) -> None:
    assert load(tmp_path, HOST_LAB.replace("name: t", "name: " + "a" * 20)).name == "a" * 20


def test_topology_missing(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, "name: t\n"))
    assert p.reason == "'topology' is missing: a lab needs topology.nodes"


@pytest.mark.parametrize(("nodes", "what"), [
    ("  nodes: {}\n", "empty"),
    ("  nodes:\n", "empty"),
    ("  nodes: [a, b]\n", "not a mapping of node names to settings"),
    ("  defaults: {kind: linux}\n", "missing"),
])
def test_nodes_required(tmp_path: Path, nodes: str, what: str) -> None:
    p = only(refuse(tmp_path, "name: t\ntopology:\n" + nodes))
    assert p.reason == f"topology.nodes is {what}: a lab needs at least one node"
    assert p.line == (2 if what == "missing" else 3)


def test_node_name_invalid(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, HOST_LAB + "    bad.name:\n      image: alpine\n"))
    assert p.line == 8
    assert p.reason.startswith("node name 'bad.name' is invalid: it must be 1 to 30 characters")


def test_unknown_group(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, """\
        name: t
        topology:
          defaults: {kind: linux, image: alpine}
          groups:
            web: {}
          nodes:
            h1:
              group: wbe
        """))
    assert p.line == 8
    assert p.reason == ("node 'h1': group 'wbe' is not defined in topology.groups "
                        "(groups: web)")


def test_missing_kind(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, HOST_LAB.replace("    kind: linux\n", "    image: x\n")))
    assert p.line == 6
    assert p.reason.startswith("node 'h1' has no kind;")
    assert "supported kinds: linux" in p.reason


def test_unknown_kind_on_node(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, HOST_LAB + "      kind: nokia_srlinux\n"))
    assert p.line == 8
    assert p.reason == ("node 'h1' has kind 'nokia_srlinux', which is not supported; "
                        "supported kinds: linux")


def test_unknown_kind_inherited_names_its_origin(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, HOST_LAB.replace("kind: linux", "kind: ceos")))
    assert p.line == 6
    assert p.reason == ("node 'h1' has kind 'ceos' (from topology.defaults), which is not "
                        "supported; supported kinds: linux")


def test_missing_image(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, HOST_LAB.replace("    h1:\n      image: alpine:3.20\n",
                                               "    h1:\n      labels: {a: b}\n")))
    assert p.line == 6
    assert p.reason == ("node 'h1' has no image; set image on the node, its group, its kind "
                        "or in topology.defaults")


def test_role_label_invalid(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, HOST_LAB + "      labels:\n        switchboard.role: server\n"))
    assert p.line == 9
    assert p.reason == ("node 'h1': label 'switchboard.role' is 'server'; it must be one of "
                        "router, switch, vnf, host")


def test_role_label_invalid_in_group_reported_once(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, """\
        name: t
        topology:
          defaults: {kind: linux, image: alpine}
          groups:
            g:
              labels: {switchboard.role: firewall}
          nodes:
            a: {group: g}
            b: {group: g}
        """))
    assert p.line == 6
    assert p.reason.startswith("group 'g': label 'switchboard.role' is 'firewall'")


def test_label_value_must_be_string(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, HOST_LAB + "      labels:\n        rack: 12\n"))
    assert p.line == 9
    assert p.reason == ("node 'h1': label 'rack' must be a string (containerlab requires "
                        "string label values; quote it)")


def test_startup_config_missing(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, HOST_LAB + "      startup-config: cfg/h1.conf\n"))
    assert p.line == 8
    assert p.reason == (f"node 'h1': startup-config 'cfg/h1.conf' is not a file "
                        f"(looked for {tmp_path / 'cfg' / 'h1.conf'})")


def test_bind_source_missing(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, HOST_LAB + "      binds:\n        - nope.txt:/etc/x\n"))
    assert p.line == 9
    assert p.reason == (f"node 'h1': bind 'nope.txt:/etc/x': source 'nope.txt' does not exist "
                        f"(looked for {tmp_path / 'nope.txt'})")


@pytest.mark.parametrize(("bind", "why"), [
    ("x.conf", "is not 'source:target' or 'source:target:mode'"),
    ("x.conf:/a:ro:z", "is not 'source:target' or 'source:target:mode'"),
    (":/a", "is not 'source:target' or 'source:target:mode'"),
    ("x.conf:etc/x", "has target 'etc/x'; the target must be an absolute path inside the node"),
    ("x.conf:/etc/x:rx", "has mode 'rx'; it must be ro or rw"),
])
def test_bind_malformed(tmp_path: Path, bind: str, why: str) -> None:
    touch(tmp_path, "x.conf")
    p = only(refuse(tmp_path, HOST_LAB + f"      binds:\n        - '{bind}'\n"))
    assert p.line == 9
    assert p.reason == f"node 'h1': bind {bind!r} {why}"


def test_bind_problem_in_kind_reported_once_with_its_line(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, """\
        name: t
        topology:
          kinds:
            linux:
              image: alpine
              binds:
                - missing.sh:/usr/local/bin/x.sh
          nodes:
            a: {kind: linux}
            b: {kind: linux}
        """))
    assert p.line == 7
    assert p.reason.startswith("kind 'linux': bind 'missing.sh:/usr/local/bin/x.sh': source")


def test_router_needs_frr_config(tmp_path: Path) -> None:
    problems = refuse(tmp_path, """\
        name: t
        topology:
          defaults: {kind: linux}
          nodes:
            r1:
              image: frrouting/frr:v8.4.1
            r2:
              image: alpine
              labels: {switchboard.role: router}
        """)
    assert [(p.line, p.reason) for p in problems] == [
        (5, "node 'r1' is a router (image frrouting/frr:v8.4.1) but has no FRR config: set "
            "startup-config or bind a file to /etc/frr/frr.conf"),
        (7, "node 'r2' is a router (label switchboard.role=router) but has no FRR config: set "
            "startup-config or bind a file to /etc/frr/frr.conf"),
    ]


def test_exec_must_be_list_of_strings(tmp_path: Path) -> None:
    problems = refuse(tmp_path, """\
        name: t
        topology:
          defaults: {kind: linux, image: alpine}
          nodes:
            a:
              exec: "ip link"
            b:
              exec:
                - ip link
                - 42
        """)
    assert [(p.line, p.reason) for p in problems] == [
        (6, "node 'a': exec must be a list of commands (strings)"),
        (10, "node 'b': exec item 2 must be a string (quote the command)"),
    ]


# --------------------------------------------------------------------------- links


LINKED = HOST_LAB + "    h2:\n      image: alpine\n  links:\n"  # links items start at line 11


def test_link_unknown_node(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, LINKED + (
        "  - endpoints: [\"h1:eth1\", \"h2:eth1\"]\n"
        "  - endpoints: [\"h1:eth2\", \"r9:eth1\"]\n")))
    assert p.line == 12
    assert p.reason == "link 2 endpoint 'r9:eth1' names unknown node 'r9'"


def test_link_endpoint_used_twice(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, LINKED + (
        "  - endpoints: [\"h1:eth1\", \"h2:eth1\"]\n"
        "  - endpoints: [\"h1:eth2\", \"h2:eth2\"]\n"
        "  - endpoints: [\"h2:eth3\", \"h1:eth1\"]\n")))
    assert p.line == 13
    assert p.reason == "link 3 endpoint 'h1:eth1' is already used by link 1 (line 11)"


def test_link_endpoint_twice_in_one_link(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, LINKED + "  - endpoints: [\"h1:eth1\", \"h1:eth1\"]\n"))
    assert (p.line, p.reason) == (
        11, "link 1 endpoint 'h1:eth1' is already used by link 1 (line 11)")


@pytest.mark.parametrize(("endpoint", "why"), [
    ("h1:mgmt0", "uses 'mgmt0', which is reserved (mgmt0 is the management interface, lo the "
                 "loopback)"),
    ("h1:lo", "uses 'lo', which is reserved (mgmt0 is the management interface, lo the "
              "loopback)"),
    ("h1:1eth", "has an invalid interface name '1eth': 1 to 15 characters of A-Z a-z 0-9 _ . -, "
                "starting with a letter"),
    ("h1:" + "e" * 16, "has an invalid interface name '" + "e" * 16 + "': 1 to 15 characters "
                       "of A-Z a-z 0-9 _ . -, starting with a letter"),
    ("h1", "is not 'node:iface'"),
    ("h1:eth1:x", "is not 'node:iface'"),
    (":eth1", "is not 'node:iface'"),
])
def test_link_endpoint_refused(tmp_path: Path, endpoint: str, why: str) -> None:
    p = only(refuse(tmp_path, LINKED + f"  - endpoints: [\"{endpoint}\", \"h2:eth1\"]\n"))
    assert p.line == 11
    assert p.reason == f"link 1 endpoint {endpoint!r} {why}"


@pytest.mark.parametrize("item", [
    "  - endpoints: [\"h1:eth1\"]\n",
    "  - endpoints: [\"h1:eth1\", \"h2:eth1\", \"h2:eth2\"]\n",
    "  - endpoints: \"h1:eth1 h2:eth1\"\n",
    "  - endpoints: [{node: h1, interface: eth1}, {node: h2, interface: eth1}]\n",
    "  - \"h1:eth1\"\n",
    "  - {type: veth}\n",
])
def test_link_needs_two_endpoint_strings(tmp_path: Path, item: str) -> None:
    p = only(refuse(tmp_path, LINKED + item))
    assert p.line == 11
    assert p.reason == ("link 1 must have 'endpoints': a list of exactly two 'node:iface' "
                        "strings")


def test_links_must_be_a_list(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, LINKED.replace("  links:\n", "  links: {a: b}\n")))
    assert (p.line, p.reason) == (10, "topology.links must be a list of links")


# --------------------------------------------------------------------------- all at once


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        name: Bad_Name
        mgmt:
          ipv4-subnet: 10.0.0.0/24
        topology:
          defaults: {kind: linux, image: alpine}
          nodes:
            a:
              mgmt-ipv4: 10.0.0.20
            b:
              mgmt-ipv4: 10.0.0.20
            c:
              kind: vr-sros
          links:
            - endpoints: ["a:eth1", "zz:eth1"]
        """)
    with pytest.raises(TopologyFileError) as info:
        load_topology(path)
    err = info.value
    assert isinstance(err, LabError)
    assert err.path == path
    assert [p.line for p in err.problems] == [1, 10, 12, 14]
    assert "node 'b': mgmt-ipv4 10.0.0.20 is already used by node 'a'" in err.problems[1].reason
    assert "kind 'vr-sros'" in err.problems[2].reason
    assert err.problems[3].reason == "link 1 endpoint 'zz:eth1' names unknown node 'zz'"
    text = str(err)
    assert text.startswith("topology file refused (4 problem(s)):\n")
    assert f"{path}:14: link 1 endpoint 'zz:eth1' names unknown node 'zz'" in text


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyFileError) as info:
        load_topology(tmp_path / "absent.clab.yml")
    p = only(info.value.problems)
    assert p.reason == "cannot read the file: No such file or directory"


# --------------------------------------------------------------------------- credentials


def test_default_credentials_without_labels(tmp_path: Path) -> None:
    topo = load(tmp_path, HOST_LAB)
    assert topo.credentials == DEFAULT_CREDENTIALS
    assert topo.credentials.snmp_community == "switchboard-lab"


def test_credentials_overridden_field_by_field(tmp_path: Path) -> None:
    topo = load(tmp_path, """\
        name: t
        topology:
          defaults:
            kind: linux
            image: alpine
            labels:
              switchboard.snmp-community: c0mmunity.x
              switchboard.ssh-user: netops
              switchboard.ssh-password: "S3cret!pass"
              switchboard.snmpv3-priv-key: priv-key-99
              site: lab
          nodes:
            h1: {}
        """)
    creds = topo.credentials
    assert creds.snmp_community == "c0mmunity.x"
    assert creds.ssh_user == "netops"
    assert creds.ssh_password == "S3cret!pass"
    assert creds.snmpv3_priv_key == "priv-key-99"
    assert creds.snmpv3_user == DEFAULT_CREDENTIALS.snmpv3_user
    assert creds.snmpv3_auth_key == DEFAULT_CREDENTIALS.snmpv3_auth_key
    # secrets do not travel in node labels (whose repr is printed)
    assert topo.nodes["h1"].labels == {"site": "lab"}
    assert "S3cret!pass" not in repr(topo)


CRED_LAB = """\
name: t
topology:
  defaults:
    kind: linux
    image: alpine
    labels:
      {label}: {value}
  nodes:
    h1: {{}}
"""


@pytest.mark.parametrize(("label", "value", "why"), [
    ("switchboard.snmp-community", "'has space'",
     "must be 1 to 32 characters of A-Z a-z 0-9 and _ . @ % + = -"),
    ("switchboard.snmp-community", "c" * 33,
     "must be 1 to 32 characters of A-Z a-z 0-9 and _ . @ % + = -"),
    ("switchboard.snmpv3-auth-key", "short7!",
     "must be 8 to 64 printable ASCII characters without spaces, quotes (' \" `) or '#'"),
    ("switchboard.snmpv3-priv-key", "'has#hash-inside'",
     "must be 8 to 64 printable ASCII characters without spaces, quotes (' \" `) or '#'"),
    ("switchboard.ssh-password", "'pass word 123'",
     "must be 8 to 64 printable ASCII characters without spaces, quotes (' \" `) or '#'"),
    ("switchboard.ssh-password", "\"quo'tedpassword\"",
     "must be 8 to 64 printable ASCII characters without spaces, quotes (' \" `) or '#'"),
    ("switchboard.ssh-password", "p" * 65,
     "must be 8 to 64 printable ASCII characters without spaces, quotes (' \" `) or '#'"),
    ("switchboard.ssh-password", "pässwörd-long",
     "must be 8 to 64 printable ASCII characters without spaces, quotes (' \" `) or '#'"),
    ("switchboard.ssh-password", "12345678",
     "must be a string (containerlab requires string label values; quote it)"),
])
def test_credential_refused_without_leaking(
        tmp_path: Path, label: str, value: str, why: str) -> None:
    with pytest.raises(TopologyFileError) as info:
        load(tmp_path, CRED_LAB.format(label=label, value=value))
    p = only(info.value.problems)
    assert p.line == 7
    assert p.reason == f"topology.defaults: label {label!r} {why}"
    secret = value.strip("'\"")
    assert secret not in p.reason
    assert secret not in str(info.value)


@pytest.mark.parametrize(("label", "value", "why"), [
    ("switchboard.ssh-user", "root",
     "must not be 'root': the lab creates this user on every managed node"),
    ("switchboard.ssh-user", "Admin",
     "value 'Admin' must be a user name: 1 to 31 characters of a-z 0-9 _ -, starting with a "
     "letter or '_'"),
    ("switchboard.snmpv3-user", "9user",
     "value '9user' must be a user name: 1 to 31 characters of a-z 0-9 _ -, starting with a "
     "letter or '_'"),
])
def test_credential_user_refused(tmp_path: Path, label: str, value: str, why: str) -> None:
    p = only(refuse(tmp_path, CRED_LAB.format(label=label, value=value)))
    assert (p.line, p.reason) == (7, f"topology.defaults: label {label!r} {why}")


def test_credential_label_only_in_defaults(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, HOST_LAB + (
        "      labels:\n        switchboard.ssh-password: node-level-secret\n")))
    assert p.line == 9
    assert p.reason == ("node 'h1': label 'switchboard.ssh-password' is only read from "
                        "topology.defaults.labels: the lab's credentials are the same on "
                        "every node")
    assert "node-level-secret" not in p.reason


def test_credential_boundaries_accepted(tmp_path: Path) -> None:
    text = CRED_LAB.format(label="switchboard.ssh-password", value="'" + "!" * 8 + "'")
    assert load(tmp_path, text).credentials.ssh_password == "!" * 8
    text = CRED_LAB.format(label="switchboard.snmp-community", value="a@b%c+d=e.f_g-h")
    assert load(tmp_path, text).credentials.snmp_community == "a@b%c+d=e.f_g-h"
    text = CRED_LAB.format(label="switchboard.snmpv3-user", value="_" + "u" * 30)
    assert load(tmp_path, text).credentials.snmpv3_user == "_" + "u" * 30


# --------------------------------------------------------------------------- no cascades


def test_unsupported_kind_does_not_also_report_missing_image(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, """\
        name: t
        topology:
          kinds:
            linux: {image: alpine}
          nodes:
            h1: {kind: srl}
        """))
    assert (p.line, p.reason) == (
        6, "node 'h1' has kind 'srl', which is not supported; supported kinds: linux")


def test_unknown_group_does_not_also_report_missing_kind_or_image(tmp_path: Path) -> None:
    p = only(refuse(tmp_path, "name: t\ntopology:\n  nodes:\n    h1:\n      group: nope\n"))
    assert (p.line, p.reason) == (
        5, "node 'h1': group 'nope' is not defined in topology.groups (groups: none defined)")
