"""Changing and cancelling working orders: what a trader does after an order is sent.

:class:`OrderChanges` owns the rules that differ from placing a new order. A
modification keeps the working order's id, client id and strategy and passes validation
and the pre-trade gate like a new order (and the gate's last word at the wire). A cancel
is never refused by risk: a trader must always be able to get out; it is refused only
when it cannot reach the order meant (not connected, read-only, or the order was placed
under another client id, where IB would apply it to this client's order of that id). A
done, lost or never-sent order (:mod:`core.inflight`) cannot change.

Apart from :class:`core.trading.TradeManager` (which offers these commands and delegates
here) so that placing and changing orders each read on their own; both judge through
the same :class:`core.admission.OrderAdmission`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

from ib_async import IB, Order, Trade

from core.admission import READONLY_REASON, OrderAdmission, OrderIntent
from core.audit import AuditLog
from core.events import MANUAL
from core.order_records import OrderKey, OrderRecords
from core.orders import describe_order
from core.wire import WireGate


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
        reason = self._unchangeable(trade)
        if reason:
            self._admission.refuse(
                new_order, trade.contract, strategy, actor, "modify", subject, [reason]
            )
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
        result = self._ib.placeOrder(trade.contract, new_order)
        self._audit.record(
            actor, "modify", subject, "sent", order_id=new_order.orderId, strategy=strategy
        )
        return result

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
