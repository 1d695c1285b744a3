"""The emergency stop: halt, cancel everything, flatten, and say what happened.

One call does it all (:meth:`EmergencyStop.stop`)::

    result = await stop.stop("runaway strategy", flatten=True)

1. The scope's trading state becomes HALTED at once (before the first await), so no
   order but the stop's own flattening orders can leave the console from then on.
2. Every working order of the scope is cancelled: each order this client placed, plus
   ``reqGlobalCancel`` for the whole account (it reaches orders placed in TWS or by
   other client ids). The cancels are awaited, bounded by ``cancel_timeout``.
3. Positions are re-read from IB (``reqPositionsAsync``): fills can land while
   cancelling, so the positions known before the stop are not trusted.
4. If ``flatten`` is set, each position is closed by an order the HALTED state lets
   through: a market order in regular trading hours, a marketable limit order (with
   ``outsideRth``) outside them when the contract details tell the hours. The quantity
   is exactly the open position less any closing-side order that may still fill, re-read
   from IB's live position just before each order is sent: flattening never reverses a
   position. Each flattening order is attributed to the strategy that holds the
   position (``orderRef``); what no strategy holds goes to ``external``.
5. The stop waits for the flattening orders (bounded by ``fill_timeout``) and goes round
   again (cancel, re-read, close the rest) up to ``max_rounds`` times.
6. Finally the account is re-checked flat and order-free, and an
   :class:`EmergencyStopResult` is returned: orders cancelled, positions closed, what
   remains and every failure with its reason. The whole run is audited.

Pressing it twice does not double the flattening orders: while a stop runs, another
call for the same (or a narrower) scope awaits the same run and returns its result.
If the connection drops in the middle, the stop waits for the Connection to come back
(bounded by ``reconnect_timeout``) and resumes from the cancel step, which is safe to
repeat: positions are always re-read before anything is sent.

Scopes: the whole account, one strategy, or one contract (:class:`StopScope`).
``dry_run=True`` changes nothing and sends nothing: it returns what the stop would cancel
and the flattening orders it would send, for the GUI's preview.

Dependencies
------------
The stop knows risk only through narrow Protocols, and risk does not know the stop:
:class:`StateControl` (set a scope HALTED, wait for it to be saved), :class:`StopView`
(strategy positions and quotes, read from the exposure book), :class:`AuditTrail`, and
:class:`FlattenIssuer`, which grants each flattening order a typed, single-use
:class:`core.flatten.FlattenIntent` that the pre-trade gate checks to let it pass
HALTED. The session wires them, and connects risk's ``limitBreached`` event to
:meth:`EmergencyStop.on_breach`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from eventkit import Event
from ib_async import Contract, ContractDetails, Order, Trade

from core.events import EXTERNAL, TradingState, now_utc
from core.flatten import FlattenIntent
from core.orders import describe_order
from core.tasks import Tasks
from core.timeutils import TradingSessions
from core.trading import EMERGENCY_ACTOR, OrderRefused, TradeManager
from core.trading_state import ACCOUNT, contract_scope

log = logging.getLogger(__name__)

__all__ = [
    "AuditTrail",
    "Breach",
    "EmergencyStop",
    "EmergencyStopProgress",
    "EmergencyStopResult",
    "FlattenIssuer",
    "FlattenOrder",
    "StateControl",
    "StopFailure",
    "StopScope",
    "StopView",
]

_EPS = 1e-9


# --------------------------------------------------------------------------- what it needs


class StateControl(Protocol):
    """Sets a scope's trading state and saves it (core.risk.RiskManager)."""

    def set_trading_state(self, scope: str, state: TradingState, reason: str, by: str) -> bool:
        """Change ``scope``'s state; False when it already was."""
        ...

    def flush_state(self) -> Awaitable[None]:
        """Wait until the states are saved."""
        ...


class StopView(Protocol):
    """What the stop reads of the book (core.exposure.ExposureBook)."""

    @property
    def strategy_positions_known(self) -> bool:
        """True once a portfolio feeds strategy positions."""
        ...

    def strategy_positions(self, con_id: int | None = None) -> dict[str, dict[int, float]]:
        """Strategy -> conId -> signed quantity."""
        ...

    def quote(self, con_id: int) -> tuple[float | None, float | None, float | None]:
        """The last known (bid, ask, last)."""
        ...

    def con_id_of(self, contract: Contract) -> int | None:
        """The contract's conId, or the one learnt for its symbol."""
        ...


class AuditTrail(Protocol):
    """Where the stop's actions are recorded (core.audit.AuditLog)."""

    def record(
        self,
        actor: str,
        action: str,
        subject: str,
        result: str,
        *,
        order_id: int | None = None,
        strategy: str | None = None,
    ) -> Any:
        """Append one record."""
        ...


class FlattenIssuer(Protocol):
    """Grants flattening orders their pass through HALTED (core.flatten.FlattenAuthority)."""

    def issue(self, con_id: int, action: str, quantity: float, reason: str) -> FlattenIntent:
        """A single-use intent for one order of at most ``quantity``."""
        ...

    def withdraw(self, intent: FlattenIntent) -> None:
        """Forget an intent whose order was not sent."""
        ...


class Breach(Protocol):
    """A risk-limit breach (core.breach.RiskLimitBreached), as the stop reads it."""

    @property
    def scope(self) -> str: ...

    @property
    def action(self) -> str: ...

    def describe(self) -> str: ...


# --------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class StopScope:
    """What a stop covers: the account (both None), one strategy, or one contract."""

    strategy: str | None = None
    con_id: int | None = None
    symbol: str = ""

    @classmethod
    def account(cls) -> StopScope:
        """The whole account."""
        return cls()

    @classmethod
    def of(cls, strategy: str) -> StopScope:
        """One strategy's orders and positions."""
        return cls(strategy=strategy)

    @classmethod
    def contract(cls, con_id: int, symbol: str = "") -> StopScope:
        """One contract's orders and the account's position in it."""
        if not con_id:
            raise ValueError("a contract stop needs a qualified contract (conId)")
        return cls(con_id=con_id, symbol=symbol)

    @property
    def kind(self) -> str:
        """``account``, ``strategy`` or ``contract``."""
        if self.strategy is not None:
            return "strategy"
        if self.con_id is not None:
            return "contract"
        return "account"

    @property
    def risk_scope(self) -> str:
        """The trading-state scope this stop halts."""
        if self.strategy is not None:
            return self.strategy
        if self.con_id is not None:
            return contract_scope(self.con_id)
        return ACCOUNT

    def covers(self, other: StopScope) -> bool:
        """True when a stop of this scope does everything a stop of ``other`` would."""
        return self.kind == "account" or self == other

    def describe(self) -> str:
        """``account``, ``strategy momo``, ``contract AAPL``."""
        if self.strategy is not None:
            return f"strategy {self.strategy}"
        if self.con_id is not None:
            return f"contract {self.symbol or self.con_id}"
        return "account"


@dataclass(frozen=True, slots=True)
class FlattenOrder:
    """A flattening order, sent (``order_id`` set) or planned (dry run)."""

    strategy: str
    con_id: int
    symbol: str
    action: str
    quantity: float
    order_type: str
    limit_price: float | None = None
    order_id: int | None = None
    status: str = ""

    def describe(self) -> str:
        """``SELL 100 AAPL MKT (momo)``."""
        px = f" {self.limit_price:g}" if self.limit_price is not None else ""
        return (
            f"{self.action} {self.quantity:g} {self.symbol} {self.order_type}{px} ({self.strategy})"
        )


@dataclass(frozen=True, slots=True)
class EmergencyStopProgress:
    """Where a running stop is, in words a trader reads while it runs.

    ``step`` is one of ``halted``, ``waiting`` (for the connection), ``cancelling``,
    ``positions``, ``flattening``, ``verifying``; ``detail`` says what it waits for.
    """

    scope: str
    step: str
    detail: str
    time: datetime = field(default_factory=now_utc)


@dataclass(frozen=True, slots=True)
class StopFailure:
    """Something the stop could not do, and why."""

    step: str  # cancel, positions, flatten, verify, connection
    subject: str
    reason: str

    def describe(self) -> str:
        """One line."""
        return f"{self.step}: {self.subject}: {self.reason}"


@dataclass(frozen=True, slots=True)
class EmergencyStopResult:
    """What an emergency stop did (or, for a dry run, would do)."""

    reason: str
    scope: StopScope
    flatten: bool
    dry_run: bool
    started: datetime
    finished: datetime
    orders_cancelled: tuple[str, ...] = ()
    positions_closed: tuple[FlattenOrder, ...] = ()
    positions_remaining: tuple[str, ...] = ()
    working_remaining: tuple[str, ...] = ()
    failures: tuple[StopFailure, ...] = ()
    rounds: int = 0
    reconnects: int = 0

    @property
    def flat(self) -> bool:
        """No position of the scope is left open."""
        return not self.positions_remaining

    @property
    def order_free(self) -> bool:
        """No order of the scope is left working."""
        return not self.working_remaining

    @property
    def ok(self) -> bool:
        """Everything asked was done and nothing failed."""
        return self.order_free and (self.flat or not self.flatten) and not self.failures

    def describe(self) -> str:
        """A few lines for the GUI (the preview, or the outcome)."""
        head = "Emergency stop (dry run): would" if self.dry_run else "Emergency stop:"
        lines = [f"{head} {self.scope.describe()} - {self.reason}"]
        verb = "cancel" if self.dry_run else "cancelled"
        lines.append(f"  {verb} {len(self.orders_cancelled)} working orders")
        lines += [f"    {o}" for o in self.orders_cancelled]
        verb = "send" if self.dry_run else "sent"
        lines.append(f"  {verb} {len(self.positions_closed)} flattening orders")
        lines += [f"    {o.describe()}" for o in self.positions_closed]
        if not self.dry_run:
            lines.append(
                "  flat and order-free"
                if self.flat and self.order_free
                else "  NOT flat/order-free: "
                + ", ".join((*self.positions_remaining, *self.working_remaining))
            )
        lines += [f"  failed: {f.describe()}" for f in self.failures]
        return "\n".join(lines)


class _Interrupted(Exception):
    """The connection went away in the middle of a step."""


@dataclass
class _Run:
    reason: str
    scope: StopScope
    flatten: bool
    actor: str
    started: datetime = field(default_factory=now_utc)
    cancelled: dict[str, None] = field(default_factory=dict)  # ordered set
    closed: list[FlattenOrder] = field(default_factory=list)
    failures: list[StopFailure] = field(default_factory=list)
    rounds: int = 0
    reconnects: int = 0
    gave_up_waiting: bool = False

    def fail(self, step: str, subject: str, reason: str) -> None:
        log.error("emergency stop: %s: %s: %s", step, subject, reason)
        self.failures.append(StopFailure(step, subject, reason))


@dataclass(frozen=True, slots=True)
class _Target:
    strategy: str
    contract: Contract
    quantity: float  # signed position to close


# --------------------------------------------------------------------------- the stop


DetailsLookup = Callable[[Contract], ContractDetails | None]


class FlattenPlanner:
    """Decides what closes each position: who it is attributed to and which order.

    Splits each account position in a stop's scope among the strategies holding it
    (what no strategy holds goes to ``external``), and picks the order: at market in
    regular trading hours, a marketable limit (``outsideRth``) outside them when the
    contract details tell the hours and a quote is known.
    """

    def __init__(
        self,
        view: StopView,
        details_lookup: DetailsLookup | None,
        *,
        limit_slippage_pct: float,
        now: Callable[[], datetime],
    ) -> None:
        self.view = view
        self.details_lookup = details_lookup
        self.limit_slippage_pct = limit_slippage_pct
        self._now = now

    def plan(self, run: _Run, positions: Sequence[Any]) -> list[_Target]:
        """Split each account position in scope among the strategies that hold it."""
        scope = run.scope
        out: list[_Target] = []
        account_qty: dict[int, tuple[Contract, float]] = {}
        for p in positions:
            c = p.contract
            prev = account_qty.get(c.conId)
            account_qty[c.conId] = (c, (prev[1] if prev else 0.0) + float(p.position))
        if scope.strategy is not None:
            if not self.view.strategy_positions_known:
                run.fail(
                    "flatten",
                    scope.describe(),
                    "strategy positions are unknown (no portfolio feeds the risk manager)",
                )
                return []
            held = self.view.strategy_positions().get(scope.strategy, {})
            for con_id, q in held.items():
                contract, a = account_qty.get(con_id, (None, 0.0))
                if contract is None or a * q <= 0:
                    run.fail(
                        "flatten",
                        f"{scope.strategy} {con_id}",
                        f"the strategy holds {q:g} but the account holds {a:g}: "
                        "closing it would reverse the account",
                    )
                    continue
                out.append(_Target(scope.strategy, contract, math.copysign(min(abs(q), abs(a)), a)))
            return out
        for con_id, (contract, a) in account_qty.items():
            if abs(a) < _EPS or (scope.con_id is not None and con_id != scope.con_id):
                continue
            left = abs(a)
            holders = sorted(
                (
                    (name, q[con_id])
                    for name, q in self.view.strategy_positions(con_id).items()
                    if q.get(con_id, 0.0) * a > 0
                ),
                key=lambda item: -abs(item[1]),
            )
            for name, q in holders:
                take = min(abs(q), left)
                if take > _EPS:
                    out.append(_Target(name, contract, math.copysign(take, a)))
                    left -= take
            if left > _EPS:
                out.append(_Target(EXTERNAL, contract, math.copysign(left, a)))
        return out

    def order(self, contract: Contract, action: str, qty: float, run: _Run) -> Order:
        """The flattening order for ``qty`` of ``contract``: MKT, or a marketable LMT
        outside regular hours (a failure is noted when no quote allows one)."""
        details = self.details_lookup(contract) if self.details_lookup else None
        if details is not None and not self._regular_hours(details):
            bid, ask, last = self.view.quote(contract.conId)
            ref = (bid if action == "SELL" else ask) or last
            if ref:
                slip = self.limit_slippage_pct / 100
                tick = float(details.minTick or 0.01) or 0.01
                raw = ref * (1 - slip) if action == "SELL" else ref * (1 + slip)
                steps = math.floor(raw / tick) if action == "SELL" else math.ceil(raw / tick)
                price = round(max(steps, 1) * tick, 10)
                return Order(
                    action=action,
                    totalQuantity=qty,
                    orderType="LMT",
                    lmtPrice=price,
                    tif="DAY",
                    outsideRth=True,
                )
            run.fail(
                "flatten",
                f"{action} {qty:g} {contract.symbol}",
                "outside regular hours and no quote for a marketable limit: sent at market",
            )
        return Order(action=action, totalQuantity=qty, orderType="MKT", tif="DAY")

    def _regular_hours(self, details: ContractDetails) -> bool:
        try:
            sessions = TradingSessions.from_details(details, liquid=True)
        except ValueError:
            return True  # hours unknown: market order
        if not len(sessions):
            return True
        return sessions.is_open(self._now())


class EmergencyStop:
    """Halts, cancels and flattens through the TradeManager (see the module docstring).

    Events:
        * ``progress`` (progress: :class:`EmergencyStopProgress`): each step of a
          running stop, and each second while it waits for the connection.

    Parameters
    ----------
    trade_manager:
        Sends the cancels and flattening orders (audited there too).
    connection:
        Followed to resume after a reconnect; without it, ``ib.isConnected()`` is polled.
    account:
        Only this account's positions (all the connection sees when empty).
    details_lookup:
        Contract details (cached) for trading hours and the minimum tick.
    states:
        Where the scope is set HALTED (the RiskManager).
    view:
        Strategy positions and quotes (the risk's exposure book).
    audit:
        Where the run is recorded.
    authority:
        Issues each flattening order's :class:`core.flatten.FlattenIntent` (the same
        authority the pre-trade gate verifies with).
    """

    def __init__(
        self,
        trade_manager: TradeManager,
        connection: Any = None,
        *,
        states: StateControl,
        view: StopView,
        audit: AuditTrail,
        authority: FlattenIssuer,
        account: str = "",
        details_lookup: DetailsLookup | None = None,
        cancel_timeout: float = 5.0,
        global_cancel_grace: float = 1.0,
        fill_timeout: float = 10.0,
        reconnect_timeout: float = 30.0,
        request_timeout: float = 5.0,
        max_rounds: int = 3,
        limit_slippage_pct: float = 1.0,
        now: Callable[[], datetime] = now_utc,
    ) -> None:
        self.states = states
        self.view = view
        self.audit = audit
        self.authority = authority
        self.trades = trade_manager
        self.ib = trade_manager.ib
        self.connection = connection
        self.account = account
        self.details_lookup = details_lookup or trade_manager.details_lookup
        self.cancel_timeout = cancel_timeout
        self.global_cancel_grace = global_cancel_grace
        self.fill_timeout = fill_timeout
        self.reconnect_timeout = reconnect_timeout
        self.request_timeout = request_timeout
        self.max_rounds = max_rounds
        self.planner = FlattenPlanner(
            view, self.details_lookup, limit_slippage_pct=limit_slippage_pct, now=now
        )
        self._inflight: asyncio.Task[EmergencyStopResult] | None = None
        self._inflight_run: _Run | None = None
        # Counts socket losses: a reconnect can complete between two polls, so
        # "is connected now" alone would miss that the session (and its trades) changed.
        self._links_lost = 0
        self._generation = 0
        self.progress: Event = Event("progress")
        self.ib.disconnectedEvent += self._on_disconnected
        self._tasks = Tasks("emergency_stop")

    def on_breach(self, breach: Breach) -> None:
        """A risk-limit breach: run the stop for its scope when its action asks for it
        (the session connects risk's ``limitBreached`` here)."""
        if breach.action != "emergency_stop":
            return
        scope = StopScope.account() if breach.scope == ACCOUNT else StopScope.of(breach.scope)
        self._tasks.spawn(self.stop(breach.describe(), scope=scope, actor="risk"), "breach")

    def _on_disconnected(self) -> None:
        self._links_lost += 1

    def _say(self, run: _Run, step: str, detail: str) -> None:
        self.progress.emit(EmergencyStopProgress(run.scope.describe(), step, detail))

    def _check_link(self) -> None:
        """Raise :class:`_Interrupted` if the session this round started in is gone."""
        if self._links_lost != self._generation or not self.ib.isConnected():
            raise _Interrupted("the connection was lost")

    @property
    def running(self) -> bool:
        """True while a stop is in flight."""
        return self._inflight is not None and not self._inflight.done()

    async def stop(
        self,
        reason: str,
        flatten: bool = True,
        *,
        scope: StopScope | None = None,
        dry_run: bool = False,
        actor: str = "gui",
    ) -> EmergencyStopResult:
        """Halt ``scope``, cancel its orders and (if ``flatten``) close its positions.

        Returns when the scope is flat and order-free or the bounded waits ran out;
        the result says which. A second call while one runs awaits the same run when
        that run covers it (same or wider scope, flattening if asked to).
        """
        scope = scope or StopScope.account()
        reason = reason.strip() or "emergency stop"
        if dry_run:
            return await self._preview(reason, scope, flatten, actor)
        current = self._inflight_run
        if self._inflight is not None and not self._inflight.done() and current is not None:
            if current.scope.covers(scope) and (current.flatten or not flatten):
                self.audit.record(
                    actor,
                    "emergency_stop",
                    f"{scope.describe()}: {reason}",
                    "already running: joined the stop in flight",
                )
                return await asyncio.shield(self._inflight)
            # a wider stop: let the running one finish first (it only ever reduces)
            await asyncio.gather(asyncio.shield(self._inflight), return_exceptions=True)
        # HALTED at once: nothing but this stop's own orders leaves from now on.
        self.states.set_trading_state(
            scope.risk_scope, TradingState.HALTED, f"emergency stop: {reason}", actor
        )
        run = _Run(reason, scope, flatten, actor)
        self.audit.record(
            actor,
            "emergency_stop",
            f"{scope.describe()}: {reason}",
            "started" + (", flattening" if flatten else ", cancels only"),
            strategy=scope.strategy,
        )
        self._inflight_run = run
        self._say(
            run, "halted", "HALTED; cancelling orders" + (", then flattening" if flatten else "")
        )
        self._inflight = self._tasks.spawn(self._run(run), "run", awaited=True)
        return await asyncio.shield(self._inflight)

    # -- the run ------------------------------------------------------------------------

    async def _save_state(self) -> None:
        await self.states.flush_state()

    async def _run(self, run: _Run) -> EmergencyStopResult:
        loop = asyncio.get_running_loop()
        deadline = (
            loop.time()
            + self.reconnect_timeout
            + self.max_rounds * (self.cancel_timeout + self.fill_timeout + 2 * self.request_timeout)
        )
        saving = self._tasks.spawn(self._save_state(), "save HALTED", awaited=True)
        remaining: list[str] = []
        working: list[str] = []
        try:
            while run.rounds < self.max_rounds and loop.time() < deadline:
                if not await self._wait_connected(run):
                    break
                try:
                    done = await self._round(run)
                except (_Interrupted, ConnectionError, OSError) as exc:
                    run.reconnects += 1
                    log.warning(
                        "emergency stop: connection lost in round %d (%s); resuming after "
                        "the reconnect",
                        run.rounds,
                        exc,
                    )
                    continue
                if done:
                    break
            remaining, working = await self._verify(run)
        finally:
            try:
                await saving
            except Exception as exc:
                run.fail("state", "HALTED", f"could not be saved: {exc}")
        result = EmergencyStopResult(
            reason=run.reason,
            scope=run.scope,
            flatten=run.flatten,
            dry_run=False,
            started=run.started,
            finished=now_utc(),
            orders_cancelled=tuple(run.cancelled),
            positions_closed=tuple(run.closed),
            positions_remaining=tuple(remaining),
            working_remaining=tuple(working),
            failures=tuple(run.failures),
            rounds=run.rounds,
            reconnects=run.reconnects,
        )
        outcome = (
            "flat and order-free"
            if result.flat and result.order_free
            else "NOT flat/order-free: " + ", ".join((*remaining, *working))
        )
        self.audit.record(
            run.actor,
            "emergency_stop",
            f"{run.scope.describe()}: {run.reason}",
            f"{outcome}; {len(result.orders_cancelled)} orders cancelled, "
            f"{len(result.positions_closed)} flattening orders"
            + (f"; {len(result.failures)} failures" if result.failures else ""),
            strategy=run.scope.strategy,
        )
        log.warning("%s", result.describe())
        return result

    async def _round(self, run: _Run) -> bool:
        """One pass: cancel, await cancels, re-read positions, flatten. True when done."""
        self._generation = self._links_lost
        run.rounds += 1
        n = len(self._working(run.scope))
        self._say(run, "cancelling", f"cancelling {n} working order{'s' if n != 1 else ''}")
        self._cancel(run, each=run.scope.kind != "account")
        await self._await_no_working(run)
        self._say(run, "positions", "re-reading positions from IB")
        targets = await self._targets(run)
        if not targets or not run.flatten:
            return True
        n = len(targets)
        self._say(run, "flattening", f"flattening {n} position{'s' if n != 1 else ''}")
        trades = []
        for target in targets:
            trade = self._send_flatten(run, target)
            if trade is not None:
                trades.append(trade)
        if not trades:
            return True  # nothing could be sent; failures say why
        await self._await_done(trades, self.fill_timeout)
        return False  # go round once more: cancel leftovers, re-read, verify

    def _in_scope(self, trade: Trade, scope: StopScope) -> bool:
        if self.account and trade.order.account and trade.order.account != self.account:
            return False
        if scope.strategy is not None:
            return self.trades.strategy_of(trade) == scope.strategy
        if scope.con_id is not None:
            c = trade.contract
            return (c.conId or self.view.con_id_of(c)) == scope.con_id
        return True

    def _working(self, scope: StopScope) -> list[Trade]:
        return [t for t in self.ib.openTrades() if self._in_scope(t, scope)]

    def _cancel(self, run: _Run, *, each: bool) -> None:
        """Cancel the scope's working orders.

        For the whole account, ``reqGlobalCancel`` goes first (one message reaches every
        order, however placed); ``each`` then cancels every known order still working
        one by one (ib_async paces those at about 45 a second).
        """
        self._check_link()
        if run.scope.kind == "account" and not each:
            for trade in self._working(run.scope):
                run.cancelled.setdefault(self._subject(trade))
            self.ib.reqGlobalCancel()
            self.audit.record(
                EMERGENCY_ACTOR, "cancel_all", "every working order", "sent reqGlobalCancel"
            )
            return
        own = self.ib.client.clientId
        for trade in self._working(run.scope):
            subject = self._subject(trade)
            run.cancelled.setdefault(subject)
            if trade.orderStatus.status == "PendingCancel":
                continue  # already asked; asking again only draws an error
            if trade.order.clientId == own:
                try:
                    self.trades.cancel_order(trade, actor=EMERGENCY_ACTOR)
                except OrderRefused as refused:
                    run.fail("cancel", subject, "; ".join(refused.reasons))
            elif run.scope.kind != "account":
                run.fail(
                    "cancel",
                    subject,
                    f"placed by client {trade.order.clientId}: only a whole-account stop "
                    "(reqGlobalCancel) can cancel it from here",
                )

    @staticmethod
    def _subject(trade: Trade) -> str:
        return f"#{trade.order.orderId} " + describe_order(trade.contract, trade.order)

    async def _await_no_working(self, run: _Run) -> None:
        """Wait for the cancels; orders the global cancel did not reach within
        ``global_cancel_grace`` are cancelled one by one."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + self.cancel_timeout
        each_sent = run.scope.kind != "account"
        while True:
            self._check_link()
            left = self._working(run.scope)
            if not left:
                return
            now = loop.time()
            if not each_sent and now - start >= self.global_cancel_grace:
                self._cancel(run, each=True)
                each_sent = True
            if now >= deadline:
                run.fail(
                    "cancel",
                    f"{len(left)} orders",
                    f"not confirmed cancelled within {self.cancel_timeout:g}s: "
                    + ", ".join(f"#{t.order.orderId} {t.orderStatus.status}" for t in left),
                )
                return
            await asyncio.sleep(0.02)

    async def _await_done(self, trades: Sequence[Trade], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(not t.isDone() for t in trades) and loop.time() < deadline:
            self._check_link()
            await asyncio.sleep(0.02)
        self._check_link()

    async def _positions(self) -> list[Any]:
        if not self.ib.isConnected():
            raise _Interrupted("not connected")
        links = self._links_lost
        try:
            positions = await asyncio.wait_for(self.ib.reqPositionsAsync(), self.request_timeout)
        except TimeoutError as exc:
            if not self.ib.isConnected() or links != self._links_lost:
                raise _Interrupted("disconnected while reading positions") from exc
            raise
        if links != self._links_lost:
            raise _Interrupted("disconnected while reading positions")
        return [
            p
            for p in positions
            if (not self.account or p.account == self.account) and abs(float(p.position)) > _EPS
        ]

    async def _targets(self, run: _Run) -> list[_Target]:
        try:
            positions = await self._positions()
        except TimeoutError:
            run.fail("positions", "reqPositions", f"no answer within {self.request_timeout:g}s")
            return []
        return self.planner.plan(run, positions)

    def _send_flatten(self, run: _Run, target: _Target) -> Trade | None:
        self._check_link()
        contract = _tradable(target.contract)
        symbol = contract.localSymbol if contract.secType == "CASH" else contract.symbol
        # re-check against IB's live position just before sending: never reverse
        live = self._live_position(contract.conId)
        if live is None or live * target.quantity <= 0:
            return None  # already flat (or flipped by a late fill: the next round sees it)
        pending = self._pending_closing(contract.conId, live)
        qty = min(abs(target.quantity), abs(live) - pending)
        if qty <= _EPS:
            return None
        action = "SELL" if live > 0 else "BUY"
        order = self.planner.order(contract, action, qty, run)
        if self.account:
            order.account = self.account
        grant = self.authority.issue(contract.conId, action, qty, f"emergency stop: {run.reason}")
        try:
            trade = self.trades.place_order(
                contract, order, target.strategy, actor=EMERGENCY_ACTOR, flatten=grant
            )
        except OrderRefused as exc:
            self.authority.withdraw(grant)
            if "not connected" in exc.reasons:
                raise _Interrupted("not connected") from exc
            run.fail("flatten", f"{action} {qty:g} {symbol}", "; ".join(exc.reasons))
            return None
        run.closed.append(
            FlattenOrder(
                target.strategy,
                contract.conId,
                symbol,
                action,
                qty,
                order.orderType,
                _limit_price(order),
                trade.order.orderId,
            )
        )
        return trade

    def _live_position(self, con_id: int) -> float | None:
        total = 0.0
        seen = False
        for p in self.ib.positions(self.account) if self.account else self.ib.positions():
            if p.contract.conId == con_id:
                total += float(p.position)
                seen = True
        return total if seen else None

    def _pending_closing(self, con_id: int, live: float) -> float:
        """Working orders on the closing side that may still fill."""
        side = "SELL" if live > 0 else "BUY"
        return sum(
            float(t.orderStatus.remaining or t.order.totalQuantity)
            for t in self.ib.openTrades()
            if t.contract.conId == con_id and t.order.action == side
        )

    async def _wait_connected(self, run: _Run) -> bool:
        if self._connected():
            return True
        if run.gave_up_waiting:
            return False  # waited the whole bound once already: say so now, not later
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect_timeout
        log.warning("emergency stop: waiting for the connection to come back")
        said = -1
        while not self._connected():
            left = deadline - loop.time()
            if left <= 0:
                run.gave_up_waiting = True
                run.fail(
                    "connection",
                    "IB",
                    f"not connected, and no reconnect within {self.reconnect_timeout:g}s",
                )
                return False
            if math.ceil(left) != said:
                said = math.ceil(left)
                self._say(
                    run,
                    "waiting",
                    f"waiting for the connection to IB (gives up in {said} s)",
                )
            await asyncio.sleep(0.05)
        return True

    def _connected(self) -> bool:
        if not self.ib.isConnected():
            return False
        state = getattr(self.connection, "state", None)
        # CONNECTED is set once the session is synchronised (orders, positions loaded)
        return state is None or str(state) in ("connected", "link lost")

    async def _verify(self, run: _Run) -> tuple[list[str], list[str]]:
        """What is left: positions (if flattening) and working orders of the scope."""
        if not run.gave_up_waiting:
            self._say(run, "verifying", "checking that the account is flat and order-free")
        if not await self._wait_connected(run):
            return ["unknown: not connected"], ["unknown: not connected"]
        working = [
            f"#{t.order.orderId} " + describe_order(t.contract, t.order)
            for t in self._working(run.scope)
        ]
        remaining: list[str] = []
        if run.flatten:
            try:
                positions = await self._positions()
            except (TimeoutError, _Interrupted, ConnectionError) as exc:
                run.fail("verify", "positions", f"could not be re-read: {exc}")
                return ["unknown"], working
            targets = self.planner.plan(run, positions) if positions else []
            remaining = [
                f"{t.contract.localSymbol or t.contract.symbol} {t.quantity:g} ({t.strategy})"
                for t in targets
            ]
        return remaining, working

    async def _preview(
        self, reason: str, scope: StopScope, flatten: bool, actor: str
    ) -> EmergencyStopResult:
        run = _Run(reason, scope, flatten, actor)
        for trade in self._working(scope):
            run.cancelled.setdefault(self._subject(trade))
        if self.ib.isConnected():
            try:
                positions = await self._positions()
            except (TimeoutError, _Interrupted, ConnectionError):
                positions = list(self.ib.positions())
        else:
            positions = list(self.ib.positions())
        if flatten:
            for t in self.planner.plan(run, positions):
                contract = _tradable(t.contract)
                action = "SELL" if t.quantity > 0 else "BUY"
                order = self.planner.order(contract, action, abs(t.quantity), run)
                run.closed.append(
                    FlattenOrder(
                        t.strategy,
                        contract.conId,
                        contract.localSymbol if contract.secType == "CASH" else contract.symbol,
                        action,
                        abs(t.quantity),
                        order.orderType,
                        _limit_price(order),
                    )
                )
        self.audit.record(
            actor,
            "emergency_stop_preview",
            f"{scope.describe()}: {reason}",
            f"would cancel {len(run.cancelled)} orders and send {len(run.closed)} "
            "flattening orders",
            strategy=scope.strategy,
        )
        now = now_utc()
        return EmergencyStopResult(
            reason=reason,
            scope=scope,
            flatten=flatten,
            dry_run=True,
            started=run.started,
            finished=now,
            orders_cancelled=tuple(run.cancelled),
            positions_closed=tuple(run.closed),
            failures=tuple(run.failures),
        )


def _limit_price(order: Order) -> float | None:
    if order.orderType != "LMT" or order.lmtPrice is None:
        return None
    return float(order.lmtPrice)


def _tradable(contract: Contract) -> Contract:
    """A contract to send an order for, from one IB reported in a position."""
    c = Contract(
        secType=contract.secType,
        conId=contract.conId,
        symbol=contract.symbol,
        lastTradeDateOrContractMonth=contract.lastTradeDateOrContractMonth,
        strike=contract.strike,
        right=contract.right,
        multiplier=contract.multiplier,
        currency=contract.currency,
        localSymbol=contract.localSymbol,
        tradingClass=contract.tradingClass,
    )
    if contract.secType == "STK":
        c.exchange = "SMART"
        c.primaryExchange = contract.primaryExchange or contract.exchange
    elif contract.secType == "CASH":
        c.exchange = contract.exchange or "IDEALPRO"
    else:
        c.exchange = contract.exchange or contract.primaryExchange
    return c
