"""The trap receiver over real UDP on loopback: decoding, INFORM answers, and every drop
counted while valid traps keep coming through."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from collectors.ber import Message, PduType, VarBind, decode_message, encode_message
from collectors.traps import Trap, TrapReceiver

COMMUNITY = b"s3cret-community"
LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"


def v2c_trap(pdu: PduType = PduType.TRAP_V2, community: bytes = COMMUNITY,
             request_id: int = 7, if_index: int = 3) -> bytes:
    return encode_message(Message(1, community, pdu, request_id, 0, 0, [
        VarBind("1.3.6.1.2.1.1.3.0", 12345, "TimeTicks"),
        VarBind("1.3.6.1.6.3.1.1.4.1.0", LINK_DOWN, "ObjectIdentifier"),
        VarBind(f"1.3.6.1.2.1.2.2.1.1.{if_index}", if_index, "Integer"),
        VarBind(f"1.3.6.1.2.1.2.2.1.8.{if_index}", 2, "Integer")]))


async def _started(**kwargs: object) -> TrapReceiver:
    receiver = TrapReceiver(host="127.0.0.1", port=0, communities={COMMUNITY: "lab"},
                            **kwargs)  # type: ignore[arg-type]
    await receiver.start()
    return receiver


async def _next(receiver: TrapReceiver) -> Trap:
    return await asyncio.wait_for(receiver.queue.get(), 5)


def _send(address: tuple[str, int], *datagrams: bytes) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    for d in datagrams:
        sock.sendto(d, address)
    return sock


def test_v2c_trap_is_decoded_with_the_profile_name_not_the_community() -> None:
    async def run() -> Trap:
        receiver = await _started()
        try:
            _send(receiver.address, v2c_trap()).close()
            return await _next(receiver)
        finally:
            await receiver.stop()

    trap = asyncio.run(run())
    assert (trap.source, trap.version, trap.pdu, trap.trap_oid, trap.uptime_cs) == (
        "127.0.0.1", "v2c", "trap", LINK_DOWN, 12345)
    assert trap.security_name == "lab"
    assert [vb.oid for vb in trap.varbinds] == ["1.3.6.1.2.1.2.2.1.1.3", "1.3.6.1.2.1.2.2.1.8.3"]
    assert "s3cret" not in repr(trap)


def test_inform_is_answered_with_the_same_request_id() -> None:
    async def run() -> tuple[Trap, Message]:
        receiver = await _started()
        sock = _send(receiver.address, v2c_trap(PduType.INFORM, request_id=4242))
        try:
            trap = await _next(receiver)
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), 5)
            return trap, decode_message(reply)
        finally:
            sock.close()
            await receiver.stop()

    trap, reply = asyncio.run(run())
    assert trap.pdu == "inform"
    assert (reply.pdu_type, reply.request_id, reply.error_status) == (PduType.RESPONSE, 4242, 0)
    assert [vb.oid for vb in reply.varbinds][:2] == ["1.3.6.1.2.1.1.3.0",
                                                     "1.3.6.1.6.3.1.1.4.1.0"]


def test_v1_trap_gets_its_rfc3584_trap_oid() -> None:
    v1 = encode_message(Message(0, COMMUNITY, PduType.TRAP_V1, enterprise="1.3.6.1.4.1.8072",
                                agent_address="10.9.8.7", generic_trap=2, timestamp=99,
                                varbinds=[VarBind("1.3.6.1.2.1.2.2.1.1.5", 5, "Integer32")]))
    specific = encode_message(Message(0, COMMUNITY, PduType.TRAP_V1,
                                      enterprise="1.3.6.1.4.1.9999", agent_address="10.9.8.7",
                                      generic_trap=6, specific_trap=17))

    async def run() -> list[Trap]:
        receiver = await _started()
        try:
            _send(receiver.address, v1, specific).close()
            return [await _next(receiver), await _next(receiver)]
        finally:
            await receiver.stop()

    generic, enterprise = asyncio.run(run())
    assert (generic.version, generic.trap_oid, generic.uptime_cs, generic.agent_address) == (
        "v1", LINK_DOWN, 99, "10.9.8.7")
    assert enterprise.trap_oid == "1.3.6.1.4.1.9999.0.17"


def test_bad_input_is_counted_and_valid_traps_still_come_through() -> None:
    good = v2c_trap()
    rng = random.Random(1234)
    garbage = [
        good[:len(good) // 2],                     # truncated BER
        good[:1] + bytes([0x7F]) + good[2:],       # outer length past the end
        good + b"\x00\x00",                        # trailing bytes
        bytes(rng.randrange(256) for _ in range(64)),  # random bytes
        b"",                                       # empty datagram
        encode_message(Message(1, COMMUNITY, PduType.GET, 1, 0, 0,
                               [VarBind("1.3.6.1.2.1.1.3.0", b"", "Null")])),  # not a trap
        encode_message(Message(1, COMMUNITY, PduType.TRAP_V2, 1, 0, 0,
                               [VarBind("1.3.6.1.2.1.1.5.0", b"x", "OctetString")])),
    ]
    wrong_community = v2c_trap(community=b"guess")

    async def run() -> TrapReceiver:
        receiver = await _started()
        try:
            _send(receiver.address, *garbage, wrong_community, good).close()
            trap = await _next(receiver)
            assert trap.trap_oid == LINK_DOWN
            return receiver
        finally:
            await receiver.stop()

    receiver = asyncio.run(run())
    stats = receiver.stats
    assert stats.received == len(garbage) + 2
    assert stats.malformed == len(garbage)
    assert stats.bad_community == 1
    assert stats.accepted == 1


def test_v3_without_users_is_counted_as_unsupported() -> None:
    # the start of an SNMPv3 message: SEQUENCE { INTEGER 3, OCTET STRING }
    v3 = bytes.fromhex("30050201030400")

    async def run() -> TrapReceiver:
        receiver = await _started()
        try:
            _send(receiver.address, v3, v2c_trap()).close()
            await _next(receiver)
            return receiver
        finally:
            await receiver.stop()

    stats = asyncio.run(run()).stats
    assert (stats.unsupported, stats.accepted) == (1, 1)


def test_a_full_queue_drops_and_counts() -> None:
    async def run() -> TrapReceiver:
        receiver = await _started(queue_size=5)
        try:
            sock = _send(receiver.address, *[v2c_trap(request_id=i) for i in range(20)])
            for _ in range(200):
                if receiver.stats.received == 20:
                    break
                await asyncio.sleep(0.01)
            sock.close()
            return receiver
        finally:
            await receiver.stop()

    stats = asyncio.run(run()).stats
    assert stats.received == 20
    assert (stats.accepted, stats.dropped_full, stats.queue_peak) == (5, 15, 5)


def test_queue_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TrapReceiver(queue_size=0)
