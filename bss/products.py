"""The product inventory (TMF637): a customer's products, what billing reads.

A product is created by an order's saga (``pendingActive``), becomes ``active`` when the
device confirmed its activation (``activated_at``), ``aborted`` when its order failed,
``pendingTerminate`` while a delete order removes its config and ``terminated`` once the
device confirmed the removal (``terminated_at``). Each carries its service, the port it
is bound to (``device``, ``interface``) and the template parameters it was applied with.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from bss.model import Allocation, Customer, Product, loads
from topology.inventory import Device, Interface
from topology.queries import NotFound, Page
from topology.services import ServiceBinding

__all__ = ["ProductNotFound", "get_product", "list_products", "product_doc"]

STATUSES = ("created", "pendingActive", "active", "pendingTerminate", "terminated", "aborted")


class ProductNotFound(NotFound):
    """No such product."""


def get_product(session: Session, product_id: str) -> Product:
    """The product (``ProductNotFound``)."""
    product = session.get(Product, product_id)
    if product is None:
        raise ProductNotFound(f"no product {product_id!r}")
    return product


def list_products(session: Session, *, customer: str | None = None,
                  status: str | None = None, offset: int = 0,
                  limit: int = 100) -> Page[Product]:
    """Products, newest first; ``customer`` is an id or a name."""
    q = select(Product)
    if customer:
        cust = session.get(Customer, customer) or session.exec(
            select(Customer).where(Customer.name == customer)).first()
        q = q.where(Product.customer_id == (cust.id if cust else customer))
    if status:
        q = q.where(Product.status == status)
    limit = max(1, min(limit, 1000))
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    rows = session.exec(q.order_by(col(Product.created_at).desc(), col(Product.id).desc())
                        .offset(offset).limit(limit)).all()
    return Page(list(rows), total, offset, limit)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def product_doc(session: Session, product: Product, *, base: str = "") -> dict[str, Any]:
    """The product in the shape of TMF637 (``x_`` fields are Switchboard's)."""
    binding = session.exec(select(ServiceBinding).where(
        ServiceBinding.service_id == product.service_id)).first()
    device = session.exec(select(Device).where(Device.name == product.device)).first()
    iface = session.exec(select(Interface).where(
        Interface.device_id == device.id, Interface.name == product.interface)).first() \
        if device is not None else None
    allocations = session.exec(select(Allocation).where(
        Allocation.product_id == product.id).order_by(col(Allocation.id))).all()
    chars = loads(product.characteristics_json, {})
    return {
        "id": product.id,
        "href": f"{base}/tmf-api/productInventory/v4/product/{product.id}",
        "@type": "Product",
        "name": f"{product.offering_id} at {product.site_id}",
        "status": product.status,
        "productOffering": {"id": product.offering_id},
        "relatedParty": [{"id": product.customer_id, "role": "Customer",
                          "@referredType": "Customer"}],
        "billingAccount": {"id": product.billing_account_id},
        "place": [{"id": product.site_id, "role": "installationAddress",
                   "@referredType": "Site"}],
        "productOrderItem": [{"productOrderId": product.order_id}],
        "startDate": _iso(product.activated_at),
        "terminationDate": _iso(product.terminated_at),
        "productCharacteristic": [{"name": k, "value": v} for k, v in sorted(chars.items())],
        "realizingService": [{"id": product.service_id, "name": product.service}],
        "realizingResource": [{"id": f"{product.device}:{product.interface}",
                               "name": product.interface,
                               "@referredType": "LogicalResource"}],
        "x_service": product.service,
        "x_boundInterface": {
            "device": product.device, "interface": product.interface,
            "device_id": device.id if device else None,
            "interface_id": iface.id if iface else None,
            "binding": binding.state if binding else None},
        "x_activatedAt": _iso(product.activated_at),
        "x_params": loads(product.params_json, {}),
        "x_changeBatch": product.change_batch,
        "x_allocations": [{"kind": a.kind, "scope": a.scope, "value": a.value,
                           "state": a.state, "allocated_at": _iso(a.allocated_at),
                           "released_at": _iso(a.released_at)} for a in allocations],
    }
