"""The CLI parsers on outputs recorded from the lab's FRR (tests/golden/frr/, re-record
with tests/golden/record.py), the platform table, and the error translation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import textfsm  # type: ignore[import-untyped]
from netmiko.exceptions import (
    NetmikoAuthenticationException,
    NetmikoTimeoutException,
    ReadTimeout,
)

from collectors.cli import (
    CliInterface,
    _translate,
    cli_platforms,
    find_failure_marker,
    parse_show_interface_brief,
    parse_show_interface_description,
    parse_show_version,
)
from topology.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectionRefused,
    DeviceTimeout,
    ProtocolError,
    StatusCode,
)

GOLDEN = Path(__file__).parent.parent / "golden" / "frr"
R1_CONF = Path(__file__).parents[2] / "lab" / "topologies" / "core" / "r1.conf"


def golden(name: str) -> str:
    return (GOLDEN / name).read_text(encoding="utf-8")


def r1_config_descriptions() -> dict[str, str]:
    """Interface -> description, as core's r1.conf configures them."""
    found, current = {}, None
    for line in R1_CONF.read_text().splitlines():
        if m := re.match(r"interface (\S+)", line):
            current = m.group(1)
        elif (m := re.match(r"\s+description (.+)", line)) and current:
            found[current] = m.group(1).strip()
    return found


def r1_config_addresses() -> dict[str, tuple[str, ...]]:
    """Interface -> addresses, as core's r1.conf configures them."""
    addresses: dict[str, list[str]] = {}
    current = None
    for line in R1_CONF.read_text().splitlines():
        if m := re.match(r"interface (\S+)", line):
            current = m.group(1)
            addresses[current] = []
        elif (m := re.match(r"\s+ip address (\S+)", line)) and current:
            addresses[current].append(m.group(1))
        elif line.startswith("!"):
            current = None
    return {k: tuple(v) for k, v in addresses.items()}


# -- show version ------------------------------------------------------------------

def test_show_version_golden() -> None:
    version = parse_show_version(golden("show_version.txt"), "frr")
    assert version.hostname == "r1"
    assert version.os_name == "FRRouting"
    assert version.os_version == "8.4.4"
    assert version.uptime is None  # FRR's show version does not carry one


def test_show_version_refuses_output_it_cannot_read() -> None:
    with pytest.raises(ValueError, match="show version"):
        parse_show_version(golden("unknown_command.txt"), "frr")


# -- show interface brief ------------------------------------------------------------

def test_show_interface_brief_golden() -> None:
    interfaces = {i.name: i for i in parse_show_interface_brief(
        golden("show_interface_brief.txt"), "frr")}
    assert list(interfaces) == ["eth1", "eth2", "eth3", "eth4", "lo", "mgmt0"]
    assert interfaces["eth1"] == CliInterface("eth1", "up", "default", ("10.0.12.1/30",))
    assert interfaces["eth2"].addresses == ("10.0.13.1/30",)
    assert interfaces["eth3"].addresses == ("100.64.11.1/24",)
    assert interfaces["eth4"].addresses == ()  # cust2's port, awaiting activation
    assert interfaces["lo"].addresses == ("10.255.0.1/32",)
    (mgmt,) = interfaces["mgmt0"].addresses
    assert re.fullmatch(r"\d+\.\d+\.\d+\.11/24", mgmt)  # r1's mgmt host part, any subnet
    assert all(i.status == "up" and i.vrf == "default" for i in interfaces.values())


def test_show_interface_brief_matches_r1_config() -> None:
    parsed = {i.name: i.addresses for i in parse_show_interface_brief(
        golden("show_interface_brief.txt"), "frr")}
    for name, addresses in r1_config_addresses().items():
        assert parsed[name] == addresses, name


def test_show_interface_brief_with_secondary_addresses() -> None:
    interfaces = {i.name: i for i in parse_show_interface_brief(
        golden("show_interface_brief_secondary.txt"), "frr")}
    assert interfaces["eth4"].addresses == ("192.0.2.1/24", "203.0.113.1/24")
    assert interfaces["lo"].addresses == ("10.255.0.1/32",)
    assert len(interfaces) == 6


def test_show_interface_brief_of_nothing_is_empty() -> None:
    assert parse_show_interface_brief("", "frr") == ()


# -- show interface description ---------------------------------------------------------

def test_show_interface_description_golden() -> None:
    descriptions = parse_show_interface_description(
        golden("show_interface_description.txt"), "frr")
    assert descriptions == {
        "eth1": "to r2 eth1", "eth2": "to r3 eth2", "eth3": "customer cust1",
        "eth4": "customer cust2 (awaiting activation)"}  # lo and mgmt0 have none
    assert descriptions == r1_config_descriptions()


# -- failure markers -------------------------------------------------------------------

def test_failure_marker_found_in_recorded_unknown_command() -> None:
    assert find_failure_marker(golden("unknown_command.txt"), "frr") == "% Unknown command"


@pytest.mark.parametrize("name", ["show_version.txt", "show_interface_brief.txt",
                                  "show_interface_description.txt"])
def test_no_failure_marker_in_good_output(name: str) -> None:
    assert find_failure_marker(golden(name), "frr") is None


# -- the platform table ------------------------------------------------------------------

def test_platform_table_templates_exist_and_have_the_mapped_columns() -> None:
    platforms = cli_platforms()
    assert "frr" in platforms
    assert platforms["frr"].device_type == "cisco_ios"
    for platform in platforms.values():
        for fact, spec in platform.facts.items():
            path = platform.template_path(fact)
            assert path.is_file(), (platform.name, fact, path)
            with path.open() as template:
                header = set(textfsm.TextFSM(template).header)
            missing = set(spec.fields.values()) - header
            assert not missing, (platform.name, fact, missing)


def test_frr_uses_the_suites_own_templates() -> None:
    frr = cli_platforms()["frr"]
    assert frr.ntc_platform is None
    assert frr.template_path("version").name == "frr_show_version.textfsm"
    assert frr.template_path("interfaces").name == "frr_show_interface_brief.textfsm"
    assert frr.template_path("descriptions").name == "frr_show_interface_description.textfsm"


def test_ios_resolves_through_ntc_templates() -> None:
    ios = cli_platforms()["cisco_ios"]
    assert ios.template_path("version").name == "cisco_ios_show_version.textfsm"
    assert ios.template_path("interfaces").name == "cisco_ios_show_ip_interface_brief.textfsm"


def test_unknown_platform_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown CLI platform 'junos'.*frr"):
        parse_show_version("anything", "junos")


# -- error translation -------------------------------------------------------------------

def raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException:
            raise outer  # noqa: B904 - the implicit context is what netmiko leaves
    except BaseException as exc:
        return exc


def translate(exc: BaseException, operation: str = "login") -> Exception:
    return _translate(exc, host="192.0.2.7", operation=operation, profile="core",
                      secret="s3cret-pw")


def test_auth_failure_names_host_and_profile_not_the_password() -> None:
    err = translate(NetmikoAuthenticationException("Authentication to device failed. s3cret-pw"))
    assert isinstance(err, AuthenticationFailed)
    assert err.status is StatusCode.AUTH_FAILED
    assert (err.device, err.operation, err.profile) == ("192.0.2.7", "login", "core")
    assert "192.0.2.7" in str(err) and "core" in str(err)
    assert "s3cret-pw" not in str(err) and "s3cret-pw" not in repr(err)


def test_refused_inside_a_netmiko_timeout_is_refused() -> None:
    exc = raised_from(NetmikoTimeoutException("TCP connection to device failed."),
                      ConnectionRefusedError(111, "Connection refused"))
    assert isinstance(translate(exc, "connect"), ConnectionRefused)


@pytest.mark.parametrize("exc", [NetmikoTimeoutException("x"), ReadTimeout("pattern not found"),
                                 TimeoutError("timed out"), TimeoutError()])
def test_timeouts(exc: BaseException) -> None:
    assert isinstance(translate(exc, "show version"), DeviceTimeout)


def test_anything_else_is_a_protocol_error_without_the_secret() -> None:
    err = translate(EOFError("peer said s3cret-pw"))
    assert isinstance(err, ProtocolError)
    assert "s3cret-pw" not in str(err)
