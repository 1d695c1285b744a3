"""The emergency stop's cancel round: which orders are the scope's, cancel them, wait.

For the whole account ``reqGlobalCancel`` goes first: one message reaches every order,
however placed (TWS, other client ids). Orders it has not reached within a grace period
are then cancelled one by one (ib_async paces those at about 45 a second), as are a
strategy's or a contract's orders from the start. An order another client placed can
only be reached by the global cancel, so a narrower stop says it could not cancel it.
Every wait checks the connection (:class:`core.emergency_link.StopLink`): a drop
abandons the round, which the stop (:mod:`core.emergency`) starts again after the
reconnect.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ib_async import IB, Trade

from core.emergency_link import StopLink
from core.emergency_needs import AuditTrail, StopView
from core.emergency_report import StopRun, StopScope
from core.orders import describe_order
from core.trading import EMERGENCY_ACTOR, OrderRefused, TradeManager

__all__ = ["CancelRound", "order_subject"]


def order_subject(trade: Trade) -> str:
    """``#12 BUY 100 AAPL LMT 189.50 DAY``: how the stop names an order it cancels or leaves."""
    return f"#{trade.order.orderId} " + describe_order(trade.contract, trade.order)


@dataclass(frozen=True, slots=True)
class CancelRound:
    """Finds a scope's working orders, cancels them and waits for IB to confirm."""

    trades: TradeManager
    audit: AuditTrail
    view: StopView
    link: StopLink  # its ``account``: only that account's orders (all when empty)

    @property
    def ib(self) -> IB:
        """The connection's ib_async client."""
        return self.trades.ib

    def in_scope(self, trade: Trade, scope: StopScope) -> bool:
        """True when ``trade`` is an order of ``scope`` (and of the stop's account)."""
        account = self.link.account
        if account and trade.order.account and trade.order.account != account:
            return False
        if scope.strategy is not None:
            return self.trades.strategy_of(trade) == scope.strategy
        if scope.con_id is not None:
            c = trade.contract
            return (c.conId or self.view.con_id_of(c)) == scope.con_id
        return True

    def working(self, scope: StopScope) -> list[Trade]:
        """The scope's orders still working."""
        return [t for t in self.ib.openTrades() if self.in_scope(t, scope)]

    def cancel(self, run: StopRun, *, each: bool) -> None:
        """Cancel the scope's working orders.

        For the whole account, ``reqGlobalCancel`` goes first (one message reaches every
        order, however placed); ``each`` then cancels every known order still working
        one by one (ib_async paces those at about 45 a second).
        """
        self.link.check()
        if run.scope.kind == "account" and not each:
            for trade in self.working(run.scope):
                run.cancelled.setdefault(order_subject(trade))
            self.ib.reqGlobalCancel()
            self.audit.record(
                EMERGENCY_ACTOR, "cancel_all", "every working order", "sent reqGlobalCancel"
            )
            return
        own = self.ib.client.clientId
        for trade in self.working(run.scope):
            subject = order_subject(trade)
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

    async def await_no_working(self, run: StopRun, timeout: float, grace: float) -> None:
        """Wait up to ``timeout`` seconds for the cancels; orders the global cancel did
        not reach within ``grace`` seconds are cancelled one by one."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + timeout
        each_sent = run.scope.kind != "account"
        while True:
            self.link.check()
            left = self.working(run.scope)
            if not left:
                return
            now = loop.time()
            if not each_sent and now - start >= grace:
                self.cancel(run, each=True)
                each_sent = True
            if now >= deadline:
                run.fail(
                    "cancel",
                    f"{len(left)} orders",
                    f"not confirmed cancelled within {timeout:g}s: "
                    + ", ".join(f"#{t.order.orderId} {t.orderStatus.status}" for t in left),
                )
                return
            await asyncio.sleep(0.02)
