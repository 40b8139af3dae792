"""The SSH CLI config driver without a network: candidate checks (injection attempts),
failure markers on replies recorded from the lab's FRR 8.4 (tests/golden/frr_config/,
re-record with tests/golden/record_frr_config.py), the restore's diff, the predicted
merge, and the session's context tracking on recorded exchanges."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.base import ConfigDriver, DriverTarget
from adapters.cli import (
    CliDriver,
    _Context,
    _OutOfStep,
    _Refused,
    _translate,
    _Vtysh,
    config_changes,
    config_platform,
    find_config_failure,
    inverse_forms,
    merge_predicted,
    normalise_running,
    parse_candidate,
    parse_running,
)
from topology.errors import ConfigError, ConfigPushError, PushConnectionError

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "frr_config"
PASSWORD = "not-the-real-one"
ETH4_CHANGE = ("interface eth4\n description cust2 internet access (order T-1)\n"
               " ip address 100.64.12.1/24\nexit\n")
SERVICE = ETH4_CHANGE + "ip route 203.0.113.0/24 100.64.12.2\n"


def golden(name: str) -> str:
    return (GOLDEN / name).read_text(encoding="utf-8")


def running() -> str:
    return normalise_running(golden("show_running.txt"))


def target(platform: str = "frr") -> DriverTarget:
    # a documentation address: nothing here ever connects
    return DriverTarget("r1", "192.0.2.1", "admin", SecretStr(PASSWORD), 22, platform)


# -- candidate lines ------------------------------------------------------------------

def test_a_service_block_parses_into_contexts() -> None:
    lines = parse_candidate(SERVICE)
    assert [line.text for line in lines] == ["interface eth4",
                                             "ip route 203.0.113.0/24 100.64.12.2"]
    assert [c.text for c in lines[0].children] == [
        "description cust2 internet access (order T-1)", "ip address 100.64.12.1/24"]
    assert lines[0].closer == "exit"
    assert lines[1].children == []


def test_comments_blank_lines_and_crlf_are_accepted() -> None:
    lines = parse_candidate("! a comment\r\n# another\r\n\r\ninterface eth4\r\n"
                            " description x\r\n")
    assert [line.text for line in lines] == ["interface eth4"]
    assert [c.text for c in lines[0].children] == ["description x"]


def test_a_semicolon_is_not_a_separator_the_line_stays_one_command() -> None:
    # vtysh has no command separator: "eth1; reload" is one (bad) interface name that the
    # device refuses; services.py refuses it earlier as "not an interface name"
    [line] = parse_candidate("interface eth1; reload\n description x\n")
    assert line.text == "interface eth1; reload"


@pytest.mark.parametrize(("config", "reason"), [
    ("interface eth4\n description x\nend\nreload\n", "line 3: 'end' is refused"),
    ("interface eth4\n description x\nend\nreload\n", "line 4: 'reload' is refused"),
    ("do show running-config\n", "'do' is refused"),
    ("write memory\n", "'write' is refused"),
    ("quit\n", "'quit' is refused"),
    ("hostname evil\n", "'hostname' is refused"),
    ("configure terminal\n", "'configure' is refused"),
    ("exit\n", "'exit' closes no block"),
    ("ip route 203.0.113.0/24 100.64.12.2\nexit\nclear ip ospf process\n",
     "line 2: 'exit' closes no block"),
    ("ip route 203.0.113.0/24 100.64.12.2\nexit\nclear ip ospf process\n",
     "line 3: 'clear' is refused"),
    ("interface eth4\nexit\n", "'exit' closes no block"),
    ("interface eth4\n description x\nexit\n description y\n",
     "line 4: indented but under no open block"),
    ("interface eth4\n exit-address-family\n", "'exit-address-family' closes no block"),
    (" description x\n", "line 1: indented but under no open block"),
    ("interface eth4\n description x\x1b[2K\n", "contains '\\x1b'"),
    ("interface eth4\n description x\x00\n", "contains '\\x00'"),
    ("interface eth4\n\tdescription x\n", "contains '\\t'"),
    ("interface eth4\n description x\rend\n", "contains '\\r'"),
    ("interface eth4\n description x\x7f\n", "contains '\\x7f'"),
    ("interface eth4\n description caf\u00e9\n", "contains '\u00e9'"),
    ("interface eth4\n description why?\n", "'?' (vtysh's help key)"),
    ("interface eth4\n description " + "x" * 400 + "\n", "longer than 400 characters"),
])
def test_refused_candidates(config: str, reason: str) -> None:
    with pytest.raises(ValueError, match="line") as info:
        parse_candidate(config)
    assert reason in str(info.value)


def test_the_driver_refuses_a_candidate_before_connecting_and_lists_every_line() -> None:
    driver = CliDriver(target())
    with pytest.raises(ConfigPushError) as info:
        driver.load_merge_candidate("interface eth4\n description x\nend\nreload\n")
    assert info.value.operation == "load candidate"
    assert info.value.device == "r1"
    assert "line 3" in str(info.value) and "line 4" in str(info.value)
    assert PASSWORD not in str(info.value)
    assert driver.compare_config() == ""  # nothing was staged


def test_the_driver_satisfies_the_contract_and_needs_push_data() -> None:
    assert isinstance(CliDriver(target()), ConfigDriver)
    assert CliDriver.kind == "cli"
    with pytest.raises(ConfigError, match="no CLI config data"):
        config_platform("cisco_ios")  # the collectors know IOS; pushing to it is not built
    with pytest.raises(ConfigPushError, match="cisco_ios"):
        CliDriver(target("cisco_ios"))


# -- failure markers on recorded replies -------------------------------------------------

def reply_of(exchange: str) -> str:
    """The device's reply in a recorded exchange: without the echo and the prompt."""
    lines = exchange.rstrip("\n").split("\n")
    return "\n".join(lines[1:-1])


@pytest.mark.parametrize(("name", "marker"), [
    ("unknown_command", "% Unknown command: ip adress 192.0.2.1/24"),
    ("cant_find_address", "% Can't find address"),
    ("configuration_failed", "% Configuration failed."),
    ("refusing_route", "% Refusing to remove a non-existent route"),
    ("incomplete", "% Command incomplete: ip address"),
    ("network_exists", "There is already same network statement"),
])
def test_refusals_recorded_from_frr_are_found(name: str, marker: str) -> None:
    assert find_config_failure(reply_of(golden(f"replies/{name}.txt"))) == marker


@pytest.mark.parametrize("name", ["accepted", "accepted_with_note"])
def test_accepted_lines_are_not_failures(name: str) -> None:
    assert find_config_failure(reply_of(golden(f"replies/{name}.txt"))) is None


# -- running configs ------------------------------------------------------------------

def test_normalised_running_drops_the_volatile_lines_and_is_stable() -> None:
    raw = golden("show_running.txt")
    assert raw.startswith("Building configuration...")
    text = normalise_running(raw)
    assert text.startswith("!\nfrr version 8.4")
    assert text.endswith("\nend\n")
    assert "Current configuration" not in text
    assert normalise_running(text) == text


@pytest.mark.parametrize("name", ["show_running.txt", "running_eth4.txt", "running_messy.txt"])
def test_parsing_a_running_config_gives_the_text_back(name: str) -> None:
    text = normalise_running(golden(name))
    assert "\n".join(parse_running(text).render()) + "\n" == text


def test_the_restore_diff_of_a_pushed_service() -> None:
    missing, extra = config_changes(normalise_running(golden("running_eth4.txt")), running())
    assert missing == [("interface eth4", "description customer cust2 (awaiting activation)")]
    assert extra == [("interface eth4", "description cust2 internet access (order T-1)"),
                     ("interface eth4", "ip address 100.64.12.1/24")]


def test_the_restore_diff_removes_a_whole_block_by_its_header() -> None:
    missing, extra = config_changes(golden("running_messy.txt"), running())
    assert missing == [("interface eth4", "description customer cust2 (awaiting activation)"),
                       ("router ospf", "ospf router-id 10.255.0.1")]
    assert extra == [("ip route 203.0.113.0/24 100.64.12.2",),
                     ("interface eth4", "ip address 192.0.2.5/24"),
                     ("interface eth5",),  # its description goes with it
                     ("router ospf", "ospf router-id 10.255.0.99")]


def test_fixed_lines_are_never_part_of_a_restore() -> None:
    other = running().replace("hostname r1", "hostname r9").replace("8.4", "9.1")
    assert config_changes(running(), other) == ([], [])
    assert config_changes(running(), running()) == ([], [])


def test_inverse_forms_shorten_until_frr_takes_one() -> None:
    assert inverse_forms("description cust2 order") == [
        "no description cust2 order", "no description cust2", "no description"]
    assert inverse_forms("no ipv6 forwarding") == ["ipv6 forwarding"]


# -- the predicted diff ------------------------------------------------------------------

def test_the_prediction_of_an_interface_change_is_what_frr_did() -> None:
    predicted = merge_predicted(running(), parse_candidate(ETH4_CHANGE))
    assert predicted == normalise_running(golden("running_eth4.txt"))


def test_a_candidate_already_in_the_running_config_predicts_no_change() -> None:
    after = normalise_running(golden("running_eth4.txt"))
    assert merge_predicted(after, parse_candidate(ETH4_CHANGE)) == after


def test_no_lines_remove_what_they_name_in_the_prediction() -> None:
    predicted = merge_predicted(running(), parse_candidate("interface eth4\n no description\n"))
    assert "description customer cust2" not in predicted
    assert predicted.count("\n") == running().count("\n") - 1


def test_a_new_static_route_and_block_are_predicted_as_additions() -> None:
    predicted = merge_predicted(running(), parse_candidate(
        SERVICE + "interface eth5\n description ghost\nexit\n"))
    assert "\nip route 203.0.113.0/24 100.64.12.2\n" in predicted
    assert "\ninterface eth5\n description ghost\nexit\n!\ninterface lo\n" in predicted


# -- the session on recorded exchanges ---------------------------------------------------

class ScriptedConn:
    """Stands in for a netmiko connection: replays recorded exchanges, keeps what is sent."""

    base_prompt = "r1"

    def __init__(self, replies: Sequence[str]) -> None:
        self.replies = list(replies)
        self.sent: list[str] = []

    def write_channel(self, data: str) -> None:
        self.sent.append(data)

    def read_until_pattern(self, pattern: str, re_flags: int, read_timeout: float) -> str:
        return self.replies.pop(0)


def session(*replies: str) -> tuple[_Vtysh, ScriptedConn]:
    conn = ScriptedConn(replies)
    vtysh = _Vtysh(conn, config_platform("frr"), 5.0)
    vtysh.mode = "config"
    return vtysh, conn


def test_contexts_are_entered_and_left_by_the_prompt() -> None:
    vtysh, conn = session("interface eth4\nr1(config-if)# ",
                          "description x\nr1(config-if)# ",
                          "exit\nr1(config)# ",
                          "ip route 203.0.113.0/24 100.64.12.2\nr1(config)# ")
    vtysh.goto(("interface eth4",))
    vtysh.leaf("description x")
    vtysh.goto(())
    vtysh.leaf("ip route 203.0.113.0/24 100.64.12.2")
    assert conn.sent == ["interface eth4\n", "description x\n", "exit\n",
                         "ip route 203.0.113.0/24 100.64.12.2\n"]
    assert vtysh.stack == [] and vtysh.mode == "config"


def test_a_refused_line_stops_with_the_devices_words() -> None:
    vtysh, _ = session("interface eth4\nr1(config-if)# ",
                       golden("replies/unknown_command.txt").rstrip("\n") + " ")
    vtysh.goto(("interface eth4",))
    with pytest.raises(_Refused) as info:
        vtysh.leaf("ip adress 192.0.2.1/24")
    assert info.value.why == "% Unknown command: ip adress 192.0.2.1/24"
    assert "% Unknown command" in info.value.exchange


def test_a_line_vtysh_runs_in_a_parent_context_is_refused() -> None:
    # measured: vtysh tries the parent contexts for a line unknown in the current one
    vtysh, _ = session("interface eth4\nr1(config-if)# ",
                       "ip route 203.0.113.0/24 100.64.12.2\nr1(config)# ")
    vtysh.goto(("interface eth4",))
    with pytest.raises(_Refused, match="not a command of 'interface eth4'"):
        vtysh.leaf("ip route 203.0.113.0/24 100.64.12.2")


def test_a_header_that_opens_nothing_is_refused() -> None:
    vtysh, _ = session("ip route 203.0.113.0/24 100.64.12.2\nr1(config)# ")
    with pytest.raises(_Refused, match="opened no context"):
        vtysh.goto(("ip route 203.0.113.0/24 100.64.12.2",))


def test_exit_is_never_sent_at_the_top_level() -> None:
    vtysh, conn = session()
    vtysh.stack = [_Context("interface eth4", "config-if")]  # out of step: prompt says config
    with pytest.raises(_OutOfStep):
        vtysh.goto(())
    assert conn.sent == []


def test_leaving_configuration_mode_is_out_of_step() -> None:
    vtysh, _ = session("something\nr1# ")
    with pytest.raises(_OutOfStep, match="left configuration mode"):
        vtysh.leaf("something")


# -- errors -----------------------------------------------------------------------------

def test_login_errors_are_translated_once_without_the_password() -> None:
    from netmiko.exceptions import NetmikoAuthenticationException, NetmikoTimeoutException

    auth = _translate(NetmikoAuthenticationException(f"bad password {PASSWORD}"),
                      device="r1", host="192.0.2.1", operation="login", secret=PASSWORD)
    assert isinstance(auth, PushConnectionError)
    assert "SSH login refused" in str(auth) and PASSWORD not in str(auth)
    assert (auth.device, auth.operation) == ("r1", "login")
    timeout = _translate(NetmikoTimeoutException(f"timed out {PASSWORD}"), device="r1",
                         host="192.0.2.1", operation="connect", secret=PASSWORD)
    assert "no answer in time" in str(timeout) and PASSWORD not in str(timeout)
    refused = _translate(ConnectionRefusedError(111, "Connection refused"), device="r1",
                         host="192.0.2.1", operation="connect", secret=PASSWORD)
    assert "SSH port closed" in str(refused)
