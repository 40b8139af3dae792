"""Revenue assurance on recorded FRR configs: leakage, billed but not configured, matched,
and routers whose config could not be read."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bss.assurance import ConfigReader, assurance_report, configured_interfaces
from bss.model import Product
from tests.unit.bss_factory import (
    make_engine,
    seed_account,
    seed_device,
    seed_link,
    seed_offering,
    seed_product,
)
from topology.db import dispose_engines
from topology.errors import PushConnectionError
from topology.inventory import Device

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "frr_config"
R1_BEFORE = (GOLDEN / "show_running.txt").read_text()      # eth4 has no address
R1_AFTER = (GOLDEN / "running_eth4.txt").read_text()       # eth4 100.64.12.1/24
R1_MESSY = (GOLDEN / "running_messy.txt").read_text()      # eth4 192.0.2.5, eth5 no address
R2 = """!
hostname r2
interface eth1
 description to r1 eth1
 ip address 10.0.12.2/30
exit
!
interface eth2
 ip address 10.0.23.1/30
exit
!
interface eth3
 description old customer, shut
 ip address 100.64.50.1/24
 shutdown
exit
!
interface eth0
 ip address 172.20.20.12/24
exit
!
interface lo
 ip address 10.255.0.2/32
exit
!
end
"""


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(tmp_path)
    r1 = seed_device(eng, "r1", ["eth1", "eth2", "eth3", "eth4", "eth5"])
    r2 = seed_device(eng, "r2", ["eth0", "eth1", "eth2", "eth3"])
    r3 = seed_device(eng, "r3", ["eth2"])
    sw = seed_device(eng, "sw1", ["eth1", "eth2"], role="switch")
    vnf = seed_device(eng, "vnf1", ["eth1"], role="vnf")
    with Session(eng) as s:
        for name, mgmt in (("r1", "172.20.20.11"), ("r2", "172.20.20.12"),
                           ("r3", "172.20.20.13")):
            dev = s.get(Device, {"r1": r1, "r2": r2, "r3": r3}[name][""])
            assert dev is not None
            dev.planes, dev.mgmt_address = "snmp,cli", mgmt
            s.add(dev)
        s.commit()
    seed_link(eng, r1["eth1"], r2["eth1"])
    seed_link(eng, r1["eth2"], r3["eth2"])
    seed_link(eng, r2["eth2"], sw["eth1"])   # towards a switch: infrastructure
    seed_link(eng, sw["eth2"], vnf["eth1"])
    seed_account(eng)
    seed_offering(eng, "bi")
    yield eng
    dispose_engines()


def reader(configs: dict[str, str]) -> ConfigReader:
    def read(device: str) -> str:
        if device not in configs:
            raise PushConnectionError(f"{device}: SSH login refused", device=device,
                                      operation="get config")
        return configs[device]
    return read


def keys(items: list[dict[str, object]]) -> set[str]:
    return {f"{i['device']}:{i['interface']}" for i in items}


def test_parser_reads_interface_blocks_of_running_and_startup_configs() -> None:
    blocks = {c.interface: c for c in configured_interfaces("r1", R1_AFTER)}
    assert blocks["eth4"].addresses == ("100.64.12.1/24",)
    assert blocks["eth4"].description == "cust2 internet access (order T-1)"
    assert blocks["lo"].addresses == ("10.255.0.1/32",)
    assert blocks["eth1"].addresses == ("10.0.12.1/30",)
    before = {c.interface: c for c in configured_interfaces("r1", R1_BEFORE)}
    assert before["eth4"].addresses == ()
    startup = (Path(__file__).resolve().parents[2] / "lab" / "topologies" / "core" /
               "r1.conf").read_text()  # "!"-terminated blocks
    assert {c.interface: c.addresses for c in configured_interfaces("r1", startup)}["eth3"] \
        == ("100.64.11.1/24",)
    shut = {c.interface: c for c in configured_interfaces("r2", R2)}
    assert shut["eth3"].shutdown


def test_hand_configured_port_is_leakage_and_billed_port_matches(engine: Engine) -> None:
    seed_product(engine, "P-1", offering="bi", activated_at=datetime(2026, 11, 1, tzinfo=UTC),
                 interface="eth3")
    rep = assurance_report(engine, read_config=reader(
        {"r1": R1_AFTER, "r2": R2, "r3": ""})).to_dict()
    # eth1/eth2: router links; lo: loopback; r2 eth0: management; r2 eth3: shut down;
    # r2 eth2: towards a switch
    assert keys(rep["leakage"]) == {"r1:eth4"}
    assert keys(rep["matched"]) == {"r1:eth3"}
    assert rep["matched"][0]["product"]["product_id"] == "P-1"
    assert rep["billed_not_configured"] == []
    assert rep["summary"] == {"leakage": 1, "billed_not_configured": 0, "matched": 1,
                              "unchecked": 0, "devices_read": 3, "devices_failed": 0}


def test_billed_but_not_configured_and_unbilled_cust1(engine: Engine) -> None:
    seed_product(engine, "P-4", offering="bi", activated_at=datetime(2026, 11, 1, tzinfo=UTC),
                 interface="eth4")
    seed_product(engine, "P-5", offering="bi", activated_at=datetime(2026, 11, 1, tzinfo=UTC),
                 interface="eth5")
    # a terminated product is not billed: its port is not expected to carry anything
    seed_product(engine, "P-6", offering="bi", activated_at=datetime(2026, 10, 1, tzinfo=UTC),
                 terminated_at=datetime(2026, 10, 20, tzinfo=UTC), interface="eth2",
                 device="r2")
    rep = assurance_report(engine, read_config=reader(
        {"r1": R1_MESSY, "r2": R2, "r3": ""})).to_dict()
    assert keys(rep["matched"]) == {"r1:eth4"}  # addressed (whatever the address)
    assert {b["product_id"] for b in rep["billed_not_configured"]} == {"P-5"}  # no address
    assert keys(rep["leakage"]) == {"r1:eth3"}  # cust1: configured, nobody pays


def test_failed_read_concludes_nothing_for_that_router(engine: Engine) -> None:
    seed_product(engine, "P-1", offering="bi", activated_at=datetime(2026, 11, 1, tzinfo=UTC),
                 interface="eth4")
    seed_product(engine, "P-V", offering="bi", activated_at=datetime(2026, 11, 1, tzinfo=UTC),
                 device="vnf1", interface="eth1")
    rep = assurance_report(engine, read_config=reader(
        {"r2": R2, "r3": ""})).to_dict()
    failed = [d for d in rep["devices"] if d["status"] == "failed"]
    assert [d["device"] for d in failed] == ["r1"]
    assert "SSH login refused" in failed[0]["error"]
    reasons = {u["product_id"]: u["reason"] for u in rep["unchecked"]}
    assert "could not be read" in reasons["P-1"]
    assert "not an FRR router" in reasons["P-V"]
    assert rep["leakage"] == [] and rep["billed_not_configured"] == []


def test_only_active_products_count_as_billed(engine: Engine) -> None:
    seed_product(engine, "P-1", offering="bi", activated_at=datetime(2026, 11, 1, tzinfo=UTC),
                 interface="eth4")
    with Session(engine) as s:
        p = s.get(Product, "P-1")
        assert p is not None
        p.status = "pendingActive"
        s.add(p)
        s.commit()
    rep = assurance_report(engine, read_config=reader(
        {"r1": R1_AFTER, "r2": R2, "r3": ""}), devices=["r1"]).to_dict()
    assert keys(rep["leakage"]) == {"r1:eth3", "r1:eth4"}
    assert [d["device"] for d in rep["devices"]] == ["r1"]
