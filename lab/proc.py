"""Processes and kernel objects the lab makes, and how it ends exactly those.

Every process is recorded as a :class:`ProcRef` (PID plus the kernel's start
time of that PID), so a PID reused by an unrelated process is never signalled.
Nothing here ever looks a process up by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from topology.errors import LabRuntimeError

__all__ = [
    "ProcRef",
    "end_processes",
    "netns_exists",
    "netns_pids",
    "run",
]


@dataclass(frozen=True)
class ProcRef:
    """A process this lab started: PID and its start time in clock ticks since boot."""

    pid: int
    start: int

    @classmethod
    def of(cls, pid: int) -> ProcRef | None:
        start = _start_time(pid)
        return None if start is None else cls(pid, start)

    def alive(self) -> bool:
        """True while this very process (not a later one with the same PID) exists."""
        return _start_time(self.pid) == self.start

    def to_json(self) -> list[int]:
        return [self.pid, self.start]

    @classmethod
    def from_json(cls, raw: Sequence[int]) -> ProcRef:
        return cls(int(raw[0]), int(raw[1]))


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has ended; only its parent's wait() is missing
        return None
    return int(fields[19])


def run(
    argv: Sequence[str], *, node: str | None = None, operation: str | None = None,
    check: bool = True, input_text: str | None = None, timeout_s: float = 30.0,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; failures become :class:`LabRuntimeError` with context."""
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, input=input_text,
            timeout=timeout_s, check=False,
        )
    except FileNotFoundError as exc:
        raise LabRuntimeError(
            f"command not found: {argv[0]}", node=node, operation=operation) from exc
    except subprocess.TimeoutExpired as exc:
        raise LabRuntimeError(
            f"{' '.join(argv[:6])} timed out after {timeout_s:.0f} s",
            node=node, operation=operation) from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabRuntimeError(
            f"{' '.join(argv)} failed ({proc.returncode}): {detail[-1] if detail else ''}",
            node=node, operation=operation)
    return proc


def netns_exists(name: str) -> bool:
    """True when network namespace ``name`` exists."""
    return Path("/run/netns", name).exists()


def netns_pids(name: str) -> list[int]:
    """PIDs of every process living in network namespace ``name`` (the lab's own)."""
    if not netns_exists(name):
        return []
    out = run(["ip", "netns", "pids", name], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def end_processes(refs: Sequence[ProcRef], *, grace_s: float = 5.0) -> list[ProcRef]:
    """SIGTERM the given processes, SIGKILL what is left after ``grace_s``.

    Returns the ones that could not be ended (normally none).
    """
    live = [r for r in refs if r.alive()]
    for ref in live:
        _signal(ref, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while live and time.monotonic() < deadline:
        time.sleep(0.05)
        _reap(live)
        live = [r for r in live if r.alive()]
    for ref in live:
        _signal(ref, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while live and time.monotonic() < deadline:
        time.sleep(0.05)
        _reap(live)
        live = [r for r in live if r.alive()]
    return live


def _reap(refs: Sequence[ProcRef]) -> None:
    """Collect the exit of any of ``refs`` that is our own child (no zombies left behind)."""
    for ref in refs:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(ref.pid, os.WNOHANG)


def _signal(ref: ProcRef, sig: signal.Signals) -> None:
    if not ref.alive():
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(ref.pid, sig)
