"""Every managed node of both shipped topologies answers on its management planes,
checked with independent peers: net-snmp's tools, netmiko and ncclient."""

from __future__ import annotations

import dataclasses
import time

import pytest
from ncclient import manager
from netmiko import ConnectHandler

from lab.model import Role
from lab.pytest_plugin import LabHandle
from tests.integration.peers import NetSnmp

pytestmark = pytest.mark.lab
SYS_NAME = "1.3.6.1.2.1.1.5.0"
SYS_DESCR = "1.3.6.1.2.1.1.1.0"
ENGINE_ID = "1.3.6.1.6.3.10.2.1.1.0"


@pytest.fixture(params=["mini_lab", "core_lab"])
def any_lab(request: pytest.FixtureRequest) -> LabHandle:
    return request.getfixturevalue(request.param)


def test_every_managed_node_answers_sysname_v2c_and_v3(any_lab: LabHandle) -> None:
    snmp = NetSnmp(any_lab.credentials)
    managed = any_lab.managed()
    assert managed, "a shipped topology without managed nodes"
    engine_ids = set()
    for node in managed:
        assert snmp.get(node.mgmt_ipv4, SYS_NAME) == node.name
        assert snmp.get(node.mgmt_ipv4, SYS_NAME, version="3") == node.name
        engine_ids.add(snmp.get(node.mgmt_ipv4, ENGINE_ID))
    assert len(engine_ids) == len(managed), "two nodes share an SNMP engine id"


def test_hosts_run_no_agent(core_lab: LabHandle) -> None:
    snmp = NetSnmp(core_lab.credentials)
    host = core_lab.by_role(Role.HOST)[0]
    with pytest.raises(AssertionError, match="Timeout"):
        snmp.get(host.mgmt_ipv4, SYS_NAME)


def test_wrong_community_and_wrong_v3_key_get_no_answer(mini_lab: LabHandle) -> None:
    r1 = mini_lab.nodes["r1"]
    wrong = NetSnmp(dataclasses.replace(mini_lab.credentials, snmp_community="not-it",
                                        snmpv3_auth_key="wrong-auth-key"))
    with pytest.raises(AssertionError, match="Timeout"):
        wrong.get(r1.mgmt_ipv4, SYS_NAME)
    with pytest.raises(AssertionError, match="Authentication failure"):
        wrong.get(r1.mgmt_ipv4, SYS_NAME, version="3")


def test_routers_answer_show_version_over_ssh_with_netmiko(core_lab: LabHandle) -> None:
    creds = core_lab.credentials
    for node in core_lab.by_role(Role.ROUTER):
        conn = ConnectHandler(device_type="cisco_ios", host=node.mgmt_ipv4,
                              username=creds.ssh_user, password=creds.ssh_password)
        try:
            assert conn.find_prompt() == f"{node.name}#"
            version = conn.send_command("show version")
            running = conn.send_command("show running-config")
        finally:
            conn.disconnect()
        assert "FRRouting" in version
        assert f"hostname {node.name}" in running


def test_one_command_on_the_ssh_command_line_is_answered(mini_lab: LabHandle) -> None:
    """`ssh admin@r1 'show version'` answers once and exits, as real routers do."""
    import paramiko

    creds = mini_lab.credentials
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(mini_lab.nodes["r2"].mgmt_ipv4, username=creds.ssh_user,
                   password=creds.ssh_password, allow_agent=False, look_for_keys=False)
    try:
        _, stdout, _ = client.exec_command("show ip ospf neighbor")
        out = stdout.read().decode()
        assert stdout.channel.recv_exit_status() == 0
    finally:
        client.close()
    assert "Neighbor ID" in out


def test_wrong_ssh_password_is_refused(mini_lab: LabHandle) -> None:
    import paramiko

    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(mini_lab.nodes["r1"].mgmt_ipv4, username=mini_lab.credentials.ssh_user,
                       password="wrong-password", allow_agent=False, look_for_keys=False)
    client.close()


def test_vnf_answers_netconf_hello_with_candidate_and_confirmed_commit(
        core_lab: LabHandle) -> None:
    creds = core_lab.credentials
    vnf = core_lab.by_role(Role.VNF)[0]
    with manager.connect(host=vnf.mgmt_ipv4, port=830, username=creds.ssh_user,
                         password=creds.ssh_password, hostkey_verify=False,
                         allow_agent=False, look_for_keys=False, timeout=20) as m:
        caps = list(m.server_capabilities)
        state = m.get(filter=("subtree", '<interfaces-state xmlns="urn:ietf:params:xml:ns:'
                              'yang:ietf-interfaces"/>')).data_xml
    assert "urn:ietf:params:netconf:capability:candidate:1.0" in caps
    assert any(c.startswith("urn:ietf:params:netconf:capability:confirmed-commit:1.")
               for c in caps)
    for module in ("ietf-interfaces", "ietf-ip", "ietf-system"):
        assert any(f"module={module}" in c for c in caps), module
    assert "<name>eth1</name>" in state  # the VNF's own data port, read from its kernel


def test_each_node_has_its_own_hostname(core_lab: LabHandle) -> None:
    for node in core_lab.nodes.values():
        assert node.run("hostname").stdout.strip() == node.name


def test_lldp_neighbours_over_snmp_match_the_topology_links(core_lab: LabHandle) -> None:
    """lldpRemTable of every managed node, read over SNMP, equals the topology's links
    between managed nodes (hosts run no LLDP)."""
    snmp = NetSnmp(core_lab.credentials)
    managed = {n.name for n in core_lab.managed()}
    expected = set()
    for a, b in core_lab.lab.state.links:
        (na, ia), (nb, ib) = a.split(":"), b.split(":")
        if na in managed and nb in managed:
            expected |= {(na, ia, nb, ib), (nb, ib, na, ia)}
    assert expected, "core has links between managed nodes"
    loc_port = "1.0.8802.1.1.2.1.3.7.1.3"   # lldpLocPortId (ifname)
    rem_port = "1.0.8802.1.1.2.1.4.1.1.7"   # lldpRemPortId
    rem_name = "1.0.8802.1.1.2.1.4.1.1.9"   # lldpRemSysName
    seen: set[tuple[str, str, str, str]] = set()
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        seen = set()
        for name in managed:
            ip = core_lab.nodes[name].mgmt_ipv4
            ports = {k.rsplit(".", 1)[1]: v for k, v in snmp.walk(ip, loc_port).items()}
            names = snmp.walk(ip, rem_name)
            pids = snmp.walk(ip, rem_port)
            for key, peer in names.items():
                suffix = key[len(rem_name) + 1:]        # timeMark.localPortNum.index
                local_port = suffix.split(".")[1]
                seen.add((name, ports[local_port], peer, pids[f"{rem_port}.{suffix}"]))
        if seen == expected:
            break
        time.sleep(2)
    assert seen == expected
