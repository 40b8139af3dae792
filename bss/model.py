"""The BSS's records: catalogue, customers, orders, resources, product inventory, billing.

One module holds every BSS table so that the catalogue, the order saga and the bill run
share one vocabulary (TMF names in the docstrings). Money is stored as text holding an
exact decimal (``"12.50"``), never as a float; :mod:`bss.money` turns it into ``Decimal``
with its currency. Ids people type are short strings (``CUST-0001``, ``ORD-...``); the
catalogue's ids are readable slugs (``business-internet-100``).

Catalogue (TMF620)
    ProductSpecification   what is sold, with typed characteristics (``characteristics_json``:
                           ``[{"name", "valueType": "string|integer|number|boolean|
                           ipv4Network", "required", "allowed": [...], "default",
                           "description"}]``)
    ProductOffering        a spec sold at a price, with a life cycle (draft, active,
                           retired; only an active one can be ordered), the fulfilment
                           service it activates and how its parameters are made
                           (``params_json``: template parameter -> source, see
                           :class:`ProductOffering`), what it allocates
                           (``allocations_json``), how usage is rated (``usage_json``)
                           and its SLA (``sla_json``)
    ProductOfferingPrice   one price of an offering: oneTime, recurring (monthly) or usage
                           (per GB with tiers, or per Mbps of the 95th percentile)

Customers (TMF629 / TMF666)
    Customer, Contact, BillingAccount (currency, bill cycle day, tax rate), Site (the
    edge router and the customer-facing port that serve it, and the customer's host)

Orders (TMF622) and product inventory (TMF637)
    ProductOrder, ProductOrderItem (add, modify, delete a product at a site),
    OrderStateChange (every transition, time-stamped), SagaStep (what the saga did, so a
    crash is resumed or compensated), Product (a customer's product: its service, bound
    interface, the time the device confirmed activation, and its termination)

Resources
    ResourcePool (IPv4 blocks, VLAN ids), Allocation (a port, a block or a VLAN held by an
    order item: a partial unique index makes a second live allocation of the same value
    impossible, whatever the concurrency)

Billing (TMF678)
    CustomerBill (an invoice or a credit note; immutable once issued; one invoice per
    account and period), BillLine (appliedCustomerBillingRate: recurring, oneTime, usage,
    credit, each rounded once by the currency's rule)
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Index, text
from sqlmodel import Field, SQLModel

from topology.inventory import UtcDateTime, utcnow

__all__ = [
    "Allocation",
    "BillLine",
    "BillingAccount",
    "Contact",
    "Customer",
    "CustomerBill",
    "OrderStateChange",
    "Product",
    "ProductOffering",
    "ProductOfferingPrice",
    "ProductOrder",
    "ProductOrderItem",
    "ProductSpecification",
    "ResourcePool",
    "SagaStep",
    "Site",
    "init_bss_db",
    "loads",
]


def loads(text_: str | None, default: Any) -> Any:
    """A JSON column's value, ``default`` when empty."""
    if not text_:
        return default
    return json.loads(text_)


# -- catalogue (TMF620) ---------------------------------------------------------------------


class ProductSpecification(SQLModel, table=True):
    """What is sold, independent of price (TMF620 productSpecification)."""

    __tablename__ = "bss_product_spec"

    id: str = Field(primary_key=True, max_length=64)
    name: str
    description: str = ""
    version: str = "1.0"
    lifecycle_status: str = Field(default="active", description="draft | active | retired")
    characteristics_json: str = Field(default="[]", description="typed characteristics")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ProductOffering(SQLModel, table=True):
    """A specification sold at a price (TMF620 productOffering).

    ``service``: the fulfilment service it activates (``internet-access``, ...).
    ``params_json``: template parameter -> where its value comes from, one of
    ``"site.port"``, ``"site.link_address"``, ``"site.customer_address"``,
    ``"site.name"``, ``"char.NAME"`` (the order item's characteristic), ``"alloc.NAME"``
    (what ``allocations_json`` allocated under NAME), or ``"text:..."`` (a fixed value,
    ``{customer}``/``{site}``/``{product}`` filled in).
    ``allocations_json``: ``{"NAME": {"kind": "ipv4", "pool": POOL, "prefix_len": 29}}``
    or ``{"NAME": {"kind": "vlan", "pool": POOL}}``; the site's port is always allocated.
    ``usage_json``: ``{"model": "volume", "unit": "GB"}`` (in + out, rated by the usage
    price's tiers) or ``{"model": "p95", "unit": "Mbps"}`` (95th percentile of the
    5-minute rates, the larger direction), or ``{}`` (no usage charge).
    ``sla_json``: ``{"availability_pct": "99.9", "credit_pct_of_recurring": "10"}``: when
    the service's availability in the period is below the target, the credit is that share
    of the period's recurring charge (``{}``: no SLA).
    """

    __tablename__ = "bss_product_offering"

    id: str = Field(primary_key=True, max_length=64)
    name: str
    description: str = ""
    spec_id: str = Field(foreign_key="bss_product_spec.id")
    lifecycle_status: str = Field(default="draft", index=True,
                                  description="draft | active | retired")
    service: str = Field(description="the fulfilment service (adapters/data/services.yaml)")
    params_json: str = "{}"
    allocations_json: str = "{}"
    usage_json: str = "{}"
    sla_json: str = "{}"
    currency: str = Field(default="EUR", max_length=3)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ProductOfferingPrice(SQLModel, table=True):
    """One price of an offering (TMF620 productOfferingPrice).

    ``price_type``: ``oneTime`` | ``recurring`` (``period`` = ``month``) | ``usage``.
    ``amount``: the price per unit (text holding a decimal). For ``usage``, ``unit`` is
    ``GB`` or ``Mbps`` and ``tiers_json`` may rate by tiers:
    ``[{"up_to": "100", "amount": "0"}, {"up_to": "1000", "amount": "0.05"},
    {"up_to": null, "amount": "0.02"}]`` (each tier prices the units that fall in it;
    ``up_to`` null is the last tier).
    """

    __tablename__ = "bss_product_offering_price"

    id: str = Field(primary_key=True, max_length=64)
    offering_id: str = Field(foreign_key="bss_product_offering.id", index=True)
    name: str
    price_type: str = Field(description="oneTime | recurring | usage")
    period: str | None = Field(default=None, description="month (recurring)")
    amount: str = "0"
    currency: str = Field(default="EUR", max_length=3)
    unit: str | None = Field(default=None, description="GB | Mbps (usage)")
    tiers_json: str = "[]"


# -- customers (TMF629, TMF666) -------------------------------------------------------------


class Customer(SQLModel, table=True):
    """A customer (TMF629)."""

    __tablename__ = "bss_customer"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(index=True, unique=True)
    status: str = Field(default="active", description="active | inactive")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Contact(SQLModel, table=True):
    """A person at a customer."""

    __tablename__ = "bss_contact"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(foreign_key="bss_customer.id", index=True)
    name: str
    email: str | None = None
    phone: str | None = None
    role: str = Field(default="technical", description="technical | billing | ...")


class BillingAccount(SQLModel, table=True):
    """Where a customer's charges go (TMF666 billingAccount)."""

    __tablename__ = "bss_billing_account"

    id: str = Field(primary_key=True, max_length=32)
    customer_id: str = Field(foreign_key="bss_customer.id", index=True)
    name: str
    currency: str = Field(default="EUR", max_length=3)
    bill_cycle_day: int = Field(default=1, ge=1, le=28)
    tax_rate: str = Field(default="0", description="a fraction: 0.21 for 21 percent")
    state: str = Field(default="active")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Site(SQLModel, table=True):
    """A customer's place, served by one port of one edge router.

    ``device`` and ``port`` name the inventory's device and interface; ``link_address``
    is the router's address on the customer link (``100.64.12.1/24``) and
    ``customer_address`` the customer's (``100.64.12.2``); ``host`` names the customer's
    host when it is a lab node (verification sends real packets from it).
    """

    __tablename__ = "bss_site"

    id: str = Field(primary_key=True, max_length=32)
    customer_id: str = Field(foreign_key="bss_customer.id", index=True)
    name: str
    postal_address: str = ""
    device: str
    port: str
    link_address: str | None = None
    customer_address: str | None = None
    host: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


# -- orders (TMF622) and product inventory (TMF637) ---------------------------------------


class ProductOrder(SQLModel, table=True):
    """A customer's order (TMF622 productOrder).

    States (the graph is :data:`bss.orders.TRANSITIONS`): acknowledged, inProgress,
    completed, failed, partial, cancelled. ``idempotency_key`` with ``request_hash``:
    a retried creation returns this order; the same key with another body is refused.
    """

    __tablename__ = "bss_product_order"

    id: str = Field(primary_key=True, max_length=40)
    customer_id: str = Field(foreign_key="bss_customer.id", index=True)
    billing_account_id: str = Field(foreign_key="bss_billing_account.id")
    state: str = Field(default="acknowledged", index=True)
    description: str = ""
    requested_by: str = ""
    idempotency_key: str | None = Field(default=None, unique=True, max_length=200)
    request_hash: str | None = None
    error: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    state_changed_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ProductOrderItem(SQLModel, table=True):
    """One item of an order: add, modify or delete a product at a site."""

    __tablename__ = "bss_product_order_item"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="bss_product_order.id", index=True)
    position: int = 0
    action: str = Field(description="add | modify | delete")
    offering_id: str | None = Field(default=None, foreign_key="bss_product_offering.id")
    site_id: str | None = Field(default=None, foreign_key="bss_site.id")
    product_id: str | None = Field(default=None, description="modify, delete: the product")
    characteristics_json: str = "{}"
    state: str = Field(default="acknowledged")
    error: str | None = None
    change_batch: str | None = Field(default=None, description="the fulfilment batch")


class OrderStateChange(SQLModel, table=True):
    """One transition of an order or of one of its items."""

    __tablename__ = "bss_order_state_change"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="bss_product_order.id", index=True)
    item_id: int | None = None
    from_state: str | None = None
    to_state: str
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    reason: str = ""


class SagaStep(SQLModel, table=True):
    """What the saga did for an item: ``step`` (validate, allocate, fulfil, verify,
    activate, bind) and its ``state`` (started, done, failed, compensated). A step left
    ``started`` by a crash is resumed or compensated at start-up."""

    __tablename__ = "bss_saga_step"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="bss_product_order.id", index=True)
    item_id: int | None = None
    step: str
    state: str = "started"
    detail_json: str = "{}"
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class Product(SQLModel, table=True):
    """A customer's product (TMF637): what billing reads.

    ``status``: created, pendingActive, active, pendingTerminate, terminated, aborted.
    ``activated_at`` is when the device confirmed the activation (billing starts there);
    ``terminated_at`` when the config was removed (billing stops there).
    """

    __tablename__ = "bss_product"

    id: str = Field(primary_key=True, max_length=40)
    customer_id: str = Field(foreign_key="bss_customer.id", index=True)
    billing_account_id: str = Field(foreign_key="bss_billing_account.id", index=True)
    site_id: str = Field(foreign_key="bss_site.id")
    offering_id: str = Field(foreign_key="bss_product_offering.id")
    order_id: str = Field(foreign_key="bss_product_order.id")
    status: str = Field(default="created", index=True)
    service: str
    service_id: str = Field(description="the topology's ServiceBinding.service_id")
    device: str
    interface: str
    params_json: str = Field(default="{}", description="the template parameters applied")
    characteristics_json: str = "{}"
    change_batch: str | None = None
    activated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    terminated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


# -- resources ------------------------------------------------------------------------------


class ResourcePool(SQLModel, table=True):
    """A pool to allocate from: ``kind`` ipv4 (``range`` a CIDR, handed out in blocks of
    the request's prefix length) or vlan (``range`` ``"100-199"``)."""

    __tablename__ = "bss_resource_pool"

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(description="ipv4 | vlan")
    range: str
    description: str = ""


class Allocation(SQLModel, table=True):
    """A port, an address block or a VLAN id held for an order item and its product.

    ``kind``: port (``value`` ``"r1:eth4"``), ipv4 (``"203.0.113.8/29"``), vlan (``"101"``).
    A live allocation has ``released_at`` null; a partial unique index on
    (kind, scope, value) where ``released_at`` is null refuses a second live one in the
    database itself, so concurrent orders cannot both win. ``scope`` is the pool (or the
    device for a port). Overlapping IPv4 blocks of different sizes are checked by the
    allocator under the same transaction.
    """

    __tablename__ = "bss_allocation"
    __table_args__ = (
        Index("ux_bss_allocation_live", "kind", "scope", "value", unique=True,
              sqlite_where=text("released_at IS NULL"),
              postgresql_where=text("released_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str
    scope: str
    value: str
    order_id: str | None = Field(default=None, foreign_key="bss_product_order.id",
                                 index=True)
    item_id: int | None = None
    product_id: str | None = Field(default=None, index=True)
    state: str = Field(default="held", description="held | active | released")
    allocated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    released_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


# -- billing (TMF678) -----------------------------------------------------------------------


class CustomerBill(SQLModel, table=True):
    """An invoice or a credit note for one billing account and period.

    ``kind``: invoice | credit-note. ``state``: new (being built) -> issued (immutable:
    a correction is a credit note, ``corrects_id``; several may correct one invoice, never
    more than its subtotal in all). One invoice per account and period (a partial unique
    index): a repeated bill run returns it instead of billing twice.
    Amounts are decimals as text in ``currency``.
    """

    __tablename__ = "bss_customer_bill"
    __table_args__ = (
        Index("ux_bss_bill_invoice_period", "billing_account_id", "period", unique=True,
              sqlite_where=text("kind = 'invoice'"),
              postgresql_where=text("kind = 'invoice'")),
    )

    id: str = Field(primary_key=True, max_length=40)
    number: str = Field(unique=True)
    billing_account_id: str = Field(foreign_key="bss_billing_account.id", index=True)
    customer_id: str = Field(foreign_key="bss_customer.id")
    period: str = Field(description="YYYY-MM")
    period_start: datetime = Field(sa_type=UtcDateTime)
    period_end: datetime = Field(sa_type=UtcDateTime)
    kind: str = "invoice"
    state: str = "new"
    currency: str = "EUR"
    subtotal: str = "0"
    tax: str = "0"
    total: str = "0"
    tax_rate: str = "0"
    corrects_id: str = Field(default="", description="a credit note: the invoice it corrects")
    issued_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class BillLine(SQLModel, table=True):
    """One line of a bill (TMF678 appliedCustomerBillingRate).

    ``kind``: recurring | oneTime | usage | credit | adjustment. ``amount`` is rounded
    once, by the currency's rule; ``detail_json`` keeps how it was computed (prorating
    fractions, the gigabytes per tier, outage minutes and the alarms behind them).
    """

    __tablename__ = "bss_bill_line"

    id: int | None = Field(default=None, primary_key=True)
    bill_id: str = Field(foreign_key="bss_customer_bill.id", index=True)
    product_id: str | None = None
    kind: str
    description: str
    quantity: str = "1"
    unit: str = ""
    unit_price: str = "0"
    amount: str = "0"
    period_start: datetime | None = Field(default=None, sa_type=UtcDateTime)
    period_end: datetime | None = Field(default=None, sa_type=UtcDateTime)
    detail_json: str = "{}"


def init_bss_db(engine: Engine) -> None:
    """Create the BSS tables (and the inventory's and the agents') where missing."""
    from agents.fault.model import init_fault_db
    from agents.fulfilment.model import init_fulfilment_db

    init_fault_db(engine)
    init_fulfilment_db(engine)
    SQLModel.metadata.create_all(engine, tables=[
        t.__table__ for t in (  # type: ignore[union-attr]
            ProductSpecification, ProductOffering, ProductOfferingPrice, Customer, Contact,
            BillingAccount, Site, ProductOrder, ProductOrderItem, OrderStateChange,
            SagaStep, Product, ResourcePool, Allocation, CustomerBill, BillLine)])
