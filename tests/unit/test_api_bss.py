"""The BSS router in TMF shapes (catalogue, customers, accounts, sites) with problem-details
errors, and ``switchboard bss ...`` through typer's runner on a temporary database."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner, Result

from bss.catalogue import CatalogueError, LifecycleError, load_catalogue
from bss.crm import CrmError
from bss.model import Customer, ProductOffering, Site, init_bss_db
from northbound.api_bss import router
from northbound.cli_bss import bss_app
from topology.db import dispose_engines, get_engine
from topology.inventory import Device, Interface

CAT = "/tmf-api/productCatalogManagement/v4"
CUS = "/tmf-api/customerManagement/v4"
ACC = "/tmf-api/accountManagement/v4"
SIT = "/tmf-api/geographicSiteManagement/v4"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _inventory(engine: Engine) -> None:
    with Session(engine) as s:
        d = Device(name="r1")
        s.add(d)
        s.flush()
        assert d.id is not None
        for p in ("eth1", "eth2", "eth3", "eth4"):
            s.add(Interface(device_id=d.id, name=p))
        s.commit()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    e = get_engine(f"sqlite:///{tmp_path / 'api.db'}")
    init_bss_db(e)
    _inventory(e)
    load_catalogue(e)
    yield e
    dispose_engines()


@pytest.fixture
def client(engine: Engine) -> TestClient:
    app = FastAPI()
    app.state.engine = engine
    app.include_router(router)
    return TestClient(app)


def problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return dict(body)


# -- TMF620 ---------------------------------------------------------------------------------


def test_offerings_list_is_paged_with_total(client: TestClient, engine: Engine) -> None:
    with Session(engine) as s:
        total = len(s.exec(select(ProductOffering)).all())
    r = client.get(f"{CAT}/productOffering", params={"offset": 1, "limit": 2})
    assert r.status_code == 200
    assert r.headers["X-Total-Count"] == str(total)
    assert r.headers["X-Result-Count"] == "2"
    page = r.json()
    assert len(page) == 2
    everything = client.get(f"{CAT}/productOffering").json()
    assert [o["id"] for o in everything][1:3] == [o["id"] for o in page]
    active = client.get(f"{CAT}/productOffering", params={"lifecycleStatus": "active"})
    assert all(o["lifecycleStatus"] == "active" for o in active.json())
    assert int(active.headers["X-Total-Count"]) < total


def test_offering_document_has_tmf620_fields(client: TestClient) -> None:
    o = client.get(f"{CAT}/productOffering/business-internet-100").json()
    assert o["@type"] == "ProductOffering"
    assert o["href"].endswith(f"{CAT}/productOffering/business-internet-100")
    assert o["lifecycleStatus"] == "active" and o["isSellable"] is True
    assert o["productSpecification"]["id"] == "business-internet-100"
    prices = {p["priceType"]: p for p in o["productOfferingPrice"]}
    assert set(prices) == {"oneTime", "recurring", "usage"}
    assert prices["recurring"]["price"] == {"unit": "EUR", "value": "79.00"}
    assert o["serviceLevelAgreement"]["availabilityPct"] == "99.9"
    assert o["fulfilment"]["service"] == "internet-access"
    usage = client.get(f"{CAT}/productOfferingPrice/{prices['usage']['id']}").json()
    assert usage["@type"] == "ProductOfferingPrice"
    assert usage["unitOfMeasure"]["units"] == "GB"
    assert usage["priceTier"][-1]["upTo"] is None
    assert all(isinstance(t["price"]["value"], str) for t in usage["priceTier"])
    recurring = client.get(f"{CAT}/productOfferingPrice/{prices['recurring']['id']}").json()
    assert recurring["recurringChargePeriodType"] == "month"
    one = client.get(f"{CAT}/productOfferingPrice",
                     params={"productOffering.id": "business-internet-100"})
    assert one.headers["X-Total-Count"] == "3"


def test_spec_document_has_characteristics(client: TestClient) -> None:
    r = client.get(f"{CAT}/productSpecification")
    assert r.status_code == 200 and int(r.headers["X-Total-Count"]) >= 3
    spec = client.get(f"{CAT}/productSpecification/business-internet-100").json()
    chars = {c["name"]: c for c in spec["productSpecCharacteristic"]}
    assert chars["speed_mbps"]["valueType"] == "integer"
    assert chars["speed_mbps"]["productSpecCharacteristicValue"] == [
        {"value": "100", "valueType": "integer", "isDefault": True}]
    assert chars["reference"]["minCardinality"] == 0
    problem(client.get(f"{CAT}/productSpecification/nope"), 404)


def test_offering_life_cycle_over_patch(client: TestClient) -> None:
    url = f"{CAT}/productOffering/business-internet-10000"
    assert client.get(url).json()["lifecycleStatus"] == "draft"
    assert client.patch(url, json={"lifecycleStatus": "active"}).json()[
        "lifecycleStatus"] == "active"
    assert client.patch(url, json={"lifecycleStatus": "retired"}).json()[
        "lifecycleStatus"] == "retired"
    body = problem(client.patch(url, json={"lifecycleStatus": "active"}), 409)
    assert "retired: it cannot become active" in body["detail"]
    assert client.get(url).json()["lifecycleStatus"] == "retired"
    problem(client.patch(url, json={"lifecycleStatus": "live"}), 422)
    problem(client.patch(url, json={"lifecycleStatus": "active", "name": "x"}), 422)
    problem(client.patch(f"{CAT}/productOffering/nope", json={"lifecycleStatus": "active"}),
            404)


# -- TMF629, TMF666, TMF674 -----------------------------------------------------------------


def test_customer_account_site_round_trip(client: TestClient) -> None:
    r = client.post(f"{CUS}/customer", json={
        "name": "ACME Ltd", "@type": "Customer",
        "contact": [{"name": "Ada", "email": "ada@acme.test", "role": "billing"}]})
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["id"] == "CUST-0001" and c["@type"] == "Customer" and c["status"] == "active"
    assert r.headers["Location"].endswith(f"{CUS}/customer/CUST-0001")
    assert c["contactMedium"][0]["characteristic"]["emailAddress"] == "ada@acme.test"
    assert c["relatedParty"][0]["name"] == "Ada"

    r = client.post(f"{ACC}/billingAccount", json={
        "relatedParty": [{"id": c["id"], "role": "customer"}], "currency": "EUR",
        "billCycleDay": 5, "taxRate": "0.21"})
    assert r.status_code == 201, r.text
    a = r.json()
    assert a["id"] == "ACC-0001" and a["@type"] == "BillingAccount"
    assert a["relatedParty"][0] == {"id": "CUST-0001", "href": a["relatedParty"][0]["href"],
                                    "name": "ACME Ltd", "role": "customer",
                                    "@referredType": "Customer"}
    assert a["billStructure"]["cycleSpecification"]["billingDateShift"] == 5
    assert (a["currency"], a["taxRate"]) == ("EUR", "0.21")

    r = client.post(f"{SIT}/geographicSite", json={
        "name": "HQ", "relatedParty": [{"id": c["id"], "role": "customer"}],
        "device": "r1", "port": "eth4", "linkAddress": "100.64.12.1/24",
        "customerAddress": "100.64.12.2", "host": "cust2"})
    assert r.status_code == 201, r.text
    site = r.json()
    assert site["id"] == "SITE-0001" and site["@type"] == "GeographicSite"
    assert (site["device"], site["port"]) == ("r1", "eth4")

    got = client.get(f"{CUS}/customer/CUST-0001").json()
    assert [x["id"] for x in got["account"]] == ["ACC-0001"]
    assert client.get(f"{SIT}/geographicSite", params={"relatedParty.id": "CUST-0001"}
                      ).headers["X-Total-Count"] == "1"
    assert client.get(f"{ACC}/billingAccount/ACC-0001").json()["billCycleDay"] == 5

    patched = client.patch(f"{CUS}/customer/CUST-0001", json={"name": "ACME Group"})
    assert patched.status_code == 200 and patched.json()["name"] == "ACME Group"


def test_customer_errors_are_problems(client: TestClient, engine: Engine) -> None:
    assert client.post(f"{CUS}/customer", json={"name": "ACME"}).status_code == 201
    body = problem(client.post(f"{CUS}/customer", json={"name": "acme"}), 409)
    assert "exists already" in body["detail"]
    body = problem(client.post(f"{CUS}/customer", json={
        "name": "Globex", "contact": [{"name": "Bo", "email": "nope"}]}), 400)
    assert "contact 1: email 'nope' is not an email address" in body["problems"]
    problem(client.post(f"{CUS}/customer", json={}), 422)
    problem(client.get(f"{CUS}/customer/CUST-0404"), 404)
    problem(client.patch(f"{CUS}/customer/CUST-0001", json={}), 400)
    with Session(engine) as s:
        assert [c.name for c in s.exec(select(Customer)).all()] == ["ACME"]


def test_site_on_a_port_the_device_lacks_is_a_400(client: TestClient, engine: Engine) -> None:
    client.post(f"{CUS}/customer", json={"name": "ACME"})
    body = problem(client.post(f"{SIT}/geographicSite", json={
        "name": "HQ", "relatedParty": [{"id": "CUST-0001"}], "device": "r1",
        "port": "eth7"}), 400)
    assert "device r1 has no interface 'eth7'" in body["detail"]
    body = problem(client.post(f"{ACC}/billingAccount", json={
        "relatedParty": [{"id": "CUST-0001"}], "billCycleDay": 31, "taxRate": "21"}), 400)
    assert len(body["problems"]) == 2
    problem(client.post(f"{ACC}/billingAccount", json={
        "relatedParty": [{"id": "CUST-0404"}]}), 404)
    with Session(engine) as s:
        assert s.exec(select(Site)).all() == []


def test_list_paging_of_customers(client: TestClient) -> None:
    for i in range(5):
        assert client.post(f"{CUS}/customer", json={"name": f"C{i}"}).status_code == 201
    r = client.get(f"{CUS}/customer", params={"offset": 3, "limit": 10})
    assert r.headers["X-Total-Count"] == "5" and r.headers["X-Result-Count"] == "2"
    assert [c["id"] for c in r.json()] == ["CUST-0004", "CUST-0005"]
    problem(client.get(f"{CUS}/customer", params={"limit": 0}), 422)


# -- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("SWITCHBOARD_HOME", str(home))
    monkeypatch.delenv("SWITCHBOARD_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TERMINAL_WIDTH", "200")
    engine = get_engine(f"sqlite:///{home / 'switchboard.db'}")
    init_bss_db(engine)
    _inventory(engine)
    yield home
    dispose_engines()


def run(*args: str) -> Result:
    return CliRunner().invoke(bss_app, list(args))


def text(result: Result) -> str:
    return ANSI.sub("", result.output)


def test_cli_add_and_list(cli_home: Path) -> None:
    r = run("customers", "add", "ACME Ltd", "--contact-name", "Ada",
            "--contact-email", "ada@acme.test")
    assert r.exit_code == 0, r.output
    assert "CUST-0001" in text(r)
    r = run("accounts", "add", "--customer", "CUST-0001", "--bill-day", "5",
            "--tax-rate", "0.21", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["id"] == "ACC-0001"
    r = run("sites", "add", "--customer", "CUST-0001", "--name", "HQ", "--device", "r1",
            "--port", "eth4", "--link-address", "100.64.12.1/24",
            "--customer-address", "100.64.12.2")
    assert r.exit_code == 0, r.output
    listed = run("customers", "--json")
    assert listed.exit_code == 0, listed.output
    [c] = json.loads(listed.output)
    assert (c["id"], c["name"], c["account"][0]["id"]) == ("CUST-0001", "ACME Ltd",
                                                           "ACC-0001")
    table = run("customers", "list")
    assert "ACME Ltd" in text(table) and "Ada" in text(table)
    sites = json.loads(run("sites", "list", "--json").output)
    assert [(s["id"], s["port"]) for s in sites] == [("SITE-0001", "eth4")]
    shown = run("customers", "show", "CUST-0001", "--json")
    assert json.loads(shown.output)["site"][0]["id"] == "SITE-0001"
    assert "0.21" in text(run("accounts"))


def test_cli_refusals_raise_the_suite_errors(cli_home: Path) -> None:
    run("customers", "add", "ACME")
    r = run("customers", "add", "acme")
    assert r.exit_code == 1 and isinstance(r.exception, CrmError)
    r = run("sites", "add", "--customer", "CUST-0001", "--name", "HQ", "--device", "r1",
            "--port", "eth7")
    assert isinstance(r.exception, CrmError)
    assert "no interface 'eth7'" in str(r.exception)
    assert json.loads(run("sites", "--json").output) == []


def test_cli_offerings_load_and_life_cycle(cli_home: Path, tmp_path: Path) -> None:
    r = run("offerings", "load", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["changed"] is True
    again = run("offerings", "load")
    assert again.exit_code == 0 and "0 created, 0 updated" in text(again)
    listed = json.loads(run("offerings", "--json").output)
    assert {"business-internet-100", "business-internet-1000",
            "managed-vnf-port"} <= {o["id"] for o in listed}
    assert "business-internet-100" in text(run("offerings", "list"))
    shown = run("offerings", "show", "business-internet-100")
    assert shown.exit_code == 0 and "up to 100: 0" in text(shown)
    assert run("offerings", "activate", "business-internet-10000").exit_code == 0
    assert run("offerings", "retire", "business-internet-10000").exit_code == 0
    r = run("offerings", "activate", "business-internet-10000")
    assert isinstance(r.exception, LifecycleError)
    broken = tmp_path / "broken.yaml"
    broken.write_text("offerings:\n  x-1:\n    name: X\n    spec: none\n"
                      "    service: none\n    prices: {}\n")
    r = run("offerings", "load", str(broken))
    assert isinstance(r.exception, CatalogueError)
    assert "offering x-1: unknown specification 'none'" in str(r.exception)
