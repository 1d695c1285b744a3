"""PortfolioManager over a stand-in for ib_async's IB (no socket) and an LMDB store."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from eventkit import Event
from ib_async import (
    AccountValue,
    CommissionReport,
    Contract,
    Execution,
    Fill,
    Forex,
    Future,
    PnL,
    Position,
    Stock,
    Ticker,
    Trade,
)

from core.events import (
    FillRecorded,
    PnLChanged,
    PositionChanged,
    ReconciliationBreakFound,
)
from core.portfolio import PortfolioManager
from core.reconciliation import RECONCILIATION_REF
from core.store import Store
from helpers import wait_for

ACCOUNT_ID = "DU0000001"
UNSET = 1.7976931348623157e308
AAPL = Stock("AAPL", "SMART", "USD", conId=265598)
MSFT = Stock("MSFT", "SMART", "USD", conId=272093)
ES = Future("ES", "202406", "CME", conId=495512563, multiplier="50", currency="USD")
EURUSD = Forex("EURUSD", conId=12087792, localSymbol="EUR.USD")
SAP = Stock("SAP", "IBIS", "EUR", conId=14204)


class FakeIB:
    """What PortfolioManager uses of ``ib_async.IB``: events and cached account state."""

    def __init__(self) -> None:
        self.pendingTickersEvent = Event("pendingTickersEvent")
        self.position_list: list[Position] = []
        self.values: list[AccountValue] = []
        self.pnls: list[PnL] = []
        self.connected = True

    def isConnected(self) -> bool:
        return self.connected

    def positions(self, account: str = "") -> list[Position]:
        return [p for p in self.position_list if not account or p.account == account]

    def accountValues(self, account: str = "") -> list[AccountValue]:
        return [v for v in self.values if not account or v.account == account]

    def pnl(self, account: str = "", modelCode: str = "") -> list[PnL]:
        return [p for p in self.pnls if not account or p.account == account]


def record(
    contract: Contract,
    side: str,
    qty: float,
    price: float,
    *,
    strategy: str = "alpha",
    exec_id: str,
    commission: float = 1.0,
    time: datetime | None = None,
) -> FillRecorded:
    return FillRecorded(
        exec_id=exec_id,
        order_id=1,
        perm_id=1,
        client_id=1,
        strategy=strategy,
        account=ACCOUNT_ID,
        con_id=contract.conId,
        symbol=contract.localSymbol if contract.secType == "CASH" else contract.symbol,
        sec_type=contract.secType,
        currency=contract.currency,
        exchange="SMART",
        side=side,
        quantity=qty,
        price=price,
        multiplier=float(contract.multiplier or 1),
        commission=commission,
        realized_pnl=None,
        order_ref=strategy,
        time=time or datetime.now(UTC),
    )


def ticker(contract: Contract, **values: float) -> Ticker:
    """A ticker as ib_async updates it (its constructor does not take prices)."""
    t = Ticker(contract=contract)
    for name, value in values.items():
        setattr(t, name, value)
    return t


@pytest.fixture(autouse=True)
def fast_storage_lock() -> None:
    from arcticdb.config import set_config_int

    set_config_int("StorageLock.WaitMs", 10)  # see tests/unit/test_store.py


@pytest.fixture
def ib() -> FakeIB:
    return FakeIB()


@pytest_asyncio.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(f"lmdb://{tmp_path / 'arctic'}", flush_seconds=60) as s:
        yield s


def test_on_fill_when_applied_then_position_event_and_seen_once(ib: FakeIB) -> None:
    pm = PortfolioManager(ib, account=ACCOUNT_ID)  # type: ignore[arg-type]
    events: list[PositionChanged] = []
    pm.positionChanged += events.append
    fill = record(AAPL, "BOT", 100, 190.0, exec_id="a1")

    pm.on_fill(fill)
    pm.on_fill(fill)

    assert len(events) == 1
    assert (events[0].strategy, events[0].quantity, events[0].avg_cost) == ("alpha", 100, 190.0)


def test_tickers_when_placeholders_then_never_a_figure(ib: FakeIB) -> None:
    pm = PortfolioManager(ib, account=ACCOUNT_ID)  # type: ignore[arg-type]
    pm.on_fill(record(AAPL, "BOT", 100, 190.0, exec_id="a1", commission=0.0))
    events: list[PositionChanged] = []
    pm.positionChanged += events.append

    ib.pendingTickersEvent.emit({ticker(AAPL, bid=UNSET, ask=math.nan, last=math.nan)})
    assert events == []
    ib.pendingTickersEvent.emit({ticker(AAPL, bid=191.0, ask=191.2, last=math.nan)})

    assert events[-1].last == pytest.approx(191.1)
    assert events[-1].unrealized_pnl == pytest.approx(110.0)


def test_calculate_pnl_when_two_strategies_then_totals_sum_and_ib_cross_checked(
    ib: FakeIB,
) -> None:
    pm = PortfolioManager(ib, account=ACCOUNT_ID)  # type: ignore[arg-type]
    pm.on_fill(record(AAPL, "BOT", 100, 10.0, strategy="a", exec_id="1", commission=0))
    pm.on_fill(record(AAPL, "BOT", 100, 20.0, strategy="b", exec_id="2", commission=0))
    pm.on_fill(record(AAPL, "SLD", 100, 15.0, strategy="a", exec_id="3", commission=0))
    pm.mark(AAPL.conId, 16.0)
    ib.pnls.append(PnL(ACCOUNT_ID, "", dailyPnL=101.0, unrealizedPnL=100.0, realizedPnL=0.0))

    report = pm.calculate_pnl()

    a, b = report.strategies["a"], report.strategies["b"]
    assert (a.realized, b.unrealized) == (500.0, -400.0)
    assert (report.account.realized, report.account.unrealized) == (0.0, 100.0)
    assert a.total + b.total == pytest.approx(report.account.total)
    assert report.ib is not None and report.ib_difference == pytest.approx(-1.0)
    assert report.within_tolerance is True


def test_calculate_pnl_when_ib_sends_placeholders_then_no_ib_figures(ib: FakeIB) -> None:
    pm = PortfolioManager(ib, account=ACCOUNT_ID)  # type: ignore[arg-type]
    ib.pnls.append(PnL(ACCOUNT_ID, "", dailyPnL=UNSET, unrealizedPnL=math.nan, realizedPnL=UNSET))

    assert pm.calculate_pnl().ib is None


def test_summary_when_stock_future_and_fx_then_exposure_in_base_currency(ib: FakeIB) -> None:
    ib.values += [
        AccountValue(ACCOUNT_ID, "NetLiquidation", "1000000", "USD", ""),
        AccountValue(ACCOUNT_ID, "TotalCashValue", "250000.5", "USD", ""),
        AccountValue(ACCOUNT_ID, "ExchangeRate", "1.10", "EUR", ""),
    ]
    pm = PortfolioManager(ib, account=ACCOUNT_ID)  # type: ignore[arg-type]
    pm.on_fill(record(AAPL, "BOT", 100, 190.0, strategy="a", exec_id="1"))
    pm.on_fill(record(ES, "SLD", 2, 5000.0, strategy="b", exec_id="2"))
    pm.on_fill(record(SAP, "BOT", 10, 180.0, strategy="b", exec_id="3"))
    pm.mark(AAPL.conId, 200.0)
    pm.mark(ES.conId, 5010.0)
    pm.mark(SAP.conId, 200.0)

    summary = pm.get_portfolio_summary()

    es_value = -2 * 5010 * 50
    assert summary.exposure.long == pytest.approx(20_000 + 10 * 200 * 1.10)
    assert summary.exposure.short == pytest.approx(es_value)
    assert summary.gross_exposure == pytest.approx(20_000 + 2_200 - es_value)
    assert summary.by_sec_type["FUT"].net == pytest.approx(es_value)
    assert summary.by_strategy["b"].gross == pytest.approx(2_200 - es_value)
    assert (summary.cash, summary.net_liquidation) == (250000.5, 1_000_000.0)
    assert summary.unmarked == 0
    assert set(summary.positions["symbol"]) == {"AAPL", "ES", "SAP"}


def test_summary_when_currency_without_rate_then_flagged_not_guessed(ib: FakeIB) -> None:
    pm = PortfolioManager(ib, account=ACCOUNT_ID)  # type: ignore[arg-type]
    pm.on_fill(record(SAP, "BOT", 10, 180.0, exec_id="1"))
    pm.mark(SAP.conId, 200.0)

    assert pm.get_portfolio_summary().unmarked == 1
    assert pm.calculate_pnl().account.complete is False


def test_eurusd_when_traded_then_pnl_in_usd(ib: FakeIB) -> None:
    pm = PortfolioManager(ib, account=ACCOUNT_ID)  # type: ignore[arg-type]
    pm.on_fill(record(EURUSD, "BOT", 100_000, 1.0850, exec_id="1", commission=2.0))
    pm.on_fill(record(EURUSD, "SLD", 40_000, 1.0900, exec_id="2", commission=2.0))
    pm.mark(EURUSD.conId, 1.0800)

    report = pm.calculate_pnl()

    assert report.account.realized == pytest.approx(197.2)
    assert report.account.unrealized == pytest.approx(-301.2)


@pytest.mark.asyncio
async def test_reconcile_reports_a_difference_only_if_it_is_still_there_a_moment_later(
    ib: FakeIB,
) -> None:
    pm = PortfolioManager(ib, account=ACCOUNT_ID)  # type: ignore[arg-type]
    pm.on_fill(record(AAPL, "BOT", 100, 190.0, exec_id="1"))
    # IB already counts two fills whose executions have not reached the console yet.
    ib.position_list = [
        Position(ACCOUNT_ID, AAPL, 150.0, 190.0),
        Position(ACCOUNT_ID, MSFT, 30.0, 410.5),
    ]
    seen: list[ReconciliationBreakFound] = []
    reconciled: list[list[ReconciliationBreakFound]] = []
    pm.reconciliation.reconciliationBreak += seen.append
    pm.reconciliation.reconciled += reconciled.append

    reconciling = asyncio.ensure_future(pm.reconciliation.reconcile(confirm=0.01))
    await asyncio.sleep(0)  # one loop turn: its first look saw both, it waits to confirm
    assert reconciled == []
    pm.on_fill(record(AAPL, "BOT", 50, 190.0, exec_id="2"))  # MSFT's never arrives
    breaks = await reconciling

    assert [b.symbol for b in breaks] == ["MSFT"]
    assert seen == breaks
    assert reconciled == [breaks]


@pytest.mark.asyncio
async def test_reconcile_when_a_new_difference_appears_at_the_second_look_then_it_waits_for_it(
    ib: FakeIB,
) -> None:
    """The demo's case: the second look caught another order filling (IB's position
    first, its execution 20 ms later) and reported a break that healed at once."""
    pm = PortfolioManager(ib, account=ACCOUNT_ID)  # type: ignore[arg-type]
    pm.on_fill(record(AAPL, "BOT", 100, 190.0, exec_id="1"))
    looks = 0

    def positions(account: str = "") -> list[Position]:
        # What IB and the console hold at each look, as the fills arrive in between.
        nonlocal looks
        looks += 1
        if looks == 1:  # AAPL's second fill: IB counts it, its execution is on its way
            return [Position(ACCOUNT_ID, AAPL, 150.0, 190.0)]
        if looks == 2:  # it arrived; now an MSFT order fills the same way
            pm.on_fill(record(AAPL, "BOT", 50, 190.0, exec_id="2"))
            return [
                Position(ACCOUNT_ID, AAPL, 150.0, 190.0),
                Position(ACCOUNT_ID, MSFT, 30.0, 410.5),
            ]
        if looks == 3:
            pm.on_fill(record(MSFT, "BOT", 30, 410.5, exec_id="3"))
        return [Position(ACCOUNT_ID, AAPL, 150.0, 190.0), Position(ACCOUNT_ID, MSFT, 30.0, 410.5)]

    ib.positions = positions  # type: ignore[method-assign]
    breaks = await pm.reconciliation.reconcile(confirm=0.01)

    assert breaks == []


@pytest.mark.asyncio
async def test_reconcile_when_the_link_drops_between_looks_then_no_break_is_reported(
    ib: FakeIB,
) -> None:
    """ib_async forgets IB's positions when the link drops: a look taken then would
    read every stored position as a break ("IB 0, stored 7"), as seen end to end."""
    pm = PortfolioManager(ib, account=ACCOUNT_ID)  # type: ignore[arg-type]
    pm.on_fill(record(AAPL, "BOT", 100, 190.0, exec_id="1"))
    ib.position_list = [Position(ACCOUNT_ID, AAPL, 150.0, 190.0)]  # a fill on its way
    seen: list[ReconciliationBreakFound] = []
    pm.reconciliation.reconciliationBreak += seen.append

    reconciling = asyncio.ensure_future(pm.reconciliation.reconcile(confirm=0.01))
    await asyncio.sleep(0)  # the first look saw a difference and waits to confirm it
    ib.connected, ib.position_list = False, []  # the drop: IB's positions are gone
    breaks = await reconciling

    assert breaks == [] and seen == []
    ib.connected, ib.position_list = True, [Position(ACCOUNT_ID, AAPL, 100.0, 190.0)]
    assert await pm.reconciliation.reconcile(confirm=0.01) == []  # the reconnect's look


@pytest.mark.asyncio
async def test_reconcile_when_unseen_position_then_break_resolved_to_external_and_audited(
    ib: FakeIB, store: Store
) -> None:
    pm = PortfolioManager(ib, store, account=ACCOUNT_ID)  # type: ignore[arg-type]
    pm.on_fill(record(AAPL, "BOT", 100, 190.0, exec_id="1"))
    ib.position_list = [
        Position(ACCOUNT_ID, AAPL, 100.0, 190.01),
        Position(ACCOUNT_ID, MSFT, 30.0, 410.5),  # the console never saw this fill
    ]
    seen: list[ReconciliationBreakFound] = []
    pm.reconciliation.reconciliationBreak += seen.append

    breaks = pm.match_ib_positions_with_arcticdb()

    assert len(breaks) == 1 and seen == breaks
    brk = breaks[0]
    assert (brk.con_id, brk.symbol, brk.ib_quantity, brk.stored_quantity) == (
        MSFT.conId,
        "MSFT",
        30.0,
        0.0,
    )
    assert brk.difference == 30.0 and "never recorded" in brk.likely_cause

    changed = await pm.reconciliation.resolve_break(brk)

    assert changed is not None and (changed.strategy, changed.quantity) == ("external", 30.0)
    assert changed.avg_cost == pytest.approx(410.5)
    assert pm.match_ib_positions_with_arcticdb() == []
    journal = await store.fills()
    assert list(journal[journal["order_ref"] == RECONCILIATION_REF]["quantity"]) == [30.0]
    audit = await store.audit()
    assert list(audit["action"]) == ["resolve_break"]


@pytest.mark.asyncio
async def test_restore_when_restarted_then_positions_come_back_without_break(
    ib: FakeIB, tmp_path: Path
) -> None:
    uri = f"lmdb://{tmp_path / 'arctic'}"
    fills = [
        record(AAPL, "BOT", 100, 190.0, exec_id="1"),
        record(AAPL, "SLD", 40, 195.0, exec_id="2"),
        record(ES, "BOT", 1, 5000.0, strategy="beta", exec_id="3"),
    ]
    async with Store(uri) as store:
        await store.append_fills(fills)
        pm = PortfolioManager(ib, store, account=ACCOUNT_ID)  # type: ignore[arg-type]
        for f in fills:
            pm.on_fill(f)
        before = {k: (p.quantity, p.avg_cost, p.realized_pnl) for k, p in pm.book.positions.items()}

    ib.position_list = [
        Position(ACCOUNT_ID, AAPL, 60.0, 190.0),
        Position(ACCOUNT_ID, ES, 1.0, 250000),
    ]
    async with Store(uri) as store:
        again = PortfolioManager(ib, store, account=ACCOUNT_ID)  # type: ignore[arg-type]
        assert await again.restore() == 3
        after = {
            k: (p.quantity, p.avg_cost, p.realized_pnl) for k, p in again.book.positions.items()
        }
        breaks = again.match_ib_positions_with_arcticdb()

    assert after == before
    assert breaks == []


@pytest.mark.asyncio
async def test_pnl_when_emitted_then_recorded_in_store(ib: FakeIB, store: Store) -> None:
    pm = PortfolioManager(ib, store, account=ACCOUNT_ID, pnl_interval=0.0)  # type: ignore[arg-type]
    events: list[PnLChanged] = []
    pm.pnlChanged += events.append
    pm.on_fill(record(AAPL, "BOT", 100, 190.0, exec_id="1", commission=0.0))
    pm.mark(AAPL.conId, 191.0)
    await wait_for(
        lambda: any(e.strategy is None and e.unrealized for e in events), what="the P&L emitted"
    )
    await store.flush()

    start = datetime.now(UTC) - timedelta(minutes=1)
    history = await pm.pnl_history(start, datetime.now(UTC) + timedelta(seconds=1))
    assert any(e.strategy is None and e.unrealized == pytest.approx(100.0) for e in events)
    assert set(history["strategy"]) == {"alpha", "*"}
    assert len(await pm.positions_at(datetime.now(UTC))) == 1


@pytest.mark.asyncio
async def test_publish_pnl_emits_the_current_figures_at_once_not_at_the_next_turn(
    ib: FakeIB, store: Store
) -> None:
    pm = PortfolioManager(ib, store, account=ACCOUNT_ID, pnl_interval=3600.0)  # type: ignore[arg-type]
    events: list[PnLChanged] = []
    pm.pnlChanged += events.append
    pm.on_fill(record(AAPL, "BOT", 100, 190.0, exec_id="1", commission=0.0))
    pm.mark(AAPL.conId, 191.0)
    pm.mark(AAPL.conId, 192.0)  # within the hour: coalesced, nothing emitted for it yet
    assert not any(e.strategy is None and e.unrealized == pytest.approx(200.0) for e in events)

    pm.publish_pnl()

    account = [e for e in events if e.strategy is None]
    assert account[-1].unrealized == pytest.approx(200.0)  # the price just marked


@pytest.mark.asyncio
async def test_process_new_trade_when_trade_has_fills_then_journalled_and_applied(
    ib: FakeIB, store: Store
) -> None:
    pm = PortfolioManager(ib, store, account=ACCOUNT_ID)  # type: ignore[arg-type]
    t = datetime(2024, 5, 1, 14, tzinfo=UTC)
    trade: Any = Trade(contract=AAPL)
    for i, (qty, price) in enumerate([(60, 190.0), (40, 190.5)]):
        execution = Execution(
            execId=f"x{i}", time=t, acctNumber=ACCOUNT_ID, side="BOT", shares=qty, price=price
        )
        report = CommissionReport(execId=f"x{i}", commission=0.5, realizedPNL=UNSET)
        trade.fills.append(Fill(AAPL, execution, report, t))

    changed = await pm.process_new_trade("alpha", trade)
    again = await pm.process_new_trade("alpha", trade)

    assert [c.quantity for c in changed] == [60, 100] and again == []
    pos = pm.book.get("alpha", AAPL.conId)
    assert pos is not None and pos.avg_cost == pytest.approx(190.2)
    journal = await store.load_fills()
    assert [f.exec_id for f in journal] == ["x0", "x1"]
    assert journal[0].realized_pnl is None  # IB's placeholder never stored
