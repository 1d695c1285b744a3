"""TradeManager against the simulated gateway through the real ib_async client."""

from __future__ import annotations

import pytest

from core.contracts import create_stock_contract
from core.orders import create_limit_order, create_market_order
from core.strategies import Strategy, StrategyPermissions
from core.trading import OrderRefused
from helpers import wait_for

pytestmark = pytest.mark.asyncio


def kinds(messages, strategy):
    return [m["type"] for m in messages if m["strategy"] == strategy]


async def test_seed_example_queues_order_then_fill(core):
    trade_manager = core.trades
    # A strategy qualifies its contract first: orders are checked on IB's details.
    contract = await trade_manager.qualify(create_stock_contract("AAPL", "SMART", "USD"))
    order = create_market_order("BUY", 100)

    trade = trade_manager.place_order(contract, order, "MyStrategy")

    await wait_for(lambda: "fill" in kinds(core.messages, "MyStrategy"), what="the fill message")
    seen = kinds(core.messages, "MyStrategy")
    assert seen[0] == "order"
    assert seen.index("fill") > 0
    fill_msg = next(m for m in core.messages if m["type"] == "fill")
    assert fill_msg["trade"] is trade
    assert fill_msg["fill"].execution.orderRef == "MyStrategy"
    await wait_for(lambda: trade.orderStatus.status == "Filled", what="Filled")
    assert trade.order.orderRef == "MyStrategy"


async def test_place_order_with_bad_fields_then_refused_with_every_reason(core):
    contract = create_stock_contract("AAPL", "SMART", "USD")
    order = create_market_order("BUY", 1)
    order.action = "HOLD"
    order.totalQuantity = -5

    with pytest.raises(OrderRefused) as err:
        core.trades.place_order(contract, order, "MyStrategy")

    assert len(err.value.reasons) >= 2
    text = " ".join(err.value.reasons).lower()
    assert "action" in text and "quantity" in text
    assert core.gateway.engine.open_orders() == []
    assert core.messages[-1]["type"] == "error"
    assert any("refused" in r.result for r in core.trades.audit.records)


async def test_strategy_permissions_block_order_before_it_reaches_gateway(core):
    core.strategies.register(Strategy("aapl_only", StrategyPermissions(frozenset({"AAPL"}))))

    with pytest.raises(OrderRefused, match="MSFT is not among the allowed symbols"):
        core.trades.place_order(
            create_stock_contract("MSFT"), create_market_order("BUY", 10), "aapl_only"
        )

    assert core.gateway.engine.open_orders() == []


async def test_modify_then_cancel_limit_order(core, ib_log_guard):
    ib_log_guard.expect(r"Error 202, reqId \d+: Order Canceled")
    gw = core.gateway
    aapl = gw.universe.find(symbol="AAPL")[0]
    gw.freeze_market_data(True)
    far = round(gw.market.quote(aapl.con_id).bid * 0.8, 2)
    trade = core.trades.place_order(
        await core.trades.qualify(create_stock_contract("AAPL")),
        create_limit_order("BUY", 10, far),
        "mm",
    )
    await wait_for(lambda: trade.orderStatus.status == "Submitted", what="Submitted")

    new = create_limit_order("BUY", 20, round(far - 1, 2))
    core.trades.modify_order(trade, new)
    await wait_for(
        lambda: gw.engine.open_orders()[0].request.total_quantity == 20, what="modified at gateway"
    )
    assert gw.engine.open_orders()[0].request.lmt_price == pytest.approx(far - 1)

    core.trades.cancel_order(trade)
    await wait_for(lambda: trade.orderStatus.status == "Cancelled", what="Cancelled")
    await wait_for(lambda: "cancel" in kinds(core.messages, "mm"), what="cancel message")
    assert gw.engine.open_orders() == []


async def test_cancel_all_cancels_every_working_order(core, ib_log_guard):
    ib_log_guard.expect(r"Error 202, reqId \d+: Order Canceled")
    gw = core.gateway
    gw.freeze_market_data(True)
    trades = []
    for sym in ("AAPL", "MSFT", "NVDA"):
        inst = gw.universe.find(symbol=sym)[0]
        px = round(gw.market.quote(inst.con_id).bid * 0.9, 2)
        trades.append(
            core.trades.place_order(
                await core.trades.qualify(create_stock_contract(sym)),
                create_limit_order("BUY", 5, px),
                "s",
            )
        )
    await wait_for(lambda: len(gw.engine.open_orders()) == 3, what="3 working orders")

    n = core.trades.cancel_all()

    assert n == 3
    await wait_for(lambda: gw.engine.open_orders() == [], what="no working orders")
    await wait_for(lambda: all(t.orderStatus.status == "Cancelled" for t in trades))


async def test_ib_rejection_reaches_strategy_with_code(core, ib_log_guard):
    ib_log_guard.expect(r"Error 201|Canceled order")
    core.gateway.reject_next_order(201, "Order rejected - reason: test rejection")
    rejections = []
    core.trades.orderRejected += rejections.append

    aapl = await core.trades.qualify(create_stock_contract("AAPL"))
    core.trades.place_order(aapl, create_market_order("BUY", 1), "s")

    await wait_for(lambda: any(m.get("code") == 201 for m in core.messages), what="error 201")
    assert rejections and rejections[0].code == 201
    assert "test rejection" in rejections[0].message


async def test_orders_of_other_clients_are_seen_as_external(core, gateway):
    from ib_async import IB, LimitOrder, Stock

    other = IB()
    await other.connectAsync("127.0.0.1", gateway.port, clientId=7, timeout=5)
    try:
        gateway.freeze_market_data(True)
        aapl = Stock("AAPL", "SMART", "USD")
        await other.qualifyContractsAsync(aapl)
        trade = other.placeOrder(aapl, LimitOrder("BUY", 5, 100.0))
        await wait_for(lambda: trade.orderStatus.status == "Submitted", what="other's order")
        updates = []
        core.trades.orderUpdated += updates.append

        await core.trades.resync()

        seen = [u for u in updates if u.perm_id == trade.order.permId]
        assert seen and seen[-1].strategy == "external"
        assert seen[-1].client_id == 7 and seen[-1].is_working
    finally:
        other.disconnect()
