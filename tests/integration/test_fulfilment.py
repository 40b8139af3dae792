"""Activations against the core lab: internet-access for cust2 on r1:eth4 proved with real
packets from cust2 to the server, idempotent, rolled back to the byte; a two-device
activation whose second device fails leaves the first exactly as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from agents.fulfilment import FulfilmentAgent, ServiceRequest
from lab.pytest_plugin import LabHandle
from lab.reach import LabReachProbe
from topology.db import get_engine

pytestmark = pytest.mark.lab
SERVER = "198.51.100.10"
CUST2 = {"interface": "eth4", "address": "100.64.12.1/24",
         "description": "cust2 internet access (order T-1)"}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "northbound.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False, env=os.environ.copy())


@pytest.fixture(scope="module")
def discovered(core_lab: LabHandle) -> LabHandle:
    res = cli("discover", "--lab", core_lab.name, "--json")
    assert res.returncode == 0, res.stderr
    return core_lab


def running(lab: LabHandle, node: str) -> str:
    """The router's running config, read out-of-band (vtysh inside the node)."""
    return lab.nodes[node].run("vtysh", "-c", "show running-config").stdout


def volatile_free(text: str) -> str:
    return "\n".join(line for line in text.splitlines()
                     if not line.startswith(("Building configuration", "Current configuration")))


@pytest.fixture
def agent(discovered: LabHandle) -> Iterator[FulfilmentAgent]:
    yield FulfilmentAgent(get_engine(), probe=LabReachProbe(discovered.name))


def test_internet_access_works_on_the_network_and_rolls_back(
        discovered: LabHandle, agent: FulfilmentAgent) -> None:
    lab = discovered
    quick = LabReachProbe(lab.name, patience_s=3)
    before_ok, detail = quick.reach("cust2", SERVER)
    assert not before_ok, f"cust2 reaches the server before activation: {detail}"
    before = volatile_free(running(lab, "r1"))

    result = agent.apply([ServiceRequest("internet-access", "r1", CUST2)], who="test",
                         why="order T-1", verify_from="cust2", verify_to=SERVER)
    assert result.state == "confirmed", (result.error, [c.verify() for c in result.changes])
    [change] = result.changes
    assert "+ ip address 100.64.12.1/24" in change.applied_diff
    reach = [c for c in change.verify() if c["check"].startswith("reach")]
    assert reach and reach[0]["ok"] is True, change.verify()
    assert "ip address 100.64.12.1/24" in running(lab, "r1")
    assert quick.reach("cust2", SERVER)[0]

    again = agent.apply([ServiceRequest("internet-access", "r1", CUST2)], who="test",
                        why="order T-1 retried")
    assert again.state == "unchanged"
    assert [c.state for c in again.changes] == ["unchanged"]

    res = cli("config", "rollback", str(change.id), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["state"] == "rolled-back"
    assert volatile_free(running(lab, "r1")) == before
    assert not quick.reach("cust2", SERVER)[0]


def test_second_device_failing_rolls_the_first_back_to_the_byte(
        discovered: LabHandle, agent: FulfilmentAgent) -> None:
    lab = discovered
    before = volatile_free(running(lab, "r1"))
    lab.lab.stop_node("r2")  # r2's sshd is gone: its part cannot be pushed
    try:
        result = agent.apply([
            ServiceRequest("internet-access", "r1", CUST2),
            ServiceRequest("internet-access", "r2", {
                "interface": "eth2", "address": "100.64.99.1/24", "description": "x"})],
            who="test", why="two-device order T-2")
    finally:
        lab.lab.start_node("r2")
    assert result.state == "failed"
    states = {c.device: c.state for c in result.changes}
    assert states == {"r1": "rolled-back", "r2": "failed"}, result.error
    assert result.error and "r2" in result.error
    assert volatile_free(running(lab, "r1")) == before


def test_injection_is_refused_before_any_connection(discovered: LabHandle) -> None:
    res = cli("config", "plan", "internet-access", "--device", "r1",
              "--param", "interface=eth1; reload", "--param", "address=100.64.12.1/24",
              "--param", "description=<config><x/></config>")
    assert res.returncode == 1
    assert "interface: 'eth1; reload' is not an interface name" in res.stderr


def test_netconf_service_with_confirmed_commit_is_idempotent_and_rolls_back(
        discovered: LabHandle, agent: FulfilmentAgent) -> None:
    params = {"interface": "eth1", "description": "managed LAN for ACME & Co <site 3>",
              "address": "198.51.100.20/24"}
    before = agent.backup("vnf1").text
    result = agent.apply([ServiceRequest("vnf-interface", "vnf1", params)], who="test",
                         why="order T-3", confirm_timeout_s=30)
    assert result.state == "confirmed", result.error
    [change] = result.changes
    assert change.driver == "netconf"
    assert all(c["ok"] for c in change.verify()), change.verify()
    assert "ACME &amp; Co &lt;site 3&gt;" in agent.backup("vnf1").text
    again = agent.apply([ServiceRequest("vnf-interface", "vnf1", params)], who="test")
    assert again.state == "unchanged"
    agent.rollback(change.id or 0, who="test")
    assert agent.backup("vnf1").text == before


class Crash(BaseException):
    """The applying process dies (not an error the agent handles)."""


def test_unconfirmed_netconf_commit_reverts_on_the_device_and_is_recorded_failed(
        discovered: LabHandle, agent: FulfilmentAgent, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    params = {"interface": "eth1", "description": "never confirmed"}
    before = agent.backup("vnf1").text

    def crash(*_: object, **__: object) -> None:
        raise Crash

    monkeypatch.setattr(agent, "_verify_network", crash)  # dies after commit, before confirm
    with pytest.raises(Crash):
        agent.apply([ServiceRequest("vnf-interface", "vnf1", params)], who="test",
                     why="order T-4", confirm_timeout_s=8)
    monkeypatch.undo()
    deadline = time.monotonic() + 90
    settled = []
    while time.monotonic() < deadline and not settled:
        time.sleep(3)
        settled = agent.reconcile_pending()
    [rec] = settled
    assert rec.state == "failed", rec.error
    assert "revert timer put the saved config back" in (rec.error or "")
    assert agent.backup("vnf1").text == before
