"""Append-only audit of every order action and risk decision: who, what, when, result.

Records are kept in memory for the session (bounded) and, when a sink is attached
(the ArcticDB store's ``append_audit``), written there in order by one background task,
so recording never blocks the caller or the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Sequence

from eventkit import Event

from core.events import AuditRecorded
from core.tasks import Tasks

log = logging.getLogger(__name__)

AuditSink = Callable[[Sequence[AuditRecorded]], Awaitable[object]]


class AuditLog:
    """The session's audit trail.

    Events:
        * ``recorded`` (record: :class:`core.events.AuditRecorded`)
    """

    def __init__(self, sink: AuditSink | None = None, maxlen: int = 100_000) -> None:
        self.records: collections.deque[AuditRecorded] = collections.deque(maxlen=maxlen)
        self.recorded: Event = Event("recorded")
        self._sink = sink
        self._pending: list[AuditRecorded] = []
        self._tasks = Tasks("audit")

    def attach_sink(self, sink: AuditSink) -> None:
        """Write records to ``sink`` from now on (records so far are written too)."""
        self._sink = sink
        self._pending.extend(self.records)
        self._schedule_flush()

    def record(
        self,
        actor: str,
        action: str,
        subject: str,
        result: str,
        *,
        order_id: int | None = None,
        strategy: str | None = None,
    ) -> AuditRecorded:
        """Append one record and publish it."""
        rec = AuditRecorded(actor, action, subject, result, order_id=order_id, strategy=strategy)
        return self.append(rec)

    def append(self, rec: AuditRecorded) -> AuditRecorded:
        """Append a record built elsewhere (e.g. the portfolio's break resolution)."""
        self.records.append(rec)
        log.info("audit: %s %s %s -> %s", rec.actor, rec.action, rec.subject, rec.result)
        self.recorded.emit(rec)
        if self._sink is not None:
            self._pending.append(rec)
            self._schedule_flush()
        return rec

    def _schedule_flush(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (plain scripts, unit tests): flush() writes later
        self._tasks.ensure("flush", self.flush)

    async def flush(self) -> None:
        """Write every pending record to the sink; on failure they stay pending."""
        while self._pending and self._sink is not None:
            batch, self._pending = self._pending, []
            try:
                await self._sink(batch)
            except Exception:
                log.exception("audit: could not write %d records; will retry", len(batch))
                self._pending[:0] = batch
                return
