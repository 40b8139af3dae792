"""The config-push contract every driver implements, in napalm's verbs.

    driver.open()
    driver.load_merge_candidate(config)   # stage a change (nothing on the device changes)
    driver.compare_config()               # the diff it would make ('' = nothing to do)
    driver.commit_config(revert_in_s=60)  # apply; with a revert timer, undone unless...
    driver.confirm_commit()               # ...confirmed in time
    driver.discard_config()               # drop the staged change
    driver.rollback()                     # back to the config saved before the last commit
    driver.restore(saved)                 # back to any config get_config() returned
    driver.get_config()                   # the running config, as text
    driver.close()

A driver is a plain class satisfying :class:`ConfigDriver` (a ``typing.Protocol``). Errors
(all :class:`~topology.errors.ConfigPushError`):

    ConfigPushError           pushing configuration failed (device, operation)
    ├── PushConnectionError   could not log in or lost the session (carries the cause)
    ├── ConfigRejected        the device refused the change (``output``: its words);
    │                         the driver has already restored what it had changed
    ├── CommitNotConfirmed    a revert timer ran out, the device went back by itself
    └── RollbackFailed        restoring the saved config failed: the device needs a person

Invariant every driver keeps, and the contract tests check: when any verb raises, the
device's running config is what it was before that verb (or, for ``RollbackFailed``, the
error says exactly what is left).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import ClassVar, Protocol, runtime_checkable

from pydantic import SecretStr

from topology.errors import (
    CommitNotConfirmed,
    ConfigPushError,
    ConfigRejected,
    PushConnectionError,
    RollbackFailed,
)

__all__ = [
    "CommitNotConfirmed",
    "ConfigDriver",
    "ConfigPushError",
    "ConfigRejected",
    "DriverTarget",
    "PushConnectionError",
    "RollbackFailed",
    "unified_diff",
]


@dataclass(frozen=True)
class DriverTarget:
    """Where and as whom a driver connects (the password never prints)."""

    device: str
    """The inventory's name for the device (used in errors and records)."""
    host: str
    username: str
    password: SecretStr
    port: int
    platform: str = "frr"
    """The CLI platform (collectors/data/cli_platforms.yaml); unused by NETCONF."""
    profile: str | None = None
    timeout_s: float = 30.0


@runtime_checkable
class ConfigDriver(Protocol):
    """Config push in napalm's verbs (see the module docstring)."""

    kind: ClassVar[str]
    """"netconf" or "cli"."""
    target: DriverTarget

    def open(self) -> None:
        """Connect and log in (``PushConnectionError`` if that fails)."""

    def close(self) -> None:
        """Discard anything staged, release locks, disconnect. Never raises."""

    def get_config(self) -> str:
        """The running configuration as text: CLI ``show running-config``; NETCONF the
        running datastore as indented XML."""

    def load_merge_candidate(self, config: str) -> None:
        """Stage ``config`` to be merged into the running config. CLI: configuration
        lines; NETCONF: a ``<config>`` document. Nothing changes on the device yet (a
        NETCONF driver locks and edits the candidate datastore)."""

    def compare_config(self) -> str:
        """A unified diff from the running config to what it would be; '' if the staged
        change changes nothing."""

    def commit_config(self, revert_in_s: int | None = None) -> None:
        """Apply the staged change. With ``revert_in_s`` the change is undone after that
        many seconds unless :meth:`confirm_commit` comes first (NETCONF: a confirmed
        commit; CLI: the driver restores its saved config)."""

    def confirm_commit(self) -> None:
        """Make a commit with a revert timer permanent (``CommitNotConfirmed`` if too late)."""

    def has_pending_commit(self) -> bool:
        """Whether a commit waits for its confirmation."""

    def discard_config(self) -> None:
        """Drop what is staged (and unlock); the running config is untouched."""

    def rollback(self) -> None:
        """Restore the running config saved just before the last commit."""

    def restore(self, config: str) -> None:
        """Make the running config equal to ``config``, a :meth:`get_config` text taken
        earlier (a rollback by change id, in a later session); ``RollbackFailed`` with
        what is left when it cannot."""


def unified_diff(before: str, after: str, *, device: str,
                 labels: tuple[str, str] = ("running", "candidate")) -> str:
    """A unified diff of two configs ('' when they are equal)."""
    lines = difflib.unified_diff(before.splitlines(keepends=True),
                                 after.splitlines(keepends=True),
                                 fromfile=f"{device} {labels[0]}",
                                 tofile=f"{device} {labels[1]}")
    return "".join(lines)
