"""The product catalogue: a YAML file loaded into the TMF620 tables, the offerings' life
cycle, and the checks an order item meets before the saga runs (see docs/bss.md).

    CatalogueError              the file or a request against the catalogue was refused
    ├── CatalogueNotFound       no such specification or offering (also a NotFound)
    └── LifecycleError          the life cycle does not allow it (retired -> active, an
                                order on a draft offering)

Loading is all or nothing: every problem of the file is listed at once, naming the entry
(``offering business-internet-100: price traffic: ...``), and nothing is written unless the
whole file passes. Loading the same file twice changes nothing; a changed file updates the
rows it names (it never deletes an offering: retire it instead).

Template filling: an offering's ``params`` map each fulfilment parameter to a source; a
``text:`` source is a fixed text with placeholders ``{customer}`` (the customer's name),
``{site}`` (the site's name), ``{product}`` (the product's id, ``PRD-...``: it ties the
device's config to the subscription), ``{offering}`` (the offering's name),
``{alloc.NAME}`` (what the allocation NAME got) and ``{char.NAME}`` (the order item's
characteristic). Nothing
else is a placeholder and a brace outside one is refused when the file loads; values are
substituted once (a value holding braces is not expanded again).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

import yaml
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from adapters.services import ServiceSpec, load_services
from bss.model import (
    Allocation,
    ProductOffering,
    ProductOfferingPrice,
    ProductSpecification,
    ResourcePool,
    Site,
    loads,
)
from topology.errors import SwitchboardError
from topology.inventory import utcnow
from topology.queries import NotFound

__all__ = [
    "CATALOGUE_FILE",
    "LIFECYCLE",
    "TRANSITIONS",
    "VALUE_TYPES",
    "CatalogueError",
    "CatalogueNotFound",
    "LifecycleError",
    "LoadReport",
    "activate_offering",
    "fill_text",
    "load_catalogue",
    "orderable_offering",
    "resolve_params",
    "retire_offering",
    "set_offering_status",
    "validate_characteristics",
]

CATALOGUE_FILE: Final = Path(__file__).parent / "data" / "catalogue.yaml"
LIFECYCLE: Final = ("draft", "active", "retired")
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "draft": frozenset({"active"}),
    "active": frozenset({"retired"}),
    "retired": frozenset(),
}
VALUE_TYPES: Final = ("string", "integer", "number", "boolean", "ipv4Network")
PRICE_TYPES: Final = ("oneTime", "recurring", "usage")
USAGE_MODELS: Final = {"volume": "GB", "p95": "Mbps"}
MAX_STRING: Final = 200
# where a parameter's value comes from, and the service parameter types it may feed
SITE_SOURCES: Final[dict[str, tuple[str, ...]]] = {
    "site.port": ("interface",),
    "site.link_address": ("ipv4_interface",),
    "site.customer_address": ("ipv4_address",),
    "site.name": ("text",),
}
ALLOC_FEEDS: Final[dict[str, tuple[str, ...]]] = {
    "ipv4": ("ipv4_network", "text"),
    "vlan": ("vlan", "text"),
}
_SLUG: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_NAME: Final = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_CURRENCY: Final = re.compile(r"^[A-Z]{3}$")
_PLACEHOLDER: Final = re.compile(r"\{([^{}]*)\}")
_INTEGER: Final = re.compile(r"^[+-]?[0-9]+$")
_BOOLEANS: Final = {"true": True, "yes": True, "1": True,
                    "false": False, "no": False, "0": False}


class CatalogueError(SwitchboardError):
    """The catalogue refused a file or a request; ``problems`` lists every reason."""

    def __init__(self, message: str, problems: Iterable[str] = (), *,
                 source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        if self.problems:
            message = f"{message} ({len(self.problems)} problem(s)):\n" + "\n".join(
                f"  - {p}" for p in self.problems)
        super().__init__(message)


class CatalogueNotFound(CatalogueError, NotFound):
    """No such specification or offering."""


class LifecycleError(CatalogueError):
    """The offering's life cycle does not allow the change or the order."""

    def __init__(self, message: str, *, offering: str, status: str) -> None:
        super().__init__(message)
        self.offering = offering
        self.status = status


# -- characteristics ------------------------------------------------------------------------


def _control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _typed(value_type: str, raw: object) -> Any:
    """``raw`` parsed as ``value_type``; ValueError with the reason."""
    text = raw if isinstance(raw, str) else str(raw)
    if value_type == "string":
        if _control(text):
            raise ValueError("holds a newline or control character")
        if len(text) > MAX_STRING:
            raise ValueError(f"is longer than {MAX_STRING} characters")
        return text
    text = text.strip()
    if value_type == "integer":
        if isinstance(raw, bool) or not _INTEGER.match(text):
            raise ValueError(f"{text!r} is not an integer")
        return int(text)
    if value_type == "number":
        if isinstance(raw, bool):
            raise ValueError(f"{text!r} is not a number")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"{text!r} is not a number") from None
        if not number.is_finite():
            raise ValueError(f"{text!r} is not a finite number")
        return number
    if value_type == "boolean":
        if text.lower() not in _BOOLEANS:
            raise ValueError(f"{text!r} is not a boolean (true or false)")
        return _BOOLEANS[text.lower()]
    if value_type == "ipv4Network":
        try:
            return str(ipaddress.IPv4Network(text, strict=True))
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an IPv4 network ({exc})") from None
    raise ValueError(f"unknown valueType {value_type!r}")


def _text_of(value: Any) -> str:
    """A typed characteristic as text (the form stored and put into parameters)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def validate_characteristics(spec: ProductSpecification,
                             values: Mapping[str, object]) -> dict[str, Any]:
    """An order item's characteristics checked against ``spec``'s typed characteristics:
    the values parsed (``integer`` -> int, ``number`` -> Decimal, ``boolean`` -> bool,
    ``ipv4Network`` -> its canonical text, ``string`` as given) with the defaults of the
    missing ones filled in. :class:`CatalogueError` lists every problem at once."""
    chars = {c["name"]: c for c in loads(spec.characteristics_json, [])}
    problems: list[str] = []
    out: dict[str, Any] = {}
    for name in values:
        if name not in chars:
            known = ", ".join(chars) or "none"
            problems.append(f"{name}: not a characteristic of {spec.id} (it has: {known})")
    for name, c in chars.items():
        raw = values.get(name)
        if raw is None or (isinstance(raw, str) and raw == ""):
            if c.get("default") is not None:
                out[name] = _typed(c["valueType"], c["default"])
            elif c.get("required"):
                problems.append(f"{name}: required")
            continue
        try:
            value = _typed(c["valueType"], raw)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            continue
        allowed = c.get("allowed") or []
        if allowed and value not in [_typed(c["valueType"], a) for a in allowed]:
            problems.append(f"{name}: {_text_of(value)!r} is not allowed (one of: "
                            f"{', '.join(str(a) for a in allowed)})")
            continue
        out[name] = value
    if problems:
        raise CatalogueError(f"characteristics refused for {spec.id}", problems)
    return out


# -- template filling -----------------------------------------------------------------------


def fill_text(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each ``{key}`` replaced by ``values[key]`` once; KeyError names a
    missing key."""
    def one(m: re.Match[str]) -> str:
        return values[m.group(1)]

    return _PLACEHOLDER.sub(one, template)


def resolve_params(offering: ProductOffering, *, customer: str, site: Site,
                   product_id: str, characteristics: Mapping[str, Any],
                   allocations: Mapping[str, str]) -> dict[str, str]:
    """The fulfilment parameters of ``offering`` for one order item: each source of its
    ``params`` filled from the site, the (validated) characteristics and what was
    allocated. A value a source needs and does not have is a :class:`CatalogueError`
    listing every one; the result still goes through the service's own typed checks."""
    problems: list[str] = []
    fields: dict[str, str] = {"customer": customer, "site": site.name,
                              "product": product_id, "offering": offering.name}
    fields.update({f"alloc.{k}": str(v) for k, v in allocations.items()})
    fields.update({f"char.{k}": _text_of(v) for k, v in characteristics.items()
                   if v is not None})
    out: dict[str, str] = {}
    for param, source in loads(offering.params_json, {}).items():
        if source.startswith("text:"):
            try:
                value = fill_text(source[len("text:"):], fields)
            except KeyError as exc:
                problems.append(f"{param}: no value for {{{exc.args[0]}}}")
                continue
            if _control(value):
                problems.append(f"{param}: the filled text holds a control character")
                continue
            out[param] = " ".join(value.split())
        elif source.startswith("site."):
            attr = source[len("site."):]
            site_value = getattr(site, attr, None)
            if not site_value:
                problems.append(f"{param}: site {site.id} has no {attr}")
                continue
            out[param] = str(site_value)
        elif source in fields:
            out[param] = fields[source]
        elif source.startswith("char."):
            continue  # an optional characteristic left out: the parameter stays unset
        else:
            problems.append(f"{param}: nothing allocated for {source}")
    if problems:
        raise CatalogueError(f"offering {offering.id}: parameters cannot be made", problems)
    return out


# -- life cycle -----------------------------------------------------------------------------


def _offering(session: Session, offering_id: str) -> ProductOffering:
    offering = session.get(ProductOffering, offering_id)
    if offering is None:
        raise CatalogueNotFound(f"no product offering {offering_id!r}")
    return offering


def set_offering_status(session: Session, offering_id: str, status: str) -> ProductOffering:
    """Move an offering along draft -> active -> retired (and nowhere else); the same
    status again is a no-op. Commits."""
    offering = _offering(session, offering_id)
    if status not in LIFECYCLE:
        raise CatalogueError(f"offering {offering_id}: unknown lifecycle status {status!r} "
                             f"(one of {', '.join(LIFECYCLE)})")
    if status == offering.lifecycle_status:
        return offering
    if status not in TRANSITIONS[offering.lifecycle_status]:
        allowed = ", ".join(sorted(TRANSITIONS[offering.lifecycle_status])) or "none"
        raise LifecycleError(
            f"offering {offering_id} is {offering.lifecycle_status}: it cannot become "
            f"{status} (the life cycle is draft -> active -> retired; from "
            f"{offering.lifecycle_status}: {allowed})",
            offering=offering_id, status=offering.lifecycle_status)
    offering.lifecycle_status = status
    offering.updated_at = utcnow()
    session.add(offering)
    session.commit()
    session.refresh(offering)
    return offering


def activate_offering(session: Session, offering_id: str) -> ProductOffering:
    """Move a draft offering to active: it can be ordered."""
    return set_offering_status(session, offering_id, "active")


def retire_offering(session: Session, offering_id: str) -> ProductOffering:
    """Move an active offering to retired: no new orders; existing products keep it."""
    return set_offering_status(session, offering_id, "retired")


def orderable_offering(session: Session, offering_id: str) -> ProductOffering:
    """The offering an order item names, if it can be ordered (it exists and is active)."""
    offering = _offering(session, offering_id)
    if offering.lifecycle_status != "active":
        raise LifecycleError(
            f"offering {offering_id} is {offering.lifecycle_status}: only an active offering "
            "can be ordered", offering=offering_id, status=offering.lifecycle_status)
    return offering


# -- the file -------------------------------------------------------------------------------


@dataclass
class _Parsed:
    """The file's rows, checked, not yet written."""

    pools: list[ResourcePool] = field(default_factory=list)
    specs: list[ProductSpecification] = field(default_factory=list)
    offerings: list[ProductOffering] = field(default_factory=list)
    prices: dict[str, list[ProductOfferingPrice]] = field(default_factory=dict)


@dataclass
class LoadReport:
    """What a load did: ``created``, ``updated`` and ``unchanged`` rows (``"offering
    business-internet-100"``), prices ``removed`` from offerings the file changed, and
    ``notes`` (a lifecycle status in the file behind the stored one, which is kept)."""

    source: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.removed)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "removed": self.removed, "notes": self.notes,
                "changed": self.changed}


class _Checker:
    """Collects the problems of one file, each naming its entry."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, where: str, reason: str) -> None:
        self.problems.append(f"{where}: {reason}")

    def mapping(self, where: str, raw: object, allowed: Iterable[str],
                required: Iterable[str] = ()) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            self.add(where, "must be a mapping")
            return None
        allowed = set(allowed)
        for key in raw:
            if key not in allowed:
                self.add(where, f"unknown field {key!r} (fields: {', '.join(sorted(allowed))})")
        for key in required:
            if raw.get(key) in (None, ""):
                self.add(where, f"{key} is required")
        return raw

    def text(self, where: str, raw: object, *, max_len: int = MAX_STRING,
             required: bool = True) -> str:
        if raw is None:
            return ""
        if not isinstance(raw, str | int | float) or isinstance(raw, bool):
            self.add(where, "must be text")
            return ""
        value = str(raw).strip()
        if _control(value):
            self.add(where, "holds a newline or control character")
        elif len(value) > max_len:
            self.add(where, f"is longer than {max_len} characters")
        elif required and not value:
            self.add(where, "is empty")
        return value

    def decimal(self, where: str, raw: object, *, low: Decimal | None = Decimal(0),
                high: Decimal | None = None) -> str | None:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            self.add(where, f"{raw!r} is not a decimal (write it quoted: \"12.50\")")
            return None
        try:
            value = Decimal(str(raw).strip())
        except InvalidOperation:
            self.add(where, f"{raw!r} is not a decimal")
            return None
        if not value.is_finite():
            self.add(where, f"{raw!r} is not a finite decimal")
            return None
        if low is not None and value < low:
            self.add(where, f"{value} is below {low}")
            return None
        if high is not None and value > high:
            self.add(where, f"{value} is above {high}")
            return None
        return str(value)

    def status(self, where: str, raw: object, default: str) -> str:
        value = default if raw is None else str(raw)
        if value not in LIFECYCLE:
            self.add(where, f"lifecycle_status {value!r} must be one of {', '.join(LIFECYCLE)}")
            return default
        return value


def _vlan_ranges(text: str) -> list[tuple[int, int]]:
    """``"100-199"`` or ``"100-149,200-249,300"`` (the allocator's form) as id ranges."""
    ranges: list[tuple[int, int]] = []
    for part in text.split(","):
        low, sep, high = part.strip().partition("-")
        if not low.strip().isdigit() or (sep and not high.strip().isdigit()):
            raise ValueError(f"{text!r} is not a VLAN range (100-199, or 100-149,200-249)")
        lo, hi = int(low), int(high) if sep else int(low)
        if not 1 <= lo <= hi <= 4094:
            raise ValueError(f"{text!r}: VLAN ids go 1..4094, low to high")
        ranges.append((lo, hi))
    return ranges


def _pool_range(kind: str, text: str) -> str:
    """The pool's range in canonical form; ValueError with the reason."""
    if kind == "ipv4":
        try:
            return str(ipaddress.IPv4Network(text, strict=True))
        except ValueError as exc:
            raise ValueError(f"range {text!r} is not an IPv4 network ({exc})") from None
    return ",".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in _vlan_ranges(text))


def _in_pool(kind: str, pool_range: str, value: str) -> bool:
    if kind == "ipv4":
        try:
            return ipaddress.IPv4Network(value).subnet_of(ipaddress.IPv4Network(pool_range))
        except (ValueError, TypeError):
            return False
    return value.isdigit() and any(lo <= int(value) <= hi
                                   for lo, hi in _vlan_ranges(pool_range))


def _parse_pools(chk: _Checker, raw: object) -> list[ResourcePool]:
    out: list[ResourcePool] = []
    if raw is None:
        return out
    if not isinstance(raw, dict):
        chk.add("pools", "must be a mapping of pool id to pool")
        return out
    for pid, body in raw.items():
        where = f"pool {pid}"
        if not isinstance(pid, str) or not _SLUG.match(pid):
            chk.add(where, "id must be lowercase letters, digits and dashes")
            continue
        b = chk.mapping(where, body, ("kind", "range", "description"), ("kind", "range"))
        if b is None or b.get("range") in (None, ""):
            continue
        kind = b.get("kind")
        if kind not in ("ipv4", "vlan"):
            chk.add(where, f"kind {kind!r} must be ipv4 or vlan")
            continue
        try:
            rng = _pool_range(kind, str(b["range"]))
        except ValueError as exc:
            chk.add(where, str(exc))
            continue
        out.append(ResourcePool(id=pid, kind=kind, range=rng,
                                description=chk.text(f"{where}: description",
                                                     b.get("description"), required=False)))
    return out


def _parse_characteristic(chk: _Checker, where: str, raw: object) -> dict[str, Any] | None:
    b = chk.mapping(where, raw, ("name", "valueType", "required", "allowed", "default",
                                 "description"), ("name", "valueType"))
    if b is None:
        return None
    name, vtype = b.get("name"), b.get("valueType")
    if not isinstance(name, str) or not _NAME.match(name):
        chk.add(where, f"name {name!r} must be lowercase letters, digits and _")
        return None
    where = f"{where} {name}"
    if vtype not in VALUE_TYPES:
        chk.add(where, f"valueType {vtype!r} must be one of {', '.join(VALUE_TYPES)}")
        return None
    required = b.get("required", False)
    if not isinstance(required, bool):
        chk.add(where, "required must be true or false")
    allowed_raw = b.get("allowed") or []
    allowed: list[str] = []
    if not isinstance(allowed_raw, list):
        chk.add(where, "allowed must be a list")
        allowed_raw = []
    for a in allowed_raw:
        try:
            allowed.append(_text_of(_typed(vtype, a)))
        except ValueError as exc:
            chk.add(where, f"allowed value {exc}")
    default: str | None = None
    if b.get("default") is not None:
        try:
            typed = _typed(vtype, b["default"])
        except ValueError as exc:
            chk.add(where, f"default {exc}")
        else:
            default = _text_of(typed)
            if allowed and typed not in [_typed(vtype, a) for a in allowed]:
                chk.add(where, f"default {default!r} is not among the allowed values")
    return {"name": name, "valueType": vtype, "required": bool(required),
            "allowed": allowed, "default": default,
            "description": chk.text(f"{where}: description", b.get("description"),
                                    required=False)}


def _parse_specs(chk: _Checker, raw: object) -> list[ProductSpecification]:
    out: list[ProductSpecification] = []
    if raw is None:
        return out
    if not isinstance(raw, dict):
        chk.add("specifications", "must be a mapping of specification id to specification")
        return out
    for sid, body in raw.items():
        where = f"specification {sid}"
        if not isinstance(sid, str) or not _SLUG.match(sid):
            chk.add(where, "id must be lowercase letters, digits and dashes")
            continue
        b = chk.mapping(where, body, ("name", "description", "version", "lifecycle_status",
                                      "characteristics"), ("name",))
        if b is None:
            continue
        chars_raw = b.get("characteristics") or []
        if not isinstance(chars_raw, list):
            chk.add(where, "characteristics must be a list")
            chars_raw = []
        chars: list[dict[str, Any]] = []
        for i, c in enumerate(chars_raw, 1):
            parsed = _parse_characteristic(chk, f"{where}: characteristic {i}", c)
            if parsed is None:
                continue
            if any(x["name"] == parsed["name"] for x in chars):
                chk.add(where, f"characteristic {parsed['name']} given twice")
                continue
            chars.append(parsed)
        out.append(ProductSpecification(
            id=sid, name=chk.text(f"{where}: name", b.get("name"), max_len=80),
            description=chk.text(f"{where}: description", b.get("description"),
                                 required=False, max_len=1000),
            version=chk.text(f"{where}: version", b.get("version", "1.0"), max_len=20),
            lifecycle_status=chk.status(where, b.get("lifecycle_status"), "active"),
            characteristics_json=json.dumps(chars, sort_keys=True)))
    return out


def _parse_prices(chk: _Checker, where: str, oid: str, raw: object, currency: str,
                  usage: dict[str, str]) -> list[ProductOfferingPrice]:
    out: list[ProductOfferingPrice] = []
    if not isinstance(raw, dict) or not raw:
        chk.add(where, "prices must be a mapping of price name to price (at least one)")
        return out
    for key, body in raw.items():
        pw = f"{where}: price {key}"
        if not isinstance(key, str) or not _SLUG.match(key):
            chk.add(pw, "name must be lowercase letters, digits and dashes")
            continue
        b = chk.mapping(pw, body, ("type", "name", "amount", "currency", "period", "unit",
                                   "tiers"), ("type",))
        if b is None:
            continue
        ptype = b.get("type")
        if ptype not in PRICE_TYPES:
            chk.add(pw, f"type {ptype!r} must be one of {', '.join(PRICE_TYPES)}")
            continue
        pcur = str(b.get("currency", currency))
        if pcur != currency:
            chk.add(pw, f"currency {pcur!r} differs from the offering's {currency}")
        period = b.get("period")
        unit = b.get("unit")
        tiers: list[dict[str, str | None]] = []
        if ptype == "recurring":
            if period != "month":
                chk.add(pw, "a recurring price needs period: month")
        elif period is not None:
            chk.add(pw, f"period is only for a recurring price, not {ptype}")
        if ptype == "usage":
            if not usage:
                chk.add(pw, "a usage price needs the offering's usage (model volume or p95)")
            elif unit != usage["unit"]:
                chk.add(pw, f"unit {unit!r} must be {usage['unit']} (usage model "
                        f"{usage['model']})")
            tiers = _parse_tiers(chk, pw, b.get("tiers"))
        else:
            if unit is not None:
                chk.add(pw, f"unit is only for a usage price, not {ptype}")
            if b.get("tiers") is not None:
                chk.add(pw, f"tiers are only for a usage price, not {ptype}")
        if b.get("amount") is None:
            if not tiers:
                chk.add(pw, "amount is required (or tiers, for a usage price)")
            amount: str | None = "0"
        else:
            amount = chk.decimal(f"{pw}: amount", b.get("amount"))
        pid = f"{oid}-{key}"
        if len(pid) > 64:
            chk.add(pw, f"id {pid} is longer than 64 characters")
            continue
        out.append(ProductOfferingPrice(
            id=pid, offering_id=oid,
            name=chk.text(f"{pw}: name", b.get("name", key), max_len=80),
            price_type=ptype, period=period if ptype == "recurring" else None,
            amount=amount or "0", currency=currency,
            unit=str(unit) if ptype == "usage" and unit else None,
            tiers_json=json.dumps(tiers)))
    if sum(p.price_type == "usage" for p in out) > 1:
        chk.add(where, "at most one usage price")
    if usage and not any(p.price_type == "usage" for p in out):
        chk.add(where, f"usage model {usage['model']} needs a usage price")
    return out


def _parse_tiers(chk: _Checker, where: str, raw: object) -> list[dict[str, str | None]]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not raw:
        chk.add(where, "tiers must be a non-empty list of {up_to, amount}")
        return []
    tiers: list[dict[str, str | None]] = []
    last: Decimal | None = None
    for i, t in enumerate(raw, 1):
        tw = f"{where}: tier {i}"
        b = chk.mapping(tw, t, ("up_to", "amount"), ("amount",))
        if b is None:
            return []
        amount = chk.decimal(f"{tw}: amount", b.get("amount"))
        up_raw = b.get("up_to")
        is_last = i == len(raw)
        if up_raw is None:
            if not is_last:
                chk.add(tw, "up_to is open (null) but only the last tier may be open")
            tiers.append({"up_to": None, "amount": amount})
            continue
        if is_last:
            chk.add(tw, "the last tier must be open (up_to: null), or usage above it has "
                    "no price")
        up = chk.decimal(f"{tw}: up_to", up_raw, low=Decimal(0))
        if up is None:
            continue
        if Decimal(up) <= 0 or (last is not None and Decimal(up) <= last):
            chk.add(tw, f"up_to {up} must be above the previous tier's ({last or 0}): "
                    "tiers ascend")
        last = Decimal(up)
        tiers.append({"up_to": up, "amount": amount})
    return tiers


def _parse_offerings(chk: _Checker, raw: object, default_currency: str,
                     specs: Mapping[str, list[dict[str, Any]]],
                     spec_status: Mapping[str, str],
                     pools: Mapping[str, ResourcePool],
                     services: Mapping[str, ServiceSpec], parsed: _Parsed) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        chk.add("offerings", "must be a mapping of offering id to offering")
        return
    for oid, body in raw.items():
        where = f"offering {oid}"
        if not isinstance(oid, str) or not _SLUG.match(oid):
            chk.add(where, "id must be lowercase letters, digits and dashes")
            continue
        b = chk.mapping(where, body, ("name", "description", "spec", "lifecycle_status",
                                      "service", "currency", "params", "allocations",
                                      "usage", "sla", "prices"),
                        ("name", "spec", "service", "prices"))
        if b is None:
            continue
        status = chk.status(where, b.get("lifecycle_status"), "draft")
        spec_id = b.get("spec")
        if spec_id not in specs:
            chk.add(where, f"unknown specification {spec_id!r} (known: "
                    f"{', '.join(sorted(specs)) or 'none'})")
        elif status == "active" and spec_status.get(str(spec_id)) == "retired":
            chk.add(where, f"is active but its specification {spec_id} is retired")
        currency = str(b.get("currency", default_currency))
        if not _CURRENCY.match(currency):
            chk.add(where, f"currency {currency!r} must be 3 capital letters (EUR)")
        service_name = b.get("service")
        service = services.get(str(service_name))
        if service is None:
            chk.add(where, f"unknown fulfilment service {service_name!r} (known: "
                    f"{', '.join(sorted(services))})")
        allocations = _parse_allocations(chk, where, b.get("allocations"), pools)
        chars = {c["name"]: c for c in specs.get(str(spec_id), [])}
        params = _parse_params(chk, where, b.get("params"), service, chars, allocations)
        usage = _parse_usage(chk, where, b.get("usage"))
        sla = _parse_sla(chk, where, b.get("sla"))
        prices = _parse_prices(chk, where, oid, b.get("prices"), currency, usage)
        parsed.offerings.append(ProductOffering(
            id=oid, name=chk.text(f"{where}: name", b.get("name"), max_len=80),
            description=chk.text(f"{where}: description", b.get("description"),
                                 required=False, max_len=1000),
            spec_id=str(spec_id), lifecycle_status=status, service=str(service_name),
            params_json=json.dumps(params, sort_keys=True),
            allocations_json=json.dumps(allocations, sort_keys=True),
            usage_json=json.dumps(usage, sort_keys=True),
            sla_json=json.dumps(sla, sort_keys=True), currency=currency))
        parsed.prices[oid] = prices


def _parse_allocations(chk: _Checker, where: str, raw: object,
                       pools: Mapping[str, ResourcePool]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        chk.add(where, "allocations must be a mapping of name to {kind, pool, ...}")
        return out
    for name, body in raw.items():
        aw = f"{where}: allocation {name}"
        if not isinstance(name, str) or not _NAME.match(name):
            chk.add(aw, "name must be lowercase letters, digits and _")
            continue
        b = chk.mapping(aw, body, ("kind", "pool", "prefix_len"), ("kind", "pool"))
        if b is None:
            continue
        kind, pool_id = b.get("kind"), b.get("pool")
        if kind not in ("ipv4", "vlan"):
            chk.add(aw, f"kind {kind!r} must be ipv4 or vlan")
            continue
        pool = pools.get(str(pool_id))
        if pool is None:
            chk.add(aw, f"unknown pool {pool_id!r} (known: {', '.join(sorted(pools)) or 'none'})")
            continue
        if pool.kind != kind:
            chk.add(aw, f"pool {pool_id} holds {pool.kind}, not {kind}")
            continue
        entry: dict[str, Any] = {"kind": kind, "pool": pool_id}
        if kind == "ipv4":
            plen = b.get("prefix_len")
            low = ipaddress.IPv4Network(pool.range).prefixlen
            if isinstance(plen, bool) or not isinstance(plen, int) or not low <= plen <= 32:
                chk.add(aw, f"prefix_len {plen!r} must be a whole number from {low} (the "
                        f"pool's) to 32")
                continue
            entry["prefix_len"] = plen
        elif b.get("prefix_len") is not None:
            chk.add(aw, "prefix_len is only for an ipv4 allocation")
        out[name] = entry
    return out


def _parse_params(chk: _Checker, where: str, raw: object, service: ServiceSpec | None,
                  chars: Mapping[str, dict[str, Any]],
                  allocations: Mapping[str, dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    if not isinstance(raw, dict):
        chk.add(where, "params must be a mapping of service parameter to source")
        return out
    used: set[str] = set()
    for param, source in raw.items():
        pw = f"{where}: param {param}"
        if not isinstance(source, str):
            chk.add(pw, f"source {source!r} must be text")
            continue
        ptype: str | None = None
        if service is not None:
            spec = service.params.get(str(param))
            if spec is None:
                chk.add(pw, f"not a parameter of service {service.name} (it has: "
                        f"{', '.join(service.params)})")
                continue
            ptype = spec.type
        reason = _check_source(source, ptype, chars, allocations, used)
        if reason:
            chk.add(pw, reason)
            continue
        if (service is not None and source.startswith("char.")
                and service.params[str(param)].required):
            c = chars[source[len("char."):]]
            if not c["required"] and c["default"] is None:
                chk.add(pw, f"{source} is optional without a default but {param} is "
                        f"required by {service.name}")
        out[str(param)] = source
    if service is not None:
        for name, p in service.params.items():
            if p.required and name not in out and name not in raw:
                chk.add(where, f"param {name} is required by service {service.name} "
                        "and has no source")
            if p.requires and (name in raw) != (p.requires in raw):
                chk.add(where, f"params {name} and {p.requires} go together "
                        f"(service {service.name})")
    for name in allocations:
        if name not in used:
            chk.add(where, f"allocation {name} is used by no parameter")
    return out


def _check_source(source: str, ptype: str | None, chars: Mapping[str, dict[str, Any]],
                  allocations: Mapping[str, dict[str, Any]], used: set[str]) -> str | None:
    """Why ``source`` cannot feed a parameter of type ``ptype``, or None."""
    forms = ('site.port, site.link_address, site.customer_address, site.name, char.NAME, '
             'alloc.NAME or "text:..."')
    if source.startswith("text:"):
        template = source[len("text:"):]
        if ptype not in (None, "text"):
            return f"a text source cannot feed a {ptype} parameter"
        if _control(template) or len(template) > MAX_STRING or not template.strip():
            return f"text must be one printable line of 1..{MAX_STRING} characters"
        if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
            return "text has a brace outside a {placeholder}"
        for key in _PLACEHOLDER.findall(template):
            if key in ("customer", "site", "product", "offering"):
                continue
            kind, _, name = key.partition(".")
            if kind == "alloc" and name in allocations:
                used.add(name)
                continue
            if kind == "char" and name in chars:
                if not chars[name]["required"] and chars[name]["default"] is None:
                    return f"{{{key}}} is an optional characteristic without a default"
                continue
            return (f"unknown placeholder {{{key}}} (use {{customer}}, {{site}}, {{product}}, "
                    f"{{offering}}, {{alloc.NAME}} of an allocation, {{char.NAME}} of a "
                    "characteristic)")
        return None
    if source in SITE_SOURCES:
        if ptype is not None and ptype not in SITE_SOURCES[source]:
            return f"{source} cannot feed a {ptype} parameter"
        return None
    kind, _, name = source.partition(".")
    if kind == "char":
        if name not in chars:
            return (f"unknown characteristic {name!r} (the specification has: "
                    f"{', '.join(chars) or 'none'})")
        return None
    if kind == "alloc":
        if name not in allocations:
            return (f"unknown allocation {name!r} (the offering allocates: "
                    f"{', '.join(allocations) or 'nothing'})")
        used.add(name)
        feeds = ALLOC_FEEDS[allocations[name]["kind"]]
        if ptype is not None and ptype not in feeds:
            return f"a {allocations[name]['kind']} allocation cannot feed a {ptype} parameter"
        return None
    return f"source {source!r} must be one of {forms}"


def _parse_usage(chk: _Checker, where: str, raw: object) -> dict[str, str]:
    if raw is None or raw == {}:
        return {}
    b = chk.mapping(f"{where}: usage", raw, ("model", "unit"), ("model",))
    if b is None:
        return {}
    model = b.get("model")
    if model not in USAGE_MODELS:
        chk.add(f"{where}: usage", f"model {model!r} must be volume or p95")
        return {}
    unit = b.get("unit", USAGE_MODELS[str(model)])
    if unit != USAGE_MODELS[str(model)]:
        chk.add(f"{where}: usage", f"model {model} is rated per {USAGE_MODELS[str(model)]}, "
                f"not {unit!r}")
    return {"model": str(model), "unit": USAGE_MODELS[str(model)]}


def _parse_sla(chk: _Checker, where: str, raw: object) -> dict[str, str]:
    if raw is None or raw == {}:
        return {}
    sw = f"{where}: sla"
    b = chk.mapping(sw, raw, ("availability_pct", "credit_pct_of_recurring"),
                    ("availability_pct", "credit_pct_of_recurring"))
    if b is None:
        return {}
    avail = chk.decimal(f"{sw}: availability_pct", b.get("availability_pct"),
                        high=Decimal(100))
    credit = chk.decimal(f"{sw}: credit_pct_of_recurring", b.get("credit_pct_of_recurring"),
                         high=Decimal(100))
    if avail is None or credit is None:
        return {}
    return {"availability_pct": avail, "credit_pct_of_recurring": credit}


def _parse(session: Session, raw: object, source: str) -> _Parsed:
    chk = _Checker()
    parsed = _Parsed()
    b = chk.mapping("catalogue", raw, ("version", "currency", "pools", "specifications",
                                       "offerings"))
    if b is None:
        raise CatalogueError(f"catalogue {source} refused", chk.problems, source=source)
    if b.get("version", 1) != 1:
        chk.add("catalogue", f"version {b.get('version')!r} is not supported (1)")
    currency = str(b.get("currency", "EUR"))
    if not _CURRENCY.match(currency):
        chk.add("catalogue", f"currency {currency!r} must be 3 capital letters (EUR)")
    parsed.pools = _parse_pools(chk, b.get("pools"))
    parsed.specs = _parse_specs(chk, b.get("specifications"))
    pools = {p.id: p for p in session.exec(select(ResourcePool)).all()}
    pools.update({p.id: p for p in parsed.pools})
    specs = {s.id: loads(s.characteristics_json, [])
             for s in session.exec(select(ProductSpecification)).all()}
    spec_status = {s.id: s.lifecycle_status
                   for s in session.exec(select(ProductSpecification)).all()}
    for s in parsed.specs:
        specs[s.id] = loads(s.characteristics_json, [])
        spec_status[s.id] = s.lifecycle_status
    try:
        services = load_services()
    except SwitchboardError as exc:
        raise CatalogueError(f"catalogue {source}: the fulfilment services cannot be read: "
                             f"{exc}", source=source) from exc
    _parse_offerings(chk, b.get("offerings"), currency, specs, spec_status, pools, services,
                     parsed)
    _check_pool_changes(session, chk, parsed.pools)
    if chk.problems:
        raise CatalogueError(f"catalogue {source} refused, nothing changed", chk.problems,
                             source=source)
    return parsed


def _check_pool_changes(session: Session, chk: _Checker, pools: list[ResourcePool]) -> None:
    """A pool may change only if every live allocation from it stays inside."""
    for pool in pools:
        live = session.exec(select(Allocation).where(
            Allocation.scope == pool.id, col(Allocation.released_at).is_(None),
            Allocation.kind == pool.kind)).all()
        stored = session.get(ResourcePool, pool.id)
        if stored is not None and stored.kind != pool.kind and live:
            chk.add(f"pool {pool.id}", f"cannot change kind from {stored.kind}: "
                    f"{len(live)} live allocation(s)")
            continue
        outside = [a.value for a in live if not _in_pool(pool.kind, pool.range, a.value)]
        if outside:
            chk.add(f"pool {pool.id}", f"range {pool.range} leaves out live allocations "
                    f"{', '.join(outside[:5])}")


_RANK: Final = {s: i for i, s in enumerate(LIFECYCLE)}


def _upsert(session: Session, report: LoadReport, label: str, row: Any,
            fields: tuple[str, ...], *, status: bool = False) -> None:
    """Insert ``row`` or copy its ``fields`` onto the stored one where they differ. A
    lifecycle status only moves forward (draft -> active -> retired)."""
    stored = session.get(type(row), row.id)
    if stored is None:
        session.add(row)
        report.created.append(label)
        return
    changed = False
    for name in fields:
        if getattr(stored, name) != getattr(row, name):
            setattr(stored, name, getattr(row, name))
            changed = True
    if status and stored.lifecycle_status != row.lifecycle_status:
        if _RANK[row.lifecycle_status] > _RANK[stored.lifecycle_status]:
            stored.lifecycle_status = row.lifecycle_status
            changed = True
        else:
            report.notes.append(f"{label}: kept {stored.lifecycle_status} (the file says "
                                f"{row.lifecycle_status}; the life cycle only moves forward)")
    if changed:
        if hasattr(stored, "updated_at"):
            stored.updated_at = utcnow()
        session.add(stored)
        report.updated.append(label)
    else:
        report.unchanged.append(label)


def load_catalogue(engine: Engine, path: Path | str | None = None) -> LoadReport:
    """Check the catalogue file (default: the shipped one) and write it in one
    transaction: pools, specifications, offerings and their prices. Refused as a whole
    with every problem listed (:class:`CatalogueError`), nothing written."""
    path = Path(path) if path is not None else CATALOGUE_FILE
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueError(f"catalogue {source}: cannot read it ({exc.strerror})",
                             source=source) from None
    except yaml.YAMLError as exc:
        raise CatalogueError(f"catalogue {source}: not valid YAML ({exc})",
                             source=source) from None
    report = LoadReport(source=source)
    with Session(engine) as session:
        parsed = _parse(session, raw, source)
        for pool in parsed.pools:
            _upsert(session, report, f"pool {pool.id}", pool, ("kind", "range", "description"))
        for spec in parsed.specs:
            _upsert(session, report, f"specification {spec.id}", spec,
                    ("name", "description", "version", "characteristics_json"), status=True)
        session.flush()
        for offering in parsed.offerings:
            _upsert(session, report, f"offering {offering.id}", offering,
                    ("name", "description", "spec_id", "service", "params_json",
                     "allocations_json", "usage_json", "sla_json", "currency"), status=True)
        session.flush()
        for oid, prices in parsed.prices.items():
            keep = {p.id for p in prices}
            for price in prices:
                _upsert(session, report, f"price {price.id}", price,
                        ("offering_id", "name", "price_type", "period", "amount",
                         "currency", "unit", "tiers_json"))
            for old in session.exec(select(ProductOfferingPrice).where(
                    ProductOfferingPrice.offering_id == oid)).all():
                if old.id not in keep:
                    session.delete(old)
                    report.removed.append(f"price {old.id}")
        session.commit()
    return report
