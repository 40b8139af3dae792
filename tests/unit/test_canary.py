"""A canary credential profile (SNMP community, USM keys, SSH and NETCONF passwords) set
at the start: after the REST API (errors included), discovery and polling that really
use it against an address where nothing answers, and the CLI, none of its secrets is in
the logs, in any API answer, in any CLI output, or in the database files' bytes."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from typer.testing import CliRunner

from northbound.api import create_app
from northbound.auth import install_auth
from northbound.cli import app as cli
from topology.credentials import CredentialProfile, CredentialStore
from topology.db import get_engine, init_db
from topology.inventory import Device, Interface
from topology.settings import get_settings
from topology.users import create_token

SECRETS = ("canary-c0mmunity-41d7", "canary-usm-auth-9e2b", "canary-usm-priv-07aa",
           "canary-ssh-pw-5f1c", "canary-nc-pw-8d30")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("SWITCHBOARD_HOME", str(path))
    monkeypatch.delenv("SWITCHBOARD_KEY_FILE", raising=False)
    (path / "settings.yaml").write_text(
        "discovery:\n  sweep: false\n  timeout_s: 0.2\n  retries: 0\n"
        "performance:\n  timeout_s: 0.2\n  retries: 0\n  budget_s: 3\n")
    community, auth, priv, ssh, netconf = SECRETS
    CredentialStore(get_settings(path)).save(CredentialProfile.model_validate({
        "name": "canary", "snmp_community": community,
        "snmp_v3": {"user": "sbv3", "auth_key": auth, "priv_key": priv},
        "ssh_username": "admin", "ssh_password": ssh, "netconf_username": "admin",
        "netconf_password": netconf}))
    return path


def _assert_clean(text: str | bytes, where: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in SECRETS:
        assert secret.encode() not in data, f"{secret} in clear in {where}"


def test_canary_never_in_logs_answers_cli_or_database(
        home: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    engine = get_engine(f"sqlite:///{home / 'switchboard.db'}")
    init_db(engine)
    with Session(engine) as s:  # a device that uses the profile, where nothing answers
        dev = Device(name="ghost", sys_name="ghost", mgmt_address="127.0.0.9",
                     role="router", credential_profile="canary", planes="snmp,netconf")
        s.add(dev)
        s.flush()
        s.add(Interface(device_id=dev.id or 0, if_index=2, name="eth1"))
        s.commit()
        _, admin = create_token(s, "canary-admin", "admin")
    runner = CliRunner()
    polled = runner.invoke(cli, ["poll", "--once"])  # the poller really uses the profile
    assert "ghost" in polled.output and "canary" in polled.output, polled.output
    _assert_clean(polled.output, "the output of switchboard poll --once")
    answers: list[str] = []
    with TestClient(install_auth(create_app(engine), engine)) as client:
        bearer = {"Authorization": f"Bearer {admin}"}
        calls = [
            ("GET", "/api/devices", None), ("GET", "/api/devices/ghost", None),
            ("GET", "/api/devices/nope", None), ("GET", "/api/interfaces", None),
            ("GET", "/api/perf/devices/ghost", None), ("GET", "/nowhere", None),
            ("DELETE", "/api/devices", None), ("GET", "/api/credentials", None),
            ("POST", "/api/discovery/runs", {"seeds": ["10.99.0.1"], "profiles": ["canary"]}),
            ("POST", "/api/discovery/runs", {"seeds": ["127.0.0.9"], "profiles": ["nope"]}),
            ("POST", "/api/config/plans", {"service": "nope", "device": "ghost"}),
            ("POST", "/api/config/changes", {"service": "internet-access",
                                             "device": "ghost", "who": "t",
                                             "params": {"interface": "eth1; x"}}),
            ("GET", "/api/audit", None), ("GET", "/openapi.json", None),
        ]
        for method, path, body in calls:
            answer = client.request(method, path, json=body, headers=bearer)
            answers.append(f"{method} {path} {answer.status_code} {answer.headers} "
                           f"{answer.text}")
        # a discovery run that really tries the profile (SNMP to an address that is silent)
        run = client.post("/api/discovery/runs", headers=bearer,
                          json={"seeds": ["127.0.0.9"], "profiles": ["canary"]})
        assert run.status_code == 202, run.text
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            doc = client.get(f"/api/discovery/runs/{run.json()['id']}", headers=bearer)
            answers.append(doc.text)
            if doc.json()["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
        assert doc.json()["status"] not in ("queued", "running")
    assert any(" 404 " in a for a in answers) and any(" 400 " in a for a in answers)
    for answer in answers:
        _assert_clean(answer, "an API answer")

    for args in (["poll", "--once", "--json"],
                 ["inventory", "show", "ghost", "--json"], ["inventory", "devices"],
                 ["discover", "127.0.0.9", "--profile", "canary", "--json"],
                 ["discover", "10.99.0.1", "--profile", "canary"],
                 ["config", "plan", "internet-access", "--device", "ghost",
                  "--param", "interface=eth1"]):
        result = runner.invoke(cli, args)
        _assert_clean(result.output, f"the output of switchboard {' '.join(args)}")
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            _assert_clean(repr(result.exception), f"switchboard {' '.join(args)}'s error")
    engine.dispose()

    loaded = CredentialStore(get_settings(home)).load("canary")  # the canary is real
    assert loaded.snmp_community is not None
    assert loaded.snmp_community.get_secret_value() == SECRETS[0]
    _assert_clean(caplog.text, "the logs")
    for record in caplog.records:
        _assert_clean(str(record.args), "a log record's arguments")
    files = [p for p in home.rglob("switchboard.db*") if p.is_file()]
    assert files
    for path in files:
        _assert_clean(path.read_bytes(), str(path))
    for path in (home / "credentials").glob("*.json"):
        _assert_clean(path.read_bytes(), str(path))
