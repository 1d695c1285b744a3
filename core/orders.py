"""Orders: constructors, bracket orders, validation and one-line descriptions.

The constructors return ``ib_async`` orders (the seed's vocabulary) with the action
normalised (``"buy"`` -> ``"BUY"``) and TIF ``DAY`` unless told otherwise. They refuse
arguments that could never make an order (an action other than BUY/SELL, a quantity
or price that is not a positive finite number) with an :class:`OrderValidationError`
listing every such problem.

:func:`validate_order` is the full check run before any order reaches IB, however it
was built (the ticket, a strategy, a modification): it knows the contract and, when
given them, the contract details (minimum tick, minimum size, size increment), and
lists *every* problem at once in plain words, so a person fixes them in one go.

IB's placeholder for "not set" in a price (``UNSET_DOUBLE``, 1.7976931348623157e308)
and NaN are treated as missing everywhere here; see :func:`is_unset`.

Bracket orders
--------------
:func:`create_bracket_order` returns a :class:`BracketOrder` of three orders whose ids
are not yet known: an entry limit order and, on the other side, a take-profit limit
and a stop-loss stop. Only the last one has ``transmit=True``: TWS holds the first two
until the third arrives, so the children can never work without their parent (IB's
bracket pattern, as in ``ib_async.IB.bracketOrder``). The children are linked to the
parent by ``parentId``, which needs the parent's order id; the trade manager takes
three ids from the client (``ib.client.getReqId()``), calls
:func:`assign_bracket_ids` with them, and places parent, take-profit, stop-loss in
that order. IB then cancels the remaining child when the other fills.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ib_async import Contract, ContractDetails, Order
from ib_async.util import UNSET_DOUBLE

from core.contracts import describe_contract, format_price, is_on_tick, round_to_tick

__all__ = [
    "ACTIONS",
    "MAX_ORDER_QUANTITY",
    "ORDER_TYPES",
    "TIFS",
    "WHOLE_QUANTITY_SEC_TYPES",
    "BracketOrder",
    "OrderValidationError",
    "assign_bracket_ids",
    "canonicalize_order",
    "create_bracket_order",
    "create_limit_order",
    "create_market_order",
    "create_stop_limit_order",
    "create_stop_order",
    "describe_order",
    "ensure_valid",
    "is_unset",
    "price_or_none",
    "validate_order",
    "valuation_price",
]

ACTIONS = ("BUY", "SELL")
TIFS = ("DAY", "GTC", "IOC", "GTD", "OPG", "FOK")
#: Order types the console knows, and which prices each needs.
ORDER_TYPES: dict[str, tuple[bool, bool]] = {
    # type: (needs a limit price, needs a stop/trigger price in auxPrice)
    "MKT": (False, False),
    "LMT": (True, False),
    "STP": (False, True),
    "STP LMT": (True, True),
    "MIT": (False, True),
    "LIT": (True, True),
    "MOC": (False, False),
    "LOC": (True, False),
    "MTL": (False, False),
    "TRAIL": (False, False),
    "TRAIL LIMIT": (False, False),
    "REL": (False, False),
}
#: No order is ever this large (IB refuses far smaller ones); beyond it a quantity is a typo,
#: and Decimal arithmetic on it (size increments) would fail rather than refuse.
MAX_ORDER_QUANTITY = 1e10
#: Security types traded only in whole units (shares; option and futures contracts).
WHOLE_QUANTITY_SEC_TYPES = frozenset({"STK", "OPT", "FUT", "FOP", "WAR", "IOPT", "CONTFUT"})
_UNIT = {"STK": "shares"}


class OrderValidationError(ValueError):
    """An order has problems; ``problems`` lists every one in plain words."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems) if self.problems else "invalid order")


# --------------------------------------------------------------------------- placeholders


def is_unset(value: float | Decimal | None) -> bool:
    """True for IB's "not set": ``None``, NaN, infinities or ``UNSET_DOUBLE`` (1.797e308)."""
    if value is None:
        return True
    try:
        number = float(value)
    except (TypeError, ValueError):
        return True
    return not math.isfinite(number) or abs(number) >= UNSET_DOUBLE / 2


def price_or_none(value: float | Decimal | None) -> float | None:
    """``value`` as a float, or ``None`` when IB means "not set" (see :func:`is_unset`)."""
    return None if is_unset(value) else float(value)  # type: ignore[arg-type]


def valuation_price(
    order: Order,
    *,
    bid: float | None = None,
    ask: float | None = None,
    mark: float | None = None,
) -> float | None:
    """The price an order is valued at: the one rule for the ticket's notional and the
    risk checks, so the figure the trader reads is the one the limits judge.

    Its limit price when its type has one, else its stop (trigger) price, else the side
    it would trade at (the ask for a BUY, the bid for a SELL), else the mark; None when
    no price is known. A price of 0 counts as none (negative spread prices stay)."""
    needs_limit, needs_stop = ORDER_TYPES.get(order.orderType, (False, False))
    for wanted, value in ((needs_limit, order.lmtPrice), (needs_stop, order.auxPrice)):
        if wanted:
            p = price_or_none(value)
            if p is not None and p != 0:
                return p
    side = ask if order.action == "BUY" else bid
    return side if side is not None else mark


# --------------------------------------------------------------------------- constructors


def _action(action: str, problems: list[str]) -> str:
    text = action.strip().upper() if isinstance(action, str) else ""
    if text not in ACTIONS:
        problems.append(f"action {action!r} is not BUY or SELL")
    return text


def _positive(value: Any, what: str, problems: list[str]) -> float:
    if isinstance(value, bool):  # float(True) is 1.0: a flag is never a size or a price
        problems.append(f"{what} {value!r} is not a number")
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        problems.append(f"{what} {value!r} is not a number")
        return math.nan
    if not math.isfinite(number) or is_unset(number):
        problems.append(f"{what} {value!r} is not a finite number")
    elif number <= 0:
        problems.append(f"{what} {_num(number)} must be positive")
    return number


def _tif(tif: str, problems: list[str]) -> str:
    text = tif.strip().upper() if isinstance(tif, str) else ""
    if text not in TIFS:
        problems.append(f"time in force {tif!r} is not one of {', '.join(TIFS)}")
    return text


def _raise(problems: list[str]) -> None:
    if problems:
        raise OrderValidationError(problems)


def create_market_order(action: str, quantity: float, *, tif: str = "DAY", **fields: Any) -> Order:
    """A market order; ``fields`` sets any other ``ib_async.Order`` field (``outsideRth``...)."""
    problems: list[str] = []
    order = Order(
        action=_action(action, problems),
        totalQuantity=_positive(quantity, "quantity", problems),
        orderType="MKT",
        tif=_tif(tif, problems),
        **fields,
    )
    _raise(problems)
    return order


def create_limit_order(
    action: str, quantity: float, limit_price: float, *, tif: str = "DAY", **fields: Any
) -> Order:
    """A limit order at ``limit_price``."""
    problems: list[str] = []
    order = Order(
        action=_action(action, problems),
        totalQuantity=_positive(quantity, "quantity", problems),
        orderType="LMT",
        lmtPrice=_positive(limit_price, "limit price", problems),
        tif=_tif(tif, problems),
        **fields,
    )
    _raise(problems)
    return order


def create_stop_order(
    action: str, quantity: float, stop_price: float, *, tif: str = "DAY", **fields: Any
) -> Order:
    """A stop order: a market order once the price trades through ``stop_price``."""
    problems: list[str] = []
    order = Order(
        action=_action(action, problems),
        totalQuantity=_positive(quantity, "quantity", problems),
        orderType="STP",
        auxPrice=_positive(stop_price, "stop price", problems),
        tif=_tif(tif, problems),
        **fields,
    )
    _raise(problems)
    return order


def create_stop_limit_order(
    action: str,
    quantity: float,
    stop_price: float,
    limit_price: float,
    *,
    tif: str = "DAY",
    **fields: Any,
) -> Order:
    """A stop-limit order: a limit order at ``limit_price`` once ``stop_price`` trades.

    The stop/limit relation is checked by :func:`validate_order`, not here.
    """
    problems: list[str] = []
    order = Order(
        action=_action(action, problems),
        totalQuantity=_positive(quantity, "quantity", problems),
        orderType="STP LMT",
        auxPrice=_positive(stop_price, "stop price", problems),
        lmtPrice=_positive(limit_price, "limit price", problems),
        tif=_tif(tif, problems),
        **fields,
    )
    _raise(problems)
    return order


@dataclass(frozen=True, slots=True)
class BracketOrder:
    """Entry, take-profit and stop-loss orders; iterate to place them in order.

    See the module docstring for how their ids are assigned.
    """

    parent: Order
    take_profit: Order
    stop_loss: Order

    def __iter__(self) -> Iterator[Order]:
        yield self.parent
        yield self.take_profit
        yield self.stop_loss

    @property
    def orders(self) -> tuple[Order, Order, Order]:
        """The three orders in the order they must be placed."""
        return (self.parent, self.take_profit, self.stop_loss)


def create_bracket_order(
    action: str,
    quantity: float,
    entry_limit_price: float,
    take_profit_price: float,
    stop_loss_price: float,
    *,
    tif: str = "DAY",
    **fields: Any,
) -> BracketOrder:
    """A limit entry with a take-profit limit and a stop-loss stop on the other side.

    For a BUY the take-profit must be above the entry and the stop-loss below it (the
    reverse for a SELL); otherwise an :class:`OrderValidationError` lists why. The
    orders have no ids yet: see :func:`assign_bracket_ids`.
    """
    problems: list[str] = []
    side = _action(action, problems)
    qty = _positive(quantity, "quantity", problems)
    entry = _positive(entry_limit_price, "entry limit price", problems)
    profit = _positive(take_profit_price, "take-profit price", problems)
    loss = _positive(stop_loss_price, "stop-loss price", problems)
    tif_ = _tif(tif, problems)
    if not problems:
        if side == "BUY":
            if profit <= entry:
                problems.append(
                    f"take-profit price {_num(profit)} must be above the entry price "
                    f"{_num(entry)} for a BUY bracket"
                )
            if loss >= entry:
                problems.append(
                    f"stop-loss price {_num(loss)} must be below the entry price "
                    f"{_num(entry)} for a BUY bracket"
                )
        else:
            if profit >= entry:
                problems.append(
                    f"take-profit price {_num(profit)} must be below the entry price "
                    f"{_num(entry)} for a SELL bracket"
                )
            if loss <= entry:
                problems.append(
                    f"stop-loss price {_num(loss)} must be above the entry price "
                    f"{_num(entry)} for a SELL bracket"
                )
    _raise(problems)
    exit_side = "SELL" if side == "BUY" else "BUY"
    parent = Order(
        action=side,
        totalQuantity=qty,
        orderType="LMT",
        lmtPrice=entry,
        tif=tif_,
        transmit=False,
        **fields,
    )
    take_profit = Order(
        action=exit_side,
        totalQuantity=qty,
        orderType="LMT",
        lmtPrice=profit,
        tif=tif_,
        transmit=False,
        **fields,
    )
    stop_loss = Order(
        action=exit_side,
        totalQuantity=qty,
        orderType="STP",
        auxPrice=loss,
        tif=tif_,
        transmit=True,
        **fields,
    )
    return BracketOrder(parent, take_profit, stop_loss)


def assign_bracket_ids(
    bracket: BracketOrder,
    parent_id: int,
    take_profit_id: int | None = None,
    stop_loss_id: int | None = None,
) -> BracketOrder:
    """Give the three orders their ids and link the children to the parent.

    The children's ids default to ``parent_id + 1`` and ``+ 2``, which is what three
    consecutive ``ib.client.getReqId()`` calls return. Modifies the orders in place
    (they are ``ib_async`` orders) and returns the same bracket.
    """
    if parent_id <= 0:
        raise ValueError(f"parent_id: {parent_id} must be a positive order id")
    tp_id = parent_id + 1 if take_profit_id is None else take_profit_id
    sl_id = parent_id + 2 if stop_loss_id is None else stop_loss_id
    if len({parent_id, tp_id, sl_id}) != 3:
        raise ValueError(
            f"bracket order ids must differ (parent {parent_id}, take-profit {tp_id}, "
            f"stop-loss {sl_id})"
        )
    bracket.parent.orderId = parent_id
    bracket.parent.parentId = 0
    bracket.take_profit.orderId = tp_id
    bracket.take_profit.parentId = parent_id
    bracket.stop_loss.orderId = sl_id
    bracket.stop_loss.parentId = parent_id
    return bracket


# --------------------------------------------------------------------------- canonical form

#: Order fields that must be text when set (a number or None there is a caller's mistake).
_TEXT_FIELDS = ("orderRef", "goodTillDate", "account", "ocaGroup")
#: Price-like fields: a real number, or IB's "unset" placeholder.
_PRICE_FIELDS = (
    ("lmtPrice", "limit price"),
    ("auxPrice", "stop price"),
    ("trailingPercent", "trailing percentage"),
)


def _spelling(value: Any) -> str | None:
    """Text as the one spelling IB knows: trimmed, upper case, single spaces."""
    if not isinstance(value, str):
        return None
    return " ".join(value.split()).upper()


def _real(value: Any) -> float | None:
    """A finite real number as float; None for bools, text and other objects."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    try:
        return float(value)
    except (OverflowError, InvalidOperation, ValueError):
        return None


def canonicalize_order(order: Any) -> list[str]:
    """Put ``order`` in the one form that is checked and sent; list what cannot be.

    Every check after this one, and the wire, see the same object in the same spelling:
    the action, order type and time in force trimmed and upper-cased (``" lmt "`` is
    ``LMT``, ``"stp  lmt"`` is ``STP LMT``), the quantity and prices as floats (IB's
    unset placeholder kept). Values of the wrong kind (a bool or text as a quantity, a
    number as an order type) are listed as problems in plain words and the order is left
    untouched: the caller gets a refusal, never an exception from deeper down.
    """
    if not isinstance(order, Order):
        return [f"not an order: {type(order).__name__} (expected an ib_async Order)"]
    problems: list[str] = []
    fixed: dict[str, Any] = {}
    for name, what in (("action", "action"), ("orderType", "order type"), ("tif", "time in force")):
        raw = getattr(order, name)
        text = _spelling(raw if raw is not None else "")
        if text is None:
            problems.append(f"{what} {raw!r} is not text")
        else:
            fixed[name] = text
    qty = _real(order.totalQuantity)
    if order.totalQuantity is None:
        pass  # missing: validation says so
    elif qty is None:
        problems.append(f"quantity {order.totalQuantity!r} is not a number")
    elif not is_unset(qty) and abs(qty) > MAX_ORDER_QUANTITY:
        problems.append(
            f"quantity {_num(qty)} is beyond any order size ({MAX_ORDER_QUANTITY:,.0f})"
        )
    else:
        fixed["totalQuantity"] = qty
    for name, what in _PRICE_FIELDS:
        raw = getattr(order, name)
        if raw is None:
            fixed[name] = UNSET_DOUBLE
            continue
        price = _real(raw)
        if price is None:
            problems.append(f"{what} {raw!r} is not a number")
        else:
            fixed[name] = UNSET_DOUBLE if is_unset(price) else price
    for name in _TEXT_FIELDS:
        raw = getattr(order, name)
        if raw is None:
            fixed[name] = ""
        elif not isinstance(raw, str):
            problems.append(f"{name} {raw!r} is not text")
    for name in ("orderId", "parentId", "clientId", "permId"):
        raw = getattr(order, name)
        if isinstance(raw, bool) or not isinstance(raw, int):
            problems.append(f"{name} {raw!r} is not a whole number")
    if problems:
        return problems
    for name, value in fixed.items():
        setattr(order, name, value)
    return []


# --------------------------------------------------------------------------- validation


def _num(value: float | Decimal) -> str:
    """A number for a message: ``100``, ``0.5``, ``189.505`` (no float noise)."""
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if not d.is_finite():
        return str(value)
    text = format(d.normalize(), "f")
    return text


def _details_number(value: float | None) -> Decimal | None:
    """A positive size or tick from contract details, or None when IB gave none."""
    if value is None or is_unset(value) or value <= 0:
        return None
    return Decimal(str(value))


def _check_quantity(
    contract: Contract, order: Order, details: ContractDetails | None, problems: list[str]
) -> None:
    raw = order.totalQuantity
    if raw is None or is_unset(raw):
        problems.append("quantity is missing")
        return
    qty = Decimal(str(raw))
    if qty <= 0:
        problems.append(f"quantity {_num(qty)} must be positive")
        return
    not_whole = qty != qty.to_integral_value()
    if contract.secType in WHOLE_QUANTITY_SEC_TYPES and not_whole:
        unit = _UNIT.get(contract.secType, "contracts")
        extra = " (fractional shares are not supported)" if contract.secType == "STK" else ""
        problems.append(f"quantity {_num(qty)} is not a whole number of {unit}{extra}")
    if details is None:
        return
    min_size = _details_number(details.minSize)
    if min_size is not None and qty < min_size:
        problems.append(f"quantity {_num(qty)} is below the minimum size {_num(min_size)}")
    increment = _details_number(details.sizeIncrement)
    # An increment of 1 only repeats the whole-number problem already reported.
    repeated = not_whole and increment == 1 and contract.secType in WHOLE_QUANTITY_SEC_TYPES
    if increment is not None and qty % increment != 0 and not repeated:
        below = (qty // increment) * increment
        above = below + increment
        nearest = f"{_num(above)}" if below <= 0 else f"{_num(below)} or {_num(above)}"
        problems.append(
            f"quantity {_num(qty)} is not a multiple of the size increment {_num(increment)} "
            f"(nearest valid: {nearest})"
        )


def _check_price(
    name: str,
    value: float | Decimal | None,
    contract: Contract,
    min_tick: Decimal | None,
    order_type: str,
    problems: list[str],
) -> float | None:
    """Checks one required price; returns it when usable for relation checks."""
    if is_unset(value):
        problems.append(f"{name} is missing (a {order_type} order needs one)")
        return None
    price = float(value)  # type: ignore[arg-type]
    # Combos (BAG) legitimately trade at zero or negative net prices.
    if price <= 0 and contract.secType != "BAG":
        problems.append(f"{name} {_num(price)} must be positive")
        return None
    if min_tick is not None and not is_on_tick(price, min_tick):
        down = round_to_tick(price, min_tick, "down")
        up = round_to_tick(price, min_tick, "up")
        if down <= 0 and contract.secType != "BAG":
            # below the first tick: zero is no price, so only the tick above is valid
            nearest = f"nearest valid price: {format_price(up, min_tick)}"
        else:
            nearest = (
                f"nearest valid prices: {format_price(down, min_tick)} or "
                f"{format_price(up, min_tick)}"
            )
        problems.append(f"{name} {_num(price)} is not on the tick {_num(min_tick)} ({nearest})")
    return price


def validate_order(
    contract: Contract, order: Order, details: ContractDetails | None = None
) -> list[str]:
    """Every problem with ``order`` for ``contract``, in plain words; empty when it is fine.

    The rules:

    * the contract is qualified (``conId`` set), and ``details`` belong to it;
    * the action is BUY or SELL;
    * the quantity is set and positive; whole for stocks (fractional shares are not
      supported), options and futures; with ``details``, at least ``minSize`` and a
      multiple of ``sizeIncrement``;
    * the order type is one the console knows (:data:`ORDER_TYPES`);
    * each price the type needs (``lmtPrice`` for LMT/STP LMT/LIT/LOC, ``auxPrice``
      for STP/STP LMT/MIT/LIT) is set, positive (except for combos) and, with
      ``details``, on the ``minTick`` grid (the message names the nearest valid
      prices); a TRAIL order needs a trailing amount or percentage;
    * a stop-limit's limit is on the far side of its stop: for a BUY the limit is at
      or above the stop, for a SELL at or below. A BUY stop-limit with its limit under
      the stop is triggered only when the market is already above the limit, so it
      rests unfilled: nearly always a mistyped price;
    * the time in force is one of DAY, GTC, IOC, GTD, OPG, FOK, and a GTD order has a
      good-till date.
    """
    order_problems = canonicalize_order(copy.copy(order))
    if order_problems:
        return order_problems  # nothing below can be judged on values of the wrong kind
    order = copy.copy(order)
    canonicalize_order(order)
    problems: list[str] = []
    if contract is not None and not isinstance(contract, Contract):
        return [f"not a contract: {type(contract).__name__} (expected an ib_async Contract)"]
    if contract is None or not getattr(contract, "conId", 0):
        name = describe_contract(contract) if contract is not None else "(none)"
        problems.append(
            f"contract {name} is not qualified (conId 0): look it up before placing an order"
        )
    elif (
        details is not None
        and details.contract is not None
        and details.contract.conId
        and details.contract.conId != contract.conId
    ):
        problems.append(
            f"the contract details are for conId {details.contract.conId}, "
            f"not for the order's contract (conId {contract.conId})"
        )

    if order.action not in ACTIONS:
        problems.append(f"action {order.action!r} is not BUY or SELL")

    _check_quantity(contract, order, details, problems)

    order_type = (order.orderType or "").strip().upper()
    min_tick = _details_number(details.minTick) if details is not None else None
    if order_type not in ORDER_TYPES:
        shown = repr(order.orderType) if order.orderType else "(none)"
        problems.append(f"order type {shown} is unknown (expected one of {', '.join(ORDER_TYPES)})")
    else:
        needs_limit, needs_stop = ORDER_TYPES[order_type]
        limit = stop = None
        if needs_stop:
            label = "stop price" if order_type.startswith("STP") else "trigger price"
            stop = _check_price(label, order.auxPrice, contract, min_tick, order_type, problems)
        if needs_limit:
            limit = _check_price(
                "limit price", order.lmtPrice, contract, min_tick, order_type, problems
            )
        if (
            order_type.startswith("TRAIL")
            and is_unset(order.auxPrice)
            and is_unset(order.trailingPercent)
        ):
            problems.append("trailing amount or percentage is missing (a TRAIL order needs one)")
        if order_type == "STP LMT" and limit is not None and stop is not None:
            if order.action == "BUY" and limit < stop:
                problems.append(
                    f"limit price {_num(limit)} is below the stop price {_num(stop)}: a BUY "
                    "stop-limit triggers above its stop, so this limit would not fill"
                )
            elif order.action == "SELL" and limit > stop:
                problems.append(
                    f"limit price {_num(limit)} is above the stop price {_num(stop)}: a SELL "
                    "stop-limit triggers below its stop, so this limit would not fill"
                )

    tif = (order.tif or "").strip().upper()
    if not tif:
        problems.append(f"time in force is missing (one of {', '.join(TIFS)})")
    elif tif not in TIFS:
        problems.append(f"time in force {order.tif!r} is not one of {', '.join(TIFS)}")
    elif tif == "GTD" and not (order.goodTillDate or "").strip():
        problems.append("a GTD order needs a good-till date (goodTillDate)")
    return problems


def ensure_valid(contract: Contract, order: Order, details: ContractDetails | None = None) -> None:
    """Raise :class:`OrderValidationError` with every problem :func:`validate_order` finds."""
    problems = validate_order(contract, order, details)
    if problems:
        raise OrderValidationError(problems)


# --------------------------------------------------------------------------- description


def describe_order(contract: Contract, order: Order) -> str:
    """One line for logs and the audit: ``BUY 100 AAPL LMT 189.50 DAY``.

    Prices IB leaves unset show as ``?``; the strategy (``orderRef``) and a bracket
    child's parent id are appended when present.
    """

    if not isinstance(order, Order) or canonicalize_order(copy.copy(order)):
        # Called on what validation refuses: describe it as given, never raise.
        fields = ("action", "totalQuantity", "orderType", "lmtPrice", "auxPrice", "tif")
        shown = " ".join(repr(getattr(order, f, None)) for f in fields)
        name = describe_contract(contract) if isinstance(contract, Contract) else repr(contract)
        return f"{shown} {name} (malformed)"
    order = copy.copy(order)
    canonicalize_order(order)

    def price(value: float | Decimal | None) -> str:
        return "?" if is_unset(value) else format_price(float(value))  # type: ignore[arg-type]

    quantity = "?" if is_unset(order.totalQuantity) else _num(order.totalQuantity)
    parts = [order.action or "?", quantity, describe_contract(contract)]
    order_type = (order.orderType or "?").upper()
    parts.append(order_type)
    if order_type in ("STP", "MIT"):
        parts.append(price(order.auxPrice))
    elif order_type in ("STP LMT", "LIT"):
        parts += [price(order.auxPrice), "LMT", price(order.lmtPrice)]
    elif order_type.startswith("TRAIL"):
        if not is_unset(order.trailingPercent):
            parts.append(f"{_num(order.trailingPercent)}%")
        else:
            parts.append(price(order.auxPrice))
        if order_type == "TRAIL LIMIT" and not is_unset(order.lmtPrice):
            parts += ["LMT", price(order.lmtPrice)]
    elif ORDER_TYPES.get(order_type, (False, False))[0]:
        parts.append(price(order.lmtPrice))
    # An empty TIF is not DAY here: validation refuses it, and the line must not say DAY.
    parts.append(order.tif or "(no TIF)")
    if order.tif == "GTD" and order.goodTillDate:
        parts.append(order.goodTillDate)
    if order.outsideRth:
        parts.append("outside RTH")
    if order.parentId:
        parts.append(f"parent #{order.parentId}")
    if order.orderRef:
        parts.append(f"[{order.orderRef}]")
    return " ".join(parts)
