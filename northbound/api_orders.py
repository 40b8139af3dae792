"""Product orders (TMF622) and the product inventory (TMF637) over REST.

    POST /tmf-api/productOrderingManagement/v4/productOrder         (Idempotency-Key header)
         -> 201, the order acknowledged; its saga then runs in a worker thread
    GET  /tmf-api/productOrderingManagement/v4/productOrder?state=&customer=&offset=&limit=
    GET  /tmf-api/productOrderingManagement/v4/productOrder/{id}    items, state history,
                                                                    saga steps, errors
    POST /tmf-api/productOrderingManagement/v4/productOrder/{id}/cancel {cancellationReason}
    POST /tmf-api/productOrderingManagement/v4/cancelProductOrder   (TMF622's resource)
    GET  /tmf-api/productInventory/v4/product?customer=&status=&offset=&limit=
    GET  /tmf-api/productInventory/v4/product/{id}

A retried POST with the same Idempotency-Key and body answers 200 with the order made
the first time (nothing runs twice); the same key with another body is a 422 problem.
An order refused by validation is a 400 problem listing every reason (nothing stored);
a cancellation the state graph forbids is a 409 problem. No call sets a state directly.

The saga runs after the answer is sent (Starlette background task, in the server's
thread pool). ``app.state.order_agent`` (a FulfilmentAgent) and
``app.state.reach_target`` may be set by whoever builds the app; by default the agent
proves reach with the lab's probe when exactly one lab runs, else records it not run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from sqlmodel import Session, select

from bss.model import ProductOrder, ProductOrderItem, loads
from bss.orders import (
    IdempotencyConflict,
    OrderItemRequest,
    OrderNotFound,
    OrderRefused,
    OrderRequest,
    TransitionRefused,
    cancel_order,
    create_order,
    get_order,
    list_orders,
    order_history,
    order_items,
    process_order,
    saga_steps,
)
from bss.products import get_product, list_products, product_doc
from northbound.auth import note_audit
from northbound.problems import MAX_INT, problem, problem_responses
from topology.errors import SwitchboardError
from topology.queries import NotFound

__all__ = ["order_agent", "order_doc", "router"]

log = logging.getLogger(__name__)
ORDERS = "/tmf-api/productOrderingManagement/v4"
INVENTORY = "/tmf-api/productInventory/v4"

router = APIRouter(tags=["orders"], responses=problem_responses(400, 404, 409, 422))


def _session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]


def _problem(request: Request, status: int, title: str, detail: str,
             problems: list[str] | None = None) -> JSONResponse:
    return problem(request, status, title, detail, problems)


# -- bodies -------------------------------------------------------------------------------


class Ref(BaseModel):
    """A reference by id."""

    id: str = Field(min_length=1, max_length=64)


class Party(BaseModel):
    """relatedParty: the customer (by id or name)."""

    id: str = Field(min_length=1, max_length=200)
    role: str = "Customer"


class Characteristic(BaseModel):
    """productCharacteristic."""

    name: str = Field(min_length=1, max_length=64)
    value: str | int | float | bool | None = None


class ProductRef(BaseModel):
    """product: the product changed (modify, delete) or the place of a new one."""

    id: str | None = Field(default=None, max_length=64)
    place: list[Ref] = Field(default_factory=list, max_length=1)
    productCharacteristic: list[Characteristic] = Field(default_factory=list, max_length=50)


class OrderItemIn(BaseModel):
    """productOrderItem."""

    id: str | None = Field(default=None, max_length=32)
    action: Literal["add", "modify", "delete"]
    productOffering: Ref | None = None
    product: ProductRef | None = None


class ProductOrderIn(BaseModel):
    """A productOrder as TMF622 creates it."""

    description: str = Field(default="", max_length=500)
    requestedBy: str = Field(default="", max_length=128)
    relatedParty: list[Party] = Field(min_length=1, max_length=5)
    billingAccount: Ref | None = None
    productOrderItem: list[OrderItemIn] = Field(min_length=1, max_length=50)

    def to_request(self) -> OrderRequest:
        customers = [p.id for p in self.relatedParty if p.role.lower() == "customer"]
        if len(customers) != 1:
            raise OrderRefused(["relatedParty must name exactly one party with role "
                                "Customer"])
        items = []
        for item in self.productOrderItem:
            product = item.product or ProductRef()
            items.append(OrderItemRequest(
                action=item.action,
                offering_id=item.productOffering.id if item.productOffering else None,
                site_id=product.place[0].id if product.place else None,
                product_id=product.id,
                characteristics={c.name: c.value for c in product.productCharacteristic}))
        return OrderRequest(customers[0], items,
                            billing_account_id=self.billingAccount.id
                            if self.billingAccount else None,
                            description=self.description, requested_by=self.requestedBy)


class CancelIn(BaseModel):
    """Why the order is cancelled."""

    cancellationReason: str = Field(default="", max_length=500)


class CancelProductOrderIn(CancelIn):
    """TMF622 cancelProductOrder."""

    productOrder: Ref


# -- documents ----------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _item_doc(item: ProductOrderItem) -> dict[str, Any]:
    chars = loads(item.characteristics_json, {})
    product: dict[str, Any] = {
        "place": [{"id": item.site_id, "role": "installationAddress"}] if item.site_id else [],
        "productCharacteristic": [{"name": k, "value": v} for k, v in sorted(chars.items())]}
    if item.product_id:
        product["id"] = item.product_id
        product["href"] = f"{INVENTORY}/product/{item.product_id}"
    doc: dict[str, Any] = {"id": str(item.position), "action": item.action,
                           "state": item.state, "product": product,
                           "productOffering": {"id": item.offering_id}
                           if item.offering_id else None,
                           "x_changeBatch": item.change_batch}
    if item.error:
        doc["errorMessage"] = item.error
    return doc


def order_doc(session: Session, order: ProductOrder) -> dict[str, Any]:
    """The order in the shape of TMF622, with its items, history and saga steps."""
    items = order_items(session, order.id)
    by_id = {i.id: i.position for i in items}
    errors = [{"code": "orderFailed", "reason": order.error}] if order.error else []
    errors += [{"code": "itemFailed", "reason": i.error, "productOrderItem": str(i.position)}
               for i in items if i.error]
    return {
        "id": order.id,
        "href": f"{ORDERS}/productOrder/{order.id}",
        "@type": "ProductOrder",
        "state": order.state,
        "description": order.description,
        "requestedBy": order.requested_by,
        "orderDate": _iso(order.created_at),
        "completionDate": _iso(order.completed_at),
        "relatedParty": [{"id": order.customer_id, "role": "Customer",
                          "@referredType": "Customer"}],
        "billingAccount": {"id": order.billing_account_id},
        "productOrderItem": [_item_doc(i) for i in items],
        "errorMessage": errors,
        "x_stateHistory": [{"productOrderItem": str(by_id[h.item_id])
                            if h.item_id in by_id else None,
                            "from": h.from_state, "to": h.to_state, "at": _iso(h.at),
                            "reason": h.reason} for h in order_history(session, order.id)],
        "x_sagaSteps": [{"productOrderItem": str(by_id[s.item_id])
                         if s.item_id in by_id else None, "step": s.step,
                         "state": s.state, "at": _iso(s.at),
                         "detail": loads(s.detail_json, {})}
                        for s in saga_steps(session, order.id)],
    }


# -- processing ---------------------------------------------------------------------------


def order_agent(engine: Engine) -> Any:
    """A FulfilmentAgent proving reach with the lab's probe when exactly one lab runs."""
    from agents.fulfilment import FulfilmentAgent

    probe = None
    try:
        from lab.reach import LabReachProbe

        probe = LabReachProbe()
    except SwitchboardError:
        probe = None
    return FulfilmentAgent(engine, probe=probe)


def _run(engine: Engine, order_id: str, agent: Any, target: str | None) -> None:
    try:
        process_order(engine, order_id, agent, reach_target_address=target)
    except TransitionRefused as exc:  # another worker took it, or it was cancelled
        log.info("order %s not processed here: %s", order_id, exc)
    except Exception:
        log.exception("order %s: processing failed", order_id)


# -- routes: orders -----------------------------------------------------------------------


@router.post(f"{ORDERS}/productOrder", status_code=201)
def create(request: Request, response: Response, body: ProductOrderIn,
           background: BackgroundTasks,
           idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key",
                                                         max_length=200)] = None) -> Any:
    """Create an order (acknowledged at once); its saga runs after the answer."""
    engine = request.app.state.engine
    try:
        req = body.to_request()
        with Session(engine) as session:
            existed = idempotency_key is not None and session.exec(select(ProductOrder.id).where(
                ProductOrder.idempotency_key == idempotency_key)).first() is not None
        order = create_order(engine, req, idempotency_key=idempotency_key)
    except OrderRefused as exc:
        return _problem(request, 400, "Order refused", str(exc), exc.problems)
    except IdempotencyConflict as exc:
        return _problem(request, 422, "Idempotency-Key reused with another body", str(exc))
    if existed:
        response.status_code = 200
    elif order.state == "acknowledged":
        agent = getattr(request.app.state, "order_agent", None) or order_agent(engine)
        background.add_task(_run, engine, order.id, agent,
                            getattr(request.app.state, "reach_target", None))
    note_audit(request, target_type="productOrder", target_id=order.id,
               after={"state": order.state, "customer": order.customer_id,
                      "items": [{"action": i.action, "offering": i.offering_id,
                                 "site": i.site_id, "product": i.product_id}
                                for i in req.items], "idempotency_key_reused": existed})
    response.headers["Location"] = f"{ORDERS}/productOrder/{order.id}"
    with Session(engine) as session:
        return order_doc(session, get_order(session, order.id))


@router.get(f"{ORDERS}/productOrder")
def orders(s: SessionDep, response: Response,
           offset: Annotated[int, Query(ge=0, le=MAX_INT, description="rows to skip")] = 0,
           limit: Annotated[int, Query(ge=1, le=1000)] = 100,
           state: str | None = None, customer: str | None = None) -> list[dict[str, Any]]:
    """Orders, newest first (X-Total-Count has the total)."""
    page = list_orders(s, state=state, customer=customer, offset=offset, limit=limit)
    response.headers["X-Total-Count"] = str(page.total)
    return [order_doc(s, o) for o in page.items]


@router.get(f"{ORDERS}/productOrder/{{order_id}}")
def order(request: Request, s: SessionDep, order_id: str) -> Any:
    """One order with its items, state history, saga steps and errors."""
    try:
        return order_doc(s, get_order(s, order_id))
    except OrderNotFound as exc:
        return _problem(request, 404, "Not found", str(exc))


def _cancel(request: Request, order_id: str, reason: str) -> tuple[int, Any]:
    engine = request.app.state.engine
    try:
        cancelled = cancel_order(engine, order_id, reason=reason)
    except OrderNotFound as exc:
        return 404, _problem(request, 404, "Not found", str(exc))
    except TransitionRefused as exc:
        return 409, _problem(request, 409, "The order cannot be cancelled", str(exc))
    note_audit(request, target_type="productOrder", target_id=order_id,
               after={"state": cancelled.state, "reason": reason})
    with Session(engine) as session:
        return 200, order_doc(session, get_order(session, cancelled.id))


@router.post(f"{ORDERS}/productOrder/{{order_id}}/cancel")
def cancel(request: Request, order_id: str, body: CancelIn | None = None) -> Any:
    """Cancel the order (only acknowledged, or in progress before any push)."""
    _, doc = _cancel(request, order_id, body.cancellationReason if body else "")
    return doc


@router.post(f"{ORDERS}/cancelProductOrder", status_code=201)
def cancel_product_order(request: Request, body: CancelProductOrderIn) -> Any:
    """TMF622's cancelProductOrder task resource."""
    status, doc = _cancel(request, body.productOrder.id, body.cancellationReason)
    if status != 200:
        return doc
    return {"@type": "CancelProductOrder", "state": "done",
            "productOrder": {"id": doc["id"], "href": doc["href"]},
            "cancellationReason": body.cancellationReason,
            "effectiveCancellationDate": doc["completionDate"]}


# -- routes: product inventory -------------------------------------------------------------


@router.get(f"{INVENTORY}/product")
def products(s: SessionDep, response: Response,
             offset: Annotated[int, Query(ge=0, le=MAX_INT, description="rows to skip")] = 0,
             limit: Annotated[int, Query(ge=1, le=1000)] = 100,
             customer: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
    """A customer's products (X-Total-Count has the total)."""
    page = list_products(s, customer=customer, status=status, offset=offset, limit=limit)
    response.headers["X-Total-Count"] = str(page.total)
    return [product_doc(s, p) for p in page.items]


@router.get(f"{INVENTORY}/product/{{product_id}}")
def product(request: Request, s: SessionDep, product_id: str) -> Any:
    """One product: its service, bound interface and activation time."""
    try:
        return product_doc(s, get_product(s, product_id))
    except NotFound as exc:
        return _problem(request, 404, "Not found", str(exc))
