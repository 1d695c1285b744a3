"""The trading state survives a restart in the real ArcticDB store (LMDB on disk)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.events import TradingState
from core.risk import ACCOUNT, RiskManager
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
