"""Credential profiles: how to log in to a device over SNMP, SSH and NETCONF.

Secrets are :class:`pydantic.SecretStr`: they print as ``**********`` in reprs,
logs and errors, and are only revealed by :meth:`CredentialProfile.reveal` for
the one caller that needs them (a protocol session, or ``lab credentials``).

The store keeps one JSON file per profile, mode 0600, under the settings'
``credentials/`` directory. (Encryption at rest with a key kept outside the
database arrives with the northbound server's access control.)
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from topology.errors import ConfigError, CredentialError
from topology.settings import Settings, get_settings

__all__ = [
    "AuthProtocol",
    "CredentialProfile",
    "CredentialStore",
    "PrivProtocol",
    "SnmpV3User",
]

AuthProtocol = Literal["MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"]
PrivProtocol = Literal["DES", "AES", "AES-192", "AES-256"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SnmpV3User(BaseModel):
    """An SNMPv3 USM user (authPriv when both keys are set)."""

    model_config = ConfigDict(frozen=True)

    user: str
    auth_protocol: AuthProtocol | None = "SHA"
    auth_key: SecretStr | None = None
    priv_protocol: PrivProtocol | None = "AES"
    priv_key: SecretStr | None = None

    @property
    def level(self) -> str:
        if self.auth_key is None:
            return "noAuthNoPriv"
        return "authPriv" if self.priv_key is not None else "authNoPriv"


class CredentialProfile(BaseModel):
    """A named set of credentials tried against a device, in this order of planes."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=_NAME.pattern)
    snmp_community: SecretStr | None = None
    snmp_v3: SnmpV3User | None = None
    ssh_username: str | None = None
    ssh_password: SecretStr | None = None
    netconf_username: str | None = None
    netconf_password: SecretStr | None = None
    source: str = Field(default="user", description="who registered it, e.g. 'lab:core'")

    def reveal(self) -> dict[str, Any]:
        """The profile with every secret in clear text: only for the caller that logs in."""
        def _open(value: Any) -> Any:
            if isinstance(value, SecretStr):
                return value.get_secret_value()
            if isinstance(value, dict):
                return {k: _open(v) for k, v in value.items()}
            return value

        raw = {k: getattr(self, k) for k in type(self).model_fields}
        if self.snmp_v3 is not None:
            raw["snmp_v3"] = {k: getattr(self.snmp_v3, k) for k in SnmpV3User.model_fields}
        return {k: _open(v) for k, v in raw.items()}


class CredentialStore:
    """Credential profiles on disk, one 0600 JSON file each."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._dir = (settings or get_settings()).credentials_dir

    def _path(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise CredentialError(f"invalid credential profile name {name!r}", profile=name)
        return self._dir / f"{name}.json"

    def save(self, profile: CredentialProfile) -> Path:
        """Write (or replace) a profile atomically, readable by its owner only."""
        self._dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self._dir, 0o700)
        path = self._path(profile.name)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(profile.reveal(), fh, indent=2)
        os.replace(tmp, path)
        return path

    def load(self, name: str) -> CredentialProfile:
        path = self._path(name)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise CredentialError(f"no credential profile named {name!r}", profile=name) from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"credential profile {name!r} unreadable: {exc}") from exc
        try:
            return CredentialProfile.model_validate(data)
        except ValidationError as exc:
            # pydantic would echo the input values (secrets) in its message: report fields only
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
            raise ConfigError(
                f"credential profile {name!r} invalid in: {', '.join(fields)}") from None

    def delete(self, name: str) -> bool:
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            return False
        return True

    def names(self) -> list[str]:
        if not self._dir.is_dir():
            return []
        return sorted(p.stem for p in self._dir.glob("*.json"))
