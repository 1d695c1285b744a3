"""RiskManager: the risk side of the console, composed of small parts.

Every order, from the ticket or a strategy, passes :meth:`RiskManager.check` before the
TradeManager sends it (``RiskManager`` implements :class:`core.trading.PreTradeGate`).
The answer is an approval or *every* reason for refusal in plain words::

    max position AAPL 1,000 shares: this order would make it 1,200

The manager is a facade; each job lives in its own module, and the manager wires them
and subscribes them to the core objects (``attach_*``, through :mod:`core.risk_feeds`):

========================  ============================================================
:mod:`core.trading_state`  the trading-state machine (ACTIVE / REDUCING / HALTED per
                           scope, a transition table, persisted with actor and time) and
                           :class:`~core.trading_state.HealthWatch` (connection and
                           market-data health as automatic REDUCING)
:mod:`core.exposure`       the event-fed exposure book: positions, marks, working
                           orders, order rates and P&L per scope, kept incrementally
:mod:`core.pretrade`       the pure check ``check(book, limits, states, intent)``
:mod:`core.breach`         the breach monitor (daily loss, drawdown) and its event
:mod:`core.utilization`    limit use for the risk panel, coalesced
:mod:`core.flatten`        the typed authorisation that lets the emergency stop's
                           flattening orders pass HALTED
:mod:`core.sizing`         volatility-based position sizing, in the base currency
:mod:`core.risk_feeds`     the adapters from the TradeManager, IB's account positions,
                           base currency and exchange rates, the connection, market
                           data, the account and the portfolio to the inputs above,
                           each source a narrow typed Protocol
========================  ============================================================

Risk does not know the emergency stop (:mod:`core.emergency` depends on risk's parts
through Protocols, never the other way): a breach whose action is the emergency stop
halts the scope and emits ``limitBreached``; the session connects that event to the
stop (``session.emergency``), which the GUI's button runs too.

Scopes and trading states
-------------------------
Limits and trading states exist for the account (``"account"``) and for each strategy
(its name); the emergency stop can also halt one contract (``"contract:<conId>"``). An
order is governed by the *stricter* of its account's, strategy's and contract's states.
HALTED survives a restart until a person leaves it with :meth:`RiskManager.reset_halt`.

Events
------
* ``tradingStateChanged`` (change: :class:`core.events.TradingStateChanged`)
* ``utilizationChanged`` (utilization: :class:`core.events.LimitUtilizationChanged`)
* ``limitBreached`` (breach: :class:`core.breach.RiskLimitBreached`)
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from eventkit import Event
from ib_async import Contract

from core import risk_feeds as feeds
from core.audit import AuditLog
from core.breach import BreachMonitor, RiskLimitBreached
from core.config import RiskLimits, TradingHours
from core.connection import ConnectionStatusChanged
from core.events import (
    MANUAL,
    LimitUtilizationChanged,
    OrderUpdated,
    PnLChanged,
    PositionChanged,
    TradingState,
    TradingStateChanged,
    now_utc,
)
from core.exposure import ExposureBook, Key
from core.flatten import FlattenAuthority, FlattenIntent
from core.precautions import Precautions
from core.pretrade import LimitSet, record_sent
from core.pretrade import check as pretrade_check
from core.risk_feeds import (
    AccountFeed,
    AccountPositionFeed,
    ConnectionFeed,
    GateHost,
    OpenOrdersSource,
    PortfolioFeed,
    QuoteFeed,
)
from core.sizing import (
    BarsSource,
    PositionSize,
    SizingParams,
    size_by_volatility,
    size_in_base,
    volatility_size,
)
from core.trading import EMERGENCY_ACTOR, OrderIntent, PreTradeDecision
from core.trading_state import (
    ACCOUNT,
    RESUME_CONFIRMATION,
    STATE_KEY,
    HealthWatch,
    StateStore,
    TradingStates,
    contract_scope,
    looser_or_equal,
    strategy_or_none,
    stricter,
)
from core.tradingday import TradingDay, TradingDayStarted
from core.utilization import UtilizationReporter
from core.wire import MAX_MESSAGES_PER_SECOND

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

#: The console's cap on messages per second: the wire's pacing rate (IB's cap is 50).
IB_MAX_MESSAGES_PER_SECOND = MAX_MESSAGES_PER_SECOND


def limits_from_settings(risk: RiskLimits) -> tuple[RiskLimits, dict[str, RiskLimits]]:
    """The account's limits and each strategy's own from ``settings.risk``
    (:class:`core.config.RiskSettings`; plain :class:`RiskLimits` have no strategies).

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
    sizing:
        Each strategy's sizing parameters.
    precautions:
        Per-order caps by security type (:mod:`core.precautions`); None: none.
    flatten_authority:
        Verifies the emergency stop's flattening orders (a new one if None; the session
        gives the same one to the stop).
    clock:
        Monotonic seconds, for order rates (tests pass a fake).
    now:
        Wall-clock time (aware), for trading hours and the trading day.
    trading_day:
        The day boundary shared with the portfolio and the GUI (default: midnight in
        ``policy.day_tz``). At each new day the daily P&L, drawdown high-water marks
        and loss-limit breaches reset.

    Events: see the module docstring.
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
        flatten_authority: FlattenAuthority | None = None,
        clock: Callable[[], float] = _time.monotonic,
        now: Callable[[], datetime] = now_utc,
        trading_day: TradingDay | None = None,
    ) -> None:
        self.audit = audit or AuditLog()
        self.policy = policy or RiskPolicy()
        self.sizing: dict[str, SizingParams] = dict(sizing or {})
        self.flatten_authority = flatten_authority or FlattenAuthority()
        self._clock = clock
        self._now = now
        self._limits = LimitSet(
            limits,
            strategy_limits,
            precautions=precautions,
            max_messages_per_second=self.policy.max_messages_per_second,
        )
        #: The trading-state machine (persisted).
        self.state_machine = TradingStates(store=store, audit=self.audit, now=now)
        #: The exposure book the check reads.
        self.book = ExposureBook()
        for name in self._limits.strategies:
            self.book.scope(name)
        self.health = HealthWatch(
            self.state_machine,
            reduce_on_link_lost=self.policy.reduce_on_link_lost,
            stale_action=self.policy.on_stale_data,
            symbol_of=lambda con_id: self.book.symbol.get(con_id, str(con_id)),
        )
        self.trading_day = (
            trading_day if trading_day is not None else TradingDay(self.policy.day_tz, now=now)
        )
        self.monitor = BreachMonitor(
            self.book,
            self.state_machine,
            lambda: self._limits,
            action=self.policy.breach_action,
            audit=self.audit,
            roll_day=lambda: self.trading_day.check(self._now()),
        )
        self.trading_day.dayStarted += self.start_day
        self.utilization = UtilizationReporter(
            self.book,
            lambda: self._limits,
            clock,
            step=self.policy.utilization_step,
            interval=self.policy.utilization_interval,
        )
        self.book.on_change = self.utilization.dirty
        self.tradingStateChanged: Event = self.state_machine.changed
        self.utilizationChanged: Event = self.utilization.utilizationChanged
        self.limitBreached: Event = self.monitor.limitBreached

    @classmethod
    def from_settings(cls, risk: RiskLimits, **kwargs: Any) -> RiskManager:
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
        return self._limits.account

    @property
    def limit_set(self) -> LimitSet:
        """Every scope's limits, as the check reads them."""
        return self._limits

    @property
    def precautions(self) -> Precautions | None:
        """Per-order caps by security type (core.precautions); None: none."""
        return self._limits.precautions

    def limits_of(self, scope: str) -> RiskLimits:
        """The limits of ``scope`` (the account or a strategy)."""
        return self._limits.of(scope)

    def set_limits(self, scope: str, limits: RiskLimits, *, by: str = "gui") -> None:
        """Replace the limits of ``scope``; audited."""
        self._limits = self._limits.replace(scope, limits)
        self.book.scope(scope)
        self.audit.record(by, "set_limits", scope, "applied", strategy=strategy_or_none(scope))
        self.utilization.dirty()

    # -- trading state (core.trading_state) ----------------------------------------------

    def state_of(self, scope: str = ACCOUNT) -> TradingState:
        """The trading state of one scope (ACTIVE when never set)."""
        return self.state_machine.state_of(scope)

    def reason_of(self, scope: str = ACCOUNT) -> str:
        """Why ``scope`` is in its state (empty when ACTIVE by default)."""
        return self.state_machine.reason_of(scope)

    def effective_state(self, strategy: str, con_id: int | None = None) -> TradingState:
        """The stricter of the account's, the strategy's and the contract's states."""
        return self.state_machine.effective(strategy, con_id)

    def states(self) -> dict[str, TradingState]:
        """Every scope whose state is not ACTIVE, and the account's."""
        return self.state_machine.states()

    def state_events(self) -> list[TradingStateChanged]:
        """The current states as events, with the actor and time each was set."""
        return self.state_machine.events()

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
        return self.state_machine.set(scope, state, reason, by)

    def reset_halt(
        self,
        by: str,
        confirmation: str,
        *,
        scope: str = ACCOUNT,
        to: TradingState | str = TradingState.ACTIVE,
        reason: str = "",
    ) -> None:
        """Leave HALTED with ``confirmation`` typed as :data:`RESUME_CONFIRMATION`."""
        self.state_machine.reset_halt(by, confirmation, scope=scope, to=to, reason=reason)

    def snapshot_state(self) -> dict[str, Any]:
        """The saved form of every non-default trading state."""
        return self.state_machine.snapshot()

    async def restore(self) -> dict[str, TradingState]:
        """Load the saved trading states, with their actors and times (call at start)."""
        restored = await self.state_machine.restore()
        self.health.restored(restored)
        return {scope: s.state for scope, s in restored.items()}

    async def flush_state(self) -> None:
        """Wait until the current trading states are saved."""
        await self.state_machine.flush()

    # -- inputs (core.exposure, core.breach, HealthWatch) --------------------------------

    @property
    def net_liquidation(self) -> float | None:
        """The account's net liquidation value, when known."""
        return self.book.net_liquidation

    @property
    def strategy_positions_known(self) -> bool:
        """True once a portfolio feeds strategy positions."""
        return self.book.strategy_positions_known

    def learn_contract(self, contract: Contract) -> Key:
        """Remember a contract's symbol, type and multiplier; returns its key."""
        return self.book.learn_contract(contract)

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
        self.book.on_account_position(
            con_id,
            quantity,
            symbol=symbol,
            sec_type=sec_type,
            multiplier=multiplier,
            currency=currency,
        )

    def in_base(self, amount: float, currency: str) -> tuple[float, str] | None:
        """``amount`` of ``currency`` in the base currency, and its name (None: no rate
        from IB yet): what the limits compare."""
        rate = self.book.rate(currency)
        return None if rate is None else (amount * rate, self.book.base_currency)

    def on_exchange_rate(self, currency: str, rate: float | None) -> None:
        """IB's rate of ``currency``: base currency per unit (limits are in the base)."""
        self.book.on_exchange_rate(currency, rate)

    def on_strategy_position(self, change: PositionChanged) -> None:
        """One strategy's position in one contract (from the portfolio)."""
        self.book.on_strategy_position(change)

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
        self.book.on_quote(
            con_id, bid=bid, ask=ask, last=last, close=close, symbol=symbol, sec_type=sec_type
        )

    def on_mark(self, con_id: int, price: float) -> None:
        """A mark price only (also the fat-finger reference when no quote is known)."""
        self.book.on_mark(con_id, price)

    def quote(self, con_id: int) -> tuple[float | None, float | None, float | None]:
        """The last known (bid, ask, last) of a contract."""
        return self.book.quote(con_id)

    def position(self, scope: str, con_id: int) -> float:
        """A scope's known position in a contract (signed; 0 if none)."""
        return self.book.position(scope, con_id)

    def strategy_positions(self, con_id: int | None = None) -> dict[str, dict[int, float]]:
        """Known strategy positions (strategy -> conId -> signed quantity)."""
        return self.book.strategy_positions(con_id)

    def on_order_update(self, update: OrderUpdated) -> None:
        """An order's status or remaining quantity changed (TradeManager.orderUpdated)."""
        self.book.on_order_update(update)

    def reset_orders(self, updates: Iterable[OrderUpdated]) -> None:
        """Forget every working order and take these instead (after a reconnect)."""
        self.book.reset_orders(updates)

    def working_orders(self, scope: str = ACCOUNT) -> int:
        """How many orders of ``scope`` are working."""
        return self.book.working_orders(scope)

    def on_connection_status(self, status: ConnectionStatusChanged) -> None:
        """Connection health: LINK_LOST / a lost socket -> REDUCING; healthy -> back."""
        self.health.on_connection_status(status)

    def on_stale(self, con_id: int, stale: bool) -> None:
        """Market data for a contract stopped (or resumed) updating."""
        if self.policy.on_stale_data == "ignore":
            return
        self.book.on_stale(con_id, stale)
        self.health.on_stale(con_id, stale)

    def on_net_liquidation(self, value: float | None) -> None:
        """The account's net liquidation value (base currency)."""
        self.monitor.on_net_liquidation(value)

    def on_pnl(self, pnl: PnLChanged) -> None:
        """The day's P&L of the account (``strategy`` None) or a strategy: breach watch."""
        self.monitor.on_pnl(pnl)

    def start_day(self, event: TradingDayStarted) -> None:
        """A new trading day (see :meth:`core.breach.BreachMonitor.start_day`)."""
        self.monitor.start_day(event)

    # -- the gate (core.pretrade) ----------------------------------------------------------

    def check(self, intent: OrderIntent) -> PreTradeDecision:
        """Approve ``intent`` or refuse it with every reason (:func:`core.pretrade.check`).

        A flattening order passes HALTED only with a :class:`core.flatten.FlattenIntent`
        this manager's authority issued, unused and matching the order, sent as
        :data:`core.trading.EMERGENCY_ACTOR`; approving it spends the intent. An approved
        order that is not a preview counts as sent (:func:`core.pretrade.record_sent`).
        """
        grant = intent.flatten
        authorized = grant is not None and self._authorized(intent, grant)
        now = self._clock()
        decision = pretrade_check(
            self.book,
            self._limits,
            self.state_machine,
            intent,
            now=now,
            wall=self._now,
            flatten_authorized=authorized,
        )
        if decision.approved and not intent.preview:
            if grant is not None and authorized:
                self.flatten_authority.spend(grant, intent.order.orderId)
            if record_sent(self.book, self._limits, intent.strategy, now):
                self.utilization.dirty()
        return decision

    def _authorized(self, intent: OrderIntent, grant: FlattenIntent) -> bool:
        order = intent.order
        return intent.actor == EMERGENCY_ACTOR and self.flatten_authority.permits(
            grant, intent.contract.conId, order.action, float(order.totalQuantity)
        )

    def at_wire(self, intent: OrderIntent, decision: PreTradeDecision) -> str | None:
        """The gate's last word, asked as the order's frame is written: a reason to drop
        it when trading became stricter than the state ``decision`` was given under.

        The emergency stop's own flattening orders pass (they were judged under HALTED's
        rule already, on an authorisation spent then); everything else judged under a
        looser state is dropped, never sent.
        """
        if decision.flatten:
            if intent.flatten is not None:  # the order id is known by now
                self.flatten_authority.spent[intent.flatten.serial] = intent.order.orderId
            return None
        con_id = intent.contract.conId or None
        now = self.state_machine.effective(intent.strategy, con_id)
        judged = decision.judged_under or TradingState.ACTIVE
        if looser_or_equal(now, judged):
            return None
        scopes = [ACCOUNT, intent.strategy] + ([contract_scope(con_id)] if con_id else [])
        why = next((self.reason_of(s) for s in scopes if self.state_of(s) is now), "")
        return f"trading became {now} before it was written ({why}): not sent"

    # -- utilization (core.utilization) -----------------------------------------------------

    def utilizations(self) -> list[LimitUtilizationChanged]:
        """Every standing limit's use now (value / limit), for each scope with limits."""
        return self.utilization.current()

    def publish_utilization(self) -> int:
        """Emit the utilizations that changed meaningfully; returns how many."""
        return self.utilization.publish()

    # -- adapters to the real core objects (core.risk_feeds) ---------------------------------

    def attach_trade_manager(self, trade_manager: GateHost) -> None:
        """Become ``trade_manager``'s pre-trade gate and follow its orders."""
        feeds.attach_trade_manager(self, trade_manager)

    def attach_ib(self, ib: AccountPositionFeed, account: str | Callable[[], str] = "") -> None:
        """Follow IB's account positions of ``account`` (all if empty), its base currency
        and its exchange rates (``ExchangeRate`` account values)."""
        feeds.attach_ib(self, ib, account)

    def attach_connection(
        self, connection: ConnectionFeed, trade_manager: OpenOrdersSource | None = None
    ) -> None:
        """Connection health as a risk input; after each (re)connect, re-read the working
        orders from ib_async (when ``trade_manager`` is given)."""
        feeds.attach_connection(self, connection, trade_manager)

    def attach_market_data(self, market_data: QuoteFeed) -> None:
        """Marks and fat-finger references from quotes; staleness as a health input."""
        feeds.attach_market_data(self, market_data)

    def attach_account(self, account_info: AccountFeed) -> None:
        """Net liquidation and the account's daily P&L from :class:`core.account.AccountInfo`."""
        feeds.attach_account(self, account_info)

    def attach_portfolio(self, portfolio: PortfolioFeed) -> None:
        """Strategy positions and P&L from the PortfolioManager (its positions so far first)."""
        feeds.attach_portfolio(self, portfolio)

    # -- position sizing (core.sizing) --------------------------------------------------------

    def sizing_params(self, strategy: str) -> SizingParams:
        """The strategy's sizing parameters (the ``manual`` ones, else defaults)."""
        return self.sizing.get(strategy) or self.sizing.get(MANUAL) or SizingParams()

    async def suggest_size(
        self,
        market_data: BarsSource,
        contract: Contract,
        strategy: str = MANUAL,
        *,
        multiplier: float | None = None,
        lot_size: float | None = None,
    ) -> PositionSize:
        """Volatility-based size for ``contract`` with the strategy's parameters, its
        budget in the base currency (:func:`core.sizing.size_in_base`)."""
        return await size_in_base(
            market_data,
            contract,
            self.sizing_params(strategy),
            self.book,
            net_liquidation=self.net_liquidation,
            multiplier=multiplier,
            lot_size=lot_size,
        )
