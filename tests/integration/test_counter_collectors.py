"""The counter and health collectors against the core lab's real agents: net-snmp's snmpd
on r1 (checked with net-snmp's own snmpget as the independent peer, and the kernel's
``ip link``) and yuma123's netconfd on vnf1 (checked with the kernel's interface
statistics). Real traffic moves the counters; a real snmpd restart moves sysUpTime back.

The snmpd restart runs last: it resets the agent's one-minute CPU averages."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from collectors.counters import CounterSample, InterfaceCounters
from collectors.netconf_counters import netconf_counters
from collectors.snmp import SnmpClient, SnmpCredentials, SnmpVersion
from collectors.snmp_counters import CounterCollector
from lab.proc import end_processes
from lab.pytest_plugin import LabHandle
from lab.runtime import Lab
from lab.state import LabState
from tests.integration.peers import NetSnmp
from topology.credentials import SnmpV3User
from topology.errors import DeviceTimeout, LabRuntimeError

pytestmark = pytest.mark.lab
T = TypeVar("T")

NBYTES = 2_000_000
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
IF_NUMBER = "1.3.6.1.2.1.2.1.0"
MEM_TOTAL_REAL = "1.3.6.1.4.1.2021.4.5.0"
HR_STORAGE_DESCR = "1.3.6.1.2.1.25.2.3.1.3"
HR_STORAGE_SIZE = "1.3.6.1.2.1.25.2.3.1.5"
HR_PROCESSOR_LOAD = "1.3.6.1.2.1.25.3.3.1.2"
LLDP_REM_SYS_NAME = "1.0.8802.1.1.2.1.4.1.1.9"
# written out here from the MIBs, not taken from the collector: the peer checks the mapping
IF_MIB_64 = {
    "in_octets": "1.3.6.1.2.1.31.1.1.1.6", "in_ucast_pkts": "1.3.6.1.2.1.31.1.1.1.7",
    "in_mcast_pkts": "1.3.6.1.2.1.31.1.1.1.8", "in_bcast_pkts": "1.3.6.1.2.1.31.1.1.1.9",
    "out_octets": "1.3.6.1.2.1.31.1.1.1.10", "out_ucast_pkts": "1.3.6.1.2.1.31.1.1.1.11",
    "out_mcast_pkts": "1.3.6.1.2.1.31.1.1.1.12", "out_bcast_pkts": "1.3.6.1.2.1.31.1.1.1.13",
    "in_discards": "1.3.6.1.2.1.2.2.1.13", "in_errors": "1.3.6.1.2.1.2.2.1.14",
    "out_discards": "1.3.6.1.2.1.2.2.1.19", "out_errors": "1.3.6.1.2.1.2.2.1.20",
}
IF_MIB_32 = {
    "in_octets": "1.3.6.1.2.1.2.2.1.10", "in_ucast_pkts": "1.3.6.1.2.1.2.2.1.11",
    "in_mcast_pkts": "1.3.6.1.2.1.2.2.1.12", "out_octets": "1.3.6.1.2.1.2.2.1.16",
    "out_ucast_pkts": "1.3.6.1.2.1.2.2.1.17", "out_mcast_pkts": "1.3.6.1.2.1.2.2.1.18",
    "in_discards": "1.3.6.1.2.1.2.2.1.13", "in_errors": "1.3.6.1.2.1.2.2.1.14",
    "out_discards": "1.3.6.1.2.1.2.2.1.19", "out_errors": "1.3.6.1.2.1.2.2.1.20",
}
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
IF_HIGH_SPEED = "1.3.6.1.2.1.31.1.1.1.15"
IF_DISCONTINUITY = "1.3.6.1.2.1.31.1.1.1.19"
IF_SPEED = "1.3.6.1.2.1.2.2.1.5"
OPER = {"1": "up", "2": "down", "3": "testing", "4": "unknown", "5": "dormant",
        "6": "notPresent", "7": "lowerLayerDown"}
# lab/templates/snmpd.conf.j2: the DISMAN monitor's noAuth user sees only the interfaces
# group (ifNumber, ifTable) -- a real agent view without ifXTable and without sysUpTime
IF_TABLE_ONLY_USER = "sbinternal"


def v2c(lab: LabHandle) -> SnmpCredentials:
    found = SnmpCredentials.from_profile(lab.lab.profile(), SnmpVersion.V2C)
    assert found is not None
    return found


def with_collector(body: Callable[[CounterCollector, SnmpClient], Awaitable[T]]) -> T:
    """Run ``body`` with a fresh client and collector in a fresh event loop."""
    async def main() -> T:
        async with SnmpClient(timeout_s=2.0, retries=2) as client:
            return await body(CounterCollector(client), client)
    return asyncio.run(main())


def snmpget(peer: NetSnmp, host: str, oids: list[str]) -> dict[str, str]:
    """net-snmp's snmpget (numeric OIDs and values), 30 OIDs per request."""
    out: dict[str, str] = {}
    for start in range(0, len(oids), 30):
        proc = subprocess.run(
            ["snmpget", "-v2c", "-On", "-Oq", "-Ot", "-Oe", "-t", "2", "-r", "2", host,
             *oids[start:start + 30]],
            capture_output=True, text=True, env=peer.env, check=False, timeout=60)
        assert proc.returncode == 0, proc.stderr
        for line in proc.stdout.splitlines():
            oid, _, value = line.partition(" ")
            out[oid.lstrip(".")] = value.strip().strip('"')
    return out


def by_name(sample: CounterSample) -> dict[str, InterfaceCounters]:
    return {i.name: i for i in sample.interfaces if i.name is not None}


def kernel_links(lab: LabHandle, node: str) -> dict[int, str]:
    """ifindex -> name from ``ip link`` inside the node."""
    out = lab.nodes[node].run("ip", "-j", "link", "show").stdout
    return {link["ifindex"]: link["ifname"] for link in json.loads(out)}


def egress(lab: LabHandle, node: str, address: str) -> str:
    out = lab.nodes[node].run("ip", "-j", "route", "get", address).stdout
    return str(json.loads(out)[0]["dev"])


# -- counters against net-snmp's snmpget --------------------------------------------------

def test_r1_counters_equal_snmpget_and_names_equal_ip_link(core_lab: LabHandle) -> None:
    r1, creds = core_lab.nodes["r1"], v2c(core_lab)
    peer = NetSnmp(core_lab.credentials)

    async def body(collector: CounterCollector,
                   client: SnmpClient) -> tuple[CounterSample, CounterSample, list[int]]:
        requests = []
        samples = []
        for _ in range(2):
            before = client.stats.requests
            samples.append(await collector.poll(r1.mgmt_ipv4, creds))
            requests.append(client.stats.requests - before)
        return samples[0], samples[1], requests

    first, sample, requests = with_collector(body)
    oids = [SYS_UPTIME, IF_NUMBER]
    for ifc in sample.interfaces:
        oids += [f"{column}.{ifc.if_index}" for column in
                 (*IF_MIB_64.values(), IF_OPER_STATUS, IF_HIGH_SPEED, IF_DISCONTINUITY)]
    theirs = snmpget(peer, r1.mgmt_ipv4, oids)

    assert requests == [1, 1], f"GETBULKs per poll: {requests}"
    assert first.index_refreshed and not sample.index_refreshed
    assert sample.source == "snmp" and sample.host == r1.mgmt_ipv4
    assert sample.sys_uptime_ticks is not None
    assert sample.sys_uptime_ticks <= int(theirs[SYS_UPTIME])
    assert sample.if_number == int(theirs[IF_NUMBER]) == len(sample.interfaces)
    assert sample.taken_at == pytest.approx(time.time(), abs=30)
    for ifc in sample.interfaces:
        i = ifc.if_index
        assert ifc.counter_bits == 64
        for field, column in IF_MIB_64.items():
            ours = getattr(ifc, field)
            assert isinstance(ours, int), (ifc.name, field)
            assert ours <= int(theirs[f"{column}.{i}"]), (ifc.name, field)  # only higher
        assert ifc.oper_status == OPER[theirs[f"{IF_OPER_STATUS}.{i}"]]
        assert ifc.speed_mbps == int(theirs[f"{IF_HIGH_SPEED}.{i}"])
        assert ifc.discontinuity_ticks == int(theirs[f"{IF_DISCONTINUITY}.{i}"])
    assert {i.if_index: i.name for i in sample.interfaces} == kernel_links(core_lab, "r1")
    assert {"eth1", "eth2", "eth3", "eth4", "mgmt0"} <= set(by_name(sample))


def test_r1_32_bit_fallback_without_ifxtable(core_lab: LabHandle) -> None:
    """A real net-snmp view holding ifTable only: counters from ifTable, names from
    ifDescr, no sysUpTime; equal to what snmpget reads of the same ifTable OIDs."""
    r1 = core_lab.nodes["r1"]
    creds = SnmpCredentials(version=SnmpVersion.V3, profile=core_lab.name,
                            v3=SnmpV3User(user=IF_TABLE_ONLY_USER, auth_protocol=None,
                                          priv_protocol=None))
    peer = NetSnmp(core_lab.credentials)

    async def body(collector: CounterCollector,
                   client: SnmpClient) -> tuple[CounterSample, int]:
        await collector.poll(r1.mgmt_ipv4, creds)
        before = client.stats.requests
        sample = await collector.poll(r1.mgmt_ipv4, creds)
        return sample, client.stats.requests - before

    sample, requests = with_collector(body)
    oids = []
    for ifc in sample.interfaces:
        oids += [f"{column}.{ifc.if_index}" for column in
                 (*IF_MIB_32.values(), IF_OPER_STATUS, IF_SPEED)]
    theirs = snmpget(peer, r1.mgmt_ipv4, oids)
    assert requests == 1
    assert sample.sys_uptime_ticks is None and not sample.index_refreshed
    assert {i.if_index: i.name for i in sample.interfaces} == kernel_links(core_lab, "r1")
    for ifc in sample.interfaces:
        i = ifc.if_index
        assert ifc.counter_bits == 32 and ifc.discontinuity_ticks is None
        assert ifc.in_bcast_pkts is None and ifc.out_bcast_pkts is None
        for field, column in IF_MIB_32.items():
            ours = getattr(ifc, field)
            assert isinstance(ours, int) and ours <= int(theirs[f"{column}.{i}"]), field
        assert ifc.oper_status == OPER[theirs[f"{IF_OPER_STATUS}.{i}"]]
        assert ifc.speed_mbps == round(int(theirs[f"{IF_SPEED}.{i}"]) / 1e6)


# -- counters move with real traffic ------------------------------------------------------

def test_r1_octets_grow_by_the_traffic_crossing_it(core_lab: LabHandle) -> None:
    r1, creds = core_lab.nodes["r1"], v2c(core_lab)
    lab = core_lab.lab
    ingress = "eth3"  # cust1's link (core.clab.yml)
    out_if = "?"  # r1's route to srv1, once OSPF has one (lab.traffic waits for it)

    def deltas(before: CounterSample, after: CounterSample) -> tuple[int, int]:
        b, a = by_name(before), by_name(after)
        return (a[ingress].in_octets or 0) - (b[ingress].in_octets or 0), \
            (a[out_if].out_octets or 0) - (b[out_if].out_octets or 0)

    async def body(collector: CounterCollector, client: SnmpClient
                   ) -> tuple[CounterSample, CounterSample, tuple[int, int], float]:
        before = await collector.poll(r1.mgmt_ipv4, creds)
        await asyncio.to_thread(lab.traffic, "cust1", "srv1", NBYTES)
        nonlocal out_if
        out_if = egress(core_lab, "r1", lab.data_address("srv1"))
        start, sent, polls = time.monotonic(), client.stats.requests, 0
        while True:  # snmpd caches IF-MIB for a few seconds: poll until it has refreshed
            after = await collector.poll(r1.mgmt_ipv4, creds)
            polls += 1
            if min(deltas(before, after)) >= NBYTES or time.monotonic() - start > 20:
                return (before, after, (polls, client.stats.requests - sent),
                        time.monotonic() - start)
            await asyncio.sleep(0.5)

    before, after, (polls, requests), waited = with_collector(body)
    assert requests == polls  # one GETBULK per steady poll
    got_in, got_out = deltas(before, after)
    assert got_in >= NBYTES, f"{ingress} in_octets grew {got_in} in {waited:.1f} s"
    assert got_out >= NBYTES, f"{out_if} out_octets grew {got_out} in {waited:.1f} s"
    assert got_in < 3 * NBYTES and got_out < 3 * NBYTES  # this transfer, not a flood
    b, a = by_name(before)[ingress], by_name(after)[ingress]
    # veth passes TSO/GRO super-frames (tens of kB each): packets grow, but far less
    # than NBYTES / MTU
    assert (a.in_ucast_pkts or 0) > (b.in_ucast_pkts or 0)
    assert not after.index_refreshed
    assert after.sys_uptime_ticks is not None and before.sys_uptime_ticks is not None
    assert after.sys_uptime_ticks > before.sys_uptime_ticks
    assert after.taken_at > before.taken_at


# -- health -------------------------------------------------------------------------------

def test_r1_health_has_cpu_memory_and_storage(core_lab: LabHandle) -> None:
    r1, creds = core_lab.nodes["r1"], v2c(core_lab)
    peer = NetSnmp(core_lab.credentials)

    async def body(collector: CounterCollector, client: SnmpClient) -> tuple[Any, int]:
        deadline = time.monotonic() + 90  # snmpd has CPU averages after its first minute
        while (await collector.poll_health(r1.mgmt_ipv4, creds)).cpu_percent is None:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        before = client.stats.requests
        health = await collector.poll_health(r1.mgmt_ipv4, creds)
        return health, client.stats.requests - before

    health, requests = with_collector(body)
    mem_total_kb = int(peer.get(r1.mgmt_ipv4, MEM_TOTAL_REAL))
    loads = [int(v) for v in peer.walk(r1.mgmt_ipv4, HR_PROCESSOR_LOAD).values()]
    descrs = peer.walk(r1.mgmt_ipv4, HR_STORAGE_DESCR)
    sizes = peer.walk(r1.mgmt_ipv4, HR_STORAGE_SIZE)

    assert requests == 2
    assert health.host == r1.mgmt_ipv4
    assert health.cpu_percent is not None and 0 <= health.cpu_percent <= 100
    if loads:  # net-snmp serves HOST-RESOURCES' processor load: that is what was averaged
        assert abs(health.cpu_percent - sum(loads) / len(loads)) <= 25
    assert health.mem_total_bytes == mem_total_kb * 1024
    assert health.mem_used_bytes is not None
    assert 0 < health.mem_used_bytes < health.mem_total_bytes
    storage = {s.descr: s for s in health.storage}
    assert set(storage) == set(descrs.values())
    kinds = {s.kind for s in health.storage}
    assert {"ram", "disk"} <= kinds
    root = storage["/"]
    assert root.kind == "disk" and 0 < root.used_bytes <= root.size_bytes
    ram = next(s for s in health.storage if s.kind == "ram")
    index = next(k.rsplit(".", 1)[1] for k, v in descrs.items() if v == ram.descr)
    assert ram.size_bytes == int(sizes[f"{HR_STORAGE_SIZE}.{index}"]) * 1024


# -- NETCONF ------------------------------------------------------------------------------

def _udp_to(lab: Lab, src: str, address: str, nbytes: int) -> None:
    """``nbytes`` of UDP payload from ``src`` to ``address`` port 9 (discard): frames
    that reach the destination's interface whatever listens there."""
    script = ("import socket,sys\n"
              "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
              "n=int(sys.argv[2])\n"
              "while n>0:\n"
              "    k=min(n,1400); s.sendto(b'x'*k,(sys.argv[1],9)); n-=k\n")
    proc = lab.exec(src, [sys.executable, "-c", script, address, str(nbytes)])
    assert proc.returncode == 0, proc.stderr


def send_to_vnf1(lab: Lab, nbytes: int) -> str:
    """Traffic srv1 -> vnf1 with ``lab traffic``; where the receiver cannot start in
    vnf1 (its private /root hides a Python that lives under /root, e.g. pyenv), UDP
    datagrams from srv1 instead. Returns how."""
    try:
        lab.traffic("srv1", "vnf1", nbytes)
        return "lab traffic"
    except LabRuntimeError as exc:
        if "failed to execute" not in str(exc):
            raise
        warnings.warn(f"lab traffic to vnf1 impossible here ({exc}); sent UDP instead",
                      stacklevel=2)
        _udp_to(lab, "srv1", lab.data_address("vnf1"), nbytes)
        return "udp"


def test_vnf1_netconf_counters_grow_with_traffic(core_lab: LabHandle) -> None:
    vnf1, creds = core_lab.nodes["vnf1"], core_lab.credentials

    def poll() -> CounterSample:
        return netconf_counters(vnf1.mgmt_ipv4, creds.ssh_user, creds.ssh_password,
                                profile=core_lab.name)

    def kernel_rx(iface: str) -> int:
        return int(vnf1.run("cat", f"/sys/class/net/{iface}/statistics/rx_bytes").stdout)

    before = poll()
    how = send_to_vnf1(core_lab.lab, NBYTES)
    deadline = time.monotonic() + 20
    while True:
        after = poll()
        kernel = kernel_rx("eth1")
        grown = (by_name(after)["eth1"].in_octets or 0) - (by_name(before)["eth1"].in_octets or 0)
        if grown >= NBYTES or time.monotonic() > deadline:
            break
        time.sleep(1)

    for sample in (before, after):
        assert (sample.source, sample.sys_uptime_ticks, sample.host) == \
            ("netconf", None, vnf1.mgmt_ipv4)
        assert {"lo", "mgmt0", "eth1"} <= set(by_name(sample))
        assert sample.if_number == len(sample.interfaces)
    eth1 = by_name(after)["eth1"]
    assert grown >= NBYTES, f"eth1 in_octets grew {grown} after {NBYTES} bytes ({how})"
    assert eth1.in_octets is not None and eth1.in_octets <= kernel  # the kernel's is later
    assert eth1.counter_bits == 64 and eth1.oper_status == "up"
    assert eth1.speed_mbps is not None and eth1.speed_mbps > 0
    assert after.taken_at > before.taken_at
    assert [(i.if_index, i.name) for i in before.interfaces] == \
        [(i.if_index, i.name) for i in after.interfaces]


# -- an agent restart (last: it resets snmpd's one-minute CPU averages) --------------------

def restart_snmpd(lab: Lab, node: str) -> None:
    """End the node's snmpd (exactly the recorded ProcRef) and start it again the way
    lab.daemons.start_daemons does; the state file follows each step."""
    pod = lab.pod(node)
    old = pod.node.daemons["snmpd"]
    assert end_processes([old]) == [], "snmpd would not end"
    del pod.node.daemons["snmpd"]
    lab.state.save()
    d = pod.dir
    pod.start_forking("snmpd", ["snmpd", "-C", "-c", str(d / "snmpd.conf"),
                                "-p", "/run/snmpd.pid", "-Lf", str(d / "log" / "snmpd.log")],
                      d / "run" / "snmpd.pid")
    new = pod.node.daemons["snmpd"]
    assert new != old and new.alive() and not old.alive()
    assert LabState.load(lab.state.directory).nodes[node].daemons["snmpd"] == new


def test_snmpd_restart_moves_uptime_back_and_refreshes_the_index(
        core_lab: LabHandle) -> None:
    r1, creds = core_lab.nodes["r1"], v2c(core_lab)
    peer = NetSnmp(core_lab.credentials)

    async def poll_retrying(collector: CounterCollector) -> CounterSample:
        deadline = time.monotonic() + 15
        while True:
            try:
                return await collector.poll(r1.mgmt_ipv4, creds)
            except DeviceTimeout:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def body(collector: CounterCollector,
                   client: SnmpClient) -> tuple[list[CounterSample], int]:
        samples = [await collector.poll(r1.mgmt_ipv4, creds),
                   await collector.poll(r1.mgmt_ipv4, creds)]
        await asyncio.to_thread(restart_snmpd, core_lab.lab, "r1")
        before = client.stats.requests
        samples.append(await poll_retrying(collector))
        refresh_requests = client.stats.requests - before
        samples.append(await collector.poll(r1.mgmt_ipv4, creds))
        return samples, refresh_requests

    (first, steady, restarted, after), refresh_requests = with_collector(body)
    assert first.index_refreshed and not steady.index_refreshed
    assert steady.sys_uptime_ticks is not None and restarted.sys_uptime_ticks is not None
    assert restarted.sys_uptime_ticks < steady.sys_uptime_ticks
    assert restarted.index_refreshed, "sysUpTime went back: the index must be re-read"
    assert refresh_requests == 2  # the steady GETBULK, then the walk with names
    assert not after.index_refreshed
    assert [(i.if_index, i.name) for i in restarted.interfaces] == \
        [(i.if_index, i.name) for i in steady.interfaces]

    # leave the lab as it was: lldpd registers LLDP-MIB with the new snmpd again
    deadline = time.monotonic() + 60
    while not peer.walk(r1.mgmt_ipv4, LLDP_REM_SYS_NAME):
        assert time.monotonic() < deadline, "lldpd did not come back to the new snmpd"
        time.sleep(2)
