"""Fills made durable before they count: the fills journal, commissions, exactly once.

:class:`FillHandler` owns what happens to an execution after IB reports it. It is
written to the fills journal (durable, idempotent by execId) *before* it is counted as
handled, then published as ``fillReceived`` and queued to the strategy. A write that
fails is retried with backoff (tenacity) until it is durable, each failure logged and
published as ``journalError``; the fill stays pending meanwhile.

The commission report that follows an execution is awaited briefly
(:data:`COMMISSION_WAIT_S`) so the journal gets the commission too; when it arrives
later than that, the fill is journalled once more with it (the store keeps that copy and
does not count it as a new fill) and published again as ``fillReceived`` so the
portfolio replaces the first copy (strategies are not told twice: their ``Fill`` object
is ib_async's, which now carries the report).

:meth:`FillHandler.handle` may be called any number of times for the same execution
(live events, the replay after a reconnect): only the first call that finds it new has
an effect. It is apart from :class:`core.trading.TradeManager` because durability
(retries, timers, writes in flight) is its own concern and touches no order state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC
from typing import Any, Protocol

from eventkit import Event
from ib_async import CommissionReport, Fill, Trade
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from core.events import FillRecorded
from core.order_records import OrderRecords
from core.orders import price_or_none
from core.tasks import Tasks

log = logging.getLogger(__name__)

#: How long a fill waits for its commission report before it is journalled without one.
COMMISSION_WAIT_S = 1.0


class FillJournal(Protocol):
    """Where fills become durable (the ArcticDB store).

    It may also have ``append_orders(updates: Sequence[OrderUpdated]) -> Awaitable[int]``
    (the store does): order updates are then journalled too; and
    ``last_order_updates() -> Awaitable[list[OrderUpdated]]``, the last journalled update
    of each order still working then, which :meth:`TradeManager.restore` reads.
    """

    def append_fills(self, fills: Sequence[FillRecorded]) -> Awaitable[int]:
        """Write the fills not written yet; return how many were new.

        An execution journalled without its commission and given again with it must be
        written again (it is not new: it does not count).
        """
        ...


def fill_record(strategy: str, fill: Fill, min_tick: float | None = None) -> FillRecorded:
    """An ib_async ``Fill`` as a :class:`core.events.FillRecorded` for ``strategy``.

    IB's placeholders become None; a commission of None means the report has not come.
    ``min_tick`` is the contract's price increment, recorded so the price keeps its
    decimals wherever the fill is shown later (IB's execution does not carry it).
    """
    ex, c, cr = fill.execution, fill.contract, fill.commissionReport
    has_commission = bool(cr.execId) or bool(cr.commission)
    realized = price_or_none(cr.realizedPNL) if has_commission else None
    t = ex.time if ex.time.tzinfo else ex.time.replace(tzinfo=UTC)
    return FillRecorded(
        exec_id=ex.execId,
        order_id=ex.orderId,
        perm_id=ex.permId,
        client_id=ex.clientId,
        strategy=strategy,
        account=ex.acctNumber,
        con_id=c.conId,
        symbol=c.localSymbol if c.secType == "CASH" and c.localSymbol else c.symbol,
        sec_type=c.secType,
        currency=c.currency,
        exchange=ex.exchange,
        side=ex.side,
        quantity=float(ex.shares),
        price=float(ex.price),
        multiplier=float(c.multiplier or 1),
        commission=price_or_none(cr.commission) if has_commission else None,
        realized_pnl=realized or None,
        order_ref=ex.orderRef,
        time=t.astimezone(UTC),
        min_tick=min_tick,
    )


class FillHandler:
    """Journals, publishes and queues each execution once (see the module docstring).

    Events:
        * ``fillReceived`` (fill: :class:`core.events.FillRecorded`): after it is durable
        * ``journalError`` (error: Exception): a fill could not be written; it is retried
    """

    def __init__(
        self,
        *,
        journal: FillJournal | None,
        records: OrderRecords,
        tasks: Tasks,
        tell: Callable[[dict[str, Any]], None],
    ) -> None:
        self.journal = journal
        self._records = records
        self._tasks = tasks
        self._tell = tell
        self.fillReceived: Event = Event("fillReceived")
        self.journalError: Event = Event("journalError")
        #: Exec ids journalled and published (the guard against replays).
        self.handled: set[str] = set()
        self._pending: dict[str, tuple[Trade | None, Fill]] = {}  # waiting for commission
        self._timers: dict[str, asyncio.TimerHandle] = {}
        # Journalled without a commission: waiting for a late commission report.
        self._uncommissioned: dict[str, tuple[Trade | None, Fill]] = {}
        self._writing: set[str] = set()  # exec ids whose first write is in flight

    def seen(self) -> int:
        """How many executions were taken in (handled or pending)."""
        return len(self.handled) + len(self._pending)

    def handle(self, trade: Trade | None, fill: Fill) -> None:
        """Take an execution in: journal it (durable), then publish and queue it."""
        exec_id = fill.execution.execId
        if exec_id in self.handled or exec_id in self._pending:
            return
        self._pending[exec_id] = (trade, fill)
        if fill.commissionReport.execId or fill.commissionReport.commission:
            self._record_now(exec_id)
        else:
            loop = asyncio.get_running_loop()
            self._timers[exec_id] = loop.call_later(COMMISSION_WAIT_S, self._record_now, exec_id)

    def on_commission_report(self, trade: Trade, fill: Fill, report: CommissionReport) -> None:
        """ib_async's commission report: journal the fill now, or again with it."""
        exec_id = fill.execution.execId
        if exec_id in self._pending and exec_id not in self._writing:
            self._pending[exec_id] = (trade, fill)
            self._record_now(exec_id)
        elif exec_id in self._uncommissioned:
            # Journalled without it (the wait expired): journal it again, with it.
            self._uncommissioned.pop(exec_id)
            self._spawn_write(self._journal_commission(self._fill_record(trade, fill)))
        # Else its first write is in flight: that write checks for a commission when done.

    async def wait(self, left: Callable[[], float | None]) -> bool:
        """Stop waiting for commissions and wait for the fill writes, within ``left()``
        seconds (None: as long as it takes). False when time ran out first (the writes
        go on: asyncio.wait cancels nothing)."""
        for exec_id in list(self._timers):
            self._timers.pop(exec_id).cancel()
            self._record_now(exec_id)
        me = asyncio.current_task()
        while others := [t for t in self._tasks.of("fill write") if t is not me]:
            _, running = await asyncio.wait(others, timeout=left())
            if running:
                return False
        return True

    def not_journalled(self) -> list[str]:
        """The exec ids of the fills not journalled yet (empty: every fill is durable)."""
        return sorted(self._pending)

    def start_day(self) -> None:
        """A new trading day: forget the exec ids, only with a journal (it is idempotent
        by exec id, so a late replay of an old fill writes and publishes nothing)."""
        if self.journal is not None and not self._pending and not self._writing:
            self.handled.clear()

    def _record_now(self, exec_id: str) -> None:
        timer = self._timers.pop(exec_id, None)
        if timer is not None:
            timer.cancel()
        entry = self._pending.get(exec_id)
        if entry is None or exec_id in self._writing:
            return  # nothing pending, or its write is in flight
        self._writing.add(exec_id)
        trade, fill = entry
        record = self._fill_record(trade, fill)
        self._spawn_write(self._journal_and_publish(record, trade, fill))

    def _spawn_write(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.spawn(coro, "fill write")

    async def _append_durably(self, record: FillRecorded) -> int:
        """Journal ``record``, retrying with backoff until it is durable; how many new."""
        journal = self.journal
        if journal is None:
            return 1

        def before_sleep(state: RetryCallState) -> None:
            # The fill stays pending: it is not handled until it is durable.
            exc = state.outcome.exception() if state.outcome is not None else None
            delay = state.next_action.sleep if state.next_action is not None else 0.0
            log.error(
                "fill %s could not be journalled (%s); retrying in %.1fs",
                record.exec_id,
                exc,
                delay,
            )
            self.journalError.emit(exc)

        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=0.5, max=30.0),
            retry=retry_if_exception_type(Exception),
            before_sleep=before_sleep,
        )
        return await retrying(journal.append_fills, [record])

    async def _journal_commission(self, record: FillRecorded) -> None:
        """A late commission: journal the fill again with it, then publish the new copy
        (``fillReceived`` consumers key fills by exec_id: it replaces the first)."""
        await self._append_durably(record)
        log.info("fill %s: commission %s reported late", record.exec_id, record.commission)
        self.fillReceived.emit(record)

    async def _journal_and_publish(
        self, record: FillRecorded, trade: Trade | None, fill: Fill
    ) -> None:
        new = await self._append_durably(record)
        self._pending.pop(record.exec_id, None)
        self._writing.discard(record.exec_id)
        self.handled.add(record.exec_id)
        if record.commission is None:
            self._late_commission(record.exec_id, trade, fill)
        if not new:
            return  # journalled in an earlier session: already published then
        log.info(
            "fill %s: %s %s %g @ %g (%s)",
            record.exec_id,
            record.side,
            record.symbol,
            record.quantity,
            record.price,
            record.strategy,
        )
        self.fillReceived.emit(record)
        self._tell({"type": "fill", "strategy": record.strategy, "trade": trade, "fill": fill})

    def _late_commission(self, exec_id: str, trade: Trade | None, fill: Fill) -> None:
        """After a write without commission: journal the commission if it came meanwhile
        (ib_async fills in the same ``Fill``), else wait for its report."""
        cr = fill.commissionReport
        if cr.execId or cr.commission:
            self._spawn_write(self._journal_commission(self._fill_record(trade, fill)))
        else:
            self._uncommissioned[exec_id] = (trade, fill)

    def _fill_record(self, trade: Trade | None, fill: Fill) -> FillRecorded:
        strategy = self._records.strategy_of_execution(trade, fill)
        return fill_record(strategy, fill, self._records.min_tick(fill.contract))
