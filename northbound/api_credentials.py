"""Credential profiles over REST, for admins (the role matrix's ``/api/credentials*``).

    GET    /api/credentials                ?offset= &limit=     (X-Total-Count)
    GET    /api/credentials/{name}
    POST   /api/credentials                {name, snmp_community, snmp_v3: {user,
                                            auth_protocol, auth_key, priv_protocol,
                                            priv_key}, ssh_username, ssh_password,
                                            netconf_username, netconf_password, source}
    PUT    /api/credentials/{name}         the same without name: a replacement
    DELETE /api/credentials/{name}         ?force=true   (refused while a device uses it)

Secrets are write-only: they go in request bodies and never come back. An answer says of
each secret only whether it is set (``snmp_community_set``, ``snmp_v3.auth_key_set``, ...).
A PUT replaces the profile, except that a secret left out of the body keeps the stored
value (``null`` clears it); a v3 key left out is kept when the stored profile has a v3
user. Profiles are saved by :class:`topology.credentials.CredentialStore` (one 0600 file
each, secrets encrypted); the store is ``app.state.credentials`` when the app has one,
else the one the settings name.

Every change gives its audit record the profile before and after, without secrets. Errors
are RFC 9457 problem details: 400 a refused profile (an invalid name, a private key without
an authentication key), 404 an unknown profile, 409 a name taken or a profile in use, 422 a
malformed body.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
)
from sqlmodel import Session

from northbound.auth import note_audit
from northbound.problems import MAX_INT, ProblemRoute, problem, problem_responses
from topology.credentials import (
    AuthProtocol,
    CredentialProfile,
    CredentialProfilePublic,
    CredentialStore,
    PrivProtocol,
)
from topology.errors import ConfigError, CredentialError
from topology.queries import NotFound, devices_using_profile

__all__ = ["CredentialFields", "CredentialProfileIn", "SnmpV3In", "audit_view",
           "build_profile", "router"]

log = logging.getLogger(__name__)

NAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def _text(value: str) -> str:
    value.encode("utf-8")  # a lone surrogate cannot be stored: refused, value not echoed
    return value


def _secret(value: SecretStr) -> SecretStr:
    try:
        value.get_secret_value().encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not UTF-8 text") from None
    return value


Text = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_text)]
Secret = Annotated[SecretStr, Field(min_length=1, max_length=256), AfterValidator(_secret)]
UsmKey = Annotated[SecretStr, Field(min_length=8, max_length=256, description=(
    "at least 8 characters (RFC 3414)")), AfterValidator(_secret)]


class SnmpV3In(BaseModel):
    """An SNMPv3 USM user; ``auth_key`` for authNoPriv, both keys for authPriv."""

    model_config = ConfigDict(extra="forbid")

    user: Text
    auth_protocol: AuthProtocol | None = "SHA"
    auth_key: UsmKey | None = None
    priv_protocol: PrivProtocol | None = "AES"
    priv_key: UsmKey | None = None


class CredentialFields(BaseModel):
    """A profile's content: SNMP v2c and v3, SSH and NETCONF logins (secrets write-only)."""

    model_config = ConfigDict(extra="forbid")

    snmp_community: Secret | None = None
    snmp_v3: SnmpV3In | None = None
    ssh_username: Text | None = None
    ssh_password: Secret | None = None
    netconf_username: Text | None = None
    netconf_password: Secret | None = None
    source: Text = Field(default="user", description="who registered it")


class CredentialProfileIn(CredentialFields):
    """A new profile."""

    name: str = Field(pattern=NAME_PATTERN, description="letters, digits, '_', '.', '-'")


def build_profile(name: str, body: CredentialFields,
                  stored: CredentialProfile | None = None) -> CredentialProfile:
    """The profile ``body`` describes; with ``stored``, a secret the body leaves out keeps
    the stored value. Refused (``CredentialError``, naming fields only) when inconsistent."""
    given = body.model_fields_set
    raw: dict[str, Any] = {"name": name, "source": body.source,
                           "ssh_username": body.ssh_username,
                           "netconf_username": body.netconf_username}
    for field in ("snmp_community", "ssh_password", "netconf_password"):
        value = getattr(body, field)
        if field not in given and stored is not None:
            value = getattr(stored, field)
        raw[field] = value
    if body.snmp_v3 is not None:
        v3 = body.snmp_v3
        keys = {"auth_key": v3.auth_key, "priv_key": v3.priv_key}
        if stored is not None and stored.snmp_v3 is not None:
            for key in keys:
                if key not in v3.model_fields_set:
                    keys[key] = getattr(stored.snmp_v3, key)
        raw["snmp_v3"] = {"user": v3.user, "auth_protocol": v3.auth_protocol,
                          "priv_protocol": v3.priv_protocol, **keys}
        problems = []
        if keys["priv_key"] is not None and keys["auth_key"] is None:
            problems.append("snmp_v3.priv_key needs snmp_v3.auth_key (authPriv)")
        if keys["auth_key"] is not None and v3.auth_protocol is None:
            problems.append("snmp_v3.auth_key needs snmp_v3.auth_protocol")
        if keys["priv_key"] is not None and v3.priv_protocol is None:
            problems.append("snmp_v3.priv_key needs snmp_v3.priv_protocol")
        if problems:
            raise CredentialError(f"credential profile {name!r} refused: "
                                  + "; ".join(problems), profile=name)
    try:
        return CredentialProfile.model_validate(raw)
    except ValidationError as exc:  # its message would echo the values: fields only
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        raise CredentialError(f"credential profile {name!r} invalid in: "
                              f"{', '.join(fields)}", profile=name) from None


def audit_view(public: CredentialProfilePublic) -> dict[str, Any]:
    """A profile for an audit record: no secret, and the secrets set named in
    ``set_fields`` (the audit's redaction hides the ``*_set`` flags by their names)."""
    return {**public.model_dump(mode="json"), "set_fields": public.set_fields}


router = APIRouter(prefix="/api/credentials", tags=["access"], route_class=ProblemRoute,
                   responses=problem_responses(400, 404, 409, 422))


def _store(request: Request) -> CredentialStore:
    store = getattr(request.app.state, "credentials", None)
    return store if isinstance(store, CredentialStore) else CredentialStore()


def _session(request: Request) -> Iterator[Session]:
    with Session(request.app.state.engine) as session:
        yield session


StoreDep = Annotated[CredentialStore, Depends(_store)]
SessionDep = Annotated[Session, Depends(_session)]
Offset = Annotated[int, Query(ge=0, le=MAX_INT, description="rows to skip")]
Limit = Annotated[int, Query(ge=1, le=1000, description="rows per page")]


def _existing(store: CredentialStore, name: str) -> CredentialProfile:
    if not store.exists(name):
        raise NotFound(f"no credential profile named {name!r}")
    return store.load(name)


@router.get("", response_model=list[CredentialProfilePublic])
def list_profiles(store: StoreDep, response: Response, offset: Offset = 0,
                  limit: Limit = 100) -> list[CredentialProfilePublic]:
    """Credential profiles by name, without their secrets (X-Total-Count has the total).
    A profile whose file cannot be read is left out and logged."""
    rows = []
    for name in store.names():
        try:
            rows.append(store.public(name))
        except (CredentialError, ConfigError) as exc:
            log.warning("credential profile %s left out of the list: %s", name, exc)
    response.headers["X-Total-Count"] = str(len(rows))
    return rows[offset:offset + limit]


@router.get("/{name}", response_model=CredentialProfilePublic)
def show_profile(name: str, store: StoreDep) -> CredentialProfilePublic:
    """One profile, without its secrets."""
    _existing(store, name)
    return store.public(name)


@router.post("", response_model=CredentialProfilePublic, status_code=201)
def add_profile(request: Request, body: CredentialProfileIn, store: StoreDep,
                response: Response) -> Any:
    """Add a profile; its secrets are saved encrypted and never answered."""
    if store.exists(body.name):
        return problem(request, 409, detail=f"credential profile {body.name!r} exists: "
                       f"replace it with PUT /api/credentials/{body.name}")
    store.save(build_profile(body.name, body))
    after = store.public(body.name)
    note_audit(request, target_type="credential", target_id=body.name,
               after=audit_view(after))
    response.headers["Location"] = f"/api/credentials/{body.name}"
    return after


@router.put("/{name}", response_model=CredentialProfilePublic)
def replace_profile(request: Request, name: str, body: CredentialFields,
                    store: StoreDep) -> CredentialProfilePublic:
    """Replace a profile; a secret left out of the body keeps its stored value, ``null``
    clears it."""
    stored = _existing(store, name)
    before = store.public(name)
    store.save(build_profile(name, body, stored))
    after = store.public(name)
    note_audit(request, target_type="credential", target_id=name,
               before=audit_view(before), after=audit_view(after))
    return after


@router.delete("/{name}", response_model=CredentialProfilePublic)
def remove_profile(request: Request, name: str, store: StoreDep, s: SessionDep,
                   force: Annotated[bool, Query(description="remove it even while devices "
                                                "use it")] = False) -> Any:
    """Remove a profile; refused (409) while a device in the inventory logs in with it,
    unless ``force``."""
    _existing(store, name)
    before = store.public(name)
    users = devices_using_profile(s, name)
    if users and not force:
        return _in_use(request, name, users)
    store.delete(name)
    note_audit(request, target_type="credential", target_id=name,
               before=audit_view(before))
    return before


def _in_use(request: Request, name: str, devices: list[str]) -> JSONResponse:
    shown = ", ".join(devices[:10]) + (f" and {len(devices) - 10} more"
                                       if len(devices) > 10 else "")
    return problem(request, 409, detail=f"credential profile {name!r} is the working "
                   f"profile of {len(devices)} device(s): {shown} (force=true removes it "
                   "anyway)")
