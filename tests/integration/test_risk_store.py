"""The trading state survives a restart in the real ArcticDB store (LMDB on disk)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.events import TradingState, TradingStateChanged
from core.risk import ACCOUNT, RiskManager
from core.session import ConsoleSession, SessionOptions
from core.store import Store

pytestmark = pytest.mark.asyncio


async def test_halted_state_restored_from_arcticdb_after_restart(tmp_path: Path):
    uri = f"lmdb://{tmp_path / 'store'}"
    async with Store(uri) as store:
        risk = RiskManager(store=store)
        risk.set_trading_state(ACCOUNT, TradingState.HALTED, "emergency stop: test", "gui")
        risk.set_trading_state("momo", TradingState.REDUCING, "drawdown", "risk")
        await risk.flush_state()

    async with Store(uri) as store:
        restarted = RiskManager(store=store)
        await restarted.restore()

        assert restarted.state_of() is TradingState.HALTED
        assert restarted.reason_of() == "emergency stop: test"
        assert restarted.state_of("momo") is TradingState.REDUCING

        restarted.reset_halt("gui", "RESUME")
        await restarted.flush_state()

    async with Store(uri) as store:
        again = RiskManager(store=store)
        await again.restore()
        assert again.state_of() is TradingState.ACTIVE


async def test_restart_restores_the_trading_state_with_its_actor_and_time(tmp_path: Path):
    """Issue 11 point 8: the HALTED banner came back "by risk" at the restart time."""
    uri = f"lmdb://{tmp_path / 'store'}"
    halted_at = datetime(2026, 11, 25, 18, 14, 0, tzinfo=UTC)
    async with Store(uri) as store:
        risk = RiskManager(store=store, now=lambda: halted_at)
        risk.set_trading_state(ACCOUNT, TradingState.HALTED, "emergency stop: button", "gui")
        await risk.flush_state()

    restarted_at = datetime(2026, 11, 25, 18, 20, 0, tzinfo=UTC)
    async with Store(uri) as store:
        restarted = RiskManager(store=store, now=lambda: restarted_at)
        seen: list[TradingStateChanged] = []
        restarted.tradingStateChanged += seen.append
        await restarted.restore()

    assert [(e.state, e.changed_by, e.time) for e in seen] == [
        (TradingState.HALTED, "gui", halted_at)
    ]
    (now,) = restarted.state_events()
    assert (now.state, now.reason, now.changed_by, now.time) == (
        TradingState.HALTED,
        "emergency stop: button",
        "gui",
        halted_at,
    )


async def test_restarted_session_reports_halted_by_whom_and_since_when(tmp_path: Path):
    """A new session on the same store shows the HALTED of the last one as recorded."""
    uri = f"lmdb://{tmp_path / 'store'}"
    options = SessionOptions(sim_tick_interval=0.05)
    first = await ConsoleSession.prepare(options, store_uri=uri)
    try:
        first.risk.set_trading_state(ACCOUNT, TradingState.HALTED, "emergency stop: button", "gui")
        (before,) = [e for e in first.trading_state_events() if e.scope == ACCOUNT]
        await first.risk.flush_state()
    finally:
        await first.stop()

    second = await ConsoleSession.prepare(options, store_uri=uri)
    try:
        (after,) = [e for e in second.trading_state_events() if e.scope == ACCOUNT]
    finally:
        await second.stop()

    assert (after.state, after.reason, after.changed_by, after.time) == (
        TradingState.HALTED,
        "emergency stop: button",
        "gui",
        before.time,
    )
