"""Unit tests for lab.state: kernel object names and the lab's state file."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.model import DEFAULT_CREDENTIALS, LabCredentials, Role
from lab.proc import ProcRef
from lab.state import (
    CREDENTIALS_FILE,
    STATE_FILE,
    LabState,
    NodeState,
    bridge_name,
    mgmt_veth_name,
    netns_name,
)

IFNAMSIZ = 15  # Linux interface names: at most 15 characters
LAB_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,19}$")  # what lab.parser allows
LAB_NAMES = [
    "a", "0", "core", "mini", "t-core", "t-mini", "abcdefghijkl",  # 12: sb-<lab> still fits
    "abcdefghijklm",  # 13: the first that does not
    "a" * 20, "z" * 20, "0123456789abcdefghij", "a-b-c-d-e-f-g-h-i-jk", "lab-2024-09-30-test",
    "customer-edge-lab-01", "x" * 19, "9" * 20,
]


@pytest.mark.parametrize("lab", LAB_NAMES)
def test_kernel_names_fit(lab: str) -> None:
    assert LAB_NAME.match(lab), "test data must be a lab name the parser allows"
    assert 1 <= len(bridge_name(lab)) <= IFNAMSIZ
    for index in (0, 1, 9, 10, 99, 253, 999):
        assert 1 <= len(mgmt_veth_name(lab, index)) <= IFNAMSIZ


def test_twenty_character_lab_name() -> None:
    lab = "abcdefghij0123456789"
    assert len(lab) == 20 and LAB_NAME.match(lab)
    assert len(bridge_name(lab)) <= IFNAMSIZ
    assert bridge_name(lab).startswith("sb")
    assert len(mgmt_veth_name(lab, 253)) <= IFNAMSIZ


@pytest.mark.parametrize("lab", ["a", "core", "t-core", "abcdefghijkl"])
def test_bridge_name_readable_when_it_fits(lab: str) -> None:
    assert bridge_name(lab) == f"sb-{lab}"


def test_bridge_name_hashed_when_too_long() -> None:
    lab = "abcdefghijklm"
    name = bridge_name(lab)
    assert name != f"sb-{lab}"
    assert re.fullmatch(r"sbh[0-9a-f]{8}", name), name


def test_names_are_stable() -> None:
    assert bridge_name("a" * 20) == bridge_name("a" * 20)
    assert mgmt_veth_name("core", 3) == mgmt_veth_name("core", 3)


def test_distinct_labs_distinct_names() -> None:
    labs = [*LAB_NAMES, "abcdefghijklmn", "abcdefghijklmo", "t-core-2", "t-core-3",
            "aaaaaaaaaaaaaaaaaaab", "aaaaaaaaaaaaaaaaaaac"]
    assert len(set(labs)) == len(labs)
    bridges = [bridge_name(lab) for lab in labs]
    assert len(set(bridges)) == len(labs)
    veths = [mgmt_veth_name(lab, i) for lab in labs for i in range(12)]
    assert len(set(veths)) == len(veths)


def test_veth_names_distinct_per_node() -> None:
    names = [mgmt_veth_name("core", i) for i in range(300)]
    assert len(set(names)) == 300
    # the index is spelled out, so node 1 and node 11 never meet
    assert mgmt_veth_name("core", 1) != mgmt_veth_name("core", 11)


def test_netns_name() -> None:
    assert netns_name("core", "r1") == "sb-core.r1"
    assert netns_name("t-core", "r1") != netns_name("core", "r1")
    assert "/" not in netns_name("a" * 20, "n" * 30)


# --------------------------------------------------------------------------- LabState


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(["sleep", "30"], text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=5)


def make_state(directory: Path) -> LabState:
    directory.mkdir(parents=True, exist_ok=True)
    state = LabState(
        name="core", directory=directory, source_file="/x/core.clab.yml",
        created="2024-01-01T00:00:00+00:00", subnet="172.20.20.0/24",
        gateway="172.20.20.1", bridge=bridge_name("core"), trap_host="172.20.20.1",
        trap_port=1162)
    state.nodes["r1"] = NodeState(
        name="r1", kind="linux", image="frrouting/frr:v8.4.1", role=Role.ROUTER,
        mgmt_ipv4="172.20.20.11", netns=netns_name("core", "r1"),
        host_veth=mgmt_veth_name("core", 0), interfaces=["eth1", "eth2"],
        exec=["ip link show"], frr_daemons=["zebra", "staticd", "ospfd"],
        holder=ProcRef(4242, 123456),
        daemons={"zebra": ProcRef(4243, 123457), "snmpd": ProcRef(4244, 123458)})
    state.nodes["h1"] = NodeState(
        name="h1", kind="linux", image="alpine:3.20", role=Role.HOST,
        mgmt_ipv4="172.20.20.101", netns=netns_name("core", "h1"),
        host_veth=mgmt_veth_name("core", 1), stopped=True)
    state.links.append(["r1:eth1", "h1:eth1"])
    state.bridge_created = True
    state.status = "running"
    return state


def test_state_round_trip(tmp_path: Path) -> None:
    state = make_state(tmp_path / "core")
    state.save()
    assert state.path == tmp_path / "core" / STATE_FILE
    assert state.path.is_file()
    assert not list((tmp_path / "core").glob("*.tmp"))
    loaded = LabState.load(tmp_path / "core")
    assert loaded == state
    r1 = loaded.nodes["r1"]
    assert r1.role is Role.ROUTER
    assert r1.holder == ProcRef(4242, 123456)
    assert r1.daemons == {"zebra": ProcRef(4243, 123457), "snmpd": ProcRef(4244, 123458)}
    assert r1.frr_daemons == ["zebra", "staticd", "ospfd"]
    h1 = loaded.nodes["h1"]
    assert h1.role is Role.HOST
    assert h1.holder is None
    assert h1.daemons == {}
    assert h1.stopped is True
    assert list(loaded.nodes) == ["r1", "h1"]
    assert loaded.links == [["r1:eth1", "h1:eth1"]]
    assert loaded.trap_port == 1162
    assert loaded.directory == tmp_path / "core"


def test_state_file_is_json_with_plain_values(tmp_path: Path) -> None:
    state = make_state(tmp_path / "core")
    state.save()
    raw = json.loads(state.path.read_text())
    assert raw["nodes"]["r1"]["role"] == "router"
    assert raw["nodes"]["r1"]["holder"] == [4242, 123456]
    assert raw["nodes"]["r1"]["daemons"]["zebra"] == [4243, 123457]
    assert raw["nodes"]["h1"]["holder"] is None
    assert "directory" not in raw  # the state directory is where it is loaded from


def test_save_overwrites(tmp_path: Path) -> None:
    state = make_state(tmp_path / "core")
    state.save()
    state.status = "deploying"
    del state.nodes["h1"]
    state.save()
    loaded = LabState.load(tmp_path / "core")
    assert loaded.status == "deploying"
    assert list(loaded.nodes) == ["r1"]


def test_processes(tmp_path: Path) -> None:
    state = make_state(tmp_path / "core")
    assert sorted(state.processes(), key=lambda r: r.pid) == [
        ProcRef(4242, 123456), ProcRef(4243, 123457), ProcRef(4244, 123458)]
    assert state.nodes["h1"].processes() == []


def test_credentials_beside_state_not_in_it(tmp_path: Path) -> None:
    creds = LabCredentials(
        snmp_community="c0mmunity-s3cret", snmpv3_user="sbv3",
        snmpv3_auth_key="auth-s3cret-key", snmpv3_priv_key="priv-s3cret-key",
        ssh_user="admin", ssh_password="ssh-s3cret-pw")
    state = make_state(tmp_path / "core")
    state.save()
    state.save_credentials(creds)
    path = tmp_path / "core" / CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert state.load_credentials() == creds
    text = state.path.read_text()
    for secret in ("c0mmunity-s3cret", "auth-s3cret-key", "priv-s3cret-key", "ssh-s3cret-pw"):
        assert secret in path.read_text()
        assert secret not in text
    # and the repr of the credentials hides them too
    assert "ssh-s3cret-pw" not in repr(creds)
    assert "c0mmunity-s3cret" not in repr(creds)


def test_credentials_file_mode_even_with_permissive_umask(tmp_path: Path) -> None:
    state = make_state(tmp_path / "core")
    old = os.umask(0)
    try:
        state.save_credentials(DEFAULT_CREDENTIALS)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "core" / CREDENTIALS_FILE).stat().st_mode) == 0o600


def test_alive_false_when_all_dead(tmp_path: Path) -> None:
    state = make_state(tmp_path / "core")
    # 4242.. with made-up start times: never this very process, whatever holds those PIDs
    assert all(not p.alive() for p in state.processes())
    assert state.alive() is False


def test_alive_false_without_processes(tmp_path: Path) -> None:
    state = make_state(tmp_path / "core")
    state.nodes.clear()
    assert state.alive() is False


def test_alive_true_while_one_runs(tmp_path: Path, sleeper: subprocess.Popen[str]) -> None:
    state = make_state(tmp_path / "core")
    ref = ProcRef.of(sleeper.pid)
    assert ref is not None
    state.nodes["h1"].holder = ref
    assert state.alive() is True
    state.save()
    assert LabState.load(tmp_path / "core").alive() is True
    sleeper.kill()
    sleeper.wait(timeout=5)
    assert state.alive() is False
    assert LabState.load(tmp_path / "core").alive() is False


def test_names_of_two_labs_never_collide() -> None:
    """Lab 'a' with node 'b-x' and lab 'a-b' with node 'x' must not share a namespace, and
    a readable bridge name never equals a hashed one."""
    from lab.state import netns_prefix

    assert netns_name("a", "b-x") != netns_name("a-b", "x")
    assert not netns_name("a-b", "x").startswith(netns_prefix("a"))
    assert bridge_name("abcdefghijklm") != bridge_name(bridge_name("abcdefghijklm")[3:])
