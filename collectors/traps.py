"""An asyncio SNMP trap receiver: v1 traps, v2c traps and INFORMs (answered), v3 with
configured USM users.

Receiving and processing are split by a bounded queue: :class:`TrapReceiver` decodes
each datagram as it arrives (the suite's own BER codec for v1/v2c, pysnmp for v3),
answers INFORMs at once, checks the community or user, and puts a :class:`Trap` on
``queue``; whoever processes traps takes them from there. Nothing is dropped silently:

    received        every datagram
    accepted        put on the queue
    malformed       not SNMP, truncated, wrong lengths, not a trap PDU, v2c without
                    snmpTrapOID.0 ...
    bad_community   a v1/v2c community no credential profile or trap setting holds
    bad_user        v3: unknown user, wrong keys, security level (pysnmp's reasons)
    unsupported     an SNMP version this receiver is not configured for (v3 without users)
    dropped_full    the queue was full (processing is behind); the trap is lost
    informs_answered

Secrets: the community itself never leaves this module; a trap carries the name of the
credential profile whose community it used (``security_name``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from collectors.ber import (
    BerError,
    Message,
    PduType,
    VarBind,
    decode_message,
    encode_message,
    message_version,
)

__all__ = [
    "ReceiverStats",
    "Trap",
    "TrapReceiver",
    "V3TrapDecoder",
    "trap_from_message",
]

log = logging.getLogger(__name__)

SYS_UPTIME: Final = "1.3.6.1.2.1.1.3.0"
SNMP_TRAP_OID: Final = "1.3.6.1.6.3.1.1.4.1.0"
SNMP_TRAPS: Final = "1.3.6.1.6.3.1.1.5"
_LOG_EVERY_S: Final = 60.0
_READ_BURST: Final = 512


@dataclass(frozen=True, slots=True)
class Trap:
    """One decoded notification."""

    source: str
    source_port: int
    version: str
    """"v1", "v2c" or "v3"."""
    pdu: str
    """"trap" or "inform"."""
    security_name: str
    """v1/v2c: the credential profile whose community matched; v3: the USM user."""
    trap_oid: str
    uptime_cs: int | None
    varbinds: tuple[VarBind, ...]
    """The trap's own varbinds (without sysUpTime.0 and snmpTrapOID.0)."""
    engine_id: str | None = None
    agent_address: str | None = None
    """SNMPv1's agent-addr field."""
    received_at: float = field(default_factory=time.time)
    received_mono: float = field(default_factory=time.monotonic)

    def value(self, prefix: str) -> VarBind | None:
        """The first varbind whose OID is ``prefix`` or below it."""
        dotted = prefix + "."
        for vb in self.varbinds:
            if vb.oid == prefix or vb.oid.startswith(dotted):
                return vb
        return None


@dataclass
class ReceiverStats:
    """The receiver's counters (see the module docstring)."""

    received: int = 0
    accepted: int = 0
    malformed: int = 0
    bad_community: int = 0
    bad_user: int = 0
    unsupported: int = 0
    dropped_full: int = 0
    informs_answered: int = 0
    queue_peak: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: int(getattr(self, k)) for k in self.__dataclass_fields__}


class V3TrapDecoder(Protocol):
    """Decodes an SNMPv3 notification with configured USM users."""

    def decode(self, data: bytes, source: tuple[str, int]) -> tuple[Trap | None, bytes | None,
                                                                    str | None]:
        """(the trap, a datagram to send back, a refusal reason): (trap, None, None) a TRAP,
        (trap, response, None) an INFORM and its response, (None, report, None) a step of
        the INFORM handshake (engine-ID discovery, time sync: send it, nothing refused),
        (None, report or None, reason) refused; ``BerError`` if malformed."""
        ...


def trap_from_message(message: Message, source: tuple[str, int], security_name: str, *,
                      received_at: float | None = None,
                      received_mono: float | None = None) -> Trap:
    """A decoded v1/v2c message as a :class:`Trap`; ``BerError`` if it is not a
    notification (v2c needs sysUpTime.0 and snmpTrapOID.0 first, RFC 3416 4.2.6)."""
    now, mono = time.time(), time.monotonic()
    at = received_at if received_at is not None else now
    at_mono = received_mono if received_mono is not None else mono
    if message.pdu_type is PduType.TRAP_V1:
        if message.generic_trap < 6:
            trap_oid = f"{SNMP_TRAPS}.{message.generic_trap + 1}"
        else:  # RFC 3584 3.1: enterprise.0.specific
            trap_oid = f"{message.enterprise}.0.{message.specific_trap}"
        return Trap(source[0], source[1], "v1", "trap", security_name, trap_oid,
                    message.timestamp, tuple(message.varbinds),
                    agent_address=message.agent_address, received_at=at,
                    received_mono=at_mono)
    if message.pdu_type not in (PduType.TRAP_V2, PduType.INFORM):
        raise BerError(f"not a notification PDU ({message.pdu_type.name})")
    vbs = message.varbinds
    if (len(vbs) < 2 or vbs[0].oid != SYS_UPTIME or vbs[1].oid != SNMP_TRAP_OID
            or not isinstance(vbs[0].value, int) or not isinstance(vbs[1].value, str)):
        raise BerError("notification without sysUpTime.0 and snmpTrapOID.0 first")
    return Trap(source[0], source[1], "v2c", "inform" if message.pdu_type is PduType.INFORM
                else "trap", security_name, vbs[1].value, vbs[0].value, tuple(vbs[2:]),
                received_at=at, received_mono=at_mono)


class TrapReceiver:
    """Receive notifications on ``host:port`` into a bounded ``queue``.

    ``communities`` maps each accepted community to the name reported for it (the
    credential profile's); it may be replaced at any time (``set_communities``).
    """

    def __init__(self, *, host: str = "0.0.0.0", port: int = 162,  # noqa: S104
                 communities: Mapping[bytes, str] | None = None,
                 queue_size: int = 10_000, v3: V3TrapDecoder | None = None,
                 receive_buffer_bytes: int = 8 << 20,
                 on_refused: Callable[[str, str], None] | None = None) -> None:
        if queue_size < 1:
            raise ValueError("queue_size >= 1")
        self.host, self.port = host, port
        self.queue: asyncio.Queue[Trap] = asyncio.Queue(queue_size)
        self.stats = ReceiverStats()
        self.v3 = v3
        self.receive_buffer_bytes = receive_buffer_bytes
        self.on_refused = on_refused
        """Called with (source, reason) for each trap refused by the source checks."""
        self._communities: dict[bytes, str] = dict(communities or {})
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_log: dict[tuple[str, str], float] = {}

    def set_communities(self, communities: Mapping[bytes, str]) -> None:
        self._communities = dict(communities)

    @property
    def address(self) -> tuple[str, int]:
        """The bound address (port 0 asks the kernel for one)."""
        if self._sock is None:
            raise RuntimeError("the receiver is not started")
        sockname = self._sock.getsockname()
        return str(sockname[0]), int(sockname[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            # a burst waits in the kernel while the loop is busy, instead of being lost
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receive_buffer_bytes)
            sock.bind((self.host, self.port))
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        # a reader that empties the socket (up to _READ_BURST datagrams) each time the loop
        # sees it readable: asyncio's datagram transport reads one per wake-up, and under
        # load every wake-up waits for the GIL (the agent's thread holds it), so reading
        # one at a time fell behind the kernel
        self._sock, self._loop = sock, loop
        loop.add_reader(sock.fileno(), self._readable)

    async def stop(self) -> None:
        if self._sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        recv = sock.recvfrom
        for _ in range(_READ_BURST):
            try:
                data, addr = recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ICMP errors after a response, and the like
                log.debug("trap socket error: %s", exc)
                return
            self._datagram(data, addr)

    def _send(self, data: bytes, addr: tuple[str, int]) -> None:
        """A response (INFORM, v3 report); lost if the socket's send buffer is full, as
        UDP may lose it anyway (the sender retries)."""
        if self._sock is None:
            return
        try:
            self._sock.sendto(data, addr)
        except OSError as exc:
            log.debug("trap response to %s not sent: %s", addr[0], exc)

    def kernel_drops(self) -> int | None:
        """Datagrams the kernel dropped on this socket (its receive buffer was full), from
        /proc/net/udp; None where that cannot be read."""
        if self._sock is None:
            return None
        port = self.address[1]
        for table in ("/proc/net/udp", "/proc/net/udp6"):
            try:
                lines = open(table).read().splitlines()[1:]  # noqa: SIM115
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if len(fields) > 12 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return int(fields[-1])
        return None

    # -- the datagram path (runs on the event loop; keep it short) ----------------------

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        stats = self.stats
        stats.received += 1
        source = (str(addr[0]), int(addr[1]))
        try:
            version = message_version(data)
        except BerError as exc:
            self._malformed(source, str(exc))
            return
        if version == 3:
            self._v3(data, source)
            return
        try:
            message = decode_message(data)
        except BerError as exc:
            self._malformed(source, str(exc))
            return
        name = self._communities.get(message.community)
        if name is None:
            stats.bad_community += 1
            self._refused(source, "bad-community",
                          "a community no credential profile holds")
            return
        try:
            trap = trap_from_message(message, source, name)
        except BerError as exc:
            self._malformed(source, str(exc))
            return
        if trap.pdu == "inform":
            response = Message(message.version, message.community, PduType.RESPONSE,
                               message.request_id, 0, 0, list(message.varbinds))
            self._send(encode_message(response), addr)
            stats.informs_answered += 1
        self._enqueue(trap)

    def _v3(self, data: bytes, source: tuple[str, int]) -> None:
        if self.v3 is None:
            self.stats.unsupported += 1
            self._refused(source, "unsupported", "SNMPv3 (no USM users configured)")
            return
        try:
            trap, response, refusal = self.v3.decode(data, source)
        except BerError as exc:
            self._malformed(source, str(exc))
            return
        if response is not None and self._sock is not None:
            self._send(response, source)
            if trap is not None:
                self.stats.informs_answered += 1
        if trap is None:
            if refusal is None:  # an INFORM handshake step (discovery report), not refused
                return
            self.stats.bad_user += 1
            self._refused(source, "bad-user", refusal or "USM refused it")
            return
        self._enqueue(trap)

    def _enqueue(self, trap: Trap) -> None:
        try:
            self.queue.put_nowait(trap)
        except asyncio.QueueFull:
            self.stats.dropped_full += 1
            self._log_limited(trap.source, "full", "trap queue full: processing is behind, "
                              "traps are being dropped (counted as dropped_full)")
            return
        self.stats.accepted += 1
        depth = self.queue.qsize()
        if depth > self.stats.queue_peak:
            self.stats.queue_peak = depth

    def _malformed(self, source: tuple[str, int], reason: str) -> None:
        self.stats.malformed += 1
        self._log_limited(source[0], "malformed",
                          f"malformed SNMP datagram from {source[0]}: {reason} (dropped, "
                          "counted)")

    def _refused(self, source: tuple[str, int], kind: str, reason: str) -> None:
        self._log_limited(source[0], kind, f"trap from {source[0]} refused: {reason} "
                          "(dropped, counted)")
        if self.on_refused is not None:
            self.on_refused(source[0], kind)

    def _log_limited(self, source: str, kind: str, message: str) -> None:
        """Log once a minute per source and kind: a flood must not flood the log too."""
        now = time.monotonic()
        key = (source, kind)
        if now - self._last_log.get(key, -_LOG_EVERY_S) >= _LOG_EVERY_S:
            self._last_log[key] = now
            if len(self._last_log) > 10_000:
                self._last_log.clear()
            log.warning(message)
