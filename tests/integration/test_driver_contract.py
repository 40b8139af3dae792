"""The contract every config driver keeps (adapters/base.py), run against real daemons.

One suite, parametrised over drivers: a driver joins by adding a :class:`DriverCase`
to ``CASES`` (how to make it, a harmless change and the diff it shows, a change the
device refuses and the device's words for it, how to read the running config out of
band, how to cut its session). Every test leaves the device's running config as it
found it, to the byte, read out of band (and puts it back if a test failed half-way).

Drivers:
  netconf               NetconfDriver on the core lab's vnf1 (yuma123 netconfd 2.13),
                        the server's confirmed commit with persist
  netconf-client-timer  the same driver with its client-side revert timer (what a server
                        without :confirmed-commit gets)
  cli                   CliDriver on the core lab's r1 (FRR 8.4 vtysh over SSH)

Waiting is bounded by deadlines, never asserted on: the tests check states. Out-of-band
reads of vnf1 are spaced 2 s apart: yuma123 only looks at its confirmed-commit timer
after a second without traffic, so polling faster would postpone the revert.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from lxml import etree
from pydantic import SecretStr

from adapters.base import ConfigDriver, DriverTarget
from adapters.netconf import IETF_INTERFACES, NC, NetconfDriver, interface_config
from lab.pytest_plugin import LabHandle
from topology.errors import (
    CommitNotConfirmed,
    ConfigRejected,
    PushConnectionError,
)

pytestmark = pytest.mark.lab

REVERT_S = 5
PATIENCE_S = 60.0  # an upper bound for waiting, never a timing claim
POLL_S = 2.0
WRONG_PASSWORD = "not-the-lab-password"


@dataclass(frozen=True)
class DriverCase:
    """What the contract tests need to know about one driver on one device."""

    name: str
    make: Callable[[str | None], ConfigDriver]
    """A new, unopened driver (with this password instead of the right one, if given)."""
    change: str
    """A harmless change, as the driver's config text."""
    change_diff: frozenset[str]
    """The ``+``/``-`` lines compare_config shows for ``change``, no more, no less."""
    change_marker: str
    """Text that is in the running config once ``change`` is committed, and not before."""
    refused: str
    """A change the device refuses."""
    refused_words: str
    """What the device says when it refuses (found in ``ConfigRejected.output``)."""
    read_running: Callable[[], str]
    """The device's running config read out of band (not through the driver)."""
    drop_session: Callable[[ConfigDriver], None]
    """Cut the driver's connection under it, as a network failure would."""
    secrets: tuple[str, ...]
    """Passwords that must never appear in an error."""


# -- NETCONF on vnf1 --------------------------------------------------------------------

def _netconf_target(lab: LabHandle, password: str | None) -> DriverTarget:
    creds = lab.credentials
    return DriverTarget("vnf1", lab.nodes["vnf1"].mgmt_ipv4, creds.ssh_user,
                        SecretStr(password or creds.ssh_password), 830, platform="netconf",
                        profile=lab.name, timeout_s=15.0)


def _netconf_running(lab: LabHandle) -> str:
    """vnf1's running datastore through a session of our own, canonical XML (C14N 2.0)."""
    from ncclient import manager

    creds = lab.credentials
    with manager.connect(host=lab.nodes["vnf1"].mgmt_ipv4, port=830,
                         username=creds.ssh_user, password=creds.ssh_password,
                         hostkey_verify=False, allow_agent=False, look_for_keys=False,
                         device_params={"name": "default"}, timeout=15) as session:
        reply = str(session.get_config(source="running").xml)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             remove_blank_text=True)
    data = etree.fromstring(reply.encode(), parser=parser).find(f"{{{NC}}}data")
    assert data is not None, reply
    return bytes(etree.tostring(data, method="c14n2", strip_text=True)).decode()


def _refused_interface() -> str:
    """The harmless change plus a leaf ietf-interfaces does not have (built with lxml)."""
    root = etree.fromstring(interface_config("contract0", description="contract-test")
                            .encode())
    interface = root.find(f"{{{IETF_INTERFACES}}}interfaces/{{{IETF_INTERFACES}}}interface")
    etree.SubElement(interface, f"{{{IETF_INTERFACES}}}no-such-leaf").text = "1"
    return str(etree.tostring(root, encoding="unicode"))


def _drop_netconf(driver: ConfigDriver) -> None:
    assert isinstance(driver, NetconfDriver)
    sock = driver._sock  # test only: cut the TCP connection under ncclient
    assert sock is not None
    sock.shutdown(socket.SHUT_RDWR)


def _netconf_case(lab: LabHandle, *, use_server_timer: bool) -> DriverCase:
    ns = ' xmlns="urn:ietf:params:xml:ns:yang:ietf-interfaces"'
    added = {f"+  <interfaces{ns}>", "+    <interface>", "+      <name>contract0</name>",
             "+      <description>contract-test</description>",
             '+      <type xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type">'
             "ianaift:ethernetCsmacd</type>",
             "+    </interface>", "+  </interfaces>"}
    return DriverCase(
        name="netconf" if use_server_timer else "netconf-client-timer",
        make=lambda password: NetconfDriver(_netconf_target(lab, password),
                                            use_server_timer=use_server_timer),
        change=interface_config("contract0", description="contract-test"),
        change_diff=frozenset(added),
        change_marker="<description>contract-test</description>",
        refused=_refused_interface(),
        refused_words="error-tag: unknown-element",
        read_running=lambda: _netconf_running(lab),
        drop_session=_drop_netconf,
        secrets=(lab.credentials.ssh_password, WRONG_PASSWORD))


# -- the SSH CLI on r1 ----------------------------------------------------------------

def _cli_case(lab: LabHandle) -> DriverCase:
    from adapters.cli import CliDriver, normalise_running

    def make(password: str | None) -> ConfigDriver:
        creds = lab.credentials
        return CliDriver(DriverTarget("r1", lab.nodes["r1"].mgmt_ipv4, creds.ssh_user,
                                      SecretStr(password or creds.ssh_password), 22,
                                      platform="frr", profile=lab.name, timeout_s=15.0))

    def read_running() -> str:
        out = lab.nodes["r1"].run("vtysh", "-c", "show running-config").stdout
        return normalise_running(out)

    def drop(driver: ConfigDriver) -> None:
        assert isinstance(driver, CliDriver)
        session = driver._session  # test only: cut the TCP connection under netmiko
        assert session is not None
        transport: Any = session.conn.remote_conn.get_transport()
        transport.sock.shutdown(socket.SHUT_RDWR)

    return DriverCase(
        name="cli", make=make,
        change="interface eth4\n description contract-test\n",
        change_diff=frozenset({"- description customer cust2 (awaiting activation)",
                               "+ description contract-test"}),
        change_marker=" description contract-test\n",
        refused="interface eth4\n no-such-command\n",
        refused_words="Unknown command",
        read_running=read_running, drop_session=drop,
        secrets=(lab.credentials.ssh_password, WRONG_PASSWORD))


def _cli_available() -> bool:
    try:
        from adapters.cli import CliDriver  # noqa: F401
    except ImportError:
        return False
    return True


CASES: dict[str, Callable[[LabHandle], DriverCase]] = {
    "netconf": lambda lab: _netconf_case(lab, use_server_timer=True),
    "netconf-client-timer": lambda lab: _netconf_case(lab, use_server_timer=False),
    # the SSH CLI driver (adapters/cli.py) on r1; skipped while that module is absent
    "cli": _cli_case,
}


# -- helpers and fixtures ----------------------------------------------------------------

def wait_until(condition: Callable[[], bool], *, patience_s: float = PATIENCE_S) -> bool:
    """Check ``condition`` every POLL_S until it holds or ``patience_s`` ran out."""
    deadline = time.monotonic() + patience_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_S)
    return True


def diff_lines(diff: str) -> set[str]:
    return {line.rstrip("\n") for line in diff.splitlines()
            if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))}


@pytest.fixture(params=list(CASES))
def driver_case(request: pytest.FixtureRequest, core_lab: LabHandle) -> Iterator[DriverCase]:
    """One driver's case; afterwards the device must be back to its running config from
    before the test (it is put back if not, so one failure does not spill over)."""
    if request.param == "cli" and not _cli_available():
        pytest.skip("adapters/cli.py (CliDriver) is not there yet")
    case = CASES[request.param](core_lab)
    before = case.read_running()
    saver = case.make(None)
    saver.open()
    try:
        saved = saver.get_config()
    finally:
        saver.close()
    yield case
    after = case.read_running()
    if after != before:
        time.sleep(REVERT_S + 1)  # let a revert timer a failed test left behind run out
        fixer = case.make(None)
        fixer.open()
        try:
            fixer.restore(saved)
        finally:
            fixer.close()
    assert after == before, f"the test left {case.name}'s device changed"


@pytest.fixture
def driver(driver_case: DriverCase) -> Iterator[ConfigDriver]:
    """An open driver of the case; closed after the test."""
    d = driver_case.make(None)
    d.open()
    try:
        yield d
    finally:
        d.close()


# -- the contract ------------------------------------------------------------------------

def test_satisfies_the_protocol(driver: ConfigDriver, driver_case: DriverCase) -> None:
    assert isinstance(driver, ConfigDriver)
    assert driver.kind in ("netconf", "cli")
    assert driver.get_config() == driver.get_config()  # stable text


def test_load_and_compare_show_exactly_the_change_and_discard_leaves_running(
        driver: ConfigDriver, driver_case: DriverCase) -> None:
    before = driver_case.read_running()
    driver.load_merge_candidate(driver_case.change)
    assert diff_lines(driver.compare_config()) == driver_case.change_diff
    assert driver_case.read_running() == before  # staging changed nothing
    driver.discard_config()
    assert driver.compare_config() == ""
    assert driver_case.read_running() == before
    assert not driver.has_pending_commit()


def test_commit_is_seen_and_rollback_restores_to_the_byte(
        driver: ConfigDriver, driver_case: DriverCase) -> None:
    before, saved = driver_case.read_running(), driver.get_config()
    assert driver_case.change_marker not in saved
    driver.load_merge_candidate(driver_case.change)
    driver.commit_config()
    assert not driver.has_pending_commit()
    assert driver_case.change_marker in driver.get_config()
    assert driver_case.read_running() != before
    driver.rollback()
    assert driver_case.read_running() == before
    assert driver.get_config() == saved


def test_a_refused_change_raises_with_the_device_words_and_running_is_unchanged(
        driver: ConfigDriver, driver_case: DriverCase) -> None:
    before = driver_case.read_running()
    with pytest.raises(ConfigRejected) as info:
        driver.load_merge_candidate(driver_case.refused)  # NETCONF refuses here
        driver.commit_config()  # the CLI, which has no candidate, here
    err = info.value
    assert driver_case.refused_words in err.output
    assert err.device == driver.target.device
    for secret in driver_case.secrets:
        assert secret not in str(err) + err.output
    assert driver_case.read_running() == before
    assert not driver.has_pending_commit()


def test_an_unconfirmed_commit_reverts_and_a_late_confirm_is_refused(
        driver: ConfigDriver, driver_case: DriverCase) -> None:
    before = driver_case.read_running()
    driver.load_merge_candidate(driver_case.change)
    driver.commit_config(revert_in_s=REVERT_S)
    assert driver.has_pending_commit()
    assert driver_case.change_marker in driver_case.read_running()
    assert wait_until(lambda: driver_case.read_running() == before), \
        f"running config not back {PATIENCE_S:.0f} s after a {REVERT_S} s revert timer"
    with pytest.raises(CommitNotConfirmed):
        driver.confirm_commit()
    assert not driver.has_pending_commit()
    assert driver_case.read_running() == before


def test_a_commit_confirmed_in_time_stays_after_the_timeout(
        driver: ConfigDriver, driver_case: DriverCase) -> None:
    before = driver_case.read_running()
    driver.load_merge_candidate(driver_case.change)
    driver.commit_config(revert_in_s=REVERT_S)
    driver.confirm_commit()
    assert not driver.has_pending_commit()
    time.sleep(REVERT_S + 3)  # past the timer, idle (a pending yuma123 timer would fire)
    assert driver_case.change_marker in driver_case.read_running()
    driver.rollback()
    assert driver_case.read_running() == before


def test_a_wrong_password_is_a_connection_error_without_the_password(
        driver_case: DriverCase) -> None:
    driver = driver_case.make(WRONG_PASSWORD)
    with pytest.raises(PushConnectionError) as info:
        driver.open()
    driver.close()
    err = info.value
    assert err.device == driver.target.device
    for secret in driver_case.secrets:
        assert secret not in str(err) and secret not in repr(err)


def test_a_session_lost_before_the_confirm_reverts(
        driver: ConfigDriver, driver_case: DriverCase) -> None:
    before = driver_case.read_running()
    driver.load_merge_candidate(driver_case.change)
    driver.commit_config(revert_in_s=REVERT_S)
    assert driver_case.change_marker in driver_case.read_running()
    driver_case.drop_session(driver)
    assert wait_until(lambda: driver_case.read_running() == before), \
        f"running config not back {PATIENCE_S:.0f} s after the session was cut"
    driver.close()  # never raises, even on a dead session


# -- NETCONF details the protocol-neutral cases above cannot show ----------------------------

def test_netconf_refuses_a_document_that_is_not_a_config_before_sending(
        core_lab: LabHandle) -> None:
    driver = NetconfDriver(_netconf_target(core_lab, None))
    for text in ("<data/>", "not xml", '<!DOCTYPE x [<!ENTITY e "boom">]>'
                 f'<config xmlns="{NC}">&e;</config>'):
        with pytest.raises(ConfigRejected):
            driver.load_merge_candidate(text)
    assert driver._manager is None  # refused before any connection was made


def test_netconf_restore_takes_back_a_get_config_text_in_a_new_session(
        core_lab: LabHandle) -> None:
    reader = NetconfDriver(_netconf_target(core_lab, None))
    saved = reader.get_config()  # opens on first use
    reader.load_merge_candidate(interface_config("contract0", description="contract-test"))
    reader.commit_config()
    reader.close()
    assert "contract-test" in _netconf_running(core_lab)
    fixer = NetconfDriver(_netconf_target(core_lab, None))
    try:
        fixer.restore(saved)
        assert fixer.get_config() == saved
    finally:
        fixer.close()
    assert "contract-test" not in _netconf_running(core_lab)
