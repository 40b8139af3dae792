"""Revenue assurance against the core lab: the routers' running configs are read over
their CLI (the fulfilment agent's backup), a service configured by hand on r1:eth4 with
vtysh shows up as leakage, and so does cust1 on r1:eth3 (provisioned in the lab's startup
config, billed to nobody); once a product is billed on r1:eth4 it is matched."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from bss.assurance import assurance_report
from bss.model import Product, init_bss_db
from lab.pytest_plugin import LabHandle
from tests.integration.peers import configs_kept
from tests.unit.bss_factory import seed_account, seed_offering, seed_product
from topology.db import get_engine

pytestmark = pytest.mark.lab


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "northbound.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False, env=os.environ.copy())


@pytest.fixture(scope="module")
def discovered(core_lab: LabHandle) -> LabHandle:
    res = cli("discover", "--lab", core_lab.name, "--json")
    assert res.returncode == 0, res.stderr
    return core_lab


@pytest.fixture(scope="module", autouse=True)
def configs_as_found(discovered: LabHandle) -> Iterator[None]:
    """The lab's devices as this module found them, for the modules after it."""
    with configs_kept("r1"):
        yield


def vtysh(lab: LabHandle, node: str, *commands: str) -> str:
    argv = ["vtysh"]
    for c in commands:
        argv += ["-c", c]
    return lab.nodes[node].run(*argv).stdout


def ports(items: list[dict[str, object]]) -> set[str]:
    return {f"{i['device']}:{i['interface']}" for i in items}


def test_hand_configured_service_is_leakage_until_billed(discovered: LabHandle) -> None:
    lab = discovered
    engine = get_engine()
    init_bss_db(engine)

    before = assurance_report(engine).to_dict()
    assert {d["device"]: d["status"] for d in before["devices"]} == {
        "r1": "read", "r2": "read", "r3": "read"}, before["devices"]
    # router-to-router links, loopbacks and r3:eth3 (towards the switch sw1) are not
    # customer-facing; r1:eth4 has no address yet; cust1 on r1:eth3 is billed to nobody
    assert ports(before["leakage"]) == {"r1:eth3"}
    assert before["billed_not_configured"] == [] and before["matched"] == []

    vtysh(lab, "r1", "configure terminal", "interface eth4",
          "description cust2 by hand, no order", "ip address 100.64.12.1/24")
    try:
        assert "ip address 100.64.12.1/24" in vtysh(lab, "r1", "show running-config")
        after = assurance_report(engine).to_dict()
        assert ports(after["leakage"]) == {"r1:eth3", "r1:eth4"}
        eth4 = next(c for c in after["leakage"] if c["interface"] == "eth4")
        assert eth4["addresses"] == ["100.64.12.1/24"]
        assert eth4["description"] == "cust2 by hand, no order"

        seed_account(engine, "ACC-LAB", customer="CUST-LAB", name="cust2 Ltd")
        seed_offering(engine, "lab-bi")
        seed_product(engine, "P-LAB", offering="lab-bi", account="ACC-LAB",
                     activated_at=datetime.now(UTC), interface="eth4")
        seed_product(engine, "P-GONE", offering="lab-bi", account="ACC-LAB",
                     activated_at=datetime.now(UTC), device="r2", interface="eth3")
        billed = assurance_report(engine).to_dict()
        assert ports(billed["leakage"]) == {"r1:eth3"}
        assert [m["product"]["product_id"] for m in billed["matched"]] == ["P-LAB"]
        assert [b["product_id"] for b in billed["billed_not_configured"]] == ["P-GONE"]
    finally:
        vtysh(lab, "r1", "configure terminal", "interface eth4",
              "no ip address 100.64.12.1/24", "no description")
        with Session(engine) as s:  # the seeded products must not bill or match later tests
            for pid in ("P-LAB", "P-GONE"):
                product = s.get(Product, pid)
                if product is not None:
                    product.status, product.terminated_at = "terminated", datetime.now(UTC)
                    s.add(product)
            s.commit()
