"""``switchboard users`` and ``switchboard audit``: passwords never from arguments, secrets
printed once, every change audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from sqlmodel import Session
from typer.testing import CliRunner

from northbound.cli_users import audit_app, users_app
from topology.db import dispose_engines, get_engine
from topology.users import verify_password, verify_token

app = typer.Typer()
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
runner = CliRunner()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SWITCHBOARD_HOME", str(tmp_path))
    monkeypatch.delenv("SWITCHBOARD_DATABASE_URL", raising=False)
    monkeypatch.setenv("SUDO_USER", "root-operator")
    yield tmp_path
    dispose_engines()


def test_add_from_stdin_list_role_disable() -> None:
    done = runner.invoke(app, ["users", "add", "olga", "--role", "operator",
                               "--password-stdin"], input="correct-horse-1\n")
    assert done.exit_code == 0, done.output
    assert "correct-horse-1" not in done.output
    with Session(get_engine()) as s:
        assert verify_password(s, "olga", "correct-horse-1") is not None
    listed = json.loads(runner.invoke(app, ["users", "list", "--json"]).stdout)
    assert [(u["name"], u["role"], u["disabled"]) for u in listed] == [
        ("olga", "operator", False)]
    assert "hash" not in json.dumps(listed)
    assert runner.invoke(app, ["users", "role", "olga", "admin"]).exit_code == 0
    assert runner.invoke(app, ["users", "disable", "olga"]).exit_code == 0
    listed = json.loads(runner.invoke(app, ["users", "list", "--json"]).stdout)
    assert (listed[0]["role"], listed[0]["disabled"]) == ("admin", True)
    records = json.loads(runner.invoke(app, ["audit", "list", "--json"]).stdout)
    assert [r["action"] for r in records] == ["users disable", "users role", "users add"]
    assert {r["who"] for r in records} == {"root-operator"}
    assert records[1]["before"]["role"] == "operator" and records[1]["after"]["role"] == "admin"


def test_prompt_twice_and_generate_prints_once() -> None:
    differ = runner.invoke(app, ["users", "add", "ivan"], input="first-pass-1\nother-pass-2\n")
    assert differ.exit_code != 0
    ok = runner.invoke(app, ["users", "add", "ivan"], input="first-pass-1\nfirst-pass-1\n")
    assert ok.exit_code == 0 and "first-pass-1" not in ok.output
    made = runner.invoke(app, ["users", "add", "anna", "--role", "admin", "--generate"])
    assert made.exit_code == 0, made.output
    password = made.stdout.strip().rsplit(" ", 1)[-1]
    with Session(get_engine()) as s:
        assert verify_password(s, "anna", password) is not None
    bad = runner.invoke(app, ["users", "add", "x", "--role", "root", "--generate"])
    assert bad.exit_code != 0


def test_token_create_prints_once_and_revoke() -> None:
    made = runner.invoke(app, ["users", "token-create", "nms", "--role", "viewer", "--json"])
    assert made.exit_code == 0, made.output
    doc = json.loads(made.stdout)
    with Session(get_engine()) as s:
        assert verify_token(s, doc["value"]) is not None
    listed = runner.invoke(app, ["users", "token-list", "--json"]).stdout
    assert doc["value"] not in listed
    assert runner.invoke(app, ["users", "token-revoke", str(doc["token"]["id"])]).exit_code == 0
    with Session(get_engine()) as s:
        assert verify_token(s, doc["value"]) is None
