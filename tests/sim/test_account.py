"""Positions, account values, portfolio and P&L after fills; executions replay."""

from __future__ import annotations

import pytest
from ib_async import ExecutionFilter, LimitOrder, MarketOrder, Stock

from helpers import wait_for

AAPL = 265598
ACCOUNT = "DU0000001"


def values(ib, tag: str, currency: str = "USD") -> float:
    (v,) = [
        x for x in ib.accountValues() if x.tag == tag and x.currency == currency and not x.modelCode
    ]
    return float(v.value)


@pytest.mark.asyncio
async def test_account_when_fresh_then_cash_is_initial(ib):
    assert values(ib, "NetLiquidation") == 1_000_000.0
    assert values(ib, "TotalCashValue") == 1_000_000.0
    assert ib.positions() == []
    assert ib.portfolio() == []
    summary = await ib.accountSummaryAsync()
    tags = {v.tag for v in summary}
    assert {"NetLiquidation", "TotalCashValue", "BuyingPower", "ExcessLiquidity"} <= tags
    assert any(v.currency == "BASE" for v in summary)  # $LEDGER rows


@pytest.mark.asyncio
async def test_account_when_filled_then_positions_portfolio_values_pnl_follow(ib, gateway):
    (contract,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    pnl = ib.reqPnL(ACCOUNT)
    single = ib.reqPnLSingle(ACCOUNT, "", AAPL)
    gateway.market.set_quote(AAPL, bid=199.99, ask=200.01, bid_size=500, ask_size=500)
    trade = ib.placeOrder(contract, MarketOrder("BUY", 100))
    await wait_for(trade.isDone, what="fill")
    await wait_for(lambda: len(ib.positions()) == 1, what="position")
    (pos,) = ib.positions()
    assert pos.position == 100
    assert pos.contract.conId == AAPL
    assert pos.avgCost == pytest.approx(200.01 + 1.0 / 100)  # IB's avg cost includes commission
    await wait_for(lambda: len(ib.portfolio()) == 1, what="portfolio")
    assert values(ib, "TotalCashValue") == pytest.approx(1_000_000.0 - 100 * 200.01 - 1.0)
    gateway.set_price(AAPL, 210.0)
    await wait_for(lambda: ib.portfolio()[0].marketPrice == 210.0, what="portfolio mark")
    item = ib.portfolio()[0]
    assert item.unrealizedPNL == pytest.approx(100 * 210.0 - 100 * 200.01 - 1.0)
    await wait_for(lambda: pnl.unrealizedPnL == pytest.approx(item.unrealizedPNL), what="pnl")
    await wait_for(lambda: single.position == 100 and single.value == 21_000.0, what="pnl single")
    assert values(ib, "NetLiquidation") == pytest.approx(1_000_000.0 + item.unrealizedPNL)

    close = ib.placeOrder(contract, MarketOrder("SELL", 100))
    await wait_for(close.isDone, what="close")
    await wait_for(lambda: ib.positions() == [], what="flat")
    await wait_for(lambda: ib.portfolio() == [], what="portfolio flat")
    await wait_for(lambda: pnl.realizedPnL > 0, what="realized")
    fills = await ib.reqExecutionsAsync(ExecutionFilter(side="SELL"))
    assert [f.execution.side for f in fills] == ["SLD"]
    # ib_async keeps the commission report on the fill it saw live, not on the replayed copy.
    (live,) = [f for f in ib.fills() if f.execution.execId == fills[0].execution.execId]
    assert live.commissionReport.realizedPNL == pytest.approx(pnl.realizedPnL)


@pytest.mark.asyncio
async def test_positions_when_client_subscribed_then_pushed(ib, gateway, sim):
    other = await sim.connect(gateway, 2)
    (contract,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    gateway.market.set_quote(AAPL, bid=199.99, ask=200.01, bid_size=500, ask_size=500)
    ib.placeOrder(contract, MarketOrder("SELL", 30))
    await wait_for(lambda: [p.position for p in other.positions()] == [-30], what="other sees")


@pytest.mark.asyncio
async def test_executions_when_fill_while_disconnected_then_replayed_on_reconnect(ib, gateway, sim):
    (contract,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    gateway.set_price(AAPL, 200.0)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 10, 195.0, orderRef="away"))
    await wait_for(lambda: trade.orderStatus.status == "Submitted", what="working")
    ib.disconnect()
    await wait_for(lambda: gateway.client_ids == [], what="the gateway sees the disconnect")
    gateway.set_price(AAPL, 190.0)
    (ex,) = gateway.engine.executions()

    again = await sim.connect(gateway, 1)
    fills = again.fills()
    assert [f.execution.execId for f in fills] == [ex.exec_id]
    assert fills[0].execution.orderRef == "away"
    assert fills[0].commissionReport.commission == 1.0
    (done,) = [t for t in again.trades() if t.order.permId == trade.order.permId]
    assert done.orderStatus.status == "Filled"
    assert [p.position for p in again.positions()] == [10]
    filtered = await again.reqExecutionsAsync(ExecutionFilter(symbol="MSFT"))
    assert filtered == []
