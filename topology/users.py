"""Who may use the suite: users with roles, API tokens for systems, login sessions, and the
audit log of every change. Tables and logic only; the HTTP side is ``northbound/auth.py``.

Roles are ordered ``viewer < operator < admin``: a rule asking for ``operator`` admits
operators and admins.

Secrets are never stored in clear. Passwords are argon2id hashes (argon2-cffi);
API and session tokens are 32 random bytes shown once, of which only the SHA-256 is
kept (a token is a key, not a password: a fast hash of 256 random bits is enough).
:func:`verify_password` costs one argon2 verification whether the user exists or not,
so the answer time does not tell which names exist.

Audit records keep ``before`` and ``after`` as JSON with every field whose name says it
holds a secret (password, secret, community, key, token, credential) replaced by
:data:`REDACTED`.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from topology.errors import SwitchboardError
from topology.inventory import UtcDateTime, utcnow

__all__ = [
    "REDACTED",
    "ROLES",
    "ApiToken",
    "ApiTokenPublic",
    "AuditRecord",
    "AuditRecordPublic",
    "LoginSession",
    "Principal",
    "Role",
    "User",
    "UserError",
    "UserPublic",
    "audit",
    "create_session",
    "create_token",
    "create_user",
    "disable",
    "enable",
    "end_session",
    "generate_password",
    "get_user",
    "init_users_db",
    "list_audit",
    "list_tokens",
    "list_users",
    "redact",
    "revoke",
    "role_at_least",
    "set_password",
    "set_role",
    "verify_password",
    "verify_session",
    "verify_token",
]

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
"""The roles, weakest first."""

REDACTED = "***"
_SECRET_NAME = re.compile(r"pass(word|wd|phrase)?|secret|community|key|token|credential",
                          re.IGNORECASE)
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD_LEN = 8
TOKEN_TOUCH_S = 60
"""A token's ``last_used_at`` is written at most once per this many seconds."""

_hasher = PasswordHasher()
_dummy_hash: str | None = None


class UserError(SwitchboardError):
    """A user or token operation refused: unknown name, duplicate, bad role or password.
    Never carries a password or a token."""

    def __init__(self, message: str, *, user: str | None = None) -> None:
        super().__init__(message)
        self.user = user


# --------------------------------------------------------------------------- tables


class User(SQLModel, table=True):
    """A person who logs in."""

    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=64)
    role: str = Field(max_length=16)
    password_hash: str = Field(max_length=256)
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class UserPublic(BaseModel):
    """A user as the API and the CLI show it (no hash)."""

    id: int
    name: str
    role: str
    disabled: bool
    created_at: datetime
    updated_at: datetime


class ApiToken(SQLModel, table=True):
    """A bearer token for a system; only its SHA-256 is kept."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=64)
    role: str = Field(max_length=16)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    prefix: str = Field(max_length=12, description="the token's first characters, to tell "
                        "tokens apart in lists")
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class ApiTokenPublic(BaseModel):
    """A token as lists show it (never the token)."""

    id: int
    name: str
    role: str
    prefix: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked: bool


class LoginSession(SQLModel, table=True):
    """A logged-in user's session; only the SHA-256 of its token is kept."""

    __tablename__ = "login_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    client: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime = Field(sa_type=UtcDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class AuditRecord(SQLModel, table=True):
    """One change (or refused attempt): who, as what, from where, what, before and after."""

    __tablename__ = "audit_record"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, index=True)
    who: str = Field(index=True, max_length=64)
    role: str | None = Field(default=None, max_length=16)
    client: str | None = Field(default=None, max_length=64, description="client address")
    action: str = Field(max_length=300, description="e.g. 'PATCH /tmf-api/.../alarm/{id}'")
    target_type: str | None = Field(default=None, max_length=64)
    target_id: str | None = Field(default=None, max_length=200)
    before_json: str | None = None
    after_json: str | None = None
    request_json: str | None = Field(default=None, description="the request body, redacted")
    result: str = Field(max_length=32, description="'ok', 'refused' or 'failed'")
    status_code: int | None = None


class AuditRecordPublic(BaseModel):
    """An audit record with its JSON opened."""

    id: int
    at: datetime
    who: str
    role: str | None
    client: str | None
    action: str
    target_type: str | None
    target_id: str | None
    before: Any
    after: Any
    request: Any
    result: str
    status_code: int | None


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a user (by password or session) or an API token."""

    name: str
    role: Role
    kind: Literal["session", "token", "password"]
    session_id: int | None = None
    token_id: int | None = None
    expires_at: datetime | None = None


def init_users_db(engine: Engine) -> None:
    """Create the users, tokens, sessions and audit tables where missing."""
    SQLModel.metadata.create_all(engine, tables=[
        User.__table__, ApiToken.__table__, LoginSession.__table__,  # type: ignore[attr-defined]
        AuditRecord.__table__])  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- roles


def _role(role: str) -> Role:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return role


def role_at_least(role: str, minimum: str) -> bool:
    """Whether ``role`` is ``minimum`` or stronger (an unknown role is nothing)."""
    if role not in ROLES or minimum not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(minimum)


# --------------------------------------------------------------------------- users


def _public(user: User) -> UserPublic:
    assert user.id is not None
    return UserPublic(id=user.id, name=user.name, role=user.role, disabled=user.disabled,
                      created_at=user.created_at, updated_at=user.updated_at)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LEN:
        raise UserError(f"password too short: at least {MIN_PASSWORD_LEN} characters")
    if len(password) > 1024:
        raise UserError("password too long: at most 1024 characters")


def generate_password() -> str:
    """A random password of 20 URL-safe characters (about 120 bits)."""
    return secrets.token_urlsafe(15)


def _get(session: Session, name: str) -> User:
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise UserError(f"no user named {name!r}", user=name)
    return user


def get_user(session: Session, name: str) -> UserPublic:
    """One user, or ``UserError``."""
    return _public(_get(session, name))


def list_users(session: Session) -> list[UserPublic]:
    """Every user, by name."""
    return [_public(u) for u in session.exec(select(User).order_by(col(User.name))).all()]


def create_user(session: Session, name: str, role: str, password: str) -> UserPublic:
    """Add a user (committed); ``UserError`` for a taken or invalid name, a bad role or a
    short password."""
    if not _USER_NAME.fullmatch(name):
        raise UserError(f"invalid user name {name!r}: letters, digits, '_.@-', at most 64",
                        user=name)
    role = _role(role)
    _check_password(password)
    if session.exec(select(User).where(User.name == name)).first() is not None:
        raise UserError(f"user {name!r} exists already", user=name)
    user = User(name=name, role=role, password_hash=_hasher.hash(password))
    session.add(user)
    session.commit()
    session.refresh(user)
    return _public(user)


def _update(session: Session, user: User) -> UserPublic:
    user.updated_at = utcnow()
    session.add(user)
    session.commit()
    session.refresh(user)
    return _public(user)


def set_role(session: Session, name: str, role: str) -> UserPublic:
    """Change a user's role; it applies to the user's open sessions at once."""
    user = _get(session, name)
    user.role = _role(role)
    return _update(session, user)


def set_password(session: Session, name: str, password: str) -> UserPublic:
    """Replace a user's password and end the user's sessions."""
    _check_password(password)
    user = _get(session, name)
    user.password_hash = _hasher.hash(password)
    _end_sessions(session, user)
    return _update(session, user)


def disable(session: Session, name: str) -> UserPublic:
    """Refuse the user from now on (password and open sessions alike)."""
    user = _get(session, name)
    user.disabled = True
    _end_sessions(session, user)
    return _update(session, user)


def enable(session: Session, name: str) -> UserPublic:
    """Let a disabled user log in again."""
    user = _get(session, name)
    user.disabled = False
    return _update(session, user)


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hash


def verify_password(session: Session, name: str, password: str) -> UserPublic | None:
    """The user if ``password`` is theirs and they are enabled, else ``None``.

    An unknown name is checked against a dummy hash so that it costs one argon2
    verification like a wrong password; the hash comparison itself is constant-time."""
    user = session.exec(select(User).where(User.name == name)).first()
    stored = user.password_hash if user is not None else _dummy()
    ok: bool
    try:
        ok = _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or user.disabled:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        session.add(user)
        session.commit()
        session.refresh(user)
    return _public(user)


# --------------------------------------------------------------------------- tokens


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token_public(t: ApiToken) -> ApiTokenPublic:
    assert t.id is not None
    return ApiTokenPublic(id=t.id, name=t.name, role=t.role, prefix=t.prefix,
                          created_by=t.created_by, created_at=t.created_at,
                          last_used_at=t.last_used_at, revoked=t.revoked)


def create_token(session: Session, name: str, role: str, *,
                 created_by: str = "") -> tuple[ApiTokenPublic, str]:
    """A new API token (committed) and its value: the only time the value is known."""
    if not _USER_NAME.fullmatch(name):
        raise UserError(f"invalid token name {name!r}: letters, digits, '_.@-', at most 64")
    role = _role(role)
    value = "sbt_" + secrets.token_urlsafe(32)
    row = ApiToken(name=name, role=role, token_hash=_digest(value), prefix=value[:10],
                   created_by=created_by)
    session.add(row)
    session.commit()
    session.refresh(row)
    return _token_public(row), value


def list_tokens(session: Session) -> list[ApiTokenPublic]:
    """Every token, newest first (values are not kept, so never shown)."""
    rows = session.exec(select(ApiToken).order_by(col(ApiToken.id).desc())).all()
    return [_token_public(t) for t in rows]


def verify_token(session: Session, token: str) -> Principal | None:
    """The principal of a live API token, else ``None``; notes when it was last used."""
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == _digest(token))).first()
    if row is None or row.revoked:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > timedelta(seconds=TOKEN_TOUCH_S):
        row.last_used_at = now
        session.add(row)
        session.commit()
    return Principal(name=row.name, role=_role(row.role), kind="token", token_id=row.id)


def revoke(session: Session, token_id: int) -> ApiTokenPublic:
    """Revoke a token (refused from now on); revoking twice is harmless."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise UserError(f"no API token with id {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        session.commit()
        session.refresh(row)
    return _token_public(row)


# --------------------------------------------------------------------------- sessions


def create_session(session: Session, name: str, *, ttl_s: int = 12 * 3600,
                   client: str | None = None) -> tuple[Principal, str]:
    """A login session for an (already verified) user and its token, shown once."""
    user = _get(session, name)
    if user.disabled:
        raise UserError(f"user {name!r} is disabled", user=name)
    assert user.id is not None
    value = "sbs_" + secrets.token_urlsafe(32)
    row = LoginSession(token_hash=_digest(value), user_id=user.id, client=client,
                       expires_at=utcnow() + timedelta(seconds=ttl_s))
    session.add(row)
    session.commit()
    session.refresh(row)
    return Principal(name=user.name, role=_role(user.role), kind="session",
                     session_id=row.id, expires_at=row.expires_at), value


def verify_session(session: Session, token: str) -> Principal | None:
    """The principal of a live session (not ended, not expired, user enabled), else None.
    The role is the user's current one."""
    row = session.exec(select(LoginSession)
                       .where(LoginSession.token_hash == _digest(token))).first()
    if row is None or row.ended_at is not None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled or user.role not in ROLES:
        return None
    return Principal(name=user.name, role=_role(user.role), kind="session",
                     session_id=row.id, expires_at=row.expires_at)


def end_session(session: Session, token: str) -> bool:
    """End the session of ``token``; False if there was no live one."""
    row = session.exec(select(LoginSession)
                       .where(LoginSession.token_hash == _digest(token))).first()
    if row is None or row.ended_at is not None:
        return False
    row.ended_at = utcnow()
    session.add(row)
    session.commit()
    return True


def _end_sessions(session: Session, user: User) -> None:
    now = utcnow()
    for row in session.exec(select(LoginSession).where(
            LoginSession.user_id == user.id, col(LoginSession.ended_at).is_(None))).all():
        row.ended_at = now
        session.add(row)


# --------------------------------------------------------------------------- audit


def redact(value: Any) -> Any:
    """``value`` with every field named like a secret replaced by :data:`REDACTED`, at any
    depth of dicts and lists."""
    if isinstance(value, dict):
        return {k: (REDACTED if isinstance(k, str) and _SECRET_NAME.search(k)
                    and v is not None else redact(v))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(redact(value), default=str, sort_keys=True)


def audit(session: Session, *, who: str, action: str, result: str, role: str | None = None,
          client: str | None = None, target_type: str | None = None,
          target_id: str | None = None, before: Any = None, after: Any = None,
          request: Any = None, status_code: int | None = None) -> AuditRecordPublic:
    """Write one audit record (committed); secrets in before, after and request are
    redacted."""
    row = AuditRecord(who=who[:64], role=role, client=client, action=action[:300],
                      target_type=target_type, target_id=target_id, result=result,
                      before_json=_dump(before), after_json=_dump(after),
                      request_json=_dump(request), status_code=status_code)
    session.add(row)
    session.commit()
    session.refresh(row)
    return _audit_public(row)


def _audit_public(r: AuditRecord) -> AuditRecordPublic:
    assert r.id is not None

    def load(text: str | None) -> Any:
        return json.loads(text) if text is not None else None

    return AuditRecordPublic(id=r.id, at=r.at, who=r.who, role=r.role, client=r.client,
                             action=r.action, target_type=r.target_type,
                             target_id=r.target_id, before=load(r.before_json),
                             after=load(r.after_json), request=load(r.request_json),
                             result=r.result, status_code=r.status_code)


def list_audit(session: Session, *, since: datetime | None = None, who: str | None = None,
               action: str | None = None, offset: int = 0,
               limit: int = 100) -> tuple[int, Sequence[AuditRecordPublic]]:
    """Audit records, newest first, and how many match; ``action`` matches a substring."""
    from sqlalchemy import func

    q = select(AuditRecord)
    if since is not None:
        q = q.where(col(AuditRecord.at) >= since)
    if who:
        q = q.where(AuditRecord.who == who)
    if action:
        q = q.where(col(AuditRecord.action).contains(action))
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    rows = session.exec(q.order_by(col(AuditRecord.id).desc()).offset(offset)
                        .limit(limit)).all()
    return int(total), [_audit_public(r) for r in rows]
