"""What closes each position an emergency stop flattens: who it is attributed to, which order.

:class:`FlattenPlanner` decides, and sends nothing: the stop's flatten round
(:mod:`core.emergency_flatten`) sends what it plans, the dry run (the GUI's preview)
shows it, and the final check lists what a plan would still have to close.

* Attribution: each account position in the stop's scope is split among the strategies
  holding it, largest first; what no strategy holds goes to ``external``. A strategy
  stop closes only what the strategy holds, never more than the account holds, and
  never a position the account holds the other way (that would reverse it).
* The order: at market in regular trading hours; outside them, when the contract
  details tell the hours and a quote is known, a marketable limit (``outsideRth``)
  ``limit_slippage_pct`` through the bid or ask, on the tick.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ib_async import Contract, ContractDetails, Order, Position

from core.emergency_needs import DetailsLookup, StopView
from core.emergency_report import FlattenOrder, StopRun
from core.events import EXTERNAL, QTY_EPS
from core.timeutils import TradingSessions

__all__ = ["FlattenPlanner", "FlattenTarget", "tradable"]


@dataclass(frozen=True, slots=True)
class FlattenTarget:
    """A position to close, and the strategy its flattening order is attributed to."""

    strategy: str
    contract: Contract
    quantity: float  # signed position to close

    def describe(self) -> str:
        """``AAPL 100 (momo)``: what is left to close."""
        c = self.contract
        return f"{c.localSymbol or c.symbol} {self.quantity:g} ({self.strategy})"


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

    def plan(self, run: StopRun, positions: Sequence[Position]) -> list[FlattenTarget]:
        """Split each account position in scope among the strategies that hold it."""
        scope = run.scope
        out: list[FlattenTarget] = []
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
                out.append(
                    FlattenTarget(scope.strategy, contract, math.copysign(min(abs(q), abs(a)), a))
                )
            return out
        for con_id, (contract, a) in account_qty.items():
            if abs(a) < QTY_EPS or (scope.con_id is not None and con_id != scope.con_id):
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
                if take > QTY_EPS:
                    out.append(FlattenTarget(name, contract, math.copysign(take, a)))
                    left -= take
            if left > QTY_EPS:
                out.append(FlattenTarget(EXTERNAL, contract, math.copysign(left, a)))
        return out

    def planned_orders(self, run: StopRun, positions: Sequence[Position]) -> list[FlattenOrder]:
        """The flattening orders a stop would send for ``positions`` now (the dry run)."""
        out: list[FlattenOrder] = []
        for t in self.plan(run, positions):
            contract = tradable(t.contract)
            action = "SELL" if t.quantity > 0 else "BUY"
            order = self.order(contract, action, abs(t.quantity), run)
            out.append(FlattenOrder.of(t.strategy, contract, order))
        return out

    def order(self, contract: Contract, action: str, qty: float, run: StopRun) -> Order:
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


def tradable(contract: Contract) -> Contract:
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
