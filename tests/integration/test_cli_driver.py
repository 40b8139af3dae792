"""The SSH CLI config driver on the core lab's r1 (FRR 8.4, vtysh over SSH): what is
particular to the CLI. The verbs every driver shares are in test_driver_contract.py.

Every test leaves r1's running config as it found it, to the byte, read both through
the driver and out of band (vtysh inside the node)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr

from adapters.base import DriverTarget
from adapters.cli import CliDriver, normalise_running
from lab.pytest_plugin import LabHandle
from topology.errors import (
    CommitNotConfirmed,
    ConfigRejected,
    PushConnectionError,
)

pytestmark = pytest.mark.lab

ETH4 = ("interface eth4\n description cust2 internet access (order T-9)\n"
        " ip address 100.64.12.1/24\nexit\n")
ROUTE = "ip route 203.0.113.0/24 100.64.12.2\n"
PATIENCE_S = 60.0  # an upper bound for waiting, never a timing claim


def target(lab: LabHandle, password: str | None = None) -> DriverTarget:
    creds = lab.credentials
    return DriverTarget("r1", lab.nodes["r1"].mgmt_ipv4, creds.ssh_user,
                        SecretStr(password or creds.ssh_password), 22)


def out_of_band(lab: LabHandle) -> str:
    """r1's running config read inside the node, not through the driver."""
    return normalise_running(lab.nodes["r1"].run("vtysh", "-c", "show running-config").stdout)


def wait_for(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + PATIENCE_S
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.fixture
def r1(core_lab: LabHandle) -> Iterator[tuple[CliDriver, str]]:
    """An open driver on r1 and r1's running config before the test; afterwards r1 must
    be back to it (and is put back, so one failure does not spill into other tests)."""
    driver = CliDriver(target(core_lab))
    driver.open()
    before = driver.get_config()
    assert before == out_of_band(core_lab)
    try:
        yield driver, before
    finally:
        driver.close()
        after = out_of_band(core_lab)
        if after != before:
            fixer = CliDriver(target(core_lab))
            fixer.open()
            try:
                fixer.restore(before)
            finally:
                fixer.close()
        assert after == before, "the test left r1 changed"


def test_reads_are_equal_to_the_byte_and_match_vtysh(r1: tuple[CliDriver, str],
                                                     core_lab: LabHandle) -> None:
    driver, before = r1
    assert driver.get_config() == before
    assert before.startswith("!\nfrr version 8.4")
    assert "Building configuration" not in before
    assert before == out_of_band(core_lab)


def test_interface_push_is_seen_and_rolled_back_to_the_byte(r1: tuple[CliDriver, str],
                                                            core_lab: LabHandle) -> None:
    driver, before = r1
    driver.load_merge_candidate(ETH4)
    predicted = driver.compare_config()
    assert "candidate (predicted)" in predicted
    assert "+ ip address 100.64.12.1/24" in predicted
    assert "+ description cust2 internet access (order T-9)" in predicted
    assert driver.get_config() == before  # comparing touched nothing

    driver.commit_config()
    now = out_of_band(core_lab)
    assert " description cust2 internet access (order T-9)\n ip address 100.64.12.1/24\n" in now
    changed = {line for line in driver.last_commit_diff.splitlines()
               if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))}
    assert changed == {"- description customer cust2 (awaiting activation)",
                       "+ description cust2 internet access (order T-9)",
                       "+ ip address 100.64.12.1/24"}
    assert driver.get_config() == now

    driver.load_merge_candidate(ETH4)  # already there: nothing to do
    assert driver.compare_config() == ""
    driver.discard_config()

    driver.rollback()
    assert driver.get_config() == before
    assert out_of_band(core_lab) == before


def test_a_refused_line_mid_set_undoes_the_lines_before_it(r1: tuple[CliDriver, str],
                                                          core_lab: LabHandle) -> None:
    driver, before = r1
    driver.load_merge_candidate("interface eth4\n description half done\n"
                                " ip address 100.64.12.1/24\n ip adress 100.64.12.9/24\n"
                                " ip address 100.64.12.5/24\nexit\n" + ROUTE)
    with pytest.raises(ConfigRejected) as info:
        driver.commit_config()
    err = info.value
    assert "% Unknown command: ip adress 100.64.12.9/24" in err.output
    assert (err.device, err.operation) == ("r1", "commit")
    assert core_lab.credentials.ssh_password not in str(err) + err.output
    assert out_of_band(core_lab) == before
    assert driver.get_config() == before
    assert not driver.has_pending_commit()


def test_a_line_vtysh_would_run_in_another_context_is_rejected(
        r1: tuple[CliDriver, str], core_lab: LabHandle) -> None:
    driver, before = r1
    # measured: vtysh runs a line unknown in `interface` at the top level instead
    driver.load_merge_candidate("interface eth4\n description misplaced\n " + ROUTE)
    with pytest.raises(ConfigRejected, match="not a command of 'interface eth4'"):
        driver.commit_config()
    assert out_of_band(core_lab) == before


def test_a_line_refused_without_a_percent_is_rejected(r1: tuple[CliDriver, str],
                                                      core_lab: LabHandle) -> None:
    driver, before = r1
    driver.load_merge_candidate(ROUTE + "router ospf\n network 10.0.12.0/30 area 1\n")
    with pytest.raises(ConfigRejected) as info:
        driver.commit_config()
    assert "There is already same network statement" in info.value.output
    assert out_of_band(core_lab) == before


def test_revert_timer_without_confirm_restores(r1: tuple[CliDriver, str],
                                               core_lab: LabHandle) -> None:
    driver, before = r1
    driver.load_merge_candidate(ETH4)
    driver.commit_config(revert_in_s=2)
    assert driver.has_pending_commit()
    assert "100.64.12.1/24" in out_of_band(core_lab)
    assert wait_for(lambda: not driver.has_pending_commit())
    assert out_of_band(core_lab) == before
    with pytest.raises(CommitNotConfirmed):
        driver.confirm_commit()


def test_confirmed_commit_stays_until_rolled_back(r1: tuple[CliDriver, str],
                                                  core_lab: LabHandle) -> None:
    driver, before = r1
    driver.load_merge_candidate(ETH4)
    driver.commit_config(revert_in_s=120)
    driver.confirm_commit()
    assert not driver.has_pending_commit()
    assert "100.64.12.1/24" in out_of_band(core_lab)
    driver.rollback()
    assert out_of_band(core_lab) == before


def test_static_route_reaches_the_kernel_and_rolls_back(r1: tuple[CliDriver, str],
                                                        core_lab: LabHandle) -> None:
    driver, before = r1
    node = core_lab.nodes["r1"]

    def kernel_route() -> str:
        return node.run("ip", "-4", "route", "show", "203.0.113.0/24").stdout.strip()

    driver.load_merge_candidate(ETH4 + ROUTE)
    driver.commit_config()
    assert "\nip route 203.0.113.0/24 100.64.12.2\n" in out_of_band(core_lab)
    assert "+ip route 203.0.113.0/24 100.64.12.2" in driver.last_commit_diff
    assert wait_for(lambda: "via 100.64.12.2 dev eth4" in kernel_route()), kernel_route()
    driver.rollback()
    assert out_of_band(core_lab) == before
    assert wait_for(lambda: kernel_route() == ""), kernel_route()


def test_restore_from_another_session_to_the_byte(r1: tuple[CliDriver, str],
                                                  core_lab: LabHandle) -> None:
    driver, before = r1
    driver.load_merge_candidate(ETH4 + ROUTE + "interface eth5\n description ghost\nexit\n")
    driver.commit_config()
    driver.close()  # confirmed (no timer): the change stays after the session
    assert "interface eth5" in out_of_band(core_lab)
    later = CliDriver(target(core_lab))
    later.open()
    try:
        later.restore(before)  # a rollback by change id: the backup text, a new session
        assert later.get_config() == before
    finally:
        later.close()
    assert out_of_band(core_lab) == before


def test_wrong_password_is_a_push_connection_error(core_lab: LabHandle) -> None:
    wrong = "not-the-lab-password"
    driver = CliDriver(target(core_lab, wrong))
    with pytest.raises(PushConnectionError, match="SSH login refused") as info:
        driver.open()
    assert (info.value.device, info.value.operation) == ("r1", "login")
    for secret in (wrong, core_lab.credentials.ssh_password):
        assert secret not in str(info.value)
