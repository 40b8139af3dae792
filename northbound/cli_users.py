"""``switchboard users add|list|role|disable|enable|token-create|token-list|token-revoke``
and ``switchboard audit list``.

Passwords are read from a hidden prompt or, with ``--password-stdin``, from the first line
of standard input: never from an argument, which ``ps`` would show. The only secrets ever
printed are a password made with ``--generate`` and a new API token, each once. Every
change made here is written to the audit log as done by the operating-system user, from
``cli``.
"""

from __future__ import annotations

import getpass
import os
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape
from sqlalchemy.engine import Engine
from sqlmodel import Session

from northbound.output import emit_json, err, out, table
from topology.db import get_engine
from topology.errors import SwitchboardError

__all__ = ["audit_app", "users_app"]

users_app = typer.Typer(help="Users (viewer, operator, admin) and API tokens for systems.",
                        no_args_is_help=True)
audit_app = typer.Typer(help="The audit log: who changed what, when, from where.",
                        no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
RoleOpt = Annotated[str, typer.Option("--role", help="viewer, operator or admin.")]


def _engine() -> Engine:
    from topology.users import init_users_db

    engine = get_engine()
    init_users_db(engine)
    return engine


def _me() -> str:
    """Who runs the command: the person behind sudo if any."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _audit(s: Session, action: str, target_type: str, target_id: str, *,
           before: Any = None, after: Any = None) -> None:
    from topology.users import audit

    audit(s, who=_me(), client="cli", action=action, target_type=target_type,
          target_id=target_id, before=before, after=after, result="ok")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise SwitchboardError("--password-stdin: standard input has no password line")
        return line
    first = typer.prompt("Password", hide_input=True, err=True)
    second = typer.prompt("Repeat it", hide_input=True, err=True)
    if first != second:
        raise SwitchboardError("the two passwords differ: nothing changed")
    return str(first)


@users_app.command("add")
def add_cmd(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    role: RoleOpt = "viewer",
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from the first line of stdin.")] = False,
    generate: Annotated[bool, typer.Option(
        "--generate", help="Make a random password and print it, once.")] = False,
) -> None:
    """Add a user; the password comes from a hidden prompt, stdin or --generate."""
    from topology.users import ROLES, create_user, generate_password

    if role not in ROLES:  # before asking for a password
        raise SwitchboardError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    if password_stdin and generate:
        raise SwitchboardError("--password-stdin and --generate exclude each other")
    password = generate_password() if generate else _read_password(password_stdin)
    with Session(_engine()) as s:
        user = create_user(s, name, role, password)
        _audit(s, "users add", "user", name, after=user.model_dump(mode="json"))
    err.print(f"user {escape(name)} added as {role}")
    if generate:
        out.print(f"password for {escape(name)} (shown once): {password}",
                  highlight=False, markup=False)


@users_app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """Every user with role and state (never a password)."""
    from topology.users import list_users

    with Session(_engine()) as s:
        rows = list_users(s)
    if as_json:
        emit_json([u.model_dump(mode="json") for u in rows])
        return
    table("Users", ["name", "role", "enabled", "created", "updated"],
          [(u.name, u.role, not u.disabled, f"{u.created_at:%Y-%m-%d %H:%M}",
            f"{u.updated_at:%Y-%m-%d %H:%M}") for u in rows])


@users_app.command("role")
def role_cmd(name: Annotated[str, typer.Argument(help="The user.")],
             role: Annotated[str, typer.Argument(help="viewer, operator or admin.")]) -> None:
    """Change a user's role (their open sessions get it at once)."""
    from topology.users import get_user, set_role

    with Session(_engine()) as s:
        before = get_user(s, name)
        after = set_role(s, name, role)
        _audit(s, "users role", "user", name, before=before.model_dump(mode="json"),
               after=after.model_dump(mode="json"))
    err.print(f"user {escape(name)}: {before.role} -> {after.role}")


@users_app.command("disable")
def disable_cmd(name: Annotated[str, typer.Argument(help="The user.")]) -> None:
    """Refuse a user from now on: password and open sessions alike."""
    from topology.users import disable, get_user

    with Session(_engine()) as s:
        before = get_user(s, name)
        after = disable(s, name)
        _audit(s, "users disable", "user", name, before=before.model_dump(mode="json"),
               after=after.model_dump(mode="json"))
    err.print(f"user {escape(name)} disabled")


@users_app.command("enable")
def enable_cmd(name: Annotated[str, typer.Argument(help="The user.")]) -> None:
    """Let a disabled user log in again."""
    from topology.users import enable, get_user

    with Session(_engine()) as s:
        before = get_user(s, name)
        after = enable(s, name)
        _audit(s, "users enable", "user", name, before=before.model_dump(mode="json"),
               after=after.model_dump(mode="json"))
    err.print(f"user {escape(name)} enabled")


@users_app.command("token-create")
def token_create_cmd(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. 'nms'.")],
    role: RoleOpt = "viewer",
    as_json: JsonOpt = False,
) -> None:
    """A new API token for a system; printed once, only its hash is kept."""
    from topology.users import create_token

    with Session(_engine()) as s:
        row, value = create_token(s, name, role, created_by=_me())
        _audit(s, "users token-create", "token", str(row.id),
               after=row.model_dump(mode="json"))
    if as_json:
        emit_json({"token": row.model_dump(mode="json"), "value": value})
        return
    err.print(f"token {row.id} ({escape(name)}, {role}); it is shown this once:")
    out.print(value, highlight=False, markup=False)


@users_app.command("token-list")
def token_list_cmd(as_json: JsonOpt = False) -> None:
    """Every API token (never their values)."""
    from topology.users import list_tokens

    with Session(_engine()) as s:
        rows = list_tokens(s)
    if as_json:
        emit_json([t.model_dump(mode="json") for t in rows])
        return
    table("API tokens", ["id", "name", "role", "starts", "by", "created", "last used",
                         "revoked"],
          [(t.id, t.name, t.role, t.prefix + "...", t.created_by,
            f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else None, t.revoked)
           for t in rows])


@users_app.command("token-revoke")
def token_revoke_cmd(token_id: Annotated[int, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token: refused from the next request on."""
    from topology.users import revoke

    with Session(_engine()) as s:
        row = revoke(s, token_id)
        _audit(s, "users token-revoke", "token", str(token_id),
               after=row.model_dump(mode="json"))
    err.print(f"token {token_id} ({escape(row.name)}) revoked")


@audit_app.command("list")
def audit_list_cmd(
    as_json: JsonOpt = False,
    since: Annotated[str | None, typer.Option(help="15m, 1h, 2d ago or an ISO time.")] = None,
    who: Annotated[str | None, typer.Option(help="Only this user or token name.")] = None,
    action: Annotated[str | None, typer.Option(help="Only actions containing this.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many.")] = 100,
) -> None:
    """Audit records, newest first."""
    from topology.queries import parse_since
    from topology.users import list_audit

    with Session(_engine()) as s:
        total, rows = list_audit(s, since=parse_since(since) if since else None, who=who,
                                 action=action, limit=limit)
    if as_json:
        emit_json([r.model_dump(mode="json") for r in rows])
        return
    table("Audit", ["at", "who", "role", "from", "action", "target", "result", "status"],
          [(f"{r.at:%Y-%m-%d %H:%M:%S}", r.who, r.role, r.client, r.action,
            f"{r.target_type or ''} {r.target_id or ''}".strip() or None, r.result,
            r.status_code) for r in rows],
          caption=f"{len(rows)} of {total}")
