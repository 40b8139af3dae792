"""Facts from a device's CLI over SSH: the version, the interface table, descriptions.

One synchronous netmiko session (callers in asyncio use ``asyncio.to_thread``).
What differs per platform is data, in ``collectors/data/cli_platforms.yaml``: the
netmiko driver, the commands, the failure markers and the TextFSM template for
each command (ntc-templates' where it has one, else the suite's own in
``collectors/templates/``). The parsers are pure functions, so they are tested on
outputs recorded from the lab's real daemons (``tests/golden/``).

netmiko's and paramiko's exceptions become the suite's in one place,
:func:`_translate`::

    NetmikoAuthenticationException, paramiko AuthenticationException -> AuthenticationFailed
    NetmikoTimeoutException, ReadTimeout, socket timeout, unreachable  -> DeviceTimeout
    connection refused                                                 -> ConnectionRefused
    anything else from the session, a failure marker in a reply       -> ProtocolError
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from pathlib import Path
from types import MappingProxyType
from typing import Any

import textfsm
import yaml
from textfsm import clitable

from topology.errors import (
    AuthenticationFailed,
    CollectionError,
    ConfigError,
    ConnectionRefused,
    DeviceTimeout,
    ProtocolError,
    exception_chain,
)

__all__ = [
    "CliCommand",
    "CliFacts",
    "CliInterface",
    "CliPlatform",
    "CliVersion",
    "cli_platforms",
    "collect_cli_facts",
    "find_failure_marker",
    "parse_show_interface_brief",
    "parse_show_interface_description",
    "parse_show_version",
    "run_cli_commands",
]

PACKAGE_DIR = Path(__file__).parent
PLATFORMS_FILE = PACKAGE_DIR / "data" / "cli_platforms.yaml"
TEMPLATES_DIR = PACKAGE_DIR / "templates"
NTC = "ntc"
VERSION_FIELDS = frozenset({"hostname", "os_name", "os_version", "uptime"})
INTERFACE_FIELDS = frozenset({"name", "status", "vrf", "addresses"})
DESCRIPTION_FIELDS = frozenset({"name", "description"})
FACTS = {"version": VERSION_FIELDS, "interfaces": INTERFACE_FIELDS,
         "descriptions": DESCRIPTION_FIELDS}
REQUIRED_FACTS = frozenset({"version", "interfaces"})


@dataclass(frozen=True)
class CliInterface:
    """One row of the interface table; ``vrf`` is ``None`` where the platform shows none."""

    name: str
    status: str
    vrf: str | None
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class CliVersion:
    """What ``show version`` says; ``None`` where the platform does not show it."""

    hostname: str | None
    os_name: str
    os_version: str | None
    uptime: str | None


@dataclass(frozen=True)
class CliFacts:
    """Facts read from one device's CLI. ``descriptions`` maps interface names to the
    operator's descriptions (only interfaces that have one; empty where the platform
    has no description command); ``raw`` keeps each command's output."""

    host: str
    platform: str
    hostname: str | None
    os_name: str
    os_version: str | None
    uptime: str | None
    interfaces: tuple[CliInterface, ...]
    descriptions: Mapping[str, str]
    raw: Mapping[str, str] = field(repr=False, compare=False)


@dataclass(frozen=True)
class CliCommand:
    """How one fact is read: the command, its template, template column per field."""

    command: str
    template: str
    fields: Mapping[str, str]


@dataclass(frozen=True)
class CliPlatform:
    """One entry of ``cli_platforms.yaml``."""

    name: str
    device_type: str
    os_name: str
    ntc_platform: str | None
    failed_when_contains: tuple[str, ...]
    absent_values: frozenset[str]
    facts: Mapping[str, CliCommand]

    def template_path(self, fact: str) -> Path:
        """The TextFSM template for ``fact``: the suite's own, or ntc-templates' one."""
        spec = self.facts[fact]
        if spec.template != NTC:
            return TEMPLATES_DIR / spec.template
        if self.ntc_platform is None:
            raise ConfigError(f"CLI platform {self.name!r}: fact {fact!r} asks for an "
                              "ntc-templates template but the platform has no ntc_platform")
        return _ntc_template(self.ntc_platform, spec.command)


def _ntc_template(ntc_platform: str, command: str) -> Path:
    """The template ntc-templates' index names for the platform and command."""
    template_dir = Path(str(files("ntc_templates") / "templates"))
    table = clitable.CliTable("index", str(template_dir))
    row = table.index.GetRowMatch({"Platform": ntc_platform, "Command": command})
    if not row:
        raise ConfigError(f"ntc-templates has no template for {ntc_platform!r} {command!r}")
    names = str(table.index.index[row]["Template"]).split(":")
    if len(names) != 1:
        raise ConfigError(f"ntc-templates names several templates for {ntc_platform!r} "
                          f"{command!r}: {names}; only one is supported")
    return template_dir / names[0]


def _platform_from_data(name: str, raw: Any) -> CliPlatform:
    where = f"{PLATFORMS_FILE.name}: platform {name!r}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: not a mapping")
    try:
        facts: dict[str, CliCommand] = {}
        for fact, spec in dict(raw["facts"]).items():
            if fact not in FACTS:
                raise ConfigError(f"{where}: unknown fact {fact!r} (known: {sorted(FACTS)})")
            fields = {str(k): str(v) for k, v in dict(spec["fields"]).items()}
            unknown = set(fields) - FACTS[fact]
            if unknown:
                raise ConfigError(f"{where}: fact {fact!r} maps unknown fields {sorted(unknown)}")
            facts[fact] = CliCommand(str(spec["command"]), str(spec["template"]),
                                     MappingProxyType(fields))
        missing = REQUIRED_FACTS - set(facts)
        if missing:
            raise ConfigError(f"{where}: facts {sorted(missing)} missing")
        ntc = raw.get("ntc_platform")
        return CliPlatform(
            name=name, device_type=str(raw["device_type"]), os_name=str(raw["os_name"]),
            ntc_platform=None if ntc is None else str(ntc),
            failed_when_contains=tuple(str(m) for m in raw.get("failed_when_contains") or ()),
            absent_values=frozenset(str(v) for v in raw.get("absent_values") or ()),
            facts=MappingProxyType(facts))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: malformed ({exc!r})") from exc


@cache
def cli_platforms() -> Mapping[str, CliPlatform]:
    """The platforms of ``cli_platforms.yaml``, by name (read once)."""
    data = yaml.safe_load(PLATFORMS_FILE.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ConfigError(f"{PLATFORMS_FILE}: expected a mapping of platforms")
    return MappingProxyType({str(k): _platform_from_data(str(k), v) for k, v in data.items()})


def _platform(name: str) -> CliPlatform:
    platforms = cli_platforms()
    try:
        return platforms[name]
    except KeyError:
        raise ConfigError(f"unknown CLI platform {name!r} (known: "
                          f"{', '.join(sorted(platforms))})") from None


# -- parsing (pure) -----------------------------------------------------------------

def _rows(text: str, platform: CliPlatform, fact: str) -> list[dict[str, Any]]:
    """Run the fact's TextFSM template over ``text``: one dict per record, by column."""
    with platform.template_path(fact).open(encoding="utf-8") as template:
        fsm = textfsm.TextFSM(template)
    header = [str(h) for h in fsm.header]
    return [dict(zip(header, row, strict=True)) for row in fsm.ParseText(text)]


def _value(row: Mapping[str, Any], spec: CliCommand, name: str,
           absent: frozenset[str]) -> str | None:
    column = spec.fields.get(name)
    if column is None:
        return None
    value = row.get(column)
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or str(value) == "" or str(value) in absent:
        return None
    return str(value)


def _values(row: Mapping[str, Any], spec: CliCommand, name: str,
            absent: frozenset[str]) -> tuple[str, ...]:
    column = spec.fields.get(name)
    value = row.get(column) if column else None
    items = value if isinstance(value, list) else [value]
    return tuple(str(v) for v in items if v not in (None, "") and str(v) not in absent)


def parse_show_version(text: str, platform: str = "frr") -> CliVersion:
    """Parse the platform's version command; ``ValueError`` when nothing matches."""
    spec_platform = _platform(platform)
    spec = spec_platform.facts["version"]
    rows = _rows(text, spec_platform, "version")
    if not rows:
        raise ValueError(f"{spec.command!r} output not understood for platform {platform!r}")
    row, absent = rows[0], spec_platform.absent_values
    return CliVersion(
        hostname=_value(row, spec, "hostname", absent),
        os_name=_value(row, spec, "os_name", absent) or spec_platform.os_name,
        os_version=_value(row, spec, "os_version", absent),
        uptime=_value(row, spec, "uptime", absent))


def parse_show_interface_brief(text: str, platform: str = "frr") -> tuple[CliInterface, ...]:
    """Parse the platform's interface table, one :class:`CliInterface` per interface."""
    spec_platform = _platform(platform)
    spec = spec_platform.facts["interfaces"]
    absent = spec_platform.absent_values
    interfaces = []
    for row in _rows(text, spec_platform, "interfaces"):
        name = _value(row, spec, "name", absent)
        if name is None:
            continue
        interfaces.append(CliInterface(
            name=name, status=_value(row, spec, "status", absent) or "unknown",
            vrf=_value(row, spec, "vrf", absent),
            addresses=_values(row, spec, "addresses", absent)))
    return tuple(interfaces)


def parse_show_interface_description(text: str, platform: str = "frr") -> dict[str, str]:
    """Parse the platform's description table: interface name -> description (those
    without one are left out)."""
    spec_platform = _platform(platform)
    if "descriptions" not in spec_platform.facts:
        raise ConfigError(f"CLI platform {platform!r} has no descriptions command")
    spec = spec_platform.facts["descriptions"]
    absent = spec_platform.absent_values
    descriptions = {}
    for row in _rows(text, spec_platform, "descriptions"):
        name = _value(row, spec, "name", absent)
        description = _value(row, spec, "description", absent)
        if name is not None and description is not None:
            descriptions[name] = description
    return descriptions


def find_failure_marker(output: str, platform: str = "frr") -> str | None:
    """The platform's failure marker found in ``output`` (``% Unknown command``), or ``None``."""
    for marker in _platform(platform).failed_when_contains:
        if marker in output:
            return marker
    return None


# -- the session ----------------------------------------------------------------------



def _translate(exc: BaseException, *, host: str, operation: str, profile: str | None,
               secret: str) -> CollectionError:
    """The one place netmiko's, paramiko's and socket errors become the suite's."""
    from netmiko.exceptions import (
        NetmikoAuthenticationException,
        NetmikoTimeoutException,
        ReadTimeout,
    )
    from paramiko.ssh_exception import AuthenticationException

    who = f"{host} (profile {profile!r})" if profile else host
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if secret:
        detail = detail.replace(secret, "***")
    chain = exception_chain(exc)
    kwargs: dict[str, Any] = {"device": host, "operation": operation, "profile": profile}
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return ConnectionRefused(f"{who}: SSH port closed ({operation})", **kwargs)
    if any(isinstance(e, NetmikoAuthenticationException | AuthenticationException)
           for e in chain):
        return AuthenticationFailed(f"{who}: SSH login refused", **kwargs)
    if any(isinstance(e, TimeoutError | NetmikoTimeoutException | ReadTimeout) for e in chain):
        return DeviceTimeout(f"{who}: no answer in time ({operation}): {detail}", **kwargs)
    if any(isinstance(e, OSError) and e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH)
           for e in chain):
        return DeviceTimeout(f"{who}: unreachable ({operation}): {detail}", **kwargs)
    return ProtocolError(f"{who}: {operation} failed: {detail}", **kwargs)


def _connect_socket(host: str, port: int, timeout_s: float) -> socket.socket:
    """A TCP connection of our own, so refused and timed out stay distinct."""
    return socket.create_connection((host, port), timeout=timeout_s)


def run_cli_commands(host: str, username: str, password: str, commands: Sequence[str], *,
                     platform: str = "frr", port: int = 22, timeout_s: float = 20.0,
                     profile: str | None = None) -> dict[str, str]:
    """Log in and run ``commands``; each command's output, unparsed and unchecked.

    ``timeout_s`` bounds each step: the TCP connect, the SSH login, each command.
    """
    from netmiko import ConnectHandler

    spec = _platform(platform)
    operation = "connect"
    outputs: dict[str, str] = {}
    try:
        with _connect_socket(host, port, timeout_s) as sock:
            operation = "login"
            conn = ConnectHandler(
                device_type=spec.device_type, host=host, port=port, username=username,
                password=password, sock=sock, conn_timeout=timeout_s, auth_timeout=timeout_s,
                banner_timeout=timeout_s, timeout=timeout_s, use_keys=False,
                allow_agent=False)
            try:
                for command in commands:
                    operation = command
                    outputs[command] = str(conn.send_command(command, read_timeout=timeout_s))
            finally:
                with contextlib.suppress(Exception):
                    conn.disconnect()
    except Exception as exc:
        raise _translate(exc, host=host, operation=operation, profile=profile,
                         secret=password) from exc
    return outputs


def collect_cli_facts(host: str, username: str, password: str, *, platform: str = "frr",
                      timeout_s: float = 20.0, profile: str | None = None) -> CliFacts:
    """Log in over SSH, read the version, the interfaces and their descriptions.

    Raises :class:`~topology.errors.CollectionError` subclasses; a reply carrying one
    of the platform's failure markers, or one its template cannot read, is a
    :class:`~topology.errors.ProtocolError`.
    """
    spec = _platform(platform)
    version_cmd = spec.facts["version"].command
    interfaces_cmd = spec.facts["interfaces"].command
    descriptions_cmd = (spec.facts["descriptions"].command
                        if "descriptions" in spec.facts else None)
    commands = [version_cmd, interfaces_cmd, *([descriptions_cmd] if descriptions_cmd else [])]
    raw = run_cli_commands(host, username, password, commands,
                           platform=platform, timeout_s=timeout_s, profile=profile)
    for command, output in raw.items():
        marker = find_failure_marker(output, platform)
        if marker is not None:
            raise ProtocolError(f"{host}: {command!r} failed: {output.strip()[:200]}",
                                device=host, operation=command, profile=profile)
    try:
        version = parse_show_version(raw[version_cmd], platform)
    except ValueError as exc:
        raise ProtocolError(f"{host}: {exc}", device=host, operation=version_cmd,
                            profile=profile) from exc
    return CliFacts(
        host=host, platform=platform, hostname=version.hostname, os_name=version.os_name,
        os_version=version.os_version, uptime=version.uptime,
        interfaces=parse_show_interface_brief(raw[interfaces_cmd], platform),
        descriptions=MappingProxyType(
            parse_show_interface_description(raw[descriptions_cmd], platform)
            if descriptions_cmd else {}),
        raw=MappingProxyType(dict(raw)))
