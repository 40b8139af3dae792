"""The fault service: the trap receiver, the fault agent and the notifier, run together.

The receiver decodes on the event loop and queues traps; one worker thread runs the
agent on batches (up to ``batch_max`` traps taken at once, so a burst costs one
transaction, not one per trap; under a stream a batch gathers for ``linger_s`` first),
takes the performance agent's events, runs the timers and writes the counters every
``perf_events_every_s``. ``switchboard traps listen`` and ``switchboard serve`` both run
this, so alarms are stored the same way under either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine

from agents.fault.agent import FaultAgent, Notice
from agents.fault.model import init_fault_db
from agents.fault.notify import Notifier
from agents.fault.rules import FaultRules, load_fault_rules
from agents.fault.settings import FaultSettings
from collectors.traps import Trap, TrapReceiver, V3TrapDecoder
from topology.credentials import CredentialStore
from topology.settings import Settings

__all__ = ["FaultService", "communities_from_profiles", "v3_decoder_from_profiles"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def communities_from_profiles(settings: Settings | None = None) -> dict[bytes, str]:
    """Every v1/v2c community of the credential profiles -> the profile's name."""
    store = CredentialStore(settings)
    out: dict[bytes, str] = {}
    for name in store.names():
        try:
            profile = store.load(name)
        except Exception:
            log.warning("credential profile %s could not be read; its community is not "
                        "accepted for traps", name)
            continue
        if profile.snmp_community is not None:
            out.setdefault(profile.snmp_community.get_secret_value().encode(), name)
    return out


def v3_decoder_from_profiles(settings: Settings | None = None) -> V3TrapDecoder | None:
    """A USM decoder for every SNMPv3 user of the credential profiles (None: no users, and
    v3 traps are counted as unsupported)."""
    from collectors.traps_v3 import UsmTrapDecoder, users_from_profiles

    users = users_from_profiles(settings)
    return UsmTrapDecoder(users) if users else None


class FaultService:
    """Receive, process, notify. ``await start()``, then ``await stop()``."""

    def __init__(self, engine: Engine, *, settings: FaultSettings | None = None,
                 rules: FaultRules | None = None, host: str | None = None,
                 port: int | None = None, communities: Mapping[bytes, str] | None = None,
                 app_settings: Settings | None = None, v3: V3TrapDecoder | None = None,
                 on_documents: Callable[[list[dict[str, Any]]], None] | None = None,
                 consume_perf_events: bool = True) -> None:
        self.settings = settings or FaultSettings()
        self.engine = engine
        init_fault_db(engine)
        self.rules = rules or load_fault_rules(self.settings.rules_file)
        self.agent = FaultAgent(engine, self.rules, self.settings)
        self._app_settings = app_settings
        self._fixed_communities = communities
        if v3 is None and communities is None:
            v3 = v3_decoder_from_profiles(app_settings)
        self.receiver = TrapReceiver(
            host=host if host is not None else self.settings.listen_host,
            port=port if port is not None else self.settings.listen_port,
            communities=communities if communities is not None
            else communities_from_profiles(app_settings),
            queue_size=self.settings.queue_size, v3=v3)
        self.notifier = Notifier(engine, self.settings.webhooks)
        self.on_documents = on_documents
        self.consume_perf = consume_perf_events
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fault-agent")
        self._hooks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fault-webhook")
        self._tasks: list[asyncio.Task[None]] = []
        self.errors = 0

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def start(self) -> None:
        await self.receiver.start()
        self._tasks = [asyncio.create_task(self._process(), name="fault-process"),
                       asyncio.create_task(self._periodic(), name="fault-periodic")]

    async def stop(self) -> None:
        """Stop receiving, finish what is queued, write the counters."""
        await self.receiver.stop()
        for _ in range(200):  # what was received is processed, not lost
            if self.receiver.queue.empty():
                break
            await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._run(self._save_counters)
        self._executor.shutdown(wait=True)
        self._hooks.shutdown(wait=False)

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait until every queued trap has been processed (tests, shutdown)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if self.receiver.queue.empty() and self._idle:
                return
            await asyncio.sleep(0.02)

    _idle = True

    linger_s = 0.05
    """Under a stream of traps, how long a batch gathers before it is processed: every
    batch costs a transaction and a commit, so a storm is cheaper in fewer, larger ones
    (a lone trap is processed at once)."""

    async def _process(self) -> None:
        queue = self.receiver.queue
        loop = asyncio.get_running_loop()
        last = -1.0
        while True:
            first = await queue.get()
            self._idle = False
            if loop.time() - last < 1.0 and queue.qsize() < self.settings.batch_max:
                await asyncio.sleep(self.linger_s)
            last = loop.time()
            batch: list[Trap] = [first]
            while len(batch) < self.settings.batch_max:
                try:
                    batch.append(queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            try:
                notices = await self._run(self.agent.handle_traps, batch)
                await self._notify(notices)
            except Exception:
                self.errors += 1
                log.exception("fault agent failed on a batch of %d traps", len(batch))
            finally:
                self._idle = queue.empty()

    async def _periodic(self) -> None:
        every = self.settings.perf_events_every_s
        rounds = 0
        while True:
            await asyncio.sleep(every)
            rounds += 1
            try:
                notices: list[Notice] = []
                if self.consume_perf:
                    notices += await self._run(self.agent.consume_perf_events)
                notices += await self._run(self.agent.tick)
                await self._notify(notices)
                await self._run(self._save_counters)
                if self._fixed_communities is None and rounds % max(1, int(30 / every)) == 0:
                    self.receiver.set_communities(
                        await self._run(communities_from_profiles, self._app_settings))
            except Exception:
                self.errors += 1
                log.exception("fault agent periodic work failed")

    def _failed(self, what: str) -> None:
        """Count a failure; the traceback once a minute at most (a broken database must
        not fill the disk with the same traceback every 2 s)."""
        self.errors += 1
        now = time.monotonic()
        if now - self._last_traceback >= 60.0:
            self._last_traceback = now
            log.exception("fault agent failed on %s (%d failures so far; counted as "
                          "service_errors)", what, self.errors)

    _last_traceback = -60.0

    async def run_once(self) -> list[Notice]:
        """The periodic work now (perf events, timers), for tests and the CLI."""
        notices = await self._run(self.agent.consume_perf_events)
        notices += await self._run(self.agent.tick)
        await self._notify(notices)
        return notices

    async def _notify(self, notices: Sequence[Notice]) -> None:
        if not notices or not (self.notifier.has_listeners or self.on_documents):
            return  # rendering for nobody was 15 % of the agent's CPU in a trap storm
        documents = await self._run(self.notifier.render, list(notices))
        await self.notifier.publish(documents, self._hooks)
        if self.on_documents is not None:
            self.on_documents(documents)

    def counters(self) -> dict[str, float]:
        out: dict[str, float] = {f"receiver_{k}": float(v)
                                 for k, v in self.receiver.stats.as_dict().items()}
        drops = self.receiver.kernel_drops()
        if drops is not None:
            out["receiver_kernel_drops"] = float(drops)
        out["receiver_queue_depth"] = float(self.receiver.queue.qsize())
        out.update({f"notifier_{k}": float(v) for k, v in vars(self.notifier.stats).items()})
        out["service_errors"] = float(self.errors)
        return out

    def _save_counters(self) -> None:
        self.agent.save_counters(self.counters())
