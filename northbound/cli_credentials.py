"""``switchboard credentials list|show|add|remove|encrypt``: credential profiles, for the
admin of the machine that holds them.

Secrets (SNMP community, SNMPv3 authentication and privacy keys, SSH and NETCONF
passwords) are read from a hidden prompt (asked twice) or, with ``--secrets-stdin``, one
line each from standard input in this order: community, v3 authentication key, v3
privacy key, SSH password, NETCONF password (those the options call for). Never from an
argument, which ``ps`` would show. Nothing here prints a secret: ``list`` and ``show`` say
``set`` or ``-``. Every change is written to the audit log as done by the operating-system
user, from ``cli``, with the profile before and after, without secrets.
"""

from __future__ import annotations

import getpass
import os
import sys
from typing import Annotated, Any, get_args

import typer
from pydantic import ValidationError
from rich.markup import escape
from sqlmodel import Session

from northbound.output import emit_json, err, out, table
from topology.credentials import (
    AuthProtocol,
    CredentialProfilePublic,
    CredentialStore,
    PrivProtocol,
)
from topology.errors import ConfigError, CredentialError, SwitchboardError

__all__ = ["credentials_app"]

credentials_app = typer.Typer(
    help="Credential profiles (SNMP, SSH, NETCONF logins) devices are reached with; "
         "secrets are asked for, stored encrypted and never printed.",
    no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
NameArg = Annotated[str, typer.Argument(help="The profile's name.")]
NONE = "none"


def _me() -> str:
    """Who runs the command: the person behind sudo if any."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _audit(action: str, name: str, *, before: Any = None, after: Any = None) -> None:
    from topology.db import get_engine
    from topology.users import audit, init_users_db

    engine = get_engine()
    init_users_db(engine)
    with Session(engine) as s:
        audit(s, who=_me(), client="cli", action=f"credentials {action}",
              target_type="credential", target_id=name, before=before, after=after,
              result="ok")


def _mark(on: bool) -> str:
    return "set" if on else "-"


def _level(p: CredentialProfilePublic) -> str | None:
    return p.snmp_v3.level if p.snmp_v3 is not None else None


@credentials_app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """Every profile: planes, SNMP versions, v3 user and level, usernames; for each
    secret only whether it is set."""
    store = CredentialStore()
    rows: list[CredentialProfilePublic] = []
    broken: list[tuple[str, str]] = []
    for name in store.names():
        try:
            rows.append(store.public(name))
        except (CredentialError, ConfigError) as exc:
            broken.append((name, str(exc)))
    if as_json:
        emit_json([p.model_dump(mode="json") for p in rows]
                  + [{"name": n, "error": e} for n, e in broken])
        return
    table("Credential profiles",
          ["name", "planes", "snmp", "community", "v3 user", "v3 level", "ssh user",
           "ssh password", "netconf user", "netconf password", "at rest"],
          [(p.name, ",".join(p.planes) or None, ",".join(p.snmp_versions) or None,
            _mark(p.snmp_community_set), p.snmp_v3.user if p.snmp_v3 else None, _level(p),
            p.ssh_username, _mark(p.ssh_password_set), p.netconf_username,
            _mark(p.netconf_password_set), "encrypted" if p.encrypted else "PLAIN")
           for p in rows]
          + [(n, None, None, None, None, None, None, None, None, None,
              f"unreadable: {e}") for n, e in broken],
          caption=None if all(p.encrypted for p in rows) else
          "PLAIN: secrets in clear on disk; `switchboard credentials encrypt` fixes it")


@credentials_app.command("show")
def show_cmd(name: NameArg, as_json: JsonOpt = False) -> None:
    """One profile, without its secrets."""
    p = CredentialStore().public(name)
    if as_json:
        emit_json(p.model_dump(mode="json"))
        return
    v3 = p.snmp_v3
    rows: list[tuple[str, Any]] = [
        ("name", p.name), ("source", p.source), ("planes", ",".join(p.planes) or None),
        ("snmp versions", ",".join(p.snmp_versions) or None),
        ("snmp community", _mark(p.snmp_community_set)),
        ("v3 user", v3.user if v3 else None), ("v3 level", v3.level if v3 else None),
        ("v3 auth protocol", v3.auth_protocol if v3 else None),
        ("v3 auth key", _mark(v3.auth_key_set) if v3 else None),
        ("v3 priv protocol", v3.priv_protocol if v3 else None),
        ("v3 priv key", _mark(v3.priv_key_set) if v3 else None),
        ("ssh username", p.ssh_username), ("ssh password", _mark(p.ssh_password_set)),
        ("netconf username", p.netconf_username),
        ("netconf password", _mark(p.netconf_password_set)),
        ("at rest", "encrypted" if p.encrypted else "PLAIN (credentials encrypt)")]
    table(f"Credential profile {p.name}", ["field", "value"], rows)


def _read_secret(what: str, from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise SwitchboardError(f"--secrets-stdin: standard input has no line for the "
                                   f"{what}: nothing changed")
        return line
    first = str(typer.prompt(what.capitalize(), hide_input=True, err=True))
    if not first:
        raise SwitchboardError(f"an empty {what}: nothing changed")
    second = str(typer.prompt("Repeat it", hide_input=True, err=True))
    if first != second:
        raise SwitchboardError(f"the two {what}s differ: nothing changed")
    return first


def _protocol(option: str, value: str, allowed: tuple[str, ...]) -> str | None:
    if value.lower() == NONE:
        return None
    for choice in allowed:
        if value.upper() == choice:
            return choice
    raise SwitchboardError(f"{option} {value!r}: one of {', '.join(allowed)} or none")


@credentials_app.command("add")
def add_cmd(
    name: NameArg,
    snmp_community: Annotated[bool, typer.Option(
        "--snmp-community", help="The profile has an SNMP v2c community (asked for).")]
    = False,
    snmp_community_stdin: Annotated[bool, typer.Option(
        "--snmp-community-stdin", help="The same, the community read from the first line "
                                       "of stdin.")] = False,
    v3_user: Annotated[str | None, typer.Option(
        "--v3-user", help="An SNMPv3 USM user; its keys are asked for.")] = None,
    v3_auth_protocol: Annotated[str, typer.Option(
        "--v3-auth-protocol", help="MD5, SHA, SHA-224/256/384/512, or none "
                                   "(noAuthNoPriv).")] = "SHA",
    v3_priv_protocol: Annotated[str, typer.Option(
        "--v3-priv-protocol", help="DES, AES, AES-192, AES-256, or none "
                                   "(authNoPriv).")] = "AES",
    ssh_username: Annotated[str | None, typer.Option(
        "--ssh-username", help="SSH login; its password is asked for.")] = None,
    netconf_username: Annotated[str | None, typer.Option(
        "--netconf-username", help="NETCONF login; its password is asked for.")] = None,
    secrets_stdin: Annotated[bool, typer.Option(
        "--secrets-stdin", help="Read every secret from stdin, one line each: community, "
                                "v3 auth key, v3 priv key, SSH password, NETCONF "
                                "password.")] = False,
    source: Annotated[str, typer.Option(help="Who registered it.")] = "user",
    replace: Annotated[bool, typer.Option(
        "--replace", help="Replace a profile of that name (every secret asked anew).")]
    = False,
    as_json: JsonOpt = False,
) -> None:
    """Add a profile; its secrets come from hidden prompts or stdin, never arguments."""
    from northbound.api_credentials import CredentialFields, audit_view, build_profile

    store = CredentialStore()
    exists = store.exists(name)  # the name is checked before any secret is asked for
    if exists and not replace:
        raise CredentialError(f"credential profile {name!r} exists: --replace to replace "
                              "it", profile=name)
    auth = priv = None
    if v3_user is not None:
        auth = _protocol("--v3-auth-protocol", v3_auth_protocol, get_args(AuthProtocol))
        priv = _protocol("--v3-priv-protocol", v3_priv_protocol, get_args(PrivProtocol))
        if auth is None and priv is not None:
            priv = None  # noAuthNoPriv: no privacy without authentication
    if not (snmp_community or snmp_community_stdin or v3_user or ssh_username
            or netconf_username):
        raise SwitchboardError("a profile needs at least one of --snmp-community, "
                               "--v3-user, --ssh-username, --netconf-username")
    raw: dict[str, Any] = {"source": source, "ssh_username": ssh_username,
                           "netconf_username": netconf_username}
    if snmp_community or snmp_community_stdin:
        raw["snmp_community"] = _read_secret("SNMP community",
                                             secrets_stdin or snmp_community_stdin)
    if v3_user is not None:
        raw["snmp_v3"] = {
            "user": v3_user, "auth_protocol": auth, "priv_protocol": priv,
            "auth_key": _read_secret(f"SNMPv3 {auth} authentication key for {v3_user}",
                                     secrets_stdin) if auth else None,
            "priv_key": _read_secret(f"SNMPv3 {priv} privacy key for {v3_user}",
                                     secrets_stdin) if priv else None}
    if ssh_username is not None:
        raw["ssh_password"] = _read_secret(f"SSH password for {ssh_username}",
                                           secrets_stdin)
    if netconf_username is not None:
        raw["netconf_password"] = _read_secret(f"NETCONF password for {netconf_username}",
                                               secrets_stdin)
    try:
        fields = CredentialFields.model_validate(raw)
    except ValidationError as exc:  # its message would echo the secrets: fields and why
        why = sorted({f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                      for e in exc.errors()})
        raise CredentialError(f"credential profile {name!r} refused: {'; '.join(why)}",
                              profile=name) from None
    before = store.public(name) if exists else None
    store.save(build_profile(name, fields))
    after = store.public(name)
    _audit("replace" if exists else "add", name,
           before=audit_view(before) if before is not None else None,
           after=audit_view(after))
    if as_json:
        emit_json(after.model_dump(mode="json"))
        return
    err.print(f"credential profile {escape(name)} {'replaced' if exists else 'added'} "
              f"({', '.join(after.planes)}); its secrets are stored encrypted",
              highlight=False)


@credentials_app.command("remove")
def remove_cmd(
    name: NameArg,
    force: Annotated[bool, typer.Option(
        "--force", help="Remove it even while devices in the inventory use it.")] = False,
) -> None:
    """Remove a profile; refused while a device in the inventory logs in with it."""
    from northbound.api_credentials import audit_view
    from topology.db import get_engine, init_db
    from topology.queries import devices_using_profile

    store = CredentialStore()
    if not store.exists(name):
        raise CredentialError(f"no credential profile named {name!r}", profile=name)
    engine = get_engine()
    init_db(engine)
    with Session(engine) as s:
        devices = devices_using_profile(s, name)
    if devices and not force:
        shown = ", ".join(devices[:10]) + (" ..." if len(devices) > 10 else "")
        raise CredentialError(f"credential profile {name!r} is the working profile of "
                              f"{len(devices)} device(s): {shown}; --force removes it "
                              "anyway", profile=name)
    try:
        before: CredentialProfilePublic | None = store.public(name)
    except (CredentialError, ConfigError):
        before = None  # an unreadable file can still be removed
    store.delete(name)
    _audit("remove", name, before=audit_view(before) if before is not None else None)
    note = f" (still named by {len(devices)} device(s))" if devices else ""
    err.print(f"credential profile {escape(name)} removed{note}", highlight=False)


@credentials_app.command("encrypt")
def encrypt_cmd(as_json: JsonOpt = False) -> None:
    """Rewrite every profile still holding a secret in clear, encrypted."""
    store = CredentialStore()
    done = store.encrypt_all()
    for name in done:
        _audit("encrypt", name, after={"name": name, "encrypted": True})
    if as_json:
        emit_json({"encrypted": done, "key_file": str(store.key_file)})
        return
    if not done:
        out.print("every credential profile was already encrypted", highlight=False)
        return
    out.print(f"encrypted {len(done)} profile(s): {', '.join(done)} (key: "
              f"{store.key_file})", highlight=False, markup=False)
