"""An async SNMP client (v1, v2c, v3): v1 and v2c on our own BER codec, v3 on pysnmp 7.

v1 and v2c requests are encoded and their replies decoded by :mod:`collectors.ber` and travel
over the client's own asyncio UDP socket (one per address family, opened on first use);
pyasn1 was four fifths of pysnmp's CPU. A reply counts only if it comes from the target's
address and port with the request's id (a fresh random one per attempt; a late answer to an
earlier attempt counts too), version and community; anything else is counted in
:class:`SnmpStats` (``malformed``, ``unmatched``) and dropped. SNMPv3 goes through one pysnmp
``SnmpEngine`` per client with numeric OIDs and ``lookupMib=False`` (MIB lookups cost pysnmp
two thirds of its time). A client belongs to the event loop it is first used in; semaphores
bound the requests in flight overall and per target.

Failures become the suite's errors in exactly one place, :func:`map_snmp_error` (pysnmp's
error tuples for v3, the same names and the PDU's error status for v1/v2c):

    DeviceTimeout          no answer after the retries. A v1/v2c request with a wrong
                           community looks exactly like this: the agent drops it silently.
                           net-snmp also drops a v3 request with a wrong *privacy* key
                           (it decrypts to garbage and no report is sent).
    AuthenticationFailed   the agent's USM refused the user, digest, privacy or security
                           level (a report PDU), or it answered ``authorizationError``
    ConnectionRefused      the target answered ICMP port unreachable: no agent on that port
                           (probed once, after a timeout, with an empty datagram)
    ProtocolError          any other engine error (an empty GETNEXT/GETBULK answer, a host
                           name that does not resolve), or a PDU error status

Secrets (communities, USM keys) never appear in messages, reprs or logs.
"""

from __future__ import annotations

import asyncio
import errno
import re
import secrets
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, cast

from pyasn1.type import univ
from pydantic import SecretStr
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch import asyncio as snmp
from pysnmp.proto import errind, rfc1902, rfc1905

from collectors.ber import (
    BerError,
    Message,
    PduType,
    SnmpValue,
    Special,
    VarBind,
    decode_message,
    encode_message,
)
from topology.credentials import CredentialProfile, SnmpV3User
from topology.errors import (
    AuthenticationFailed,
    CollectionError,
    ConnectionRefused,
    CredentialError,
    DeviceTimeout,
    ProtocolError,
)

__all__ = [
    "SnmpClient",
    "SnmpCredentials",
    "SnmpStats",
    "SnmpValue",
    "SnmpVersion",
    "Special",
    "VarBind",
    "convert_value",
    "map_snmp_error",
    "row_index",
]


class SnmpVersion(StrEnum):
    """The SNMP protocol version a request uses."""

    V1 = "1"
    V2C = "2c"
    V3 = "3"


@dataclass(frozen=True, repr=False)
class SnmpCredentials:
    """What one request needs to log in: the version, the community or the USM user, and
    the name of the credential profile they came from (named in errors, never the secret)."""

    version: SnmpVersion
    profile: str
    community: SecretStr | None = None
    v3: SnmpV3User | None = None

    def __post_init__(self) -> None:
        if self.version is SnmpVersion.V3 and self.v3 is None:
            raise CredentialError(f"profile {self.profile!r}: SNMPv3 needs a USM user",
                                  profile=self.profile)
        if self.version is not SnmpVersion.V3 and self.community is None:
            raise CredentialError(
                f"profile {self.profile!r}: SNMPv{self.version} needs a community",
                profile=self.profile)

    @classmethod
    def from_profile(cls, profile: CredentialProfile,
                     version: SnmpVersion) -> SnmpCredentials | None:
        """The profile's credentials for ``version``; ``None`` when it has none for it."""
        if version is SnmpVersion.V3:
            if profile.snmp_v3 is None:
                return None
            return cls(version=version, profile=profile.name, v3=profile.snmp_v3)
        if profile.snmp_community is None:
            return None
        return cls(version=version, profile=profile.name, community=profile.snmp_community)

    def __repr__(self) -> str:
        if self.v3 is not None and self.version is SnmpVersion.V3:
            u = self.v3
            auth = u.auth_protocol if u.auth_key is not None else None
            priv = u.priv_protocol if u.priv_key is not None else None
            return (f"SnmpCredentials(version='3', profile={self.profile!r}, "
                    f"user={u.user!r}, level={u.level!r}, auth={auth!r}, priv={priv!r})")
        return (f"SnmpCredentials(version={self.version.value!r}, profile={self.profile!r}, "
                f"community='**********')")

    __str__ = __repr__


@dataclass
class SnmpStats:
    """Counters of what a client did, for visibility (``peak_*`` prove the bounds held).

    ``malformed`` counts v1/v2c datagrams that did not decode, ``unmatched`` decoded replies
    that belong to no request in flight (another source, request id, version, community or
    PDU type, or an answer to a request already answered); both are dropped.
    """

    requests: int = 0
    timeouts: int = 0
    auth_failures: int = 0
    refused: int = 0
    errors: int = 0
    varbinds: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    peak_in_flight_per_target: int = 0
    malformed: int = 0
    unmatched: int = 0


# -- value conversion --------------------------------------------------------------------

_SPECIALS: Final[dict[type, Special]] = {
    rfc1905.NoSuchObject: Special.NO_SUCH_OBJECT,
    rfc1905.NoSuchInstance: Special.NO_SUCH_INSTANCE,
    rfc1905.EndOfMibView: Special.END_OF_MIB_VIEW,
}


def convert_value(value: Any) -> tuple[SnmpValue, str]:
    """A pysnmp/pyasn1 value as (our value, its ASN.1 type name)."""
    kind = type(value).__name__
    special = _SPECIALS.get(type(value))
    if special is not None:
        return special, kind
    if isinstance(value, rfc1902.IpAddress):
        raw = value.asOctets()
        return (socket.inet_ntoa(raw) if len(raw) == 4 else raw.hex()), kind
    if isinstance(value, univ.Null):  # before OctetString: pyasn1's Null derives from it
        return b"", kind
    if isinstance(value, univ.OctetString):
        return value.asOctets(), kind
    if isinstance(value, univ.Integer):
        return int(value), kind
    if isinstance(value, univ.ObjectIdentifier):
        return ".".join(map(str, value.asTuple())), kind
    raise TypeError(f"unsupported SNMP value type {kind}")


def _varbind(name: Any, value: Any) -> VarBind:
    converted, kind = convert_value(value)
    return VarBind(".".join(map(str, name.asTuple())), converted, kind)


def row_index(oid: str, prefix: str) -> tuple[int, ...] | None:
    """The row index of ``oid`` under the column ``prefix`` (dotted, no trailing dot), or
    None when ``oid`` is not below it. String work first, integers only for the index:
    turning whole OIDs into tuples was a quarter of the poller's CPU (bench/polling.py)."""
    start = len(prefix) + 1
    if len(oid) <= start or oid[start - 1] != "." or not oid.startswith(prefix):
        return None
    tail = oid[start:]
    if tail.isdigit():
        return (int(tail),)
    try:
        return tuple(int(p) for p in tail.split("."))
    except ValueError:
        return None


def _oid(oid: str) -> tuple[int, ...]:
    """A dotted OID (leading dot allowed) as a tuple; ``ValueError`` for anything else."""
    text = oid[1:] if oid.startswith(".") else oid
    try:
        parts = tuple(int(p) for p in text.split("."))
    except ValueError:
        raise ValueError(f"not a numeric OID: {oid!r}") from None
    if len(parts) < 2 or any(p < 0 for p in parts):
        raise ValueError(f"not a numeric OID: {oid!r}")
    return parts


def _oid_tuple(oid: str, parents: dict[str, tuple[int, ...]]) -> tuple[int, ...]:
    """A canonical dotted OID (as decoded) as a tuple; ``parents`` memoises all but the
    last arc, which the OIDs of a walk share."""
    parent, _, last = oid.rpartition(".")
    head = parents.get(parent)
    if head is None:
        head = parents[parent] = tuple(map(int, parent.split(".")))
    return (*head, int(last))


# -- the one error mapping ---------------------------------------------------------------

# pysnmp error-indication names (ErrorIndication compares equal to them) -> our class
_TIMEOUT: Final = "requestTimedOut"
_EMPTY_RESPONSE: Final = "emptyResponse"
_AUTH_INDICATIONS: Final[dict[str, str]] = {
    "unknownUserName": "unknown USM user",
    "wrongDigest": "wrong digest (wrong auth key or protocol)",
    "decryptionError": "decryption error (wrong privacy key or protocol)",
    "unsupportedSecLevel": "security level not supported for this user",
    "unsupportedSecurityLevel": "security level not supported for this user",
    "notInTimeWindow": "not in time window (engine boots/time out of sync after retry)",
    "authenticationFailure": "authenticator mismatched",
    "authenticationError": "authentication error",
    "unknownSecurityName": "unknown security name",
    "unknownCommunityName": "unknown community",
    "unsupportedAuthProtocol": "auth protocol not supported here",
    "unsupportedPrivProtocol": "privacy protocol not supported here",
    "noAuthentication": "no authentication service available here",
    "noEncryption": "no encryption service available here",
}
# RFC 3416 error-status values
_ERROR_STATUS: Final[tuple[str, ...]] = (
    "noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr", "noAccess",
    "wrongType", "wrongLength", "wrongEncoding", "wrongValue", "noCreation",
    "inconsistentValue", "resourceUnavailable", "commitFailed", "undoFailed",
    "authorizationError", "notWritable", "inconsistentName",
)
_AUTHORIZATION_ERROR: Final = 16
_NO_SUCH_NAME: Final = 2
_DESCRIPTIONS: Final[dict[str, str]] = {
    str(v): str(k) for k, v in vars(errind).items()
    if isinstance(v, errind.ErrorIndication)
}
_ERRNO: Final = re.compile(r"\[Errno (\d+)\]")


def _indication_name(indication: object) -> str:
    """The pysnmp name of an error indication given as object, name or description."""
    if isinstance(indication, errind.ErrorIndication):
        name = type(indication).__name__
        return name[:1].lower() + name[1:]
    text = str(indication)
    return _DESCRIPTIONS.get(text, text)


def _os_errno(exc: BaseException) -> int | None:
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno
    found = _ERRNO.search(str(exc))  # pysnmp's CarrierError wraps the socket error's text
    return int(found.group(1)) if found else None


def map_snmp_error(
    error_indication: object,
    error_status: Any = 0,
    error_index: Any = 0,
    *,
    device: str,
    operation: str,
    profile: str | None = None,
    oids: Sequence[str] = (),
    port_refused: bool = False,
) -> CollectionError | None:
    """The suite's error for (errorIndication, errorStatus, errorIndex), or ``None``.

    ``error_indication`` may be pysnmp's ErrorIndication, its name or description (the v1/v2c
    path passes the names, ``"requestTimedOut"``, and the PDU's error status and index as
    ints), or an exception raised on the way (a socket error, maybe inside pysnmp's
    CarrierError; a host name that does not resolve). ``oids`` are the
    request's OIDs, to name the one ``error_index`` points at. ``port_refused`` says an
    ICMP port-unreachable answered the timed-out request. A v1/v2c request with a wrong
    community times out: the agent drops it silently, so it is a DeviceTimeout.
    Messages name the device, the operation and the profile, never a secret.
    """
    suffix = f" (credential profile {profile!r})" if profile else ""

    def error(cls: type[CollectionError], reason: str) -> CollectionError:
        return cls(f"{operation} {device}: {reason}{suffix}", device=device,
                   operation=operation, profile=profile)

    if error_indication:
        if isinstance(error_indication, BaseException) and not isinstance(
                error_indication, errind.ErrorIndication):
            if isinstance(error_indication, socket.gaierror):
                return error(ProtocolError, "the host name does not resolve")
            code = _os_errno(error_indication)
            if code == errno.ECONNREFUSED:
                return error(ConnectionRefused, "port refused (ICMP port unreachable)")
            if code in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
                return error(DeviceTimeout, f"unreachable ({errno.errorcode[code]})")
            if code is not None:
                return error(ProtocolError,
                             f"transport error ({errno.errorcode.get(code, str(code))})")
            source = "pysnmp" if isinstance(error_indication, PySnmpError) else "transport"
            return error(ProtocolError,
                         f"{source} error ({type(error_indication).__name__})")
        name = _indication_name(error_indication)
        if name == _TIMEOUT:
            if port_refused:
                return error(ConnectionRefused, "no SNMP agent (ICMP port unreachable)")
            return error(DeviceTimeout, "no answer within the timeout after the retries "
                         "(a wrong v1/v2c community looks the same: the agent drops it)")
        if name in _AUTH_INDICATIONS:
            return error(AuthenticationFailed,
                         f"authentication failed: {_AUTH_INDICATIONS[name]}")
        return error(ProtocolError, f"SNMP engine error: {name}")
    status = int(error_status) if error_status else 0
    if not status:
        return None
    label = _ERROR_STATUS[status] if 0 <= status < len(_ERROR_STATUS) else f"status {status}"
    index = int(error_index) if error_index else 0
    at = f" at {oids[index - 1]}" if 0 < index <= len(oids) else ""
    if status == _AUTHORIZATION_ERROR:
        return error(AuthenticationFailed,
                     f"access refused for these credentials (authorizationError){at}")
    return error(ProtocolError, f"agent answered {label}{at}")


# -- the client --------------------------------------------------------------------------

_AUTH_PROTOCOLS: Final[dict[str, Any]] = {
    "MD5": snmp.USM_AUTH_HMAC96_MD5,
    "SHA": snmp.USM_AUTH_HMAC96_SHA,
    "SHA-224": snmp.USM_AUTH_HMAC128_SHA224,
    "SHA-256": snmp.USM_AUTH_HMAC192_SHA256,
    "SHA-384": snmp.USM_AUTH_HMAC256_SHA384,
    "SHA-512": snmp.USM_AUTH_HMAC384_SHA512,
}
# AES-192/256 with the key extension net-snmp uses under these names (draft-blumenthal);
# Cisco's variant (Reeder, net-snmp's "AES-192-C") is not expressible in a profile yet.
_PRIV_PROTOCOLS: Final[dict[str, Any]] = {
    "DES": snmp.USM_PRIV_CBC56_DES,
    "AES": snmp.USM_PRIV_CFB128_AES,
    "AES-192": snmp.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES-256": snmp.USM_PRIV_CFB256_AES_BLUMENTHAL,
}

_Address = tuple[Any, ...]
"""A socket address: (host, port) for IPv4, (host, port, flowinfo, scope_id) for IPv6."""


@dataclass(frozen=True, slots=True)
class _Request:
    """What to ask: the PDU type, its OIDs and, for GETBULK, its two counts."""

    pdu_type: PduType
    oids: Sequence[tuple[int, ...]]
    non_repeaters: int = 0
    max_repetitions: int = 0


@dataclass
class _Target:
    semaphore: asyncio.Semaphore
    in_flight: int = 0
    users: int = 0


@dataclass
class _UsmUse:
    """Which keys a USM user name is configured with in the engine, and how many requests
    use them now (pysnmp keeps one key set per user name)."""

    user: SnmpV3User
    active: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)


@dataclass(slots=True)
class _Waiter:
    """A v1/v2c request on the wire: what its reply must match, and where it goes."""

    reply: asyncio.Future[Message]
    source: tuple[str, int]
    version: int
    community: bytes = field(repr=False)


class _Endpoint(asyncio.DatagramProtocol):
    """A client's UDP socket for one address family and the v1/v2c requests waiting on it.

    A datagram is decoded and handed to the request its id names if it matches that
    request's source, version and community; anything else is counted and dropped, never
    raised. Send errors and ICMP errors are not reported to an unconnected socket's sender:
    the request times out, as it did with pysnmp (the port-unreachable probe follows).
    """

    def __init__(self, stats: SnmpStats) -> None:
        self.stats = stats
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: dict[int, _Waiter] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: _Address) -> None:
        try:
            reply = decode_message(data)
        except BerError:
            self.stats.malformed += 1
            return
        waiter = self.waiting.get(reply.request_id)
        if (waiter is None or waiter.reply.done() or reply.pdu_type is not PduType.RESPONSE
                or reply.version != waiter.version or reply.community != waiter.community
                or (addr[0], addr[1]) != waiter.source):
            self.stats.unmatched += 1
            return
        waiter.reply.set_result(reply)

    def error_received(self, exc: Exception) -> None:
        """Nothing to do: the request this was for times out."""

    def connection_lost(self, exc: Exception | None) -> None:
        """The socket is gone (closed, or a fatal error): fail whoever still waits."""
        self._fail(ConnectionError("the client's UDP socket closed"))

    def is_open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def new_request_id(self) -> int:
        """A random 31-bit request id no request on this socket holds."""
        while True:
            request_id = secrets.randbits(31)
            if request_id not in self.waiting:
                return request_id

    def send(self, data: bytes, address: _Address) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("the client's UDP socket closed")
        self.transport.sendto(data, address)

    def close(self) -> None:
        """Close the socket; requests still waiting raise RuntimeError (client closed)."""
        self._fail(RuntimeError("SnmpClient is closed"))
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        for waiter in self.waiting.values():
            if not waiter.reply.done():
                waiter.reply.set_exception(exc)
        self.waiting.clear()


def _community_octets(creds: SnmpCredentials) -> bytes:
    """The community as pysnmp put it on the wire (Latin-1; UTF-8 beyond that)."""
    assert creds.community is not None
    text = creds.community.get_secret_value()
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode()


class SnmpClient:
    """Async SNMP GET, GETNEXT, GETBULK and walk against many targets.

    ``timeout_s`` is per attempt; a request is tried ``1 + retries`` times. At most
    ``max_in_flight`` requests are outstanding at once, and ``max_in_flight_per_target``
    towards one host and port. Use as ``async with SnmpClient() as client:`` or call
    :meth:`close`. Requests with one v3 user name but different keys are serialised
    (pysnmp holds one key set per user name).
    """

    def __init__(self, *, timeout_s: float = 1.0, retries: int = 1, max_in_flight: int = 64,
                 max_in_flight_per_target: int = 4) -> None:
        if timeout_s <= 0 or retries < 0 or max_in_flight < 1 or max_in_flight_per_target < 1:
            raise ValueError("timeout_s > 0, retries >= 0 and in-flight bounds >= 1 required")
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_in_flight = max_in_flight
        self.max_in_flight_per_target = max_in_flight_per_target
        self.refused_probe_s = 0.25
        """How long to listen for ICMP port unreachable after a timeout (0 turns it off)."""
        self.stats = SnmpStats()
        self._engine: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._context = snmp.ContextData()
        self._global = asyncio.Semaphore(max_in_flight)
        self._targets: dict[tuple[str, int], _Target] = {}
        self._transports: dict[tuple[str, int], Any] = {}
        self._usm: dict[str, _UsmUse] = {}
        self._endpoints: dict[int, _Endpoint] = {}
        self._endpoints_lock = asyncio.Lock()
        self._addresses: dict[tuple[str, int], tuple[int, _Address]] = {}

    async def __aenter__(self) -> SnmpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the sockets; the client cannot be used afterwards."""
        self._closed = True
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None
        self._transports.clear()
        for endpoint in self._endpoints.values():
            endpoint.close()
        self._endpoints.clear()

    # -- public operations ---------------------------------------------------------------

    async def get(self, host: str, creds: SnmpCredentials, oids: Sequence[str], *,
                  port: int = 161) -> list[VarBind]:
        """GET; a missing OID comes back as a :class:`Special` value (v1's noSuchName too)."""
        return await self._get_or_next("snmp get", host, creds, oids, port=port, nxt=False)

    async def get_next(self, host: str, creds: SnmpCredentials, oids: Sequence[str], *,
                       port: int = 161) -> list[VarBind]:
        """GETNEXT; past the end comes back as ``Special.END_OF_MIB_VIEW`` (v1 too)."""
        return await self._get_or_next("snmp getnext", host, creds, oids, port=port, nxt=True)

    async def get_bulk(self, host: str, creds: SnmpCredentials, oids: Sequence[str], *,
                       max_repetitions: int = 25, non_repeaters: int = 0,
                       port: int = 161) -> list[VarBind]:
        """GETBULK, flat in wire order (non-repeaters, then each repetition of the rest).

        The agent may return fewer than asked. SNMPv1 has no GETBULK: it is emulated with
        GETNEXTs, the way an agent would answer it.
        """
        if max_repetitions < 1 or not 0 <= non_repeaters <= len(oids):
            raise ValueError("max_repetitions >= 1 and 0 <= non_repeaters <= len(oids)")
        parsed = [_oid(o) for o in oids]
        if creds.version is SnmpVersion.V1:
            return await self._emulated_bulk(host, creds, parsed, max_repetitions,
                                             non_repeaters, port)
        request = _Request(PduType.GETBULK, parsed, non_repeaters, max_repetitions)
        _, _, varbinds = await self._exchange("snmp getbulk", host, port, creds, request, oids)
        return varbinds

    async def walk(self, host: str, creds: SnmpCredentials, oid: str, *,
                   max_repetitions: int = 25, port: int = 161) -> list[VarBind]:
        """Every varbind inside the subtree ``oid``, in order: GETBULK for v2c/v3, GETNEXT
        for v1; stops on leaving the subtree or endOfMibView. An agent answering an OID
        that does not increase raises ProtocolError (it would loop forever)."""
        if max_repetitions < 1:
            raise ValueError("max_repetitions >= 1")
        root = _oid(oid)
        depth = len(root)
        cursor = root
        out: list[VarBind] = []
        v1 = creds.version is SnmpVersion.V1
        parents: dict[str, tuple[int, ...]] = {}
        while True:
            request = (_Request(PduType.GETNEXT, [cursor]) if v1
                       else _Request(PduType.GETBULK, [cursor], 0, max_repetitions))
            status, _, varbinds = await self._exchange("snmp walk", host, port, creds,
                                                       request, [oid], v1_no_such_name=v1)
            if status or not varbinds:  # v1 noSuchName: past the end of the MIB
                return out
            for vb in varbinds:
                if isinstance(vb.value, Special):
                    return out
                numbers = _oid_tuple(vb.oid, parents)
                if numbers[:depth] != root:
                    return out
                if numbers <= cursor:
                    raise ProtocolError(
                        f"snmp walk {host}: OID not increasing after "
                        f"{'.'.join(map(str, cursor))} (credential profile {creds.profile!r})",
                        device=host, operation="snmp walk", profile=creds.profile)
                out.append(vb)
                cursor = numbers

    # -- internals -----------------------------------------------------------------------

    async def _get_or_next(self, operation: str, host: str, creds: SnmpCredentials,
                           oids: Sequence[str], *, port: int, nxt: bool) -> list[VarBind]:
        if not oids:
            return []
        parsed = [_oid(o) for o in oids]
        pending = list(range(len(oids)))
        results: dict[int, VarBind] = {}
        v1 = creds.version is SnmpVersion.V1
        missing, missing_kind = ((Special.END_OF_MIB_VIEW, "EndOfMibView") if nxt
                                 else (Special.NO_SUCH_OBJECT, "NoSuchObject"))
        pdu_type = PduType.GETNEXT if nxt else PduType.GET
        while pending:
            request = _Request(pdu_type, [parsed[i] for i in pending])
            status, index, varbinds = await self._exchange(
                operation, host, port, creds, request, [oids[i] for i in pending],
                v1_no_such_name=v1)
            if status:  # v1 noSuchName: record it as data, ask again for the others
                i = pending.pop(index - 1)
                results[i] = VarBind(".".join(map(str, parsed[i])), missing, missing_kind)
                continue
            if len(varbinds) != len(pending):
                raise ProtocolError(
                    f"{operation} {host}: asked {len(pending)} varbinds, got {len(varbinds)} "
                    f"(credential profile {creds.profile!r})",
                    device=host, operation=operation, profile=creds.profile)
            for i, vb in zip(pending, varbinds, strict=True):
                results[i] = vb
            pending = []
        return [results[i] for i in range(len(oids))]

    async def _emulated_bulk(self, host: str, creds: SnmpCredentials,
                             oids: list[tuple[int, ...]], max_repetitions: int,
                             non_repeaters: int, port: int) -> list[VarBind]:
        dotted = [".".join(map(str, o)) for o in oids]
        out = await self.get_next(host, creds, dotted[:non_repeaters], port=port)
        cursors = dotted[non_repeaters:]
        for _ in range(max_repetitions):
            if not cursors:
                break
            row = await self.get_next(host, creds, cursors, port=port)
            out.extend(row)
            if all(vb.value is Special.END_OF_MIB_VIEW for vb in row):
                break
            cursors = [vb.oid if vb.value is not Special.END_OF_MIB_VIEW else c
                       for vb, c in zip(row, cursors, strict=True)]
        return out

    async def _exchange(self, operation: str, host: str, port: int, creds: SnmpCredentials,
                        request: _Request, oids: Sequence[str], *,
                        v1_no_such_name: bool = False) -> tuple[int, int, list[VarBind]]:
        """One request through the bounds; (error status, error index, varbinds).

        The status is non-zero only for v1's noSuchName when ``v1_no_such_name``; every
        other failure is raised as the suite's error. v1/v2c answers are read the way
        pysnmp's command generator read them: the error index is clipped to the varbinds
        present, and an empty GETNEXT/GETBULK answer is the engine error emptyResponse.
        """
        self._own_loop()
        where = host if port == 161 else f"{host}:{port}"
        pysnmp_reply: Any = None
        reply: Message | None = None
        try:
            async with self._slot(host, port):
                if creds.version is SnmpVersion.V3:
                    pysnmp_reply = await self._pysnmp_request(host, port, creds, request)
                else:
                    family, address = await self._address(host, port)
                    endpoint = await self._endpoint(family)
                    self.stats.requests += 1
                    reply = await self._roundtrip(endpoint, address, creds, request)
        except (PySnmpError, OSError) as exc:
            error = map_snmp_error(exc, device=where, operation=operation,
                                   profile=creds.profile, oids=oids)
            assert error is not None
            self._count(error)
            raise error from exc
        raw: Sequence[Any] = ()
        varbinds: list[VarBind] = []
        if pysnmp_reply is not None:
            indication, status, index, raw = pysnmp_reply
            status_i = int(status) if status else 0
            index_i = int(index) if index else 0
        elif reply is None:
            indication, status_i, index_i = _TIMEOUT, 0, 0
        else:
            indication = None
            status_i, varbinds = reply.error_status, reply.varbinds
            index_i = min(reply.error_index, len(varbinds))
            if request.pdu_type is not PduType.GET:
                if status_i:
                    varbinds = []
                elif not varbinds:
                    indication = _EMPTY_RESPONSE
        if (not indication and status_i == _NO_SUCH_NAME and v1_no_such_name
                and 1 <= index_i <= len(oids)):
            return status_i, index_i, varbinds
        refused = False
        if indication and _indication_name(indication) == _TIMEOUT:
            refused = await self._port_refused(host, port)
        error = map_snmp_error(indication, status_i, index_i, device=where,
                               operation=operation, profile=creds.profile, oids=oids,
                               port_refused=refused)
        if error is not None:
            self._count(error)
            raise error
        if pysnmp_reply is not None:
            self.stats.varbinds += len(raw)
            return 0, 0, [_varbind(name, value) for name, value in raw]
        self.stats.varbinds += len(varbinds)
        return 0, 0, varbinds

    async def _roundtrip(self, endpoint: _Endpoint, address: _Address,
                         creds: SnmpCredentials, request: _Request) -> Message | None:
        """Send a v1/v2c request, ``1 + retries`` times with a fresh request id each, and
        wait ``timeout_s`` after each for its reply; ``None`` if none came."""
        community = _community_octets(creds)
        version = 0 if creds.version is SnmpVersion.V1 else 1
        message = Message(version, community, request.pdu_type, 0, request.non_repeaters,
                          request.max_repetitions,
                          [VarBind(".".join(map(str, o)), b"", "Null") for o in request.oids])
        reply: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(reply, (address[0], address[1]), version, community)
        request_ids: list[int] = []
        try:
            for _ in range(self.retries + 1):
                message.request_id = endpoint.new_request_id()
                request_ids.append(message.request_id)
                endpoint.waiting[message.request_id] = waiter
                endpoint.send(encode_message(message), address)
                done, _ = await asyncio.wait((reply,), timeout=self.timeout_s)
                if done:
                    return reply.result()
            return None
        finally:
            for request_id in request_ids:
                endpoint.waiting.pop(request_id, None)
            reply.cancel()

    async def _pysnmp_request(self, host: str, port: int, creds: SnmpCredentials,
                              request: _Request) -> Any:
        """An SNMPv3 request through pysnmp: its (indication, status, index, varbinds)."""
        engine = self._engine_for_loop()
        auth = self._auth_data(creds)
        target = await self._transport(host, port)
        objs = [snmp.ObjectType(snmp.ObjectIdentity(o)) for o in request.oids]
        async with self._usm_gate(creds):
            self.stats.requests += 1
            if request.pdu_type is PduType.GETBULK:
                sent = snmp.bulk_cmd(engine, auth, target, self._context, request.non_repeaters,
                                     request.max_repetitions, *objs, lookupMib=False)
            else:
                command = snmp.next_cmd if request.pdu_type is PduType.GETNEXT else snmp.get_cmd
                sent = command(engine, auth, target, self._context, *objs, lookupMib=False)
            try:
                return await asyncio.wait_for(sent, self._budget_s())
            except TimeoutError:  # pysnmp should have timed out itself: a backstop
                return errind.requestTimedOut, 0, 0, ()

    def _count(self, error: CollectionError) -> None:
        if isinstance(error, DeviceTimeout):
            self.stats.timeouts += 1
        elif isinstance(error, AuthenticationFailed):
            self.stats.auth_failures += 1
        elif isinstance(error, ConnectionRefused):
            self.stats.refused += 1
        else:
            self.stats.errors += 1

    def _budget_s(self) -> float:
        """A backstop over pysnmp's own timeout (v3 adds discovery round trips)."""
        return self.timeout_s * (self.retries + 1) * 3 * 2 + 1.0

    def _own_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, which must be the client's (the first it was used in)."""
        if self._closed:
            raise RuntimeError("SnmpClient is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise RuntimeError("an SnmpClient belongs to the event loop it was first used in")
        return loop

    def _engine_for_loop(self) -> Any:
        self._own_loop()
        if self._engine is None:
            self._engine = snmp.SnmpEngine()
        return self._engine

    def _auth_data(self, creds: SnmpCredentials) -> Any:
        user = creds.v3
        assert user is not None
        if user.auth_key is None:
            return snmp.UsmUserData(user.user)  # noqa: S509 - the profile asks for it
        auth = _AUTH_PROTOCOLS[user.auth_protocol or "SHA"]
        if user.priv_key is None:
            return snmp.UsmUserData(user.user, user.auth_key.get_secret_value(),
                                    authProtocol=auth)
        return snmp.UsmUserData(user.user, user.auth_key.get_secret_value(),
                                user.priv_key.get_secret_value(), authProtocol=auth,
                                privProtocol=_PRIV_PROTOCOLS[user.priv_protocol or "AES"])

    async def _transport(self, host: str, port: int) -> Any:
        """The pysnmp transport target of an SNMPv3 request."""
        key = (host, port)
        target = self._transports.get(key)
        if target is None:
            cls = snmp.Udp6TransportTarget if ":" in host else snmp.UdpTransportTarget
            target = await cls.create((host, port), timeout=self.timeout_s,
                                      retries=self.retries)
            self._transports[key] = target
        return target

    async def _address(self, host: str, port: int) -> tuple[int, _Address]:
        """The target's address family and socket address (v1/v2c), resolved once: an IP
        literal without DNS, a name with the loop's getaddrinfo."""
        key = (host, port)
        found = self._addresses.get(key)
        if found is None:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                infos = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM, 0,
                                           socket.AI_NUMERICHOST)
            except socket.gaierror:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, family=family, type=socket.SOCK_DGRAM)
            found = self._addresses[key] = (infos[0][0], infos[0][4])
        return found

    async def _endpoint(self, family: int) -> _Endpoint:
        """The client's UDP socket for ``family``, opened on first use."""
        endpoint = self._endpoints.get(family)
        if endpoint is None or not endpoint.is_open():
            async with self._endpoints_lock:
                endpoint = self._endpoints.get(family)
                if endpoint is None or not endpoint.is_open():
                    endpoint = await self._open_endpoint(family)
                    if self._closed:
                        endpoint.close()
                        raise RuntimeError("SnmpClient is closed")
                    self._endpoints[family] = endpoint
        return endpoint

    async def _open_endpoint(self, family: int) -> _Endpoint:
        """A new UDP socket (the tests swap this for an agent without a network)."""
        stats = self.stats
        _, endpoint = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _Endpoint(stats), family=family)
        return endpoint

    @asynccontextmanager
    async def _slot(self, host: str, port: int) -> AsyncIterator[None]:
        """Hold one request slot towards the target, then one overall."""
        key = (host, port)
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = _Target(
                asyncio.Semaphore(self.max_in_flight_per_target))
        target.users += 1
        try:
            async with target.semaphore, self._global:
                target.in_flight += 1
                self.stats.in_flight += 1
                stats = self.stats
                stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
                stats.peak_in_flight_per_target = max(stats.peak_in_flight_per_target,
                                                      target.in_flight)
                try:
                    yield
                finally:
                    target.in_flight -= 1
                    self.stats.in_flight -= 1
        finally:
            target.users -= 1
            if target.users == 0:
                del self._targets[key]

    @asynccontextmanager
    async def _usm_gate(self, creds: SnmpCredentials) -> AsyncIterator[None]:
        """Wait until no request uses other keys for this v3 user name."""
        user = creds.v3 if creds.version is SnmpVersion.V3 else None
        if user is None:
            yield
            return
        use = self._usm.get(user.user)
        if use is None:
            use = self._usm[user.user] = _UsmUse(user)
        async with use.changed:
            while use.active and use.user != user:
                await use.changed.wait()
            use.user = user
            use.active += 1
        try:
            yield
        finally:
            async with use.changed:
                use.active -= 1
                use.changed.notify_all()

    async def _port_refused(self, host: str, port: int) -> bool:
        """Whether an empty datagram to the target draws ICMP port unreachable."""
        if self.refused_probe_s <= 0:
            return False
        found = self._addresses.get((host, port))
        if found is not None:
            family, address = found
        else:
            target = self._transports.get((host, port))
            if target is None:
                return False
            address = target.transport_address[:2]  # resolved already: no DNS on the loop
            family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        loop = asyncio.get_running_loop()
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            try:
                sock.connect(address)
                sock.send(b"")
                await asyncio.wait_for(loop.sock_recv(sock, 1), self.refused_probe_s)
            except ConnectionRefusedError:
                return True
            except (TimeoutError, OSError):
                return False
        return False
