"""``switchboard bill ...`` and ``switchboard assurance report`` through typer's runner."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner, Result

import bss.billing
from northbound.cli_bill import assurance_app, bill_app
from tests.unit.bss_factory import (
    FAULT_OUTAGES,
    make_engine,
    seed_account,
    seed_offering,
    seed_product,
)
from topology.db import dispose_engines

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("SWITCHBOARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", f"sqlite:///{tmp_path / 'bss.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(bss.billing, "outage_problems", lambda rules=None: FAULT_OUTAGES)
    eng = make_engine(tmp_path)
    seed_account(eng)
    seed_offering(eng, "bi", name="Business internet 100", recurring="49.00",
                  one_time="99.00")
    seed_product(eng, "P-1", offering="bi", activated_at=datetime(2026, 11, 16, tzinfo=UTC))
    yield eng
    dispose_engines()


def bill(*args: str) -> Result:
    return CliRunner().invoke(bill_app, list(args))


def test_run_show_issue_credit_list(engine: Engine) -> None:
    res = bill("run", "--account", "ACC-1", "--period", "2026-11", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert [ln["kind"] for ln in doc["lines"]] == ["oneTime", "recurring"]
    assert doc["lines"][1]["amount"] == "24.50"  # 15 of 30 days
    assert doc["subtotal"] == "123.50" and doc["tax"] == "25.94" and doc["total"] == "149.44"
    bill_id = doc["id"]

    again = json.loads(bill("run", "--account", "ACC-1", "--period", "2026-11",
                            "--json").stdout)
    assert again["id"] == bill_id

    shown = ANSI.sub("", bill("show", bill_id).output)
    assert "Business internet 100: Monthly fee, 15.0000 of 30 days" in shown
    assert "149.44" in shown and "tax 21%" in shown

    res = bill("issue", bill_id)
    assert res.exit_code == 0 and "issued" in res.output
    res = bill("issue", bill_id)
    assert res.exit_code == 1 and "only a new bill can be issued" in ANSI.sub("", res.output)

    res = bill("credit", bill_id, "--amount", "10.00", "--reason", "goodwill", "--json")
    assert res.exit_code == 0, res.output
    note = json.loads(res.stdout)
    assert (note["kind"], note["corrects_id"], note["total"]) == ("credit-note", bill_id,
                                                                  "-12.10")
    listed = json.loads(bill("list", "--account", "ACC-1", "--json").stdout)
    assert listed["total"] == 2
    assert {b["id"] for b in listed["bills"]} == {bill_id, note["id"]}


def test_bad_input_is_one_clear_error(engine: Engine) -> None:
    res = bill("run", "--account", "ACC-1", "--period", "2026-13")
    assert res.exit_code == 1 and "YYYY-MM" in ANSI.sub("", res.output)
    res = bill("show", "INV-1999-000009")
    assert res.exit_code == 1 and "no bill" in ANSI.sub("", res.output)
    res = bill("credit", "INV-1999-000009", "--reason", "x")
    assert res.exit_code == 1 and "either an amount" in ANSI.sub("", res.output)


def test_assurance_report_json(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import bss.assurance

    monkeypatch.setattr(bss.assurance, "_default_reader", lambda engine: lambda d: "")
    res = CliRunner().invoke(assurance_app, ["report", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    # P-1 is on r1, which is not in this inventory: nothing is concluded about it
    assert [u["product_id"] for u in rep["unchecked"]] == ["P-1"]
    assert rep["leakage"] == [] and rep["billed_not_configured"] == []
