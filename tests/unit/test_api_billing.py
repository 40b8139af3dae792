"""TMF678 over REST: customerBill and appliedCustomerBillingRate shapes, paging, the bill
run, issue and credit note as problem-details-speaking operations, the HTML invoice
(escaped), and the assurance report with an injected config reader."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

import bss.billing
from northbound.api_billing import router
from tests.unit.bss_factory import (
    FAULT_OUTAGES,
    make_engine,
    seed_account,
    seed_device,
    seed_offering,
    seed_product,
)
from topology.db import dispose_engines

BASE = "/tmf-api/customerBillManagement/v4"
NOV = datetime(2026, 11, 1, tzinfo=UTC)
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "frr_config"


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    eng = make_engine(tmp_path)
    seed_account(eng, name="<script>alert('x')</script> & Sons")
    seed_offering(eng, "bi", name="Business <b>internet</b>", recurring="100.00",
                  one_time="50.00")
    for i in range(3):
        seed_product(eng, f"P-{i}", offering="bi", interface=f"eth{i + 3}",
                     activated_at=NOV + timedelta(days=10 * i),
                     terminated_at=NOV + timedelta(days=10 * (i + 1)))
    monkeypatch.setattr(bss.billing, "outage_problems", lambda rules=None: FAULT_OUTAGES)
    yield eng
    dispose_engines()


@pytest.fixture
def client(engine: Engine) -> TestClient:
    app = FastAPI()
    app.state.engine = engine
    app.include_router(router)
    return TestClient(app)


def run(client: TestClient, account: str = "ACC-1", period: str = "2026-11") -> dict[str, object]:
    res = client.post("/api/billing/runs", json={"account": account, "period": period})
    assert res.status_code in (200, 201), res.text
    return res.json()  # type: ignore[no-any-return]


def test_bill_run_returns_a_tmf678_customer_bill(client: TestClient) -> None:
    res = client.post("/api/billing/runs", json={"account": "ACC-1", "period": "2026-11"})
    assert res.status_code == 201, res.text
    bill = res.json()
    assert bill["@type"] == "CustomerBill"
    assert bill["id"] == bill["billNo"] == "INV-" + str(datetime.now(UTC).year) + "-000001"
    assert bill["href"] == f"{BASE}/customerBill/{bill['id']}"
    assert bill["billingAccount"]["id"] == "ACC-1"
    assert bill["billingPeriod"] == {"startDateTime": "2026-11-01T00:00:00Z",
                                     "endDateTime": "2026-12-01T00:00:00Z"}
    assert bill["state"] == "new" and bill["category"] == "normal"
    excl = Decimal(bill["taxExcludedAmount"]["x_text"])
    tax = Decimal(bill["taxItem"][0]["taxAmount"]["x_text"])
    incl = Decimal(bill["taxIncludedAmount"]["x_text"])
    assert excl == 3 * Decimal("33.33") + 3 * Decimal("50.00")
    assert excl + tax == incl == Decimal(str(bill["amountDue"]["value"]))
    assert bill["taxIncludedAmount"]["unit"] == "EUR"
    again = client.post("/api/billing/runs", json={"account": "ACC-1", "period": "2026-11"})
    assert again.status_code == 200 and again.json()["id"] == bill["id"]


def test_lists_page_and_filter(client: TestClient, engine: Engine) -> None:
    seed_account(engine, "ACC-2", customer="CUST-2", name="Other")
    first = run(client)
    run(client, "ACC-2")
    res = client.get(f"{BASE}/customerBill", params={"limit": 1})
    assert res.headers["X-Total-Count"] == "2" and len(res.json()) == 1
    res = client.get(f"{BASE}/customerBill", params={"billingAccount.id": "ACC-1"})
    assert [b["id"] for b in res.json()] == [first["id"]]
    rates = client.get(f"{BASE}/appliedCustomerBillingRate", params={"bill.id": first["id"]})
    assert rates.headers["X-Total-Count"] == "6"
    body = rates.json()
    assert {r["type"] for r in body} == {"recurring", "oneTime"}
    rec = next(r for r in body if r["type"] == "recurring")
    assert rec["@type"] == "AppliedCustomerBillingRate"
    assert rec["bill"]["id"] == first["id"]
    assert rec["product"]["id"] in {"P-0", "P-1", "P-2"}
    assert rec["taxExcludedAmount"] == {"unit": "EUR", "value": 33.33, "x_text": "33.33"}
    assert rec["x_detail"]["proration"] == "second"
    one = client.get(f"{BASE}/appliedCustomerBillingRate/{rec['id']}").json()
    assert one == rec
    missing = client.get(f"{BASE}/appliedCustomerBillingRate", params={"bill.id": "NOPE"})
    assert missing.status_code == 404


def test_errors_are_problem_details(client: TestClient) -> None:
    res = client.get(f"{BASE}/customerBill/INV-1999-000001")
    assert res.status_code == 404
    assert res.headers["content-type"].startswith("application/problem+json")
    assert res.json()["status"] == 404 and "INV-1999-000001" in res.json()["detail"]
    res = client.post("/api/billing/runs", json={"account": "NOPE", "period": "2026-11"})
    assert res.status_code == 400 and "NOPE" in res.json()["detail"]
    res = client.post("/api/billing/runs", json={"account": "ACC-1", "period": "2026-13"})
    assert res.status_code == 422


def test_issue_then_immutable_then_credit_note(client: TestClient) -> None:
    bill = run(client)
    early = client.post(f"/api/billing/bills/{bill['id']}/creditNotes",
                        json={"reason": "x", "amount": "1.00"})
    assert early.status_code == 409
    issued = client.post(f"/api/billing/bills/{bill['id']}/issue")
    assert issued.status_code == 200 and issued.json()["state"] == "sent"
    assert issued.json()["x_state"] == "issued"
    again = client.post(f"/api/billing/bills/{bill['id']}/issue")
    assert again.status_code == 409
    redo = client.post("/api/billing/runs", json={"account": "ACC-1", "period": "2026-11",
                                                   "redo": True})
    assert redo.status_code == 409
    both = client.post(f"/api/billing/bills/{bill['id']}/creditNotes",
                       json={"reason": "x", "amount": "1.00", "lines": [1]})
    assert both.status_code == 400
    res = client.post(f"/api/billing/bills/{bill['id']}/creditNotes",
                      json={"reason": "late activation", "amount": "10.00"})
    assert res.status_code == 201, res.text
    note = res.json()
    assert note["category"] == "creditNote" and note["x_corrects"]["id"] == bill["id"]
    assert note["taxExcludedAmount"]["x_text"] == "-10.00"
    assert note["taxIncludedAmount"]["x_text"] == "-12.10"
    assert note["id"].startswith("CN-")


def test_html_invoice_is_readable_and_escaped(client: TestClient) -> None:
    bill = run(client)
    res = client.get(f"{BASE}/customerBill/{bill['id']}/html")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    page = res.text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Sons" in page
    assert "Business &lt;b&gt;internet&lt;/b&gt;" in page and "<b>internet" not in page
    assert f"Invoice {bill['id']}" in page
    assert bill["taxIncludedAmount"]["x_text"] + " EUR" in page
    assert "Tax (21%)" in page
    assert client.get(f"{BASE}/customerBill/NOPE/html").status_code == 404


def test_assurance_report_with_an_injected_reader(client: TestClient, engine: Engine) -> None:
    from sqlmodel import Session

    from topology.inventory import Device

    ids = seed_device(engine, "r1", ["eth3", "eth4"])
    with Session(engine) as s:
        dev = s.get(Device, ids[""])
        assert dev is not None
        dev.planes = "snmp,cli"
        s.add(dev)
        s.commit()
    text = (GOLDEN / "running_eth4.txt").read_text()
    client.app.state.config_reader = lambda device: text  # type: ignore[attr-defined]
    rep = client.get("/api/assurance/report").json()
    # P-0..P-2 ended in November: none is active; no link is known in this inventory, so
    # every addressed port but the loopback counts as customer-facing
    assert {(c["device"], c["interface"]) for c in rep["leakage"]} == {
        ("r1", "eth1"), ("r1", "eth2"), ("r1", "eth3"), ("r1", "eth4")}
    assert rep["summary"]["devices_read"] == 1
