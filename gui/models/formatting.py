"""Cell formatters: raw values in, display strings out.

Every formatter has the signature ``fmt(value, row) -> str`` so a :class:`Column` can
use it directly; ``row`` gives access to context such as the contract's tick size
(``row["_decimals"]``) or security type. Missing values (None, NaN, infinities and IB's
"unset" placeholder 1.797e308) render as :data:`PLACEHOLDER`, never as numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from core.orders import is_unset

#: What a missing value looks like in a cell.
PLACEHOLDER = "\N{EN DASH}"
#: Security types whose quantities are whole numbers.
WHOLE_QUANTITY_TYPES = frozenset({"STK", "OPT", "FUT", "FOP", "WAR", "IND", "BOND", "CFD"})

Row = Mapping[str, Any]


def is_missing(value: Any) -> bool:
    """True for None, NaN, infinities and IB's unset-double placeholder (core's one
    definition of "not set", :func:`core.orders.is_unset`)."""
    if value is None:
        return True
    if isinstance(value, float):
        return is_unset(value)
    return False


def clean(value: Any) -> Any:
    """``value``, or None when it is missing (see :func:`is_missing`)."""
    return None if is_missing(value) else value


def decimals_for_tick(tick: float | None, default: int = 2) -> int:
    """Decimals needed to show prices on a ``tick`` grid: 0.01 -> 2, 0.25 -> 2, 0.0001 -> 4."""
    if tick is None or is_missing(tick) or tick <= 0:
        return default
    try:
        exponent = Decimal(repr(float(tick))).normalize().as_tuple().exponent
    except InvalidOperation:
        return default
    if not isinstance(exponent, int):
        return default
    return max(0, min(8, -exponent))


def number(value: Any, decimals: int = 2, *, sign: bool = False) -> str:
    """``1234.5`` -> ``"1,234.50"``; ``sign`` adds ``+`` to positive values."""
    if is_missing(value):
        return PLACEHOLDER
    text = f"{float(value):{'+' if sign else ''},.{decimals}f}"
    if text[0] in "+-" and not text.strip("+-0.,"):
        text = text[1:]  # a value that rounds to zero has no sign: "0.00", not "-0.00"
    return text


def money(value: float | None, currency: str = "USD") -> str:
    """An amount with its currency (``"1,234.50 USD"``), or the placeholder."""
    if is_missing(value):
        return PLACEHOLDER
    return f"{value:,.2f} {currency}"


def fmt_text(value: Any, row: Row | None = None) -> str:
    """Plain text; missing -> empty."""
    if is_missing(value):
        return ""
    return str(value)


def fmt_price(value: Any, row: Row | None = None) -> str:
    """A price with the decimals of the contract's tick (``row["_decimals"]``), else 2."""
    decimals = row.get("_decimals", 2) if row else 2
    return number(value, decimals)


def fmt_quantity(value: Any, row: Row | None = None) -> str:
    """Whole numbers for stocks and futures; up to 4 decimals otherwise (FX, crypto)."""
    if is_missing(value):
        return PLACEHOLDER
    value = float(value)
    sec_type = row.get("sec_type") if row else None
    if sec_type in WHOLE_QUANTITY_TYPES or value.is_integer():
        return number(value, 0)
    return number(value, 4).rstrip("0").rstrip(".")


def fmt_money(value: Any, row: Row | None = None) -> str:
    """Money with 2 decimals and thousands separators."""
    return number(value, 2)


def fmt_pnl(value: Any, row: Row | None = None) -> str:
    """Signed money: ``+1,234.56`` / ``-87.10`` (the sign helps colour-blind readers)."""
    return number(value, 2, sign=True)


def fmt_percent(value: Any, row: Row | None = None) -> str:
    """A percentage already scaled to 100: ``12.3456`` -> ``"12.35%"``."""
    if is_missing(value):
        return PLACEHOLDER
    return number(value, 2) + "%"


def fmt_time(value: Any, row: Row | None = None) -> str:
    """A timestamp as local wall-clock ``HH:MM:SS``."""
    if not isinstance(value, datetime):
        return ""
    local = value.astimezone() if value.tzinfo else value
    return local.strftime("%H:%M:%S")


def fmt_datetime(value: Any, row: Row | None = None) -> str:
    """A timestamp as local ``YYYY-MM-DD HH:MM:SS``."""
    if not isinstance(value, datetime):
        return ""
    local = value.astimezone() if value.tzinfo else value
    return local.strftime("%Y-%m-%d %H:%M:%S")


def sort_value(value: Any) -> Any:
    """The raw value used for sorting: numbers stay numbers, times become epoch seconds."""
    if is_missing(value):
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bool):
        return int(value)
    return value
