"""Product orders without a lab: the state graph refuses every move it does not list,
idempotent creation, validation before anything is allocated, the saga's compensation
with a fake device that fails, termination, cancellation and crash recovery.

The fake device keeps an FRR running config as text and changes it the way FRR would
(adapters.cli.merge_predicted), so config checks, removals and rollbacks are real text
operations; the fulfilment agent around it is the real one."""

from __future__ import annotations

import difflib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

import bss.orders as orders
from adapters.base import DriverTarget
from adapters.cli import merge_predicted, parse_candidate
from adapters.registry import netconf_builders
from adapters.services import load_services, render, validate_params
from agents.fulfilment import ConfigChange, FulfilmentAgent
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
    ResourcePool,
    Site,
    init_bss_db,
)
from bss.orders import (
    TRANSITIONS,
    IdempotencyConflict,
    OrderItemRequest,
    OrderRefused,
    OrderRequest,
    TransitionRefused,
    cancel_order,
    create_order,
    process_order,
    resume_interrupted,
    transition,
)
from bss.products import list_products, product_doc
from topology.credentials import CredentialProfile, CredentialStore
from topology.db import get_engine, init_db
from topology.errors import ConfigRejected
from topology.inventory import Device, Interface
from topology.services import ServiceBinding
from topology.settings import get_settings

R1 = """frr version 8.4.1
frr defaults traditional
hostname r1
!
interface eth3
 description customer cust1
 ip address 100.64.11.1/24
exit
!
interface eth4
 description customer cust2 (awaiting activation)
exit
!
end
"""
SERVER = "198.51.100.10"


@dataclass
class FakeDevice:
    running: str
    fail_commit: bool = False
    commits: int = 0


@dataclass
class FakeNetwork:
    devices: dict[str, FakeDevice] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeDriver:
    """A CLI driver whose device is a text config in memory."""

    kind: ClassVar[str] = "cli"
    net: ClassVar[FakeNetwork]

    def __init__(self, target: DriverTarget) -> None:
        self.target = target
        self.dev = self.net.devices[target.device]
        self.candidate: str | None = None
        self.before: str | None = None

    def open(self) -> None: ...
    def close(self) -> None: ...

    def get_config(self) -> str:
        return self.dev.running

    def load_merge_candidate(self, config: str) -> None:
        self.candidate = merge_predicted(self.dev.running, parse_candidate(config))

    def compare_config(self) -> str:
        assert self.candidate is not None
        return "".join(difflib.unified_diff(self.dev.running.splitlines(True),
                                            self.candidate.splitlines(True)))

    def commit_config(self, revert_in_s: int | None = None) -> None:
        if self.dev.fail_commit:
            raise ConfigRejected(f"{self.target.device}: % Unknown command",
                                 device=self.target.device, operation="commit")
        assert self.candidate is not None
        with self.net.lock:
            self.before, self.dev.running = self.dev.running, self.candidate
            self.dev.commits += 1

    def confirm_commit(self) -> None: ...

    def has_pending_commit(self) -> bool:
        return False

    def discard_config(self) -> None:
        self.candidate = None

    def rollback(self) -> None:
        assert self.before is not None
        self.dev.running = self.before

    def restore(self, config: str) -> None:
        self.dev.running = config


class FakeProbe:
    def __init__(self) -> None:
        self.ok = True
        self.calls: list[tuple[str, str]] = []

    def reach(self, source: str, destination: str) -> tuple[bool, str]:
        self.calls.append((source, destination))
        return self.ok, "fake probe"


@pytest.fixture
def net() -> FakeNetwork:
    network = FakeNetwork({"r1": FakeDevice(R1), "r2": FakeDevice(R1.replace("r1", "r2"))})
    FakeDriver.net = network
    return network


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("SWITCHBOARD_HOME", str(tmp_path))
    eng = get_engine(f"sqlite:///{tmp_path / 'orders.db'}")
    init_db(eng)
    init_bss_db(eng)
    CredentialStore(get_settings(str(tmp_path))).save(CredentialProfile(
        name="lab", ssh_username="admin", ssh_password="pw"))  # type: ignore[arg-type]
    with Session(eng) as s:
        for name in ("r1", "r2"):
            d = Device(name=name, mgmt_address="192.0.2.1", planes="snmp,cli",
                       credential_profile="lab", os_name="FRRouting")
            s.add(d)
            s.flush()
            for iface in ("eth1", "eth2", "eth3", "eth4", "eth5", "eth6"):
                s.add(Interface(device_id=d.id or 0, name=iface))
        s.add(ResourcePool(id="v4", kind="ipv4", range="203.0.113.0/26"))
        s.add(ResourcePool(id="vl", kind="vlan", range="100-199"))
        s.add(ProductSpecification(id="bi", name="Business internet", characteristics_json=
                                   json.dumps([{"name": "speed_mbps", "valueType": "integer",
                                                "allowed": [100, 1000], "default": 100},
                                               {"name": "reference",
                                                "valueType": "string"}])))
        s.flush()
        params = {"interface": "site.port", "address": "site.link_address",
                  "description": "text:{customer} {product}",
                  "customer_prefix": "alloc.prefix", "next_hop": "site.customer_address"}
        allocs = {"prefix": {"kind": "ipv4", "pool": "v4", "prefix_len": 29},
                  "vlan": {"kind": "vlan", "pool": "vl"}}
        for oid, status in (("bi-100", "active"), ("bi-old", "retired"),
                            ("bi-1000", "active")):
            s.add(ProductOffering(id=oid, name=oid, spec_id="bi", lifecycle_status=status,
                                  service="internet-access", params_json=json.dumps(params),
                                  allocations_json=json.dumps(allocs)))
        for cid, name in (("CUST-1", "ACME"), ("CUST-2", "Globex")):
            s.add(Customer(id=cid, name=name))
            s.flush()
            s.add(BillingAccount(id=f"ACC-{cid[-1]}", customer_id=cid, name=name))
        for n in range(1, 7):
            s.add(Site(id=f"S{n}", customer_id="CUST-1", name=f"site {n}", device="r1",
                       port=f"eth{n}", link_address=f"100.64.{10 + n}.1/24",
                       customer_address=f"100.64.{10 + n}.2", host=f"cust{n}"))
        s.add(Site(id="S-R2", customer_id="CUST-1", name="r2 site", device="r2",
                   port="eth4", link_address="100.64.40.1/24",
                   customer_address="100.64.40.2", host="cust9"))
        s.add(Site(id="S-OTHER", customer_id="CUST-2", name="globex", device="r1",
                   port="eth5", link_address="100.64.50.1/24",
                   customer_address="100.64.50.2"))
        s.commit()
    yield eng
    eng.dispose()


@pytest.fixture
def probe() -> FakeProbe:
    return FakeProbe()


@pytest.fixture
def agent(engine: Engine, net: FakeNetwork, probe: FakeProbe,
          tmp_path: Path) -> FulfilmentAgent:
    return FulfilmentAgent(engine, store=CredentialStore(get_settings(str(tmp_path))),
                           drivers={"cli": FakeDriver}, probe=probe)


def add(site: str = "S4", offering: str = "bi-100", **chars: Any) -> OrderRequest:
    return OrderRequest("CUST-1", [OrderItemRequest("add", offering, site,
                                                    characteristics=chars)])


def counts(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as s:
        return (s.exec(select(func.count()).select_from(ProductOrder)).one(),
                s.exec(select(func.count()).select_from(Allocation).where(
                    col(Allocation.released_at).is_(None))).one(),
                s.exec(select(func.count()).select_from(Product).where(
                    Product.status == "active")).one())


def history(engine: Engine, order_id: str) -> list[tuple[int | None, str | None, str]]:
    with Session(engine) as s:
        return [(h.item_id, h.from_state, h.to_state) for h in orders.order_history(s, order_id)]


def steps(engine: Engine, order_id: str) -> dict[str, str]:
    with Session(engine) as s:
        return {r.step: r.state for r in orders.saga_steps(s, order_id)}


# -- the state graph ----------------------------------------------------------------------

ALL = list(TRANSITIONS)
MOVES = [(a, b) for a in ALL for b in [*ALL, "paused"]]


@pytest.mark.parametrize(("from_state", "to_state"), MOVES)
def test_the_graph_allows_exactly_its_moves(engine: Engine, from_state: str,
                                            to_state: str) -> None:
    order = create_order(engine, add())
    with Session(engine) as s:
        s.exec(update(ProductOrder).where(col(ProductOrder.id) == order.id)
               .values(state=from_state))
        s.commit()
        row = s.get(ProductOrder, order.id)
        assert row is not None
        if to_state in TRANSITIONS[from_state]:
            change = transition(s, row, to_state, reason="test")
            s.commit()
            assert (change.from_state, change.to_state) == (from_state, to_state)
            assert change.at is not None
            assert s.get(ProductOrder, order.id).state == to_state  # type: ignore[union-attr]
        else:
            with pytest.raises(TransitionRefused, match=f"cannot become {to_state}|not a "
                                                        "state"):
                transition(s, row, to_state)
            s.rollback()
            assert s.get(ProductOrder, order.id).state == from_state  # type: ignore[union-attr]


def test_terminal_states_stay_and_a_stale_mover_loses(engine: Engine) -> None:
    assert {s for s, nxt in TRANSITIONS.items() if not nxt} == {
        "completed", "failed", "partial", "cancelled"}
    order = create_order(engine, add())
    with Session(engine) as a, Session(engine) as b:
        first = a.get(ProductOrder, order.id)
        second = b.get(ProductOrder, order.id)
        assert first is not None and second is not None
        transition(a, first, "cancelled")
        a.commit()
        with pytest.raises(TransitionRefused, match="changed meanwhile"):
            transition(b, second, "inProgress")  # it still believes acknowledged


# -- creation -----------------------------------------------------------------------------

def test_a_retried_creation_is_one_order_and_another_body_is_refused(engine: Engine) -> None:
    first = create_order(engine, add(reference="PO-1"), idempotency_key="k-1")
    again = create_order(engine, add(reference="PO-1"), idempotency_key="k-1")
    assert again.id == first.id
    with pytest.raises(IdempotencyConflict, match=r"k-1.*different request body"):
        create_order(engine, add(reference="PO-2"), idempotency_key="k-1")
    assert counts(engine)[0] == 1
    other = create_order(engine, add(reference="PO-1"), idempotency_key="k-2")
    assert other.id != first.id


def test_concurrent_retries_with_one_key_make_one_order(engine: Engine) -> None:
    ids: list[str] = []
    barrier = threading.Barrier(8)

    def go() -> None:
        barrier.wait()
        ids.append(create_order(engine, add(), idempotency_key="same").id)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert counts(engine)[0] == 1


@pytest.mark.parametrize(("req", "reason"), [
    (add(offering="bi-old"), "bi-old is retired"),
    (add(offering="nope"), "nope"),
    (add(site="S-OTHER"), "site S-OTHER belongs to another customer"),
    (add(site="S9"), "site 'S9' does not exist"),
    (add(speed_mbps=10), "speed_mbps"),
    (add(colour="red"), "colour"),
    (OrderRequest("CUST-1", [OrderItemRequest("add", "bi-100", "S4")],
                  billing_account_id="ACC-2"), "ACC-2' is not an account of customer CUST-1"),
    (OrderRequest("CUST-1", [OrderItemRequest("delete", product_id="PRD-X")]),
     "PRD-X' is not a product of customer CUST-1"),
    (OrderRequest("CUST-1", []), "at least one item"),
    (OrderRequest("CUST-9", [OrderItemRequest("add", "bi-100", "S4")]), "CUST-9"),
    (OrderRequest("CUST-1", [OrderItemRequest("add", "bi-100", "S4"),
                             OrderItemRequest("add", "bi-100", "S4")]), "more than one"),
])
def test_invalid_orders_are_refused_before_anything_is_held(
        engine: Engine, req: OrderRequest, reason: str) -> None:
    with pytest.raises(OrderRefused) as info:
        create_order(engine, req, idempotency_key="refused")
    assert reason in str(info.value)
    assert counts(engine) == (0, 0, 0)


def test_a_site_whose_port_the_inventory_lacks_is_refused(engine: Engine) -> None:
    with Session(engine) as s:
        s.add(Site(id="S-GHOST", customer_id="CUST-1", name="ghost", device="r1",
                   port="eth99", link_address="100.64.99.1/24", customer_address="100.64.99.2"))
        s.commit()
    with pytest.raises(OrderRefused, match="r1 has no interface 'eth99'"):
        create_order(engine, add(site="S-GHOST"))


# -- the saga -----------------------------------------------------------------------------

def test_an_order_activates_binds_and_records_every_step(
        engine: Engine, agent: FulfilmentAgent, net: FakeNetwork, probe: FakeProbe) -> None:
    order = create_order(engine, add(reference="PO-7"))
    done = process_order(engine, order.id, agent)
    assert done.state == "completed", done.error
    assert " ip address 100.64.14.1/24" in net.devices["r1"].running
    assert "ip route 203.0.113.0/29 100.64.14.2" in net.devices["r1"].running
    assert probe.calls == [("cust4", SERVER)]
    assert history(engine, order.id)[0] == (None, None, "acknowledged")
    assert [h for h in history(engine, order.id) if h[0] is None] == [
        (None, None, "acknowledged"), (None, "acknowledged", "inProgress"),
        (None, "inProgress", "completed")]
    assert steps(engine, order.id) == {"validate": "done", "allocate": "done",
                                       "params": "done", "fulfil": "done", "activate": "done"}
    with Session(engine) as s:
        [product] = s.exec(select(Product)).all()
        change = s.exec(select(ConfigChange)).one()
        assert product.status == "active"
        assert product.activated_at == change.finished_at  # when the device confirmed
        binding = s.exec(select(ServiceBinding)).one()
        eth4 = s.exec(select(Interface).join(Device).where(
            Device.name == "r1", Interface.name == "eth4")).one()
        assert (binding.service_id, binding.customer, binding.customer_id,
                binding.interface_id) == (product.id, "ACME", "CUST-1", eth4.id)
        held = {a.kind: (a.value, a.state) for a in s.exec(select(Allocation)).all()}
        assert held == {"port": ("eth4", "active"), "ipv4": ("203.0.113.0/29", "active"),
                        "vlan": ("100", "active")}
        doc = product_doc(s, product)
        assert doc["x_boundInterface"]["interface"] == "eth4"
        assert doc["startDate"] == change.finished_at.isoformat()  # type: ignore[union-attr]
        assert list_products(s, customer="ACME", status="active").total == 1


def test_a_failed_verification_leaves_no_config_no_product_no_allocation(
        engine: Engine, agent: FulfilmentAgent, net: FakeNetwork, probe: FakeProbe) -> None:
    probe.ok = False
    before = net.devices["r1"].running
    order = create_order(engine, add())
    done = process_order(engine, order.id, agent)
    assert done.state == "failed"
    assert "does not work on the network" in (done.error or "")
    assert net.devices["r1"].running == before
    assert net.devices["r1"].commits == 1  # it was pushed, then rolled back
    assert counts(engine)[1:] == (0, 0)
    s_ = steps(engine, order.id)
    assert s_["fulfil"] == "failed" and s_["allocate"] == "compensated"
    with Session(engine) as s:
        assert s.exec(select(Product)).one().status == "aborted"
        assert s.exec(select(ServiceBinding)).all() == []


def test_a_failure_after_the_push_rolls_the_config_back(
        engine: Engine, agent: FulfilmentAgent, net: FakeNetwork,
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = net.devices["r1"].running

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("the database went away while activating")

    monkeypatch.setattr(orders, "_activate", broken)
    order = create_order(engine, add())
    done = process_order(engine, order.id, agent)
    assert done.state == "failed" and "went away" in (done.error or "")
    assert net.devices["r1"].running == before
    assert counts(engine)[1:] == (0, 0)
    with Session(engine) as s:
        assert s.exec(select(ConfigChange)).one().state == "rolled-back"


def test_one_good_item_and_one_refused_push_is_partial(
        engine: Engine, agent: FulfilmentAgent, net: FakeNetwork) -> None:
    net.devices["r2"].fail_commit = True
    before_r2 = net.devices["r2"].running
    order = create_order(engine, OrderRequest("CUST-1", [
        OrderItemRequest("add", "bi-100", "S4"), OrderItemRequest("add", "bi-100", "S-R2")]))
    done = process_order(engine, order.id, agent)
    assert done.state == "partial"
    assert "item 2 (add)" in (done.error or "") and "Unknown command" in (done.error or "")
    assert net.devices["r2"].running == before_r2
    with Session(engine) as s:
        assert [i.state for i in orders.order_items(s, order.id)] == ["completed", "failed"]
        assert {p.site_id: p.status for p in s.exec(select(Product))} == {
            "S4": "active", "S-R2": "aborted"}
        live = s.exec(select(Allocation).where(col(Allocation.released_at).is_(None))).all()
        assert {a.scope for a in live if a.kind == "port"} == {"r1"}


def test_a_port_in_use_fails_the_second_order_before_any_push(
        engine: Engine, agent: FulfilmentAgent, net: FakeNetwork) -> None:
    with Session(engine) as s:
        s.add(Site(id="S4B", customer_id="CUST-1", name="site 4 again", device="r1",
                   port="eth4", link_address="100.64.14.1/24", customer_address="100.64.14.2"))
        s.commit()
    assert process_order(engine, create_order(engine, add()).id, agent).state == "completed"
    commits = net.devices["r1"].commits
    second = process_order(engine, create_order(engine, add(site="S4B")).id, agent)
    assert second.state == "failed" and "r1:eth4 is already held by product" in (
        second.error or "")
    assert net.devices["r1"].commits == commits


def test_a_delete_removes_the_config_unbinds_releases_and_terminates(
        engine: Engine, agent: FulfilmentAgent, net: FakeNetwork) -> None:
    before = net.devices["r1"].running
    first = process_order(engine, create_order(engine, add()).id, agent)
    with Session(engine) as s:
        product = s.exec(select(Product)).one()
    delete = create_order(engine, OrderRequest("CUST-1", [
        OrderItemRequest("delete", product_id=product.id)]))
    done = process_order(engine, delete.id, agent)
    assert first.state == done.state == "completed", done.error
    running = net.devices["r1"].running
    assert "100.64.14.1/24" not in running and "203.0.113.0/29" not in running
    assert "interface eth4" in before  # the port's description went with the service
    with Session(engine) as s:
        product = s.exec(select(Product)).one()
        removal = s.exec(select(ConfigChange).order_by(col(ConfigChange.id).desc())).first()
        assert removal is not None and removal.state == "confirmed"
        assert all(c["ok"] for c in removal.verify())
        assert product.status == "terminated"
        assert product.terminated_at == removal.finished_at
        assert s.exec(select(ServiceBinding)).one().state == "inactive"
    assert counts(engine)[1:] == (0, 0)
    with pytest.raises(OrderRefused, match="only an active product"):
        create_order(engine, OrderRequest("CUST-1", [
            OrderItemRequest("delete", product_id=product.id)]))
    # the port is free again
    assert process_order(engine, create_order(engine, add()).id, agent).state == "completed"


def test_a_modify_changes_the_offering_on_the_same_resources(
        engine: Engine, agent: FulfilmentAgent, net: FakeNetwork) -> None:
    process_order(engine, create_order(engine, add()).id, agent)
    with Session(engine) as s:
        product = s.exec(select(Product)).one()
    done = process_order(engine, create_order(engine, OrderRequest("CUST-1", [
        OrderItemRequest("modify", "bi-1000", product_id=product.id,
                         characteristics={"speed_mbps": 1000})])).id, agent)
    assert done.state == "completed", done.error
    with Session(engine) as s:
        fresh = s.get(Product, product.id)
        assert fresh is not None and fresh.offering_id == "bi-1000"
        assert json.loads(fresh.characteristics_json)["speed_mbps"] == 1000
        assert fresh.status == "active" and fresh.activated_at == product.activated_at


# -- cancellation -------------------------------------------------------------------------

def test_cancel_from_acknowledged_and_not_after_the_push(
        engine: Engine, agent: FulfilmentAgent) -> None:
    order = create_order(engine, add())
    cancelled = cancel_order(engine, order.id, reason="customer changed their mind")
    assert cancelled.state == "cancelled"
    assert history(engine, order.id)[-1][1:] == ("acknowledged", "cancelled")
    with pytest.raises(TransitionRefused):
        cancel_order(engine, order.id)
    assert process_order(engine, order.id, agent).state == "cancelled"  # nothing runs
    assert counts(engine)[1:] == (0, 0)
    done = process_order(engine, create_order(engine, add()).id, agent)
    with pytest.raises(TransitionRefused, match="completed"):
        cancel_order(engine, done.id)


def test_a_cancel_before_the_push_releases_what_was_allocated(
        engine: Engine, agent: FulfilmentAgent, net: FakeNetwork,
        monkeypatch: pytest.MonkeyPatch) -> None:
    order = create_order(engine, add())
    real = orders.build_params

    def cancel_meanwhile(*args: Any, **kwargs: Any) -> dict[str, str]:
        cancel_order(engine, order.id, reason="stop")  # another request, mid-saga
        return real(*args, **kwargs)

    monkeypatch.setattr(orders, "build_params", cancel_meanwhile)
    done = process_order(engine, order.id, agent)
    assert done.state == "cancelled"
    assert net.devices["r1"].commits == 0
    assert counts(engine)[1:] == (0, 0)
    with Session(engine) as s:
        assert [i.state for i in orders.order_items(s, order.id)] == ["cancelled"]


def test_cancel_is_refused_once_the_push_started(engine: Engine, agent: FulfilmentAgent,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    order = create_order(engine, add())
    seen: list[Exception] = []
    real = agent.apply

    def apply_and_try_to_cancel(*args: Any, **kwargs: Any) -> Any:
        try:
            cancel_order(engine, order.id)
        except TransitionRefused as exc:
            seen.append(exc)
        return real(*args, **kwargs)

    monkeypatch.setattr(agent, "apply", apply_and_try_to_cancel)
    assert process_order(engine, order.id, agent).state == "completed"
    assert len(seen) == 1 and "push to the network has started" in str(seen[0])


# -- crash recovery -----------------------------------------------------------------------

class Crash(BaseException):
    """The process dies (nothing handles it)."""


def test_a_crash_after_the_device_confirmed_is_resumed(
        engine: Engine, agent: FulfilmentAgent, net: FakeNetwork,
        monkeypatch: pytest.MonkeyPatch) -> None:
    order = create_order(engine, add())

    def die(*_: Any, **__: Any) -> None:
        raise Crash

    monkeypatch.setattr(orders, "_activate", die)
    with pytest.raises(Crash):
        process_order(engine, order.id, agent)
    monkeypatch.undo()
    with Session(engine) as s:
        assert s.get(ProductOrder, order.id).state == "inProgress"  # type: ignore[union-attr]
    [settled] = resume_interrupted(engine, agent)
    assert settled.state == "completed"
    assert "100.64.14.1/24" in net.devices["r1"].running
    assert counts(engine)[1:] == (3, 1)
    assert steps(engine, order.id)["resume"] == "done"
    with Session(engine) as s:
        assert s.exec(select(ServiceBinding)).one().state == "active"


def test_a_crash_during_the_push_is_compensated(
        engine: Engine, agent: FulfilmentAgent, net: FakeNetwork,
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = net.devices["r1"].running
    order = create_order(engine, add())

    def die(*_: Any, **__: Any) -> None:
        raise Crash

    monkeypatch.setattr(agent, "_verify_network", die)  # committed, never confirmed
    with pytest.raises(Crash):
        process_order(engine, order.id, agent)
    monkeypatch.undo()
    assert net.devices["r1"].running != before
    [settled] = resume_interrupted(engine, agent)
    assert settled.state == "failed"
    assert "interrupted by a restart during step fulfil" in (settled.error or "")
    assert net.devices["r1"].running == before
    assert counts(engine)[1:] == (0, 0)
    assert steps(engine, order.id)["fulfil"] == "compensated"
    assert resume_interrupted(engine, agent) == []  # nothing left in progress


def test_a_crash_before_the_push_releases_the_allocations(
        engine: Engine, agent: FulfilmentAgent, net: FakeNetwork,
        monkeypatch: pytest.MonkeyPatch) -> None:
    order = create_order(engine, OrderRequest("CUST-1", [
        OrderItemRequest("add", "bi-100", "S4"), OrderItemRequest("add", "bi-100", "S5")]))

    def die(*_: Any, **__: Any) -> None:
        raise Crash

    monkeypatch.setattr(orders, "build_params", die)
    with pytest.raises(Crash):
        process_order(engine, order.id, agent)
    monkeypatch.undo()
    assert counts(engine)[1] == 3  # item 1 held its port, block and VLAN
    [settled] = resume_interrupted(engine, agent)
    assert settled.state == "failed"
    assert counts(engine)[1:] == (0, 0)
    assert net.devices["r1"].commits == 0
    with Session(engine) as s:
        items = orders.order_items(s, order.id)
        assert [i.state for i in items] == ["failed", "failed"]
        assert "before it started" in (items[1].error or "")
        assert s.exec(select(func.count()).select_from(OrderStateChange).where(
            OrderStateChange.order_id == order.id,
            OrderStateChange.to_state == "inProgress")).one() >= 1


# -- concurrency through the saga -----------------------------------------------------------

def test_concurrent_orders_end_settled_and_never_share_a_resource(
        engine: Engine, agent: FulfilmentAgent, net: FakeNetwork) -> None:
    with Session(engine) as s:  # four more sites on r1:eth4: only one order can have it
        for n in range(4):
            s.add(Site(id=f"S4-{n}", customer_id="CUST-1", name=f"eth4 #{n}", device="r1",
                       port="eth4", link_address="100.64.14.1/24",
                       customer_address="100.64.14.2", host="cust4"))
        s.commit()
    sites = ["S1", "S2", "S3", "S5", "S6", "S4-0", "S4-1", "S4-2", "S4-3"]
    ids = [create_order(engine, add(site=site)).id for site in sites]
    barrier = threading.Barrier(len(ids))
    states: dict[str, str] = {}
    errors: dict[str, str] = {}

    def run(order_id: str) -> None:
        barrier.wait()
        done = process_order(engine, order_id, agent)
        states[order_id] = done.state
        errors[order_id] = done.error or ""

    threads = [threading.Thread(target=run, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(states.values()) <= {"completed", "failed"}
    assert list(states.values()).count("completed") == 6, errors  # 5 ports + 1 of the eth4 4
    with Session(engine) as s:
        live = s.exec(select(Allocation).where(col(Allocation.released_at).is_(None))).all()
        keys = [(a.kind, a.scope, a.value) for a in live]
        assert len(keys) == len(set(keys)) == 18
        assert s.exec(select(func.count()).select_from(Product).where(
            Product.status == "active")).one() == 6
        assert s.exec(select(func.count()).select_from(ProductOrderItem).where(
            ProductOrderItem.state == "inProgress")).one() == 0


# -- removal templates --------------------------------------------------------------------

def test_removal_renders_the_inverse_lines_and_absence_checks() -> None:
    spec = load_services()["internet-access"]
    params = validate_params(spec, {"interface": "eth4", "address": "100.64.12.1/24",
                                    "description": "ACME", "customer_prefix": "203.0.113.8/29",
                                    "next_hop": "100.64.12.2"})
    out = render(spec, "frr", params, action="remove")
    assert out.config == ("interface eth4\n no ip address 100.64.12.1/24\n no description\n"
                          "exit\nno ip route 203.0.113.8/29 100.64.12.2\n")
    assert out.absent == (" ip address 100.64.12.1/24", "ip route 203.0.113.8/29 100.64.12.2")
    added = merge_predicted(R1, parse_candidate(render(spec, "frr", params).config))
    removed = merge_predicted(added, parse_candidate(out.config))
    assert "100.64.12.1/24" not in removed and "203.0.113.8" not in removed
    vnf = load_services()["vnf-interface"]
    p2 = validate_params(vnf, {"interface": "eth1", "description": "A & B",
                               "address": "198.51.100.20/24"})
    xml = render(vnf, "netconf", p2, netconf_builders(), action="remove")
    assert 'operation="remove"' in xml.config and "<ip>198.51.100.20</ip>" in xml.config
    assert xml.absent == ("<description>A &amp; B</description>", "<ip>198.51.100.20</ip>")


# -- REST and CLI -------------------------------------------------------------------------

ORDERS_URL = "/tmf-api/productOrderingManagement/v4/productOrder"


def tmf_body(site: str = "S4", reference: str = "PO-1") -> dict[str, Any]:
    return {"relatedParty": [{"id": "ACME", "role": "Customer"}],
            "productOrderItem": [{"id": "1", "action": "add",
                                  "productOffering": {"id": "bi-100"},
                                  "product": {"place": [{"id": site}],
                                              "productCharacteristic": [
                                                  {"name": "reference", "value": reference}]}}]}


@pytest.fixture
def client(engine: Engine, agent: FulfilmentAgent) -> Iterator[Any]:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from northbound.api_orders import router

    app = FastAPI()
    app.include_router(router)
    app.state.engine = engine
    app.state.order_agent = agent
    with TestClient(app) as c:
        yield c


def test_rest_creates_processes_and_shows_an_order(client: Any, net: FakeNetwork) -> None:
    res = client.post(ORDERS_URL, json=tmf_body(), headers={"Idempotency-Key": "abc"})
    assert res.status_code == 201, res.text
    created = res.json()
    assert created["state"] == "acknowledged"  # the answer comes before the saga
    assert res.headers["Location"].endswith(created["id"])
    shown = client.get(f"{ORDERS_URL}/{created['id']}").json()
    assert shown["state"] == "completed"
    assert [h["to"] for h in shown["x_stateHistory"] if h["productOrderItem"] is None] == [
        "acknowledged", "inProgress", "completed"]
    product_id = shown["productOrderItem"][0]["product"]["id"]
    again = client.post(ORDERS_URL, json=tmf_body(), headers={"Idempotency-Key": "abc"})
    assert again.status_code == 200 and again.json()["id"] == created["id"]
    assert net.devices["r1"].commits == 1  # the retry ran nothing
    other = client.post(ORDERS_URL, json=tmf_body(reference="PO-2"),
                        headers={"Idempotency-Key": "abc"})
    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert "different request body" in other.json()["detail"]
    listed = client.get(ORDERS_URL, params={"state": "completed", "customer": "ACME"})
    assert listed.headers["X-Total-Count"] == "1"
    refused = client.post(f"{ORDERS_URL}/{created['id']}/cancel",
                          json={"cancellationReason": "too late"})
    assert refused.status_code == 409 and "completed" in refused.json()["detail"]
    inv = client.get("/tmf-api/productInventory/v4/product", params={"customer": "CUST-1"})
    assert inv.headers["X-Total-Count"] == "1"
    doc = client.get(f"/tmf-api/productInventory/v4/product/{product_id}").json()
    assert doc["status"] == "active" and doc["x_boundInterface"]["interface"] == "eth4"
    assert doc["realizingService"][0]["name"] == "internet-access"
    assert doc["startDate"] is not None
    assert client.get("/tmf-api/productInventory/v4/product/nope").status_code == 404
    assert client.get(f"{ORDERS_URL}/nope").status_code == 404


def test_rest_refuses_bad_orders_and_cancels_an_acknowledged_one(
        client: Any, engine: Engine) -> None:
    bad = client.post(ORDERS_URL, json=tmf_body(site="S-OTHER"))
    assert bad.status_code == 400
    assert "belongs to another customer" in bad.json()["detail"]
    assert counts(engine)[0] == 0
    order = create_order(engine, add())
    res = client.post("/tmf-api/productOrderingManagement/v4/cancelProductOrder",
                      json={"productOrder": {"id": order.id}, "cancellationReason": "no"})
    assert res.status_code == 201 and res.json()["state"] == "done"
    assert client.get(f"{ORDERS_URL}/{order.id}").json()["state"] == "cancelled"


def test_cli_creates_an_order_and_fails_with_a_non_zero_code(
        engine: Engine, agent: FulfilmentAgent, probe: FakeProbe,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    import northbound.cli_order as cli

    monkeypatch.setattr(cli, "get_engine", lambda: engine)
    monkeypatch.setattr(cli, "_agent", lambda *_: agent)
    runner = CliRunner()
    ok = runner.invoke(cli.order_app, ["create", "--customer", "ACME", "--site", "site 4",
                                       "--offering", "bi-100", "--param", "reference=PO-9",
                                       "--json"])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.output)
    assert doc["state"] == "completed"
    probe.ok = False
    bad = runner.invoke(cli.order_app, ["create", "--customer", "ACME", "--site", "S5",
                                        "--offering", "bi-100"])
    assert bad.exit_code == 1
    assert "failed" in bad.output and "inProgress" in bad.output  # the history is printed
    shown = runner.invoke(cli.order_app, ["show", doc["id"], "--json"])
    assert json.loads(shown.output)["id"] == doc["id"]
    listed = runner.invoke(cli.order_app, ["list", "--json"])
    assert len(json.loads(listed.output)) == 2
    refused = runner.invoke(cli.order_app, ["cancel", doc["id"]])
    assert refused.exit_code == 1 and "completed" in refused.output


def test_a_block_emptied_by_its_removals_may_vanish_from_the_running_config() -> None:
    from adapters.cli import _verify, config_platform, parse_running

    spec = config_platform("frr")
    removal = parse_candidate("interface eth4\n no ip address 100.64.12.1/24\n"
                              " no description\nexit\n")
    gone = parse_running(R1.replace("interface eth4\n description customer cust2 "
                                    "(awaiting activation)\nexit\n!\n", ""))
    assert _verify(gone, removal, spec) == []  # FRR drops an interface block left empty
    kept = parse_running(R1)
    assert _verify(kept, removal, spec) == ["interface eth4 > no description (still present)"]
    adding = parse_candidate("interface eth4\n description x\nexit\n")
    assert _verify(gone, adding, spec) == ["interface eth4"]
