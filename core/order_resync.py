"""Working orders and fills across a dropped connection: link down, then the resync.

When the connection drops, every order shown working is republished marked *link down*
(unconfirmed: IB has not spoken of it since) and orders written but not acknowledged
become suspects (:mod:`core.inflight`). After every (re)connect, :class:`OrderResync`
reconciles the console with what IB lists:

* the account's open orders (reqAllOpenOrders, so orders placed in TWS or by other
  clients are shown, ``external`` unless their ``orderRef`` names a strategy) and, when
  orders are unconfirmed, its completed orders too;
* the ``Trade`` objects callers hold are relinked to ib_async's new ones; an order that
  ended while away is shown marked *while away* (:meth:`core.inflight.InFlightOrders.relink`);
* an order IB knows neither open nor completed nor executed ends ``Lost``, never
  resent; not while the gateway is not logged in to IB (1100: TWS after its nightly
  restart may not list every order yet): those stay link down and are looked for again
  when IB is back (1101/1102);
* the day's executions ib_async replays without live fill events go to the fill handler,
  so a fill that happened while disconnected is delivered exactly once;
* the working orders' contract details are learnt (:mod:`core.order_contracts`).

Apart from :class:`core.trading.TradeManager` (which offers ``resync``,
``synchronised`` and ``lost_orders`` and delegates here) because this is the one part
that reasons about what happened while the console was not listening.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from ib_async import IB, Fill, Trade

from core.events import ConnectionState, ConnectionStatusChanged
from core.fill_handling import FillHandler
from core.inflight import InFlightOrders
from core.order_records import OrderRecords
from core.tasks import Tasks

log = logging.getLogger(__name__)

#: How long IB's open or completed orders are waited for at a resync, in seconds.
LIST_TIMEOUT_S = 10


class LinkState(Protocol):
    """Where the link's state is read (the :class:`core.connection.Connection`)."""

    @property
    def state(self) -> ConnectionState:
        """The connection's state now (``LINK_LOST``: the gateway lost IB)."""
        ...


class OrderResync:
    """Marks working orders link down on a drop and reconciles them after a reconnect.

    ``link`` gives the connection's state (None: no connection object, e.g. a test's
    bare IB); ``learn_working`` fetches the working orders' contract details and
    ``wait_journalled`` waits until the fills taken in are durable.
    """

    def __init__(
        self,
        ib: IB,
        *,
        link: LinkState | None,
        readonly: bool,
        in_flight: InFlightOrders,
        records: OrderRecords,
        fills: FillHandler,
        tasks: Tasks,
        learn_working: Callable[[], Coroutine[Any, Any, None]],
        wait_journalled: Callable[[], Awaitable[list[str]]],
    ) -> None:
        self._ib = ib
        self._link = link
        self._readonly = readonly
        self._in_flight = in_flight
        self._records = records
        self._fills = fills
        self._tasks = tasks
        self._learn_working = learn_working
        self._wait_journalled = wait_journalled

    async def resync(self) -> int:
        """Reconcile now (one run shared by concurrent callers); returns how many
        executions were taken in."""
        # ib_async keys the open-orders request by name: two at once would leave one
        # waiting forever.
        return await asyncio.shield(self._tasks.ensure("resync", self._resync_once))

    async def synchronised(self) -> None:
        """Wait for the resync in progress, if any."""
        await self._tasks.wait("resync")

    def lost_orders(self, strategy: str | None = None) -> list[Trade]:
        """The orders ended ``Lost`` (of one strategy if given) not found at IB since."""
        return [
            t
            for t in self._in_flight.lost()
            if strategy is None or self._records.strategy_of(t) == strategy
        ]

    def on_connected(self, reconnect: bool) -> None:
        """Every (re)connect: reconcile in the background."""
        self._tasks.ensure("resync", self._resync_once)

    def on_connection_status(self, status: ConnectionStatusChanged) -> None:
        """IB is back behind the gateway (1101/1102): look again for the orders the
        reconnect could not confirm while the gateway was not logged in."""
        if status.state is ConnectionState.CONNECTED and self._in_flight.unconfirmed():
            self._tasks.ensure("resync", self._resync_once)

    def on_disconnected(self) -> None:
        """Orders written but not acknowledged become suspects; every order shown
        working is marked link down (unconfirmed) until IB reports it again."""
        self._in_flight.on_disconnected()
        self._records.mark_link_down()

    async def _resync_once(self) -> int:
        ib = self._ib
        listed = ib.isConnected()
        if self._link is not None and self._link.state is ConnectionState.LINK_LOST:
            # TWS is up but not logged in to IB (its nightly restart): its order lists may
            # not be complete yet. Orders stay unconfirmed until IB is back (1101/1102).
            listed = False
        if ib.isConnected() and ib.client.clientId != 0:  # client 0 sees them all
            try:
                await asyncio.wait_for(ib.reqAllOpenOrdersAsync(), LIST_TIMEOUT_S)
            except (TimeoutError, ConnectionError) as exc:
                listed = False
                log.warning("could not list the account's open orders: %s", exc)
        if listed and (self._readonly or self._in_flight.unconfirmed()):
            # Orders working before the drop are looked for among completed orders too:
            # ib_async asks for them only when not read-only, and only as it connects
            # (perhaps while the gateway was not logged in to IB yet).
            try:
                await asyncio.wait_for(ib.reqCompletedOrdersAsync(apiOnly=False), LIST_TIMEOUT_S)
            except (TimeoutError, ConnectionError) as exc:
                listed = False
                log.warning("could not list the account's completed orders: %s", exc)
        for open_trade in ib.openTrades():
            self._in_flight.watch(open_trade)
            self._records.publish(open_trade)
        self._tasks.ensure("working contracts", self._learn_working)
        self._in_flight.relink()
        if not listed and self._in_flight.unconfirmed():
            log.warning(
                "%d orders working before the drop not confirmed by IB yet (the gateway is "
                "not logged in to IB, or its order lists could not be read): they stay "
                "marked link down and are looked for again",
                len(self._in_flight.unconfirmed()),
            )
        self._in_flight.find_lost(listed=listed)
        before = self._fills.seen()
        for fill in ib.fills():
            self._fills.handle(self._trade_for_fill(fill), fill)
        await self._wait_journalled()
        return self._fills.seen() - before

    def _trade_for_fill(self, fill: Fill) -> Trade | None:
        perm_id = fill.execution.permId
        for trade in self._ib.trades():
            if trade.order.permId == perm_id and perm_id:
                return trade
        return None
