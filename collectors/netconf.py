"""Facts from a NETCONF server: capabilities, YANG modules, interfaces, system.

One synchronous ncclient session over SSH (callers in asyncio use
``asyncio.to_thread``). Three ``get`` requests follow the hello, each only when
the server advertises the module: the YANG library (``ietf-yang-library``
``modules-state``; without it the modules come from the capability URIs),
``ietf-interfaces`` ``interfaces-state``, and ``ietf-system`` (``system`` and
``system-state``). Replies are parsed from the raw text with lxml, entity
resolution and network access off. The parsers are pure functions, tested on
replies recorded from the lab's netconfd (``tests/golden/netconf/``).

ncclient's, paramiko's and socket errors become the suite's in one place,
:func:`translate_error`::

    AuthenticationError (paramiko AuthenticationException)      -> AuthenticationFailed
    socket timeout, no banner, hello or RPC timeout, unreachable -> DeviceTimeout
    connection refused                                           -> ConnectionRefused
    anything else from the session (rpc-error, closed, framing)  -> ProtocolError
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from topology.errors import (
    AuthenticationFailed,
    CollectionError,
    ConnectionRefused,
    DeviceTimeout,
    ProtocolError,
    exception_chain,
)

__all__ = [
    "NetconfFacts",
    "NetconfInterface",
    "NetconfReplies",
    "NetconfSystem",
    "YangModule",
    "collect_netconf_facts",
    "facts_from_replies",
    "fetch_netconf_replies",
    "modules_from_capabilities",
    "parse_interfaces_state",
    "parse_system",
    "parse_xml",
    "parse_yang_library",
]

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
YANG_LIBRARY = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
IETF_INTERFACES = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
IETF_SYSTEM = "urn:ietf:params:xml:ns:yang:ietf-system"
YUMA123_SYSTEM = "http://yuma123.org/ns/yuma123-system"

CAP_CANDIDATE = "urn:ietf:params:netconf:capability:candidate:"
CAP_CONFIRMED_COMMIT = "urn:ietf:params:netconf:capability:confirmed-commit:"
CAP_VALIDATE = "urn:ietf:params:netconf:capability:validate:"
CAP_YANG_LIBRARY = "urn:ietf:params:netconf:capability:yang-library:"

# Subtree filters of the three gets; the recorder (tests/golden/record.py) uses the same.
YANG_LIBRARY_FILTER = f'<modules-state xmlns="{YANG_LIBRARY}"/>'
INTERFACES_STATE_FILTER = f'<interfaces-state xmlns="{IETF_INTERFACES}"/>'
SYSTEM_FILTER = f'<system xmlns="{IETF_SYSTEM}"/><system-state xmlns="{IETF_SYSTEM}"/>'


class YangModule(NamedTuple):
    """A YANG module the server implements; ``revision`` is ``None`` when it has none."""

    name: str
    revision: str | None


@dataclass(frozen=True)
class NetconfInterface:
    """One entry of ``interfaces-state``; ``None`` where the server leaves a leaf out."""

    name: str
    type: str | None
    oper_status: str | None
    admin_status: str | None
    phys_address: str | None
    speed_bps: int | None
    in_octets: int | None
    out_octets: int | None
    in_errors: int | None
    out_errors: int | None


@dataclass(frozen=True)
class NetconfSystem:
    """Who the server says it is: ietf-system, or the server's own module where it has one."""

    hostname: str | None = None
    os_name: str | None = None
    os_release: str | None = None
    os_version: str | None = None
    machine: str | None = None


@dataclass(frozen=True)
class NetconfFacts:
    """Facts read from one NETCONF server."""

    capabilities: tuple[str, ...]
    modules: tuple[YangModule, ...]
    supports_candidate: bool
    supports_confirmed_commit: bool
    supports_validate: bool
    interfaces: tuple[NetconfInterface, ...]
    system: NetconfSystem

    @property
    def hostname(self) -> str | None:
        return self.system.hostname

    @property
    def os_name(self) -> str | None:
        return self.system.os_name

    @property
    def os_release(self) -> str | None:
        return self.system.os_release

    def module(self, name: str) -> YangModule | None:
        """The module called ``name``, or ``None``."""
        return next((m for m in self.modules if m.name == name), None)


@dataclass(frozen=True)
class NetconfReplies:
    """What a server answered, unparsed: the hello's capabilities and the raw replies
    (``None`` where the request was not made or the server refused it)."""

    capabilities: tuple[str, ...]
    yang_library: str | None
    interfaces_state: str | None
    system: str | None


# -- parsing (pure) ----------------------------------------------------------------------

def parse_xml(text: str | bytes) -> Any:
    """Parse XML without resolving entities, loading DTDs or touching the network."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, remove_comments=True)
    data = text.encode() if isinstance(text, str) else text
    return etree.fromstring(data, parser=parser)


def _data(text: str | bytes) -> Any:
    """The ``<data>`` element of a reply given as ``<rpc-reply>`` or as ``<data>``."""
    root = parse_xml(text)
    if root.tag == f"{{{NC}}}data":
        return root
    data = root.find(f"{{{NC}}}data")
    if data is None:
        raise ValueError(f"not a NETCONF data reply (root element {root.tag!r})")
    return data


def _text(element: Any, path: str, ns: str) -> str | None:
    """The text of the child at ``path`` (names in namespace ``ns``), stripped, or ``None``.

    Only the element's own text counts: an unresolved entity reference is never expanded.
    """
    qualified = "/".join(f"{{{ns}}}{step}" for step in path.split("/"))
    child = element.find(qualified)
    if child is None or child.text is None:
        return None
    return str(child.text).strip() or None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _identity(value: str | None) -> str | None:
    """A YANG identityref without its prefix (``ianaift:ethernetCsmacd`` -> ``ethernetCsmacd``)."""
    return value.rsplit(":", 1)[-1] if value else value


def modules_from_capabilities(capabilities: Iterable[str]) -> tuple[YangModule, ...]:
    """The modules named in capability URIs (``...?module=ietf-ip&revision=2014-06-16``)."""
    modules = []
    for uri in capabilities:
        query = parse_qs(urlsplit(uri).query)
        name = query.get("module", [""])[0]
        if name:
            modules.append(YangModule(name, query.get("revision", [""])[0] or None))
    return tuple(modules)


def parse_yang_library(text: str | bytes) -> tuple[YangModule, ...]:
    """The modules of an ``ietf-yang-library`` ``modules-state`` reply."""
    modules = []
    for module in _data(text).iterfind(f"{{{YANG_LIBRARY}}}modules-state/{{{YANG_LIBRARY}}}module"):
        name = _text(module, "name", YANG_LIBRARY)
        if name:
            modules.append(YangModule(name, _text(module, "revision", YANG_LIBRARY)))
    return tuple(modules)


def parse_interfaces_state(text: str | bytes) -> tuple[NetconfInterface, ...]:
    """The interfaces of an ``ietf-interfaces`` ``interfaces-state`` reply."""
    interfaces = []
    path = f"{{{IETF_INTERFACES}}}interfaces-state/{{{IETF_INTERFACES}}}interface"
    for entry in _data(text).iterfind(path):
        name = _text(entry, "name", IETF_INTERFACES)
        if not name:
            continue

        def leaf(p: str, entry: Any = entry) -> str | None:
            return _text(entry, p, IETF_INTERFACES)

        interfaces.append(NetconfInterface(
            name=name, type=_identity(leaf("type")), oper_status=leaf("oper-status"),
            admin_status=leaf("admin-status"), phys_address=leaf("phys-address"),
            speed_bps=_int(leaf("speed")),
            in_octets=_int(leaf("statistics/in-octets")),
            out_octets=_int(leaf("statistics/out-octets")),
            in_errors=_int(leaf("statistics/in-errors")),
            out_errors=_int(leaf("statistics/out-errors"))))
    return tuple(interfaces)


def parse_system(text: str | bytes) -> NetconfSystem:
    """Hostname and OS from an ``ietf-system`` reply (``system`` and ``system-state``).

    ``system/hostname`` and ``system-state/platform`` come first; yuma123's netconfd
    fills neither and reports ``uname`` under its own ``yuma123-system`` module,
    which is used where the standard leaves are missing.
    """
    data = _data(text)
    system = data.find(f"{{{IETF_SYSTEM}}}system")
    state = data.find(f"{{{IETF_SYSTEM}}}system-state")
    platform = state.find(f"{{{IETF_SYSTEM}}}platform") if state is not None else None
    uname = (state.find(f"{{{YUMA123_SYSTEM}}}yuma/{{{YUMA123_SYSTEM}}}uname")
             if state is not None else None)

    def first(std: str | None, vendor_leaf: str) -> str | None:
        if std:
            return std
        return _text(uname, vendor_leaf, YUMA123_SYSTEM) if uname is not None else None

    def std(leaf: str) -> str | None:
        return _text(platform, leaf, IETF_SYSTEM) if platform is not None else None

    hostname = _text(system, "hostname", IETF_SYSTEM) if system is not None else None
    return NetconfSystem(
        hostname=first(hostname, "nodename"), os_name=first(std("os-name"), "sysname"),
        os_release=first(std("os-release"), "release"),
        os_version=first(std("os-version"), "version"), machine=first(std("machine"), "machine"))


def _has(capabilities: Iterable[str], prefix: str) -> bool:
    return any(c.startswith(prefix) for c in capabilities)


def facts_from_replies(replies: NetconfReplies) -> NetconfFacts:
    """Parse what a server answered into :class:`NetconfFacts`."""
    caps = replies.capabilities
    modules = parse_yang_library(replies.yang_library) if replies.yang_library else ()
    return NetconfFacts(
        capabilities=caps,
        modules=modules or modules_from_capabilities(caps),
        supports_candidate=_has(caps, CAP_CANDIDATE),
        supports_confirmed_commit=_has(caps, CAP_CONFIRMED_COMMIT),
        supports_validate=_has(caps, CAP_VALIDATE),
        interfaces=(parse_interfaces_state(replies.interfaces_state)
                    if replies.interfaces_state else ()),
        system=parse_system(replies.system) if replies.system else NetconfSystem())


# -- the session -------------------------------------------------------------------------



def translate_error(exc: BaseException, *, host: str, operation: str, profile: str | None,
               secret: str) -> CollectionError:
    """The one place ncclient's, paramiko's and socket errors become the suite's."""
    from ncclient.operations.errors import TimeoutExpiredError
    from ncclient.transport.errors import AuthenticationError, SessionError
    from paramiko.ssh_exception import AuthenticationException

    who = f"{host} (profile {profile!r})" if profile else host
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if secret:
        detail = detail.replace(secret, "***")
    chain = exception_chain(exc)
    kwargs: dict[str, Any] = {"device": host, "operation": operation, "profile": profile}
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return ConnectionRefused(f"{who}: NETCONF port closed ({operation})", **kwargs)
    if any(isinstance(e, AuthenticationError | AuthenticationException) for e in chain):
        return AuthenticationFailed(f"{who}: NETCONF login refused", **kwargs)
    if (any(isinstance(e, TimeoutError | TimeoutExpiredError) for e in chain)
            or (isinstance(exc, SessionError) and "timed out" in str(exc))):
        return DeviceTimeout(f"{who}: no answer in time ({operation}): {detail}", **kwargs)
    if any(isinstance(e, OSError) and e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH)
           for e in chain):
        return DeviceTimeout(f"{who}: unreachable ({operation}): {detail}", **kwargs)
    return ProtocolError(f"{who}: {operation} failed: {detail}", **kwargs)


def connect_socket(host: str, port: int, timeout_s: float) -> socket.socket:
    """A TCP connection of our own that has seen the server's SSH banner begin.

    ncclient turns every connect error into one ``SSHError`` and paramiko waits 15 s
    for a banner whatever the timeout; connecting here keeps refused and timed out
    apart and bounds the wait for the banner by ``timeout_s``.
    """
    sock = socket.create_connection((host, port), timeout=timeout_s)
    try:
        if not sock.recv(4, socket.MSG_PEEK):
            raise ConnectionResetError(errno.ECONNRESET, "closed before the SSH banner")
    except BaseException:
        sock.close()
        raise
    return sock


def _filter(subtree: str) -> str:
    return f'<filter xmlns="{NC}" type="subtree">{subtree}</filter>'


def fetch_netconf_replies(host: str, username: str, password: str, *, port: int = 830,
                          timeout_s: float = 10.0, profile: str | None = None) -> NetconfReplies:
    """Open a session, read the hello and make the gets the capabilities allow.

    ``timeout_s`` bounds each step: the TCP connect, the banner, the hello, each RPC.
    """
    from ncclient import manager
    from ncclient.operations.rpc import RPCError

    operation = "connect"
    try:
        with connect_socket(host, port, timeout_s) as sock:
            operation = "hello"
            session = manager.connect(
                host=host, port=port, sock=sock, username=username, password=password,
                timeout=timeout_s, hostkey_verify=False, allow_agent=False,
                look_for_keys=False, device_params={"name": "default"},
                manager_params={"timeout": timeout_s})
            try:
                caps = tuple(str(c) for c in session.server_capabilities)
                modules = {m.name for m in modules_from_capabilities(caps)}
                yang_library = interfaces = system = None
                if _has(caps, CAP_YANG_LIBRARY) or "ietf-yang-library" in modules:
                    operation = "get modules-state"
                    try:
                        yang_library = str(session.get(filter=_filter(YANG_LIBRARY_FILTER)).xml)
                    except RPCError:
                        yang_library = None  # the capability URIs name the modules
                if "ietf-interfaces" in modules:
                    operation = "get interfaces-state"
                    interfaces = str(session.get(filter=_filter(INTERFACES_STATE_FILTER)).xml)
                if "ietf-system" in modules:
                    operation = "get system"
                    system = str(session.get(filter=_filter(SYSTEM_FILTER)).xml)
            finally:
                with contextlib.suppress(Exception):
                    session.close_session()
    except Exception as exc:
        raise translate_error(exc, host=host, operation=operation, profile=profile,
                         secret=password) from exc
    return NetconfReplies(caps, yang_library, interfaces, system)


def collect_netconf_facts(host: str, username: str, password: str, *, port: int = 830,
                          timeout_s: float = 10.0, profile: str | None = None) -> NetconfFacts:
    """Read a NETCONF server's capabilities, modules, interfaces and system facts.

    Raises :class:`~topology.errors.CollectionError` subclasses; a reply that is not
    usable XML is a :class:`~topology.errors.ProtocolError`.
    """
    replies = fetch_netconf_replies(host, username, password, port=port,
                                    timeout_s=timeout_s, profile=profile)
    try:
        return facts_from_replies(replies)
    except (ValueError, etree.XMLSyntaxError) as exc:
        raise ProtocolError(f"{host}: NETCONF reply not understood: {exc}", device=host,
                            operation="parse", profile=profile) from exc
