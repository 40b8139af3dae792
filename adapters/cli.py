r"""The SSH CLI config driver (netmiko): napalm's verbs for devices that only have a CLI,
no candidate datastore and no commit, such as FRR's vtysh.

    driver = CliDriver(target)                      # target.platform: "frr"
    driver.open()
    driver.load_merge_candidate("interface eth4\n description cust2\nexit\n")
    driver.compare_config()                         # predicted diff; the device is only read
    driver.commit_config(revert_in_s=60)            # saved, pushed, checked, verified
    driver.last_commit_diff                         # the real diff, running before -> after
    driver.confirm_commit()
    driver.close()

What differs per platform is data (``adapters/data/cli_platforms.yaml``, plus the login
and failure markers of ``collectors/data/cli_platforms.yaml``).

**Candidate lines.** Configuration text as ``show running-config`` prints it: a line
indented under another is sent inside that line's context. Checked when loaded, before
any connection, all problems listed: printable ASCII only (no control characters, no
tab, no ``?`` which vtysh's shell takes as its help key), at most ``max_line_length``
characters, no ``refused_commands`` (``end``, ``quit``, ``do``, ``write``, ...), and a
``block_end`` line (``exit``) only where it closes a block that has lines of its own,
at that block's indentation; nothing may be indented under a closed block. ``!`` and
``#`` lines are comments and are never sent. The driver itself moves between contexts
(``exit`` only below the top level, checked against the prompt each time), so no line of
the candidate can leave configuration mode.

**compare_config** is a prediction (FRR has no candidate datastore and the device is not
touched): the candidate is merged into the running config read now, line by line in
its context, the way FRR would keep it: a line already there changes nothing, a new one
is added at the end of its block (after the last sibling with the same first word), a
``single_valued`` line replaces the old value, ``no X`` removes the lines ``X`` names.
Its header says ``candidate (predicted)``. It is '' when the candidate is already in the
running config. The real diff is :attr:`CliDriver.last_commit_diff`, computed from the
running config read before and after the commit: that is the one to store.

**commit_config**: read the running config (the backup), enter configuration mode, send
the lines one at a time, reading each reply up to the prompt. A reply with a failure
marker, or a prompt showing that vtysh ran the line in another context than the one it
was written in (vtysh tries the parent contexts when a line is unknown in the current
one), stops the push at that line. Then verify: each pushed line is in the running
config in its context (each ``no X`` line: no ``X`` there any more). A line the device
accepted but shows differently (an abbreviation, a normalised value) fails this check:
write lines in the form ``show running-config`` prints them. On any failure the backup
is restored and :class:`ConfigRejected` carries the device's words.

**Restore** (rollback, revert timer, a refused commit, :meth:`CliDriver.restore`): FRR
8.4 has no ``configure replace``, and the SSH session gives only vtysh, so a saved file
cannot be loaded. The driver computes the difference as frr-reload.py does, on lines
in their contexts: it adds the lines the target has and the device lacks, reads again,
then removes the lines the device has and the target lacks (``no LINE``; when FRR
refuses that form, ``no`` with fewer words, as ``no description`` for ``description
x``; a block FRR will not delete whole, such as an existing interface, line by line),
and reads again, up to ``restore_rounds`` times until the running config equals the
target to the byte. If it still differs, :class:`RollbackFailed` says what is left, as a
unified diff. Lines of ``fixed_lines`` (``frr version``, ``hostname``) are never sent.

**Revert timer**: a thread of this process restores the backup when ``revert_in_s`` run
out unless :meth:`CliDriver.confirm_commit` came first. The device knows nothing of it:
if this process dies first, the change stays. :meth:`CliDriver.close` with a commit
still waiting restores at once (as a NETCONF server does when the session of an
unconfirmed commit closes).

**Not saved to startup**: the driver never sends ``write memory``. The lab's routers
start FRR from ``etc-frr/frr.conf``, so a node restart brings back that file's config
and drops what was pushed; and the lab's SSH user cannot write it anyway (vtysh's
``write memory`` ends in "Permission denied", measured on FRR 8.4).

netmiko's, paramiko's and socket errors become :class:`PushConnectionError` in one
place, :func:`_translate` (the password never appears in a message).
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import logging
import re
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, NoReturn

import yaml

from adapters.base import DriverTarget
from topology.errors import (
    CommitNotConfirmed,
    ConfigError,
    ConfigPushError,
    ConfigRejected,
    PushConnectionError,
    RollbackFailed,
    exception_chain,
)

__all__ = [
    "CliConfigPlatform",
    "CliDriver",
    "ConfigLine",
    "StatementPath",
    "config_changes",
    "config_platform",
    "find_config_failure",
    "inverse_forms",
    "merge_predicted",
    "normalise_running",
    "parse_candidate",
    "parse_running",
]

log = logging.getLogger(__name__)

DATA_FILE = Path(__file__).parent / "data" / "cli_platforms.yaml"
_NOT_TYPABLE = re.compile(r"[^\x20-\x7e]|\?")
_COMMENT = ("!", "#")


# -- platform data ----------------------------------------------------------------------

@dataclass(frozen=True)
class CliConfigPlatform:
    """What the driver knows of one platform (see ``adapters/data/cli_platforms.yaml``)."""

    name: str
    device_type: str
    show_running: str
    enter_config: str
    leave_config: str
    leave_context: str
    negate: str
    volatile_lines: tuple[re.Pattern[str], ...]
    fixed_lines: tuple[re.Pattern[str], ...]
    block_end: frozenset[str]
    refused_commands: frozenset[str]
    failed_when_line_starts_with: tuple[str, ...]
    failed_when_contains: tuple[str, ...]
    single_valued: tuple[tuple[str, ...], ...]
    restore_rounds: int
    max_line_length: int


@cache
def config_platform(name: str) -> CliConfigPlatform:
    """The platform's push data, joined with its login and failure markers from the
    collectors' file (``ConfigError`` when either file lacks the platform)."""
    from collectors.cli import cli_platforms

    data = yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))
    collector = cli_platforms().get(name)
    if not isinstance(data, dict) or name not in data or collector is None:
        known = sorted(data) if isinstance(data, dict) else []
        raise ConfigError(f"no CLI config data for platform {name!r} (known: {known})")
    raw = data[name]
    where = f"{DATA_FILE.name}: platform {name!r}"
    try:
        return CliConfigPlatform(
            name=name, device_type=collector.device_type,
            show_running=str(raw["show_running"]), enter_config=str(raw["enter_config"]),
            leave_config=str(raw["leave_config"]), leave_context=str(raw["leave_context"]),
            negate=str(raw["negate"]),
            volatile_lines=tuple(re.compile(str(p)) for p in raw.get("volatile_lines") or ()),
            fixed_lines=tuple(re.compile(str(p)) for p in raw.get("fixed_lines") or ()),
            block_end=frozenset(str(w) for w in raw["block_end"]),
            refused_commands=frozenset(str(w) for w in raw["refused_commands"]),
            failed_when_line_starts_with=tuple(
                str(m) for m in raw.get("config_failed_when_line_starts_with") or ()),
            failed_when_contains=tuple(collector.failed_when_contains) + tuple(
                str(m) for m in raw.get("config_failed_when_contains") or ()),
            single_valued=tuple(tuple(str(s).split()) for s in raw.get("single_valued") or ()),
            restore_rounds=int(raw.get("restore_rounds", 3)),
            max_line_length=int(raw.get("max_line_length", 400)))
    except (KeyError, TypeError, ValueError, re.error) as exc:
        raise ConfigError(f"{where}: malformed ({exc!r})") from exc


# -- configuration text (pure) --------------------------------------------------------

@dataclass
class ConfigLine:
    """One statement of a configuration, with the statements indented under it.

    ``items`` holds the children in order, and verbatim lines kept only to print the
    text back (``!`` separators, ``end``); ``closer`` is the block's ``exit`` line.
    """

    text: str
    indent: int
    items: list[ConfigLine | str] = field(default_factory=list)
    closer: str | None = None

    @property
    def children(self) -> list[ConfigLine]:
        return [i for i in self.items if isinstance(i, ConfigLine)]

    def render(self) -> list[str]:
        """The statement and its block as lines, as parsed (indentation included)."""
        out = [" " * self.indent + self.text] if self.indent >= 0 else []
        for item in self.items:
            out.extend(item.render() if isinstance(item, ConfigLine) else [item])
        if self.closer is not None:
            out.append(self.closer)
        return out


def normalise_running(text: str, platform: str = "frr") -> str:
    """``show running-config`` output without its volatile lines and trailing blanks,
    ending in one newline: two reads of an unchanged device give the same text."""
    spec = config_platform(platform)
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").split("\n")]
    kept = [ln for ln in lines if not any(p.search(ln) for p in spec.volatile_lines)]
    while kept and not kept[0]:
        kept.pop(0)
    while kept and not kept[-1]:
        kept.pop()
    return "\n".join(kept) + "\n" if kept else ""


def _indent(raw: str) -> int:
    return len(raw) - len(raw.lstrip(" "))


def parse_running(text: str, platform: str = "frr") -> ConfigLine:
    r"""A running config as a tree under a root (``indent`` -1); tolerant: what it cannot
    place is kept verbatim, so ``"\n".join(root.render())`` gives the text back."""
    spec = config_platform(platform)
    root = ConfigLine("", -1)
    stack = [root]
    for raw in text.rstrip("\n").split("\n") if text.strip() else []:
        stripped, indent = raw.strip(), _indent(raw)
        if not stripped or stripped.startswith(_COMMENT) or (stripped == "end" and indent == 0):
            while len(stack) > 1 and stack[-1].indent > indent:
                stack.pop()
            stack[-1].items.append(raw)
            continue
        if stripped in spec.block_end:
            while len(stack) > 1 and stack[-1].indent > indent:
                stack.pop()
            if len(stack) > 1 and stack[-1].indent == indent and stack[-1].closer is None:
                stack.pop().closer = raw
            else:
                stack[-1].items.append(raw)
            continue
        while stack[-1].indent >= indent:
            stack.pop()
        node = ConfigLine(stripped, indent)
        stack[-1].items.append(node)
        stack.append(node)
    return root


def _check_line(text: str, spec: CliConfigPlatform) -> str | None:
    """Why ``text`` (one stripped statement) may not be typed into the CLI, or ``None``."""
    bad = _NOT_TYPABLE.search(text)
    if bad:
        what = "'?' (vtysh's help key)" if bad.group() == "?" else f"{bad.group()!r}"
        return f"contains {what}: only printable ASCII can be sent"
    if len(text) > spec.max_line_length:
        return f"longer than {spec.max_line_length} characters"
    words = text.split()
    if words and words[0].lower() in spec.refused_commands:
        return f"{words[0]!r} is refused in a candidate (it leaves configuration mode, " \
               "runs an exec command or changes the prompt)"
    return None


def parse_candidate(config: str, platform: str = "frr") -> list[ConfigLine]:
    """The candidate's statements as trees; ``ValueError`` listing every refused line
    (see the module docstring for the rules)."""
    spec = config_platform(platform)
    problems: list[str] = []
    root = ConfigLine("", -1)
    stack = [root]
    for number, raw in enumerate(config.split("\n"), start=1):
        raw = raw.removesuffix("\r")  # CRLF text; any other control character is refused
        bad = _NOT_TYPABLE.search(raw.replace("?", ""))
        if bad:
            problems.append(f"line {number}: contains {bad.group()!r}: only printable "
                            "ASCII can be sent")
            continue
        stripped, indent = raw.strip(), _indent(raw)
        if not stripped or stripped.startswith(_COMMENT):
            continue
        if stripped in spec.block_end:
            while len(stack) > 1 and stack[-1].indent > indent:
                stack.pop()
            top = stack[-1]
            if len(stack) > 1 and top.indent == indent and top.children:
                top.closer = " " * indent + stripped
                stack.pop()
            else:
                problems.append(f"line {number}: {stripped!r} closes no block here (it "
                                "may only end a block with lines of its own, at its "
                                "indentation)")
            continue
        reason = _check_line(stripped, spec)
        if reason:
            problems.append(f"line {number}: {reason}")
            continue
        while stack[-1].indent >= indent:
            stack.pop()
        if indent > 0 and len(stack) == 1:
            problems.append(f"line {number}: indented but under no open block")
            continue
        node = ConfigLine(stripped, indent)
        stack[-1].items.append(node)
        stack.append(node)
    if problems:
        raise ValueError("; ".join(problems))
    return root.children


def _paths(node: ConfigLine, spec: CliConfigPlatform,
           prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every statement as its path of context lines, in order (fixed lines left out)."""
    out: list[tuple[str, ...]] = []
    for child in node.children:
        if not prefix and any(p.search(child.text) for p in spec.fixed_lines):
            continue
        path = (*prefix, child.text)
        out.append(path)
        out.extend(_paths(child, spec, path))
    return out


def _find(node: ConfigLine, path: Sequence[str]) -> ConfigLine | None:
    for text in path:
        found = next((c for c in node.children if c.text == text), None)
        if found is None:
            return None
        node = found
    return node


def _negated(text: str, spec: CliConfigPlatform) -> str | None:
    return text[len(spec.negate):].strip() if text.startswith(spec.negate) else None


def _names(line: str, words: Sequence[str]) -> bool:
    """Whether ``line``'s words start with ``words``."""
    have = line.split()
    return have[:len(words)] == list(words)


def _merge_into(block: ConfigLine, lines: Sequence[ConfigLine], spec: CliConfigPlatform) -> None:
    for line in lines:
        undo = _negated(line.text, spec)
        if undo is not None and not line.children:
            words = undo.split()
            block.items = [i for i in block.items
                           if not (isinstance(i, ConfigLine) and _names(i.text, words))]
            continue
        same = next((c for c in block.children if c.text == line.text), None)
        if same is not None:
            _merge_into(same, line.children, spec)
            continue
        words = line.text.split()
        single = next((s for s in spec.single_valued if _names(line.text, s)), None)
        old = next((c for c in block.children if single and _names(c.text, single)), None)
        new = ConfigLine(line.text, block.indent + 1)
        _merge_into(new, line.children, spec)
        if new.children and new.indent == 0:
            new.closer = "exit"
        elif new.children:
            new.closer = " " * new.indent + "exit"
        if old is not None:
            block.items[block.items.index(old)] = new
            continue
        # FRR sorts like statements (interfaces by name): among the siblings with the
        # same first word, before the first that sorts after it, else after the last
        kin = [(n, i) for n, i in enumerate(block.items)
               if isinstance(i, ConfigLine) and i.text.split()[:1] == words[:1]]
        later = [n for n, i in kin if i.text > line.text]
        separate = new.indent == 0 and bool(new.children)
        if later:
            block.items[later[0]:later[0]] = [new, "!"] if separate else [new]
            continue
        if kin:
            at = kin[-1][0] + 1
        else:  # before the block's trailing separators and `end`
            at = len(block.items)
            while at > 0 and isinstance(block.items[at - 1], str):
                at -= 1
        block.items[at:at] = ["!", new] if separate else [new]


def merge_predicted(running: str, candidate: Sequence[ConfigLine],
                    platform: str = "frr") -> str:
    """The running config as FRR would show it once ``candidate`` is merged (a
    prediction: see the module docstring)."""
    spec = config_platform(platform)
    root = parse_running(running, platform)
    _merge_into(root, candidate, spec)
    lines = root.render()
    return "\n".join(lines) + "\n" if lines else ""


def find_config_failure(reply: str, platform: str = "frr") -> str | None:
    """The reply line (or marker) that says a configuration line was refused, or ``None``.

    ``reply`` is what the device printed after the echoed line, without the prompt.
    """
    spec = config_platform(platform)
    for line in reply.splitlines():
        if line.strip().startswith(spec.failed_when_line_starts_with):
            return line.strip()
    for marker in spec.failed_when_contains:
        if marker in reply:
            return marker
    return None


def _verify(after: ConfigLine, candidate: Sequence[ConfigLine], spec: CliConfigPlatform,
            prefix: tuple[str, ...] = ()) -> list[str]:
    """The candidate's lines the running config does not show as pushed."""
    missing: list[str] = []
    for line in candidate:
        path = (*prefix, line.text)
        undo = _negated(line.text, spec)
        if undo is not None and not line.children:
            block = _find(after, prefix)
            if block is not None and any(_names(c.text, undo.split()) for c in block.children):
                missing.append(f"{' > '.join(path)} (still present)")
            continue
        if _find(after, path) is None:
            if _only_removals(line, spec):
                continue  # emptied by its `no` lines: FRR drops the block (FRR 8.4)
            missing.append(" > ".join(path))
            continue
        missing.extend(_verify(after, line.children, spec, path))
    return missing


def _only_removals(line: ConfigLine, spec: CliConfigPlatform) -> bool:
    """Whether a block's lines only remove (``no X``, in nested blocks too)."""
    return bool(line.children) and all(
        _only_removals(c, spec) if c.children else _negated(c.text, spec) is not None
        for c in line.children)


def inverse_forms(text: str, platform: str = "frr") -> list[str]:
    """The lines that may undo the statement ``text``, most precise first: ``no X`` is
    undone by ``X``; ``X Y Z`` by ``no X Y Z``, then ``no X Y``, ``no X`` (FRR takes
    ``no description`` and refuses ``no description TEXT``)."""
    spec = config_platform(platform)
    undo = _negated(text, spec)
    if undo is not None:
        return [undo]
    words = text.split()
    return [spec.negate + " ".join(words[:n]) for n in range(len(words), 0, -1)]


StatementPath = tuple[str, ...]
"""A statement with its contexts: ``("interface eth4", "ip address 100.64.12.1/24")``."""


def config_changes(current: str, target: str,
                   platform: str = "frr") -> tuple[list[StatementPath], list[StatementPath]]:
    """What a restore from ``current`` to ``target`` must do, as statement paths:
    those to add (in ``target``'s order), and those to remove (only the topmost of a
    removed block, in ``current``'s order). ``fixed_lines`` are left out."""
    spec = config_platform(platform)
    want = _paths(parse_running(target, platform), spec)
    have = _paths(parse_running(current, platform), spec)
    want_set, have_set = set(want), set(have)
    extra = [p for p in have if p not in want_set]
    extra_set = set(extra)
    top = [p for p in extra if not any(p[:n] in extra_set for n in range(1, len(p)))]
    return [p for p in want if p not in have_set], top


# -- errors ---------------------------------------------------------------------------



def _translate(exc: BaseException, *, device: str, host: str, operation: str,
               secret: str) -> PushConnectionError:
    """The one place netmiko's, paramiko's and socket errors become the suite's."""
    from netmiko.exceptions import (
        NetmikoAuthenticationException,
        NetmikoTimeoutException,
        ReadTimeout,
    )
    from paramiko.ssh_exception import AuthenticationException

    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if secret:
        detail = detail.replace(secret, "***")
    chain = exception_chain(exc)
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        why = "SSH port closed"
    elif any(isinstance(e, NetmikoAuthenticationException | AuthenticationException)
             for e in chain):
        why = "SSH login refused"
    elif any(isinstance(e, TimeoutError | NetmikoTimeoutException | ReadTimeout)
             for e in chain):
        why = f"no answer in time: {detail}"
    elif any(isinstance(e, OSError) and e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH)
             for e in chain):
        why = f"unreachable: {detail}"
    else:
        why = f"session failed: {detail}"
    return PushConnectionError(f"{device} ({host}): {why} ({operation})",
                               device=device, operation=operation)


class _Refused(Exception):
    """A line the device refused, or ran in another context (internal)."""

    def __init__(self, line: str, exchange: str, why: str) -> None:
        super().__init__(why)
        self.line = line
        self.exchange = exchange
        self.why = why


class _OutOfStep(Exception):
    """The prompt is not where the driver put the session (internal)."""


# -- the session ----------------------------------------------------------------------

@dataclass(frozen=True)
class _Reply:
    exchange: str        # echo, reply, prompt: the device's words
    reply: str           # what the device printed between the echo and the prompt
    mode: str | None     # the prompt's mode ("config-if"); None at the exec prompt


@dataclass
class _Context:
    line: str
    mode: str


class _Vtysh:
    """One netmiko session: configuration lines sent one at a time, each reply read up
    to the prompt, the current context tracked from the prompt."""

    def __init__(self, conn: Any, spec: CliConfigPlatform, timeout_s: float) -> None:
        self.conn = conn
        self.spec = spec
        self.timeout_s = timeout_s
        base = re.escape(str(conn.base_prompt))
        # netmiko keeps what a capturing group matched, so the pattern it reads up to
        # has none; the second one reads the mode out of the prompt line
        self.until_prompt = rf"^{base}(?:\([^)\s]+\))?#[ \t]*$"
        self.prompt = re.compile(rf"^{base}(?:\((?P<mode>[^)\s]+)\))?#[ \t]*$")
        self.mode: str | None = None
        self.stack: list[_Context] = []

    def read_running(self) -> str:
        out = self.conn.send_command(self.spec.show_running, read_timeout=self.timeout_s)
        return normalise_running(str(out), self.spec.name)

    def send(self, line: str) -> _Reply:
        self.conn.write_channel(line + "\n")
        out = str(self.conn.read_until_pattern(pattern=self.until_prompt, re_flags=re.M,
                                               read_timeout=self.timeout_s))
        lines = out.replace("\r", "").split("\n")
        prompt = self.prompt.match(lines[-1].strip()) if lines else None
        if prompt is None:
            raise _OutOfStep(f"no prompt after {line!r}: {out[-200:]!r}")
        body = lines[:-1]
        if body and body[0].strip().endswith(line.strip()):
            body = body[1:]
        self.mode = prompt.group("mode")
        log.debug("vtysh: %r", out)
        return _Reply(out.replace("\r", "").strip(), "\n".join(body).strip(), self.mode)

    @contextlib.contextmanager
    def configuring(self) -> Iterator[None]:
        """Configuration mode for the block; back at the exec prompt after it."""
        reply = self.send(self.spec.enter_config)
        if reply.mode != "config":
            raise _OutOfStep(f"{self.spec.enter_config!r} gave {reply.exchange!r}")
        self.stack = []
        try:
            yield
        finally:
            self.stack = []
            if self.mode is not None:
                self.send(self.spec.leave_config)

    def resync(self) -> None:
        """Back to the top configuration level from wherever the session is."""
        if self.mode is not None:
            self.send(self.spec.leave_config)
        reply = self.send(self.spec.enter_config)
        if reply.mode != "config":
            raise _OutOfStep(f"{self.spec.enter_config!r} gave {reply.exchange!r}")
        self.stack = []

    def goto(self, context: Sequence[str]) -> None:
        """Into ``context`` (its header lines from the top), leaving what is not shared
        with the current one; ``_Refused`` when a header is refused or opens nothing."""
        common = 0
        while (common < len(self.stack) and common < len(context)
               and self.stack[common].line == context[common]):
            common += 1
        while len(self.stack) > common:
            if self.mode == "config":
                raise _OutOfStep("at the top level with contexts still open")
            self.stack.pop()
            expected = self.stack[-1].mode if self.stack else "config"
            reply = self.send(self.spec.leave_context)
            if reply.mode != expected:
                raise _OutOfStep(f"{self.spec.leave_context!r} gave {reply.exchange!r}")
        for line in context[common:]:
            before = self.mode
            reply = self.send(line)
            marker = find_config_failure(reply.reply, self.spec.name)
            if marker is not None:
                raise _Refused(line, reply.exchange, marker)
            if reply.mode in (None, "config", before):
                raise _Refused(line, reply.exchange,
                               f"{line!r} opened no context (the prompt shows "
                               f"{reply.mode or 'the exec level'})")
            self.stack.append(_Context(line, str(reply.mode)))

    def leaf(self, line: str) -> _Reply:
        """Send a line inside the current context; ``_Refused`` when refused or when vtysh
        ran it in another context."""
        before = self.mode
        reply = self.send(line)
        marker = find_config_failure(reply.reply, self.spec.name)
        if marker is not None:
            raise _Refused(line, reply.exchange, marker)
        if reply.mode != before:
            if reply.mode is None:
                raise _OutOfStep(f"{line!r} left configuration mode")
            if self.stack:
                raise _Refused(line, reply.exchange,
                               f"{line!r} is not a command of {self.stack[-1].line!r}: "
                               f"vtysh ran it elsewhere (prompt {reply.mode})")
            self.stack.append(_Context(line, reply.mode))  # an empty block opened
        return reply


# -- the driver -----------------------------------------------------------------------

class CliDriver:
    """napalm's verbs over an SSH CLI session (see the module docstring)."""

    kind: ClassVar[str] = "cli"

    def __init__(self, target: DriverTarget) -> None:
        self.target = target
        try:
            self.spec = config_platform(target.platform)
        except ConfigError as exc:
            raise ConfigPushError(f"{target.device}: {exc}", device=target.device,
                                  operation="choose platform") from None
        self._session: _Vtysh | None = None
        self._candidate: list[ConfigLine] = []
        self._backup: str | None = None
        self._last_diff = ""
        self._lock = threading.RLock()
        self._pending: object | None = None
        self._timer: threading.Timer | None = None
        self._fired: object | None = None
        self._revert_error: ConfigPushError | None = None

    # -- helpers ------------------------------------------------------------------------

    def _error(self, exc: BaseException, operation: str) -> PushConnectionError:
        return _translate(exc, device=self.target.device, host=self.target.host,
                          operation=operation,
                          secret=self.target.password.get_secret_value())

    def _connect(self) -> _Vtysh:
        from netmiko import ConnectHandler

        t = self.target
        operation = "connect"
        sock: socket.socket | None = None
        try:
            # a TCP connection of our own, so a closed port and a silent one stay distinct
            sock = socket.create_connection((t.host, t.port), timeout=t.timeout_s)
            operation = "login"
            conn = ConnectHandler(
                device_type=self.spec.device_type, host=t.host, port=t.port,
                username=t.username, password=t.password.get_secret_value(), sock=sock,
                conn_timeout=t.timeout_s, auth_timeout=t.timeout_s,
                banner_timeout=t.timeout_s, timeout=t.timeout_s, use_keys=False,
                allow_agent=False)
        except Exception as exc:
            if sock is not None:
                sock.close()
            raise self._error(exc, operation) from exc
        return _Vtysh(conn, self.spec, t.timeout_s)

    def _live(self) -> _Vtysh:
        if self._session is None:
            raise ConfigPushError(f"{self.target.device}: the driver is not open",
                                  device=self.target.device, operation="session")
        return self._session

    def _read(self, operation: str) -> str:
        session = self._live()
        try:
            return session.read_running()
        except Exception as exc:
            raise self._error(exc, operation) from exc

    def _diff(self, before: str, after: str, before_label: str, after_label: str) -> str:
        lines = difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True),
            fromfile=f"{self.target.device} {before_label}",
            tofile=f"{self.target.device} {after_label}")
        return "".join(lines)

    # -- the contract -------------------------------------------------------------------

    def open(self) -> None:
        """Log in (``PushConnectionError`` when that fails)."""
        with self._lock:
            if self._session is None:
                self._session = self._connect()

    def close(self) -> None:
        """Drop the candidate; a commit still waiting for confirmation is restored now
        (its revert timer cancelled); disconnect. Never raises."""
        with self._lock:
            self._candidate = []
            if self._pending is not None and self._session is not None:
                self._cancel_timer()
                try:
                    self._restore_checked(self._backup or "", "revert on close")
                    log.warning("%s: closed with a commit unconfirmed: restored the config "
                                "saved before it", self.target.device)
                except ConfigPushError as exc:
                    log.error("%s: closed with a commit unconfirmed and restoring failed: %s",
                              self.target.device, exc)
            self._cancel_timer()
            session, self._session = self._session, None
            if session is not None:
                with contextlib.suppress(Exception):
                    session.conn.disconnect()

    def get_config(self) -> str:
        """``show running-config`` without its volatile lines (see
        :func:`normalise_running`): equal to the byte while the device is unchanged."""
        with self._lock:
            return self._read("get config")

    def load_merge_candidate(self, config: str) -> None:
        """Check and keep the lines (added to what is already staged); nothing is sent.
        ``ConfigPushError`` listing every refused line."""
        try:
            lines = parse_candidate(config, self.spec.name)
        except ValueError as exc:
            raise ConfigPushError(f"{self.target.device}: candidate refused: {exc}",
                                  device=self.target.device,
                                  operation="load candidate") from None
        with self._lock:
            self._candidate.extend(lines)

    def compare_config(self) -> str:
        """The predicted diff (see the module docstring); '' when nothing would change."""
        with self._lock:
            if not self._candidate:
                return ""
            running = self._read("compare config")
            return self._diff(running, merge_predicted(running, self._candidate, self.spec.name),
                              "running", "candidate (predicted)")

    def discard_config(self) -> None:
        """Drop the staged lines; the device is untouched."""
        with self._lock:
            self._candidate = []

    @property
    def last_commit_diff(self) -> str:
        """The real diff of the last commit: the running config read before and after."""
        return self._last_diff

    def commit_config(self, revert_in_s: int | None = None) -> None:
        """Save, push line by line, check each reply, verify, and on any failure restore
        the saved config before raising (see the module docstring)."""
        if revert_in_s is not None and revert_in_s < 1:
            raise ConfigPushError(f"{self.target.device}: revert_in_s must be at least 1, "
                                  f"not {revert_in_s}", device=self.target.device,
                                  operation="commit")
        with self._lock:
            if self._pending is not None:
                raise ConfigPushError(f"{self.target.device}: a commit waits for its "
                                      "confirmation; confirm or roll it back first",
                                      device=self.target.device, operation="commit")
            session = self._live()
            backup = self._read("save running config")
            lines = list(self._candidate)
            try:
                with session.configuring():
                    self._push(session, lines, ())
                after = session.read_running()
                missing = _verify(parse_running(after, self.spec.name), lines, self.spec)
                if missing:
                    raise _Refused(missing[0], "",
                                   "accepted but not in the running config as written: "
                                   + "; ".join(missing))
            except _Refused as refused:
                self._restore_checked(backup, "restore after a refused line",
                                      cause=f"{refused.line!r}: {refused.why}")
                raise ConfigRejected(
                    f"{self.target.device}: {refused.line!r} failed ({refused.why}); the "
                    "saved config is restored",
                    device=self.target.device, operation="commit",
                    output=refused.exchange or refused.why) from None
            except Exception as exc:
                self._recover(backup, exc)
            self._candidate = []
            self._backup = backup
            self._last_diff = self._diff(backup, after, "running before the commit",
                                         "running after the commit")
            self._fired = None
            self._revert_error = None
            if revert_in_s is not None:
                self._arm(revert_in_s)

    def _push(self, session: _Vtysh, lines: Sequence[ConfigLine],
              context: tuple[str, ...]) -> None:
        for line in lines:
            if line.children:
                session.goto((*context, line.text))
                self._push(session, line.children, (*context, line.text))
            else:
                session.goto(context)
                session.leaf(line.text)

    def _recover(self, backup: str, exc: BaseException) -> NoReturn:
        """The session broke or lost track mid-push: log in again, restore the backup,
        raise ``PushConnectionError`` (``RollbackFailed`` when the restore fails)."""
        if isinstance(exc, RollbackFailed):
            raise exc
        if isinstance(exc, _OutOfStep):
            cause = f"lost track of the CLI: {exc}"
        elif isinstance(exc, ConfigPushError):
            cause = str(exc)
        else:
            cause = str(self._error(exc, "commit"))
        if self._session is not None:
            with contextlib.suppress(Exception):
                self._session.conn.disconnect()
        self._session = None
        try:
            self._session = self._connect()
            self._restore_checked(backup, "restore after a broken commit", cause=cause)
        except RollbackFailed:
            raise
        except ConfigPushError as err:
            raise RollbackFailed(f"{self.target.device}: the commit broke ({cause}) and the "
                                 f"saved config could not be restored ({err}): check the "
                                 "device", device=self.target.device,
                                 operation="commit") from exc
        raise PushConnectionError(f"{self.target.device}: the commit broke ({cause}); the "
                                  "saved config is restored", device=self.target.device,
                                  operation="commit") from exc

    # -- revert timer -------------------------------------------------------------------

    def _arm(self, revert_in_s: int) -> None:
        token = object()
        self._pending = token
        self._timer = threading.Timer(revert_in_s, self._revert, args=(token,))
        self._timer.daemon = True
        self._timer.name = f"revert {self.target.device}"
        self._timer.start()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._pending = None

    def _revert(self, token: object) -> None:
        with self._lock:
            if self._pending is not token:
                return  # confirmed or rolled back meanwhile
            self._timer = None
            self._pending = None
            self._fired = token
            try:
                try:
                    self._restore_checked(self._backup or "", "revert timer")
                except RollbackFailed:
                    # the session may be gone (cut, timed out): log in again, retry once
                    self._reconnect()
                    self._restore_checked(self._backup or "", "revert timer, new session")
                log.warning("%s: commit not confirmed in time: restored the saved config",
                            self.target.device)
            except ConfigPushError as exc:
                self._revert_error = exc
                log.error("%s: commit not confirmed and the revert failed: %s",
                          self.target.device, exc)

    def _reconnect(self) -> None:
        if self._session is not None:
            with contextlib.suppress(Exception):
                self._session.conn.disconnect()
        self._session = None
        self._session = self._connect()

    def has_pending_commit(self) -> bool:
        """Whether a commit waits for its confirmation (its timer still running)."""
        with self._lock:
            return self._pending is not None

    def confirm_commit(self) -> None:
        """Keep the last commit: cancel its revert timer. ``CommitNotConfirmed`` when the
        timer already restored the saved config (``RollbackFailed`` if that failed)."""
        with self._lock:
            if self._fired is not None:
                if self._revert_error is not None:
                    raise self._revert_error
                raise CommitNotConfirmed(f"{self.target.device}: too late, the revert timer "
                                         "already restored the saved config",
                                         device=self.target.device, operation="confirm")
            if self._pending is None:
                raise ConfigPushError(f"{self.target.device}: no commit waits for its "
                                      "confirmation", device=self.target.device,
                                      operation="confirm")
            self._cancel_timer()

    # -- going back ---------------------------------------------------------------------

    def rollback(self) -> None:
        """Restore the config saved before the last commit (its timer cancelled)."""
        with self._lock:
            if self._backup is None:
                raise ConfigPushError(f"{self.target.device}: nothing was committed in this "
                                      "session", device=self.target.device,
                                      operation="rollback")
            self._cancel_timer()
            self._restore_checked(self._backup, "rollback")

    def restore(self, config: str) -> None:
        """Make the running config equal to ``config`` (a :meth:`get_config` text), to
        the byte; ``RollbackFailed`` with the remaining diff when it cannot."""
        with self._lock:
            self._restore_checked(normalise_running(config, self.spec.name), "restore")

    def _restore_checked(self, target: str, operation: str, cause: str = "") -> None:
        try:
            left = self._restore(target)
        except _OutOfStep as exc:
            raise RollbackFailed(f"{self.target.device}: {operation} lost track of the CLI "
                                 f"({exc}); check the device", device=self.target.device,
                                 operation=operation) from None
        except ConfigPushError:
            raise
        except Exception as exc:
            err = self._error(exc, operation)
            raise RollbackFailed(f"{self.target.device}: {operation} failed: {err}",
                                 device=self.target.device, operation=operation) from exc
        if left:
            why = f" (after {cause})" if cause else ""
            raise RollbackFailed(f"{self.target.device}: {operation}{why} left the running "
                                 f"config different from the saved one:\n{left}",
                                 device=self.target.device, operation=operation)

    def _restore(self, target: str) -> str:
        """Bring the running config to ``target``; the diff left ('' when equal)."""
        session = self._live()
        spec = self.spec
        wanted = parse_running(target, spec.name)
        current = session.read_running()
        for _ in range(spec.restore_rounds):
            if current == target:
                return ""
            missing, _extra = config_changes(current, target, spec.name)
            if missing:
                with session.configuring():
                    for path in missing:
                        self._restore_add(session, wanted, path)
                current = session.read_running()
            _missing, extra = config_changes(current, target, spec.name)
            if extra:
                tree = parse_running(current, spec.name)
                with session.configuring():
                    for path in reversed(extra):
                        self._restore_remove(session, tree, path)
                current = session.read_running()
        if current == target:
            return ""
        return self._diff(target, current, "saved config", "running now")

    def _restore_add(self, session: _Vtysh, wanted: ConfigLine, path: StatementPath) -> None:
        if any(_check_line(text, self.spec) for text in path):
            return  # cannot be typed: stays in the remaining diff
        node = _find(wanted, path)
        try:
            if node is not None and node.children:
                session.goto(path)
            else:
                session.goto(path[:-1])
                session.leaf(path[-1])
        except _Refused as refused:
            log.info("%s: restore: %s", self.target.device, refused.exchange)
            session.resync()

    def _restore_remove(self, session: _Vtysh, tree: ConfigLine, path: StatementPath) -> None:
        if any(_check_line(text, self.spec) for text in path[:-1]):
            return
        try:
            session.goto(path[:-1])
        except _Refused:
            session.resync()
            return
        for form in inverse_forms(path[-1], self.spec.name):
            try:
                session.leaf(form)
                return
            except _Refused:
                expected = session.stack[-1].mode if session.stack else "config"
                if session.mode != expected or len(session.stack) != len(path) - 1:
                    session.resync()
                    try:
                        session.goto(path[:-1])
                    except _Refused:
                        session.resync()
                        return
        node = _find(tree, path)
        for child in reversed(node.children if node is not None else []):
            self._restore_remove(session, tree, (*path, child.text))
