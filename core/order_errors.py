"""IB's errors about an order: a refused modification, a notice, or a rejection.

ib_async reports an order's error as ``errorEvent`` (and would mark any working order
``Cancelled``). :class:`OrderErrors` hears them first and tells them apart:

* a modification IB refused while the order still works at IB (ib_async's handler is
  skipped by :func:`core.compat.keep_working_on_refusal`; :class:`core.order_changes.
  OrderChanges` puts back the order's last confirmed terms): the order is published as
  it was with the refusal as its message, logged, audited, told to its strategy
  (``modification_refused``) and emitted as ``orderRejected``; the order still works;
* a notice (:data:`core.order_changes.NOT_REJECTIONS`, e.g. 202 answering a cancel):
  logged, told to the strategy;
* anything else: a rejection, logged, audited, told and emitted as ``orderRejected``.

Every such error acknowledges the order (:mod:`core.inflight`): IB has it. Apart from
:class:`core.trading.TradeManager` (which wires ib_async's events here) so the road an
order takes and the answers IB gives it each read on their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from eventkit import Event
from ib_async import IB, Trade

from core.audit import AuditLog
from core.compat import trades_by_key
from core.events import OrderRejected
from core.order_changes import NOT_REJECTIONS
from core.order_records import OrderKey, OrderRecords, order_key
from core.orders import describe_order

log = logging.getLogger(__name__)


class RefusalJudge(Protocol):
    """Tells a refused modification apart (:class:`core.order_changes.OrderChanges`)."""

    def refused(self, trade: Trade, code: int, message: str) -> str | None:
        """The refusal's text when ``code`` refused a pending modification of an order
        still working at IB (its last confirmed terms put back), else None."""
        ...


class OrderErrors:
    """Hears IB's order errors (module docstring).

    ``rejected`` is the trade manager's ``orderRejected`` event, ``tell`` puts a message
    on the strategies' queue and ``acknowledged(client_id, order_id)`` says IB spoke of
    an order.
    """

    def __init__(
        self,
        ib: IB,
        *,
        changes: RefusalJudge,
        records: OrderRecords,
        audit: AuditLog,
        rejected: Event,
        tell: Callable[[dict[str, Any]], None],
        acknowledged: Callable[[int, int], None],
    ) -> None:
        self._ib = ib
        self._changes = changes
        self._records = records
        self._audit = audit
        self._rejected = rejected
        self._tell = tell
        self._acknowledged = acknowledged
        # A refused modification's text, from the moment it is heard until its errorEvent.
        self._refusals: dict[OrderKey, str] = {}

    def on_refused(self, trade: Trade, code: int, message: str) -> str | None:
        """Asked before ib_async handles an order error: a refused modification leaves
        the order working as it was; its errorEvent follows (:meth:`on_error`)."""
        text = self._changes.refused(trade, code, message)
        if text is not None:
            self._refusals[order_key(trade)] = text
        return text

    def on_error(self, req_id: int, code: int, message: str, contract: object) -> None:
        """ib_async's ``errorEvent``: for one of this client's orders, say what it means."""
        if req_id < 0:
            return
        trade = trades_by_key(self._ib).get((self._ib.client.clientId, req_id))
        if trade is None:
            return
        self._acknowledged(trade.order.clientId, trade.order.orderId)
        strategy = self._records.strategy_of(trade)
        refusal = self._refusals.pop(order_key(trade), None)
        self._tell(
            {
                "type": "error",
                "strategy": strategy,
                "trade": trade,
                "code": code,
                "message": message,
                "modification_refused": refusal is not None,
            }
        )
        if refusal is not None:
            log.warning("order %d (%s): %s", req_id, strategy, refusal)
            self._records.publish(trade)  # as it was, the refusal its message
            self._audit.record(
                "ib",
                "modify",
                f"#{req_id} " + describe_order(trade.contract, trade.order),
                f"refused: error {code}: {message}; the order still works as before",
                order_id=req_id,
                strategy=strategy,
            )
            self._rejected.emit(
                OrderRejected(req_id, strategy, trade.contract.symbol, code, refusal, (message,))
            )
            return
        if code in NOT_REJECTIONS:
            log.info("order %d: IB %d: %s", req_id, code, message)
            return
        log.warning("order %d (%s): IB error %d: %s", req_id, strategy, code, message)
        self._audit.record(
            "ib",
            "error",
            describe_order(trade.contract, trade.order),
            f"error {code}: {message}",
            order_id=req_id,
            strategy=strategy,
        )
        self._rejected.emit(
            OrderRejected(req_id, strategy, trade.contract.symbol, code, message, (message,))
        )
