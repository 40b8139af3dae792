"""SNMPv3 TRAPs and INFORMs through :class:`UsmTrapDecoder`, with net-snmp's real ``snmptrap``
and ``snmpinform`` as the sender on loopback: USM users per sender engine ID learnt on the
fly, the INFORM handshake answered, refusals with a reason and no secret, malformed input
only ever a ``BerError``, and the decoder plugged into a real :class:`TrapReceiver`.

The peers' USM users and keys go in a private snmp.conf (``SNMPCONFPATH``), never on a
command line; engine IDs and boots/time are not secret and are passed as options."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyasn1.codec.ber import encoder as ber_encoder
from pydantic import SecretStr
from pysnmp.proto.api import v2c
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

from collectors.ber import BerError, VarBind, decode_message
from collectors.traps import (
    SNMP_TRAP_OID,
    SYS_UPTIME,
    Trap,
    TrapReceiver,
    V3TrapDecoder,
    trap_from_message,
)
from collectors.traps_v3 import UsmTrapDecoder, users_from_profiles
from topology.credentials import CredentialProfile, CredentialStore, SnmpV3User
from topology.settings import get_settings

pytestmark = pytest.mark.skipif(
    shutil.which("snmptrap") is None or shutil.which("snmpinform") is None,
    reason="net-snmp's snmptrap/snmpinform are not installed")

LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
ENGINE_A = "8000000001020304"
ENGINE_B = "80000000010203aa"
AUTH_KEY = "auth-s3cret-A1"
PRIV_KEY = "priv-s3cret-P1"
WRONG_KEY = "wrong-s3cret-W1"
SECRETS = (AUTH_KEY, PRIV_KEY, WRONG_KEY)

# (net-snmp's snmptrap value type, value) -> what the decoder must make of it
SENT: list[tuple[str, str, str]] = [
    ("1.3.6.1.2.1.2.2.1.1.3", "i", "3"),
    ("1.3.6.1.2.1.2.2.1.2.3", "s", "eth0"),
    ("1.3.6.1.2.1.2.2.1.10.3", "c", "4000000000"),
    ("1.3.6.1.2.1.2.2.1.5.3", "u", "1000000000"),
    ("1.3.6.1.2.1.1.9.1.4.1", "t", "12345"),
    ("1.3.6.1.2.1.4.20.1.1.10.0.0.1", "a", "10.0.0.1"),
    ("1.3.6.1.2.1.1.2.0", "o", "1.3.6.1.4.1.8072"),
    ("1.3.6.1.2.1.1.9.1.3.1", "x", "DEADBEEF"),
]
EXPECTED = (
    VarBind("1.3.6.1.2.1.2.2.1.1.3", 3, "Integer"),
    VarBind("1.3.6.1.2.1.2.2.1.2.3", b"eth0", "OctetString"),
    VarBind("1.3.6.1.2.1.2.2.1.10.3", 4000000000, "Counter32"),
    VarBind("1.3.6.1.2.1.2.2.1.5.3", 1000000000, "Gauge32"),
    VarBind("1.3.6.1.2.1.1.9.1.4.1", 12345, "TimeTicks"),
    VarBind("1.3.6.1.2.1.4.20.1.1.10.0.0.1", "10.0.0.1", "IpAddress"),
    VarBind("1.3.6.1.2.1.1.2.0", "1.3.6.1.4.1.8072", "ObjectIdentifier"),
    VarBind("1.3.6.1.2.1.1.9.1.3.1", b"\xde\xad\xbe\xef", "OctetString"),
)
VARBIND_ARGS = [arg for vb in SENT for arg in vb]


def user(name: str = "alice", auth: str | None = "SHA", priv: str | None = "AES",
         auth_key: str = AUTH_KEY, priv_key: str = PRIV_KEY) -> SnmpV3User:
    return SnmpV3User(user=name, auth_protocol=auth,  # type: ignore[arg-type]
                      auth_key=SecretStr(auth_key) if auth else None,
                      priv_protocol=priv,  # type: ignore[arg-type]
                      priv_key=SecretStr(priv_key) if priv else None)


@dataclass
class Peer:
    """net-snmp as one USM user, its user and keys in a private 0600 snmp.conf."""

    directory: Path

    @classmethod
    def create(cls, directory: Path, name: str = "alice", level: str = "authPriv",
               auth: str = "SHA", auth_key: str = AUTH_KEY, priv: str = "AES",
               priv_key: str = PRIV_KEY) -> Peer:
        directory.mkdir(parents=True, exist_ok=True)
        lines = [f"defSecurityName {name}", f"defSecurityLevel {level}"]
        if level != "noAuthNoPriv":
            lines += [f"defAuthType {auth}", f"defAuthPassphrase {auth_key}"]
        if level == "authPriv":
            lines += [f"defPrivType {priv}", f"defPrivPassphrase {priv_key}"]
        lines.append(f"persistentDir {directory}")
        fd = os.open(directory / "snmp.conf", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        return cls(directory)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SNMPCONFPATH": str(self.directory), "MIBS": "",
                "MIBDIRS": "/nonexistent"}

    def argv(self, tool: str, port: int, *options: str, trap_oid: str = LINK_DOWN) -> list[str]:
        argv = [tool, "-v3", *options, f"udp:127.0.0.1:{port}", "", trap_oid, *VARBIND_ARGS]
        assert not any(secret in arg for arg in argv for secret in SECRETS)
        return argv

    def trap(self, sock: socket.socket, *options: str) -> tuple[bytes, tuple[str, int]]:
        """Send one snmptrap to ``sock`` and read the datagram."""
        port = sock.getsockname()[1]
        proc = subprocess.run(self.argv("snmptrap", port, *options), env=self.env,
                              capture_output=True, text=True, timeout=30, check=False)
        assert proc.returncode == 0, proc.stderr
        data, addr = sock.recvfrom(65535)
        return data, (str(addr[0]), int(addr[1]))

    def inform(self, sock: socket.socket, decoder: V3TrapDecoder, *options: str,
               ) -> tuple[int, list[tuple[Trap | None, bytes | None, str | None]]]:
        """Run snmpinform against ``sock``, answering with what ``decoder`` returns; its
        exit code and each datagram's decode."""
        port = sock.getsockname()[1]
        proc = subprocess.Popen(self.argv("snmpinform", port, "-t", "2", "-r", "1", *options),
                                env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        results = []
        try:
            sock.settimeout(0.2)
            while proc.poll() is None:
                try:
                    data, addr = sock.recvfrom(65535)
                except TimeoutError:
                    continue
                result = decoder.decode(data, (str(addr[0]), int(addr[1])))
                results.append(result)
                if result[1] is not None:
                    sock.sendto(result[1], addr)
            return proc.wait(timeout=30), results
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            sock.settimeout(10)


@pytest.fixture
def sock() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(10)
    yield s
    s.close()


@pytest.fixture
def peer(tmp_path: Path) -> Peer:
    return Peer.create(tmp_path / "alice")


def _refused(result: tuple[Trap | None, bytes | None, str | None]) -> str:
    trap, _, reason = result
    assert trap is None and reason
    assert not any(secret in reason for secret in SECRETS)
    return reason


# -- TRAPs -------------------------------------------------------------------------------


def test_authpriv_sha_aes_trap_from_an_unseen_engine_is_decoded(peer: Peer,
                                                                sock: socket.socket) -> None:
    decoder = UsmTrapDecoder([user()])
    data, addr = peer.trap(sock, "-e", f"0x{ENGINE_A}")
    trap, response, reason = decoder.decode(data, addr)
    assert response is None and reason is None and trap is not None
    assert (trap.source, trap.source_port, trap.version, trap.pdu) == (
        "127.0.0.1", addr[1], "v3", "trap")
    assert (trap.security_name, trap.engine_id, trap.trap_oid) == ("alice", ENGINE_A, LINK_DOWN)
    assert isinstance(trap.uptime_cs, int) and trap.uptime_cs >= 0
    assert trap.varbinds == EXPECTED
    assert decoder.learnt_engines == 1


def test_varbinds_are_what_the_v2c_path_makes_of_the_same_trap(tmp_path: Path,
                                                               peer: Peer,
                                                               sock: socket.socket) -> None:
    v2c_dir = tmp_path / "v2c"
    v2c_dir.mkdir()
    (v2c_dir / "snmp.conf").write_text(f"defCommunity c0mmunity\npersistentDir {v2c_dir}\n")
    env = {**os.environ, "SNMPCONFPATH": str(v2c_dir), "MIBS": "", "MIBDIRS": "/nonexistent"}
    port = sock.getsockname()[1]
    subprocess.run(["snmptrap", "-v2c", f"udp:127.0.0.1:{port}", "", LINK_DOWN,
                    *VARBIND_ARGS], env=env, check=True, capture_output=True, timeout=30)
    v2c = trap_from_message(decode_message(sock.recvfrom(65535)[0]), ("127.0.0.1", 1), "p")

    v3, _, _ = UsmTrapDecoder([user()]).decode(*peer.trap(sock, "-e", f"0x{ENGINE_A}"))
    assert v3 is not None
    assert v3.varbinds == v2c.varbinds == EXPECTED
    assert v3.trap_oid == v2c.trap_oid


@pytest.mark.parametrize(("level", "auth", "priv"), [
    ("authNoPriv", "MD5", None),
    ("authNoPriv", "SHA-256", None),
    ("authPriv", "SHA", "DES"),
    ("authPriv", "SHA-224", "AES-192"),
    ("authPriv", "SHA-384", "AES"),
    ("authPriv", "SHA-512", "AES-256"),
])
def test_each_auth_and_priv_protocol(tmp_path: Path, sock: socket.socket, level: str,
                                     auth: str, priv: str | None) -> None:
    decoder = UsmTrapDecoder([user("bob", auth, priv)])
    peer = Peer.create(tmp_path / "bob", "bob", level, auth, priv=priv or "AES")
    trap, _, reason = decoder.decode(*peer.trap(sock, "-e", f"0x{ENGINE_A}"))
    assert reason is None and trap is not None
    assert (trap.security_name, trap.engine_id, trap.varbinds) == ("bob", ENGINE_A, EXPECTED)


def test_no_auth_no_priv_user(tmp_path: Path, sock: socket.socket) -> None:
    decoder = UsmTrapDecoder([user("open", None, None)])
    peer = Peer.create(tmp_path / "open", "open", "noAuthNoPriv")
    for engine in (ENGINE_A, ENGINE_B):
        trap, _, reason = decoder.decode(*peer.trap(sock, "-e", f"0x{engine}"))
        assert reason is None and trap is not None
        assert (trap.security_name, trap.engine_id) == ("open", engine)
    assert decoder.learnt_engines == 0  # one wildcard row serves every sender


def test_two_sender_engines_with_the_same_user(peer: Peer, sock: socket.socket) -> None:
    decoder = UsmTrapDecoder([user()])
    engines = []
    for engine in (ENGINE_A, ENGINE_B, ENGINE_A):
        trap, _, reason = decoder.decode(*peer.trap(sock, "-e", f"0x{engine}"))
        assert reason is None and trap is not None
        engines.append(trap.engine_id)
    assert engines == [ENGINE_A, ENGINE_B, ENGINE_A]
    assert decoder.learnt_engines == 2


def test_the_sender_engine_id_net_snmp_makes_up_itself(peer: Peer,
                                                       sock: socket.socket) -> None:
    trap, _, reason = UsmTrapDecoder([user()]).decode(*peer.trap(sock))
    assert reason is None and trap is not None
    assert trap.engine_id is not None and trap.engine_id.startswith("80001f88")  # net-snmp's


def test_the_oldest_learnt_engine_makes_room(peer: Peer, sock: socket.socket) -> None:
    decoder = UsmTrapDecoder([user()], max_engines=1)
    for engine in (ENGINE_A, ENGINE_B, ENGINE_A):
        trap, _, reason = decoder.decode(*peer.trap(sock, "-e", f"0x{engine}"))
        assert reason is None and trap is not None and trap.engine_id == engine
        assert decoder.learnt_engines == 1


def test_wrong_auth_key_is_refused_and_learns_nothing(tmp_path: Path,
                                                      sock: socket.socket) -> None:
    decoder = UsmTrapDecoder([user()])
    wrong = Peer.create(tmp_path / "wrong", auth_key=WRONG_KEY)
    assert "wrong digest" in _refused(decoder.decode(*wrong.trap(sock, "-e", f"0x{ENGINE_A}")))
    assert decoder.learnt_engines == 0
    wrong_protocol = Peer.create(tmp_path / "md5", auth="MD5")
    assert "wrong digest" in _refused(
        decoder.decode(*wrong_protocol.trap(sock, "-e", f"0x{ENGINE_A}")))
    # and under an engine ID it already learnt from the right key
    right = Peer.create(tmp_path / "right")
    assert decoder.decode(*right.trap(sock, "-e", f"0x{ENGINE_A}"))[0] is not None
    assert "wrong digest" in _refused(decoder.decode(*wrong.trap(sock, "-e", f"0x{ENGINE_A}")))


def test_wrong_priv_key_is_refused(tmp_path: Path, sock: socket.socket) -> None:
    decoder = UsmTrapDecoder([user()])
    wrong = Peer.create(tmp_path / "wrong", priv_key=WRONG_KEY)
    assert "decryption" in _refused(decoder.decode(*wrong.trap(sock, "-e", f"0x{ENGINE_A}")))
    des = Peer.create(tmp_path / "des", priv="DES")
    assert "decryption" in _refused(decoder.decode(*des.trap(sock, "-e", f"0x{ENGINE_A}")))


def test_unknown_user_is_refused_with_its_name(tmp_path: Path, sock: socket.socket) -> None:
    decoder = UsmTrapDecoder([user()])
    stranger = Peer.create(tmp_path / "mallory", "mallory")
    assert _refused(decoder.decode(*stranger.trap(sock, "-e", f"0x{ENGINE_A}"))) == \
        "unknown user 'mallory'"
    assert decoder.learnt_engines == 0


def test_a_level_below_the_users_is_refused(tmp_path: Path, sock: socket.socket) -> None:
    """pysnmp as a TRAP receiver does not check the level: the decoder does."""
    decoder = UsmTrapDecoder([user()])
    for level in ("authNoPriv", "noAuthNoPriv"):
        lower = Peer.create(tmp_path / level, level=level)
        reason = _refused(decoder.decode(*lower.trap(sock, "-e", f"0x{ENGINE_A}")))
        assert reason == f"security level {level} below the user's authPriv"


def test_a_replayed_or_stale_trap_is_refused(peer: Peer, sock: socket.socket) -> None:
    """RFC 3414 3.2.7b against the sender's latest authenticated boots and time (-Z)."""
    decoder = UsmTrapDecoder([user()])
    early = peer.trap(sock, "-e", f"0x{ENGINE_A}", "-Z", "5,1000")
    assert decoder.decode(*early)[0] is not None
    assert decoder.decode(*early)[0] is not None  # a duplicate within 150 s is in the window
    assert decoder.decode(*peer.trap(sock, "-e", f"0x{ENGINE_A}", "-Z", "5,2000"))[0] is not None
    assert "not in time window" in _refused(decoder.decode(*early))
    assert "not in time window" in _refused(
        decoder.decode(*peer.trap(sock, "-e", f"0x{ENGINE_A}", "-Z", "4,9000")))
    assert decoder.decode(*peer.trap(sock, "-e", f"0x{ENGINE_A}", "-Z", "6,1"))[0] is not None


# -- INFORMs ---------------------------------------------------------------------------------


def test_inform_is_answered_and_snmpinform_exits_0(peer: Peer, sock: socket.socket) -> None:
    decoder = UsmTrapDecoder([user()])
    code, results = peer.inform(sock, decoder)
    assert code == 0
    # the engine-ID discovery (a report, nothing refused), then the INFORM and its response
    assert [(t is not None, r is not None, reason) for t, r, reason in results] == [
        (False, True, None), (True, True, None)]
    trap = results[-1][0]
    assert trap is not None
    assert (trap.version, trap.pdu, trap.security_name, trap.trap_oid) == (
        "v3", "inform", "alice", LINK_DOWN)
    assert trap.varbinds == EXPECTED
    assert trap.engine_id is not None and trap.engine_id != decoder.engine_id.hex()
    assert decoder.learnt_engines == 0  # an INFORM's keys are localized to our engine ID


def test_inform_with_stale_time_is_resynchronised(peer: Peer, sock: socket.socket) -> None:
    decoder = UsmTrapDecoder([user()])
    code, results = peer.inform(sock, decoder, "-e", f"0x{decoder.engine_id.hex()}",
                                "-Z", "1,1")
    assert code == 0
    assert [(t is not None, r is not None, reason) for t, r, reason in results] == [
        (False, True, None), (True, True, None)]  # notInTimeWindow report, then the INFORM


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({"auth_key": WRONG_KEY}, "wrong digest"),
    ({"priv_key": WRONG_KEY}, "decryption"),
    ({"name": "mallory"}, "unknown user"),
    ({"level": "authNoPriv"}, "unsupported security level"),
])
def test_refused_inform_gets_its_report(tmp_path: Path, sock: socket.socket,
                                        kwargs: dict[str, str], expected: str) -> None:
    decoder = UsmTrapDecoder([user()])
    code, results = Peer.create(tmp_path / "p", **kwargs).inform(sock, decoder)
    assert code != 0
    assert results[0][1] is not None and results[0][2] is None  # discovery
    assert expected in _refused(results[-1])
    assert results[-1][1] is not None  # the RFC 3414 report, so snmpinform can tell why


# -- malformed input ---------------------------------------------------------------------


def _decode_or_ber_error(decoder: UsmTrapDecoder, data: bytes) -> None:
    try:
        result = decoder.decode(data, ("127.0.0.1", 9))
    except BerError:
        return
    assert isinstance(result, tuple) and len(result) == 3
    if result[2] is not None:
        assert not any(secret in result[2] for secret in SECRETS)


def _v3_message(engine_id: bytes, user_name: bytes, flags: int, pdu: Any, *,
                boots: int = 1, engine_time: int = 1, auth_params: bytes = b"",
                priv_params: bytes = b"", encrypted: bytes | None = None) -> bytes:
    """An SNMPv3 message built with pysnmp's ASN.1 types (no keys: digests are random)."""
    params = UsmSecurityParameters()
    params[0], params[1], params[2] = engine_id, boots, engine_time
    params[3], params[4], params[5] = user_name, auth_params, priv_params
    msg = SNMPv3Message()
    msg[0] = 3
    msg[1][0], msg[1][1], msg[1][2], msg[1][3] = 1, 65507, bytes([flags]), 3
    msg[2] = ber_encoder.encode(params)
    if encrypted is not None:
        msg[3]["encryptedPDU"] = encrypted
    else:
        scoped = msg[3]["plaintext"]
        scoped[0], scoped[1] = engine_id, b""
        scoped[2][_PDU_NAMES[pdu.tagSet]] = pdu
    return bytes(ber_encoder.encode(msg))


_PDU_NAMES = {v2c.SNMPv2TrapPDU.tagSet: "snmpV2-trap",
              v2c.InformRequestPDU.tagSet: "inform-request",
              v2c.GetRequestPDU.tagSet: "get-request"}


def _pdu(kind: type, varbinds: list[tuple[str, Any]]) -> Any:
    pdu = kind()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_varbinds(pdu, varbinds)
    return pdu


def _random_v3(rng: random.Random) -> bytes:
    """A well-formed SNMPv3 header around random USM parameters and a random scoped PDU."""
    varbinds = rng.choice([
        [],
        [(SYS_UPTIME, v2c.TimeTicks(rng.randrange(2**32)))],
        [(SYS_UPTIME, v2c.TimeTicks(5)), (SNMP_TRAP_OID, v2c.ObjectIdentifier(LINK_DOWN)),
         ("1.3.6.1.2.1.1.1.0", v2c.OctetString(rng.randbytes(rng.randint(0, 40))))],
        [(SNMP_TRAP_OID, v2c.ObjectIdentifier(LINK_DOWN)), (SYS_UPTIME, v2c.TimeTicks(5))],
        [(SYS_UPTIME, v2c.Integer(5)), (SNMP_TRAP_OID, v2c.OctetString(b"x"))],
    ])
    pdu = _pdu(rng.choice([v2c.SNMPv2TrapPDU, v2c.InformRequestPDU, v2c.GetRequestPDU]),
               varbinds)
    return _v3_message(
        rng.choice([b"", bytes.fromhex(ENGINE_A), rng.randbytes(rng.randint(1, 32))]),
        rng.choice([b"", b"alice", b"open", rng.randbytes(rng.randint(1, 32))]),
        rng.choice([0, 1, 3, 4, 5, 7, 2, 6, rng.randrange(256)]), pdu,
        boots=rng.randint(0, 10), engine_time=rng.randint(0, 10_000),
        auth_params=rng.randbytes(rng.choice([0, 12, 16, 24, 32, 48])),
        priv_params=rng.randbytes(rng.choice([0, 8, rng.randint(1, 20)])),
        encrypted=rng.randbytes(rng.randint(0, 200)) if rng.random() < 0.4 else None)


def test_malformed_input_only_ever_raises_ber_error(tmp_path: Path, peer: Peer,
                                                    sock: socket.socket) -> None:
    decoder = UsmTrapDecoder([user(), user("open", None, None)])
    samples = [peer.trap(sock, "-e", f"0x{ENGINE_A}")[0],
               Peer.create(tmp_path / "open", "open", "noAuthNoPriv").trap(
                   sock, "-e", f"0x{ENGINE_B}")[0]]

    class Recorder:
        def decode(self, data: bytes, source: tuple[str, int],
                   ) -> tuple[Trap | None, bytes | None, str | None]:
            samples.append(data)
            return decoder.decode(data, source)

    assert peer.inform(sock, Recorder())[0] == 0
    rng = random.Random(3414)
    for sample in samples:
        for cut in range(len(sample)):
            _decode_or_ber_error(decoder, sample[:cut])
        for _ in range(300):
            mutated = bytearray(sample)
            for _ in range(rng.randint(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            _decode_or_ber_error(decoder, bytes(mutated))
        for _ in range(50):
            cut = rng.randrange(len(sample))
            _decode_or_ber_error(decoder, sample[:cut] + rng.randbytes(rng.randint(1, 64)))
    for _ in range(500):
        _decode_or_ber_error(decoder, _random_v3(rng))
    for _ in range(200):  # random bytes behind an SNMPv3 message's first octets
        body = b"\x02\x01\x03" + rng.randbytes(rng.randint(0, 120))
        _decode_or_ber_error(decoder, bytes([0x30, len(body)]) + body)
    # and it still works
    trap, _, reason = decoder.decode(*peer.trap(sock, "-e", f"0x{ENGINE_A}"))
    assert reason is None and trap is not None


def test_not_a_notification_is_malformed() -> None:
    decoder = UsmTrapDecoder([user("open", None, None)])
    good = [(SYS_UPTIME, v2c.TimeTicks(5)), (SNMP_TRAP_OID, v2c.ObjectIdentifier(LINK_DOWN))]
    engine = bytes.fromhex(ENGINE_A)
    trap, _, _ = decoder.decode(_v3_message(engine, b"open", 0, _pdu(v2c.SNMPv2TrapPDU, good)),
                                ("127.0.0.1", 9))
    assert trap is not None and (trap.trap_oid, trap.uptime_cs) == (LINK_DOWN, 5)
    for data in (_v3_message(engine, b"open", 0, _pdu(v2c.GetRequestPDU, good)),
                 _v3_message(engine, b"open", 0, _pdu(v2c.SNMPv2TrapPDU, good[::-1])),
                 _v3_message(engine, b"open", 0, _pdu(v2c.SNMPv2TrapPDU, good[:1])),
                 b"\x30\x03\x02\x01\x03", b"\x30\x00", b""):
        with pytest.raises(BerError):
            decoder.decode(data, ("127.0.0.1", 9))


def test_secrets_stay_out_of_reprs() -> None:
    decoder = UsmTrapDecoder([user()])
    assert not any(secret in repr(vars(decoder)) for secret in SECRETS)


# -- the receiver ----------------------------------------------------------------------------


def test_through_a_real_trap_receiver(tmp_path: Path, peer: Peer) -> None:
    wrong = Peer.create(tmp_path / "wrong", auth_key=WRONG_KEY)
    refused: list[tuple[str, str]] = []

    async def run() -> tuple[list[Trap], TrapReceiver, list[int]]:
        receiver = TrapReceiver(host="127.0.0.1", port=0, v3=UsmTrapDecoder([user()]),
                                on_refused=lambda source, kind: refused.append((source, kind)))
        await receiver.start()
        codes = []
        try:
            port = receiver.address[1]
            for p, tool, options in ((peer, "snmptrap", ("-e", f"0x{ENGINE_A}")),
                                     (peer, "snmpinform", ("-t", "2", "-r", "1")),
                                     (wrong, "snmptrap", ("-e", f"0x{ENGINE_B}"))):
                proc = await asyncio.create_subprocess_exec(
                    *p.argv(tool, port, *options), env=p.env,
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                codes.append(await asyncio.wait_for(proc.wait(), 30))
            traps = [await asyncio.wait_for(receiver.queue.get(), 5) for _ in range(2)]
            await asyncio.sleep(0.2)  # the refused trap's datagram
            return traps, receiver, codes
        finally:
            await receiver.stop()

    traps, receiver, codes = asyncio.run(run())
    assert codes == [0, 0, 0]
    assert [(t.pdu, t.security_name, t.varbinds) for t in traps] == [
        ("trap", "alice", EXPECTED), ("inform", "alice", EXPECTED)]
    assert traps[0].engine_id == ENGINE_A
    stats = receiver.stats
    assert (stats.received, stats.accepted, stats.informs_answered, stats.bad_user,
            stats.malformed) == (4, 2, 1, 1, 0)  # + the INFORM's discovery
    assert refused == [("127.0.0.1", "bad-user")]


# -- the users ---------------------------------------------------------------------------


def test_users_from_profiles(tmp_path: Path) -> None:
    settings = get_settings(tmp_path)
    store = CredentialStore(settings)
    assert users_from_profiles(settings) == []
    v3 = user()
    store.save(CredentialProfile(name="core", snmp_community=SecretStr("c"), snmp_v3=v3))
    store.save(CredentialProfile(name="edge", snmp_v3=v3))  # the same user: once
    store.save(CredentialProfile(name="v2only", snmp_community=SecretStr("c")))
    store.save(CredentialProfile(name="other", snmp_v3=user("bob", "MD5", None)))
    (settings.credentials_dir / "broken.json").write_text('{"name": "broken", "snmp_v3": 1}')
    users = users_from_profiles(settings)  # the broken one is skipped
    assert [u.user for u in users] == ["alice", "bob"]
    assert users[0] == v3
    decoder: V3TrapDecoder = UsmTrapDecoder(users)
    assert isinstance(decoder, UsmTrapDecoder)


def test_users_usm_cannot_hold_are_skipped_with_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    users = [user("x" * 33), user("empty", auth_key=""), user("nopriv", priv_key=""), user()]
    with caplog.at_level("WARNING", logger="collectors.traps_v3"):
        decoder = UsmTrapDecoder(users)
    assert sorted(r.getMessage().split("'")[1] for r in caplog.records) == [
        "empty", "nopriv", "x" * 33]
    assert not any(secret in caplog.text for secret in SECRETS)
    assert decoder.engine_id  # and the valid user is there
