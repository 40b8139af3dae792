"""Service templates: typed parameters, validated before anything renders, and the
configuration each platform gets (``adapters/data/services.yaml``).

Validation is the injection barrier: every value is parsed into its type (an address, a
network, an interface that exists on the device) and written back from the parsed value,
so nothing a caller types reaches a template or an XML builder as it was typed. A
refused parameter raises :class:`ParameterError` before any connection is made.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from xml.sax.saxutils import escape as xml_escape

import jinja2
import yaml

from topology.errors import ConfigError, SwitchboardError

__all__ = [
    "SERVICES_FILE",
    "ParameterError",
    "Rendered",
    "ServiceSpec",
    "load_services",
    "render",
    "validate_params",
]

SERVICES_FILE: Final = Path(__file__).parent / "data" / "services.yaml"
TEMPLATES: Final = Path(__file__).parent / "templates"
ACTIONS: Final = ("add", "remove")
TYPES: Final = ("interface", "ipv4_interface", "ipv4_network", "ipv4_address", "vlan", "text")
_IFACE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9._/:-]{0,62}$")
_MAX_TEXT: Final = 200


class ParameterError(SwitchboardError):
    """A service parameter was refused (nothing was sent anywhere); ``problems`` lists
    each refused parameter with its reason."""

    def __init__(self, service: str, problems: list[str]) -> None:
        super().__init__(f"service {service}: " + "; ".join(problems))
        self.service = service
        self.problems = problems


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a service."""

    name: str
    type: str
    required: bool = True
    requires: str | None = None


@dataclass(frozen=True)
class ServiceSpec:
    """A service: its parameters, how each platform renders it, how it is verified."""

    name: str
    description: str
    params: dict[str, ParamSpec]
    platforms: dict[str, dict[str, str]]
    config_contains: tuple[str, ...] = ()
    reach: bool = False
    removal: dict[str, dict[str, str]] = field(default_factory=dict)
    """How each platform takes the service off again (action "remove"); empty: it
    cannot be removed by the agent."""
    config_absent: tuple[str, ...] = ()
    """Lines the running config must no longer hold after a removal."""


@dataclass(frozen=True)
class Rendered:
    """A service rendered for one platform: the config the driver loads."""

    service: str
    platform: str
    config: str
    checks: tuple[str, ...] = field(default_factory=tuple)
    """Text the running config must contain afterwards."""
    absent: tuple[str, ...] = field(default_factory=tuple)
    """Lines the running config must not hold afterwards (a removal)."""
    action: str = "add"


def load_services(path: Path | None = None) -> dict[str, ServiceSpec]:
    """Read and check the services file (every problem listed at once)."""
    path = path or SERVICES_FILE
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"services {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"services {path}: not a mapping of services")
    problems: list[str] = []
    out: dict[str, ServiceSpec] = {}
    for name, body in raw.items():
        if not isinstance(body, dict):
            problems.append(f"{name}: not a mapping")
            continue
        params: dict[str, ParamSpec] = {}
        for pname, p in (body.get("parameters") or {}).items():
            if not isinstance(p, dict) or p.get("type") not in TYPES:
                problems.append(f"{name}.{pname}: type must be one of {TYPES}")
                continue
            params[pname] = ParamSpec(pname, p["type"], bool(p.get("required", True)),
                                      p.get("requires"))
        for p in params.values():
            if p.requires is not None and p.requires not in params:
                problems.append(f"{name}.{p.name}: requires unknown parameter {p.requires}")
        platforms = body.get("platforms") or {}
        if not isinstance(platforms, dict) or not platforms:
            problems.append(f"{name}: no platforms")
            platforms = {}
        removal = body.get("remove") or {}
        if not isinstance(removal, dict):
            problems.append(f"{name}.remove: not a mapping")
            removal = {}
        removal_platforms = removal.get("platforms") or {}
        if not isinstance(removal_platforms, dict):
            problems.append(f"{name}.remove.platforms: not a mapping")
            removal_platforms = {}
        for where, table in ((name, platforms), (f"{name}.remove", removal_platforms)):
            for plat, how in table.items():
                if not isinstance(how, dict) or len(set(how) & {"template", "builder"}) != 1:
                    problems.append(f"{where}.{plat}: needs exactly one of template, builder")
                elif "template" in how and not (TEMPLATES / how["template"]).is_file():
                    problems.append(f"{where}.{plat}: template {how['template']} not found")
        verify = body.get("verify") or {}
        removal_verify = removal.get("verify") or {}
        out[name] = ServiceSpec(
            name=name, description=str(body.get("description", "")), params=params,
            platforms={k: dict(v) for k, v in platforms.items() if isinstance(v, dict)},
            config_contains=tuple(str(c) for c in verify.get("config_contains") or ()),
            reach=bool(verify.get("reach", False)),
            removal={k: dict(v) for k, v in removal_platforms.items() if isinstance(v, dict)},
            config_absent=tuple(str(c) for c in removal_verify.get("config_absent") or ()))
    if problems:
        raise ConfigError(f"services {path}: " + "; ".join(problems))
    return out


def _one(spec: ParamSpec, raw: object, interfaces: Collection[str] | None) -> str:
    """The parsed value written back as text; ValueError with the reason."""
    text = str(raw)
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError("holds a newline or control character")
    if spec.type == "interface":
        if not _IFACE.match(text):
            raise ValueError(f"{text!r} is not an interface name")
        if interfaces is not None and text not in interfaces:
            known = ", ".join(sorted(interfaces)[:12])
            raise ValueError(f"the device has no interface {text!r} in the inventory "
                             f"(it has: {known})")
        return text
    if spec.type == "ipv4_interface":
        try:
            iface = ipaddress.IPv4Interface(text)
        except ValueError:
            raise ValueError(f"{text!r} is not an IPv4 address with a prefix length "
                             "(100.64.11.1/24)") from None
        if "/" not in text:
            raise ValueError(f"{text!r} needs its prefix length (100.64.11.1/24)")
        if iface.network.prefixlen < 31 and iface.ip in (iface.network.network_address,
                                                        iface.network.broadcast_address):
            raise ValueError(f"{text} is the network or broadcast address of its prefix")
        return str(iface)
    if spec.type == "ipv4_network":
        try:
            return str(ipaddress.IPv4Network(text, strict=True))
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an IPv4 network: {exc}") from None
    if spec.type == "ipv4_address":
        try:
            return str(ipaddress.IPv4Address(text))
        except ValueError:
            raise ValueError(f"{text!r} is not an IPv4 address") from None
    if spec.type == "vlan":
        if not text.isdigit() or not 1 <= int(text) <= 4094:
            raise ValueError(f"{text!r} is not a VLAN id (1..4094)")
        return str(int(text))
    if not text.strip():
        raise ValueError("is empty")
    if len(text) > _MAX_TEXT:
        raise ValueError(f"is longer than {_MAX_TEXT} characters")
    return text.strip()


def validate_params(spec: ServiceSpec, params: Mapping[str, object], *,
                    interfaces: Collection[str] | None = None) -> dict[str, str]:
    """The parameters parsed by type (``interfaces``: the device's, from the inventory);
    :class:`ParameterError` listing every problem."""
    problems: list[str] = []
    out: dict[str, str] = {}
    for name in params:
        if name not in spec.params:
            problems.append(f"{name}: not a parameter of {spec.name} (it has "
                            f"{', '.join(spec.params)})")
    for name, p in spec.params.items():
        if name not in params or params[name] in (None, ""):
            if p.required:
                problems.append(f"{name}: required")
            continue
        try:
            out[name] = _one(p, params[name], interfaces)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    for name, p in spec.params.items():
        if p.requires and (name in out) != (p.requires in out):
            problems.append(f"{name} and {p.requires} go together")
    if "customer_prefix" in out and "next_hop" in out and "address" in out:
        hop = ipaddress.IPv4Address(out["next_hop"])
        link = ipaddress.IPv4Interface(out["address"])
        if hop not in link.network or hop == link.ip:
            problems.append(f"next_hop {hop} must be another address on the customer link "
                            f"{link.network}")
    if problems:
        raise ParameterError(spec.name, problems)
    return out


# CLI lines, not HTML: escaping would corrupt them; the values were parsed by type
_ENV: Final = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True, autoescape=False)  # noqa: S701
# the checks compare with the running config as text: CLI lines as they are, XML text
# with `xmltext` (&, <, > escaped the way lxml writes element text; quotes are not)
_TEXT_ENV: Final = jinja2.Environment(undefined=jinja2.StrictUndefined,
                                      autoescape=False)  # noqa: S701
_TEXT_ENV.filters["xmltext"] = xml_escape


def render(spec: ServiceSpec, platform: str, params: Mapping[str, str],
           builders: Mapping[str, Callable[..., str]] | None = None, *,
           action: str = "add") -> Rendered:
    """The config for ``platform`` from validated parameters: what adds the service, or
    with ``action="remove"`` what takes it off again (the same parameters)."""
    if action not in ACTIONS:
        raise ParameterError(spec.name, [f"action {action!r}: one of {', '.join(ACTIONS)}"])
    table = spec.platforms if action == "add" else spec.removal
    how = table.get(platform)
    if how is None:
        if action == "remove":
            raise ParameterError(spec.name, [f"no removal for platform {platform!r} (it "
                                             f"has {', '.join(table) or 'none'})"])
        raise ParameterError(spec.name, [f"no template for platform {platform!r} (it has "
                                         f"{', '.join(spec.platforms)})"])
    values: dict[str, Any] = {name: params.get(name) for name in spec.params}
    if "template" in how:
        config = _ENV.get_template(how["template"]).render(**values)
        config = "\n".join(line for line in config.splitlines() if line.strip()) + "\n"
    else:
        builder = (builders or {}).get(how["builder"])
        if builder is None:
            raise ConfigError(f"service {spec.name}: builder {how['builder']} not available")
        config = builder(**{k: v for k, v in values.items() if v is not None})
    if action == "remove":
        absent = tuple(t for t in (_TEXT_ENV.from_string(c).render(**values)
                                   for c in spec.config_absent) if t.strip())
        return Rendered(spec.name, platform, config, (), absent, action)
    checks = tuple(_TEXT_ENV.from_string(c).render(**values) for c in spec.config_contains)
    return Rendered(spec.name, platform, config, checks)
