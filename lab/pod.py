"""A lab node as a "pod": one network namespace plus a holder process that owns
the node's own mount and UTS namespaces.

Inside the holder's mount namespace the node gets private copies of the paths
its daemons share on a real box (/run, /etc/frr, /root, and /etc/passwd,
/etc/shadow, /etc/group with the lab's SSH user), bound from the node's state
directory. So every daemon runs with its stock paths, each node has its own
hostname, and the host's own files are never touched. Every command for the
node runs through ``nsenter`` into the holder's namespaces.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from lab.proc import ProcRef, run
from lab.state import LabState, NodeState
from topology.errors import LabRuntimeError

__all__ = ["Pod"]

_CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
              "LANG": "C.UTF-8", "MIBS": ""}


class Pod:
    """Runs things inside one node of a lab."""

    def __init__(self, state: LabState, node: NodeState) -> None:
        self.state = state
        self.node = node
        self.dir = state.node_dir(node.name)

    # -- the holder ---------------------------------------------------------
    def start_holder(self) -> None:
        """Start the process that holds the node's mount and UTS namespaces."""
        argv = ["ip", "netns", "exec", self.node.netns,
                "unshare", "--mount", "--uts", "--propagation", "private",
                "sh", "-c", f"hostname {self.node.name} && exec sleep infinity"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True,
                                env=_CLEAN_ENV)
        ref = ProcRef.of(proc.pid)
        if ref is None:
            raise LabRuntimeError("node holder exited at once", lab=self.state.name,
                                  node=self.node.name, operation="start holder")
        self.node.holder = ref
        self.state.save()
        # ip netns exec -> unshare -> sh -> sleep all exec in place: wait for the last one
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if os.readlink(f"/proc/{proc.pid}/exe").endswith("/sleep"):
                    return
            except OSError:
                break
            time.sleep(0.01)
        raise LabRuntimeError("node holder did not start", lab=self.state.name,
                              node=self.node.name, operation="start holder")

    @property
    def holder_pid(self) -> int:
        if self.node.holder is None or not self.node.holder.alive():
            raise LabRuntimeError(f"node {self.node.name} has no running holder process",
                                  lab=self.state.name, node=self.node.name, operation="enter")
        return self.node.holder.pid

    def enter(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run in the node's network, mount and UTS namespaces."""
        return ["nsenter", "-t", str(self.holder_pid), "-m", "-u", "-n", "--", *argv]

    def run(self, argv: Sequence[str], *, operation: str, check: bool = True,
            timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
        return run(self.enter(argv), node=self.node.name, operation=operation,
                   check=check, timeout_s=timeout_s)

    def bind(self, source: Path, target: str, *, readonly: bool = False) -> None:
        """Bind ``source`` over ``target`` inside the node only."""
        self.run(["mount", "--bind", str(source), target], operation=f"bind {target}")
        if readonly:
            self.run(["mount", "-o", "remount,bind,ro", target], operation=f"bind {target} ro")

    # -- daemons ------------------------------------------------------------
    def start_forking(self, name: str, argv: Sequence[str], pidfile: Path, *,
                      env: Mapping[str, str] | None = None, timeout_s: float = 10.0) -> ProcRef:
        """Start a daemon that forks into the background and writes ``pidfile``."""
        pidfile.unlink(missing_ok=True)
        proc = subprocess.run(self.enter(argv), capture_output=True, text=True,
                              env={**_CLEAN_ENV, **(env or {})}, timeout=timeout_s, check=False)
        if proc.returncode != 0:
            raise LabRuntimeError(
                f"{name} failed to start ({proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-400:]}",
                lab=self.state.name, node=self.node.name, operation=f"start {name}")
        ref = self._wait_pidfile(name, pidfile, timeout_s)
        self.node.daemons[name] = ref
        self.state.save()
        return ref

    def start_foreground(self, name: str, argv: Sequence[str], *,
                         env: Mapping[str, str] | None = None, log: Path) -> ProcRef:
        """Start a daemon that stays in the foreground; its output goes to ``log``."""
        with log.open("ab") as out:
            proc = subprocess.Popen(self.enter(argv), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**_CLEAN_ENV, **(env or {})})
        ref = ProcRef.of(proc.pid)
        if ref is None:
            raise LabRuntimeError(f"{name} exited at once; see {log}", lab=self.state.name,
                                  node=self.node.name, operation=f"start {name}")
        self.node.daemons[name] = ref
        self.state.save()
        return ref

    def _wait_pidfile(self, name: str, pidfile: Path, timeout_s: float) -> ProcRef:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                pid = int(pidfile.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                time.sleep(0.02)
                continue
            ref = ProcRef.of(pid)
            if ref is not None:
                return ref
            time.sleep(0.02)
        raise LabRuntimeError(f"{name} wrote no pid file {pidfile} within {timeout_s:.0f} s",
                              lab=self.state.name, node=self.node.name,
                              operation=f"start {name}")

    def wait_path(self, path: Path, what: str, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not path.exists():
            if time.monotonic() > deadline:
                raise LabRuntimeError(f"{what} did not appear at {path}", lab=self.state.name,
                                      node=self.node.name, operation=f"wait {what}")
            time.sleep(0.02)


def chown_tree(path: Path, user: str) -> None:
    """Give ``path`` and everything under it to ``user`` (FRR runs as user frr)."""
    uid = int(run(["id", "-u", user]).stdout)
    gid = int(run(["id", "-g", user]).stdout)
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for name in (*dirs, *files):
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def which(binary: str) -> str | None:
    """Find a binary on the standard system PATH (sbin included)."""
    return shutil.which(binary, path=_CLEAN_ENV["PATH"] + ":/usr/lib/frr")
