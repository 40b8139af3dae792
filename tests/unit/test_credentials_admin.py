"""Managing credential profiles: ``switchboard credentials`` and ``/api/credentials``, for
admins only; secrets are read from prompts or stdin, stored encrypted, and never shown,
answered, logged or audited in clear."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from northbound.api import create_app
from northbound.auth import app_routes, install_auth
from northbound.cli_credentials import credentials_app
from topology.credentials import CredentialProfile, CredentialStore
from topology.db import dispose_engines, get_engine, init_db
from topology.inventory import Device
from topology.settings import get_settings
from topology.users import REDACTED, create_token, list_audit

COMMUNITY, AUTH, PRIV, SSH, NETCONF = SECRETS = (
    "canary-c0mm-7a1e", "canary-usm-auth-3b9d", "canary-usm-priv-c402", "canary-ssh-pw-91f0",
    "canary-nc-pw-e66b")
OTHER = ("other-c0mm-5512", "other-ssh-pw-08aa")

app = typer.Typer()
app.add_typer(credentials_app, name="credentials")
runner = CliRunner()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("SWITCHBOARD_HOME", str(path))
    monkeypatch.delenv("SWITCHBOARD_KEY_FILE", raising=False)
    monkeypatch.delenv("SWITCHBOARD_DATABASE_URL", raising=False)
    monkeypatch.setenv("SUDO_USER", "root-admin")
    yield path
    dispose_engines()


@pytest.fixture
def engine(home: Path) -> Engine:
    eng = get_engine()
    init_db(eng)
    return eng


def store() -> CredentialStore:
    return CredentialStore(get_settings())


def assert_clean(text: str | bytes, where: str, secrets: tuple[str, ...] = SECRETS) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in secrets:
        assert secret.encode() not in data, f"{secret} in clear in {where}"


def add_device(engine: Engine, name: str, profile: str) -> None:
    with Session(engine) as s:
        s.add(Device(name=name, sys_name=name, mgmt_address="127.0.0.9", role="router",
                     credential_profile=profile, planes="snmp"))
        s.commit()


def cli_add_full(name: str = "core") -> Any:
    return runner.invoke(app, [
        "credentials", "add", name, "--snmp-community", "--v3-user", "sbv3",
        "--v3-auth-protocol", "sha-256", "--v3-priv-protocol", "AES",
        "--ssh-username", "admin", "--netconf-username", "nc", "--secrets-stdin"],
        input="\n".join(SECRETS) + "\n")


# --------------------------------------------------------------------------- CLI


def test_cli_add_from_stdin_then_list_and_show_never_print_a_secret(home: Path) -> None:
    added = cli_add_full()
    assert added.exit_code == 0, added.output
    assert_clean(added.output, "the output of credentials add")
    loaded = store().load("core")  # the secrets are really there, each in its place
    assert loaded.reveal()["snmp_community"] == COMMUNITY
    assert loaded.snmp_v3 is not None and loaded.snmp_v3.auth_protocol == "SHA-256"
    assert loaded.reveal()["snmp_v3"]["auth_key"] == AUTH
    assert loaded.reveal()["snmp_v3"]["priv_key"] == PRIV
    assert (loaded.reveal()["ssh_password"], loaded.reveal()["netconf_password"]) == (
        SSH, NETCONF)

    outputs = {}
    for args in (["list"], ["list", "--json"], ["show", "core"], ["show", "core", "--json"]):
        result = runner.invoke(app, ["credentials", *args])
        assert result.exit_code == 0, result.output
        assert_clean(result.output, f"credentials {' '.join(args)}")
        outputs[" ".join(args)] = result.output
    listed = json.loads(outputs["list --json"])
    assert [p["name"] for p in listed] == ["core"]
    row = listed[0]
    assert row["planes"] == ["snmp", "ssh", "netconf"]
    assert row["snmp_versions"] == ["v2c", "v3"]
    assert row["snmp_v3"] == {"user": "sbv3", "level": "authPriv", "auth_protocol": "SHA-256",
                              "priv_protocol": "AES", "auth_key_set": True,
                              "priv_key_set": True}
    assert (row["ssh_username"], row["netconf_username"]) == ("admin", "nc")
    assert row["snmp_community_set"] and row["encrypted"]
    assert "set" in outputs["show core"] and "authPriv" in outputs["show core"]

    files = list((home / "credentials").glob("*"))
    assert [p.name for p in files] == ["core.json"]
    assert_clean(files[0].read_bytes(), str(files[0]))
    assert store().is_encrypted("core")

    with Session(get_engine()) as s:
        _, records = list_audit(s)
    assert [(r.who, r.client, r.action, r.target_id) for r in records] == [
        ("root-admin", "cli", "credentials add", "core")]
    assert_clean(json.dumps(records[0].model_dump(mode="json")), "the audit record")
    assert records[0].after["set_fields"] == ["snmp_community", "ssh_password",
                                              "netconf_password", "snmp_v3.auth_key",
                                              "snmp_v3.priv_key"]


def test_cli_secret_from_hidden_prompt_asked_twice() -> None:
    differ = runner.invoke(app, ["credentials", "add", "edge", "--ssh-username", "ops"],
                           input=f"{SSH}\nsomething-else\n")
    assert differ.exit_code != 0
    assert not store().exists("edge")
    ok = runner.invoke(app, ["credentials", "add", "edge", "--ssh-username", "ops"],
                       input=f"{SSH}\n{SSH}\n")
    assert ok.exit_code == 0, ok.output
    assert_clean(ok.output, "the prompt's echo")
    assert store().load("edge").reveal()["ssh_password"] == SSH


def test_cli_takes_no_secret_from_an_argument() -> None:
    """``--snmp-community`` is a flag: a value after it is refused, nothing is saved."""
    given = runner.invoke(app, ["credentials", "add", "x", "--snmp-community", COMMUNITY])
    assert given.exit_code != 0
    assert not store().exists("x")
    by_stdin = runner.invoke(app, ["credentials", "add", "x", "--snmp-community-stdin"],
                             input=f"{COMMUNITY}\n")
    assert by_stdin.exit_code == 0, by_stdin.output
    assert store().load("x").reveal()["snmp_community"] == COMMUNITY
    again = runner.invoke(app, ["credentials", "add", "x", "--snmp-community-stdin"],
                          input=f"{OTHER[0]}\n")
    assert again.exit_code != 0 and "exists" in str(again.exception)
    replaced = runner.invoke(app, ["credentials", "add", "x", "--snmp-community-stdin",
                                   "--replace"], input=f"{OTHER[0]}\n")
    assert replaced.exit_code == 0, replaced.output
    assert store().load("x").reveal()["snmp_community"] == OTHER[0]


def test_cli_short_usm_key_refused_without_echoing_it() -> None:
    refused = runner.invoke(app, ["credentials", "add", "v3", "--v3-user", "u",
                                  "--v3-priv-protocol", "none", "--secrets-stdin"],
                            input="short7!\n")
    assert refused.exit_code != 0
    assert "auth_key" in str(refused.exception)
    assert "short7!" not in str(refused.exception) + refused.output
    assert not store().exists("v3")


def test_cli_remove_refused_while_a_device_uses_the_profile(engine: Engine) -> None:
    assert cli_add_full("core").exit_code == 0
    add_device(engine, "r1", "core")
    refused = runner.invoke(app, ["credentials", "remove", "core"])
    assert refused.exit_code != 0
    assert "r1" in str(refused.exception) and "--force" in str(refused.exception)
    assert store().exists("core")
    forced = runner.invoke(app, ["credentials", "remove", "core", "--force"])
    assert forced.exit_code == 0, forced.output
    assert not store().exists("core")
    unknown = runner.invoke(app, ["credentials", "remove", "core"])
    assert unknown.exit_code != 0


def test_cli_encrypt_rewrites_plain_files(home: Path) -> None:
    folder = home / "credentials"
    folder.mkdir(mode=0o700)
    (folder / "old.json").write_text(json.dumps({"name": "old", "snmp_community": COMMUNITY,
                                                 "ssh_username": "a", "ssh_password": SSH}))
    listed = runner.invoke(app, ["credentials", "list"])
    assert "PLAIN" in listed.output
    assert_clean(listed.output, "credentials list")
    done = runner.invoke(app, ["credentials", "encrypt", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["encrypted"] == ["old"]
    assert_clean((folder / "old.json").read_bytes(), "old.json")
    assert store().load("old").reveal()["ssh_password"] == SSH
    again = runner.invoke(app, ["credentials", "encrypt", "--json"])
    assert json.loads(again.stdout)["encrypted"] == []


# --------------------------------------------------------------------------- REST

BASE = "/api/credentials"
BODY: dict[str, Any] = {
    "name": "core", "snmp_community": COMMUNITY,
    "snmp_v3": {"user": "sbv3", "auth_protocol": "SHA", "auth_key": AUTH,
                "priv_protocol": "AES", "priv_key": PRIV},
    "ssh_username": "admin", "ssh_password": SSH,
    "netconf_username": "nc", "netconf_password": NETCONF}


@pytest.fixture
def web(engine: Engine, home: Path) -> FastAPI:
    built = install_auth(create_app(engine), engine)
    built.state.credentials = CredentialStore(get_settings(home))
    return built


@pytest.fixture
def client(web: FastAPI) -> Iterator[TestClient]:
    with TestClient(web) as c:
        yield c


@pytest.fixture
def tokens(engine: Engine) -> dict[str, dict[str, str]]:
    out = {}
    with Session(engine) as s:
        for role in ("viewer", "operator", "admin"):
            _, value = create_token(s, f"{role}-bot", role)
            out[role] = {"Authorization": f"Bearer {value}"}
    return out


def test_rest_create_read_replace_delete(client: TestClient, tokens: dict[str, Any],
                                         engine: Engine) -> None:
    admin = tokens["admin"]
    made = client.post(BASE, json=BODY, headers=admin)
    assert made.status_code == 201, made.text
    assert made.headers["location"] == f"{BASE}/core"
    doc = made.json()
    assert doc["snmp_community_set"] and doc["ssh_password_set"] and doc["encrypted"]
    assert doc["snmp_v3"]["level"] == "authPriv"
    assert store().load("core").reveal()["netconf_password"] == NETCONF

    assert client.post(BASE, json=BODY, headers=admin).status_code == 409
    listed = client.get(BASE, params={"limit": 1}, headers=admin)
    assert listed.status_code == 200 and listed.headers["x-total-count"] == "1"
    assert [p["name"] for p in listed.json()] == ["core"]
    assert client.get(BASE, params={"offset": 1}, headers=admin).json() == []
    assert client.get(f"{BASE}/core", headers=admin).json() == doc
    missing = client.get(f"{BASE}/nope", headers=admin)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert client.get(f"{BASE}/bad name!", headers=admin).status_code == 400

    # PUT replaces: the secrets left out are kept, null clears, the rest is the body's
    put = client.put(f"{BASE}/core", headers=admin, json={
        "snmp_v3": {"user": "sbv3", "auth_protocol": "SHA-512", "priv_protocol": "AES-256"},
        "ssh_username": "ops", "netconf_password": None})
    assert put.status_code == 200, put.text
    kept = store().load("core").reveal()
    assert kept["snmp_community"] == COMMUNITY and kept["ssh_password"] == SSH
    assert kept["snmp_v3"]["auth_key"] == AUTH and kept["snmp_v3"]["auth_protocol"] == "SHA-512"
    assert kept["ssh_username"] == "ops"
    assert kept["netconf_username"] is None and kept["netconf_password"] is None
    assert put.json()["netconf_password_set"] is False
    changed = client.put(f"{BASE}/core", headers=admin,
                         json={"snmp_community": OTHER[0], "ssh_username": "ops"})
    assert changed.status_code == 200
    after = store().load("core").reveal()
    assert after["snmp_community"] == OTHER[0] and after["snmp_v3"] is None
    assert client.put(f"{BASE}/nope", json={}, headers=admin).status_code == 404

    # refused bodies: a short USM key (422), a privacy key alone (400), unknown fields
    short = client.post(BASE, headers=admin, json={
        "name": "v3", "snmp_v3": {"user": "u", "auth_key": "short7!"}})
    assert short.status_code == 422 and "short7!" not in short.text
    alone = client.post(BASE, headers=admin, json={
        "name": "v3", "snmp_v3": {"user": "u", "priv_key": PRIV}})
    assert alone.status_code == 400, alone.text
    assert "priv_key" in alone.json()["detail"]
    assert client.post(BASE, headers=admin, json={"name": "v3", "x": 1}).status_code == 422

    # delete: refused while a device uses it, then forced
    add_device(engine, "r1", "core")
    used = client.delete(f"{BASE}/core", headers=admin)
    assert used.status_code == 409 and "r1" in used.json()["detail"]
    assert store().exists("core")
    gone = client.delete(f"{BASE}/core", params={"force": "true"}, headers=admin)
    assert gone.status_code == 200 and gone.json()["name"] == "core"
    assert not store().exists("core")
    assert client.delete(f"{BASE}/core", headers=admin).status_code == 404

    with Session(engine) as s:
        _, records = list_audit(s, action="/api/credentials")
    actions = [(r.action, r.status_code) for r in records]
    assert ("POST /api/credentials", 201) in actions
    assert ("PUT /api/credentials/{name}", 200) in actions
    assert ("DELETE /api/credentials/{name}", 200) in actions
    put_record = [r for r in records if r.action.startswith("PUT")][-1]  # newest first
    assert put_record.before["ssh_username"] == "admin"
    assert put_record.after["ssh_username"] == "ops"


def test_operator_and_viewer_refused_on_every_credentials_route(
        web: FastAPI, client: TestClient, tokens: dict[str, Any]) -> None:
    store().save(CredentialProfile.model_validate({"name": "core",
                                                   "snmp_community": COMMUNITY}))
    routes = [(m, r.path) for r in app_routes(web) if r.path.startswith(BASE)
              for m in sorted(r.methods or ()) if m != "HEAD"]
    assert {m for m, _ in routes} == {"GET", "POST", "PUT", "DELETE"}
    for role in ("viewer", "operator"):
        for method, path in routes:
            url = path.replace("{name}", "core")
            body = BODY if method in ("POST", "PUT") else None
            answer = client.request(method, url, json=body, headers=tokens[role])
            assert answer.status_code == 403, (role, method, path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert_clean(answer.text, f"{role}'s {method} {path}")
    anonymous = client.get(BASE)
    assert anonymous.status_code == 401
    assert store().load("core").reveal()["snmp_community"] == COMMUNITY
    assert client.get(BASE, headers=tokens["admin"]).status_code == 200


def test_canary_never_in_answers_audit_or_logs(client: TestClient, tokens: dict[str, Any],
                                               engine: Engine, home: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    admin = tokens["admin"]
    answers = []
    calls: list[tuple[str, str, Any, dict[str, str]]] = [
        ("POST", BASE, BODY, admin),
        ("POST", BASE, BODY, admin),  # 409
        ("POST", BASE, {**BODY, "name": "bad name"}, admin),  # 422
        ("POST", BASE, {**BODY, "name": "x", "snmp_v3": {"user": "u", "priv_key": PRIV}},
         admin),  # 400
        ("POST", BASE, {**BODY, "name": "y", "ssh_username": ""}, admin),  # 422
        ("GET", BASE, None, admin), ("GET", f"{BASE}/core", None, admin),
        ("PUT", f"{BASE}/core", {k: v for k, v in BODY.items() if k != "name"}, admin),
        ("PUT", f"{BASE}/core", {"snmp_community": COMMUNITY, "extra": SSH}, admin),  # 422
        ("POST", BASE, {**BODY, "name": "peek"}, tokens["operator"]),  # 403
        ("GET", "/api/audit", None, admin),
        ("DELETE", f"{BASE}/core", None, admin),
    ]
    for method, path, body, headers in calls:
        answer = client.request(method, path, json=body, headers=headers)
        answers.append(answer)
        assert_clean(f"{answer.status_code} {answer.headers} {answer.text}",
                     f"the answer to {method} {path}")
    assert sorted({a.status_code for a in answers}) == [200, 201, 400, 403, 409, 422]

    with Session(engine) as s:
        total, records = list_audit(s, limit=1000)
    assert total == 4  # the changes that succeeded (POST, PUT, DELETE) and the 403
    dumped = json.dumps([r.model_dump(mode="json") for r in records])
    assert_clean(dumped, "the audit records")
    created = next(r for r in records if r.action == "POST /api/credentials"
                   and r.status_code == 201)
    assert created.request["snmp_community"] == REDACTED
    assert created.request["snmp_v3"]["auth_key"] == REDACTED
    assert created.request["ssh_password"] == REDACTED
    refused = next(r for r in records if r.status_code == 403)
    assert refused.request["netconf_password"] == REDACTED
    audited = client.get("/api/audit", params={"limit": 1000}, headers=admin)
    assert_clean(audited.text, "GET /api/audit")

    assert_clean(caplog.text, "the logs")
    for record in caplog.records:
        assert_clean(str(record.args), "a log record's arguments")
    for path in home.rglob("*"):
        if path.is_file() and path.name != "credentials.key":
            assert_clean(path.read_bytes(), str(path))
