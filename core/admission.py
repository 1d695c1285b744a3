"""Whether an order may be sent: the checks every command passes, and how a refusal reads.

:class:`OrderAdmission` owns the judgement before anything reaches the wire: the order
made canonical (what is judged is what is sent), the contract qualified from cached
details, validation, the strategy's permissions, the one pre-trade gate
(:class:`PreTradeGate`, the RiskManager) and its last word at the wire. A refusal is
audited, published as ``orderRejected``, told to the strategy and raised as
:class:`OrderRefused` with every reason: nothing is sent.

It sends nothing and keeps no order state, so :class:`core.trading.TradeManager` asks it
and then sends; ``verdict`` is the same judgement on a copy (the ticket's preview). The
values the gate and the commands speak in (:class:`OrderIntent`,
:class:`PreTradeDecision`, :data:`EMERGENCY_ACTOR`) live here because the gate and the
checks are one contract; :mod:`core.trading` re-exports them.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

from eventkit import Event
from ib_async import Contract, ContractDetails, Order, Trade

from core.audit import AuditLog
from core.events import MANUAL, OrderRejected, TradingState
from core.flatten import FlattenIntent
from core.orders import canonicalize_order, describe_order, validate_order

log = logging.getLogger(__name__)

#: The actor name the emergency stop sends its flattening orders as (core.risk uses it).
EMERGENCY_ACTOR = "emergency_stop"
#: Why a read-only session refuses every order change.
READONLY_REASON = (
    "read-only session (--readonly): this console places, changes and cancels no orders"
)


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


class OrderRefused(Exception):
    """An order was refused before it was sent; ``reasons`` lists every problem."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("; ".join(self.reasons))


DetailsLookup = Callable[[Contract], ContractDetails | None]
#: A strategy's own permissions for an order: the problems (core.strategies implements it).
Permissions = Callable[[str, Contract, Order], list[str]]
#: Tells a strategy something through its message queue.
Tell = Callable[[dict[str, Any]], None]


class OrderAdmission:
    """The checks before an order is sent, and the refusal when one fails.

    ``pre_trade`` may be replaced after construction (the RiskManager installs itself).
    """

    def __init__(
        self,
        *,
        readonly: bool,
        pre_trade: PreTradeGate,
        permissions: Permissions,
        audit: AuditLog,
        rejected: Event,
        tell: Tell,
        details_lookup: DetailsLookup | None = None,
    ) -> None:
        self.readonly = readonly
        self.pre_trade = pre_trade
        self.details_lookup = details_lookup
        self._permissions = permissions
        self._audit = audit
        self._rejected = rejected
        self._tell = tell

    def who(self, strategy_symbol: Any, actor: Any, order: Any, contract: Any) -> tuple[str, str]:
        """The strategy and actor of a command, or a refusal when they are not names."""
        if strategy_symbol is None or strategy_symbol == "":
            strategy_symbol = MANUAL
        if not isinstance(strategy_symbol, str):
            self.refuse(
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
            self.refuse(
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
            self.refuse(
                order,
                contract,
                strategy_symbol,
                "api",
                "place",
                "order",
                [f"actor {actor!r} is not a name"],
            )
        return strategy_symbol, actor or strategy_symbol

    def admit(
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
            self.refuse(order, contract, strategy, actor, action, subject or "order", problems)
        contract = self.qualified(contract)
        subject = subject or describe_order(contract, order)
        problems, decision = self._problems(
            contract, order, strategy, actor, replaces=replaces, flatten=flatten
        )
        if problems:
            self.refuse(order, contract, strategy, actor, action, subject, problems)
        return contract, decision, subject

    def verdict(
        self,
        contract: Contract,
        order: Order,
        strategy: str,
        actor: str,
        details: ContractDetails | None = None,
    ) -> list[str]:
        """Every reason ``order`` would be refused if placed now, judged on a canonical
        copy; nothing is sent, recorded or counted (see TradeManager.verdict)."""
        probe = copy.copy(order) if isinstance(order, Order) else order
        problems = canonicalize_order(probe)
        if not isinstance(contract, Contract):
            problems.append(f"not a contract: {type(contract).__name__}")
        if problems:
            return problems
        contract = self.qualified(contract)
        problems = self._order_problems(contract, probe, strategy, actor, details)
        if problems:
            return problems
        decision = self.pre_trade.check(
            OrderIntent(strategy, actor, contract, probe, None, preview=True)
        )
        return [] if decision.approved else list(decision.reasons)

    def at_wire(self, intent: OrderIntent, decision: PreTradeDecision) -> str | None:
        """The gate's last word as the frame is written (a gate without one approves)."""
        last_word = getattr(self.pre_trade, "at_wire", None)
        return last_word(intent, decision) if last_word is not None else None

    def qualified(self, contract: Contract) -> Contract:
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

    def check_trade(self, trade: Any, action: str, order: Any = None) -> None:
        """Refuse a command on something that is not an ib_async ``Trade``."""
        if not isinstance(trade, Trade):
            self.refuse(
                order,
                None,
                MANUAL,
                "api",
                action,
                f"{action} order",
                [f"not an order of this session: {type(trade).__name__}"],
            )

    def refuse(
        self,
        order: Any,
        contract: Any,
        strategy: str,
        actor: str,
        action: str,
        subject: str,
        reasons: Sequence[str],
    ) -> NoReturn:
        """Audit, publish and tell the strategy a refusal, then raise :class:`OrderRefused`."""
        text = "; ".join(reasons)
        # Refusals also come for malformed input: read it defensively.
        order_id = getattr(order, "orderId", 0)
        order_id = order_id if isinstance(order_id, int) and not isinstance(order_id, bool) else 0
        symbol = getattr(contract, "symbol", "")
        symbol = symbol if isinstance(symbol, str) else ""
        log.warning("%s refused: %s: %s", action, subject, text)
        self._audit.record(
            actor,
            action,
            subject,
            f"refused: {text}",
            order_id=order_id or None,
            strategy=strategy,
        )
        self._rejected.emit(OrderRejected(order_id, strategy, symbol, 0, text, tuple(reasons)))
        self._tell(
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
            problems += self._permissions(strategy, contract, order)
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
