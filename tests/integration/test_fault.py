"""The fault agent against the core lab: real traps from the routers' snmpd after real
links go down, a router powered off that stops answering the real poller, a flood of
identical traps and a flapping interface, with garbage on the wire in between."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import or_
from sqlmodel import Session, col, func, select

from agents.fault.model import ACTIVE_STATES, Alarm, init_fault_db
from agents.fault.service import FaultService
from agents.fault.settings import FaultSettings
from agents.performance.poller import Poller
from agents.performance.settings import PerfSettings
from collectors.ber import Message, PduType, VarBind, encode_message
from lab.pytest_plugin import LabHandle
from topology.db import get_engine

pytestmark = pytest.mark.lab
FLOOD_COMMUNITY = b"flood-test"  # accepted by the test's receiver only, never a lab secret


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "northbound.cli", *args], capture_output=True,
                          text=True, timeout=300, check=False, env=os.environ.copy())


@pytest.fixture(scope="module")
def discovered(core_lab: LabHandle) -> LabHandle:
    res = cli("discover", "--lab", core_lab.name, "--json")
    assert res.returncode == 0, res.stderr
    assert len(json.loads(res.stdout)["found"]) == len(core_lab.managed())
    init_fault_db(get_engine())
    return core_lab


class Running:
    """The fault service (and optionally a poller) in a thread with its own event loop,
    bound to the lab's trap target, while the test works the lab."""

    def __init__(self, lab: LabHandle, settings: FaultSettings,
                 poller: Poller | None = None) -> None:
        self.service = FaultService(
            get_engine(), settings=settings, host=lab.trap_host, port=lab.trap_port,
            communities={lab.credentials.snmp_community.encode(): lab.name,
                         FLOOD_COMMUNITY: "flood"})
        self.poller = poller
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self.service.start()
            poll_stop = asyncio.Event()
            task = (asyncio.create_task(self.poller.run(poll_stop)) if self.poller else None)
            self._ready.set()
            await self._stop.wait()
            poll_stop.set()
            if task is not None:
                await task
            await self.service.stop()

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the test thread
            self._error = exc
            self._ready.set()

    def __enter__(self) -> Running:
        self._thread.start()
        assert self._ready.wait(30), "the fault service did not start"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        assert not self._thread.is_alive(), "the fault service did not stop"


def first_new_id() -> int:
    with Session(get_engine()) as s:
        return int(s.exec(select(func.max(Alarm.id))).one() or 0) + 1


def alarms(since_id: int, *, active: bool = True) -> list[Alarm]:
    """Alarms made since the test began, and open ones whatever their age (an alarm
    cleared by the previous test may be reopened: the flap window spans tests)."""
    with Session(get_engine()) as s:
        q = select(Alarm).where(or_(col(Alarm.id) >= since_id,
                                    col(Alarm.state).in_(ACTIVE_STATES)))
        if active:
            q = q.where(col(Alarm.state).in_(ACTIVE_STATES))
        return list(s.exec(q.order_by(col(Alarm.id))).all())


def wait_for(what: str, check: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout_s} s; last seen {last!r}")


def describe(rows: list[Alarm]) -> list[tuple[Any, ...]]:
    return [(a.id, a.device, a.resource_type, a.resource, a.problem, a.state, a.parent_id)
            for a in rows]


def settled(since_id: int, check: Callable[[list[Alarm]], bool],
            timeout_s: float) -> list[Alarm]:
    """The active alarms once ``check`` holds for them twice in a row, 2 s apart (so a
    trap still on its way does not pass the test by being late)."""
    def ok() -> tuple[list[Alarm]] | None:
        rows = alarms(since_id)
        if not check(rows):
            return None
        time.sleep(2)
        again = alarms(since_id)
        return (again,) if check(again) else None  # a tuple: true even around []

    try:
        return wait_for("alarms", ok, timeout_s)[0]  # type: ignore[no-any-return]
    except AssertionError:
        raise AssertionError(f"alarms never settled; now {describe(alarms(since_id))}") from None


def ends(label: str) -> frozenset[str]:
    """A link alarm's resource ``a:x--b:y`` as its two ends, whichever way it is stored."""
    return frozenset(label.split("--"))


def roots(rows: list[Alarm]) -> list[Alarm]:
    return [a for a in rows if a.parent_id is None]


def kids(rows: list[Alarm], parent: Alarm) -> list[Alarm]:
    return [a for a in rows if a.parent_id == parent.id]


@pytest.fixture
def fast_flaps() -> FaultSettings:
    return FaultSettings(flap_count=4, flap_window_s=120, flap_quiet_s=8,
                         perf_events_every_s=1.0)


def test_link_down_is_one_root_link_alarm_over_both_interface_alarms(
        discovered: LabHandle, fast_flaps: FaultSettings) -> None:
    lab = discovered
    since = first_new_id()
    with Running(lab, fast_flaps):
        lab.lab.set_link("r1", "eth1", up=False)  # r1:eth1 -- r2:eth1
        try:
            def one_link_root(rows: list[Alarm]) -> bool:
                top = roots(rows)
                if len(top) != 1 or top[0].resource_type != "link":
                    return False
                ifaces = {(a.device, a.resource) for a in kids(rows, top[0])
                          if a.resource_type == "interface"}
                return ifaces == {("r1", "eth1"), ("r2", "eth1")}

            rows = settled(since, one_link_root, 40)
            [root] = roots(rows)
            assert ends(root.resource) == {"r1:eth1", "r2:eth1"}
            assert "seen from both ends" in root.specific_problem
            # anything else (the OSPF neighbours' alarms) sits under the link, not beside it
            assert all(a.parent_id is not None for a in rows if a is not root)
            shown = cli("alarms", "show", str(root.id), "--json")
            assert shown.returncode == 0, shown.stderr
            detail = json.loads(shown.stdout)
            assert detail["isRootCause"] is True
            assert {c["resource"] for c in detail["x_children"]} >= {"eth1"}
        finally:
            lab.lab.set_link("r1", "eth1", up=True)
        settled(since, lambda rows: rows == [], 90)
    every = alarms(since, active=False)
    assert {a.state for a in every} == {"cleared"}


def test_a_router_that_stops_is_the_root_of_its_neighbours_link_alarms(
        discovered: LabHandle, fast_flaps: FaultSettings) -> None:
    lab = discovered
    since = first_new_id()
    poller = Poller(get_engine(), PerfSettings(interval_s=3, jitter_s=0.5, timeout_s=1,
                                               retries=0, budget_s=10))
    with Running(lab, fast_flaps, poller):
        time.sleep(4)  # a first good poll of every device
        lab.lab.stop_node("r2")
        try:
            def r2_root(rows: list[Alarm]) -> bool:
                top = roots(rows)
                if len(top) != 1 or (top[0].device, top[0].problem) != (
                        "r2", "device-unreachable"):
                    return False
                links = {ends(a.resource) for a in kids(rows, top[0])
                         if a.resource_type == "link"}
                return links == {ends("r1:eth1--r2:eth1"), ends("r2:eth2--r3:eth1")}

            rows = settled(since, r2_root, 90)
            [root] = roots(rows)
            links = [a for a in kids(rows, root) if a.resource_type == "link"]
            assert all("leads to r2" in a.correlation for a in links)
            # the neighbours' own interface alarms are under the links, not loose
            for link in links:
                assert {a.resource_type for a in kids(rows, link)} >= {"interface"}, \
                    describe(rows)
        finally:
            lab.lab.start_node("r2")
        settled(since, lambda rows: rows == [], 120)


def _send_from(lab: LabHandle, node: str, datagrams: list[bytes]) -> None:
    """Send datagrams to the trap target from inside a node (its source address is the
    node's mgmt address, so the receiver knows the sender). The data goes through stdin:
    nothing on a command line."""
    script = ("import socket,sys\n"
              "host, port = sys.argv[1], int(sys.argv[2])\n"
              "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
              "for line in sys.stdin:\n"
              "    s.sendto(bytes.fromhex(line.strip()), (host, port))\n")
    pod = lab.lab.pod(node)
    proc = subprocess.run(pod.enter(["python3", "-c", script, lab.trap_host,
                                     str(lab.trap_port)]),
                          input="".join(d.hex() + "\n" for d in datagrams), text=True,
                          capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


def test_a_thousand_identical_traps_are_one_alarm_and_garbage_is_counted(
        discovered: LabHandle, fast_flaps: FaultSettings) -> None:
    lab = discovered
    since = first_new_id()
    trap = encode_message(Message(1, FLOOD_COMMUNITY, PduType.TRAP_V2, 1, 0, 0, [
        VarBind("1.3.6.1.2.1.1.3.0", 4242, "TimeTicks"),
        VarBind("1.3.6.1.6.3.1.1.4.1.0", "1.3.6.1.6.3.1.1.5.3", "ObjectIdentifier"),
        VarBind("1.3.6.1.2.1.2.2.1.1.4242", 4242, "Integer")]))
    garbage = [trap[:20], trap[:1] + b"\x7f" + trap[2:], os.urandom(80), trap + b"\x00",
               trap.replace(FLOOD_COMMUNITY, b"wrong-test")]
    with Running(lab, fast_flaps) as running:
        _send_from(lab, "r1", garbage[:3] + [trap] * 500 + garbage[3:] + [trap] * 500)
        rows = wait_for("1000 traps counted",
                        lambda: [a for a in alarms(since) if a.count == 1000], 60)
        stats = running.service.receiver.stats
        assert stats.malformed == 4 and stats.bad_community == 1
    [alarm] = rows
    assert (alarm.device, alarm.resource, alarm.problem) == ("r1", "ifIndex 4242", "link-down")
    assert len([a for a in alarms(since) if a.device == "r1"]) == 1


def test_a_flapping_interface_is_one_flapping_alarm(
        discovered: LabHandle, fast_flaps: FaultSettings) -> None:
    lab = discovered
    since = first_new_id()
    with Running(lab, fast_flaps):
        for _ in range(3):  # r1:eth3 faces cust1 (a host: no link in the inventory)
            lab.lab.set_link("r1", "eth3", up=False)
            time.sleep(5)  # snmpd's monitor samples every 2 s
            lab.lab.set_link("r1", "eth3", up=True)
            time.sleep(5)
        rows = wait_for("a flapping alarm",
                        lambda: [a for a in alarms(since, active=False)
                                 if a.device == "r1" and a.resource == "eth3"
                                 and a.flapping], 30)
        mine = [a for a in alarms(since, active=False) if (a.device, a.resource) == (
            "r1", "eth3")]
        assert len(mine) == 1 and rows[0].count == 3
        assert rows[0].transitions == 6
        # quiet for flap_quiet_s: it clears by itself
        settled(since, lambda rows: not [a for a in rows if a.resource == "eth3"], 40)
