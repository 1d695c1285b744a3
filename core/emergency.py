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
The stop knows risk only through narrow Protocols (:mod:`core.emergency_needs`), and
risk does not know the stop: :class:`StateControl` (set a scope HALTED, wait for it to
be saved), :class:`StopView` (strategy positions and quotes, read from the exposure
book), :class:`AuditTrail`, and :class:`FlattenIssuer`, which grants each flattening
order a typed, single-use :class:`core.flatten.FlattenIntent` that the pre-trade gate
checks to let it pass HALTED. The session wires them, and connects risk's
``limitBreached`` event to :meth:`EmergencyStop.on_breach`.

Where the parts live
--------------------
This module runs the stop (:class:`EmergencyStop`: the one call, the rounds, the final
check, the dry run) and exports every name of the parts, which are:

* :mod:`core.emergency_needs`: the Protocols above.
* :mod:`core.emergency_report`: the values and the words: :class:`StopScope`,
  :class:`EmergencyStopProgress` (what a running stop waits for), :class:`FlattenOrder`,
  :class:`StopFailure`, :class:`EmergencyStopResult`, and a run's record.
* :mod:`core.emergency_link`: noticing a drop mid-round and waiting for the reconnect
  (step 5's resume), and re-reading positions (step 3).
* :mod:`core.emergency_cancel`: the cancel round (step 2).
* :mod:`core.emergency_plan`: what closes each position, attributed to whom
  (:class:`FlattenPlanner`, step 4's decisions, also the dry run's).
* :mod:`core.emergency_flatten`: the flatten round, sending and awaiting the orders.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from eventkit import Event

from core.emergency_cancel import CancelRound, order_subject
from core.emergency_flatten import FlattenRound
from core.emergency_link import LinkInterrupted, StopLink
from core.emergency_needs import (
    AuditTrail,
    Breach,
    DetailsLookup,
    FlattenIssuer,
    StateControl,
    StopView,
)
from core.emergency_plan import FlattenPlanner, FlattenTarget
from core.emergency_report import (
    EmergencyStopProgress,
    EmergencyStopResult,
    FlattenOrder,
    StopFailure,
    StopRun,
    StopScope,
    counted,
)
from core.events import TradingState, now_utc
from core.tasks import Tasks
from core.trading import TradeManager
from core.trading_state import ACCOUNT

log = logging.getLogger(__name__)

__all__ = [
    "AuditTrail",
    "Breach",
    "DetailsLookup",
    "EmergencyStop",
    "EmergencyStopProgress",
    "EmergencyStopResult",
    "FlattenIssuer",
    "FlattenOrder",
    "FlattenPlanner",
    "StateControl",
    "StopFailure",
    "StopScope",
    "StopView",
]


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
        Only this account's positions and orders; empty: the console's account (the one
        its orders go to, :attr:`core.trading.TradeManager.account`).
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

    The timeouts (``cancel_timeout`` ... ``max_rounds``) are read at each step, so a
    change to one applies to the next stop.
    """

    def __init__(
        self,
        trade_manager: TradeManager,
        connection: object | None = None,
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
        self.progress: Event = Event("progress")
        self.planner = FlattenPlanner(
            view, self.details_lookup, limit_slippage_pct=limit_slippage_pct, now=now
        )
        self.link = StopLink(self.ib, connection, account, self._publish)
        self.cancels = CancelRound(trade_manager, audit, view, self.link)
        self.flattens = FlattenRound(trade_manager, self.planner, authority, self.link)
        self._inflight: asyncio.Task[EmergencyStopResult] | None = None
        self._inflight_run: StopRun | None = None
        self._tasks = Tasks("emergency_stop")

    def on_breach(self, breach: Breach) -> None:
        """A risk-limit breach: run the stop for its scope when its action asks for it
        (the session connects risk's ``limitBreached`` here)."""
        if breach.action != "emergency_stop":
            return
        scope = StopScope.account() if breach.scope == ACCOUNT else StopScope.of(breach.scope)
        self._tasks.spawn(self.stop(breach.describe(), scope=scope, actor="risk"), "breach")

    def _say(self, run: StopRun, step: str, detail: str) -> None:
        self._publish(run.progress(step, detail))

    def _publish(self, progress: EmergencyStopProgress) -> None:
        self.progress.emit(progress)

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
            return await self._preview(StopRun(reason, scope, flatten, actor))
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
        run = StopRun(reason, scope, flatten, actor)
        self.audit.record(
            actor,
            "emergency_stop",
            run.subject,
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

    async def _run(self, run: StopRun) -> EmergencyStopResult:
        loop = asyncio.get_running_loop()
        deadline = (
            loop.time()
            + self.reconnect_timeout
            + self.max_rounds * (self.cancel_timeout + self.fill_timeout + 2 * self.request_timeout)
        )
        saving = self._tasks.spawn(self._save_state(), "save HALTED", awaited=True)
        remaining: list[str] = []
        working: list[str] = []
        lost: list[str] = []
        try:
            while run.rounds < self.max_rounds and loop.time() < deadline:
                if not await self.link.wait_connected(run, self.reconnect_timeout):
                    break
                self._follow_account()
                try:
                    done = await self._round(run)
                except (LinkInterrupted, ConnectionError, OSError) as exc:
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
            lost = self._lost(run)
        finally:
            try:
                await saving
            except Exception as exc:
                run.fail("state", "HALTED", f"could not be saved: {exc}")
        result = run.result(remaining=remaining, working=working, lost=lost)
        self.audit.record(
            run.actor, "emergency_stop", run.subject, result.summary(), strategy=run.scope.strategy
        )
        log.warning("%s", result.describe())
        return result

    async def _round(self, run: StopRun) -> bool:
        """One pass: cancel, await cancels, re-read positions, flatten. True when done."""
        self.link.begin_round()
        run.rounds += 1
        n = len(self.cancels.working(run.scope))
        self._say(run, "cancelling", f"cancelling {counted(n, 'working order')}")
        self.cancels.cancel(run, each=run.scope.kind != "account")
        await self.cancels.await_no_working(run, self.cancel_timeout, self.global_cancel_grace)
        self._say(run, "positions", "re-reading positions from IB")
        targets = await self._targets(run)
        if not targets or not run.flatten:
            return True
        self._say(run, "flattening", f"flattening {counted(len(targets), 'position')}")
        trades = self.flattens.send(run, targets)
        if not trades:
            return True  # nothing could be sent; failures say why
        await self.flattens.await_done(trades, self.fill_timeout)
        return False  # go round once more: cancel leftovers, re-read, verify

    async def _targets(self, run: StopRun) -> list[FlattenTarget]:
        try:
            positions = await self.link.positions(self.request_timeout)
        except TimeoutError:
            run.fail("positions", "reqPositions", f"no answer within {self.request_timeout:g}s")
            return []
        return self.planner.plan(run, positions)

    async def _verify(self, run: StopRun) -> tuple[list[str], list[str]]:
        """What is left: positions (if flattening) and working orders of the scope."""
        if not run.gave_up_waiting:
            self._say(run, "verifying", "checking that the account is flat and order-free")
        if not await self.link.wait_connected(run, self.reconnect_timeout):
            return ["unknown: not connected"], ["unknown: not connected"]
        self._follow_account()
        # After a reconnect the trade manager looks for the orders IB no longer knows:
        # what it finds lost belongs in this stop's outcome.
        await self.trades.synchronised()
        working = [order_subject(t) for t in self.cancels.working(run.scope)]
        remaining: list[str] = []
        if run.flatten:
            try:
                positions = await self.link.positions(self.request_timeout)
            except (TimeoutError, LinkInterrupted, ConnectionError) as exc:
                run.fail("verify", "positions", f"could not be re-read: {exc}")
                return ["unknown"], working
            targets = self.planner.plan(run, positions) if positions else []
            remaining = [t.describe() for t in targets]
        return remaining, working

    def _lost(self, run: StopRun) -> list[str]:
        """The scope's orders lost after a reconnect (never cancelled: IB does not know
        them), named so the outcome never reads order-free without them."""
        return [
            order_subject(t)
            for t in self.trades.lost_orders()
            if self.cancels.in_scope(t, run.scope)
        ]

    def _follow_account(self) -> None:
        """Act for the console's account: the configured one, else the one its orders
        go to (IB's first managed account, known once connected). With several accounts
        behind one login, another account's positions are never summed into this one's
        nor "flattened" with an order for this one (which would open a position here)."""
        account = self.account or self.trades.account
        self.link.account = account  # the cancel and flatten rounds read it there

    async def _preview(self, run: StopRun) -> EmergencyStopResult:
        """What a stop would cancel and send now, sending nothing (``dry_run``)."""
        self._follow_account()
        for trade in self.cancels.working(run.scope):
            run.cancelled.setdefault(order_subject(trade))
        if self.ib.isConnected():
            try:
                positions = await self.link.positions(self.request_timeout)
            except (TimeoutError, LinkInterrupted, ConnectionError):
                positions = list(self.ib.positions())
        else:
            positions = list(self.ib.positions())
        if run.flatten:
            run.closed += self.planner.planned_orders(run, positions)
        result = run.result(dry_run=True)
        self.audit.record(
            run.actor,
            "emergency_stop_preview",
            run.subject,
            result.summary(),
            strategy=run.scope.strategy,
        )
        return result
