"""Billing over REST in the shape of TMF678 (Customer Bill Management v4), the bill run,
and the revenue-assurance report.

    GET  /tmf-api/customerBillManagement/v4/customerBill            ?billingAccount.id=
                                                                      &state=&offset=&limit=
    GET  /tmf-api/customerBillManagement/v4/customerBill/{id}
    GET  /tmf-api/customerBillManagement/v4/customerBill/{id}/html   the invoice as a page
    GET  /tmf-api/customerBillManagement/v4/appliedCustomerBillingRate   ?bill.id=
    GET  /tmf-api/customerBillManagement/v4/appliedCustomerBillingRate/{id}
    POST /api/billing/runs                    {account, period, redo}  -> the customerBill
    POST /api/billing/bills/{id}/issue                                 -> the customerBill
    POST /api/billing/bills/{id}/creditNotes  {reason, amount | lines} -> the credit note
    GET  /api/assurance/report                ?device=                 -> the report

Lists carry X-Total-Count (all matching) and X-Result-Count (this page). Amounts are TMF
Money objects ``{"unit": "EUR", "value": 12.5}``; the exact decimal text is in
``x_text``. Errors are RFC 9457 problem details: 404 unknown bill, 409 a bill that is not
in a state for the change (issued bills are immutable), 400 any other refusal.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader
from pydantic import BaseModel, Field
from sqlmodel import Session

from bss.billing import (
    BillingError,
    bill_lines,
    credit_note,
    get_bill,
    issue_bill,
    list_bills,
    run_bill,
)
from bss.model import BillingAccount, BillLine, Customer, CustomerBill, loads
from northbound.problems import (
    MAX_INT,
    ProblemRoute,
    problem_responses,
)
from topology.queries import NotFound

__all__ = ["bill_html", "router", "tmf_bill", "tmf_rate"]

BASE = "/tmf-api/customerBillManagement/v4"
_TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                         autoescape=True, trim_blocks=True, lstrip_blocks=True)


router = APIRouter(route_class=ProblemRoute, tags=["billing"],
                   responses=problem_responses(400, 404, 409, 422))


def _session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]
Offset = Annotated[int, Query(ge=0, le=MAX_INT, description="rows to skip")]
Limit = Annotated[int, Query(ge=1, le=1000, description="rows per page")]


class RunIn(BaseModel):
    """A bill run."""

    account: str = Field(min_length=1, max_length=32, description="the billing account id")
    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")
    redo: bool = Field(default=False, description="rebuild the invoice while it is new")


class CreditIn(BaseModel):
    """A credit note: an amount (tax-exclusive) or lines of the invoice."""

    reason: str = Field(min_length=1, max_length=500)
    amount: str | None = Field(default=None, max_length=32, pattern=r"^\d+(\.\d+)?$")
    lines: list[Annotated[int, Field(ge=0, le=MAX_INT)]] | None = Field(default=None,
                                                                       max_length=1000)


# -- TMF678 shapes ------------------------------------------------------------------------


def _money(text: str, currency: str) -> dict[str, Any]:
    return {"unit": currency, "value": float(Decimal(text)), "x_text": text}


def _iso(at: Any) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def _bill_ref(bill_id: str) -> dict[str, Any]:
    return {"id": bill_id, "href": f"{BASE}/customerBill/{bill_id}",
            "@referredType": "CustomerBill"}


def tmf_bill(bill: CustomerBill) -> dict[str, Any]:
    """A bill as a TMF678 CustomerBill (``state`` new or sent; ``x_state`` ours)."""
    out: dict[str, Any] = {
        "id": bill.id, "href": f"{BASE}/customerBill/{bill.id}", "billNo": bill.number,
        "category": "normal" if bill.kind == "invoice" else "creditNote",
        "runType": "onCycle" if bill.kind == "invoice" else "offCycle",
        "billDate": _iso(bill.issued_at or bill.created_at),
        "lastUpdate": _iso(bill.issued_at or bill.created_at),
        "state": "sent" if bill.state == "issued" else "new",
        "billingAccount": {"id": bill.billing_account_id,
                           "href": f"/tmf-api/accountManagement/v4/billingAccount/"
                                   f"{bill.billing_account_id}",
                           "@referredType": "BillingAccount"},
        "billingPeriod": {"startDateTime": _iso(bill.period_start),
                          "endDateTime": _iso(bill.period_end)},
        "amountDue": _money(bill.total, bill.currency),
        "remainingAmount": _money(bill.total, bill.currency),
        "taxExcludedAmount": _money(bill.subtotal, bill.currency),
        "taxIncludedAmount": _money(bill.total, bill.currency),
        "taxItem": [{"taxCategory": "VAT", "taxRate": float(Decimal(bill.tax_rate)),
                     "taxAmount": _money(bill.tax, bill.currency)}],
        "relatedParty": [{"id": bill.customer_id, "role": "customer",
                          "href": f"/tmf-api/customerManagement/v4/customer/"
                                  f"{bill.customer_id}",
                          "@referredType": "Customer"}],
        "billDocument": [{"id": f"{bill.id}-html", "name": f"{bill.number}.html",
                          "url": f"{BASE}/customerBill/{bill.id}/html",
                          "mimeType": "text/html", "@referredType": "Document"}],
        "x_kind": bill.kind, "x_state": bill.state, "x_period": bill.period,
        "x_createdAt": _iso(bill.created_at), "x_issuedAt": _iso(bill.issued_at),
        "@type": "CustomerBill",
    }
    if bill.corrects_id:
        out["x_corrects"] = _bill_ref(bill.corrects_id)
    return out


def tmf_rate(line: BillLine, bill: CustomerBill) -> dict[str, Any]:
    """A bill line as a TMF678 AppliedCustomerBillingRate."""
    out: dict[str, Any] = {
        "id": str(line.id), "href": f"{BASE}/appliedCustomerBillingRate/{line.id}",
        "name": line.description, "description": line.description,
        "date": _iso(bill.created_at), "isBilled": True, "type": line.kind,
        "periodCoverage": {"startDateTime": _iso(line.period_start),
                           "endDateTime": _iso(line.period_end)},
        "bill": _bill_ref(bill.id),
        "billingAccount": {"id": bill.billing_account_id, "@referredType": "BillingAccount"},
        "taxExcludedAmount": _money(line.amount, bill.currency),
        "appliedTax": [{"taxCategory": "VAT", "taxRate": float(Decimal(bill.tax_rate))}],
        "characteristic": [{"name": "quantity", "value": line.quantity},
                           {"name": "unit", "value": line.unit},
                           {"name": "unitPrice", "value": line.unit_price}],
        "x_detail": loads(line.detail_json, {}),
        "@type": "AppliedCustomerBillingRate",
    }
    if line.product_id:
        out["product"] = {"id": line.product_id,
                          "href": f"/tmf-api/productInventory/v4/product/{line.product_id}",
                          "@referredType": "Product"}
    return out


def bill_html(s: Session, bill: CustomerBill) -> str:
    """The bill as a readable HTML page (every value escaped)."""
    account = s.get(BillingAccount, bill.billing_account_id)
    customer = s.get(Customer, bill.customer_id)
    lines = bill_lines(s, bill.id)[0]
    shown = []
    for ln in lines:
        q = Decimal(ln.quantity)
        shown.append({"description": ln.description, "kind": ln.kind, "unit": ln.unit,
                      "quantity_shown": q if q == q.to_integral() else
                      q.quantize(Decimal("0.0001")),
                      "unit_price": ln.unit_price, "amount": ln.amount})
    rate = Decimal(bill.tax_rate) * 100
    return _TEMPLATES.get_template("invoice.html.j2").render(
        bill=bill, lines=shown, customer_name=customer.name if customer else bill.customer_id,
        account_name=account.name if account else bill.billing_account_id,
        kind_title="Invoice" if bill.kind == "invoice" else "Credit note",
        tax_pct=rate.normalize() if rate else "0")


# -- TMF678 endpoints ---------------------------------------------------------------------


def _paged(response: Response, total: int, shown: int) -> None:
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(shown)


@router.get(f"{BASE}/customerBill")
def customer_bills(s: SessionDep, response: Response, offset: Offset = 0, limit: Limit = 100,
                   account: Annotated[str | None, Query(alias="billingAccount.id")] = None,
                   account_plain: Annotated[str | None, Query(alias="billingAccount")] = None,
                   state: Annotated[str | None, Query(description="x_state: new or issued")]
                   = None,
                   kind: Annotated[str | None, Query(alias="x_kind")] = None,
                   ) -> list[dict[str, Any]]:
    """Bills, newest first; filter by billing account (``billingAccount.id``)."""
    rows, total = list_bills(s, account=account or account_plain, state=state, kind=kind,
                             offset=offset, limit=limit)
    _paged(response, total, len(rows))
    return [tmf_bill(b) for b in rows]


@router.get(f"{BASE}/customerBill/{{bill_id}}")
def customer_bill(bill_id: str, s: SessionDep) -> dict[str, Any]:
    """One bill."""
    return tmf_bill(get_bill(s, bill_id))


@router.get(f"{BASE}/customerBill/{{bill_id}}/html", response_class=HTMLResponse)
def customer_bill_html(bill_id: str, s: SessionDep) -> HTMLResponse:
    """The bill as a page people read (and print)."""
    return HTMLResponse(bill_html(s, get_bill(s, bill_id)))


@router.get(f"{BASE}/appliedCustomerBillingRate")
def applied_rates(s: SessionDep, response: Response, offset: Offset = 0, limit: Limit = 100,
                  bill_id: Annotated[str | None, Query(alias="bill.id")] = None,
                  ) -> list[dict[str, Any]]:
    """Bill lines, by bill then position; filter by bill (``bill.id``)."""
    if bill_id is not None:
        get_bill(s, bill_id)
    rows, total = bill_lines(s, bill_id, offset=offset, limit=limit)
    bills: dict[str, CustomerBill] = {}
    out = []
    for ln in rows:
        bill = bills.get(ln.bill_id) or bills.setdefault(ln.bill_id, get_bill(s, ln.bill_id))
        out.append(tmf_rate(ln, bill))
    _paged(response, total, len(out))
    return out


@router.get(f"{BASE}/appliedCustomerBillingRate/{{rate_id}}")
def applied_rate(rate_id: str, s: SessionDep) -> dict[str, Any]:
    """One bill line."""
    line = (s.get(BillLine, int(rate_id)) if rate_id.isascii() and rate_id.isdigit()
            and int(rate_id) <= MAX_INT else None)
    if line is None:
        raise NotFound(f"no appliedCustomerBillingRate {rate_id!r}")
    return tmf_rate(line, get_bill(s, line.bill_id))


# -- operations -----------------------------------------------------------------------------


@router.post("/api/billing/runs")
def bill_run(request: Request, body: RunIn, response: Response) -> dict[str, Any]:
    """Bill the account for the period: 201 with a new invoice, 200 with the existing one
    (a repeated run bills nothing twice)."""
    engine = request.app.state.engine
    with Session(engine) as s:
        before = {b.id for b in list_bills(s, account=body.account, kind="invoice",
                                           limit=1000)[0] if b.period == body.period}
    bill = run_bill(engine, body.account, body.period, redo=body.redo)
    response.status_code = 200 if bill.id in before else 201
    return tmf_bill(bill)


@router.post("/api/billing/bills/{bill_id}/issue")
def bill_issue(request: Request, bill_id: str) -> dict[str, Any]:
    """Issue the bill: immutable from now on."""
    return tmf_bill(issue_bill(request.app.state.engine, bill_id))


@router.post("/api/billing/bills/{bill_id}/creditNotes", status_code=201)
def bill_credit(request: Request, bill_id: str, body: CreditIn) -> dict[str, Any]:
    """A credit note correcting the issued invoice."""
    if (body.amount is None) == (not body.lines):
        raise BillingError("give either amount or lines")
    return tmf_bill(credit_note(request.app.state.engine, bill_id, reason=body.reason,
                                amount=body.amount, line_ids=body.lines))


@router.get("/api/assurance/report", tags=["assurance"])
def assurance(request: Request,
              device: Annotated[list[str] | None, Query(description="only these routers")]
              = None) -> dict[str, Any]:
    """Configured but not billed (leakage), billed but not configured, matched. Reads the
    routers' running configs over their CLI (``app.state.config_reader``, a callable
    device -> config text, replaces the reader)."""
    from bss.assurance import assurance_report

    reader = getattr(request.app.state, "config_reader", None)
    return assurance_report(request.app.state.engine, read_config=reader,
                            devices=device).to_dict()

