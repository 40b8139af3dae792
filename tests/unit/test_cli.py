"""Unit tests for the ``switchboard`` command line: help, argument checking, errors.

Nothing here deploys: where a command would reach the lab runtime, the runtime's
root check is replaced by one that fails the test, so no kernel object is ever made.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import lab.runtime
from lab.model import LabCredentials
from northbound import cli
from northbound.cli import app
from topology.errors import LabRuntimeError, LabStateError, TopologyFileError

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LAB_COMMANDS = ["deploy", "inspect", "list", "destroy", "link", "node", "traffic", "exec",
                "credentials"]


class _WouldDeploy(AssertionError):
    pass


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("SWITCHBOARD_HOME", str(home))
    monkeypatch.setenv("TERMINAL_WIDTH", "200")
    monkeypatch.setenv("COLUMNS", "200")
    for var in ("FORCE_COLOR", "PY_COLORS", "CLICOLOR_FORCE"):
        monkeypatch.delenv(var, raising=False)

    def refuse_root() -> None:
        raise _WouldDeploy("a unit test reached the lab runtime's root check")

    monkeypatch.setattr(lab.runtime, "_require_root", refuse_root)
    return home


@pytest.fixture
def home(_env: Path) -> Path:
    return _env


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def text(result: Result) -> str:
    return ANSI.sub("", result.output)


# --------------------------------------------------------------------------- help


def test_root_help() -> None:
    result = invoke("--help")
    assert result.exit_code == 0, result.output
    assert "lab" in text(result)
    assert "network operations suite" in text(result)


def test_lab_help_lists_every_command() -> None:
    result = invoke("lab", "--help")
    assert result.exit_code == 0, result.output
    out = text(result)
    for command in LAB_COMMANDS:
        assert re.search(rf"\b{command}\b", out), command


@pytest.mark.parametrize("command", LAB_COMMANDS)
def test_every_lab_command_has_help(command: str) -> None:
    result = invoke("lab", command, "--help")
    assert result.exit_code == 0, result.output
    assert f"lab {command}" in text(result)
    assert result.exception is None


@pytest.mark.parametrize(("command", "options"), [
    ("deploy", ["--trap-target", "--json"]),
    ("inspect", ["--json"]),
    ("credentials", ["--json"]),
    ("list", ["--json"]),
    ("destroy", ["--json"]),
    ("traffic", ["--bytes", "--json", "--wait", "--lab"]),
    ("link", ["--lab"]),
    ("node", ["--lab"]),
    ("exec", ["--lab"]),
])
def test_command_options(command: str, options: list[str]) -> None:
    out = text(invoke("lab", command, "--help"))
    for option in options:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", out), (command, option)


@pytest.mark.parametrize("command", ["link", "node", "exec"])
def test_commands_without_json(command: str) -> None:
    assert "--json" not in text(invoke("lab", command, "--help"))


def test_deploy_trap_target_metavar() -> None:
    assert "HOST:PORT" in text(invoke("lab", "deploy", "--help"))


def test_root_without_arguments_shows_help() -> None:
    result = invoke()
    assert "Usage" in text(result)
    assert "lab" in text(result)


# --------------------------------------------------------------------------- argument checking


@pytest.mark.parametrize("action", ["down", "up"])
def test_link_accepts_down_up(action: str) -> None:
    result = invoke("lab", "link", action, "r1:eth1")
    # parsed fine: it got as far as looking for the lab
    assert isinstance(result.exception, LabStateError), result.output
    assert "no lab is deployed" in str(result.exception)


def test_link_refuses_sideways() -> None:
    result = invoke("lab", "link", "sideways", "r1:eth1")
    assert result.exit_code == 2
    assert "sideways" in text(result)
    assert not isinstance(result.exception, LabStateError)


@pytest.mark.parametrize("endpoint", ["r1", "r1:", ":eth1"])
def test_link_refuses_bad_endpoint(endpoint: str) -> None:
    result = invoke("lab", "link", "down", endpoint)
    assert result.exit_code == 2
    assert "NODE:IFACE" in text(result)


@pytest.mark.parametrize("action", ["stop", "start"])
def test_node_accepts_stop_start(action: str) -> None:
    result = invoke("lab", "node", action, "r1")
    assert isinstance(result.exception, LabStateError), result.output


def test_node_refuses_other_actions() -> None:
    result = invoke("lab", "node", "restart", "r1")
    assert result.exit_code == 2
    assert "restart" in text(result)


def test_traffic_needs_bytes() -> None:
    result = invoke("lab", "traffic", "cust1", "srv1")
    assert result.exit_code == 2
    assert "--bytes" in text(result)
    result = invoke("lab", "traffic", "cust1", "srv1", "--bytes", "0")
    assert result.exit_code == 2
    result = invoke("lab", "traffic", "cust1", "srv1", "--bytes", "1000")
    assert isinstance(result.exception, LabStateError), result.output


# --------------------------------------------------------------------------- no lab deployed


@pytest.mark.parametrize("args", [
    ["inspect"], ["inspect", "--json"], ["credentials"], ["destroy"], ["exec", "r1", "--", "true"],
])
def test_no_lab_deployed(args: list[str]) -> None:
    result = invoke("lab", *args)
    assert result.exit_code == 1
    assert isinstance(result.exception, LabStateError)
    assert str(result.exception) == "no lab is deployed (switchboard lab deploy FILE)"


def test_inspect_unknown_lab_name(home: Path) -> None:
    result = invoke("lab", "inspect", "mini")
    assert isinstance(result.exception, LabStateError)
    assert result.exception.lab == "mini"
    assert "no lab named 'mini'" in str(result.exception)


def test_list_empty() -> None:
    result = invoke("lab", "list", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    result = invoke("lab", "list")
    assert result.exit_code == 0, result.output
    assert "labs" in text(result)


def test_main_prints_error_and_exits_1(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["switchboard", "lab", "inspect"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 1
    captured = capsys.readouterr()
    assert "error: no lab is deployed" in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_main_success_exits_0(monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["switchboard", "lab", "list", "--json"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code in (0, None)
    assert json.loads(capsys.readouterr().out) == []


# --------------------------------------------------------------------------- a deployed lab's files


def _fake_lab(home: Path, name: str, creds: LabCredentials) -> None:
    d = home / "labs" / name
    d.mkdir(parents=True)
    (d / "state.json").write_text(json.dumps({
        "name": name, "source_file": f"/x/{name}.clab.yml", "created": "2024-01-01T00:00:00",
        "subnet": "172.20.20.0/24", "gateway": "172.20.20.1", "bridge": f"sb-{name}",
        "trap_host": "172.20.20.1", "trap_port": 162, "status": "running", "nodes": {}}))
    (d / "credentials.json").write_text(json.dumps({
        "snmp_community": creds.snmp_community, "snmpv3_user": creds.snmpv3_user,
        "snmpv3_auth_key": creds.snmpv3_auth_key, "snmpv3_priv_key": creds.snmpv3_priv_key,
        "ssh_user": creds.ssh_user, "ssh_password": creds.ssh_password}))


CREDS = LabCredentials(snmp_community="comm-xyz", snmpv3_user="v3u", snmpv3_auth_key="authk-xyz",
                       snmpv3_priv_key="privk-xyz", ssh_user="opsuser",
                       ssh_password="pw-xyz")


def test_list_json_with_labs(home: Path) -> None:
    _fake_lab(home, "mini", CREDS)
    _fake_lab(home, "core", CREDS)
    result = invoke("lab", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["lab"] for r in rows] == ["core", "mini"]
    assert rows[0] == {"lab": "core", "nodes": 0, "subnet": "172.20.20.0/24",
                       "created": "2024-01-01T00:00:00", "source_file": "/x/core.clab.yml"}


def test_credentials_json(home: Path) -> None:
    _fake_lab(home, "core", CREDS)
    result = invoke("lab", "credentials", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["lab"] == "core"
    assert data["profile"] == "core"
    assert data["snmp_community"] == "comm-xyz"
    assert data["snmpv3_auth_key"] == "authk-xyz"
    assert data["snmpv3_auth_protocol"] == "SHA"
    assert data["ssh_user"] == "opsuser"
    assert data["ssh_password"] == "pw-xyz"


def test_credentials_table(home: Path) -> None:
    _fake_lab(home, "core", CREDS)
    result = invoke("lab", "credentials", "core")
    assert result.exit_code == 0, result.output
    out = text(result)
    assert "comm-xyz" in out
    assert "SHA authk-xyz" in out
    assert "AES privk-xyz" in out


# --------------------------------------------------------------------------- deploy refused


BROKEN = """\
name: broken
topology:
  nodes:
    h1:
      kind: linux
      image: alpine:3.20
  links:
    - endpoints: ["h1:eth1", "ghost:eth1"]
"""


def test_deploy_broken_file(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "broken.clab.yml"
    path.write_text(textwrap.dedent(BROKEN), encoding="utf-8")
    result = invoke("lab", "deploy", str(path))
    assert result.exit_code == 1
    exc = result.exception
    assert isinstance(exc, TopologyFileError), result.output
    assert exc.path.name == "broken.clab.yml"
    assert len(exc.problems) == 1
    assert exc.problems[0].line == 8
    assert "ghost" in exc.problems[0].reason
    assert f"{exc.path}:8:" in str(exc)
    assert not (home / "labs").exists() or not any((home / "labs").iterdir())
    assert not (home / "credentials").exists()


def test_deploy_missing_file(tmp_path: Path, home: Path) -> None:
    result = invoke("lab", "deploy", str(tmp_path / "nope.clab.yml"))
    assert isinstance(result.exception, TopologyFileError), result.output
    assert "cannot read the file" in str(result.exception)
    assert not (home / "labs").exists()


def test_deploy_trap_target_outside_subnet(tmp_path: Path, home: Path) -> None:
    path = tmp_path / "ok.clab.yml"
    path.write_text("name: ok\nmgmt:\n  ipv4-subnet: 172.29.1.0/24\ntopology:\n  nodes:\n"
                    "    h1:\n      kind: linux\n      image: alpine:3.20\n", encoding="utf-8")
    result = invoke("lab", "deploy", str(path), "--trap-target", "10.9.9.9:162")
    assert isinstance(result.exception, LabRuntimeError), result.output
    assert "outside the lab's mgmt subnet 172.29.1.0/24" in str(result.exception)
    assert not (home / "labs").exists()


def test_main_deploy_broken_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.clab.yml"
    path.write_text(textwrap.dedent(BROKEN), encoding="utf-8")
    monkeypatch.setattr(sys, "argv", ["switchboard", "lab", "deploy", str(path)])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: topology file refused (1 problem(s)):")
    assert "broken.clab.yml:8:" in err
    assert "ghost" in err
