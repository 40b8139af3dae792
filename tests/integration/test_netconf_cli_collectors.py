"""The NETCONF and CLI fact collectors against the core lab's real netconfd and FRR,
including the failures a poller meets: a wrong password, a closed port, a silent peer."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from collectors.cli import CliFacts, collect_cli_facts
from collectors.netconf import collect_netconf_facts
from lab.pytest_plugin import LabHandle
from topology.errors import (
    AuthenticationFailed,
    ConnectionRefused,
    DeviceTimeout,
    StatusCode,
)

WRONG_PASSWORD = "not-the-lab-password"


# -- NETCONF -------------------------------------------------------------------------

@pytest.mark.lab
def test_netconf_facts_from_vnf1(core_lab: LabHandle) -> None:
    vnf1, creds = core_lab.nodes["vnf1"], core_lab.credentials
    facts = collect_netconf_facts(vnf1.mgmt_ipv4, creds.ssh_user, creds.ssh_password,
                                  profile=core_lab.name)
    assert facts.supports_candidate
    assert facts.supports_confirmed_commit
    names = {m.name for m in facts.modules}
    assert {"ietf-interfaces", "ietf-ip", "ietf-system"} <= names
    interfaces = {i.name: i for i in facts.interfaces}
    assert {"eth1", "mgmt0"} <= set(interfaces)
    assert interfaces["mgmt0"].oper_status == "up"
    assert isinstance(interfaces["mgmt0"].in_octets, int)
    assert interfaces["mgmt0"].in_octets > 0  # this very session came in over mgmt0
    assert facts.hostname == "vnf1"


@pytest.mark.lab
def test_netconf_wrong_password_is_authentication_failed(core_lab: LabHandle) -> None:
    vnf1, creds = core_lab.nodes["vnf1"], core_lab.credentials
    with pytest.raises(AuthenticationFailed) as info:
        collect_netconf_facts(vnf1.mgmt_ipv4, creds.ssh_user, WRONG_PASSWORD,
                              profile=core_lab.name)
    err = info.value
    assert err.status is StatusCode.AUTH_FAILED
    assert (err.device, err.profile) == (vnf1.mgmt_ipv4, core_lab.name)
    assert vnf1.mgmt_ipv4 in str(err) and core_lab.name in str(err)
    for secret in (WRONG_PASSWORD, creds.ssh_password):
        assert secret not in str(err) and secret not in repr(err)


@pytest.mark.lab
def test_netconf_port_on_a_router_is_refused(core_lab: LabHandle) -> None:
    r1, creds = core_lab.nodes["r1"], core_lab.credentials
    with pytest.raises(ConnectionRefused) as info:
        collect_netconf_facts(r1.mgmt_ipv4, creds.ssh_user, creds.ssh_password, port=830,
                              profile=core_lab.name)
    assert info.value.device == r1.mgmt_ipv4
    assert info.value.status is StatusCode.REFUSED


# -- CLI ----------------------------------------------------------------------------

@pytest.mark.lab
def test_cli_facts_from_every_router(core_lab: LabHandle) -> None:
    creds = core_lab.credentials
    routers = [core_lab.nodes[name] for name in ("r1", "r2", "r3")]

    async def collect_all() -> list[CliFacts]:  # as the discovery agent calls it
        return list(await asyncio.gather(*(
            asyncio.to_thread(collect_cli_facts, node.mgmt_ipv4, creds.ssh_user,
                              creds.ssh_password, platform="frr", profile=core_lab.name)
            for node in routers)))

    for node, facts in zip(routers, asyncio.run(collect_all()), strict=True):
        assert facts.hostname == node.name
        assert facts.os_name == "FRRouting"
        assert facts.os_version and facts.os_version[0].isdigit()
        interfaces = {i.name: i for i in facts.interfaces}
        assert set(interfaces) == {*node.interfaces, "lo", "mgmt0"}, node.name
        assert interfaces["mgmt0"].addresses == (f"{node.mgmt_ipv4}/24",)
        assert interfaces["lo"].addresses  # the router id's /32
        assert set(facts.raw) == {"show version", "show interface brief",
                                  "show interface description"}


@pytest.mark.lab
def test_cli_r1_addresses_match_its_config(core_lab: LabHandle) -> None:
    r1, creds = core_lab.nodes["r1"], core_lab.credentials
    facts = collect_cli_facts(r1.mgmt_ipv4, creds.ssh_user, creds.ssh_password)
    addresses = {i.name: i.addresses for i in facts.interfaces}
    assert addresses["eth1"] == ("10.0.12.1/30",)
    assert addresses["eth2"] == ("10.0.13.1/30",)
    assert addresses["eth3"] == ("100.64.11.1/24",)
    assert addresses["lo"] == ("10.255.0.1/32",)
    assert facts.descriptions["eth1"] == "to r2 eth1"
    assert facts.descriptions["eth3"] == "customer cust1"
    assert "mgmt0" not in facts.descriptions


@pytest.mark.lab
def test_cli_wrong_password_is_authentication_failed(core_lab: LabHandle) -> None:
    r1, creds = core_lab.nodes["r1"], core_lab.credentials
    with pytest.raises(AuthenticationFailed) as info:
        collect_cli_facts(r1.mgmt_ipv4, creds.ssh_user, WRONG_PASSWORD, profile=core_lab.name)
    err = info.value
    assert (err.device, err.profile) == (r1.mgmt_ipv4, core_lab.name)
    assert r1.mgmt_ipv4 in str(err) and core_lab.name in str(err)
    for secret in (WRONG_PASSWORD, creds.ssh_password):
        assert secret not in str(err) and secret not in repr(err)


@pytest.mark.lab
def test_cli_port_on_the_vnf_is_refused(core_lab: LabHandle) -> None:
    vnf1, creds = core_lab.nodes["vnf1"], core_lab.credentials
    with pytest.raises(ConnectionRefused):
        collect_cli_facts(vnf1.mgmt_ipv4, creds.ssh_user, creds.ssh_password)


# -- a peer that accepts and never speaks (loopback only, no lab needed) ---------------

@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback TCP port that accepts connections and never sends an SSH banner."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


def test_netconf_silent_peer_is_a_timeout_within_the_budget(silent_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(DeviceTimeout) as info:
        collect_netconf_facts("127.0.0.1", "nobody", "x", port=silent_port, timeout_s=1.0)
    # bounded by our timeout, not paramiko's own 15 s banner wait (loose: shared machines)
    assert time.monotonic() - started < 12
    assert info.value.status is StatusCode.TIMEOUT


def test_cli_silent_peer_is_a_timeout(silent_port: int) -> None:
    from collectors.cli import run_cli_commands

    with pytest.raises(DeviceTimeout):
        run_cli_commands("127.0.0.1", "nobody", "x", ["show version"], port=silent_port,
                         timeout_s=1.0)
