"""Every private internal of ib_async (and asyncio) the console relies on, in one place.

The console reaches below ib_async's public API in a few places, each for a reason
given where it is used: it feeds the decoder in slices (:class:`core.connection.
SlicedReader`), owns the pacing of outgoing frames (:class:`core.wire.WireGate`),
keeps the ``Trade`` objects its callers hold current across reconnects
(:meth:`core.inflight.InFlightOrders.relink`), keeps an order working when IB refuses a
modification of it (:func:`keep_working_on_refusal`), re-reads a symbol ArcticDB has cached
wrongly (:func:`forget_cached_versions`), and runs asyncio inside Qt's loop
(``gui/loop.py``). An ib_async upgrade that renames one of these must fail loudly in
``tests/unit/test_compat.py``, not quietly in production: so nothing outside this module
names them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping
from typing import Any

from ib_async import IB, Trade, TradeLogEntry

# -- the socket: what ib_async's Connection hands its Client --------------------------------


def socket_handlers(ib: IB) -> tuple[Callable[[bytes], None], Callable[[str], None]]:
    """The client's handlers for bytes received and for the socket closing."""
    client = ib.client
    return client._onSocketHasData, client._onSocketDisconnected


def take_over_sending(ib: IB, submit: Callable[[str | None], None]) -> Callable[[str], None]:
    """Route every frame ib_async sends through ``submit`` (its throttle off); returns
    the function that writes one frame to the socket."""
    client = ib.client
    client.MaxRequests = 0
    client.sendMsg = submit  # type: ignore[method-assign,assignment]

    def write(msg: str) -> None:
        client.conn.sendMsg(client._prefix(msg.encode()))

    return write


# -- the wrapper's order book ---------------------------------------------------------------


def trades_by_key(ib: IB) -> MutableMapping[Any, Trade]:
    """ib_async's trades, keyed by ``(client id, order id)`` (or perm id for TWS orders)."""
    trades: MutableMapping[Any, Trade] = ib.wrapper.trades
    return trades


def trades_by_perm_id(ib: IB) -> MutableMapping[int, Trade]:
    """ib_async's trades by perm id (what executions are matched by)."""
    trades: MutableMapping[int, Trade] = ib.wrapper.permId2Trade
    return trades


def keep_working_on_refusal(ib: IB, refused: Callable[[Trade, int, str], str | None]) -> None:
    """Hear IB's order errors before ib_async's ``wrapper.error`` acts on them.

    ib_async marks any error about a working order ``Cancelled`` (its own comment says a
    modification's error leaves the order "STILL LIVE" at IB, yet it cancels it). For
    each error naming one of our orders, ``refused(trade, code, message)`` is asked
    first; when it returns a text (the error refused a change and the order still
    works), ib_async's handler is skipped for that error: the order keeps its status,
    the text goes into the trade's log with IB's code, and ``errorEvent`` is emitted as
    ib_async would. Every other error goes to ib_async unchanged.
    """
    wrapper = ib.wrapper
    original = wrapper.error

    def error(
        reqId: int, errorCode: int, errorString: str, advancedOrderRejectJson: str = ""
    ) -> None:
        trade = wrapper.trades.get((wrapper.clientId, reqId)) if reqId >= 0 else None
        is_request = reqId in wrapper._futures
        text = None if trade is None or is_request else refused(trade, errorCode, errorString)
        if trade is None or text is None:
            original(reqId, errorCode, errorString, advancedOrderRejectJson)
            return
        if advancedOrderRejectJson:
            trade.advancedError = advancedOrderRejectJson
        trade.log.append(TradeLogEntry(wrapper.lastTime, trade.orderStatus.status, text, errorCode))
        ib.errorEvent.emit(reqId, errorCode, errorString, wrapper._reqId2Contract.get(reqId))

    wrapper.error = error  # type: ignore[method-assign]


# -- ArcticDB's version cache -------------------------------------------------------------


def forget_cached_versions(library: Any) -> None:
    """Make an ArcticDB library look up every symbol's latest version again.

    Two consoles writing a new symbol at the same instant both write its version 0; the
    one whose write lost keeps its own version 0 cached as the latest for ever, so it
    reads its own data, not what the store holds (seen with the store's roster).
    """
    library._nvs.version_store.flush_version_map()


# -- asyncio inside Qt's loop -------------------------------------------------------------


def current_running_loop() -> asyncio.AbstractEventLoop | None:
    """The running loop of this thread, or None (no exception when there is none)."""
    return asyncio.events._get_running_loop()


def set_running_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """Mark ``loop`` as the running loop of this thread (qasync-style nested running)."""
    asyncio.events._set_running_loop(loop)
