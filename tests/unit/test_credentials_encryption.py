"""Credential profiles encrypted at rest: the key file, migration of plain files, a wrong
key, and a canary that must never be found in clear under the settings' home."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from topology.credentials import CredentialProfile, CredentialStore, key_file_path
from topology.errors import ConfigError, CredentialError
from topology.settings import Settings, get_settings

CANARY = "canary-c0mmunity-7f3a9e"
V3_CANARY = "canary-usm-auth-5c1d"


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SWITCHBOARD_KEY_FILE", raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return get_settings(tmp_path / "home")


def canary_profile(name: str = "canary") -> CredentialProfile:
    return CredentialProfile.model_validate({
        "name": name, "snmp_community": CANARY,
        "snmp_v3": {"user": "sbv3", "auth_key": V3_CANARY, "priv_key": "canary-priv-0b9e"},
        "ssh_username": "admin", "ssh_password": "canary-ssh-pw-22",
        "netconf_password": "canary-nc-pw-830"})


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_canary_never_in_clear_under_home(settings: Settings) -> None:
    from topology.db import get_engine, init_db

    engine = get_engine(f"sqlite:///{settings.home / 'switchboard.db'}")
    init_db(engine)  # the database file is under the home too
    store = CredentialStore(settings)
    store.save(canary_profile())
    files = files_under(settings.home)
    assert settings.home / "credentials" / "canary.json" in files
    assert settings.home / "credentials.key" in files
    assert settings.home / "switchboard.db" in files
    for path in files:
        data = path.read_bytes()
        for secret in (CANARY, V3_CANARY, "canary-priv-0b9e", "canary-ssh-pw-22",
                       "canary-nc-pw-830"):
            assert secret.encode() not in data, f"{secret} in clear in {path}"
    # and yet it round-trips
    loaded = store.load("canary")
    assert loaded.snmp_community is not None
    assert loaded.snmp_community.get_secret_value() == CANARY
    assert store.is_encrypted("canary")
    engine.dispose()


def test_key_file_default_location_and_mode(settings: Settings) -> None:
    store = CredentialStore(settings)
    assert store.key_file == settings.home / "credentials.key"
    assert not store.key_file.exists()  # made by the first save, not by building a store
    store.save(canary_profile())
    assert stat.S_IMODE(store.key_file.stat().st_mode) == 0o600
    assert store.key_file.parent != settings.credentials_dir
    Fernet(store.key_file.read_bytes().strip())  # a real Fernet key
    first = store.key_file.read_bytes()
    CredentialStore(settings).save(canary_profile("other"))
    assert store.key_file.read_bytes() == first  # kept, not replaced


def test_key_file_from_environment_and_settings(settings: Settings, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    settings.home.mkdir(parents=True)
    (settings.home / "settings.yaml").write_text(
        f"credentials:\n  key_file: {tmp_path / 'from-yaml.key'}\n")
    assert key_file_path(settings) == tmp_path / "from-yaml.key"
    monkeypatch.setenv("SWITCHBOARD_KEY_FILE", str(tmp_path / "keys" / "env.key"))
    store = CredentialStore(settings)
    store.save(canary_profile())
    assert (tmp_path / "keys" / "env.key").is_file()
    assert not (tmp_path / "from-yaml.key").exists()
    assert not (settings.home / "credentials.key").exists()
    # the argument wins over both
    assert CredentialStore(settings, key_file=tmp_path / "arg.key").key_file == (
        tmp_path / "arg.key")


def test_key_inside_the_credentials_directory_refused(settings: Settings) -> None:
    store = CredentialStore(settings, key_file=settings.credentials_dir / "k.key")
    with pytest.raises(ConfigError, match="inside the credentials directory"):
        store.save(canary_profile())


def test_plain_file_read_then_rewritten_encrypted(settings: Settings) -> None:
    settings.credentials_dir.mkdir(parents=True)
    legacy = settings.credentials_dir / "old.json"
    legacy.write_text(json.dumps(canary_profile("old").reveal()))
    os.chmod(legacy, 0o600)
    assert CANARY in legacy.read_text()
    store = CredentialStore(settings)
    assert not store.is_encrypted("old")
    profile = store.load("old")  # readable without any key
    assert profile.snmp_community is not None
    assert profile.snmp_community.get_secret_value() == CANARY
    assert not store.key_file.exists()
    store.save(profile)  # the next save encrypts it
    assert CANARY not in legacy.read_text()
    assert store.is_encrypted("old")
    assert store.load("old") == profile


def test_encrypt_all_migrates_every_plain_file(settings: Settings) -> None:
    store = CredentialStore(settings)
    store.save(canary_profile("new"))
    (settings.credentials_dir / "old.json").write_text(json.dumps(canary_profile("old").reveal()))
    assert store.encrypt_all() == ["old"]
    assert store.encrypt_all() == []
    for path in files_under(settings.home):
        assert CANARY.encode() not in path.read_bytes()


def test_wrong_key_is_a_clear_error_without_the_secret(settings: Settings) -> None:
    CredentialStore(settings).save(canary_profile())
    key = settings.home / "credentials.key"
    key.write_bytes(Fernet.generate_key())
    with pytest.raises(CredentialError) as info:
        CredentialStore(settings).load("canary")
    message = str(info.value)
    assert "cannot be decrypted" in message and "credentials.key" in message
    assert info.value.profile == "canary"
    assert CANARY not in message and info.value.__cause__ is None


def test_missing_key_for_an_encrypted_file(settings: Settings) -> None:
    CredentialStore(settings).save(canary_profile())
    (settings.home / "credentials.key").unlink()
    with pytest.raises(CredentialError, match=r"key file .* does not exist"):
        CredentialStore(settings).load("canary")


def test_key_readable_by_others_refused(settings: Settings) -> None:
    CredentialStore(settings).save(canary_profile())
    (settings.home / "credentials.key").chmod(0o644)
    with pytest.raises(CredentialError, match="readable by others"):
        CredentialStore(settings).load("canary")


def test_garbage_key_file(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    key = settings.home / "credentials.key"
    key.write_text("not a key")
    key.chmod(0o600)
    with pytest.raises(CredentialError, match="does not hold a Fernet key"):
        CredentialStore(settings).save(canary_profile())
    assert not settings.credentials_dir.exists() or not list(settings.credentials_dir.iterdir())
