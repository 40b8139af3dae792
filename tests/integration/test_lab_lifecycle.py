"""Deploy and destroy leave the machine as it was; failures undo what they made."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lab import Lab, deploy, load_topology
from lab.proc import ProcRef
from lab.pytest_plugin import TOPOLOGIES, slot_lab_name, slot_subnet
from topology.credentials import CredentialStore
from topology.errors import LabRuntimeError, LabStateError
from topology.settings import Settings

pytestmark = pytest.mark.lab
NAME, SUBNET = slot_lab_name("life"), slot_subnet(2)


def machine() -> dict[str, set[str]]:
    """What a lab could leave behind: namespaces, links, processes, mounts."""
    netns = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                               check=True).stdout.split())
    links = set(os.listdir("/sys/class/net"))
    procs = {p for p in os.listdir("/proc") if p.isdigit()
             and ProcRef.of(int(p)) is not None}
    mounts = set(Path("/proc/self/mounts").read_text().splitlines())
    return {"netns": {n for n in netns if not n.startswith("(")}, "links": links,
            "procs": procs, "mounts": mounts}


def mini(settings: Settings, **kw: str) -> Lab:
    topo = load_topology(TOPOLOGIES / "mini.clab.yml").relocate(NAME, SUBNET)
    return deploy(topo, settings=settings, **kw)


def test_deploy_then_destroy_leaves_the_machine_as_it_was(lab_home: Settings) -> None:
    before = machine()
    lab = mini(lab_home)
    pids = [r for n in lab.state.nodes.values() for r in n.processes()]
    assert len(pids) >= 10, "holders plus snmpd, FRR, lldpd, sshd on two routers"
    assert all(r.alive() for r in pids)
    assert CredentialStore(lab_home).load(NAME).source == f"lab:{NAME}"
    during = machine()
    assert {f"sb-{NAME}.r1", f"sb-{NAME}.r2", f"sb-{NAME}.h1"} <= during["netns"]

    res = subprocess.run([sys.executable, "-m", "northbound.cli", "lab", "destroy", NAME],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    after = machine()
    assert not any(r.alive() for r in pids)
    assert after["netns"] == before["netns"]
    assert after["links"] == before["links"]
    # processes of other sessions may come and go; none of the lab's may remain
    assert not {str(r.pid) for r in pids} & after["procs"]
    assert after["mounts"] == before["mounts"]
    assert not (lab_home.labs_dir / NAME).exists()
    assert NAME not in CredentialStore(lab_home).names()


def test_deploying_a_running_lab_is_refused(lab_home: Settings) -> None:
    lab = mini(lab_home)
    try:
        with pytest.raises(LabStateError, match="already running"):
            mini(lab_home)
        assert all(r.alive() for n in lab.state.nodes.values() for r in n.processes())
    finally:
        lab.destroy()


def test_a_deploy_that_fails_half_way_removes_what_it_made(
        lab_home: Settings, tmp_path: Path) -> None:
    text = (TOPOLOGIES / "mini.clab.yml").read_text().replace(
        "ip route replace default via 192.168.2.1 dev eth1", "ip route add 10.9.9.0/24 via 1.1.1.1")
    broken = tmp_path / "mini.clab.yml"
    broken.write_text(text)
    (tmp_path / "mini").symlink_to(TOPOLOGIES / "mini")
    before = machine()
    topo = load_topology(broken).relocate(NAME, SUBNET)
    failed = r"exec 'ip route add 10\.9\.9\.0/24 via 1\.1\.1\.1' failed"
    with pytest.raises(LabRuntimeError, match=failed):
        deploy(topo, settings=lab_home)
    after = machine()
    assert after["netns"] == before["netns"]
    assert after["links"] == before["links"]
    assert not (lab_home.labs_dir / NAME).exists()


def test_leftovers_of_a_killed_run_are_cleaned_by_the_next_deploy(lab_home: Settings) -> None:
    before = machine()
    lab = mini(lab_home)
    # the run is killed: every process dies at once, nothing is cleaned
    for ref in [r for n in lab.state.nodes.values() for r in n.processes()]:
        os.kill(ref.pid, signal.SIGKILL)
    assert {f"sb-{NAME}.r1"} <= machine()["netns"]
    again = mini(lab_home)
    try:
        assert again.inspect()[0].snmp is True
    finally:
        again.destroy()
    after = machine()
    assert after["netns"] == before["netns"]
    assert after["links"] == before["links"]


def test_trap_target_outside_the_lab_is_refused_before_anything_is_made(
        lab_home: Settings) -> None:
    before = machine()
    with pytest.raises(LabRuntimeError, match="outside the lab's mgmt subnet"):
        mini(lab_home, trap_target="192.0.2.1:162")
    assert machine()["netns"] == before["netns"]


def test_overlapping_mgmt_subnet_is_refused(lab_home: Settings) -> None:
    lab = mini(lab_home)
    try:
        other = load_topology(TOPOLOGIES / "mini.clab.yml").relocate(slot_lab_name("other"),
                                                                     SUBNET)
        with pytest.raises(LabRuntimeError, match="overlaps"):
            deploy(other, settings=lab_home)
        assert not any(n.startswith(f"sb-{slot_lab_name('other')}.") for n in machine()["netns"])
    finally:
        lab.destroy()
