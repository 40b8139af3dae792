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
    └── DeviceError                 talking to a device failed (device, operation)

Errors carry their context as attributes, not only in the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ConfigError",
    "CredentialError",
    "DeviceError",
    "LabError",
    "LabRuntimeError",
    "LabStateError",
    "Problem",
    "SwitchboardError",
    "TopologyFileError",
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
