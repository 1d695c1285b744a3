"""Fills and position snapshots for the store's tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.events import FillRecorded, PositionChanged

T0 = datetime(2024, 5, 1, 13, 30, tzinfo=UTC)


def make_fill(
    i: int,
    *,
    time: datetime | None = None,
    strategy: str = "alpha",
    commission: float | None = 1.0,
    side: str = "BOT",
) -> FillRecorded:
    return FillRecorded(
        exec_id=f"0000e1a2.{i:08d}.01.01",
        order_id=i,
        perm_id=1000 + i,
        client_id=1,
        strategy=strategy,
        account="DU0000001",
        con_id=265598,
        symbol="AAPL",
        sec_type="STK",
        currency="USD",
        exchange="SMART",
        side=side,
        quantity=100.0,
        price=190.0 + i / 100,
        multiplier=1.0,
        commission=commission,
        realized_pnl=None,
        order_ref=strategy,
        time=time or T0 + timedelta(seconds=i),
    )


def make_position(strategy: str, con_id: int, qty: float, time: datetime) -> PositionChanged:
    return PositionChanged(
        strategy=strategy,
        account="DU0000001",
        con_id=con_id,
        symbol=f"C{con_id}",
        sec_type="STK",
        currency="USD",
        multiplier=1.0,
        quantity=qty,
        avg_cost=10.0,
        last=None,
        market_value=None,
        unrealized_pnl=None,
        realized_pnl=0.0,
        daily_pnl=None,
        commissions=0.0,
        time=time,
    )
