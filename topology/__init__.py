"""The foundation: settings, the error tree, credential profiles (and, later, the inventory)."""

from topology.credentials import CredentialProfile, CredentialStore, SnmpV3User
from topology.errors import (
    ConfigError,
    CredentialError,
    DeviceError,
    LabError,
    LabRuntimeError,
    LabStateError,
    Problem,
    SwitchboardError,
    TopologyFileError,
)
from topology.settings import Settings, get_settings

__all__ = [
    "ConfigError",
    "CredentialError",
    "CredentialProfile",
    "CredentialStore",
    "DeviceError",
    "LabError",
    "LabRuntimeError",
    "LabStateError",
    "Problem",
    "Settings",
    "SnmpV3User",
    "SwitchboardError",
    "TopologyFileError",
    "get_settings",
]
