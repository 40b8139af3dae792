"""Fault injection and traffic on the real kernel objects and daemons of the mini lab:
link down/up gives real traps, a stopped node takes its links down with it, and
`lab traffic` moves the routers' interface counters."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from lab.pytest_plugin import LabHandle
from tests.integration.peers import IF_INDEX, LINK_DOWN, LINK_UP, NetSnmp, TrapListener

pytestmark = pytest.mark.lab
IF_HC_IN = "1.3.6.1.2.1.31.1.1.1.6"
IF_HC_OUT = "1.3.6.1.2.1.31.1.1.1.10"
IF_OPER = "1.3.6.1.2.1.2.2.1.8"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real `switchboard` command, as an engineer types it."""
    return subprocess.run([sys.executable, "-m", "northbound.cli", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_link_down_and_up_send_real_traps(mini_lab: LabHandle) -> None:
    r1 = mini_lab.nodes["r1"]
    snmp = NetSnmp(mini_lab.credentials)
    eth1 = snmp.if_index(r1.mgmt_ipv4)["eth1"]
    with TrapListener(mini_lab.trap_host, mini_lab.trap_port) as traps:
        down = cli("lab", "link", "down", "r1:eth1", "--lab", mini_lab.name)
        assert down.returncode == 0, down.stderr
        try:
            trap = traps.wait_for(LINK_DOWN, r1.mgmt_ipv4, match={IF_INDEX: str(eth1)})
            assert trap.community == mini_lab.credentials.snmp_community
            assert snmp.get(r1.mgmt_ipv4, f"{IF_OPER}.{eth1}") == "2"  # down
        finally:
            up = cli("lab", "link", "up", "r1:eth1", "--lab", mini_lab.name)
        assert up.returncode == 0, up.stderr
        traps.wait_for(LINK_UP, r1.mgmt_ipv4, match={IF_INDEX: str(eth1)})
    assert snmp.get(r1.mgmt_ipv4, f"{IF_OPER}.{eth1}") == "1"


def test_unknown_interface_is_refused_and_changes_nothing(mini_lab: LabHandle) -> None:
    res = cli("lab", "link", "down", "r1:eth7", "--lab", mini_lab.name)
    assert res.returncode == 1
    assert "node r1 has no interface 'eth7'" in res.stderr
    links = mini_lab.nodes["r1"].run("ip", "-j", "link", "show").stdout
    assert all(link["operstate"] != "DOWN" or link["ifname"] not in ("eth1", "mgmt0")
               for link in json.loads(links))


def test_stopped_node_takes_its_links_down_and_comes_back(mini_lab: LabHandle) -> None:
    """`lab node stop r2`: r2 stops answering, r1 sees eth1 lose carrier and traps it;
    `lab node start r2`: r2 answers again and OSPF comes back."""
    r1, r2 = mini_lab.nodes["r1"], mini_lab.nodes["r2"]
    snmp = NetSnmp(mini_lab.credentials)
    eth1 = snmp.if_index(r1.mgmt_ipv4)["eth1"]
    with TrapListener(mini_lab.trap_host, mini_lab.trap_port) as traps:
        assert cli("lab", "node", "stop", "r2", "--lab", mini_lab.name).returncode == 0
        try:
            traps.wait_for(LINK_DOWN, r1.mgmt_ipv4, match={IF_INDEX: str(eth1)})
            rows = json.loads(cli("lab", "inspect", mini_lab.name, "--json").stdout)
            state = {n["name"]: n for n in rows["nodes"]}
            assert state["r2"]["state"] == "stopped"
            assert state["r2"]["snmp"] is False and state["r2"]["ssh_cli"] is False
            assert state["r1"]["snmp"] is True
        finally:
            started = cli("lab", "node", "start", "r2", "--lab", mini_lab.name)
        assert started.returncode == 0, started.stderr
        traps.wait_for(LINK_UP, r1.mgmt_ipv4, match={IF_INDEX: str(eth1)})
    assert snmp.get(r2.mgmt_ipv4, "1.3.6.1.2.1.1.5.0") == "r2"


def test_traffic_moves_the_routers_counters_by_at_least_the_bytes_sent(
        mini_lab: LabHandle) -> None:
    """h1 -> r1 crosses r2 (eth2 in, eth1 out) and enters r1 on eth1."""
    r1, r2 = mini_lab.nodes["r1"], mini_lab.nodes["r2"]
    snmp = NetSnmp(mini_lab.credentials)
    idx1, idx2 = snmp.if_index(r1.mgmt_ipv4), snmp.if_index(r2.mgmt_ipv4)
    probes = {
        "r2 eth2 in": (r2.mgmt_ipv4, f"{IF_HC_IN}.{idx2['eth2']}"),
        "r2 eth1 out": (r2.mgmt_ipv4, f"{IF_HC_OUT}.{idx2['eth1']}"),
        "r1 eth1 in": (r1.mgmt_ipv4, f"{IF_HC_IN}.{idx1['eth1']}"),
    }
    before = {k: int(snmp.get(ip, oid)) for k, (ip, oid) in probes.items()}
    nbytes = 3_000_000
    res = cli("lab", "traffic", "h1", "r1", "--bytes", str(nbytes), "--lab", mini_lab.name,
              "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["bytes_sent"] == nbytes
    assert report["bytes_received"] == nbytes
    assert report["dst_address"] == "10.255.1.1"  # r1's loopback, not its mgmt address
    # snmpd caches IF-MIB for a few seconds: read until the cache has refreshed
    deadline = time.monotonic() + 20
    while True:
        after = {k: int(snmp.get(ip, oid)) for k, (ip, oid) in probes.items()}
        if all(after[k] - before[k] >= nbytes for k in probes) or time.monotonic() > deadline:
            break
        time.sleep(1)
    for key in probes:
        delta = after[key] - before[key]
        # payload plus TCP/IP/Ethernet headers; a transfer cut by a flapping route is
        # retried whole, so each attempt may add up to one more payload (no mgmt detour)
        bound = (report["attempts"] + 1) * nbytes
        assert nbytes <= delta < bound, f"{key}: moved {delta} octets for {nbytes}"
