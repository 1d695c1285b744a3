"""Changing and cancelling working orders: what a trader does after an order is sent.

:class:`OrderChanges` owns the rules that differ from placing a new order. A
modification keeps the working order's id, client id and strategy and passes validation
and the pre-trade gate like a new order (and the gate's last word at the wire). A cancel
is never refused by risk: a trader must always be able to get out; it is refused only
when it cannot reach the order meant (not connected, read-only, or the order was placed
under another client id, where IB would apply it to this client's order of that id). A
done, lost or never-sent order (:mod:`core.inflight`) cannot change, and a new total
quantity below what already filled is refused before anything is written.

A modification IB refuses (e.g. 201, 103, 110 for an order already working) leaves the
order working at IB as it was. ib_async would mark it ``Cancelled``; each modification
sent is remembered here until IB confirms it (an openOrder carrying the new values), so
:meth:`OrderChanges.refused` can tell such an error apart and put back the order's last
confirmed quantity and prices (:func:`core.compat.keep_working_on_refusal` asks it
through :mod:`core.order_errors`, which says the refusal).

Apart from :class:`core.trading.TradeManager` (which offers these commands and delegates
here) so that placing and changing orders each read on their own; both judge through
the same :class:`core.admission.OrderAdmission`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ib_async import IB, Order, Trade

from core.admission import READONLY_REASON, OrderAdmission, OrderIntent
from core.audit import AuditLog
from core.events import MANUAL, QTY_EPS
from core.order_records import OrderKey, OrderRecords
from core.orders import describe_order
from core.wire import FrameDropped, WireGate

#: IB codes that are informational for an order, not a rejection (202 is the answer to a
#: cancel: the order did end).
NOT_REJECTIONS = frozenset({202, 399, 404, 10148, 10147, 161}) | frozenset(range(2100, 2200))
#: How long IB's answer to a modification is waited for: an error later than this is
#: not taken as refusing it (IB answers within a round trip; TWS confirms with openOrder).
MODIFY_ANSWER_S = 30.0
#: Statuses of an order IB has not acknowledged yet: an error may refuse the order
#: itself, not a modification of it.
_NOT_YET_AT_IB = frozenset({"PendingSubmit", "ApiPending", ""})


@dataclass(frozen=True, slots=True)
class Terms:
    """The parts of an order a modification changes: quantity and prices."""

    quantity: float
    limit_price: float
    aux_price: float

    @classmethod
    def of(cls, order: Order) -> Terms:
        """The terms ``order`` carries."""
        return cls(_number(order.totalQuantity), _number(order.lmtPrice), _number(order.auxPrice))

    def put_into(self, order: Order) -> None:
        """Give ``order`` these terms."""
        order.totalQuantity = self.quantity
        order.lmtPrice = self.limit_price
        order.auxPrice = self.aux_price

    def same(self, other: Terms) -> bool:
        """True when both carry the same quantity and prices (unset prices match)."""
        return all(
            a == b or (math.isfinite(a) and math.isfinite(b) and abs(a - b) <= 1e-9)
            for a, b in zip(
                (self.quantity, self.limit_price, self.aux_price),
                (other.quantity, other.limit_price, other.aux_price),
                strict=True,
            )
        )


@dataclass(frozen=True, slots=True)
class PendingChange:
    """A modification sent, not yet confirmed by IB: the order's terms IB last confirmed
    (``before``) and those asked for (``asked``)."""

    before: Terms
    asked: Terms
    sent: float  # on the book's clock


class PendingChanges:
    """The modifications sent and not yet confirmed by IB, by order key: what each
    order's terms were before (IB's word) and what was asked, and when."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pending: dict[OrderKey, PendingChange] = {}

    def before(self, key: OrderKey) -> Terms | None:
        """The terms IB last confirmed while a modification is on its way (None: none)."""
        pending = self._pending.get(key)
        return pending.before if pending is not None else None

    def sent(self, key: OrderKey, before: Terms, asked: Terms) -> None:
        """A modification from ``before`` to ``asked`` was sent now."""
        self._pending[key] = PendingChange(before, asked, self._clock())

    def refused(self, key: OrderKey, code: int) -> Terms | None:
        """IB's error ``code`` came for the order: when it refuses the modification on
        its way, that is done waiting and the terms to put back are returned; None for
        an informational code, no modification waiting, or one sent so long ago
        (:data:`MODIFY_ANSWER_S`) that the error must be about something else."""
        pending = self._pending.get(key)
        if pending is None or code in NOT_REJECTIONS:
            return None
        del self._pending[key]
        if self._clock() - pending.sent > MODIFY_ANSWER_S:
            return None
        return pending.before

    def confirmed(self, key: OrderKey, terms: Terms, *, done: bool = False) -> None:
        """IB sent the order's ``terms`` (openOrder): a modification asking for them is
        done waiting; one asking for others is still on its way (an earlier one was
        confirmed: its terms are now the ones to go back to)."""
        pending = self._pending.get(key)
        if pending is None:
            return
        if done or terms.same(pending.asked):
            del self._pending[key]
        else:
            self._pending[key] = PendingChange(terms, pending.asked, pending.sent)

    def forget(self, key: OrderKey) -> None:
        """The order ended, or the modification was never written."""
        self._pending.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._pending


class OrderChanges:
    """Modifies and cancels working orders (see the module docstring).

    ``ended`` is read-only here: the orders ended in the console (``NotSent``, ``Lost``)
    by key, kept by :class:`core.inflight.InFlightOrders`.
    """

    def __init__(
        self,
        ib: IB,
        *,
        wire: WireGate,
        audit: AuditLog,
        admission: OrderAdmission,
        records: OrderRecords,
        ended: Mapping[OrderKey, tuple[str, str]],
    ) -> None:
        self._ib = ib
        self._wire = wire
        self._audit = audit
        self._admission = admission
        self._records = records
        self._ended = ended
        #: Modifications sent and not yet confirmed by IB.
        self.pending = PendingChanges()

    def modify_order(self, trade: Trade, new_order: Order, *, actor: str | None = None) -> Trade:
        """Send ``new_order`` as a modification of the working ``trade``.

        The new order keeps the working order's id, client id and strategy. A
        modification passes validation and the gate like a new order (and the gate's
        last word at the wire); a done, lost or never-sent order cannot be modified, nor
        one placed under another client id (IB would apply it to this client's order of
        that id).
        """
        self._admission.check_trade(trade, "modify", new_order)
        strategy = self._records.strategy_of(trade)
        actor = actor if isinstance(actor, str) and actor else strategy
        subject = f"modify #{trade.order.orderId}"
        if not isinstance(new_order, Order):
            self._admission.refuse(
                new_order,
                trade.contract,
                strategy,
                actor,
                "modify",
                subject,
                [f"not an order: {type(new_order).__name__}"],
            )
        reason = self._unchangeable(trade) or _below_filled(trade, new_order)
        if reason:
            self._admission.refuse(
                new_order, trade.contract, strategy, actor, "modify", subject, [reason]
            )
        # What IB has now, read before anything else can change the live order object
        # (a caller may have edited trade.order itself and passed it as the new order).
        key = (trade.order.clientId, trade.order.orderId)
        before = self.pending.before(key) or self._confirmed_terms(trade)
        new_order.orderId = trade.order.orderId
        new_order.clientId = trade.order.clientId
        new_order.permId = trade.order.permId
        new_order.parentId = trade.order.parentId
        if not new_order.account:
            # the working order's account: another than the console's is refused
            new_order.account = trade.order.account
        contract, decision, _ = self._admission.admit(
            trade.contract, new_order, strategy, actor, "modify", trade.order, subject
        )
        subject += " to " + describe_order(contract, new_order)
        if not self._ib.isConnected():
            self._admission.refuse(
                new_order, contract, strategy, actor, "modify", subject, ["not connected"]
            )
        new_order.orderRef = strategy
        intent = OrderIntent(strategy, actor, contract, new_order, trade.order)
        self._wire.expect(new_order.orderId, lambda: self._admission.at_wire(intent, decision))
        self.pending.sent(key, before, Terms.of(new_order))
        result = self._ib.placeOrder(trade.contract, new_order)
        self._audit.record(
            actor, "modify", subject, "sent", order_id=new_order.orderId, strategy=strategy
        )
        return result

    def _confirmed_terms(self, trade: Trade) -> Terms:
        """The order's terms as last shown (IB's word), else as its live object has them."""
        shown = self._records.last_update(trade)
        if shown is None:
            return Terms.of(trade.order)
        return Terms(
            shown.quantity,
            _number(trade.order.lmtPrice if shown.limit_price is None else shown.limit_price),
            _number(trade.order.auxPrice if shown.stop_price is None else shown.stop_price),
        )

    # -- what IB says of the modifications sent -----------------------------------------

    def refused(self, trade: Trade, code: int, message: str) -> str | None:
        """If IB's error ``code`` refused a modification of an order working at IB, put
        back the order's last confirmed terms and return what to tell (the order still
        works as it was); None when the error is about something else (ib_async's own
        handling then applies: a rejected new order ends)."""
        key = (trade.order.clientId, trade.order.orderId)
        if trade.isDone() or trade.orderStatus.status in _NOT_YET_AT_IB:
            return None  # the order itself may be what IB refused (ib_async ends it)
        before = self.pending.refused(key, code)
        if before is None:
            return None
        before.put_into(trade.order)
        return (
            f"modification refused by IB (error {code}: {message}); the order still works as "
            f"before: {describe_order(trade.contract, trade.order)}"
        )

    def confirmed(self, trade: Trade) -> None:
        """IB sent the order's terms (openOrder): they are confirmed."""
        key = (trade.order.clientId, trade.order.orderId)
        self.pending.confirmed(key, Terms.of(trade.order), done=trade.isDone())

    def forget(self, trade: Trade) -> None:
        """The order ended: no modification of it is waiting any more."""
        self.pending.forget((trade.order.clientId, trade.order.orderId))

    def on_frame_dropped(self, dropped: FrameDropped) -> None:
        """A modification the wire did not write is not waiting for IB's answer."""
        if not dropped.first_write:
            self.pending.forget((self._ib.client.clientId, dropped.order_id))

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

    def trade_for_order_id(self, order_id: int, client_id: int | None = None) -> Trade | None:
        """This session's live trade for an order id (of our client id unless given)."""
        cid = self._ib.client.clientId if client_id is None else client_id
        for trade in self._ib.trades():
            if trade.order.orderId == order_id and trade.order.clientId == cid:
                return trade
        return None

    def cancel_order(self, trade: Trade, *, actor: str | None = None) -> Trade | None:
        """Request a cancel; never refused by risk (a trader must always be able to get
        out). The cancel is confirmed by the order's status, not by this call.

        An order still waiting for the message pacing is dropped before it is ever
        written (it ends as ``NotSent``). Refused (:class:`OrderRefused`) only when it
        cannot reach the order meant: not connected, or the order was placed under
        another client id.
        """
        self._admission.check_trade(trade, "cancel")
        if self._admission.readonly:
            subject = f"cancel #{trade.order.orderId}"
            self._admission.refuse(
                trade.order, trade.contract, MANUAL, "api", "cancel", subject, [READONLY_REASON]
            )
        strategy = self._records.strategy_of(trade)
        actor = actor if isinstance(actor, str) and actor else strategy
        subject = f"cancel #{trade.order.orderId} " + describe_order(trade.contract, trade.order)
        key = (trade.order.clientId, trade.order.orderId)
        if key in self._ended or trade.isDone():
            status = self._ended[key][0] if key in self._ended else trade.orderStatus.status
            self._audit.record(actor, "cancel", subject, f"not sent: already {status}")
            return trade
        reason = self._unchangeable(trade)
        if not self._ib.isConnected():
            reason = "not connected: the cancel cannot be sent until the connection is back"
        if reason:
            self._admission.refuse(
                trade.order, trade.contract, strategy, actor, "cancel", subject, [reason]
            )
        result = self._ib.cancelOrder(trade.order)
        self._audit.record(
            actor, "cancel", subject, "sent", order_id=trade.order.orderId, strategy=strategy
        )
        return result

    def cancel_all(self, *, actor: str = "gui", strategy: str | None = None) -> int:
        """Cancel every working order (of one strategy if given); returns how many.

        For the whole account this also sends reqGlobalCancel, which reaches orders
        placed elsewhere (TWS, other client ids). Refused when not connected.
        """
        if self._admission.readonly:
            self._admission.refuse(
                None,
                None,
                strategy or MANUAL,
                actor,
                "cancel_all",
                "every working order",
                [READONLY_REASON],
            )
        if not self._ib.isConnected():
            self._admission.refuse(
                None,
                None,
                strategy or MANUAL,
                actor,
                "cancel_all",
                "every working order",
                ["not connected: the cancels cannot be sent until the connection is back"],
            )
        trades = [
            t
            for t in self._ib.openTrades()
            if strategy is None or self._records.strategy_of(t) == strategy
        ]
        for trade in trades:
            if trade.order.clientId == self._ib.client.clientId:
                self.cancel_order(trade, actor=actor)
        if strategy is None:
            self._ib.reqGlobalCancel()
        self._audit.record(
            actor,
            "cancel_all",
            f"{len(trades)} working orders" + (f" of {strategy}" if strategy else ""),
            "sent" + (" with reqGlobalCancel" if strategy is None else ""),
            strategy=strategy,
        )
        return len(trades)

    def _unchangeable(self, trade: Trade) -> str:
        """Why ``trade`` can no longer be modified or cancelled here ("" when it can)."""
        key = (trade.order.clientId, trade.order.orderId)
        final = self._ended.get(key)
        if final is not None:
            return f"order {trade.order.orderId} is {final[0]} ({final[1]}): it is not at IB"
        if trade.isDone():
            return f"order {trade.order.orderId} is {trade.orderStatus.status} and cannot change"
        cid = self._ib.client.clientId
        if self._ib.isConnected() and trade.order.clientId not in (cid, 0):
            return (
                f"order {trade.order.orderId} was placed as client {trade.order.clientId} and "
                f"this console is client {cid} now: IB would apply this to client {cid}'s "
                "order of that id. Use Cancel all (global cancel) or TWS"
            )
        return ""


def _below_filled(trade: Trade, new_order: Order) -> str:
    """Why ``new_order``'s total quantity cannot replace ``trade``'s ("" when it can):
    IB's total includes what already filled, so a total below that cannot be."""
    filled = float(trade.orderStatus.filled or 0)
    try:
        total = float(new_order.totalQuantity)
    except (TypeError, ValueError):
        return ""  # not a number: validation says so
    if filled > QTY_EPS and total < filled - QTY_EPS:
        return (
            f"new total quantity {total:,.10g} is below the {filled:,.10g} already "
            "filled: the total includes what filled; to stop further fills, cancel the order"
        )
    return ""


def _number(value: object) -> float:
    """A quantity or price as a float (NaN when it is not a number)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
