"""The breach monitor: the day's loss and drawdown against their limits.

Fed the day's P&L of the account and of each strategy (and the account's net
liquidation, which a percentage loss limit is measured on), it keeps each scope's
high-water mark in the exposure book and, the first time in a trading day that a
scope's loss or drawdown reaches its limit, takes ``RiskPolicy.breach_action``:

* ``"reducing"``: the scope becomes REDUCING (if it was ACTIVE);
* ``"halt"``: the scope becomes HALTED;
* ``"emergency_stop"``: the scope becomes HALTED at once, and the breach event asks for
  the emergency stop. The monitor does not know the stop: the session connects
  ``limitBreached`` to it (:func:`wants_emergency_stop`), so risk never imports it.

A new trading day clears the breaches and lifts a REDUCING the monitor set for a daily
limit (HALTED stays: only a person leaves it).

Events
------
* ``limitBreached`` (breach: :class:`RiskLimitBreached`)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from eventkit import Event

from core.audit import AuditLog
from core.events import PnLChanged, TradingState, now_utc
from core.exposure import ExposureBook, ScopeBook, price
from core.orders import is_unset
from core.pretrade import LimitSet, num, pct_loss_limit
from core.trading_state import ACCOUNT, TradingStates, strategy_or_none
from core.tradingday import TradingDayStarted

log = logging.getLogger(__name__)

__all__ = ["BreachMonitor", "RiskLimitBreached", "wants_emergency_stop"]


@dataclass(frozen=True, slots=True)
class RiskLimitBreached:
    """The day's loss or drawdown of ``scope`` reached its limit; ``action`` was taken."""

    scope: str
    limit: str  # daily_loss_limit, daily_loss_limit_pct, max_drawdown
    value: float
    limit_value: float
    action: str
    time: datetime = field(default_factory=now_utc)

    @property
    def strategy(self) -> str | None:
        """The strategy breached, or None for the account."""
        return strategy_or_none(self.scope)

    def describe(self) -> str:
        """``daily loss limit 1,000 breached: 1,500``."""
        return f"{_limit_title(self.limit)} {num(self.limit_value)} breached: {num(self.value)}"


def wants_emergency_stop(breach: RiskLimitBreached) -> bool:
    """True when the breach's action is the emergency stop (the session runs it)."""
    return breach.action == "emergency_stop"


class BreachMonitor:
    """Watches each scope's daily loss and drawdown (see the module docstring)."""

    def __init__(
        self,
        book: ExposureBook,
        states: TradingStates,
        limits: Callable[[], LimitSet],
        *,
        action: str = "reducing",
        audit: AuditLog | None = None,
        roll_day: Callable[[], object] = lambda: None,
    ) -> None:
        self.book = book
        self.states = states
        self._limits = limits
        self.action = action
        self.audit = audit or AuditLog()
        self._roll_day = roll_day
        self._breached: dict[str, set[str]] = {}
        self.limitBreached: Event = Event("limitBreached")

    def on_net_liquidation(self, value: float | None) -> None:
        """The account's net liquidation value (base currency)."""
        v = price(value) if value is not None else None
        if v is not None:
            self.book.set_net_liquidation(v)

    def on_pnl(self, pnl: PnLChanged) -> None:
        """The day's P&L of the account (``strategy`` None) or a strategy."""
        self._roll_day()
        daily = pnl.daily
        if is_unset(daily):
            return
        scope = ACCOUNT if pnl.strategy is None else pnl.strategy
        sb = self.book.set_pnl(scope, daily)
        done = self._breached.setdefault(scope, set())
        for limit, value, limit_value in self._breaches(sb):
            if limit not in done:
                done.add(limit)
                self._breach(scope, limit, value, limit_value)

    def _breaches(self, sb: ScopeBook) -> Iterator[tuple[str, float, float]]:
        if sb.pnl is None:
            return
        lim = self._limits().of(sb.name)
        loss = -sb.pnl
        if lim.daily_loss_limit is not None and loss >= lim.daily_loss_limit:
            yield "daily_loss_limit", loss, lim.daily_loss_limit
        pct_limit = pct_loss_limit(self.book, lim)
        if pct_limit is not None and loss >= pct_limit:
            yield "daily_loss_limit_pct", loss, pct_limit
        if lim.max_drawdown is not None and sb.hwm - sb.pnl >= lim.max_drawdown:
            yield "max_drawdown", sb.hwm - sb.pnl, lim.max_drawdown

    def _breach(self, scope: str, limit: str, value: float, limit_value: float) -> None:
        action = self.action
        breach = RiskLimitBreached(scope, limit, value, limit_value, action)
        text = breach.describe()
        log.error("risk: %s %s; action: %s", scope, text, action)
        self.audit.record(
            "risk", "limit_breached", f"{scope}: {text}", action, strategy=strategy_or_none(scope)
        )
        # The state first: from this instant the gate judges under it, whoever listens.
        if action == "reducing":
            if self.states.state_of(scope) is TradingState.ACTIVE:
                self.states.set(scope, TradingState.REDUCING, text, "risk")
        else:  # "halt", or "emergency_stop" (the stop, run by the session, halts too)
            self.states.set(scope, TradingState.HALTED, text, "risk")
        self.limitBreached.emit(breach)

    def breached(self, scope: str) -> frozenset[str]:
        """The limits ``scope`` breached today."""
        return frozenset(self._breached.get(scope, ()))

    def start_day(self, event: TradingDayStarted) -> None:
        """A new trading day: P&L, high-water marks and breaches start again; a REDUCING
        the monitor set for a daily limit is lifted."""
        breached = {scope for scope, limits in self._breached.items() if limits}
        self._breached.clear()
        self.book.new_day()
        for scope in breached:
            s = self.states.get(scope)
            if (
                s is not None
                and s.state is TradingState.REDUCING
                and s.changed_by == "risk"
                and not s.auto
            ):
                self.states.set(
                    scope,
                    TradingState.ACTIVE,
                    f"new trading day {event.day.isoformat()}: daily limits reset",
                    "risk",
                )


def _limit_title(limit: str) -> str:
    return {
        "daily_loss_limit": "daily loss limit",
        "daily_loss_limit_pct": "daily loss limit (% of net liquidation)",
        "max_drawdown": "max drawdown",
    }.get(limit, limit.replace("_", " "))
