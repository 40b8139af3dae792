"""``switchboard order create|show|cancel|list|resume``: product orders from the shell.

``order create`` validates, stores and then runs the order's saga in this process, so the
command ends with the order in its final state: exit code 0 when completed, 1 when it
failed (or was cancelled), 2 when partial. When the site's host is a node of the running
lab, the activation is proved with real packets from it (the lab's reach probe).
"""

from __future__ import annotations

import getpass
import os
from typing import Annotated, Any

import typer
from rich.markup import escape
from sqlmodel import Session, select

from bss.model import Site, init_bss_db
from bss.orders import (
    IdempotencyConflict,
    OrderItemRequest,
    OrderRefused,
    OrderRequest,
    TransitionRefused,
    cancel_order,
    create_order,
    get_order,
    list_orders,
    process_order,
    resume_interrupted,
)
from northbound.api_orders import order_doc
from northbound.cli_config import parse_params
from northbound.output import emit_json, err, out, table
from topology.db import get_engine, init_db
from topology.errors import SwitchboardError

__all__ = ["order_app"]

order_app = typer.Typer(help="Product orders (TMF622): create (validated, then activated "
                        "on the network as a saga), show, cancel, list.",
                        no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
EXIT = {"completed": 0, "partial": 2}


def _engine() -> Any:
    engine = get_engine()
    init_db(engine)
    init_bss_db(engine)
    return engine


def _site_id(engine: Any, customer: str, site: str) -> str:
    """A site by id, or by name among the customer's sites."""
    with Session(engine) as session:
        if session.get(Site, site) is not None:
            return site
        from bss.model import Customer

        cust = session.get(Customer, customer) or session.exec(
            select(Customer).where(Customer.name == customer)).first()
        if cust is None:
            return site  # validation names the unknown customer
        named = session.exec(select(Site).where(Site.customer_id == cust.id,
                                                Site.name == site)).all()
        return named[0].id if len(named) == 1 else site


def _agent(engine: Any, hosts: list[str], lab: str | None) -> Any:
    """The fulfilment agent; with the lab's reach probe when a site's host is a node of
    the running lab (see cli_config._agent)."""
    from agents.fulfilment import FulfilmentAgent

    probe = None
    if hosts:
        try:
            from lab.reach import LabReachProbe

            candidate = LabReachProbe(lab)
            for host in hosts:
                candidate.lab.node(host)
            probe = candidate
        except SwitchboardError as exc:
            err.print(f"[yellow]reach not proved with real packets:[/] {escape(str(exc))}",
                      highlight=False)
    return FulfilmentAgent(engine, probe=probe)


def _print(doc: dict[str, Any]) -> None:
    colour = {"completed": "green", "failed": "red", "partial": "yellow"}.get(doc["state"],
                                                                              "cyan")
    out.print(f"order [bold]{doc['id']}[/] for {doc['relatedParty'][0]['id']}: "
              f"[{colour}]{doc['state']}[/]", highlight=False)
    table("items", ["#", "action", "offering", "site", "product", "state", "error"],
          [[i["id"], i["action"], (i.get("productOffering") or {}).get("id"),
            (i["product"]["place"] or [{}])[0].get("id"), i["product"].get("id"),
            i["state"], escape(i.get("errorMessage") or "")]
           for i in doc["productOrderItem"]])
    table("state history", ["at", "item", "from", "to", "reason"],
          [[h["at"], h["productOrderItem"], h["from"], h["to"], escape(h["reason"])]
           for h in doc["x_stateHistory"]])


@order_app.command("create")
def create_cmd(
    customer: Annotated[str, typer.Option(help="The customer, by id or name.")],
    site: Annotated[str | None, typer.Option(help="The site (id, or name among the "
                                             "customer's sites).")] = None,
    offering: Annotated[str | None, typer.Option(help="The product offering's id.")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", help="A characteristic k=v, repeatable.")] = None,
    action: Annotated[str, typer.Option(help="add, modify or delete.")] = "add",
    product: Annotated[str | None, typer.Option(help="The product a modify or delete "
                                                "changes.")] = None,
    account: Annotated[str | None, typer.Option(help="The billing account (default: the "
                                                "customer's only one).")] = None,
    idempotency_key: Annotated[str | None, typer.Option(
        "--idempotency-key", help="Makes a retried create return the same order.")] = None,
    lab: Annotated[str | None, typer.Option(help="The lab whose node is the site's host "
                                            "(default: the only one running).")] = None,
    description: Annotated[str, typer.Option(help="Free text kept on the order.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create an order and run it now: validate, allocate, configure, verify, activate."""
    engine = _engine()
    site_id = _site_id(engine, customer, site) if site else None
    who = os.environ.get("SUDO_USER") or getpass.getuser()
    req = OrderRequest(customer, [OrderItemRequest(action, offering, site_id, product,
                                                   parse_params(param or []))],
                       billing_account_id=account, description=description, requested_by=who)
    try:
        order = create_order(engine, req, idempotency_key=idempotency_key)
    except (OrderRefused, IdempotencyConflict) as exc:
        err.print(f"[red]refused:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    if order.state == "acknowledged":
        with Session(engine) as session:
            row = session.get(Site, site_id) if site_id and action == "add" else None
            hosts = [row.host] if row is not None and row.host else []
        order = process_order(engine, order.id, _agent(engine, hosts, lab))
    with Session(engine) as session:
        doc = order_doc(session, get_order(session, order.id))
    if as_json:
        emit_json(doc)
    else:
        _print(doc)
    code = EXIT.get(doc["state"], 1)
    if code:
        raise typer.Exit(code)


@order_app.command("show")
def show_cmd(order_id: Annotated[str, typer.Argument(metavar="ID")],
             as_json: JsonOpt = False) -> None:
    """An order with its items, state history and errors."""
    engine = _engine()
    with Session(engine) as session:
        try:
            doc = order_doc(session, get_order(session, order_id))
        except SwitchboardError as exc:
            err.print(f"[red]{escape(str(exc))}[/]", highlight=False)
            raise typer.Exit(1) from None
    if as_json:
        emit_json(doc)
        return
    _print(doc)
    for step in doc["x_sagaSteps"]:
        out.print(f"  item {step['productOrderItem']}: {step['step']} {step['state']}",
                  highlight=False)


@order_app.command("cancel")
def cancel_cmd(order_id: Annotated[str, typer.Argument(metavar="ID")],
               reason: Annotated[str, typer.Option(help="Why.")] = "",
               as_json: JsonOpt = False) -> None:
    """Cancel an order that has not started pushing to the network."""
    engine = _engine()
    try:
        order = cancel_order(engine, order_id, reason=reason)
    except (TransitionRefused, SwitchboardError) as exc:
        err.print(f"[red]refused:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        with Session(engine) as session:
            emit_json(order_doc(session, get_order(session, order.id)))
        return
    out.print(f"order {order.id}: {order.state}", highlight=False)


@order_app.command("list")
def list_cmd(state: Annotated[str | None, typer.Option(help="Only this state.")] = None,
             customer: Annotated[str | None, typer.Option(help="Only this customer.")] = None,
             limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
             as_json: JsonOpt = False) -> None:
    """Orders, newest first."""
    engine = _engine()
    with Session(engine) as session:
        page = list_orders(session, state=state, customer=customer, limit=limit)
        if as_json:
            emit_json([order_doc(session, o) for o in page.items])
            return
        table(f"orders ({page.total})", ["id", "customer", "state", "created", "error"],
              [[o.id, o.customer_id, o.state, o.created_at, escape(o.error or "")]
               for o in page.items])


@order_app.command("resume")
def resume_cmd(as_json: JsonOpt = False) -> None:
    """Settle orders a crashed process left in progress (resume or compensate). Run it
    when no other process is working on orders (the server does it at start-up)."""
    engine = _engine()
    settled = resume_interrupted(engine)
    if as_json:
        emit_json([{"id": o.id, "state": o.state, "error": o.error} for o in settled])
        return
    for o in settled:
        out.print(f"order {o.id}: {o.state} {escape(o.error or '')}", highlight=False)
    if not settled:
        out.print("no order was left in progress")
