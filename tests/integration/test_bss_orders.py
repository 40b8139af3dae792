"""Product orders against the core lab: an order for cust2's site on r1:eth4 completes and
cust2 reaches srv1 with real packets, the port is bound to the customer; a delete order
removes the config and cuts cust2 off; 20 orders placed at once never share a resource
and the failed ones leave no config; an activation that cannot be proved leaves nothing;
a retried creation with the same Idempotency-Key is one order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from agents.fulfilment import ConfigChange, FulfilmentAgent, ServiceRequest
from bss.model import (
    Allocation,
    BillingAccount,
    Customer,
    Product,
    ProductOffering,
    ProductOrder,
    ProductSpecification,
    ResourcePool,
    Site,
    init_bss_db,
)
from bss.orders import (
    IdempotencyConflict,
    OrderItemRequest,
    OrderRequest,
    create_order,
    order_items,
    process_order,
)
from lab.pytest_plugin import LabHandle
from lab.reach import LabReachProbe
from tests.integration.peers import configs_kept
from topology.db import get_engine
from topology.inventory import Device, Interface
from topology.services import ServiceBinding

pytestmark = pytest.mark.lab
SERVER = "198.51.100.10"
CUSTOMER = "CUST-T7"
OFFERING = "t-business-internet"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "northbound.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False, env=os.environ.copy())


def running(lab: LabHandle, node: str) -> str:
    """A router's running config, read out-of-band (vtysh inside the node)."""
    text = lab.nodes[node].run("vtysh", "-c", "show running-config").stdout
    return "\n".join(line for line in text.splitlines()
                     if not line.startswith(("Building configuration", "Current configuration")))


@pytest.fixture(scope="module")
def discovered(core_lab: LabHandle) -> LabHandle:
    res = cli("discover", "--lab", core_lab.name, "--json")
    assert res.returncode == 0, res.stderr
    return core_lab


@pytest.fixture(scope="module", autouse=True)
def configs_as_found(discovered: LabHandle) -> Iterator[None]:
    """The lab's devices as this module found them, for the modules after it."""
    with configs_kept("r1"):  # vnf1: its one test puts it back (see there)
        yield


@pytest.fixture(scope="module")
def engine(discovered: LabHandle) -> Engine:
    """The suite's database with a test catalogue, a customer, an account and a site."""
    eng = get_engine()
    init_bss_db(eng)
    with Session(eng) as s:
        if s.get(Customer, CUSTOMER) is None:
            s.add(ResourcePool(id="t-v4", kind="ipv4", range="203.0.113.0/24"))
            s.add(ResourcePool(id="t-vlan", kind="vlan", range="100-199"))
            s.add(ProductSpecification(id="t-bi", name="Business internet",
                                       characteristics_json=json.dumps([
                                           {"name": "reference", "valueType": "string"}])))
            s.add(Customer(id=CUSTOMER, name="ACME Test Ltd"))
            s.flush()
            s.add(ProductOffering(
                id=OFFERING, name="Business Internet 100", spec_id="t-bi",
                lifecycle_status="active", service="internet-access",
                params_json=json.dumps({
                    "interface": "site.port", "address": "site.link_address",
                    "description": "text:{customer} {product}",
                    "customer_prefix": "alloc.prefix",
                    "next_hop": "site.customer_address"}),
                allocations_json=json.dumps({
                    "prefix": {"kind": "ipv4", "pool": "t-v4", "prefix_len": 29},
                    "vlan": {"kind": "vlan", "pool": "t-vlan"}})))
            s.add(BillingAccount(id="ACC-T7", customer_id=CUSTOMER, name="main"))
            s.add(site("SITE", port="eth4"))
            s.commit()
    return eng


def site(site_id: str, *, device: str = "r1", port: str = "eth4", host: str | None = "cust2",
         link: str = "100.64.12.1/24", customer_address: str = "100.64.12.2") -> Site:
    return Site(id=site_id, customer_id=CUSTOMER, name=f"site {site_id}", device=device,
                port=port, link_address=link, customer_address=customer_address, host=host)


@pytest.fixture
def agent(engine: Engine, discovered: LabHandle) -> Iterator[FulfilmentAgent]:
    yield FulfilmentAgent(engine, probe=LabReachProbe(discovered.name))


def add(site_id: str, reference: str = "PO-1") -> OrderRequest:
    return OrderRequest(CUSTOMER, [OrderItemRequest("add", OFFERING, site_id,
                                                    characteristics={"reference": reference})])


def products(engine: Engine, order_id: str) -> list[Product]:
    with Session(engine) as s:
        return list(s.exec(select(Product).where(Product.order_id == order_id)).all())


def live(engine: Engine, order_id: str) -> list[Allocation]:
    with Session(engine) as s:
        return list(s.exec(select(Allocation).where(
            Allocation.order_id == order_id, col(Allocation.released_at).is_(None))).all())


def terminate(engine: Engine, agent: FulfilmentAgent, product_id: str) -> ProductOrder:
    order = create_order(engine, OrderRequest(CUSTOMER, [
        OrderItemRequest("delete", product_id=product_id)]))
    return process_order(engine, order.id, agent)


@pytest.fixture
def no_leftovers(engine: Engine, agent: FulfilmentAgent) -> Iterator[None]:
    """Whatever a test left active is terminated afterwards (so the next one finds
    r1:eth4 free even when this one failed half-way)."""
    yield
    with Session(engine) as s:
        left = s.exec(select(Product.id).where(Product.customer_id == CUSTOMER,
                                               Product.status == "active")).all()
    for product_id in left:
        terminate(engine, agent, product_id)


def test_an_order_activates_cust2_and_a_delete_cuts_it_off(
        discovered: LabHandle, engine: Engine, agent: FulfilmentAgent,
        no_leftovers: None) -> None:
    lab = discovered
    quick = LabReachProbe(lab.name, patience_s=3)
    assert not quick.reach("cust2", SERVER)[0], "cust2 reaches the server before its order"

    order = create_order(engine, add("SITE"))
    done = process_order(engine, order.id, agent)
    assert done.state == "completed", done.error
    [product] = products(engine, order.id)
    assert product.status == "active" and product.activated_at is not None
    assert quick.reach("cust2", SERVER)[0]  # real packets through the lab
    config = running(lab, "r1")
    assert " ip address 100.64.12.1/24" in config
    [prefix] = [a.value for a in live(engine, order.id) if a.kind == "ipv4"]
    assert f"ip route {prefix} 100.64.12.2" in config
    with Session(engine) as s:
        binding = s.exec(select(ServiceBinding).where(
            ServiceBinding.service_id == product.id)).one()
        eth4 = s.exec(select(Interface).join(Device).where(
            Device.name == "r1", Interface.name == "eth4")).one()
        assert (binding.interface_id, binding.customer, binding.customer_id,
                binding.state) == (eth4.id, "ACME Test Ltd", CUSTOMER, "active")
        change = s.exec(select(ConfigChange).where(
            ConfigChange.batch == product.change_batch)).one()
        assert product.activated_at == change.finished_at
        assert any(c["check"].startswith("reach") and c["ok"] for c in change.verify())

    ended = terminate(engine, agent, product.id)
    assert ended.state == "completed", ended.error
    config = running(lab, "r1")
    assert "100.64.12.1/24" not in config and prefix not in config
    assert not quick.reach("cust2", SERVER)[0]
    [product] = products(engine, order.id)
    assert product.status == "terminated" and product.terminated_at is not None
    assert live(engine, order.id) == []
    with Session(engine) as s:
        assert s.exec(select(ServiceBinding).where(
            ServiceBinding.service_id == product.id)).one().state == "inactive"


def test_twenty_orders_at_once_share_nothing_and_failures_leave_no_config(
        discovered: LabHandle, engine: Engine, agent: FulfilmentAgent,
        no_leftovers: None) -> None:
    lab = discovered
    with Session(engine) as s:
        sw1 = s.exec(select(Device).where(Device.name == "sw1")).one()
        sw_ports = sorted(s.exec(select(Interface.name).where(
            Interface.device_id == sw1.id, col(Interface.name).startswith("eth"))).all())
        assert sw_ports, "discovery found no port on sw1"
        # 8 sites want r1:eth4 (one can win: cust2's port), 12 are on the switch, which
        # takes no config push (its activation must fail and be compensated)
        ids = []
        for n in range(20):
            sid = f"C20-{n:02d}"
            if s.get(Site, sid) is None:
                s.add(site(sid) if n < 8 else site(sid, device="sw1", host=None,
                                                   port=sw_ports[n % len(sw_ports)]))
            ids.append(sid)
        s.commit()
    routers = ("r1", "r2", "r3")
    before = {r: running(lab, r) for r in routers}
    vnf_before = agent.backup("vnf1").text

    barrier = threading.Barrier(len(ids))
    results: dict[str, ProductOrder] = {}
    errors: list[BaseException] = []

    def place(site_id: str) -> None:
        try:
            barrier.wait()
            order = create_order(engine, add(site_id, reference=site_id))
            results[site_id] = process_order(engine, order.id, agent)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=place, args=(sid,)) for sid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 20
    states = {sid: o.state for sid, o in results.items()}
    assert set(states.values()) <= {"completed", "failed"}, states  # none left in progress
    winners = [sid for sid, st in states.items() if st == "completed"]
    assert len(winners) == 1 and winners[0] < "C20-08", states  # only r1:eth4 can work

    with Session(engine) as s:
        order_ids = [o.id for o in results.values()]
        rows = s.exec(select(Allocation).where(col(Allocation.order_id).in_(order_ids))).all()
        live_keys = [(a.kind, a.scope, a.value) for a in rows if a.released_at is None]
        assert len(live_keys) == len(set(live_keys)) == 3  # the winner's port, block, VLAN
        for a in rows:  # no value was ever held twice at the same time
            for b in rows:
                if a.id != b.id and (a.kind, a.scope, a.value) == (b.kind, b.scope, b.value):
                    assert (a.released_at is not None and a.released_at <= b.allocated_at) or (
                        b.released_at is not None and b.released_at <= a.allocated_at), (a, b)
        for sid, order in results.items():
            if sid in winners:
                continue
            assert [p.status for p in s.exec(select(Product).where(
                Product.order_id == order.id))] in ([], ["aborted"])
            assert all(i.state == "failed" for i in order_items(s, order.id))
    for r in ("r2", "r3"):
        assert running(lab, r) == before[r]
    assert agent.backup("vnf1").text == vnf_before
    winner = results[winners[0]]
    [product] = products(engine, winner.id)
    assert terminate(engine, agent, product.id).state == "completed"
    # with the winner terminated, r1 is as before: the 19 failures left nothing on it
    assert running(lab, "r1") == before["r1"]


def test_an_activation_that_cannot_be_proved_leaves_no_config_and_no_charge(
        discovered: LabHandle, engine: Engine, agent: FulfilmentAgent,
        no_leftovers: None) -> None:
    lab = discovered
    with Session(engine) as s:
        if s.get(Site, "SITE-BAD") is None:  # cust2 cannot use a gateway in another subnet
            s.add(site("SITE-BAD", link="100.64.99.1/24", customer_address="100.64.99.2"))
            s.commit()
    before = running(lab, "r1")
    order = create_order(engine, add("SITE-BAD"))
    done = process_order(engine, order.id, agent)
    assert done.state == "failed"
    assert "does not work on the network" in (done.error or ""), done.error
    assert running(lab, "r1") == before
    assert [p.status for p in products(engine, order.id)] == ["aborted"]
    assert products(engine, order.id)[0].activated_at is None  # nothing to bill from
    assert live(engine, order.id) == []
    with Session(engine) as s:
        change = s.exec(select(ConfigChange).where(
            col(ConfigChange.why).startswith(f"product order {order.id} "))).one()
        assert change.state == "rolled-back"


def test_a_retried_rest_creation_is_one_order(
        discovered: LabHandle, engine: Engine, agent: FulfilmentAgent,
        no_leftovers: None) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from northbound.api_orders import router

    app = FastAPI()
    app.include_router(router)
    app.state.engine = engine
    app.state.order_agent = agent
    url = "/tmf-api/productOrderingManagement/v4/productOrder"

    def body(reference: str) -> dict[str, Any]:
        return {"relatedParty": [{"id": CUSTOMER, "role": "Customer"}],
                "productOrderItem": [{"action": "add", "productOffering": {"id": OFFERING},
                                      "product": {"place": [{"id": "SITE"}],
                                                  "productCharacteristic": [
                                                      {"name": "reference",
                                                       "value": reference}]}}]}

    with TestClient(app) as client:
        first = client.post(url, json=body("PO-R"), headers={"Idempotency-Key": "lab-key-1"})
        assert first.status_code == 201, first.text
        order_id = first.json()["id"]
        assert client.get(f"{url}/{order_id}").json()["state"] == "completed"
        with Session(engine) as s:
            pushes = len(s.exec(select(ConfigChange)).all())
        again = client.post(url, json=body("PO-R"), headers={"Idempotency-Key": "lab-key-1"})
        assert again.status_code == 200 and again.json()["id"] == order_id
        other = client.post(url, json=body("PO-OTHER"),
                            headers={"Idempotency-Key": "lab-key-1"})
        assert other.status_code == 422
    with Session(engine) as s:
        assert len(s.exec(select(ProductOrder).where(
            ProductOrder.idempotency_key == "lab-key-1")).all()) == 1
        assert len(s.exec(select(ConfigChange)).all()) == pushes  # the retry pushed nothing
    with pytest.raises(IdempotencyConflict):
        create_order(engine, add("SITE", reference="PO-OTHER"), idempotency_key="lab-key-1")


def test_vnf_interface_removal_takes_the_service_off_the_netconf_vnf(
        discovered: LabHandle, agent: FulfilmentAgent) -> None:
    found = agent.backup("vnf1")
    assert found.id is not None
    try:
        _vnf_removal(agent)
    finally:  # the datastore as found (no ietf-interfaces container left behind), and
        # as netconfd acts on eth1 when its interface entry changes, the VNF's data port
        # put back as the lab built it, for the modules after this one
        agent.restore(found.id, who="tests")
        vnf1 = discovered.nodes["vnf1"]
        vnf1.run("ip", "link", "set", "eth1", "up")
        vnf1.run("ip", "addr", "replace", "198.51.100.20/24", "dev", "eth1")
        vnf1.run("ip", "route", "replace", "default", "via", "198.51.100.1", "dev", "eth1")


def _vnf_removal(agent: FulfilmentAgent) -> None:
    params = {"interface": "eth1", "description": "managed port for ACME <t7>"}
    before = agent.backup("vnf1").text
    added = agent.apply([ServiceRequest("vnf-interface", "vnf1", params)], who="test")
    assert added.state == "confirmed", added.error
    assert "ACME &lt;t7&gt;" in agent.backup("vnf1").text
    removed = agent.apply([ServiceRequest("vnf-interface", "vnf1", params, action="remove")],
                          who="test")
    assert removed.state == "confirmed", removed.error
    [change] = removed.changes
    assert change.verify() and all(c["ok"] for c in change.verify()), change.verify()
    assert "ACME &lt;t7&gt;" not in agent.backup("vnf1").text
    again = agent.apply([ServiceRequest("vnf-interface", "vnf1", params, action="remove")],
                        who="test")
    assert again.state == "unchanged"
    if before != agent.backup("vnf1").text:  # the add may have created the entry
        assert "<name>eth1</name>" in agent.backup("vnf1").text


def order_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``switchboard order ...`` in its own process (the typer app, run as a module)."""
    code = "from northbound.cli_order import order_app; order_app(prog_name='order')"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                          text=True, timeout=300, check=False, env=os.environ.copy())


def test_the_cli_orders_and_terminates_with_proof_from_the_lab(
        discovered: LabHandle, engine: Engine, no_leftovers: None) -> None:
    quick = LabReachProbe(discovered.name, patience_s=3)
    res = order_cli("create", "--customer", "ACME Test Ltd", "--site", "site SITE",
                    "--offering", OFFERING, "--param", "reference=PO-CLI",
                    "--lab", discovered.name, "--json")
    assert res.returncode == 0, res.stderr + res.stdout
    doc = json.loads(res.stdout)
    assert doc["state"] == "completed"
    product_id = doc["productOrderItem"][0]["product"]["id"]
    with Session(engine) as s:
        product = s.get(Product, product_id)
        assert product is not None
        change = s.exec(select(ConfigChange).where(
            ConfigChange.batch == product.change_batch)).one()
    assert any(c["check"] == f"reach {SERVER} from cust2" and c["ok"]
               for c in change.verify()), change.verify()
    assert quick.reach("cust2", SERVER)[0]
    res = order_cli("create", "--customer", CUSTOMER, "--action", "delete",
                    "--product", product_id)
    assert res.returncode == 0, res.stderr + res.stdout
    assert "completed" in res.stdout
    assert not quick.reach("cust2", SERVER)[0]
    shown = json.loads(order_cli("show", doc["id"], "--json").stdout)
    assert [h["to"] for h in shown["x_stateHistory"] if h["productOrderItem"] is None] == [
        "acknowledged", "inProgress", "completed"]
