"""The NETCONF parsers on replies recorded from the lab's netconfd
(tests/golden/netconf/, re-record with tests/golden/record.py), safe XML parsing,
and the error translation."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree  # type: ignore[import-untyped]
from ncclient.operations.errors import TimeoutExpiredError
from ncclient.transport.errors import AuthenticationError, SessionCloseError, SessionError

from collectors.netconf import (
    NetconfReplies,
    YangModule,
    facts_from_replies,
    modules_from_capabilities,
    parse_interfaces_state,
    parse_system,
    parse_xml,
    parse_yang_library,
)
from collectors.netconf import (
    translate_error as _translate,
)
from topology.errors import (
    AuthenticationFailed,
    ConnectionRefused,
    DeviceTimeout,
    ProtocolError,
    StatusCode,
)

GOLDEN = Path(__file__).parent.parent / "golden" / "netconf"
EXPECTED_MODULES = {
    YangModule("ietf-interfaces", "2014-05-08"),
    YangModule("ietf-ip", "2014-06-16"),
    YangModule("ietf-system", "2014-08-06"),
}


def golden(name: str) -> str:
    return (GOLDEN / name).read_text(encoding="utf-8")


def capabilities() -> tuple[str, ...]:
    return tuple(line for line in golden("hello_capabilities.txt").splitlines() if line)


def recorded_replies(**overrides: object) -> NetconfReplies:
    values: dict[str, object] = {
        "capabilities": capabilities(), "yang_library": golden("yang_library.xml"),
        "interfaces_state": golden("interfaces_state.xml"), "system": golden("system.xml")}
    values.update(overrides)
    return NetconfReplies(**values)  # type: ignore[arg-type]


# -- capabilities and modules --------------------------------------------------------

def test_recorded_server_supports_candidate_confirmed_commit_and_validate() -> None:
    facts = facts_from_replies(recorded_replies())
    assert facts.supports_candidate
    assert facts.supports_confirmed_commit
    assert facts.supports_validate
    assert facts.capabilities == capabilities()


def test_modules_from_the_yang_library() -> None:
    modules = parse_yang_library(golden("yang_library.xml"))
    assert set(modules) >= EXPECTED_MODULES
    assert YangModule("ietf-yang-library", "2016-06-21") in modules
    assert all(m.name and m.revision for m in modules)


def test_modules_from_capability_uris() -> None:
    modules = modules_from_capabilities(capabilities())
    assert set(modules) >= EXPECTED_MODULES
    # the yang-library capability itself names no module
    assert all(m.name for m in modules)


def test_yang_library_and_capabilities_agree_on_the_recorded_server() -> None:
    assert set(parse_yang_library(golden("yang_library.xml"))) == set(
        modules_from_capabilities(capabilities()))


def test_without_a_yang_library_the_capabilities_name_the_modules() -> None:
    facts = facts_from_replies(recorded_replies(yang_library=None))
    assert set(facts.modules) >= EXPECTED_MODULES
    assert facts.module("ietf-ip") == YangModule("ietf-ip", "2014-06-16")


def test_capability_uri_without_revision() -> None:
    assert modules_from_capabilities(["urn:example:foo?module=foo"]) == (YangModule("foo", None),)


# -- interfaces-state ----------------------------------------------------------------

def test_interfaces_state_golden() -> None:
    interfaces = {i.name: i for i in parse_interfaces_state(golden("interfaces_state.xml"))}
    assert {"eth1", "mgmt0", "lo"} <= set(interfaces)
    for name in ("eth1", "mgmt0"):
        iface = interfaces[name]
        assert iface.oper_status == "up"
        assert iface.speed_bps == 10_000_000_000
        for counter in (iface.in_octets, iface.out_octets, iface.in_errors, iface.out_errors):
            assert isinstance(counter, int) and counter >= 0
    assert interfaces["mgmt0"].in_octets > 0  # type: ignore[operator]


def test_interfaces_state_reply_as_rpc_reply() -> None:
    data = golden("interfaces_state.xml")
    reply = (f'<rpc-reply xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="1">'
             f"{data}</rpc-reply>")
    assert parse_interfaces_state(reply) == parse_interfaces_state(data)


def test_interfaces_state_leaves_netconfd_leaves_out() -> None:
    # Hand-written in RFC 8343's shape: yuma123 does not fill these leaves.
    reply = """<data xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
      <interfaces-state xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"
                        xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type">
        <interface><name>ge-0/0/0</name><type>ianaift:ethernetCsmacd</type>
          <admin-status>up</admin-status><oper-status>down</oper-status>
          <phys-address>00:0c:42:e5:b1:e9</phys-address><speed>1000000000</speed>
          <statistics><in-octets>18446744073709551615</in-octets></statistics>
        </interface>
      </interfaces-state></data>"""
    (iface,) = parse_interfaces_state(reply)
    assert iface.type == "ethernetCsmacd"
    assert (iface.admin_status, iface.oper_status) == ("up", "down")
    assert iface.phys_address == "00:0c:42:e5:b1:e9"
    assert iface.in_octets == 2**64 - 1
    assert iface.out_octets is None


# -- system -------------------------------------------------------------------------

def test_system_golden_from_netconfd_uname() -> None:
    system = parse_system(golden("system.xml"))
    assert system.hostname == "vnf1"
    assert system.os_name == "Linux"
    assert system.machine == "x86_64"
    assert system.os_release


def test_system_prefers_ietf_system_leaves() -> None:
    reply = """<data xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
      <system xmlns="urn:ietf:params:xml:ns:yang:ietf-system"><hostname>pe1</hostname></system>
      <system-state xmlns="urn:ietf:params:xml:ns:yang:ietf-system"><platform>
        <os-name>ExampleOS</os-name><os-release>1.2</os-release><machine>arm64</machine>
      </platform></system-state></data>"""
    system = parse_system(reply)
    assert (system.hostname, system.os_name, system.os_release, system.machine) == (
        "pe1", "ExampleOS", "1.2", "arm64")


def test_facts_expose_hostname_and_os() -> None:
    facts = facts_from_replies(recorded_replies())
    assert facts.hostname == "vnf1"
    assert facts.os_name == "Linux"


# -- safe XML --------------------------------------------------------------------------

XXE = """<?xml version="1.0"?>
<!DOCTYPE data [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<data xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
  <interfaces-state xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces">
    <interface><name>&x;</name></interface>
    <interface><name>eth1</name><oper-status>&x;</oper-status></interface>
  </interfaces-state>
</data>"""


def test_external_entity_is_not_resolved() -> None:
    assert "root:" not in etree.tostring(parse_xml(XXE), encoding="unicode")
    interfaces = parse_interfaces_state(XXE)
    assert [i.name for i in interfaces] == ["eth1"]  # the entity-only name is no name
    assert "root:" not in repr(interfaces)
    assert interfaces[0].oper_status is None


def test_internal_entities_are_not_expanded() -> None:
    bomb = ('<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            '<d>&b;</d>')
    assert "aaaaaaaaaa" not in etree.tostring(parse_xml(bomb), encoding="unicode")


def test_not_a_data_reply() -> None:
    with pytest.raises(ValueError, match="not a NETCONF data reply"):
        parse_interfaces_state('<rpc-reply xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"/>')


# -- error translation -------------------------------------------------------------------

def translate(exc: BaseException, operation: str = "hello") -> Exception:
    return _translate(exc, host="192.0.2.9", operation=operation, profile="core",
                      secret="s3cret-pw")


def test_auth_failure_names_host_and_profile_not_the_password() -> None:
    err = translate(AuthenticationError("AuthenticationException('Authentication failed.')"))
    assert isinstance(err, AuthenticationFailed)
    assert err.status is StatusCode.AUTH_FAILED
    assert (err.device, err.operation, err.profile) == ("192.0.2.9", "hello", "core")
    assert "192.0.2.9" in str(err) and "core" in str(err) and "s3cret-pw" not in str(err)


@pytest.mark.parametrize("exc", [TimeoutError("timed out"), TimeoutExpiredError("rpc"),
                                 SessionError("Capability exchange timed out")])
def test_timeouts(exc: BaseException) -> None:
    assert isinstance(translate(exc), DeviceTimeout)


def test_refused() -> None:
    err = translate(ConnectionRefusedError(111, "Connection refused"), "connect")
    assert isinstance(err, ConnectionRefused)
    assert err.status is StatusCode.REFUSED


def test_anything_else_from_the_session_is_a_protocol_error() -> None:
    err = translate(SessionCloseError("s3cret-pw in buffer"), "get interfaces-state")
    assert isinstance(err, ProtocolError)
    assert err.operation == "get interfaces-state"
    assert "s3cret-pw" not in str(err)
