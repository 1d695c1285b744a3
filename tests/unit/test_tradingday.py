"""The trading day: its boundary, and portfolio and risk rolling over on one clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from eventkit import Event
from ib_async import Contract, Order

from core.events import MANUAL, FillRecorded, PnLChanged, TradingState
from core.portfolio import PortfolioManager
from core.risk import ACCOUNT, RiskLimits, RiskManager
from core.store import Store
from core.trading import OrderIntent
from core.tradingday import (
    MAX_SLEEP_S,
    TradingDay,
    TradingDayStarted,
    trading_day_of,
    trading_day_start,
)
from helpers import Timers

NY = "America/New_York"
AAPL = 265598


class Clock:
    """An injected wall clock the test moves."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def test_day_start_when_before_the_start_time_then_previous_local_day():
    # 16:59 New York belongs to the day that began at 17:00 the evening before
    when = datetime(2025, 3, 4, 21, 59, tzinfo=UTC)  # 16:59 EST
    assert trading_day_start(when, NY, time(17)) == datetime(2025, 3, 3, 22, 0, tzinfo=UTC)
    assert trading_day_of(when, NY, time(17)) == date(2025, 3, 3)
    assert trading_day_of(when + timedelta(minutes=1), NY, time(17)) == date(2025, 3, 4)


def test_next_start_when_dst_begins_then_midnight_new_york_is_an_hour_earlier_utc():
    day = TradingDay(NY, now=Clock(datetime(2025, 3, 8, 12, 0, tzinfo=UTC)))  # Saturday
    assert day.start == datetime(2025, 3, 8, 5, 0, tzinfo=UTC)  # EST midnight
    assert day.next_start() == datetime(2025, 3, 9, 5, 0, tzinfo=UTC)
    day.check(datetime(2025, 3, 9, 5, 0, tzinfo=UTC))
    assert day.next_start() == datetime(2025, 3, 10, 4, 0, tzinfo=UTC)  # EDT midnight


def test_check_when_boundary_crossed_then_one_event_and_earlier_times_ignored():
    clock = Clock(datetime(2025, 3, 4, 4, 59, 59, tzinfo=UTC))  # 23:59:59 New York
    day = TradingDay(NY, now=clock)
    started: list[TradingDayStarted] = []
    day.dayStarted += started.append

    assert day.check() is None
    clock.advance(seconds=2)
    event = day.check()
    day.check()
    day.check(datetime(2025, 3, 4, 4, 0, tzinfo=UTC))  # a replayed fill from yesterday

    assert started == [event]
    assert event is not None
    assert (event.previous, event.day) == (date(2025, 3, 3), date(2025, 3, 4))
    assert event.start == datetime(2025, 3, 4, 5, 0, tzinfo=UTC)
    assert day.day == date(2025, 3, 4)


def test_run_when_the_clock_reaches_the_boundary_then_the_timer_rolls_over_and_rearms():
    clock = Clock(datetime(2025, 3, 5, 4, 59, 59, 800_000, tzinfo=UTC))  # 0.2 s to midnight NY
    timers = Timers()
    day = TradingDay(NY, now=clock, call_later=timers)
    started: list[TradingDayStarted] = []
    day.dayStarted += started.append

    day.run()
    day.run()  # idempotent: one timer
    assert timers.delays == [pytest.approx(0.2)]  # armed for the boundary
    clock.advance(seconds=0.2)
    timers.fire()

    assert [e.day for e in started] == [date(2025, 3, 5)]
    assert day.day == date(2025, 3, 5)
    assert timers.delays == [MAX_SLEEP_S]  # re-armed: the next boundary is a day away
    clock.advance(seconds=MAX_SLEEP_S)
    timers.fire()  # a look at the clock, no boundary
    assert len(started) == 1
    day.stop()
    assert timers.delays == []


def intent(action: str, qty: float) -> OrderIntent:
    contract = Contract(secType="STK", symbol="AAPL", exchange="SMART", currency="USD")
    contract.conId = AAPL
    return OrderIntent(MANUAL, MANUAL, contract, Order(action=action, totalQuantity=qty))


def test_risk_when_day_rolls_then_daily_loss_reset_reducing_lifted_halted_kept():
    clock = Clock(datetime(2025, 3, 4, 20, 0, tzinfo=UTC))
    day = TradingDay(NY, now=clock)
    risk = RiskManager(RiskLimits(daily_loss_limit=5000), now=clock, trading_day=day)
    halted = RiskManager(RiskLimits(daily_loss_limit=5000), now=clock, trading_day=day)
    for r in (risk, halted):
        r.on_quote(AAPL, bid=99.99, ask=100.01, last=100.0, symbol="AAPL")
        r.on_pnl(PnLChanged(None, -5200.0, 0.0, -5200.0))
    halted.set_trading_state(ACCOUNT, TradingState.HALTED, "trader's halt", "gui")
    assert risk.state_of() is TradingState.REDUCING
    assert not risk.check(intent("BUY", 1)).approved

    clock.advance(hours=9)  # 00:00 New York passed
    day.check()

    assert risk.state_of() is TradingState.ACTIVE
    assert "new trading day 2025-03-05" in (risk.reason_of(ACCOUNT) or "")
    assert risk.check(intent("BUY", 1)).approved
    risk.on_pnl(PnLChanged(None, -100.0, 0.0, -100.0))  # the new day's loss counts alone
    assert risk.check(intent("BUY", 1)).approved
    assert halted.state_of() is TradingState.HALTED


class FakeIB:
    def __init__(self) -> None:
        self.pendingTickersEvent = Event("pendingTickersEvent")

    def positions(self, account: str = "") -> list[object]:
        return []

    def accountValues(self, account: str = "") -> list[object]:
        return []

    def pnl(self, account: str = "", modelCode: str = "") -> list[object]:
        return []


def fill(exec_id: str, qty: float, price: float, at: datetime) -> FillRecorded:
    return FillRecorded(
        exec_id=exec_id,
        order_id=1,
        perm_id=1,
        client_id=1,
        strategy="alpha",
        account="DU1",
        con_id=AAPL,
        symbol="AAPL",
        sec_type="STK",
        currency="USD",
        exchange="SMART",
        side="BOT",
        quantity=qty,
        price=price,
        multiplier=1.0,
        commission=1.0,
        realized_pnl=None,
        order_ref="alpha",
        time=at,
    )


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    from arcticdb.config import set_config_int

    set_config_int("StorageLock.WaitMs", 10)
    async with Store(f"lmdb://{tmp_path / 'arctic'}", flush_seconds=60) as s:
        yield s


@pytest.mark.asyncio
async def test_portfolio_when_day_rolls_then_summary_saved_and_day_figures_restart(
    store: Store,
):
    clock = Clock(datetime(2025, 3, 4, 20, 0, tzinfo=UTC))  # 15:00 New York
    day = TradingDay(NY, now=clock)
    pm = PortfolioManager(FakeIB(), store, account="DU1", trading_day=day)  # type: ignore[arg-type]
    pm.on_fill(fill("e1", 10, 100.0, clock()))
    pm.mark(AAPL, 104.0)
    (pos,) = pm.book
    assert (pos.day_fills, pos.daily_pnl) == (1, pytest.approx(39.0))

    clock.advance(hours=9)  # 00:00 New York passed: the timer (or any mark) notices
    pm.mark(AAPL, 105.0)
    await asyncio.gather(*pm._tasks)

    (pos,) = pm.book
    assert pos.day_fills == 0
    assert pos.daily_pnl == pytest.approx(10.0)  # 105 against yesterday's last mark 104
    assert pos.quantity == 10
    summary = await store.daily(date(2025, 3, 4), date(2025, 3, 4))
    alpha = summary[summary["strategy"] == "alpha"]
    assert len(alpha) == 1
    assert alpha["fills"].iloc[0] == 1
    assert alpha["daily"].iloc[0] == pytest.approx(39.0)
    pm.close()
