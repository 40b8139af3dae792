"""collectors.snmp and collectors.snmp_facts against the lab's real snmpd (net-snmp, with
lldpd over AgentX), checked with net-snmp's own tools as an independent peer."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr

from collectors import (
    SnmpClient,
    SnmpCredentials,
    SnmpFacts,
    SnmpVersion,
    Special,
    VarBind,
    collect_snmp_facts,
)
from lab.model import Role
from lab.pytest_plugin import LabHandle, NodeHandle, free_udp_port
from tests.integration.peers import NetSnmp
from topology.credentials import SnmpV3User
from topology.errors import AuthenticationFailed, ConnectionRefused, DeviceTimeout

pytestmark = pytest.mark.lab
T = TypeVar("T")

SYS_NAME = "1.3.6.1.2.1.1.5.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
ENGINE_ID = "1.3.6.1.6.3.10.2.1.1.0"
IF_TABLE = "1.3.6.1.2.1.2.2"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
IF_INDEX = "1.3.6.1.2.1.2.2.1.1"


def lab_creds(lab: LabHandle, version: SnmpVersion) -> SnmpCredentials:
    found = SnmpCredentials.from_profile(lab.lab.profile(), version)
    assert found is not None
    return found


def with_client(body: Callable[[SnmpClient], Awaitable[T]], **kw: Any) -> T:
    """Run ``body`` with a fresh client in a fresh event loop (a client belongs to one)."""
    async def main() -> T:
        async with SnmpClient(**kw) as client:
            return await body(client)
    return asyncio.run(main())


def netsnmp_text(vb: VarBind) -> str:
    """Our value as `snmpwalk -On -Oq` prints it (after peers.NetSnmp strips the quotes)."""
    value = vb.value
    if vb.kind == "TimeTicks" and isinstance(value, int):
        cs = value % 100
        s = value // 100
        return f"{s // 86400}:{s // 3600 % 24}:{s // 60 % 60:02d}:{s % 60:02d}.{cs:02d}"
    if isinstance(value, bytes):
        text = value.decode("ascii", errors="replace")
        if all(32 <= b < 127 for b in value):
            return text
        return " ".join(f"{b:02X}" for b in value) + " "
    if vb.kind == "ObjectIdentifier":
        return f".{value}"
    return str(value)


# -- basic operations ---------------------------------------------------------------------

@pytest.mark.parametrize("version", list(SnmpVersion))
def test_get_sysname_in_every_version(mini_lab: LabHandle, version: SnmpVersion) -> None:
    creds = lab_creds(mini_lab, version)

    async def body(client: SnmpClient) -> list[list[VarBind]]:
        return await asyncio.gather(*(client.get(n.mgmt_ipv4, creds, [SYS_NAME])
                                      for n in mini_lab.managed()))
    answers = with_client(body)
    for node, answer in zip(mini_lab.managed(), answers, strict=True):
        assert answer == [VarBind(SYS_NAME, node.name.encode(), "OctetString")]


def test_walk_of_if_table_equals_net_snmp(core_lab: LabHandle) -> None:
    r1 = core_lab.nodes["r1"]
    theirs = NetSnmp(core_lab.credentials).walk(r1.mgmt_ipv4, IF_TABLE)

    async def body(client: SnmpClient) -> dict[SnmpVersion, list[VarBind]]:
        return {v: await client.walk(r1.mgmt_ipv4, lab_creds(core_lab, v), IF_TABLE,
                                     max_repetitions=10) for v in SnmpVersion}
    ours = with_client(body)
    v2c = ours[SnmpVersion.V2C]
    assert len(theirs) == 22 * 6, "ifTable: 22 columns, r1 has lo, mgmt0 and eth1..eth4"
    assert [vb.oid for vb in v2c] == list(theirs), "OIDs differ from snmpwalk's"
    for vb in v2c:
        if vb.kind in ("Counter32", "Counter64"):  # read after snmpwalk: never smaller
            assert isinstance(vb.value, int) and vb.value >= int(theirs[vb.oid]), vb
        else:
            assert netsnmp_text(vb) == theirs[vb.oid], vb
    for version in (SnmpVersion.V1, SnmpVersion.V3):
        assert [vb.oid for vb in ours[version]] == list(theirs), version


def test_get_bulk_honours_max_repetitions(mini_lab: LabHandle) -> None:
    r1 = mini_lab.nodes["r1"]
    creds = lab_creds(mini_lab, SnmpVersion.V2C)

    async def body(client: SnmpClient) -> tuple[list[VarBind], ...]:
        return (
            await client.get_bulk(r1.mgmt_ipv4, creds, [IF_DESCR], max_repetitions=2),
            await client.get_bulk(r1.mgmt_ipv4, creds, ["1.3.6.1.2.1.1.5", IF_INDEX],
                                  non_repeaters=1, max_repetitions=3),
            await client.get_bulk(r1.mgmt_ipv4, creds, [IF_INDEX], max_repetitions=12),
            await client.walk(r1.mgmt_ipv4, creds, IF_INDEX),
        )
    two, mixed, twelve, walked = with_client(body)
    assert [vb.oid for vb in two] == [f"{IF_DESCR}.1", f"{IF_DESCR}.2"]
    assert [vb.oid for vb in mixed] == [SYS_NAME] + [vb.oid for vb in walked[:3]]
    assert len(twelve) == 12  # the agent went on past the column, as GETBULK does
    assert twelve[:len(walked)] == walked
    assert not twelve[len(walked)].oid.startswith(IF_INDEX + ".")


@pytest.mark.parametrize("version", list(SnmpVersion))
def test_missing_oids_come_back_as_data(mini_lab: LabHandle, version: SnmpVersion) -> None:
    r1 = mini_lab.nodes["r1"]
    creds = lab_creds(mini_lab, version)

    async def body(client: SnmpClient) -> tuple[list[VarBind], list[VarBind]]:
        return (await client.get(r1.mgmt_ipv4, creds,
                                 [SYS_NAME, "1.3.6.1.2.1.1.5.1", "1.3.6.1.2.1.99.1.0"]),
                await client.get_next(r1.mgmt_ipv4, creds, [SYS_NAME, "2.0"]))
    got, nxt = with_client(body)
    assert got[0].value == b"r1"
    if version is SnmpVersion.V1:  # v1 only says noSuchName
        assert [vb.value for vb in got[1:]] == [Special.NO_SUCH_OBJECT] * 2
    else:
        assert [vb.value for vb in got[1:]] == [Special.NO_SUCH_INSTANCE,
                                                Special.NO_SUCH_OBJECT]
    assert nxt[0].oid == "1.3.6.1.2.1.1.6.0"
    assert nxt[1] == VarBind("2.0", Special.END_OF_MIB_VIEW, "EndOfMibView")


# -- failures -----------------------------------------------------------------------------

def test_wrong_v3_auth_key_is_authentication_failed(mini_lab: LabHandle) -> None:
    r1 = mini_lab.nodes["r1"]
    right = lab_creds(mini_lab, SnmpVersion.V3)
    assert right.v3 is not None
    wrong_key = "not-the-auth-key-42"
    wrong = dataclasses.replace(right, v3=right.v3.model_copy(
        update={"auth_key": SecretStr(wrong_key)}))
    secrets = (wrong_key, mini_lab.credentials.snmpv3_auth_key,
               mini_lab.credentials.snmpv3_priv_key, mini_lab.credentials.snmp_community)

    async def body(client: SnmpClient) -> tuple[AuthenticationFailed, list[VarBind], int]:
        with pytest.raises(AuthenticationFailed) as caught:
            await client.get(r1.mgmt_ipv4, wrong, [SYS_NAME])
        timeouts = client.stats.timeouts
        # the same client then logs in with the right keys for the same user name
        return caught.value, await client.get(r1.mgmt_ipv4, right, [SYS_NAME]), timeouts
    error, after, timeouts = with_client(body)
    assert r1.mgmt_ipv4 in str(error) and repr(mini_lab.name) in str(error)
    assert (error.device, error.profile) == (r1.mgmt_ipv4, mini_lab.name)
    for secret in secrets:
        assert secret not in str(error) and secret not in repr(error)
    # a USM report answered: the failure is authentication, not a timeout waited out
    assert timeouts == 0
    assert after[0].value == b"r1"


def test_wrong_community_is_a_timeout_without_hanging(mini_lab: LabHandle) -> None:
    r1 = mini_lab.nodes["r1"]
    wrong = dataclasses.replace(lab_creds(mini_lab, SnmpVersion.V2C),
                                community=SecretStr("not-the-community"))
    timeout_s, retries = 0.5, 1

    async def body(client: SnmpClient) -> tuple[DeviceTimeout, int]:
        with pytest.raises(DeviceTimeout) as caught:  # returns: no hang (pytest-timeout)
            await client.get(r1.mgmt_ipv4, wrong, [SYS_NAME])
        return caught.value, client.stats.timeouts
    error, timeouts = with_client(body, timeout_s=timeout_s, retries=retries)
    # one request, its retries inside it, ended as exactly one timeout (no endless retry)
    assert timeouts == 1
    assert "not-the-community" not in str(error)
    assert mini_lab.credentials.snmp_community not in str(error)


def test_wrong_v3_priv_key_is_dropped_by_net_snmp(mini_lab: LabHandle) -> None:
    """net-snmp cannot tell a wrong AES key (the PDU decrypts to garbage): no report."""
    r1 = mini_lab.nodes["r1"]
    right = lab_creds(mini_lab, SnmpVersion.V3)
    assert right.v3 is not None
    wrong = dataclasses.replace(right, v3=right.v3.model_copy(
        update={"priv_key": SecretStr("not-the-priv-key")}))

    async def body(client: SnmpClient) -> None:
        with pytest.raises(DeviceTimeout):
            await client.get(r1.mgmt_ipv4, wrong, [SYS_NAME])
    with_client(body, timeout_s=0.5, retries=0)


def test_host_without_agent_is_connection_refused(core_lab: LabHandle) -> None:
    host = core_lab.by_role(Role.HOST)[0]

    async def body(client: SnmpClient) -> None:
        with pytest.raises(ConnectionRefused) as caught:
            await client.get(host.mgmt_ipv4, lab_creds(core_lab, SnmpVersion.V2C), [SYS_NAME])
        assert caught.value.device == host.mgmt_ipv4
        assert client.stats.refused == 1
    with_client(body, timeout_s=0.5, retries=0)


# -- concurrency --------------------------------------------------------------------------

def test_concurrent_gets_stay_within_the_in_flight_bounds(
        core_lab: LabHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    managed = core_lab.managed()
    creds = lab_creds(core_lab, SnmpVersion.V2C)
    max_in_flight, per_target, per_node = 6, 2, 40
    seen: dict[str, int] = {"all": 0, "peak": 0, "peak_target": 0}
    by_target: dict[Any, int] = {}
    real_roundtrip = SnmpClient._roundtrip

    async def counting_roundtrip(client: SnmpClient, endpoint: Any, address: Any,
                                 *args: Any, **kw: Any) -> Any:
        """An independent count of v2c requests on the wire, per target and overall."""
        key = address[:2]
        seen["all"] += 1
        by_target[key] = by_target.get(key, 0) + 1
        seen["peak"] = max(seen["peak"], seen["all"])
        seen["peak_target"] = max(seen["peak_target"], by_target[key])
        try:
            return await real_roundtrip(client, endpoint, address, *args, **kw)
        finally:
            seen["all"] -= 1
            by_target[key] -= 1

    monkeypatch.setattr(SnmpClient, "_roundtrip", counting_roundtrip)

    async def body(client: SnmpClient) -> list[tuple[NodeHandle, list[VarBind]]]:
        async def one(node: NodeHandle) -> tuple[NodeHandle, list[VarBind]]:
            return node, await client.get(node.mgmt_ipv4, creds, [SYS_NAME, SYS_UPTIME])
        answers = await asyncio.gather(*(one(n) for n in managed for _ in range(per_node)))
        stats = client.stats
        assert stats.requests == len(managed) * per_node
        assert stats.timeouts == stats.auth_failures == stats.errors == 0
        assert stats.peak_in_flight == max_in_flight
        assert stats.peak_in_flight_per_target == per_target
        assert stats.in_flight == 0
        return answers
    answers = with_client(body, max_in_flight=max_in_flight,
                          max_in_flight_per_target=per_target)
    for node, answer in answers:
        assert answer[0].value == node.name.encode()
        assert answer[1].kind == "TimeTicks"
    assert seen["peak"] == max_in_flight
    assert seen["peak_target"] == per_target


# -- facts --------------------------------------------------------------------------------

def wait_for_facts(client: SnmpClient, node: NodeHandle, creds: SnmpCredentials,
                   ready: Callable[[SnmpFacts], bool], timeout_s: float = 30.0
                   ) -> Awaitable[SnmpFacts]:
    async def poll() -> SnmpFacts:
        deadline = time.monotonic() + timeout_s
        while True:
            facts = await collect_snmp_facts(client, node.mgmt_ipv4, creds)
            if ready(facts) or time.monotonic() > deadline:
                return facts
            await asyncio.sleep(1.0)
    return poll()


def test_facts_of_r1(core_lab: LabHandle) -> None:
    r1, r2, r3 = (core_lab.nodes[n] for n in ("r1", "r2", "r3"))
    peer = NetSnmp(core_lab.credentials)
    if_index = peer.if_index(r1.mgmt_ipv4)
    creds = lab_creds(core_lab, SnmpVersion.V3)

    def both_neighbours(facts: SnmpFacts) -> bool:
        return {n.sys_name for n in facts.lldp_neighbors} >= {"r2", "r3"}
    facts = with_client(lambda c: wait_for_facts(c, r1, creds, both_neighbours))

    assert facts.partial == []
    assert facts.system.name == "r1"
    assert facts.engine_id == "".join(peer.get(r1.mgmt_ipv4, ENGINE_ID).split()).lower()
    interfaces = {i.name: i for i in facts.interfaces}
    for name in ("eth1", "eth2", "eth3", "eth4", "mgmt0"):
        assert interfaces[name].if_index == if_index[name], name
        assert interfaces[name].oper_status == "up"
        assert interfaces[name].mac is not None
    addresses = {(a.address, a.prefix_length): a.if_index for a in facts.addresses}
    assert addresses[("10.0.12.1", 30)] == if_index["eth1"]
    assert addresses[(r1.mgmt_ipv4, 24)] == if_index["mgmt0"]
    assert facts.entities == []  # net-snmp on Linux has no ENTITY-MIB
    assert facts.lldp_local is not None and facts.lldp_local.sys_name == "r1"
    neighbours = {n.sys_name: n for n in facts.lldp_neighbors}
    assert set(neighbours) == {"r2", "r3"}
    assert (neighbours["r2"].local_port, neighbours["r2"].port_id) == ("eth1", "eth1")
    assert (neighbours["r3"].local_port, neighbours["r3"].port_id) == ("eth2", "eth2")
    assert neighbours["r2"].mgmt_address == r2.mgmt_ipv4
    assert neighbours["r3"].mgmt_address == r3.mgmt_ipv4
    for n in neighbours.values():
        assert n.chassis_id_subtype == "macAddress" and n.chassis_id.count(":") == 5
        assert n.port_id_subtype == "interfaceName"
        assert "router" in n.capabilities_enabled


def test_facts_of_every_node_have_unique_engine_ids(core_lab: LabHandle) -> None:
    managed = core_lab.managed()
    creds = lab_creds(core_lab, SnmpVersion.V2C)

    async def body(client: SnmpClient) -> list[SnmpFacts]:
        return await asyncio.gather(*(collect_snmp_facts(client, n.mgmt_ipv4, creds)
                                      for n in managed))
    all_facts = with_client(body)
    for node, facts in zip(managed, all_facts, strict=True):
        assert facts.system.name == node.name
        assert facts.partial == []
        assert facts.engine_id
        assert {i.name for i in facts.interfaces} >= {"mgmt0", *node.interfaces}
    engine_ids = [f.engine_id for f in all_facts]
    assert len(set(engine_ids)) == len(engine_ids)


# -- every USM protocol against a net-snmp agent on loopback --------------------------------

USM_USERS = {  # user -> (auth, priv); the keys are per test run
    "md5des": ("MD5", "DES"),
    "sha224aes192": ("SHA-224", "AES-192"),
    "sha256aes256": ("SHA-256", "AES-256"),
    "sha384aes": ("SHA-384", "AES"),
    "sha512aes256": ("SHA-512", "AES-256"),
    "shaaes256": ("SHA", "AES-256"),  # SHA-1 is too short for AES-256: key extension
}
AUTH_PASS = "loopback-auth-pass"
PRIV_PASS = "loopback-priv-pass"


@pytest.fixture
def loopback_agent(tmp_path: Path) -> Iterator[int]:
    """A net-snmp snmpd on 127.0.0.1 with a user per protocol pair; yields its port."""
    port = free_udp_port()
    conf = tmp_path / "snmpd.conf"
    lines = [f"agentAddress udp:127.0.0.1:{port}", f"[snmp] persistentDir {tmp_path}",
             "sysName loopback-agent"]
    for user, (auth, priv) in USM_USERS.items():
        lines += [f"createUser {user} {auth} {AUTH_PASS} {priv} {PRIV_PASS}",
                  f"rouser {user} priv"]
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        ["snmpd", "-f", "-C", "-c", str(conf), "-Lf", str(tmp_path / "snmpd.log"),
         "-p", str(tmp_path / "snmpd.pid")],
        env={**os.environ, "MIBS": "", "MIBDIRS": "/nonexistent"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_every_usm_protocol_pair(loopback_agent: int) -> None:
    async def body(client: SnmpClient) -> dict[str, list[VarBind]]:
        answers = {}
        for user, (auth, priv) in USM_USERS.items():
            v3 = SnmpV3User(user=user, auth_protocol=auth, auth_key=SecretStr(AUTH_PASS),  # type: ignore[arg-type]
                            priv_protocol=priv, priv_key=SecretStr(PRIV_PASS))  # type: ignore[arg-type]
            creds = SnmpCredentials(version=SnmpVersion.V3, profile="loopback", v3=v3)
            deadline = time.monotonic() + 10
            while True:  # snmpd may still be starting
                try:
                    answers[user] = await client.get("127.0.0.1", creds, [SYS_NAME],
                                                     port=loopback_agent)
                    break
                except DeviceTimeout:
                    if time.monotonic() > deadline:
                        raise
        return answers
    answers = with_client(body, timeout_s=0.5, retries=1)
    assert {u: a[0].value for u, a in answers.items()} == \
        dict.fromkeys(USM_USERS, b"loopback-agent")
