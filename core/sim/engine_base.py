"""What the simulated engine's parts share: constants, IB's texts, the position and
account records, the commission schedule and the fill arithmetic.

:class:`~core.sim.engine.Engine` is assembled from parts: order handling and matching
(:mod:`core.sim.engine`), the account book and its queries (:mod:`core.sim.engine_book`),
the pre-trade checks (:mod:`core.sim.engine_checks`) and the saved state
(:mod:`core.sim.engine_state`). :class:`EngineParts` declares, for the type checker and
the reader, what the parts use of each other. The conventions are in
:mod:`core.sim.engine`'s docstring.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from core.sim.market import Market
from core.sim.model import (
    UNSET_DOUBLE,
    EngineEvent,
    Execution,
    Instrument,
    OrderState,
    Position,
    SimOrder,
)
from core.sim.universe import Universe

_STATE_VERSION = 1
_EPS = 1e-9
_EASTERN = ZoneInfo("US/Eastern")

ORDER_TYPES = frozenset({"MKT", "LMT", "STP", "STP LMT", "TRAIL"})
TIFS = frozenset({"DAY", "GTC", "IOC"})
_STOP_TYPES = frozenset({"STP", "STP LMT", "TRAIL"})

# IB's texts for the codes the engine raises or emits.
MSG_NO_SECURITY = "No security definition has been found for the request"
MSG_REJECTED = "Order rejected - reason:"
MSG_TICK = "The price does not conform to the minimum price variation for this contract."
MSG_DUPLICATE = "Duplicate order id"
MSG_MODIFY_FILLED = "Can't modify a filled order"
MSG_CANCELLED = "Order Canceled - reason:"
MSG_UNSUPPORTED_TYPE = "Unsupported order type for this exchange and security type."
MSG_ZERO_SIZE = "The order size cannot be zero."
MSG_MISSING_PARENT = "Missing parent order."
MSG_MODIFY_MISMATCH = "Order being modified does not match original order."

# (initial, maintenance) margin as a fraction of market value / notional.
_MARGIN_RATES = {"STK": (0.50, 0.25), "FUT": (0.06, 0.05), "CASH": (0.03, 0.03)}

# Allowed order-state transitions. Staying in a state is allowed (a partial fill, a
# modification); done states are terminal.
_TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    OrderState.PENDING_SUBMIT: frozenset(
        {
            OrderState.PENDING_SUBMIT,
            OrderState.PRE_SUBMITTED,
            OrderState.SUBMITTED,
            OrderState.CANCELLED,
            OrderState.FILLED,
        }
    ),
    OrderState.PRE_SUBMITTED: frozenset(
        {
            OrderState.PRE_SUBMITTED,
            OrderState.SUBMITTED,
            OrderState.CANCELLED,
            OrderState.FILLED,
        }
    ),
    OrderState.SUBMITTED: frozenset(
        {
            OrderState.SUBMITTED,
            OrderState.PRE_SUBMITTED,
            OrderState.CANCELLED,
            OrderState.FILLED,
        }
    ),
    OrderState.INACTIVE: frozenset(
        {OrderState.INACTIVE, OrderState.PRE_SUBMITTED, OrderState.SUBMITTED, OrderState.CANCELLED}
    ),
    OrderState.PENDING_CANCEL: frozenset({OrderState.CANCELLED, OrderState.FILLED}),
    OrderState.CANCELLED: frozenset(),
    OrderState.FILLED: frozenset(),
    OrderState.API_CANCELLED: frozenset(),
}


def commission_for(inst: Instrument, quantity: float, value: float) -> float:
    """The commission of a whole order of ``quantity`` worth ``value`` USD (see module doc)."""
    if quantity <= 0:
        return 0.0
    if inst.sec_type == "FUT":
        fee = 2.25 * quantity
    elif inst.sec_type == "CASH":
        fee = max(0.00002 * value, 2.0)
    else:
        fee = min(max(0.005 * quantity, 1.0), 0.01 * value)
    return round(fee, 6)


def _price(value: float | None) -> float | None:
    """A price field as the wire side may pass it: None, UNSET_DOUBLE or NaN mean unset."""
    if value is None or math.isnan(value) or value >= UNSET_DOUBLE / 2:
        return None
    return float(value)


def _on_grid(price: float, tick: float) -> bool:
    n = price / tick
    return abs(n - round(n)) < 1e-6


def _sign(x: float) -> int:
    return 1 if x > _EPS else -1 if x < -_EPS else 0


@dataclass(slots=True)
class _Pos:
    """One account's position in one instrument (see the module doc for the conventions)."""

    qty: float = 0.0
    avg_cost: float = 0.0  # per unit, with multiplier and opening commissions (IB's)
    avg_price: float = 0.0  # per unit, with multiplier, without commissions
    realized: float = 0.0  # today's realized P&L, net of commissions
    sod_value: float = 0.0  # start-of-day market value, for daily P&L
    day_flow: float = 0.0  # today's cash flow of its trades: -sum(qty*price*mult) - commissions


@dataclass(slots=True)
class _Account:
    cash: float
    realized: float = 0.0
    sod_net_liq: float = 0.0


def _apply_fill(
    pos: _Pos, signed: float, unit: float, commission: float
) -> tuple[float | None, float]:
    """Apply a fill of ``signed`` units at ``unit`` (price * multiplier) to ``pos``.

    Returns (realized P&L net of commission, or None for an opening fill; gross P&L of
    the closed part against the commission-free average price, for futures cash).
    """
    q0 = pos.qty
    if _sign(q0) == 0 or _sign(q0) == _sign(signed):
        new = q0 + signed
        pos.avg_cost = (abs(q0) * pos.avg_cost + abs(signed) * unit + commission) / abs(new)
        pos.avg_price = (abs(q0) * pos.avg_price + abs(signed) * unit) / abs(new)
        pos.qty = new
        return None, 0.0
    closed = min(abs(signed), abs(q0))
    direction = _sign(q0)
    close_commission = commission * closed / abs(signed)
    realized = closed * (unit - pos.avg_cost) * direction - close_commission
    settled = closed * (unit - pos.avg_price) * direction
    new = q0 + signed
    if abs(new) <= _EPS:
        pos.qty, pos.avg_cost, pos.avg_price = 0.0, 0.0, 0.0
    elif _sign(new) == direction:
        pos.qty = new
    else:
        # Flipped: the rest opens at the fill price, carrying its share of the commission.
        opened = abs(new)
        pos.qty = new
        pos.avg_cost = unit + (commission - close_commission) / opened
        pos.avg_price = unit
    pos.realized += realized
    return realized, settled


class EngineParts:
    """The engine's state as its parts see it (declarations only; :class:`Engine` sets it)."""

    universe: Universe
    market: Market
    accounts: list[str]
    initial_cash: float
    enforce_trading_hours: bool
    fill_delay_s: float
    _clock: Callable[[], float]
    _accounts: dict[str, _Account]
    _positions: dict[tuple[str, int], _Pos]
    _orders: dict[tuple[int, int], SimOrder]
    _completed: list[tuple[int, int]]
    _held: set[tuple[int, int]]
    _commission_paid: dict[tuple[int, int], float]
    _executions: list[Execution]
    _next_perm_id: int
    _exec_seq: int
    _reject_next: tuple[int, str] | None
    _consumed: dict[tuple[int, str], tuple[int, float]]
    _day: str
    _rates_snapshot: tuple[float, dict[str, float]] | None

    if TYPE_CHECKING:

        def __init__(
            self,
            universe: Universe,
            market: Market,
            accounts: list[str],
            *,
            initial_cash: float = 1_000_000.0,
            clock: Callable[[], float] = ...,
            enforce_trading_hours: bool = False,
        ) -> None: ...

        def open_orders(self, client_id: int | None = None) -> list[SimOrder]: ...
        def completed_orders(self) -> list[SimOrder]: ...
        def position(self, account: str, con_id: int) -> Position: ...
        def _inst(self, con_id: int) -> Instrument: ...
        def _net_liq(self, account: str) -> float: ...
        def _margins(
            self, account: str, extra: tuple[int, float, float] | None = None
        ) -> tuple[float, float]: ...
        def _today(self) -> str: ...
        def _roll_day_if_needed(self) -> list[EngineEvent]: ...
