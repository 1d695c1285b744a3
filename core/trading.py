"""TradeManager: the one road every order takes, and every fill comes back on.

Placing an order: validate it (every problem at once), check the strategy's permissions,
pass the one pre-trade gate (the RiskManager), stamp the strategy into ``orderRef``,
send it with ib_async, and write an audit record. A refusal raises
:class:`OrderRefused` with every reason, emits ``orderRejected`` and is audited: nothing
is sent.

Fills: an execution is written to the fills journal (durable, idempotent by execId)
*before* it is counted as handled, published as ``fillReceived`` and queued to the
strategy. The commission report that follows an execution is awaited briefly so the
journal gets the commission too; when it arrives later than that, the fill is journalled
once more with it (the store keeps that copy, and does not count it as a new fill) and
published again as ``fillReceived`` so the portfolio replaces the first copy (strategies
are not told twice: their ``Fill`` object is ib_async's, which now carries the report).
After a reconnect, ib_async replays the day's
executions without emitting live fill events; :meth:`TradeManager.resync` walks them and
handles those not seen yet, which is how a fill that happened while disconnected is
delivered exactly once.

Order updates: every ``orderUpdated`` is also written to the journal's orders library
when the journal has ``append_orders``. They are batched and written in the background;
a failed write is logged and kept for the next attempt (up to
:data:`MAX_ORDER_BACKLOG` updates), never fatal and never blocking the loop.

Nothing is ever re-sent automatically: an order that may have reached the gateway is
never sent twice. Errors go to the strategy and the log with IB's code.

Orders the console did not place (TWS itself, other client ids) and executions whose
``orderRef`` names no strategy belong to the ``external`` bucket.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, Protocol

from eventkit import Event
from ib_async import (
    IB,
    CommissionReport,
    Contract,
    ContractDetails,
    Fill,
    Order,
    OrderState,
    Trade,
    TradeLogEntry,
)
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

from core.audit import AuditLog
from core.compat import trades_by_key, trades_by_perm_id
from core.connection import Connection
from core.events import (
    EXTERNAL,
    LOST,
    MANUAL,
    NOT_SENT,
    FillRecorded,
    OrderRejected,
    OrderUpdated,
    TradingState,
)
from core.flatten import FlattenIntent
from core.orderids import OrderIdSequence
from core.orders import canonicalize_order, describe_order, price_or_none, validate_order
from core.orderstatus import allowed
from core.strategies import StrategyManager
from core.tasks import Tasks
from core.wire import FrameDropped, WireGate

log = logging.getLogger(__name__)

#: How long a fill waits for its commission report before it is journalled without one.
COMMISSION_WAIT_S = 1.0
#: How many order updates wait for the journal at most when writes keep failing.
MAX_ORDER_BACKLOG = 10_000
#: IB codes that are informational for an order, not a rejection.
#: The actor name the emergency stop sends its flattening orders as (core.risk uses it).
EMERGENCY_ACTOR = "emergency_stop"
#: Why a read-only session refuses every order change.
READONLY_REASON = (
    "read-only session (--readonly): this console places, changes and cancels no orders"
)
NOT_REJECTIONS = frozenset({202, 399, 404, 10148, 10147, 161}) | frozenset(range(2100, 2200))


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What the pre-trade gate is asked about: an order about to be sent."""

    strategy: str
    actor: str
    contract: Contract
    order: Order
    replaces: Order | None = None  # the working order a modification replaces
    preview: bool = False  # only asked, not sent: the gate must not count it as sent
    #: The emergency stop's permission for this order to pass HALTED (core.flatten).
    flatten: FlattenIntent | None = None


@dataclass(frozen=True, slots=True)
class PreTradeDecision:
    """The gate's answer; ``reasons`` says why in plain words when refused.

    ``judged_under`` is the trading state the answer was given under and ``flatten``
    marks the emergency stop's own flattening order: the gate's last word at the wire
    (:meth:`PreTradeGate.at_wire`) compares them with the state at that instant.
    """

    approved: bool
    reasons: tuple[str, ...] = ()
    judged_under: TradingState | None = None
    flatten: bool = False


class PreTradeGate(Protocol):
    """The one pre-trade check every order passes (the RiskManager implements it)."""

    def check(self, intent: OrderIntent) -> PreTradeDecision:
        """Approve or refuse ``intent``; must be fast and must not block."""
        ...

    def at_wire(self, intent: OrderIntent, decision: PreTradeDecision) -> str | None:
        """Asked as the approved order's frame is written: a reason to drop it, or None."""
        ...


class ApproveAll:
    """The gate until risk limits are configured: approves everything."""

    def check(self, intent: OrderIntent) -> PreTradeDecision:
        """Approve."""
        return PreTradeDecision(True)

    def at_wire(self, intent: OrderIntent, decision: PreTradeDecision) -> str | None:
        """Nothing to add at the wire."""
        return None


@dataclass(slots=True)
class _InFlight:
    """An order written (or waiting to be) that the gateway has not acknowledged yet."""

    strategy: str
    actor: str
    trade: Trade | None = None
    not_sent: str = ""  # why the wire dropped it, when that happened inside placeOrder
    suspect: bool = False  # written before a drop: looked for after the reconnect


class FillJournal(Protocol):
    """Where fills become durable (the ArcticDB store).

    It may also have ``append_orders(updates: Sequence[OrderUpdated]) -> Awaitable[int]``
    (the store does): order updates are then journalled too; and
    ``last_order_updates() -> Awaitable[list[OrderUpdated]]``, the last journalled update
    of each order still working then, which :meth:`TradeManager.restore` reads.
    """

    def append_fills(self, fills: Sequence[FillRecorded]) -> Awaitable[int]:
        """Write the fills not written yet; return how many were new.

        An execution journalled without its commission and given again with it must be
        written again (it is not new: it does not count).
        """
        ...


OrderJournal = Callable[[Sequence[OrderUpdated]], Awaitable[int]]


class OrderRefused(Exception):
    """An order was refused before it was sent; ``reasons`` lists every problem."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("; ".join(self.reasons))


DetailsLookup = Callable[[Contract], ContractDetails | None]


_clean = price_or_none  # IB placeholders (UNSET_DOUBLE, NaN) become None


def fill_record(strategy: str, fill: Fill, min_tick: float | None = None) -> FillRecorded:
    """An ib_async ``Fill`` as a :class:`core.events.FillRecorded` for ``strategy``.

    IB's placeholders become None; a commission of None means the report has not come.
    ``min_tick`` is the contract's price increment, recorded so the price keeps its
    decimals wherever the fill is shown later (IB's execution does not carry it).
    """
    ex, c, cr = fill.execution, fill.contract, fill.commissionReport
    has_commission = bool(cr.execId) or bool(cr.commission)
    realized = _clean(cr.realizedPNL) if has_commission else None
    t = ex.time if ex.time.tzinfo else ex.time.replace(tzinfo=UTC)
    return FillRecorded(
        exec_id=ex.execId,
        order_id=ex.orderId,
        perm_id=ex.permId,
        client_id=ex.clientId,
        strategy=strategy,
        account=ex.acctNumber,
        con_id=c.conId,
        symbol=c.localSymbol if c.secType == "CASH" and c.localSymbol else c.symbol,
        sec_type=c.secType,
        currency=c.currency,
        exchange=ex.exchange,
        side=ex.side,
        quantity=float(ex.shares),
        price=float(ex.price),
        multiplier=float(c.multiplier or 1),
        commission=_clean(cr.commission) if has_commission else None,
        realized_pnl=realized or None,
        order_ref=ex.orderRef,
        time=t.astimezone(UTC),
        min_tick=min_tick,
    )


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
    ) -> None:
        self.ib = ib_client
        #: A read-only session (``--readonly``) places, modifies and cancels nothing: the
        #: refusal is here and at the wire, not only in the GUI's disabled controls.
        self.readonly = bool(connection.readonly) if connection is not None else False
        #: Order ids never reused (persisted by the session across restarts).
        self.order_ids = order_ids or OrderIdSequence()
        #: The last check and the pacing of every frame written to the gateway.
        self.wire = WireGate(ib_client, readonly=self.readonly)
        self.wire.frameDropped += self._on_frame_dropped
        # Sent, not yet acknowledged by the gateway; and orders ended here (not at IB).
        self._in_flight: dict[tuple[int, int], _InFlight] = {}
        self._final: dict[tuple[int, int], tuple[str, str]] = {}
        # The status last shown per order (core.orderstatus decides what may follow).
        self._shown: dict[tuple[int, int], str] = {}
        # Our not-done trades: ib_async builds new Trade objects after a reconnect, the
        # callers hold these; resync keeps these current (_relink).
        self._live: dict[tuple[int, int], Trade] = {}
        self.strategy_manager = strategy_manager or StrategyManager()
        self.journal = journal
        self.pre_trade: PreTradeGate = pre_trade or ApproveAll()
        self.audit = audit or AuditLog()
        self.details_lookup = details_lookup
        self.orderUpdated: Event = Event("orderUpdated")
        self.fillReceived: Event = Event("fillReceived")
        self.orderRejected: Event = Event("orderRejected")
        self.journalError: Event = Event("journalError")
        self._handled: set[str] = set()  # exec ids journalled and published
        self._pending: dict[str, tuple[Trade | None, Fill]] = {}  # waiting for commission
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks = Tasks("trades")
        # Journalled without a commission: waiting for a late commission report.
        self._uncommissioned: dict[str, tuple[Trade | None, Fill]] = {}
        self._writing: set[str] = set()  # exec ids whose first write is in flight
        self._strategy_of_order: dict[tuple[int, int], str] = {}
        # When each order was placed (IB's openOrder carries no time): by order key and
        # by permId, restored from the orders journal at start (restore()).
        self._placed: dict[tuple[int, int], datetime] = {}
        self._placed_by_perm: dict[int, datetime] = {}
        # Contracts' price increments (con_id -> min tick): from contract details, else
        # as the orders journal recorded them (details are not cached after a restart).
        self._min_ticks: dict[int, float] = {}
        append_orders = getattr(journal, "append_orders", None)
        self._order_journal: OrderJournal | None = (
            append_orders if callable(append_orders) else None
        )
        self._order_backlog: list[OrderUpdated] = []
        ib = self.ib
        ib.orderStatusEvent += self._on_order_status
        ib.openOrderEvent += self._on_open_order  # parameters; statuses come from orderStatus
        ib.execDetailsEvent += self._on_exec_details
        ib.commissionReportEvent += self._on_commission_report
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnected
        if connection is not None:
            connection.connected += self._on_connected

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
        strategy, actor = self._who(strategy_symbol, actor, order, contract)
        return self._send_new(contract, order, strategy, actor, preassigned=False, flatten=flatten)

    def _who(self, strategy_symbol: Any, actor: Any, order: Any, contract: Any) -> tuple[str, str]:
        """The strategy and actor of a command, or a refusal when they are not names."""
        if strategy_symbol is None or strategy_symbol == "":
            strategy_symbol = MANUAL
        if not isinstance(strategy_symbol, str):
            self._refuse(
                order,
                contract,
                str(strategy_symbol),
                "api",
                "place",
                "order",
                [f"strategy {strategy_symbol!r} is not a name"],
            )
        if "@" in strategy_symbol and actor != EMERGENCY_ACTOR:
            # ``name@writer`` is another console's strategy (a shared store): its orders
            # are that console's to place. Only the emergency stop acts for the account.
            self._refuse(
                order,
                contract,
                strategy_symbol,
                actor if isinstance(actor, str) else "api",
                "place",
                "order",
                [
                    f"strategy {strategy_symbol} belongs to another console "
                    f"({strategy_symbol.split('@', 1)[1]}): trade it from there, or as manual"
                ],
            )
        if actor is not None and not isinstance(actor, str):
            self._refuse(
                order,
                contract,
                strategy_symbol,
                "api",
                "place",
                "order",
                [f"actor {actor!r} is not a name"],
            )
        return strategy_symbol, actor or strategy_symbol

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
        contract, decision, subject = self._admit(
            contract, order, strategy, actor, "place", None, flatten=flatten
        )
        if order.orderId and not preassigned:
            self._refuse(
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
            self._refuse(order, contract, strategy, actor, "place", subject, ["not connected"])
        if not preassigned:
            order.orderId = self.order_ids.next(self.ib.client)
        key = (self.ib.client.clientId, order.orderId)
        entry = self._in_flight[key] = _InFlight(strategy, actor)
        self._strategy_of_order[key] = strategy
        intent = OrderIntent(strategy, actor, contract, order, None, flatten=flatten)
        self.wire.expect(order.orderId, lambda: self._at_wire(intent, decision))
        trade = entry.trade = self.ib.placeOrder(contract, order)
        self._live[key] = trade
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
            self._end(key, NOT_SENT, entry.not_sent)
        else:
            self._publish_order(trade)
        return trade

    def _admit(
        self,
        contract: Any,
        order: Any,
        strategy: str,
        actor: str,
        action: str,
        replaces: Order | None,
        subject: str = "",
        *,
        flatten: FlattenIntent | None = None,
    ) -> tuple[Contract, PreTradeDecision, str]:
        """The canonical order's verdict: refuses (raises) or returns the contract it is
        sent on, the gate's decision and its description."""
        problems = canonicalize_order(order)
        if not isinstance(contract, Contract):
            problems.append(f"not a contract: {type(contract).__name__}")
        if self.readonly:
            problems.insert(0, READONLY_REASON)
        if problems:
            self._refuse(order, contract, strategy, actor, action, subject or "order", problems)
        contract = self._qualified(contract)
        subject = subject or describe_order(contract, order)
        problems, decision = self._problems(
            contract, order, strategy, actor, replaces=replaces, flatten=flatten
        )
        if problems:
            self._refuse(order, contract, strategy, actor, action, subject, problems)
        return contract, decision, subject

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
        probe = copy.copy(order) if isinstance(order, Order) else order
        problems = canonicalize_order(probe)
        if not isinstance(contract, Contract):
            problems.append(f"not a contract: {type(contract).__name__}")
        if problems:
            return problems
        contract = self._qualified(contract)
        problems = self._order_problems(contract, probe, strategy, actor, details)
        if problems:
            return problems
        decision = self.pre_trade.check(
            OrderIntent(strategy, actor, contract, probe, None, preview=True)
        )
        return [] if decision.approved else list(decision.reasons)

    def _at_wire(self, intent: OrderIntent, decision: PreTradeDecision) -> str | None:
        """The gate's last word as the frame is written (a gate without one approves)."""
        last_word = getattr(self.pre_trade, "at_wire", None)
        return last_word(intent, decision) if last_word is not None else None

    def what_if(self, contract: Contract, order: Order) -> Awaitable[OrderState]:
        """Ask the gateway what ``order`` would do to margin (whatIf); it never trades,
        so it passes the wire without the pre-trade gate."""
        with self.wire.what_if():
            return self.ib.whatIfOrderAsync(contract, order)

    def _qualified(self, contract: Contract) -> Contract:
        """The cached qualified contract for an unqualified one (e.g. the seed's
        ``create_stock_contract("AAPL")``), else the contract as given: IB qualifies it
        on arrival, and the checks that need details run when they are known."""
        if contract.conId or self.details_lookup is None:
            return contract
        details = self.details_lookup(contract)
        if details is None or details.contract is None:
            return contract
        qualified = Contract.recreate(details.contract)
        if contract.exchange == "SMART":
            qualified.exchange = "SMART"
        return qualified

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
        strategy, actor = self._who(strategy_symbol, actor, parent, contract)
        for o in (parent, take_profit, stop_loss):
            if o.orderId if isinstance(o, Order) else False:
                self._refuse(
                    o,
                    contract,
                    strategy,
                    actor,
                    "place",
                    "bracket",
                    ["a bracket's orders get their ids from the console: leave orderId unset"],
                )
            self._admit(contract, o, strategy, actor, "place", None)
        if not self.ib.isConnected():
            self._refuse(parent, contract, strategy, actor, "place", "bracket", ["not connected"])
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
        """Send ``new_order`` as a modification of the working ``trade``.

        The new order keeps the working order's id, client id and strategy. A
        modification passes validation and the gate like a new order (and the gate's
        last word at the wire); a done, lost or never-sent order cannot be modified, nor
        one placed under another client id (IB would apply it to this client's order of
        that id).
        """
        self._check_trade(trade, "modify", new_order)
        strategy = self.strategy_of(trade)
        actor = actor if isinstance(actor, str) and actor else strategy
        subject = f"modify #{trade.order.orderId}"
        if not isinstance(new_order, Order):
            self._refuse(
                new_order,
                trade.contract,
                strategy,
                actor,
                "modify",
                subject,
                [f"not an order: {type(new_order).__name__}"],
            )
        reason = self._unchangeable(trade)
        if reason:
            self._refuse(new_order, trade.contract, strategy, actor, "modify", subject, [reason])
        new_order.orderId = trade.order.orderId
        new_order.clientId = trade.order.clientId
        new_order.permId = trade.order.permId
        new_order.parentId = trade.order.parentId
        contract, decision, _ = self._admit(
            trade.contract, new_order, strategy, actor, "modify", trade.order, subject
        )
        subject += " to " + describe_order(contract, new_order)
        if not self.ib.isConnected():
            self._refuse(new_order, contract, strategy, actor, "modify", subject, ["not connected"])
        new_order.orderRef = strategy
        intent = OrderIntent(strategy, actor, contract, new_order, trade.order)
        self.wire.expect(new_order.orderId, lambda: self._at_wire(intent, decision))
        result = self.ib.placeOrder(trade.contract, new_order)
        self.audit.record(
            actor, "modify", subject, "sent", order_id=new_order.orderId, strategy=strategy
        )
        return result

    def _check_trade(self, trade: Any, action: str, order: Any = None) -> None:
        if not isinstance(trade, Trade):
            self._refuse(
                order,
                None,
                MANUAL,
                "api",
                action,
                f"{action} order",
                [f"not an order of this session: {type(trade).__name__}"],
            )

    def _unchangeable(self, trade: Trade) -> str:
        """Why ``trade`` can no longer be modified or cancelled here ("" when it can)."""
        key = (trade.order.clientId, trade.order.orderId)
        final = self._final.get(key)
        if final is not None:
            return f"order {trade.order.orderId} is {final[0]} ({final[1]}): it is not at IB"
        if trade.isDone():
            return f"order {trade.order.orderId} is {trade.orderStatus.status} and cannot change"
        cid = self.ib.client.clientId
        if self.ib.isConnected() and trade.order.clientId not in (cid, 0):
            return (
                f"order {trade.order.orderId} was placed as client {trade.order.clientId} and "
                f"this console is client {cid} now: IB would apply this to client {cid}'s "
                "order of that id. Use Cancel all (global cancel) or TWS"
            )
        return ""

    def republish_orders(self) -> int:
        """Publish every order this session knows as ``orderUpdated`` (for a view that
        binds late); returns how many."""
        trades = self.ib.trades()
        for trade in trades:
            self._publish_order(trade)
        return len(trades)

    def trade_for_order_id(self, order_id: int, client_id: int | None = None) -> Trade | None:
        """This session's live trade for an order id (of our client id unless given)."""
        cid = self.ib.client.clientId if client_id is None else client_id
        for trade in self.ib.trades():
            if trade.order.orderId == order_id and trade.order.clientId == cid:
                return trade
        return None

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
        new order is refused (a value that is not a number included); the working
        order is then unchanged.
        """
        trade = self.trade_for_order_id(order_id)
        if trade is None:
            raise LookupError(f"order {order_id} is not an order of this session")
        new = copy.copy(trade.order)
        if quantity is not None:
            new.totalQuantity = quantity
        if limit_price is not None:
            new.lmtPrice = limit_price
        if stop_price is not None:
            new.auxPrice = stop_price
        return self.modify_order(trade, new, actor=actor)

    def cancel_order(self, trade: Trade, *, actor: str | None = None) -> Trade | None:
        """Request a cancel; never refused by risk (a trader must always be able to get
        out). The cancel is confirmed by the order's status, not by this call.

        An order still waiting for the message pacing is dropped before it is ever
        written (it ends as ``NotSent``). Refused (:class:`OrderRefused`) only when it
        cannot reach the order meant: not connected, or the order was placed under
        another client id.
        """
        self._check_trade(trade, "cancel")
        if self.readonly:
            subject = f"cancel #{trade.order.orderId}"
            self._refuse(
                trade.order, trade.contract, MANUAL, "api", "cancel", subject, [READONLY_REASON]
            )
        strategy = self.strategy_of(trade)
        actor = actor if isinstance(actor, str) and actor else strategy
        subject = f"cancel #{trade.order.orderId} " + describe_order(trade.contract, trade.order)
        key = (trade.order.clientId, trade.order.orderId)
        if key in self._final or trade.isDone():
            status = self._final[key][0] if key in self._final else trade.orderStatus.status
            self.audit.record(actor, "cancel", subject, f"not sent: already {status}")
            return trade
        reason = self._unchangeable(trade)
        if not self.ib.isConnected():
            reason = "not connected: the cancel cannot be sent until the connection is back"
        if reason:
            self._refuse(trade.order, trade.contract, strategy, actor, "cancel", subject, [reason])
        result = self.ib.cancelOrder(trade.order)
        self.audit.record(
            actor, "cancel", subject, "sent", order_id=trade.order.orderId, strategy=strategy
        )
        return result

    def cancel_all(self, *, actor: str = "gui", strategy: str | None = None) -> int:
        """Cancel every working order (of one strategy if given); returns how many.

        For the whole account this also sends reqGlobalCancel, which reaches orders
        placed elsewhere (TWS, other client ids). Refused when not connected.
        """
        if self.readonly:
            self._refuse(
                None,
                None,
                strategy or MANUAL,
                actor,
                "cancel_all",
                "every working order",
                [READONLY_REASON],
            )
        if not self.ib.isConnected():
            self._refuse(
                None,
                None,
                strategy or MANUAL,
                actor,
                "cancel_all",
                "every working order",
                ["not connected: the cancels cannot be sent until the connection is back"],
            )
        trades = [
            t for t in self.ib.openTrades() if strategy is None or self.strategy_of(t) == strategy
        ]
        for trade in trades:
            if trade.order.clientId == self.ib.client.clientId:
                self.cancel_order(trade, actor=actor)
        if strategy is None:
            self.ib.reqGlobalCancel()
        self.audit.record(
            actor,
            "cancel_all",
            f"{len(trades)} working orders" + (f" of {strategy}" if strategy else ""),
            "sent" + (" with reqGlobalCancel" if strategy is None else ""),
            strategy=strategy,
        )
        return len(trades)

    def start_day(self) -> int:
        """A new trading day: forget what the ended day's finished orders and fills
        needed, so a console open all week holds one day's bookkeeping. Returns how
        many orders were forgotten.

        Working and in-doubt orders are kept. Execution ids are forgotten only with a
        journal: it is idempotent by exec id, so a late replay of an old fill writes and
        publishes nothing.
        """
        keep = set(self._live) | set(self._in_flight)
        done = [k for k in self._strategy_of_order if k not in keep]
        for key in done:
            del self._strategy_of_order[key]
            self._final.pop(key, None)
        self._shown = {k: v for k, v in self._shown.items() if k in keep}
        # Placement times: kept for every order still open at IB (a GTC order restored
        # after a restart is not among ours in _live).
        open_trades = [t for t in self.ib.openTrades() if not t.isDone()]
        perms = {t.order.permId or t.orderStatus.permId for t in open_trades}
        placed_keys = keep | {(t.order.clientId, t.order.orderId) for t in open_trades}
        placed_keys |= {(0, -p) for p in perms}  # orders known by permId only
        self._placed = {k: v for k, v in self._placed.items() if k in placed_keys}
        self._placed_by_perm = {p: v for p, v in self._placed_by_perm.items() if p in perms}
        self.wire.keep_written({order_id for _, order_id in keep})
        if self.journal is not None and not self._pending and not self._writing:
            self._handled.clear()
        log.info("new trading day: %d finished orders forgotten", len(done))
        return len(done)

    # -- orders that never reached the gateway -----------------------------------------

    def _on_frame_dropped(self, dropped: FrameDropped) -> None:
        key = (self.ib.client.clientId, dropped.order_id)
        entry = self._in_flight.get(key)
        if not dropped.first_write:
            # A modification (or a cancel's victim) not written: the working order at
            # IB is as it was. Say so; nothing ends.
            trade = entry.trade if entry is not None else trades_by_key(self.ib).get(key)
            strategy = self.strategy_of(trade) if trade is not None else EXTERNAL
            self.audit.record(
                "console",
                "modify",
                f"#{dropped.order_id}",
                f"not sent: {dropped.reason}",
                order_id=dropped.order_id,
                strategy=strategy,
            )
            self.orderRejected.emit(
                OrderRejected(
                    dropped.order_id,
                    strategy,
                    trade.contract.symbol if trade is not None else "",
                    0,
                    f"modification not sent: {dropped.reason}",
                    (dropped.reason,),
                )
            )
            return
        if entry is None:
            log.error("order %d dropped at the wire, not known here: %s", *key[1:], dropped.reason)
            return
        if entry.trade is None:
            entry.not_sent = dropped.reason  # inside placeOrder: ended when it returns
            return
        self._end(key, NOT_SENT, dropped.reason)

    def _end(self, key: tuple[int, int], status: str, reason: str) -> None:
        """End an order the gateway does not have: ``NotSent`` or ``Lost``, with why.

        ib_async's ``Trade`` becomes ``Inactive`` (done: ``isDone()`` is true) with the
        reason in its log; events, the audit and the strategy get ``status``.
        """
        entry = self._in_flight.pop(key)
        trade = entry.trade
        assert trade is not None
        self._live.pop(key, None)
        self._final[key] = (status, reason)
        trade.orderStatus.status = "Inactive"
        trade.log.append(TradeLogEntry(datetime.now(UTC), status, reason))
        subject = describe_order(trade.contract, trade.order)
        log.warning("order %d %s: %s", key[1], status, reason)
        self.audit.record(
            "console", status.lower(), subject, reason, order_id=key[1], strategy=entry.strategy
        )
        self._publish_order(trade)
        self.orderRejected.emit(
            OrderRejected(key[1], entry.strategy, trade.contract.symbol, 0, reason, (reason,))
        )
        self._queue(
            {
                "type": "status",
                "strategy": entry.strategy,
                "trade": trade,
                "status": status,
                "reason": reason,
            }
        )
        trade.statusEvent.emit(trade)

    def _acknowledged(self, client_id: int, order_id: int) -> None:
        """The gateway spoke of this order: it is no longer in doubt."""
        key = (client_id, order_id)
        self._in_flight.pop(key, None)
        if key in self._final and self._final[key][0] == LOST:
            status, reason = self._final.pop(key)
            log.error("order %d reported lost turned up at the gateway", order_id)
            self.audit.record(
                "ib",
                "found",
                f"#{order_id}",
                f"reported {status} ({reason}) but IB has it",
                order_id=order_id,
                strategy=self._strategy_of_order.get(key),
            )

    def _on_disconnected(self) -> None:
        # Written but not acknowledged: it may or may not have arrived. Looked for after
        # the reconnect (_find_lost); never resent.
        for key, entry in self._in_flight.items():
            if self.wire.was_written(key[1]):
                entry.suspect = True

    def _relink(self) -> None:
        """After a reconnect, keep the ``Trade`` objects callers hold current.

        ib_async forgets every trade on a disconnect and builds new objects from the
        gateway's open and completed orders. For each order of ours it rebuilt, the
        object placed is brought up to date (status, fills, log) and put back in
        ib_async's place, so later updates reach it; one that finished meanwhile is
        published and told to its strategy.
        """
        trades, by_perm = trades_by_key(self.ib), trades_by_perm_id(self.ib)
        by_id = {
            (t.order.clientId, t.order.orderId): t
            for t in list(trades.values())
            if t.order.orderId > 0
        }
        for key, ours in list(self._live.items()):
            fresh = by_id.get(key) or by_perm.get(ours.order.permId)
            if fresh is None or fresh is ours:
                continue
            before = ours.orderStatus.status
            ours.orderStatus = fresh.orderStatus
            ours.order.permId = fresh.order.permId or ours.order.permId
            known = {f.execution.execId for f in ours.fills}
            ours.fills += [f for f in fresh.fills if f.execution.execId not in known]
            if fresh.orderStatus.status != before:
                ours.log.append(
                    TradeLogEntry(datetime.now(UTC), fresh.orderStatus.status, "after reconnect")
                )
            for k, t in list(trades.items()):
                if t is fresh:
                    trades[k] = ours
            if ours.order.permId:
                by_perm[ours.order.permId] = ours
            self._acknowledged(*key)
            if ours.orderStatus.status != before:
                self._on_order_status(ours)
                ours.statusEvent.emit(ours)
            if ours.isDone():
                self._live.pop(key, None)

    def _find_lost(self) -> int:
        """After a reconnect's resync: end as ``Lost`` each suspect the gateway does not
        know (open or completed orders, executions). Returns how many."""
        known: set[tuple[int, int]] = set()
        for trade in self.ib.trades():
            known.add((trade.order.clientId, trade.order.orderId))
            if trade.order.clientId == self.ib.client.clientId:
                self.order_ids.observe(trade.order.orderId)
        for fill in self.ib.fills():
            known.add((fill.execution.clientId, fill.execution.orderId))
        lost = 0
        for key, entry in list(self._in_flight.items()):
            if not entry.suspect:
                continue
            if key in known:
                log.info("order %d, written before the drop, is known to the gateway", key[1])
                self._acknowledged(*key)
                continue
            self._end(
                key,
                LOST,
                "the connection dropped just after it was written and the gateway does not "
                "know it (not among open or completed orders or executions): not resent",
            )
            lost += 1
        return lost

    # -- fills -------------------------------------------------------------------------

    def handle_fill_event(self, trade: Trade | None, fill: Fill) -> None:
        """Take an execution in: journal it (durable), then publish and queue it.

        Safe to call any number of times for the same execution: only the first call
        that finds it new has an effect.
        """
        exec_id = fill.execution.execId
        if exec_id in self._handled or exec_id in self._pending:
            return
        self._pending[exec_id] = (trade, fill)
        if fill.commissionReport.execId or fill.commissionReport.commission:
            self._record_now(exec_id)
        else:
            loop = asyncio.get_running_loop()
            self._timers[exec_id] = loop.call_later(COMMISSION_WAIT_S, self._record_now, exec_id)

    async def resync(self) -> int:
        """After a (re)connect: handle the session's executions not handled yet.

        Concurrent callers share one run: ib_async keys the open-orders request by name,
        so two at once would leave one waiting forever.

        Returns how many executions were taken in. Called on every ``connected`` event.
        Also asks for every open order of the account (reqAllOpenOrders), so orders
        placed in TWS or by other clients are shown, attributed to ``external`` unless
        their ``orderRef`` names a strategy.
        """
        return await asyncio.shield(self._tasks.ensure("resync", self._resync_once))

    async def _resync_once(self) -> int:
        if self.ib.isConnected() and self.ib.client.clientId != 0:  # client 0 sees them all
            try:
                await asyncio.wait_for(self.ib.reqAllOpenOrdersAsync(), 10)
            except (TimeoutError, ConnectionError) as exc:
                log.warning("could not list the account's open orders: %s", exc)
        for open_trade in self.ib.openTrades():
            self._publish_order(open_trade)
        self._relink()
        self._find_lost()
        fills = self.ib.fills()
        before = len(self._handled) + len(self._pending)
        for fill in fills:
            self.handle_fill_event(self._trade_for_fill(fill), fill)
        await self.wait_journalled()
        return len(self._handled) + len(self._pending) - before

    def _on_connected(self, reconnect: bool) -> None:
        self._tasks.ensure("resync", self._resync_once)

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

        for exec_id in list(self._timers):
            self._timers.pop(exec_id).cancel()
            self._record_now(exec_id)
        me = asyncio.current_task()
        while others := [t for t in self._tasks.of("fill write") if t is not me]:
            _, running = await asyncio.wait(others, timeout=left())
            if running:
                return sorted(self._pending)  # out of time; asyncio.wait cancels nothing
        for _ in range(2):  # the running writer, then one more for what it left
            if writers := self._tasks.of("orders journal"):
                await asyncio.wait(writers, timeout=left())
            idle = not self._tasks.of("orders journal")
            if not (idle and self._order_backlog and self._order_journal is not None):
                break
            # Left by a failed write, or published without a loop.
            self._tasks.ensure("orders journal", self._write_orders)
        return sorted(self._pending)

    def _on_exec_details(self, trade: Trade, fill: Fill) -> None:
        self._acknowledged(fill.execution.clientId, fill.execution.orderId)
        self.handle_fill_event(trade, fill)

    def _on_commission_report(self, trade: Trade, fill: Fill, report: CommissionReport) -> None:
        exec_id = fill.execution.execId
        if exec_id in self._pending and exec_id not in self._writing:
            self._pending[exec_id] = (trade, fill)
            self._record_now(exec_id)
        elif exec_id in self._uncommissioned:
            # Journalled without it (the wait expired): journal it again, with it.
            self._uncommissioned.pop(exec_id)
            self._spawn_write(self._journal_commission(self._fill_record(trade, fill)))
        # Else its first write is in flight: that write checks for a commission when done.

    def _record_now(self, exec_id: str) -> None:
        timer = self._timers.pop(exec_id, None)
        if timer is not None:
            timer.cancel()
        entry = self._pending.get(exec_id)
        if entry is None or exec_id in self._writing:
            return  # nothing pending, or its write is in flight
        self._writing.add(exec_id)
        trade, fill = entry
        record = self._fill_record(trade, fill)
        self._spawn_write(self._journal_and_publish(record, trade, fill))

    def _spawn_write(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.spawn(coro, "fill write")

    async def _append_durably(self, record: FillRecorded) -> int:
        """Journal ``record``, retrying with backoff until it is durable; how many new."""
        journal = self.journal
        if journal is None:
            return 1

        def before_sleep(state: RetryCallState) -> None:
            # The fill stays pending: it is not handled until it is durable.
            exc = state.outcome.exception() if state.outcome is not None else None
            delay = state.next_action.sleep if state.next_action is not None else 0.0
            log.error(
                "fill %s could not be journalled (%s); retrying in %.1fs",
                record.exec_id,
                exc,
                delay,
            )
            self.journalError.emit(exc)

        retrying = AsyncRetrying(
            wait=wait_exponential(multiplier=0.5, max=30.0),
            retry=retry_if_exception_type(Exception),
            before_sleep=before_sleep,
        )
        return await retrying(journal.append_fills, [record])

    async def _journal_commission(self, record: FillRecorded) -> None:
        """A late commission: journal the fill again with it, then publish the new copy
        (``fillReceived`` consumers key fills by exec_id: it replaces the first)."""
        await self._append_durably(record)
        log.info("fill %s: commission %s reported late", record.exec_id, record.commission)
        self.fillReceived.emit(record)

    async def _journal_and_publish(
        self, record: FillRecorded, trade: Trade | None, fill: Fill
    ) -> None:
        new = await self._append_durably(record)
        self._pending.pop(record.exec_id, None)
        self._writing.discard(record.exec_id)
        self._handled.add(record.exec_id)
        if record.commission is None:
            self._late_commission(record.exec_id, trade, fill)
        if not new:
            return  # journalled in an earlier session: already published then
        log.info(
            "fill %s: %s %s %g @ %g (%s)",
            record.exec_id,
            record.side,
            record.symbol,
            record.quantity,
            record.price,
            record.strategy,
        )
        self.fillReceived.emit(record)
        self._queue({"type": "fill", "strategy": record.strategy, "trade": trade, "fill": fill})

    def _late_commission(self, exec_id: str, trade: Trade | None, fill: Fill) -> None:
        """After a write without commission: journal the commission if it came meanwhile
        (ib_async fills in the same ``Fill``), else wait for its report."""
        cr = fill.commissionReport
        if cr.execId or cr.commission:
            self._spawn_write(self._journal_commission(self._fill_record(trade, fill)))
        else:
            self._uncommissioned[exec_id] = (trade, fill)

    def _fill_record(self, trade: Trade | None, fill: Fill) -> FillRecorded:
        strategy = self._strategy_of_execution(trade, fill)
        return fill_record(strategy, fill, self._min_tick(fill.contract))

    def _min_tick(self, contract: Contract) -> float | None:
        """The contract's price increment: its details, else what the journal recorded."""
        tick = self._min_ticks.get(contract.conId)
        if tick is None and self.details_lookup is not None:
            details = self.details_lookup(contract)
            if details is not None and details.minTick and details.minTick > 0:
                tick = self._min_ticks[contract.conId] = float(details.minTick)
        return tick

    # -- restoring after a restart -----------------------------------------------------

    async def restore(self) -> int:
        """Before connecting: learn from the orders journal when each order still
        working at the last run was placed, and its contract's price increment.

        IB's openOrder carries no time and ib_async builds a new ``Trade`` after a
        restart, so without this a working order would show the restart as its time.
        Returns how many orders were restored; a journal that cannot be read is logged
        and the orders then show the time they are first seen.
        """
        load = getattr(self.journal, "last_order_updates", None)
        if not callable(load):
            return 0
        try:
            updates: Sequence[OrderUpdated] = await load()
        except Exception as exc:
            log.error("orders journal not read (%s): working orders show when first seen", exc)
            return 0
        for u in updates:
            placed = u.placed or u.time
            key = (u.client_id, u.order_id) if u.order_id else (0, -u.perm_id)
            self._placed.setdefault(key, placed)
            if u.perm_id:
                self._placed_by_perm.setdefault(u.perm_id, placed)
            if u.min_tick:
                self._min_ticks.setdefault(u.con_id, u.min_tick)
        log.info("orders journal: %d working orders' placement times restored", len(updates))
        return len(updates)

    def _placed_at(self, key: tuple[int, int], perm_id: int, trade: Trade) -> datetime:
        """When the order was placed: as known (this run, or restored), else its first
        log entry (ib_async writes one as it sends an order), else now (first seen)."""
        placed = self._placed_by_perm.get(perm_id) if perm_id else None
        if placed is None:
            placed = self._placed.get(key)
        if placed is None:
            first = trade.log[0].time if trade.log else None
            if first is None:
                placed = datetime.now(UTC)
            else:
                placed = (first if first.tzinfo else first.replace(tzinfo=UTC)).astimezone(UTC)
        self._placed[key] = placed
        if perm_id:
            self._placed_by_perm[perm_id] = placed
        return placed

    # -- attribution -------------------------------------------------------------------

    def strategy_of(self, trade: Trade) -> str:
        """The strategy an order belongs to: its ``orderRef``, else ``external``."""
        key = (trade.order.clientId, trade.order.orderId)
        if key in self._strategy_of_order:
            return self._strategy_of_order[key]
        return trade.order.orderRef or EXTERNAL

    def _strategy_of_execution(self, trade: Trade | None, fill: Fill) -> str:
        if trade is not None:
            return self.strategy_of(trade)
        return fill.execution.orderRef or EXTERNAL

    def _trade_for_fill(self, fill: Fill) -> Trade | None:
        perm_id = fill.execution.permId
        for trade in self.ib.trades():
            if trade.order.permId == perm_id and perm_id:
                return trade
        return None

    # -- checks ------------------------------------------------------------------------

    def _order_problems(
        self,
        contract: Contract,
        order: Order,
        strategy: str,
        actor: str,
        details: ContractDetails | None = None,
    ) -> list[str]:
        """Validation and the strategy's permissions (the gate comes after)."""
        if details is None and self.details_lookup is not None:
            details = self.details_lookup(contract)
        problems = [
            p
            for p in validate_order(contract, order, details)
            # An unqualified contract is qualified by IB when the order arrives; the
            # tick and lot checks need details, so they run when the details are cached.
            if not (details is None and "qualified" in p)
        ]
        if actor != EMERGENCY_ACTOR:
            # A strategy's own limits must never keep the emergency stop from flattening it.
            problems += self.strategy_manager.check_permissions(strategy, contract, order)
        return problems

    def _problems(
        self,
        contract: Contract,
        order: Order,
        strategy: str,
        actor: str,
        *,
        replaces: Order | None,
        flatten: FlattenIntent | None = None,
    ) -> tuple[list[str], PreTradeDecision]:
        problems = self._order_problems(contract, order, strategy, actor)
        refused = PreTradeDecision(False, tuple(problems))
        if problems:
            return problems, refused
        decision = self.pre_trade.check(
            OrderIntent(strategy, actor, contract, order, replaces, flatten=flatten)
        )
        return (list(decision.reasons) or ["refused by the pre-trade check"]) if not (
            decision.approved
        ) else [], decision

    def _refuse(
        self,
        order: Any,
        contract: Any,
        strategy: str,
        actor: str,
        action: str,
        subject: str,
        reasons: Sequence[str],
    ) -> NoReturn:
        text = "; ".join(reasons)
        # Refusals also come for malformed input: read it defensively.
        order_id = getattr(order, "orderId", 0)
        order_id = order_id if isinstance(order_id, int) and not isinstance(order_id, bool) else 0
        symbol = getattr(contract, "symbol", "")
        symbol = symbol if isinstance(symbol, str) else ""
        log.warning("%s refused: %s: %s", action, subject, text)
        self.audit.record(
            actor,
            action,
            subject,
            f"refused: {text}",
            order_id=order_id or None,
            strategy=strategy,
        )
        self.orderRejected.emit(OrderRejected(order_id, strategy, symbol, 0, text, tuple(reasons)))
        self._queue(
            {
                "type": "error",
                "strategy": strategy,
                "trade": None,
                "code": 0,
                "message": text,
                "reasons": tuple(reasons),
            }
        )
        raise OrderRefused(reasons)

    # -- ib_async events ---------------------------------------------------------------

    def _on_order_status(self, trade: Trade) -> None:
        self._acknowledged(trade.order.clientId, trade.order.orderId)
        if trade.isDone():
            self._live.pop((trade.order.clientId, trade.order.orderId), None)
        strategy = self.strategy_of(trade)
        if not self._publish_order(trade):
            return  # not a change an order can make: strategies are not told either
        status = trade.orderStatus.status
        kind = "cancel" if status in ("Cancelled", "ApiCancelled") else "status"
        self._queue({"type": kind, "strategy": strategy, "trade": trade, "status": status})

    def _on_open_order(self, trade: Trade) -> None:
        self._acknowledged(trade.order.clientId, trade.order.orderId)
        self._publish_order(trade)

    def _publish_order(self, trade: Trade) -> bool:
        """Publish the order's state; False when its status cannot follow the one shown
        (a stale or reordered message: logged, not shown)."""
        o, s, c = trade.order, trade.orderStatus, trade.contract
        message = trade.log[-1].message if trade.log else ""
        key = (o.clientId, o.orderId) if o.orderId else (0, -(o.permId or s.permId))
        final = self._final.get(key) if self._final else None
        status = final[0] if final else s.status
        shown = self._shown.get(key, "")
        if not allowed(shown, status):
            log.warning(
                "order %d: IB reported %s after %s, which cannot follow it: not shown",
                o.orderId,
                status,
                shown,
            )
            return False
        self._shown[key] = status
        perm_id = o.permId or s.permId
        update = OrderUpdated(
            order_id=o.orderId,
            perm_id=perm_id,
            client_id=o.clientId,
            strategy=self.strategy_of(trade),
            account=o.account,
            con_id=c.conId,
            symbol=c.localSymbol if c.secType == "CASH" and c.localSymbol else c.symbol,
            sec_type=c.secType,
            action=o.action,
            quantity=float(o.totalQuantity),
            order_type=o.orderType,
            limit_price=_clean(o.lmtPrice),
            stop_price=_clean(o.auxPrice),
            tif=o.tif,
            status=status,
            filled=float(s.filled),
            remaining=float(s.remaining) if s.status else float(o.totalQuantity),
            avg_fill_price=_clean(s.avgFillPrice) or None,
            message=message,
            placed=self._placed_at(key, perm_id, trade),
            min_tick=self._min_tick(c),
        )
        self.orderUpdated.emit(update)
        self._journal_order(update)
        return True

    # -- the orders journal ------------------------------------------------------------

    def _journal_order(self, update: OrderUpdated) -> None:
        """Queue an order update for the journal; one background writer drains it."""
        if self._order_journal is None:
            return
        self._order_backlog.append(update)
        if len(self._order_backlog) > MAX_ORDER_BACKLOG:
            dropped = len(self._order_backlog) - MAX_ORDER_BACKLOG
            del self._order_backlog[:dropped]
            log.error("orders journal backlog full: %d oldest order updates dropped", dropped)
        try:  # the running writer takes it with its next batch
            self._tasks.ensure("orders journal", self._write_orders)
        except RuntimeError:
            pass  # no loop (a synchronous caller): wait_journalled writes it

    async def _write_orders(self) -> None:
        """Write the backlog in batches until it is empty or a write fails.

        A failure is logged and the batch kept for the next attempt (the next update, or
        :meth:`wait_journalled`); it never propagates.
        """
        assert self._order_journal is not None
        await asyncio.sleep(0)  # let a burst of updates (openOrder + orderStatus) gather
        while self._order_backlog:
            batch, self._order_backlog = self._order_backlog, []
            try:
                await self._order_journal(batch)
            except Exception as exc:
                self._order_backlog[:0] = batch
                log.error(
                    "%d order updates could not be journalled (%s); kept for the next attempt",
                    len(batch),
                    exc,
                )
                return

    def _on_error(self, req_id: int, code: int, message: str, contract: Any) -> None:
        if req_id < 0:
            return
        trade = trades_by_key(self.ib).get((self.ib.client.clientId, req_id))
        if trade is None:
            return
        self._acknowledged(trade.order.clientId, trade.order.orderId)
        strategy = self.strategy_of(trade)
        self._queue(
            {
                "type": "error",
                "strategy": strategy,
                "trade": trade,
                "code": code,
                "message": message,
            }
        )
        if code in NOT_REJECTIONS:
            log.info("order %d: IB %d: %s", req_id, code, message)
            return
        log.warning("order %d (%s): IB error %d: %s", req_id, strategy, code, message)
        self.audit.record(
            "ib",
            "error",
            describe_order(trade.contract, trade.order),
            f"error {code}: {message}",
            order_id=req_id,
            strategy=strategy,
        )
        self.orderRejected.emit(
            OrderRejected(req_id, strategy, trade.contract.symbol, code, message, (message,))
        )

    def _queue(self, message: dict[str, Any]) -> None:
        message.setdefault("time", datetime.now(UTC))
        self.strategy_manager.message_queue.put(message)
