"""The BSS catalogue and customers over REST, in the shapes of TMF620, TMF629, TMF666 and
TMF674 (v4).

    GET   /tmf-api/productCatalogManagement/v4/productSpecification[/{id}]
    GET   /tmf-api/productCatalogManagement/v4/productOffering[/{id}]   ?lifecycleStatus=
    PATCH /tmf-api/productCatalogManagement/v4/productOffering/{id}     {lifecycleStatus}
    GET   /tmf-api/productCatalogManagement/v4/productOfferingPrice[/{id}]
                                                                   ?productOffering.id=
    GET   /tmf-api/customerManagement/v4/customer[/{id}]          ?status= &name=
    POST  /tmf-api/customerManagement/v4/customer                 {name, status, contact}
    PATCH /tmf-api/customerManagement/v4/customer/{id}            {name, status}
    GET   /tmf-api/accountManagement/v4/billingAccount[/{id}]     ?relatedParty.id=
    POST  /tmf-api/accountManagement/v4/billingAccount            {relatedParty, currency,
                                                                   billCycleDay, taxRate}
    GET   /tmf-api/geographicSiteManagement/v4/geographicSite[/{id}]  ?relatedParty.id=
    POST  /tmf-api/geographicSiteManagement/v4/geographicSite     {name, relatedParty,
                                                                   device, port, ...}

Lists take ``offset``/``limit`` and answer the total in ``X-Total-Count`` (the page's
size in ``X-Result-Count``). Money is ``{"unit": "EUR", "value": "79.00"}``: the value is
a decimal string, never a float. Errors are RFC 9457 problem details: 400 a refused
request (every problem listed), 404 unknown id, 409 a conflict (a duplicate name, a life
cycle step that is not allowed), 422 a malformed body. The router maps its own errors, so
it answers the same whichever app includes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from bss import catalogue, crm
from bss.model import (
    BillingAccount,
    Contact,
    Customer,
    ProductOffering,
    ProductOfferingPrice,
    ProductSpecification,
    Site,
    loads,
)
from northbound.problems import (
    MAX_INT,
    ProblemRoute,
    problem_responses,
)

__all__ = ["router"]

CATALOG: Final = "/tmf-api/productCatalogManagement/v4"
CUSTOMERS: Final = "/tmf-api/customerManagement/v4"
ACCOUNTS: Final = "/tmf-api/accountManagement/v4"
SITES: Final = "/tmf-api/geographicSiteManagement/v4"


router = APIRouter(route_class=ProblemRoute,
                   responses=problem_responses(400, 404, 409, 422))


def _session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(_session)]
Offset = Annotated[int, Query(ge=0, le=MAX_INT, description="rows to skip")]
Limit = Annotated[int, Query(ge=1, le=1000, description="rows per page")]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _paged(response: Response, total: int, shown: int) -> None:
    response.headers["X-Total-Count"] = str(total)
    response.headers["X-Result-Count"] = str(shown)


def _money(currency: str, value: str) -> dict[str, str]:
    return {"unit": currency, "value": value}


# -- documents ------------------------------------------------------------------------------


def spec_doc(spec: ProductSpecification, base: str = "") -> dict[str, Any]:
    """A TMF620 ProductSpecification."""
    chars = []
    for c in loads(spec.characteristics_json, []):
        values = [{"value": v, "valueType": c["valueType"], "isDefault": v == c["default"]}
                  for v in c.get("allowed") or []]
        if not values and c.get("default") is not None:
            values = [{"value": c["default"], "valueType": c["valueType"], "isDefault": True}]
        chars.append({"name": c["name"], "valueType": c["valueType"],
                      "description": c.get("description", ""), "configurable": True,
                      "minCardinality": 1 if c.get("required") else 0, "maxCardinality": 1,
                      "productSpecCharacteristicValue": values,
                      "@type": "ProductSpecificationCharacteristic"})
    return {"id": spec.id, "href": f"{base}{CATALOG}/productSpecification/{spec.id}",
            "name": spec.name, "description": spec.description, "version": spec.version,
            "lifecycleStatus": spec.lifecycle_status, "lastUpdate": spec.updated_at,
            "productSpecCharacteristic": chars, "@type": "ProductSpecification"}


def price_doc(price: ProductOfferingPrice, base: str = "",
              offering: ProductOffering | None = None) -> dict[str, Any]:
    """A TMF620 ProductOfferingPrice; usage tiers in ``priceTier`` (an extension)."""
    doc: dict[str, Any] = {
        "id": price.id, "href": f"{base}{CATALOG}/productOfferingPrice/{price.id}",
        "name": price.name, "priceType": price.price_type,
        "price": _money(price.currency, price.amount), "isBundle": False,
        "productOffering": {"id": price.offering_id,
                            "href": f"{base}{CATALOG}/productOffering/{price.offering_id}",
                            "@referredType": "ProductOffering"},
        "@type": "ProductOfferingPrice"}
    if offering is not None:
        doc["lifecycleStatus"] = offering.lifecycle_status
        doc["productOffering"]["name"] = offering.name
    if price.price_type == "recurring":
        doc["recurringChargePeriodType"] = price.period
        doc["recurringChargePeriodLength"] = 1
    if price.price_type == "usage":
        doc["unitOfMeasure"] = {"amount": 1, "units": price.unit}
        tiers = loads(price.tiers_json, [])
        if tiers:
            doc["priceTier"] = [{"upTo": t["up_to"],
                                 "price": _money(price.currency, t["amount"])}
                                for t in tiers]
    return doc


def offering_doc(offering: ProductOffering, prices: list[ProductOfferingPrice],
                 spec: ProductSpecification | None, base: str = "") -> dict[str, Any]:
    """A TMF620 ProductOffering with its price refs; how it is fulfilled, its usage rating
    and its SLA as Switchboard extensions (``fulfilment``, ``usageRating``,
    ``serviceLevelAgreement``)."""
    sla = loads(offering.sla_json, {})
    return {
        "id": offering.id, "href": f"{base}{CATALOG}/productOffering/{offering.id}",
        "name": offering.name, "description": offering.description,
        "lifecycleStatus": offering.lifecycle_status,
        "isSellable": offering.lifecycle_status == "active", "isBundle": False,
        "lastUpdate": offering.updated_at,
        "productSpecification": {
            "id": offering.spec_id,
            "href": f"{base}{CATALOG}/productSpecification/{offering.spec_id}",
            "name": spec.name if spec else None, "version": spec.version if spec else None,
            "@referredType": "ProductSpecification"},
        "productOfferingPrice": [
            {"id": p.id, "href": f"{base}{CATALOG}/productOfferingPrice/{p.id}",
             "name": p.name, "priceType": p.price_type,
             "price": _money(p.currency, p.amount),
             "@referredType": "ProductOfferingPrice"} for p in prices],
        "serviceLevelAgreement": ({"name": f"availability {sla['availability_pct']} %",
                                   "availabilityPct": sla["availability_pct"],
                                   "creditPctOfRecurring": sla["credit_pct_of_recurring"]}
                                  if sla else None),
        "usageRating": loads(offering.usage_json, {}) or None,
        "fulfilment": {"service": offering.service,
                       "parameters": loads(offering.params_json, {}),
                       "allocations": loads(offering.allocations_json, {})},
        "currency": offering.currency,
        "@type": "ProductOffering"}


def _party(customer_id: str, name: str | None, base: str) -> dict[str, Any]:
    return {"id": customer_id, "href": f"{base}{CUSTOMERS}/customer/{customer_id}",
            "name": name, "role": "customer", "@referredType": "Customer"}


def customer_doc(c: Customer, contacts: list[Contact], accounts: list[BillingAccount],
                 base: str = "") -> dict[str, Any]:
    """A TMF629 Customer: contacts as ``contactMedium`` and ``relatedParty``."""
    medium: list[dict[str, Any]] = []
    for k in contacts:
        if k.email:
            medium.append({"mediumType": "email", "preferred": not medium,
                           "characteristic": {"emailAddress": k.email,
                                              "contactType": k.role}})
        if k.phone:
            medium.append({"mediumType": "phone", "preferred": not medium,
                           "characteristic": {"phoneNumber": k.phone,
                                              "contactType": k.role}})
    return {
        "id": c.id, "href": f"{base}{CUSTOMERS}/customer/{c.id}", "name": c.name,
        "status": c.status, "validFor": {"startDateTime": c.created_at},
        "engagedParty": {"id": c.id, "name": c.name, "@referredType": "Organization"},
        "contactMedium": medium,
        "relatedParty": [{"id": str(k.id), "name": k.name, "role": k.role,
                          "email": k.email, "phone": k.phone,
                          "@referredType": "Individual"} for k in contacts],
        "account": [{"id": a.id, "href": f"{base}{ACCOUNTS}/billingAccount/{a.id}",
                     "name": a.name, "@referredType": "BillingAccount"} for a in accounts],
        "@type": "Customer"}


def account_doc(a: BillingAccount, customer: Customer | None, base: str = "") -> dict[str, Any]:
    """A TMF666 BillingAccount; currency, cycle day and tax rate also flat (extensions)."""
    return {
        "id": a.id, "href": f"{base}{ACCOUNTS}/billingAccount/{a.id}", "name": a.name,
        "state": a.state, "accountType": "business", "lastModified": a.created_at,
        "relatedParty": [_party(a.customer_id, customer.name if customer else None, base)],
        "billStructure": {"cycleSpecification": {
            "name": f"monthly on day {a.bill_cycle_day}", "frequency": "monthly",
            "billingDateShift": a.bill_cycle_day}},
        "currency": a.currency, "billCycleDay": a.bill_cycle_day, "taxRate": a.tax_rate,
        "@type": "BillingAccount"}


def site_doc(s: Site, customer: Customer | None, base: str = "") -> dict[str, Any]:
    """A TMF674 GeographicSite; where the network serves it as extensions."""
    return {
        "id": s.id, "href": f"{base}{SITES}/geographicSite/{s.id}", "name": s.name,
        "code": s.id, "status": "active", "description": s.postal_address,
        "relatedParty": [_party(s.customer_id, customer.name if customer else None, base)],
        "place": ([{"@type": "GeographicAddress", "name": s.postal_address}]
                  if s.postal_address else []),
        "device": s.device, "port": s.port, "linkAddress": s.link_address,
        "customerAddress": s.customer_address, "host": s.host,
        "@type": "GeographicSite"}


# -- TMF620 ---------------------------------------------------------------------------------


class OfferingPatch(BaseModel):
    """What a PATCH may change on an offering: its life cycle only."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    lifecycleStatus: str = Field(pattern="^(draft|active|retired)$")
    type_: str | None = Field(default=None, alias="@type")


def _count(s: Session, q: Any) -> int:
    return int(s.exec(select(func.count()).select_from(q.subquery())).one())


@router.get(f"{CATALOG}/productSpecification", tags=["catalogue (TMF620)"])
def specifications(request: Request, s: SessionDep, response: Response, offset: Offset = 0,
                   limit: Limit = 100,
                   lifecycleStatus: str | None = None) -> list[dict[str, Any]]:
    """Product specifications by id."""
    q = select(ProductSpecification)
    if lifecycleStatus:
        q = q.where(ProductSpecification.lifecycle_status == lifecycleStatus)
    rows = s.exec(q.order_by(col(ProductSpecification.id)).offset(offset).limit(limit)).all()
    _paged(response, _count(s, q), len(rows))
    return [spec_doc(r, _base(request)) for r in rows]


@router.get(f"{CATALOG}/productSpecification/{{spec_id}}", tags=["catalogue (TMF620)"])
def specification(request: Request, spec_id: str, s: SessionDep) -> dict[str, Any]:
    """One product specification with its characteristics."""
    spec = s.get(ProductSpecification, spec_id)
    if spec is None:
        raise catalogue.CatalogueNotFound(f"no product specification {spec_id!r}")
    return spec_doc(spec, _base(request))


def _offering_docs(request: Request, s: Session,
                   rows: list[ProductOffering]) -> list[dict[str, Any]]:
    ids = [o.id for o in rows]
    prices: dict[str, list[ProductOfferingPrice]] = {i: [] for i in ids}
    for p in s.exec(select(ProductOfferingPrice)
                    .where(col(ProductOfferingPrice.offering_id).in_(ids))
                    .order_by(col(ProductOfferingPrice.id))).all():
        prices[p.offering_id].append(p)
    specs = {sp.id: sp for sp in s.exec(select(ProductSpecification).where(
        col(ProductSpecification.id).in_({o.spec_id for o in rows}))).all()}
    return [offering_doc(o, prices[o.id], specs.get(o.spec_id), _base(request)) for o in rows]


@router.get(f"{CATALOG}/productOffering", tags=["catalogue (TMF620)"])
def offerings(request: Request, s: SessionDep, response: Response, offset: Offset = 0,
              limit: Limit = 100, lifecycleStatus: str | None = None) -> list[dict[str, Any]]:
    """Product offerings by id; filter: lifecycleStatus."""
    q = select(ProductOffering)
    if lifecycleStatus:
        q = q.where(ProductOffering.lifecycle_status == lifecycleStatus)
    rows = list(s.exec(q.order_by(col(ProductOffering.id)).offset(offset).limit(limit)).all())
    _paged(response, _count(s, q), len(rows))
    return _offering_docs(request, s, rows)


def _one_offering(s: Session, offering_id: str) -> ProductOffering:
    o = s.get(ProductOffering, offering_id)
    if o is None:
        raise catalogue.CatalogueNotFound(f"no product offering {offering_id!r}")
    return o


@router.get(f"{CATALOG}/productOffering/{{offering_id}}", tags=["catalogue (TMF620)"])
def offering(request: Request, offering_id: str, s: SessionDep) -> dict[str, Any]:
    """One product offering with its prices, SLA and how it is fulfilled."""
    return _offering_docs(request, s, [_one_offering(s, offering_id)])[0]


@router.patch(f"{CATALOG}/productOffering/{{offering_id}}", tags=["catalogue (TMF620)"])
def patch_offering(request: Request, offering_id: str, body: OfferingPatch,
                   s: SessionDep) -> dict[str, Any]:
    """Move the offering along its life cycle: draft -> active -> retired (409 otherwise)."""
    o = catalogue.set_offering_status(s, offering_id, body.lifecycleStatus)
    return _offering_docs(request, s, [o])[0]


@router.get(f"{CATALOG}/productOfferingPrice", tags=["catalogue (TMF620)"])
def offering_prices(request: Request, s: SessionDep, response: Response, offset: Offset = 0,
                    limit: Limit = 100,
                    offering_id: Annotated[str | None, Query(alias="productOffering.id")]
                    = None, priceType: str | None = None) -> list[dict[str, Any]]:
    """Prices by id; filters: productOffering.id, priceType."""
    q = select(ProductOfferingPrice)
    if offering_id:
        q = q.where(ProductOfferingPrice.offering_id == offering_id)
    if priceType:
        q = q.where(ProductOfferingPrice.price_type == priceType)
    rows = s.exec(q.order_by(col(ProductOfferingPrice.id)).offset(offset).limit(limit)).all()
    _paged(response, _count(s, q), len(rows))
    owners = {o.id: o for o in s.exec(select(ProductOffering).where(
        col(ProductOffering.id).in_({p.offering_id for p in rows}))).all()}
    return [price_doc(p, _base(request), owners.get(p.offering_id)) for p in rows]


@router.get(f"{CATALOG}/productOfferingPrice/{{price_id}}", tags=["catalogue (TMF620)"])
def offering_price(request: Request, price_id: str, s: SessionDep) -> dict[str, Any]:
    """One price (tiers included)."""
    p = s.get(ProductOfferingPrice, price_id)
    if p is None:
        raise catalogue.CatalogueNotFound(f"no product offering price {price_id!r}")
    return price_doc(p, _base(request), s.get(ProductOffering, p.offering_id))


# -- TMF629 ---------------------------------------------------------------------------------


class ContactIn(BaseModel):
    """A person at the customer."""

    name: str = Field(min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=30)
    role: str = Field(default="technical", max_length=40)


class CustomerIn(BaseModel):
    """A new customer; ``contact`` (an extension) adds its people."""

    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(min_length=1, max_length=100)
    status: str = "active"
    contact: list[ContactIn] = Field(default_factory=list, max_length=20)
    type_: str | None = Field(default=None, alias="@type")


class CustomerPatch(BaseModel):
    """What a PATCH may change on a customer."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = Field(default=None, min_length=1, max_length=100)
    status: str | None = Field(default=None, pattern="^(active|inactive)$")
    type_: str | None = Field(default=None, alias="@type")


def _customer_docs(request: Request, s: Session, rows: list[Customer]) -> list[dict[str, Any]]:
    ids = [c.id for c in rows]
    contacts: dict[str, list[Contact]] = {i: [] for i in ids}
    for k in s.exec(select(Contact).where(col(Contact.customer_id).in_(ids))
                    .order_by(col(Contact.id))).all():
        contacts[k.customer_id].append(k)
    accounts: dict[str, list[BillingAccount]] = {i: [] for i in ids}
    for a in s.exec(select(BillingAccount).where(col(BillingAccount.customer_id).in_(ids))
                    .order_by(col(BillingAccount.id))).all():
        accounts[a.customer_id].append(a)
    return [customer_doc(c, contacts[c.id], accounts[c.id], _base(request)) for c in rows]


@router.get(f"{CUSTOMERS}/customer", tags=["customers (TMF629)"])
def customers(request: Request, s: SessionDep, response: Response, offset: Offset = 0,
              limit: Limit = 100, status: str | None = None,
              name: str | None = None) -> list[dict[str, Any]]:
    """Customers by id; filters: status, name (a part of it, any case)."""
    page = crm.list_customers(s, offset=offset, limit=limit, status=status, name=name)
    _paged(response, page.total, len(page.items))
    return _customer_docs(request, s, page.items)


@router.get(f"{CUSTOMERS}/customer/{{customer_id}}", tags=["customers (TMF629)"])
def customer(request: Request, customer_id: str, s: SessionDep) -> dict[str, Any]:
    """One customer with contacts and billing accounts."""
    return _customer_docs(request, s, [crm.get_customer(s, customer_id)])[0]


@router.post(f"{CUSTOMERS}/customer", status_code=201, tags=["customers (TMF629)"])
def create_customer(request: Request, body: CustomerIn, s: SessionDep,
                    response: Response) -> dict[str, Any]:
    """Create a customer (409 if the name exists, in any case)."""
    c = crm.create_customer(s, body.name, status=body.status, contacts=[
        crm.NewContact(k.name, k.email, k.phone, k.role) for k in body.contact])
    response.headers["Location"] = f"{CUSTOMERS}/customer/{c.id}"
    return _customer_docs(request, s, [c])[0]


@router.patch(f"{CUSTOMERS}/customer/{{customer_id}}", tags=["customers (TMF629)"])
def patch_customer(request: Request, customer_id: str, body: CustomerPatch,
                   s: SessionDep) -> dict[str, Any]:
    """Rename a customer or change its status."""
    if body.name is None and body.status is None:
        raise crm.CrmError("nothing to change (name, status)")
    c = crm.update_customer(s, customer_id, name=body.name, status=body.status)
    return _customer_docs(request, s, [c])[0]


# -- TMF666 ---------------------------------------------------------------------------------


class PartyRef(BaseModel):
    """A reference to a party (the customer)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(min_length=1, max_length=32)
    role: str = "customer"
    name: str | None = None
    referred_type: str | None = Field(default=None, alias="@referredType")


def _customer_of(parties: list[PartyRef]) -> str:
    owners = [p.id for p in parties if p.role.lower() in ("customer", "owner")]
    if len(owners) != 1:
        raise crm.CrmError("relatedParty must hold exactly one party with role customer")
    return owners[0]


class BillingAccountIn(BaseModel):
    """A new billing account."""

    model_config = ConfigDict(populate_by_name=True)

    name: str | None = Field(default=None, max_length=100)
    relatedParty: list[PartyRef] = Field(min_length=1, max_length=5)
    currency: str = Field(default="EUR", max_length=3)
    billCycleDay: int = 1
    taxRate: str = Field(default="0", max_length=20, description="a fraction: 0.21")
    type_: str | None = Field(default=None, alias="@type")


@router.get(f"{ACCOUNTS}/billingAccount", tags=["accounts (TMF666)"])
def accounts(request: Request, s: SessionDep, response: Response, offset: Offset = 0,
             limit: Limit = 100,
             customer_id: Annotated[str | None, Query(alias="relatedParty.id")] = None,
             ) -> list[dict[str, Any]]:
    """Billing accounts by id; filter: relatedParty.id (the customer)."""
    page = crm.list_billing_accounts(s, customer_id=customer_id, offset=offset, limit=limit)
    _paged(response, page.total, len(page.items))
    return [account_doc(a, s.get(Customer, a.customer_id), _base(request))
            for a in page.items]


@router.get(f"{ACCOUNTS}/billingAccount/{{account_id}}", tags=["accounts (TMF666)"])
def account(request: Request, account_id: str, s: SessionDep) -> dict[str, Any]:
    """One billing account."""
    a = crm.get_billing_account(s, account_id)
    return account_doc(a, s.get(Customer, a.customer_id), _base(request))


@router.post(f"{ACCOUNTS}/billingAccount", status_code=201, tags=["accounts (TMF666)"])
def create_account(request: Request, body: BillingAccountIn, s: SessionDep,
                   response: Response) -> dict[str, Any]:
    """Create a billing account for the customer in relatedParty."""
    a = crm.create_billing_account(s, _customer_of(body.relatedParty), name=body.name,
                                   currency=body.currency, bill_cycle_day=body.billCycleDay,
                                   tax_rate=body.taxRate)
    response.headers["Location"] = f"{ACCOUNTS}/billingAccount/{a.id}"
    return account_doc(a, s.get(Customer, a.customer_id), _base(request))


# -- TMF674 ---------------------------------------------------------------------------------


class SiteIn(BaseModel):
    """A new site: the customer, and the device and port that serve it."""

    model_config = ConfigDict(populate_by_name=True)

    name: str = Field(min_length=1, max_length=100)
    relatedParty: list[PartyRef] = Field(min_length=1, max_length=5)
    device: str = Field(min_length=1, max_length=128)
    port: str = Field(min_length=1, max_length=64)
    linkAddress: str | None = Field(default=None, max_length=43)
    customerAddress: str | None = Field(default=None, max_length=40)
    host: str | None = Field(default=None, max_length=63)
    postalAddress: str = Field(default="", max_length=300)
    type_: str | None = Field(default=None, alias="@type")


@router.get(f"{SITES}/geographicSite", tags=["sites (TMF674)"])
def sites(request: Request, s: SessionDep, response: Response, offset: Offset = 0,
          limit: Limit = 100,
          customer_id: Annotated[str | None, Query(alias="relatedParty.id")] = None,
          ) -> list[dict[str, Any]]:
    """Sites by id; filter: relatedParty.id (the customer)."""
    page = crm.list_sites(s, customer_id=customer_id, offset=offset, limit=limit)
    _paged(response, page.total, len(page.items))
    return [site_doc(x, s.get(Customer, x.customer_id), _base(request)) for x in page.items]


@router.get(f"{SITES}/geographicSite/{{site_id}}", tags=["sites (TMF674)"])
def site(request: Request, site_id: str, s: SessionDep) -> dict[str, Any]:
    """One site."""
    x = crm.get_site(s, site_id)
    return site_doc(x, s.get(Customer, x.customer_id), _base(request))


@router.post(f"{SITES}/geographicSite", status_code=201, tags=["sites (TMF674)"])
def create_site(request: Request, body: SiteIn, s: SessionDep,
                response: Response) -> dict[str, Any]:
    """Create a site: the device and port must be in the inventory (400 otherwise)."""
    x = crm.create_site(s, _customer_of(body.relatedParty), body.name, device=body.device,
                        port=body.port, link_address=body.linkAddress,
                        customer_address=body.customerAddress, host=body.host,
                        postal_address=body.postalAddress)
    response.headers["Location"] = f"{SITES}/geographicSite/{x.id}"
    return site_doc(x, s.get(Customer, x.customer_id), _base(request))
