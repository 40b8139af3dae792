"""Product orders (TMF622): one state graph, a saga per item, compensation, recovery.

State graph (:data:`TRANSITIONS`; every move goes through :func:`transition`, which
refuses any other with :class:`TransitionRefused` and writes an
:class:`~bss.model.OrderStateChange` with its time)::

    acknowledged -> inProgress | cancelled
    inProgress   -> completed | failed | partial | cancelled (only before any push)
    completed, failed, partial, cancelled: terminal

An item follows :data:`ITEM_TRANSITIONS` (acknowledged -> inProgress -> completed |
failed | cancelled), recorded the same way with its ``item_id``.

The saga of an ``add`` item, each step a :class:`~bss.model.SagaStep` (started, done,
failed, compensated)::

    validate   the offering is orderable, the characteristics valid, the site the
               customer's and served by a port the inventory knows
    allocate   a Product row (pendingActive), then in one transaction the site's port,
               the offering's address blocks and VLANs (bss.resources)
    params     the template parameters from the offering's ``params_json``
    fulfil     FulfilmentAgent.apply (reach proved from the site's host to the reach
               target when the service wants it); the agent rolls back a failed batch
    activate   one transaction: Product active with ``activated_at`` = when the device
               confirmed, allocations active, the topology's ServiceBinding, item
               completed

On a failure the steps done are compensated in reverse: the config rolled back
(FulfilmentAgent.rollback of the changes the batch confirmed, when the failure came
after the push), the allocations released, the Product ``aborted``, no binding, the
item failed with the reason. The order ends completed (every item), failed (none) or
partial. A ``delete`` item removes the service's config from the device (the service's
``remove`` template), unbinds, releases and terminates the Product (``terminated_at``
= when the device confirmed the removal); a ``modify`` item re-applies the product's
service with another offering or characteristics on the resources it already holds
(a change of address or port needs delete + add).

Pushes to one device never overlap: the fulfilment agent holds the device's lease (a
database row, so across processes; :mod:`agents.fulfilment.leases`), and within this
process the orders also queue on a per-device lock: the CLI driver's rollback restores a
whole-config backup, so two concurrent pushes to one device could undo each other.

Idempotency: ``create_order(..., idempotency_key=K)`` stores K with the hash of the
request; the same K with the same body returns that order, with another body raises
:class:`IdempotencyConflict`.

Crash recovery (:func:`resume_interrupted`, at start-up): an order left inProgress is
settled item by item. An item whose fulfil step finished (the device confirmed) is
RESUMED: its remaining steps (activate, or the termination's bookkeeping) run. Any
other item is COMPENSATED: the changes the agent recorded for it (found by the order's
mark in ``ConfigChange.why``) that are still applied or confirmed are rolled back, the
allocations released, the Product aborted (a delete or modify leaves the product as it
was), and the item failed with the reason. Then the order takes its final state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Engine, func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from bss.catalogue import (
    CatalogueError,
    orderable_offering,
    resolve_params,
    validate_characteristics,
)
from bss.model import (
    Allocation,
    BillingAccount,
    Customer,
    OrderStateChange,
    Product,
    ProductOffering,
    ProductOrder,
    ProductOrderItem,
    ProductSpecification,
    SagaStep,
    Site,
    loads,
)
from bss.resources import Holder, ResourceError, allocate, release
from topology.errors import SwitchboardError
from topology.inventory import Device, Interface, utcnow
from topology.queries import NotFound, Page
from topology.services import ServiceBinding

if TYPE_CHECKING:
    from agents.fulfilment import FulfilmentAgent

__all__ = [
    "DEFAULT_REACH_TARGET",
    "ITEM_TRANSITIONS",
    "REACH_TARGET_ENV",
    "TERMINAL",
    "TRANSITIONS",
    "IdempotencyConflict",
    "OrderError",
    "OrderItemRequest",
    "OrderNotFound",
    "OrderRefused",
    "OrderRequest",
    "TransitionRefused",
    "build_params",
    "cancel_order",
    "create_order",
    "get_order",
    "list_orders",
    "order_history",
    "order_items",
    "process_order",
    "reach_target",
    "request_hash",
    "resume_interrupted",
    "saga_steps",
    "transition",
]

log = logging.getLogger(__name__)

TRANSITIONS: Final[Mapping[str, frozenset[str]]] = MappingProxyType({
    "acknowledged": frozenset({"inProgress", "cancelled"}),
    "inProgress": frozenset({"completed", "failed", "partial", "cancelled"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "partial": frozenset(),
    "cancelled": frozenset(),
})
"""The order's state graph: state -> the states it may move to (TMF622)."""

ITEM_TRANSITIONS: Final[Mapping[str, frozenset[str]]] = MappingProxyType({
    "acknowledged": frozenset({"inProgress", "cancelled", "failed"}),
    "inProgress": frozenset({"completed", "failed", "cancelled"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
})
"""An item's state graph (acknowledged -> failed: an item never started when its order
was settled after a crash)."""

TERMINAL: Final = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
ACTIONS: Final = ("add", "modify", "delete")
DEFAULT_REACH_TARGET: Final = "198.51.100.10"
REACH_TARGET_ENV: Final = "SWITCHBOARD_REACH_TARGET"


def reach_target() -> str:
    """The address a customer's host must reach to prove an activation: the
    ``SWITCHBOARD_REACH_TARGET`` setting, else the lab's server (198.51.100.10)."""
    return os.environ.get(REACH_TARGET_ENV, "").strip() or DEFAULT_REACH_TARGET


# -- errors ---------------------------------------------------------------------------------


class OrderError(SwitchboardError):
    """Root of the order errors."""


class OrderNotFound(NotFound, OrderError):
    """No such order (or product)."""


class OrderRefused(OrderError):
    """The order was refused before anything was stored or allocated; ``problems``
    lists every reason."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("order refused: " + "; ".join(problems))
        self.problems = list(problems)


class TransitionRefused(OrderError):
    """The state graph forbids the move."""

    def __init__(self, message: str, *, order_id: str, from_state: str | None,
                 to_state: str) -> None:
        super().__init__(message)
        self.order_id, self.from_state, self.to_state = order_id, from_state, to_state


class IdempotencyConflict(OrderError):
    """The Idempotency-Key was used for another request body."""

    def __init__(self, key: str, order_id: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was already used for order {order_id} "
                         "with a different request body; use a new key for a new order")
        self.key, self.order_id = key, order_id


class _StepFailed(OrderError):
    """A saga step failed (internal: turned into the item's failure)."""


class _Cancelled(OrderError):
    """The order was cancelled before the push (internal)."""


# -- requests -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderItemRequest:
    """One item: ``add`` an offering at a site, ``modify`` or ``delete`` a product."""

    action: str
    offering_id: str | None = None
    site_id: str | None = None
    product_id: str | None = None
    characteristics: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderRequest:
    """A customer's order as asked for (``billing_account_id`` None: the customer's only
    active account)."""

    customer_id: str
    items: Sequence[OrderItemRequest]
    billing_account_id: str | None = None
    description: str = ""
    requested_by: str = ""


def request_hash(req: OrderRequest) -> str:
    """The SHA-256 of the request's canonical JSON (who sent it left out)."""
    body = {"customer": req.customer_id, "account": req.billing_account_id,
            "description": req.description,
            "items": [{"action": i.action, "offering": i.offering_id, "site": i.site_id,
                       "product": i.product_id,
                       "characteristics": {str(k): v for k, v in i.characteristics.items()}}
                      for i in req.items]}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# -- catalogue reads (bss.catalogue) --------------------------------------------------------


def _orderable(session: Session, offering_id: str) -> ProductOffering:
    """The offering if it exists and is active; ``OrderError`` otherwise."""
    try:
        return orderable_offering(session, offering_id)
    except CatalogueError as exc:
        raise OrderError(str(exc)) from None


def _check_characteristics(spec: ProductSpecification,
                           values: Mapping[str, Any]) -> dict[str, Any]:
    """The characteristics typed, defaults filled in; ``OrderError`` listing every problem."""
    try:
        return validate_characteristics(spec, dict(values))
    except CatalogueError as exc:
        raise OrderError(f"characteristics refused for {spec.id}: "
                         + "; ".join(exc.problems or [str(exc)])) from None


# -- state graph ----------------------------------------------------------------------------


def transition(session: Session, order: ProductOrder, to_state: str, *,
               reason: str = "") -> OrderStateChange:
    """Move ``order`` to ``to_state`` if the graph allows it from the state stored now
    (a compare-and-set: two movers cannot both win); the change row, added to the
    session (the caller commits). ``TransitionRefused`` otherwise."""
    current = order.state
    if to_state not in TRANSITIONS:
        raise TransitionRefused(f"order {order.id}: {to_state!r} is not a state (states: "
                                f"{', '.join(TRANSITIONS)})", order_id=order.id,
                                from_state=current, to_state=to_state)
    if to_state not in TRANSITIONS.get(current, frozenset()):
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "none: it is final"
        raise TransitionRefused(f"order {order.id} is {current}: it cannot become "
                                f"{to_state} (allowed from {current}: {allowed})",
                                order_id=order.id, from_state=current, to_state=to_state)
    now = utcnow()
    values: dict[str, Any] = {"state": to_state, "state_changed_at": now}
    if to_state in TERMINAL:
        values["completed_at"] = now
        if reason and to_state != "completed":
            values["error"] = reason[:4000]
    result = session.exec(update(ProductOrder).where(
        col(ProductOrder.id) == order.id, col(ProductOrder.state) == current).values(**values))
    if result.rowcount != 1:
        session.rollback()
        fresh = session.get(ProductOrder, order.id)
        now_state = fresh.state if fresh else "gone"
        raise TransitionRefused(f"order {order.id} changed meanwhile (it is {now_state} "
                                f"now): it cannot become {to_state}", order_id=order.id,
                                from_state=now_state, to_state=to_state)
    for key, value in values.items():
        set_committed_value(order, key, value)
    change = OrderStateChange(order_id=order.id, from_state=current, to_state=to_state,
                              at=now, reason=reason[:4000])
    session.add(change)
    return change


def _item_transition(session: Session, item: ProductOrderItem, to_state: str,
                     reason: str = "") -> None:
    if to_state not in ITEM_TRANSITIONS.get(item.state, frozenset()):
        raise TransitionRefused(f"order {item.order_id} item {item.position}: "
                                f"{item.state} cannot become {to_state}",
                                order_id=item.order_id, from_state=item.state,
                                to_state=to_state)
    session.add(OrderStateChange(order_id=item.order_id, item_id=item.id,
                                 from_state=item.state, to_state=to_state, reason=reason[:4000]))
    item.state = to_state
    if reason and to_state in ("failed", "cancelled"):
        item.error = reason[:4000]
    session.add(item)


# -- reads ------------------------------------------------------------------------------------


def get_order(session: Session, order_id: str) -> ProductOrder:
    """The order (``OrderNotFound``)."""
    order = session.get(ProductOrder, order_id)
    if order is None:
        raise OrderNotFound(f"no product order {order_id!r}")
    return order


def order_items(session: Session, order_id: str) -> list[ProductOrderItem]:
    """The order's items in their order."""
    return list(session.exec(select(ProductOrderItem).where(
        ProductOrderItem.order_id == order_id).order_by(
        col(ProductOrderItem.position))).all())


def order_history(session: Session, order_id: str) -> list[OrderStateChange]:
    """Every transition of the order and its items, oldest first."""
    return list(session.exec(select(OrderStateChange).where(
        OrderStateChange.order_id == order_id).order_by(col(OrderStateChange.id))).all())


def saga_steps(session: Session, order_id: str) -> list[SagaStep]:
    """What the saga did, step by step."""
    return list(session.exec(select(SagaStep).where(SagaStep.order_id == order_id)
                             .order_by(col(SagaStep.id))).all())


def list_orders(session: Session, *, state: str | None = None, customer: str | None = None,
                offset: int = 0, limit: int = 100) -> Page[ProductOrder]:
    """Orders, newest first; ``customer`` is an id or a name."""
    q = select(ProductOrder)
    if state:
        q = q.where(ProductOrder.state == state)
    if customer:
        cust = _customer(session, customer, strict=False)
        q = q.where(ProductOrder.customer_id == (cust.id if cust else customer))
    limit = max(1, min(limit, 1000))
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    rows = session.exec(q.order_by(col(ProductOrder.created_at).desc(),
                                   col(ProductOrder.id).desc())
                        .offset(offset).limit(limit)).all()
    return Page(list(rows), total, offset, limit)


def _customer(session: Session, ref: str, *, strict: bool = True) -> Customer | None:
    cust = session.get(Customer, ref)
    if cust is None:
        cust = session.exec(select(Customer).where(Customer.name == ref)).first()
    if cust is None and strict:
        raise OrderRefused([f"customer {ref!r} does not exist"])
    return cust


# -- validation -------------------------------------------------------------------------------


@dataclass
class _Checked:
    """An item as validated: what the saga needs."""

    action: str
    offering: ProductOffering | None = None
    site: Site | None = None
    product: Product | None = None
    characteristics: dict[str, Any] = field(default_factory=dict)


def _services() -> Mapping[str, Any]:
    from adapters.services import load_services

    return load_services()


def _check_item(session: Session, customer: Customer, item: OrderItemRequest,
                services: Mapping[str, Any], order_id: str | None = None) -> _Checked:
    """The item validated; ``OrderError`` with every problem of this item."""
    problems: list[str] = []
    if item.action not in ACTIONS:
        raise OrderError(f"action {item.action!r} is not one of {', '.join(ACTIONS)}")
    checked = _Checked(item.action)
    if item.action in ("modify", "delete"):
        if not item.product_id:
            raise OrderError(f"a {item.action} names the product it changes (product id)")
        product = session.get(Product, item.product_id)
        if product is None or product.customer_id != customer.id:
            raise OrderError(f"product {item.product_id!r} is not a product of customer "
                             f"{customer.id}")
        if product.status != "active":
            raise OrderError(f"product {product.id} is {product.status}: only an active "
                             f"product can be {item.action}d")
        busy = session.exec(select(ProductOrderItem).join(
            ProductOrder, col(ProductOrder.id) == col(ProductOrderItem.order_id)).where(
            ProductOrderItem.product_id == product.id, ProductOrder.id != order_id,
            col(ProductOrder.state).in_(("acknowledged", "inProgress")))).first()
        if busy is not None:
            raise OrderError(f"product {product.id} is already changed by order "
                             f"{busy.order_id}, which has not finished")
        checked.product = product
        checked.site = session.get(Site, product.site_id)
        if item.action == "delete":
            if item.characteristics or (item.offering_id
                                        and item.offering_id != product.offering_id):
                raise OrderError("a delete takes no offering change and no characteristics")
            return checked
    offering_id = item.offering_id or (checked.product.offering_id if checked.product
                                       else None)
    if not offering_id:
        raise OrderError("an add names the product offering")
    try:
        offering = _orderable(session, offering_id)
    except OrderError as exc:
        problems.append(str(exc))
        offering = None
    if item.action == "add":
        site = session.get(Site, item.site_id) if item.site_id else None
        if site is None:
            problems.append(f"site {item.site_id!r} does not exist" if item.site_id
                            else "an add names the site")
        elif site.customer_id != customer.id:
            problems.append(f"site {site.id} belongs to another customer, not to "
                            f"{customer.id}")
        else:
            problems += _site_problems(session, site)
        checked.site = site
    if offering is not None:
        checked.offering = offering
        spec = session.get(ProductSpecification, offering.spec_id)
        if spec is None:
            problems.append(f"offering {offering.id}: its specification {offering.spec_id} "
                            "does not exist")
        else:
            try:
                checked.characteristics = _check_characteristics(spec, item.characteristics)
            except OrderError as exc:
                problems.append(str(exc))
        service = services.get(offering.service)
        if service is None:
            problems.append(f"offering {offering.id}: service {offering.service!r} is not "
                            "one the fulfilment agent knows")
        elif checked.site is not None:
            problems += _source_problems(offering, checked.site, service, spec)
        if (item.action == "modify" and checked.product is not None
                and offering.service != checked.product.service):
            problems.append(f"offering {offering.id} activates {offering.service}, product "
                            f"{checked.product.id} is {checked.product.service}: delete it "
                            "and add the other")
    if problems:
        raise OrderError("; ".join(problems))
    return checked


def _site_problems(session: Session, site: Site) -> list[str]:
    device = session.exec(select(Device).where(Device.name == site.device)).first()
    if device is None or device.id is None:
        return [f"site {site.id}: device {site.device!r} is not in the inventory (run "
                "discovery)"]
    iface = session.exec(select(Interface).where(
        Interface.device_id == device.id, Interface.name == site.port,
        col(Interface.missing).is_(False))).first()
    if iface is None:
        return [f"site {site.id}: {site.device} has no interface {site.port!r} in the "
                "inventory"]
    return []


_SITE_FIELDS: Final = {"site.port": "port", "site.link_address": "link_address",
                       "site.customer_address": "customer_address", "site.name": "name"}


def _source_problems(offering: ProductOffering, site: Site, service: Any,
                     spec: ProductSpecification | None) -> list[str]:
    problems = []
    params = loads(offering.params_json, {})
    wants = loads(offering.allocations_json, {})
    declared = {str(c.get("name")) for c in loads(spec.characteristics_json, [])} if spec \
        else set()
    for param, source in params.items():
        if param not in service.params:
            problems.append(f"offering {offering.id}: {param!r} is not a parameter of "
                            f"{service.name}")
        source = str(source)
        if source in _SITE_FIELDS:
            if not getattr(site, _SITE_FIELDS[source]):
                problems.append(f"site {site.id} has no {_SITE_FIELDS[source]}, which "
                                f"offering {offering.id} needs for {param}")
        elif source.startswith("alloc."):
            if source[6:] not in wants:
                problems.append(f"offering {offering.id}: {param} comes from allocation "
                                f"{source[6:]!r}, which it does not allocate")
        elif source.startswith("char."):
            if spec is not None and source[5:] not in declared:
                problems.append(f"offering {offering.id}: {param} comes from "
                                f"characteristic {source[5:]!r}, which {spec.id} lacks")
        elif not source.startswith("text:"):
            problems.append(f"offering {offering.id}: {param} has an unknown source "
                            f"{source!r}")
    return problems


def _account(session: Session, customer: Customer, account_id: str | None) -> BillingAccount:
    if account_id:
        account = session.get(BillingAccount, account_id)
        if account is None or account.customer_id != customer.id:
            raise OrderError(f"billing account {account_id!r} is not an account of customer "
                             f"{customer.id}")
        if account.state != "active":
            raise OrderError(f"billing account {account.id} is {account.state}")
        return account
    accounts = list(session.exec(select(BillingAccount).where(
        BillingAccount.customer_id == customer.id, BillingAccount.state == "active")).all())
    if len(accounts) != 1:
        raise OrderError(f"customer {customer.id} has {len(accounts)} active billing "
                         "accounts: name the one to bill")
    return accounts[0]


def _validate(session: Session, req: OrderRequest) -> tuple[Customer, BillingAccount,
                                                            list[_Checked]]:
    customer = _customer(session, req.customer_id)
    assert customer is not None
    problems: list[str] = []
    if customer.status != "active":
        problems.append(f"customer {customer.id} is {customer.status}")
    account: BillingAccount | None = None
    try:
        account = _account(session, customer, req.billing_account_id)
    except OrderError as exc:
        problems.append(str(exc))
    if not req.items:
        problems.append("an order needs at least one item")
    services = _services()
    checked: list[_Checked] = []
    for n, item in enumerate(req.items, start=1):
        try:
            checked.append(_check_item(session, customer, item, services))
        except OrderError as exc:
            problems.append(f"item {n}: {exc}")
    sites = [i.site_id for i in req.items if i.action == "add" and i.site_id]
    for twice in sorted({s for s in sites if sites.count(s) > 1}):
        problems.append(f"site {twice} is named by more than one add item")
    products = [i.product_id for i in req.items if i.product_id]
    for twice in sorted({p for p in products if products.count(p) > 1}):
        problems.append(f"product {twice} is named by more than one item")
    if problems:
        raise OrderRefused(problems)
    assert account is not None
    return customer, account, checked


# -- creation, cancellation ----------------------------------------------------------------------


def _new_id(prefix: str) -> str:
    return f"{prefix}-{utcnow():%Y%m%d}-{uuid.uuid4().hex[:8].upper()}"


def create_order(engine: Engine, req: OrderRequest, *,
                 idempotency_key: str | None = None) -> ProductOrder:
    """Validate and store the order, acknowledged (nothing allocated or pushed yet).

    With ``idempotency_key``: the same key and the same body return the order made the
    first time; the same key with another body raises :class:`IdempotencyConflict`.
    A refused order (:class:`OrderRefused`) stores nothing, not even the key."""
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise OrderRefused(["the Idempotency-Key must be 1 to 200 characters"])
    digest = request_hash(req)
    with Session(engine, expire_on_commit=False) as session:
        if idempotency_key is not None:
            found = _by_key(session, idempotency_key, digest)
            if found is not None:
                return found
        customer, account, checked = _validate(session, req)
        order = ProductOrder(id=_new_id("ORD"), customer_id=customer.id,
                             billing_account_id=account.id, description=req.description,
                             requested_by=req.requested_by, idempotency_key=idempotency_key,
                             request_hash=digest)
        try:
            session.add(order)
            session.flush()
            session.add(OrderStateChange(order_id=order.id, from_state=None,
                                         to_state="acknowledged", at=order.created_at,
                                         reason="order received and validated"))
            for n, (item, c) in enumerate(zip(req.items, checked, strict=True), start=1):
                session.add(ProductOrderItem(
                    order_id=order.id, position=n, action=item.action,
                    offering_id=c.offering.id if c.offering else (
                        c.product.offering_id if c.product else None),
                    site_id=c.site.id if c.site else None,
                    product_id=c.product.id if c.product else None,
                    characteristics_json=json.dumps(c.characteristics, sort_keys=True,
                                                    default=str)))
            session.commit()
        except IntegrityError:
            session.rollback()
            if idempotency_key is None:
                raise
            found = _by_key(session, idempotency_key, digest)  # a concurrent twin won
            if found is None:
                raise
            return found
        return order


def _by_key(session: Session, key: str, digest: str) -> ProductOrder | None:
    found = session.exec(select(ProductOrder).where(
        ProductOrder.idempotency_key == key)).first()
    if found is not None and found.request_hash != digest:
        raise IdempotencyConflict(key, found.id)
    return found


def cancel_order(engine: Engine, order_id: str, *, reason: str = "") -> ProductOrder:
    """Cancel an acknowledged order, or one in progress whose saga has not started a
    push yet (the saga then releases what it allocated); ``TransitionRefused`` otherwise."""
    reason = reason.strip() or "cancelled on request"
    with Session(engine, expire_on_commit=False) as session:
        _lock_order(session, order_id)
        order = get_order(session, order_id)
        if order.state == "inProgress":
            pushed = session.exec(select(SagaStep).where(
                SagaStep.order_id == order_id, SagaStep.step == "fulfil")).first()
            if pushed is not None:
                raise TransitionRefused(
                    f"order {order_id} is inProgress and its push to the network has "
                    "started: it can no longer be cancelled (a delete order undoes it once "
                    "it completes)", order_id=order_id, from_state=order.state,
                    to_state="cancelled")
        transition(session, order, "cancelled", reason=reason)
        for item in order_items(session, order_id):
            if item.state == "acknowledged":
                _item_transition(session, item, "cancelled", reason)
        session.commit()
        return get_order(session, order_id)


def _lock_order(session: Session, order_id: str) -> None:
    """Begin the session's transaction holding the order against concurrent writers, so
    that a cancellation and the saga's push marker (:meth:`_Saga.start_push`) are
    serialised: SQLite ``BEGIN IMMEDIATE``, elsewhere the order row ``FOR UPDATE``.
    Call it first in a fresh session."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        session.exec(select(ProductOrder).where(col(ProductOrder.id) == order_id)
                     .with_for_update()).first()


# -- the saga ---------------------------------------------------------------------------------

_device_locks: dict[str, threading.Lock] = {}
_device_locks_guard = threading.Lock()


@contextmanager
def _device_lock(device: str) -> Iterator[None]:
    with _device_locks_guard:
        lock = _device_locks.setdefault(device, threading.Lock())
    with lock:
        yield


def _mark(order_id: str, item_id: int | None) -> str:
    """What the agent's ``why`` carries, so recovery finds the item's changes."""
    return f"product order {order_id} item {item_id}"


class _Saga:
    """One order's run: its engine, agent and reach target."""

    def __init__(self, engine: Engine, agent: FulfilmentAgent, target: str) -> None:
        self.engine = engine
        self.agent = agent
        self.target = target

    # records
    def step(self, item: ProductOrderItem, name: str, state: str,
             **detail: Any) -> None:
        with Session(self.engine) as session:
            row = session.exec(select(SagaStep).where(
                SagaStep.order_id == item.order_id, SagaStep.item_id == item.id,
                SagaStep.step == name)).first()
            now = utcnow()
            if row is None:
                row = SagaStep(order_id=item.order_id, item_id=item.id, step=name)
            merged = {**loads(row.detail_json, {}), **detail, f"{state}_at": now.isoformat()}
            row.state, row.at = state, now
            row.detail_json = json.dumps(merged, default=str)
            session.add(row)
            session.commit()

    def item_state(self, item: ProductOrderItem, to_state: str, reason: str = "") -> bool:
        """Move the item as stored now; False (nothing done) when it is already final
        (a cancellation got there first)."""
        with Session(self.engine, expire_on_commit=False) as session:
            fresh = session.get(ProductOrderItem, item.id)
            assert fresh is not None
            if not ITEM_TRANSITIONS.get(fresh.state):
                item.state, item.error = fresh.state, fresh.error
                return False
            _item_transition(session, fresh, to_state, reason)
            session.commit()
            item.state, item.error = fresh.state, fresh.error
            return True

    # the push, after the cancellation check
    def start_push(self, item: ProductOrderItem, **detail: Any) -> None:
        """Record the fulfil step as started unless the order was cancelled (one
        transaction with the order's row locked: cancel_order sees it or we see it)."""
        with Session(self.engine) as session:
            _lock_order(session, item.order_id)
            order = get_order(session, item.order_id)
            if order.state != "inProgress":
                session.rollback()
                raise _Cancelled(f"order {order.id} is {order.state}")
            session.add(SagaStep(order_id=item.order_id, item_id=item.id, step="fulfil",
                                 state="started", detail_json=json.dumps(
                                     {**detail, "started_at": utcnow().isoformat()},
                                     default=str)))
            session.commit()

    def push(self, item: ProductOrderItem, request: Any, *, verify_from: str | None,
             verify_to: str | None) -> Any:
        """FulfilmentAgent.apply under the device's lock; the result (failed: the agent
        has rolled back)."""
        with _device_lock(request.device):
            self.start_push(item, device=request.device, service=request.service,
                            action=request.action, params=dict(request.params))
            try:
                result = self.agent.apply([request], who=f"order {item.order_id}",
                                          why=_mark(item.order_id, item.id) + f" ({item.action})",
                                          verify_from=verify_from, verify_to=verify_to)
            except SwitchboardError as exc:  # refused before anything was pushed
                self.step(item, "fulfil", "failed", error=str(exc))
                raise _StepFailed(f"fulfilment refused: {exc}") from exc
        changes = [c.id for c in result.changes]
        if result.state == "failed":
            self.step(item, "fulfil", "failed", batch=result.batch, changes=changes,
                      error=result.error)
            raise _StepFailed(f"fulfilment failed and was rolled back: {result.error}")
        confirmed = [c.finished_at for c in result.changes if c.finished_at is not None]
        when = max(confirmed) if confirmed else utcnow()
        self.step(item, "fulfil", "done", batch=result.batch, changes=changes,
                  result=result.state, confirmed_at=when.isoformat())
        return result

    def undo_changes(self, item: ProductOrderItem) -> list[str]:
        """Roll back, newest first, the item's changes that are still on a device;
        the problems met (a device that needs a person)."""
        from agents.fulfilment import ConfigChange

        problems = []
        with Session(self.engine) as session:
            rows = session.exec(select(ConfigChange).where(
                col(ConfigChange.why).startswith(_mark(item.order_id, item.id) + " ("),
                col(ConfigChange.state).in_(("applied", "confirmed"))).order_by(
                col(ConfigChange.id).desc())).all()
        for rec in rows:
            try:
                with _device_lock(rec.device):
                    self.agent.rollback(rec.id or 0, who=f"order {item.order_id}")
                self.step(item, "fulfil", "compensated", rolled_back=rec.id)
            except SwitchboardError as exc:
                problems.append(f"rollback of change {rec.id} on {rec.device} failed: {exc}")
                log.error("order %s item %s: %s", item.order_id, item.id, problems[-1])
        return problems


def _site_and_customer(session: Session, site_id: str | None,
                       customer_id: str) -> tuple[Site, Customer]:
    site = session.get(Site, site_id) if site_id else None
    customer = session.get(Customer, customer_id)
    if site is None or customer is None:
        raise _StepFailed("the site or the customer is gone")
    return site, customer


def build_params(offering: ProductOffering, site: Site, customer: Customer, product_id: str,
                 characteristics: Mapping[str, Any],
                 allocations: Mapping[str, str]) -> dict[str, str]:
    """The template parameters from the offering's ``params_json`` (sources in the
    docstring of :class:`~bss.model.ProductOffering`, filled by
    :func:`bss.catalogue.resolve_params`); ``_StepFailed`` names what is missing."""
    try:
        return resolve_params(offering, customer=customer.name, site=site,
                              product_id=product_id, characteristics=characteristics,
                              allocations=allocations)
    except CatalogueError as exc:
        raise _StepFailed(f"parameters: {exc}") from None


def _run_add(saga: _Saga, order: ProductOrder, item: ProductOrderItem) -> None:
    from agents.fulfilment import ServiceRequest

    engine = saga.engine
    saga.step(item, "validate", "started")
    with Session(engine, expire_on_commit=False) as session:
        customer = session.get(Customer, order.customer_id)
        assert customer is not None
        try:
            checked = _check_item(session, customer, OrderItemRequest(
                "add", item.offering_id, item.site_id, None,
                loads(item.characteristics_json, {})), _services())
        except OrderError as exc:
            saga.step(item, "validate", "failed", error=str(exc))
            raise _StepFailed(f"validation: {exc}") from exc
    assert checked.offering is not None and checked.site is not None
    offering, site = checked.offering, checked.site
    saga.step(item, "validate", "done")

    product_id = _new_id("PRD")
    saga.step(item, "allocate", "started", product_id=product_id)
    with Session(engine) as session:
        session.add(Product(id=product_id, customer_id=order.customer_id,
                            billing_account_id=order.billing_account_id, site_id=site.id,
                            offering_id=offering.id, order_id=order.id,
                            status="pendingActive", service=offering.service,
                            service_id=product_id, device=site.device, interface=site.port,
                            characteristics_json=json.dumps(checked.characteristics,
                                                            default=str)))
        fresh = session.get(ProductOrderItem, item.id)
        assert fresh is not None
        fresh.product_id = product_id
        session.add(fresh)
        session.commit()
    item.product_id = product_id
    try:
        held = allocate(engine, Holder(order.id, item.id, product_id),
                        port=(site.device, site.port),
                        wants=loads(offering.allocations_json, {}))
    except ResourceError as exc:
        saga.step(item, "allocate", "failed", error=str(exc))
        raise _StepFailed(f"allocation: {exc}") from exc
    values = {name: a.value for name, a in held.items()}
    saga.step(item, "allocate", "done", allocations=values)

    saga.step(item, "params", "started")
    with Session(engine) as session:
        site_, customer_ = _site_and_customer(session, site.id, order.customer_id)
        params = build_params(offering, site_, customer_, product_id,
                              checked.characteristics, values)
    saga.step(item, "params", "done", params=params)

    service = saga.agent.services.get(offering.service)
    wants_reach = bool(service and service.reach and site.host)
    request = ServiceRequest(offering.service, site.device, params)
    result = saga.push(item, request, verify_from=site.host if wants_reach else None,
                       verify_to=saga.target if wants_reach else None)
    _activate(saga, item, result_batch=result.batch)


def _confirmed_at(saga: _Saga, item: ProductOrderItem) -> datetime:
    with Session(saga.engine) as session:
        row = session.exec(select(SagaStep).where(
            SagaStep.order_id == item.order_id, SagaStep.item_id == item.id,
            SagaStep.step == "fulfil")).first()
    detail = loads(row.detail_json if row else None, {})
    when = detail.get("confirmed_at")
    return datetime.fromisoformat(when) if when else utcnow()


def _activate(saga: _Saga, item: ProductOrderItem, *, result_batch: str | None) -> None:
    """Product active, allocations active, the binding, the item completed: one
    transaction."""
    saga.step(item, "activate", "started")
    when = _confirmed_at(saga, item)
    with Session(saga.engine) as session:
        fresh = session.get(ProductOrderItem, item.id)
        product = session.get(Product, item.product_id) if item.product_id else None
        if fresh is None or product is None:
            raise _StepFailed("the product row is gone")
        customer = session.get(Customer, product.customer_id)
        device = session.exec(select(Device).where(Device.name == product.device)).first()
        if customer is None or device is None or device.id is None:
            raise _StepFailed(f"device {product.device} or the customer is gone")
        iface = session.exec(select(Interface).where(
            Interface.device_id == device.id, Interface.name == product.interface)).first()
        fulfil = session.exec(select(SagaStep).where(
            SagaStep.order_id == item.order_id, SagaStep.item_id == item.id,
            SagaStep.step == "params")).first()
        params = loads(fulfil.detail_json if fulfil else None, {}).get("params", {})
        product.status = "active"
        product.activated_at = when
        product.params_json = json.dumps(params, sort_keys=True)
        product.change_batch = result_batch or product.change_batch
        session.add(product)
        for alloc in session.exec(select(Allocation).where(
                Allocation.item_id == item.id, col(Allocation.released_at).is_(None))).all():
            alloc.state = "active"
            alloc.product_id = product.id
            session.add(alloc)
        binding = session.exec(select(ServiceBinding).where(
            ServiceBinding.service_id == product.id)).first() or ServiceBinding(
            service_id=product.id, service_type=product.service, customer=customer.name,
            device_id=device.id)
        binding.customer, binding.customer_id = customer.name, customer.id
        binding.device_id, binding.interface_id = device.id, iface.id if iface else None
        binding.state, binding.bound_at = "active", utcnow()
        session.add(binding)
        fresh.change_batch = result_batch or fresh.change_batch
        _item_transition(session, fresh, "completed",
                         f"product {product.id} active since {when.isoformat()}")
        row = session.exec(select(SagaStep).where(
            SagaStep.order_id == item.order_id, SagaStep.item_id == item.id,
            SagaStep.step == "activate")).first()
        if row is not None:
            row.state, row.at = "done", utcnow()
            row.detail_json = json.dumps({**loads(row.detail_json, {}),
                                          "product": product.id,
                                          "activated_at": when.isoformat()})
            session.add(row)
        session.commit()
    item.state = "completed"


def _run_delete(saga: _Saga, order: ProductOrder, item: ProductOrderItem) -> None:
    from agents.fulfilment import ServiceRequest

    saga.step(item, "validate", "started")
    with Session(saga.engine, expire_on_commit=False) as session:
        product = session.get(Product, item.product_id) if item.product_id else None
        if product is None or product.status != "active" \
                or product.customer_id != order.customer_id:
            problem = f"product {item.product_id} is not an active product of the customer"
            saga.step(item, "validate", "failed", error=problem)
            raise _StepFailed(problem)
    saga.step(item, "validate", "done")
    params = loads(product.params_json, {})
    request = ServiceRequest(product.service, product.device, params, action="remove")
    with Session(saga.engine) as session:
        fresh = session.get(Product, product.id)
        assert fresh is not None
        fresh.status = "pendingTerminate"
        session.add(fresh)
        session.commit()
    result = saga.push(item, request, verify_from=None, verify_to=None)
    _terminate(saga, item, result_batch=result.batch)


def _terminate(saga: _Saga, item: ProductOrderItem, *, result_batch: str | None) -> None:
    """Unbind, release, Product terminated, item completed: one transaction."""
    saga.step(item, "terminate", "started")
    when = _confirmed_at(saga, item)
    with Session(saga.engine) as session:
        fresh = session.get(ProductOrderItem, item.id)
        product = session.get(Product, item.product_id) if item.product_id else None
        if fresh is None or product is None:
            raise _StepFailed("the product row is gone")
        for binding in session.exec(select(ServiceBinding).where(
                ServiceBinding.service_id == product.service_id)).all():
            binding.state = "inactive"
            session.add(binding)
        now = utcnow()
        for alloc in session.exec(select(Allocation).where(
                Allocation.product_id == product.id,
                col(Allocation.released_at).is_(None))).all():
            alloc.released_at, alloc.state = now, "released"
            session.add(alloc)
        product.status = "terminated"
        product.terminated_at = when
        session.add(product)
        fresh.change_batch = result_batch
        _item_transition(session, fresh, "completed",
                         f"product {product.id} terminated at {when.isoformat()}")
        row = session.exec(select(SagaStep).where(
            SagaStep.order_id == item.order_id, SagaStep.item_id == item.id,
            SagaStep.step == "terminate")).first()
        if row is not None:
            row.state, row.at = "done", now
            session.add(row)
        session.commit()
    item.state = "completed"


def _run_modify(saga: _Saga, order: ProductOrder, item: ProductOrderItem) -> None:
    from agents.fulfilment import ServiceRequest

    engine = saga.engine
    saga.step(item, "validate", "started")
    with Session(engine, expire_on_commit=False) as session:
        customer = session.get(Customer, order.customer_id)
        assert customer is not None
        try:
            checked = _check_item(session, customer, OrderItemRequest(
                "modify", item.offering_id, None, item.product_id,
                loads(item.characteristics_json, {})), _services(), order.id)
        except OrderError as exc:
            saga.step(item, "validate", "failed", error=str(exc))
            raise _StepFailed(f"validation: {exc}") from exc
        assert checked.product is not None and checked.offering is not None
        product, offering = checked.product, checked.offering
        current = session.get(ProductOffering, product.offering_id)
        names = {(str(w.get("kind")), str(w.get("pool"))): str(n) for n, w in
                 loads(current.allocations_json if current else None, {}).items()}
        held = {names.get((a.kind, a.scope), a.kind): a.value
                for a in session.exec(select(Allocation).where(
                    Allocation.product_id == product.id,
                    col(Allocation.released_at).is_(None))).all()}
        missing = [n for n in loads(offering.allocations_json, {}) if n not in held]
        site, customer_ = _site_and_customer(session, product.site_id, order.customer_id)
    if missing:
        problem = (f"offering {offering.id} needs resources the product does not hold "
                   f"({', '.join(missing)}): delete it and add the new one")
        saga.step(item, "validate", "failed", error=problem)
        raise _StepFailed(problem)
    saga.step(item, "validate", "done")
    saga.step(item, "params", "started")
    params = build_params(offering, site, customer_, product.id, checked.characteristics,
                          held)
    old = loads(product.params_json, {})
    changed = sorted(k for k in set(params) | set(old)
                     if params.get(k) != old.get(k) and k != "description")
    if changed:
        problem = (f"the change would alter {', '.join(changed)} of product {product.id}: "
                   "delete it and add the new one")
        saga.step(item, "params", "failed", error=problem)
        raise _StepFailed(problem)
    saga.step(item, "params", "done", params=params, offering=offering.id,
              characteristics=checked.characteristics)
    result = saga.push(item, ServiceRequest(offering.service, product.device, params),
                       verify_from=None, verify_to=None)
    _modified(saga, item, result_batch=result.batch)


def _modified(saga: _Saga, item: ProductOrderItem, *, result_batch: str | None) -> None:
    saga.step(item, "activate", "started")
    with Session(saga.engine) as session:
        fresh = session.get(ProductOrderItem, item.id)
        product = session.get(Product, item.product_id) if item.product_id else None
        step = session.exec(select(SagaStep).where(
            SagaStep.order_id == item.order_id, SagaStep.item_id == item.id,
            SagaStep.step == "params")).first()
        if fresh is None or product is None or step is None:
            raise _StepFailed("the product row is gone")
        detail = loads(step.detail_json, {})
        product.offering_id = detail.get("offering", product.offering_id)
        product.params_json = json.dumps(detail.get("params", {}), sort_keys=True)
        product.characteristics_json = json.dumps(detail.get("characteristics", {}),
                                                  default=str)
        product.change_batch = result_batch or product.change_batch
        session.add(product)
        _item_transition(session, fresh, "completed", f"product {product.id} modified")
        session.commit()
    saga.step(item, "activate", "done")
    item.state = "completed"


_RUNNERS: Final[Mapping[str, Callable[[_Saga, ProductOrder, ProductOrderItem], None]]] = {
    "add": _run_add, "delete": _run_delete, "modify": _run_modify}


def _compensate(saga: _Saga, item: ProductOrderItem, reason: str, *,
                final: str = "failed") -> str:
    """Undo what the item's saga did, newest first: its changes still on a device (a
    batch the agent failed was already rolled back by it), its allocations, its
    Product and binding; the reason as recorded."""
    problems = saga.undo_changes(item)
    released = release(saga.engine, item_id=item.id) if item.id is not None else []
    if released:
        saga.step(item, "allocate", "compensated",
                  released=[f"{a.kind} {a.scope} {a.value}" for a in released])
    with Session(saga.engine) as session:
        if item.action == "add" and item.product_id:
            product = session.get(Product, item.product_id)
            if product is not None and product.status != "terminated":
                product.status = "aborted"
                product.activated_at = None
                session.add(product)
            for binding in session.exec(select(ServiceBinding).where(
                    ServiceBinding.service_id == item.product_id)).all():
                session.delete(binding)
        elif item.product_id:
            product = session.get(Product, item.product_id)
            if product is not None and product.status == "pendingTerminate":
                product.status = "active"
                session.add(product)
        session.commit()
    if problems:
        reason += "; compensation incomplete: " + "; ".join(problems)
    saga.item_state(item, final, reason)
    return reason


def _finish(engine: Engine, order_id: str) -> ProductOrder:
    """The order's final state from its items' (unless it was cancelled)."""
    with Session(engine, expire_on_commit=False) as session:
        order = get_order(session, order_id)
        if order.state != "inProgress":
            return order
        items = order_items(session, order_id)
        done = [i for i in items if i.state == "completed"]
        errors = [f"item {i.position} ({i.action}): {i.error}" for i in items
                  if i.state != "completed" and i.error]
        final = ("completed" if len(done) == len(items)
                 else "partial" if done else "failed")
        transition(session, order, final, reason="; ".join(errors) if errors
                   else f"{len(done)} of {len(items)} items completed")
        session.commit()
        return get_order(session, order_id)


def process_order(engine: Engine, order_id: str, agent: FulfilmentAgent, *,
                  reach_target_address: str | None = None) -> ProductOrder:
    """Run an acknowledged order's saga, item by item, in the caller's thread (a server
    runs it in a worker thread); the order in its final state. Never leaves the order
    inProgress, except when the process itself dies (see :func:`resume_interrupted`)."""
    saga = _Saga(engine, agent, reach_target_address or reach_target())
    with Session(engine, expire_on_commit=False) as session:
        order = get_order(session, order_id)
        if order.state == "cancelled":
            return order
        transition(session, order, "inProgress", reason="processing started")
        session.commit()
        order = get_order(session, order_id)
        items = order_items(session, order_id)
    for item in items:
        if not saga.item_state(item, "inProgress"):
            continue  # cancelled meanwhile
        try:
            _RUNNERS[item.action](saga, order, item)
        except _Cancelled as exc:
            _compensate(saga, item, f"cancelled before the push ({exc})", final="cancelled")
        except _StepFailed as exc:
            _compensate(saga, item, str(exc))
        except Exception as exc:  # every failure is compensated, then reported
            log.exception("order %s item %s failed", order_id, item.id)
            _compensate(saga, item, f"{type(exc).__name__}: {exc}")
    with Session(engine, expire_on_commit=False) as session:
        if get_order(session, order_id).state == "cancelled":
            for item in order_items(session, order_id):
                if item.state == "acknowledged":
                    _item_transition(session, item, "cancelled", "order cancelled")
            session.commit()
    return _finish(engine, order_id)


def resume_interrupted(engine: Engine, agent: FulfilmentAgent | None = None) -> list[ProductOrder]:
    """Settle every order a crash left inProgress (see the module docstring): resume the
    items whose push the device confirmed, compensate the others; the orders settled."""
    if agent is None:
        from agents.fulfilment import FulfilmentAgent

        agent = FulfilmentAgent(engine)
    saga = _Saga(engine, agent, reach_target())
    with Session(engine, expire_on_commit=False) as session:
        orders = list(session.exec(select(ProductOrder).where(
            ProductOrder.state == "inProgress")).all())
    settled = []
    for order in orders:
        with Session(engine, expire_on_commit=False) as session:
            items = order_items(session, order.id)
            steps = {(s.item_id, s.step): s for s in saga_steps(session, order.id)}
        for item in items:
            if item.state not in ("acknowledged", "inProgress"):
                continue
            fulfil = steps.get((item.id, "fulfil"))
            try:
                if fulfil is not None and fulfil.state == "done":
                    if item.state == "acknowledged":
                        saga.item_state(item, "inProgress")
                    batch = loads(fulfil.detail_json, {}).get("batch")
                    {"add": _activate, "delete": _terminate, "modify": _modified}[
                        item.action](saga, item, result_batch=batch)
                    saga.step(item, "resume", "done",
                              why="the device had confirmed the push before the restart")
                    continue
                where = next((s for s in ("fulfil", "params", "allocate", "validate")
                              if (item.id, s) in steps), None)
                reason = ("interrupted by a restart " + (f"during step {where}"
                                                          if where else "before it started")
                          + "; compensated")
                _compensate(saga, item, reason)
            except Exception as exc:  # never leave it in progress
                log.exception("order %s item %s: recovery failed", order.id, item.id)
                _compensate(saga, item, f"recovery failed: {exc}")
        settled.append(_finish(engine, order.id))
    return settled
