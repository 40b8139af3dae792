"""The suite's one error tree.

Every error Switchboard raises on purpose derives from :class:`SwitchboardError`.
Foreign errors (pysnmp, ncclient, netmiko, subprocess) are translated into these
exactly once per protocol, at the edge, with ``raise ... from exc``.

    SwitchboardError
    ├── ConfigError                 settings or credential store unusable
    ├── CredentialError             unknown credential profile
    ├── LabError                    the emulated lab
    │   ├── TopologyFileError       a topology file refused (file, line, reason)
    │   ├── LabStateError           lab already running / not found / ambiguous
    │   └── LabRuntimeError         a command or daemon failed (node, operation)
    ├── ScopeError                  a target outside the ranges discovery may probe
    └── DeviceError                 talking to a device failed (device, operation)
        ├── CollectionError         reading failed; carries a StatusCode (.status)
        │   ├── DeviceTimeout       no answer within the timeout, after the retries
        │   ├── AuthenticationFailed  community, USM user/keys, SSH or NETCONF login refused
        │   ├── ConnectionRefused   the port is closed
        │   └── ProtocolError       the peer answered something we cannot use
        └── ConfigPushError         pushing configuration failed (adapters/)
            ├── PushConnectionError could not log in, or lost the session
            ├── ConfigRejected      the device refused the change (.output: its words)
            ├── CommitNotConfirmed  a revert timer ran out; the device went back
            └── RollbackFailed      restoring the saved config failed

Errors carry their context as attributes, not only in the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

__all__ = [
    "AuthenticationFailed",
    "CollectionError",
    "CommitNotConfirmed",
    "ConfigError",
    "ConfigPushError",
    "ConfigRejected",
    "ConnectionRefused",
    "CredentialError",
    "DeviceError",
    "DeviceTimeout",
    "LabError",
    "LabRuntimeError",
    "LabStateError",
    "Problem",
    "ProtocolError",
    "PushConnectionError",
    "RollbackFailed",
    "ScopeError",
    "StatusCode",
    "SwitchboardError",
    "TopologyFileError",
    "exception_chain",
]


class SwitchboardError(Exception):
    """Root of every error Switchboard raises on purpose."""


class ConfigError(SwitchboardError):
    """The suite's settings or one of its stores cannot be used."""


class CredentialError(SwitchboardError):
    """A credential profile is unknown or invalid. Never carries a secret."""

    def __init__(self, message: str, *, profile: str | None = None) -> None:
        super().__init__(message)
        self.profile = profile


class LabError(SwitchboardError):
    """Something about the emulated lab went wrong."""


@dataclass(frozen=True)
class Problem:
    """One reason a topology file was refused; ``line`` is 1-based when known."""

    reason: str
    line: int | None = None

    def render(self, path: Path | str) -> str:
        where = f"{path}:{self.line}" if self.line else str(path)
        return f"{where}: {self.reason}"


class TopologyFileError(LabError):
    """A topology file was refused before anything was created."""

    def __init__(self, path: Path | str, problems: list[Problem]) -> None:
        self.path = Path(path)
        self.problems = list(problems)
        lines = "\n".join(p.render(self.path) for p in self.problems)
        super().__init__(f"topology file refused ({len(self.problems)} problem(s)):\n{lines}")


class LabStateError(LabError):
    """The lab is not in a state that allows the operation (already running, not found)."""

    def __init__(self, message: str, *, lab: str | None = None) -> None:
        super().__init__(message)
        self.lab = lab


class LabRuntimeError(LabError):
    """A lab operation failed on a node: a command, a daemon, a kernel object."""

    def __init__(
        self, message: str, *, lab: str | None = None, node: str | None = None,
        operation: str | None = None,
    ) -> None:
        super().__init__(message)
        self.lab = lab
        self.node = node
        self.operation = operation


class DeviceError(SwitchboardError):
    """Talking to a device failed; carries the device and the operation."""

    def __init__(self, message: str, *, device: str, operation: str) -> None:
        super().__init__(message)
        self.device = device
        self.operation = operation


class ScopeError(SwitchboardError):
    """A target lies outside the ranges the settings allow discovery to probe."""

    def __init__(self, message: str, *, targets: list[str] | None = None) -> None:
        super().__init__(message)
        self.targets = list(targets or [])


class StatusCode(StrEnum):
    """How an operation on one device ended: stable codes the fault logic reasons on
    (after suzieq's poller error codes)."""

    OK = "ok"
    PARTIAL = "partial"            # some tables or planes answered, some failed
    TIMEOUT = "timeout"
    AUTH_FAILED = "auth_failed"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"    # no route, host down (ICMP unreachable)
    PROTOCOL_ERROR = "protocol_error"
    ERROR = "error"


class CollectionError(DeviceError):
    """Reading from a device failed; ``status`` says how, for code that reasons on it."""

    status: StatusCode = StatusCode.ERROR

    def __init__(self, message: str, *, device: str, operation: str,
                 profile: str | None = None) -> None:
        super().__init__(message, device=device, operation=operation)
        self.profile = profile


class DeviceTimeout(CollectionError):
    """No answer within the timeout, after the retries."""

    status = StatusCode.TIMEOUT


class AuthenticationFailed(CollectionError):
    """The device refused the credentials (community, USM user or keys, SSH or NETCONF)."""

    status = StatusCode.AUTH_FAILED


class ConnectionRefused(CollectionError):
    """The management port is closed."""

    status = StatusCode.REFUSED


class ProtocolError(CollectionError):
    """The device answered something the collector cannot use."""

    status = StatusCode.PROTOCOL_ERROR


class ConfigPushError(DeviceError):
    """Pushing configuration to a device failed."""


class PushConnectionError(ConfigPushError):
    """Could not connect or log in to push, or the session was lost."""


class ConfigRejected(ConfigPushError):
    """The device refused the change; ``output`` holds its own words (no secrets)."""

    def __init__(self, message: str, *, device: str, operation: str,
                 output: str = "") -> None:
        super().__init__(message, device=device, operation=operation)
        self.output = output


class CommitNotConfirmed(ConfigPushError):
    """A commit's revert timer ran out before the confirmation: the device went back."""


class RollbackFailed(ConfigPushError):
    """Restoring the saved configuration failed: the device needs a person."""


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or during (ncclient and netmiko wrap
    paramiko, which wraps socket errors): where the error translators look for the cause."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
