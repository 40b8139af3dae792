"""Device leases: one change at a time per device across threads, processes and a crash;
the fulfilment agent holds them for apply, rollback and restore, and refuses with the
holder's name, before pushing anything, when a device stays busy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from agents.fulfilment import ConfigChange, DeviceBusy, FulfilmentAgent, ServiceRequest
from agents.fulfilment.leases import HOST, DeviceLease, device_leases, init_lease_db
from northbound.problems import error_status
from tests.unit.test_bss_orders import (  # noqa: F401 - fixtures
    FakeDriver,
    FakeNetwork,
    engine,
    net,
    probe,
)
from topology.credentials import CredentialStore
from topology.db import get_engine
from topology.inventory import utcnow
from topology.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def db(tmp_path: Path) -> Engine:
    eng = get_engine(f"sqlite:///{tmp_path / 'leases.db'}")
    init_lease_db(eng)
    return eng


def leases(eng: Engine) -> list[DeviceLease]:
    with Session(eng) as s:
        return list(s.exec(select(DeviceLease)).all())


def test_a_second_holder_waits_for_the_first_and_leases_are_given_back(db: Engine) -> None:
    events: list[str] = []
    first_in, release = threading.Event(), threading.Event()

    def first() -> None:
        with device_leases(db, ["r1"], holder="first"):
            events.append("first in")
            first_in.set()
            release.wait(10)
            events.append("first out")

    t = threading.Thread(target=first)
    t.start()
    first_in.wait(10)
    threading.Timer(0.5, release.set).start()
    with device_leases(db, ["r2", "r1"], holder="second", wait_s=10):
        events.append("second in")
        assert {lease.device for lease in leases(db)} == {"r1", "r2"}
        assert {lease.holder for lease in leases(db)} == {"second"}
    t.join(10)
    assert events == ["first in", "first out", "second in"]
    assert leases(db) == []


@contextmanager
def held_elsewhere(eng: Engine, device: str, holder: str) -> Iterator[None]:
    """``device``'s lease held by another thread (another change) for the block."""
    inside, release = threading.Event(), threading.Event()

    def other_change() -> None:
        with device_leases(eng, [device], holder=holder):
            inside.set()
            release.wait(30)

    t = threading.Thread(target=other_change)
    t.start()
    assert inside.wait(30)
    try:
        yield
    finally:
        release.set()
        t.join(30)


def test_a_busy_device_is_refused_with_its_holder_and_nothing_is_held(db: Engine) -> None:
    with held_elsewhere(db, "r1", "anna (product order ORD-1)"):
        with pytest.raises(DeviceBusy) as busy, \
                device_leases(db, ["r0", "r1"], holder="bob", wait_s=0.3):
            pytest.fail("the lease was given while another holds it")
        assert busy.value.device == "r1"
        assert "r1 is being changed by anna (product order ORD-1)" in str(busy.value)
        assert "nothing was pushed" in str(busy.value)
        assert error_status(busy.value)[0] == 409  # REST: Conflict, try again later
        # r0, taken before r1 was found busy, was given back
        assert [lease.device for lease in leases(db)] == ["r1"]


def test_a_thread_holding_a_lease_may_take_it_again(db: Engine) -> None:
    with device_leases(db, ["r1"], holder="outer"):
        with device_leases(db, ["r1"], holder="inner", wait_s=0):
            assert [lease.holder for lease in leases(db)] == ["outer"]
        assert [lease.holder for lease in leases(db)] == ["outer"]  # still held
    assert leases(db) == []


def test_stale_leases_are_taken_over_and_live_ones_are_not(db: Engine) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)
    now = utcnow()
    with Session(db) as s:
        s.add(DeviceLease(device="dead", holder="a crashed process", host=HOST,
                          pid=dead_pid, expires_at=now + timedelta(hours=1)))
        s.add(DeviceLease(device="expired", holder="elsewhere", host="other-host", pid=1,
                          expires_at=now - timedelta(seconds=1)))
        s.add(DeviceLease(device="alive", holder="busy elsewhere", host="other-host",
                          pid=1, expires_at=now + timedelta(hours=1)))
        s.commit()
    with device_leases(db, ["dead", "expired"], holder="me", wait_s=0):
        assert {(lease.device, lease.holder) for lease in leases(db)} == {
            ("dead", "me"), ("expired", "me"), ("alive", "busy elsewhere")}
    with pytest.raises(DeviceBusy, match="busy elsewhere"), \
            device_leases(db, ["alive"], holder="me", wait_s=0.2):
        pass


def test_a_lease_is_seen_by_another_process_and_freed_by_its_crash(
        db: Engine, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    code = (f"import time, pathlib\nfrom topology.db import get_engine\n"
            f"from agents.fulfilment.leases import device_leases\n"
            f"e = get_engine({str(db.url)!r})\n"
            f"with device_leases(e, ['r1'], holder='config apply in a shell'):\n"
            f"    pathlib.Path({str(ready)!r}).touch()\n"
            f"    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(DeviceBusy) as busy, \
                device_leases(db, ["r1"], holder="serve", wait_s=0.3):
            pass
        assert busy.value.holder == "config apply in a shell"
        proc.send_signal(signal.SIGKILL)  # it dies holding the lease
        proc.wait(30)
        with device_leases(db, ["r1"], holder="serve", wait_s=0):
            assert [lease.holder for lease in leases(db)] == ["serve"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


class SlowDriver(FakeDriver):
    """A fake CLI driver that takes its time and counts pushes in flight per device."""

    in_flight: ClassVar[dict[str, int]] = {}
    most: ClassVar[dict[str, int]] = {}
    guard = threading.Lock()

    def open(self) -> None:
        with self.guard:
            n = self.in_flight.get(self.target.device, 0) + 1
            self.in_flight[self.target.device] = n
            self.most[self.target.device] = max(n, self.most.get(self.target.device, 0))

    def close(self) -> None:
        with self.guard:
            self.in_flight[self.target.device] -= 1

    def commit_config(self, revert_in_s: int | None = None) -> None:
        time.sleep(0.2)
        super().commit_config(revert_in_s)


def _agent(engine: Engine, tmp_path: Path, **kw: Any) -> FulfilmentAgent:  # noqa: F811
    return FulfilmentAgent(engine, store=CredentialStore(get_settings(str(tmp_path))),
                           drivers={"cli": SlowDriver}, **kw)  # type: ignore[dict-item]


def request(port: str) -> ServiceRequest:
    n = port[-1]
    return ServiceRequest("internet-access", "r1", {
        "interface": port, "address": f"100.64.{20 + int(n)}.1/24",
        "description": f"customer {n}"})


def test_the_agent_never_overlaps_two_changes_of_one_device(
        engine: Engine, net: FakeNetwork, tmp_path: Path) -> None:  # noqa: F811
    SlowDriver.most.clear()
    agent = _agent(engine, tmp_path)
    results: list[str] = []
    threads = [threading.Thread(target=lambda p=p: results.append(
        agent.apply([request(p)], who="t").state)) for p in ("eth1", "eth2", "eth5", "eth6")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == ["confirmed"] * 4
    assert SlowDriver.most["r1"] == 1  # one at a time, though four ran at once
    for n in (1, 2, 5, 6):  # and none undid another
        assert f"ip address 100.64.{20 + n}.1/24" in net.devices["r1"].running
    assert leases(engine) == []


def test_a_change_refused_as_busy_pushes_and_records_nothing(
        engine: Engine, net: FakeNetwork, tmp_path: Path) -> None:  # noqa: F811
    agent = _agent(engine, tmp_path, lease_wait_s=0.3)
    before = net.devices["r1"].running
    with held_elsewhere(engine, "r1", "order ORD-9 (elsewhere)"):
        with pytest.raises(DeviceBusy, match="order ORD-9"):
            agent.apply([request("eth1")], who="t")
        with Session(engine) as s:
            assert s.exec(select(ConfigChange)).all() == []
        assert net.devices["r1"].running == before and net.devices["r1"].commits == 0
        # a plan (a dry run) only reads: it does not wait for the lease
        assert agent.apply([request("eth1")], who="t", dry_run=True).state == "planned"
    assert agent.apply([request("eth1")], who="t").state == "confirmed"
    assert net.devices["r1"].commits == 1


def test_who_holds_a_device_is_shown_by_the_cli_and_the_api(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from northbound.api import create_app
    from northbound.cli_config import config_app

    monkeypatch.setenv("SWITCHBOARD_DATABASE_URL", str(engine.url))
    client = TestClient(create_app(engine))
    with held_elsewhere(engine, "r1", "order ORD-7 (product order ORD-7 item 1 (add))"):
        shown = CliRunner().invoke(config_app, ["leases", "--json"])
        assert shown.exit_code == 0, shown.output
        [cli_doc] = json.loads(shown.output)
        api = client.get("/api/config/leases")
        assert api.status_code == 200 and api.headers["X-Total-Count"] == "1"
        [api_doc] = api.json()
        for doc in (cli_doc, api_doc):
            assert doc["device"] == "r1" and doc["stale"] is None
            assert doc["holder"] == "order ORD-7 (product order ORD-7 item 1 (add))"
            assert doc["pid"] == os.getpid() and doc["host"] == HOST
        text = CliRunner().invoke(config_app, ["leases"], env={"COLUMNS": "200"}).output
        assert "r1" in text and "order ORD-7" in text
    assert client.get("/api/config/leases").json() == []
    assert "no device is being changed" in CliRunner().invoke(
        config_app, ["leases"], env={"COLUMNS": "200"}).output


def test_a_holder_without_a_name_still_makes_the_next_one_wait_and_give_up(
        db: Engine) -> None:
    with held_elsewhere(db, "r1", ""), pytest.raises(DeviceBusy), \
            device_leases(db, ["r1"], holder="me", wait_s=0.3):
        pytest.fail("the lease was given while another holds it")
