"""What the emergency stop needs of the rest of the console, as narrow Protocols.

The stop (:mod:`core.emergency`) knows risk only through these, and risk does not know
the stop: :class:`StateControl` (set a scope HALTED, wait for it to be saved),
:class:`StopView` (strategy positions and quotes, read from the exposure book),
:class:`AuditTrail`, :class:`FlattenIssuer` (a typed, single-use
:class:`core.flatten.FlattenIntent` for each flattening order, which the pre-trade gate
checks to let it pass HALTED) and :class:`Breach` (what risk's ``limitBreached`` event
carries). ``core.session.emergency_stop_for`` passes risk's parts in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from ib_async import Contract, ContractDetails

from core.events import TradingState
from core.flatten import FlattenIntent

__all__ = [
    "AuditTrail",
    "Breach",
    "DetailsLookup",
    "FlattenIssuer",
    "StateControl",
    "StopView",
]

#: Contract details (cached) for a contract's trading hours and minimum tick.
DetailsLookup = Callable[[Contract], ContractDetails | None]


class StateControl(Protocol):
    """Sets a scope's trading state and saves it (core.risk.RiskManager)."""

    def set_trading_state(self, scope: str, state: TradingState, reason: str, by: str) -> bool:
        """Change ``scope``'s state; False when it already was."""
        ...

    def flush_state(self) -> Awaitable[None]:
        """Wait until the states are saved."""
        ...


class StopView(Protocol):
    """What the stop reads of the book (core.exposure.ExposureBook)."""

    @property
    def strategy_positions_known(self) -> bool:
        """True once a portfolio feeds strategy positions."""
        ...

    def strategy_positions(self, con_id: int | None = None) -> dict[str, dict[int, float]]:
        """Strategy -> conId -> signed quantity."""
        ...

    def quote(self, con_id: int) -> tuple[float | None, float | None, float | None]:
        """The last known (bid, ask, last)."""
        ...

    def con_id_of(self, contract: Contract) -> int | None:
        """The contract's conId, or the one learnt for its symbol."""
        ...


class AuditTrail(Protocol):
    """Where the stop's actions are recorded (core.audit.AuditLog)."""

    def record(
        self,
        actor: str,
        action: str,
        subject: str,
        result: str,
        *,
        order_id: int | None = None,
        strategy: str | None = None,
    ) -> object:
        """Append one record (what it returns, the stop does not read)."""
        ...


class FlattenIssuer(Protocol):
    """Grants flattening orders their pass through HALTED (core.flatten.FlattenAuthority)."""

    def issue(self, con_id: int, action: str, quantity: float, reason: str) -> FlattenIntent:
        """A single-use intent for one order of at most ``quantity``."""
        ...

    def withdraw(self, intent: FlattenIntent) -> None:
        """Forget an intent whose order was not sent."""
        ...


class Breach(Protocol):
    """A risk-limit breach (core.breach.RiskLimitBreached), as the stop reads it."""

    @property
    def scope(self) -> str: ...

    @property
    def action(self) -> str: ...

    def describe(self) -> str: ...
