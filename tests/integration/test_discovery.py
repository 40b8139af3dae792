"""Discovery of the core lab, checked against what each node's own kernel and daemons say
(read inside the node with `ip` and `vtysh`), not against what discovery itself stored."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from lab.model import Role
from lab.parser import load_topology
from lab.pytest_plugin import LabHandle
from tests.integration.peers import NetSnmp
from topology.credentials import CredentialProfile, CredentialStore, SnmpV3User
from topology.db import get_engine
from topology.inventory import DiscoveryRun

pytestmark = pytest.mark.lab


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "northbound.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False, env=os.environ.copy())


def discover(*args: str) -> dict[str, Any]:
    res = cli("discover", *args, "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def inventory(*args: str) -> Any:
    res = cli("inventory", *args, "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def node_truth(lab: LabHandle, name: str) -> tuple[set[str], set[str]]:
    """Interface names and IPv4 addresses as the node's kernel has them."""
    node = lab.nodes[name]
    links = json.loads(node.run("ip", "-j", "link", "show").stdout)
    addrs = json.loads(node.run("ip", "-j", "-4", "addr", "show").stdout)
    names = {link["ifname"] for link in links}
    ips = {f"{a['local']}/{a['prefixlen']}" for link in addrs for a in link["addr_info"]
           if not a["local"].startswith("127.")}
    # global IPv6 too (the lab has none today); loopback and link-local are not inventory
    six = json.loads(node.run("ip", "-j", "-6", "addr", "show", "scope", "global").stdout)
    ips |= {f"{a['local']}/{a['prefixlen']}" for link in six for a in link["addr_info"]}
    return names, ips


@pytest.fixture(scope="module")
def first_run(core_lab: LabHandle) -> dict[str, Any]:
    """Discover the whole lab once (its mgmt subnet, its own credential profile)."""
    core_lab.lab.exec("r1", ["true"])  # the lab is up
    return discover("--lab", core_lab.name)


def test_every_managed_node_is_found_exactly_once_with_the_right_role(
        core_lab: LabHandle, first_run: dict[str, Any]) -> None:
    managed = {n.name: n for n in core_lab.managed()}
    assert sorted(first_run["found"]) == sorted(managed)
    assert sorted(first_run["new"]) == sorted(managed)
    assert first_run["failed"] == []
    hosts = [n.name for n in core_lab.by_role(Role.HOST)]
    devices = {d["name"]: d for d in inventory("devices")["data"]}
    assert set(devices) == set(managed), f"hosts without agents invented: {hosts}"
    for name, node in managed.items():
        dev = devices[name]
        assert dev["role"] == node.role.value, (name, dev["role_reason"])
        assert dev["role_reason"]
        assert dev["mgmt_address"] == node.mgmt_ipv4
        assert dev["credential_profile"] == core_lab.name
        assert "snmp" in dev["planes"].split(",")
    assert "netconf" in devices["vnf1"]["planes"].split(",")
    assert "cli" in devices["r1"]["planes"].split(",")


def test_vendor_os_interfaces_and_addresses_match_the_nodes(
        core_lab: LabHandle, first_run: dict[str, Any]) -> None:
    for node in core_lab.managed():
        detail = inventory("show", node.name)
        dev = detail["device"]
        names, ips = node_truth(core_lab, node.name)
        assert {i["name"] for i in detail["interfaces"]} == names, node.name
        assert {f"{a['address']}/{a['prefix_length']}" for a in detail["addresses"]} == ips
        if node.role is Role.ROUTER:
            version = node.run("vtysh", "-c", "show version").stdout
            want = re.search(r"FRRouting (\S+)", version)
            assert want is not None
            assert (dev["vendor"], dev["os_name"], dev["os_version"]) == \
                ("FRRouting", "FRRouting", want.group(1))
        else:
            assert dev["os_name"] == "Linux"
            assert dev["os_version"] == node.run("uname", "-r").stdout.strip()


def test_every_lab_link_is_found_with_both_ends_confirmed(
        core_lab: LabHandle, first_run: dict[str, Any]) -> None:
    managed = {n.name for n in core_lab.managed()}
    expected = {frozenset((a, b)) for a, b in core_lab.lab.state.links
                if a.split(":")[0] in managed and b.split(":")[0] in managed}
    links = inventory("links")["data"]
    assert {frozenset((lk["a"], lk["b"])) for lk in links} == expected
    assert all(lk["confirmed"] and not lk["disagreement"] for lk in links)


def test_rediscovery_records_exactly_what_changed(core_lab: LabHandle,
                                                  first_run: dict[str, Any]) -> None:
    again = discover("--lab", core_lab.name)
    assert again["new"] == [] and again["changed"] == [] and again["missing"] == []
    r2 = core_lab.nodes["r2"]
    before = r2.run("vtysh", "-c", "show running-config").stdout
    old = re.search(r"interface eth1\n description (.*)\n", before)
    assert old is not None
    core_lab.lab.set_link("r1", "eth3", up=False)
    r2.run("vtysh", "-c", "configure terminal", "-c", "interface eth1",
           "-c", "description changed-by-test")
    try:
        # snmpd caches IF-MIB for a few seconds: wait until the agent itself says down
        r1 = core_lab.nodes["r1"]
        snmp = NetSnmp(core_lab.credentials)
        oper = f"1.3.6.1.2.1.2.2.1.8.{snmp.if_index(r1.mgmt_ipv4)['eth3']}"
        deadline = time.monotonic() + 20
        while snmp.get(r1.mgmt_ipv4, oper) != "2" and time.monotonic() < deadline:
            time.sleep(0.5)
        changed = discover("--lab", core_lab.name)
        changes = inventory("changes")["data"]
    finally:
        core_lab.lab.set_link("r1", "eth3", up=True)
        r2.run("vtysh", "-c", "configure terminal", "-c", "interface eth1",
               "-c", f"description {old.group(1)}")
    assert sorted(changed["changed"]) == ["r1", "r2"]
    mine = {(c["entity_key"], c["attribute"], c["old_value"], c["new_value"])
            for c in changes if c["run_id"] == changed["run_id"]}
    assert mine == {
        ("r1:eth3", "admin_status", "up", "down"),
        ("r1:eth3", "oper_status", "up", "down"),
        ("r2:eth1", "alias", old.group(1), "changed-by-test"),
    }


def test_a_node_answering_on_two_addresses_is_one_device(core_lab: LabHandle,
                                                         first_run: dict[str, Any]) -> None:
    r3 = core_lab.nodes["r3"]
    prefix = core_lab.lab.state.subnet.split("/")[1]
    second = core_lab.lab.state.subnet.rsplit(".", 1)[0] + ".213"
    r3.run("ip", "addr", "add", f"{second}/{prefix}", "dev", "mgmt0")
    try:
        result = discover(r3.mgmt_ipv4, second, "--profile", core_lab.name)
    finally:
        r3.run("ip", "addr", "del", f"{second}/{prefix}", "dev", "mgmt0")
    assert result["found"] == ["r3"]
    dev = inventory("show", "r3")["device"]
    assert dev["identity_rule"] is not None
    assert r3.mgmt_ipv4 in dev["identity_rule"] and second in dev["identity_rule"]
    assert len(inventory("devices")["data"]) == len(core_lab.managed())


def test_wrong_snmpv3_password_is_a_clear_per_device_error(
        core_lab: LabHandle, first_run: dict[str, Any]) -> None:
    creds = core_lab.credentials
    CredentialStore().save(CredentialProfile.model_validate({
        "name": "wrong-v3", "snmp_v3": SnmpV3User.model_validate({
            "user": creds.snmpv3_user, "auth_key": "not-the-auth-key",
            "priv_key": creds.snmpv3_priv_key})}))
    r1 = core_lab.nodes["r1"]
    result = discover(r1.mgmt_ipv4, "--profile", "wrong-v3")
    assert result["found"] == []
    (failure,) = result["failed"]
    assert failure["status"] == "auth_failed"
    assert "r1" in failure["detail"] and "wrong-v3" in failure["detail"]
    assert "not-the-auth-key" not in json.dumps(result)
    # the run keeps what it found, for whoever asks later (here the REST API)
    from northbound.api import create_app

    kept = TestClient(create_app(get_engine())).get(
        f"/api/discovery/runs/{result['run_id']}").json()
    assert kept["status"] == "partial"
    assert kept["result"]["failed"] == [{"detail": failure["detail"], "status": "auth_failed"}]
    assert kept["result"]["found"] == [] and kept["error"] is None
    assert "not-the-auth-key" not in json.dumps(kept)
    dev = inventory("show", "r1")["device"]
    assert dev["status"] == "auth_failed"
    discover("--lab", core_lab.name)  # back to a good state for the other tests
    assert inventory("show", "r1")["device"]["status"] == "ok"


def test_a_range_without_devices_finishes_within_its_budget(
        core_lab: LabHandle, first_run: dict[str, Any]) -> None:
    empty = core_lab.lab.state.subnet.rsplit(".", 1)[0] + ".224/28"
    result = discover(empty, "--profile", core_lab.name)
    assert result["found"] == [] and result["failed"] == []
    assert result["no_answer"] == 14
    # each address has a time budget; the run as a whole must not add them up
    assert result["seconds"] < 60


def test_a_target_outside_the_allowed_scope_is_refused_before_any_packet(
        core_lab: LabHandle, first_run: dict[str, Any]) -> None:
    with Session(get_engine()) as session:
        runs = len(session.exec(select(DiscoveryRun)).all())
    res = cli("discover", "192.0.2.0/24", "--profile", core_lab.name)
    assert res.returncode == 1
    assert "outside the ranges discovery may probe: 192.0.2.0/24" in res.stderr
    with Session(get_engine()) as session:
        assert len(session.exec(select(DiscoveryRun)).all()) == runs


def test_rest_api_pages_and_filters_the_inventory(core_lab: LabHandle,
                                                  first_run: dict[str, Any]) -> None:
    from northbound.api import create_app

    client = TestClient(create_app(get_engine()))
    page = client.get("/api/devices", params={"limit": 2})
    assert page.status_code == 200
    assert page.headers["X-Total-Count"] == str(len(core_lab.managed()))
    assert len(page.json()) == 2
    routers = client.get("/api/devices", params={"role": "router"}).json()
    assert sorted(d["name"] for d in routers) == ["r1", "r2", "r3"]
    r1 = client.get("/api/devices/r1").json()
    assert {i["name"] for i in r1["interfaces"]} >= {"eth1", "eth2", "eth3", "eth4"}
    missing = client.get("/api/devices/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["detail"] == "no device named 'nope' in the inventory"
    bad = client.get("/api/devices", params={"limit": 0})
    assert bad.status_code == 422
    links = client.get("/api/links", params={"device": "sw1"}).json()
    assert {lk["a"].split(":")[0] for lk in links} | {lk["b"].split(":")[0] for lk in links} \
        >= {"sw1", "r3", "vnf1"}


def test_clab_export_is_a_deployable_topology_of_what_was_found(
        core_lab: LabHandle, first_run: dict[str, Any], tmp_path: Any) -> None:
    res = cli("topology", "export", "--format", "clab", "--output", str(tmp_path))
    assert res.returncode == 0, res.stderr
    topo = load_topology(tmp_path / "discovered.clab.yml")  # our parser refuses bad files
    managed = {n.name: n for n in core_lab.managed()}
    assert set(topo.nodes) == set(managed)
    for name, spec in topo.nodes.items():
        assert spec.role is managed[name].role
        assert str(spec.mgmt_ipv4) == managed[name].mgmt_ipv4
    conf = (topo.nodes["r1"].frr_config or tmp_path).read_text()
    assert "ip address 10.0.12.1/30" in conf
    expected = {frozenset((a, b)) for a, b in core_lab.lab.state.links
                if a.split(":")[0] in managed and b.split(":")[0] in managed}
    assert {frozenset((str(lk.a), str(lk.b))) for lk in topo.links} == expected
