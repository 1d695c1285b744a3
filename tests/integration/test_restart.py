"""Stop the console and start it again: positions and P&L come back from ArcticDB.

Each test runs real :class:`core.session.ConsoleSession`s (embedded simulated gateway
with a state file, real ib_async client, ArcticDB on LMDB in ``tmp_path``), stopped and
started as the app does, on the same state file and store.

Breaks: the simulated gateway, like TWS for a client that asks for every client's
executions, replays the day's executions on connect, so a fill made by another client
while the console was down is *seen* on the next start and journalled under
``external``: no break. A break is a position change IB does not replay: a fill from an
earlier day, a transfer. The break test makes one by trading with another client and
then removing that execution from the gateway's state file (as if it had happened on an
earlier trading day), keeping the position it made.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from ib_async import IB, Contract, Trade

from core.contracts import create_forex_contract, create_stock_contract
from core.events import EXTERNAL, OrderUpdated, ReconciliationBreakFound
from core.orders import create_limit_order, create_market_order
from core.portfolio import PositionBook
from core.session import ConsoleSession, SessionOptions
from core.sim import SimGateway
from helpers import wait_for

pytestmark = pytest.mark.asyncio

AAPL, MSFT, NVDA = 265598, 272093, 4815747


@pytest.fixture(autouse=True)
def fast_storage_lock() -> None:
    """New libraries: ArcticDB's symbol-list lock would wait 1 s for a contender."""
    from arcticdb.config import set_config_int

    set_config_int("StorageLock.WaitMs", 10)


class Console:
    """Starts and stops sessions on one state file and one store, as restarts of the app."""

    def __init__(self, tmp_path: Path) -> None:
        self.state_file = tmp_path / "sim" / "state.json"
        self.store_uri = f"lmdb://{tmp_path / 'arctic'}"
        self.session: ConsoleSession | None = None
        #: What each reconciliation of the running session returned, in order.
        self.reconciliations: list[list[ReconciliationBreakFound]] = []

    async def start(self) -> ConsoleSession:
        options = SessionOptions(sim_state_file=self.state_file, sim_tick_interval=0.05)
        self.reconciliations = []
        session = await ConsoleSession.start(options, store_uri=self.store_uri)
        portfolio = session.portfolio
        assert portfolio is not None
        # The session reconciles after the connect's resync and a 0.5 s settle; record
        # what that (and every later) reconciliation finds.
        match = portfolio.reconciliation.report

        def recorded() -> list[ReconciliationBreakFound]:
            breaks = match()
            self.reconciliations.append(breaks)
            return breaks

        portfolio.reconciliation.report = recorded  # type: ignore[method-assign]
        self.session = session
        return session

    async def reconciled_at_start(self) -> list[ReconciliationBreakFound]:
        """The breaks the session's own reconciliation after connect reported."""
        await wait_for(lambda: self.reconciliations, what="the reconciliation after connect")
        return self.reconciliations[0]

    async def stop(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            await session.stop()


@pytest_asyncio.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    c = Console(tmp_path)
    try:
        yield c
    finally:
        await c.stop()


async def trade(session: ConsoleSession, symbol: str, action: str, qty: float, strategy: str):
    """Send a market order through the TradeManager and wait until its fill is journalled."""
    contract = await session.contracts.qualify(create_stock_contract(symbol))
    t = session.trades.place_order(contract, create_market_order(action, qty), strategy)
    await wait_for(t.isDone, what=f"{action} {qty} {symbol} done")
    assert t.orderStatus.status == "Filled", t.log
    await session.trades.wait_journalled()
    return t


def book_state(session: ConsoleSession) -> dict[tuple[str, int], tuple[float, ...]]:
    """(strategy, con_id) -> quantity, average cost, realized P&L, commissions, fills."""
    return {
        p.key: (p.quantity, p.avg_cost, p.realized_pnl, p.commissions, p.fills)
        for p in session.portfolio.book
    }


def realized_today(session: ConsoleSession) -> dict[str | None, float]:
    """Realized P&L per strategy and for the account (None)."""
    report = session.portfolio.calculate_pnl()
    out: dict[str | None, float] = {s: f.realized for s, f in report.strategies.items()}
    out[None] = report.account.realized
    return out


def assert_close(a: dict[Any, Any], b: dict[Any, Any]) -> None:
    """Same keys, and every figure equal within float noise."""
    assert a.keys() == b.keys()
    for key in a:
        xs = a[key] if isinstance(a[key], tuple) else (a[key],)
        ys = b[key] if isinstance(b[key], tuple) else (b[key],)
        close = [math.isclose(u, v, abs_tol=1e-9) for u, v in zip(xs, ys, strict=True)]
        assert all(close), (key, a[key], b[key])


async def ib_positions_settled(session: ConsoleSession) -> None:
    """Wait for the connect's resync (every replayed fill journalled) and IB's positions."""
    await session.trades.resync()
    ib = session.connection.ib
    await wait_for(lambda: ib.positions(), what="IB's positions after connect")


async def test_restart_when_trades_journalled_then_positions_and_pnl_restored_no_break(
    console: Console,
):
    session = await console.start()
    await trade(session, "AAPL", "BUY", 100, "alpha")
    await trade(session, "AAPL", "SELL", 40, "alpha")  # a partial close: realized P&L
    await trade(session, "MSFT", "BUY", 50, "beta")
    await trade(session, "AAPL", "BUY", 30, "beta")  # two strategies in one contract
    await trade(session, "MSFT", "SELL", 20, "beta")
    await ib_positions_settled(session)
    assert session.store is not None
    assert session.portfolio.match_ib_positions_with_arcticdb() == []
    before_book, before_pnl = book_state(session), realized_today(session)
    assert {k: v[0] for k, v in before_book.items()} == {
        ("alpha", AAPL): 60,
        ("beta", MSFT): 30,
        ("beta", AAPL): 30,
    }
    assert before_pnl["alpha"] != 0 and before_pnl["beta"] != 0
    assert all(v[3] > 0 for v in before_book.values())  # commissions were journalled
    await console.stop()

    session = await console.start()
    assert session.store is not None
    # Straight from the journal: nothing was replayed into the book (the replay of the
    # day's executions writes nothing twice, so publishes nothing).
    assert_close(book_state(session), before_book)
    assert_close(realized_today(session), before_pnl)
    journal = PositionBook.rebuild(await session.store.load_fills())
    assert {p.key: p.quantity for p in journal} == {k: v[0] for k, v in before_book.items()}
    assert await console.reconciled_at_start() == []
    await ib_positions_settled(session)
    assert_close(book_state(session), before_book)
    assert session.portfolio.match_ib_positions_with_arcticdb() == []
    # Order updates were journalled too: each order's updates, up to Filled.
    orders = await session.store.orders()
    filled = orders[orders["status"] == "Filled"].drop_duplicates("order_id")
    assert sorted(filled["strategy"]) == ["alpha", "alpha", "beta", "beta", "beta"]
    assert len(orders) > len(filled)  # PendingSubmit, Submitted, ... too


async def external_trades_while_stopped(state_file: Path) -> dict[int, str]:
    """Another API client (id 7) trades on the console's gateway while it is down.

    Returns con_id -> exec_id of its fills.
    """
    gateway = SimGateway("127.0.0.1", 0, state_path=state_file, tick_interval=0.05)
    await gateway.start()
    ib = IB()
    try:
        await ib.connectAsync("127.0.0.1", gateway.port, clientId=7, timeout=5)
        trades: list[Trade] = []
        for symbol, action, qty in (("AAPL", "BUY", 25), ("NVDA", "BUY", 10)):
            [contract] = await ib.qualifyContractsAsync(
                Contract(symbol=symbol, secType="STK", exchange="SMART", currency="USD")
            )
            trades.append(ib.placeOrder(contract, create_market_order(action, qty)))
        await wait_for(lambda: all(t.isDone() for t in trades), what="external fills")
        assert all(t.orderStatus.status == "Filled" for t in trades)
        return {t.contract.conId: t.fills[0].execution.execId for t in trades}
    finally:
        ib.disconnect()
        await gateway.stop()  # saves the state


def forget_execution(state_file: Path, exec_id: str) -> None:
    """Drop one execution from the gateway's replay, keeping the position it made."""
    state = json.loads(state_file.read_text())
    executions = state["engine"]["executions"]
    kept = [e for e in executions if e["exec_id"] != exec_id]
    assert len(kept) == len(executions) - 1
    state["engine"]["executions"] = kept
    state_file.write_text(json.dumps(state))


async def test_restart_when_other_client_traded_meanwhile_then_exactly_unreplayed_break(
    console: Console,
):
    session = await console.start()
    await trade(session, "AAPL", "BUY", 60, "alpha")
    await trade(session, "MSFT", "BUY", 40, "beta")
    await trade(session, "MSFT", "SELL", 15, "beta")
    await ib_positions_settled(session)
    before_book = book_state(session)
    await console.stop()

    external = await external_trades_while_stopped(console.state_file)
    forget_execution(console.state_file, external[AAPL])  # AAPL: not replayed; NVDA: is

    session = await console.start()
    assert session.store is not None
    at_start = await console.reconciled_at_start()
    await ib_positions_settled(session)

    # The replayed execution is taken in and attributed to the external bucket...
    book = book_state(session)
    assert book[(EXTERNAL, NVDA)][0] == 10
    assert_close({k: v for k, v in book.items() if k[0] != EXTERNAL}, before_book)
    # ...the one IB did not replay is exactly one break, reported with its figures.
    [brk] = at_start
    assert (brk.con_id, brk.symbol, brk.ib_quantity, brk.stored_quantity, brk.difference) == (
        AAPL,
        "AAPL",
        85,
        60,
        25,
    )
    [again] = session.portfolio.match_ib_positions_with_arcticdb()
    assert (again.con_id, again.ib_quantity, again.stored_quantity) == (AAPL, 85, 60)

    changed = await session.portfolio.reconciliation.resolve_break(brk, EXTERNAL, actor="gui")
    assert changed is not None and (changed.strategy, changed.quantity) == (EXTERNAL, 25)
    assert session.portfolio.match_ib_positions_with_arcticdb() == []
    await session.audit.flush()
    audit = await session.store.audit()
    resolved = audit[audit["action"] == "resolve_break"]
    assert len(resolved) == 1
    assert resolved.iloc[0]["actor"] == "gui" and resolved.iloc[0]["strategy"] == EXTERNAL
    assert "AAPL" in resolved.iloc[0]["subject"]
    await console.stop()

    # The adjustment is in the journal: the next start reconciles with no break.
    session = await console.start()
    await ib_positions_settled(session)
    assert session.portfolio.match_ib_positions_with_arcticdb() == []
    assert book_state(session)[(EXTERNAL, AAPL)][0] == 25


async def test_restart_on_same_gateway_then_working_order_keeps_its_time_and_prices_their_tick(
    gateway: SimGateway, tmp_path: Path
):
    # Issue 11 point 8: the console restarts, IB (the same gateway) stays up.
    options = SessionOptions(port=gateway.port, sim_tick_interval=0.05)
    store_uri = f"lmdb://{tmp_path / 'arctic'}"
    session = await ConsoleSession.start(options, store_uri=store_uri)
    eurusd = await session.contracts.qualify(create_forex_contract("EURUSD"))
    bought = session.trades.place_order(eurusd, create_market_order("BUY", 20000), "alpha")
    await wait_for(bought.isDone, what="the EUR.USD buy filled")
    working = session.trades.place_order(eurusd, create_limit_order("BUY", 20000, 1.00005), "alpha")
    await wait_for(lambda: working.orderStatus.status == "Submitted", what="working at IB")
    placed = working.log[0].time
    await session.trades.wait_journalled()
    price = bought.fills[0].execution.price
    await session.stop()

    updates: list[OrderUpdated] = []
    session = await ConsoleSession.prepare(options, store_uri=store_uri)
    assert session.store is not None
    session.trades.orderUpdated += updates.append
    await session.connect()
    try:
        await wait_for(
            lambda: any(u.order_id == working.order.orderId for u in updates),
            what="the working order after the restart",
        )
        again = [u for u in updates if u.order_id == working.order.orderId]
        assert {u.placed for u in again} == {placed}  # not the restart's time
        assert {u.min_tick for u in again} == {0.00005}
        [fill] = [f for f in await session.store.load_fills() if f.con_id == eurusd.conId]
        assert (fill.price, fill.min_tick) == (price, 0.00005)
        # A new trading day forgets finished orders, not when a working one was placed.
        session.trades.start_day()
        updates.clear()
        session.trades.republish_orders()
        assert {u.placed for u in updates if u.order_id == working.order.orderId} == {placed}
    finally:
        await session.stop()
