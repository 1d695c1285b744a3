"""IB's nightly reset, played by the simulated gateway, ridden through by the console;
and the trading day rolling over in place, also while the gateway restarts.

Each test runs a real :class:`core.session.ConsoleSession` (embedded simulated gateway,
real ib_async client, ArcticDB on LMDB in ``tmp_path``) and has the gateway play its
nightly restart (:meth:`core.sim.SimGateway.nightly_reset`): every connection dropped,
connections refused, then logged out of IB (1100) before 1102 / 1101. The console must
come back by itself with its orders, fills, market data and trading state intact.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from ib_async import Contract, Trade

from core.connection import ConnectionState, ReconnectPolicy
from core.contracts import create_stock_contract
from core.events import FillRecorded, SessionResynchronised, TradingState
from core.marketdata import Quote
from core.orders import create_limit_order, create_market_order
from core.session import ConsoleSession, SessionOptions
from core.trading import OrderRefused
from core.tradingday import TradingDayStarted
from helpers import RunningClock, clock_from, wait_for

pytestmark = pytest.mark.asyncio

#: Backoff for loopback: the reset below refuses connections for a fraction of a second.
FAST = ReconnectPolicy(initial_delay=0.1, max_delay=0.5, jitter=0.05)


@pytest.fixture(autouse=True)
def fast_storage_lock() -> None:
    """New libraries: ArcticDB's symbol-list lock would wait 1 s for a contender."""
    from arcticdb.config import set_config_int

    set_config_int("StorageLock.WaitMs", 10)


@pytest.fixture(autouse=True)
def expected_ib_logs(ib_log_guard) -> None:
    ib_log_guard.expect(
        r"Peer closed connection|Connection reset by peer|API connection failed"
        r"|Make sure API port|Error 110[012]"
    )


@pytest_asyncio.fixture
async def session(tmp_path: Path) -> AsyncIterator[ConsoleSession]:
    options = SessionOptions(
        sim_state_file=tmp_path / "sim" / "state.json",
        sim_tick_interval=0,  # prices move only when the test says
        reconnect_policy=FAST,
    )
    s = await ConsoleSession.start(options, store_uri=f"lmdb://{tmp_path / 'arctic'}")
    try:
        yield s
    finally:
        await s.stop()


async def aapl(session: ConsoleSession) -> Contract:
    return await session.contracts.qualify(create_stock_contract("AAPL"))


async def buy_now(session: ConsoleSession, contract: Contract, qty: float) -> Trade:
    t = session.trades.place_order(contract, create_market_order("BUY", qty), "swing")
    await wait_for(lambda: t.orderStatus.status == "Filled", what=f"BUY {qty} filled")
    return t


async def ridden_through(session: ConsoleSession, events: list[SessionResynchronised]) -> None:
    """Wait until the console is back: resynchronised and the link to IB restored."""
    await wait_for(lambda: events, timeout=15, what="the resynchronisation after the reset")
    await wait_for(
        lambda: (
            session.connection is not None and session.connection.state is ConnectionState.CONNECTED
        ),
        timeout=10,
        what="1102/1101: connected to IB again",
    )


@pytest.mark.parametrize("data_lost", [False, True], ids=["1102", "1101"])
async def test_nightly_reset_with_orders_working_then_fills_once_and_data_flowing(
    session: ConsoleSession, data_lost: bool
):
    gw, trades, market, store = session.gateway, session.trades, session.market, session.store
    assert gw is not None and trades is not None and market is not None and store is not None
    contract = await aapl(session)
    market.subscribe(contract)
    quotes: list[Quote] = []
    market.quotesUpdated += quotes.extend
    gw.set_price("AAPL", 200.0)
    await wait_for(lambda: any(q.last == 200.0 for q in quotes), what="AAPL quoted")
    fills: list[FillRecorded] = []
    trades.fillReceived += fills.append
    resyncs: list[SessionResynchronised] = []
    session.resynchronised += resyncs.append
    states: list[ConnectionState] = []
    session.connection.statusChanged += lambda s: states.append(s.state)  # type: ignore[union-attr]
    await buy_now(session, contract, 10)  # a fill before the reset
    working = trades.place_order(contract, create_limit_order("BUY", 7, 195.0), "swing")
    resting = trades.place_order(contract, create_limit_order("BUY", 3, 150.0), "swing")
    await wait_for(
        lambda: working.orderStatus.status == resting.orderStatus.status == "Submitted",
        what="two orders working",
    )

    reset = gw.nightly_reset(down_for=0.3, relogin_for=0.5, data_lost=data_lost)
    await wait_for(lambda: not session.connection.is_connected, what="dropped")  # type: ignore[union-attr]
    gw.set_price("AAPL", 194.0)  # the exchange fills one while the console is away
    await reset
    await ridden_through(session, resyncs)
    await buy_now(session, contract, 5)  # a fill after the reset
    await trades.wait_journalled()

    # every fill journalled and published exactly once
    day = datetime.now(UTC) - timedelta(days=1)
    journal = await store.load_fills(day)
    assert sorted(f.quantity for f in journal) == [5, 7, 10]
    assert len({f.exec_id for f in journal}) == 3
    assert sorted(f.quantity for f in fills) == [5, 7, 10]
    # the order that rests is still working, known under its strategy
    open_ids = {t.order.permId: t for t in session.connection.ib.openTrades()}  # type: ignore[union-attr]
    assert resting.order.permId in open_ids
    assert trades.strategy_of(open_ids[resting.order.permId]) == "swing"
    # what happened is told once, as one event
    assert len(resyncs) == 1
    told = resyncs[0]
    assert told.executions_recovered == 1
    assert told.working_orders == 1
    assert told.subscriptions == 1
    # IB was still logged out when the orders were re-read: REDUCING until 1102/1101
    assert told.trading_state is TradingState.REDUCING
    assert session.risk.state_of() is TradingState.ACTIVE
    # the new session opened logged out of IB (1100), then IB came back
    after_drop = states[states.index(ConnectionState.DISCONNECTED) :]
    assert after_drop[-2:] == [ConnectionState.LINK_LOST, ConnectionState.CONNECTED]
    assert told.down_since is not None and told.down_since < told.time
    assert "1 execution" in told.describe()
    # market data flows again (after 1101 only because the console asked again)
    gw.set_price("AAPL", 201.5)
    await wait_for(lambda: any(q.last == 201.5 for q in quotes), what="AAPL quoted after")


async def test_nightly_reset_when_halted_then_still_halted_and_order_refused(
    session: ConsoleSession,
):
    gw, trades, risk = session.gateway, session.trades, session.risk
    assert gw is not None and trades is not None and risk is not None
    contract = await aapl(session)
    gw.set_price("AAPL", 200.0)
    resting = trades.place_order(contract, create_limit_order("BUY", 3, 150.0), "swing")
    await wait_for(lambda: resting.orderStatus.status == "Submitted", what="working")
    risk.set_trading_state("account", TradingState.HALTED, "trader's halt", "gui")
    resyncs: list[SessionResynchronised] = []
    session.resynchronised += resyncs.append

    await gw.nightly_reset(down_for=0.3, relogin_for=0.5)
    await ridden_through(session, resyncs)

    assert risk.state_of("account") is TradingState.HALTED
    assert resyncs[0].trading_state is TradingState.HALTED
    assert "HALTED" in resyncs[0].describe()
    with pytest.raises(OrderRefused, match="HALTED"):
        trades.place_order(contract, create_market_order("BUY", 1), "swing")


def boundary_ahead() -> tuple[datetime, RunningClock, SessionOptions]:
    """A trading day that ends an hour from now on a clock the test moves (the day's and
    the gateway's), and options using both."""
    clock = clock_from(datetime.now(UTC))
    boundary = (clock() + timedelta(hours=1)).replace(microsecond=0)
    return (
        boundary,
        clock,
        SessionOptions(
            sim_tick_interval=0,
            reconnect_policy=FAST,
            day_tz="UTC",
            day_start=boundary.time(),
            clock=clock,
        ),
    )


async def test_day_boundary_during_a_gateway_restart_then_one_rollover_in_place(tmp_path: Path):
    boundary, clock, options = boundary_ahead()
    options = dataclasses.replace(options, sim_state_file=tmp_path / "sim" / "state.json")
    session = await ConsoleSession.start(options, store_uri=f"lmdb://{tmp_path / 'arctic'}")
    try:
        gw, trades, store, portfolio = (
            session.gateway,
            session.trades,
            session.store,
            session.portfolio,
        )
        assert gw is not None and trades is not None and store is not None
        assert portfolio is not None
        days: list[TradingDayStarted] = []
        session.trading_day.dayStarted += days.append
        resyncs: list[SessionResynchronised] = []
        session.resynchronised += resyncs.append
        contract = await aapl(session)
        gw.set_price("AAPL", 200.0)
        await buy_now(session, contract, 10)
        await trades.wait_journalled()
        previous_day = session.trading_day.day

        # TWS restarts across the boundary: while it is down the clock passes it, and the
        # day's timer looks at the clock (what its callback does; the timer itself:
        # tests/unit/test_tradingday.py).
        restart = gw.nightly_reset(down_for=0.3, relogin_for=0.3)
        await wait_for(lambda: not session.connection.ib.isConnected(), what="TWS down")
        clock.advance(seconds=(boundary - clock()).total_seconds() + 0.5)
        session.trading_day.check()
        await restart

        await ridden_through(session, resyncs)
        await buy_now(session, contract, 5)
        await trades.wait_journalled()
        await asyncio.gather(*portfolio._tasks)  # the ended day's summary is written

        assert [d.previous for d in days] == [previous_day]  # rolled over once, in place
        rolled = [r for r in session.audit.records if r.action == "new_trading_day"]
        assert len(rolled) == 1 and previous_day.isoformat() in rolled[0].subject
        assert days[0].start == boundary
        (pos,) = portfolio.book
        assert (pos.quantity, pos.day_fills) == (15, 1)  # yesterday's fill is history
        assert [f.quantity for f in await session.todays_fills()] == [5]
        journal = await store.load_fills(boundary - timedelta(days=1))
        assert sorted(f.quantity for f in journal) == [5, 10]
        summary = await store.daily()
        swing = summary[summary["strategy"] == "swing"]
        assert list(swing["fills"]) == [1]
        assert swing.index[0].date() == previous_day
    finally:
        await session.stop()
