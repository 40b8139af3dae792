"""An async SNMP client (v1, v2c, v3) on pysnmp 7's asyncio API.

Numeric OIDs only and ``lookupMib=False``: no MIB is resolved on the hot path (MIB lookups
cost pysnmp two thirds of its time). One ``SnmpEngine`` per client, created on first use in
the running event loop (a client belongs to that loop); semaphores bound the requests in
flight overall and per target.

pysnmp's error tuples become the suite's errors in exactly one place, :func:`map_snmp_error`:

    DeviceTimeout          no answer after the retries. A v1/v2c request with a wrong
                           community looks exactly like this: the agent drops it silently.
                           net-snmp also drops a v3 request with a wrong *privacy* key
                           (it decrypts to garbage and no report is sent).
    AuthenticationFailed   the agent's USM refused the user, digest, privacy or security
                           level (a report PDU), or it answered ``authorizationError``
    ConnectionRefused      the target answered ICMP port unreachable: no agent on that port
                           (probed once, after a timeout, with an empty datagram)
    ProtocolError          any other engine error, or a PDU error status

Secrets (communities, USM keys) never appear in messages, reprs or logs.
"""

from __future__ import annotations

import asyncio
import errno
import re
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, Final

from pyasn1.type import univ
from pydantic import SecretStr
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch import asyncio as snmp
from pysnmp.proto import errind, rfc1902, rfc1905

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


class Special(Enum):
    """SNMPv2 exception values: data about an OID, not errors."""

    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"
    END_OF_MIB_VIEW = "endOfMibView"


SnmpValue = int | str | bytes | Special
"""Integer, Counter32/64, Gauge32, TimeTicks, Unsigned32 -> int; OctetString, Opaque, Bits
-> bytes; ObjectIdentifier -> dotted str; IpAddress -> dotted-quad str."""


@dataclass(frozen=True, slots=True)
class VarBind:
    """One variable binding; ``kind`` is the ASN.1 type name (``"Counter64"``)."""

    oid: str
    value: SnmpValue
    kind: str


@dataclass
class SnmpStats:
    """Counters of what a client did, for visibility (``peak_*`` prove the bounds held)."""

    requests: int = 0
    timeouts: int = 0
    auth_failures: int = 0
    refused: int = 0
    errors: int = 0
    varbinds: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    peak_in_flight_per_target: int = 0


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


# -- the one error mapping ---------------------------------------------------------------

# pysnmp error-indication names (ErrorIndication compares equal to them) -> our class
_TIMEOUT: Final = "requestTimedOut"
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
    """The suite's error for pysnmp's (errorIndication, errorStatus, errorIndex), or ``None``.

    ``error_indication`` may be pysnmp's ErrorIndication, its name or description, or an
    exception pysnmp raised (a socket error inside a CarrierError). ``oids`` are the
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
            code = _os_errno(error_indication)
            if code == errno.ECONNREFUSED:
                return error(ConnectionRefused, "port refused (ICMP port unreachable)")
            if code in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
                return error(DeviceTimeout, f"unreachable ({errno.errorcode[code]})")
            if code is not None:
                return error(ProtocolError,
                             f"transport error ({errno.errorcode.get(code, str(code))})")
            return error(ProtocolError, f"pysnmp error ({type(error_indication).__name__})")
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

_Reply = tuple[Any, Any, Any, Sequence[Any]]
_Send = Callable[[Any, Any, Any], Any]


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

    async def __aenter__(self) -> SnmpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the engine's socket; the client cannot be used afterwards."""
        self._closed = True
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None
        self._transports.clear()

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
        objs = [snmp.ObjectType(snmp.ObjectIdentity(o)) for o in parsed]

        def send(engine: Any, auth: Any, target: Any) -> Any:
            return snmp.bulk_cmd(engine, auth, target, self._context, non_repeaters,
                                 max_repetitions, *objs, lookupMib=False)

        _, _, raw = await self._exchange("snmp getbulk", host, port, creds, send, oids)
        return [_varbind(name, value) for name, value in raw]

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
        while True:
            obj = snmp.ObjectType(snmp.ObjectIdentity(cursor))

            def send(engine: Any, auth: Any, target: Any, obj: Any = obj) -> Any:
                if v1:
                    return snmp.next_cmd(engine, auth, target, self._context, obj,
                                         lookupMib=False)
                return snmp.bulk_cmd(engine, auth, target, self._context, 0,
                                     max_repetitions, obj, lookupMib=False)

            status, _, raw = await self._exchange("snmp walk", host, port, creds, send,
                                                  [oid], v1_no_such_name=v1)
            if status or not raw:  # v1 noSuchName: past the end of the MIB
                return out
            for name, value in raw:
                numbers = name.asTuple()
                if type(value) in _SPECIALS or numbers[:depth] != root:
                    return out
                if numbers <= cursor:
                    raise ProtocolError(
                        f"snmp walk {host}: OID not increasing after "
                        f"{'.'.join(map(str, cursor))} (credential profile {creds.profile!r})",
                        device=host, operation="snmp walk", profile=creds.profile)
                out.append(_varbind(name, value))
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
        while pending:
            objs = [snmp.ObjectType(snmp.ObjectIdentity(parsed[i])) for i in pending]
            command = snmp.next_cmd if nxt else snmp.get_cmd

            def send(engine: Any, auth: Any, target: Any,
                     objs: list[Any] = objs, command: Any = command) -> Any:
                return command(engine, auth, target, self._context, *objs, lookupMib=False)

            status, index, raw = await self._exchange(
                operation, host, port, creds, send, [oids[i] for i in pending],
                v1_no_such_name=v1)
            if status:  # v1 noSuchName: record it as data, ask again for the others
                i = pending.pop(index - 1)
                results[i] = VarBind(".".join(map(str, parsed[i])), missing, missing_kind)
                continue
            if len(raw) != len(pending):
                raise ProtocolError(
                    f"{operation} {host}: asked {len(pending)} varbinds, got {len(raw)} "
                    f"(credential profile {creds.profile!r})",
                    device=host, operation=operation, profile=creds.profile)
            for i, (name, value) in zip(pending, raw, strict=True):
                results[i] = _varbind(name, value)
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
                        send: _Send, oids: Sequence[str], *,
                        v1_no_such_name: bool = False) -> tuple[int, int, Sequence[Any]]:
        """One request through the bounds; (error status, error index, raw varbinds).

        The status is non-zero only for v1's noSuchName when ``v1_no_such_name``; every
        other failure is raised as the suite's error.
        """
        engine = self._engine_for_loop()
        auth = self._auth_data(creds)
        where = host if port == 161 else f"{host}:{port}"
        try:
            async with self._slot(host, port):
                target = await self._transport(host, port)
                async with self._usm_gate(creds):
                    self.stats.requests += 1
                    try:
                        reply = await asyncio.wait_for(send(engine, auth, target),
                                                       self._budget_s(creds))
                    except TimeoutError:  # pysnmp should have timed out itself: a backstop
                        reply = (errind.requestTimedOut, 0, 0, ())
        except (PySnmpError, OSError) as exc:
            error = map_snmp_error(exc, device=where, operation=operation,
                                   profile=creds.profile, oids=oids)
            assert error is not None
            self._count(error)
            raise error from exc
        indication, status, index, raw = reply
        status_i = int(status) if status else 0
        index_i = int(index) if index else 0
        if (not indication and status_i == _NO_SUCH_NAME and v1_no_such_name
                and 1 <= index_i <= len(oids)):
            return status_i, index_i, raw
        refused = False
        if indication and _indication_name(indication) == _TIMEOUT:
            refused = await self._port_refused(host, port)
        error = map_snmp_error(indication, status, index, device=where, operation=operation,
                               profile=creds.profile, oids=oids, port_refused=refused)
        if error is not None:
            self._count(error)
            raise error
        self.stats.varbinds += len(raw)
        return 0, 0, raw

    def _count(self, error: CollectionError) -> None:
        if isinstance(error, DeviceTimeout):
            self.stats.timeouts += 1
        elif isinstance(error, AuthenticationFailed):
            self.stats.auth_failures += 1
        elif isinstance(error, ConnectionRefused):
            self.stats.refused += 1
        else:
            self.stats.errors += 1

    def _budget_s(self, creds: SnmpCredentials) -> float:
        """A backstop over pysnmp's own timeout (v3 adds discovery round trips)."""
        rounds = 3 if creds.version is SnmpVersion.V3 else 1
        return self.timeout_s * (self.retries + 1) * rounds * 2 + 1.0

    def _engine_for_loop(self) -> Any:
        if self._closed:
            raise RuntimeError("SnmpClient is closed")
        loop = asyncio.get_running_loop()
        if self._engine is None:
            self._engine = snmp.SnmpEngine()
            self._loop = loop
        elif loop is not self._loop:
            raise RuntimeError("an SnmpClient belongs to the event loop it was first used in")
        return self._engine

    def _auth_data(self, creds: SnmpCredentials) -> Any:
        if creds.version is not SnmpVersion.V3:
            assert creds.community is not None
            return snmp.CommunityData(creds.community.get_secret_value(),
                                      mpModel=0 if creds.version is SnmpVersion.V1 else 1)
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
        key = (host, port)
        target = self._transports.get(key)
        if target is None:
            cls = snmp.Udp6TransportTarget if ":" in host else snmp.UdpTransportTarget
            target = await cls.create((host, port), timeout=self.timeout_s,
                                      retries=self.retries)
            self._transports[key] = target
        return target

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
