"""The bill run: periods, prorating, one-time fees, usage by volume tiers and by 95th
percentile, SLA credits from root alarms, tax and totals, no double billing, immutable
issued invoices and credit notes."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agents.fault.model import Alarm
from agents.performance.store import PerfRollup, PerfSample
from bss.billing import (
    BillImmutable,
    BillingError,
    bill_lines,
    bill_period,
    credit_note,
    issue_bill,
    outage_problems,
    rate_tiers,
    run_bill,
)
from bss.model import BillLine, CustomerBill
from tests.unit.bss_factory import (
    FAULT_OUTAGES,
    add,
    make_engine,
    seed_account,
    seed_device,
    seed_link,
    seed_offering,
    seed_product,
)
from topology.db import dispose_engines

NOV_START = datetime(2026, 11, 1, tzinfo=UTC)
NOV_END = datetime(2026, 12, 1, tzinfo=UTC)
NOV_S = (NOV_END - NOV_START).total_seconds()
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
CENT = Decimal("0.01")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(tmp_path)
    seed_account(eng)
    yield eng
    dispose_engines()


def run(engine: Engine, period: str = "2026-11", account: str = "ACC-1",
        **kw: object) -> CustomerBill:
    return run_bill(engine, account, period, now=kw.pop("now", NOW),  # type: ignore[arg-type]
                    outages=FAULT_OUTAGES, **kw)  # type: ignore[arg-type]


def lines_of(engine: Engine, bill_id: str) -> list[BillLine]:
    with Session(engine) as s:
        return bill_lines(s, bill_id)[0]


def cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def at(day: int, hour: int = 0, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


# -- period -----------------------------------------------------------------------------


def test_period_follows_the_bill_cycle_day() -> None:
    p = bill_period("2026-11", 1)
    assert (p.start, p.end) == (NOV_START, NOV_END)
    p = bill_period("2026-12", 15)
    assert (p.start, p.end) == (datetime(2026, 12, 15, tzinfo=UTC),
                                datetime(2027, 1, 15, tzinfo=UTC))
    for bad in ("2026-13", "2026-1", "26-11", "", "2026-11-01"):
        with pytest.raises(BillingError, match="YYYY-MM"):
            bill_period(bad, 1)
    with pytest.raises(BillingError, match="cycle day"):
        bill_period("2026-11", 29)


def test_a_period_not_started_is_refused_and_nothing_is_written(engine: Engine) -> None:
    with pytest.raises(BillingError, match="after now"):
        run(engine, "2027-01")
    with Session(engine) as s:
        assert s.exec(select(CustomerBill)).all() == []


# -- recurring and one-time -----------------------------------------------------------------


def test_recurring_is_prorated_by_the_second_from_activation(engine: Engine) -> None:
    seed_offering(engine, "bi-100", recurring="49.00", one_time="99.00")
    activated = at(10, 12, 0)  # 20.5 days of a 30-day month
    seed_product(engine, "P-1", offering="bi-100", activated_at=activated)
    bill = run(engine)
    lines = {ln.kind: ln for ln in lines_of(engine, bill.id)}
    fraction = Decimal((NOV_END - activated).total_seconds()) / Decimal(NOV_S)
    assert Decimal(lines["recurring"].amount) == cents(Decimal("49.00") * fraction)
    assert Decimal(lines["oneTime"].amount) == Decimal("99.00")
    detail = json.loads(lines["recurring"].detail_json)
    assert Decimal(detail["fraction"]) == fraction
    assert detail["active_s"] == str(Decimal((NOV_END - activated).total_seconds()))
    assert detail["proration"] == "second"
    assert "20.5000 of 30 days" in lines["recurring"].description
    assert lines["recurring"].period_start == activated


def test_final_invoice_is_prorated_to_the_day_and_one_time_only_once(engine: Engine) -> None:
    seed_offering(engine, "bi-100", recurring="30.00", one_time="99.00")
    # active since October, terminated 10 days and 6 hours into November
    seed_product(engine, "P-1", offering="bi-100", activated_at=at(20, month=10),
                 terminated_at=at(11, 6))
    bill = run(engine)
    lines = lines_of(engine, bill.id)
    assert [ln.kind for ln in lines] == ["recurring"]  # the setup fee was October's
    [rec] = lines
    assert Decimal(rec.amount) == cents(Decimal("30.00") * Decimal("10.25") / 30)
    assert "10.2500 of 30 days" in rec.description
    assert rec.period_end == at(11, 6)
    # a product that ended before the period is not billed; a whole period is not prorated
    seed_offering(engine, "bi-old", recurring="30.00")
    seed_product(engine, "P-0", offering="bi-old", activated_at=at(1, month=9),
                 terminated_at=at(30, month=10), interface="eth5")
    seed_product(engine, "P-2", offering="bi-old", activated_at=at(1, month=9),
                 interface="eth6")
    bill = run(engine, "2026-11", redo=True)
    by_product = {ln.product_id: ln for ln in lines_of(engine, bill.id)}
    assert set(by_product) == {"P-1", "P-2"}
    assert by_product["P-2"].amount == "30.00"
    assert "days" not in by_product["P-2"].description


def test_lines_add_up_to_the_total_to_the_cent(engine: Engine) -> None:
    """Three products of 100.00 each active a third of the period: 33.33 three times."""
    seed_offering(engine, "bi", recurring="100.00")
    for i in range(3):
        start = NOV_START + timedelta(days=10 * i)
        seed_product(engine, f"P-{i}", offering="bi", activated_at=start,
                     terminated_at=start + timedelta(days=10), interface=f"eth{i}")
    bill = run(engine)
    lines = lines_of(engine, bill.id)
    assert [ln.amount for ln in lines] == ["33.33"] * 3
    subtotal = sum(Decimal(ln.amount) for ln in lines)
    assert Decimal(bill.subtotal) == subtotal
    assert Decimal(bill.tax) == cents(subtotal * Decimal("0.21"))
    assert Decimal(bill.subtotal) + Decimal(bill.tax) == Decimal(bill.total)
    assert bill.total == str(cents(Decimal("99.99") + cents(Decimal("99.99") * Decimal("0.21"))))
    assert bill.total != str(cents(Decimal(100) * Decimal("1.21")))  # not rounded once overall


def test_mixed_currencies_are_refused_without_writing(engine: Engine) -> None:
    seed_offering(engine, "bi-usd", recurring="10.00", currency="USD")
    seed_product(engine, "P-1", offering="bi-usd", activated_at=at(2))
    with pytest.raises(BillingError, match=r"USD.*EUR"):
        run(engine)
    with Session(engine) as s:
        assert s.exec(select(CustomerBill)).all() == []


# -- usage ------------------------------------------------------------------------------


def sample(t_end: datetime, *, in_octets: int = 0, out_octets: int = 0,
           in_bps: float | None = None, out_bps: float | None = None,
           interface: str = "eth4", step_s: int = 60) -> PerfSample:
    return PerfSample(device="r1", interface=interface,
                      t_start=t_end - timedelta(seconds=step_s), t_end=t_end,
                      t_end_s=math.floor(t_end.timestamp()), in_octets=in_octets,
                      out_octets=out_octets, in_bps=in_bps, out_bps=out_bps)


TIERS = [{"up_to": "100", "amount": "0"}, {"up_to": "1000", "amount": "0.05"},
         {"up_to": None, "amount": "0.02"}]


def test_rate_tiers_prices_the_units_in_each_tier() -> None:
    amount, per_tier = rate_tiers(Decimal("1500"), Decimal(0), TIERS)
    assert amount == 900 * Decimal("0.05") + 500 * Decimal("0.02")
    assert [t["units"] for t in per_tier] == ["100", "900", "500"]
    amount, _ = rate_tiers(Decimal("50"), Decimal(0), TIERS)
    assert amount == 0
    assert rate_tiers(Decimal("3"), Decimal("1.5"), [])[0] == Decimal("4.5")
    with pytest.raises(BillingError, match="only the last"):
        rate_tiers(Decimal(1), Decimal(0), [{"up_to": None, "amount": "1"},
                                            {"up_to": "5", "amount": "1"}])
    with pytest.raises(BillingError, match="not above"):
        rate_tiers(Decimal(1), Decimal(0), [{"up_to": "5", "amount": "1"},
                                            {"up_to": "5", "amount": "1"}])


def test_volume_usage_counts_the_ports_octets_in_the_active_window(engine: Engine) -> None:
    seed_offering(engine, "bi-vol", recurring="0", usage={"model": "volume", "unit": "GB"},
                  tiers=TIERS)
    activated = at(3)
    seed_product(engine, "P-1", offering="bi-vol", activated_at=activated)
    gb = 10**9
    rows = [
        sample(activated - timedelta(minutes=5), in_octets=500 * gb),   # before activation
        sample(at(4), in_octets=700 * gb, out_octets=100 * gb),
        sample(at(20), in_octets=300 * gb, out_octets=400 * gb + 123_456_789),
        sample(at(20), in_octets=999 * gb, interface="eth3"),           # another port
        sample(NOV_END + timedelta(minutes=1), in_octets=800 * gb),     # next period
    ]
    add(engine, *rows)
    bill = run(engine)
    [usage] = [ln for ln in lines_of(engine, bill.id) if ln.kind == "usage"]
    total_gb = Decimal(700 + 100 + 300 + 400) + Decimal(123_456_789) / Decimal(gb)
    assert Decimal(usage.quantity) == total_gb
    expected = 900 * Decimal("0.05") + (total_gb - 1000) * Decimal("0.02")
    assert Decimal(usage.amount) == cents(expected)
    detail = json.loads(usage.detail_json)
    assert detail["raw_samples"] == 2
    assert [t["units"] for t in detail["tiers"]] == ["100", "900", str(total_gb - 1000)]
    assert detail["window"]["start"].startswith("2026-11-03T00:00:00")


def test_p95_uses_five_minute_rates_and_rollups_where_raw_was_pruned(engine: Engine) -> None:
    seed_offering(engine, "transit", recurring="0", usage={"model": "p95", "unit": "Mbps"},
                  usage_amount="2.00", usage_unit="Mbps")
    seed_product(engine, "P-1", offering="transit", activated_at=at(1))
    base = at(5)
    rates = [(i % 100 + 1) * 1_000_000.0 for i in range(100)]  # 1..100 Mbps, one per bucket
    raw, rolled = [], []
    for i, r in enumerate(rates):
        bucket = base + timedelta(minutes=5 * i)
        if i % 2:  # two raw samples in the bucket: the bucket's mean is r (in direction)
            raw.append(sample(bucket + timedelta(minutes=1), in_bps=r - 500_000,
                              out_bps=1000.0))
            raw.append(sample(bucket + timedelta(minutes=2), in_bps=r + 500_000,
                              out_bps=2000.0))
        else:  # pruned: only the 5-minute roll-up is left (the larger direction is out)
            rolled.append(PerfRollup(period_s=300, bucket_start=bucket,
                                     bucket_start_s=math.floor(bucket.timestamp()),
                                     device="r1", interface="eth4", samples=5,
                                     avg_in_bps=10.0, avg_out_bps=r))
    # a short spike inside one bucket does not make a 5-minute rate on its own
    raw.append(sample(base + timedelta(minutes=5 * 99 + 3), in_bps=100_000_000.0,
                      out_bps=0.0))
    add(engine, *raw, *rolled)
    bill = run(engine)
    [usage] = [ln for ln in lines_of(engine, bill.id) if ln.kind == "usage"]
    ordered = sorted(rates)
    p95_bps = ordered[math.ceil(0.95 * len(ordered)) - 1]
    assert Decimal(usage.quantity) == Decimal(p95_bps) / 10**6  # 95 Mbps
    assert Decimal(usage.amount) == cents(Decimal(p95_bps) / 10**6 * 2)
    detail = json.loads(usage.detail_json)
    assert detail["buckets"] == 100
    assert detail["rollup_buckets"] == 50
    assert detail["raw_samples"] == 101


# -- SLA credits ------------------------------------------------------------------------


def alarm(device: str, resource_type: str, resource: str, problem: str, raised: datetime,
          cleared: datetime | None, *, device_id: int | None = None,
          interface_id: int | None = None, link_id: int | None = None,
          parent_id: int | None = None, source: str = "trap") -> Alarm:
    return Alarm(key=f"{device}|{resource_type}:{resource}|{problem}|{raised}",
                 device=device, device_id=device_id, resource_type=resource_type,
                 resource=resource, interface_id=interface_id, link_id=link_id,
                 problem=problem, rule=problem, alarm_type="communicationsAlarm",
                 probable_cause="lossOfSignal", severity="major",
                 state="cleared" if cleared else "raised", source=source,
                 raised_at=raised, changed_at=raised, last_seen=raised, cleared_at=cleared,
                 parent_id=parent_id)


def add_alarm(engine: Engine, a: Alarm) -> int:
    with Session(engine) as s:
        s.add(a)
        s.commit()
        assert a.id is not None
        return a.id


SLA = {"availability_pct": "99.9", "credit_pct_of_recurring": "10"}


def test_sla_credit_from_the_union_of_overlapping_root_outages(engine: Engine) -> None:
    r1 = seed_device(engine, "r1", ["eth1", "eth3", "eth4"])
    r2 = seed_device(engine, "r2", ["eth1"])
    seed_offering(engine, "bi", recurring="49.00", sla=SLA)
    seed_product(engine, "P-1", offering="bi", activated_at=at(1))
    link_down = add_alarm(engine, alarm("r1", "interface", "eth4", "link-down", at(5, 10),
                                        at(5, 10, 40), device_id=r1[""],
                                        interface_id=r1["eth4"]))
    unreachable = add_alarm(engine, alarm("r1", "device", "r1", "device-unreachable",
                                          at(5, 10, 20), at(5, 11), device_id=r1[""]))
    # a child: its time is its root's, never counted on its own
    add_alarm(engine, alarm("r1", "interface", "eth4", "link-down", at(7), at(7, 5),
                            device_id=r1[""], interface_id=r1["eth4"], parent_id=unreachable))
    # not this product: another port, another link, a threshold alarm on the port
    add_alarm(engine, alarm("r1", "interface", "eth3", "link-down", at(8), at(8, 5),
                            device_id=r1[""], interface_id=r1["eth3"]))
    core = seed_link(engine, r1["eth1"], r2["eth1"])
    add_alarm(engine, alarm("r1", "link", "r1:eth1--r2:eth1", "link-down", at(9), at(9, 5),
                            link_id=core, source="correlation"))
    add_alarm(engine, alarm("r1", "interface", "eth4", "high-utilisation", at(10), at(12),
                            device_id=r1[""], interface_id=r1["eth4"]))
    bill = run(engine)
    lines = {ln.kind: ln for ln in lines_of(engine, bill.id)}
    credit = lines["credit"]
    detail = json.loads(credit.detail_json)
    assert detail["alarm_ids"] == sorted([link_down, unreachable])
    assert Decimal(detail["outage_minutes"]) == 60  # 10:00-11:00, not 40 + 40
    minutes = Decimal(NOV_S) / 60
    assert Decimal(detail["availability_pct"]) == (1 - 60 / minutes) * 100
    assert Decimal(credit.amount) == -cents(Decimal("49.00") * Decimal("0.10"))
    assert Decimal(bill.subtotal) == Decimal("49.00") + Decimal(credit.amount)


def test_no_credit_within_target_and_link_alarms_on_the_port_count(engine: Engine) -> None:
    r1 = seed_device(engine, "r1", ["eth4"])
    cust = seed_device(engine, "cust2", ["eth1"], role="host")
    seed_offering(engine, "bi", recurring="49.00", sla=SLA)
    seed_product(engine, "P-1", offering="bi", activated_at=at(1))
    link = seed_link(engine, r1["eth4"], cust["eth1"])
    add_alarm(engine, alarm("r1", "link", "r1:eth4--cust2:eth1", "link-down", at(3),
                            at(3, 0, 30), link_id=link, source="correlation"))
    bill = run(engine)
    assert "credit" not in {ln.kind for ln in lines_of(engine, bill.id)}  # 30 min < 43.2
    # an alarm still open counts up to now; clipped to the product's window
    add_alarm(engine, alarm("r1", "interface", "eth4", "link-down", at(30, 23, 0), None,
                            device_id=r1[""], interface_id=r1["eth4"]))
    bill = run(engine, redo=True)
    [credit] = [ln for ln in lines_of(engine, bill.id) if ln.kind == "credit"]
    assert Decimal(json.loads(credit.detail_json)["outage_minutes"]) == 30 + 60


def test_outage_problems_come_from_the_fault_rules(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_HOME", str(tmp_path))
    problems = outage_problems()
    assert {"link-down", "device-unreachable"} <= problems
    assert "high-utilisation" not in problems


# -- repeats, immutability, credit notes ------------------------------------------------


def test_a_repeated_run_returns_the_same_invoice(engine: Engine) -> None:
    seed_offering(engine, "bi", recurring="49.00")
    seed_product(engine, "P-1", offering="bi", activated_at=at(2))
    first = run(engine)
    seed_product(engine, "P-2", offering="bi", activated_at=at(3), interface="eth5")
    again = run(engine, now=NOW + timedelta(days=1))
    assert again.id == first.id and again.total == first.total
    with Session(engine) as s:
        assert len(s.exec(select(CustomerBill)).all()) == 1
        assert len(s.exec(select(BillLine)).all()) == 1
    assert first.number == "INV-2026-000001"
    redone = run(engine, redo=True)
    assert redone.id == first.id
    assert len(lines_of(engine, first.id)) == 2


def test_numbers_are_sequential_per_year(engine: Engine) -> None:
    seed_account(engine, "ACC-2", customer="CUST-2", name="Beta")
    assert run(engine).number == "INV-2026-000001"
    assert run(engine, account="ACC-2").number == "INV-2026-000002"
    assert run(engine, "2026-12", now=datetime(2027, 1, 2, tzinfo=UTC)).number == \
        "INV-2027-000001"


def test_issued_invoice_is_immutable(engine: Engine) -> None:
    seed_offering(engine, "bi", recurring="49.00")
    seed_product(engine, "P-1", offering="bi", activated_at=at(2))
    bill = run(engine)
    issued = issue_bill(engine, bill.id, now=NOW)
    assert (issued.state, issued.issued_at) == ("issued", NOW)
    with pytest.raises(BillImmutable):
        issue_bill(engine, bill.id)
    with pytest.raises(BillImmutable, match="credit note"):
        run(engine, redo=True)
    with Session(engine) as s:
        row = s.get(CustomerBill, bill.id)
        assert row is not None
        row.total = "0.00"
        s.add(row)
        with pytest.raises(BillImmutable):
            s.commit()
    with Session(engine) as s:
        s.add(BillLine(bill_id=bill.id, kind="adjustment", description="sneaky",
                       amount="-49.00"))
        with pytest.raises(BillImmutable):
            s.commit()
    with Session(engine) as s:
        [line] = s.exec(select(BillLine).where(BillLine.bill_id == bill.id)).all()
        s.delete(line)
        with pytest.raises(BillImmutable):
            s.commit()
    with Session(engine) as s:
        row = s.get(CustomerBill, bill.id)
        assert row is not None and row.total == bill.total
        assert len(s.exec(select(BillLine).where(BillLine.bill_id == bill.id)).all()) == 1


def test_credit_note_corrects_an_issued_invoice(engine: Engine) -> None:
    seed_offering(engine, "bi", recurring="49.00", one_time="99.00")
    seed_product(engine, "P-1", offering="bi", activated_at=at(2))
    bill = run(engine)
    with pytest.raises(BillImmutable, match="issued invoice"):
        credit_note(engine, bill.id, amount="10.00", reason="goodwill")
    issue_bill(engine, bill.id, now=NOW)
    for kw, msg in (({"amount": "0"}, "positive"), ({"amount": "1.005"}, "2 decimals"),
                    ({"amount": "1000.00"}, "more than"), ({}, "either"),
                    ({"amount": "1", "line_ids": [1]}, "either"),
                    ({"line_ids": [9999]}, "not a line")):
        with pytest.raises(BillingError, match=msg):
            credit_note(engine, bill.id, reason="x", now=NOW, **kw)  # type: ignore[arg-type]
    with pytest.raises(BillingError, match="reason"):
        credit_note(engine, bill.id, amount="1", reason="  ")
    setup = next(ln for ln in lines_of(engine, bill.id) if ln.kind == "oneTime")
    assert setup.id is not None
    note = credit_note(engine, bill.id, line_ids=[setup.id], reason="installation waived",
                       now=NOW)
    assert (note.kind, note.corrects_id, note.state) == ("credit-note", bill.id, "issued")
    assert note.number == "CN-2026-000001"
    assert note.subtotal == "-99.00"
    assert note.tax == str(-cents(Decimal("99.00") * Decimal("0.21")))
    assert Decimal(note.subtotal) + Decimal(note.tax) == Decimal(note.total)
    [cn_line] = lines_of(engine, note.id)
    assert json.loads(cn_line.detail_json)["credits_line"] == setup.id
    second = credit_note(engine, bill.id, amount="1.00", reason="again", now=NOW)
    assert (second.number, second.subtotal) == ("CN-2026-000002", "-1.00")
    left = Decimal(bill.subtotal) - Decimal("99.00") - Decimal("1.00")
    with pytest.raises(BillingError, match="more than"):  # the notes together, not each
        credit_note(engine, bill.id, amount=str(left + Decimal("0.01")), reason="too much")
    assert credit_note(engine, bill.id, amount=str(left), reason="the rest").subtotal == str(-left)
    with Session(engine) as s:  # the invoice itself did not change
        inv = s.get(CustomerBill, bill.id)
        assert inv is not None and inv.total == bill.total
