"""Routing and security notifications from the lab's real daemons.

FRR's ospfd and bgpd run with their SNMP module and send their notifications over
AgentX into the node's snmpd, which forwards them to the lab's trap target with its own
(authenticationFailure for a wrong community). The shipped topologies run OSPF only, so
the BGP test deploys ``mini`` plus an iBGP session between r1 and r2 (the lab the golden
recorder uses). Last, the golden trap files (tests/golden/traps/) are checked against
the codec: they decode to what they say and hold no lab community.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.model import DEFAULT_CREDENTIALS
from lab.pytest_plugin import LabFactory, LabHandle, slot_lab_name, slot_subnet
from tests.golden.record_traps import (
    AUTH_FAILURE,
    BGP_BACKWARD_TRANSITION,
    BGP_ESTABLISHED,
    BGP_PEER_STATE,
    COLD_START,
    GOLDEN,
    GOLDEN_COMMUNITY,
    LINK_DOWN,
    LINK_UP,
    LLDP_REM_TABLES_CHANGE,
    OSPF_IF_STATE,
    OSPF_IF_STATE_CHANGE,
    OSPF_NBR_STATE,
    OSPF_NBR_STATE_CHANGE,
    SNMP_TRAP_OID,
    SYS_UPTIME,
    bgp_topology,
    decode,
    snmp_get_request,
    with_community,
)
from tests.integration.peers import NetSnmp, Trap, TrapListener, decode_v2c_trap

OSPF_ROUTER_ID = "1.3.6.1.2.1.14.1.1.0"
OSPF_NBR_IP = "1.3.6.1.2.1.14.10.1.1"
OSPF_NBR_RTR_ID = "1.3.6.1.2.1.14.10.1.3"
OSPF_IF_IP = "1.3.6.1.2.1.14.7.1.1"
OSPF_ADDRESS_LESS_IF = "1.3.6.1.2.1.14.7.1.2"
BGP_PEER_REMOTE_ADDR = "1.3.6.1.2.1.15.3.1.7"
BGP_PEER_LAST_ERROR = "1.3.6.1.2.1.15.3.1.14"
SNMP_TRAP_ENTERPRISE = "1.3.6.1.6.3.1.1.4.3.0"
NET_SNMP_LINUX = "1.3.6.1.4.1.8072.3.2.10"


def wait_value(read: Callable[[], str], want: str, what: str, timeout_s: float = 90.0) -> None:
    """Re-read until ``read()`` gives ``want`` (protocols converge in their own time)."""
    deadline = time.monotonic() + timeout_s
    while (got := read()) != want:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {got!r}, not {want!r} after {timeout_s} s")
        time.sleep(1)


def collect(traps: TrapListener, wanted: dict[str, Callable[[Trap], bool]],
            timeout_s: float = 90.0) -> dict[str, Trap]:
    """The first trap matching each of ``wanted``, in whatever order they arrive."""
    found: dict[str, Trap] = {}
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + timeout_s
    while len(found) < len(wanted):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        traps.sock.settimeout(left)
        try:
            data, (addr, _) = traps.sock.recvfrom(65535)
        except TimeoutError:
            break
        trap = decode_v2c_trap(data, addr)
        seen.append((trap.source, trap.trap_oid))
        for name, match in wanted.items():
            if name not in found and match(trap):
                found[name] = trap
    missing = sorted(set(wanted) - set(found))
    assert not missing, f"no trap for {missing} within {timeout_s} s; saw {seen}"
    return found


def is_trap(source: str, trap_oid: str, varbind: str, value: str) -> Callable[[Trap], bool]:
    return lambda t: (t.source == source and t.trap_oid == trap_oid
                      and t.varbinds.get(varbind) == value)


def payload(trap: Trap) -> dict[str, str]:
    """The trap's varbinds after sysUpTime.0 and snmpTrapOID.0."""
    assert list(trap.varbinds)[:2] == [SYS_UPTIME, SNMP_TRAP_OID]
    return dict(list(trap.varbinds.items())[2:])


# --------------------------------------------------------------------------- OSPF


@pytest.mark.lab
def test_ospf_link_down_and_up_send_real_ospf_traps(core_lab: LabHandle) -> None:
    """r1:eth1 (to r2) down: ospfd on both ends sends ospfNbrStateChange (down) and r1
    ospfIfStateChange (down); up again: ospfIfStateChange (pointToPoint), then
    ospfNbrStateChange (full) once the adjacency is back."""
    r1, r2 = core_lab.nodes["r1"], core_lab.nodes["r2"]
    snmp = NetSnmp(core_lab.credentials)
    # OSPF-MIB is served by ospfd over AgentX: the adjacency as the MIB sees it
    wait_value(lambda: snmp.get(r1.mgmt_ipv4, f"{OSPF_NBR_STATE}.10.0.12.2.0"), "8",
               "r1's ospfNbrState for r2")
    wait_value(lambda: snmp.get(r2.mgmt_ipv4, f"{OSPF_NBR_STATE}.10.0.12.1.0"), "8",
               "r2's ospfNbrState for r1")
    with TrapListener(core_lab.trap_host, core_lab.trap_port) as traps:
        core_lab.lab.set_link("r1", "eth1", up=False)
        try:
            down = collect(traps, {
                "r1 nbr down": is_trap(r1.mgmt_ipv4, OSPF_NBR_STATE_CHANGE,
                                       f"{OSPF_NBR_STATE}.10.0.12.2.0", "1"),
                "r1 if down": is_trap(r1.mgmt_ipv4, OSPF_IF_STATE_CHANGE,
                                      f"{OSPF_IF_STATE}.10.0.12.1.0", "1"),
                "r2 nbr down": is_trap(r2.mgmt_ipv4, OSPF_NBR_STATE_CHANGE,
                                       f"{OSPF_NBR_STATE}.10.0.12.1.0", "1"),
            })
        finally:
            core_lab.lab.set_link("r1", "eth1", up=True)
        up = collect(traps, {
            "r1 if up": is_trap(r1.mgmt_ipv4, OSPF_IF_STATE_CHANGE,
                                f"{OSPF_IF_STATE}.10.0.12.1.0", "4"),
            "r1 nbr full": is_trap(r1.mgmt_ipv4, OSPF_NBR_STATE_CHANGE,
                                   f"{OSPF_NBR_STATE}.10.0.12.2.0", "8"),
            "r2 nbr full": is_trap(r2.mgmt_ipv4, OSPF_NBR_STATE_CHANGE,
                                   f"{OSPF_NBR_STATE}.10.0.12.1.0", "8"),
        })
    # what ospfd really sends: ospfRouterId, then the neighbour's (or interface's) row
    # indexed by its address and 0 (ospfNbrAddressLessIndex / ospfAddressLessIf)
    assert payload(down["r1 nbr down"]) == {
        OSPF_ROUTER_ID: "10.255.0.1",
        f"{OSPF_NBR_IP}.10.0.12.2.0": "10.0.12.2",
        f"{OSPF_NBR_RTR_ID}.10.0.12.2.0": "10.255.0.2",
        f"{OSPF_NBR_STATE}.10.0.12.2.0": "1",
    }
    assert payload(down["r2 nbr down"])[f"{OSPF_NBR_RTR_ID}.10.0.12.1.0"] == "10.255.0.1"
    assert payload(down["r1 if down"]) == {
        OSPF_ROUTER_ID: "10.255.0.1",
        f"{OSPF_IF_IP}.10.0.12.1.0": "10.0.12.1",
        f"{OSPF_ADDRESS_LESS_IF}.10.0.12.1.0": "0",
        f"{OSPF_IF_STATE}.10.0.12.1.0": "1",
    }
    assert payload(up["r1 nbr full"])[f"{OSPF_NBR_RTR_ID}.10.0.12.2.0"] == "10.255.0.2"
    for trap in (*down.values(), *up.values()):
        assert trap.community == core_lab.credentials.snmp_community
    wait_value(lambda: snmp.get(r1.mgmt_ipv4, f"{OSPF_NBR_STATE}.10.0.12.2.0"), "8",
               "r1's ospfNbrState for r2 after the link came back")


# --------------------------------------------------------------------------- BGP


@pytest.fixture(scope="module")
def bgp_lab(lab_factory: LabFactory, tmp_path_factory: pytest.TempPathFactory) -> LabHandle:
    """``mini`` plus iBGP between r1 and r2 over their link (10.0.12.0/30)."""
    topology = bgp_topology(tmp_path_factory.mktemp("bgp-lab"))
    return lab_factory(topology, name=slot_lab_name("bgp"), subnet=slot_subnet(3))


@pytest.mark.lab
def test_bgp_session_down_and_up_send_rfc4273_traps(bgp_lab: LabHandle) -> None:
    """r1:eth1 down: bgpd's session leaves Established when the hold timer (9 s) expires:
    bgpBackwardTransNotification; up again: bgpEstablishedNotification on both ends."""
    r1, r2 = bgp_lab.nodes["r1"], bgp_lab.nodes["r2"]
    snmp = NetSnmp(bgp_lab.credentials)
    # BGP4-MIB is served by bgpd over AgentX
    wait_value(lambda: snmp.get(r1.mgmt_ipv4, f"{BGP_PEER_STATE}.10.0.12.2"), "6",
               "r1's bgpPeerState for r2")
    with TrapListener(bgp_lab.trap_host, bgp_lab.trap_port) as traps:
        bgp_lab.lab.set_link("r1", "eth1", up=False)
        try:
            down = collect(traps, {
                "r1 backward": is_trap(r1.mgmt_ipv4, BGP_BACKWARD_TRANSITION,
                                       f"{BGP_PEER_STATE}.10.0.12.2", "1"),
            })
        finally:
            bgp_lab.lab.set_link("r1", "eth1", up=True)
        up = collect(traps, {
            "r1 established": is_trap(r1.mgmt_ipv4, BGP_ESTABLISHED,
                                      f"{BGP_PEER_STATE}.10.0.12.2", "6"),
            "r2 established": is_trap(r2.mgmt_ipv4, BGP_ESTABLISHED,
                                      f"{BGP_PEER_STATE}.10.0.12.1", "6"),
        })
    # RFC 4273 notifications, the peer's row indexed by its address: bgpPeerRemoteAddr,
    # bgpPeerLastError (code, subcode: 4/0 hold timer expired), bgpPeerState (1 idle)
    assert payload(down["r1 backward"]) == {
        f"{BGP_PEER_REMOTE_ADDR}.10.0.12.2": "10.0.12.2",
        f"{BGP_PEER_LAST_ERROR}.10.0.12.2": "0x0400",
        f"{BGP_PEER_STATE}.10.0.12.2": "1",
    }
    established = payload(up["r1 established"])
    assert list(established) == [f"{BGP_PEER_REMOTE_ADDR}.10.0.12.2",
                                 f"{BGP_PEER_LAST_ERROR}.10.0.12.2",
                                 f"{BGP_PEER_STATE}.10.0.12.2"]
    assert established[f"{BGP_PEER_REMOTE_ADDR}.10.0.12.2"] == "10.0.12.2"
    for trap in (*down.values(), *up.values()):
        assert trap.community == bgp_lab.credentials.snmp_community


# --------------------------------------------------------------------------- snmpd


@pytest.mark.lab
def test_wrong_community_sends_authentication_failure(core_lab: LabHandle) -> None:
    r3 = core_lab.nodes["r3"]
    wrong = f"sb-wrong-{secrets.token_hex(6)}"
    assert wrong != core_lab.credentials.snmp_community
    with TrapListener(core_lab.trap_host, core_lab.trap_port) as traps:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(snmp_get_request(wrong, "1.3.6.1.2.1.1.5.0"), (r3.mgmt_ipv4, 161))
        trap = traps.wait_for(AUTH_FAILURE, r3.mgmt_ipv4)
    assert trap.community == core_lab.credentials.snmp_community
    assert payload(trap) == {SNMP_TRAP_ENTERPRISE: NET_SNMP_LINUX}


# --------------------------------------------------------------------------- golden files

GOLDEN_FILES = {
    "cold_start.json": COLD_START,
    "authentication_failure.json": AUTH_FAILURE,
    "link_down.json": LINK_DOWN,
    "link_up.json": LINK_UP,
    "lldp_rem_tables_change.json": LLDP_REM_TABLES_CHANGE,
    "ospf_nbr_state_change_down.json": OSPF_NBR_STATE_CHANGE,
    "ospf_nbr_state_change_full.json": OSPF_NBR_STATE_CHANGE,
    "ospf_if_state_change_down.json": OSPF_IF_STATE_CHANGE,
    "ospf_if_state_change_up.json": OSPF_IF_STATE_CHANGE,
    "bgp_backward_transition.json": BGP_BACKWARD_TRANSITION,
    "bgp_established.json": BGP_ESTABLISHED,
}


@pytest.mark.parametrize("name", sorted(GOLDEN_FILES))
def test_golden_trap_decodes_to_what_it_says(name: str) -> None:
    entry = json.loads((GOLDEN / name).read_text())
    data = bytes.fromhex(entry["hex"])
    decoded = decode(data)
    assert decoded["community"] == GOLDEN_COMMUNITY == entry["community"]
    assert {k: decoded[k] for k in ("trap_oid", "uptime", "varbinds")} == entry["decoded"]
    assert decoded["trap_oid"] == GOLDEN_FILES[name]
    assert DEFAULT_CREDENTIALS.snmp_community.encode() not in data
    assert with_community(data, GOLDEN_COMMUNITY) == data
    assert {"description", "source_node", "captured_at"} <= set(entry)


def test_golden_traps_are_all_there() -> None:
    assert sorted(p.name for p in Path(GOLDEN).glob("*.json")) == sorted(GOLDEN_FILES)
