"""RiskManager: limits, the trading state, the pre-trade gate, drawdown watch, sizing.

Every order, from the ticket or a strategy, passes :meth:`RiskManager.check` before the
TradeManager sends it (``RiskManager`` implements :class:`core.trading.PreTradeGate`).
The answer is an approval or *every* reason for refusal in plain words, naming the
limit, its value and the value the order would reach::

    max position AAPL 1,000 shares: this order would make it 1,200

Scopes
------
Limits and trading states exist for the account (scope ``"account"``) and for each
strategy (scope = the strategy's name). The emergency stop can also halt one contract
(scope ``"contract:<conId>"``). An order is governed by the *stricter* of the account's,
its strategy's and its contract's states.

Trading states
--------------
``ACTIVE`` lets everything through that the limits allow. ``REDUCING`` lets through only
orders that shrink a position (an order that would flip a position counts as opening for
the part beyond flat). ``HALTED`` lets through nothing but the emergency stop's own
flattening orders. Cancels never come here: they are never refused. The state changes
only through :meth:`RiskManager.set_trading_state`; each change is a
:class:`core.events.TradingStateChanged` event and an audit record, and is saved in the
store, so a restarted console comes back in the state a person last left it in. Leaving
``HALTED`` takes :meth:`RiskManager.reset_halt` with a typed confirmation.

What "reduces a position" means
-------------------------------
For the account scope: the account's position in the contract as IB reports it. For a
strategy: the strategy's own position (from the portfolio). Orders from the ticket
(``manual``), ``external`` ones, and every strategy while no portfolio feeds the risk
manager, are judged against the account's position. Working orders on the same side
count: with 100 long and a working SELL 100, another SELL 100 opens a short.

Orders that reduce a position are never refused by a limit (a trader must always be able
to get out); only the trading state's rule applies to them.

Inputs
------
The manager keeps its own incremental book (positions, marks, exposures, working
orders, order rates, P&L per scope) so that :meth:`check` is O(1): no pandas and no walk
over the positions in the hot path. The book is fed by small methods
(:meth:`on_account_position`, :meth:`on_strategy_position`, :meth:`on_quote`,
:meth:`on_order_update`, :meth:`on_pnl`, :meth:`on_net_liquidation`,
:meth:`on_connection_status`, :meth:`on_stale`) that unit tests call with plain values,
and by ``attach_*`` adapters that subscribe them to the real core objects.

Connection health
-----------------
IB's connectivity loss (1100, ``ConnectionState.LINK_LOST``) or a lost socket moves the
account to ``REDUCING``; when the link is healthy again the account goes back to
``ACTIVE``, but only if risk itself moved it there and nobody changed it since. Stale
market data for a contract makes that contract reduce-only (``RiskPolicy.on_stale_data``
= ``"contract"``, the default) or moves the whole account to ``REDUCING`` (``"account"``).

Events
------
* ``tradingStateChanged`` (change: :class:`core.events.TradingStateChanged`)
* ``utilizationChanged`` (utilization: :class:`core.events.LimitUtilizationChanged`):
  coalesced, only when a utilization moves by ``RiskPolicy.utilization_step`` or more,
  crosses 100 %, or is seen for the first time
* ``limitBreached`` (breach: :class:`RiskLimitBreached`): the day's loss or drawdown
  reached its limit and the configured action was taken
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time as _time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, time
from typing import TYPE_CHECKING, Any, Literal, Protocol
from zoneinfo import ZoneInfo

from eventkit import Event
from ib_async import Contract, Order

from core.audit import AuditLog
from core.connection import ConnectionState, ConnectionStatusChanged
from core.events import (
    EXTERNAL,
    MANUAL,
    LimitUtilizationChanged,
    OrderUpdated,
    PnLChanged,
    PositionChanged,
    TradingState,
    TradingStateChanged,
    now_utc,
)
from core.orders import is_unset, price_or_none
from core.precautions import Precautions
from core.trading import EMERGENCY_ACTOR, OrderIntent, PreTradeDecision
from core.tradingday import TradingDay, TradingDayStarted
from core.wire import MAX_MESSAGES_PER_SECOND

if TYPE_CHECKING:
    import pandas as pd

    from core.emergency import EmergencyStop, EmergencyStopResult, StopScope

log = logging.getLogger(__name__)

__all__ = [
    "ACCOUNT",
    "EMERGENCY_ACTOR",
    "IB_MAX_MESSAGES_PER_SECOND",
    "RESUME_CONFIRMATION",
    "STATE_KEY",
    "PositionSize",
    "RiskLimitBreached",
    "RiskLimits",
    "RiskManager",
    "RiskPolicy",
    "SizingParams",
    "StateStore",
    "TradingHours",
    "contract_scope",
    "limits_from_settings",
    "size_by_volatility",
    "stricter",
    "volatility_size",
]

#: The scope name of account-wide limits and state.
ACCOUNT = "account"
#: The console's cap on messages per second: the wire's pacing rate (IB's cap is 50).
IB_MAX_MESSAGES_PER_SECOND = MAX_MESSAGES_PER_SECOND
#: What a person types to leave HALTED.
RESUME_CONFIRMATION = "RESUME"
#: The store key the trading states are saved under.
STATE_KEY = "risk.trading_state"

_EPS = 1e-9
_RANK = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
_UNITS = {"STK": "shares", "FUT": "contracts", "OPT": "contracts", "FOP": "contracts"}

Key = int | tuple[str, str]


def stricter(a: TradingState, b: TradingState) -> TradingState:
    """The stricter of two trading states (HALTED > REDUCING > ACTIVE)."""
    return a if _RANK[a] >= _RANK[b] else b


def contract_scope(con_id: int) -> str:
    """The scope name of one contract's trading state (used by the emergency stop)."""
    return f"contract:{con_id}"


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True, slots=True)
class TradingHours:
    """Hours in which opening orders are allowed, in a time zone, on some weekdays.

    ``end`` before ``start`` means the window crosses midnight. Weekdays are
    ``date.weekday()`` numbers (Monday 0).
    """

    start: time
    end: time
    tz: str = "America/New_York"
    weekdays: frozenset[int] = frozenset(range(5))

    @classmethod
    def parse(cls, text: str, tz: str = "America/New_York") -> TradingHours:
        """``"09:30-16:00"`` (optionally ``"09:30-16:00 Europe/London"``)."""
        parts = text.split()
        if len(parts) == 2:
            tz = parts[1]
        elif len(parts) != 1:
            raise ValueError(f"trading hours {text!r}: expected 'HH:MM-HH:MM [zone]'")
        try:
            a, b = parts[0].split("-")
            start, end = time.fromisoformat(a), time.fromisoformat(b)
            ZoneInfo(tz)
        except ValueError as exc:
            raise ValueError(f"trading hours {text!r}: {exc}") from exc
        return cls(start, end, tz)

    def allows(self, at: datetime) -> bool:
        """True when ``at`` (timezone-aware) falls inside the window."""
        local = at.astimezone(ZoneInfo(self.tz))
        t = local.time()
        if self.start <= self.end:
            inside = self.start <= t < self.end
            day = local.weekday()
        else:  # crosses midnight: the part after midnight belongs to the previous day
            inside = t >= self.start or t < self.end
            day = local.weekday() if t >= self.start else (local.weekday() - 1) % 7
        return inside and day in self.weekdays

    def describe(self) -> str:
        """``09:30-16:00 America/New_York``."""
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.tz}"


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits of one scope (the account or a strategy); ``None`` means no limit.

    Quantities are in units of the contract; notionals, exposures and losses in the
    account's base currency; percentages in percent (5 means 5 %).
    """

    #: Largest quantity of one order.
    max_order_quantity: float | None = None
    #: Largest value of one order (quantity x price x multiplier).
    max_order_notional: float | None = None
    #: Largest absolute position in one contract.
    max_position_quantity: float | None = None
    #: Largest absolute value of the position in one contract.
    max_position_notional: float | None = None
    #: Largest sum of the absolute values of all positions.
    max_gross_exposure: float | None = None
    #: Largest absolute value of long minus short exposure.
    max_net_exposure: float | None = None
    #: Most orders working at once.
    max_working_orders: int | None = None
    #: Most new orders or modifications per second.
    max_orders_per_second: float | None = None
    #: The day's loss (realized + unrealized) at which the breach action is taken.
    daily_loss_limit: float | None = None
    #: The same as a percentage of the day's starting net liquidation value.
    daily_loss_limit_pct: float | None = None
    #: Fall of the day's P&L from its high-water mark at which the action is taken.
    max_drawdown: float | None = None
    #: Largest distance of a limit or stop price from the market (mid, else last), in %.
    fat_finger_pct: float | None = None
    #: Hours in which opening orders are allowed.
    trading_hours: TradingHours | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "trading_hours" or v is None:
                continue
            if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"risk limit {f.name}: {v!r} must be a positive number or None")
        if self.daily_loss_limit_pct is not None and self.daily_loss_limit_pct > 100:
            raise ValueError(
                f"risk limit daily_loss_limit_pct: {self.daily_loss_limit_pct!r} must be 0-100"
            )

    @classmethod
    def from_config(cls, config: Any) -> RiskLimits:
        """Build from :class:`core.config.RiskLimits` (or anything with the same fields).

        A ``trading_hours`` given as text (``"09:30-16:00 America/New_York"``) is parsed.
        """
        values: dict[str, Any] = {}
        for f in fields(cls):
            v = getattr(config, f.name, None)
            if f.name == "trading_hours" and isinstance(v, str):
                v = TradingHours.parse(v)
            values[f.name] = v
        return cls(**values)

    def is_empty(self) -> bool:
        """True when no limit is set."""
        return all(getattr(self, f.name) is None for f in fields(self))


def limits_from_settings(risk: Any) -> tuple[RiskLimits, dict[str, RiskLimits]]:
    """The account's limits and each strategy's own from ``settings.risk``.

    A strategy's limits are only those it sets itself: the account's limits are checked
    as well for every order, so the stricter of the two always applies.
    """
    account = RiskLimits.from_config(risk)
    strategies = {
        name: RiskLimits.from_config(own)
        for name, own in (getattr(risk, "strategies", None) or {}).items()
    }
    return account, strategies


BreachAction = Literal["reducing", "halt", "emergency_stop"]
StaleAction = Literal["contract", "account", "ignore"]


@dataclass(frozen=True, slots=True)
class RiskPolicy:
    """How risk reacts to breaches and to an unhealthy connection or data feed."""

    #: What a daily-loss or drawdown breach does to the breaching scope.
    breach_action: BreachAction = "reducing"
    #: Move the account to REDUCING when the gateway loses IB (1100) or the socket drops.
    reduce_on_link_lost: bool = True
    #: Stale quotes: make that contract reduce-only, move the account to REDUCING, or not.
    on_stale_data: StaleAction = "contract"
    #: Smallest change of a utilization (value / limit) worth an event.
    utilization_step: float = 0.01
    #: Utilization events are computed at most this often (seconds).
    utilization_interval: float = 0.1
    #: The time zone whose midnight starts a new trading day (P&L high-water mark).
    day_tz: str = "America/New_York"
    #: Opening orders the whole console may send per second (IB's cap is 50 messages).
    max_messages_per_second: int = IB_MAX_MESSAGES_PER_SECOND


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class RiskLimitBreached:
    """The day's loss or drawdown of ``scope`` reached its limit; ``action`` was taken."""

    scope: str
    limit: str  # daily_loss_limit, daily_loss_limit_pct, max_drawdown
    value: float
    limit_value: float
    action: str
    time: datetime = field(default_factory=now_utc)


# --------------------------------------------------------------------------- inputs


class StateStore(Protocol):
    """Where the trading state is kept across restarts (``core.store.Store``)."""

    def save_state(self, key: str, value: Any) -> Awaitable[Any]:
        """Save a small JSON-like value under ``key``."""
        ...

    def load_state(self, key: str) -> Awaitable[Any]:
        """The value saved under ``key``, or None."""
        ...


class PortfolioFeed(Protocol):
    """What the risk manager takes from the PortfolioManager."""

    positionChanged: Event  # (PositionChanged)


class _Book:
    """One scope's limits, state and incrementally kept aggregates."""

    __slots__ = (
        "auto",
        "breached",
        "changed_at",
        "changed_by",
        "gross",
        "has_limits",
        "hwm",
        "limits",
        "loss_base",
        "name",
        "net",
        "notional",
        "pnl",
        "qty",
        "reason",
        "sent",
        "state",
        "working",
        "working_count",
    )

    def __init__(self, name: str, limits: RiskLimits) -> None:
        self.name = name
        self.limits = limits
        self.has_limits = not limits.is_empty()
        self.state = TradingState.ACTIVE
        self.reason = ""
        self.changed_by = ""
        self.changed_at: datetime | None = None
        self.auto = False  # REDUCING set by risk for health; risk may lift it
        self.qty: dict[Key, float] = {}
        self.notional: dict[Key, float] = {}
        self.gross = 0.0
        self.net = 0.0
        self.working: dict[Key, list[float]] = {}  # key -> [buy remaining, sell remaining]
        self.working_count = 0
        self.sent: collections.deque[float] = collections.deque()
        self.pnl: float | None = None
        self.hwm = 0.0
        self.loss_base: float | None = None
        self.breached: set[str] = set()


@dataclass(slots=True)
class _Working:
    strategy: str
    key: Key
    side: int  # 0 buy, 1 sell
    remaining: float


# --------------------------------------------------------------------------- formatting


def _num(x: float) -> str:
    """``1200`` -> ``1,200``; ``12.5`` -> ``12.50``."""
    r = round(x)
    if abs(x - r) < 1e-9:
        return f"{r:,}"
    return f"{x:,.2f}"


def _pct(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".") + "%"


def _price(value: Any) -> float | None:
    """A price, or None when IB means "not set" or sent 0 (no price). Negative prices
    stay: a spread (BAG) trades at them."""
    v = price_or_none(value)
    return None if v == 0 else v


# --------------------------------------------------------------------------- manager


class RiskManager:
    """The pre-trade gate, the trading state and the limits of one account.

    Parameters
    ----------
    limits:
        The account's limits (None: none).
    strategy_limits:
        Each strategy's own limits.
    store:
        Where the trading state is saved (:class:`StateStore`); None keeps it in memory.
    audit:
        The session's audit log (a private one if None).
    policy:
        Reactions to breaches and health (:class:`RiskPolicy`).
    clock:
        Monotonic seconds, for order rates (tests pass a fake).
    now:
        Wall-clock time (aware), for trading hours and the trading day.
    trading_day:
        The day boundary shared with the portfolio and the GUI (default: one of its
        own, midnight in ``policy.day_tz``, on ``now``). At each new day the daily P&L,
        drawdown high-water marks and loss-limit breaches reset.

    Events: see the module docstring (``tradingStateChanged``, ``utilizationChanged``,
    ``limitBreached``).
    """

    def __init__(
        self,
        limits: RiskLimits | None = None,
        strategy_limits: Mapping[str, RiskLimits] | None = None,
        *,
        store: StateStore | None = None,
        audit: AuditLog | None = None,
        policy: RiskPolicy | None = None,
        sizing: Mapping[str, SizingParams] | None = None,
        precautions: Precautions | None = None,
        clock: Callable[[], float] = _time.monotonic,
        now: Callable[[], datetime] = now_utc,
        trading_day: TradingDay | None = None,
    ) -> None:
        self.store = store
        self.audit = audit or AuditLog()
        self.policy = policy or RiskPolicy()
        self.sizing: dict[str, SizingParams] = dict(sizing or {})
        #: Per-order caps by security type (core.precautions); None: none.
        self.precautions: Precautions | None = precautions
        self._clock = clock
        self._now = now
        self.tradingStateChanged: Event = Event("tradingStateChanged")
        self.utilizationChanged: Event = Event("utilizationChanged")
        self.limitBreached: Event = Event("limitBreached")
        self._account = _Book(ACCOUNT, limits or RiskLimits())
        self._strategy_limits: dict[str, RiskLimits] = dict(strategy_limits or {})
        self._books: dict[str, _Book] = {ACCOUNT: self._account}
        for name in self._strategy_limits:
            self._book(name)
        self._contract_books: dict[str, _Book] = {}
        # contract facts
        self._alias: dict[tuple[str, str], int] = {}
        self._symbol: dict[Key, str] = {}
        self._sec_type: dict[Key, str] = {}
        self._mult: dict[Key, float] = {}
        self._mark: dict[Key, float] = {}
        self._ref: dict[Key, float] = {}  # mid else last: the fat-finger reference
        self._quote: dict[Key, tuple[float | None, float | None, float | None]] = {}
        self._holders: dict[Key, list[_Book]] = {}
        self._stale: set[Key] = set()
        self._orders: dict[tuple[int, int], _Working] = {}
        self._console_sent: collections.deque[float] = collections.deque()
        self._strategy_positions_fed = False
        self.net_liquidation: float | None = None
        self.trading_day = (
            trading_day if trading_day is not None else TradingDay(self.policy.day_tz, now=now)
        )
        self.trading_day.dayStarted += self.start_day
        # health reasons that put a scope in REDUCING automatically
        self._health: dict[str, set[str]] = {}
        self._flatten_ids: set[int] = set()
        self._unhalt = False
        # persistence and coalescing
        self._save_task: asyncio.Task[None] | None = None
        self._save_again = False
        self._util_last: dict[tuple[str, str], float] = {}
        self._util_handle: asyncio.Handle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.emergency: EmergencyStop | None = None

    @classmethod
    def from_settings(cls, risk: Any, **kwargs: Any) -> RiskManager:
        """Build from ``settings.risk`` (:class:`core.config.RiskSettings`)."""
        account, strategies = limits_from_settings(risk)
        effective = getattr(risk, "effective_precautions", None)
        if effective is not None and "precautions" not in kwargs:
            kwargs["precautions"] = effective()
        return cls(account, strategies, **kwargs)

    # -- limits ------------------------------------------------------------------------

    @property
    def limits(self) -> RiskLimits:
        """The account's limits."""
        return self._account.limits

    def limits_of(self, scope: str) -> RiskLimits:
        """The limits of ``scope`` (the account or a strategy)."""
        book = self._books.get(scope)
        return book.limits if book is not None else RiskLimits()

    def set_limits(self, scope: str, limits: RiskLimits, *, by: str = "gui") -> None:
        """Replace the limits of ``scope``; audited."""
        book = self._book(scope)
        book.limits = limits
        book.has_limits = not limits.is_empty()
        if scope != ACCOUNT:
            self._strategy_limits[scope] = limits
        self.audit.record(by, "set_limits", scope, "applied", strategy=_strategy_or_none(scope))
        self._util_dirty()

    def _book(self, scope: str) -> _Book:
        book = self._books.get(scope)
        if book is None:
            book = _Book(scope, self._strategy_limits.get(scope, RiskLimits()))
            self._books[scope] = book
        return book

    # -- trading state -----------------------------------------------------------------

    def state_of(self, scope: str = ACCOUNT) -> TradingState:
        """The trading state of one scope (ACTIVE when never set)."""
        book = self._books.get(scope) or self._contract_books.get(scope)
        return book.state if book is not None else TradingState.ACTIVE

    def reason_of(self, scope: str = ACCOUNT) -> str:
        """Why ``scope`` is in its state (empty when ACTIVE by default)."""
        book = self._books.get(scope) or self._contract_books.get(scope)
        return book.reason if book is not None else ""

    def effective_state(self, strategy: str, con_id: int | None = None) -> TradingState:
        """The stricter of the account's, the strategy's and the contract's states."""
        state = self._account.state
        book = self._books.get(strategy)
        if book is not None:
            state = stricter(state, book.state)
        if con_id and self._contract_books:
            cb = self._contract_books.get(contract_scope(con_id))
            if cb is not None:
                state = stricter(state, cb.state)
        return state

    def states(self) -> dict[str, TradingState]:
        """Every scope whose state is not ACTIVE, and the account's."""
        out = {ACCOUNT: self._account.state}
        for name, book in (*self._books.items(), *self._contract_books.items()):
            if book.state is not TradingState.ACTIVE:
                out[name] = book.state
        return out

    def set_trading_state(
        self, scope: str, state: TradingState | str, reason: str, by: str
    ) -> bool:
        """Change the trading state of ``scope``; returns False when it already was.

        ``scope`` is ``"account"``, a strategy name or :func:`contract_scope`. Every
        change is an event, an audit record and a save to the store. HALTED is left
        only through :meth:`reset_halt`.

        Raises
        ------
        ValueError
            Leaving HALTED here, or an empty reason.
        """
        return self._set_state(scope, TradingState(state), reason, by, auto=False)

    def _set_state(
        self, scope: str, state: TradingState, reason: str, by: str, *, auto: bool
    ) -> bool:
        if not reason.strip():
            raise ValueError("a trading state change needs a reason")
        book = self._state_book(scope)
        previous = book.state
        if (
            previous is TradingState.HALTED
            and state is not TradingState.HALTED
            and not self._unhalt
        ):
            raise ValueError(
                f"{scope} is HALTED: only reset_halt(...) with the confirmation "
                f"{RESUME_CONFIRMATION!r} leaves it"
            )
        book.auto = auto and state is TradingState.REDUCING
        if previous is state and book.reason == reason:
            return False
        book.state = state
        book.reason = reason
        book.changed_by = by
        book.changed_at = self._now()
        if not auto:
            self._health.pop(scope, None)
        change = TradingStateChanged(scope, state, previous, reason, by, time=book.changed_at)
        log.log(
            logging.WARNING if state is not TradingState.ACTIVE else logging.INFO,
            "trading state %s: %s -> %s (%s, by %s)",
            scope,
            previous,
            state,
            reason,
            by,
        )
        self.audit.record(
            by,
            "set_trading_state",
            f"{scope}: {previous} -> {state}",
            reason,
            strategy=_strategy_or_none(scope),
        )
        self.tradingStateChanged.emit(change)
        self._persist()
        return True

    def _state_book(self, scope: str) -> _Book:
        if scope.startswith("contract:"):
            book = self._contract_books.get(scope)
            if book is None:
                book = _Book(scope, RiskLimits())
                self._contract_books[scope] = book
            return book
        return self._book(scope)

    def reset_halt(
        self,
        by: str,
        confirmation: str,
        *,
        scope: str = ACCOUNT,
        to: TradingState | str = TradingState.ACTIVE,
        reason: str = "",
    ) -> None:
        """Leave HALTED: a person's explicit act, with ``confirmation`` typed as RESUME.

        Raises
        ------
        ValueError
            The confirmation is not :data:`RESUME_CONFIRMATION`, ``scope`` is not
            HALTED, or ``to`` is HALTED.
        """
        target = TradingState(to)
        if confirmation.strip() != RESUME_CONFIRMATION:
            self.audit.record(
                by,
                "reset_halt",
                scope,
                "refused: wrong confirmation text",
                strategy=_strategy_or_none(scope),
            )
            raise ValueError(f"type {RESUME_CONFIRMATION} to confirm resetting the halt")
        if self.state_of(scope) is not TradingState.HALTED:
            raise ValueError(f"{scope} is {self.state_of(scope)}, not HALTED")
        if target is TradingState.HALTED:
            raise ValueError("reset_halt moves to ACTIVE or REDUCING")
        self._unhalt = True
        try:
            self._set_state(scope, target, reason or f"halt reset by {by}", by, auto=False)
        finally:
            self._unhalt = False
        self.audit.record(by, "reset_halt", scope, f"{target}", strategy=_strategy_or_none(scope))

    # -- persistence ---------------------------------------------------------------------

    def snapshot_state(self) -> dict[str, Any]:
        """The saved form of every non-default trading state."""
        scopes = {}
        for name, book in (*self._books.items(), *self._contract_books.items()):
            if book.state is TradingState.ACTIVE and name != ACCOUNT:
                continue
            scopes[name] = {
                "state": str(book.state),
                "reason": book.reason,
                "by": book.changed_by,
                "time": book.changed_at.isoformat() if book.changed_at else None,
                "auto": book.auto,
            }
        return {"version": 1, "scopes": scopes}

    async def restore(self) -> dict[str, TradingState]:
        """Load the saved trading states (call at start, before orders flow).

        Each restored non-ACTIVE state is an event and an audit record ("restored").
        Returns the restored states.
        """
        if self.store is None:
            return {}
        saved = await self.store.load_state(STATE_KEY)
        if not saved:
            return {}
        restored: dict[str, TradingState] = {}
        for scope, entry in (saved.get("scopes") or {}).items():
            try:
                state = TradingState(entry["state"])
            except (KeyError, ValueError, TypeError):
                log.error("risk: ignoring unreadable saved state for %s: %r", scope, entry)
                continue
            book = self._state_book(scope)
            previous = book.state
            book.state = state
            book.reason = str(entry.get("reason") or "")
            book.changed_by = str(entry.get("by") or "")
            when = entry.get("time")
            book.changed_at = datetime.fromisoformat(when) if when else None
            book.auto = bool(entry.get("auto")) and state is TradingState.REDUCING
            if book.auto:
                self._health.setdefault(scope, set()).add("restored")
            restored[scope] = state
            if state is not previous:
                self.audit.record(
                    "system",
                    "set_trading_state",
                    f"{scope}: {previous} -> {state}",
                    f"restored: {book.reason}",
                    strategy=_strategy_or_none(scope),
                )
                self.tradingStateChanged.emit(
                    TradingStateChanged(
                        scope, state, previous, f"restored: {book.reason}", book.changed_by
                    )
                )
        return restored

    def _persist(self) -> None:
        if self.store is None:
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            log.warning("risk: no running loop; trading state not saved until flush_state()")
            self._save_again = True
            return
        if self._save_task is not None and not self._save_task.done():
            self._save_again = True
            return
        self._save_task = asyncio.ensure_future(self._save_loop())

    async def _save_loop(self) -> None:
        assert self.store is not None
        delay = 0.2
        while True:
            self._save_again = False
            try:
                await self.store.save_state(STATE_KEY, self.snapshot_state())
            except Exception:
                log.exception("risk: could not save the trading state; retrying")
                self._save_again = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            if not self._save_again:
                return

    async def flush_state(self) -> None:
        """Wait until the current trading states are saved."""
        if self.store is None:
            return
        if self._save_task is None or self._save_task.done():
            if not self._save_again:
                return
            self._save_task = asyncio.ensure_future(self._save_loop())
        await asyncio.shield(self._save_task)

    # -- inputs: contracts, positions, marks ---------------------------------------------

    def learn_contract(self, contract: Contract) -> Key:
        """Remember a contract's symbol, type and multiplier; returns its key."""
        key = self._key(contract)
        self._learn(key, contract)
        return key

    def _learn(self, key: Key, contract: Contract) -> None:
        sym = _symbol_of(contract)
        sec = contract.secType or "STK"
        if contract.conId:
            self._alias[(sym, sec)] = contract.conId
        self._symbol.setdefault(key, sym)
        self._sec_type.setdefault(key, sec)
        if contract.multiplier:
            with contextlib.suppress(ValueError):
                self._mult[key] = float(contract.multiplier) or 1.0

    def _key(self, contract: Contract) -> Key:
        if contract.conId:
            return contract.conId
        sym = _symbol_of(contract)
        sec = contract.secType or "STK"
        return self._alias.get((sym, sec)) or (sym, sec)

    def _key_of(self, con_id: int, symbol: str, sec_type: str) -> Key:
        if con_id:
            if symbol:
                self._alias[(symbol, sec_type or "STK")] = con_id
                self._symbol.setdefault(con_id, symbol)
                self._sec_type.setdefault(con_id, sec_type or "STK")
            return con_id
        s = (symbol, sec_type or "STK")
        return self._alias.get(s) or s

    def on_account_position(
        self,
        con_id: int,
        quantity: float,
        *,
        symbol: str = "",
        sec_type: str = "STK",
        multiplier: float | None = None,
    ) -> None:
        """IB's position of the account in one contract (signed)."""
        key = self._key_of(con_id, symbol, sec_type)
        if multiplier:
            self._mult[key] = multiplier
        self._set_qty(self._account, key, float(quantity))

    def on_strategy_position(self, change: PositionChanged) -> None:
        """One strategy's position in one contract (from the portfolio)."""
        self._strategy_positions_fed = True
        key = self._key_of(change.con_id, change.symbol, change.sec_type)
        if change.multiplier:
            self._mult[key] = change.multiplier
        if change.last is not None and key not in self._mark:
            self._set_mark(key, change.last)
        self._set_qty(self._book(change.strategy), key, change.quantity)

    def _set_qty(self, book: _Book, key: Key, qty: float) -> None:
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
            self._util_dirty()

    def _revalue(self, book: _Book, key: Key) -> None:
        old = book.notional.pop(key, 0.0)
        mark = self._mark.get(key)
        qty = book.qty.get(key, 0.0)
        new = qty * mark * self._mult.get(key, 1.0) if mark is not None else 0.0
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
        key = self._key_of(con_id, symbol, sec_type)
        bid, ask, last, close = _price(bid), _price(ask), _price(last), _price(close)
        mid = (bid + ask) / 2 if bid is not None and ask is not None else None
        self._quote[key] = (bid, ask, last)
        ref = mid if mid is not None else last
        if ref is not None:
            self._ref[key] = ref
        mark = last if last is not None else (mid if mid is not None else close)
        if mark is not None:
            self._set_mark(key, mark)

    def on_mark(self, con_id: int, price: float) -> None:
        """A mark price only (also the fat-finger reference when no quote is known)."""
        p = _price(price)
        if p is None:
            return
        self._ref.setdefault(con_id, p)
        self._set_mark(con_id, p)

    def _set_mark(self, key: Key, price: float) -> None:
        if self._mark.get(key) == price:
            return
        self._mark[key] = price
        for book in self._holders.get(key, ()):
            self._revalue(book, key)
        if self._holders.get(key):
            self._util_dirty()

    def quote(self, con_id: int) -> tuple[float | None, float | None, float | None]:
        """The last known (bid, ask, last) of a contract."""
        return self._quote.get(con_id, (None, None, self._mark.get(con_id)))

    def position(self, scope: str, con_id: int) -> float:
        """A scope's known position in a contract (signed; 0 if none)."""
        book = self._books.get(scope)
        return book.qty.get(con_id, 0.0) if book is not None else 0.0

    def strategy_positions(self, con_id: int | None = None) -> dict[str, dict[int, float]]:
        """Known strategy positions (strategy -> conId -> signed quantity)."""
        out: dict[str, dict[int, float]] = {}
        for name, book in self._books.items():
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

    @property
    def strategy_positions_known(self) -> bool:
        """True once a portfolio feeds strategy positions."""
        return self._strategy_positions_fed

    # -- inputs: orders ------------------------------------------------------------------

    def on_order_update(self, update: OrderUpdated) -> None:
        """An order's status or remaining quantity changed (TradeManager.orderUpdated)."""
        oid = (update.client_id, update.order_id)
        old = self._orders.pop(oid, None)
        if old is not None:
            self._add_working(old, -1)
        if update.is_working and update.remaining > _EPS:
            key = self._key_of(update.con_id, update.symbol, update.sec_type)
            w = _Working(
                update.strategy or EXTERNAL,
                key,
                0 if update.action == "BUY" else 1,
                float(update.remaining),
            )
            self._orders[oid] = w
            self._add_working(w, +1)
        if (old is None) != (oid not in self._orders):
            self._util_dirty()

    def reset_orders(self, updates: Iterable[OrderUpdated]) -> None:
        """Forget every working order and take these instead (after a reconnect)."""
        for w in self._orders.values():
            self._add_working(w, -1)
        self._orders.clear()
        for u in updates:
            self.on_order_update(u)
        self._util_dirty()

    def _add_working(self, w: _Working, sign: int) -> None:
        for book in (self._account, self._book(w.strategy)):
            side = book.working.get(w.key)
            if side is None:
                side = book.working[w.key] = [0.0, 0.0]
            side[w.side] += sign * w.remaining
            book.working_count += sign
            if side[0] < _EPS and side[1] < _EPS:
                del book.working[w.key]

    def working_orders(self, scope: str = ACCOUNT) -> int:
        """How many orders of ``scope`` are working."""
        book = self._books.get(scope)
        return book.working_count if book is not None else 0

    # -- inputs: health, P&L -----------------------------------------------------------------

    def on_connection_status(self, status: ConnectionStatusChanged) -> None:
        """Connection health: LINK_LOST / a lost socket -> REDUCING; healthy -> back."""
        if not self.policy.reduce_on_link_lost:
            return
        if status.state in (
            ConnectionState.LINK_LOST,
            ConnectionState.DISCONNECTED,
            ConnectionState.RECONNECTING,
            ConnectionState.GIVEN_UP,
        ):
            if status.state is ConnectionState.DISCONNECTED and status.reason.startswith(
                "closed by the user"
            ):
                return
            what = (
                "IB connectivity lost (1100)"
                if status.state is ConnectionState.LINK_LOST
                else f"connection {status.state.value}"
            )
            self._health_bad(ACCOUNT, "link", what)
        elif status.state is ConnectionState.CONNECTED:
            self._health_ok(ACCOUNT, "link", "connection healthy again")

    def on_stale(self, con_id: int, stale: bool) -> None:
        """Market data for a contract stopped (or resumed) updating."""
        action = self.policy.on_stale_data
        if action == "ignore":
            return
        if stale:
            self._stale.add(con_id)
        else:
            self._stale.discard(con_id)
        if action == "account":
            sym = self._symbol.get(con_id, str(con_id))
            if stale:
                self._health_bad(ACCOUNT, f"stale:{con_id}", f"market data for {sym} is stale")
            else:
                self._health_ok(ACCOUNT, f"stale:{con_id}", f"market data for {sym} resumed")

    def _health_bad(self, scope: str, tag: str, why: str) -> None:
        book = self._state_book(scope)
        reasons = self._health.setdefault(scope, set())
        reasons.add(tag)
        if book.state is TradingState.ACTIVE:
            self._set_state(scope, TradingState.REDUCING, why, "risk", auto=True)
        if not book.auto:
            self._health.pop(scope, None)  # someone else owns this state

    def _health_ok(self, scope: str, tag: str, why: str) -> None:
        reasons = self._health.get(scope)
        if not reasons:
            return
        reasons.discard(tag)
        reasons.discard("restored")
        book = self._state_book(scope)
        if not reasons:
            self._health.pop(scope, None)
            if book.auto and book.state is TradingState.REDUCING:
                self._set_state(scope, TradingState.ACTIVE, why, "risk", auto=False)

    def on_net_liquidation(self, value: float | None) -> None:
        """The account's net liquidation value (base currency)."""
        v = _price(value) if value is not None else None
        if v is None:
            return
        self.net_liquidation = v
        if self._account.loss_base is None:
            pnl = self._account.pnl
            self._account.loss_base = v - pnl if pnl is not None else v
        self._util_dirty()

    def on_pnl(self, pnl: PnLChanged) -> None:
        """The day's P&L of the account (``strategy`` None) or a strategy: drawdown watch."""
        self._roll_day()
        scope = ACCOUNT if pnl.strategy is None else pnl.strategy
        book = self._book(scope)
        daily = pnl.daily
        if is_unset(daily):
            return
        book.pnl = daily
        book.hwm = max(book.hwm, daily)
        if scope == ACCOUNT and book.loss_base is None and self.net_liquidation is not None:
            book.loss_base = self.net_liquidation - daily
        self._util_dirty()
        for limit, value, limit_value in self._loss_breaches(book):
            if limit in book.breached:
                continue
            book.breached.add(limit)
            self._breach(book, limit, value, limit_value)

    def _loss_breaches(self, book: _Book) -> Iterator[tuple[str, float, float]]:
        lim = book.limits
        if book.pnl is None:
            return
        loss = -book.pnl
        if lim.daily_loss_limit is not None and loss >= lim.daily_loss_limit:
            yield "daily_loss_limit", loss, lim.daily_loss_limit
        pct_limit = self._pct_loss_limit(book)
        if pct_limit is not None and loss >= pct_limit:
            yield "daily_loss_limit_pct", loss, pct_limit
        if lim.max_drawdown is not None and book.hwm - book.pnl >= lim.max_drawdown:
            yield "max_drawdown", book.hwm - book.pnl, lim.max_drawdown

    def _pct_loss_limit(self, book: _Book) -> float | None:
        pct = book.limits.daily_loss_limit_pct
        if pct is None:
            return None
        base = self._account.loss_base
        return base * pct / 100 if base else None

    def _breach(self, book: _Book, limit: str, value: float, limit_value: float) -> None:
        action = self.policy.breach_action
        text = f"{_limit_title(limit)} {_num(limit_value)} breached: {_num(value)}"
        log.error("risk: %s %s; action: %s", book.name, text, action)
        self.audit.record(
            "risk",
            "limit_breached",
            f"{book.name}: {text}",
            action,
            strategy=_strategy_or_none(book.name),
        )
        self.limitBreached.emit(RiskLimitBreached(book.name, limit, value, limit_value, action))
        if action == "reducing":
            if book.state is TradingState.ACTIVE:
                self._set_state(book.name, TradingState.REDUCING, text, "risk", auto=False)
        elif action == "halt" or self.emergency is None:
            if action == "emergency_stop":
                log.error("risk: no emergency stop attached; halting %s instead", book.name)
            self._set_state(book.name, TradingState.HALTED, text, "risk", auto=False)
        else:
            from core.emergency import StopScope

            scope = StopScope.account() if book.name == ACCOUNT else StopScope.of(book.name)
            self._spawn(self.emergency.stop(text, scope=scope, actor="risk"))

    def _roll_day(self) -> None:
        # The one rollover routine is the trading day's; it calls start_day back.
        self.trading_day.check(self._now())

    def start_day(self, event: TradingDayStarted) -> None:
        """A new trading day: daily P&L, high-water marks and loss-limit breaches start
        again, and a REDUCING that risk set for a daily limit is lifted (HALTED stays:
        only a person leaves it)."""
        for book in list(self._books.values()):
            breached = bool(book.breached)
            book.pnl = None
            book.hwm = 0.0
            book.breached.clear()
            if (
                breached
                and book.state is TradingState.REDUCING
                and book.changed_by == "risk"
                and not book.auto
            ):
                self._set_state(
                    book.name,
                    TradingState.ACTIVE,
                    f"new trading day {event.day.isoformat()}: daily limits reset",
                    "risk",
                    auto=False,
                )
        self._account.loss_base = self.net_liquidation
        self._util_dirty()

    # -- the gate -------------------------------------------------------------------------

    def check(self, intent: OrderIntent) -> PreTradeDecision:
        """Approve ``intent`` or refuse it with every reason (see the module docstring)."""
        order = intent.order
        contract = intent.contract
        key = contract.conId or self._key(contract)
        acct = self._account
        strat = self._books.get(intent.strategy)
        buy = order.action == "BUY"
        qty = float(order.totalQuantity)
        signed = qty if buy else -qty
        side = 0 if buy else 1
        replaced = self._replaced(intent.replaces, key, side)
        # which books judge "reducing": the strategy's own, unless unknown
        own = strat
        if own is None or not self._strategy_positions_fed or intent.strategy in (MANUAL, EXTERNAL):
            own = None
        acct_open = _opening(acct, key, signed, side, replaced)
        own_open = _opening(own, key, signed, side, replaced) if own is not None else acct_open
        opening = max(acct_open, own_open)

        # the state this verdict is given under: the wire re-asks if it tightens (at_wire)
        judged = self.effective_state(intent.strategy, key if isinstance(key, int) else None)
        approved = PreTradeDecision(True, judged_under=judged)
        # trading state: each book judges with its own notion of "reducing"
        flatten = intent.actor == EMERGENCY_ACTOR and id(order) in self._flatten_ids
        if flatten:
            if acct_open > _EPS:
                pos = acct.qty.get(key, 0.0)
                return PreTradeDecision(
                    False,
                    (
                        f"flattening order would reverse the {self._sym(key, contract)} "
                        f"position ({_num(pos)} -> {_num(pos + signed)})",
                    ),
                )
            if not intent.preview:
                self._record_sent(acct, strat)
            return PreTradeDecision(True, judged_under=judged, flatten=True)
        cb = None
        if self._contract_books and isinstance(key, int):
            cb = self._contract_books.get(contract_scope(key))
        reasons: list[str] = []
        if (
            acct.state is not TradingState.ACTIVE
            or (strat is not None and strat.state is not TradingState.ACTIVE)
            or cb is not None
        ):
            for book, book_open in ((acct, acct_open), (strat, own_open), (cb, acct_open)):
                if book is None or book.state is TradingState.ACTIVE:
                    continue
                if book.state is TradingState.HALTED:
                    return PreTradeDecision(False, (self._state_reason(book),))
                if book_open > _EPS:
                    judge = own if book is strat and own is not None else acct
                    reasons.append(
                        self._state_reason(book)
                        + ": "
                        + self._opening_text(judge, key, contract, signed)
                    )
        if opening <= _EPS:
            if reasons:
                return PreTradeDecision(False, tuple(reasons))
            if not intent.preview:
                self._record_sent(acct, strat)
            return approved
        # an opening order: the limits of each scope it opens in apply
        if key in self._stale:
            reasons.append(
                f"market data for {self._sym(key, contract)} is stale: "
                "only orders that reduce a position are let through"
            )
        now = self._clock()
        sent = self._console_sent
        while sent and now - sent[0] >= 1.0:
            sent.popleft()
        cap = self.policy.max_messages_per_second
        if len(sent) >= cap:
            reasons.append(
                f"IB message cap {cap} per second (whole console): "
                f"this order would make it {len(sent) + 1} in the last second"
            )
        if acct_open > _EPS:
            self._check_book(acct, "", intent, key, signed, side, acct_open, replaced, now, reasons)
            if self.precautions is not None:
                reasons += self._check_precautions(intent, key, acct_open)
        if strat is not None and own_open > _EPS:
            self._check_book(
                strat,
                f" (strategy {strat.name})",
                intent,
                key,
                signed,
                side,
                own_open,
                replaced,
                now,
                reasons,
            )
        if reasons:
            return PreTradeDecision(False, tuple(reasons))
        if not intent.preview:
            self._record_sent(acct, strat)
        return approved

    def at_wire(self, intent: OrderIntent, decision: PreTradeDecision) -> str | None:
        """The gate's last word, asked as the order's frame is written: a reason to drop
        it when trading became stricter than the state ``decision`` was given under.

        The emergency stop's own flattening orders pass (they were judged under HALTED's
        rule already); everything else judged under a looser state is dropped, never
        sent: the strategy or the trader decides again under the new state.
        """
        if decision.flatten:
            return None
        con_id = intent.contract.conId or None
        now = self.effective_state(intent.strategy, con_id)
        judged = decision.judged_under or TradingState.ACTIVE
        if _RANK[now] <= _RANK[judged]:
            return None
        scopes = [ACCOUNT, intent.strategy] + ([contract_scope(con_id)] if con_id else [])
        why = next((self.reason_of(s) for s in scopes if self.state_of(s) is now), "")
        return f"trading became {now} before it was written ({why}): not sent"

    def _check_book(
        self,
        book: _Book,
        sfx: str,
        intent: OrderIntent,
        key: Key,
        signed: float,
        side: int,
        opening: float,
        replaced: float,
        now: float,
        reasons: list[str],
    ) -> None:
        if not book.has_limits:
            return
        lim = book.limits
        order, contract = intent.order, intent.contract
        mult = self._mult.get(key)
        if mult is None:
            mult = float(contract.multiplier) if contract.multiplier else 1.0
        mark = self._mark.get(key)
        lmt = _price(order.lmtPrice) if order.orderType in _LIMIT_TYPES else None
        px = lmt if lmt is not None else mark
        if lim.max_order_quantity is not None and opening > lim.max_order_quantity + _EPS:
            reasons.append(
                f"max order quantity {_num(lim.max_order_quantity)} "
                f"{self._unit(key, contract)}{sfx}: this order is {_num(opening)}"
            )
        if lim.max_order_notional is not None:
            if px is None:
                reasons.append(self._no_price(key, contract, "max order notional", sfx))
            elif opening * px * mult > lim.max_order_notional + _EPS:
                reasons.append(
                    f"max order notional {_num(lim.max_order_notional)}{sfx}: "
                    f"this order is {_num(opening * px * mult)}"
                )
        pos = book.qty.get(key, 0.0)
        pending = book.working.get(key)
        same_side = (pending[side] if pending else 0.0) - replaced
        proj = pos + signed + (same_side if side == 0 else -same_side)
        if lim.max_position_quantity is not None and abs(proj) > lim.max_position_quantity + _EPS:
            with_working = f" (with {_num(same_side)} working)" if same_side > _EPS else ""
            reasons.append(
                f"max position {self._sym(key, contract)} {_num(lim.max_position_quantity)} "
                f"{self._unit(key, contract)}{sfx}: this order would make it "
                f"{_num(abs(proj))}{with_working}"
            )
        need_value = (
            lim.max_position_notional is not None
            or lim.max_gross_exposure is not None
            or lim.max_net_exposure is not None
        )
        if need_value:
            vpx = mark if mark is not None else px
            if vpx is None:
                reasons.append(self._no_price(key, contract, "position value", sfx))
            else:
                new_val = proj * vpx * mult
                old_val = book.notional.get(key, 0.0)
                if (
                    lim.max_position_notional is not None
                    and abs(new_val) > lim.max_position_notional + _EPS
                ):
                    reasons.append(
                        f"max position notional {self._sym(key, contract)} "
                        f"{_num(lim.max_position_notional)}{sfx}: this order would make it "
                        f"{_num(abs(new_val))}"
                    )
                if lim.max_gross_exposure is not None:
                    gross = book.gross - abs(old_val) + abs(new_val)
                    if gross > lim.max_gross_exposure + _EPS and gross > book.gross:
                        reasons.append(
                            f"max gross exposure {_num(lim.max_gross_exposure)}{sfx}: "
                            f"this order would make it {_num(gross)}"
                        )
                if lim.max_net_exposure is not None:
                    net = book.net - old_val + new_val
                    if abs(net) > lim.max_net_exposure + _EPS and abs(net) > abs(book.net):
                        reasons.append(
                            f"max net exposure {_num(lim.max_net_exposure)}{sfx}: "
                            f"this order would make it {_num(net)}"
                        )
        if lim.max_working_orders is not None and intent.replaces is None:
            n = book.working_count + 1
            if n > lim.max_working_orders:
                reasons.append(
                    f"max working orders {_num(lim.max_working_orders)}{sfx}: "
                    f"this order would make it {n}"
                )
        if lim.max_orders_per_second is not None:
            sent = book.sent
            while sent and now - sent[0] >= 1.0:
                sent.popleft()
            if len(sent) + 1 > lim.max_orders_per_second:
                reasons.append(
                    f"max orders per second {_num(lim.max_orders_per_second)}{sfx}: "
                    f"this order would make it {len(sent) + 1} in the last second"
                )
        if book.pnl is not None:
            loss = -book.pnl
            if lim.daily_loss_limit is not None and loss >= lim.daily_loss_limit:
                reasons.append(
                    f"daily loss limit {_num(lim.daily_loss_limit)}{sfx}: "
                    f"the day's loss is {_num(loss)}"
                )
            if lim.daily_loss_limit_pct is not None:
                pct_limit = self._pct_loss_limit(book)
                if pct_limit is not None and loss >= pct_limit:
                    reasons.append(
                        f"daily loss limit {_pct(lim.daily_loss_limit_pct)} of net liquidation "
                        f"({_num(pct_limit)}){sfx}: the day's loss is {_num(loss)}"
                    )
            if lim.max_drawdown is not None and book.hwm - book.pnl >= lim.max_drawdown:
                reasons.append(
                    f"max drawdown {_num(lim.max_drawdown)}{sfx}: the day's P&L is "
                    f"{_num(book.hwm - book.pnl)} below its high"
                )
        if lim.fat_finger_pct is not None:
            ref = self._ref.get(key)
            prices = [p for p in (lmt, _stop_price(order)) if p is not None]
            if prices and ref is None:
                reasons.append(self._no_price(key, contract, "the fat-finger band", sfx))
            elif ref is not None:
                for p in prices:
                    dist = abs(p - ref) / ref * 100
                    if dist > lim.fat_finger_pct + _EPS:
                        reasons.append(
                            f"fat-finger band {_pct(lim.fat_finger_pct)}{sfx}: price "
                            f"{_num(p)} is {_pct(dist)} from the market {_num(ref)}"
                        )
        if lim.trading_hours is not None:
            at = self._now()
            if not lim.trading_hours.allows(at):
                local = at.astimezone(ZoneInfo(lim.trading_hours.tz))
                reasons.append(
                    f"trading hours {lim.trading_hours.describe()}{sfx}: "
                    f"it is {local:%a %H:%M} there"
                )

    def _check_precautions(self, intent: OrderIntent, key: Key, opening: float) -> list[str]:
        """The precautionary caps of the contract's security type (core.precautions)."""
        assert self.precautions is not None
        order, contract = intent.order, intent.contract
        # The order's own contract first: a key first seen in a quote is assumed STK.
        mult = _price(contract.multiplier) if contract.multiplier else None
        if mult is None:
            mult = self._mult.get(key, 1.0)
        lmt = _price(order.lmtPrice) if order.orderType in _LIMIT_TYPES else None
        stop = _stop_price(order)
        mark = self._mark.get(key)
        return self.precautions.check(
            sec_type=contract.secType or self._sec_type.get(key) or "",
            multiplier=mult,
            quantity=opening,
            price=lmt if lmt is not None else (mark if mark is not None else stop),
            prices=tuple(p for p in (lmt, stop) if p is not None),
            reference=self._ref.get(key),
            symbol=self._sym(key, contract),
        )

    def _replaced(self, replaces: Order | None, key: Key, side: int) -> float:
        """The remaining quantity of the working order a modification replaces."""
        if replaces is None:
            return 0.0
        w = self._orders.get((replaces.clientId, replaces.orderId))
        if w is None or w.side != side:
            return 0.0
        return w.remaining

    def _record_sent(self, acct: _Book, strat: _Book | None) -> None:
        now = self._clock()
        sent = self._console_sent
        while sent and now - sent[0] >= 1.0:
            sent.popleft()
        sent.append(now)
        if acct.limits.max_orders_per_second is not None:
            acct.sent.append(now)
        if strat is not None and strat.limits.max_orders_per_second is not None:
            strat.sent.append(now)
        if acct.limits.max_orders_per_second or (
            strat is not None and strat.limits.max_orders_per_second
        ):
            self._util_dirty()

    def _state_reason(self, book: _Book) -> str:
        if book is self._account:
            where = "account"
        elif book.name.startswith("contract:"):
            con_id = int(book.name[9:])
            where = f"contract {self._symbol.get(con_id, con_id)}"
        else:
            where = f"strategy {book.name}"
        rule = (
            "only the emergency stop's flattening orders are sent"
            if book.state is TradingState.HALTED
            else "only orders that reduce a position are let through"
        )
        return f"trading is {book.state} ({where}: {book.reason}); {rule}"

    def _opening_text(self, book: _Book, key: Key, contract: Contract, signed: float) -> str:
        pos = book.qty.get(key, 0.0)
        sym = self._sym(key, contract)
        new = pos + signed
        if pos and new and (pos > 0) != (new > 0):
            verb = "reverse"
        elif pos == 0:
            verb = "open"
        else:
            verb = "increase"
        return f"this order would {verb} the {sym} position ({_num(pos)} -> {_num(new)})"

    def _no_price(self, key: Key, contract: Contract, what: str, sfx: str) -> str:
        return f"no market price for {self._sym(key, contract)}{sfx}: cannot check {what}"

    def _sym(self, key: Key, contract: Contract) -> str:
        return self._symbol.get(key) or _symbol_of(contract)

    def _unit(self, key: Key, contract: Contract) -> str:
        return _UNITS.get(self._sec_type.get(key) or contract.secType or "STK", "units")

    # -- the emergency stop's orders ---------------------------------------------------

    @contextlib.contextmanager
    def authorize_flatten(self, order: Order) -> Iterator[None]:
        """Within this block, ``order`` (sent by actor ``emergency_stop``) passes HALTED.

        Only the emergency stop uses this: an order is let through HALTED only if it is
        this very object, its actor is :data:`EMERGENCY_ACTOR` and it reduces the
        account's position without reversing it.
        """
        self._flatten_ids.add(id(order))
        try:
            yield
        finally:
            self._flatten_ids.discard(id(order))

    def attach_emergency_stop(self, stop: EmergencyStop) -> None:
        """Use ``stop`` for breaches whose action is the emergency stop."""
        self.emergency = stop

    async def emergency_stop(
        self,
        reason: str,
        flatten: bool = True,
        *,
        scope: StopScope | None = None,
        dry_run: bool = False,
        actor: str = "gui",
    ) -> EmergencyStopResult:
        """Run the attached :class:`core.emergency.EmergencyStop` (see there)."""
        if self.emergency is None:
            raise RuntimeError("no emergency stop attached (core.emergency.EmergencyStop)")
        return await self.emergency.stop(
            reason, flatten=flatten, scope=scope, dry_run=dry_run, actor=actor
        )

    # -- utilization ------------------------------------------------------------------------

    def utilizations(self) -> list[LimitUtilizationChanged]:
        """Every standing limit's use now (value / limit), for each scope with limits."""
        out: list[LimitUtilizationChanged] = []
        now = self._clock()
        for book in self._books.values():
            lim = book.limits
            if lim.is_empty():
                continue

            def add(name: str, value: float, limit: float | None, book: _Book = book) -> None:
                if limit is not None:
                    out.append(LimitUtilizationChanged(book.name, name, value, float(limit)))

            if lim.max_position_quantity is not None:
                add(
                    "max_position_quantity",
                    max((abs(q) for q in book.qty.values()), default=0.0),
                    lim.max_position_quantity,
                )
            if lim.max_position_notional is not None:
                add(
                    "max_position_notional",
                    max((abs(v) for v in book.notional.values()), default=0.0),
                    lim.max_position_notional,
                )
            add("max_gross_exposure", book.gross, lim.max_gross_exposure)
            add("max_net_exposure", abs(book.net), lim.max_net_exposure)
            add("max_working_orders", float(book.working_count), lim.max_working_orders)
            if lim.max_orders_per_second is not None:
                add(
                    "max_orders_per_second",
                    float(sum(1 for t in book.sent if now - t < 1.0)),
                    lim.max_orders_per_second,
                )
            loss = max(0.0, -(book.pnl or 0.0))
            add("daily_loss_limit", loss, lim.daily_loss_limit)
            pct_limit = self._pct_loss_limit(book)
            if pct_limit is not None:
                add("daily_loss_limit_pct", loss, pct_limit)
            if book.pnl is not None:
                add("max_drawdown", book.hwm - book.pnl, lim.max_drawdown)
            else:
                add("max_drawdown", 0.0, lim.max_drawdown)
        return out

    def publish_utilization(self) -> int:
        """Emit the utilizations that changed meaningfully; returns how many."""
        self._util_handle = None
        step = self.policy.utilization_step
        n = 0
        for u in self.utilizations():
            k = (u.scope, u.limit)
            value = u.utilization
            last = self._util_last.get(k)
            if (
                last is None
                or abs(value - last) >= step
                or (value >= 1.0) != (last >= 1.0)
                or (value == 0.0) != (last == 0.0)
            ):
                self._util_last[k] = value
                self.utilizationChanged.emit(u)
                n += 1
        return n

    def _util_dirty(self) -> None:
        if self._util_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: callers use publish_utilization() directly
        self._util_handle = loop.call_later(
            self.policy.utilization_interval, self.publish_utilization
        )

    # -- adapters to the real core objects ---------------------------------------------------

    def attach_trade_manager(self, trade_manager: Any) -> None:
        """Become ``trade_manager``'s pre-trade gate and follow its orders."""
        trade_manager.pre_trade = self
        trade_manager.orderUpdated += self.on_order_update
        # The instant trading tightens, orders still waiting for the pacing are asked
        # again (the wire asks each once more as it is written anyway).
        self.tradingStateChanged += lambda _change: trade_manager.wire.recheck()

    def attach_ib(self, ib: Any, account: str = "") -> None:
        """Follow IB's account positions (``positionEvent``) of ``account`` (all if empty)."""

        def on_position(p: Any) -> None:
            if account and p.account != account:
                return
            c = p.contract
            self.learn_contract(c)
            self.on_account_position(
                c.conId,
                float(p.position),
                symbol=_symbol_of(c),
                sec_type=c.secType or "STK",
                multiplier=float(c.multiplier) if c.multiplier else None,
            )

        for p in ib.positions():
            on_position(p)
        ib.positionEvent += on_position

    def attach_connection(self, connection: Any, trade_manager: Any = None) -> None:
        """Connection health as a risk input; after each (re)connect, re-read the working
        orders from ib_async (when ``trade_manager`` is given)."""
        connection.statusChanged += self.on_connection_status

        if trade_manager is not None:

            def resync(_reconnect: bool) -> None:
                tm = trade_manager
                self.reset_orders(_order_update(t, tm.strategy_of(t)) for t in tm.ib.openTrades())

            connection.connected += resync

    def attach_market_data(self, market_data: Any) -> None:
        """Marks and fat-finger references from quotes; staleness as a health input."""

        def on_quotes(quotes: list[Any]) -> None:
            for q in quotes:
                self.on_quote(
                    q.con_id, bid=q.bid, ask=q.ask, last=q.last, close=q.close, symbol=q.symbol
                )

        for c in getattr(market_data, "subscriptions", []):
            self.learn_contract(c)
        market_data.quotesUpdated += on_quotes
        market_data.staleChanged += self.on_stale

    def attach_account(self, account_info: Any) -> None:
        """Net liquidation and the account's daily P&L from :class:`core.account.AccountInfo`."""

        def on_values(values: Any) -> None:
            self.on_net_liquidation(values.net_liquidation)

        def on_pnl(pnl: PnLChanged) -> None:
            if pnl.strategy is None:
                self.on_pnl(pnl)

        account_info.valuesChanged += on_values
        account_info.pnlChanged += on_pnl

    def attach_portfolio(self, portfolio: Any) -> None:
        """Strategy positions (``positionChanged``) and P&L (``pnlChanged``) from the
        PortfolioManager; account-level P&L from it is ignored when AccountInfo feeds it."""
        portfolio.positionChanged += self.on_strategy_position
        pnl_event = getattr(portfolio, "pnlChanged", None)
        if pnl_event is not None:

            def on_pnl(pnl: PnLChanged) -> None:
                if pnl.strategy is not None:
                    self.on_pnl(pnl)

            pnl_event += on_pnl
        for change in _portfolio_positions(portfolio):
            self.on_strategy_position(change)

    # -- position sizing ----------------------------------------------------------------------

    def sizing_params(self, strategy: str) -> SizingParams:
        """The strategy's sizing parameters (the ``manual`` ones, else defaults)."""
        return self.sizing.get(strategy) or self.sizing.get(MANUAL) or SizingParams()

    async def suggest_size(
        self,
        market_data: Any,
        contract: Contract,
        strategy: str = MANUAL,
        *,
        multiplier: float | None = None,
        lot_size: float | None = None,
    ) -> PositionSize:
        """Volatility-based size for ``contract`` with the strategy's parameters."""
        mult = multiplier
        if mult is None:
            mult = float(contract.multiplier) if contract.multiplier else 1.0
        return await volatility_size(
            market_data,
            contract,
            self.sizing_params(strategy),
            net_liquidation=self.net_liquidation,
            multiplier=mult,
            lot_size=lot_size,
        )

    # -- plumbing -------------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("risk: background task failed", exc_info=t.exception())

        task.add_done_callback(done)


_LIMIT_TYPES = frozenset({"LMT", "STP LMT", "LIT", "LOC", "TRAIL LIMIT"})
_STOP_TYPES = frozenset({"STP", "STP LMT", "MIT", "LIT"})


def _stop_price(order: Order) -> float | None:
    return _price(order.auxPrice) if order.orderType in _STOP_TYPES else None


def _opening(book: _Book | None, key: Key, signed: float, side: int, replaced: float) -> float:
    """The part of an order that opens or increases a position in ``book`` (0: reducing)."""
    if book is None:
        return abs(signed)
    pos = book.qty.get(key, 0.0)
    if pos == 0.0 or (pos > 0) == (signed > 0):
        return abs(signed)
    pending = book.working.get(key)
    same = (pending[side] if pending else 0.0) - replaced
    capacity = abs(pos) - max(0.0, same)
    if capacity < 0.0:
        capacity = 0.0
    over = abs(signed) - capacity
    return over if over > _EPS else 0.0


def _symbol_of(contract: Contract) -> str:
    if contract.secType == "CASH" and contract.localSymbol:
        return contract.localSymbol
    return contract.symbol or contract.localSymbol or str(contract.conId)


def _strategy_or_none(scope: str) -> str | None:
    return None if scope == ACCOUNT or scope.startswith("contract:") else scope


def _limit_title(limit: str) -> str:
    return {
        "daily_loss_limit": "daily loss limit",
        "daily_loss_limit_pct": "daily loss limit (% of net liquidation)",
        "max_drawdown": "max drawdown",
    }.get(limit, limit.replace("_", " "))


def _order_update(trade: Any, strategy: str) -> OrderUpdated:
    o, s, c = trade.order, trade.orderStatus, trade.contract
    return OrderUpdated(
        order_id=o.orderId,
        perm_id=o.permId or s.permId,
        client_id=o.clientId,
        strategy=strategy,
        account=o.account,
        con_id=c.conId,
        symbol=_symbol_of(c),
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


def _portfolio_positions(portfolio: Any) -> list[PositionChanged]:
    """Current positions of a portfolio manager, if it can list them as PositionChanged."""
    for name in ("position_events", "positions"):
        fn = getattr(portfolio, name, None)
        if callable(fn):
            try:
                items = list(fn())
            except TypeError:
                continue
            return [p for p in items if isinstance(p, PositionChanged)]
    return []


# --------------------------------------------------------------------------- sizing


@dataclass(frozen=True, slots=True)
class SizingParams:
    """Per-strategy parameters of volatility-based sizing.

    The risk of one unit is ``stop_multiple`` x the volatility in price x the multiplier;
    the quantity is the budget over that, rounded down to the lot. The budget is
    ``risk_amount``, or ``risk_pct`` % of net liquidation (the smaller when both).
    """

    method: Literal["atr", "stdev"] = "atr"
    risk_amount: float | None = None
    risk_pct: float | None = 0.5
    stop_multiple: float = 2.0
    atr_period: int = 14
    bar_size: str = "1 day"
    duration: str = "3 M"
    what_to_show: str = "TRADES"
    lot_size: float = 1.0
    max_quantity: float | None = None


@dataclass(frozen=True, slots=True)
class PositionSize:
    """A suggested quantity and how it was reached."""

    quantity: float
    budget: float
    risk_per_unit: float
    volatility: float  # in price units per bar
    method: str
    explanation: str


def size_by_volatility(
    bars: pd.DataFrame,
    params: SizingParams,
    *,
    net_liquidation: float | None = None,
    multiplier: float = 1.0,
    lot_size: float | None = None,
) -> PositionSize:
    """Quantity whose ``stop_multiple``-volatility move loses the risk budget.

    Parameters
    ----------
    bars:
        OHLC bars (columns ``high``, ``low``, ``close``), oldest first.
    params:
        Method, budget and rounding (:class:`SizingParams`).
    net_liquidation:
        Needed when the budget is a percentage.
    multiplier:
        The contract's multiplier.
    lot_size:
        Overrides ``params.lot_size`` (e.g. from the contract's size increment).

    Raises
    ------
    ValueError
        No budget can be set, or the bars are too few or show no volatility.
    """
    from core.marketdata import average_true_range, returns_volatility

    budgets = []
    if params.risk_amount is not None:
        budgets.append(params.risk_amount)
    if params.risk_pct is not None and net_liquidation:
        budgets.append(net_liquidation * params.risk_pct / 100)
    if not budgets:
        raise ValueError(
            "no risk budget: set risk_amount, or risk_pct with a known net liquidation"
        )
    budget = min(budgets)
    if params.method == "atr":
        vol = average_true_range(bars, params.atr_period)
        what = f"ATR({params.atr_period})"
    else:
        vol = returns_volatility(bars) * float(bars["close"].iloc[-1])
        what = "std of returns x last close"
    if not math.isfinite(vol) or vol <= 0:
        raise ValueError(f"volatility is {vol!r}: cannot size")
    per_unit = params.stop_multiple * vol * (multiplier or 1.0)
    lot = lot_size or params.lot_size or 1.0
    qty = math.floor(budget / per_unit / lot + 1e-9) * lot
    if params.max_quantity is not None:
        qty = min(qty, math.floor(params.max_quantity / lot) * lot)
    qty = max(qty, 0.0)
    return PositionSize(
        quantity=qty,
        budget=budget,
        risk_per_unit=per_unit,
        volatility=vol,
        method=params.method,
        explanation=(
            f"budget {_num(budget)} / ({params.stop_multiple:g} x {what} {vol:.4g} x "
            f"multiplier {multiplier:g}) = {budget / per_unit:.2f}, rounded down to "
            f"lots of {lot:g}: {_num(qty)}"
        ),
    )


async def volatility_size(
    market_data: Any,
    contract: Contract,
    params: SizingParams,
    *,
    net_liquidation: float | None = None,
    multiplier: float = 1.0,
    lot_size: float | None = None,
) -> PositionSize:
    """Fetch bars with ``market_data.historical_bars`` and :func:`size_by_volatility`."""
    bars = await market_data.historical_bars(
        contract,
        duration=params.duration,
        bar_size=params.bar_size,
        what_to_show=params.what_to_show,
        use_rth=True,
    )
    return size_by_volatility(
        bars,
        params,
        net_liquidation=net_liquidation,
        multiplier=multiplier,
        lot_size=lot_size,
    )
