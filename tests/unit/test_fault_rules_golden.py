"""The shipped fault rules against traps recorded from the lab's real daemons
(tests/golden/traps, made by tests/golden/record_traps.py): each must make the event an
operator expects, with the right resource."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.fault.events import FaultEvent, event_from_trap
from agents.fault.rules import load_fault_rules
from agents.fault.view import InterfaceRef, TopologyView
from collectors.ber import decode_message
from collectors.traps import trap_from_message

GOLDEN = Path(__file__).parents[1] / "golden" / "traps"
SOURCE = "172.20.20.11"

# file -> (action, problem, resource type, resource)
EXPECTED = {
    "cold_start": ("raise", "agent-restart", "device", "r1"),
    "authentication_failure": ("raise", "snmp-authentication-failure", "device", "r1"),
    "link_down": ("raise", "link-down", "interface", "IFACE"),
    "link_up": ("clear", "link-down", "interface", "IFACE"),
    "lldp_rem_tables_change": ("raise", "lldp-neighbours-changed", "device", "r1"),
    "ospf_nbr_state_change_down": ("raise", "ospf-neighbour-down", "ospf-neighbour", "NBR"),
    "ospf_nbr_state_change_full": ("clear", "ospf-neighbour-down", "ospf-neighbour", "NBR"),
    "ospf_if_state_change_down": ("raise", "ospf-interface-state", "ospf-interface", "IFADDR"),
    "ospf_if_state_change_up": ("raise", "ospf-interface-state", "ospf-interface", "IFADDR"),
    "bgp_backward_transition": ("raise", "bgp-session-down", "bgp-peer", "10.0.12.2"),
    "bgp_established": ("clear", "bgp-session-down", "bgp-peer", "10.0.12.2"),
}


def view() -> TopologyView:
    v = TopologyView(devices={1: "r1"}, device_by_name={"r1": 1},
                     device_by_address={SOURCE: 1})
    for index in range(1, 10):
        ref = InterfaceRef(100 + index, 1, f"eth{index - 1}", index)
        v.interfaces[ref.id] = ref
        v.by_if_index[(1, index)] = ref
    return v


def test_every_golden_trap_has_an_expectation() -> None:
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_golden_trap_makes_the_expected_event(name: str) -> None:
    golden = json.loads((GOLDEN / f"{name}.json").read_text())
    message = decode_message(bytes.fromhex(golden["hex"]))
    assert message.community == b"public"
    trap = trap_from_message(message, (SOURCE, 40000), "lab")
    assert trap.trap_oid == golden["decoded"]["trap_oid"]
    assert [[vb.oid, vb.kind] for vb in trap.varbinds] == [
        [oid, kind] for oid, kind, _ in golden["decoded"]["varbinds"]]
    event = event_from_trap(trap, load_fault_rules(), view())
    assert isinstance(event, FaultEvent), event
    action, problem, rtype, resource = EXPECTED[name]
    assert (event.action, event.problem, event.resource_type) == (action, problem, rtype)
    values = {oid: value for oid, _, value in golden["decoded"]["varbinds"]}
    if resource == "IFACE":
        if_index = int(values[next(o for o in values if o.startswith("1.3.6.1.2.1.2.2.1.1."))])
        assert event.resource == f"eth{if_index - 1}" and event.interface_id == 100 + if_index
    elif resource == "NBR":
        nbr = values[next(o for o in values if o.startswith("1.3.6.1.2.1.14.10.1.1."))]
        assert event.resource == nbr and event.peer_address == nbr
    elif resource == "IFADDR":
        addr = values[next(o for o in values if o.startswith("1.3.6.1.2.1.14.7.1.1."))]
        assert event.resource == addr
    else:
        assert event.resource == resource
