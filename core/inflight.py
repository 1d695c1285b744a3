"""Orders that may never have reached the gateway: in flight, ``NotSent`` and ``Lost``.

Between ``placeOrder`` and the gateway's first word about an order (openOrder,
orderStatus, an execution, an error) the console does not know whether IB has it.
:class:`InFlightOrders` owns that doubt and its endings:

* dropped at the wire (:mod:`core.wire`: the gate's last word, pacing, read-only) before
  it was written: ended here as ``NotSent``;
* written just before the connection dropped: *suspect*, looked for after the reconnect
  among open and completed orders and executions, and ended as ``Lost`` when the
  gateway does not know it (one that turns up later is audited as found);
* still working across a reconnect: ib_async builds new ``Trade`` objects, so the ones
  callers hold are brought up to date and put back in ib_async's place (:meth:`relink`);
  one that ended while the console was away (cancelled in TWS, filled) shows how it
  ended, marked as learned after the reconnect;
* working when the connection dropped (any order shown working: ours, restored after a
  restart, other clients'): *unconfirmed* until IB reports it again, and ended as
  ``Lost`` when IB, after the reconnect, knows it neither open nor completed nor
  executed (e.g. the gateway restarted without it).

Nothing is ever re-sent: an order that may have reached the gateway is never sent
twice. It is apart from :class:`core.trading.TradeManager` because this is the one part
that reasons about the connection dropping mid-order; the commands only register what
they send (:meth:`expect`) and ask what ended here (:attr:`ended`), and
:mod:`core.order_resync` calls it on a drop and after each reconnect's order lists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventkit import Event
from ib_async import IB, Trade, TradeLogEntry

from core.audit import AuditLog
from core.compat import trades_by_key, trades_by_perm_id
from core.events import EXTERNAL, LOST, NOT_SENT, OrderRejected
from core.order_records import OrderKey, OrderRecords, order_key
from core.orderids import OrderIdSequence
from core.orders import describe_order
from core.wire import FrameDropped, WireGate

log = logging.getLogger(__name__)


@dataclass(slots=True)
class InFlight:
    """An order written (or waiting to be) that the gateway has not acknowledged yet."""

    strategy: str
    actor: str
    trade: Trade | None = None
    not_sent: str = ""  # why the wire dropped it, when that happened inside placeOrder
    suspect: bool = False  # written before a drop: looked for after the reconnect


class InFlightOrders:
    """Orders not yet acknowledged, our live trades, and the orders ended here.

    ``rejected`` is the trade manager's ``orderRejected`` event, ``tell`` puts a message
    on the strategies' queue and ``on_status`` handles a status change of a relinked
    order as if IB had reported it.
    """

    def __init__(
        self,
        ib: IB,
        *,
        wire: WireGate,
        audit: AuditLog,
        order_ids: OrderIdSequence,
        records: OrderRecords,
        rejected: Event,
        tell: Callable[[dict[str, Any]], None],
        on_status: Callable[[Trade], None],
        ended: dict[OrderKey, tuple[str, str]] | None = None,
    ) -> None:
        self._ib = ib
        self._wire = wire
        self._audit = audit
        self._order_ids = order_ids
        self._records = records
        self._rejected = rejected
        self._tell = tell
        self._on_status = on_status
        self._in_flight: dict[OrderKey, InFlight] = {}
        #: Orders ended here, not at IB: (``NotSent`` or ``Lost``, why) by key; shared
        #: with OrderRecords, which shows these statuses instead of ``Inactive``.
        self.ended: dict[OrderKey, tuple[str, str]] = {} if ended is None else ended
        #: The not-done trades shown (ours and others'): ib_async builds new Trade
        #: objects after a reconnect, the callers hold these; relink() keeps them current.
        self.live: dict[OrderKey, Trade] = {}
        #: Orders working when the connection dropped, not reported by IB since.
        self._unconfirmed: set[OrderKey] = set()
        # The orders ended Lost that have not turned up since.
        self._lost: dict[OrderKey, Trade] = {}

    def watch(self, trade: Trade) -> None:
        """An order IB reported (ours, or placed elsewhere): kept current across a
        reconnect while it works, and looked for after one."""
        if not trade.isDone():
            self.live.setdefault(order_key(trade), trade)

    def expect(self, key: OrderKey, strategy: str, actor: str) -> InFlight:
        """Register an order about to be sent; its ``trade`` is set once placeOrder returns."""
        entry = self._in_flight[key] = InFlight(strategy, actor)
        return entry

    def get(self, key: OrderKey) -> InFlight | None:
        """The order still in doubt under ``key``, if any."""
        return self._in_flight.get(key)

    def keys(self) -> set[OrderKey]:
        """Every order working or in doubt (what a new trading day keeps)."""
        return set(self.live) | set(self._in_flight)

    def forget_ended(self, keys: list[OrderKey]) -> None:
        """A new trading day: forget how these finished orders ended."""
        for key in keys:
            self.ended.pop(key, None)
            self._lost.pop(key, None)

    def lost(self) -> list[Trade]:
        """The orders ended ``Lost`` that have not turned up at IB since."""
        return list(self._lost.values())

    def on_frame_dropped(self, dropped: FrameDropped) -> None:
        """The wire did not write an order's frame: end a new order as ``NotSent``; a
        modification not written leaves the working order as it was (said, not ended)."""
        key = (self._ib.client.clientId, dropped.order_id)
        entry = self._in_flight.get(key)
        if not dropped.first_write:
            trade = entry.trade if entry is not None else trades_by_key(self._ib).get(key)
            strategy = self._records.strategy_of(trade) if trade is not None else EXTERNAL
            self._audit.record(
                "console",
                "modify",
                f"#{dropped.order_id}",
                f"not sent: {dropped.reason}",
                order_id=dropped.order_id,
                strategy=strategy,
            )
            self._rejected.emit(
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
        self.end(key, NOT_SENT, dropped.reason)

    def end(self, key: OrderKey, status: str, reason: str) -> None:
        """End an order the gateway does not have: ``NotSent`` or ``Lost``, with why.

        ib_async's ``Trade`` becomes ``Inactive`` (done: ``isDone()`` is true) with the
        reason in its log; events, the audit and the strategy get ``status``. The order
        is one in flight, or one shown working (:attr:`live`).
        """
        entry = self._in_flight.pop(key, None)
        trade = entry.trade if entry is not None else self.live.get(key)
        assert trade is not None
        strategy = entry.strategy if entry is not None else self._records.strategy_of(trade)
        self._unconfirmed.discard(key)
        self.live.pop(key, None)
        self.ended[key] = (status, reason)
        if status == LOST:
            self._lost[key] = trade
        trade.orderStatus.status = "Inactive"
        trade.log.append(TradeLogEntry(datetime.now(UTC), status, reason))
        subject = describe_order(trade.contract, trade.order)
        log.warning("order %d %s: %s", key[1], status, reason)
        self._audit.record(
            "console", status.lower(), subject, reason, order_id=key[1], strategy=strategy
        )
        self._records.publish(trade)
        self._rejected.emit(
            OrderRejected(key[1], strategy, trade.contract.symbol, 0, reason, (reason,))
        )
        self._tell(
            {
                "type": "status",
                "strategy": strategy,
                "trade": trade,
                "status": status,
                "reason": reason,
            }
        )
        trade.statusEvent.emit(trade)

    def acknowledged(self, client_id: int, order_id: int) -> None:
        """The gateway spoke of this order: it is no longer in doubt."""
        key = (client_id, order_id)
        self._in_flight.pop(key, None)
        self._unconfirmed.discard(key)
        if key in self.ended and self.ended[key][0] == LOST:
            status, reason = self.ended.pop(key)
            self._lost.pop(key, None)
            log.error("order %d reported lost turned up at the gateway", order_id)
            self._audit.record(
                "ib",
                "found",
                f"#{order_id}",
                f"reported {status} ({reason}) but IB has it",
                order_id=order_id,
                strategy=self._records.strategy_of_order.get(key),
            )

    def on_disconnected(self) -> None:
        """Written but not acknowledged: it may or may not have arrived. Looked for after
        the reconnect (:meth:`find_lost`); never resent."""
        for key, entry in self._in_flight.items():
            if self._wire.was_written(key[1]):
                entry.suspect = True
        self._unconfirmed |= {k for k, t in self.live.items() if not t.isDone()}

    def unconfirmed(self) -> set[OrderKey]:
        """Orders working when the connection dropped that IB has not reported since."""
        return set(self._unconfirmed)

    def relink(self) -> None:
        """After a reconnect, keep the ``Trade`` objects callers hold current.

        ib_async forgets every trade on a disconnect and builds new objects from the
        gateway's open and completed orders. For each order of ours it rebuilt, the
        object placed is brought up to date (status, fills, log) and put back in
        ib_async's place, so later updates reach it; one that finished meanwhile is
        published and told to its strategy.
        """
        trades, by_perm = trades_by_key(self._ib), trades_by_perm_id(self._ib)
        by_id = {
            (t.order.clientId, t.order.orderId): t
            for t in list(trades.values())
            if t.order.orderId > 0
        }
        # An order answered only after the link dropped never told us its perm id, and
        # IB lists a finished one among completed orders by perm id alone (order id 0
        # once the gateway restarted); its executions carry both ids.
        perm_of = {
            (f.execution.clientId, f.execution.orderId): f.execution.permId
            for f in self._ib.fills()
            if f.execution.permId
        }
        for key, ours in list(self.live.items()):
            perm = ours.order.permId or perm_of.get(key, 0)
            fresh = by_id.get(key) or (by_perm.get(perm) if perm else None)
            if fresh is None or fresh is ours:
                continue
            self._unconfirmed.discard(key)
            before = ours.orderStatus.status
            ours.orderStatus = fresh.orderStatus
            ours.order.permId = fresh.order.permId or ours.order.permId
            known = {f.execution.execId for f in ours.fills}
            ours.fills += [f for f in fresh.fills if f.execution.execId not in known]
            if fresh.orderStatus.status != before:
                status = fresh.orderStatus.status
                why = (
                    f"{status} while the console was disconnected (learned on the reconnect)"
                    if ours.isDone()
                    else "after reconnect"
                )
                ours.log.append(TradeLogEntry(datetime.now(UTC), status, why))
            for k, t in list(trades.items()):
                if t is fresh:
                    trades[k] = ours
            if ours.order.permId:
                by_perm[ours.order.permId] = ours
            self.acknowledged(*key)
            if ours.orderStatus.status != before:
                self._on_status(ours)
                ours.statusEvent.emit(ours)
            if ours.isDone():
                self.live.pop(key, None)

    def find_lost(self, *, listed: bool = True) -> int:
        """After a reconnect's resync: end as ``Lost`` each order the gateway does not
        know (open or completed orders, executions): a suspect written just before the
        drop, or (when ``listed``: the open and completed orders were read) an order
        working when the link dropped. Returns how many."""
        known: set[OrderKey] = set()
        perms: set[int] = set()
        for trade in self._ib.trades():
            known.add((trade.order.clientId, trade.order.orderId))
            perms.add(trade.order.permId or trade.orderStatus.permId)
            if trade.order.clientId == self._ib.client.clientId:
                self._order_ids.observe(trade.order.orderId)
        for fill in self._ib.fills():
            known.add((fill.execution.clientId, fill.execution.orderId))
            perms.add(fill.execution.permId)
        perms.discard(0)
        lost = 0
        for key, entry in list(self._in_flight.items()):
            if not entry.suspect:
                continue
            if key in known:
                log.info("order %d, written before the drop, is known to the gateway", key[1])
                self.acknowledged(*key)
                continue
            self.end(
                key,
                LOST,
                "the connection dropped just after it was written and the gateway does not "
                "know it (not among open or completed orders or executions): not resent",
            )
            lost += 1
        return lost + (self._find_gone(known, perms) if listed else 0)

    def _find_gone(self, known: set[OrderKey], perms: set[int]) -> int:
        """End as ``Lost`` each order working when the link dropped that IB did not
        report again and does not know now; never resent."""
        lost = 0
        for key in sorted(self._unconfirmed):
            trade = self.live.get(key)
            if trade is None or trade.isDone():
                self._unconfirmed.discard(key)
                continue
            perm = trade.order.permId or trade.orderStatus.permId
            if key in known or (perm and perm in perms):
                self._unconfirmed.discard(key)  # executions say what became of it
                continue
            self.end(
                key,
                LOST,
                "IB does not know this order after the reconnect (not among open or "
                "completed orders or executions): look for it in TWS; not resent",
            )
            lost += 1
        return lost
