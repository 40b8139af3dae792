"""Credential profiles: how to log in to a device over SNMP, SSH and NETCONF.

Secrets are :class:`pydantic.SecretStr`: they print as ``**********`` in reprs,
logs and errors, and are only revealed by :meth:`CredentialProfile.reveal` for
the one caller that needs them (a protocol session, or ``lab credentials``).

The store keeps one JSON file per profile, mode 0600, under the settings'
``credentials/`` directory. The secret fields in it (SNMP community, USM keys, SSH
and NETCONF passwords) are encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from
``cryptography``); names, usernames and protocols stay readable. The key is one file
kept outside the database and outside ``credentials/``, found in this order:

1. the ``key_file`` argument of :class:`CredentialStore`;
2. the environment variable ``SWITCHBOARD_KEY_FILE``;
3. ``credentials: {key_file: ...}`` in ``$SWITCHBOARD_HOME/settings.yaml``;
4. ``$SWITCHBOARD_HOME/credentials.key``, next to ``switchboard.db``.

It is created (mode 0600) by the first save. Files written before encryption (plain
values) are still read, and are written encrypted by their next save
(:meth:`CredentialStore.encrypt_all` rewrites them all at once). A file that the key
cannot open is a :class:`CredentialError` naming the profile and the key file, never a
secret.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any, Literal

from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from topology.errors import ConfigError, CredentialError
from topology.settings import Settings, get_settings, settings_section

__all__ = [
    "AuthProtocol",
    "CredentialProfile",
    "CredentialProfilePublic",
    "CredentialStore",
    "PrivProtocol",
    "SnmpV3Public",
    "SnmpV3User",
    "key_file_path",
    "profile_public",
]

AuthProtocol = Literal["MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"]
PrivProtocol = Literal["DES", "AES", "AES-192", "AES-256"]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KEY_FILE_ENV = "SWITCHBOARD_KEY_FILE"
_SECRET_FIELDS = ("snmp_community", "ssh_password", "netconf_password")
_V3_SECRET_FIELDS = ("auth_key", "priv_key")
_ENC = "fernet"  # an encrypted value on disk is {"fernet": "<token>"}


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


class SnmpV3Public(BaseModel):
    """An SNMPv3 user as shown to people and the API: protocols, never a key."""

    user: str
    level: Literal["noAuthNoPriv", "authNoPriv", "authPriv"]
    auth_protocol: AuthProtocol | None
    priv_protocol: PrivProtocol | None
    auth_key_set: bool
    priv_key_set: bool


class CredentialProfilePublic(BaseModel):
    """A profile as shown to people and the API: names, usernames and protocols, and for
    each secret only whether it is set."""

    name: str
    source: str
    planes: list[Literal["snmp", "ssh", "netconf"]] = Field(
        description="the planes the profile can log in to")
    snmp_versions: list[Literal["v2c", "v3"]]
    snmp_community_set: bool
    snmp_v3: SnmpV3Public | None
    ssh_username: str | None
    ssh_password_set: bool
    netconf_username: str | None
    netconf_password_set: bool
    encrypted: bool = Field(description="whether the file on disk holds no secret in clear")

    @property
    def set_fields(self) -> list[str]:
        """The secrets set, by field name (``snmp_v3.auth_key``): for audit records, whose
        redaction would hide the ``*_set`` flags."""
        names = [f for f, on in (("snmp_community", self.snmp_community_set),
                                 ("ssh_password", self.ssh_password_set),
                                 ("netconf_password", self.netconf_password_set)) if on]
        if self.snmp_v3 is not None:
            names += [f"snmp_v3.{f}" for f, on in (("auth_key", self.snmp_v3.auth_key_set),
                                                   ("priv_key", self.snmp_v3.priv_key_set))
                      if on]
        return names


def profile_public(profile: CredentialProfile, *, encrypted: bool = True
                   ) -> CredentialProfilePublic:
    """What may be shown of ``profile``: everything but its secrets."""
    v3 = profile.snmp_v3
    versions: list[Literal["v2c", "v3"]] = []
    if profile.snmp_community is not None:
        versions.append("v2c")
    if v3 is not None:
        versions.append("v3")
    planes: list[Literal["snmp", "ssh", "netconf"]] = ["snmp"] if versions else []
    if profile.ssh_username:
        planes.append("ssh")
    if profile.netconf_username:
        planes.append("netconf")
    level: Literal["noAuthNoPriv", "authNoPriv", "authPriv"] = (
        "noAuthNoPriv" if v3 is None or v3.auth_key is None
        else "authPriv" if v3.priv_key is not None else "authNoPriv")
    return CredentialProfilePublic(
        name=profile.name, source=profile.source, planes=planes, snmp_versions=versions,
        snmp_community_set=profile.snmp_community is not None,
        snmp_v3=None if v3 is None else SnmpV3Public(
            user=v3.user, level=level, auth_protocol=v3.auth_protocol,
            priv_protocol=v3.priv_protocol, auth_key_set=v3.auth_key is not None,
            priv_key_set=v3.priv_key is not None),
        ssh_username=profile.ssh_username, ssh_password_set=profile.ssh_password is not None,
        netconf_username=profile.netconf_username,
        netconf_password_set=profile.netconf_password is not None, encrypted=encrypted)


def key_file_path(settings: Settings | None = None, key_file: Path | str | None = None) -> Path:
    """Where the credential key lives: argument > ``SWITCHBOARD_KEY_FILE`` >
    ``credentials.key_file`` in settings.yaml > ``<home>/credentials.key``."""
    settings = settings or get_settings()
    if key_file is None:
        key_file = os.environ.get(KEY_FILE_ENV, "").strip() or None
    if key_file is None:
        _, section = settings_section("credentials", settings)
        configured = section.get("key_file")
        if configured is not None:
            key_file = str(configured)
    path = Path(key_file).expanduser() if key_file else settings.home / "credentials.key"
    path = path.resolve()
    if path.parent == settings.credentials_dir.resolve():
        raise ConfigError(f"credential key file {path} must not be inside the credentials "
                          "directory it protects")
    return path


class CredentialStore:
    """Credential profiles on disk, one 0600 JSON file each, secrets encrypted."""

    def __init__(self, settings: Settings | None = None, *,
                 key_file: Path | str | None = None) -> None:
        self._settings = settings or get_settings()
        self._dir = self._settings.credentials_dir
        self._key_arg = key_file
        self._key_file: Path | None = None
        self._fernet: Fernet | None = None

    @property
    def key_file(self) -> Path:
        """The key file this store encrypts with (it may not exist before the first save);
        resolved on first use, so building a store reads no settings file."""
        if self._key_file is None:
            self._key_file = key_file_path(self._settings, self._key_arg)
        return self._key_file

    def _path(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise CredentialError(f"invalid credential profile name {name!r}", profile=name)
        return self._dir / f"{name}.json"

    # -- the key ---------------------------------------------------------------------

    def _key(self, *, create: bool, profile: str | None = None) -> Fernet:
        if self._fernet is not None:
            return self._fernet
        path = self.key_file
        if not path.exists():
            if not create:
                raise CredentialError(
                    f"credential profile {profile!r} is encrypted but the key file {path} "
                    f"does not exist (set {KEY_FILE_ENV} to the key it was saved with)",
                    profile=profile)
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first: use theirs
            else:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(Fernet.generate_key() + b"\n")
        try:
            st = path.stat()
            raw = path.read_bytes().strip()
        except OSError as exc:
            raise CredentialError(f"credential key file {path} unreadable: {exc.strerror}",
                                  profile=profile) from None
        if stat.S_IMODE(st.st_mode) & 0o077:
            raise CredentialError(
                f"credential key file {path} is readable by others "
                f"(mode {stat.S_IMODE(st.st_mode):04o}): chmod 600 it", profile=profile)
        try:
            self._fernet = Fernet(raw)
        except ValueError:
            raise CredentialError(f"credential key file {path} does not hold a Fernet key",
                                  profile=profile) from None
        return self._fernet

    def _seal(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        fernet = self._key(create=True, profile=name)

        def enc(value: Any) -> Any:
            if value is None:
                return None
            return {_ENC: fernet.encrypt(str(value).encode()).decode("ascii")}

        out = dict(data)
        for field in _SECRET_FIELDS:
            out[field] = enc(out.get(field))
        if isinstance(out.get("snmp_v3"), dict):
            v3 = dict(out["snmp_v3"])
            for field in _V3_SECRET_FIELDS:
                v3[field] = enc(v3.get(field))
            out["snmp_v3"] = v3
        return out

    def _open(self, data: Any, name: str) -> Any:
        if not isinstance(data, dict):
            return data

        def dec(value: Any) -> Any:
            if not (isinstance(value, dict) and set(value) == {_ENC}):
                return value  # plain (written before encryption) or invalid: validation says
            token = value[_ENC]
            try:
                return self._key(create=False, profile=name).decrypt(
                    str(token).encode()).decode()
            except InvalidToken:
                raise CredentialError(
                    f"credential profile {name!r} cannot be decrypted with the key in "
                    f"{self.key_file}: wrong key file?", profile=name) from None

        out = dict(data)
        for field in _SECRET_FIELDS:
            if field in out:
                out[field] = dec(out[field])
        if isinstance(out.get("snmp_v3"), dict):
            v3 = dict(out["snmp_v3"])
            for field in _V3_SECRET_FIELDS:
                if field in v3:
                    v3[field] = dec(v3[field])
            out["snmp_v3"] = v3
        return out

    # -- profiles --------------------------------------------------------------------

    def save(self, profile: CredentialProfile) -> Path:
        """Write (or replace) a profile atomically, readable by its owner only, its secrets
        encrypted."""
        path = self._path(profile.name)
        sealed = self._seal(profile.reveal(), profile.name)
        self._dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self._dir, 0o700)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(sealed, fh, indent=2)
        os.replace(tmp, path)
        return path

    def is_encrypted(self, name: str) -> bool:
        """Whether the profile's file holds no secret in clear (False for a plain file
        written before encryption)."""
        data = self._read(name)
        if not isinstance(data, dict):
            return False
        values = [data.get(f) for f in _SECRET_FIELDS]
        if isinstance(data.get("snmp_v3"), dict):
            values += [data["snmp_v3"].get(f) for f in _V3_SECRET_FIELDS]
        return all(v is None or (isinstance(v, dict) and set(v) == {_ENC}) for v in values)

    def encrypt_all(self) -> list[str]:
        """Rewrite every profile still holding a secret in clear; the names rewritten."""
        done = []
        for name in self.names():
            if not self.is_encrypted(name):
                self.save(self.load(name))
                done.append(name)
        return done

    def _read(self, name: str) -> Any:
        path = self._path(name)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise CredentialError(f"no credential profile named {name!r}", profile=name) from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"credential profile {name!r} unreadable: {exc}") from exc

    def load(self, name: str) -> CredentialProfile:
        data = self._open(self._read(name), name)
        try:
            return CredentialProfile.model_validate(data)
        except ValidationError as exc:
            # pydantic would echo the input values (secrets) in its message: report fields only
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
            raise ConfigError(
                f"credential profile {name!r} invalid in: {', '.join(fields)}") from None

    def exists(self, name: str) -> bool:
        """Whether a profile of that name is stored (``CredentialError`` for a name no
        profile may have)."""
        return self._path(name).is_file()

    def public(self, name: str) -> CredentialProfilePublic:
        """The profile without its secrets, and whether its file is encrypted."""
        return profile_public(self.load(name), encrypted=self.is_encrypted(name))

    def delete(self, name: str) -> bool:
        """Remove a profile's file; False when there was none."""
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            return False
        return True

    def names(self) -> list[str]:
        """The stored profiles' names, sorted."""
        if not self._dir.is_dir():
            return []
        return sorted(p.stem for p in self._dir.glob("*.json"))
