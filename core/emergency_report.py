"""What an emergency stop covers and what it tells: its scope, its progress, its result.

Plain values and the words a trader reads, in one place: :class:`StopScope` (the
account, one strategy or one contract), :class:`EmergencyStopProgress` (the step a
running stop is at and what it waits for), :class:`FlattenOrder`, :class:`StopFailure`
and :class:`EmergencyStopResult` (what it did or, for a dry run, would do, with the
lines the GUI shows and the line the audit trail keeps). :class:`StopRun` is one run's
record, filled by the stop's rounds (:mod:`core.emergency`) and turned into the result.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ib_async import Contract, Order

from core.events import now_utc
from core.trading_state import ACCOUNT, contract_scope

# The stop's parts log as the stop (as the store's parts log as the store).
log = logging.getLogger("core.emergency")

__all__ = [
    "EmergencyStopProgress",
    "EmergencyStopResult",
    "FlattenOrder",
    "StopFailure",
    "StopRun",
    "StopScope",
    "counted",
]


def counted(n: int, noun: str) -> str:
    """``1 position``, ``3 positions``."""
    return f"{n} {noun}{'s' if n != 1 else ''}"


@dataclass(frozen=True, slots=True)
class StopScope:
    """What a stop covers: the account (both None), one strategy, or one contract."""

    strategy: str | None = None
    con_id: int | None = None
    symbol: str = ""

    @classmethod
    def account(cls) -> StopScope:
        """The whole account."""
        return cls()

    @classmethod
    def of(cls, strategy: str) -> StopScope:
        """One strategy's orders and positions."""
        return cls(strategy=strategy)

    @classmethod
    def contract(cls, con_id: int, symbol: str = "") -> StopScope:
        """One contract's orders and the account's position in it."""
        if not con_id:
            raise ValueError("a contract stop needs a qualified contract (conId)")
        return cls(con_id=con_id, symbol=symbol)

    @property
    def kind(self) -> str:
        """``account``, ``strategy`` or ``contract``."""
        if self.strategy is not None:
            return "strategy"
        if self.con_id is not None:
            return "contract"
        return "account"

    @property
    def risk_scope(self) -> str:
        """The trading-state scope this stop halts."""
        if self.strategy is not None:
            return self.strategy
        if self.con_id is not None:
            return contract_scope(self.con_id)
        return ACCOUNT

    def covers(self, other: StopScope) -> bool:
        """True when a stop of this scope does everything a stop of ``other`` would."""
        return self.kind == "account" or self == other

    def describe(self) -> str:
        """``account``, ``strategy momo``, ``contract AAPL``."""
        if self.strategy is not None:
            return f"strategy {self.strategy}"
        if self.con_id is not None:
            return f"contract {self.symbol or self.con_id}"
        return "account"


@dataclass(frozen=True, slots=True)
class FlattenOrder:
    """A flattening order, sent (``order_id`` set) or planned (dry run)."""

    strategy: str
    con_id: int
    symbol: str
    action: str
    quantity: float
    order_type: str
    limit_price: float | None = None
    order_id: int | None = None
    status: str = ""

    @classmethod
    def of(
        cls, strategy: str, contract: Contract, order: Order, order_id: int | None = None
    ) -> FlattenOrder:
        """The flattening ``order`` for ``contract``, attributed to ``strategy``."""
        limit = (
            float(order.lmtPrice)
            if order.orderType == "LMT" and order.lmtPrice is not None
            else None
        )
        return cls(
            strategy,
            contract.conId,
            symbol_of(contract),
            order.action,
            float(order.totalQuantity),
            order.orderType,
            limit,
            order_id,
        )

    def describe(self) -> str:
        """``SELL 100 AAPL MKT (momo)``."""
        px = f" {self.limit_price:g}" if self.limit_price is not None else ""
        return (
            f"{self.action} {self.quantity:g} {self.symbol} {self.order_type}{px} ({self.strategy})"
        )


def symbol_of(contract: Contract) -> str:
    """What a trader calls the contract: ``EUR.USD`` for a currency pair, else the symbol."""
    return contract.localSymbol if contract.secType == "CASH" else contract.symbol


@dataclass(frozen=True, slots=True)
class EmergencyStopProgress:
    """Where a running stop is, in words a trader reads while it runs.

    ``step`` is one of ``halted``, ``waiting`` (for the connection), ``cancelling``,
    ``positions``, ``flattening``, ``verifying``; ``detail`` says what it waits for.
    """

    scope: str
    step: str
    detail: str
    time: datetime = field(default_factory=now_utc)


@dataclass(frozen=True, slots=True)
class StopFailure:
    """Something the stop could not do, and why."""

    step: str  # cancel, positions, flatten, verify, connection
    subject: str
    reason: str

    def describe(self) -> str:
        """One line."""
        return f"{self.step}: {self.subject}: {self.reason}"


@dataclass(frozen=True, slots=True)
class EmergencyStopResult:
    """What an emergency stop did (or, for a dry run, would do)."""

    reason: str
    scope: StopScope
    flatten: bool
    dry_run: bool
    started: datetime
    finished: datetime
    orders_cancelled: tuple[str, ...] = ()
    positions_closed: tuple[FlattenOrder, ...] = ()
    positions_remaining: tuple[str, ...] = ()
    working_remaining: tuple[str, ...] = ()
    failures: tuple[StopFailure, ...] = ()
    rounds: int = 0
    reconnects: int = 0
    #: Orders of the scope IB did not know after a reconnect (``Lost``): not cancelled,
    #: not known to be gone either; a person must look for them in TWS.
    orders_lost: tuple[str, ...] = ()

    @property
    def flat(self) -> bool:
        """No position of the scope is left open."""
        return not self.positions_remaining

    @property
    def order_free(self) -> bool:
        """No order of the scope is left working."""
        return not self.working_remaining

    @property
    def ok(self) -> bool:
        """Everything asked was done and nothing failed."""
        return (
            self.order_free
            and (self.flat or not self.flatten)
            and not self.failures
            and not self.orders_lost
        )

    @property
    def outcome(self) -> str:
        """``flat and order-free``, or ``NOT flat/order-free:`` and what is left; an order
        lost after a reconnect is always named (it may still work somewhere)."""
        lost = ""
        if self.orders_lost:
            it = "it" if len(self.orders_lost) == 1 else "them"
            lost = (
                f"; {counted(len(self.orders_lost), 'order')} LOST (IB did not know "
                f"{it} after the reconnect): look for {it} in TWS"
            )
        if self.flat and self.order_free:
            if lost:
                return "flat, no order working at IB" + lost
            return "flat and order-free"
        return (
            "NOT flat/order-free: "
            + ", ".join((*self.positions_remaining, *self.working_remaining))
            + lost
        )

    def summary(self) -> str:
        """One line for the audit trail: the outcome and the counts."""
        cancelled, closed = len(self.orders_cancelled), len(self.positions_closed)
        if self.dry_run:
            return f"would cancel {cancelled} orders and send {closed} flattening orders"
        return f"{self.outcome}; {cancelled} orders cancelled, {closed} flattening orders" + (
            f"; {len(self.failures)} failures" if self.failures else ""
        )

    def describe(self) -> str:
        """A few lines for the GUI (the preview, or the outcome)."""
        head = "Emergency stop (dry run): would" if self.dry_run else "Emergency stop:"
        lines = [f"{head} {self.scope.describe()} - {self.reason}"]
        verb = "cancel" if self.dry_run else "cancelled"
        lines.append(f"  {verb} {len(self.orders_cancelled)} working orders")
        lines += [f"    {o}" for o in self.orders_cancelled]
        if self.orders_lost:
            one = len(self.orders_lost) == 1
            it, was = ("it", "was") if one else ("them", "were")
            lines.append(
                f"  LOST {counted(len(self.orders_lost), 'order')}: IB did not know "
                f"{it} after the reconnect, so {it} {was} not cancelled; look for {it} in TWS"
            )
            lines += [f"    {o}" for o in self.orders_lost]
        verb = "send" if self.dry_run else "sent"
        lines.append(f"  {verb} {len(self.positions_closed)} flattening orders")
        lines += [f"    {o.describe()}" for o in self.positions_closed]
        if not self.dry_run:
            lines.append(f"  {self.outcome}")
        lines += [f"  failed: {f.describe()}" for f in self.failures]
        return "\n".join(lines)


@dataclass
class StopRun:
    """One run of the stop, as it goes: what it cancelled, sent and failed to do."""

    reason: str
    scope: StopScope
    flatten: bool
    actor: str
    started: datetime = field(default_factory=now_utc)
    cancelled: dict[str, None] = field(default_factory=dict)  # ordered set
    closed: list[FlattenOrder] = field(default_factory=list)
    failures: list[StopFailure] = field(default_factory=list)
    rounds: int = 0
    reconnects: int = 0
    gave_up_waiting: bool = False

    @property
    def subject(self) -> str:
        """What the audit trail records the run under: ``account: runaway strategy``."""
        return f"{self.scope.describe()}: {self.reason}"

    def fail(self, step: str, subject: str, reason: str) -> None:
        """Note (and log) something the stop could not do."""
        log.error("emergency stop: %s: %s: %s", step, subject, reason)
        self.failures.append(StopFailure(step, subject, reason))

    def progress(self, step: str, detail: str) -> EmergencyStopProgress:
        """The progress event for ``step`` of this run."""
        return EmergencyStopProgress(self.scope.describe(), step, detail)

    def result(
        self,
        *,
        dry_run: bool = False,
        remaining: Sequence[str] = (),
        working: Sequence[str] = (),
        lost: Sequence[str] = (),
    ) -> EmergencyStopResult:
        """The run's result, finished now, with what is left of the scope."""
        return EmergencyStopResult(
            reason=self.reason,
            scope=self.scope,
            flatten=self.flatten,
            dry_run=dry_run,
            started=self.started,
            finished=now_utc(),
            orders_cancelled=tuple(self.cancelled),
            positions_closed=tuple(self.closed),
            positions_remaining=tuple(remaining),
            working_remaining=tuple(working),
            failures=tuple(self.failures),
            rounds=self.rounds,
            reconnects=self.reconnects,
            orders_lost=tuple(lost),
        )
