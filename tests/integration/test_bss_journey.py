"""The BSS journey against the core lab, through the CLI as an order desk works it: a
customer, an account and a site behind r1:eth4; an order for business internet completes
and cust2 reaches the server; real traffic is counted by the poller and billed by the
offering's tiers; the customer's link goes down for a measured time, the root alarm lists
the customer as impacted and the invoice carries the SLA credit; the service is
terminated (config gone, host cut off) and the final invoice is prorated to the second
the device confirmed the removal.

The offering is the test's own (loaded from a catalogue file like any other) with a
recurring fee and usage tiers steep enough that minutes of activity and megabytes of
traffic make amounts worth checking to the cent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from agents.fault.model import Alarm
from agents.fault.settings import FaultSettings
from agents.performance.store import PerfSample
from bss.billing import rate_tiers
from bss.model import Product, init_bss_db
from lab.pytest_plugin import LabHandle
from lab.reach import LabReachProbe
from tests.integration.peers import configs_kept
from tests.integration.test_fault import Running, wait_for
from tests.integration.test_performance import SNMPD_CACHE_S, cycle, poller
from topology.db import get_engine

pytestmark = pytest.mark.lab
SERVER = "198.51.100.10"
HEADER_OCTETS = 14 + 20 + 32  # Ethernet, IPv4, TCP with timestamps (Linux default)
MONTHLY = Decimal("100000.00")
TIERS: list[dict[str, Any]] = [{"up_to": "0.01", "amount": "100"}, {"up_to": None, "amount": "10"}]
CATALOGUE = f"""
version: 1
currency: EUR
pools:
  journey-v4: {{kind: ipv4, range: 198.18.0.0/24}}
specifications:
  journey-internet:
    name: Journey internet
    lifecycle_status: active
    characteristics:
      - {{name: reference, valueType: string}}
offerings:
  journey-internet:
    name: Journey internet
    spec: journey-internet
    lifecycle_status: active
    service: internet-access
    params:
      interface: site.port
      address: site.link_address
      description: "text:{{customer}} {{product}}"
      customer_prefix: alloc.customer_prefix
      next_hop: site.customer_address
    allocations:
      customer_prefix: {{kind: ipv4, pool: journey-v4, prefix_len: 29}}
    usage: {{model: volume, unit: GB}}
    sla: {{availability_pct: "99.9", credit_pct_of_recurring: "10"}}
    prices:
      setup: {{type: oneTime, name: Installation, amount: "150.00"}}
      monthly: {{type: recurring, name: Monthly fee, period: month, amount: "{MONTHLY}"}}
      traffic:
        type: usage
        name: Traffic
        unit: GB
        tiers:
          - {{up_to: "0.01", amount: "100"}}
          - {{up_to: null, amount: "10"}}
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "northbound.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False, env=os.environ.copy())


def cli_json(*args: str) -> Any:
    res = cli(*args, "--json")
    assert res.returncode == 0, f"switchboard {' '.join(args)}: {res.stdout}\n{res.stderr}"
    return json.loads(res.stdout)


def running(lab: LabHandle, node: str) -> str:
    return lab.nodes[node].run("vtysh", "-c", "show running-config").stdout


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), ROUND_HALF_UP)


@pytest.fixture(scope="module")
def discovered(core_lab: LabHandle) -> LabHandle:
    res = cli("discover", "--lab", core_lab.name, "--json")
    assert res.returncode == 0, res.stderr
    init_bss_db(get_engine())
    return core_lab


@pytest.fixture(scope="module", autouse=True)
def configs_as_found(discovered: LabHandle) -> Iterator[None]:
    """The lab's devices as this module found them, for the modules after it."""
    with configs_kept("r1"):
        yield


def test_order_traffic_outage_termination_and_the_final_invoice(
        discovered: LabHandle, tmp_path: Path) -> None:
    lab = discovered
    engine = get_engine()
    catalogue = tmp_path / "journey.yaml"
    catalogue.write_text(CATALOGUE)
    loaded = cli("bss", "offerings", "load", str(catalogue))
    assert loaded.returncode == 0, loaded.stderr
    customer = cli_json("bss", "customers", "add", "Journey Ltd")["id"]
    account = cli_json("bss", "accounts", "add", "--customer", customer,
                       "--tax-rate", "0.21")["id"]
    site = cli_json("bss", "sites", "add", "--customer", customer, "--name", "HQ",
                    "--device", "r1", "--port", "eth4", "--link-address", "100.64.12.1/24",
                    "--customer-address", "100.64.12.2", "--host", "cust2")["id"]
    quick = LabReachProbe(lab.name, patience_s=3)
    assert not quick.reach("cust2", SERVER)[0], "cust2 reaches the server before its order"

    order = cli_json("order", "create", "--customer", customer, "--site", site,
                     "--offering", "journey-internet", "--param", "reference=PO-J1",
                     "--lab", lab.name)
    assert order["state"] == "completed", order["errorMessage"]
    with Session(engine) as s:
        product = s.exec(select(Product).where(Product.order_id == order["id"])).one()
    product_id = product.id
    terminated = False
    try:
        assert product.status == "active" and product.activated_at is not None
        assert quick.reach("cust2", SERVER)[0]

        # -- usage: real bytes through the customer's port, counted by the poller -------
        p = poller()
        cycle(p)
        time.sleep(SNMPD_CACHE_S)
        cycle(p)
        nbytes = 20_000_000
        report = lab.lab.traffic("cust2", "srv1", nbytes)
        assert report.bytes_received == nbytes
        time.sleep(SNMPD_CACHE_S)
        cycle(p)

        # -- an outage of the customer's link, measured ---------------------------------
        since = datetime.now(UTC)
        with Running(lab, FaultSettings()):
            time.sleep(1)
            down_at = time.monotonic()
            lab.lab.set_link("r1", "eth4", up=False)
            try:
                def root_on_eth4() -> Alarm | None:
                    with Session(engine) as s:
                        return s.exec(select(Alarm).where(
                            Alarm.device == "r1", Alarm.resource == "eth4",
                            Alarm.problem == "link-down", col(Alarm.cleared_at).is_(None),
                            col(Alarm.raised_at) >= since)).first()

                alarm = wait_for("a link-down alarm on r1:eth4", root_on_eth4, 40)
                time.sleep(20)
            finally:
                lab.lab.set_link("r1", "eth4", up=True)
            down_s = time.monotonic() - down_at
            shown = cli_json("alarms", "show", str(alarm.id))
            root_id = alarm.parent_id or alarm.id
            root = cli_json("alarms", "show", str(root_id))
            impacted = {(i["customerId"], i["serviceId"]) for i in root.get("x_impact", [])}
            assert (customer, product_id) in impacted, root.get("x_impact")
            assert shown["id"] == str(alarm.id)

            def cleared() -> bool:
                with Session(engine) as s:
                    a = s.get(Alarm, alarm.id)
                    return a is not None and a.cleared_at is not None
            wait_for("the link-down alarm to clear", cleared, 60)
        assert quick.reach("cust2", SERVER)[0] or LabReachProbe(lab.name).reach(
            "cust2", SERVER)[0], "the service did not come back after the link came up"

        # -- termination: the config goes, the host is cut off ---------------------------
        ended = cli_json("order", "create", "--customer", customer, "--action", "delete",
                         "--product", product_id)
        assert ended["state"] == "completed", ended["errorMessage"]
        terminated = True
        assert "100.64.12.1/24" not in running(lab, "r1")
        assert not quick.reach("cust2", SERVER)[0]
    finally:
        if not terminated:
            cli("order", "create", "--customer", customer, "--action", "delete",
                "--product", product_id)

    with Session(engine) as s:
        product = s.exec(select(Product).where(Product.id == product_id)).one()
        assert product.status == "terminated"
        assert product.activated_at is not None and product.terminated_at is not None
        window = (product.terminated_at - product.activated_at).total_seconds()
        octets = s.exec(select(func.sum(PerfSample.in_octets) + func.sum(PerfSample.out_octets))
                        .where(PerfSample.device == "r1", PerfSample.interface == "eth4",
                               col(PerfSample.t_start) >= product.activated_at)).one()
        seconds = (func.julianday(PerfSample.t_end)
                   - func.julianday(PerfSample.t_start)) * 86400
        pps = col(PerfSample.in_pps) + col(PerfSample.out_pps)
        packets = s.exec(select(func.sum(pps * seconds))
                         .where(PerfSample.device == "r1", PerfSample.interface == "eth4",
                                col(PerfSample.t_start) >= product.activated_at)).one()

    # -- the final invoice -------------------------------------------------------------------
    period = f"{product.activated_at:%Y-%m}"
    bill = cli_json("bill", "run", "--account", account, "--period", period)
    lines = {ln["kind"]: ln for ln in bill["lines"] if ln["product_id"] == product_id}
    assert set(lines) == {"oneTime", "recurring", "usage", "credit"}, bill["lines"]
    assert Decimal(lines["oneTime"]["amount"]) == Decimal("150.00")

    recurring = lines["recurring"]
    period_s = Decimal(recurring["detail"]["period_s"])
    assert Decimal(recurring["detail"]["active_s"]) == pytest.approx(Decimal(window), abs=1)
    fraction = Decimal(recurring["detail"]["active_s"]) / period_s
    assert Decimal(recurring["amount"]) == cents(MONTHLY * fraction)

    usage = lines["usage"]
    billed_octets = Decimal(usage["quantity"]) * Decimal(10**9)
    # what was sent, plus the headers of every data packet and of every ACK back
    assert octets is not None and packets is not None
    assert billed_octets >= nbytes
    # what the poller counted on the port, and what was sent plus the headers of every
    # data packet in and every ACK out
    assert abs(billed_octets - Decimal(octets)) <= Decimal("0.02") * Decimal(octets)
    sent = nbytes * report.attempts + Decimal(packets) * HEADER_OCTETS
    assert abs(billed_octets - sent) <= Decimal("0.02") * sent, (billed_octets, sent)
    exact, per_tier = rate_tiers(Decimal(usage["quantity"]), Decimal(0), TIERS)
    assert Decimal(usage["amount"]) == cents(exact)
    assert len(per_tier) == 2 and Decimal(usage["amount"]) > Decimal("1.00")

    credit = lines["credit"]
    assert Decimal(credit["amount"]) == -cents(Decimal(recurring["amount"]) / 10)
    assert Decimal(credit["amount"]) < 0
    outage_s = Decimal(credit["detail"]["outage_s"])
    assert alarm.id in credit["detail"]["alarm_ids"] or root_id in credit["detail"]["alarm_ids"]
    # the outage is the alarm's life: from the linkDown trap to the linkUp trap
    assert Decimal(down_s) - 10 <= outage_s <= Decimal(down_s) + 30, (outage_s, down_s)

    total = sum((Decimal(ln["amount"]) for ln in bill["lines"]), Decimal(0))
    assert Decimal(bill["subtotal"]) == total
    assert Decimal(bill["subtotal"]) + Decimal(bill["tax"]) == Decimal(bill["total"])
    assert Decimal(bill["tax"]) == cents(total * Decimal("0.21"))

    again = cli_json("bill", "run", "--account", account, "--period", period)
    assert again["id"] == bill["id"] and again["total"] == bill["total"]  # not billed twice
