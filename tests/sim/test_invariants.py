"""Random order sequences through ib_async; the books must always balance.

Invariants checked after every sequence: position = signed sum of fills (as the client
saw them, and as the gateway holds it); cash moved by exactly the fills and their
commissions; no order filled beyond its quantity; nothing filled after its cancellation
was confirmed to the client.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ib_async import IB, LimitOrder, MarketOrder, Stock, Trade

from core.sim import SimGateway
from helpers import settle

AAPL = 265598
CASH = 1_000_000.0

ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("place"),
            st.sampled_from(["BUY", "SELL"]),
            st.integers(1, 400),
            st.sampled_from(["MKT", "LMT"]),
            st.integers(-20, 20),  # limit offset from the last price, in cents
        ),
        st.tuples(st.just("cancel"), st.integers(0, 20)),
        st.tuples(st.just("step"), st.integers(1, 5)),
        st.tuples(st.just("price"), st.integers(-50, 50)),
    ),
    min_size=1,
    max_size=12,
)


async def run_sequence(sequence: list[tuple[Any, ...]]) -> None:
    gw = SimGateway("127.0.0.1", 0, seed=7, tick_interval=0)
    await gw.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1, timeout=5)
        (contract,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        gw.set_price(AAPL, 200.0)
        trades: list[Trade] = []
        cancelled: set[int] = set()
        late_fills: list[int] = []

        def on_fill(trade: Trade, _fill: Any) -> None:
            if trade.order.orderId in cancelled:
                late_fills.append(trade.order.orderId)

        def on_cancelled(trade: Trade) -> None:
            # Confirmed by the gateway's orderStatus, not just requested.
            if trade.orderStatus.status == "Cancelled" and not trade.log[-1].errorCode:
                cancelled.add(trade.order.orderId)

        for op in sequence:
            kind = op[0]
            if kind == "place":
                _, side, qty, order_type, offset = op
                last = gw.market.quote(AAPL).last
                if order_type == "MKT":
                    order = MarketOrder(side, qty)
                else:
                    order = LimitOrder(side, qty, round(last + offset / 100, 2))
                trade = ib.placeOrder(contract, order)
                trade.fillEvent += on_fill
                trade.cancelledEvent += on_cancelled
                trades.append(trade)
            elif kind == "cancel" and trades:
                trade = trades[op[1] % len(trades)]
                if not trade.isDone():
                    ib.cancelOrder(trade.order)
            elif kind == "step":
                gw.step_market(op[1])
            elif kind == "price":
                gw.set_price(AAPL, gw.market.quote(AAPL).last + op[1] / 100)
            await asyncio.sleep(0.002)
        await settle(ib)

        fills = ib.fills()
        signed = sum(f.execution.shares * (1 if f.execution.side == "BOT" else -1) for f in fills)
        positions = {p.contract.conId: p.position for p in ib.positions()}
        assert positions.get(AAPL, 0.0) == pytest.approx(signed)
        assert gw.engine.position("DU0000001", AAPL).quantity == pytest.approx(signed)
        flow = sum(
            -f.execution.shares * f.execution.price * (1 if f.execution.side == "BOT" else -1)
            for f in fills
        )
        commissions = sum(f.commissionReport.commission for f in fills)
        (cash,) = [
            float(v.value)
            for v in ib.accountValues()
            if v.tag == "TotalCashValue" and v.currency == "USD" and not v.modelCode
        ]
        assert cash == pytest.approx(CASH + flow - commissions, abs=0.01)
        for trade in trades:
            filled = sum(f.execution.shares for f in trade.fills)
            assert filled <= trade.order.totalQuantity
            assert trade.orderStatus.filled == pytest.approx(filled) or not trade.fills
        assert late_fills == []
    finally:
        ib.disconnect()
        await gw.stop()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=ops)
def test_random_order_sequences_keep_books_balanced(sequence, ib_log_guard):
    # Cancels race fills: IB answers 202 (cancelled) or 161/10147 (nothing left to cancel).
    ib_log_guard.expect(r"Error (202|161|10147)")
    ib_log_guard.expect("Canceled order")
    asyncio.run(run_sequence(sequence))
