"""Resource allocation for orders: the site's port, IPv4 blocks from a pool, VLAN ids.

    allocate(engine, holder, port=(device, interface), wants={NAME: spec})
        every resource of one order item in ONE transaction (all or nothing):
          port   kind "port", scope the device's name, value the interface's name
          ipv4   the first free block of ``prefix_len`` aligned in the pool's CIDR that
                 overlaps no live block of that pool (whatever its size)
          vlan   the lowest free id of the pool's range ("100-199", or "100-149,200-249")
    release(engine, item_id=... | product_id=...)   ``released_at`` set: the value is free

Concurrent orders never hold the same value: a live allocation is one whose
``released_at`` is null, and a partial unique index on (kind, scope, value) over live
rows refuses a second one in the database itself. On SQLite the transaction starts
with ``BEGIN IMMEDIATE`` (writers queue, so the read of the live blocks and the insert
see the same state, which the overlap check of different block sizes needs); on
PostgreSQL the pool rows are locked ``FOR UPDATE``. Whatever still collides (a
``IntegrityError`` from the index, a busy database) is retried from the start, at most
:data:`MAX_ATTEMPTS` times.

A port that another live allocation holds is :class:`ResourceBusy` (another product
serves that port); an exhausted pool is :class:`PoolExhausted`; a request naming an
unknown pool or kind is :class:`ResourceError`. Nothing is held after any of them.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from bss.model import Allocation, ResourcePool
from topology.errors import SwitchboardError
from topology.inventory import utcnow

__all__ = [
    "MAX_ATTEMPTS",
    "Holder",
    "PoolExhausted",
    "ResourceBusy",
    "ResourceError",
    "allocate",
    "live_allocations",
    "parse_vlan_range",
    "release",
]

MAX_ATTEMPTS: Final = 8
KINDS: Final = ("ipv4", "vlan")


class ResourceError(SwitchboardError):
    """A resource request was refused; nothing was allocated."""


class ResourceBusy(ResourceError):
    """The value asked for (a port) is held by another live allocation."""

    def __init__(self, message: str, *, kind: str, scope: str, value: str,
                 held_by: str | None) -> None:
        super().__init__(message)
        self.kind, self.scope, self.value, self.held_by = kind, scope, value, held_by


class PoolExhausted(ResourceError):
    """No free value is left in the pool."""

    def __init__(self, message: str, *, pool: str) -> None:
        super().__init__(message)
        self.pool = pool


@dataclass(frozen=True)
class Holder:
    """Who holds an allocation: the order, its item and (once known) the product."""

    order_id: str | None
    item_id: int | None = None
    product_id: str | None = None


def parse_vlan_range(text: str) -> list[tuple[int, int]]:
    """``"100-199,300"`` as [(100, 199), (300, 300)]; ``ValueError`` with the reason."""
    ranges: list[tuple[int, int]] = []
    for part in text.split(","):
        low, sep, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high) if sep else int(low)
        except ValueError:
            raise ValueError(f"VLAN range {text!r}: {part.strip()!r} is not N or N-M") from None
        if not 1 <= first <= last <= 4094:
            raise ValueError(f"VLAN range {text!r}: {part.strip()!r} is not within 1..4094 "
                             "in increasing order")
        ranges.append((first, last))
    return ranges


def live_allocations(session: Session, *, kind: str | None = None,
                     scope: str | None = None) -> list[Allocation]:
    """Allocations not released, oldest first."""
    q = select(Allocation).where(col(Allocation.released_at).is_(None))
    if kind is not None:
        q = q.where(Allocation.kind == kind)
    if scope is not None:
        q = q.where(Allocation.scope == scope)
    return list(session.exec(q.order_by(col(Allocation.id))).all())


def _live_values(session: Session, kind: str, scope: str) -> list[str]:
    return [a.value for a in live_allocations(session, kind=kind, scope=scope)]


def _first_free_block(pool: ResourcePool, prefix_len: int, taken: Iterable[str]) -> str:
    try:
        network = ipaddress.IPv4Network(pool.range, strict=True)
    except ValueError as exc:
        raise ResourceError(f"pool {pool.id}: range {pool.range!r} is not an IPv4 "
                            f"network: {exc}") from None
    if not network.prefixlen <= prefix_len <= 32:
        raise ResourceError(f"pool {pool.id} ({network}) cannot hand out /{prefix_len} "
                            f"blocks (between /{network.prefixlen} and /32)")
    blocks = sorted((ipaddress.IPv4Network(v) for v in taken),
                    key=lambda n: int(n.network_address))
    size = 1 << (32 - prefix_len)
    start = int(network.network_address)
    end = int(network.broadcast_address)
    candidate = start
    while candidate + size - 1 <= end:
        last = candidate + size - 1
        clash = next((b for b in blocks if int(b.network_address) <= last
                      and candidate <= int(b.broadcast_address)), None)
        if clash is None:
            return f"{ipaddress.IPv4Address(candidate)}/{prefix_len}"
        after = int(clash.broadcast_address) + 1
        candidate = ((after + size - 1) // size) * size  # the next aligned start
    raise PoolExhausted(f"pool {pool.id} ({network}) has no free /{prefix_len} block left",
                        pool=pool.id)


def _first_free_vlan(pool: ResourcePool, taken: Iterable[str]) -> str:
    try:
        ranges = parse_vlan_range(pool.range)
    except ValueError as exc:
        raise ResourceError(f"pool {pool.id}: {exc}") from None
    used = {int(v) for v in taken if v.isdigit()}
    for first, last in ranges:
        for vlan in range(first, last + 1):
            if vlan not in used:
                return str(vlan)
    raise PoolExhausted(f"pool {pool.id} ({pool.range}) has no free VLAN id left",
                        pool=pool.id)


def _begin(session: Session, pool_ids: Sequence[str]) -> None:
    """Start the allocation's transaction so that concurrent allocators queue."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif pool_ids:
        session.exec(select(ResourcePool).where(col(ResourcePool.id).in_(pool_ids))
                     .with_for_update()).all()


def _once(engine: Engine, holder: Holder, port: tuple[str, str] | None,
          wants: Mapping[str, Mapping[str, Any]]) -> dict[str, Allocation]:
    pool_ids = sorted({str(w.get("pool", "")) for w in wants.values()})
    with Session(engine, expire_on_commit=False) as session:
        _begin(session, pool_ids)
        rows: dict[str, Allocation] = {}
        if port is not None:
            device, interface = port
            held = session.exec(select(Allocation).where(
                Allocation.kind == "port", Allocation.scope == device,
                Allocation.value == interface,
                col(Allocation.released_at).is_(None))).first()
            if held is not None:
                raise ResourceBusy(
                    f"port {device}:{interface} is already held by "
                    f"{_who(held)}", kind="port", scope=device, value=interface,
                    held_by=held.product_id or held.order_id)
            rows["port"] = Allocation(kind="port", scope=device, value=interface,
                                      order_id=holder.order_id, item_id=holder.item_id,
                                      product_id=holder.product_id)
        for name, want in wants.items():
            kind = str(want.get("kind", ""))
            pool_id = str(want.get("pool", ""))
            if kind not in KINDS:
                raise ResourceError(f"allocation {name}: kind {kind!r} is not one of "
                                    f"{', '.join(KINDS)}")
            pool = session.get(ResourcePool, pool_id)
            if pool is None:
                raise ResourceError(f"allocation {name}: no resource pool {pool_id!r}")
            if pool.kind != kind:
                raise ResourceError(f"allocation {name}: pool {pool_id} holds {pool.kind}, "
                                    f"not {kind}")
            taken = _live_values(session, kind, pool_id)
            taken += [r.value for r in rows.values() if r.kind == kind and r.scope == pool_id]
            if kind == "ipv4":
                prefix_len = want.get("prefix_len")
                if isinstance(prefix_len, bool) or not isinstance(prefix_len, int):
                    raise ResourceError(f"allocation {name}: prefix_len must be an integer")
                value = _first_free_block(pool, prefix_len, taken)
            else:
                value = _first_free_vlan(pool, taken)
            rows[name] = Allocation(kind=kind, scope=pool_id, value=value,
                                    order_id=holder.order_id, item_id=holder.item_id,
                                    product_id=holder.product_id)
        for row in rows.values():
            session.add(row)
        session.commit()
        return rows


def _who(row: Allocation) -> str:
    if row.product_id:
        return f"product {row.product_id}" + (f" (order {row.order_id})"
                                              if row.order_id else "")
    return f"order {row.order_id}" if row.order_id else f"allocation {row.id}"


def _is_unique_violation(exc: IntegrityError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code == "23505" or "UNIQUE constraint failed" in str(exc.orig)


def allocate(engine: Engine, holder: Holder, *, port: tuple[str, str] | None = None,
             wants: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Allocation]:
    """Hold the port and every resource of ``wants`` (``{NAME: {"kind": "ipv4", "pool":
    POOL, "prefix_len": 29}}`` or ``{NAME: {"kind": "vlan", "pool": POOL}}``) in one
    transaction; the rows by name (the port under ``"port"``). Retried on a collision,
    at most :data:`MAX_ATTEMPTS` times (see the module docstring)."""
    wants = dict(wants or {})
    if "port" in wants:
        raise ResourceError("allocation name 'port' is reserved for the site's port")
    last: Exception | None = None
    for attempt in range(MAX_ATTEMPTS):
        try:
            return _once(engine, holder, port, wants)
        except IntegrityError as exc:
            if not _is_unique_violation(exc):
                raise ResourceError(f"allocation for order {holder.order_id} refused by the "
                                    f"database: {exc.orig}") from None
            last = exc  # another allocator won this value: look again
        except OperationalError as exc:  # the database stayed busy past its timeout
            if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                raise
            last = exc
        time.sleep(0.01 * (attempt + 1))
    raise ResourceError(f"allocation for order {holder.order_id} item {holder.item_id} "
                        f"still collided after {MAX_ATTEMPTS} attempts: {last}")


def release(engine: Engine, *, item_id: int | None = None, product_id: str | None = None,
            order_id: str | None = None) -> list[Allocation]:
    """Release the live allocations held by the item, the product or the order (the
    first of them given); the rows released."""
    with Session(engine, expire_on_commit=False) as session:
        q = select(Allocation).where(col(Allocation.released_at).is_(None))
        if item_id is not None:
            q = q.where(Allocation.item_id == item_id)
        elif product_id is not None:
            q = q.where(Allocation.product_id == product_id)
        elif order_id is not None:
            q = q.where(Allocation.order_id == order_id)
        else:
            raise ResourceError("release: name an item, a product or an order")
        rows = list(session.exec(q).all())
        now = utcnow()
        for row in rows:
            row.released_at = now
            row.state = "released"
            session.add(row)
        session.commit()
        return rows
