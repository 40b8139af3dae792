"""Service records: which customer's service is bound to which port of the network.

The fault agent reads them to say which customers an alarm hits; the BSS writes them when
an order activates a service (and unbinds them when it is ceased). A service is bound to
one interface (the customer-facing port) of one device; an alarm on that interface, its
device, or a link or root alarm above them impacts the service.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Field, Session, SQLModel, col, select

from topology.inventory import Interface, UtcDateTime, utcnow

__all__ = ["ServiceBinding", "ServiceBindingPublic", "services_on"]


class ServiceBindingBase(SQLModel):
    service_id: str = Field(index=True, unique=True,
                            description="the service's id (the BSS product or order item)")
    service_type: str = Field(description='e.g. "internet-access"')
    customer: str = Field(description="the customer's name, as people read it")
    customer_id: str | None = Field(default=None, description="the BSS customer id")
    device_id: int = Field(foreign_key="device.id", index=True)
    interface_id: int | None = Field(default=None, foreign_key="interface.id", index=True)
    state: str = Field(default="active", description="active | inactive")
    bound_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class ServiceBinding(ServiceBindingBase, table=True):
    """One service bound to a port."""

    __tablename__ = "service_binding"

    id: int | None = Field(default=None, primary_key=True)


class ServiceBindingPublic(ServiceBindingBase):
    """A service binding as the API shows it."""

    id: int


def services_on(session: Session, *, device_ids: set[int],
                interface_ids: set[int]) -> list[ServiceBinding]:
    """Active services bound to any of the interfaces, or to a device of ``device_ids``
    (any of its ports)."""
    if not device_ids and not interface_ids:
        return []
    clauses = []
    if interface_ids:
        clauses.append(col(ServiceBinding.interface_id).in_(interface_ids))
    if device_ids:
        clauses.append(col(ServiceBinding.device_id).in_(device_ids))
        clauses.append(col(ServiceBinding.interface_id).in_(
            select(Interface.id).where(col(Interface.device_id).in_(device_ids))))
    rows = session.exec(select(ServiceBinding).where(
        ServiceBinding.state == "active", or_(*clauses)).order_by(
        col(ServiceBinding.service_id))).all()
    return list(rows)
