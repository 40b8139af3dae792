"""``switchboard bss customers|accounts|sites|offerings``: the catalogue and the CRM.

Each group lists when called alone (``switchboard bss customers``), and has ``list``,
``show ID`` and ``add``; ``offerings`` has ``activate``, ``retire`` and ``load [FILE]``
instead of ``add``. ``--json`` prints what the REST API answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bss import catalogue, crm
from bss.model import (
    BillingAccount,
    Contact,
    Customer,
    ProductOffering,
    ProductOfferingPrice,
    ProductSpecification,
    init_bss_db,
    loads,
)
from northbound.api_bss import account_doc, customer_doc, offering_doc, site_doc
from northbound.output import emit_json, out, table
from topology.db import get_engine

__all__ = ["bss_app"]

bss_app = typer.Typer(help="BSS: the product catalogue, customers, billing accounts and "
                      "sites.", no_args_is_help=True)
customers_app = typer.Typer(help="Customers and their contacts (list when called alone).",
                            invoke_without_command=True)
accounts_app = typer.Typer(help="Billing accounts (list when called alone).",
                           invoke_without_command=True)
sites_app = typer.Typer(help="Sites: the edge router's port that serves a customer (list "
                        "when called alone).", invoke_without_command=True)
offerings_app = typer.Typer(help="Product offerings: list, show, life cycle, load the "
                            "catalogue file (list when called alone).",
                            invoke_without_command=True)
bss_app.add_typer(customers_app, name="customers")
bss_app.add_typer(accounts_app, name="accounts")
bss_app.add_typer(sites_app, name="sites")
bss_app.add_typer(offerings_app, name="offerings")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
LimitOpt = Annotated[int, typer.Option(min=1, max=1000, help="Rows to show.")]
CustomerOpt = Annotated[str, typer.Option("--customer", help="The customer's id (CUST-0001).")]


def _engine() -> Engine:
    engine = get_engine()
    init_bss_db(engine)
    return engine


def _session() -> Session:
    return Session(_engine(), expire_on_commit=False)


def _customer_json(s: Session, c: Customer) -> dict[str, Any]:
    contacts = list(s.exec(select(Contact).where(Contact.customer_id == c.id)
                           .order_by(col(Contact.id))).all())
    accounts = list(s.exec(select(BillingAccount).where(BillingAccount.customer_id == c.id)
                           .order_by(col(BillingAccount.id))).all())
    return customer_doc(c, contacts, accounts)


# -- customers ------------------------------------------------------------------------------


@customers_app.callback()
def customers_default(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Customers (list when called alone)."""
    if ctx.invoked_subcommand is None:
        customers_list(as_json=as_json)


@customers_app.command("list")
def customers_list(limit: LimitOpt = 100, as_json: JsonOpt = False) -> None:
    """Customers by id, with their contacts and accounts."""
    with _session() as s:
        page = crm.list_customers(s, limit=limit)
        docs = [_customer_json(s, c) for c in page.items]
    if as_json:
        emit_json(docs)
        return
    table("customers", ["id", "name", "status", "contacts", "accounts", "since"],
          [[d["id"], escape(d["name"]), d["status"],
            escape(", ".join(k["name"] for k in d["relatedParty"])),
            ", ".join(a["id"] for a in d["account"]),
            f"{d['validFor']['startDateTime']:%Y-%m-%d}"] for d in docs],
          caption=f"{len(docs)} of {page.total}")


@customers_app.command("show")
def customers_show(customer_id: Annotated[str, typer.Argument(metavar="ID")],
                   as_json: JsonOpt = False) -> None:
    """One customer: contacts, accounts, sites."""
    with _session() as s:
        c = crm.get_customer(s, customer_id)
        doc = _customer_json(s, c)
        sites = crm.list_sites(s, customer_id=c.id, limit=1000).items
        doc["site"] = [{"id": x.id, "name": x.name, "device": x.device, "port": x.port}
                       for x in sites]
    if as_json:
        emit_json(doc)
        return
    out.print(f"[bold]{doc['id']}[/] {escape(doc['name'])} ({doc['status']})",
              highlight=False)
    table("contacts", ["id", "name", "role", "email", "phone"],
          [[k["id"], escape(k["name"]), k["role"], escape(k["email"] or "-"),
            escape(k["phone"] or "-")] for k in doc["relatedParty"]])
    table("billing accounts", ["id", "name"],
          [[a["id"], escape(a["name"])] for a in doc["account"]])
    table("sites", ["id", "name", "device", "port"],
          [[x["id"], escape(x["name"]), x["device"], x["port"]] for x in doc["site"]])


@customers_app.command("add")
def customers_add(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    contact_name: Annotated[str | None, typer.Option(help="A first contact's name.")] = None,
    contact_email: Annotated[str | None, typer.Option(help="Their email.")] = None,
    contact_phone: Annotated[str | None, typer.Option(help="Their phone.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a customer (a name no other customer has)."""
    contacts = []
    if contact_name or contact_email or contact_phone:
        contacts.append(crm.NewContact(contact_name or name, contact_email, contact_phone))
    with _session() as s:
        c = crm.create_customer(s, name, contacts=contacts)
        doc = _customer_json(s, c)
    if as_json:
        emit_json(doc)
        return
    out.print(f"customer [bold]{c.id}[/] {escape(c.name)} created", highlight=False)


# -- accounts -------------------------------------------------------------------------------


@accounts_app.callback()
def accounts_default(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Billing accounts (list when called alone)."""
    if ctx.invoked_subcommand is None:
        accounts_list(as_json=as_json)


@accounts_app.command("list")
def accounts_list(
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's.")]
    = None, limit: LimitOpt = 100, as_json: JsonOpt = False,
) -> None:
    """Billing accounts by id."""
    with _session() as s:
        page = crm.list_billing_accounts(s, customer_id=customer, limit=limit)
        docs = [account_doc(a, s.get(Customer, a.customer_id)) for a in page.items]
    if as_json:
        emit_json(docs)
        return
    table("billing accounts", ["id", "customer", "name", "currency", "bill day", "tax rate",
                               "state"],
          [[d["id"], escape(f"{d['relatedParty'][0]['id']} {d['relatedParty'][0]['name']}"),
            escape(d["name"]), d["currency"], d["billCycleDay"], d["taxRate"], d["state"]]
           for d in docs], caption=f"{len(docs)} of {page.total}")


@accounts_app.command("show")
def accounts_show(account_id: Annotated[str, typer.Argument(metavar="ID")],
                  as_json: JsonOpt = False) -> None:
    """One billing account."""
    with _session() as s:
        a = crm.get_billing_account(s, account_id)
        doc = account_doc(a, s.get(Customer, a.customer_id))
    if as_json:
        emit_json(doc)
        return
    party = doc["relatedParty"][0]
    out.print(f"[bold]{doc['id']}[/] {escape(doc['name'])} for {party['id']} "
              f"{escape(party['name'] or '')}: {doc['currency']}, bills on day "
              f"{doc['billCycleDay']}, tax rate {doc['taxRate']}, {doc['state']}",
              highlight=False)


@accounts_app.command("add")
def accounts_add(
    customer: CustomerOpt,
    currency: Annotated[str, typer.Option(help="3 letters.")] = "EUR",
    bill_day: Annotated[int, typer.Option("--bill-day", help="Day of the month bills are "
                                          "cut, 1..28.")] = 1,
    tax_rate: Annotated[str, typer.Option("--tax-rate", help="A fraction: 0.21 for 21 "
                                          "percent.")] = "0",
    name: Annotated[str | None, typer.Option(help="Default: '<customer> account'.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a billing account for a customer."""
    with _session() as s:
        a = crm.create_billing_account(s, customer, name=name, currency=currency,
                                       bill_cycle_day=bill_day, tax_rate=tax_rate)
        doc = account_doc(a, s.get(Customer, a.customer_id))
    if as_json:
        emit_json(doc)
        return
    out.print(f"billing account [bold]{a.id}[/] for {a.customer_id} created "
              f"({a.currency}, day {a.bill_cycle_day}, tax {a.tax_rate})", highlight=False)


# -- sites ----------------------------------------------------------------------------------


@sites_app.callback()
def sites_default(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Sites (list when called alone)."""
    if ctx.invoked_subcommand is None:
        sites_list(as_json=as_json)


@sites_app.command("list")
def sites_list(
    customer: Annotated[str | None, typer.Option("--customer", help="Only this customer's.")]
    = None, limit: LimitOpt = 100, as_json: JsonOpt = False,
) -> None:
    """Sites by id, with the port that serves each."""
    with _session() as s:
        page = crm.list_sites(s, customer_id=customer, limit=limit)
        docs = [site_doc(x, s.get(Customer, x.customer_id)) for x in page.items]
    if as_json:
        emit_json(docs)
        return
    table("sites", ["id", "customer", "name", "device", "port", "link address",
                    "customer address", "host"],
          [[d["id"], escape(d["relatedParty"][0]["id"]), escape(d["name"]), d["device"],
            d["port"], d["linkAddress"], d["customerAddress"], d["host"]] for d in docs],
          caption=f"{len(docs)} of {page.total}")


@sites_app.command("show")
def sites_show(site_id: Annotated[str, typer.Argument(metavar="ID")],
               as_json: JsonOpt = False) -> None:
    """One site."""
    with _session() as s:
        x = crm.get_site(s, site_id)
        doc = site_doc(x, s.get(Customer, x.customer_id))
    if as_json:
        emit_json(doc)
        return
    out.print(f"[bold]{doc['id']}[/] {escape(doc['name'])} of {doc['relatedParty'][0]['id']}: "
              f"{doc['device']}:{doc['port']} link {doc['linkAddress'] or '-'} customer "
              f"{doc['customerAddress'] or '-'} host {doc['host'] or '-'}", highlight=False)


@sites_app.command("add")
def sites_add(
    customer: CustomerOpt,
    name: Annotated[str, typer.Option("--name", help="The site's name.")],
    device: Annotated[str, typer.Option(help="The edge router, by its inventory name.")],
    port: Annotated[str, typer.Option(help="Its customer-facing interface.")],
    link_address: Annotated[str | None, typer.Option(
        "--link-address", help="The router's address on the link: 100.64.12.1/24.")] = None,
    customer_address: Annotated[str | None, typer.Option(
        "--customer-address", help="The customer's address on the link.")] = None,
    host: Annotated[str | None, typer.Option(help="The customer's host (a lab node).")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a site served by a port of a device in the inventory."""
    with _session() as s:
        x = crm.create_site(s, customer, name, device=device, port=port,
                            link_address=link_address, customer_address=customer_address,
                            host=host)
        doc = site_doc(x, s.get(Customer, x.customer_id))
    if as_json:
        emit_json(doc)
        return
    out.print(f"site [bold]{x.id}[/] {escape(x.name)} on {x.device}:{x.port} created",
              highlight=False)


# -- offerings ------------------------------------------------------------------------------


def _offering_json(s: Session, o: ProductOffering) -> dict[str, Any]:
    prices = list(s.exec(select(ProductOfferingPrice)
                         .where(ProductOfferingPrice.offering_id == o.id)
                         .order_by(col(ProductOfferingPrice.id))).all())
    return offering_doc(o, prices, s.get(ProductSpecification, o.spec_id))


_PRICE_ORDER = {"oneTime": 0, "recurring": 1, "usage": 2}


def _price_text(p: ProductOfferingPrice) -> str:
    money = f"{p.amount} {p.currency}"
    if p.price_type == "oneTime":
        return f"{money} once"
    if p.price_type == "recurring":
        return f"{money}/month"
    tiers = loads(p.tiers_json, [])
    if not tiers:
        return f"{money}/{p.unit}"
    steps = [f"{t['amount']}" + (f" to {t['up_to']}" if t["up_to"] is not None else " above")
             for t in tiers]
    return f"per {p.unit}: " + ", ".join(steps)


def _prices(s: Session, offering_id: str) -> list[ProductOfferingPrice]:
    rows = s.exec(select(ProductOfferingPrice)
                  .where(ProductOfferingPrice.offering_id == offering_id)).all()
    return sorted(rows, key=lambda p: (_PRICE_ORDER.get(p.price_type, 9), p.id))


@offerings_app.callback()
def offerings_default(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Product offerings (list when called alone)."""
    if ctx.invoked_subcommand is None:
        offerings_list(as_json=as_json)


@offerings_app.command("list")
def offerings_list(
    status: Annotated[str | None, typer.Option(help="draft, active or retired.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Offerings with their prices and SLA."""
    with _session() as s:
        q = select(ProductOffering)
        if status:
            q = q.where(ProductOffering.lifecycle_status == status)
        rows = list(s.exec(q.order_by(col(ProductOffering.id))).all())
        docs = [_offering_json(s, o) for o in rows]
        prices = {o.id: "; ".join(_price_text(p) for p in _prices(s, o.id)) for o in rows}
    if as_json:
        emit_json(docs)
        return
    table("product offerings", ["id", "name", "status", "service", "prices", "SLA"],
          [[d["id"], escape(d["name"]), d["lifecycleStatus"], d["fulfilment"]["service"],
            escape(prices[d["id"]]),
            (f"{d['serviceLevelAgreement']['availabilityPct']} % "
             f"({d['serviceLevelAgreement']['creditPctOfRecurring']} % credit)"
             if d["serviceLevelAgreement"] else None)] for d in docs],
          caption=None if docs else "empty: switchboard bss offerings load")


@offerings_app.command("show")
def offerings_show(offering_id: Annotated[str, typer.Argument(metavar="ID")],
                   as_json: JsonOpt = False) -> None:
    """One offering: prices with tiers, parameters, allocations, SLA."""
    with _session() as s:
        o = s.get(ProductOffering, offering_id)
        if o is None:
            raise catalogue.CatalogueNotFound(f"no product offering {offering_id!r}")
        doc = _offering_json(s, o)
        prices = _prices(s, o.id)
    if as_json:
        emit_json(doc)
        return
    out.print(f"[bold]{doc['id']}[/] {escape(doc['name'])} ({doc['lifecycleStatus']}), "
              f"spec {doc['productSpecification']['id']}, service "
              f"{doc['fulfilment']['service']}", highlight=False)
    rows = []
    for p in prices:
        tiers = loads(p.tiers_json, [])
        how = (", ".join(f"up to {t['up_to']}: {t['amount']}" if t["up_to"] is not None
                         else f"above: {t['amount']}" for t in tiers) if tiers else "")
        rows.append([p.id, escape(p.name), p.price_type, f"{p.amount} {p.currency}",
                     p.unit or p.period or "", how])
    table("prices", ["id", "name", "type", "amount", "per", "tiers"], rows)
    table("parameters", ["parameter", "source"],
          [[k, escape(v)] for k, v in doc["fulfilment"]["parameters"].items()])
    if doc["fulfilment"]["allocations"]:
        table("allocations", ["name", "kind", "pool", "prefix length"],
              [[k, v["kind"], v["pool"], v.get("prefix_len")]
               for k, v in doc["fulfilment"]["allocations"].items()])


def _set_status(offering_id: str, status: str, as_json: bool) -> None:
    with _session() as s:
        o = catalogue.set_offering_status(s, offering_id, status)
        doc = _offering_json(s, o)
    if as_json:
        emit_json(doc)
        return
    out.print(f"offering [bold]{o.id}[/] is {o.lifecycle_status}", highlight=False)


@offerings_app.command("activate")
def offerings_activate(offering_id: Annotated[str, typer.Argument(metavar="ID")],
                       as_json: JsonOpt = False) -> None:
    """Draft -> active: the offering can be ordered."""
    _set_status(offering_id, "active", as_json)


@offerings_app.command("retire")
def offerings_retire(offering_id: Annotated[str, typer.Argument(metavar="ID")],
                     as_json: JsonOpt = False) -> None:
    """Active -> retired: no new orders; existing products keep it."""
    _set_status(offering_id, "retired", as_json)


@offerings_app.command("load")
def offerings_load(
    file: Annotated[Path | None, typer.Argument(
        metavar="[FILE]", help="A catalogue YAML file (default: the shipped example).")]
    = None,
    as_json: JsonOpt = False,
) -> None:
    """Load a catalogue file: all or nothing, the same file twice changes nothing."""
    report = catalogue.load_catalogue(_engine(), file)
    if as_json:
        emit_json(report.as_dict())
        return
    out.print(f"{escape(report.source)}: {len(report.created)} created, "
              f"{len(report.updated)} updated, {len(report.removed)} removed, "
              f"{len(report.unchanged)} unchanged", highlight=False)
    for label in report.created:
        out.print(f"  [green]+[/] {escape(label)}", highlight=False)
    for label in report.updated:
        out.print(f"  [yellow]~[/] {escape(label)}", highlight=False)
    for label in report.removed:
        out.print(f"  [red]-[/] {escape(label)}", highlight=False)
    for note in report.notes:
        out.print(f"  note: {escape(note)}", highlight=False)
