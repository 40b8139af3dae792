"""Unit tests for lab.proc: PID + start-time process references, ending exactly those, run()."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.proc import ProcRef, end_processes, run
from topology.errors import LabError, LabRuntimeError

IGNORE_TERM = (
    "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ok', flush=True); time.sleep(60)"
)


def _stat_start(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(ChildProcessError):  # already reaped by end_processes
        proc.wait(timeout=5)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(["sleep", "30"], text=True)
    try:
        yield proc
    finally:
        _kill(proc)


def _wait_gone(ref: ProcRef, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not ref.alive():
            return True
        time.sleep(0.02)
    return not ref.alive()


# --------------------------------------------------------------------------- ProcRef


def test_of_current_process() -> None:
    ref = ProcRef.of(os.getpid())
    assert ref is not None
    assert ref.pid == os.getpid()
    assert ref.start == _stat_start(os.getpid())
    assert ref.start > 0
    assert ref.alive() is True


def test_of_child(sleeper: subprocess.Popen[str]) -> None:
    ref = ProcRef.of(sleeper.pid)
    assert ref is not None
    assert ref.pid == sleeper.pid
    assert ref.start == _stat_start(sleeper.pid)
    assert ref.alive() is True
    # a different process has a different identity
    me = ProcRef.of(os.getpid())
    assert me != ref


def test_of_missing_pid_is_none() -> None:
    # PIDs above pid_max never exist
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert ProcRef.of(pid_max + 1) is None
    assert ProcRef(pid_max + 1, 1).alive() is False


def test_alive_false_after_exit() -> None:
    proc = subprocess.Popen(["sleep", "30"], text=True)
    try:
        ref = ProcRef.of(proc.pid)
        assert ref is not None and ref.alive()
        proc.kill()
        proc.wait(timeout=5)
        assert ref.alive() is False
        assert ProcRef.of(proc.pid) is None or ProcRef.of(proc.pid) != ref
    finally:
        _kill(proc)


def test_alive_false_for_unreaped_zombie() -> None:
    proc = subprocess.Popen(["sleep", "30"], text=True)
    try:
        ref = ProcRef.of(proc.pid)
        assert ref is not None
        proc.kill()
        # not waited for: the kernel keeps a zombie with the same PID and start time
        assert _wait_gone(ref), "a zombie must not count as alive"
        assert Path(f"/proc/{proc.pid}").exists()
    finally:
        _kill(proc)


def test_alive_false_when_start_time_differs(sleeper: subprocess.Popen[str]) -> None:
    real = ProcRef.of(sleeper.pid)
    assert real is not None
    assert ProcRef(sleeper.pid, real.start + 1).alive() is False
    assert ProcRef(sleeper.pid, real.start - 1).alive() is False
    assert real.alive() is True


def test_json_round_trip(sleeper: subprocess.Popen[str]) -> None:
    ref = ProcRef.of(sleeper.pid)
    assert ref is not None
    raw = ref.to_json()
    assert raw == [sleeper.pid, ref.start]
    back = ProcRef.from_json(json.loads(json.dumps(raw)))
    assert back == ref
    assert back.alive() is True
    # string digits (hand-edited state) still come back as ints
    assert ProcRef.from_json(["12", "34"]) == ProcRef(12, 34)  # type: ignore[list-item]


# --------------------------------------------------------------------------- end_processes


def test_end_processes_sigterm(sleeper: subprocess.Popen[str]) -> None:
    ref = ProcRef.of(sleeper.pid)
    assert ref is not None
    started = time.monotonic()
    left = end_processes([ref], grace_s=5.0)
    assert left == []
    assert ref.alive() is False
    assert time.monotonic() - started < 4.0, "sleep ends on SIGTERM, no need to wait the grace"


def test_end_processes_sigkill_after_grace() -> None:
    proc = subprocess.Popen([sys.executable, "-c", IGNORE_TERM], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ok"
        ref = ProcRef.of(proc.pid)
        assert ref is not None
        left = end_processes([ref], grace_s=0.3)
        assert left == []
        assert ref.alive() is False
        code = proc.poll()
        # reaped by end_processes (poll() then reports 0) or by poll(): -SIGKILL
        assert code in (0, -9), code
    finally:
        _kill(proc)


def test_end_processes_survives_sigterm_while_grace_lasts() -> None:
    proc = subprocess.Popen([sys.executable, "-c", IGNORE_TERM], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ok"
        ref = ProcRef.of(proc.pid)
        assert ref is not None
        started = time.monotonic()
        end_processes([ref], grace_s=1.0)
        assert time.monotonic() - started >= 0.9, "SIGKILL came before the grace period ended"
        assert ref.alive() is False
    finally:
        _kill(proc)


def test_end_processes_never_signals_a_reused_pid(sleeper: subprocess.Popen[str]) -> None:
    real = ProcRef.of(sleeper.pid)
    assert real is not None
    impostor = ProcRef(sleeper.pid, real.start + 1)
    left = end_processes([impostor], grace_s=0.2)
    assert left == []
    time.sleep(0.1)
    assert sleeper.poll() is None, "a process with another start time was signalled"
    assert real.alive() is True


def test_end_processes_empty_and_dead() -> None:
    assert end_processes([], grace_s=0.1) == []
    proc = subprocess.Popen(["sleep", "30"], text=True)
    ref = ProcRef.of(proc.pid)
    assert ref is not None
    proc.kill()
    proc.wait(timeout=5)
    assert end_processes([ref], grace_s=0.1) == []


# --------------------------------------------------------------------------- run


def test_run_success_returns_output() -> None:
    proc = run([sys.executable, "-c", "print('hello')"])
    assert proc.returncode == 0
    assert proc.stdout == "hello\n"


def test_run_failure_raises_with_context() -> None:
    code = "import sys; print('first', file=sys.stderr); print('boom here', file=sys.stderr); " \
           "sys.exit(3)"
    with pytest.raises(LabRuntimeError) as info:
        run([sys.executable, "-c", code], node="r1", operation="frobnicate")
    exc = info.value
    assert isinstance(exc, LabError)
    assert exc.node == "r1"
    assert exc.operation == "frobnicate"
    assert "boom here" in str(exc)
    assert "(3)" in str(exc)


def test_run_failure_without_check_returns() -> None:
    proc = run([sys.executable, "-c", "import sys; sys.exit(4)"], check=False)
    assert proc.returncode == 4


def test_run_missing_binary() -> None:
    with pytest.raises(LabRuntimeError) as info:
        run(["switchboard-no-such-binary-xyz", "--help"], node="h1", operation="probe")
    assert "command not found" in str(info.value)
    assert "switchboard-no-such-binary-xyz" in str(info.value)
    assert info.value.node == "h1"
    assert info.value.operation == "probe"


def test_run_timeout() -> None:
    with pytest.raises(LabRuntimeError) as info:
        run(["sleep", "5"], operation="wait", timeout_s=0.2)
    assert "timed out" in str(info.value)
    assert info.value.operation == "wait"
