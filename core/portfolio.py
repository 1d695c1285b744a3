"""Positions by strategy, P&L, and history (reconciliation with IB: core.reconciliation).

Accounting method
-----------------
**Average cost, as IB reports it for the account.** Per (strategy, contract):

* Buying into a long (or selling into a short) moves the average cost to the
  quantity-weighted average of the old cost and the fill price. ``avg_cost`` is per unit
  and in price terms (multiplier and commissions excluded: an ES position bought at
  5000.25 has ``avg_cost`` 5000.25).
* Reducing realizes ``(fill price - avg_cost) * closed quantity * multiplier`` (sign
  flipped for shorts) into ``realized_gross``; the average cost of what is left does not
  change. A fill larger than the position closes it and opens the rest on the other side
  at the fill price, in one step.
* Commissions are kept apart: ``commissions`` is everything paid. Like IB, the
  commissions of the quantity still open sit in its cost basis (``cost_commissions``)
  and move to realized when that quantity closes, so ``realized_pnl`` (net) equals what
  IB's commission reports and account show as realized P&L, and
  ``ib_avg_cost = avg_cost * multiplier + cost_commissions / |quantity|`` equals IB's
  ``Position.avgCost``. ``realized_pnl + unrealized_pnl = realized_gross +
  unrealized_gross - commissions`` always.
* Money is in the contract's currency: an EUR.USD position's quantity is in EUR, its
  price, cost and P&L in USD. Account totals convert to the base currency with IB's
  ``ExchangeRate`` account values (a currency without a rate is reported, not guessed).
* Daily P&L = today's fills' cash flow + today's value - the start-of-day position at
  the previous close (``ticker.close``; until IB sends one, the first mark of the day).
  A trading day starts at midnight in ``day_tz`` (New York by default), as
  :class:`core.tradingday.TradingDay` says; at its boundary the books roll over in
  place and the day that ended is saved as a summary.

Total P&L (realized + unrealized) is additive: the strategies' totals sum to the
account's. The realized/unrealized *split* is not (average cost is not additive when two
strategies trade the same contract), so account figures come from a second book that
sees every fill as one position per contract, which is what IB computes.

Fills are applied in (execution time, exec_id) order whatever order they arrive in: a
late fill (a replay after a reconnect) re-applies that position's fills, so the
incremental book always equals :meth:`PositionBook.rebuild` from the journal. A fill seen
twice (same exec_id) counts once; seen again with its commission known, it replaces the
first.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd
from eventkit import Event
from ib_async import IB, Contract, Ticker, Trade

from core.events import (
    QTY_EPS,
    AuditRecorded,
    FillRecorded,
    PnLChanged,
    PositionChanged,
    ReconciliationBreakFound,
    now_utc,
)
from core.marketdata import clean_price, quote_from_ticker
from core.reconciliation import Reconciliation
from core.tasks import Tasks
from core.trading import fill_record
from core.tradingday import TradingDay, TradingDayStarted

if TYPE_CHECKING:
    from core.store import DailySummary, Store

log = logging.getLogger(__name__)

#: The key under which the account-level book keeps every strategy's fills.
ACCOUNT = "*"

Key = tuple[str, int]


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def _fill_key(fill: FillRecorded) -> tuple[datetime, str]:
    t = fill.time if fill.time.tzinfo else fill.time.replace(tzinfo=UTC)
    return (t, fill.exec_id)


@dataclass
class Position:
    """One strategy's position in one contract (mutable; published as PositionChanged)."""

    strategy: str
    account: str
    con_id: int
    symbol: str
    sec_type: str
    currency: str
    multiplier: float
    quantity: float = 0.0  # signed
    avg_cost: float = 0.0  # per unit, price terms: no multiplier, no commission
    realized_gross: float = 0.0  # before commissions
    commissions: float = 0.0  # every commission paid
    cost_commissions: float = 0.0  # commissions of the open quantity (IB's cost basis)
    realized_commissions: float = 0.0  # commissions of the closed quantity
    fills: int = 0
    last: float | None = None  # the live mark, never a placeholder
    sod_mark: float | None = None  # previous close (start-of-day mark)
    day_quantity: float = 0.0  # signed quantity traded today
    day_cash: float = 0.0  # today's cash flow: -sum(q * price) * multiplier - commissions
    day_fills: int = 0
    day_commissions: float = 0.0
    time: datetime = field(default_factory=now_utc)

    # -- figures ---------------------------------------------------------------------------

    @property
    def key(self) -> Key:
        """(strategy, con_id)."""
        return (self.strategy, self.con_id)

    @property
    def realized_pnl(self) -> float:
        """Realized P&L net of the commissions of what was closed (IB's figure)."""
        return self.realized_gross - self.realized_commissions

    @property
    def ib_avg_cost(self) -> float:
        """Average cost as IB's positions report it: per contract, with multiplier and
        the open quantity's commissions."""
        if abs(self.quantity) < QTY_EPS:
            return 0.0
        return self.avg_cost * self.multiplier + self.cost_commissions / abs(self.quantity)

    @property
    def market_value(self) -> float | None:
        """Quantity x mark x multiplier, None while unmarked (0 when flat)."""
        if abs(self.quantity) < QTY_EPS:
            return 0.0
        return None if self.last is None else self.quantity * self.last * self.multiplier

    @property
    def unrealized_gross(self) -> float | None:
        """(mark - avg cost) x quantity x multiplier, before commissions."""
        if abs(self.quantity) < QTY_EPS:
            return 0.0
        if self.last is None:
            return None
        return (self.last - self.avg_cost) * self.quantity * self.multiplier

    @property
    def unrealized_pnl(self) -> float | None:
        """Unrealized P&L against IB's cost basis (open quantity's commissions included)."""
        gross = self.unrealized_gross
        return None if gross is None else gross - self.cost_commissions

    @property
    def total_pnl(self) -> float | None:
        """Realized + unrealized, i.e. gross realized + gross unrealized - commissions."""
        u = self.unrealized_pnl
        return None if u is None else self.realized_pnl + u

    @property
    def sod_quantity(self) -> float:
        """The position at the start of the trading day."""
        return self.quantity - self.day_quantity

    @property
    def daily_pnl(self) -> float | None:
        """P&L since the start of the trading day; None when a needed mark is missing."""
        value = 0.0
        if abs(self.quantity) >= QTY_EPS:
            if self.last is None:
                return None
            value += self.quantity * self.last * self.multiplier
        if abs(self.sod_quantity) >= QTY_EPS:
            if self.sod_mark is None:
                return None
            value -= self.sod_quantity * self.sod_mark * self.multiplier
        return value + self.day_cash

    def exposure(self) -> float | None:
        """Signed notional in the contract's currency (mark, else None)."""
        return self.market_value

    def changed(self) -> PositionChanged:
        """This position as the event the GUI and risk receive."""
        return PositionChanged(
            strategy=self.strategy,
            account=self.account,
            con_id=self.con_id,
            symbol=self.symbol,
            sec_type=self.sec_type,
            currency=self.currency,
            multiplier=self.multiplier,
            quantity=self.quantity,
            avg_cost=self.avg_cost,
            last=self.last,
            market_value=self.market_value,
            unrealized_pnl=self.unrealized_pnl,
            realized_pnl=self.realized_pnl,
            daily_pnl=self.daily_pnl,
            commissions=self.commissions,
            time=self.time,
        )

    # -- the ledger ------------------------------------------------------------------------

    def _reset(self) -> None:
        self.quantity = self.avg_cost = self.realized_gross = 0.0
        self.commissions = self.cost_commissions = self.realized_commissions = 0.0
        self.day_quantity = self.day_cash = self.day_commissions = 0.0
        self.fills = self.day_fills = 0

    def _apply(self, fill: FillRecorded, day_start: datetime | None) -> None:
        q = fill.signed_quantity
        p = fill.price
        c = fill.commission or 0.0
        m = self.multiplier
        held = self.quantity
        if abs(held) < QTY_EPS or _sign(held) == _sign(q):
            new = held + q
            self.avg_cost = (self.avg_cost * abs(held) + p * abs(q)) / abs(new) if new else 0.0
            self.quantity = new
            self.cost_commissions += c
        else:
            closing = min(abs(q), abs(held))
            self.realized_gross += (p - self.avg_cost) * closing * _sign(held) * m
            released = self.cost_commissions * closing / abs(held)
            own = c * closing / abs(q)
            self.realized_commissions += released + own
            self.cost_commissions -= released
            self.quantity = held + q
            opening = abs(q) - closing
            if abs(self.quantity) < QTY_EPS:
                self.quantity = 0.0
                self.avg_cost = 0.0
                self.cost_commissions = 0.0
            elif opening > QTY_EPS:  # flipped: the rest opens at the fill price
                self.avg_cost = p
                self.cost_commissions = c - own
        self.commissions += c
        self.fills += 1
        if day_start is None or _fill_key(fill)[0] >= day_start:
            self.day_quantity += q
            self.day_cash -= q * p * m + c
            self.day_commissions += c
            self.day_fills += 1
        self.time = fill.time


class PositionBook:
    """A pure ledger of positions per (strategy, con_id), fed by fills; no I/O.

    ``collapse_to`` set (e.g. :data:`ACCOUNT`) files every fill under that one strategy
    name: the account-level view IB computes.
    """

    def __init__(self, day_start: datetime | None = None, *, collapse_to: str | None = None):
        self.day_start = day_start
        self.collapse_to = collapse_to
        self.positions: dict[Key, Position] = {}
        # Every mark touches only its contract's positions: index them (500 symbols
        # ticking must not scan the whole book per tick).
        self._by_con: dict[int, list[Position]] = {}
        self.marks: dict[int, float] = {}
        self.closes: dict[int, float] = {}
        self._fills: dict[Key, list[tuple[tuple[datetime, str], FillRecorded]]] = {}
        self._seen: dict[str, tuple[Key, FillRecorded]] = {}

    @classmethod
    def rebuild(
        cls,
        fills: Iterable[FillRecorded],
        day_start: datetime | None = None,
        *,
        collapse_to: str | None = None,
    ) -> PositionBook:
        """A book built from a journal's fills (applied in (time, exec_id) order)."""
        book = cls(day_start, collapse_to=collapse_to)
        for fill in sorted(fills, key=_fill_key):
            book.apply(fill)
        return book

    def __len__(self) -> int:
        return len(self.positions)

    def __iter__(self) -> Any:
        return iter(self.positions.values())

    def get(self, strategy: str, con_id: int) -> Position | None:
        """The position of ``strategy`` in ``con_id``, if it ever traded it."""
        return self.positions.get((strategy, con_id))

    def held_con_ids(self) -> Mapping[int, Any]:
        """The contracts this book has positions in (a live view, cheap to test)."""
        return self._by_con

    def seen(self, exec_id: str) -> bool:
        """Whether a fill with this exec_id was applied."""
        return exec_id in self._seen

    def apply(self, fill: FillRecorded) -> PositionChanged | None:
        """Apply one fill; returns the position's new state, or None for a duplicate."""
        strategy = self.collapse_to or fill.strategy
        key = (strategy, fill.con_id)
        seen = self._seen.get(fill.exec_id)
        if seen is not None:
            old = seen[1]
            if old.commission is not None or fill.commission is None:
                return None
            # The same execution, now with its commission: replace and recompute.
            entries = self._fills[key]
            entries[:] = [(k, fill if f.exec_id == fill.exec_id else f) for k, f in entries]
            self._seen[fill.exec_id] = (key, fill)
            return self._recompute(key)
        pos = self.positions.get(key)
        if pos is None:
            pos = Position(
                strategy=strategy,
                account=fill.account,
                con_id=fill.con_id,
                symbol=fill.symbol,
                sec_type=fill.sec_type,
                currency=fill.currency,
                multiplier=fill.multiplier or 1.0,
            )
            pos.last = self.marks.get(fill.con_id)
            pos.sod_mark = self.closes.get(fill.con_id)
            self.positions[key] = pos
            self._by_con.setdefault(pos.con_id, []).append(pos)
        entries = self._fills.setdefault(key, [])
        k = _fill_key(fill)
        self._seen[fill.exec_id] = (key, fill)
        if entries and k < entries[-1][0]:
            bisect.insort(entries, (k, fill), key=lambda e: e[0])
            return self._recompute(key)
        entries.append((k, fill))
        pos._apply(fill, self.day_start)
        return pos.changed()

    def _recompute(self, key: Key) -> PositionChanged:
        pos = self.positions[key]
        pos._reset()
        for _, fill in self._fills[key]:
            pos._apply(fill, self.day_start)
        return pos.changed()

    def mark(self, con_id: int, price: Any) -> list[PositionChanged]:
        """Set the live mark of a contract; placeholders (NaN, 1.797e308, None) are ignored.

        Returns the changed positions' new states.
        """
        value = clean_price(price)
        if value is None or (value <= 0 and not self._may_be_negative(con_id)):
            return []
        self.marks[con_id] = value
        if con_id not in self.closes:
            # No previous close yet: the day's first mark stands in for it.
            self.closes.setdefault(con_id, value)
        out = []
        for pos in self._by_con.get(con_id, ()):
            if pos.last != value:
                pos.last = value
                if pos.sod_mark is None:
                    pos.sod_mark = self.closes[con_id]
                out.append(pos.changed())
        return out

    def _may_be_negative(self, con_id: int) -> bool:
        # Spreads and some futures (e.g. crude in 2020) can trade below zero.
        return any(p.sec_type in ("BAG", "FUT") for p in self._by_con.get(con_id, ()))

    def set_close(self, con_id: int, close: Any) -> None:
        """The previous session's close (start-of-day mark for daily P&L)."""
        value = clean_price(close)
        if value is None:
            return
        self.closes[con_id] = value
        for pos in self._by_con.get(con_id, ()):
            pos.sod_mark = value

    def start_day(self, day_start: datetime) -> None:
        """A new trading day: today's figures count fills from ``day_start`` on."""
        self.day_start = day_start
        self.closes = dict(self.marks)  # until IB sends a close, today's opening marks
        for key, pos in self.positions.items():
            pos.sod_mark = self.closes.get(pos.con_id)
            self._recompute(key)

    def quantities(self) -> dict[int, float]:
        """Net quantity per contract over every strategy."""
        out: dict[int, float] = {}
        for pos in self.positions.values():
            out[pos.con_id] = out.get(pos.con_id, 0.0) + pos.quantity
        return {k: (0.0 if abs(v) < QTY_EPS else v) for k, v in out.items()}

    def fills(self) -> list[FillRecorded]:
        """Every applied fill, in (time, exec_id) order."""
        return [
            f for _, f in sorted((e for v in self._fills.values() for e in v), key=lambda e: e[0])
        ]

    def frame(self) -> pd.DataFrame:
        """Every position as a DataFrame row (figures in the contract's currency)."""
        rows = [
            {
                "strategy": p.strategy,
                "account": p.account,
                "con_id": p.con_id,
                "symbol": p.symbol,
                "sec_type": p.sec_type,
                "currency": p.currency,
                "multiplier": p.multiplier,
                "quantity": p.quantity,
                "avg_cost": p.avg_cost,
                "ib_avg_cost": p.ib_avg_cost,
                "last": p.last,
                "market_value": p.market_value,
                "unrealized_pnl": p.unrealized_pnl,
                "realized_pnl": p.realized_pnl,
                "realized_gross": p.realized_gross,
                "commissions": p.commissions,
                "daily_pnl": p.daily_pnl,
                "fills": p.fills,
            }
            for p in self.positions.values()
        ]
        return pd.DataFrame(rows)


# -- results -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PnLFigures:
    """P&L of one strategy (or the account: ``strategy`` None), in the base currency.

    ``complete`` is False when a position had no mark or its currency no exchange rate:
    its unrealized/daily part is then missing from the figures.
    """

    strategy: str | None
    daily: float
    realized: float
    unrealized: float
    commissions: float
    realized_gross: float
    complete: bool = True

    @property
    def total(self) -> float:
        """Realized plus unrealized."""
        return self.realized + self.unrealized

    def event(self, time: datetime | None = None) -> PnLChanged:
        """As a :class:`core.events.PnLChanged`."""
        return PnLChanged(
            self.strategy, self.daily, self.realized, self.unrealized, time or now_utc()
        )


@dataclass(frozen=True, slots=True)
class PnLReport:
    """:meth:`PortfolioManager.calculate_pnl`'s answer.

    ``ib`` is IB's own account P&L (reqPnL) when subscribed; ``ib_difference`` is ours
    minus IB's daily P&L and ``within_tolerance`` compares it with ``tolerance``.
    """

    time: datetime
    base_currency: str
    account: PnLFigures
    strategies: dict[str, PnLFigures]
    ib: PnLFigures | None = None
    ib_difference: float | None = None
    tolerance: float | None = None
    within_tolerance: bool | None = None


@dataclass(frozen=True, slots=True)
class Exposure:
    """Long, short, gross and net notional in the base currency."""

    long: float = 0.0
    short: float = 0.0

    @property
    def gross(self) -> float:
        """Long plus |short|."""
        return self.long - self.short

    @property
    def net(self) -> float:
        """Long plus short (short is negative)."""
        return self.long + self.short

    def add(self, value: float) -> Exposure:
        """This exposure plus a signed notional."""
        return Exposure(self.long + max(value, 0.0), self.short + min(value, 0.0))


@dataclass(frozen=True, slots=True)
class PortfolioSummary:
    """:meth:`PortfolioManager.get_portfolio_summary`'s answer (base currency).

    Positions without a live mark are valued at their average cost and counted in
    ``unmarked``. ``cash`` and ``net_liquidation`` are IB's account values (None until
    IB sent them).
    """

    time: datetime
    base_currency: str
    exposure: Exposure
    by_strategy: dict[str, Exposure]
    by_sec_type: dict[str, Exposure]
    cash: float | None
    net_liquidation: float | None
    unmarked: int
    positions: pd.DataFrame

    @property
    def gross_exposure(self) -> float:
        """Account gross notional."""
        return self.exposure.gross

    @property
    def net_exposure(self) -> float:
        """Account net notional."""
        return self.exposure.net


# -- ib_async translation ------------------------------------------------------------------


def _clean(value: Any) -> float | None:
    v = clean_price(value)
    return v


ContractInfo = Callable[[int], Contract | None]


class PortfolioManager:
    """Positions by strategy and contract, P&L, and history.

    Fills come in through :meth:`on_fill` (the TradeManager calls it once a fill is
    durable) or :meth:`process_new_trade`; marks from ib_async's tickers
    (``pendingTickersEvent``: any ticker of a held contract, e.g. those
    :mod:`core.marketdata` subscribes) or :meth:`mark`. :meth:`restore` rebuilds the
    books from the store's fills journal at start.

    Events:
        * ``positionChanged`` (position: :class:`core.events.PositionChanged`)
        * ``pnlChanged`` (pnl: :class:`core.events.PnLChanged`): per strategy and for the
          account (``strategy`` None), at most every ``pnl_interval`` seconds

    ``reconciliation`` (:class:`core.reconciliation.Reconciliation`) compares the book
    with IB's positions and resolves the differences; its events say what it found.
    """

    def __init__(
        self,
        ib_client: IB,
        store: Store | None = None,
        *,
        contract_info: ContractInfo | None = None,
        account: str = "",
        base_currency: str = "USD",
        day_tz: str = "America/New_York",
        pnl_interval: float = 1.0,
        tolerance_abs: float = 5.0,
        tolerance_rel: float = 0.001,
        audit: Callable[[AuditRecorded], Any] | None = None,
        trading_day: TradingDay | None = None,
    ) -> None:
        self.ib = ib_client
        self.store = store
        self.contract_info = contract_info
        self.account = account
        self.base_currency = base_currency
        #: The day's boundary, shared with risk and the GUI (one rollover for all).
        self.trading_day = trading_day if trading_day is not None else TradingDay(day_tz)
        self.day_tz = self.trading_day.tz
        self.pnl_interval = pnl_interval
        self.tolerance_abs = tolerance_abs
        self.tolerance_rel = tolerance_rel
        self.audit = audit
        self.positionChanged: Event = Event("positionChanged")
        self.pnlChanged: Event = Event("pnlChanged")
        start = self.trading_day.start
        self.book = PositionBook(start)
        self.account_book = PositionBook(start, collapse_to=ACCOUNT)
        self._pnl_timer: asyncio.TimerHandle | None = None
        self._tasks = Tasks("portfolio")
        self._last_pnl_emit = 0.0
        self.reconciliation = Reconciliation(
            ib_client,
            lambda: self.book,
            self.on_fill,
            store,
            account=account,
            contract_info=contract_info,
            audit=audit,
        )
        ib_client.pendingTickersEvent += self._on_tickers
        self.trading_day.dayStarted += self.start_day

    # -- fills -----------------------------------------------------------------------------

    def on_fill(self, fill: FillRecorded) -> PositionChanged | None:
        """Apply a journalled fill; returns the position's new state (None: seen before)."""
        if self.account and fill.account and fill.account != self.account:
            return None
        self._roll_day(fill.time)
        changed = self.book.apply(fill)
        self.account_book.apply(fill)
        if changed is None:
            return None
        self.positionChanged.emit(changed)
        if self.store is not None:
            self.store.record_positions([changed])
        self._schedule_pnl()
        return changed

    async def process_new_trade(self, strategy: str, trade: Trade) -> list[PositionChanged]:
        """Record ``trade``'s fills for ``strategy`` (the seed's entry point).

        With a store, the fills are journalled (idempotently) before they are applied,
        so calling this for fills the TradeManager already journalled changes nothing.
        Raises :class:`core.store.StoreError` if they could not be made durable.
        """
        records = [fill_record(strategy, f) for f in trade.fills]
        if self.store is not None and records:
            await self.store.append_fills(records)
        out = []
        for record in records:
            changed = self.on_fill(record)
            if changed is not None:
                out.append(changed)
        return out

    async def restore(self) -> int:
        """Rebuild the books from the store's fills journal; returns how many fills."""
        if self.store is None:
            return 0
        # Every console's fills: another's under its own, marked strategies.
        fills = await self.store.load_book_fills()
        if self.account:
            fills = [f for f in fills if not f.account or f.account == self.account]
        start = self.trading_day.start
        marks, closes = self.book.marks, self.book.closes
        self.book = PositionBook.rebuild(fills, start)
        self.account_book = PositionBook.rebuild(fills, start, collapse_to=ACCOUNT)
        for book in (self.book, self.account_book):
            book.closes.update(closes)
            for con_id, price in marks.items():
                book.mark(con_id, price)
        for pos in self.book:
            self.positionChanged.emit(pos.changed())
        self._emit_pnl()
        log.info(
            "portfolio restored from %d journalled fills: %d positions", len(fills), len(self.book)
        )
        return len(fills)

    # -- marks -----------------------------------------------------------------------------

    def mark(self, con_id: int, price: Any, close: Any = None) -> None:
        """Set a contract's live mark (and previous close); placeholders are ignored."""
        self._roll_day()
        if close is not None:
            self.book.set_close(con_id, close)
            self.account_book.set_close(con_id, close)
        changed = self.book.mark(con_id, price)
        self.account_book.mark(con_id, price)
        for c in changed:
            self.positionChanged.emit(c)
        if changed:
            self._schedule_pnl()

    def _on_tickers(self, tickers: Iterable[Ticker]) -> None:
        held = self.book.held_con_ids()
        for ticker in tickers:
            contract = ticker.contract
            if contract is None or contract.conId not in held:
                continue
            price = _ticker_mark(ticker)
            self.mark(contract.conId, price, ticker.close)

    # -- P&L -------------------------------------------------------------------------------

    def _fx(self, currency: str) -> float | None:
        if not currency or currency == self.base_currency:
            return 1.0
        for v in self.ib.accountValues(self.account):
            if v.tag == "ExchangeRate" and v.currency == currency:
                return clean_price(v.value)
        return None

    def _figures(self, positions: Iterable[Position], strategy: str | None) -> PnLFigures:
        daily = realized = unrealized = commissions = gross = 0.0
        complete = True
        for p in positions:
            fx = self._fx(p.currency)
            if fx is None:
                complete = False
                continue
            realized += p.realized_pnl * fx
            gross += p.realized_gross * fx
            commissions += p.commissions * fx
            u, d = p.unrealized_pnl, p.daily_pnl
            if u is None or d is None:
                complete = False
            unrealized += (u or 0.0) * fx
            daily += (d or 0.0) * fx
        return PnLFigures(strategy, daily, realized, unrealized, commissions, gross, complete)

    def calculate_pnl(self) -> PnLReport:
        """Daily, realized, unrealized and total P&L per strategy and for the account.

        The account figures come from the account-level book (IB's average cost over
        every strategy), so they compare with IB's account P&L; the strategies' totals
        sum to the account's total. IB's own figures (reqPnL, if subscribed) are
        included with the difference of daily P&L and the tolerance:
        ``tolerance_abs + tolerance_rel * gross exposure`` (marks and their timing differ).
        """
        self._roll_day()
        by_strategy: dict[str, list[Position]] = {}
        for pos in self.book:
            by_strategy.setdefault(pos.strategy, []).append(pos)
        strategies = {s: self._figures(ps, s) for s, ps in sorted(by_strategy.items())}
        account = self._figures(self.account_book, None)
        ib = self._ib_pnl()
        diff = tol = within = None
        if ib is not None:
            diff = account.daily - ib.daily
            gross = sum(abs(v) for v in self._notional(self.account_book).values())
            tol = self.tolerance_abs + self.tolerance_rel * gross
            within = abs(diff) <= tol
        return PnLReport(now_utc(), self.base_currency, account, strategies, ib, diff, tol, within)

    def _notional(self, positions: Iterable[Position]) -> dict[Key, float]:
        out = {}
        for p in positions:
            price = p.last if p.last is not None else p.avg_cost
            out[p.key] = p.quantity * price * p.multiplier * (self._fx(p.currency) or 0.0)
        return out

    def _ib_pnl(self) -> PnLFigures | None:
        for pnl in self.ib.pnl(self.account):
            if pnl.modelCode:
                continue
            daily, real, unreal = (
                clean_price(pnl.dailyPnL),
                clean_price(pnl.realizedPnL),
                clean_price(pnl.unrealizedPnL),
            )
            if daily is None and real is None and unreal is None:
                return None
            return PnLFigures(
                None,
                daily or 0.0,
                real or 0.0,
                unreal or 0.0,
                0.0,
                0.0,
                None not in (daily, real, unreal),
            )
        return None

    def _schedule_pnl(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._emit_pnl()
            return
        if self._pnl_timer is not None:
            return
        wait = max(0.0, self._last_pnl_emit + self.pnl_interval - loop.time())
        self._pnl_timer = loop.call_later(wait, self._emit_pnl)

    def publish_pnl(self) -> None:
        """Emit the P&L now rather than at the coalescing timer's next turn (for a view
        that must show the figures as they are this instant, e.g. a screenshot)."""
        if self._pnl_timer is not None:
            self._pnl_timer.cancel()
        self._emit_pnl()

    def _emit_pnl(self) -> None:
        self._pnl_timer = None
        with contextlib.suppress(RuntimeError):
            self._last_pnl_emit = asyncio.get_running_loop().time()
        report = self.calculate_pnl()
        t = report.time
        for figures in [*report.strategies.values(), report.account]:
            event = figures.event(t)
            self.pnlChanged.emit(event)
            if self.store is not None:
                self.store.record_pnl(event)

    def _roll_day(self, when: datetime | None = None) -> None:
        # The one rollover routine is the trading day's; it calls start_day back.
        self.trading_day.check(when)

    def start_day(self, event: TradingDayStarted) -> None:
        """A new trading day (``trading_day.dayStarted``): save the day that ended as a
        summary, then count today's figures (daily P&L, day fills) from the new start."""
        current = self.book.day_start
        if current is not None and event.start <= current:
            return
        if current is not None and self.store is not None:
            summaries = self.daily_summaries()
            try:
                self._tasks.spawn(self._save_daily(summaries), "daily summary")
            except RuntimeError:
                log.warning("no event loop: the summary of the day that ended is not saved")
        self.book.start_day(event.start)
        self.account_book.start_day(event.start)
        for pos in self.book:
            self.positionChanged.emit(pos.changed())  # daily P&L starts again
        self._schedule_pnl()

    def daily_summaries(self) -> list[DailySummary]:
        """The book's day's figures per strategy and for the account, for the ``daily``
        library (at a rollover: the day that just ended)."""
        from core.store import ACCOUNT_TOTAL, DailySummary

        report = self.calculate_pnl()
        start = self.book.day_start or self.trading_day.start
        day = start.astimezone(ZoneInfo(self.day_tz)).date()
        out = []
        for name, fig in [*report.strategies.items(), (ACCOUNT_TOTAL, report.account)]:
            book = self.account_book if name == ACCOUNT_TOTAL else self.book
            fills = sum(p.day_fills for p in book if name in (ACCOUNT_TOTAL, p.strategy))
            out.append(
                DailySummary(
                    day, name, fig.realized, fig.unrealized, fig.daily, fig.commissions, fills
                )
            )
        return out

    async def _save_daily(self, summaries: Sequence[DailySummary]) -> None:
        if self.store is None:
            return
        try:
            await self.store.save_daily(summaries)
        except Exception:
            log.exception("daily summary could not be saved")

    async def save_daily_summary(self) -> None:
        """Save today's summary to the store now (e.g. at shutdown)."""
        await self._save_daily(self.daily_summaries())

    # -- summary ---------------------------------------------------------------------------

    def _account_value(self, tag: str) -> float | None:
        for v in self.ib.accountValues(self.account):
            if v.tag == tag and v.currency in (self.base_currency, "BASE"):
                return clean_price(v.value)
        return None

    def get_portfolio_summary(self) -> PortfolioSummary:
        """Exposure (gross, net; by strategy, by security type), cash and net liquidation.

        ``positions`` is a DataFrame of every open position with its figures and its
        notional in the base currency (``notional_base``).
        """
        total = Exposure()
        by_strategy: dict[str, Exposure] = {}
        by_sec_type: dict[str, Exposure] = {}
        unmarked = 0
        frame = self.book.frame()
        notional = []
        for pos in self.book:
            if abs(pos.quantity) < QTY_EPS:
                notional.append(0.0)
                continue
            price = pos.last
            if price is None:
                unmarked += 1
                price = pos.avg_cost
            fx = self._fx(pos.currency)
            if fx is None:
                unmarked += 1
                fx = 0.0
            value = pos.quantity * price * pos.multiplier * fx
            notional.append(value)
            total = total.add(value)
            by_strategy[pos.strategy] = by_strategy.get(pos.strategy, Exposure()).add(value)
            by_sec_type[pos.sec_type] = by_sec_type.get(pos.sec_type, Exposure()).add(value)
        if len(frame):
            frame["notional_base"] = notional
            frame = frame[frame["quantity"].abs() >= QTY_EPS].reset_index(drop=True)
        return PortfolioSummary(
            time=now_utc(),
            base_currency=self.base_currency,
            exposure=total,
            by_strategy=by_strategy,
            by_sec_type=by_sec_type,
            cash=self._account_value("TotalCashValue"),
            net_liquidation=self._account_value("NetLiquidation"),
            unmarked=unmarked,
            positions=frame,
        )

    # -- reconciliation --------------------------------------------------------------------

    def match_ib_positions_with_arcticdb(self) -> list[ReconciliationBreakFound]:
        """The seed's name for :meth:`core.reconciliation.Reconciliation.report`."""
        return self.reconciliation.report()

    # -- history ---------------------------------------------------------------------------

    async def positions_at(self, when: datetime) -> pd.DataFrame:
        """Positions per strategy and contract as they were at ``when`` (store snapshots)."""
        if self.store is None:
            raise RuntimeError("no store: history needs one")
        return await self.store.positions_at(when)

    async def pnl_history(
        self, start: datetime, end: datetime, strategy: str | None = None
    ) -> pd.DataFrame:
        """P&L points between ``start`` and ``end`` (see :meth:`core.store.Store.pnl`)."""
        if self.store is None:
            raise RuntimeError("no store: history needs one")
        return await self.store.pnl(start, end, strategy)

    async def fills_history(
        self, start: datetime, end: datetime, strategy: str | None = None
    ) -> pd.DataFrame:
        """Journalled fills between ``start`` and ``end``."""
        if self.store is None:
            raise RuntimeError("no store: history needs one")
        return await self.store.fills(start, end, strategy)

    def close(self) -> None:
        """Stop listening to ib_async and cancel the pending P&L emission."""
        self.ib.pendingTickersEvent -= self._on_tickers
        if self._pnl_timer is not None:
            self._pnl_timer.cancel()
            self._pnl_timer = None


def _ticker_mark(ticker: Ticker) -> float | None:
    """A position's mark: the same price the ticket and the market data show
    (:attr:`core.marketdata.Quote.mark`: last, else mid, else the previous close).

    One definition: preferring the mid whenever the last trade was outside the current
    spread showed ES at 5,906.62 (half a tick) in the positions grid while the ticket
    said 5,906.00.
    """
    if ticker.contract is None:
        return None
    return quote_from_ticker(ticker).mark
