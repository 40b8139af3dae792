"""The NETCONF driver without a network: the typed XML builder, the config-document
guard, canonical text, the device's words from rpc-errors, the one error translation,
and the RPC sequence of each verb against a fake server (the driver's ``connect`` seam).

The rpc-error and get-config replies below were recorded from the lab's yuma123
netconfd 2.13 (vnf1)."""

from __future__ import annotations

import errno
import time
from collections.abc import Iterator
from typing import Any

import pytest
from lxml import etree
from pydantic import SecretStr

from adapters.base import ConfigDriver, DriverTarget
from adapters.netconf import (
    CAP_CANDIDATE,
    CAP_CONFIRMED_COMMIT,
    CAP_CONFIRMED_COMMIT_11,
    CAP_ROLLBACK_ON_ERROR,
    CAP_VALIDATE,
    IANA_IF_TYPE,
    IETF_INTERFACES,
    IETF_IP,
    NC,
    NetconfDriver,
    _RpcErrorReply,
    canonical_config,
    interface_config,
    parse_config_document,
    rpc_error_text,
    translate_error,
)
from topology.errors import (
    CommitNotConfirmed,
    ConfigPushError,
    ConfigRejected,
    PushConnectionError,
)

SECRET = "s3cret-pw"

UNKNOWN_ELEMENT_REPLY = """<?xml version="1.0" encoding="UTF-8"?>
<rpc-reply xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"
  message-id="urn:uuid:ddfb7e75-0fe1-4fc7-bf08-e22b37ff8ef4"
  xmlns:if="urn:ietf:params:xml:ns:yang:ietf-interfaces"
  xmlns:ncx="http://netconfcentral.org/ns/yuma-ncx"
  xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
  <rpc-error>
    <error-type>protocol</error-type>
    <error-tag>unknown-element</error-tag>
    <error-severity>error</error-severity>
    <error-app-tag>data-invalid</error-app-tag>
    <error-path>/nc:rpc/nc:edit-config/nc:config/if:interfaces/if:interface[if:name='contract0']</error-path>
    <error-message xml:lang="en">unknown object</error-message>
    <error-info>
      <bad-element
        xmlns:if="urn:ietf:params:xml:ns:yang:ietf-interfaces">if:no-such-leaf</bad-element>
      <error-number xmlns="http://netconfcentral.org/ns/yuma-ncx">293</error-number>
    </error-info>
  </rpc-error>
</rpc-reply>
"""

NOT_ACTIVE_REPLY = """<?xml version="1.0" encoding="UTF-8"?>
<rpc-reply xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"
  message-id="urn:uuid:302fd505-62f1-4610-9301-f4dca05b5000"
  xmlns:ncx="http://netconfcentral.org/ns/yuma-ncx"
  xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
  <rpc-error>
    <error-type>protocol</error-type>
    <error-tag>operation-failed</error-tag>
    <error-severity>error</error-severity>
    <error-app-tag>general-error</error-app-tag>
    <error-path>/nc:rpc/nc:commit/nc:persist-id</error-path>
    <error-message xml:lang="en">persistent confirmed commit not active</error-message>
    <error-info>
      <error-number xmlns="http://netconfcentral.org/ns/yuma-ncx">380</error-number>
    </error-info>
  </rpc-error>
</rpc-reply>
"""

LOCK_DENIED_REPLY = """<?xml version="1.0" encoding="UTF-8"?>
<rpc-reply xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"
  message-id="urn:uuid:8b846294-df78-4151-a19f-b8280a3c51da"
  xmlns:ncx="http://netconfcentral.org/ns/yuma-ncx"
  xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
  <rpc-error>
    <error-type>protocol</error-type>
    <error-tag>lock-denied</error-tag>
    <error-severity>error</error-severity>
    <error-app-tag>no-access</error-app-tag>
    <error-message xml:lang="en">lock denied</error-message>
    <error-info>
      <session-id>2</session-id>
      <error-number xmlns="http://netconfcentral.org/ns/yuma-ncx">268</error-number>
    </error-info>
  </rpc-error>
</rpc-reply>
"""

GET_CONFIG_REPLY = """<?xml version="1.0" encoding="UTF-8"?>
<rpc-reply xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"
  message-id="urn:uuid:a72b159b-911a-4d00-9a08-393c1230bd1d"
  last-modified="2026-11-22T07:30:22Z"
  xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">
  <data>
    <interfaces xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces">
      <interface>
        <name>contract0</name>
        <description>a &lt;b&gt; &amp; ]]&gt; c</description>
        <type
          xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type">ianaift:ethernetCsmacd</type>
        <ipv4 xmlns="urn:ietf:params:xml:ns:yang:ietf-ip">
          <address>
            <ip>192.0.2.1</ip>
            <prefix-length>24</prefix-length>
          </address>
        </ipv4>
      </interface>
    </interfaces>
    <nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm">
    </nacm>
  </data>
</rpc-reply>
"""


def _parse(text: str) -> Any:
    return etree.fromstring(text.encode())


def _data(reply: str) -> list[Any]:
    return list(_parse(reply).find(f"{{{NC}}}data"))


# -- the builder -------------------------------------------------------------------------

def test_interface_config_is_built_from_typed_values() -> None:
    text = interface_config("eth1", description="cust2", enabled=False,
                            ipv4=[("192.0.2.1", 24), ("198.51.100.7", 32)])
    root = parse_config_document(text)
    iface = root.find(f"{{{IETF_INTERFACES}}}interfaces/{{{IETF_INTERFACES}}}interface")
    assert iface is not None

    def leaf(name: str, ns: str = IETF_INTERFACES) -> Any:
        return iface.findtext(f"{{{ns}}}{name}")

    assert leaf("name") == "eth1"
    assert leaf("description") == "cust2"
    assert leaf("enabled") == "false"
    type_leaf = iface.find(f"{{{IETF_INTERFACES}}}type")
    assert type_leaf.text == "ianaift:ethernetCsmacd"
    assert type_leaf.nsmap["ianaift"] == IANA_IF_TYPE
    addresses = [(a.findtext(f"{{{IETF_IP}}}ip"), a.findtext(f"{{{IETF_IP}}}prefix-length"))
                 for a in iface.iter(f"{{{IETF_IP}}}address")]
    assert addresses == [("192.0.2.1", "24"), ("198.51.100.7", "32")]


def test_interface_config_leaves_out_what_is_not_given() -> None:
    root = parse_config_document(interface_config("eth1", if_type=None))
    iface = root.find(f"{{{IETF_INTERFACES}}}interfaces/{{{IETF_INTERFACES}}}interface")
    assert [etree.QName(child).localname for child in iface] == ["name"]


@pytest.mark.parametrize("description", [
    "a <b> & ]]> c",
    "</description><enabled>false</enabled><description>",
    "<![CDATA[x]]>",
    "&amp; &lt; &#10;",
    '"quoted" \'single\'',
])
def test_a_description_is_escaped_never_injected(description: str) -> None:
    text = interface_config("eth1", description=description)
    root = parse_config_document(text)
    iface = root.find(f"{{{IETF_INTERFACES}}}interfaces/{{{IETF_INTERFACES}}}interface")
    assert [etree.QName(child).localname for child in iface] == ["name", "description",
                                                                    "type"]
    assert iface.findtext(f"{{{IETF_INTERFACES}}}description") == description
    assert "]]>" not in text  # the NETCONF 1.0 end-of-message marker cannot appear


@pytest.mark.parametrize("name", ["eth1\n", "eth\n1", "", "eth 1", "eth1;reboot", "1eth",
                                  "eth1<x/>", "a" * 64, "eth1\x00"])
def test_a_bad_interface_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="interface name"):
        interface_config(name, description="x")


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"description": "two\nlines"}, ValueError),
    ({"description": "tab\there"}, ValueError),
    ({"description": "x" * 256}, ValueError),
    ({"description": 7}, TypeError),
    ({"enabled": "true"}, TypeError),
    ({"enabled": 1}, TypeError),
    ({"ipv4": [("192.0.2.1", 33)]}, ValueError),
    ({"ipv4": [("192.0.2.1", True)]}, ValueError),
    ({"ipv4": [("192.0.2.1", "24")]}, ValueError),
    ({"ipv4": [("192.0.2.300", 24)]}, ValueError),
    ({"ipv4": [("2001:db8::1", 64)]}, ValueError),
    ({"if_type": "ianaift:ethernetCsmacd"}, ValueError),
    ({"if_type": "x y"}, ValueError),
])
def test_a_bad_typed_value_is_refused(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        interface_config("eth1", **kwargs)


# -- the config-document guard ------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "not xml",
    "<data/>",
    f'<data xmlns="{NC}"/>',
    f'<config xmlns="{NC}"><interfaces/></config>',  # no module namespace
    f'<config xmlns="{NC}"><x:interfaces xmlns:x=""/></config>',
    f'<!DOCTYPE config [<!ENTITY e "boom">]><config xmlns="{NC}">&e;</config>',
    '<!DOCTYPE config SYSTEM "file:///etc/passwd"><config xmlns="' + NC + '"/>',
    f'<config xmlns="{NC}">&e;</config>',
])
def test_anything_but_a_config_document_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_config_document(text)


def test_a_config_document_is_accepted() -> None:
    root = parse_config_document(interface_config("eth1", description="x"))
    assert root.tag == f"{{{NC}}}config"


# -- canonical text ----------------------------------------------------------------------------

def test_canonical_text_drops_layout_and_is_stable() -> None:
    text = canonical_config(_data(GET_CONFIG_REPLY))
    assert text.startswith(f'<config xmlns="{NC}">\n  <interfaces')
    assert "<description>a &lt;b&gt; &amp; ]]&gt; c</description>" in text
    assert ('<type xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type">'
            "ianaift:ethernetCsmacd</type>") in text
    assert '<nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm"/>' in text
    assert "last-modified" not in text and "message-id" not in text
    again = canonical_config(list(parse_config_document(text)))
    assert again == text


def test_canonical_text_of_the_builder_equals_what_the_server_returns() -> None:
    built = parse_config_document(interface_config(
        "contract0", description="a <b> & ]]> c", ipv4=[("192.0.2.1", 24)]))
    server = _data(GET_CONFIG_REPLY)[:1]  # the interfaces container
    assert canonical_config(list(built)) == canonical_config(server)


# -- the device's words ----------------------------------------------------------------------

def test_rpc_error_text_has_tag_message_path_and_bad_element() -> None:
    errors = list(_parse(UNKNOWN_ELEMENT_REPLY).iter(f"{{{NC}}}rpc-error"))
    assert rpc_error_text(errors) == (
        "error-tag: unknown-element\n"
        "error-message: unknown object\n"
        "error-path: /nc:rpc/nc:edit-config/nc:config/if:interfaces/"
        "if:interface[if:name='contract0']\n"
        "bad-element: if:no-such-leaf")


def test_lock_denied_names_the_session_holding_the_lock() -> None:
    errors = list(_parse(LOCK_DENIED_REPLY).iter(f"{{{NC}}}rpc-error"))
    assert "error-tag: lock-denied" in rpc_error_text(errors)
    assert "session-id: 2" in rpc_error_text(errors)


# -- the one translation ----------------------------------------------------------------------

def _translate(exc: BaseException) -> ConfigPushError:
    return translate_error(exc, device="vnf1", operation="op", secret=SECRET)


def test_an_rpc_error_reply_is_config_rejected_with_the_device_words() -> None:
    errors = list(_parse(UNKNOWN_ELEMENT_REPLY).iter(f"{{{NC}}}rpc-error"))
    err = _translate(_RpcErrorReply(errors))
    assert type(err) is ConfigRejected
    assert "unknown object (unknown-element)" in str(err)
    assert "bad-element: if:no-such-leaf" in err.output
    assert (err.device, err.operation) == ("vnf1", "op")


def test_an_ncclient_rpc_error_is_config_rejected() -> None:
    from ncclient.operations.rpc import RPCError

    raw = next(_parse(NOT_ACTIVE_REPLY).iter(f"{{{NC}}}rpc-error"))
    err = _translate(RPCError(raw))
    assert type(err) is ConfigRejected
    assert "persistent confirmed commit not active" in err.output


def _raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(("exc", "words"), [
    ("auth", "login refused"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "port closed"),
    (TimeoutError("timed out"), "no answer in time"),
    ("ncclient-timeout", "no answer in time"),
    (OSError(errno.EHOSTUNREACH, "No route to host"), "unreachable"),
    ("transport", "session lost"),
    (OSError("Socket is closed"), "connection failed"),
])
def test_connection_failures_are_push_connection_errors(exc: Any, words: str) -> None:
    from ncclient.operations.errors import TimeoutExpiredError
    from ncclient.transport.errors import AuthenticationError, TransportError
    from paramiko.ssh_exception import AuthenticationException

    if exc == "auth":
        exc = _raised_from(AuthenticationError(f"Authentication failed for {SECRET}"),
                           AuthenticationException("Authentication failed."))
    elif exc == "ncclient-timeout":
        exc = TimeoutExpiredError("ncclient timed out while waiting for an rpc reply.")
    elif exc == "transport":
        exc = TransportError("Not connected to NETCONF server")
    err = _translate(exc)
    assert type(err) is PushConnectionError
    assert words in str(err)
    assert SECRET not in str(err) and SECRET not in repr(err)


def test_the_password_never_appears_in_a_message_or_output() -> None:
    err = _translate(RuntimeError(f"something odd with password {SECRET}"))
    assert type(err) is ConfigPushError
    assert SECRET not in str(err) and "***" in str(err)
    errors = list(_parse(UNKNOWN_ELEMENT_REPLY.replace("unknown object", SECRET))
                  .iter(f"{{{NC}}}rpc-error"))
    rejected = _translate(_RpcErrorReply(errors))
    assert isinstance(rejected, ConfigRejected)
    assert SECRET not in str(rejected) and SECRET not in rejected.output


def test_our_own_errors_pass_through() -> None:
    mine = CommitNotConfirmed("late", device="vnf1", operation="confirm")
    assert _translate(mine) is mine


# -- the verbs against a fake server -------------------------------------------------------

OK_REPLY = f'<rpc-reply xmlns="{NC}" message-id="1"><ok/></rpc-reply>'
EMPTY = '<nacm xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-acm"/>'


class _Reply:
    def __init__(self, xml: str) -> None:
        self.xml = xml


class FakeServer:
    """Enough of a NETCONF server with a candidate datastore for the driver's verbs:
    datastores are lists of top-level element strings; ``fail`` maps an RPC name to the
    reply it answers instead of <ok/>. Each connect gets a :class:`FakeSession`."""

    def __init__(self, capabilities: set[str]) -> None:
        self.capabilities = capabilities
        self.running = [EMPTY]
        self.candidate = [EMPTY]
        self.saved: list[str] | None = None
        self.calls: list[str] = []
        self.fail: dict[str, str] = {}

    def connect(self, _target: DriverTarget) -> tuple[FakeSession, None]:
        return FakeSession(self), None


class FakeSession:
    """One session on a :class:`FakeServer` (what ``ncclient.manager.connect`` returns)."""

    def __init__(self, server: FakeServer) -> None:
        self.s = server
        self.server_capabilities = server.capabilities
        self.connected = True

    def _answer(self, name: str) -> _Reply:
        self.s.calls.append(name)
        return _Reply(self.s.fail.get(name, OK_REPLY))

    def lock(self, target: str) -> _Reply:
        return self._answer(f"lock {target}")

    def unlock(self, target: str) -> _Reply:
        return self._answer(f"unlock {target}")

    def discard_changes(self) -> _Reply:
        self.s.candidate = list(self.s.running)
        return self._answer("discard-changes")

    def edit_config(self, target: str, config: Any, default_operation: str,
                    error_option: str) -> _Reply:
        name = f"edit-config {target} {default_operation} {error_option}"
        if name not in self.s.fail:
            self.s.candidate = [etree.tostring(e, encoding="unicode") for e in config]
            self.s.candidate.append(EMPTY)
        return self._answer(name)

    def validate(self, source: Any) -> _Reply:
        assert etree.QName(source).localname == "config"  # inline, never <candidate/>
        return self._answer("validate")

    def get_config(self, source: str) -> _Reply:
        self.s.calls.append(f"get-config {source}")
        store = self.s.running if source == "running" else self.s.candidate
        return _Reply(f'<rpc-reply xmlns="{NC}"><data>{"".join(store)}</data></rpc-reply>')

    def commit(self, confirmed: bool = False, timeout: str | None = None,
               persist: str | None = None, persist_id: str | None = None) -> _Reply:
        name = "commit"
        if confirmed:
            name += f" confirmed {timeout}" + (" persist" if persist else "")
        if persist_id:
            name += " persist-id"
        if name not in self.s.fail:
            if confirmed:
                self.s.saved = list(self.s.running)
            self.s.running = list(self.s.candidate)
        return self._answer(name)

    def cancel_commit(self, persist_id: str | None = None) -> _Reply:
        if self.s.saved is not None and "cancel-commit" not in self.s.fail:
            self.s.running = self.s.candidate = self.s.saved
            self.s.saved = None
        return self._answer("cancel-commit")

    def copy_config(self, source: Any, target: str) -> _Reply:
        (config,) = list(source)
        self.s.candidate = [etree.tostring(e, encoding="unicode") for e in config]
        return self._answer(f"copy-config {target}")

    def close_session(self) -> None:
        self.connected = False


YUMA_CAPS = {CAP_CANDIDATE, CAP_CONFIRMED_COMMIT, CAP_CONFIRMED_COMMIT_11,
             CAP_ROLLBACK_ON_ERROR, *CAP_VALIDATE}


@pytest.fixture
def server() -> FakeServer:
    return FakeServer(set(YUMA_CAPS))


@pytest.fixture
def driver(server: FakeServer) -> Iterator[NetconfDriver]:
    target = DriverTarget("vnf1", "192.0.2.9", "admin", SecretStr(SECRET), 830)
    d = NetconfDriver(target, connect=server.connect)
    d.open()
    yield d
    d.close()


CHANGE = interface_config("contract0", description="contract-test")


def test_the_driver_satisfies_the_protocol(driver: NetconfDriver) -> None:
    assert isinstance(driver, ConfigDriver)
    assert driver.kind == "netconf"


def test_load_locks_discards_merges_and_validates(driver: NetconfDriver,
                                                  server: FakeServer) -> None:
    driver.load_merge_candidate(CHANGE)
    assert server.calls == ["lock candidate", "lock running", "discard-changes",
                            "edit-config candidate merge rollback-on-error",
                            "get-config candidate", "validate"]
    assert "+      <description>contract-test</description>" in driver.compare_config()


def test_a_refused_edit_discards_and_unlocks(driver: NetconfDriver,
                                             server: FakeServer) -> None:
    server.fail["edit-config candidate merge rollback-on-error"] = UNKNOWN_ELEMENT_REPLY
    with pytest.raises(ConfigRejected) as info:
        driver.load_merge_candidate(CHANGE)
    assert "error-tag: unknown-element" in info.value.output
    assert server.calls[-3:] == ["discard-changes", "unlock running", "unlock candidate"]


def test_a_denied_lock_is_refused_before_anything_is_edited(driver: NetconfDriver,
                                                           server: FakeServer) -> None:
    server.fail["lock candidate"] = LOCK_DENIED_REPLY
    with pytest.raises(ConfigRejected, match="lock denied"):
        driver.load_merge_candidate(CHANGE)
    assert not any(c.startswith("edit-config") for c in server.calls)


def test_a_bad_document_is_refused_without_connecting() -> None:
    target = DriverTarget("vnf1", "192.0.2.9", "admin", SecretStr(SECRET), 830)

    def no_network(_t: DriverTarget) -> Any:
        raise AssertionError("connected")

    d = NetconfDriver(target, connect=no_network)
    with pytest.raises(ConfigRejected):
        d.load_merge_candidate("<data/>")


def test_a_confirmed_commit_persists_and_releases_running_first(
        driver: NetconfDriver, server: FakeServer) -> None:
    driver.load_merge_candidate(CHANGE)
    server.calls.clear()
    driver.commit_config(revert_in_s=30)
    # yuma123 cannot revert a locked running datastore: running is unlocked first
    assert server.calls.index("unlock running") < server.calls.index(
        "commit confirmed 30 persist")
    assert "unlock candidate" not in server.calls
    assert driver.has_pending_commit()
    driver.confirm_commit()
    assert server.calls[-2:] == ["commit persist-id", "unlock candidate"]
    assert not driver.has_pending_commit()


def test_a_late_confirm_cancels_checks_and_raises(driver: NetconfDriver,
                                                  server: FakeServer) -> None:
    driver.load_merge_candidate(CHANGE)
    driver.commit_config(revert_in_s=30)
    pending = driver._pending
    assert pending is not None
    pending.deadline = time.monotonic() - 1  # as if 30 s went by
    with pytest.raises(CommitNotConfirmed):
        driver.confirm_commit()
    assert "cancel-commit" in server.calls
    assert "commit persist-id" not in server.calls
    assert server.running == [EMPTY]


def test_a_confirm_the_server_refuses_is_commit_not_confirmed(
        driver: NetconfDriver, server: FakeServer) -> None:
    driver.load_merge_candidate(CHANGE)
    driver.commit_config(revert_in_s=30)
    server.fail["commit persist-id"] = NOT_ACTIVE_REPLY
    server.running = server.saved or []  # the server's timer ran out first
    with pytest.raises(CommitNotConfirmed, match="refused the confirmation"):
        driver.confirm_commit()


def test_without_confirmed_commit_a_client_timer_reverts(server: FakeServer) -> None:
    server.capabilities = {CAP_CANDIDATE}
    target = DriverTarget("vnf1", "192.0.2.9", "admin", SecretStr(SECRET), 830)
    d = NetconfDriver(target, connect=server.connect)
    d.open()
    d.load_merge_candidate(CHANGE)
    assert "validate" not in server.calls  # no :validate capability
    d.commit_config(revert_in_s=1)
    assert "commit" in server.calls and d.has_pending_commit()
    pending = d._pending
    assert pending is not None and pending.timer is not None
    pending.timer.join(timeout=30)
    assert "copy-config candidate" in server.calls
    assert "contract0" not in "".join(server.running)
    with pytest.raises(CommitNotConfirmed):
        d.confirm_commit()


def test_commit_refuses_a_bad_timer_and_an_empty_candidate(driver: NetconfDriver) -> None:
    with pytest.raises(ConfigPushError, match="nothing is staged"):
        driver.commit_config()
    driver.load_merge_candidate(CHANGE)
    for bad in (0, -5, True, 10**9):
        with pytest.raises(ConfigPushError, match="revert_in_s"):
            driver.commit_config(revert_in_s=bad)


def test_restore_copies_into_the_candidate_commits_and_checks(
        driver: NetconfDriver, server: FakeServer) -> None:
    saved = driver.get_config()
    driver.load_merge_candidate(CHANGE)
    driver.commit_config()
    assert driver.get_config() != saved
    server.calls.clear()
    driver.restore(saved)
    assert "copy-config candidate" in server.calls and "commit" in server.calls
    assert driver.get_config() == saved


def test_close_leaves_a_waiting_commit_to_its_timer(driver: NetconfDriver,
                                                    server: FakeServer) -> None:
    driver.load_merge_candidate(CHANGE)
    driver.commit_config(revert_in_s=30)
    driver.close()
    assert "cancel-commit" not in server.calls
    assert server.saved is not None  # still waiting on the server


def test_staging_after_an_expired_commit_makes_sure_the_device_went_back(
        driver: NetconfDriver, server: FakeServer) -> None:
    driver.load_merge_candidate(CHANGE)
    driver.commit_config(revert_in_s=30)
    pending = driver._pending
    assert pending is not None
    pending.deadline = time.monotonic() - 1  # the timer ran out; the server may lag
    server.calls.clear()
    driver.load_merge_candidate(CHANGE)
    assert server.calls.index("cancel-commit") < server.calls.index(
        "edit-config candidate merge rollback-on-error")
    assert not any(c.startswith("commit") for c in server.calls)
