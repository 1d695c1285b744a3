"""What the console knows of each order beyond ib_async's ``Trade``, and how it is shown.

:class:`OrderRecords` owns the facts IB's messages do not carry or that must outlive a
restart: whose an order is (attribution: the strategy that placed it, else its
``orderRef``, else ``external``), when it was placed (IB's openOrder carries no time),
its contract's price increment, and the status last shown (:mod:`core.orderstatus`
decides what may follow it, so a stale or reordered message is logged, never shown).

It turns a ``Trade`` into the immutable :class:`core.events.OrderUpdated` the GUI and
the portfolio consume (``orderUpdated``) and writes every update to the journal's orders
library when the journal has ``append_orders``: batched, written in the background, a
failed write logged and kept for the next attempt (up to :data:`MAX_ORDER_BACKLOG`
updates), never fatal and never blocking the loop. At start, :meth:`restore` reads the
journal back so a working order keeps its placement time across a restart.

Apart from :class:`core.trading.TradeManager` because these are bookkeeping and
presentation, not decisions: nothing here sends, refuses or ends an order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

from eventkit import Event
from ib_async import Contract, ContractDetails, Fill, Trade

from core.events import EXTERNAL, OrderUpdated, now_utc
from core.orders import price_or_none
from core.orderstatus import allowed
from core.tasks import Tasks

log = logging.getLogger(__name__)

#: How many order updates wait for the journal at most when writes keep failing.
MAX_ORDER_BACKLOG = 10_000

#: The message of an order shown working while the connection is down.
LINK_DOWN_MESSAGE = (
    "link down: IB has not confirmed this order since the connection dropped; "
    "it is looked for after the reconnect"
)

OrderKey = tuple[int, int]  # (client id, order id); (0, -permId) for an order known by permId
OrderJournal = Callable[[Sequence[OrderUpdated]], Awaitable[int]]
DetailsLookup = Callable[[Contract], ContractDetails | None]


def order_key(trade: Trade) -> OrderKey:
    """The key an order is known by here: its ids, else its permId (TWS's own orders)."""
    o = trade.order
    return (o.clientId, o.orderId) if o.orderId else (0, -(o.permId or trade.orderStatus.permId))


def _key_of(update: OrderUpdated) -> OrderKey:
    """The key of the order an update is about (as :func:`order_key` for its trade)."""
    if update.order_id:
        return (update.client_id, update.order_id)
    return (0, -update.perm_id)


class OrderRecords:
    """Attribution, placement times, price increments and the published order state.

    Events:
        * ``orderUpdated`` (update: :class:`core.events.OrderUpdated`)

    ``ended`` is read-only here: the orders ended in the console (``NotSent``, ``Lost``:
    status and reason by key), kept by :class:`core.inflight.InFlightOrders`; their
    status is shown instead of ib_async's ``Inactive``.
    """

    def __init__(
        self,
        *,
        journal: object | None,
        tasks: Tasks,
        ended: Mapping[OrderKey, tuple[str, str]],
        details_lookup: DetailsLookup | None = None,
    ) -> None:
        self.orderUpdated: Event = Event("orderUpdated")
        self._journal = journal
        self._tasks = tasks
        self._ended = ended
        self._details_lookup = details_lookup
        #: The strategy of each order placed in this session (by order key).
        self.strategy_of_order: dict[OrderKey, str] = {}
        self._shown: dict[OrderKey, str] = {}
        # The last update published of each order: what the grid shows of it.
        self._last: dict[OrderKey, OrderUpdated] = {}
        # When each order was placed: by order key and by permId, restored from the
        # orders journal at start (restore()).
        self._placed: dict[OrderKey, datetime] = {}
        self._placed_by_perm: dict[int, datetime] = {}
        # Contracts' price increments (con_id -> min tick): from contract details, else
        # as the orders journal recorded them (details are not cached after a restart).
        self._min_ticks: dict[int, float] = {}
        append_orders = getattr(journal, "append_orders", None)
        self._order_journal: OrderJournal | None = (
            append_orders if callable(append_orders) else None
        )
        self._backlog: list[OrderUpdated] = []

    # -- attribution -------------------------------------------------------------------

    def strategy_of(self, trade: Trade) -> str:
        """The strategy an order belongs to: its ``orderRef``, else ``external``."""
        key = (trade.order.clientId, trade.order.orderId)
        if key in self.strategy_of_order:
            return self.strategy_of_order[key]
        return trade.order.orderRef or EXTERNAL

    def strategy_of_execution(self, trade: Trade | None, fill: Fill) -> str:
        """The strategy an execution belongs to: its order's, else its ``orderRef``."""
        if trade is not None:
            return self.strategy_of(trade)
        return fill.execution.orderRef or EXTERNAL

    def min_tick(self, contract: Contract) -> float | None:
        """The contract's price increment: its details, else what the journal recorded."""
        tick = self._min_ticks.get(contract.conId)
        if tick is None and self._details_lookup is not None:
            details = self._details_lookup(contract)
            if details is not None and details.minTick and details.minTick > 0:
                tick = self._min_ticks[contract.conId] = float(details.minTick)
        return tick

    # -- publishing --------------------------------------------------------------------

    def last_update(self, trade: Trade) -> OrderUpdated | None:
        """The last update published of ``trade``'s order (what is shown of it)."""
        return self._last.get(order_key(trade))

    def mark_link_down(self) -> int:
        """The connection dropped: publish every order shown working again, marked
        ``link_down`` (IB cannot confirm it until the reconnect). Not journalled: the
        order did not change. Returns how many."""
        marked = [
            dataclasses.replace(u, link_down=True, message=LINK_DOWN_MESSAGE, time=now_utc())
            for u in self._last.values()
            if u.is_working and not u.link_down
        ]
        for update in marked:
            self._last[_key_of(update)] = update
            self.orderUpdated.emit(update)
        return len(marked)

    def publish(self, trade: Trade, *, while_away: bool = False) -> bool:
        """Publish the order's state; False when its status cannot follow the one shown
        (a stale or reordered message: logged, not shown). ``while_away``: the status was
        learned after a reconnect (it happened while the console was disconnected)."""
        o, s, c = trade.order, trade.orderStatus, trade.contract
        message = trade.log[-1].message if trade.log else ""
        key = order_key(trade)
        final = self._ended.get(key) if self._ended else None
        status = final[0] if final else s.status
        shown = self._shown.get(key, "")
        if not allowed(shown, status):
            log.warning(
                "order %d: IB reported %s after %s, which cannot follow it: not shown",
                o.orderId,
                status,
                shown,
            )
            return False
        self._shown[key] = status
        perm_id = o.permId or s.permId
        update = OrderUpdated(
            order_id=o.orderId,
            perm_id=perm_id,
            client_id=o.clientId,
            strategy=self.strategy_of(trade),
            account=o.account,
            con_id=c.conId,
            symbol=c.localSymbol if c.secType == "CASH" and c.localSymbol else c.symbol,
            sec_type=c.secType,
            action=o.action,
            quantity=float(o.totalQuantity),
            order_type=o.orderType,
            limit_price=price_or_none(o.lmtPrice),
            stop_price=price_or_none(o.auxPrice),
            tif=o.tif,
            status=status,
            filled=float(s.filled),
            remaining=float(s.remaining) if s.status else float(o.totalQuantity),
            avg_fill_price=price_or_none(s.avgFillPrice) or None,
            message=message,
            placed=self._placed_at(key, perm_id, trade),
            min_tick=self.min_tick(c),
            while_away=while_away,
        )
        self._last[key] = update
        self.orderUpdated.emit(update)
        self._journal_order(update)
        return True

    # -- placement times ---------------------------------------------------------------

    async def restore(self) -> int:
        """Learn from the orders journal when each order still working at the last run
        was placed, and its contract's price increment (see TradeManager.restore)."""
        load = getattr(self._journal, "last_order_updates", None)
        if not callable(load):
            return 0
        try:
            updates: Sequence[OrderUpdated] = await load()
        except Exception as exc:
            log.error("orders journal not read (%s): working orders show when first seen", exc)
            return 0
        for u in updates:
            placed = u.placed or u.time
            key = (u.client_id, u.order_id) if u.order_id else (0, -u.perm_id)
            self._placed.setdefault(key, placed)
            if u.perm_id:
                self._placed_by_perm.setdefault(u.perm_id, placed)
            if u.min_tick:
                self._min_ticks.setdefault(u.con_id, u.min_tick)
        log.info("orders journal: %d working orders' placement times restored", len(updates))
        return len(updates)

    def _placed_at(self, key: OrderKey, perm_id: int, trade: Trade) -> datetime:
        """When the order was placed: as known (this run, or restored), else its first
        log entry (ib_async writes one as it sends an order), else now (first seen)."""
        placed = self._placed_by_perm.get(perm_id) if perm_id else None
        if placed is None:
            placed = self._placed.get(key)
        if placed is None:
            first = trade.log[0].time if trade.log else None
            if first is None:
                placed = datetime.now(UTC)
            else:
                placed = (first if first.tzinfo else first.replace(tzinfo=UTC)).astimezone(UTC)
        self._placed[key] = placed
        if perm_id:
            self._placed_by_perm[perm_id] = placed
        return placed

    def forget(self, keep: set[OrderKey], open_trades: Iterable[Trade]) -> int:
        """A new trading day: forget the orders not in ``keep`` (working and in doubt);
        placement times stay for every order still open at IB (a GTC order restored
        after a restart is not among ours). Returns how many orders were forgotten."""
        done = [k for k in self.strategy_of_order if k not in keep]
        for key in done:
            del self.strategy_of_order[key]
        self._shown = {k: v for k, v in self._shown.items() if k in keep}
        self._last = {k: v for k, v in self._last.items() if k in keep}
        open_trades = list(open_trades)
        perms = {t.order.permId or t.orderStatus.permId for t in open_trades}
        placed_keys = keep | {(t.order.clientId, t.order.orderId) for t in open_trades}
        placed_keys |= {(0, -p) for p in perms}  # orders known by permId only
        self._placed = {k: v for k, v in self._placed.items() if k in placed_keys}
        self._placed_by_perm = {p: v for p, v in self._placed_by_perm.items() if p in perms}
        return len(done)

    # -- the orders journal ------------------------------------------------------------

    def _journal_order(self, update: OrderUpdated) -> None:
        """Queue an order update for the journal; one background writer drains it."""
        if self._order_journal is None:
            return
        self._backlog.append(update)
        if len(self._backlog) > MAX_ORDER_BACKLOG:
            dropped = len(self._backlog) - MAX_ORDER_BACKLOG
            del self._backlog[:dropped]
            log.error("orders journal backlog full: %d oldest order updates dropped", dropped)
        try:  # the running writer takes it with its next batch
            self._tasks.ensure("orders journal", self._write_orders)
        except RuntimeError:
            pass  # no loop (a synchronous caller): flush() writes it

    async def _write_orders(self) -> None:
        """Write the backlog in batches until it is empty or a write fails.

        A failure is logged and the batch kept for the next attempt (the next update, or
        :meth:`flush`); it never propagates.
        """
        assert self._order_journal is not None
        await asyncio.sleep(0)  # let a burst of updates (openOrder + orderStatus) gather
        while self._backlog:
            batch, self._backlog = self._backlog, []
            try:
                await self._order_journal(batch)
            except Exception as exc:
                self._backlog[:0] = batch
                log.error(
                    "%d order updates could not be journalled (%s); kept for the next attempt",
                    len(batch),
                    exc,
                )
                return

    async def flush(self, left: Callable[[], float | None]) -> None:
        """Give the order updates so far their write attempt, within ``left()`` seconds
        (None: as long as it takes); a write still going on then is left running."""
        for _ in range(2):  # the running writer, then one more for what it left
            if writers := self._tasks.of("orders journal"):
                await asyncio.wait(writers, timeout=left())
            idle = not self._tasks.of("orders journal")
            if not (idle and self._backlog and self._order_journal is not None):
                break
            # Left by a failed write, or published without a loop.
            self._tasks.ensure("orders journal", self._write_orders)
