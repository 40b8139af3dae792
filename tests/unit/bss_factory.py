"""Rows for billing and assurance tests, made directly with bss.model's classes (no
catalogue loader, no order saga): accounts, offerings with prices, products, devices."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bss.model import (
    BillingAccount,
    Customer,
    Product,
    ProductOffering,
    ProductOfferingPrice,
    ProductOrder,
    ProductSpecification,
    Site,
    init_bss_db,
)
from topology.db import get_engine
from topology.inventory import Device, Interface, Link

FAULT_OUTAGES = frozenset({"link-down", "device-unreachable"})


def make_engine(tmp_path: Path) -> Engine:
    engine = get_engine(f"sqlite:///{tmp_path / 'bss.db'}")
    init_bss_db(engine)
    return engine


def add(engine: Engine, *rows: Any) -> None:
    with Session(engine) as s:
        for r in rows:
            s.add(r)
        s.commit()


def seed_account(engine: Engine, account: str = "ACC-1", *, customer: str = "CUST-1",
                 name: str = "Acme", currency: str = "EUR", cycle_day: int = 1,
                 tax_rate: str = "0.21") -> None:
    with Session(engine) as s:
        if s.get(Customer, customer) is None:
            s.add(Customer(id=customer, name=name))
            s.flush()
        s.add(BillingAccount(id=account, customer_id=customer, name=f"{name} billing",
                             currency=currency, bill_cycle_day=cycle_day, tax_rate=tax_rate))
        s.commit()


def seed_offering(engine: Engine, oid: str, *, name: str | None = None,
                  recurring: str | None = "49.00", one_time: str | None = None,
                  usage: dict[str, Any] | None = None, usage_amount: str = "0",
                  usage_unit: str = "GB", tiers: list[dict[str, Any]] | None = None,
                  sla: dict[str, str] | None = None, currency: str = "EUR") -> None:
    with Session(engine) as s:
        if s.get(ProductSpecification, "spec") is None:
            s.add(ProductSpecification(id="spec", name="Internet"))
            s.flush()
        s.add(ProductOffering(id=oid, name=name or oid, spec_id="spec",
                              lifecycle_status="active", service="internet-access",
                              usage_json=json.dumps(usage or {}),
                              sla_json=json.dumps(sla or {}), currency=currency))
        s.flush()
        if recurring is not None:
            s.add(ProductOfferingPrice(id=f"{oid}-monthly", offering_id=oid, name="Monthly fee",
                                       price_type="recurring", period="month",
                                       amount=recurring, currency=currency))
        if one_time is not None:
            s.add(ProductOfferingPrice(id=f"{oid}-setup", offering_id=oid, name="Installation",
                                       price_type="oneTime", amount=one_time,
                                       currency=currency))
        if usage is not None:
            s.add(ProductOfferingPrice(id=f"{oid}-usage", offering_id=oid, name="Usage",
                                       price_type="usage", amount=usage_amount,
                                       unit=usage_unit, tiers_json=json.dumps(tiers or []),
                                       currency=currency))
        s.commit()


def seed_product(engine: Engine, pid: str, *, offering: str, activated_at: datetime,
                 terminated_at: datetime | None = None, account: str = "ACC-1",
                 device: str = "r1", interface: str = "eth4") -> None:
    with Session(engine) as s:
        acc = s.get(BillingAccount, account)
        assert acc is not None
        site_id = f"SITE-{pid}"
        s.add(Site(id=site_id, customer_id=acc.customer_id, name=f"site of {pid}",
                   device=device, port=interface))
        order_id = f"ORD-{pid}"
        s.add(ProductOrder(id=order_id, customer_id=acc.customer_id,
                           billing_account_id=account, state="completed"))
        s.flush()
        s.add(Product(id=pid, customer_id=acc.customer_id, billing_account_id=account,
                      site_id=site_id, offering_id=offering, order_id=order_id,
                      status="terminated" if terminated_at else "active",
                      service="internet-access", service_id=pid, device=device,
                      interface=interface, activated_at=activated_at,
                      terminated_at=terminated_at))
        s.commit()


def seed_device(engine: Engine, name: str, interfaces: list[str],
                role: str = "router") -> dict[str, int]:
    """The device and its interfaces; returns {"": device id, ifname: interface id}."""
    with Session(engine) as s:
        dev = Device(name=name, role=role)
        s.add(dev)
        s.flush()
        assert dev.id is not None
        ids = {"": dev.id}
        for n in interfaces:
            iface = Interface(device_id=dev.id, name=n)
            s.add(iface)
            s.flush()
            assert iface.id is not None
            ids[n] = iface.id
        s.commit()
        return ids


def seed_link(engine: Engine, a: int, b: int) -> int:
    with Session(engine) as s:
        link = Link(a_interface_id=min(a, b), b_interface_id=max(a, b), confirmed=True)
        s.add(link)
        s.commit()
        assert link.id is not None
        return link.id


def interface_id(engine: Engine, device: str, name: str) -> int:
    with Session(engine) as s:
        dev = s.exec(select(Device).where(Device.name == device)).one()
        iface = s.exec(select(Interface).where(Interface.device_id == dev.id,
                                               Interface.name == name)).one()
        assert iface.id is not None
        return iface.id
