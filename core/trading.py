"""TradeManager: the one road every order takes, and every fill comes back on.

Placing an order: validate it (every problem at once), check the strategy's permissions,
pass the one pre-trade gate (the RiskManager), stamp the strategy into ``orderRef``,
send it with ib_async, and write an audit record. A refusal raises
:class:`OrderRefused` with every reason, emits ``orderRejected`` and is audited: nothing
is sent. Nothing is ever re-sent automatically: an order that may have reached the
gateway is never sent twice. Errors go to the strategy and the log with IB's code.

Orders the console did not place (TWS itself, other client ids) and executions whose
``orderRef`` names no strategy belong to the ``external`` bucket. After a reconnect,
ib_async replays the day's executions without emitting live fill events;
:meth:`TradeManager.resync` walks them and hands those not seen yet to the fill handler,
which is how a fill that happened while disconnected is delivered exactly once.

The trade manager holds the commands and wires ib_async's events to its parts, each a
module of its own with the why in its docstring:

* :mod:`core.admission`: the checks before sending and the refusal (and the values the
  pre-trade gate speaks in: :class:`OrderIntent`, :class:`PreTradeDecision`);
* :mod:`core.order_contracts`: what admission judges on that comes from IB: qualified
  contracts' details (cached, prefetched after a refusal, learnt for working orders at
  a resync) and the console's account;
* :mod:`core.order_changes`: modify and cancel, and a refused modification put back;
* :mod:`core.order_errors`: IB's errors about an order (refused modification, notice,
  rejection);
* :mod:`core.order_records`: attribution, placement times, the ``orderUpdated`` it
  publishes and the orders journal;
* :mod:`core.inflight`: orders that may never have reached the gateway (``NotSent``,
  ``Lost``) and the ``Trade`` objects kept current across a reconnect;
* :mod:`core.order_resync`: link down on a drop, and the reconciliation after every
  (re)connect (open and completed orders, ``Lost``, while-away statuses, replayed fills);
* :mod:`core.fill_handling`: fills journalled durably before they count, commissions.

The names importers use stay importable from here.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

from eventkit import Event
from ib_async import IB, Contract, ContractDetails, Fill, Order, OrderState, Trade

from core.admission import (
    EMERGENCY_ACTOR,
    READONLY_REASON,
    ApproveAll,
    DetailsLookup,
    OrderAdmission,
    OrderIntent,
    OrderRefused,
    PreTradeDecision,
    PreTradeGate,
)
from core.audit import AuditLog
from core.compat import keep_working_on_refusal
from core.connection import Connection
from core.contracts import ContractService
from core.events import MANUAL, NOT_SENT
from core.fill_handling import FillHandler, FillJournal, fill_record
from core.flatten import FlattenIntent
from core.inflight import InFlightOrders
from core.order_changes import NOT_REJECTIONS, OrderChanges
from core.order_contracts import OrderContracts
from core.order_errors import OrderErrors
from core.order_records import OrderKey, OrderRecords, order_key
from core.order_resync import OrderResync
from core.orderids import OrderIdSequence
from core.strategies import StrategyManager
from core.tasks import Tasks
from core.wire import WireGate

__all__ = [
    "EMERGENCY_ACTOR",
    "NOT_REJECTIONS",
    "READONLY_REASON",
    "ApproveAll",
    "DetailsLookup",
    "FillJournal",
    "OrderIntent",
    "OrderRefused",
    "PreTradeDecision",
    "PreTradeGate",
    "TradeManager",
    "fill_record",
]

log = logging.getLogger(__name__)


class TradeManager:
    """Places, modifies and cancels orders and handles their fills.

    Events:
        * ``orderUpdated`` (update: :class:`core.events.OrderUpdated`)
        * ``fillReceived`` (fill: :class:`core.events.FillRecorded`): after it is durable
        * ``orderRejected`` (rejection: :class:`core.events.OrderRejected`)
        * ``journalError`` (error: Exception): a fill could not be written; it is retried
    """

    def __init__(
        self,
        ib_client: IB,
        strategy_manager: StrategyManager | None = None,
        *,
        journal: FillJournal | None = None,
        pre_trade: PreTradeGate | None = None,
        audit: AuditLog | None = None,
        details_lookup: DetailsLookup | None = None,
        connection: Connection | None = None,
        order_ids: OrderIdSequence | None = None,
        contracts: ContractService | None = None,
    ) -> None:
        self.ib = ib_client
        #: Contract details and qualification (the session's cache, else one of its own):
        #: an order is checked on IB's qualified contract from it, or refused.
        self.contracts = contracts if contracts is not None else ContractService(ib_client)
        #: A read-only session (``--readonly``) places, modifies and cancels nothing: the
        #: refusal is here and at the wire, not only in the GUI's disabled controls.
        self.readonly = bool(connection.readonly) if connection is not None else False
        #: Order ids never reused (persisted by the session across restarts).
        self.order_ids = order_ids or OrderIdSequence()
        #: The last check and the pacing of every frame written to the gateway.
        self.wire = WireGate(ib_client, readonly=self.readonly)
        self.strategy_manager = strategy_manager or StrategyManager()
        self.journal = journal
        self.audit = audit or AuditLog()
        self.details_lookup = details_lookup
        self.orderRejected: Event = Event("orderRejected")
        self._tasks = Tasks("trades")
        #: The qualified contracts' details and the account orders are judged on.
        self.order_contracts = OrderContracts(
            ib_client, self.contracts, configured=connection, tasks=self._tasks
        )
        self.admission = OrderAdmission(
            readonly=self.readonly,
            pre_trade=pre_trade or ApproveAll(),
            permissions=self.strategy_manager.check_permissions,
            audit=self.audit,
            rejected=self.orderRejected,
            tell=self._queue,
            details_lookup=details_lookup or self.order_contracts.details,
            prefetch=self.order_contracts.prefetch,
            account=lambda: self.order_contracts.account,
        )
        # Orders ended here, not at IB (NotSent, Lost): the in-flight part writes it, the
        # records (the status shown) and the changes (nothing ended can change) read it.
        ended: dict[OrderKey, tuple[str, str]] = {}
        self.records = OrderRecords(
            journal=journal, tasks=self._tasks, ended=ended, details_lookup=details_lookup
        )
        self.in_flight = InFlightOrders(
            ib_client,
            wire=self.wire,
            audit=self.audit,
            order_ids=self.order_ids,
            records=self.records,
            rejected=self.orderRejected,
            tell=self._queue,
            # a status learned on the reconnect (relinked orders): it happened while away
            on_status=lambda trade: self._on_order_status(trade, while_away=trade.isDone()),
            ended=ended,
        )
        self.changes = OrderChanges(
            ib_client,
            wire=self.wire,
            audit=self.audit,
            admission=self.admission,
            records=self.records,
            ended=ended,
        )
        self.fills = FillHandler(
            journal=journal, records=self.records, tasks=self._tasks, tell=self._queue
        )
        self.orderUpdated: Event = self.records.orderUpdated
        self.fillReceived: Event = self.fills.fillReceived
        self.journalError: Event = self.fills.journalError
        self.errors = OrderErrors(
            ib_client,
            changes=self.changes,
            records=self.records,
            audit=self.audit,
            rejected=self.orderRejected,
            tell=self._queue,
            acknowledged=self.in_flight.acknowledged,
        )
        self.reconnects = OrderResync(
            ib_client,
            link=connection,
            readonly=self.readonly,
            in_flight=self.in_flight,
            records=self.records,
            fills=self.fills,
            tasks=self._tasks,
            learn_working=self.order_contracts.learn_working,
            wait_journalled=self.wait_journalled,
        )
        self.wire.frameDropped += self.in_flight.on_frame_dropped
        self.wire.frameDropped += self.changes.on_frame_dropped
        ib = self.ib
        keep_working_on_refusal(ib, self.errors.on_refused)
        ib.orderStatusEvent += self._on_order_status
        ib.openOrderEvent += self._on_open_order  # parameters; statuses come from orderStatus
        ib.execDetailsEvent += self._on_exec_details
        ib.commissionReportEvent += self.fills.on_commission_report
        ib.errorEvent += self.errors.on_error
        ib.disconnectedEvent += self.reconnects.on_disconnected
        if connection is not None:
            connection.connected += self.reconnects.on_connected
            connection.statusChanged += self.reconnects.on_connection_status

    @property
    def account(self) -> str:
        """The account every order goes to: the configured one (``--account``), else
        the first IB manages (the one the console watches); "" until connected."""
        return self.order_contracts.account

    async def qualify(self, contract: Contract) -> Contract:
        """IB's qualified copy of ``contract`` (e.g. ``create_stock_contract("AAPL")``),
        its details cached: an order is only sent on a contract whose details are known
        (its tick size, multiplier and lot size are checked). Raises
        :class:`core.contracts.ContractError` when IB knows no such contract."""
        return await self.order_contracts.qualify(contract)

    @property
    def pre_trade(self) -> PreTradeGate:
        """The one pre-trade gate (the RiskManager installs itself here)."""
        return self.admission.pre_trade

    @pre_trade.setter
    def pre_trade(self, gate: PreTradeGate) -> None:
        self.admission.pre_trade = gate

    # -- commands ----------------------------------------------------------------------

    def place_order(
        self,
        contract: Contract,
        order: Order,
        strategy_symbol: str,
        *,
        actor: str | None = None,
        flatten: FlattenIntent | None = None,
    ) -> Trade:
        """Make ``order`` canonical, validate, gate and send it for ``strategy_symbol``.

        The order object is put in its canonical spelling in place (``"lmt"`` becomes
        ``LMT``): what the checks judged is exactly what is sent, and the gate asks once
        more at the instant the frame is written (:mod:`core.wire`). Returns ib_async's
        live ``Trade``. Raises :class:`OrderRefused` (nothing sent) when the order is
        malformed, or validation, the strategy's permissions or the gate refuse it.
        ``flatten`` is the emergency stop's authorisation (:mod:`core.flatten`) for a
        flattening order to pass HALTED.
        """
        strategy, actor = self.admission.who(strategy_symbol, actor, order, contract)
        return self._send_new(contract, order, strategy, actor, preassigned=False, flatten=flatten)

    def _send_new(
        self,
        contract: Contract,
        order: Order,
        strategy: str,
        actor: str,
        *,
        preassigned: bool,
        flatten: FlattenIntent | None = None,
    ) -> Trade:
        contract, decision, subject = self.admission.admit(
            contract, order, strategy, actor, "place", None, flatten=flatten
        )
        if order.orderId and not preassigned:
            self.admission.refuse(
                order,
                contract,
                strategy,
                actor,
                "place",
                subject,
                [
                    f"order id {order.orderId} is set: a new order gets its id from the "
                    "console (ids are never reused); use modify_order to change a working one"
                ],
            )
        order.orderRef = strategy
        if not self.ib.isConnected():
            self.admission.refuse(
                order, contract, strategy, actor, "place", subject, ["not connected"]
            )
        if not preassigned:
            order.orderId = self.order_ids.next(self.ib.client)
        key = (self.ib.client.clientId, order.orderId)
        entry = self.in_flight.expect(key, strategy, actor)
        self.records.strategy_of_order[key] = strategy
        intent = OrderIntent(strategy, actor, contract, order, None, flatten=flatten)
        self.wire.expect(order.orderId, lambda: self.admission.at_wire(intent, decision))
        trade = entry.trade = self.ib.placeOrder(contract, order)
        self.in_flight.live[key] = trade
        written = self.wire.was_written(order.orderId)
        self.audit.record(
            actor,
            "place",
            subject,
            "sent" if written or entry.not_sent else "queued: waiting for the message pacing",
            order_id=order.orderId,
            strategy=strategy,
        )
        self._queue({"type": "order", "strategy": strategy, "trade": trade})
        if entry.not_sent:
            self.in_flight.end(key, NOT_SENT, entry.not_sent)
        else:
            self.records.publish(trade)
        return trade

    def verdict(
        self,
        contract: Contract,
        order: Order,
        strategy: str = MANUAL,
        actor: str = "gui",
        details: ContractDetails | None = None,
    ) -> list[str]:
        """Every reason ``order`` would be refused if placed now (empty: it would be
        sent), judged on a canonical copy; nothing is sent, recorded or counted.
        ``details`` stand in for the cached contract details when given."""
        return self.admission.verdict(contract, order, strategy, actor, details)

    def what_if(self, contract: Contract, order: Order) -> Awaitable[OrderState]:
        """Ask the gateway what ``order`` would do to margin (whatIf); it never trades,
        so it passes the wire without the pre-trade gate. Asked for the account orders
        go to (the margin of another account would mislead)."""
        if not order.account:
            order = copy.copy(order)
            order.account = self.account
        with self.wire.what_if():
            return self.ib.whatIfOrderAsync(contract, order)

    def place_bracket(
        self,
        contract: Contract,
        parent: Order,
        take_profit: Order,
        stop_loss: Order,
        strategy_symbol: str,
        *,
        actor: str | None = None,
    ) -> list[Trade]:
        """Send a bracket: the parent and both children are checked first, then sent in
        order with ``transmit`` only on the last, so nothing works until all arrived."""
        strategy, actor = self.admission.who(strategy_symbol, actor, parent, contract)
        for o in (parent, take_profit, stop_loss):
            if o.orderId if isinstance(o, Order) else False:
                self.admission.refuse(
                    o,
                    contract,
                    strategy,
                    actor,
                    "place",
                    "bracket",
                    ["a bracket's orders get their ids from the console: leave orderId unset"],
                )
            self.admission.admit(contract, o, strategy, actor, "place", None)
        if not self.ib.isConnected():
            self.admission.refuse(
                parent, contract, strategy, actor, "place", "bracket", ["not connected"]
            )
        parent.orderId = self.order_ids.next(self.ib.client)
        take_profit.orderId = self.order_ids.next(self.ib.client)
        stop_loss.orderId = self.order_ids.next(self.ib.client)
        parent.transmit = False
        take_profit.parentId = stop_loss.parentId = parent.orderId
        take_profit.transmit = False
        stop_loss.transmit = True
        return [
            self._send_new(contract, o, strategy, actor, preassigned=True)
            for o in (parent, take_profit, stop_loss)
        ]

    def modify_order(self, trade: Trade, new_order: Order, *, actor: str | None = None) -> Trade:
        """Send ``new_order`` as a modification of the working ``trade``; it keeps the
        working order's id, client id and strategy and passes the checks and the gate
        like a new order. Raises :class:`OrderRefused` (nothing sent) when refused, or
        when the order is done, lost, never sent or another client id's
        (:mod:`core.order_changes`)."""
        return self.changes.modify_order(trade, new_order, actor=actor)

    def modify_order_fields(
        self,
        order_id: int,
        *,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
        actor: str = "gui",
    ) -> Trade:
        """Modify a working order's quantity or prices in place (the grid's edit).

        Raises ``LookupError`` for an unknown order and :class:`OrderRefused` when the
        new order is refused; the working order is then unchanged.
        """
        return self.changes.modify_order_fields(
            order_id, quantity=quantity, limit_price=limit_price, stop_price=stop_price, actor=actor
        )

    def trade_for_order_id(self, order_id: int, client_id: int | None = None) -> Trade | None:
        """This session's live trade for an order id (of our client id unless given)."""
        return self.changes.trade_for_order_id(order_id, client_id)

    def cancel_order(self, trade: Trade, *, actor: str | None = None) -> Trade | None:
        """Request a cancel; never refused by risk (a trader must always be able to get
        out), only when it cannot reach the order meant (:mod:`core.order_changes`).
        The cancel is confirmed by the order's status, not by this call."""
        return self.changes.cancel_order(trade, actor=actor)

    def cancel_all(self, *, actor: str = "gui", strategy: str | None = None) -> int:
        """Cancel every working order (of one strategy if given); returns how many. For
        the whole account this also sends reqGlobalCancel (orders placed elsewhere)."""
        return self.changes.cancel_all(actor=actor, strategy=strategy)

    def republish_orders(self) -> int:
        """Publish every order this session knows as ``orderUpdated`` (for a view that
        binds late); returns how many."""
        trades = self.ib.trades()
        for trade in trades:
            self.records.publish(trade)
        return len(trades)

    def start_day(self) -> int:
        """A new trading day: forget what the ended day's finished orders and fills
        needed, so a console open all week holds one day's bookkeeping. Returns how
        many orders were forgotten.

        Working and in-doubt orders are kept. Execution ids are forgotten only with a
        journal: it is idempotent by exec id, so a late replay of an old fill writes and
        publishes nothing.
        """
        keep = self.in_flight.keys()
        done = [k for k in self.records.strategy_of_order if k not in keep]
        self.in_flight.forget_ended(done)
        self.records.forget(keep, [t for t in self.ib.openTrades() if not t.isDone()])
        self.wire.keep_written({order_id for _, order_id in keep})
        self.fills.start_day()
        log.info("new trading day: %d finished orders forgotten", len(done))
        return len(done)

    def strategy_of(self, trade: Trade) -> str:
        """The strategy an order belongs to: its ``orderRef``, else ``external``."""
        return self.records.strategy_of(trade)

    async def restore(self) -> int:
        """Before connecting: learn from the orders journal when each order still
        working at the last run was placed, and its contract's price increment.

        IB's openOrder carries no time and ib_async builds a new ``Trade`` after a
        restart, so without this a working order would show the restart as its time.
        Returns how many orders were restored; a journal that cannot be read is logged
        and the orders then show the time they are first seen.
        """
        return await self.records.restore()

    # -- fills and resync --------------------------------------------------------------

    def handle_fill_event(self, trade: Trade | None, fill: Fill) -> None:
        """Take an execution in: journal it (durable), then publish and queue it.

        Safe to call any number of times for the same execution: only the first call
        that finds it new has an effect.
        """
        self.fills.handle(trade, fill)

    async def resync(self) -> int:
        """After a (re)connect: handle the session's executions not handled yet.

        Concurrent callers share one run: ib_async keys the open-orders request by name,
        so two at once would leave one waiting forever.

        Returns how many executions were taken in. Called on every ``connected`` event.
        Also asks for every open order of the account (reqAllOpenOrders), so orders
        placed in TWS or by other clients are shown, attributed to ``external`` unless
        their ``orderRef`` names a strategy (:mod:`core.order_resync`).
        """
        return await self.reconnects.resync()

    async def synchronised(self) -> None:
        """Wait for the resync in progress, if any (after a reconnect: the orders IB no
        longer knows are then ended as lost)."""
        await self.reconnects.synchronised()

    def lost_orders(self, strategy: str | None = None) -> list[Trade]:
        """The orders ended ``Lost`` (of one strategy if given) that have not turned up
        at IB since: a person must look for them in TWS."""
        return self.reconnects.lost_orders(strategy)

    async def wait_journalled(self, timeout: float | None = None) -> list[str]:
        """Wait until no fill is waiting for its journal write and the order updates so
        far had their write attempt (used by tests, shutdown).

        Waits at most ``timeout`` seconds (None: as long as it takes); the writes still
        going on then are left running. Returns the exec ids of the fills not
        journalled yet (empty: every fill is durable).
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - loop.time())

        if await self.fills.wait(left):
            await self.records.flush(left)
        return self.fills.not_journalled()

    # -- ib_async events ---------------------------------------------------------------

    def _on_exec_details(self, trade: Trade, fill: Fill) -> None:
        self.in_flight.acknowledged(fill.execution.clientId, fill.execution.orderId)
        self.fills.handle(trade, fill)

    def _on_order_status(self, trade: Trade, *, while_away: bool = False) -> None:
        self.in_flight.acknowledged(trade.order.clientId, trade.order.orderId)
        if trade.isDone():
            self.in_flight.live.pop(order_key(trade), None)
            self.changes.forget(trade)
        else:
            self.in_flight.watch(trade)
        strategy = self.strategy_of(trade)
        if not self.records.publish(trade, while_away=while_away):
            return  # not a change an order can make: strategies are not told either
        status = trade.orderStatus.status
        kind = "cancel" if status in ("Cancelled", "ApiCancelled") else "status"
        self._queue({"type": kind, "strategy": strategy, "trade": trade, "status": status})

    def _on_open_order(self, trade: Trade) -> None:
        self.in_flight.acknowledged(trade.order.clientId, trade.order.orderId)
        self.in_flight.watch(trade)
        self.changes.confirmed(trade)
        self.records.publish(trade)

    def _queue(self, message: dict[str, Any]) -> None:
        message.setdefault("time", datetime.now(UTC))
        self.strategy_manager.message_queue.put(message)
