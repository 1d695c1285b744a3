"""The emergency stop's flatten round: send the orders that close each position, wait.

Each target the planner (:mod:`core.emergency_plan`) gives is closed by one order that
never reverses the position: the quantity is re-read from IB's live position just
before the order is sent, less any closing-side order still working that may fill. The
order carries a single-use :class:`core.flatten.FlattenIntent` from the
:class:`core.emergency_needs.FlattenIssuer`, the only thing that lets it pass HALTED
(withdrawn again if the order is refused), and is attributed to the strategy holding
the position. A refusal for want of a connection abandons the round
(:class:`core.emergency_link.LinkInterrupted`), as does a drop while the fills are
awaited; the stop (:mod:`core.emergency`) goes round again after the reconnect.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from ib_async import IB, Trade

from core.emergency_link import LinkInterrupted, StopLink
from core.emergency_needs import FlattenIssuer
from core.emergency_plan import FlattenPlanner, FlattenTarget, tradable
from core.emergency_report import FlattenOrder, StopRun, symbol_of
from core.events import QTY_EPS
from core.trading import EMERGENCY_ACTOR, OrderRefused, TradeManager

__all__ = ["FlattenRound"]


@dataclass(frozen=True, slots=True)
class FlattenRound:
    """Sends a round of flattening orders through the TradeManager and awaits them."""

    trades: TradeManager
    planner: FlattenPlanner
    authority: FlattenIssuer
    link: StopLink

    @property
    def ib(self) -> IB:
        """The connection's ib_async client."""
        return self.trades.ib

    def send(self, run: StopRun, targets: Sequence[FlattenTarget]) -> list[Trade]:
        """Send an order closing each target; the trades of those that were sent."""
        trades = []
        for target in targets:
            trade = self._send(run, target)
            if trade is not None:
                trades.append(trade)
        return trades

    async def await_done(self, trades: Sequence[Trade], timeout: float) -> None:
        """Wait up to ``timeout`` seconds for ``trades`` to be filled (or otherwise done)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(not t.isDone() for t in trades) and loop.time() < deadline:
            self.link.check()
            await asyncio.sleep(0.02)
        self.link.check()

    def _send(self, run: StopRun, target: FlattenTarget) -> Trade | None:
        self.link.check()
        contract = tradable(target.contract)
        symbol = symbol_of(contract)
        # re-check against IB's live position just before sending: never reverse
        live = self._live_position(contract.conId)
        if live is None or live * target.quantity <= 0:
            return None  # already flat (or flipped by a late fill: the next round sees it)
        pending = self._pending_closing(contract.conId, live)
        qty = min(abs(target.quantity), abs(live) - pending)
        if qty <= QTY_EPS:
            return None
        action = "SELL" if live > 0 else "BUY"
        order = self.planner.order(contract, action, qty, run)
        if self.link.account:
            order.account = self.link.account
        grant = self.authority.issue(contract.conId, action, qty, f"emergency stop: {run.reason}")
        try:
            trade = self.trades.place_order(
                contract, order, target.strategy, actor=EMERGENCY_ACTOR, flatten=grant
            )
        except OrderRefused as exc:
            self.authority.withdraw(grant)
            if "not connected" in exc.reasons:
                raise LinkInterrupted("not connected") from exc
            run.fail("flatten", f"{action} {qty:g} {symbol}", "; ".join(exc.reasons))
            return None
        run.closed.append(FlattenOrder.of(target.strategy, contract, order, trade.order.orderId))
        return trade

    def _live_position(self, con_id: int) -> float | None:
        total = 0.0
        seen = False
        account = self.link.account
        for p in self.ib.positions(account) if account else self.ib.positions():
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
