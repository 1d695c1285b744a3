"""Flattening orders that may pass HALTED: a typed, single-use authorisation.

HALTED lets nothing through but the emergency stop's own flattening orders. Which
orders those are is not guessed from the actor's name or from object identity: the
stop asks a :class:`FlattenAuthority` for a :class:`FlattenIntent` naming the contract,
the side and the most it may send, and passes it with the order
(``TradeManager.place_order(..., flatten=intent)``). The pre-trade gate approves the
order under HALTED only when the authority issued that intent, it is unused, and the
canonical order matches it (same contract, same side, no larger); approving it spends
the intent and records the order id it was spent on. A strategy that builds a
``FlattenIntent`` itself gets a refusal: the authority never issued it.

The session makes one authority and hands it to both sides: the emergency stop issues,
the risk manager verifies (neither imports the other).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime

from core.events import now_utc

__all__ = ["FlattenAuthority", "FlattenIntent"]

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class FlattenIntent:
    """Permission to send one order that closes (part of) a position under HALTED.

    ``quantity`` is the most the order may be for; ``serial`` identifies the grant.
    """

    con_id: int
    action: str  # BUY or SELL: the side that reduces the position
    quantity: float
    reason: str
    serial: int
    issued: datetime = field(default_factory=now_utc)

    def describe(self) -> str:
        """``flatten #3: SELL up to 100 of 265598 (emergency stop: runaway)``."""
        return (
            f"flatten #{self.serial}: {self.action} up to {self.quantity:g} of "
            f"{self.con_id} ({self.reason})"
        )


class FlattenAuthority:
    """Issues flatten intents and checks them; each is good for one order."""

    def __init__(self) -> None:
        self._serials = itertools.count(1)
        self._open: dict[int, FlattenIntent] = {}
        #: Spent intents: serial -> the order id that used it (audit and tests).
        self.spent: dict[int, int] = {}

    def issue(self, con_id: int, action: str, quantity: float, reason: str) -> FlattenIntent:
        """A new intent for one flattening order of at most ``quantity``."""
        if action not in ("BUY", "SELL"):
            raise ValueError(f"flatten action {action!r}: BUY or SELL")
        if not con_id or quantity <= 0:
            raise ValueError("a flatten intent needs a contract id and a positive quantity")
        intent = FlattenIntent(con_id, action, float(quantity), reason, next(self._serials))
        self._open[intent.serial] = intent
        return intent

    def permits(self, intent: FlattenIntent, con_id: int, action: str, quantity: float) -> bool:
        """True when ``intent`` was issued here, is unused and covers this order."""
        issued = self._open.get(intent.serial)
        return (
            issued is intent
            and con_id == intent.con_id
            and action == intent.action
            and quantity <= intent.quantity + _EPS
        )

    def spend(self, intent: FlattenIntent, order_id: int) -> None:
        """Mark ``intent`` used by ``order_id``: it lets no second order through."""
        if self._open.pop(intent.serial, None) is not None:
            self.spent[intent.serial] = order_id

    def withdraw(self, intent: FlattenIntent) -> None:
        """Forget an intent that was not used (the order was not sent)."""
        self._open.pop(intent.serial, None)
