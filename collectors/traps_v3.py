"""SNMPv3 notifications for the trap receiver: USM on pysnmp 7, one datagram at a time.

:class:`UsmTrapDecoder` is the :class:`collectors.traps.V3TrapDecoder` the receiver hands
SNMPv3 datagrams to. It feeds each datagram synchronously into a private pysnmp
``SnmpEngine`` through a socketless transport (no event loop, no thread): pysnmp's USM
checks the user, the digest and the privacy, its notification receiver answers INFORMs,
and everything pysnmp would have sent (the INFORM's response, the reports of engine-ID
discovery and time synchronisation) is captured and handed back to the caller to send.

Engine IDs. USM keys are localized to the *authoritative* engine's ID (RFC 3414 2.6). For
an INFORM that is the receiver's own engine ID (:attr:`UsmTrapDecoder.engine_id`; the
sender discovers it first, pysnmp answers the discovery), for a TRAP the sender's, which
the receiver has usually never seen. pysnmp looks a user up by (engine ID, user name), then
under its wildcard engine ID 0000000000 with keys localized to that; it clones a user from
the local one only for messages it *sends*. So, measured with net-snmp's ``snmptrap -e``,
an authenticated TRAP from a new engine ID is refused as an unknown user with the users
added for the local engine only, and as a wrong digest with them added for the wildcard.
``snmptrapd`` needs ``createUser -e ENGINEID`` per sender for the same reason. The decoder
therefore reads msgAuthoritativeEngineID and msgUserName from the header first (pyasn1),
and for a configured user under an engine ID it has no row for, localizes the user's keys
(master keys are hashed once, at start) and checks the message's digest with pysnmp's own
auth service; only then does it add the user for that engine ID (``config.add_v3_user``
with localized keys: 10 to 20 ms and about 30 KB in pysnmp's MIB tables, so a forged flood
cannot grow them) and feed the datagram. At most ``max_engines`` such rows are kept, least
recently used first out. noAuthNoPriv users have no key to localize: one wildcard row
serves every sender.

For TRAPs the decoder also does what pysnmp leaves out as a non-authoritative engine: the
security level must be at least the user's (pysnmp checks that only for INFORMs, so an
authPriv user's name would pass in a noAuthNoPriv TRAP), and the time window of RFC 3414
3.2.7b against the latest authenticated boots/time of that sender (pysnmp overwrites its
notion with each message before comparing, so it never refuses a replay).

What :meth:`UsmTrapDecoder.decode` returns, ``(trap, response, refusal)``:

    (Trap, None, None)          a TRAP accepted
    (Trap, bytes, None)         an INFORM accepted; ``bytes`` is its response, to send back
    (None, bytes, None)         a step of the INFORM handshake (engine-ID discovery or time
                                synchronisation report): send it, it is not a refusal
    (None, bytes|None, reason)  refused (unknown user, wrong digest, undecryptable, security
                                level below the user's, unknown engine ID ...); for a
                                reportable message (an INFORM) ``bytes`` is the RFC 3414
                                report the sender gets so it can tell why
    BerError                    not an SNMPv3 notification (malformed, truncated, another
                                PDU type, no sysUpTime.0/snmpTrapOID.0); a scoped PDU that
                                does not decode after decryption is a decryption failure

Reasons never hold a key or the message's content, only the user name (which travels in
clear) where it helps. Nothing is counted here: the receiver counts.

Limits: a duplicate within the 150 s window is accepted (RFC 3414 has no replay cache; for
INFORMs pysnmp checks the window against our own clock); a learnt sender's time notion is
forgotten with its row; pysnmp keeps its own per-engine timeline for 300 s (driven by the
timer ticks :meth:`UsmTrapDecoder.decode` gives it), so noAuthNoPriv TRAPs from ever new
engine IDs cost some memory for that long. Measured: a TRAP (authPriv SHA/AES) decodes in
about 2.5 ms, the first from a new engine ID in about 25 ms, a wrong digest is refused in
0.5 ms. Not thread-safe: one decoder belongs to one receiver (one event loop).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pyasn1.codec.ber import decoder as ber_decoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import namedtype, univ
from pysnmp.carrier.base import AbstractTransport, AbstractTransportDispatcher
from pysnmp.entity import config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto import errind, rfc1902
from pysnmp.proto.api import v2c
from pysnmp.proto.error import ProtocolError, StatusInformation
from pysnmp.proto.secmod.rfc3414.service import SnmpUSMSecurityModel, UsmSecurityParameters

from collectors.ber import BerError, VarBind
from collectors.snmp import _AUTH_PROTOCOLS, _PRIV_PROTOCOLS, convert_value
from collectors.traps import SNMP_TRAP_OID, SYS_UPTIME, Trap
from topology.credentials import CredentialStore, SnmpV3User
from topology.errors import SwitchboardError
from topology.settings import Settings

__all__ = ["UsmTrapDecoder", "users_from_profiles"]

log = logging.getLogger(__name__)

_USM: Final = 3
_LEVELS: Final = {"noAuthNoPriv": 1, "authNoPriv": 2, "authPriv": 3}
_LEVEL_NAMES: Final = {v: k for k, v in _LEVELS.items()}
_DOMAIN: Final = config.SNMP_UDP_DOMAIN  # the address itself is opaque to pysnmp
_INFORM: Final = v2c.InformRequestPDU.tagSet
_TRAP: Final = v2c.SNMPv2TrapPDU.tagSet

_MAX_BOOTS: Final = 2147483647
_WILDCARD_ENGINE: Final = SnmpUSMSecurityModel.wildcard_security_engine_id.asOctets()
_WRONG_DIGEST: Final = "wrong digest (auth key or protocol)"
_UNKNOWN_USER: Final = "unknown user"

# errorIndication of pysnmp's USM / message processing -> (short reason, handshake step)
_REASONS: Final[tuple[tuple[type, str, bool], ...]] = (
    (errind.UnknownEngineID, "unknown engine ID (discovery)", True),
    (errind.NotInTimeWindow, "not in time window", True),
    (errind.UnknownSecurityName, _UNKNOWN_USER, False),
    (errind.UnknownUserName, _UNKNOWN_USER, False),
    (errind.AuthenticationFailure, _WRONG_DIGEST, False),
    (errind.AuthenticationError, _WRONG_DIGEST, False),
    (errind.WrongDigest, _WRONG_DIGEST, False),
    (errind.DecryptionError, "decryption failed (priv key or protocol)", False),
    (errind.UnsupportedSecurityLevel, "unsupported security level", False),
    (errind.UnsupportedSecurityModel, "unsupported security model", False),
    (errind.EngineIDMismatch, "engine ID mismatch", False),
    (errind.InvalidMsg, "invalid message flags", False),
)


class _HeaderData(univ.Sequence):  # type: ignore[misc]
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("msgID", univ.Integer()),
        namedtype.NamedType("msgMaxSize", univ.Integer()),
        namedtype.NamedType("msgFlags", univ.OctetString()),
        namedtype.NamedType("msgSecurityModel", univ.Integer()),
    )


class _Header(univ.Sequence):  # type: ignore[misc]
    """An SNMPv3 message with its scoped PDU left undecoded."""

    componentType = namedtype.NamedTypes(
        namedtype.NamedType("msgVersion", univ.Integer()),
        namedtype.NamedType("msgGlobalData", _HeaderData()),
        namedtype.NamedType("msgSecurityParameters", univ.OctetString()),
        namedtype.NamedType("msgData", univ.Any()),
    )


@dataclass(frozen=True, slots=True)
class _Parsed:
    """The header fields USM needs before pysnmp sees the datagram."""

    engine_id: bytes
    boots: int
    time: int
    user: bytes
    auth_params: Any
    level: int


class _Refused(Exception):
    """A well-formed message this decoder does not accept (the text is the reason)."""


def _parse_header(data: bytes) -> _Parsed:
    """The message's header and USM parameters; :class:`BerError` if malformed."""
    try:
        msg, rest = ber_decoder.decode(data, asn1Spec=_Header())
        if rest:
            raise BerError("trailing bytes")
        if int(msg[0]) != 3:
            raise BerError("not SNMPv3")
        flags = msg[1][2].asOctets()
        if len(flags) != 1:
            raise BerError("msgFlags is not one octet")
        level = {0: 1, 1: 2, 3: 3}.get(flags[0] & 3)
        if level is None:
            raise BerError("msgFlags: privacy without authentication")
        model = int(msg[1][3])
        if model < 1:
            raise BerError("msgSecurityModel out of range")
        if model != _USM:
            raise _Refused(f"security model {model} (only USM)")
        params, rest = ber_decoder.decode(msg[2].asOctets(), asn1Spec=UsmSecurityParameters())
        if rest:
            raise BerError("trailing bytes in the USM parameters")
        return _Parsed(params[0].asOctets(), int(params[1]), int(params[2]),
                       params[3].asOctets(), params[4], level)
    except (BerError, _Refused):
        raise
    except PyAsn1Error:
        raise BerError("malformed SNMPv3 header") from None
    except (LookupError, ValueError, TypeError, OverflowError) as exc:  # a backstop only
        raise BerError(f"malformed SNMPv3 header ({type(exc).__name__})") from None


# -- a transport without a socket -----------------------------------------------------------


class _Dispatcher(AbstractTransportDispatcher):  # type: ignore[misc]
    """pysnmp's transport dispatcher without sockets or an event loop."""


class _Transport(AbstractTransport):  # type: ignore[misc]
    """Datagrams are fed in by :meth:`feed`; what the engine sends is kept in ``sent``."""

    PROTO_TRANSPORT_DISPATCHER = _Dispatcher

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def feed(self, data: bytes, address: tuple[str, int]) -> None:
        callback = self._callback_function
        assert callback is not None
        callback(self, address, data)

    def send_message(self, outgoingMessage: Any, transportAddress: Any) -> None:
        self.sent.append(bytes(outgoingMessage))


# -- the decoder ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _User:
    """A configured user: its protocols and master keys (never in a repr)."""

    name: bytes
    level: int
    auth_protocol: Any
    auth_master: Any = field(repr=False)
    priv_protocol: Any
    priv_master: Any = field(repr=False)

    def localized(self, engine_id: bytes) -> tuple[Any, Any]:
        """The (auth, priv) keys for ``engine_id`` (RFC 3414 2.6; None without them)."""
        eid = rfc1902.OctetString(engine_id)
        auth = priv = None
        if self.auth_master is not None:
            auth = config.AUTH_SERVICES[self.auth_protocol].localize_key(self.auth_master, eid)
        if self.priv_master is not None:
            priv = config.PRIV_SERVICES[self.priv_protocol].localize_key(
                self.auth_protocol, self.priv_master, eid)
        return auth, priv


def _prepare(user: SnmpV3User) -> _User:
    """The user's master keys: the 1 MB passphrase hash, once per user; ``ValueError`` for
    what USM cannot hold (a name of 0 or more than 32 octets, an empty key)."""
    if not 0 < len(user.user.encode()) <= 32:
        raise ValueError("a USM user name has 1 to 32 octets")
    auth_proto, priv_proto = config.USM_AUTH_NONE, config.USM_PRIV_NONE
    auth_master = priv_master = None
    if user.auth_key is not None:
        auth_key = user.auth_key.get_secret_value()
        priv_key = user.priv_key.get_secret_value() if user.priv_key is not None else None
        if not auth_key or priv_key == "":
            raise ValueError("empty key")
        auth_proto = _AUTH_PROTOCOLS[user.auth_protocol or "SHA"]
        auth_master = config.AUTH_SERVICES[auth_proto].hash_passphrase(
            rfc1902.OctetString(auth_key))
        if priv_key is not None:
            priv_proto = _PRIV_PROTOCOLS[user.priv_protocol or "AES"]
            priv_master = config.PRIV_SERVICES[priv_proto].hash_passphrase(
                auth_proto, rfc1902.OctetString(priv_key))
    return _User(user.user.encode(), _LEVELS[user.level], auth_proto, auth_master,
                 priv_proto, priv_master)


@dataclass
class _Timeline:
    """The local notion of a TRAP sender's engine boots and time (RFC 3414 2.3)."""

    boots: int = -1
    time: int = 0
    at: float = 0.0

    def outside(self, boots: int, engine_time: int, now: float) -> bool:
        """RFC 3414 3.2.7b: an earlier boot, or older than 150 s by our notion."""
        if self.boots < 0:
            return False
        return (self.boots == _MAX_BOOTS or boots < self.boots
                or (boots == self.boots and engine_time < self.time + (now - self.at) - 150))

    def update(self, boots: int, engine_time: int, now: float) -> None:
        if boots > self.boots or (boots == self.boots and engine_time > self.time):
            self.boots, self.time, self.at = boots, engine_time, now


@dataclass
class _Outcome:
    """What one datagram did inside the engine."""

    failure: Any = None
    trap: Trap | None = None
    malformed: str | None = None


class UsmTrapDecoder:
    """Decodes SNMPv3 TRAPs and INFORMs of the configured USM ``users`` (see the module
    docstring).

    ``engine_id`` is the receiver's own, the one INFORM senders discover (default: pysnmp's
    generated one, new at each start; a fixed one makes pysnmp keep its boots counter under
    the system's temp dir). ``max_engines`` bounds the (TRAP sender engine ID, user) rows
    learnt, about 30 KB each in pysnmp's tables.
    """

    def __init__(self, users: Sequence[SnmpV3User], *, engine_id: bytes | None = None,
                 max_engines: int = 5_000) -> None:
        if max_engines < 1:
            raise ValueError("max_engines >= 1")
        self.max_engines = max_engines
        self._users: dict[bytes, _User] = {}
        for user in users:
            try:
                prepared = _prepare(user)
            except ValueError as exc:
                log.warning("SNMPv3 user %r skipped for traps: %s", user.user, exc)
                continue
            known = self._users.setdefault(prepared.name, prepared)
            if known != prepared:
                log.warning("SNMPv3 user %r is configured twice with different keys or "
                            "protocols; its notifications are checked with the first",
                            user.user)
        self._engine = SnmpEngine(rfc1902.OctetString(engine_id)
                                  if engine_id is not None else None)
        self._dispatcher = _Dispatcher()
        self._transport = _Transport()
        self._engine.register_transport_dispatcher(self._dispatcher)
        self._dispatcher.register_transport(_DOMAIN, self._transport)
        self._own_id: bytes = self._engine.snmpEngineID.asOctets()
        self._learnt: OrderedDict[tuple[bytes, bytes], _Timeline] = OrderedDict()
        self._outcome = _Outcome()
        self._source: tuple[str, int] = ("", 0)
        self._sender_engine = b""
        for u in self._users.values():
            self._add_user(u, self._own_id)  # INFORMs: we are the authoritative engine
            if u.level == 1:  # no key to localize: one row serves every TRAP sender
                self._add_user(u, _WILDCARD_ENGINE)
        ntfrcv.NotificationReceiver(self._engine, self._notification)
        self._engine.observer.register_observer(
            self._sm_failure, "rfc3412.prepareDataElements:sm-failure")

    @property
    def engine_id(self) -> bytes:
        """The receiver's own SNMP engine ID (authoritative for INFORMs)."""
        return self._own_id

    @property
    def learnt_engines(self) -> int:
        """(TRAP sender engine ID, user) rows learnt so far, at most ``max_engines``."""
        return len(self._learnt)

    # -- pysnmp's USM table ------------------------------------------------------------------

    def _add_user(self, user: _User, engine_id: bytes) -> None:
        auth, priv = user.localized(engine_id)
        config.add_v3_user(
            self._engine, user.name, user.auth_protocol, auth, user.priv_protocol, priv,
            securityEngineId=engine_id, authKeyType=config.USM_KEY_TYPE_LOCALIZED,
            privKeyType=config.USM_KEY_TYPE_LOCALIZED)

    def _destroy_user(self, user: bytes, engine_id: bytes) -> None:
        """Drop one row (config.delete_v3_user walks the whole table for clones)."""
        entry = self._engine.get_mib_builder().import_symbols(
            "SNMP-USER-BASED-SM-MIB", "usmUserEntry")[0]
        index = entry.getInstIdFromIndices(rfc1902.OctetString(engine_id), user)
        self._engine.message_dispatcher.mib_instrum_controller.write_variables(
            ((*entry.name, 13, *index), "destroy"), snmpEngine=self._engine)

    def _admit(self, parsed: _Parsed, data: bytes, now: float) -> str | None:
        """For a TRAP sender's engine ID: learn the user's row once the message proves the
        key, and check the time window; the refusal reason, or None to go on."""
        user = self._users.get(parsed.user)
        if (user is None or user.level == 1 or parsed.engine_id == self._own_id
                or not 4 < len(parsed.engine_id) < 33):
            return None  # pysnmp decides: unknown user, no key, INFORM, discovery
        if parsed.level < user.level:
            # pysnmp checks the level only as the authoritative engine (RFC 3414 3.2.5):
            # a TRAP below its user's level would pass with less protection than configured
            return (f"security level {_LEVEL_NAMES[parsed.level]} below the user's "
                    f"{_LEVEL_NAMES[user.level]}")
        key = (parsed.engine_id, parsed.user)
        timeline = self._learnt.get(key)
        if timeline is not None:
            self._learnt.move_to_end(key)
            if timeline.outside(parsed.boots, parsed.time, now):
                return "not in time window (replayed or stale)"
            return None
        auth, _ = user.localized(parsed.engine_id)
        try:  # before pysnmp's slow table write: only a sender with the key gets a row
            config.AUTH_SERVICES[user.auth_protocol].authenticate_incoming_message(
                auth, parsed.auth_params, data)
        except (StatusInformation, ProtocolError):
            return _WRONG_DIGEST
        self._add_user(user, parsed.engine_id)
        self._learnt[key] = _Timeline()
        while len(self._learnt) > self.max_engines:
            (old_engine, old_user), _ = self._learnt.popitem(last=False)
            self._destroy_user(old_user, old_engine)
        return None

    # -- pysnmp's callbacks ------------------------------------------------------------------

    def _sm_failure(self, engine: Any, execpoint: str, variables: dict[str, Any],
                    cb_ctx: Any) -> None:
        status = variables.get("statusInformation")
        if status is not None and "errorIndication" in status:
            self._outcome.failure = status["errorIndication"]

    def _notification(self, engine: Any, state_reference: Any, context_engine_id: Any,
                      context_name: Any, var_binds: Any, cb_ctx: Any) -> None:
        context = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        pdu = context["pdu"]
        inform = pdu.tagSet == _INFORM
        if not inform and pdu.tagSet != _TRAP:  # an SNMPv1 Trap-PDU inside SNMPv3
            self._outcome.malformed = "not an SNMPv2 notification PDU"
            return
        try:
            vbs = [VarBind(".".join(map(str, name.asTuple())), *convert_value(value))
                   for name, value in var_binds]
        except TypeError as exc:
            self._outcome.malformed = str(exc)
            return
        if (len(vbs) < 2 or vbs[0].oid != SYS_UPTIME or vbs[1].oid != SNMP_TRAP_OID
                or not isinstance(vbs[0].value, int) or not isinstance(vbs[1].value, str)):
            self._outcome.malformed = "notification without sysUpTime.0 and snmpTrapOID.0 first"
            return
        # a TRAP's authoritative engine is its sender; an INFORM's is us, and the sender
        # names itself in the contextEngineID
        sender = bytes(context_engine_id) if inform else self._sender_engine
        self._outcome.trap = Trap(
            self._source[0], self._source[1], "v3", "inform" if inform else "trap",
            bytes(context["securityName"]).decode("utf-8", "replace"), vbs[1].value,
            vbs[0].value, tuple(vbs[2:]), engine_id=sender.hex() or None)

    # -- the entry point ---------------------------------------------------------------------

    def decode(self, data: bytes, source: tuple[str, int]) -> tuple[Trap | None, bytes | None,
                                                                    str | None]:
        """One SNMPv3 datagram from ``source``: (the trap, the datagram to send back, the
        refusal reason); see the module docstring. Raises only :class:`BerError`."""
        data = bytes(data)
        try:
            parsed = _parse_header(data)
        except _Refused as exc:
            return None, None, str(exc)
        now = time.monotonic()
        self._dispatcher.handle_timer_tick(now)  # pysnmp's cache expiry
        refusal = self._admit(parsed, data, now)
        if refusal is not None:
            return None, None, refusal
        self._outcome = outcome = _Outcome()
        self._source = source
        self._sender_engine = parsed.engine_id
        sent = self._transport.sent
        sent.clear()
        try:
            self._transport.feed(data, source)
        except Exception as exc:  # pysnmp raised past its own handlers: a backstop only
            log.debug("pysnmp failed on an SNMPv3 datagram", exc_info=True)
            raise BerError(f"malformed SNMPv3 message ({type(exc).__name__})") from None
        finally:
            self._release_security_state()
        response = sent[-1] if sent else None
        if outcome.malformed is not None:
            raise BerError(outcome.malformed)
        if outcome.trap is not None:
            timeline = self._learnt.get((parsed.engine_id, parsed.user))
            if timeline is not None and outcome.trap.pdu == "trap":
                timeline.update(parsed.boots, parsed.time, now)
            return outcome.trap, response, None
        if outcome.failure is None:
            raise BerError("not an SNMPv3 notification")
        for kind, reason, handshake in _REASONS:
            if isinstance(outcome.failure, kind):
                if handshake and response is not None:
                    return None, response, None
                if reason == _UNKNOWN_USER:  # the name travels in clear; shown log-safe
                    name = parsed.user.decode("latin-1")
                    reason += f" {name!r}" if name.isprintable() else f" 0x{parsed.user.hex()}"
                return None, response, reason
        return None, response, f"refused ({type(outcome.failure).__name__})"

    def _release_security_state(self) -> None:
        """Drop the per-message state pysnmp's USM left behind (it releases it on some
        paths only, and none of it expires): a receiver has nothing pending between
        datagrams. A safety net: no path measured so far leaves any."""
        usm = self._engine.security_models[_USM]
        if not usm._cache.is_empty():
            usm._cache = type(usm._cache)()


def users_from_profiles(settings: Settings | None = None) -> list[SnmpV3User]:
    """The SNMPv3 user of every credential profile that has one, each distinct one once, in
    profile name order; a profile that does not load is skipped with a warning."""
    store = CredentialStore(settings)
    users: list[SnmpV3User] = []
    for name in store.names():
        try:
            user = store.load(name).snmp_v3
        except SwitchboardError as exc:  # its message names fields, never values
            log.warning("credential profile %r skipped for SNMPv3 traps: %s", name, exc)
            continue
        if user is not None and user not in users:
            users.append(user)
    return users
