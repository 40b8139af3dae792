"""collectors.ber against pysnmp's codec (pyasn1) as the oracle: both ways, every SNMP value
type and the edges of each, and a seeded fuzz that only BerError may come out of."""

from __future__ import annotations

import random
import socket
from typing import Any

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api as api_
from pysnmp.proto import rfc1905
from pysnmp.proto.api import v1, v2c
from pysnmp.proto.proxy.rfc2576 import V1_TO_V2_VALUE_MAP

from collectors.ber import (
    BerError,
    Message,
    PduType,
    Special,
    VarBind,
    decode_message,
    encode_message,
    message_version,
)
from collectors.snmp import Special as SnmpSpecial
from collectors.snmp import VarBind as SnmpVarBind
from collectors.snmp import convert_value

# -- the oracle: pysnmp's own encoder and decoder ----------------------------------------

_V2C_TYPES: dict[str, Any] = {
    "Integer": v2c.Integer, "Integer32": v2c.Integer32, "OctetString": v2c.OctetString,
    "ObjectIdentifier": v2c.ObjectIdentifier, "IpAddress": v2c.IpAddress,
    "Counter32": v2c.Counter32, "Gauge32": v2c.Gauge32, "TimeTicks": v2c.TimeTicks,
    "Opaque": v2c.Opaque, "Counter64": v2c.Counter64,
}
_V1_TYPES: dict[str, Any] = {
    "Integer32": v1.Integer, "OctetString": v1.OctetString,
    "ObjectIdentifier": v1.ObjectIdentifier, "IpAddress": v1.IpAddress,
    "Counter32": v1.Counter, "Gauge32": v1.Gauge, "TimeTicks": v1.TimeTicks,
    "Opaque": v1.Opaque,
}
_SPECIALS = {"NoSuchObject": rfc1905.noSuchObject, "NoSuchInstance": rfc1905.noSuchInstance,
             "EndOfMibView": rfc1905.endOfMibView}
_PYSNMP_PDUS: dict[tuple[int, PduType], Any] = {
    (0, PduType.GET): v1.GetRequestPDU, (0, PduType.GETNEXT): v1.GetNextRequestPDU,
    (0, PduType.RESPONSE): v1.GetResponsePDU, (0, PduType.SET): v1.SetRequestPDU,
    (0, PduType.TRAP_V1): v1.TrapPDU,
    (1, PduType.GET): v2c.GetRequestPDU, (1, PduType.GETNEXT): v2c.GetNextRequestPDU,
    (1, PduType.RESPONSE): v2c.ResponsePDU, (1, PduType.SET): v2c.SetRequestPDU,
    (1, PduType.GETBULK): v2c.GetBulkRequestPDU, (1, PduType.INFORM): v2c.InformRequestPDU,
    (1, PduType.TRAP_V2): v2c.SNMPv2TrapPDU, (1, PduType.REPORT): v2c.ReportPDU,
}


def pysnmp_value(version: int, vb: VarBind) -> Any:
    if vb.kind == "Null":
        return v2c.null if version else v1.null
    if vb.kind in _SPECIALS:
        return _SPECIALS[vb.kind]
    return (_V2C_TYPES if version else _V1_TYPES)[vb.kind](vb.value)


def pysnmp_encode(m: Message) -> bytes:
    api = v2c if m.version else v1
    pdu = _PYSNMP_PDUS[m.version, m.pdu_type]()
    varbinds = [(v2c.ObjectIdentifier(vb.oid), pysnmp_value(m.version, vb))
                for vb in m.varbinds]
    if m.pdu_type is PduType.TRAP_V1:
        api.apiTrapPDU.set_defaults(pdu)
        api.apiTrapPDU.set_enterprise(pdu, v1.ObjectIdentifier(m.enterprise))
        api.apiTrapPDU.set_agent_address(pdu, v1.IpAddress(m.agent_address))
        api.apiTrapPDU.set_generic_trap(pdu, m.generic_trap)
        api.apiTrapPDU.set_specific_trap(pdu, m.specific_trap)
        api.apiTrapPDU.set_timestamp(pdu, m.timestamp)
        api.apiTrapPDU.set_varbinds(pdu, varbinds)
    elif m.pdu_type is PduType.GETBULK:
        v2c.apiBulkPDU.set_defaults(pdu)
        v2c.apiBulkPDU.set_request_id(pdu, m.request_id)
        v2c.apiBulkPDU.set_non_repeaters(pdu, m.error_status)
        v2c.apiBulkPDU.set_max_repetitions(pdu, m.error_index)
        v2c.apiBulkPDU.set_varbinds(pdu, varbinds)
    else:
        api.apiPDU.set_defaults(pdu)
        api.apiPDU.set_request_id(pdu, m.request_id)
        api.apiPDU.set_error_status(pdu, m.error_status)
        api.apiPDU.set_error_index(pdu, m.error_index)
        api.apiPDU.set_varbinds(pdu, varbinds)
    msg = api.Message()
    api.apiMessage.set_defaults(msg)
    api.apiMessage.set_version(msg, m.version)
    api.apiMessage.set_community(msg, m.community)
    api.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


def our_varbind(version: int, name: Any, value: Any) -> VarBind:
    """What SnmpClient made of a decoded pysnmp varbind (v1 goes through RFC 2576 first)."""
    if version == 0:
        if value.tagSet == v1.NetworkAddress.tagSet:
            value = value.getComponent()
        value = V1_TO_V2_VALUE_MAP[value.tagSet].clone(value)
    converted, kind = convert_value(value)
    return VarBind(".".join(map(str, name.asTuple())), converted, kind)


def pysnmp_decode(data: bytes) -> Message:
    version = int(api_.decodeMessageVersion(data))
    api = v2c if version else v1
    msg, rest = decoder.decode(data, asn1Spec=api.Message())
    assert rest == b""
    pdu = api.apiMessage.get_pdu(msg)
    tag = PduType(pdu.tagSet[0][0] | pdu.tagSet[0][1] | pdu.tagSet[0][2])
    m = Message(version, bytes(api.apiMessage.get_community(msg)), tag)
    if tag is PduType.TRAP_V1:
        m.enterprise = ".".join(map(str, api.apiTrapPDU.get_enterprise(pdu).asTuple()))
        m.agent_address = socket.inet_ntoa(bytes(api.apiTrapPDU.get_agent_address(pdu)))
        m.generic_trap = int(api.apiTrapPDU.get_generic_trap(pdu))
        m.specific_trap = int(api.apiTrapPDU.get_specific_trap(pdu))
        m.timestamp = int(api.apiTrapPDU.get_timestamp(pdu))
        raw = api.apiTrapPDU.get_varbinds(pdu)
    else:
        m.request_id = int(pdu[0])
        m.error_status = int(pdu[1])
        m.error_index = int(pdu[2])
        raw = api.apiPDU.get_varbinds(pdu)
    m.varbinds = [our_varbind(version, n, v) for n, v in raw]
    return m


# -- messages covering every type and edge ------------------------------------------------

IF_TABLE_ROW = [
    VarBind("1.3.6.1.2.1.2.2.1.1.3", 3, "Integer"),
    VarBind("1.3.6.1.2.1.2.2.1.2.3", b"eth1", "OctetString"),
    VarBind("1.3.6.1.2.1.2.2.1.5.3", 4294967295, "Gauge32"),
    VarBind("1.3.6.1.2.1.2.2.1.6.3", b"\xfe\xfb\x07\xdc\xe5\xde", "OctetString"),
    VarBind("1.3.6.1.2.1.2.2.1.9.3", 63953, "TimeTicks"),
    VarBind("1.3.6.1.2.1.2.2.1.10.3", 2**32 - 1, "Counter32"),
    VarBind("1.3.6.1.2.1.31.1.1.1.6.3", 2**64 - 1, "Counter64"),
    VarBind("1.3.6.1.2.1.4.20.1.3.10.0.12.1", "255.255.255.252", "IpAddress"),
    VarBind("1.3.6.1.2.1.1.2.0", "1.3.6.1.4.1.8072.3.2.10", "ObjectIdentifier"),
    VarBind("1.3.6.1.4.1.2021.10.1.6.1", b"\x9f\x78\x04\x3f\x00\x00\x00", "Opaque"),
]
V2_ONLY = [
    VarBind("1.3.6.1.2.1.1.5.1", Special.NO_SUCH_INSTANCE, "NoSuchInstance"),
    VarBind("1.3.6.1.2.1.99.1.0", Special.NO_SUCH_OBJECT, "NoSuchObject"),
    VarBind("2.0", Special.END_OF_MIB_VIEW, "EndOfMibView"),
]
EDGE_INTEGERS = [0, 1, -1, 127, 128, -128, -129, 255, 256, 2**31 - 1, -(2**31)]
EDGE_UNSIGNED = [0, 1, 127, 128, 255, 256, 2**31 - 1, 2**31, 2**32 - 1]
EDGE_OIDS = ["0.0", "0.39", "1.0", "1.39", "2.0", "2.47", "2.48", "2.999", "2.999.3",
             "1.3.6.1.4.1.127.128.255.256.16383.16384.2097151.2097152",
             "1.3.6.1.4.1.4294967295.4294967296.18446744073709551616",
             "1.3." + ".".join(str(i) for i in range(120))]


def response(version: int, varbinds: list[VarBind], **kw: Any) -> Message:
    return Message(version, kw.pop("community", b"public"), kw.pop("pdu", PduType.RESPONSE),
                   request_id=kw.pop("request_id", 1234567), varbinds=varbinds, **kw)


def v1_kinds(varbinds: list[VarBind]) -> list[VarBind]:
    return [VarBind(vb.oid, vb.value, "Integer32" if vb.kind == "Integer" else vb.kind)
            for vb in varbinds if vb.kind != "Counter64"]


MESSAGES: list[Message] = [
    response(1, IF_TABLE_ROW + V2_ONLY),
    response(0, v1_kinds(IF_TABLE_ROW)),
    response(1, [VarBind(f"1.3.6.1.2.1.2.2.1.1.{i}", n, "Integer")
                 for i, n in enumerate(EDGE_INTEGERS)]),
    response(0, [VarBind(f"1.3.6.1.2.1.2.2.1.1.{i}", n, "Integer32")
                 for i, n in enumerate(EDGE_INTEGERS)]),
    *(response(v, [VarBind("1.3.6.1.2.1.2.2.1.10.1", n, k) for n in EDGE_UNSIGNED])
      for v, k in ((1, "Counter32"), (1, "Gauge32"), (1, "TimeTicks"), (0, "Counter32"),
                   (0, "Gauge32"), (0, "TimeTicks"))),
    response(1, [VarBind("1.3.6.1.2.1.31.1.1.1.6.1", n, "Counter64")
                 for n in [*EDGE_UNSIGNED, 2**63, 2**64 - 1]]),
    response(1, [VarBind(o, o, "ObjectIdentifier") for o in EDGE_OIDS]),
    response(0, [VarBind(o, b"", "Null") for o in EDGE_OIDS]),
    response(1, [VarBind("1.3.6.1.2.1.1.5.0", b"", "OctetString"),
                 VarBind("1.3.6.1.2.1.1.5.0", bytes(range(256)), "OctetString"),
                 VarBind("1.3.6.1.2.1.1.5.0", b"", "Opaque"),
                 VarBind("1.3.6.1.2.1.1.5.0", "0.0.0.0", "IpAddress")]),
    response(1, [], community=b""),
    response(1, [], request_id=-(2**31)),
    response(1, [], request_id=2**31 - 1, error_status=18, error_index=2**31 - 1),
    response(0, v1_kinds(IF_TABLE_ROW[:2]), error_status=2,
             error_index=2, community=b"\x00\xff" * 70),
    response(1, [VarBind("1.3.6.1.2.1.1.1.0", b"x" * 200, "OctetString")]),
    response(1, [VarBind("1.3.6.1.2.1.1.1.0", b"y" * 65535, "OctetString")]),
    response(1, [VarBind(f"1.3.6.1.2.1.2.2.1.2.{i}", b"z" * 30, "OctetString")
                 for i in range(2500)]),
    Message(1, b"public", PduType.GET, 42,
            varbinds=[VarBind("1.3.6.1.2.1.1.5.0", b"", "Null")]),
    Message(0, b"public", PduType.GETNEXT, 43,
            varbinds=[VarBind("1.3.6.1.2.1.1.5.0", b"", "Null")]),
    Message(1, b"public", PduType.GETBULK, 44, 1, 25,
            [VarBind("1.3.6.1.2.1.1.4", b"", "Null"),
             VarBind("1.3.6.1.2.1.2.2.1.1", b"", "Null")]),
    Message(0, b"private", PduType.SET, 45,
            varbinds=[VarBind("1.3.6.1.2.1.1.6.0", b"rack 4", "OctetString")]),
    Message(1, b"private", PduType.SET, 46,
            varbinds=[VarBind("1.3.6.1.2.1.1.6.0", b"rack 4", "OctetString")]),
    Message(1, b"traps", PduType.TRAP_V2, 47, varbinds=[
        VarBind("1.3.6.1.2.1.1.3.0", 12345, "TimeTicks"),
        VarBind("1.3.6.1.6.3.1.1.4.1.0", "1.3.6.1.6.3.1.1.5.3", "ObjectIdentifier"),
        VarBind("1.3.6.1.2.1.2.2.1.1.3", 3, "Integer")]),
    Message(1, b"traps", PduType.INFORM, 48, varbinds=[
        VarBind("1.3.6.1.2.1.1.3.0", 12345, "TimeTicks"),
        VarBind("1.3.6.1.6.3.1.1.4.1.0", "1.3.6.1.6.3.1.1.5.4", "ObjectIdentifier")]),
    Message(1, b"", PduType.REPORT, 49, varbinds=[
        VarBind("1.3.6.1.6.3.15.1.1.4.0", 7, "Counter32")]),
    Message(0, b"traps", PduType.TRAP_V1, enterprise="1.3.6.1.4.1.8072.3.2.10",
            agent_address="10.0.12.1", generic_trap=2, specific_trap=0, timestamp=63953,
            varbinds=[VarBind("1.3.6.1.2.1.2.2.1.1.3", 3, "Integer32")]),
    Message(0, b"traps", PduType.TRAP_V1, enterprise="1.3.6.1.4.1.99999.2",
            agent_address="255.255.255.255", generic_trap=6, specific_trap=2**31 - 1,
            timestamp=2**32 - 1),
]


@pytest.mark.parametrize("message", MESSAGES, ids=range(len(MESSAGES)))
def test_same_bytes_as_pysnmp_both_ways(message: Message) -> None:
    theirs = pysnmp_encode(message)
    ours = encode_message(message)
    if not pyasn1_pads(message):
        assert ours == theirs
    assert decode_message(theirs) == message
    assert pysnmp_decode(ours) == message
    assert message_version(ours) == message.version


def pyasn1_pads(m: Message) -> bool:
    """pyasn1 encodes -2**(8k-1) one octet longer than needed (ff80 for -128): valid BER."""
    ints = [m.request_id] + [vb.value for vb in m.varbinds if type(vb.value) is int]
    return any(n < 0 and (-n) & (-n - 1) == 0 and (-n).bit_length() % 8 == 0 for n in ints)


def test_pyasn1_pads_negative_powers_of_two_and_we_do_not() -> None:
    m = response(1, [VarBind("1.3", -128, "Integer")], request_id=-(2**31))
    assert pyasn1_pads(m)
    assert bytes.fromhex("0202ff80") in pysnmp_encode(m)
    assert bytes.fromhex("020180") in encode_message(m)
    assert bytes.fromhex("020480000000") in encode_message(m)


def test_long_form_lengths_on_the_wire() -> None:
    longest = encode_message(response(1, [VarBind("1.3", b"y" * 65535, "OctetString")]))
    assert longest[1] == 0x83 and longest[2:5] == (len(longest) - 5).to_bytes(3, "big")
    assert decode_message(longest).varbinds[0].value == b"y" * 65535
    assert encode_message(response(1, [VarBind("1.3", b"y" * 200, "OctetString")]))[1] == 0x81


def test_non_minimal_lengths_and_integers_are_accepted() -> None:
    """net-snmp sends SEQUENCE lengths in 0x82 form; some agents pad integers."""
    inner = (b"\x02\x04\x00\x00\x00\x07"   # request-id 7, padded
             b"\x02\x01\x00\x02\x01\x00"
             b"\x30\x82\x00\x11"
             b"\x30\x81\x0e\x06\x08\x2b\x06\x01\x02\x01\x01\x03\x00"
             b"\x43\x02\x00\x05")
    pdu = b"\xa2\x82" + len(inner).to_bytes(2, "big") + inner
    body = b"\x02\x01\x01\x04\x06public" + pdu
    data = b"\x30\x84" + len(body).to_bytes(4, "big") + body
    got = decode_message(data)
    assert got == response(1, [VarBind("1.3.6.1.2.1.1.3.0", 5, "TimeTicks")], request_id=7)
    assert pysnmp_decode(data) == got


def test_the_names_moved_here_are_the_ones_snmp_exports() -> None:
    assert SnmpVarBind is VarBind and SnmpSpecial is Special


# -- refusals ------------------------------------------------------------------------------

GOOD = encode_message(response(1, IF_TABLE_ROW))


def wire(hexdump: str) -> bytes:
    return bytes.fromhex(hexdump.replace(" ", ""))


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    return bytes([tag]) + (bytes([n]) if n < 128 else bytes([0x82]) + n.to_bytes(2, "big")) \
        + content


def raw(*varbinds: bytes, version: int = 1, pdu: int = 0xA2,
        head: str = "020101 020100 020100") -> bytes:
    """A message around raw VarBind encodings, every length right."""
    return tlv(0x30, tlv(0x02, bytes([version])) + tlv(0x04, b"public")
               + tlv(pdu, wire(head) + tlv(0x30, b"".join(varbinds))))


def vb(value: str, name: str = "06012b") -> bytes:
    return tlv(0x30, wire(name) + wire(value))


# msgVersion 3, msgGlobalData, msgSecurityParameters, a plaintext ScopedPDU
V3_MESSAGE = tlv(0x30, wire("020103") + tlv(0x30, wire("020411223344 020300ffe3 040104 020103"))
                 + tlv(0x04, wire("300e 0400 020100 020100 0400 0400 0400"))
                 + tlv(0x30, wire("0400 0400") + tlv(0xA0, wire("02020539 020100 020100 3000"))))


@pytest.mark.parametrize(("data", "reason"), [
    (raw(vb("020480000000")), None),  # controls: these decode
    (raw(vb("0500"), version=0, pdu=0xA4,
         head="06012b 400400000000 020100 020100 430100"), None),
    (b"", "truncated message SEQUENCE at byte 0"),
    (b"\x30", "truncated length at byte 1"),
    (b"\x30\x80\x02\x01\x01\x00\x00", "indefinite length at byte 1"),
    (b"\x30\x85\x00\x00\x00\x00\x03", "length of 5 octets"),
    (b"\x30\x83\x00\x00", "truncated length at byte 1"),
    (b"\x30\x03\x02\x01", "length past the end at byte 1"),
    (GOOD + b"\x00", "trailing bytes"),
    (b"\x31" + GOOD[1:], "expected message SEQUENCE"),
    (b"\x30\x03\x02\x01\x03", "unsupported version 3"),
    (b"\x30\x03\x02\x01\x02", "unsupported version 2"),
    (b"\x30\x02\x02\x00", "empty version"),
    (b"\x30\x05\x02\x01\x01\x04\x00", "truncated PDU"),
    (raw(pdu=0xA4), "PDU tag 0xa4 not in SNMPv2c"),
    (raw(pdu=0xA5, version=0), "PDU tag 0xa5 not in SNMPv1"),
    (raw(pdu=0xA8, version=0), "PDU tag 0xa8 not in SNMPv1"),
    (raw(pdu=0x30), "PDU tag 0x30"),
    (raw(pdu=0xA9), "PDU tag 0xa9"),
    (raw(head="020101 020100"), "expected error-index"),
    (raw(head="020101 020100 020100 020100"), "expected variable-bindings"),
    (raw(head="020101 020100 0201ff"), "error-index -1 out of range"),
    (raw(head="020101 0201ff 020100"), "error-status -1 out of range"),
    (raw(head="0205 0080000000 020100 020100"), "request-id 2147483648 out of range"),
    (raw(version=0, pdu=0xA4, head="06012b 4003000000 020100 020100 430100"),
     "agent-addr of 3 octets"),
    (raw(version=0, pdu=0xA4, head="06012b 400400000000 020100 020100 4301ff"),
     "time-stamp -1 out of range"),
    (raw(version=0, pdu=0xA4, head="06012b 0404000000 020100 020100 430100"),
     "expected agent-addr"),
    (raw(vb("020105")) + b"\x00", "trailing bytes"),
    (raw(vb("021105")), "length past the end"),
    (raw(vb("0200")), "empty Integer"),
    (raw(vb("02050080000000")), "Integer 2147483648 out of range"),
    (raw(vb("02050080000000"), version=0), "Integer32 2147483648 out of range"),
    (raw(vb("4101ff")), "Counter32 -1 out of range"),
    (raw(vb("4305 0100000000")), "TimeTicks 4294967296 out of range"),
    (raw(vb("4609 010000000000000000")), "Counter64 18446744073709551616 out of range"),
    (raw(vb("4211" + "00" * 17)), "oversize Gauge32"),
    (raw(vb("4200")), "empty Gauge32"),
    (raw(vb("050100")), "Null with content"),
    (raw(vb("800100")), "NoSuchObject with content"),
    (raw(vb("4003010203")), "IpAddress of 3 octets"),
    (raw(vb("400501020304 05")), "IpAddress of 5 octets"),
    (raw(vb("4500")), "unexpected value tag 0x45"),
    (raw(vb("4700")), "unexpected value tag 0x47"),
    (raw(vb("2400")), "unexpected value tag 0x24"),
    (raw(vb("3000")), "unexpected value tag 0x30"),
    (raw(vb("1f0100")), "unexpected value tag 0x1f"),
    (raw(vb("8000"), version=0), "unexpected value tag 0x80"),
    (raw(vb("460101"), version=0), "unexpected value tag 0x46"),
    (raw(vb("0500", name="0600")), "empty OID"),
    (raw(vb("0500", name="06022b86")), "truncated OID sub-identifier"),
    (raw(vb("0500", name="06032b8001")), "leading 0x80"),
    (raw(vb("0500", name="06032b0680")), "truncated OID sub-identifier"),
    (raw(vb("0600")), "empty OID"),
    (raw(vb("0500", name="04012b")), "expected VarBind name"),
    (raw(vb("0500", name="")), "expected VarBind name"),
    (raw(vb("", name="06012b")), "truncated VarBind value"),
    (raw(vb("05", name="06012b")), "truncated length"),
    (raw(vb("0500 0500")), "length mismatch in the VarBind"),
    (raw(tlv(0x31, wire("06012b 0500"))), "expected VarBind SEQUENCE"),
    (raw(wire("3080 06012b 0500 0000")), "indefinite length"),
    (raw(wire("30")), "truncated length"),
    (V3_MESSAGE, "unsupported version 3"),
])
def test_malformed_messages_are_refused(data: bytes, reason: str | None) -> None:
    if reason is None:
        assert decode_message(data) == pysnmp_decode(data)
        return
    with pytest.raises(BerError) as caught:
        decode_message(data)
    assert reason in str(caught.value)


def test_message_version() -> None:
    assert message_version(V3_MESSAGE) == 3
    assert message_version(encode_message(response(0, []))) == 0
    for bad in (b"", b"\x30\x00", b"\x30\x01\x02", b"\x02\x01\x01", GOOD + b"\x00",
                b"\x30\x03\x04\x01\x01"):
        with pytest.raises(BerError):
            message_version(bad)


@pytest.mark.parametrize(("message", "reason"), [
    (response(1, [VarBind("1.3", 2**31, "Integer")]), "Integer 2147483648 out of range"),
    (response(1, [VarBind("1.3", -1, "Counter32")]), "Counter32 -1 out of range"),
    (response(1, [VarBind("1.3", 2**64, "Counter64")]), "out of range"),
    (response(1, [VarBind("1.3", "5", "Gauge32")]), "needs an int"),
    (response(1, [VarBind("1.3", 5, "OctetString")]), "needs bytes"),
    (response(1, [VarBind("1.3", "1.2.3", "IpAddress")]), "dotted quad"),
    (response(1, [VarBind("1.3", "1.2.3.256", "IpAddress")]), "dotted quad"),
    (response(1, [VarBind("1.3", 5, "Float")]), "cannot encode kind 'Float'"),
    (response(1, [VarBind("1.40", b"", "Null")]), "not an encodable OID"),
    (response(1, [VarBind("3.1", b"", "Null")]), "not an encodable OID"),
    (response(1, [VarBind("1", b"", "Null")]), "not an encodable OID"),
    (response(1, [VarBind("1.3.x", b"", "Null")]), "not a numeric OID"),
    (response(0, [VarBind("1.3", 5, "Counter64")]), "not in SNMPv1"),
    (response(0, V2_ONLY[:1]), "not in SNMPv1"),
    (response(0, [], pdu=PduType.GETBULK), "GETBULK not in SNMPv1"),
    (response(1, [], pdu=PduType.TRAP_V1), "TRAP_V1 not in SNMPv2c"),
    (Message(3, b"", PduType.GET), "unsupported version 3"),
])
def test_encode_refuses_what_the_kind_cannot_hold(message: Message, reason: str) -> None:
    with pytest.raises(BerError, match=reason):
        encode_message(message)


def test_encode_accepts_a_leading_dot_and_text_octets() -> None:
    got = decode_message(encode_message(response(1, [
        VarBind(".1.3.6.1.2.1.1.5.0", "r1", "OctetString"),
        VarBind("1.3.6.1.2.1.1.5.0", b"\x0a\x00\x00\x01", "IpAddress")])))
    assert got.varbinds == [VarBind("1.3.6.1.2.1.1.5.0", b"r1", "OctetString"),
                            VarBind("1.3.6.1.2.1.1.5.0", "10.0.0.1", "IpAddress")]


# -- fuzz: only BerError, and never a different answer than pysnmp's ------------------------

def decode_or_error(data: bytes) -> Message | None:
    try:
        return decode_message(data)
    except BerError:
        return None
    # any other exception fails the test


FUZZ_SEEDS = [encode_message(m) for m in (
    response(1, IF_TABLE_ROW + V2_ONLY), response(0, v1_kinds(IF_TABLE_ROW)),
    MESSAGES[-2], MESSAGES[-9], response(1, [VarBind(o, o, "ObjectIdentifier")
                                             for o in EDGE_OIDS[:10]]))]


def test_fuzz_truncations() -> None:
    for seed in FUZZ_SEEDS:
        for cut in range(len(seed)):
            assert decode_or_error(seed[:cut]) is None
            with pytest.raises(BerError):
                message_version(seed[:cut])


def test_fuzz_flips_and_noise() -> None:
    rng = random.Random(20240517)
    accepted = 0
    for _ in range(6000):
        data = bytearray(rng.choice(FUZZ_SEEDS))
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            choice = rng.random()
            if choice < 0.5:
                data[i] = rng.randrange(256)
            elif choice < 0.7:
                data[i] ^= 1 << rng.randrange(8)
            elif choice < 0.85:
                del data[i]
            else:
                data.insert(i, rng.randrange(256))
        got = decode_or_error(bytes(data))
        if got is not None:
            accepted += 1
            try:
                theirs = pysnmp_decode(bytes(data))
            except Exception:  # pysnmp refuses it too
                continue
            assert got == theirs, data.hex()
    assert accepted > 100  # the mutations were not all fatal
    for _ in range(3000):
        noise = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 64)))
        decode_or_error(noise)
        decode_or_error(b"\x30" + bytes([len(noise)]) + noise if len(noise) < 128 else noise)
        decode_or_error(b"\x30" + bytes([len(noise) + 3]) + b"\x02\x01\x01" + noise
                        if len(noise) < 120 else noise)
