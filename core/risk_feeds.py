"""Risk's adapters: what subscribes the risk parts to the real core objects.

:class:`core.risk.RiskManager` takes its inputs as small methods that unit tests call
with plain values (``on_order_update``, ``on_pnl``, ...) and as its exposure book's
(:mod:`core.exposure`). The functions here connect those inputs to the objects the
session builds: the TradeManager (the gate and its orders), ib_async's ``IB`` (the
account's positions, base currency and exchange rates), the connection, market data,
:class:`core.account.AccountInfo` and the portfolio. Each source is named by a narrow
Protocol, and the risk side by :class:`RiskInputs`, so this module imports neither the
RiskManager nor the sources (``RiskManager.attach_*`` call these functions).

The adapters add nothing of their own: a quote or an account value goes straight to the
book, everything else to the manager's input of the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from eventkit import Event
from ib_async import AccountValue, Contract, Position, Trade

from core.admission import PreTradeGate
from core.connection import ConnectionStatusChanged
from core.events import AccountValuesChanged, OrderUpdated, PnLChanged, PositionChanged
from core.exposure import ExposureBook, symbol_of
from core.marketdata import Quote, clean_price

__all__ = [
    "AccountFeed",
    "AccountPositionFeed",
    "ConnectionFeed",
    "GateHost",
    "OpenOrdersSource",
    "PortfolioFeed",
    "QuoteFeed",
    "RiskInputs",
    "attach_account",
    "attach_connection",
    "attach_ib",
    "attach_market_data",
    "attach_portfolio",
    "attach_trade_manager",
    "order_update_of",
]


# --------------------------------------------------------------------------- the sources


class _Rechecks(Protocol):
    def recheck(self) -> object: ...


class GateHost(Protocol):
    """The TradeManager as the gate's host: it asks ``pre_trade`` and reports orders."""

    pre_trade: PreTradeGate
    orderUpdated: Event  # (OrderUpdated)

    @property
    def wire(self) -> _Rechecks: ...


class _OpenTrades(Protocol):
    def openTrades(self) -> list[Trade]: ...


class OpenOrdersSource(Protocol):
    """Re-reads the working orders after a reconnect (the TradeManager)."""

    @property
    def ib(self) -> _OpenTrades: ...

    def strategy_of(self, trade: Trade) -> str: ...


class AccountPositionFeed(Protocol):
    """IB's account positions and values (ib_async's ``IB``)."""

    positionEvent: Event  # (Position)
    accountValueEvent: Event  # (AccountValue)

    def positions(self) -> list[Position]: ...

    def accountValues(self, account: str = "") -> list[AccountValue]: ...


class ConnectionFeed(Protocol):
    """Connection health (core.connection.Connection)."""

    statusChanged: Event  # (ConnectionStatusChanged)
    connected: Event  # (reconnect: bool)


class QuoteFeed(Protocol):
    """Quotes and staleness (core.marketdata.MarketData)."""

    quotesUpdated: Event  # (list[Quote])
    staleChanged: Event  # (con_id, stale)

    @property
    def subscriptions(self) -> list[Contract]: ...


class AccountFeed(Protocol):
    """Net liquidation and the account's P&L (core.account.AccountInfo)."""

    valuesChanged: Event  # (AccountValuesChanged)
    pnlChanged: Event  # (PnLChanged)


class _HasChanged(Protocol):
    def changed(self) -> PositionChanged: ...


class PortfolioFeed(Protocol):
    """Strategy positions and P&L (core.portfolio.PortfolioManager)."""

    positionChanged: Event  # (PositionChanged)
    pnlChanged: Event  # (PnLChanged)

    @property
    def book(self) -> Iterable[_HasChanged]: ...


# --------------------------------------------------------------------------- the risk side


class RiskInputs(PreTradeGate, Protocol):
    """The risk side the adapters feed (:class:`core.risk.RiskManager`): the gate, its
    exposure book and its inputs."""

    book: ExposureBook
    tradingStateChanged: Event  # (TradingStateChanged)

    def on_order_update(self, update: OrderUpdated) -> None: ...

    def reset_orders(self, updates: Iterable[OrderUpdated]) -> None: ...

    def on_connection_status(self, status: ConnectionStatusChanged) -> None: ...

    def on_stale(self, con_id: int, stale: bool) -> None: ...

    def on_net_liquidation(self, value: float | None) -> None: ...

    def on_pnl(self, pnl: PnLChanged) -> None: ...

    def on_strategy_position(self, change: PositionChanged) -> None: ...


# --------------------------------------------------------------------------- the adapters


def attach_trade_manager(risk: RiskInputs, trade_manager: GateHost) -> None:
    """Make ``risk`` ``trade_manager``'s pre-trade gate and follow its orders."""
    trade_manager.pre_trade = risk
    trade_manager.orderUpdated += risk.on_order_update
    # The instant trading tightens, orders still waiting for the pacing are asked
    # again (the wire asks each once more as it is written anyway).
    risk.tradingStateChanged += lambda _change: trade_manager.wire.recheck()


def attach_ib(
    risk: RiskInputs, ib: AccountPositionFeed, account: str | Callable[[], str] = ""
) -> None:
    """Follow IB's account positions (``positionEvent``) of ``account`` (all if empty),
    its base currency and its exchange rates (``ExchangeRate`` account values).

    ``account`` may be a function asked at each event (the session passes the trade
    manager's: the configured account, else the first IB manages, known once connected),
    so that with several accounts behind one login another account's position never
    overwrites this one's."""
    book = risk.book
    console = account if callable(account) else (lambda: account)

    def on_value(v: AccountValue) -> None:
        acct = console()
        if acct and v.account != acct:
            return
        if v.tag == "ExchangeRate":
            book.on_exchange_rate(v.currency, clean_price(v.value))
        elif v.tag == "NetLiquidation" and v.currency not in ("", "BASE"):
            book.set_base_currency(v.currency)  # IB states it in the base

    def on_position(p: Position) -> None:
        acct = console()
        if acct and p.account != acct:
            return
        c = p.contract
        book.learn_contract(c)
        book.on_account_position(
            c.conId,
            float(p.position),
            symbol=symbol_of(c),
            sec_type=c.secType or "STK",
            multiplier=float(c.multiplier) if c.multiplier else None,
            currency=c.currency,
        )

    for v in ib.accountValues(console()):
        on_value(v)
    ib.accountValueEvent += on_value
    for p in ib.positions():
        on_position(p)
    ib.positionEvent += on_position


def attach_connection(
    risk: RiskInputs, connection: ConnectionFeed, trade_manager: OpenOrdersSource | None = None
) -> None:
    """Connection health as a risk input; after each (re)connect, re-read the working
    orders from ib_async (when ``trade_manager`` is given)."""
    connection.statusChanged += risk.on_connection_status
    if trade_manager is not None:
        tm = trade_manager

        def resync(_reconnect: bool) -> None:
            risk.reset_orders(order_update_of(t, tm.strategy_of(t)) for t in tm.ib.openTrades())

        connection.connected += resync


def attach_market_data(risk: RiskInputs, market_data: QuoteFeed) -> None:
    """Marks and fat-finger references from quotes; staleness as a health input."""
    book = risk.book

    def on_quotes(quotes: list[Quote]) -> None:
        for q in quotes:
            book.on_quote(
                q.con_id, bid=q.bid, ask=q.ask, last=q.last, close=q.close, symbol=q.symbol
            )

    for c in market_data.subscriptions:
        book.learn_contract(c)
    market_data.quotesUpdated += on_quotes
    market_data.staleChanged += risk.on_stale


def attach_account(risk: RiskInputs, account_info: AccountFeed) -> None:
    """Net liquidation and the account's daily P&L from :class:`core.account.AccountInfo`."""

    def on_values(values: AccountValuesChanged) -> None:
        risk.on_net_liquidation(values.net_liquidation)

    def on_pnl(pnl: PnLChanged) -> None:
        if pnl.strategy is None:
            risk.on_pnl(pnl)

    account_info.valuesChanged += on_values
    account_info.pnlChanged += on_pnl


def attach_portfolio(risk: RiskInputs, portfolio: PortfolioFeed) -> None:
    """Strategy positions (``positionChanged``) and P&L (``pnlChanged``) from the
    PortfolioManager (its positions so far first); account-level P&L from it is
    ignored (AccountInfo feeds that)."""
    portfolio.positionChanged += risk.on_strategy_position

    def on_pnl(pnl: PnLChanged) -> None:
        if pnl.strategy is not None:
            risk.on_pnl(pnl)

    portfolio.pnlChanged += on_pnl
    for position in portfolio.book:
        risk.on_strategy_position(position.changed())


def order_update_of(trade: Trade, strategy: str) -> OrderUpdated:
    """A working order as ib_async holds it, as the update the book takes (a resync)."""
    o, s, c = trade.order, trade.orderStatus, trade.contract
    return OrderUpdated(
        order_id=o.orderId,
        perm_id=o.permId or s.permId,
        client_id=o.clientId,
        strategy=strategy,
        account=o.account,
        con_id=c.conId,
        symbol=symbol_of(c),
        sec_type=c.secType,
        action=o.action,
        quantity=float(o.totalQuantity),
        order_type=o.orderType,
        limit_price=None,
        stop_price=None,
        tif=o.tif,
        status=s.status,
        filled=float(s.filled),
        remaining=float(s.remaining) if s.status else float(o.totalQuantity),
        avg_fill_price=None,
    )
