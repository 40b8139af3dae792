"""The bill run: one invoice per billing account and period, from what the network measured.

    run_bill(engine, "ACC-1", "2026-11")       -> the invoice (CustomerBill + BillLine rows)
    issue_bill(engine, "INV-2026-000001")      new -> issued (immutable from then on)
    credit_note(engine, "INV-...", amount=..., reason=...)   a correction, as its own bill

Period
    ``"YYYY-MM"`` with the account's ``bill_cycle_day`` d (1..28) is from the d-th of that
    month 00:00 UTC to the d-th of the next month 00:00 UTC: "2026-11" with d = 1 is
    2026-11-01 to 2026-12-01, with d = 15 it is 2026-11-15 to 2026-12-15. A period that
    has not started yet is refused. A run while the period is still open bills what is
    known at ``now`` (usage up to now; an alarm still open counts as an outage up to now).

Which products
    Every product of the account with an activation time (``activated_at``, when the
    device confirmed) whose active window [activated_at, terminated_at or +inf) overlaps
    the period. Its active window in the period is that window clipped to the period.

Lines (each computed exactly and rounded ONCE by the currency's rule, see
:mod:`bss.money`; the details are kept in ``detail_json``)
    oneTime    each oneTime price, in the period where ``activated_at`` falls.
    recurring  each monthly recurring price x active seconds / the period's seconds.
               Prorating is by the second, from the device's confirmation to the
               termination, so a final invoice is prorated to the day and within it:
               10 days 6 hours of a 30-day period bill 10.25/30 of the month. The
               fraction, the seconds and the days are kept.
    usage      as the offering's ``usage_json`` says:
               volume: (sum of in_octets + out_octets) / 1e9 GB of the product's
               device and interface over its active window, rated by the usage price's
               tiers (each tier prices the gigabytes that fall in it);
               p95: the 5-minute rates (per 5-minute bucket the mean in_bps and the
               mean out_bps of its samples, the larger of the two), sorted; the 95th
               percentile by nearest rank (the value at rank ceil(0.95 n)), in Mbps,
               times the usage price per Mbps (tiers apply the same way).
               A sample belongs to the window holding its ``t_end`` (as in the store).
               Where the raw samples of a 5-minute bucket were pruned, that bucket's
               5-minute roll-up (period_s 300) is used instead (its octet sums; its
               average rates); older data kept only hourly is not billed.
    credit     the SLA credit: the outage is the union of the intervals
               [raised_at, cleared_at or the period's end (or now, if earlier)] of the
               ROOT alarms (``parent_id`` None) whose tree (the root and its descendants,
               as :mod:`agents.fault.alarms` computes impact) holds an outage alarm on
               the product's device (device-level), its interface, or a link with the
               interface as an end; clipped to the product's active window. An outage
               alarm is one whose problem means ``link-down`` or ``device-down`` in the
               fault rules in force (link-down, device-unreachable with the shipped
               rules): a threshold alarm impacts a service but is not an outage.
               Availability = 1 - outage seconds / active seconds; below the offering's
               ``availability_pct`` the credit is ``credit_pct_of_recurring`` percent of
               the product's recurring lines of the period (as billed), negative.
    tax        not a line: the bill's ``tax`` = the subtotal (sum of the rounded lines)
               x the account's ``tax_rate``, rounded once; total = subtotal + tax.

Immutability, repeats, corrections
    One invoice per account and period (a unique constraint): a repeated run returns the
    existing invoice and bills nothing twice; ``redo=True`` rebuilds one that is still
    ``new`` (same number) and is refused for an issued one. ``issue_bill`` moves new ->
    issued; from then on every ORM update or delete of the bill or of its lines is
    refused (:class:`BillImmutable`, enforced by mapper events for every caller of the
    ORM). A correction is a credit note (``kind`` credit-note, ``corrects_id`` the
    invoice): an amount (tax-exclusive) or whole lines of the invoice, negated, with the
    invoice's tax rate; it is issued as it is made and never credits more than the
    invoice's subtotal. Numbers are sequential per calendar year of creation:
    INV-2026-000001, ... and CN-2026-000001, ...; a bill's id is its number.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Connection, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapper
from sqlmodel import Session, col
from sqlmodel import select as sm_select

from bss.model import (
    BillingAccount,
    BillLine,
    CustomerBill,
    Product,
    ProductOffering,
    ProductOfferingPrice,
    loads,
)
from bss.money import Money, MoneyError, minor_units, parse_decimal, round_amount
from topology.errors import SwitchboardError
from topology.inventory import utcnow
from topology.queries import NotFound

__all__ = [
    "BillImmutable",
    "BillNotFound",
    "BillingError",
    "Interval",
    "bill_lines",
    "bill_period",
    "credit_note",
    "get_bill",
    "issue_bill",
    "list_bills",
    "merge_intervals",
    "outage_problems",
    "p95",
    "rate_tiers",
    "run_bill",
]

PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
ROLLUP_S = 300
GB = Decimal(10) ** 9
MBPS = Decimal(10) ** 6
QUANTITY_STEP = Decimal("0.000001")  # Mbps quantities: to the bps
OUTAGE_MEANS = ("link-down", "device-down")


class BillingError(SwitchboardError):
    """A bill run, an issue or a credit note was refused (the reason says why)."""


class BillNotFound(NotFound, BillingError):
    """No bill with that id."""


class BillImmutable(BillingError):
    """The bill is issued (or otherwise not in a state that allows the change)."""

    def __init__(self, message: str, *, bill_id: str | None = None) -> None:
        super().__init__(message)
        self.bill_id = bill_id


# --------------------------------------------------------------------------- immutability


def _state_in_db(connection: Connection, bill_id: str) -> str | None:
    table = CustomerBill.__table__  # type: ignore[attr-defined]
    row = connection.execute(select(table.c.state).where(table.c.id == bill_id)).first()
    return None if row is None else str(row[0])


@event.listens_for(CustomerBill, "before_update")
@event.listens_for(CustomerBill, "before_delete")
def _bill_frozen(_mapper: Mapper[Any], connection: Connection, target: CustomerBill) -> None:
    if _state_in_db(connection, target.id) == "issued":
        raise BillImmutable(f"bill {target.id} is issued and cannot be changed; "
                            "correct it with a credit note", bill_id=target.id)


@event.listens_for(BillLine, "before_insert")
@event.listens_for(BillLine, "before_update")
@event.listens_for(BillLine, "before_delete")
def _line_frozen(_mapper: Mapper[Any], connection: Connection, target: BillLine) -> None:
    if _state_in_db(connection, target.bill_id) == "issued":
        raise BillImmutable(f"bill {target.bill_id} is issued: its lines cannot be changed; "
                            "correct it with a credit note", bill_id=target.bill_id)


# --------------------------------------------------------------------------- time


@dataclass(frozen=True)
class Interval:
    """[start, end) in UTC."""

    start: datetime
    end: datetime

    @property
    def seconds(self) -> Decimal:
        return _seconds(self.end - self.start)


def _seconds(delta: timedelta) -> Decimal:
    """A timedelta as exact seconds."""
    return (Decimal(delta.days * 86400 + delta.seconds)
            + Decimal(delta.microseconds) / Decimal(10**6))


def merge_intervals(intervals: Iterable[Interval]) -> list[Interval]:
    """The union of the intervals, as disjoint sorted intervals (empty ones dropped)."""
    out: list[Interval] = []
    for iv in sorted((i for i in intervals if i.end > i.start), key=lambda i: i.start):
        if out and iv.start <= out[-1].end:
            if iv.end > out[-1].end:
                out[-1] = Interval(out[-1].start, iv.end)
        else:
            out.append(iv)
    return out


def bill_period(period: str, bill_cycle_day: int) -> Interval:
    """The period "YYYY-MM" for an account billed on day ``bill_cycle_day``: from that day
    of the month 00:00 UTC to the same day of the next month."""
    m = PERIOD_RE.match(period or "")
    if m is None:
        raise BillingError(f"period {period!r}: expected YYYY-MM (e.g. 2026-11)")
    if not 1 <= bill_cycle_day <= 28:
        raise BillingError(f"bill cycle day {bill_cycle_day}: must be 1 to 28")
    year, month = int(m.group(1)), int(m.group(2))
    start = datetime(year, month, bill_cycle_day, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, bill_cycle_day, tzinfo=UTC)
    return Interval(start, end)


def _epoch(at: datetime) -> int:
    return math.floor(at.timestamp())


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


# --------------------------------------------------------------------------- rating


def rate_tiers(quantity: Decimal, unit_price: Decimal,
               tiers: Sequence[dict[str, Any]]) -> tuple[Decimal, list[dict[str, str]]]:
    """The exact (unrounded) amount for ``quantity`` units and the units per tier.

    Without tiers: quantity x unit_price. With tiers (``[{"up_to", "amount"}, ...]``,
    ascending, ``up_to`` null only on the last): each tier prices the units between the
    previous tier's ``up_to`` and its own; units above a last finite ``up_to`` are priced
    at the last tier's amount.
    """
    if quantity < 0:
        raise BillingError(f"usage quantity {quantity} is negative")
    if not tiers:
        return quantity * unit_price, []
    out: list[dict[str, str]] = []
    total = Decimal(0)
    low = Decimal(0)
    last_price = Decimal(0)
    for i, tier in enumerate(tiers):
        if not isinstance(tier, dict) or "amount" not in tier:
            raise BillingError(f"tier {i + 1}: expected {{'up_to', 'amount'}}, got {tier!r}")
        price = parse_decimal(tier["amount"], f"tier {i + 1} amount")
        raw_up = tier.get("up_to")
        up = None if raw_up is None else parse_decimal(raw_up, f"tier {i + 1} up_to")
        if up is not None and up <= low:
            raise BillingError(f"tier {i + 1}: up_to {up} is not above the previous tier's "
                               f"{low}")
        if up is None and i != len(tiers) - 1:
            raise BillingError(f"tier {i + 1}: only the last tier may have no up_to")
        high = quantity if up is None else min(quantity, up)
        units = max(Decimal(0), high - low)
        total += units * price
        out.append({"from": str(low), "up_to": "" if up is None else str(up),
                    "units": str(units), "unit_price": str(price),
                    "amount": str(units * price)})
        last_price = price
        if up is None:
            low = quantity
            break
        low = up
    if quantity > low:  # above a last finite tier
        units = quantity - low
        total += units * last_price
        out.append({"from": str(low), "up_to": "", "units": str(units),
                    "unit_price": str(last_price), "amount": str(units * last_price)})
    return total, out


def p95(rates: Sequence[float]) -> float | None:
    """The 95th percentile by nearest rank: the value at rank ceil(0.95 n) of the sorted
    rates (the top 5 percent of the buckets are discarded); None without rates."""
    if not rates:
        return None
    ordered = sorted(rates)
    return ordered[max(0, math.ceil(Decimal("0.95") * len(ordered)) - 1)]


# --------------------------------------------------------------------------- lines


@dataclass
class _Line:
    kind: str
    description: str
    product_id: str | None
    amount: Money  # exact; rounded once when stored
    quantity: Decimal = Decimal(1)
    unit: str = ""
    unit_price: Decimal = Decimal(0)
    window: Interval | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def row(self, bill_id: str) -> BillLine:
        return BillLine(
            bill_id=bill_id, product_id=self.product_id, kind=self.kind,
            description=self.description, quantity=str(self.quantity), unit=self.unit,
            unit_price=str(self.unit_price), amount=self.amount.rounded().text(),
            period_start=self.window.start if self.window else None,
            period_end=self.window.end if self.window else None,
            detail_json=json.dumps(self.detail, default=str))


def outage_problems(rules: Any | None = None) -> frozenset[str]:
    """Problems that are outages: those the fault rules in force say mean ``link-down`` or
    ``device-down``, and the correlated link alarm's ``link-down``."""
    if rules is None:
        from agents.fault.rules import load_fault_rules
        from agents.fault.settings import load_fault_settings

        rules = load_fault_rules(load_fault_settings().rules_file)
    names = {"link-down"}
    names.update(r.problem for r in rules.traps if r.means in OUTAGE_MEANS)
    names.update(e.name for e in rules.events.values() if e.means in OUTAGE_MEANS)
    return frozenset(names)


class _Run:
    """One account's lines for one period (reads only)."""

    def __init__(self, session: Session, account: BillingAccount, period: Interval,
                 now: datetime, outages: frozenset[str]) -> None:
        self.s = session
        self.account = account
        self.period = period
        self.now = now
        self.outages = outages
        self.currency = account.currency

    # -- helpers -----------------------------------------------------------------------

    def _money(self, price: ProductOfferingPrice, offering: ProductOffering) -> Decimal:
        if price.currency != self.currency:
            raise BillingError(f"price {price.id} of offering {offering.id} is in "
                               f"{price.currency} but account {self.account.id} is billed "
                               f"in {self.currency}: currencies are never mixed")
        try:
            return parse_decimal(price.amount, f"price {price.id} amount")
        except MoneyError as exc:
            raise BillingError(str(exc)) from None

    def products(self) -> list[Product]:
        rows = self.s.exec(sm_select(Product).where(
            Product.billing_account_id == self.account.id,
            col(Product.activated_at).is_not(None),
            col(Product.activated_at) < self.period.end,
        ).order_by(col(Product.activated_at), col(Product.id))).all()
        return [p for p in rows
                if p.terminated_at is None or p.terminated_at > self.period.start]

    def window(self, p: Product) -> Interval | None:
        assert p.activated_at is not None
        start = max(p.activated_at, self.period.start)
        end = min(p.terminated_at or self.period.end, self.period.end)
        return Interval(start, end) if end > start else None

    # -- lines -------------------------------------------------------------------------

    def lines(self) -> list[_Line]:
        out: list[_Line] = []
        for p in self.products():
            win = self.window(p)
            if win is None:
                continue
            offering = self.s.get(ProductOffering, p.offering_id)
            if offering is None:
                raise BillingError(f"product {p.id}: offering {p.offering_id!r} is not in "
                                   "the catalogue")
            prices = list(self.s.exec(sm_select(ProductOfferingPrice).where(
                ProductOfferingPrice.offering_id == offering.id).order_by(
                col(ProductOfferingPrice.id))).all())
            out.extend(self._one_time(p, offering, prices))
            recurring = self._recurring(p, offering, prices, win)
            out.extend(recurring)
            usage = self._usage(p, offering, prices, win)
            if usage is not None:
                out.append(usage)
            credit = self._sla(p, offering, win, recurring)
            if credit is not None:
                out.append(credit)
        return out

    def _one_time(self, p: Product, o: ProductOffering,
                  prices: list[ProductOfferingPrice]) -> list[_Line]:
        assert p.activated_at is not None
        if not self.period.start <= p.activated_at < self.period.end:
            return []
        return [_Line("oneTime", f"{o.name}: {pr.name}", p.id,
                      Money(self._money(pr, o), self.currency), unit_price=self._money(pr, o),
                      window=Interval(p.activated_at, p.activated_at),
                      detail={"price_id": pr.id, "activated_at": _iso(p.activated_at)})
                for pr in prices if pr.price_type == "oneTime"]

    def _recurring(self, p: Product, o: ProductOffering, prices: list[ProductOfferingPrice],
                   win: Interval) -> list[_Line]:
        out = []
        period_s = self.period.seconds
        fraction = win.seconds / period_s
        for pr in prices:
            if pr.price_type != "recurring":
                continue
            if pr.period not in (None, "", "month"):
                raise BillingError(f"price {pr.id}: recurring period {pr.period!r} is not "
                                   "supported (month only)")
            unit_price = self._money(pr, o)
            days = (win.seconds / Decimal(86400)).quantize(Decimal("0.0001"), ROUND_HALF_UP)
            period_days = period_s / Decimal(86400)
            whole = win.start == self.period.start and win.end == self.period.end
            text = f"{o.name}: {pr.name}" + ("" if whole else
                                             f", {days} of {period_days} days")
            out.append(_Line(
                "recurring", text, p.id, Money(unit_price * fraction, self.currency),
                quantity=fraction, unit="month", unit_price=unit_price, window=win,
                detail={"price_id": pr.id, "proration": "second",
                        "active_from": _iso(win.start), "active_to": _iso(win.end),
                        "active_s": str(win.seconds), "period_s": str(period_s),
                        "fraction": str(fraction), "active_days": str(days),
                        "period_days": str(period_days),
                        "exact_amount": str(unit_price * fraction)}))
        return out

    # -- usage -------------------------------------------------------------------------

    def _usage(self, p: Product, o: ProductOffering, prices: list[ProductOfferingPrice],
               win: Interval) -> _Line | None:
        usage = loads(o.usage_json, {})
        model = usage.get("model") if isinstance(usage, dict) else None
        if not model:
            return None
        if model not in ("volume", "p95"):
            raise BillingError(f"offering {o.id}: usage model {model!r} is not volume or p95")
        price = next((pr for pr in prices if pr.price_type == "usage"), None)
        if price is None:
            raise BillingError(f"offering {o.id} rates usage by {model} but has no usage "
                               "price")
        unit_price = self._money(price, o)
        tiers = loads(price.tiers_json, [])
        if not isinstance(tiers, list):
            raise BillingError(f"price {price.id}: tiers_json is not a list")
        series = _Series.read(self.s, p.device, p.interface, win)
        detail: dict[str, Any] = {"model": model, "price_id": price.id,
                                  "device": p.device, "interface": p.interface,
                                  "window": {"start": _iso(win.start), "end": _iso(win.end)},
                                  "as_of": _iso(min(self.now, win.end)),
                                  "raw_samples": series.raw_samples,
                                  "rollup_buckets": series.rollup_buckets}
        if model == "volume":
            quantity = Decimal(series.octets_in + series.octets_out) / GB
            unit = price.unit or "GB"
            detail.update(in_octets=series.octets_in, out_octets=series.octets_out,
                          gb=str(quantity))
            text = f"{o.name}: traffic {quantity.quantize(Decimal('0.001'))} GB"
        else:
            rates = series.rates_bps()
            top = p95(rates)
            quantity = (Decimal(0) if top is None else
                        (Decimal(repr(top)) / MBPS).quantize(QUANTITY_STEP, ROUND_HALF_UP))
            unit = price.unit or "Mbps"
            detail.update(buckets=len(rates), p95_bps=top, p95_mbps=str(quantity),
                          percentile_rank=(math.ceil(Decimal("0.95") * len(rates))
                                           if rates else 0))
            text = f"{o.name}: 95th percentile {quantity.quantize(Decimal('0.001'))} Mbps"
        amount, per_tier = rate_tiers(quantity, unit_price, tiers)
        detail["tiers"] = per_tier
        detail["exact_amount"] = str(amount)
        effective = (unit_price if not tiers else
                     (amount / quantity).quantize(QUANTITY_STEP) if quantity else Decimal(0))
        return _Line("usage", text, p.id, Money(amount, self.currency), quantity=quantity,
                     unit=unit, unit_price=effective, window=win, detail=detail)

    # -- SLA ---------------------------------------------------------------------------

    def _sla(self, p: Product, o: ProductOffering, win: Interval,
             recurring: list[_Line]) -> _Line | None:
        sla = loads(o.sla_json, {})
        if not isinstance(sla, dict) or "availability_pct" not in sla:
            return None
        try:
            target = parse_decimal(str(sla["availability_pct"]), "availability_pct")
            credit_pct = parse_decimal(str(sla.get("credit_pct_of_recurring", "0")),
                                       "credit_pct_of_recurring")
        except MoneyError as exc:
            raise BillingError(f"offering {o.id} SLA: {exc}") from None
        alarms, outage = _outage(self.s, p, win, min(self.now, win.end), self.outages)
        outage_s = sum((iv.seconds for iv in outage), Decimal(0))
        availability = Decimal(1) - outage_s / win.seconds
        availability_pct = availability * 100
        if availability_pct >= target or credit_pct <= 0:
            return None
        billed = sum((r.amount.rounded().amount for r in recurring), Decimal(0))
        credit = -(billed * credit_pct / 100)
        minutes = (outage_s / 60).quantize(Decimal("0.01"), ROUND_HALF_UP)
        shown = availability_pct.quantize(Decimal("0.001"), ROUND_HALF_UP)
        return _Line(
            "credit", f"{o.name}: SLA credit, availability {shown}% below {target}% "
                      f"({minutes} min of outage)", p.id, Money(credit, self.currency),
            quantity=Decimal(1), unit="", unit_price=credit, window=win,
            detail={"availability_pct": str(availability_pct), "target_pct": str(target),
                    "credit_pct_of_recurring": str(credit_pct),
                    "recurring_billed": str(billed), "outage_minutes": str(minutes),
                    "outage_s": str(outage_s), "active_s": str(win.seconds),
                    "alarm_ids": sorted(alarms),
                    "outages": [{"start": _iso(iv.start), "end": _iso(iv.end),
                                 "minutes": str((iv.seconds / 60).quantize(Decimal("0.01")))}
                                for iv in outage]})


@dataclass
class _Series:
    """The product's port's samples in its window: raw where kept, 5-minute roll-ups where
    the raw samples were pruned."""

    raw_samples: int = 0
    rollup_buckets: int = 0
    octets_in: int = 0
    octets_out: int = 0
    buckets: dict[int, tuple[list[float], list[float]]] = field(default_factory=dict)
    rollup_rates: dict[int, float] = field(default_factory=dict)

    @classmethod
    def read(cls, s: Session, device: str, interface: str, win: Interval) -> _Series:
        from agents.performance.store import PerfRollup, PerfSample

        out = cls()
        lo, hi = _epoch(win.start), _epoch(win.end)
        seen_buckets: set[int] = set()
        raw = s.exec(sm_select(PerfSample).where(
            PerfSample.device == device, PerfSample.interface == interface,
            col(PerfSample.t_end_s) >= lo - ROLLUP_S,
            col(PerfSample.t_end_s) <= hi + ROLLUP_S)).all()
        for r in raw:
            bucket = r.t_end_s // ROLLUP_S * ROLLUP_S
            seen_buckets.add(bucket)
            if not win.start < r.t_end <= win.end:
                continue
            out.raw_samples += 1
            out.octets_in += r.in_octets or 0
            out.octets_out += r.out_octets or 0
            ins, outs = out.buckets.setdefault(bucket, ([], []))
            if r.in_bps is not None:
                ins.append(r.in_bps)
            if r.out_bps is not None:
                outs.append(r.out_bps)
        rollups = s.exec(sm_select(PerfRollup).where(
            PerfRollup.period_s == ROLLUP_S, PerfRollup.device == device,
            PerfRollup.interface == interface,
            col(PerfRollup.bucket_start_s) >= lo, col(PerfRollup.bucket_start_s) < hi)).all()
        for ru in rollups:
            if ru.bucket_start_s in seen_buckets:
                continue  # raw samples kept: they count, not the roll-up
            out.rollup_buckets += 1
            out.octets_in += ru.in_octets or 0
            out.octets_out += ru.out_octets or 0
            rates = [v for v in (ru.avg_in_bps, ru.avg_out_bps) if v is not None]
            if rates:
                out.rollup_rates[ru.bucket_start_s] = max(rates)
        return out

    def rates_bps(self) -> list[float]:
        """One rate per 5-minute bucket: the larger of the mean in and mean out rates."""
        rates = dict(self.rollup_rates)
        for bucket, (ins, outs) in self.buckets.items():
            means = [sum(v) / len(v) for v in (ins, outs) if v]
            if means:
                rates[bucket] = max(means)
        return [rates[b] for b in sorted(rates)]


def _outage(s: Session, p: Product, win: Interval, until: datetime,
            outages: frozenset[str]) -> tuple[set[int], list[Interval]]:
    """The alarm ids and the merged outage intervals of the product in ``win`` (open
    alarms count up to ``until``)."""
    from agents.fault.model import Alarm
    from topology.inventory import Device, Interface, Link

    dev = s.exec(sm_select(Device).where(Device.name == p.device)).first()
    dev_id = dev.id if dev is not None else None
    if_id = None
    if dev_id is not None:
        iface = s.exec(sm_select(Interface).where(Interface.device_id == dev_id,
                                                  Interface.name == p.interface)).first()
        if_id = iface.id if iface is not None else None
    port = f"{p.device}:{p.interface}"

    def hits(a: Alarm) -> bool:
        if a.problem not in outages:
            return False
        if a.resource_type == "device":
            return (dev_id is not None and a.device_id == dev_id) or a.device == p.device
        if a.interface_id is not None:
            return if_id is not None and a.interface_id == if_id
        if a.link_id is not None:
            link = s.get(Link, a.link_id)
            if link is not None:
                return if_id is not None and if_id in (link.a_interface_id, link.b_interface_id)
        if a.resource_type == "link":
            return port in a.resource.split("--")
        return a.resource_type == "interface" and a.device == p.device and \
            a.resource == p.interface

    roots = s.exec(sm_select(Alarm).where(
        col(Alarm.parent_id).is_(None), col(Alarm.raised_at) < win.end)).all()
    ids: set[int] = set()
    spans: list[Interval] = []
    for root in roots:
        end = root.cleared_at or until
        if end <= win.start:
            continue
        tree = [root, *_descendants(s, root)]
        if not any(hits(a) for a in tree):
            continue
        span = Interval(max(root.raised_at, win.start), min(end, win.end, until))
        if span.end > span.start:
            spans.append(span)
            if root.id is not None:
                ids.add(root.id)
    return ids, merge_intervals(spans)


def _descendants(s: Session, root: Any) -> list[Any]:
    from agents.fault.model import Alarm

    out: list[Alarm] = []
    seen: set[int] = {root.id} if root.id is not None else set()
    frontier = [root.id]
    while frontier:
        kids = s.exec(sm_select(Alarm).where(col(Alarm.parent_id).in_(frontier))).all()
        frontier = []
        for k in kids:
            if k.id is not None and k.id not in seen:
                seen.add(k.id)
                out.append(k)
                frontier.append(k.id)
    return out


# --------------------------------------------------------------------------- bills


def _next_number(s: Session, prefix: str, year: int) -> str:
    head = f"{prefix}-{year:04d}-"
    numbers = s.exec(sm_select(CustomerBill.number).where(
        col(CustomerBill.number).startswith(head))).all()
    last = max((int(n[len(head):]) for n in numbers if n[len(head):].isdigit()), default=0)
    return f"{head}{last + 1:06d}"


def _account(s: Session, account_id: str) -> BillingAccount:
    account = s.get(BillingAccount, account_id)
    if account is None:
        raise BillingError(f"billing account {account_id!r} does not exist")
    return account


def _tax_rate(account: BillingAccount) -> Decimal:
    try:
        rate = parse_decimal(account.tax_rate, f"account {account.id} tax_rate")
    except MoneyError as exc:
        raise BillingError(str(exc)) from None
    if not 0 <= rate <= 1:
        raise BillingError(f"account {account.id} tax_rate {rate}: a fraction from 0 to 1 "
                           "(0.21 for 21 percent)")
    return rate


def _totals(bill: CustomerBill, lines: Sequence[BillLine], rate: Decimal) -> None:
    subtotal = sum((Decimal(ln.amount) for ln in lines), Decimal(0))
    tax = round_amount(subtotal * rate, bill.currency)
    bill.subtotal = str(round_amount(subtotal, bill.currency))
    bill.tax = str(tax)
    bill.total = str(round_amount(subtotal + tax, bill.currency))
    bill.tax_rate = str(rate)


def _existing_invoice(s: Session, account_id: str, period: str) -> CustomerBill | None:
    return s.exec(sm_select(CustomerBill).where(
        CustomerBill.billing_account_id == account_id, CustomerBill.period == period,
        CustomerBill.kind == "invoice", CustomerBill.corrects_id == "")).first()


def run_bill(engine: Engine, account_id: str, period: str, *, now: datetime | None = None,
             redo: bool = False, outages: frozenset[str] | None = None) -> CustomerBill:
    """The account's invoice for ``period`` ("YYYY-MM"): built if there is none, else the
    existing one (``redo``: rebuild it while it is still new). See the module docstring."""
    now = now or utcnow()
    if now.tzinfo is None:
        raise BillingError("now must be timezone-aware UTC")
    outage_set = outages if outages is not None else outage_problems()
    for _attempt in range(5):
        with Session(engine, expire_on_commit=False) as s:
            account = _account(s, account_id)
            window = bill_period(period, account.bill_cycle_day)
            try:
                minor_units(account.currency)
            except MoneyError as exc:
                raise BillingError(f"account {account.id}: {exc}") from None
            rate = _tax_rate(account)
            if window.start > now:
                raise BillingError(f"period {period} of account {account.id} starts "
                                   f"{_iso(window.start)}, after now: nothing to bill yet")
            existing = _existing_invoice(s, account.id, period)
            if existing is not None and not redo:
                return existing
            if existing is not None and existing.state != "new":
                raise BillImmutable(f"invoice {existing.id} for {account.id} {period} is "
                                    f"{existing.state}: it cannot be rebuilt; correct it with "
                                    "a credit note", bill_id=existing.id)
            lines = _Run(s, account, window, now, outage_set).lines()
            if existing is not None:
                bill = existing
                for old in s.exec(sm_select(BillLine).where(BillLine.bill_id == bill.id)):
                    s.delete(old)
                s.flush()
            else:
                number = _next_number(s, "INV", now.year)
                bill = CustomerBill(id=number, number=number, billing_account_id=account.id,
                                    customer_id=account.customer_id, period=period,
                                    period_start=window.start, period_end=window.end,
                                    kind="invoice", state="new", currency=account.currency,
                                    created_at=now)
                s.add(bill)
            rows = [ln.row(bill.id) for ln in lines]
            _totals(bill, rows, rate)
            try:
                s.add(bill)
                s.flush()
                s.add_all(rows)
                s.commit()
            except IntegrityError:
                s.rollback()
                continue  # a concurrent run took the number or the period: look again
            return bill
    raise BillingError(f"could not number the invoice of {account_id} {period}: too many "
                       "concurrent bill runs; try again")


def get_bill(s: Session, bill_id: str) -> CustomerBill:
    """The bill, or ``BillNotFound``."""
    bill = s.get(CustomerBill, bill_id)
    if bill is None:
        raise BillNotFound(f"no bill {bill_id!r}")
    return bill


def bill_lines(s: Session, bill_id: str | None = None, *, offset: int = 0,
               limit: int | None = None) -> tuple[list[BillLine], int]:
    """A bill's lines (all bills' lines without ``bill_id``) in order, and their count."""
    q = sm_select(BillLine)
    if bill_id is not None:
        q = q.where(BillLine.bill_id == bill_id)
    count = s.exec(sm_select(func.count()).select_from(q.subquery())).one()
    q = q.order_by(col(BillLine.bill_id), col(BillLine.id)).offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return list(s.exec(q).all()), int(count)


def list_bills(s: Session, *, account: str | None = None, kind: str | None = None,
               state: str | None = None, offset: int = 0,
               limit: int = 100) -> tuple[list[CustomerBill], int]:
    """Bills, newest first, and the total matching."""
    q = sm_select(CustomerBill)
    if account:
        q = q.where(CustomerBill.billing_account_id == account)
    if kind:
        q = q.where(CustomerBill.kind == kind)
    if state:
        q = q.where(CustomerBill.state == state)
    count = s.exec(sm_select(func.count()).select_from(q.subquery())).one()
    rows = s.exec(q.order_by(col(CustomerBill.created_at).desc(), col(CustomerBill.id).desc())
                  .offset(offset).limit(limit)).all()
    return list(rows), int(count)


def issue_bill(engine: Engine, bill_id: str, *, now: datetime | None = None) -> CustomerBill:
    """Move a bill from new to issued: it is final from then on."""
    with Session(engine, expire_on_commit=False) as s:
        bill = get_bill(s, bill_id)
        if bill.state != "new":
            raise BillImmutable(f"bill {bill.id} is {bill.state} (issued "
                                f"{_iso(bill.issued_at)}): only a new bill can be issued",
                                bill_id=bill.id)
        bill.state = "issued"
        bill.issued_at = now or utcnow()
        s.add(bill)
        s.commit()
        return bill


def credit_note(engine: Engine, bill_id: str, *, reason: str,
                amount: Decimal | str | None = None, line_ids: Sequence[int] | None = None,
                now: datetime | None = None) -> CustomerBill:
    """A credit note correcting the issued invoice ``bill_id``: ``amount`` (tax-exclusive,
    in the invoice's currency, at most its minor units) or ``line_ids`` (lines of the
    invoice, credited in full). Issued as it is made. Several may correct one invoice,
    never more than its subtotal in all."""
    now = now or utcnow()
    reason = (reason or "").strip()
    if not reason:
        raise BillingError("a credit note needs a reason")
    if len(reason) > 500:
        raise BillingError("reason: at most 500 characters")
    if (amount is None) == (not line_ids):
        raise BillingError("give either an amount or the invoice lines to credit, not both "
                           "and not neither")
    with Session(engine, expire_on_commit=False) as s:
        inv = get_bill(s, bill_id)
        if inv.kind != "invoice":
            raise BillingError(f"{inv.id} is a {inv.kind}: only an invoice is credited")
        if inv.state != "issued":
            raise BillImmutable(f"invoice {inv.id} is {inv.state}: a credit note corrects an "
                                "issued invoice (rebuild a new one with a repeated run and "
                                "redo instead)", bill_id=inv.id)
        prior = s.exec(sm_select(CustomerBill).where(CustomerBill.corrects_id == inv.id)).all()
        already = -sum((Decimal(n.subtotal) for n in prior), Decimal(0))
        invoice_lines = {ln.id: ln for ln in bill_lines(s, inv.id)[0]}
        drafts: list[_Line] = []
        if amount is not None:
            try:
                value = parse_decimal(amount, "amount")
            except MoneyError as exc:
                raise BillingError(str(exc)) from None
            if value <= 0:
                raise BillingError(f"amount {value}: a credit is a positive amount")
            if round_amount(value, inv.currency) != value:
                raise BillingError(f"amount {value}: {inv.currency} has "
                                   f"{minor_units(inv.currency)} decimals")
            drafts.append(_Line("adjustment", f"Credit: {reason}", None,
                                Money(-value, inv.currency), unit_price=-value,
                                detail={"reason": reason, "credits": inv.id}))
        else:
            for lid in line_ids or ():
                ln = invoice_lines.get(lid)
                if ln is None:
                    raise BillingError(f"line {lid} is not a line of invoice {inv.id}")
                if lid in {d.detail.get("credits_line") for d in drafts}:
                    raise BillingError(f"line {lid} given twice")
                drafts.append(_Line("adjustment", f"Credit of: {ln.description}",
                                    ln.product_id, Money(-Decimal(ln.amount), inv.currency),
                                    quantity=Decimal(ln.quantity), unit=ln.unit,
                                    unit_price=-Decimal(ln.unit_price),
                                    detail={"reason": reason, "credits": inv.id,
                                            "credits_line": lid, "credits_kind": ln.kind}))
        credited = -sum((d.amount.rounded().amount for d in drafts), Decimal(0))
        if credited + already > Decimal(inv.subtotal):
            raise BillingError(f"credit {credited} {inv.currency} (with {already} credited "
                               f"before) is more than invoice {inv.id}'s subtotal "
                               f"{inv.subtotal} {inv.currency}")
        number = _next_number(s, "CN", now.year)
        note = CustomerBill(id=number, number=number, billing_account_id=inv.billing_account_id,
                            customer_id=inv.customer_id, period=inv.period,
                            period_start=inv.period_start, period_end=inv.period_end,
                            kind="credit-note", state="new", currency=inv.currency,
                            corrects_id=inv.id, created_at=now)
        rows = [d.row(number) for d in drafts]
        _totals(note, rows, Decimal(inv.tax_rate))
        try:
            s.add(note)
            s.flush()
            s.add_all(rows)
            s.flush()
            note.state = "issued"
            note.issued_at = now
            s.add(note)
            s.commit()
        except IntegrityError:
            s.rollback()
            raise BillingError(f"invoice {inv.id} was credited or a credit note numbered "
                               "concurrently; look again and retry") from None
        return note

