"""``switchboard bill run|show|issue|credit|list`` and ``switchboard assurance report``."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.markup import escape
from sqlmodel import Session

from northbound.output import emit_json, err, out, table
from topology.db import get_engine
from topology.errors import SwitchboardError

__all__ = ["assurance_app", "bill_app", "bill_doc"]

bill_app = typer.Typer(help="Bills: run a period for an account, show, issue, credit, list.",
                       no_args_is_help=True)
assurance_app = typer.Typer(help="Revenue assurance: what the network carries against what "
                            "is billed.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
BillArg = Annotated[str, typer.Argument(metavar="ID", help="The bill's id (its number).")]


def _engine() -> Any:
    from bss.model import init_bss_db

    engine = get_engine()
    init_bss_db(engine)
    return engine


def _fail(exc: SwitchboardError) -> typer.Exit:
    err.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
    return typer.Exit(1)


def bill_doc(session: Session, bill: Any) -> dict[str, Any]:
    """A bill with its lines, as ``--json`` prints it."""
    from bss.billing import bill_lines

    lines = bill_lines(session, bill.id)[0]
    return {"id": bill.id, "number": bill.number, "kind": bill.kind, "state": bill.state,
            "billing_account_id": bill.billing_account_id, "customer_id": bill.customer_id,
            "period": bill.period, "period_start": bill.period_start,
            "period_end": bill.period_end, "currency": bill.currency,
            "subtotal": bill.subtotal, "tax_rate": bill.tax_rate, "tax": bill.tax,
            "total": bill.total, "corrects_id": bill.corrects_id or None,
            "created_at": bill.created_at, "issued_at": bill.issued_at,
            "lines": [{"id": ln.id, "product_id": ln.product_id, "kind": ln.kind,
                       "description": ln.description, "quantity": ln.quantity,
                       "unit": ln.unit, "unit_price": ln.unit_price, "amount": ln.amount,
                       "period_start": ln.period_start, "period_end": ln.period_end,
                       "detail": json.loads(ln.detail_json or "{}")} for ln in lines]}


def _show(doc: dict[str, Any]) -> None:
    title = "Invoice" if doc["kind"] == "invoice" else "Credit note"
    head = (f"{title} {doc['number']} ({doc['state']}) account {doc['billing_account_id']} "
            f"period {doc['period']}")
    if doc["corrects_id"]:
        head += f", corrects {doc['corrects_id']}"
    rows: list[list[Any]] = []
    for ln in doc["lines"]:
        q = Decimal(ln["quantity"])
        q = q if q == q.to_integral() else q.quantize(Decimal("0.0001"))
        rows.append([ln["id"], ln["product_id"], ln["kind"], ln["description"], str(q),
                     ln["unit"], ln["amount"]])
    rate = (Decimal(doc["tax_rate"]) * 100).normalize()
    rows.append(["", "", "", "subtotal", "", "", doc["subtotal"]])
    rows.append(["", "", "", f"tax {rate}%", "", "", doc["tax"]])
    rows.append(["", "", "", "[bold]total[/]", "", "", f"[bold]{doc['total']}[/]"])
    table(escape(head), ["line", "product", "kind", "description", "quantity", "unit",
                         f"amount {doc['currency']}"],
          [[escape(str(c)) if not str(c).startswith("[bold]") else c for c in r]
           for r in rows])


@bill_app.command("run")
def run_cmd(
    account: Annotated[str, typer.Option("--account", help="The billing account id.")],
    period: Annotated[str, typer.Option("--period", help="YYYY-MM.")],
    redo: Annotated[bool, typer.Option("--redo", help="Rebuild the invoice if it is still "
                                       "new (an issued one is never rebuilt).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Bill ACCOUNT for PERIOD; a repeated run shows the existing invoice."""
    from bss.billing import run_bill

    engine = _engine()
    try:
        bill = run_bill(engine, account, period, redo=redo)
    except SwitchboardError as exc:
        raise _fail(exc) from None
    with Session(engine) as s:
        doc = bill_doc(s, bill)
    if as_json:
        emit_json(doc)
    else:
        _show(doc)


@bill_app.command("show")
def show_cmd(bill_id: BillArg, as_json: JsonOpt = False) -> None:
    """A bill with its lines and totals."""
    from bss.billing import get_bill

    with Session(_engine()) as s:
        try:
            doc = bill_doc(s, get_bill(s, bill_id))
        except SwitchboardError as exc:
            raise _fail(exc) from None
    if as_json:
        emit_json(doc)
    else:
        _show(doc)


@bill_app.command("issue")
def issue_cmd(bill_id: BillArg, as_json: JsonOpt = False) -> None:
    """Issue a new bill: from now on it cannot change (correct it with a credit note)."""
    from bss.billing import issue_bill

    try:
        bill = issue_bill(_engine(), bill_id)
    except SwitchboardError as exc:
        raise _fail(exc) from None
    if as_json:
        emit_json({"id": bill.id, "state": bill.state, "issued_at": bill.issued_at,
                   "total": bill.total, "currency": bill.currency})
    else:
        out.print(f"{escape(bill.id)} issued, total {bill.total} {bill.currency}",
                  highlight=False)


@bill_app.command("credit")
def credit_cmd(
    bill_id: BillArg,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept on the credit note).")],
    amount: Annotated[str | None, typer.Option("--amount", help="Amount to credit, "
                                               "tax-exclusive, e.g. 10.00.")] = None,
    line: Annotated[list[int] | None, typer.Option("--line", help="A line of the invoice "
                                                   "to credit in full (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A credit note correcting an issued invoice."""
    from bss.billing import credit_note

    engine = _engine()
    try:
        note = credit_note(engine, bill_id, reason=reason, amount=amount, line_ids=line)
    except SwitchboardError as exc:
        raise _fail(exc) from None
    with Session(engine) as s:
        doc = bill_doc(s, note)
    if as_json:
        emit_json(doc)
    else:
        _show(doc)


@bill_app.command("list")
def list_cmd(
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")]
    = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Bills, newest first."""
    from bss.billing import list_bills

    with Session(_engine()) as s:
        rows, total = list_bills(s, account=account, limit=limit)
    docs: list[dict[str, Any]] = [
        {"id": b.id, "kind": b.kind, "state": b.state, "account": b.billing_account_id,
         "period": b.period, "currency": b.currency, "subtotal": b.subtotal,
         "tax": b.tax, "total": b.total, "corrects_id": b.corrects_id or None,
         "created_at": b.created_at, "issued_at": b.issued_at} for b in rows]
    if as_json:
        emit_json({"total": total, "bills": docs})
        return
    table(f"Bills ({len(docs)} of {total})",
          ["id", "kind", "state", "account", "period", "total", "corrects"],
          [[escape(d["id"]), d["kind"], d["state"], escape(d["account"]), d["period"],
            f"{d['total']} {d['currency']}", d["corrects_id"]] for d in docs])


@assurance_app.callback()
def assurance_group() -> None:
    """Revenue assurance: what the network carries against what is billed."""


@assurance_app.command("report")
def report_cmd(
    device: Annotated[list[str] | None, typer.Option("--device", help="Only this router "
                                                     "(repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Read the routers' configs; list configured-but-not-billed (leakage),
    billed-but-not-configured and matched services."""
    from bss.assurance import assurance_report

    try:
        rep = assurance_report(_engine(), devices=device).to_dict()
    except SwitchboardError as exc:
        raise _fail(exc) from None
    if as_json:
        emit_json(rep)
        return
    for d in rep["devices"]:
        if d["status"] == "failed":
            err.print(f"[yellow]{escape(d['device'])}: not read:[/] {escape(d['error'])}",
                      highlight=False)
    table("Leakage: configured, not billed", ["device", "interface", "addresses",
                                               "description"],
          [[escape(c["device"]), escape(c["interface"]), escape(", ".join(c["addresses"])),
            escape(c["description"])] for c in rep["leakage"]])
    table("Billed, not configured", ["product", "customer", "device", "interface"],
          [[escape(b["product_id"]), escape(b["customer_id"]), escape(b["device"]),
            escape(b["interface"])] for b in rep["billed_not_configured"]])
    table("Matched", ["device", "interface", "product", "customer"],
          [[escape(m["device"]), escape(m["interface"]), escape(m["product"]["product_id"]),
            escape(m["product"]["customer_id"])] for m in rep["matched"]])
    if rep["unchecked"]:
        table("Not checked", ["product", "device", "interface", "reason"],
              [[escape(u["product_id"]), escape(u["device"]), escape(u["interface"]),
                escape(u["reason"])] for u in rep["unchecked"]])
    s = rep["summary"]
    out.print(f"leakage {s['leakage']}, billed not configured {s['billed_not_configured']}, "
              f"matched {s['matched']}, not checked {s['unchecked']}", highlight=False)
