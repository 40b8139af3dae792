"""Unit tests for topology.credentials: profiles, secrets kept out of reprs, the 0600 store."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from topology.credentials import CredentialProfile, CredentialStore, SnmpV3User
from topology.errors import ConfigError, CredentialError, SwitchboardError
from topology.settings import Settings, get_settings

SECRETS = ("c0mmunity-s3cret", "auth-s3cret-key", "priv-s3cret-key", "ssh-s3cret-pw",
           "netconf-s3cret-pw")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return get_settings(tmp_path)


@pytest.fixture
def store(settings: Settings) -> CredentialStore:
    return CredentialStore(settings)


def full_profile(name: str = "core") -> CredentialProfile:
    return CredentialProfile.model_validate({
        "name": name,
        "snmp_community": "c0mmunity-s3cret",
        "snmp_v3": {"user": "sbv3", "auth_protocol": "SHA-256", "auth_key": "auth-s3cret-key",
                    "priv_protocol": "AES-256", "priv_key": "priv-s3cret-key"},
        "ssh_username": "admin",
        "ssh_password": "ssh-s3cret-pw",
        "netconf_username": "netconf",
        "netconf_password": "netconf-s3cret-pw",
        "source": "lab:core",
    })


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- settings


def test_settings_locations(tmp_path: Path) -> None:
    settings = get_settings(tmp_path)
    assert settings.home == tmp_path.resolve()
    assert settings.labs_dir == tmp_path.resolve() / "labs"
    assert settings.credentials_dir == tmp_path.resolve() / "credentials"


def test_settings_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_HOME", str(tmp_path / "env-home"))
    assert get_settings().home == (tmp_path / "env-home").resolve()
    # the argument wins over the environment
    assert get_settings(tmp_path / "arg").home == (tmp_path / "arg").resolve()


# --------------------------------------------------------------------------- round trip


def test_save_load_round_trip(store: CredentialStore, settings: Settings) -> None:
    profile = full_profile()
    path = store.save(profile)
    assert path == settings.credentials_dir / "core.json"
    loaded = store.load("core")
    assert loaded == profile
    assert loaded.snmp_community is not None
    assert loaded.snmp_community.get_secret_value() == "c0mmunity-s3cret"
    v3 = loaded.snmp_v3
    assert v3 is not None
    assert v3.user == "sbv3"
    assert v3.auth_protocol == "SHA-256"
    assert v3.priv_protocol == "AES-256"
    assert v3.auth_key is not None and v3.auth_key.get_secret_value() == "auth-s3cret-key"
    assert v3.priv_key is not None and v3.priv_key.get_secret_value() == "priv-s3cret-key"
    assert v3.level == "authPriv"
    assert loaded.ssh_username == "admin"
    assert loaded.ssh_password is not None
    assert loaded.ssh_password.get_secret_value() == "ssh-s3cret-pw"
    assert loaded.netconf_username == "netconf"
    assert loaded.netconf_password is not None
    assert loaded.netconf_password.get_secret_value() == "netconf-s3cret-pw"
    assert loaded.source == "lab:core"


def test_saved_file_holds_the_real_values_encrypted(store: CredentialStore) -> None:
    from cryptography.fernet import Fernet

    path = store.save(full_profile())
    raw = json.loads(path.read_text())
    # the file must hold real values (not '**********'), or loading would lose the secrets;
    # since access control landed they are encrypted with the key kept outside the store
    fernet = Fernet(store.key_file.read_bytes().strip())
    assert fernet.decrypt(raw["snmp_community"]["fernet"].encode()) == b"c0mmunity-s3cret"
    assert fernet.decrypt(raw["snmp_v3"]["auth_key"]["fernet"].encode()) == b"auth-s3cret-key"
    assert raw["snmp_v3"]["user"] == "sbv3" and raw["ssh_username"] == "admin"
    assert "**" not in path.read_text()
    for secret in SECRETS:
        assert secret not in path.read_text()


def test_save_replaces(store: CredentialStore) -> None:
    store.save(full_profile())
    store.save(CredentialProfile.model_validate({"name": "core", "ssh_username": "other"}))
    loaded = store.load("core")
    assert loaded.ssh_username == "other"
    assert loaded.snmp_community is None
    assert loaded.snmp_v3 is None
    assert store.names() == ["core"]  # no temp file left behind
    assert [p.name for p in store._dir.iterdir()] == ["core.json"]


def test_file_and_directory_modes(store: CredentialStore, settings: Settings) -> None:
    path = store.save(full_profile())
    assert mode(path) == 0o600
    assert mode(settings.credentials_dir) == 0o700


def test_directory_mode_tightened_when_it_existed(store: CredentialStore,
                                                  settings: Settings) -> None:
    settings.credentials_dir.mkdir(parents=True)
    settings.credentials_dir.chmod(0o755)
    store.save(full_profile())
    assert mode(settings.credentials_dir) == 0o700


def test_reveal_opens_every_secret() -> None:
    raw = full_profile().reveal()
    assert raw["snmp_community"] == "c0mmunity-s3cret"
    assert raw["snmp_v3"]["auth_key"] == "auth-s3cret-key"
    assert raw["snmp_v3"]["priv_key"] == "priv-s3cret-key"
    assert raw["ssh_password"] == "ssh-s3cret-pw"
    assert raw["netconf_password"] == "netconf-s3cret-pw"
    json.dumps(raw)  # plain values only


# --------------------------------------------------------------------------- secrets hidden


@pytest.mark.parametrize("render", [repr, str])
def test_profile_repr_and_str_hide_secrets(render: object) -> None:
    profile = full_profile()
    assert callable(render)
    text = render(profile)
    assert "admin" in text  # the usernames do show: the test sees the real text
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize("render", [repr, str])
def test_v3_user_repr_and_str_hide_secrets(render: object) -> None:
    user = SnmpV3User.model_validate({"user": "sbv3", "auth_key": "auth-s3cret-key",
                                      "priv_key": "priv-s3cret-key"})
    assert callable(render)
    text = render(user)
    assert "sbv3" in text
    assert "auth-s3cret-key" not in text
    assert "priv-s3cret-key" not in text


def test_model_dump_json_hides_secrets() -> None:
    text = full_profile().model_dump_json()
    for secret in SECRETS:
        assert secret not in text


# --------------------------------------------------------------------------- SnmpV3User.level


@pytest.mark.parametrize(("fields", "level"), [
    ({"user": "u"}, "noAuthNoPriv"),
    ({"user": "u", "priv_key": "p-key-1234"}, "noAuthNoPriv"),
    ({"user": "u", "auth_key": "a-key-1234"}, "authNoPriv"),
    ({"user": "u", "auth_key": "a-key-1234", "priv_key": "p-key-1234"}, "authPriv"),
])
def test_v3_level(fields: dict[str, str], level: str) -> None:
    assert SnmpV3User.model_validate(fields).level == level


def test_v3_defaults_and_bad_protocol() -> None:
    user = SnmpV3User(user="u")
    assert user.auth_protocol == "SHA"
    assert user.priv_protocol == "AES"
    with pytest.raises(ValidationError):
        SnmpV3User.model_validate({"user": "u", "auth_protocol": "NOPE"})


# --------------------------------------------------------------------------- errors


def test_load_unknown(store: CredentialStore) -> None:
    with pytest.raises(CredentialError) as info:
        store.load("nope")
    assert info.value.profile == "nope"
    assert "nope" in str(info.value)
    assert isinstance(info.value, SwitchboardError)


@pytest.mark.parametrize("name", ["../x", "a b", "", ".hidden", "x/y", "-x", "a" * 65])
def test_invalid_names_refused(store: CredentialStore, name: str) -> None:
    with pytest.raises(CredentialError) as info:
        store.load(name)
    assert info.value.profile == name
    assert "invalid" in str(info.value)
    with pytest.raises(CredentialError):
        store.delete(name)
    with pytest.raises(ValidationError):
        CredentialProfile(name=name)


def test_invalid_name_writes_nothing_outside(store: CredentialStore, tmp_path: Path) -> None:
    profile = CredentialProfile.model_construct(name="../escape")  # skips validation
    with pytest.raises(CredentialError):
        store.save(profile)
    assert not (tmp_path / "escape.json").exists()
    assert not list(tmp_path.rglob("*.json"))


def test_valid_names_accepted(store: CredentialStore) -> None:
    for name in ("a", "core", "lab.core_1-x", "A" * 64):
        store.save(CredentialProfile(name=name))
        assert store.load(name).name == name


def test_corrupt_file_names_field_not_secret(store: CredentialStore,
                                             settings: Settings) -> None:
    settings.credentials_dir.mkdir(parents=True)
    (settings.credentials_dir / "bad.json").write_text(json.dumps({
        "name": "bad",
        "snmp_community": "c0mmunity-s3cret",
        "snmp_v3": {"user": "u", "auth_protocol": "NOPE", "auth_key": "s3cr3t-value"},
    }))
    with pytest.raises(ConfigError) as info:
        store.load("bad")
    message = str(info.value)
    assert "snmp_v3.auth_protocol" in message
    assert "'bad'" in message
    assert "s3cr3t-value" not in message
    assert "c0mmunity-s3cret" not in message
    assert "NOPE" not in message
    assert info.value.__cause__ is None


def test_corrupt_secret_field_not_echoed(store: CredentialStore, settings: Settings) -> None:
    settings.credentials_dir.mkdir(parents=True)
    (settings.credentials_dir / "bad.json").write_text(json.dumps({
        "name": "bad", "ssh_password": ["s3cr3t-in-a-list"]}))
    with pytest.raises(ConfigError) as info:
        store.load("bad")
    assert "ssh_password" in str(info.value)
    assert "s3cr3t-in-a-list" not in str(info.value)


def test_unparseable_file(store: CredentialStore, settings: Settings) -> None:
    settings.credentials_dir.mkdir(parents=True)
    (settings.credentials_dir / "bad.json").write_text('{"snmp_community": "s3cr3t-value"')
    with pytest.raises(ConfigError) as info:
        store.load("bad")
    assert "unreadable" in str(info.value)
    assert "s3cr3t-value" not in str(info.value)


# --------------------------------------------------------------------------- delete / names


def test_delete(store: CredentialStore) -> None:
    store.save(full_profile())
    assert store.delete("core") is True
    assert store.delete("core") is False
    with pytest.raises(CredentialError):
        store.load("core")


def test_names_sorted(store: CredentialStore) -> None:
    assert store.names() == []  # no directory yet
    for name in ("zeta", "Alpha", "mid", "beta"):
        store.save(CredentialProfile(name=name))
    assert store.names() == ["Alpha", "beta", "mid", "zeta"]
    store.delete("mid")
    assert store.names() == ["Alpha", "beta", "zeta"]


def test_store_uses_switchboard_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_HOME", str(tmp_path))
    CredentialStore().save(CredentialProfile(name="envlab"))
    assert (tmp_path / "credentials" / "envlab.json").is_file()
