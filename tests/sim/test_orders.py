"""Order lifecycles through ib_async: every order type, modify, cancel, errors, whatIf."""

from __future__ import annotations

import asyncio

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Order, Stock, StopLimitOrder, StopOrder, Trade

from core.sim import SimGateway
from helpers import wait_for

AAPL = 265598


async def aapl(ib: IB) -> Stock:
    (contract,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    return contract


async def drive_until(gateway: SimGateway, predicate, what: str, steps: int = 200) -> None:
    """Step the market (one quote update at a time) until ``predicate`` holds."""
    for _ in range(steps):
        if predicate():
            return
        gateway.step_market()
        await asyncio.sleep(0.002)
    await wait_for(predicate, timeout=2, what=what)


def statuses(trade: Trade) -> list[str]:
    return [entry.status for entry in trade.log]


@pytest.mark.asyncio
async def test_market_order_when_placed_then_filled_with_commission(ib, gateway):
    contract = await aapl(ib)
    gateway.market.set_quote(AAPL, bid=199.99, ask=200.01, bid_size=500, ask_size=500)
    trade = ib.placeOrder(contract, MarketOrder("BUY", 100, orderRef="stratégie/1"))
    await wait_for(trade.isDone, what="fill")
    assert trade.orderStatus.status == "Filled"
    assert trade.orderStatus.filled == 100
    assert trade.orderStatus.avgFillPrice == 200.01
    assert trade.order.permId > 0
    (fill,) = trade.fills
    assert fill.execution.side == "BOT"
    assert fill.execution.orderRef == "stratégie/1"
    await wait_for(lambda: fill.commissionReport.commission > 0, what="commission")
    assert fill.commissionReport.commission == 1.0  # 100 * 0.005 = 0.50, minimum 1.00
    assert fill.commissionReport.currency == "USD"
    assert trade.order.orderRef == "stratégie/1"


@pytest.mark.asyncio
async def test_limit_order_when_not_marketable_then_rests_until_price_crosses(ib, gateway, sim):
    contract = await aapl(ib)
    gateway.set_price(AAPL, 200.0)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 10, 195.0))
    await wait_for(lambda: trade.orderStatus.status == "Submitted", what="submitted")
    gateway.step_market(3)
    await sim.settle(ib)
    assert trade.orderStatus.status == "Submitted"
    gateway.set_price(AAPL, 194.0)
    await wait_for(trade.isDone, what="fill")
    assert trade.orderStatus.status == "Filled"
    assert trade.orderStatus.avgFillPrice <= 195.0


@pytest.mark.asyncio
async def test_stop_order_when_price_falls_through_then_triggers_and_fills(ib, gateway):
    contract = await aapl(ib)
    gateway.set_price(AAPL, 200.0)
    trade = ib.placeOrder(contract, StopOrder("SELL", 10, 190.0))
    await wait_for(lambda: trade.orderStatus.status == "PreSubmitted", what="waiting stop")
    gateway.set_price(AAPL, 189.0)
    await wait_for(trade.isDone, what="stop fill")
    assert trade.orderStatus.status == "Filled"
    assert trade.fills[0].execution.side == "SLD"


@pytest.mark.asyncio
async def test_stop_limit_when_triggered_then_rests_as_limit(ib, gateway):
    contract = await aapl(ib)
    gateway.set_price(AAPL, 200.0)
    trade = ib.placeOrder(contract, StopLimitOrder("BUY", 10, 206.0, 205.0))
    await wait_for(lambda: trade.orderStatus.status == "PreSubmitted", what="waiting stop")
    gateway.set_price(AAPL, 210.0)  # triggers, but ask 210.01 > limit 206
    await wait_for(lambda: trade.orderStatus.status == "Submitted", what="triggered")
    assert not trade.fills
    gateway.set_price(AAPL, 205.5)
    await wait_for(trade.isDone, what="limit fill")
    assert trade.orderStatus.avgFillPrice <= 206.0


@pytest.mark.asyncio
async def test_ioc_when_not_marketable_then_cancelled(ib, gateway, ib_log_guard):
    ib_log_guard.expect("Error 202")
    contract = await aapl(ib)
    gateway.set_price(AAPL, 200.0)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 10, 150.0, tif="IOC"))
    await wait_for(trade.isDone, what="IOC done")
    assert trade.orderStatus.status == "Cancelled"
    assert not trade.fills


@pytest.mark.asyncio
async def test_large_order_when_size_limited_then_partial_fills(ib, gateway):
    contract = await aapl(ib)
    gateway.market.set_quote(AAPL, bid=199.99, ask=200.01, bid_size=100, ask_size=100)
    trade = ib.placeOrder(contract, MarketOrder("BUY", 1000))
    await wait_for(lambda: bool(trade.fills), what="first fill")
    assert trade.orderStatus.filled < 1000
    assert trade.orderStatus.status == "Submitted"
    await drive_until(gateway, trade.isDone, "full fill")
    assert trade.orderStatus.status == "Filled"
    assert len(trade.fills) > 1
    assert sum(f.execution.shares for f in trade.fills) == 1000
    assert trade.fills[-1].execution.cumQty == 1000


@pytest.mark.asyncio
async def test_modify_when_same_order_id_then_price_changes(ib, gateway):
    contract = await aapl(ib)
    gateway.set_price(AAPL, 200.0)
    order = LimitOrder("BUY", 10, 190.0)
    trade = ib.placeOrder(contract, order)
    await wait_for(lambda: trade.orderStatus.status == "Submitted", what="submitted")
    order.lmtPrice = 201.0
    order.totalQuantity = 20
    ib.placeOrder(contract, order)
    await wait_for(trade.isDone, what="fill after modify")
    assert trade.orderStatus.filled == 20
    assert gateway.engine.order(1, order.orderId).request.lmt_price == 201.0


@pytest.mark.asyncio
async def test_cancel_when_working_then_cancelled(ib, gateway, sim, ib_log_guard):
    ib_log_guard.expect("Error 202")
    contract = await aapl(ib)
    gateway.set_price(AAPL, 200.0)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 10, 150.0))
    await wait_for(lambda: trade.orderStatus.status == "Submitted", what="submitted")
    ib.cancelOrder(trade.order)
    await wait_for(trade.isDone, what="cancelled")
    assert trade.orderStatus.status == "Cancelled"
    assert gateway.engine.open_orders() == []
    gateway.set_price(AAPL, 140.0)
    await sim.settle(ib)
    assert not trade.fills


@pytest.mark.asyncio
async def test_global_cancel_when_orders_of_two_clients_then_all_cancelled(
    ib, gateway, sim, ib_log_guard
):
    ib_log_guard.expect("Error 202")
    other = await sim.connect(gateway, 7)
    contract = await aapl(ib)
    gateway.set_price(AAPL, 200.0)
    mine = [ib.placeOrder(contract, LimitOrder("BUY", 10, p)) for p in (150.0, 151.0)]
    theirs = other.placeOrder(contract, LimitOrder("SELL", 5, 250.0))
    await wait_for(lambda: len(gateway.engine.open_orders()) == 3, what="three working")
    ib.reqGlobalCancel()
    await wait_for(lambda: all(t.isDone() for t in [*mine, theirs]), what="all cancelled")
    assert gateway.engine.open_orders() == []


@pytest.mark.asyncio
async def test_bracket_when_parent_fills_then_take_profit_fills_and_stop_cancelled(
    ib, gateway, ib_log_guard
):
    ib_log_guard.expect("Error 202")
    contract = await aapl(ib)
    gateway.set_price(AAPL, 200.0)
    bracket = ib.bracketOrder("BUY", 10, 199.0, 210.0, 190.0)
    parent, take, stop = (ib.placeOrder(contract, o) for o in bracket)
    await wait_for(lambda: parent.orderStatus.status == "Submitted", what="parent working")
    assert take.orderStatus.status == "PreSubmitted"
    gateway.set_price(AAPL, 198.0)
    await wait_for(parent.isDone, what="parent fill")
    await wait_for(lambda: take.orderStatus.status == "Submitted", what="children live")
    gateway.set_price(AAPL, 212.0)
    await wait_for(lambda: take.isDone() and stop.isDone(), what="bracket done")
    assert take.orderStatus.status == "Filled"
    assert stop.orderStatus.status == "Cancelled"


@pytest.mark.asyncio
async def test_invalid_orders_when_placed_then_ib_error_codes(ib, gateway, ib_log_guard):
    ib_log_guard.expect("Error (201|110|103)")
    ib_log_guard.expect("Canceled order")
    contract = await aapl(ib)
    gateway.set_price(AAPL, 200.0)
    errors: list[tuple[int, int]] = []
    ib.errorEvent += lambda req_id, code, msg, c: errors.append((req_id, code))

    off_tick = ib.placeOrder(contract, LimitOrder("BUY", 10, 190.001))
    await wait_for(off_tick.isDone, what="110")
    bad_account = ib.placeOrder(contract, LimitOrder("BUY", 10, 190.0, account="U999"))
    await wait_for(bad_account.isDone, what="201")

    filled = ib.placeOrder(contract, MarketOrder("BUY", 1))
    await drive_until(gateway, filled.isDone, "fill")
    cancelled = ib.placeOrder(contract, LimitOrder("BUY", 1, 150.0))
    await wait_for(lambda: cancelled.orderStatus.status == "Submitted", what="working")
    ib.cancelOrder(cancelled.order)
    await wait_for(cancelled.isDone, what="cancel")
    ib_log_guard.expect("Error 202")
    # Re-use a done order id (ib_async refuses to, so go below it).
    ib.client.placeOrder(cancelled.order.orderId, contract, LimitOrder("BUY", 1, 150.0))
    await wait_for(lambda: (cancelled.order.orderId, 103) in errors, what="103")
    assert (off_tick.order.orderId, 110) in errors
    assert (bad_account.order.orderId, 201) in errors
    assert off_tick.orderStatus.status == bad_account.orderStatus.status == "Cancelled"


@pytest.mark.asyncio
async def test_what_if_when_asked_then_margin_and_commission_not_executed(ib, gateway):
    contract = await aapl(ib)
    gateway.set_price(AAPL, 200.0)
    state = await asyncio.wait_for(ib.whatIfOrderAsync(contract, MarketOrder("BUY", 100)), 5)
    assert float(state.initMarginChange) > 0
    assert float(state.initMarginAfter) >= float(state.initMarginBefore)
    assert state.commission == 1.0
    assert state.commissionCurrency == "USD"
    assert gateway.engine.open_orders() == []
    assert gateway.engine.executions() == []
    assert ib.trades() == []


@pytest.mark.asyncio
async def test_client_zero_when_auto_bound_then_sees_other_clients_orders(ib, gateway, sim):
    master = await sim.connect(gateway, 0)
    observer = await sim.connect(gateway, 9)
    contract = await aapl(ib)
    gateway.set_price(AAPL, 200.0)
    trade = ib.placeOrder(contract, LimitOrder("BUY", 10, 150.0, orderRef="mine"))
    await wait_for(lambda: trade.orderStatus.status == "Submitted", what="working")
    await wait_for(lambda: len(master.openTrades()) == 1, what="client 0 sees it")
    seen = master.openTrades()[0]
    assert seen.order.orderRef == "mine"
    assert seen.order.clientId == 1
    assert observer.openTrades() == []
    every = await observer.reqAllOpenOrdersAsync()
    assert [t.order.permId for t in every] == [trade.order.permId]
    gateway.set_price(AAPL, 149.0)
    await wait_for(lambda: seen.orderStatus.status == "Filled", what="client 0 sees fill")
    await wait_for(lambda: len(master.fills()) == 1, what="client 0 fill")


@pytest.mark.asyncio
async def test_order_ref_when_unicode_then_round_trips_everywhere(ib, gateway, sim):
    contract = await aapl(ib)
    ref = "momentum/Ωμέγα ✓ 42"
    gateway.market.set_quote(AAPL, bid=199.99, ask=200.01, bid_size=500, ask_size=500)
    trade = ib.placeOrder(contract, MarketOrder("SELL", 5, orderRef=ref))
    await wait_for(trade.isDone, what="fill")
    assert trade.fills[0].execution.orderRef == ref
    ib.disconnect()
    again = await sim.connect(gateway, 1)
    (completed,) = await again.reqCompletedOrdersAsync(False)
    assert completed.order.orderRef == ref
    assert [f.execution.orderRef for f in again.fills()] == [ref]


@pytest.mark.asyncio
async def test_order_when_unknown_contract_then_error_200(ib, ib_log_guard):
    ib_log_guard.expect("Error 200")
    ib_log_guard.expect("Canceled order")
    trade = ib.placeOrder(
        Stock("NOSUCH", "SMART", "USD"), Order(action="BUY", totalQuantity=1, orderType="MKT")
    )
    await wait_for(trade.isDone, what="rejected")
    assert trade.orderStatus.status == "Cancelled"


@pytest.mark.asyncio
@pytest.mark.parametrize("version", [157, 170])
async def test_orders_when_older_server_version_then_same_lifecycle(sim, version, ib_log_guard):
    ib_log_guard.expect("Error 202")
    gw = await sim.gateway(server_version=version)
    ib = await sim.connect(gw, 4)
    contract = await aapl(ib)
    gw.market.set_quote(AAPL, bid=199.99, ask=200.01, bid_size=500, ask_size=500)
    filled = ib.placeOrder(contract, MarketOrder("BUY", 10, orderRef="v"))
    resting = ib.placeOrder(contract, LimitOrder("BUY", 10, 150.0))
    await wait_for(filled.isDone, what="fill")
    await wait_for(lambda: resting.orderStatus.status == "Submitted", what="resting")
    ib.cancelOrder(resting.order)
    await wait_for(resting.isDone, what="cancel")
    assert filled.fills[0].execution.orderRef == "v"
    state = await asyncio.wait_for(ib.whatIfOrderAsync(contract, MarketOrder("SELL", 10)), 5)
    assert state.commission == 1.0


@pytest.mark.asyncio
async def test_bad_orders_when_placed_then_the_codes_tws_documents(ib, gateway, sim, ib_log_guard):
    """434 zero size, 388 below the minimum size, 10006 missing parent, 105 a modify that
    changes the side; the connection stays up and the working order is untouched."""
    ib_log_guard.expect("Error (10006|388)|Canceled order|validation warning")
    contract = await aapl(ib)
    gateway.set_price(AAPL, 200.0)
    errors: dict[int, list[int]] = {}
    ib.errorEvent += lambda req_id, code, msg, c: errors.setdefault(req_id, []).append(code)

    zero = ib.placeOrder(contract, LimitOrder("BUY", 0, 190.0))
    small = ib.placeOrder(contract, LimitOrder("BUY", 0.5, 190.0))
    orphan = ib.placeOrder(contract, LimitOrder("BUY", 1, 190.0, parentId=999_999))
    working = ib.placeOrder(contract, LimitOrder("BUY", 1, 190.0))
    await wait_for(lambda: working.orderStatus.status == "Submitted", what="working")
    working.order.action = "SELL"
    ib.placeOrder(contract, working.order)
    await sim.settle(ib)

    assert errors == {
        zero.order.orderId: [434],
        small.order.orderId: [388],
        orphan.order.orderId: [10006],
        working.order.orderId: [105],
    }
    assert orphan.orderStatus.status == "Cancelled"
    live = gateway.engine.order(1, working.order.orderId)
    assert live is not None and live.request.action == "BUY" and str(live.state) == "Submitted"
    for bad in (zero, small, orphan):
        assert gateway.engine.order(1, bad.order.orderId) is None
    assert ib.isConnected()


@pytest.mark.asyncio
async def test_futures_and_forex_when_traded_then_filled_with_their_rates(ib, gateway):
    from ib_async import Forex, Future

    front = gateway.universe.find(symbol="ES")[0].last_trade_date
    (es,) = await ib.qualifyContractsAsync(Future("ES", front, "CME"))
    (eur,) = await ib.qualifyContractsAsync(Forex("EURUSD"))
    es_trade = ib.placeOrder(es, MarketOrder("BUY", 1))
    fx_trade = ib.placeOrder(eur, MarketOrder("SELL", 20_000))
    await drive_until(gateway, lambda: es_trade.isDone() and fx_trade.isDone(), "fills")
    await wait_for(
        lambda: all(f.commissionReport.commission > 0 for f in [*es_trade.fills, *fx_trade.fills]),
        what="commissions",
    )
    assert sum(f.commissionReport.commission for f in es_trade.fills) == pytest.approx(2.25)
    assert sum(f.commissionReport.commission for f in fx_trade.fills) == pytest.approx(2.0)
    await wait_for(lambda: len(ib.positions()) == 2, what="positions")
    by_type = {p.contract.secType: p for p in ib.positions()}
    assert by_type["FUT"].position == 1 and by_type["FUT"].contract.multiplier == "50"
    assert by_type["CASH"].position == -20_000
