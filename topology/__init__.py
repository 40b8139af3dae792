"""The foundation: settings, the error tree, credential profiles (and, later, the inventory)."""

from topology.credentials import (
    CredentialProfile,
    CredentialProfilePublic,
    CredentialStore,
    SnmpV3User,
)
from topology.errors import (
    AuthenticationFailed,
    CollectionError,
    ConfigError,
    ConnectionRefused,
    CredentialError,
    DeviceError,
    DeviceTimeout,
    LabError,
    LabRuntimeError,
    LabStateError,
    Problem,
    ProtocolError,
    ScopeError,
    StatusCode,
    SwitchboardError,
    TopologyFileError,
)
from topology.settings import Settings, get_settings

__all__ = [
    "AuthenticationFailed",
    "CollectionError",
    "ConfigError",
    "ConnectionRefused",
    "CredentialError",
    "CredentialProfile",
    "CredentialProfilePublic",
    "CredentialStore",
    "DeviceError",
    "DeviceTimeout",
    "LabError",
    "LabRuntimeError",
    "LabStateError",
    "Problem",
    "ProtocolError",
    "ScopeError",
    "Settings",
    "SnmpV3User",
    "StatusCode",
    "SwitchboardError",
    "TopologyFileError",
    "get_settings",
]
