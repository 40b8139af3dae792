"""Customers, contacts, billing accounts and sites: ids, checks against the inventory,
refusals that change nothing, and a customer that cannot go while it has business."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bss.catalogue import load_catalogue
from bss.crm import (
    CrmConflict,
    CrmError,
    CrmNotFound,
    NewContact,
    add_contact,
    create_billing_account,
    create_customer,
    create_site,
    delete_customer,
    get_customer,
    list_contacts,
    list_customers,
    list_sites,
    update_billing_account,
    update_contact,
    update_customer,
    update_site,
)
from bss.model import (
    BillingAccount,
    Contact,
    Customer,
    Product,
    ProductOrder,
    Site,
    init_bss_db,
)
from topology.db import dispose_engines, get_engine
from topology.inventory import Device, Interface
from topology.queries import NotFound


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = get_engine(f"sqlite:///{tmp_path / 'bss.db'}")  # foreign keys on, WAL
    init_bss_db(e)
    with Session(e) as s:
        for name, ports in (("r1", ["eth1", "eth2", "eth3", "eth4", "lo"]),
                            ("vnf1", ["eth1"])):
            d = Device(name=name)
            s.add(d)
            s.flush()
            assert d.id is not None
            for p in ports:
                s.add(Interface(device_id=d.id, name=p))
        gone = s.exec(select(Device).where(Device.name == "r1")).one()
        assert gone.id is not None
        s.add(Interface(device_id=gone.id, name="eth9", missing=True))
        s.commit()
    yield e
    dispose_engines()


def counts(engine: Engine) -> tuple[int, ...]:
    with Session(engine) as s:
        return tuple(len(s.exec(select(m)).all())
                     for m in (Customer, Contact, BillingAccount, Site))


# -- customers ------------------------------------------------------------------------------


def test_customer_ids_are_sequential_and_contacts_kept(engine: Engine) -> None:
    with Session(engine) as s:
        a = create_customer(s, "ACME Ltd", contacts=[NewContact("Ada", "ada@acme.test")])
        b = create_customer(s, "Globex")
        assert (a.id, b.id) == ("CUST-0001", "CUST-0002")
        [k] = list_contacts(s, a.id)
        assert (k.name, k.email, k.role) == ("Ada", "ada@acme.test", "technical")
        page = list_customers(s, name="acme")
        assert [c.id for c in page.items] == ["CUST-0001"] and page.total == 1


def test_ids_past_9999_keep_counting(engine: Engine) -> None:
    with Session(engine) as s:
        s.add(Customer(id="CUST-9999", name="Old"))
        s.add(Customer(id="CUST-10000", name="Older"))
        s.commit()
        assert create_customer(s, "New").id == "CUST-10001"


def test_ids_made_by_hand_without_a_number_do_not_stop_the_counting(engine: Engine) -> None:
    with Session(engine) as s:
        s.add(Customer(id="CUST-0007", name="Imported"))
        s.add(Customer(id="CUST-HEADQUARTERS", name="By hand"))  # longer than any number
        s.add(Customer(id="CUST-٣٣", name="Arabic-Indic digits"))  # isdigit, not ASCII
        s.commit()
        assert create_customer(s, "New").id == "CUST-0008"
        assert create_customer(s, "Newer").id == "CUST-0009"


def test_duplicate_names_refused_in_any_case(engine: Engine) -> None:
    with Session(engine) as s:
        create_customer(s, "ACME Ltd")
        before = counts(engine)
        with pytest.raises(CrmConflict, match=r"exists already \(CUST-0001\)"):
            create_customer(s, "acme ltd", contacts=[NewContact("Bob")])
        other = create_customer(s, "Globex")
        with pytest.raises(CrmConflict):
            update_customer(s, other.id, name="ACME LTD")
    assert counts(engine)[:2] == (before[0] + 1, before[1])


def test_bad_customer_input_lists_every_problem_and_adds_nothing(engine: Engine) -> None:
    with Session(engine) as s, pytest.raises(CrmError) as info:
        create_customer(s, "x" * 101, status="gone",
                        contacts=[NewContact("Eve", email="not-an-email", phone="call me")])
    msg = str(info.value)
    for reason in ("longer than 100", "status 'gone'", "contact 1: email 'not-an-email'",
                   "contact 1: phone 'call me'"):
        assert reason in msg
    assert counts(engine) == (0, 0, 0, 0)
    with Session(engine) as s, pytest.raises(CrmError, match="newline"):
        create_customer(s, "ACME\nLtd")


def test_concurrent_creations_get_distinct_ids(engine: Engine) -> None:
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            with Session(engine) as s:
                create_customer(s, f"Customer {i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with Session(engine) as s:
        ids = sorted(c.id for c in s.exec(select(Customer)).all())
    assert ids == [f"CUST-{n:04d}" for n in range(1, 13)]


def test_contacts_update_and_refusals(engine: Engine) -> None:
    with Session(engine) as s:
        c = create_customer(s, "ACME")
        k = add_contact(s, c.id, "Ada", email="ada@acme.test", role="billing")
        assert k.id is not None
        k = update_contact(s, k.id, phone="+31 20 123 4567", email="")
        assert (k.phone, k.email) == ("+31 20 123 4567", None)
        with pytest.raises(CrmError, match="email"):
            update_contact(s, k.id, email="bad")
        with pytest.raises(CrmNotFound):
            add_contact(s, "CUST-0404", "Nobody")
    with Session(engine) as s:
        stored = s.get(Contact, k.id)
        assert stored is not None and stored.email is None and stored.phone is not None


# -- billing accounts -----------------------------------------------------------------------


def test_billing_account_checks(engine: Engine) -> None:
    with Session(engine) as s:
        c = create_customer(s, "ACME")
        a = create_billing_account(s, c.id, tax_rate="0.21", bill_cycle_day=28)
        assert (a.id, a.currency, a.bill_cycle_day, a.tax_rate, a.name) == (
            "ACC-0001", "EUR", 28, "0.21", "ACME account")
        with pytest.raises(CrmError) as info:
            create_billing_account(s, c.id, currency="eur", bill_cycle_day=29, tax_rate="21")
        msg = str(info.value)
        assert "currency 'eur' must be 3 capital letters" in msg
        assert "bill cycle day 29 must be a day from 1 to 28" in msg
        assert "tax rate '21' must be a fraction from 0 to 1" in msg
        with pytest.raises(CrmError, match="not a decimal"):
            create_billing_account(s, c.id, tax_rate="21%")
        with pytest.raises(CrmNotFound, match="no customer 'CUST-0404'"):
            create_billing_account(s, "CUST-0404")
        assert create_billing_account(s, c.id, currency="USD").id == "ACC-0002"
        assert update_billing_account(s, a.id, tax_rate="0.09").tax_rate == "0.09"
        with pytest.raises(CrmError, match="bill cycle day 0"):
            update_billing_account(s, a.id, bill_cycle_day=0)
    with Session(engine) as s:
        assert len(s.exec(select(BillingAccount)).all()) == 2
        stored = s.get(BillingAccount, "ACC-0001")
        assert stored is not None and stored.bill_cycle_day == 28


# -- sites ----------------------------------------------------------------------------------


def test_site_on_an_inventory_port(engine: Engine) -> None:
    with Session(engine) as s:
        c = create_customer(s, "ACME")
        site = create_site(s, c.id, "HQ", device="r1", port="eth4",
                           link_address="100.64.12.1/24", customer_address="100.64.12.2",
                           host="cust2")
        assert (site.id, site.device, site.port, site.link_address, site.customer_address) == (
            "SITE-0001", "r1", "eth4", "100.64.12.1/24", "100.64.12.2")
        assert list_sites(s, customer_id=c.id).total == 1


def test_site_on_a_port_the_device_does_not_have_is_refused(engine: Engine) -> None:
    with Session(engine) as s:
        c = create_customer(s, "ACME")
        with pytest.raises(CrmError) as info:
            create_site(s, c.id, "HQ", device="r1", port="eth7")
        assert "device r1 has no interface 'eth7' (it has: eth1, eth2, eth3, eth4, eth9, lo)" \
            in str(info.value)
        with pytest.raises(CrmError, match="device 'r9' is not in the inventory"):
            create_site(s, c.id, "HQ", device="r9", port="eth1")
        with pytest.raises(CrmError, match="eth9 is missing since the last discovery"):
            create_site(s, c.id, "HQ", device="r1", port="eth9")
    assert counts(engine)[3] == 0


@pytest.mark.parametrize(("link", "cust", "reason"), [
    ("100.64.12.1", None, "needs its prefix length"),
    ("100.64.12.0/24", None, "network or broadcast address"),
    ("100.64.12.1/33", None, "not an IPv4 address with a prefix length"),
    ("100.64.12.1/24", "100.64.13.2", "customer address 100.64.13.2 is not on the link "
                                      "100.64.12.0/24"),
    ("100.64.12.1/24", "100.64.12.1", "is the router's own address"),
    ("100.64.12.1/24", "100.64.12.255", "network or broadcast address of 100.64.12.0/24"),
    ("100.64.12.1/24", "bogus", "'bogus' is not an IPv4 address"),
    (None, "100.64.12.2", "customer address needs the link address"),
])
def test_site_addresses_are_checked(engine: Engine, link: str | None, cust: str | None,
                                    reason: str) -> None:
    with Session(engine) as s:
        c = create_customer(s, "ACME")
        with pytest.raises(CrmError) as info:
            create_site(s, c.id, "HQ", device="r1", port="eth4", link_address=link,
                        customer_address=cust)
        assert reason in str(info.value)
    assert counts(engine)[3] == 0


def _busy(engine: Engine, *, product_status: str | None, order_state: str | None) -> str:
    """A customer with an account, a site, and optionally an order and a product."""
    load_catalogue(engine)
    with Session(engine) as s:
        c = create_customer(s, "Busy", contacts=[NewContact("Ann")])
        a = create_billing_account(s, c.id)
        site = create_site(s, c.id, "HQ", device="r1", port="eth4")
        if order_state is not None:
            s.add(ProductOrder(id="ORD-1", customer_id=c.id, billing_account_id=a.id,
                               state=order_state))
            s.commit()
        if product_status is not None:
            s.add(Product(id="PRD-1", customer_id=c.id, billing_account_id=a.id,
                          site_id=site.id, offering_id="business-internet-100",
                          order_id="ORD-1", status=product_status, service="internet-access",
                          service_id="svc", device="r1", interface="eth4"))
            s.commit()
        return c.id


@pytest.mark.parametrize(("product", "order", "reason"), [
    ("active", "completed", "1 active product(s): PRD-1"),
    (None, "inProgress", "1 open order(s): ORD-1"),
    (None, "acknowledged", "1 open order(s): ORD-1"),
])
def test_a_customer_with_business_cannot_be_deleted(engine: Engine, product: str | None,
                                                    order: str, reason: str) -> None:
    cid = _busy(engine, product_status=product, order_state=order)
    with Session(engine) as s:
        with pytest.raises(CrmConflict) as info:
            delete_customer(s, cid)
        assert reason in str(info.value)
        with pytest.raises(CrmConflict):
            update_customer(s, cid, status="inactive")
        assert get_customer(s, cid).status == "active"
    assert counts(engine) == (1, 1, 1, 1)


def test_delete_removes_a_customer_without_history(engine: Engine) -> None:
    cid = _busy(engine, product_status=None, order_state=None)
    with Session(engine) as s:
        assert delete_customer(s, cid) == "deleted"
        with pytest.raises(CrmNotFound) as info:
            get_customer(s, cid)
        assert isinstance(info.value, NotFound)
    assert counts(engine) == (0, 0, 0, 0)


def test_delete_keeps_a_customer_with_history_as_inactive(engine: Engine) -> None:
    cid = _busy(engine, product_status="terminated", order_state="completed")
    with Session(engine) as s:
        assert delete_customer(s, cid) == "deactivated"
        assert get_customer(s, cid).status == "inactive"
        with pytest.raises(CrmError, match="is inactive"):
            create_site(s, cid, "Branch", device="r1", port="eth3")


def test_site_wiring_frozen_while_a_product_uses_it(engine: Engine) -> None:
    cid = _busy(engine, product_status="active", order_state="completed")
    with Session(engine) as s:
        site = list_sites(s, customer_id=cid).items[0]
        with pytest.raises(CrmConflict, match="its port cannot change"):
            update_site(s, site.id, port="eth3")
        assert update_site(s, site.id, name="Head office").name == "Head office"
    with Session(engine) as s:
        stored = s.get(Site, site.id)
        assert stored is not None and stored.port == "eth4"


def test_site_update_rechecks_the_inventory(engine: Engine) -> None:
    with Session(engine) as s:
        c = create_customer(s, "ACME")
        site = create_site(s, c.id, "HQ", device="r1", port="eth4")
        with pytest.raises(CrmError, match="no interface 'eth8'"):
            update_site(s, site.id, port="eth8")
        moved = update_site(s, site.id, device="vnf1", port="eth1")
        assert (moved.device, moved.port) == ("vnf1", "eth1")
        with pytest.raises(CrmConflict, match="has a site named 'HQ' already"):
            create_site(s, c.id, "hq", device="r1", port="eth3")
