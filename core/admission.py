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
from core.contracts import describe_contract
from core.events import MANUAL, OrderRejected, TradingState
from core.flatten import FlattenIntent
from core.orders import ORDER_TYPES, canonicalize_order, describe_order, is_unset, validate_order

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
#: Asks IB for a contract's details in the background (they are cached for next time).
Prefetch = Callable[[Contract], None]
#: A strategy's own permissions for an order: the problems (core.strategies implements it).
Permissions = Callable[[str, Contract, Order], list[str]]
#: Tells a strategy something through its message queue.
Tell = Callable[[dict[str, Any]], None]


class OrderAdmission:
    """The checks before an order is sent, and the refusal when one fails.

    ``pre_trade`` may be replaced after construction (the RiskManager installs itself).
    ``details_lookup`` gives the cached details of a contract (None: none known, so every
    order but the emergency stop's is refused); ``prefetch`` asks IB for the details of
    a contract refused for want of them. ``account`` gives the account the console
    trades ("" while unknown): every order is stamped with it before it is judged.
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
        prefetch: Prefetch | None = None,
        account: Callable[[], str] | None = None,
    ) -> None:
        self.readonly = readonly
        self.pre_trade = pre_trade
        self.details_lookup = details_lookup
        self._prefetch = prefetch
        self._account = account
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
        sent on, the gate's decision and its description.

        The order is put in its canonical form and stamped with the console's account,
        the contract replaced by IB's qualified one from the cached details; validation
        and the gate then judge exactly that, and every problem is listed at once."""
        problems = canonicalize_order(order)
        if not isinstance(contract, Contract):
            problems.append(f"not a contract: {type(contract).__name__}")
        if self.readonly:
            problems.insert(0, READONLY_REASON)
        if problems:
            self.refuse(order, contract, strategy, actor, action, subject or "order", problems)
        problems = self.stamp_account(order)
        contract, details, unknown = self.canonical_contract(contract, actor)
        if unknown and self._prefetch is not None:
            self._prefetch(contract)  # so that the next attempt finds them
        subject = subject or describe_order(contract, order)
        problems += unknown
        found, decision = self._problems(
            contract,
            order,
            strategy,
            actor,
            details,
            checkable=not unknown,
            replaces=replaces,
            flatten=flatten,
            preview=bool(problems),
        )
        problems += found
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
        copy; nothing is sent, recorded or counted (see TradeManager.verdict).

        Validation's problems and the gate's reasons come together whenever the gate
        can judge the order (an off-tick price still has a value to cap)."""
        probe = copy.copy(order) if isinstance(order, Order) else order
        problems = canonicalize_order(probe)
        if not isinstance(contract, Contract):
            problems.append(f"not a contract: {type(contract).__name__}")
        if problems:
            return problems
        problems = self.stamp_account(probe)
        if details is not None and details.contract is not None:
            unknown: list[str] = []
            if not contract.conId or contract.conId == details.contract.conId:
                contract = self._from_details(contract, details)
            # else validation says the details are another contract's
        else:
            contract, details, unknown = self.canonical_contract(contract, actor)
        problems += unknown
        found, _ = self._problems(
            contract,
            probe,
            strategy,
            actor,
            details,
            checkable=not unknown,
            replaces=None,
            preview=True,
        )
        return problems + found

    def at_wire(self, intent: OrderIntent, decision: PreTradeDecision) -> str | None:
        """The gate's last word as the frame is written (a gate without one approves)."""
        last_word = getattr(self.pre_trade, "at_wire", None)
        return last_word(intent, decision) if last_word is not None else None

    def canonical_contract(
        self, contract: Contract, actor: str
    ) -> tuple[Contract, ContractDetails | None, list[str]]:
        """The contract an order is judged and sent on, its details, and the problem
        when they are not known.

        It is IB's qualified contract from the cached details: its conId, security type
        and multiplier (the value caps need them) and its tick and lot rules
        (validation needs them), whatever the caller filled in. Without details none of
        that can be checked, so the order is refused with how to qualify the contract;
        only the emergency stop's orders go on (a position must always be closable: IB
        qualifies them on arrival).
        """
        details = self.details_lookup(contract) if self.details_lookup is not None else None
        if details is not None and details.contract is not None:
            if not contract.conId or details.contract.conId == contract.conId:
                return self._from_details(contract, details), details, []
            details = None
        if actor == EMERGENCY_ACTOR:
            return contract, None, []
        name = describe_contract(contract).strip() or "(no symbol)"
        sec_type = f" ({contract.secType})" if contract.secType else ""
        reason = (
            f"contract {name}{sec_type} is not qualified (its details are not known): its "
            "tick size, multiplier and lot size cannot be checked; qualify it first (a "
            "strategy: contract = await trades.qualify(contract); the ticket does it when "
            "the symbol is entered)"
        )
        if self._prefetch is not None:
            reason += "; its details were asked of IB, so placing it again shortly may pass"
        return contract, None, [reason]

    @staticmethod
    def _from_details(contract: Contract, details: ContractDetails) -> Contract:
        """IB's contract from ``details``; the caller's routing kept (SMART, or the
        exchange a qualified contract names)."""
        assert details.contract is not None
        qualified = Contract.recreate(details.contract)
        if contract.exchange == "SMART" or (contract.conId and contract.exchange):
            qualified.exchange = contract.exchange
        return qualified

    def stamp_account(self, order: Order) -> list[str]:
        """Stamp the console's account on a canonical ``order`` (one with no account),
        or the problem when it names another: the gate judges the console's account, so
        an order must go to it and nowhere else."""
        account = self._account() if self._account is not None else ""
        given = order.account.strip()
        if not account:
            order.account = given
            return []
        if given and given != account:
            return [
                f"account {given}: this console trades account {account} (its risk "
                "limits and positions are that account's); place the order from a "
                f"console for {given}"
            ]
        order.account = account
        return []

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
        problems = [
            p
            for p in validate_order(contract, order, details)
            # Only the emergency stop gets here without details (canonical_contract):
            # IB qualifies its contract on arrival.
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
        details: ContractDetails | None,
        *,
        checkable: bool,
        replaces: Order | None,
        flatten: FlattenIntent | None = None,
        preview: bool,
    ) -> tuple[list[str], PreTradeDecision]:
        """Validation's problems and the gate's reasons, together.

        The gate judges whenever the order has what it needs (a side, a size, the prices
        its type needs, a known contract): an off-tick price or a missing TIF does not
        hide that the order is also too large. It is asked as a preview (nothing
        counted as sent) when anything else already refuses the order."""
        problems = self._order_problems(contract, order, strategy, actor, details)
        if not checkable or (problems and not _gate_can_judge(order)):
            return problems, PreTradeDecision(False, tuple(problems))
        preview = preview or bool(problems)
        decision = self.pre_trade.check(
            OrderIntent(
                strategy, actor, contract, order, replaces, preview=preview, flatten=flatten
            )
        )
        if not decision.approved:
            problems += decision.reasons or ("refused by the pre-trade check",)
        if problems:
            return problems, PreTradeDecision(False, tuple(problems))
        return [], decision


def _gate_can_judge(order: Order) -> bool:
    """Whether the gate's answer means something for a canonical ``order``: a side, a
    positive size and the prices its type needs (positive: combos aside, the gate
    values orders by them)."""
    if order.action not in ("BUY", "SELL") or order.orderType not in ORDER_TYPES:
        return False
    qty = order.totalQuantity
    if qty is None or is_unset(qty) or not qty > 0:
        return False
    needs_limit, needs_stop = ORDER_TYPES[order.orderType]
    for needed, value in ((needs_limit, order.lmtPrice), (needs_stop, order.auxPrice)):
        if needed and (value is None or is_unset(value) or not value > 0):
            return False
    return True
