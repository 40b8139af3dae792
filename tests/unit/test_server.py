"""``switchboard serve``: one process that starts in seconds and stops on SIGTERM; the
app's lifespan (poller, discovery schedule) and discovery runs over REST."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from agents.discovery.agent import DiscoveryResult
from agents.performance.settings import PerfSettings
from northbound.api import create_app
from northbound.api_discovery import DiscoveryRunner, DiscoverySchedule
from topology.credentials import CredentialProfile, CredentialStore
from topology.db import get_engine
from topology.errors import SwitchboardError
from topology.inventory import DiscoveryRun, record_run_detail
from topology.settings import get_settings


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("SWITCHBOARD_HOME", str(path))
    monkeypatch.delenv("SWITCHBOARD_KEY_FILE", raising=False)
    (path / "settings.yaml").write_text("discovery:\n  sweep: false\n  timeout_s: 0.2\n"
                                        "  retries: 0\n")
    CredentialStore(get_settings(path)).save(CredentialProfile.model_validate(
        {"name": "loop", "snmp_community": "not-public"}))
    return path


def _fake_discover(calls: list[dict[str, Any]]) -> Any:
    async def discover(targets: Any, *, engine: Any, run_id: int | None = None,
                       **kwargs: Any) -> DiscoveryResult:
        calls.append({"targets": [str(t) for t in targets], "run_id": run_id})
        await asyncio.sleep(0.05)
        with Session(engine) as s:
            run = s.get(DiscoveryRun, run_id)
            assert run is not None and run.status == "queued"
            run.status = "ok"
            s.add(run)
            result = DiscoveryResult(
                run_id=run_id or 0, targets=[str(t) for t in targets], addresses_probed=1,
                no_answer=0, found=["r1"], new=["r1"], changed=[], missing=[], failed=[],
                partial=[], links=0, links_confirmed=0, unresolved_neighbors=0,
                seconds=0.05)
            record_run_detail(s, result.run_id, outcome=result.outcome())  # as it does
            s.commit()
        return result

    return discover


def test_discovery_run_over_rest(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("agents.discovery.discover", _fake_discover(calls))
    engine = get_engine(f"sqlite:///{home / 'switchboard.db'}")
    client = TestClient(create_app(engine))
    started = client.post("/api/discovery/runs",
                          json={"seeds": ["127.0.0.5"], "profiles": ["loop"]})
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    assert started.headers["Location"] == f"/api/discovery/runs/{run_id}"
    deadline = time.monotonic() + 10
    while True:
        doc = client.get(f"/api/discovery/runs/{run_id}").json()
        if doc["status"] not in ("queued", "running") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert doc["status"] == "ok" and doc["result"]["found"] == ["r1"]
    assert calls == [{"targets": ["127.0.0.5/32"], "run_id": run_id}]
    listed = client.get("/api/discovery/runs", params={"status": "ok", "limit": 1})
    assert listed.headers["X-Total-Count"] == "1" and listed.json()[0]["id"] == run_id
    # refused before any packet, nothing recorded: outside the scope, unknown profile
    for body, words in (({"seeds": ["192.0.2.1"], "profiles": ["loop"]}, "192.0.2.1"),
                        ({"seeds": ["127.0.0.5"], "profiles": ["nope"]}, "nope"),
                        ({"lab": "nolab"}, "nolab")):
        refused = client.post("/api/discovery/runs", json=body)
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert words in refused.json()["detail"]
    bad = client.post("/api/discovery/runs", json={})
    assert bad.status_code == 422 and "give a lab or seeds" in bad.json()["detail"]
    assert client.get("/api/discovery/runs/999").status_code == 404
    assert len(calls) == 1


def test_a_failed_run_keeps_why_for_a_later_server(home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(targets: Any, **kwargs: Any) -> DiscoveryResult:
        raise SwitchboardError("every credential profile was refused")

    monkeypatch.setattr("agents.discovery.discover", broken)
    engine = get_engine(f"sqlite:///{home / 'switchboard.db'}")
    client = TestClient(create_app(engine))
    run_id = client.post("/api/discovery/runs",
                         json={"seeds": ["127.0.0.5"], "profiles": ["loop"]}).json()["id"]
    deadline = time.monotonic() + 10
    while client.get(f"/api/discovery/runs/{run_id}").json()["status"] in (
            "queued", "running") and time.monotonic() < deadline:
        time.sleep(0.05)
    later = TestClient(create_app(engine))  # another server process, same database
    doc = later.get(f"/api/discovery/runs/{run_id}").json()
    assert doc["status"] == "failed" and doc["result"] is None
    assert doc["error"] == "every credential profile was refused"


def test_lifespan_runs_poller_and_schedule_and_stops(home: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("agents.discovery.discover", _fake_discover(calls))
    engine = get_engine(f"sqlite:///{home / 'switchboard.db'}")
    schedule = DiscoverySchedule(interval_s=0.2, seeds=("127.0.0.6",), profiles=("loop",))
    app = create_app(engine, poll=PerfSettings(interval_s=1, jitter_s=0),
                     discovery=schedule, stop_grace_s=5)
    started = time.monotonic()
    with TestClient(app) as client:
        assert client.get("/api/devices").status_code == 200
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.05)
        assert app.state.poller is not None
    assert time.monotonic() - started < 15
    assert calls and calls[0]["targets"] == ["127.0.0.6/32"]
    runner = app.state.discovery
    assert isinstance(runner, DiscoveryRunner) and not runner.busy


def test_interrupted_runs_are_settled(home: Path) -> None:
    engine = get_engine(f"sqlite:///{home / 'switchboard.db'}")
    create_app(engine)
    with Session(engine) as s:
        s.add(DiscoveryRun(targets="x", status="running"))
        s.add(DiscoveryRun(targets="y", status="ok"))
        s.commit()
    assert DiscoveryRunner(engine).settle_interrupted() == [1]
    with Session(engine) as s:
        assert s.get(DiscoveryRun, 1).status == "interrupted"  # type: ignore[union-attr]
        assert s.get(DiscoveryRun, 2).status == "ok"  # type: ignore[union-attr]


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_starts_in_seconds_and_stops_on_sigterm(home: Path) -> None:
    port = _free_port()
    env = {**os.environ, "SWITCHBOARD_HOME": str(home), "COLUMNS": "60"}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "northbound.cli", "serve", "--port", str(port),
         "--traps-host", "127.0.0.1", "--traps-port", str(_free_port(socket.SOCK_DGRAM))],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        status = None
        while time.monotonic() - started < 20 and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json",
                                            timeout=1) as answer:
                    status = answer.status
                break
            except OSError:
                time.sleep(0.1)
        assert status == 200, "the server did not answer"
        assert time.monotonic() - started < 10
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/devices", timeout=2)
        assert refused.value.code == 401
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # uvicorn shuts down, then re-raises the signal it caught (exit status of SIGTERM)
    assert proc.returncode in (0, -signal.SIGTERM), output
    lines = output.splitlines()
    first = next(line for line in lines if line.startswith("first start"))
    assert "user admin (role admin) was created with password " in first  # on one line
    assert f"http://127.0.0.1:{port}/" in output
    assert "poller" in output and "trap receiver" in output
    assert "Application shutdown complete" in output


def test_an_open_alarm_stream_does_not_hold_the_stop(home: Path) -> None:
    """A console left open (its event stream never ends by itself) must not make
    SIGTERM wait for the whole grace time: the stream ends with a ``stopping`` event."""
    from topology.users import create_token, init_users_db

    engine = get_engine()
    init_users_db(engine)
    with Session(engine) as s:
        _, token = create_token(s, "console-watcher", "viewer")
    port = _free_port()
    env = {**os.environ, "SWITCHBOARD_HOME": str(home)}
    grace = 300  # a stop held by the stream would outlast communicate()'s timeout below
    proc = subprocess.Popen(
        [sys.executable, "-m", "northbound.cli", "serve", "--port", str(port), "--no-poll",
         "--no-traps", "--grace", str(grace)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        stream = None
        while stream is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                stream = urllib.request.urlopen(urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/alarms/events?poll_s=2",
                    headers={"Authorization": f"Bearer {token}"}), timeout=120)
            except OSError:
                time.sleep(0.1)
        assert stream is not None, "the server did not answer"
        assert stream.readline() == b": switchboard alarm stream\n"
        proc.send_signal(signal.SIGTERM)
        rest = stream.read()  # to the end of the stream: the server ended it
        output, _ = proc.communicate(timeout=grace / 3)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert b"event: stopping\n" in rest
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "Cancel" not in output  # no connection was cut at the end of the grace time
