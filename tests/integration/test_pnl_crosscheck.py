"""The console's P&L agrees with IB's own account P&L (reqPnL) from the gateway."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.contracts import create_stock_contract
from core.orders import create_market_order
from core.session import ConsoleSession, SessionOptions
from helpers import wait_for

pytestmark = pytest.mark.asyncio


async def test_calculate_pnl_matches_gateway_reqpnl_within_tolerance(tmp_path: Path):
    session = await ConsoleSession.start(
        SessionOptions(sim_state_file=tmp_path / "sim.json", sim_tick_interval=0.05),
        store_uri=f"lmdb://{tmp_path / 'arctic'}",
    )
    try:
        assert session.gateway is not None
        for sym, side, qty in (("AAPL", "BUY", 200), ("MSFT", "SELL", 100), ("AAPL", "SELL", 50)):
            info = await session.order_entry.instrument(sym)  # type: ignore[union-attr]
            await session.order_entry.wait_quote(info)  # type: ignore[union-attr]
            session.trades.place_order(
                create_stock_contract(sym), create_market_order(side, qty), "s"
            )
        await wait_for(
            lambda: sum(abs(p.quantity) for p in session.gateway.engine.positions()) == 250,
            what="fills at the gateway",
        )
        await session.trades.wait_journalled()
        # Freeze the market so both sides value the book at the same marks.
        session.gateway.freeze_market_data(True)
        await wait_for(
            lambda: session.portfolio.calculate_pnl().ib is not None, timeout=10, what="IB's P&L"
        )

        def agrees() -> bool:
            report = session.portfolio.calculate_pnl()
            return bool(report.within_tolerance)

        await wait_for(agrees, timeout=10, what="console P&L within tolerance of IB's")
        report = session.portfolio.calculate_pnl()
        assert report.ib is not None and report.tolerance is not None
        assert abs(report.account.realized - report.ib.realized) <= report.tolerance
        assert sum(f.total for f in report.strategies.values()) == pytest.approx(
            report.account.total, abs=0.01
        )
    finally:
        await session.stop()
