"""Unit tests for collectors.snmp and collectors.snmp_facts without a network: value
conversion, the one error mapping, credentials, the client's logic over a stubbed network
(its own v1/v2c datagrams answered in place of a socket, pysnmp's v3 commands stubbed), and
the facts built from a recording of the lab's r1 (net-snmp 5.9.3 + lldpd)."""
# ruff: noqa: E501  (the recording below keeps the agent's long OIDs and strings on one line)

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import errno
import socket
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import SecretStr
from pysnmp.carrier.error import CarrierError
from pysnmp.hlapi.v3arch import asyncio as snmp
from pysnmp.hlapi.v3arch.asyncio.cmdgen import VB_PROCESSOR
from pysnmp.proto import errind, rfc1902, rfc1905

from collectors import (
    SnmpClient,
    SnmpCredentials,
    SnmpVersion,
    Special,
    VarBind,
    collect_snmp_facts,
    convert_value,
    map_snmp_error,
)
from collectors.ber import Message, PduType, decode_message, encode_message
from collectors.snmp import _Endpoint
from collectors.snmp_facts import (
    _addresses,
    _capabilities,
    _inet_address,
    _interfaces,
    _lldp_id,
    _mac,
    _man_address,
    _prefix_length,
    _walk_columns,
)
from topology.credentials import CredentialProfile, SnmpV3User
from topology.errors import (
    AuthenticationFailed,
    CollectionError,
    ConnectionRefused,
    CredentialError,
    DeviceTimeout,
    ProtocolError,
    StatusCode,
)

COMMUNITY = "c0mmunity-s3cret"
AUTH_KEY = "auth-s3cret-key"
PRIV_KEY = "priv-s3cret-key"
SECRETS = (COMMUNITY, AUTH_KEY, PRIV_KEY)


def profile(**changes: Any) -> CredentialProfile:
    data: dict[str, Any] = {
        "name": "core", "snmp_community": COMMUNITY,
        "snmp_v3": {"user": "sbv3", "auth_protocol": "SHA-256", "auth_key": AUTH_KEY,
                    "priv_protocol": "AES-256", "priv_key": PRIV_KEY}}
    data.update(changes)
    return CredentialProfile.model_validate(data)


def creds(version: SnmpVersion = SnmpVersion.V2C) -> SnmpCredentials:
    found = SnmpCredentials.from_profile(profile(), version)
    assert found is not None
    return found


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in str(text), f"secret leaked into {text!r}"


# -- value conversion ------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected", "kind"), [
    (rfc1902.Integer(-5), -5, "Integer"),
    (rfc1902.Integer32(7), 7, "Integer32"),
    (rfc1902.Counter32(4294967295), 4294967295, "Counter32"),
    (rfc1902.Counter64(18446744073709551615), 18446744073709551615, "Counter64"),
    (rfc1902.Gauge32(10000), 10000, "Gauge32"),
    (rfc1902.Unsigned32(3), 3, "Unsigned32"),
    (rfc1902.TimeTicks(63953), 63953, "TimeTicks"),
    (rfc1902.OctetString(b"r1"), b"r1", "OctetString"),
    (rfc1902.OctetString(b"\x16\xed\x58\x99\x93\x76"), b"\x16\xed\x58\x99\x93\x76",
     "OctetString"),
    (rfc1902.Opaque(b"\x9f\x78\x04"), b"\x9f\x78\x04", "Opaque"),
    (rfc1902.Bits(b"\x08"), b"\x08", "Bits"),
    (rfc1902.ObjectIdentifier("1.3.6.1.4.1.8072.3.2.10"), "1.3.6.1.4.1.8072.3.2.10",
     "ObjectIdentifier"),
    (rfc1902.IpAddress("255.255.255.252"), "255.255.255.252", "IpAddress"),
    (rfc1905.NoSuchObject(), Special.NO_SUCH_OBJECT, "NoSuchObject"),
    (rfc1905.NoSuchInstance(), Special.NO_SUCH_INSTANCE, "NoSuchInstance"),
    (rfc1905.EndOfMibView(), Special.END_OF_MIB_VIEW, "EndOfMibView"),
])
def test_convert_value(value: Any, expected: object, kind: str) -> None:
    got, got_kind = convert_value(value)
    assert got == expected
    assert type(got) is type(expected)
    assert got_kind == kind


def test_convert_value_refuses_unknown_types() -> None:
    with pytest.raises(TypeError, match="unsupported"):
        convert_value(object())


# -- the one error mapping -------------------------------------------------------------

def mapped(indication: object, status: Any = 0, index: Any = 0,
           **kw: Any) -> CollectionError | None:
    return map_snmp_error(indication, status, index, device="10.0.0.1",
                          operation="snmp get", profile="core", **kw)


@pytest.mark.parametrize(("indication", "cls", "status"), [
    (errind.requestTimedOut, DeviceTimeout, StatusCode.TIMEOUT),
    ("requestTimedOut", DeviceTimeout, StatusCode.TIMEOUT),
    ("No SNMP response received before timeout", DeviceTimeout, StatusCode.TIMEOUT),
    (errind.unknownUserName, AuthenticationFailed, StatusCode.AUTH_FAILED),
    (errind.wrongDigest, AuthenticationFailed, StatusCode.AUTH_FAILED),
    ("Wrong SNMP PDU digest", AuthenticationFailed, StatusCode.AUTH_FAILED),
    (errind.decryptionError, AuthenticationFailed, StatusCode.AUTH_FAILED),
    (errind.unsupportedSecurityLevel, AuthenticationFailed, StatusCode.AUTH_FAILED),
    (errind.notInTimeWindow, AuthenticationFailed, StatusCode.AUTH_FAILED),
    (errind.unknownEngineID, ProtocolError, StatusCode.PROTOCOL_ERROR),
    (errind.ReportPduReceived("1.3.6.1.6.3.99.0"), ProtocolError,
     StatusCode.PROTOCOL_ERROR),
    (errind.parseError, ProtocolError, StatusCode.PROTOCOL_ERROR),
])
def test_error_indications(indication: object, cls: type[CollectionError],
                           status: StatusCode) -> None:
    error = mapped(indication)
    assert type(error) is cls
    assert error.status is status
    assert (error.device, error.operation, error.profile) == ("10.0.0.1", "snmp get", "core")
    assert "10.0.0.1" in str(error) and "'core'" in str(error)


def test_wrong_community_is_a_timeout_and_says_so() -> None:
    error = mapped(errind.requestTimedOut)
    assert isinstance(error, DeviceTimeout)
    assert "community" in str(error)


def test_timeout_with_icmp_port_unreachable_is_refused() -> None:
    error = mapped(errind.requestTimedOut, port_refused=True)
    assert isinstance(error, ConnectionRefused)
    assert error.status is StatusCode.REFUSED


def test_no_error_maps_to_none() -> None:
    assert mapped(None) is None
    assert mapped(None, rfc1905.PDU().getComponentByName("error-status").clone(0)) is None


@pytest.mark.parametrize(("status", "cls", "word"), [
    (1, ProtocolError, "tooBig"),
    (5, ProtocolError, "genErr"),
    (2, ProtocolError, "noSuchName"),
    (16, AuthenticationFailed, "authorizationError"),
    (42, ProtocolError, "status 42"),
])
def test_error_status_names_the_oid(status: int, cls: type[CollectionError],
                                    word: str) -> None:
    error = mapped(None, rfc1902.Integer(status), rfc1902.Integer(2),
                   oids=["1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.6.0"])
    assert type(error) is cls
    assert word in str(error)
    assert "1.3.6.1.2.1.1.6.0" in str(error)


@pytest.mark.parametrize(("exc", "cls"), [
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), ConnectionRefused),
    (CarrierError("Traceback...\nOSError: [Errno 101] Network is unreachable\n"),
     DeviceTimeout),
    (CarrierError("Traceback...\nOSError: [Errno 22] Invalid argument\n"), ProtocolError),
    (CarrierError("no errno here"), ProtocolError),
])
def test_socket_errors(exc: BaseException, cls: type[CollectionError]) -> None:
    error = mapped(exc)
    assert type(error) is cls
    assert "Traceback" not in str(error)


def test_messages_never_carry_secrets() -> None:
    everything = [errind.requestTimedOut, errind.wrongDigest, errind.unknownUserName,
                  errind.decryptionError, errind.parseError,
                  CarrierError(f"sendto failed for {COMMUNITY} [Errno 111]"),
                  CarrierError(f"weird {AUTH_KEY}")]
    for indication in everything:
        error = mapped(indication)
        assert error is not None
        assert_no_secret(error, repr(error), error.args)


# -- credentials -----------------------------------------------------------------------

@pytest.mark.parametrize("version", [SnmpVersion.V1, SnmpVersion.V2C])
def test_from_profile_community_versions(version: SnmpVersion) -> None:
    found = SnmpCredentials.from_profile(profile(), version)
    assert found is not None
    assert found.version is version and found.profile == "core"
    assert found.community is not None and found.community.get_secret_value() == COMMUNITY
    assert found.v3 is None


def test_from_profile_v3() -> None:
    found = SnmpCredentials.from_profile(profile(), SnmpVersion.V3)
    assert found is not None and found.v3 is not None
    assert found.community is None
    assert (found.v3.user, found.v3.auth_protocol, found.v3.priv_protocol) == \
        ("sbv3", "SHA-256", "AES-256")


def test_from_profile_none_when_the_profile_has_nothing_for_the_version() -> None:
    no_community = profile(snmp_community=None)
    assert SnmpCredentials.from_profile(no_community, SnmpVersion.V1) is None
    assert SnmpCredentials.from_profile(no_community, SnmpVersion.V2C) is None
    assert SnmpCredentials.from_profile(profile(snmp_v3=None), SnmpVersion.V3) is None


@pytest.mark.parametrize("version", list(SnmpVersion))
def test_repr_without_secrets(version: SnmpVersion) -> None:
    found = creds(version)
    assert_no_secret(repr(found), str(found), f"{found}", [found])
    assert "core" in repr(found)


def test_credentials_need_what_their_version_uses() -> None:
    with pytest.raises(CredentialError):
        SnmpCredentials(version=SnmpVersion.V2C, profile="p")
    with pytest.raises(CredentialError):
        SnmpCredentials(version=SnmpVersion.V3, profile="p", community=SecretStr(COMMUNITY))


# -- the client over a stubbed network (no packet leaves) --------------------------------
# v1/v2c: the client's own datagrams, decoded and answered by StubAgent in place of a socket
# (SnmpClient._open_endpoint swapped); v3: pysnmp's get/next/bulk commands swapped.

def name(oid: str) -> rfc1902.ObjectName:
    return rfc1902.ObjectName(oid)


def oids_of(engine: Any, objs: Sequence[Any]) -> list[tuple[int, ...]]:
    """The OIDs of the ObjectTypes the client built, resolved the way pysnmp does."""
    return [tuple(o[0].get_oid()) for o in VB_PROCESSOR.make_varbinds(engine.cache, objs)]


def dotted(oid: tuple[int, ...]) -> str:
    return ".".join(map(str, oid))


def parsed(oid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in oid.split("."))


Datagrams = list[tuple[bytes, tuple[str, int]]]


class FakeTransport:
    """Stands in for the client's UDP socket: what the client sends goes to the agent."""

    def __init__(self, agent: StubAgent, endpoint: _Endpoint) -> None:
        self.agent = agent
        self.endpoint = endpoint
        self.closed = False

    def sendto(self, data: bytes, address: tuple[str, int]) -> None:
        self.agent.receive(self.endpoint, data, address)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class StubAgent:
    """Sorted varbinds answering v1/v2c datagrams (like net-snmp) and pysnmp's v3 commands,
    recording what was sent."""

    def __init__(self, rows: dict[str, Any]) -> None:
        self.rows = sorted((parsed(k), v) for k, v in rows.items())
        self.keys = [k for k, _ in self.rows]
        self.auth: list[Any] = []
        self.requests: list[Message] = []
        self.in_flight = 0
        self.peak = 0
        self.delay_s = 0.0
        self.keys_in_flight: list[str] = []
        self.most_key_sets = 0
        self.answer: Any = self.answer_like_net_snmp
        """Request -> reply Message (None: silence), or a list of (datagram, source)."""

    # the wire (v1/v2c)

    def receive(self, endpoint: _Endpoint, data: bytes, address: tuple[str, int]) -> None:
        request = decode_message(data)
        self.requests.append(request)
        answer = self.answer(request)
        datagrams: Datagrams = (answer if isinstance(answer, list)
                                else [] if answer is None
                                else [(encode_message(answer), address)])
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

        def deliver() -> None:
            self.in_flight -= 1
            for datagram, source in datagrams:
                endpoint.datagram_received(datagram, source)
        asyncio.get_running_loop().call_later(self.delay_s, deliver)

    def _value(self, oid: tuple[int, ...]) -> VarBind | None:
        i = bisect.bisect_left(self.keys, oid)
        if i < len(self.keys) and self.keys[i] == oid:
            return VarBind(dotted(oid), *convert_value(self.rows[i][1]))
        return None

    def _next_vb(self, oid: tuple[int, ...]) -> VarBind | None:
        i = bisect.bisect_right(self.keys, oid)
        if i < len(self.rows):
            key, value = self.rows[i]
            return VarBind(dotted(key), *convert_value(value))
        return None

    def answer_like_net_snmp(self, request: Message) -> Message:
        oids = [parsed(vb.oid) for vb in request.varbinds]
        reply = Message(request.version, request.community, PduType.RESPONSE,
                        request.request_id)
        out: list[VarBind | None] = []
        if request.pdu_type is PduType.GETBULK:
            nr, reps = request.error_status, request.error_index
            out = [self._next_vb(o) for o in oids[:nr]]
            cursors = oids[nr:]
            for _ in range(reps):
                row = [self._next_vb(c) for c in cursors]
                out.extend(row)
                cursors = [parsed(vb.oid) if vb else c
                           for vb, c in zip(row, cursors, strict=True)]
        else:
            find = self._value if request.pdu_type is PduType.GET else self._next_vb
            out = [find(o) for o in oids]
        if request.version == 0 and None in out:  # v1: noSuchName, the request echoed
            reply.error_status, reply.error_index = 2, out.index(None) + 1
            reply.varbinds = request.varbinds
            return reply
        missing = (Special.NO_SUCH_OBJECT, "NoSuchObject") \
            if request.pdu_type is PduType.GET else (Special.END_OF_MIB_VIEW, "EndOfMibView")
        asked = oids if request.pdu_type is not PduType.GETBULK else [oids[-1]] * len(out)
        reply.varbinds = [vb or VarBind(dotted(o), *missing)
                          for vb, o in zip(out, asked, strict=True)]
        return reply

    # pysnmp (v3)

    def _next(self, oid: tuple[int, ...]) -> tuple[Any, Any]:
        i = bisect.bisect_right(self.keys, oid)
        if i < len(self.rows):
            key, value = self.rows[i]
            return name(dotted(key)), value
        return name(dotted(oid)), rfc1905.endOfMibView

    async def _enter(self, auth: Any) -> None:
        self.auth.append(auth)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        key = str(getattr(auth, "authentication_key", ""))
        self.keys_in_flight.append(key)
        self.most_key_sets = max(self.most_key_sets, len(set(self.keys_in_flight)))
        await asyncio.sleep(self.delay_s)
        self.keys_in_flight.remove(key)
        self.in_flight -= 1

    async def get_cmd(self, engine: Any, auth: Any, target: Any, ctx: Any, *objs: Any,
                      **kw: Any) -> tuple[Any, ...]:
        assert kw == {"lookupMib": False}
        await self._enter(auth)
        found = dict(self.rows)
        out = []
        for oid in oids_of(engine, objs):
            out.append((name(dotted(oid)), found.get(oid, rfc1905.noSuchObject)))
        return None, 0, 0, tuple(out)

    async def next_cmd(self, engine: Any, auth: Any, target: Any, ctx: Any, *objs: Any,
                       **kw: Any) -> tuple[Any, ...]:
        await self._enter(auth)
        return None, 0, 0, tuple(self._next(o) for o in oids_of(engine, objs))

    async def bulk_cmd(self, engine: Any, auth: Any, target: Any, ctx: Any, nr: int,
                       reps: int, *objs: Any, **kw: Any) -> tuple[Any, ...]:
        await self._enter(auth)
        oids = oids_of(engine, objs)
        out = [self._next(o) for o in oids[:nr]]
        cursors = oids[nr:]
        for _ in range(reps):
            row = [self._next(c) for c in cursors]
            out.extend(row)
            cursors = [tuple(n) for n, _ in row]
        return None, 0, 0, tuple(out)


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> StubAgent:
    stub = StubAgent({
        "1.3.6.1.2.1.1.5.0": rfc1902.OctetString(b"r1"),
        "1.3.6.1.2.1.1.6.0": rfc1902.OctetString(b"rack"),
        **{f"1.3.6.1.2.1.2.2.1.1.{i}": rfc1902.Integer(i) for i in range(1, 8)},
        **{f"1.3.6.1.2.1.2.2.1.2.{i}": rfc1902.OctetString(f"eth{i}") for i in range(1, 8)},
        "1.3.6.1.2.1.31.1.1.1.1.1": rfc1902.OctetString(b"lo"),
    })
    for command in ("get_cmd", "next_cmd", "bulk_cmd"):
        monkeypatch.setattr(snmp, command, getattr(stub, command))

    async def open_endpoint(client: SnmpClient, family: int) -> _Endpoint:
        endpoint = _Endpoint(client.stats)
        endpoint.connection_made(FakeTransport(stub, endpoint))  # type: ignore[arg-type]
        return endpoint
    monkeypatch.setattr(SnmpClient, "_open_endpoint", open_endpoint)
    return stub


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def with_client(body: Any, **kw: Any) -> Any:
    async with SnmpClient(**kw) as client:
        client.refused_probe_s = 0  # no datagram leaves a unit test
        return await body(client)


def test_walk_stays_in_the_subtree(agent: StubAgent) -> None:
    for version in (SnmpVersion.V1, SnmpVersion.V2C, SnmpVersion.V3):
        got = run(with_client(lambda c, v=version: c.walk("192.0.2.1", creds(v),
                                                          "1.3.6.1.2.1.2.2.1.2",
                                                          max_repetitions=3)))
        assert [vb.oid for vb in got] == [f"1.3.6.1.2.1.2.2.1.2.{i}" for i in range(1, 8)]
        assert got[0] == VarBind("1.3.6.1.2.1.2.2.1.2.1", b"eth1", "OctetString")
    sent = [(m.version, m.pdu_type, m.error_index) for m in agent.requests]
    assert sent[:8] == [(0, PduType.GETNEXT, 0)] * 8  # v1: one GETNEXT a row, one past
    assert sent[8:] == [(1, PduType.GETBULK, 3)] * 3
    assert len(agent.auth) == 3  # v3 alone went through pysnmp


def test_walk_past_the_end_of_the_mib(agent: StubAgent) -> None:
    for version in (SnmpVersion.V1, SnmpVersion.V2C):
        got = run(with_client(lambda c, v=version: c.walk("192.0.2.1", creds(v),
                                                          "1.3.6.1.2.1.31")))
        assert [vb.oid for vb in got] == ["1.3.6.1.2.1.31.1.1.1.1.1"]


def test_walk_compares_oids_as_numbers(agent: StubAgent) -> None:
    agent.rows = sorted((parsed(f"1.3.6.1.2.1.2.2.1.1.{i}"), rfc1902.Gauge32(i))
                        for i in (9, 10, 127, 128, 200, 16384, 2**32 - 1))
    agent.keys = [k for k, _ in agent.rows]
    got = run(with_client(lambda c: c.walk("192.0.2.1", creds(), "1.3.6.1.2.1.2.2.1.1",
                                           max_repetitions=2)))
    assert [vb.value for vb in got] == [9, 10, 127, 128, 200, 16384, 2**32 - 1]


def test_walk_refuses_an_agent_that_loops(agent: StubAgent) -> None:
    def looping(request: Message) -> Message:
        return Message(1, request.community, PduType.RESPONSE, request.request_id, varbinds=[
            VarBind("1.3.6.1.2.1.2.2.1.2.3", 1, "Integer"),
            VarBind("1.3.6.1.2.1.2.2.1.2.2", 1, "Integer")])
    agent.answer = looping
    with pytest.raises(ProtocolError, match="not increasing"):
        run(with_client(lambda c: c.walk("192.0.2.1", creds(), "1.3.6.1.2.1.2.2.1.2")))


def test_get_bulk_layout_and_v1_emulation(agent: StubAgent) -> None:
    oids = ["1.3.6.1.2.1.1.4", "1.3.6.1.2.1.2.2.1.1", "1.3.6.1.2.1.2.2.1.2"]
    v2 = run(with_client(lambda c: c.get_bulk("192.0.2.1", creds(), oids, non_repeaters=1,
                                              max_repetitions=2)))
    v1 = run(with_client(lambda c: c.get_bulk("192.0.2.1", creds(SnmpVersion.V1), oids,
                                              non_repeaters=1, max_repetitions=2)))
    expected = ["1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.2.2.1.1.1", "1.3.6.1.2.1.2.2.1.2.1",
                "1.3.6.1.2.1.2.2.1.1.2", "1.3.6.1.2.1.2.2.1.2.2"]
    assert [vb.oid for vb in v2] == expected
    assert [vb.oid for vb in v1] == expected
    assert [vb.kind for vb in v2[1:3]] == ["Integer", "OctetString"]
    assert [vb.kind for vb in v1[1:3]] == ["Integer32", "OctetString"]  # as pysnmp's v1


def test_v1_no_such_name_is_data(agent: StubAgent) -> None:
    got = run(with_client(lambda c: c.get("192.0.2.1", creds(SnmpVersion.V1),
                                          ["1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.5.1"])))
    assert [vb.value for vb in got] == [b"r1", Special.NO_SUCH_OBJECT]
    assert [[vb.oid for vb in m.varbinds] for m in agent.requests] == \
        [["1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.5.1"], ["1.3.6.1.2.1.1.5.0"]]
    nxt = run(with_client(lambda c: c.get_next("192.0.2.1", creds(SnmpVersion.V1),
                                               ["1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.31.2"])))
    assert nxt[1] == VarBind("1.3.6.1.2.1.31.2", Special.END_OF_MIB_VIEW, "EndOfMibView")


@pytest.mark.parametrize(("index", "varbinds"), [(9, 0), (0, 1)])
def test_v1_no_such_name_without_a_usable_index_is_a_protocol_error(
        agent: StubAgent, index: int, varbinds: int) -> None:
    def broken(request: Message) -> Message:
        return Message(0, request.community, PduType.RESPONSE, request.request_id, 2, index,
                       request.varbinds[:varbinds])
    agent.answer = broken
    with pytest.raises(ProtocolError, match="noSuchName"):
        run(with_client(lambda c: c.get("192.0.2.1", creds(SnmpVersion.V1),
                                        ["1.3.6.1.2.1.1.5.0"])))


def test_an_error_index_past_the_varbinds_is_clipped_as_pysnmp_did(agent: StubAgent) -> None:
    def too_big(request: Message) -> Message:
        return Message(1, request.community, PduType.RESPONSE, request.request_id, 1, 7,
                       request.varbinds)
    agent.answer = too_big
    with pytest.raises(ProtocolError, match=r"tooBig at 1\.3\.6\.1\.2\.1\.1\.6\.0"):
        run(with_client(lambda c: c.get("192.0.2.1", creds(),
                                        ["1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.1.6.0"])))


def test_authorization_error_is_authentication_failed(agent: StubAgent) -> None:
    agent.answer = lambda r: Message(1, r.community, PduType.RESPONSE, r.request_id, 16, 1,
                                     r.varbinds)

    async def body(client: SnmpClient) -> None:
        with pytest.raises(AuthenticationFailed, match="authorizationError"):
            await client.get("192.0.2.1", creds(), ["1.3.6.1.2.1.1.5.0"])
        assert client.stats.auth_failures == 1
    run(with_client(body))


def test_an_empty_getnext_answer_is_a_protocol_error(agent: StubAgent) -> None:
    agent.answer = lambda r: Message(1, r.community, PduType.RESPONSE, r.request_id)
    with pytest.raises(ProtocolError, match="emptyResponse"):
        run(with_client(lambda c: c.walk("192.0.2.1", creds(), "1.3.6.1.2.1.1")))


def test_get_returns_specials_as_data(agent: StubAgent) -> None:
    got = run(with_client(lambda c: c.get("192.0.2.1", creds(),
                                          ["1.3.6.1.2.1.1.5.0", "1.3.6.1.2.1.99.0"])))
    assert got[1] == VarBind("1.3.6.1.2.1.99.0", Special.NO_SUCH_OBJECT, "NoSuchObject")


def test_bad_oid_is_refused_before_sending(agent: StubAgent) -> None:
    for version in SnmpVersion:
        with pytest.raises(ValueError, match="numeric OID"):
            run(with_client(lambda c, v=version: c.get("192.0.2.1", creds(v), ["sysName.0"])))
    assert agent.auth == [] and agent.requests == []


@pytest.mark.parametrize(("auth", "priv", "auth_id", "priv_id"), [
    ("MD5", "DES", snmp.USM_AUTH_HMAC96_MD5, snmp.USM_PRIV_CBC56_DES),
    ("SHA", "AES", snmp.USM_AUTH_HMAC96_SHA, snmp.USM_PRIV_CFB128_AES),
    ("SHA-224", "AES-192", snmp.USM_AUTH_HMAC128_SHA224,
     snmp.USM_PRIV_CFB192_AES_BLUMENTHAL),
    ("SHA-256", "AES-256", snmp.USM_AUTH_HMAC192_SHA256,
     snmp.USM_PRIV_CFB256_AES_BLUMENTHAL),
    ("SHA-384", "AES", snmp.USM_AUTH_HMAC256_SHA384, snmp.USM_PRIV_CFB128_AES),
    ("SHA-512", "AES", snmp.USM_AUTH_HMAC384_SHA512, snmp.USM_PRIV_CFB128_AES),
])
def test_usm_protocols(agent: StubAgent, auth: str, priv: str, auth_id: Any,
                       priv_id: Any) -> None:
    user = SnmpV3User(user="u", auth_protocol=auth, auth_key=AUTH_KEY,  # type: ignore[arg-type]
                      priv_protocol=priv, priv_key=PRIV_KEY)  # type: ignore[arg-type]
    found = SnmpCredentials(version=SnmpVersion.V3, profile="p", v3=user)
    run(with_client(lambda c: c.get("192.0.2.1", found, ["1.3.6.1.2.1.1.5.0"])))
    sent = agent.auth[-1]
    assert (sent.userName, sent.authentication_protocol, sent.privacy_protocol) == \
        ("u", auth_id, priv_id)
    assert sent.security_level == "authPriv"
    assert_no_secret(repr(sent))


def test_community_versions_go_on_the_wire_without_pysnmp(agent: StubAgent) -> None:
    for version, number in ((SnmpVersion.V1, 0), (SnmpVersion.V2C, 1)):
        async def body(client: SnmpClient, v: SnmpVersion = version) -> None:
            await client.get("192.0.2.1", creds(v), ["1.3.6.1.2.1.1.5.0"])
            assert client._engine is None  # no pysnmp engine was ever built
        run(with_client(body))
        sent = agent.requests[-1]
        assert (sent.version, sent.community, sent.pdu_type) == \
            (number, COMMUNITY.encode(), PduType.GET)
        assert COMMUNITY not in repr(sent)
    assert agent.auth == []


def test_auth_failure_names_host_and_profile_not_the_key(
        agent: StubAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    async def refused(*args: Any, **kw: Any) -> tuple[Any, ...]:
        return errind.wrongDigest, 0, 0, ()
    monkeypatch.setattr(snmp, "get_cmd", refused)

    async def body(client: SnmpClient) -> None:
        with pytest.raises(AuthenticationFailed) as caught:
            await client.get("192.0.2.7", creds(SnmpVersion.V3), ["1.3.6.1.2.1.1.5.0"])
        assert "192.0.2.7" in str(caught.value) and "'core'" in str(caught.value)
        assert caught.value.device == "192.0.2.7" and caught.value.profile == "core"
        assert_no_secret(caught.value, repr(caught.value))
        assert client.stats.auth_failures == 1
    run(with_client(body))


def test_timeout_after_the_retries_is_counted(agent: StubAgent) -> None:
    agent.answer = lambda request: None

    async def body(client: SnmpClient) -> None:
        with pytest.raises(DeviceTimeout) as caught:
            await client.get("192.0.2.7", creds(), ["1.3.6.1.2.1.1.5.0"])
        assert client.stats.timeouts == 1 and client.stats.requests == 1
        assert_no_secret(caught.value, repr(caught.value))
    run(with_client(body, timeout_s=0.01, retries=2))
    ids = [m.request_id for m in agent.requests]
    assert len(ids) == 3 and len(set(ids)) == 3  # a fresh request id for every attempt
    assert all(0 <= i < 2**31 for i in ids)


def test_a_late_answer_to_an_earlier_attempt_counts(agent: StubAgent) -> None:
    first: list[Message] = []

    def late(request: Message) -> Datagrams:
        if not first:  # silence for the first attempt, then its answer arrives late
            first.append(request)
            return []
        return [(encode_message(agent.answer_like_net_snmp(first[0])), ("192.0.2.1", 161))]
    agent.answer = late

    async def body(client: SnmpClient) -> list[VarBind]:
        got = await client.get("192.0.2.1", creds(), ["1.3.6.1.2.1.1.5.0"])
        assert client.stats.unmatched == client.stats.malformed == 0
        return got
    assert run(with_client(body, timeout_s=0.01, retries=1))[0].value == b"r1"
    assert len(agent.requests) == 2


def test_stray_datagrams_are_counted_and_dropped(agent: StubAgent) -> None:
    def noisy(request: Message) -> Datagrams:
        good = agent.answer_like_net_snmp(request)
        others = [
            dataclasses.replace(good, request_id=(request.request_id + 1) % 2**31),
            dataclasses.replace(good, community=b"other"),
            dataclasses.replace(good, version=0),
            dataclasses.replace(good, pdu_type=PduType.GETNEXT),
        ]
        return [(b"\x30\x03\x02\x01", ("192.0.2.1", 161)),  # malformed
                (encode_message(good), ("192.0.2.9", 161)),  # another host
                (encode_message(good), ("192.0.2.1", 1161)),  # another port
                *((encode_message(m), ("192.0.2.1", 161)) for m in others),
                (encode_message(good), ("192.0.2.1", 161)),  # the answer
                (encode_message(good), ("192.0.2.1", 161))]  # a duplicate
    agent.answer = noisy

    async def body(client: SnmpClient) -> None:
        got = await client.get("192.0.2.1", creds(), ["1.3.6.1.2.1.1.5.0"])
        assert got == [VarBind("1.3.6.1.2.1.1.5.0", b"r1", "OctetString")]
        assert (client.stats.malformed, client.stats.unmatched) == (1, 7)
        assert client.stats.errors == client.stats.timeouts == 0
    run(with_client(body))


def test_a_host_name_is_resolved_once(agent: StubAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    looked_up: list[str] = []

    async def getaddrinfo(self: Any, host: str, port: int, **kw: Any) -> list[Any]:
        looked_up.append(host)
        if host != "r1.lab.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_DGRAM, 17, "", ("192.0.2.1", port))]
    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)

    async def body(client: SnmpClient) -> None:
        for _ in range(3):
            got = await client.get("r1.lab.example", creds(), ["1.3.6.1.2.1.1.5.0"])
            assert got[0].value == b"r1"
        with pytest.raises(ProtocolError, match="does not resolve") as caught:
            await client.get("nowhere.example", creds(), ["1.3.6.1.2.1.1.5.0"])
        assert caught.value.device == "nowhere.example"
        assert client.stats.requests == 3 and client.stats.errors == 1
    run(with_client(body))
    assert looked_up == ["r1.lab.example", "nowhere.example"]


def test_timeout_is_counted_for_v3(agent: StubAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    async def silent(*args: Any, **kw: Any) -> tuple[Any, ...]:
        return errind.requestTimedOut, 0, 0, ()
    monkeypatch.setattr(snmp, "get_cmd", silent)

    async def body(client: SnmpClient) -> None:
        with pytest.raises(DeviceTimeout):
            await client.get("192.0.2.7", creds(SnmpVersion.V3), ["1.3.6.1.2.1.1.5.0"])
        assert client.stats.timeouts == 1
    run(with_client(body))


@pytest.mark.parametrize("version", [SnmpVersion.V2C, SnmpVersion.V3])
def test_in_flight_bounds_hold(agent: StubAgent, version: SnmpVersion) -> None:
    agent.delay_s = 0.005
    hosts = ["192.0.2.1", "192.0.2.2", "192.0.2.3"]

    async def body(client: SnmpClient) -> None:
        await asyncio.gather(*(client.get(hosts[i % 3], creds(version), ["1.3.6.1.2.1.1.5.0"])
                               for i in range(60)))
        assert client.stats.requests == 60
        assert client.stats.peak_in_flight == 5
        assert client.stats.peak_in_flight_per_target == 2
        assert client.stats.in_flight == 0
        assert client.stats.varbinds == 60
    run(with_client(body, max_in_flight=5, max_in_flight_per_target=2))
    assert agent.peak == 5


def test_one_user_name_with_two_key_sets_never_overlaps(agent: StubAgent) -> None:
    """pysnmp holds one key set per USM user name: requests with other keys must wait."""
    agent.delay_s = 0.002
    right = creds(SnmpVersion.V3)
    assert right.v3 is not None
    wrong = SnmpCredentials(version=SnmpVersion.V3, profile="core",
                            v3=right.v3.model_copy(update={"auth_key": SecretStr("other")}))

    async def body(client: SnmpClient) -> None:
        await asyncio.gather(*(client.get("192.0.2.1", right if i % 2 else wrong,
                                          ["1.3.6.1.2.1.1.5.0"]) for i in range(20)))
    run(with_client(body))
    assert {a.authentication_key for a in agent.auth} == {AUTH_KEY, "other"}
    assert agent.peak > 1  # the same keys did run side by side
    assert agent.most_key_sets == 1


def test_client_refuses_bad_bounds_and_use_after_close(agent: StubAgent) -> None:
    with pytest.raises(ValueError):
        SnmpClient(max_in_flight=0)

    async def body() -> None:
        client = SnmpClient()
        await client.close()
        with pytest.raises(RuntimeError, match="closed"):
            await client.get("192.0.2.1", creds(), ["1.3.6.1.2.1.1.5.0"])
    run(body())


def test_close_ends_the_requests_in_flight(agent: StubAgent) -> None:
    agent.answer = lambda request: None

    async def body() -> None:
        client = SnmpClient(timeout_s=5)
        client.refused_probe_s = 0
        pending = asyncio.ensure_future(client.get("192.0.2.1", creds(),
                                                   ["1.3.6.1.2.1.1.5.0"]))
        await asyncio.sleep(0.01)
        await client.close()
        with pytest.raises(RuntimeError, match="closed"):
            await pending
    run(body())


def test_a_lost_socket_fails_its_requests_and_is_opened_again(agent: StubAgent) -> None:
    agent.answer = lambda request: None

    async def body(client: SnmpClient) -> None:
        pending = asyncio.ensure_future(client.get("192.0.2.1", creds(),
                                                   ["1.3.6.1.2.1.1.5.0"]))
        await asyncio.sleep(0.01)
        lost = client._endpoints[socket.AF_INET]
        assert lost.transport is not None
        lost.transport.close()
        lost.connection_lost(OSError("gone"))
        with pytest.raises(ProtocolError, match="transport error"):
            await pending
        agent.answer = agent.answer_like_net_snmp
        got = await client.get("192.0.2.1", creds(), ["1.3.6.1.2.1.1.5.0"])
        assert got[0].value == b"r1"
        assert client._endpoints[socket.AF_INET] is not lost
        assert client.stats.errors == 1
    run(with_client(body, timeout_s=5))


def test_a_client_belongs_to_one_event_loop(agent: StubAgent) -> None:
    client = SnmpClient()
    client.refused_probe_s = 0
    run(client.get("192.0.2.1", creds(), ["1.3.6.1.2.1.1.5.0"]))
    with pytest.raises(RuntimeError, match="event loop"):
        run(client.get("192.0.2.1", creds(), ["1.3.6.1.2.1.1.5.0"]))


# -- facts helpers -----------------------------------------------------------------------

def test_mac() -> None:
    assert _mac(b"\x16\xed\x58\x99\x93\x76") == "16:ed:58:99:93:76"


@pytest.mark.parametrize(("mask", "length"), [
    ("255.255.255.252", 30), ("255.255.255.255", 32), ("255.0.0.0", 8), ("0.0.0.0", 0),
    ("255.0.255.0", None),
])
def test_prefix_length(mask: str, length: int | None) -> None:
    assert _prefix_length(mask) == length


@pytest.mark.parametrize(("subtype", "raw", "text"), [
    ("macAddress", b"\xfe\xfb\x07\xdc\xe5\xde", "fe:fb:07:dc:e5:de"),
    ("interfaceName", b"eth1", "eth1"),
    ("local", b"Gi0/1\x00", "Gi0/1"),
    ("networkAddress", b"\x01\xac\x14\x14\x0b", "172.20.20.11"),
    ("networkAddress", b"\x02" + bytes(15) + b"\x01", "::1"),
    ("interfaceAlias", b"\x00\x01\xff", "00:01:ff"),
    ("chassisComponent", 7, "7"),
])
def test_lldp_id(subtype: str, raw: Any, text: str) -> None:
    assert _lldp_id(subtype, raw) == text


@pytest.mark.parametrize(("raw", "names"), [
    (b"\x08", ["router"]),
    (b"\x20", ["bridge"]),
    (b"9", ["bridge", "wlanAccessPoint", "router", "stationOnly"]),  # lldpd's "supported"
    (b"\x28\x80", ["bridge", "router", "cVLAN"]),
    (b"", []),
    (Special.NO_SUCH_INSTANCE, []),
])
def test_capabilities(raw: Any, names: list[str]) -> None:
    assert _capabilities(raw) == names


def test_inet_address_and_man_address_indices() -> None:
    assert _inet_address((1, 4, 10, 0, 12, 1)) == ("10.0.12.1", ())
    assert _inet_address((2, 16, 254, 128, *([0] * 13), 1)) == ("fe80::1", ())
    assert _inet_address((1, 16, 10, 0, 12, 1)) is None
    assert _inet_address((1, 4, 300, 0, 12, 1)) is None  # a broken agent's index
    assert _man_address(1, (4, 172, 20, 20, 12)) == "172.20.20.12"
    assert _man_address(1, (172, 20, 20, 12)) == "172.20.20.12"  # IMPLIED
    assert _man_address(2, (4, 1, 2, 3, 4)) is None


def test_speed_prefers_if_high_speed() -> None:
    if_table = {"ifDescr": {(1,): b"t1", (2,): b"eth"},
                "ifSpeed": {(1,): 1_544_000, (2,): 4294967295}}
    if_x_table = {"ifHighSpeed": {(1,): 2, (2,): 10000}, "ifName": {(2,): b"Ethernet0"}}
    t1, eth = _interfaces(if_table, {"ifHighSpeed": {(1,): 0, (2,): 10000},
                                     "ifName": if_x_table["ifName"]})
    assert t1.speed_mbps == pytest.approx(1.544) and t1.name == "t1"
    assert eth.speed_mbps == 10000.0 and eth.name == "Ethernet0" and eth.descr == "eth"


def test_addresses_prefer_ip_addr_table_and_skip_broadcast() -> None:
    ip_addr = {"ipAdEntIfIndex": {(10, 255, 0, 1): 1},
               "ipAdEntNetMask": {(10, 255, 0, 1): "255.255.255.255"}}
    ip_address = {
        "ipAddressIfIndex": {(1, 4, 10, 255, 0, 1): 1, (1, 4, 10, 0, 12, 3): 3,
                             (2, 16, 254, 128, *([0] * 13), 9): 3},
        "ipAddressType": {(1, 4, 10, 255, 0, 1): 1, (1, 4, 10, 0, 12, 3): 3,
                          (2, 16, 254, 128, *([0] * 13), 9): 1},
        "ipAddressPrefix": {(1, 4, 10, 255, 0, 1): "1.3.6.1.2.1.4.32.1.5.1.1.4.10.0.0.0.8",
                            (2, 16, 254, 128, *([0] * 13), 9): "1.3.6.1.2.1.4.32.1.5.3.2.16.64"},
    }
    got = [(a.address, a.prefix_length, a.if_index) for a in _addresses(ip_addr, ip_address)]
    assert got == [("10.255.0.1", 32, 1), ("fe80::9", 64, 3)]


# -- facts from a recording of the lab's r1 ------------------------------------------------

# recorded with SnmpClient.get/walk from r1 of `core` (net-snmp 5.9.3, lldpd over AgentX);
# octet strings as "text" or 0xHEX
R1_RECORDING = """
    1.3.6.1.2.1.1.1.0 OctetString "FRRouting 8.4.4 router r1 on Linux 6.18.44-fc-v669 (switchboard lab)"
    1.3.6.1.2.1.1.2.0 ObjectIdentifier 1.3.6.1.4.1.8072.3.2.10
    1.3.6.1.2.1.1.3.0 TimeTicks 63953
    1.3.6.1.2.1.1.4.0 OctetString "lab-admin@t3-x.lab"
    1.3.6.1.2.1.1.5.0 OctetString "r1"
    1.3.6.1.2.1.1.6.0 OctetString "switchboard lab t3-x"
    1.3.6.1.2.1.1.7.0 Integer 78
    1.3.6.1.6.3.10.2.1.1.0 OctetString 0x80001f88057c2fefaa0d4b0a7efbf44ce0
    1.0.8802.1.1.2.1.3.1.0 Integer 4
    1.0.8802.1.1.2.1.3.2.0 OctetString 0xfefb07dce5de
    1.0.8802.1.1.2.1.3.3.0 OctetString "r1"
    1.3.6.1.2.1.2.2.1.1.1 Integer 1
    1.3.6.1.2.1.2.2.1.1.2 Integer 2
    1.3.6.1.2.1.2.2.1.1.3 Integer 3
    1.3.6.1.2.1.2.2.1.1.4 Integer 4
    1.3.6.1.2.1.2.2.1.1.5 Integer 5
    1.3.6.1.2.1.2.2.1.1.6 Integer 6
    1.3.6.1.2.1.2.2.1.2.1 OctetString "lo"
    1.3.6.1.2.1.2.2.1.2.2 OctetString "mgmt0"
    1.3.6.1.2.1.2.2.1.2.3 OctetString "eth1"
    1.3.6.1.2.1.2.2.1.2.4 OctetString "eth2"
    1.3.6.1.2.1.2.2.1.2.5 OctetString "eth3"
    1.3.6.1.2.1.2.2.1.2.6 OctetString "eth4"
    1.3.6.1.2.1.2.2.1.3.1 Integer 24
    1.3.6.1.2.1.2.2.1.3.2 Integer 6
    1.3.6.1.2.1.2.2.1.3.3 Integer 6
    1.3.6.1.2.1.2.2.1.3.4 Integer 6
    1.3.6.1.2.1.2.2.1.3.5 Integer 6
    1.3.6.1.2.1.2.2.1.3.6 Integer 6
    1.3.6.1.2.1.2.2.1.4.1 Integer 65536
    1.3.6.1.2.1.2.2.1.4.2 Integer 1500
    1.3.6.1.2.1.2.2.1.4.3 Integer 1500
    1.3.6.1.2.1.2.2.1.4.4 Integer 1500
    1.3.6.1.2.1.2.2.1.4.5 Integer 1500
    1.3.6.1.2.1.2.2.1.4.6 Integer 1500
    1.3.6.1.2.1.2.2.1.5.1 Gauge32 10000000
    1.3.6.1.2.1.2.2.1.5.2 Gauge32 4294967295
    1.3.6.1.2.1.2.2.1.5.3 Gauge32 4294967295
    1.3.6.1.2.1.2.2.1.5.4 Gauge32 4294967295
    1.3.6.1.2.1.2.2.1.5.5 Gauge32 4294967295
    1.3.6.1.2.1.2.2.1.5.6 Gauge32 4294967295
    1.3.6.1.2.1.2.2.1.6.1 OctetString ""
    1.3.6.1.2.1.2.2.1.6.2 OctetString 0x16ed58999376
    1.3.6.1.2.1.2.2.1.6.3 OctetString 0xfefb07dce5de
    1.3.6.1.2.1.2.2.1.6.4 OctetString 0x4e1eba9e6d4f
    1.3.6.1.2.1.2.2.1.6.5 OctetString 0xfabc9771c5d0
    1.3.6.1.2.1.2.2.1.6.6 OctetString 0xf6de7b11e74c
    1.3.6.1.2.1.2.2.1.7.1 Integer 1
    1.3.6.1.2.1.2.2.1.7.2 Integer 1
    1.3.6.1.2.1.2.2.1.7.3 Integer 1
    1.3.6.1.2.1.2.2.1.7.4 Integer 1
    1.3.6.1.2.1.2.2.1.7.5 Integer 1
    1.3.6.1.2.1.2.2.1.7.6 Integer 1
    1.3.6.1.2.1.2.2.1.8.1 Integer 1
    1.3.6.1.2.1.2.2.1.8.2 Integer 1
    1.3.6.1.2.1.2.2.1.8.3 Integer 1
    1.3.6.1.2.1.2.2.1.8.4 Integer 1
    1.3.6.1.2.1.2.2.1.8.5 Integer 1
    1.3.6.1.2.1.2.2.1.8.6 Integer 1
    1.3.6.1.2.1.31.1.1.1.1.1 OctetString "lo"
    1.3.6.1.2.1.31.1.1.1.1.2 OctetString "mgmt0"
    1.3.6.1.2.1.31.1.1.1.1.3 OctetString "eth1"
    1.3.6.1.2.1.31.1.1.1.1.4 OctetString "eth2"
    1.3.6.1.2.1.31.1.1.1.1.5 OctetString "eth3"
    1.3.6.1.2.1.31.1.1.1.1.6 OctetString "eth4"
    1.3.6.1.2.1.31.1.1.1.15.1 Gauge32 10
    1.3.6.1.2.1.31.1.1.1.15.2 Gauge32 10000
    1.3.6.1.2.1.31.1.1.1.15.3 Gauge32 10000
    1.3.6.1.2.1.31.1.1.1.15.4 Gauge32 10000
    1.3.6.1.2.1.31.1.1.1.15.5 Gauge32 10000
    1.3.6.1.2.1.31.1.1.1.15.6 Gauge32 10000
    1.3.6.1.2.1.31.1.1.1.18.1 OctetString ""
    1.3.6.1.2.1.31.1.1.1.18.2 OctetString ""
    1.3.6.1.2.1.31.1.1.1.18.3 OctetString ""
    1.3.6.1.2.1.31.1.1.1.18.4 OctetString ""
    1.3.6.1.2.1.31.1.1.1.18.5 OctetString ""
    1.3.6.1.2.1.31.1.1.1.18.6 OctetString ""
    1.3.6.1.2.1.4.20.1.1.10.0.12.1 IpAddress 10.0.12.1
    1.3.6.1.2.1.4.20.1.1.10.0.13.1 IpAddress 10.0.13.1
    1.3.6.1.2.1.4.20.1.1.10.255.0.1 IpAddress 10.255.0.1
    1.3.6.1.2.1.4.20.1.1.100.64.11.1 IpAddress 100.64.11.1
    1.3.6.1.2.1.4.20.1.1.127.0.0.1 IpAddress 127.0.0.1
    1.3.6.1.2.1.4.20.1.1.172.31.85.11 IpAddress 172.31.85.11
    1.3.6.1.2.1.4.20.1.2.10.0.12.1 Integer 3
    1.3.6.1.2.1.4.20.1.2.10.0.13.1 Integer 4
    1.3.6.1.2.1.4.20.1.2.10.255.0.1 Integer 1
    1.3.6.1.2.1.4.20.1.2.100.64.11.1 Integer 5
    1.3.6.1.2.1.4.20.1.2.127.0.0.1 Integer 1
    1.3.6.1.2.1.4.20.1.2.172.31.85.11 Integer 2
    1.3.6.1.2.1.4.20.1.3.10.0.12.1 IpAddress 255.255.255.252
    1.3.6.1.2.1.4.20.1.3.10.0.13.1 IpAddress 255.255.255.252
    1.3.6.1.2.1.4.20.1.3.10.255.0.1 IpAddress 255.255.255.255
    1.3.6.1.2.1.4.20.1.3.100.64.11.1 IpAddress 255.255.255.0
    1.3.6.1.2.1.4.20.1.3.127.0.0.1 IpAddress 255.0.0.0
    1.3.6.1.2.1.4.20.1.3.172.31.85.11 IpAddress 255.255.255.0
    1.3.6.1.2.1.4.34.1.3.1.4.10.0.12.1 Integer 3
    1.3.6.1.2.1.4.34.1.3.1.4.10.0.12.3 Integer 3
    1.3.6.1.2.1.4.34.1.3.1.4.10.0.13.1 Integer 4
    1.3.6.1.2.1.4.34.1.3.1.4.10.0.13.3 Integer 4
    1.3.6.1.2.1.4.34.1.3.1.4.10.255.0.1 Integer 1
    1.3.6.1.2.1.4.34.1.3.1.4.100.64.11.1 Integer 5
    1.3.6.1.2.1.4.34.1.3.1.4.100.64.11.255 Integer 5
    1.3.6.1.2.1.4.34.1.3.1.4.127.0.0.1 Integer 1
    1.3.6.1.2.1.4.34.1.3.1.4.172.31.85.11 Integer 2
    1.3.6.1.2.1.4.34.1.3.2.16.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1 Integer 1
    1.3.6.1.2.1.4.34.1.3.2.16.254.128.0.0.0.0.0.0.20.237.88.255.254.153.147.118 Integer 2
    1.3.6.1.2.1.4.34.1.3.2.16.254.128.0.0.0.0.0.0.76.30.186.255.254.158.109.79 Integer 4
    1.3.6.1.2.1.4.34.1.3.2.16.254.128.0.0.0.0.0.0.244.222.123.255.254.17.231.76 Integer 6
    1.3.6.1.2.1.4.34.1.3.2.16.254.128.0.0.0.0.0.0.248.188.151.255.254.113.197.208 Integer 5
    1.3.6.1.2.1.4.34.1.3.2.16.254.128.0.0.0.0.0.0.252.251.7.255.254.220.229.222 Integer 3
    1.3.6.1.2.1.4.34.1.4.1.4.10.0.12.1 Integer 1
    1.3.6.1.2.1.4.34.1.4.1.4.10.0.12.3 Integer 3
    1.3.6.1.2.1.4.34.1.4.1.4.10.0.13.1 Integer 1
    1.3.6.1.2.1.4.34.1.4.1.4.10.0.13.3 Integer 3
    1.3.6.1.2.1.4.34.1.4.1.4.10.255.0.1 Integer 3
    1.3.6.1.2.1.4.34.1.4.1.4.100.64.11.1 Integer 1
    1.3.6.1.2.1.4.34.1.4.1.4.100.64.11.255 Integer 3
    1.3.6.1.2.1.4.34.1.4.1.4.127.0.0.1 Integer 1
    1.3.6.1.2.1.4.34.1.4.1.4.172.31.85.11 Integer 1
    1.3.6.1.2.1.4.34.1.4.2.16.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1 Integer 1
    1.3.6.1.2.1.4.34.1.4.2.16.254.128.0.0.0.0.0.0.20.237.88.255.254.153.147.118 Integer 1
    1.3.6.1.2.1.4.34.1.4.2.16.254.128.0.0.0.0.0.0.76.30.186.255.254.158.109.79 Integer 1
    1.3.6.1.2.1.4.34.1.4.2.16.254.128.0.0.0.0.0.0.244.222.123.255.254.17.231.76 Integer 1
    1.3.6.1.2.1.4.34.1.4.2.16.254.128.0.0.0.0.0.0.248.188.151.255.254.113.197.208 Integer 1
    1.3.6.1.2.1.4.34.1.4.2.16.254.128.0.0.0.0.0.0.252.251.7.255.254.220.229.222 Integer 1
    1.3.6.1.2.1.4.34.1.5.1.4.10.0.12.1 ObjectIdentifier 1.3.6.1.2.1.4.32.1.5.3.1.4.10.0.12.0.30
    1.3.6.1.2.1.4.34.1.5.1.4.10.0.12.3 ObjectIdentifier 1.3.6.1.2.1.4.32.1.5.3.1.4.10.0.12.0.30
    1.3.6.1.2.1.4.34.1.5.1.4.10.0.13.1 ObjectIdentifier 1.3.6.1.2.1.4.32.1.5.4.1.4.10.0.13.0.30
    1.3.6.1.2.1.4.34.1.5.1.4.10.0.13.3 ObjectIdentifier 1.3.6.1.2.1.4.32.1.5.4.1.4.10.0.13.0.30
    1.3.6.1.2.1.4.34.1.5.1.4.10.255.0.1 ObjectIdentifier 1.3.6.1.2.1.4.32.1.5.1.1.4.10.0.0.0.8
    1.3.6.1.2.1.4.34.1.5.1.4.100.64.11.1 ObjectIdentifier 1.3.6.1.2.1.4.32.1.5.5.1.4.100.64.11.0.24
    1.3.6.1.2.1.4.34.1.5.1.4.100.64.11.255 ObjectIdentifier 1.3.6.1.2.1.4.32.1.5.5.1.4.100.64.11.0.24
    1.3.6.1.2.1.4.34.1.5.1.4.127.0.0.1 ObjectIdentifier 1.3.6.1.2.1.4.32.1.5.1.1.4.127.0.0.0.8
    1.3.6.1.2.1.4.34.1.5.1.4.172.31.85.11 ObjectIdentifier 1.3.6.1.2.1.4.32.1.5.2.1.4.172.31.85.0.24
    1.3.6.1.2.1.4.34.1.5.2.16.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1 ObjectIdentifier 1.3.6.1.2.1.4.32.1.5.1.2.16.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.128
    1.3.6.1.2.1.4.34.1.5.2.16.254.128.0.0.0.0.0.0.20.237.88.255.254.153.147.118 ObjectIdentifier 1.3.6.1.2.1.4.32.1.5.2.2.16.254.128.0.0.0.0.0.0.0.0.0.0.0.0.0.0.64
    1.3.6.1.2.1.4.34.1.5.2.16.254.128.0.0.0.0.0.0.76.30.186.255.254.158.109.79 ObjectIdentifier 1.3.6.1.2.1.4.32.1.5.4.2.16.254.128.0.0.0.0.0.0.0.0.0.0.0.0.0.0.64
    1.3.6.1.2.1.4.34.1.5.2.16.254.128.0.0.0.0.0.0.244.222.123.255.254.17.231.76 ObjectIdentifier 1.3.6.1.2.1.4.32.1.5.6.2.16.254.128.0.0.0.0.0.0.0.0.0.0.0.0.0.0.64
    1.3.6.1.2.1.4.34.1.5.2.16.254.128.0.0.0.0.0.0.248.188.151.255.254.113.197.208 ObjectIdentifier 1.3.6.1.2.1.4.32.1.5.5.2.16.254.128.0.0.0.0.0.0.0.0.0.0.0.0.0.0.64
    1.3.6.1.2.1.4.34.1.5.2.16.254.128.0.0.0.0.0.0.252.251.7.255.254.220.229.222 ObjectIdentifier 1.3.6.1.2.1.4.32.1.5.3.2.16.254.128.0.0.0.0.0.0.0.0.0.0.0.0.0.0.64
    1.0.8802.1.1.2.1.3.7.1.2.3 Integer 5
    1.0.8802.1.1.2.1.3.7.1.2.4 Integer 5
    1.0.8802.1.1.2.1.3.7.1.2.5 Integer 5
    1.0.8802.1.1.2.1.3.7.1.2.6 Integer 5
    1.0.8802.1.1.2.1.3.7.1.3.3 OctetString "eth1"
    1.0.8802.1.1.2.1.3.7.1.3.4 OctetString "eth2"
    1.0.8802.1.1.2.1.3.7.1.3.5 OctetString "eth3"
    1.0.8802.1.1.2.1.3.7.1.3.6 OctetString "eth4"
    1.0.8802.1.1.2.1.3.7.1.4.3 OctetString "eth1"
    1.0.8802.1.1.2.1.3.7.1.4.4 OctetString "eth2"
    1.0.8802.1.1.2.1.3.7.1.4.5 OctetString "eth3"
    1.0.8802.1.1.2.1.3.7.1.4.6 OctetString "eth4"
    1.0.8802.1.1.2.1.4.1.1.4.0.3.1 Integer 4
    1.0.8802.1.1.2.1.4.1.1.4.100.4.2 Integer 4
    1.0.8802.1.1.2.1.4.1.1.5.0.3.1 OctetString 0x16bb0e95d25c
    1.0.8802.1.1.2.1.4.1.1.5.100.4.2 OctetString 0x8287e85c5f4b
    1.0.8802.1.1.2.1.4.1.1.6.0.3.1 Integer 5
    1.0.8802.1.1.2.1.4.1.1.6.100.4.2 Integer 5
    1.0.8802.1.1.2.1.4.1.1.7.0.3.1 OctetString "eth1"
    1.0.8802.1.1.2.1.4.1.1.7.100.4.2 OctetString "eth2"
    1.0.8802.1.1.2.1.4.1.1.8.0.3.1 OctetString "eth1"
    1.0.8802.1.1.2.1.4.1.1.8.100.4.2 OctetString "eth2"
    1.0.8802.1.1.2.1.4.1.1.9.0.3.1 OctetString "r2"
    1.0.8802.1.1.2.1.4.1.1.9.100.4.2 OctetString "r3"
    1.0.8802.1.1.2.1.4.1.1.10.0.3.1 OctetString "FRRouting 8.4.4 router r2 on Linux 6.18.44-fc-v669 (switchboard lab)"
    1.0.8802.1.1.2.1.4.1.1.10.100.4.2 OctetString "FRRouting 8.4.4 router r3 on Linux 6.18.44-fc-v669 (switchboard lab)"
    1.0.8802.1.1.2.1.4.1.1.11.0.3.1 OctetString "9"
    1.0.8802.1.1.2.1.4.1.1.11.100.4.2 OctetString "9"
    1.0.8802.1.1.2.1.4.1.1.12.0.3.1 OctetString 0x08
    1.0.8802.1.1.2.1.4.1.1.12.100.4.2 OctetString 0x08
    1.0.8802.1.1.2.1.4.2.1.3.0.3.1.1.4.172.31.85.12 Integer 2
    1.0.8802.1.1.2.1.4.2.1.3.100.4.2.1.4.172.31.85.13 Integer 2
"""


def parse_recording(text: str) -> dict[tuple[int, ...], VarBind]:
    rows = {}
    for line in text.strip().splitlines():
        oid, kind, raw = line.strip().split(" ", 2)
        value: Any
        if raw.startswith('"'):
            value = raw[1:-1].encode()
        elif raw.startswith("0x"):
            value = bytes.fromhex(raw[2:])
        elif kind in ("IpAddress", "ObjectIdentifier"):
            value = raw
        else:
            value = int(raw)
        rows[tuple(int(p) for p in oid.split("."))] = VarBind(oid, value, kind)
    return rows


class RecordedAgent:
    """Answers like SnmpClient from recorded varbinds; ``failing`` OID prefixes time out."""

    def __init__(self, rows: dict[tuple[int, ...], VarBind], failing: Sequence[str] = ()):
        self.rows = rows
        self.keys = sorted(rows)
        self.failing = [tuple(int(p) for p in f.split(".")) for f in failing]
        self.requests = 0

    def _check(self, oids: Sequence[str]) -> None:
        self.requests += 1
        for oid in oids:
            t = tuple(int(p) for p in oid.split("."))
            if any(t[:len(f)] == f for f in self.failing):
                raise DeviceTimeout("snmp getbulk r1: no answer", device="r1",
                                    operation="snmp getbulk", profile="core")

    def _next(self, oid: str) -> VarBind:
        t = tuple(int(p) for p in oid.split("."))
        i = bisect.bisect_right(self.keys, t)
        if i == len(self.keys):
            return VarBind(oid, Special.END_OF_MIB_VIEW, "EndOfMibView")
        return self.rows[self.keys[i]]

    async def get(self, host: str, creds: SnmpCredentials, oids: Sequence[str]) -> list[VarBind]:
        self._check(oids)
        return [self.rows.get(tuple(int(p) for p in o.split(".")),
                              VarBind(o, Special.NO_SUCH_OBJECT, "NoSuchObject")) for o in oids]

    async def get_next(self, host: str, creds: SnmpCredentials,
                       oids: Sequence[str]) -> list[VarBind]:
        self._check(oids)
        return [self._next(o) for o in oids]

    async def get_bulk(self, host: str, creds: SnmpCredentials, oids: Sequence[str], *,
                       max_repetitions: int = 25, non_repeaters: int = 0) -> list[VarBind]:
        self._check(oids)
        out: list[VarBind] = []
        cursors = list(oids)
        for _ in range(max_repetitions):
            row = [self._next(c) for c in cursors]
            out.extend(row)
            cursors = [vb.oid for vb in row]
        return out


@pytest.fixture
def r1() -> dict[tuple[int, ...], VarBind]:
    return parse_recording(R1_RECORDING)


@pytest.mark.parametrize("version", [SnmpVersion.V1, SnmpVersion.V2C, SnmpVersion.V3])
def test_facts_of_r1(r1: dict[tuple[int, ...], VarBind], version: SnmpVersion) -> None:
    facts = run(collect_snmp_facts(RecordedAgent(r1), "r1", creds(version)))  # type: ignore[arg-type]
    assert facts.partial == [] and facts.status is StatusCode.OK
    assert facts.system.name == "r1"
    assert facts.system.object_id == "1.3.6.1.4.1.8072.3.2.10"
    assert facts.system.uptime_s == pytest.approx(639.53)
    assert facts.system.services == 78
    assert facts.engine_id == "80001f88057c2fefaa0d4b0a7efbf44ce0"
    by_name = {i.name: i for i in facts.interfaces}
    assert sorted(by_name) == ["eth1", "eth2", "eth3", "eth4", "lo", "mgmt0"]
    eth1 = by_name["eth1"]
    assert (eth1.if_index, eth1.mac, eth1.mtu, eth1.speed_mbps, eth1.if_type) == \
        (3, "fe:fb:07:dc:e5:de", 1500, 10000.0, 6)
    assert (eth1.admin_status, eth1.oper_status) == ("up", "up")
    assert by_name["lo"].mac is None and by_name["lo"].speed_mbps == 10.0
    addresses = {(a.address, a.prefix_length, a.if_index) for a in facts.addresses}
    assert {("10.0.12.1", 30, 3), ("10.255.0.1", 32, 1), ("172.31.85.11", 24, 2)} <= addresses
    assert not any(a.address == "10.0.12.3" for a in facts.addresses)  # broadcast
    assert facts.entities == []
    assert facts.lldp_local is not None
    assert facts.lldp_local.chassis_id == "fe:fb:07:dc:e5:de"
    assert facts.lldp_local.chassis_id_subtype == "macAddress"
    assert facts.lldp_local.ports == {3: "eth1", 4: "eth2", 5: "eth3", 6: "eth4"}
    neighbours = {(n.sys_name, n.local_port, n.port_id, n.mgmt_address,
                   tuple(n.capabilities_enabled)) for n in facts.lldp_neighbors}
    assert neighbours == {("r2", "eth1", "eth1", "172.31.85.12", ("router",)),
                          ("r3", "eth2", "eth2", "172.31.85.13", ("router",))}
    assert all(n.chassis_id_subtype == "macAddress" and n.port_id_subtype == "interfaceName"
               for n in facts.lldp_neighbors)


def test_a_failing_table_is_partial(r1: dict[tuple[int, ...], VarBind]) -> None:
    agent = RecordedAgent(r1, failing=["1.0.8802.1.1.2.1.4", "1.3.6.1.2.1.31"])
    facts = run(collect_snmp_facts(agent, "r1", creds()))  # type: ignore[arg-type]
    assert sorted(facts.partial) == ["ifXTable", "lldpRemManAddrTable", "lldpRemTable"]
    assert facts.status is StatusCode.PARTIAL
    assert facts.lldp_neighbors == []
    assert {i.name for i in facts.interfaces} >= {"eth1", "mgmt0"}  # ifDescr stands in


def test_a_failing_system_group_raises(r1: dict[tuple[int, ...], VarBind]) -> None:
    with pytest.raises(DeviceTimeout):
        run(collect_snmp_facts(RecordedAgent(r1, failing=["1.3.6.1.2.1.1"]), "r1",  # type: ignore[arg-type]
                               creds()))
    empty = RecordedAgent({})
    with pytest.raises(ProtocolError, match="system group"):
        run(collect_snmp_facts(empty, "r1", creds()))  # type: ignore[arg-type]


def test_walk_columns_side_by_side(r1: dict[tuple[int, ...], VarBind]) -> None:
    agent = RecordedAgent(r1)
    columns = {"ifDescr": "1.3.6.1.2.1.2.2.1.2", "ifName": "1.3.6.1.2.1.31.1.1.1.1"}
    table = run(_walk_columns(agent, "r1", creds(), columns))  # type: ignore[arg-type]
    assert table["ifDescr"][(3,)] == b"eth1" and table["ifName"][(6,)] == b"eth4"
    assert len(table["ifDescr"]) == len(table["ifName"]) == 6
    assert agent.requests == 1  # 24 repetitions of 2 columns cover both in one GETBULK
