"""The emergency stop acts for the console's account only, when one login manages two.

With no ``--account`` the console's orders go to the first account IB manages; the stop
must flatten that account's positions with orders for that account, and leave the other
account's alone: summing both into one "AAPL 60" and selling 60 in the first account
would open a short there, not close anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from ib_async import IB, MarketOrder, Stock

from core.connection import ClientIdRegistry, Connection
from core.contracts import create_stock_contract
from core.orders import create_market_order
from core.risk import RiskManager
from core.session import emergency_stop_for
from core.strategies import StrategyManager
from core.trading import TradeManager
from helpers import wait_for

pytestmark = pytest.mark.asyncio

ACCOUNTS = ("DU0000001", "DU0000002")


@pytest_asyncio.fixture
async def two_accounts() -> AsyncIterator[tuple[Any, TradeManager, RiskManager, Connection]]:
    from core.sim import SimGateway

    gw = SimGateway("127.0.0.1", 0, seed=7, tick_interval=0.05, accounts=ACCOUNTS)
    await gw.start()
    conn = Connection("127.0.0.1", gw.port, 1, timeout=5, registry=ClientIdRegistry())
    trades = TradeManager(conn.ib, StrategyManager(), connection=conn)
    risk = RiskManager()
    risk.attach_trade_manager(trades)
    await conn.connect()
    risk.attach_ib(conn.ib, lambda: trades.account)  # as the session wires it
    try:
        yield gw, trades, risk, conn
    finally:
        await trades.wait_journalled()
        await conn.disconnect()
        await gw.stop()


async def test_stop_flattens_the_consoles_account_and_leaves_the_other_alone(two_accounts):
    gw, trades, risk, conn = two_accounts
    aapl_id = gw.universe.find(symbol="AAPL")[0].con_id
    # another application buys 50 AAPL in the second account
    other = IB()
    await other.connectAsync("127.0.0.1", gw.port, clientId=7)
    try:
        [aapl] = await other.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        order = MarketOrder("BUY", 50)
        order.account = ACCOUNTS[1]
        done = other.placeOrder(aapl, order)
        await wait_for(lambda: done.orderStatus.status == "Filled", what="the other fill")
    finally:
        other.disconnect()
    # the console (no --account: it trades the first) buys 10
    assert trades.account == ACCOUNTS[0]
    mine = trades.place_order(
        await trades.qualify(create_stock_contract("AAPL")), create_market_order("BUY", 10), "s"
    )
    await wait_for(lambda: mine.orderStatus.status == "Filled", what="the console's fill")
    await wait_for(
        lambda: (
            {(p.account, float(p.position)) for p in conn.ib.positions()}
            >= {(ACCOUNTS[0], 10.0), (ACCOUNTS[1], 50.0)}
        ),
        what="both accounts' positions",
    )

    # risk judges the console's account: the other's 50 never overwrote its 10
    assert risk.book.account.qty[aapl_id] == 10

    stop = emergency_stop_for(risk, trades, conn, cancel_timeout=5, fill_timeout=10)
    result = await stop.stop("test")

    assert result.ok, result
    assert gw.engine.position(ACCOUNTS[0], aapl_id).quantity == 0  # closed, not reversed
    assert gw.engine.position(ACCOUNTS[1], aapl_id).quantity == 50  # not this console's
    flattening = [t for t in trades.ib.trades() if t.order.action == "SELL"]
    assert [(t.order.account, t.order.totalQuantity) for t in flattening] == [(ACCOUNTS[0], 10)]
