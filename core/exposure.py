"""The risk side's exposure book: positions, marks, working orders, rates and P&L.

The pre-trade check (:mod:`core.pretrade`) must answer in microseconds with thousands
of positions, so it reads aggregates kept up to date incrementally here, never a walk
over positions or a DataFrame. The book is fed by events only (IB's account positions,
the portfolio's strategy positions, quotes, order updates, P&L), through small methods
that unit tests call with plain values; :mod:`core.risk_feeds` subscribes them to the
real core objects.

Scopes: the account (:data:`core.trading_state.ACCOUNT`, IB's own positions) and one
per strategy (the portfolio's attribution). A contract is keyed by its conId, or by
``(symbol, secType)`` until its conId is known.

Money is in the base currency: a position's value (and so gross and net exposure) is
its quantity x mark x multiplier, in the contract's currency, times IB's rate of that
currency (the ``ExchangeRate`` account value: base per unit). A contract whose currency
is not known is taken to be in the base currency; one whose currency has no rate yet is
left out of the aggregates and listed in its scope's ``unrated`` (the check then says so
instead of judging). The base currency is USD until the account says otherwise.

Why a book of its own and not the portfolio's: the account scope is IB's position
(``positionEvent``), which the portfolio reconciles against but does not hold per
account; and the check needs signed aggregates (gross, net, working per side) the
portfolio has no reason to keep. Strategy positions are the portfolio's, fed in as its
``PositionChanged`` events: the book keeps the numbers, not a second attribution.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ib_async import Contract
from ib_async.util import UNSET_DOUBLE

from core.events import EXTERNAL, OrderUpdated, PositionChanged
from core.orders import price_or_none
from core.trading_state import ACCOUNT

__all__ = ["ExposureBook", "Key", "ScopeBook", "symbol_of"]

_EPS = 1e-9

Key = int | tuple[str, str]


def symbol_of(contract: Contract) -> str:
    """The symbol a trader reads (the pair for forex)."""
    if contract.secType == "CASH" and contract.localSymbol:
        return contract.localSymbol
    return contract.symbol or contract.localSymbol or str(contract.conId)


_UNSET_BELOW = UNSET_DOUBLE / 2  # what core.orders.is_unset calls "not set" (and inf)


def price(value: Any) -> float | None:
    """A price, or None when IB means "not set" or sent 0 (no price). Negative prices
    stay: a spread (BAG) trades at them."""
    if value.__class__ is float:  # the pre-trade check's hot path: no conversions
        if value == 0.0 or value != value or abs(value) >= _UNSET_BELOW:
            return None
        return value
    v = price_or_none(value)
    return None if v == 0 else v


class ScopeBook:
    """One scope's positions and incrementally kept aggregates."""

    __slots__ = (
        "gross",
        "hwm",
        "name",
        "net",
        "notional",
        "pnl",
        "qty",
        "sent",
        "unrated",
        "working",
        "working_count",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.qty: dict[Key, float] = {}
        self.notional: dict[Key, float] = {}
        self.gross = 0.0
        self.net = 0.0
        #: Held keys valued at nothing: their currency has no exchange rate yet.
        self.unrated: set[Key] = set()
        self.working: dict[Key, list[float]] = {}  # key -> [buy remaining, sell remaining]
        self.working_count = 0
        self.sent: collections.deque[float] = collections.deque()  # monotonic send times
        self.pnl: float | None = None  # the day's P&L
        self.hwm = 0.0  # the day's P&L high-water mark

    def recent(self, now: float) -> int:
        """Orders sent in the last second (without forgetting older ones)."""
        return recent(self.sent, now)


@dataclass(slots=True)
class _Working:
    strategy: str
    key: Key
    side: int  # 0 buy, 1 sell
    remaining: float


class ExposureBook:
    """Positions, marks, working orders and rates of the account and each strategy.

    ``on_change`` (if set) is called after a change that moves a limit's utilization.
    """

    def __init__(self) -> None:
        self.account = ScopeBook(ACCOUNT)
        self.scopes: dict[str, ScopeBook] = {ACCOUNT: self.account}
        self.alias: dict[tuple[str, str], int] = {}
        self.symbol: dict[Key, str] = {}
        self.sec_type: dict[Key, str] = {}
        self.mult: dict[Key, float] = {}
        self.mark: dict[Key, float] = {}
        #: The account's base currency (the limits' currency).
        self.base_currency = "USD"
        #: IB's exchange rates: base currency per unit of each currency.
        self.rates: dict[str, float] = {}
        self.currency: dict[Key, str] = {}  # the contract's currency, where known
        #: Base per unit of each key's currency, for keys whose currency and rate are
        #: known (1.0 for the base currency's): one dict read in the check.
        self.fx: dict[Key, float] = {}
        self._by_currency: dict[str, set[Key]] = {}
        self.ref: dict[Key, float] = {}  # mid else last: the fat-finger reference
        self.quotes: dict[Key, tuple[float | None, float | None, float | None]] = {}
        self.stale: set[Key] = set()
        self.orders: dict[tuple[int, int], _Working] = {}
        self.console_sent: collections.deque[float] = collections.deque()
        self.strategy_positions_known = False
        self.net_liquidation: float | None = None
        #: The net liquidation the day's percentage loss limit is measured on.
        self.loss_base: float | None = None
        self._holders: dict[Key, list[ScopeBook]] = {}
        self.on_change: Callable[[], None] = _nothing

    def scope(self, name: str) -> ScopeBook:
        """The book of ``name``, made when first asked."""
        book = self.scopes.get(name)
        if book is None:
            book = self.scopes[name] = ScopeBook(name)
        return book

    # -- contracts ----------------------------------------------------------------------

    def learn_contract(self, contract: Contract) -> Key:
        """Remember a contract's symbol, type and multiplier; returns its key."""
        key = self.key(contract)
        sym = symbol_of(contract)
        sec = contract.secType or "STK"
        if contract.conId:
            self.alias[(sym, sec)] = contract.conId
        self.symbol.setdefault(key, sym)
        self.sec_type.setdefault(key, sec)
        if contract.currency:
            self.learn_currency(key, contract.currency)
        if contract.multiplier:
            with contextlib.suppress(ValueError):
                self.mult[key] = float(contract.multiplier) or 1.0
        return key

    def learn_currency(self, key: Key, currency: str) -> None:
        """The currency ``key``'s prices are in (revalues its positions if it changed)."""
        if not currency or self.currency.get(key) == currency:
            return
        old = self.currency.get(key)
        if old is not None:
            self._by_currency[old].discard(key)
        self.currency[key] = currency
        self._by_currency.setdefault(currency, set()).add(key)
        self._refx(key)
        if self._holders.get(key):
            self.on_change()

    def rate(self, currency: str) -> float | None:
        """Base currency per unit of ``currency`` (1.0 for the base currency and for an
        unknown one, ""), or None while IB has sent no rate for it."""
        if not currency or currency == self.base_currency:
            return 1.0
        return self.rates.get(currency)

    def on_exchange_rate(self, currency: str, rate: float | None) -> None:
        """IB's ``ExchangeRate`` account value: base per unit of ``currency`` (``BASE``'s,
        always 1, is not a currency and is ignored; so is a rate that is not positive)."""
        if currency in ("", "BASE") or rate is None or not rate > 0:
            return
        if self.rates.get(currency) == rate:
            return
        self.rates[currency] = rate
        if currency != self.base_currency:
            for key in self._by_currency.get(currency, ()):
                self._refx(key)
            self.on_change()

    def set_base_currency(self, currency: str) -> None:
        """The account's base currency (IB gives its headline values in it)."""
        if not currency or currency == "BASE" or currency == self.base_currency:
            return
        self.base_currency = currency
        for key in list(self.currency):
            self._refx(key)
        self.on_change()

    def _refx(self, key: Key) -> None:
        rate = self.rate(self.currency.get(key, ""))
        if rate is None:
            self.fx.pop(key, None)
        else:
            self.fx[key] = rate
        for book in self._holders.get(key, ()):
            self._revalue(book, key)

    def key(self, contract: Contract) -> Key:
        """The book's key of ``contract`` (its conId once known)."""
        if contract.conId:
            return contract.conId
        sym = symbol_of(contract)
        sec = contract.secType or "STK"
        return self.alias.get((sym, sec)) or (sym, sec)

    def con_id_of(self, contract: Contract) -> int | None:
        """The contract's conId, or the one learnt for its symbol."""
        key = self.key(contract)
        return key if isinstance(key, int) else None

    def key_of(self, con_id: int, symbol: str, sec_type: str) -> Key:
        """The key of a contract given as plain values (learning the alias)."""
        if con_id:
            if symbol:
                self.alias[(symbol, sec_type or "STK")] = con_id
                self.symbol.setdefault(con_id, symbol)
                self.sec_type.setdefault(con_id, sec_type or "STK")
            return con_id
        s = (symbol, sec_type or "STK")
        return self.alias.get(s) or s

    def symbol_for(self, key: Key, contract: Contract | None = None) -> str:
        """The symbol of ``key`` as learnt, else the contract's."""
        sym = self.symbol.get(key)
        if sym:
            return sym
        if contract is not None:
            return symbol_of(contract)
        return str(key)

    # -- positions and marks ------------------------------------------------------------

    def on_account_position(
        self,
        con_id: int,
        quantity: float,
        *,
        symbol: str = "",
        sec_type: str = "STK",
        multiplier: float | None = None,
        currency: str = "",
    ) -> None:
        """IB's position of the account in one contract (signed)."""
        key = self.key_of(con_id, symbol, sec_type)
        self.learn_currency(key, currency)
        if multiplier:
            self.mult[key] = multiplier
        self._set_qty(self.account, key, float(quantity))

    def on_strategy_position(self, change: PositionChanged) -> None:
        """One strategy's position in one contract (from the portfolio)."""
        self.strategy_positions_known = True
        key = self.key_of(change.con_id, change.symbol, change.sec_type)
        self.learn_currency(key, change.currency)
        if change.multiplier:
            self.mult[key] = change.multiplier
        if change.last is not None and key not in self.mark:
            self._set_mark(key, change.last)
        self._set_qty(self.scope(change.strategy), key, change.quantity)

    def _set_qty(self, book: ScopeBook, key: Key, qty: float) -> None:
        old = book.qty.get(key, 0.0)
        if abs(qty) < _EPS:
            if key in book.qty:
                del book.qty[key]
                holders = self._holders.get(key)
                if holders and book in holders:
                    holders.remove(book)
        else:
            if key not in book.qty:
                self._holders.setdefault(key, []).append(book)
            book.qty[key] = qty
        if old != qty:
            self._revalue(book, key)
            self.on_change()

    def _revalue(self, book: ScopeBook, key: Key) -> None:
        old = book.notional.pop(key, 0.0)
        mark = self.mark.get(key)
        qty = book.qty.get(key, 0.0)
        new = 0.0
        book.unrated.discard(key)
        if mark is not None and qty:
            fx = self.fx.get(key) or self.rate(self.currency.get(key, ""))
            if fx is None:
                book.unrated.add(key)
            else:
                new = qty * mark * self.mult.get(key, 1.0) * fx
        if new:
            book.notional[key] = new
        book.gross += abs(new) - abs(old)
        book.net += new - old

    def on_quote(
        self,
        con_id: int,
        *,
        bid: float | None = None,
        ask: float | None = None,
        last: float | None = None,
        close: float | None = None,
        symbol: str = "",
        sec_type: str = "STK",
    ) -> None:
        """A quote: sets the mark (last, else mid, else close) and the fat-finger reference."""
        key = self.key_of(con_id, symbol, sec_type)
        bid, ask, last, close = price(bid), price(ask), price(last), price(close)
        mid = (bid + ask) / 2 if bid is not None and ask is not None else None
        self.quotes[key] = (bid, ask, last)
        ref = mid if mid is not None else last
        if ref is not None:
            self.ref[key] = ref
        mark = last if last is not None else (mid if mid is not None else close)
        if mark is not None:
            self._set_mark(key, mark)

    def on_mark(self, con_id: int, value: float) -> None:
        """A mark price only (also the fat-finger reference when no quote is known)."""
        p = price(value)
        if p is None:
            return
        self.ref.setdefault(con_id, p)
        self._set_mark(con_id, p)

    def _set_mark(self, key: Key, value: float) -> None:
        if self.mark.get(key) == value:
            return
        self.mark[key] = value
        holders = self._holders.get(key)
        if holders:
            for book in holders:
                self._revalue(book, key)
            self.on_change()

    def on_stale(self, con_id: int, stale: bool) -> None:
        """Market data for a contract stopped (or resumed) updating."""
        if stale:
            self.stale.add(con_id)
        else:
            self.stale.discard(con_id)

    def quote(self, con_id: int) -> tuple[float | None, float | None, float | None]:
        """The last known (bid, ask, last) of a contract."""
        return self.quotes.get(con_id, (None, None, self.mark.get(con_id)))

    def position(self, scope: str, con_id: int) -> float:
        """A scope's known position in a contract (signed; 0 if none)."""
        book = self.scopes.get(scope)
        return book.qty.get(con_id, 0.0) if book is not None else 0.0

    def strategy_positions(self, con_id: int | None = None) -> dict[str, dict[int, float]]:
        """Known strategy positions (strategy -> conId -> signed quantity)."""
        out: dict[str, dict[int, float]] = {}
        for name, book in self.scopes.items():
            if name == ACCOUNT:
                continue
            q = {
                k: v
                for k, v in book.qty.items()
                if isinstance(k, int) and (con_id is None or k == con_id)
            }
            if q:
                out[name] = q
        return out

    # -- working orders and rates -------------------------------------------------------

    def on_order_update(self, update: OrderUpdated) -> None:
        """An order's status or remaining quantity changed (TradeManager.orderUpdated)."""
        oid = (update.client_id, update.order_id)
        old = self.orders.pop(oid, None)
        if old is not None:
            self._add_working(old, -1)
        if update.is_working and update.remaining > _EPS:
            key = self.key_of(update.con_id, update.symbol, update.sec_type)
            w = _Working(
                update.strategy or EXTERNAL,
                key,
                0 if update.action == "BUY" else 1,
                float(update.remaining),
            )
            self.orders[oid] = w
            self._add_working(w, +1)
        if (old is None) != (oid not in self.orders):
            self.on_change()

    def reset_orders(self, updates: Iterable[OrderUpdated]) -> None:
        """Forget every working order and take these instead (after a reconnect)."""
        for w in self.orders.values():
            self._add_working(w, -1)
        self.orders.clear()
        for u in updates:
            self.on_order_update(u)
        self.on_change()

    def _add_working(self, w: _Working, sign: int) -> None:
        for book in (self.account, self.scope(w.strategy)):
            side = book.working.get(w.key)
            if side is None:
                side = book.working[w.key] = [0.0, 0.0]
            side[w.side] += sign * w.remaining
            book.working_count += sign
            if side[0] < _EPS and side[1] < _EPS:
                del book.working[w.key]

    def replaced(self, client_id: int, order_id: int, side: int) -> float:
        """The remaining quantity of a working order on ``side`` (0 if unknown)."""
        w = self.orders.get((client_id, order_id))
        if w is None or w.side != side:
            return 0.0
        return w.remaining

    def working_orders(self, scope: str = ACCOUNT) -> int:
        """How many orders of ``scope`` are working."""
        book = self.scopes.get(scope)
        return book.working_count if book is not None else 0

    def console_recent(self, now: float) -> int:
        """Orders the whole console sent in the last second."""
        return recent(self.console_sent, now)

    def record_sent(self, now: float, *scopes: str) -> None:
        """An order was approved to be sent at ``now`` (monotonic): it counts for the
        whole console and for each of ``scopes`` (those with a rate limit)."""
        _push(self.console_sent, now)
        for name in scopes:
            _push(self.scope(name).sent, now)

    # -- P&L -----------------------------------------------------------------------------

    def set_pnl(self, scope: str, daily: float) -> ScopeBook:
        """The day's P&L of a scope (and its high-water mark)."""
        book = self.scope(scope)
        book.pnl = daily
        book.hwm = max(book.hwm, daily)
        if scope == ACCOUNT and self.loss_base is None and self.net_liquidation is not None:
            self.loss_base = self.net_liquidation - daily
        self.on_change()
        return book

    def set_net_liquidation(self, value: float) -> None:
        """The account's net liquidation value (base currency)."""
        self.net_liquidation = value
        if self.loss_base is None:
            pnl = self.account.pnl
            self.loss_base = value - pnl if pnl is not None else value
        self.on_change()

    def new_day(self) -> None:
        """A new trading day: the daily P&L and high-water marks start again."""
        for book in self.scopes.values():
            book.pnl = None
            book.hwm = 0.0
        self.loss_base = self.net_liquidation
        self.on_change()


def recent(sent: collections.deque[float], now: float) -> int:
    """How many of ``sent`` (oldest first) are within the second before ``now``.

    Sending prunes the window, so only the few stale ones at the left are skipped.
    """
    old = 0
    n = len(sent)
    while old < n and now - sent[old] >= 1.0:
        old += 1
    return n - old


def _nothing() -> None:
    pass


def _push(sent: collections.deque[float], now: float) -> None:
    """Append ``now`` to a window of send times, forgetting what left the last second."""
    while sent and now - sent[0] >= 1.0:
        sent.popleft()
    sent.append(now)
