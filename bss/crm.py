"""Customers, their contacts, billing accounts and sites (TMF629, TMF666, TMF674).

    CrmError            a request refused (``problems`` lists every reason); nothing changed
    ├── CrmNotFound     no such customer, account, site or contact (also a NotFound)
    └── CrmConflict     it clashes with what exists (a duplicate name, a customer with
                        active products or open orders)

Ids are short and sequential (``CUST-0001``, ``ACC-0001``, ``SITE-0001``): the next one is
the highest stored plus one, and an insert that loses a race to the same id is retried
with the next (the primary key refuses the second one, whatever the backend).

A site names the inventory's device and one of its interfaces: both must exist, so an
order can only be placed where the network has a port.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from bss.model import (
    BillingAccount,
    Contact,
    Customer,
    CustomerBill,
    Product,
    ProductOrder,
    Site,
)
from topology.errors import SwitchboardError
from topology.inventory import Device, Interface
from topology.queries import NotFound, Page

__all__ = [
    "CLOSED_PRODUCT_STATES",
    "OPEN_ORDER_STATES",
    "CrmConflict",
    "CrmError",
    "CrmNotFound",
    "NewContact",
    "Page",
    "add_contact",
    "create_billing_account",
    "create_customer",
    "create_site",
    "delete_customer",
    "get_billing_account",
    "get_contact",
    "get_customer",
    "get_site",
    "list_billing_accounts",
    "list_contacts",
    "list_customers",
    "list_sites",
    "update_billing_account",
    "update_contact",
    "update_customer",
    "update_site",
]

OPEN_ORDER_STATES: Final = ("acknowledged", "inProgress")
CLOSED_PRODUCT_STATES: Final = ("terminated", "aborted")
CUSTOMER_STATES: Final = ("active", "inactive")
MAX_NAME: Final = 100
_CURRENCY: Final = re.compile(r"^[A-Z]{3}$")
_EMAIL: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE: Final = re.compile(r"^\+?[0-9 ()./-]{3,30}$")
_HOST: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_RETRIES: Final = 50

T = TypeVar("T", bound=SQLModel)


class CrmError(SwitchboardError):
    """A CRM request was refused; ``problems`` lists every reason. Nothing changed."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        self.problems = list(problems)
        if self.problems:
            message = f"{message}: " + "; ".join(self.problems)
        super().__init__(message)


class CrmNotFound(CrmError, NotFound):
    """No such customer, account, site or contact."""


class CrmConflict(CrmError):
    """The request clashes with what exists."""


# -- checks ---------------------------------------------------------------------------------


def _text(problems: list[str], what: str, raw: str | None, *, max_len: int = MAX_NAME,
          required: bool = True) -> str:
    value = (raw or "").strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        problems.append(f"{what} holds a newline or control character")
    elif len(value) > max_len:
        problems.append(f"{what} is longer than {max_len} characters")
    elif required and not value:
        problems.append(f"{what} is empty")
    return value


def _currency(problems: list[str], raw: str) -> str:
    if not _CURRENCY.match(raw or ""):
        problems.append(f"currency {raw!r} must be 3 capital letters (EUR)")
    return raw


def _bill_day(problems: list[str], raw: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 28:
        problems.append(f"bill cycle day {raw!r} must be a day from 1 to 28")
    return raw


def _tax_rate(problems: list[str], raw: str) -> str:
    try:
        rate = Decimal(str(raw).strip())
    except InvalidOperation:
        problems.append(f"tax rate {raw!r} is not a decimal (a fraction: 0.21 for 21 percent)")
        return str(raw)
    if not rate.is_finite() or not Decimal(0) <= rate <= Decimal(1):
        problems.append(f"tax rate {raw!r} must be a fraction from 0 to 1 (0.21 for 21 "
                        "percent)")
    return str(rate)


def _contact_fields(problems: list[str], email: str | None,
                    phone: str | None) -> tuple[str | None, str | None]:
    email = (email or "").strip() or None
    phone = (phone or "").strip() or None
    if email is not None and (not _EMAIL.match(email) or len(email) > 200):
        problems.append(f"email {email!r} is not an email address")
    if phone is not None and not _PHONE.match(phone):
        problems.append(f"phone {phone!r} is not a phone number")
    return email, phone


def _next_id(session: Session, model: type[Any], prefix: str) -> str:
    """The highest ``PREFIX-NNNN`` id plus one (by length, then text: 10000 > 9999). Ids
    with the prefix but no number (``SITE-HQ``, made by an import or by hand) are
    skipped, not taken for 0: that would hand out an id in use, again and again."""
    id_col = col(model.id)
    n = 0
    for last in session.exec(select(id_col).where(id_col.like(f"{prefix}-%"))
                             .order_by(func.length(id_col).desc(), id_col.desc())):
        tail = str(last)[len(prefix) + 1:]
        if tail.isascii() and tail.isdigit():
            n = int(tail)
            break
    return f"{prefix}-{n + 1:04d}"


def _insert_with_id(session: Session, model: type[T], prefix: str,
                    make: Callable[[str], T], still_ok: Callable[[], None]) -> T:
    """Insert the row ``make(id)`` under the next free id; a lost race to the same id is
    retried (``still_ok`` re-checks what may have changed meanwhile, e.g. a name taken)."""
    for _ in range(_RETRIES):
        row = make(_next_id(session, model, prefix))
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            still_ok()
            continue
        session.refresh(row)
        return row
    raise CrmConflict(f"could not allocate a {prefix} id after {_RETRIES} attempts")


def _get(session: Session, model: type[T], key: Any, what: str) -> T:
    row = session.get(model, key)
    if row is None:
        raise CrmNotFound(f"no {what} {key!r}")
    return row


def _page(session: Session, q: Any, offset: int, limit: int) -> Page[Any]:
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    return Page(list(session.exec(q.offset(offset).limit(limit)).all()), int(total),
                offset, limit)


# -- customers ------------------------------------------------------------------------------


def _name_taken(session: Session, name: str, but: str | None = None) -> Customer | None:
    q = select(Customer).where(func.lower(Customer.name) == name.lower())
    if but is not None:
        q = q.where(Customer.id != but)
    return session.exec(q).first()


@dataclass(frozen=True)
class NewContact:
    """A person to add with a new customer."""

    name: str
    email: str | None = None
    phone: str | None = None
    role: str = "technical"


def create_customer(session: Session, name: str, *, status: str = "active",
                    contacts: Sequence[NewContact] = ()) -> Customer:
    """A new customer (``CUST-0001``, ...) with its contacts, every one checked before
    anything is written. A name another customer has (in any case) is refused."""
    problems: list[str] = []
    name = _text(problems, "name", name)
    if status not in CUSTOMER_STATES:
        problems.append(f"status {status!r} must be one of {', '.join(CUSTOMER_STATES)}")
    for i, k in enumerate(contacts, 1):
        sub: list[str] = []
        _text(sub, "name", k.name)
        _text(sub, "role", k.role, max_len=40)
        _contact_fields(sub, k.email, k.phone)
        problems.extend(f"contact {i}: {p}" for p in sub)
    if problems:
        raise CrmError("customer refused", problems)

    def taken() -> None:
        other = _name_taken(session, name)
        if other is not None:
            raise CrmConflict(f"a customer named {other.name!r} exists already ({other.id})")

    taken()
    customer = _insert_with_id(session, Customer, "CUST",
                               lambda cid: Customer(id=cid, name=name, status=status), taken)
    for k in contacts:
        add_contact(session, customer.id, k.name, email=k.email, phone=k.phone, role=k.role)
    return customer


def get_customer(session: Session, customer_id: str) -> Customer:
    """The customer, or :class:`CrmNotFound`."""
    return _get(session, Customer, customer_id, "customer")


def list_customers(session: Session, *, offset: int = 0, limit: int = 100,
                   status: str | None = None, name: str | None = None) -> Page[Customer]:
    """Customers by id; ``name`` matches a part of the name, any case."""
    q = select(Customer)
    if status:
        q = q.where(Customer.status == status)
    if name:
        q = q.where(func.lower(Customer.name).contains(name.lower()))
    return _page(session, q.order_by(func.length(Customer.id), col(Customer.id)),
                 offset, limit)


def update_customer(session: Session, customer_id: str, *, name: str | None = None,
                    status: str | None = None) -> Customer:
    """Rename a customer or change its status (active, inactive). Setting a customer
    inactive with active products or open orders is refused."""
    customer = get_customer(session, customer_id)
    problems: list[str] = []
    if name is not None:
        name = _text(problems, "name", name)
    if status is not None and status not in CUSTOMER_STATES:
        problems.append(f"status {status!r} must be one of {', '.join(CUSTOMER_STATES)}")
    if problems:
        raise CrmError(f"customer {customer_id} refused", problems)
    if name is not None and name != customer.name:
        other = _name_taken(session, name, but=customer_id)
        if other is not None:
            raise CrmConflict(f"a customer named {other.name!r} exists already ({other.id})")
        customer.name = name
    if status is not None and status != customer.status:
        if status == "inactive":
            _refuse_if_busy(session, customer_id, "set inactive")
        customer.status = status
    session.add(customer)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise CrmConflict(f"a customer named {name!r} exists already") from None
    session.refresh(customer)
    return customer


def _refuse_if_busy(session: Session, customer_id: str, what: str) -> None:
    products = session.exec(select(Product.id).where(
        Product.customer_id == customer_id,
        col(Product.status).not_in(CLOSED_PRODUCT_STATES))).all()
    orders = session.exec(select(ProductOrder.id).where(
        ProductOrder.customer_id == customer_id,
        col(ProductOrder.state).in_(OPEN_ORDER_STATES))).all()
    reasons = []
    if products:
        reasons.append(f"{len(products)} active product(s): {', '.join(products[:5])}")
    if orders:
        reasons.append(f"{len(orders)} open order(s): {', '.join(orders[:5])}")
    if reasons:
        raise CrmConflict(f"customer {customer_id} cannot be {what}: it has "
                          + " and ".join(reasons) + " (terminate or finish them first)")


def delete_customer(session: Session, customer_id: str) -> str:
    """Delete a customer: refused with active products or open orders. A customer with
    history (orders, products, bills) is set inactive instead, so that history keeps its
    owner; returns ``"deleted"`` or ``"deactivated"``."""
    customer = get_customer(session, customer_id)
    _refuse_if_busy(session, customer_id, "deleted")
    history = any(session.exec(select(m.id).where(m.customer_id == customer_id)
                               .limit(1)).first() is not None
                  for m in (ProductOrder, Product, CustomerBill))
    if history:
        customer.status = "inactive"
        session.add(customer)
        session.commit()
        return "deactivated"
    for model in (Contact, Site, BillingAccount):
        for row in session.exec(select(model).where(
                model.customer_id == customer_id)).all():
            session.delete(row)
    session.flush()
    session.delete(customer)
    session.commit()
    return "deleted"


# -- contacts -------------------------------------------------------------------------------


def add_contact(session: Session, customer_id: str, name: str, *, email: str | None = None,
                phone: str | None = None, role: str = "technical") -> Contact:
    """A person at the customer."""
    get_customer(session, customer_id)
    problems: list[str] = []
    name = _text(problems, "contact name", name)
    role = _text(problems, "contact role", role, max_len=40)
    email, phone = _contact_fields(problems, email, phone)
    if problems:
        raise CrmError("contact refused", problems)
    contact = Contact(customer_id=customer_id, name=name, email=email, phone=phone, role=role)
    session.add(contact)
    session.commit()
    session.refresh(contact)
    return contact


def get_contact(session: Session, contact_id: int) -> Contact:
    """The contact, or :class:`CrmNotFound`."""
    return _get(session, Contact, contact_id, "contact")


def list_contacts(session: Session, customer_id: str) -> list[Contact]:
    """A customer's contacts, oldest first."""
    get_customer(session, customer_id)
    return list(session.exec(select(Contact).where(Contact.customer_id == customer_id)
                             .order_by(col(Contact.id))).all())


def update_contact(session: Session, contact_id: int, *, name: str | None = None,
                   email: str | None = None, phone: str | None = None,
                   role: str | None = None) -> Contact:
    """Change a contact's fields (an empty email or phone removes it)."""
    contact = get_contact(session, contact_id)
    problems: list[str] = []
    new_name = _text(problems, "contact name", name) if name is not None else contact.name
    new_role = (_text(problems, "contact role", role, max_len=40) if role is not None
                else contact.role)
    new_email, new_phone = _contact_fields(problems, email, phone)
    if problems:
        raise CrmError(f"contact {contact_id} refused", problems)
    contact.name, contact.role = new_name, new_role
    if email is not None:
        contact.email = new_email
    if phone is not None:
        contact.phone = new_phone
    session.add(contact)
    session.commit()
    session.refresh(contact)
    return contact


# -- billing accounts -----------------------------------------------------------------------


def create_billing_account(session: Session, customer_id: str, *, name: str | None = None,
                           currency: str = "EUR", bill_cycle_day: int = 1,
                           tax_rate: str = "0") -> BillingAccount:
    """A billing account (``ACC-0001``) for the customer: currency (3 letters), the day
    of the month its bills are cut (1..28) and the tax rate as a fraction (``"0.21"``)."""
    customer = get_customer(session, customer_id)
    problems: list[str] = []
    name = _text(problems, "name", name or f"{customer.name} account"[:MAX_NAME])
    currency = _currency(problems, currency)
    bill_cycle_day = _bill_day(problems, bill_cycle_day)
    rate = _tax_rate(problems, tax_rate)
    if customer.status != "active":
        problems.append(f"customer {customer_id} is {customer.status}")
    if problems:
        raise CrmError("billing account refused", problems)
    return _insert_with_id(
        session, BillingAccount, "ACC",
        lambda aid: BillingAccount(id=aid, customer_id=customer_id, name=name,
                                   currency=currency, bill_cycle_day=bill_cycle_day,
                                   tax_rate=rate),
        lambda: None)


def get_billing_account(session: Session, account_id: str) -> BillingAccount:
    """The billing account, or :class:`CrmNotFound`."""
    return _get(session, BillingAccount, account_id, "billing account")


def list_billing_accounts(session: Session, *, customer_id: str | None = None,
                          offset: int = 0, limit: int = 100) -> Page[BillingAccount]:
    """Billing accounts by id, optionally one customer's."""
    q = select(BillingAccount)
    if customer_id:
        q = q.where(BillingAccount.customer_id == customer_id)
    return _page(session, q.order_by(func.length(BillingAccount.id),
                                     col(BillingAccount.id)), offset, limit)


def update_billing_account(session: Session, account_id: str, *, name: str | None = None,
                           currency: str | None = None, bill_cycle_day: int | None = None,
                           tax_rate: str | None = None,
                           state: str | None = None) -> BillingAccount:
    """Change an account; its currency only while nothing was billed or ordered on it."""
    account = get_billing_account(session, account_id)
    problems: list[str] = []
    if name is not None:
        name = _text(problems, "name", name)
    if currency is not None:
        _currency(problems, currency)
        used = any(session.exec(select(m.id).where(
            m.billing_account_id == account_id).limit(1)).first() is not None
                   for m in (ProductOrder, Product, CustomerBill))
        if used and currency != account.currency:
            problems.append(f"currency cannot change from {account.currency}: the account "
                            "has orders, products or bills")
    if bill_cycle_day is not None:
        _bill_day(problems, bill_cycle_day)
    rate = _tax_rate(problems, tax_rate) if tax_rate is not None else None
    if state is not None and state not in ("active", "suspended", "closed"):
        problems.append(f"state {state!r} must be active, suspended or closed")
    if problems:
        raise CrmError(f"billing account {account_id} refused", problems)
    if name is not None:
        account.name = name
    if currency is not None:
        account.currency = currency
    if bill_cycle_day is not None:
        account.bill_cycle_day = bill_cycle_day
    if rate is not None:
        account.tax_rate = rate
    if state is not None:
        account.state = state
    session.add(account)
    session.commit()
    session.refresh(account)
    return account


# -- sites ----------------------------------------------------------------------------------


def _site_network(problems: list[str], session: Session, device: str, port: str,
                  link_address: str | None, customer_address: str | None,
                  host: str | None) -> tuple[str | None, str | None, str | None]:
    """Check the device and port against the inventory and the addresses against each
    other; the addresses in canonical form."""
    dev = session.exec(select(Device).where(Device.name == device)).first()
    if dev is None:
        problems.append(f"device {device!r} is not in the inventory (discover it first)")
    else:
        ports = {i.name: i for i in session.exec(
            select(Interface).where(Interface.device_id == dev.id)).all()}
        iface = ports.get(port)
        if iface is None:
            known = ", ".join(sorted(ports)[:20]) or "none"
            problems.append(f"device {device} has no interface {port!r} (it has: {known})")
        elif iface.missing:
            problems.append(f"interface {device}:{port} is missing since the last discovery")
    link: ipaddress.IPv4Interface | None = None
    if link_address:
        try:
            link = ipaddress.IPv4Interface(link_address.strip())
        except ValueError:
            problems.append(f"link address {link_address!r} is not an IPv4 address with a "
                            "prefix length (100.64.12.1/24)")
        else:
            if "/" not in link_address:
                problems.append(f"link address {link_address!r} needs its prefix length "
                                "(100.64.12.1/24)")
                link = None
            elif link.network.prefixlen < 31 and link.ip in (
                    link.network.network_address, link.network.broadcast_address):
                problems.append(f"link address {link_address} is the network or broadcast "
                                "address of its prefix")
                link = None
    cust: ipaddress.IPv4Address | None = None
    if customer_address:
        if not link_address:
            problems.append("customer address needs the link address (the router's side)")
        try:
            cust = ipaddress.IPv4Address(customer_address.strip())
        except ValueError:
            problems.append(f"customer address {customer_address!r} is not an IPv4 address")
        else:
            if link is not None:
                net = link.network
                if cust not in net:
                    problems.append(f"customer address {cust} is not on the link {net}")
                elif cust == link.ip:
                    problems.append(f"customer address {cust} is the router's own address")
                elif net.prefixlen < 31 and cust in (net.network_address,
                                                     net.broadcast_address):
                    problems.append(f"customer address {cust} is the network or broadcast "
                                    f"address of {net}")
    host = (host or "").strip() or None
    if host is not None and not _HOST.match(host):
        problems.append(f"host {host!r} is not a node name")
    return (str(link) if link else (link_address or None),
            str(cust) if cust else (customer_address or None), host)


def create_site(session: Session, customer_id: str, name: str, *, device: str, port: str,
                link_address: str | None = None, customer_address: str | None = None,
                host: str | None = None, postal_address: str = "") -> Site:
    """A site (``SITE-0001``) served by ``port`` of ``device``: both must be in the
    inventory. ``link_address`` is the router's address on the customer link with its
    prefix, ``customer_address`` the customer's, inside that network."""
    customer = get_customer(session, customer_id)
    problems: list[str] = []
    name = _text(problems, "name", name)
    postal_address = _text(problems, "postal address", postal_address, max_len=300,
                           required=False)
    device = (device or "").strip()
    port = (port or "").strip()
    if not device or not port:
        problems.append("device and port are required")
        link = cust = host = None
    else:
        link, cust, host = _site_network(problems, session, device, port, link_address,
                                         customer_address, host)
    if customer.status != "active":
        problems.append(f"customer {customer_id} is {customer.status}")
    same = session.exec(select(Site).where(Site.customer_id == customer_id,
                                           func.lower(Site.name) == name.lower())).first()
    if name and same is not None:
        raise CrmConflict(f"customer {customer_id} has a site named {same.name!r} already "
                          f"({same.id})")
    if problems:
        raise CrmError("site refused", problems)
    return _insert_with_id(
        session, Site, "SITE",
        lambda sid: Site(id=sid, customer_id=customer_id, name=name,
                         postal_address=postal_address, device=device, port=port,
                         link_address=link, customer_address=cust, host=host),
        lambda: None)


def get_site(session: Session, site_id: str) -> Site:
    """The site, or :class:`CrmNotFound`."""
    return _get(session, Site, site_id, "site")


def list_sites(session: Session, *, customer_id: str | None = None, offset: int = 0,
               limit: int = 100) -> Page[Site]:
    """Sites by id, optionally one customer's."""
    q = select(Site)
    if customer_id:
        q = q.where(Site.customer_id == customer_id)
    return _page(session, q.order_by(func.length(Site.id), col(Site.id)), offset, limit)


def update_site(session: Session, site_id: str, *, name: str | None = None,
                device: str | None = None, port: str | None = None,
                link_address: str | None = None, customer_address: str | None = None,
                host: str | None = None, postal_address: str | None = None) -> Site:
    """Change a site; where it connects (device, port, addresses) only while no live
    product uses it (terminate the product first). ``""`` clears an optional field."""
    site = get_site(session, site_id)
    problems: list[str] = []
    new_name = _text(problems, "name", name) if name is not None else site.name
    new_postal = (_text(problems, "postal address", postal_address, max_len=300,
                        required=False) if postal_address is not None else site.postal_address)
    wiring = {"device": device, "port": port, "link_address": link_address,
              "customer_address": customer_address, "host": host}
    changes = {k: v for k, v in wiring.items() if v is not None and v != getattr(site, k)}
    new = {k: (v if v is not None else getattr(site, k)) for k, v in wiring.items()}
    link: str | None = None
    cust: str | None = None
    host_: str | None = None
    if changes:
        live = session.exec(select(Product.id).where(
            Product.site_id == site_id,
            col(Product.status).not_in(CLOSED_PRODUCT_STATES))).all()
        if live:
            raise CrmConflict(f"site {site_id} serves live product(s) {', '.join(live[:5])}: "
                              f"its {', '.join(changes)} cannot change")
        link, cust, host_ = _site_network(problems, session, str(new["device"] or ""),
                                          str(new["port"] or ""), new["link_address"] or None,
                                          new["customer_address"] or None, new["host"])
    same = session.exec(select(Site).where(Site.customer_id == site.customer_id,
                                           func.lower(Site.name) == new_name.lower(),
                                           Site.id != site_id)).first()
    if same is not None:
        raise CrmConflict(f"customer {site.customer_id} has a site named {same.name!r} "
                          f"already ({same.id})")
    if problems:
        raise CrmError(f"site {site_id} refused", problems)
    site.name = new_name
    site.postal_address = new_postal
    if changes:
        site.device = str(new["device"])
        site.port = str(new["port"])
        site.link_address, site.customer_address, site.host = link, cust, host_
    session.add(site)
    session.commit()
    session.refresh(site)
    return site
