"""Immutable events that core publishes and the GUI (and strategies) consume.

ib_async's objects (``Trade``, ``Fill``) mutate as the session goes on; the GUI must
never hold one it did not ask for. These small frozen dataclasses are what crosses the
core/GUI border: each carries plain values and a UTC timestamp, and is named in the
past tense.

Money is in the contract's currency unless a field says otherwise. Quantities are
signed where the field says ``signed``: positive long, negative short.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = [
    "DONE_STATUSES",
    "LOST",
    "NOT_SENT",
    "QTY_EPS",
    "AccountValuesChanged",
    "AuditRecorded",
    "ConnectionState",
    "ConnectionStatusChanged",
    "FillRecorded",
    "LimitUtilizationChanged",
    "OrderRejected",
    "OrderUpdated",
    "PnLChanged",
    "PositionChanged",
    "ReconciliationBreakFound",
    "SessionResynchronised",
    "StoreErrorOccurred",
    "StoreHealthChanged",
    "TradingState",
    "TradingStateChanged",
    "now_utc",
]

#: The strategy name of orders placed by a person in the console's ticket.
MANUAL = "manual"
#: The strategy bucket for orders and positions the console did not originate
#: (TWS itself, other client ids) and could not attribute.
EXTERNAL = "external"

#: An order the console never wrote to the gateway: the wire's last check refused it,
#: it was cancelled while still waiting, or the connection closed first. Terminal.
NOT_SENT = "NotSent"
#: An order the gateway, after a reconnect, does not know (not open, not completed, no
#: execution): written just before the drop, or working before it and gone since (e.g.
#: the gateway restarted without it). Terminal; never resent; the trader looks for it.
LOST = "Lost"
#: Quantities closer to zero than this are zero (fractional shares, FX lots).
QTY_EPS = 1e-9
#: Statuses after which an order can neither fill nor change.
DONE_STATUSES = frozenset({"Filled", "Cancelled", "ApiCancelled", NOT_SENT, LOST})


def now_utc() -> datetime:
    """The current time, timezone-aware in UTC (every event's clock)."""
    return datetime.now(UTC)


class ConnectionState(enum.StrEnum):
    """Where the connection is; every change is a :class:`ConnectionStatusChanged`."""

    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    LINK_LOST = "link lost"  # socket up, but the gateway lost its link to IB (1100)
    RECONNECTING = "reconnecting"
    GIVEN_UP = "given up"


@dataclass(frozen=True, slots=True)
class ConnectionStatusChanged:
    """The connection moved to ``state``; ``attempt`` counts reconnection attempts.

    Published by :class:`core.connection.Connection`; defined here, with the other
    events, so that this bottom module depends on nothing above it.
    """

    state: ConnectionState
    host: str
    port: int
    client_id: int
    reason: str = ""
    attempt: int = 0
    next_retry_in: float | None = None
    accounts: tuple[str, ...] = ()
    server_version: int = 0
    time: datetime = field(default_factory=now_utc)

    def describe(self) -> str:
        """One line for a status bar or a log."""
        where = f"{self.host}:{self.port} client {self.client_id}"
        text = f"{self.state.value} ({where})"
        if self.state is ConnectionState.RECONNECTING:
            text = f"reconnecting, attempt {self.attempt} ({where})"
            if self.next_retry_in is not None:
                text += f", next try in {self.next_retry_in:.1f}s"
        if self.reason:
            text += f": {self.reason}"
        return text


@dataclass(frozen=True, slots=True)
class OrderUpdated:
    """An order's status, fill progress or parameters changed."""

    order_id: int
    perm_id: int
    client_id: int
    strategy: str
    account: str
    con_id: int
    symbol: str
    sec_type: str
    action: str  # BUY / SELL
    quantity: float
    order_type: str
    limit_price: float | None
    stop_price: float | None
    tif: str
    status: str  # IB's status: PendingSubmit, PreSubmitted, Submitted, Filled, Cancelled, ...
    filled: float
    remaining: float
    avg_fill_price: float | None
    message: str = ""  # the last log line IB attached (reject reason, warning)
    time: datetime = field(default_factory=now_utc)
    #: When the order was placed (first seen, for an order placed elsewhere): kept
    #: across restarts from the orders journal, as IB's openOrder carries no time.
    placed: datetime | None = None
    #: The contract's minimum price increment, when known: prices show its decimals.
    min_tick: float | None = None
    #: The connection to the gateway is down: this is the last state IB confirmed and
    #: it may have changed since (it is looked for after the reconnect).
    link_down: bool = False
    #: This status was learned after a reconnect: it happened while the console was
    #: disconnected (e.g. cancelled in TWS), so nobody saw it happen.
    while_away: bool = False

    @property
    def is_working(self) -> bool:
        """Still able to fill (PendingCancel and Inactive included: they may still fill)."""
        return self.status not in DONE_STATUSES


@dataclass(frozen=True, slots=True)
class FillRecorded:
    """An execution, written to the fills journal before anyone is told of it."""

    exec_id: str
    order_id: int
    perm_id: int
    client_id: int
    strategy: str
    account: str
    con_id: int
    symbol: str
    sec_type: str
    currency: str
    exchange: str
    side: str  # BOT / SLD
    quantity: float  # unsigned, as IB reports it
    price: float
    multiplier: float
    commission: float | None  # None until IB's commission report arrives
    realized_pnl: float | None  # IB's realized P&L of this fill, when it closed something
    order_ref: str
    time: datetime
    #: The contract's minimum price increment when the fill was recorded (None: not
    #: known then): the price shows with its decimals, after a restart too.
    min_tick: float | None = None

    @property
    def signed_quantity(self) -> float:
        """Positive for a buy, negative for a sell."""
        return self.quantity if self.side == "BOT" else -self.quantity


@dataclass(frozen=True, slots=True)
class OrderRejected:
    """IB (or a pre-trade check) refused an order or a modification; ``code`` is IB's
    error code, or 0 when the console itself refused it."""

    order_id: int
    strategy: str
    symbol: str
    code: int
    message: str
    reasons: tuple[str, ...] = ()
    time: datetime = field(default_factory=now_utc)


@dataclass(frozen=True, slots=True)
class PositionChanged:
    """A (strategy, contract) position's quantity or marks changed."""

    strategy: str
    account: str
    con_id: int
    symbol: str
    sec_type: str
    currency: str
    multiplier: float
    quantity: float  # signed
    avg_cost: float  # per unit, multiplier excluded
    last: float | None  # None while no live mark (never IB's placeholder values)
    market_value: float | None
    unrealized_pnl: float | None
    realized_pnl: float
    daily_pnl: float | None
    commissions: float
    stale: bool = False  # the mark stopped updating
    time: datetime = field(default_factory=now_utc)


@dataclass(frozen=True, slots=True)
class PnLChanged:
    """P&L of one strategy, or of the account when ``strategy`` is None."""

    strategy: str | None
    daily: float
    realized: float
    unrealized: float
    time: datetime = field(default_factory=now_utc)

    @property
    def total(self) -> float:
        """Realized plus unrealized."""
        return self.realized + self.unrealized


@dataclass(frozen=True, slots=True)
class AccountValuesChanged:
    """Headline account figures; None where IB has not sent a value yet."""

    account: str
    currency: str
    net_liquidation: float | None
    cash: float | None
    buying_power: float | None
    excess_liquidity: float | None
    gross_position_value: float | None
    init_margin: float | None
    maint_margin: float | None
    daily_pnl: float | None
    unrealized_pnl: float | None
    realized_pnl: float | None
    time: datetime = field(default_factory=now_utc)


@dataclass(frozen=True, slots=True)
class ReconciliationBreakFound:
    """IB's position in a contract differs from the sum of the strategies' stored ones."""

    account: str
    con_id: int
    symbol: str
    ib_quantity: float
    stored_quantity: float
    likely_cause: str
    time: datetime = field(default_factory=now_utc)

    @property
    def difference(self) -> float:
        """IB minus stored."""
        return self.ib_quantity - self.stored_quantity


class TradingState(enum.StrEnum):
    """Risk's trading state for the account or one strategy."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"  # only orders that shrink a position pass
    HALTED = "HALTED"  # nothing but the emergency stop's own flattening orders


@dataclass(frozen=True, slots=True)
class TradingStateChanged:
    """The trading state of ``scope`` ("account" or a strategy name) changed."""

    scope: str
    state: TradingState
    previous: TradingState
    reason: str
    changed_by: str  # a person ("gui"), a strategy, or "risk" for automatic changes
    time: datetime = field(default_factory=now_utc)


@dataclass(frozen=True, slots=True)
class LimitUtilizationChanged:
    """How much of a risk limit is used: ``value / limit`` (1.0 = at the limit)."""

    scope: str
    limit: str  # e.g. "max_gross_exposure"
    value: float
    limit_value: float
    time: datetime = field(default_factory=now_utc)

    @property
    def utilization(self) -> float:
        """``value / limit_value``; 0 when the limit is 0 or unset."""
        return self.value / self.limit_value if self.limit_value else 0.0


@dataclass(frozen=True, slots=True)
class AuditRecorded:
    """An audit record: who did what, when, and what came of it."""

    actor: str  # "gui", a strategy name, "risk", "system"
    action: str  # place, modify, cancel, cancel_all, emergency_stop, set_trading_state, ...
    subject: str  # a human description: "BUY 100 AAPL LMT 189.50 DAY"
    result: str  # accepted, refused: ..., error 201: ...
    order_id: int | None = None
    strategy: str | None = None
    time: datetime = field(default_factory=now_utc)


@dataclass(frozen=True, slots=True)
class StoreErrorOccurred:
    """A storage operation failed (``operation``: e.g. "append_fills", "flush").

    ``pending_fills`` counts executions kept in memory until a write succeeds: they are
    not lost, and not counted as handled.
    """

    operation: str
    message: str  # credentials redacted
    pending_fills: int = 0
    time: datetime = field(default_factory=now_utc)


@dataclass(frozen=True, slots=True)
class SessionResynchronised:
    """The console came back after losing the gateway (a drop, TWS's nightly restart)
    and caught up: orders and executions re-read, market data asked for again.

    ``executions_recovered`` counts executions that happened while it was away (now
    journalled once); ``working_orders`` the orders still working at IB;
    ``subscriptions`` the market data subscriptions renewed; ``trading_state`` the
    account's state, unchanged by the reconnect (a HALTED console stays HALTED).
    """

    down_since: datetime | None  # when the connection was lost
    executions_recovered: int
    working_orders: int
    subscriptions: int
    trading_state: TradingState
    time: datetime = field(default_factory=now_utc)

    def describe(self) -> str:
        """One line for the log and the status bar."""
        away = ""
        if self.down_since is not None:
            away = f" after {(self.time - self.down_since).total_seconds():.0f} s away"
        n = self.executions_recovered
        return (
            f"Reconnected{away}: {n} execution{'' if n == 1 else 's'} recovered, "
            f"{self.working_orders} order{'' if self.working_orders == 1 else 's'} working, "
            f"{self.subscriptions} market data subscription"
            f"{'' if self.subscriptions == 1 else 's'} renewed; trading {self.trading_state.value}"
        )


@dataclass(frozen=True, slots=True)
class StoreHealthChanged:
    """The store's health changed: its ``state`` or how many fills wait to be durable.

    ``state`` is one of ``"ok"``, ``"slow"`` (a call took longer than it should, but
    worked), ``"failing"`` (the last write failed or timed out: what it carried is kept
    and retried), ``"lease lost"`` (another console took this console's writer
    identity: nothing more is written) and ``"closed"``. ``pending_fills`` counts every
    execution not durable yet; ``message`` says why, credentials redacted.
    """

    state: str
    pending_fills: int
    message: str = ""
    writer: str = ""
    time: datetime = field(default_factory=now_utc)
