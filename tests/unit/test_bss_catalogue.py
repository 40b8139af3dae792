"""The catalogue file: strict checks naming the entry, all-or-nothing and idempotent loads,
the offerings' life cycle, order characteristics and template parameters."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine
from sqlmodel import Session, create_engine, select

from bss.catalogue import (
    CATALOGUE_FILE,
    CatalogueError,
    CatalogueNotFound,
    LifecycleError,
    activate_offering,
    load_catalogue,
    orderable_offering,
    resolve_params,
    retire_offering,
    set_offering_status,
    validate_characteristics,
)
from bss.model import (
    Allocation,
    ProductOffering,
    ProductOfferingPrice,
    ProductSpecification,
    ResourcePool,
    Site,
    init_bss_db,
    loads,
)
from topology.queries import NotFound


@pytest.fixture
def engine() -> Engine:
    e = create_engine("sqlite://")
    init_bss_db(e)
    return e


def shipped() -> dict[str, Any]:
    data = yaml.safe_load(CATALOGUE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def write(tmp_path: Path, data: dict[str, Any], name: str = "cat.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def snapshot(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with Session(engine) as s:
        return {m.__name__: sorted((r.model_dump() for r in s.exec(select(m)).all()),
                                   key=lambda d: str(d["id"]))
                for m in (ResourcePool, ProductSpecification, ProductOffering,
                          ProductOfferingPrice)}


# -- the shipped catalogue ------------------------------------------------------------------


def test_shipped_catalogue_loads_with_the_promised_offerings(engine: Engine) -> None:
    report = load_catalogue(engine)
    assert report.changed and not report.updated
    with Session(engine) as s:
        offerings = {o.id: o for o in s.exec(select(ProductOffering)).all()}
        assert {"business-internet-100", "business-internet-1000",
                "managed-vnf-port"} <= set(offerings)
        assert {o.lifecycle_status for o in offerings.values()} >= {"active", "draft"}
        bi100 = offerings["business-internet-100"]
        assert bi100.service == "internet-access" and bi100.currency == "EUR"
        assert loads(bi100.params_json, {}) == {
            "interface": "site.port", "address": "site.link_address",
            "description": "text:{customer} {product}",
            "customer_prefix": "alloc.customer_prefix", "next_hop": "site.customer_address"}
        assert loads(bi100.allocations_json, {}) == {
            "customer_prefix": {"kind": "ipv4", "pool": "customer-v4", "prefix_len": 29}}
        assert loads(bi100.usage_json, {}) == {"model": "volume", "unit": "GB"}
        assert loads(offerings["business-internet-1000"].usage_json, {})["model"] == "p95"
        sla = loads(offerings["business-internet-1000"].sla_json, {})
        assert Decimal(sla["availability_pct"]) == Decimal("99.95")
        vnf = offerings["managed-vnf-port"]
        assert vnf.service == "vnf-interface"
        assert loads(vnf.allocations_json, {})["vlan"]["kind"] == "vlan"
        prices = s.exec(select(ProductOfferingPrice).where(
            ProductOfferingPrice.offering_id == "business-internet-100")).all()
        kinds = {p.price_type: p for p in prices}
        assert set(kinds) == {"oneTime", "recurring", "usage"}
        tiers = loads(kinds["usage"].tiers_json, [])
        assert tiers[-1]["up_to"] is None
        assert [Decimal(t["up_to"]) for t in tiers[:-1]] == sorted(
            Decimal(t["up_to"]) for t in tiers[:-1])
        pools = {p.id: p for p in s.exec(select(ResourcePool)).all()}
        assert pools["customer-v4"].range == "203.0.113.0/24"
        assert pools["customer-vlans"].range == "100-199"


def test_loading_the_same_file_again_changes_nothing(engine: Engine) -> None:
    load_catalogue(engine)
    before = snapshot(engine)
    again = load_catalogue(engine)
    assert not again.changed, again.as_dict()
    assert again.unchanged
    assert snapshot(engine) == before  # updated_at included


def test_a_changed_file_updates_only_what_changed(engine: Engine, tmp_path: Path) -> None:
    load_catalogue(engine)
    before = snapshot(engine)
    data = shipped()
    data["offerings"]["business-internet-100"]["prices"]["monthly"]["amount"] = "84.50"
    del data["offerings"]["business-internet-100"]["prices"]["installation"]
    report = load_catalogue(engine, write(tmp_path, data))
    assert report.updated == ["price business-internet-100-monthly"]
    assert report.removed == ["price business-internet-100-installation"]
    after = snapshot(engine)
    with Session(engine) as s:
        monthly = s.get(ProductOfferingPrice, "business-internet-100-monthly")
        assert monthly is not None and monthly.amount == "84.50"
        assert s.get(ProductOfferingPrice, "business-internet-100-installation") is None
    assert after["ProductOffering"] == before["ProductOffering"]


# -- refusals -------------------------------------------------------------------------------


def _offering(data: dict[str, Any], oid: str = "business-internet-100") -> dict[str, Any]:
    o = data["offerings"][oid]
    assert isinstance(o, dict)
    return o


Mutation = Callable[[dict[str, Any]], None]

BROKEN: list[tuple[str, Mutation, str]] = [
    ("unknown spec", lambda d: _offering(d).update(spec="nope"),
     "offering business-internet-100: unknown specification 'nope'"),
    ("unknown service", lambda d: _offering(d).update(service="teleport"),
     "offering business-internet-100: unknown fulfilment service 'teleport'"),
    ("bad source", lambda d: _offering(d)["params"].update(address="site.gateway"),
     "offering business-internet-100: param address: source 'site.gateway' must be one of"),
    ("source of the wrong type", lambda d: _offering(d)["params"].update(
        address="site.customer_address"), "site.customer_address cannot feed a ipv4_interface"),
    ("param not of the service", lambda d: _offering(d)["params"].update(vlan="site.port"),
     "param vlan: not a parameter of service internet-access"),
    ("required param unmapped", lambda d: _offering(d)["params"].pop("interface"),
     "param interface is required by service internet-access"),
    ("requires pair", lambda d: _offering(d)["params"].pop("next_hop"),
     "params customer_prefix and next_hop go together"),
    ("unknown pool", lambda d: _offering(d)["allocations"]["customer_prefix"].update(
        pool="nowhere"), "allocation customer_prefix: unknown pool 'nowhere'"),
    ("pool of the wrong kind", lambda d: _offering(d)["allocations"]["customer_prefix"].update(
        pool="customer-vlans"), "pool customer-vlans holds vlan, not ipv4"),
    ("unknown alloc source", lambda d: _offering(d)["params"].update(
        customer_prefix="alloc.block"), "unknown allocation 'block'"),
    ("bad placeholder", lambda d: _offering(d)["params"].update(
        description="text:{customer} {password}"), "unknown placeholder {password}"),
    ("newline in text", lambda d: _offering(d)["params"].update(
        description="text:a\nshutdown"), "one printable line"),
    ("stray brace", lambda d: _offering(d)["params"].update(description="text:{customer"),
     "brace outside a {placeholder}"),
    ("bad amount", lambda d: _offering(d)["prices"]["monthly"].update(amount="79,00"),
     "price monthly: amount: '79,00' is not a decimal"),
    ("negative amount", lambda d: _offering(d)["prices"]["monthly"].update(amount="-1"),
     "price monthly: amount: -1 is below 0"),
    ("tiers descending", lambda d: _offering(d)["prices"]["traffic"]["tiers"][1].update(
        up_to="50"), "tier 2: up_to 50 must be above the previous tier's (100)"),
    ("last tier closed", lambda d: _offering(d)["prices"]["traffic"]["tiers"][2].update(
        up_to="5000"), "tier 3: the last tier must be open"),
    ("open tier in the middle", lambda d: _offering(d)["prices"]["traffic"]["tiers"][0].update(
        up_to=None), "tier 1: up_to is open (null) but only the last tier may be open"),
    ("currency", lambda d: _offering(d).update(currency="euro"),
     "offering business-internet-100: currency 'euro' must be 3 capital letters"),
    ("SLA above 100", lambda d: _offering(d)["sla"].update(availability_pct="100.5"),
     "sla: availability_pct: 100.5 is above 100"),
    ("SLA credit below 0", lambda d: _offering(d)["sla"].update(credit_pct_of_recurring="-5"),
     "credit_pct_of_recurring: -5 is below 0"),
    ("usage unit", lambda d: _offering(d)["prices"]["traffic"].update(unit="Mbps"),
     "price traffic: unit 'Mbps' must be GB"),
    ("recurring period", lambda d: _offering(d)["prices"]["monthly"].update(period="week"),
     "a recurring price needs period: month"),
    ("unknown field", lambda d: _offering(d).update(discount="10"),
     "offering business-internet-100: unknown field 'discount'"),
    ("lifecycle", lambda d: _offering(d).update(lifecycle_status="live"),
     "lifecycle_status 'live' must be one of draft, active, retired"),
    ("characteristic type", lambda d: d["specifications"]["business-internet-100"][
        "characteristics"][0].update(valueType="float"), "valueType 'float' must be one of"),
    ("default not allowed", lambda d: d["specifications"]["business-internet-100"][
        "characteristics"][0].update(default=1000), "default '1000' is not among the allowed"),
    ("pool range", lambda d: d["pools"]["customer-vlans"].update(range="100-5000"),
     "pool customer-vlans: '100-5000': VLAN ids go 1..4094"),
    ("pool network", lambda d: d["pools"]["customer-v4"].update(range="203.0.113.1/24"),
     "pool customer-v4: range '203.0.113.1/24' is not an IPv4 network"),
    ("prefix_len", lambda d: _offering(d)["allocations"]["customer_prefix"].update(
        prefix_len=16), "prefix_len 16 must be a whole number from 24"),
]


@pytest.mark.parametrize(("mutate", "reason"), [(m, r) for _, m, r in BROKEN],
                         ids=[n for n, _, _ in BROKEN])
def test_a_broken_catalogue_is_refused_naming_the_entry(
        engine: Engine, tmp_path: Path, mutate: Mutation, reason: str) -> None:
    data = shipped()
    mutate(data)
    with pytest.raises(CatalogueError) as info:
        load_catalogue(engine, write(tmp_path, data))
    assert any(reason in p for p in info.value.problems), info.value.problems
    assert reason in str(info.value)
    assert snapshot(engine) == snapshot_empty()


def snapshot_empty() -> dict[str, list[dict[str, Any]]]:
    return {"ResourcePool": [], "ProductSpecification": [], "ProductOffering": [],
            "ProductOfferingPrice": []}


def test_a_refused_file_changes_nothing_and_lists_every_problem(
        engine: Engine, tmp_path: Path) -> None:
    load_catalogue(engine)
    before = snapshot(engine)
    data = shipped()
    _offering(data)["name"] = "Renamed, must not be stored"  # a valid change ...
    _offering(data, "business-internet-1000")["service"] = "teleport"  # ... and two errors
    _offering(data, "managed-vnf-port")["prices"]["monthly"]["amount"] = "abc"
    with pytest.raises(CatalogueError) as info:
        load_catalogue(engine, write(tmp_path, data))
    problems = info.value.problems
    assert any(p.startswith("offering business-internet-1000:") for p in problems)
    assert any(p.startswith("offering managed-vnf-port: price monthly") for p in problems)
    assert len(problems) == 2
    assert snapshot(engine) == before


def test_unreadable_and_invalid_yaml_are_refused(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(engine, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("offerings: [unclosed\n")
    with pytest.raises(CatalogueError, match="not valid YAML"):
        load_catalogue(engine, bad)


def test_a_pool_cannot_shrink_away_from_live_allocations(engine: Engine,
                                                         tmp_path: Path) -> None:
    load_catalogue(engine)
    with Session(engine) as s:
        s.add(Allocation(kind="ipv4", scope="customer-v4", value="203.0.113.200/29"))
        s.commit()
    data = shipped()
    data["pools"]["customer-v4"]["range"] = "203.0.113.0/25"
    with pytest.raises(CatalogueError, match=r"leaves out live allocations 203.0.113.200/29"):
        load_catalogue(engine, write(tmp_path, data))
    with Session(engine) as s:
        pool = s.get(ResourcePool, "customer-v4")
        assert pool is not None and pool.range == "203.0.113.0/24"


# -- life cycle -----------------------------------------------------------------------------


def test_life_cycle_moves_forward_only(engine: Engine) -> None:
    load_catalogue(engine)
    with Session(engine) as s:
        draft = s.exec(select(ProductOffering).where(
            ProductOffering.lifecycle_status == "draft")).first()
        assert draft is not None
        with pytest.raises(LifecycleError, match="only an active offering can be ordered"):
            orderable_offering(s, draft.id)
        with pytest.raises(LifecycleError, match="cannot become retired"):
            retire_offering(s, draft.id)
        assert activate_offering(s, draft.id).lifecycle_status == "active"
        assert orderable_offering(s, draft.id).id == draft.id
        assert retire_offering(s, draft.id).lifecycle_status == "retired"
        with pytest.raises(LifecycleError) as info:
            activate_offering(s, draft.id)
        assert "retired: it cannot become active" in str(info.value)
        with pytest.raises(LifecycleError):
            set_offering_status(s, draft.id, "draft")
        with pytest.raises(LifecycleError):
            orderable_offering(s, draft.id)
        with pytest.raises(CatalogueError, match="unknown lifecycle status"):
            set_offering_status(s, "business-internet-100", "live")
        missing = pytest.raises(CatalogueNotFound, match="no product offering 'nope'")
        with missing as err:
            orderable_offering(s, "nope")
        assert isinstance(err.value, NotFound)
    with Session(engine) as s:
        stored = s.get(ProductOffering, draft.id)
        assert stored is not None and stored.lifecycle_status == "retired"


def test_reloading_keeps_a_status_moved_on_since(engine: Engine) -> None:
    load_catalogue(engine)
    with Session(engine) as s:
        activate_offering(s, "business-internet-10000")
    report = load_catalogue(engine)  # the file still says draft
    assert not report.changed
    assert any("business-internet-10000: kept active" in n for n in report.notes)
    with Session(engine) as s:
        o = s.get(ProductOffering, "business-internet-10000")
        assert o is not None and o.lifecycle_status == "active"


# -- characteristics ------------------------------------------------------------------------


def _spec(*chars: dict[str, Any]) -> ProductSpecification:
    full = [{"required": False, "allowed": [], "default": None, "description": "", **c}
            for c in chars]
    return ProductSpecification(id="s", name="S", characteristics_json=json.dumps(full))


def test_characteristics_are_typed_with_defaults() -> None:
    spec = _spec({"name": "speed_mbps", "valueType": "integer", "allowed": ["100", "1000"],
                  "default": "100"},
                 {"name": "prefix", "valueType": "ipv4Network"},
                 {"name": "burst", "valueType": "boolean"},
                 {"name": "ratio", "valueType": "number"},
                 {"name": "note", "valueType": "string", "required": True})
    out = validate_characteristics(spec, {"prefix": "198.51.100.0/24", "burst": "yes",
                                          "ratio": "0.25", "note": "PO 42"})
    assert out == {"speed_mbps": 100, "prefix": "198.51.100.0/24", "burst": True,
                   "ratio": Decimal("0.25"), "note": "PO 42"}
    assert validate_characteristics(spec, {"speed_mbps": "1000", "note": "x"})[
        "speed_mbps"] == 1000


def test_characteristics_problems_are_all_listed() -> None:
    spec = _spec({"name": "speed_mbps", "valueType": "integer", "allowed": ["100"]},
                 {"name": "prefix", "valueType": "ipv4Network"},
                 {"name": "count", "valueType": "integer"},
                 {"name": "note", "valueType": "string", "required": True},
                 {"name": "label", "valueType": "string"})
    with pytest.raises(CatalogueError) as info:
        validate_characteristics(spec, {"speed_mbps": "1000", "prefix": "198.51.100.1/24",
                                        "count": "ten", "colour": "red",
                                        "label": "a\nb"})
    problems = info.value.problems
    assert any(p.startswith("colour: not a characteristic of s") for p in problems)
    assert any(p.startswith("speed_mbps: '1000' is not allowed") for p in problems)
    assert any(p.startswith("prefix: '198.51.100.1/24' is not an IPv4 network")
               for p in problems)
    assert any(p.startswith("count: 'ten' is not an integer") for p in problems)
    assert "note: required" in problems
    assert any(p.startswith("label: holds a newline") for p in problems)
    assert len(problems) == 6
    with pytest.raises(CatalogueError, match="longer than 200"):
        validate_characteristics(spec, {"note": "x" * 201})


def test_shipped_specs_validate_order_characteristics(engine: Engine) -> None:
    load_catalogue(engine)
    with Session(engine) as s:
        spec = s.get(ProductSpecification, "business-internet-100")
        assert spec is not None
        assert validate_characteristics(spec, {"reference": "PO-7"}) == {
            "speed_mbps": 100, "reference": "PO-7"}
        with pytest.raises(CatalogueError, match="speed_mbps: '1000' is not allowed"):
            validate_characteristics(spec, {"speed_mbps": "1000"})


# -- parameters -----------------------------------------------------------------------------


def test_parameters_are_filled_from_site_allocations_and_text(engine: Engine) -> None:
    load_catalogue(engine)
    site = Site(id="SITE-0001", customer_id="CUST-0001", name="HQ", device="r1",
                port="eth4", link_address="100.64.12.1/24", customer_address="100.64.12.2")
    with Session(engine) as s:
        bi = s.get(ProductOffering, "business-internet-100")
        vnf = s.get(ProductOffering, "managed-vnf-port")
        assert bi is not None and vnf is not None
        params = resolve_params(bi, customer="ACME {Ltd}", site=site, product_id="PRD-1",
                                characteristics={},
                                allocations={"customer_prefix": "203.0.113.8/29"})
        assert params == {"interface": "eth4", "address": "100.64.12.1/24",
                          "description": "ACME {Ltd} PRD-1",
                          "customer_prefix": "203.0.113.8/29", "next_hop": "100.64.12.2"}
        vparams = resolve_params(vnf, customer="ACME", site=site, product_id="PRD-2",
                                 characteristics={}, allocations={"vlan": "101"})
        assert vparams == {"interface": "eth4", "description": "ACME vlan 101"}
        bare = Site(id="SITE-0002", customer_id="CUST-0001", name="Branch", device="r1",
                    port="eth3")
        with pytest.raises(CatalogueError) as info:
            resolve_params(bi, customer="ACME", site=bare, product_id="PRD-3",
                           characteristics={}, allocations={})
        assert "address: site SITE-0002 has no link_address" in info.value.problems
        assert "customer_prefix: nothing allocated for alloc.customer_prefix" in \
            info.value.problems


def test_text_template_may_use_allocations_and_characteristics(engine: Engine,
                                                              tmp_path: Path) -> None:
    data = copy.deepcopy(shipped())
    vnf = _offering(data, "managed-vnf-port")
    vnf["params"]["description"] = "text:{customer} vlan {alloc.vlan} ref {char.reference}"
    with pytest.raises(CatalogueError, match="optional characteristic without a default"):
        load_catalogue(engine, write(tmp_path, data))
    data["specifications"]["managed-vnf-port"]["characteristics"][0]["required"] = True
    load_catalogue(engine, write(tmp_path, data))
    with Session(engine) as s:
        o = s.get(ProductOffering, "managed-vnf-port")
        assert o is not None
        site = Site(id="SITE-1", customer_id="C", name="HQ", device="vnf1", port="eth1")
        params = resolve_params(o, customer="ACME", site=site, product_id="PRD-1",
                                characteristics={"reference": "PO-9"},
                                allocations={"vlan": "150"})
    assert params["description"] == "ACME vlan 150 ref PO-9"


def test_vlan_pools_take_the_allocators_list_form(engine: Engine, tmp_path: Path) -> None:
    data = shipped()
    data["pools"]["customer-vlans"]["range"] = "100-149, 200-249,300"
    load_catalogue(engine, write(tmp_path, data))
    with Session(engine) as s:
        pool = s.get(ResourcePool, "customer-vlans")
        assert pool is not None and pool.range == "100-149,200-249,300"
        s.add(Allocation(kind="vlan", scope="customer-vlans", value="210"))
        s.commit()
    data["pools"]["customer-vlans"]["range"] = "100-199"
    with pytest.raises(CatalogueError, match="leaves out live allocations 210"):
        load_catalogue(engine, write(tmp_path, data))
    data["pools"]["customer-vlans"]["range"] = "100-199,205-220"
    assert load_catalogue(engine, write(tmp_path, data)).updated == ["pool customer-vlans"]
