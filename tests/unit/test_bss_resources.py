"""Allocation of ports, address blocks and VLANs: aligned first-free blocks that never
overlap whatever their sizes, the database's partial unique index as the last word, and
real concurrency (threads with their own sessions on a WAL SQLite file)."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

import bss.resources as resources
from bss.model import Allocation, ResourcePool, init_bss_db
from bss.resources import (
    Holder,
    PoolExhausted,
    ResourceBusy,
    ResourceError,
    allocate,
    live_allocations,
    release,
)
from topology.db import get_engine, init_db


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = get_engine(f"sqlite:///{tmp_path / 'res.db'}")
    init_db(eng)
    init_bss_db(eng)
    with Session(eng) as s:
        s.add(ResourcePool(id="v4", kind="ipv4", range="203.0.113.0/26"))
        s.add(ResourcePool(id="vl", kind="vlan", range="100-104,200-201"))
        s.commit()
    yield eng
    eng.dispose()


def block(engine: Engine, n: int, prefix_len: int) -> str:
    return allocate(engine, Holder(None, n), wants={
        "b": {"kind": "ipv4", "pool": "v4", "prefix_len": prefix_len}})["b"].value


def test_blocks_are_aligned_first_free_and_never_overlap(engine: Engine) -> None:
    assert block(engine, 1, 30) == "203.0.113.0/30"
    # a /29 cannot start at .0 (the /30 is there) nor at .4 (not aligned): .8
    assert block(engine, 2, 29) == "203.0.113.8/29"
    assert block(engine, 3, 30) == "203.0.113.4/30"  # the gap left before the /29
    assert block(engine, 4, 28) == "203.0.113.16/28"
    release(engine, item_id=2)
    assert block(engine, 5, 30) == "203.0.113.8/30"  # freed space is used again
    with Session(engine) as s:
        live = [ipaddress.IPv4Network(a.value) for a in live_allocations(s, kind="ipv4")]
    assert all(not a.overlaps(b) for i, a in enumerate(live) for b in live[i + 1:])


def test_an_exhausted_pool_and_bad_requests_hold_nothing(engine: Engine) -> None:
    for n in range(4):
        block(engine, n, 28)
    with pytest.raises(PoolExhausted, match="no free /28"):
        block(engine, 9, 28)
    with pytest.raises(ResourceError, match="no resource pool 'nope'"):
        allocate(engine, Holder(None, 1), port=("r1", "eth4"),
                 wants={"b": {"kind": "ipv4", "pool": "nope", "prefix_len": 29}})
    with pytest.raises(ResourceError, match="cannot hand out /24"):
        allocate(engine, Holder(None, 1), port=("r1", "eth4"),
                 wants={"b": {"kind": "ipv4", "pool": "v4", "prefix_len": 24}})
    with Session(engine) as s:  # the port of the refused requests was not kept
        assert live_allocations(s, kind="port") == []


def test_vlans_come_from_every_range_in_turn(engine: Engine) -> None:
    got = [allocate(engine, Holder(None, n), wants={"v": {"kind": "vlan", "pool": "vl"}})["v"]
           .value for n in range(7)]
    assert got == ["100", "101", "102", "103", "104", "200", "201"]
    with pytest.raises(PoolExhausted):
        allocate(engine, Holder(None, 8), wants={"v": {"kind": "vlan", "pool": "vl"}})


def test_a_held_port_is_busy_until_released(engine: Engine) -> None:
    allocate(engine, Holder(None, 1, "P1"), port=("r1", "eth4"))
    with pytest.raises(ResourceBusy, match="r1:eth4 is already held by product P1"):
        allocate(engine, Holder(None, 2), port=("r1", "eth4"),
                 wants={"v": {"kind": "vlan", "pool": "vl"}})
    with Session(engine) as s:  # all or nothing: the VLAN of the refused request is free
        assert live_allocations(s, kind="vlan") == []
    allocate(engine, Holder(None, 3), port=("r2", "eth4"))  # another device's eth4
    release(engine, product_id="P1")
    assert allocate(engine, Holder(None, 4), port=("r1", "eth4"))["port"].value == "eth4"


def test_the_database_refuses_a_second_live_allocation(engine: Engine) -> None:
    with Session(engine) as s:
        s.add(Allocation(kind="vlan", scope="vl", value="150"))
        s.commit()
        s.add(Allocation(kind="vlan", scope="vl", value="150"))
        with pytest.raises(IntegrityError):
            s.commit()
        s.rollback()
        # a released one does not count
        row = s.exec(select(Allocation)).one()
        row.released_at = row.allocated_at
        s.add(row)
        s.add(Allocation(kind="vlan", scope="vl", value="150"))
        s.commit()


def test_a_stale_read_collides_on_the_index_and_is_retried(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    allocate(engine, Holder(None, 1), wants={"v": {"kind": "vlan", "pool": "vl"}})  # 100
    real = resources._live_values
    calls: list[int] = []

    def stale_once(session: Session, kind: str, scope: str) -> list[str]:
        calls.append(1)
        return [] if len(calls) == 1 else real(session, kind, scope)

    monkeypatch.setattr(resources, "_live_values", stale_once)
    got = allocate(engine, Holder(None, 2), wants={"v": {"kind": "vlan", "pool": "vl"}})
    assert got["v"].value == "101"
    assert len(calls) == 2  # the first attempt hit the unique index


def test_concurrent_allocators_never_share_a_value(engine: Engine) -> None:
    threads_n = 24
    barrier = threading.Barrier(threads_n)
    results: dict[int, dict[str, str]] = {}
    errors: dict[int, Exception] = {}

    def worker(n: int) -> None:
        barrier.wait()
        try:
            rows = allocate(engine, Holder(None, n), port=("r1", f"eth{n % 12}"), wants={
                "b": {"kind": "ipv4", "pool": "v4", "prefix_len": 29 if n % 2 else 30},
                "v": {"kind": "vlan", "pool": "vl"}})
            results[n] = {k: r.value for k, r in rows.items()}
        except ResourceError as exc:
            errors[n] = exc

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 12 ports for 24 workers, 7 VLANs: some must lose, and only with a clear reason
    assert all(isinstance(e, (ResourceBusy, PoolExhausted)) for e in errors.values()), errors
    assert len(results) == 7, (results, errors)
    ports = [r["port"] for r in results.values()]
    vlans = [r["v"] for r in results.values()]
    blocks = [ipaddress.IPv4Network(r["b"]) for r in results.values()]
    assert len(set(ports)) == len(ports)
    assert len(set(vlans)) == len(vlans)
    assert all(not a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1:])
    with Session(engine) as s:  # nothing a loser touched stayed held
        live = live_allocations(s)
    assert len(live) == 3 * len(results)
