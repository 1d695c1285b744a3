"""Brackets through the TradeManager, and the heartbeat that catches a silent connection."""

from __future__ import annotations

import asyncio

import pytest

from core.connection import ConnectionState
from core.contracts import create_stock_contract
from core.orders import create_bracket_order
from helpers import settle, wait_for

pytestmark = pytest.mark.asyncio


async def test_bracket_take_profit_fill_cancels_stop_loss(core, ib_log_guard):
    ib_log_guard.expect(r"Error 202, reqId \d+: Order Canceled")
    gw = core.gateway
    gw.freeze_market_data(True)
    gw.set_price("AAPL", 200.00)
    bracket = create_bracket_order("BUY", 10, 200.50, 205.00, 195.00)

    aapl = await core.trades.qualify(create_stock_contract("AAPL"))
    parent, take_profit, stop_loss = core.trades.place_bracket(aapl, *bracket, "swing")

    await wait_for(lambda: parent.orderStatus.status == "Filled", what="entry filled")
    assert take_profit.order.parentId == stop_loss.order.parentId == parent.order.orderId
    await wait_for(lambda: take_profit.orderStatus.status == "Submitted", what="children working")
    gw.set_price("AAPL", 205.50)
    await wait_for(lambda: take_profit.orderStatus.status == "Filled", what="take profit filled")
    await wait_for(lambda: stop_loss.orderStatus.status == "Cancelled", what="stop loss cancelled")
    positions = [p for p in gw.engine.positions() if p.quantity]
    assert positions == []


async def test_bracket_with_a_bad_child_sends_nothing(core):
    bracket = create_bracket_order("BUY", 10, 200.50, 205.00, 195.00)
    bracket.stop_loss.auxPrice = -1

    aapl = await core.trades.qualify(create_stock_contract("AAPL"))
    with pytest.raises(Exception, match="stop"):
        core.trades.place_bracket(aapl, *bracket, "swing")

    await settle(core.connection.ib)
    assert core.gateway.engine.open_orders() == []


async def test_silent_connection_is_dropped_by_heartbeat_then_reconnected(core, ib_log_guard):
    ib_log_guard.expect(r"Peer closed connection|Connection reset by peer")
    ib = core.connection.ib
    states = []
    core.connection.statusChanged += lambda s: states.append(s.state)
    answer = ib.reqCurrentTimeAsync

    def never_answers():  # the gateway accepts the request and says nothing, once
        ib.reqCurrentTimeAsync = answer
        return asyncio.get_running_loop().create_future()

    ib.reqCurrentTimeAsync = never_answers

    await wait_for(lambda: ConnectionState.DISCONNECTED in states, timeout=5, what="heartbeat")
    await wait_for(lambda: states[-1] is ConnectionState.CONNECTED, timeout=10, what="reconnect")
    assert ConnectionState.RECONNECTING in states


async def test_late_heartbeat_answer_while_data_flows_then_connection_kept(core, ib_log_guard):
    ib = core.connection.ib
    states = []
    core.connection.statusChanged += lambda s: states.append(s.state)
    [aapl] = await ib.qualifyContractsAsync(create_stock_contract("AAPL"))
    ib.reqMktData(aapl)  # the gateway streams ticks every 50 ms: the link is busy, not dead
    answer = ib.reqCurrentTimeAsync
    unanswered = []

    def never_answers():
        unanswered.append(1)
        return asyncio.get_running_loop().create_future()

    ib.reqCurrentTimeAsync = never_answers
    await wait_for(lambda: len(unanswered) >= 2, timeout=5, what="two unanswered heartbeats")
    ib.reqCurrentTimeAsync = answer
    assert ConnectionState.DISCONNECTED not in states
    assert ib.isConnected()


async def test_bytes_of_a_session_the_console_closed_are_never_decoded(core, ib_log_guard):
    ib_log_guard.expect(r"Peer closed connection|Connection reset by peer")
    reader = core.connection.reader
    decoded: list[bytes] = []
    real = reader.client._onSocketHasData

    def forward(data: bytes) -> None:  # what the reader hands ib_async
        decoded.append(data)
        real(data)

    reader.client._onSocketHasData = forward
    core.connection.ib.disconnect()  # as the heartbeat does
    reader._on_data(b"\x00\x00\x00\x0d1\x002\x00-1\x00JUNK\x00")  # late bytes of that session
    await wait_for(lambda: core.connection.ib.isConnected(), timeout=10, what="reconnect")
    assert not any(b"JUNK" in piece for piece in decoded)
