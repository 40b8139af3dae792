"""Alarm notifications: a live stream for subscribers (server-sent events) and webhooks.

Each notice is published as ``{"eventType": "AlarmCreateEvent" | "AlarmAttributeValueChangeEvent"
| "AlarmClearedEvent" | ..., "eventTime", "event": {"alarm": <TMF642 alarm>}}`` (the
TMF642 notification names). A subscriber too slow to keep up loses notices, counted in
``dropped``; a webhook that fails is retried twice and then counted in
``webhook_failures``. Nothing blocks the fault agent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from agents.fault.agent import Notice
from agents.fault.alarms import children_of, tmf_alarm
from agents.fault.model import Alarm
from topology.inventory import utcnow

__all__ = ["EVENT_TYPES", "Notifier", "NotifierStats"]

log = logging.getLogger(__name__)

EVENT_TYPES = {
    "raised": "AlarmCreateEvent",
    "cleared": "AlarmClearedEvent",
    "archived": "AlarmDeleteEvent",
}
"""Any other notice kind is an AlarmAttributeValueChangeEvent."""


@dataclass
class NotifierStats:
    """Notices published, lost by slow subscribers, and webhook outcomes."""

    published: int = 0
    dropped: int = 0
    webhook_sent: int = 0
    webhook_failures: int = 0


class Notifier:
    """Fan-out of alarm notices."""

    def __init__(self, engine: Engine, webhooks: Sequence[str] = (), *,
                 subscriber_queue: int = 1_000) -> None:
        self.engine = engine
        self.webhooks = tuple(webhooks)
        self.stats = NotifierStats()
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._subscriber_queue = subscriber_queue

    @property
    def has_listeners(self) -> bool:
        """Whether anyone takes notices (a stream subscriber or a webhook)."""
        return bool(self._subscribers or self.webhooks)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self._subscriber_queue)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    def render(self, notices: Sequence[Notice]) -> list[dict[str, Any]]:
        """The notification documents (reads the alarms; call it off the event loop)."""
        if not notices:
            return []
        now = utcnow().isoformat().replace("+00:00", "Z")
        out = []
        with Session(self.engine) as session:
            ids = [n.alarm_id for n in notices]
            kids = children_of(session, ids)
            for n in notices:
                alarm = session.get(Alarm, n.alarm_id)
                if alarm is None:
                    continue
                out.append({"eventId": f"{n.alarm_id}-{now}-{n.kind}",
                            "eventType": EVENT_TYPES.get(
                                n.kind, "AlarmAttributeValueChangeEvent"),
                            "eventTime": now, "x_change": n.kind,
                            "event": {"alarm": tmf_alarm(alarm, children=kids[n.alarm_id])}})
        return out

    async def publish(self, documents: list[dict[str, Any]],
                      executor: Executor | None = None) -> None:
        for doc in documents:
            self.stats.published += 1
            for queue in list(self._subscribers):
                try:
                    queue.put_nowait(doc)
                except asyncio.QueueFull:
                    self.stats.dropped += 1
        if self.webhooks and documents:
            loop = asyncio.get_running_loop()
            for url in self.webhooks:
                loop.run_in_executor(executor, self._post, url, documents)

    def _post(self, url: str, documents: list[dict[str, Any]]) -> None:
        body = json.dumps(documents, default=str).encode()
        request = urllib.request.Request(url, data=body, method="POST",  # noqa: S310
                                         headers={"Content-Type": "application/json"})
        for attempt in range(3):
            try:
                with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310
                    if 200 <= reply.status < 300:
                        self.stats.webhook_sent += 1
                        return
            except (urllib.error.URLError, OSError, ValueError) as exc:
                if attempt == 2:
                    log.warning("webhook %s failed: %s (counted in webhook_failures)",
                                url.split("?", 1)[0], exc)
        self.stats.webhook_failures += 1
