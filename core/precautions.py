"""Precautionary limits: per-order caps that are on out of the box, like TWS's.

TWS ships "precautionary settings" that stop a fat-fingered order before it leaves the
desk: a size limit, a total value limit and a percentage limit from the market. The
console does the same, per security type, whatever the account-level risk limits say
(those are off until someone writes them in the config):

* ``max_order_quantity``: units of the contract (shares, contracts, base currency);
* ``max_order_value``: quantity x price x the contract multiplier, converted from the
  contract's currency into the account's base currency (so one ES contract at 5,900
  counts 295,000, not 5,900; 20,000 USD.JPY at 150 counts 20,000 USD, not 3,000,000);
* ``max_price_pct``: how far a limit or stop price may be from the market, in percent.

Each security type has its own caps (:data:`DEFAULT_PRECAUTIONS`); a type without an
entry uses ``default``, whose quantity cap is divided by the contract's multiplier (a
multiplier-100 contract gets a hundredth of the size). A cap is turned off only by
saying so (``"off"`` in the config): a key left out keeps its default.

They judge only the part of an order that opens or grows a position: closing and the
emergency stop's flattening are never blocked by them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

__all__ = [
    "DEFAULT_KEY",
    "DEFAULT_PRECAUTIONS",
    "OFF",
    "Precaution",
    "Precautions",
]

#: The entry used for security types without their own.
DEFAULT_KEY = "default"
#: What the config says to turn a cap off.
OFF = "off"


@dataclass(frozen=True, slots=True)
class Precaution:
    """The caps of one security type; ``None`` means that cap is off."""

    max_order_quantity: float | None = None
    max_order_value: float | None = None
    max_price_pct: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_order_quantity", "max_order_value", "max_price_pct"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or v <= 0):
                raise ValueError(f"precaution {name}: {v!r} must be a positive number or off")


#: Shipped caps, sized for a single trader's account of about a million: large enough
#: not to get in the way of normal orders, small enough that a slipped digit or a
#: size carried over from another instrument is stopped.
DEFAULT_PRECAUTIONS: Mapping[str, Precaution] = {
    "STK": Precaution(max_order_quantity=2_000, max_order_value=200_000, max_price_pct=5),
    "FUT": Precaution(max_order_quantity=10, max_order_value=1_500_000, max_price_pct=3),
    "CASH": Precaution(max_order_quantity=2_000_000, max_order_value=2_500_000, max_price_pct=2),
    "OPT": Precaution(max_order_quantity=50, max_order_value=100_000, max_price_pct=50),
    "FOP": Precaution(max_order_quantity=20, max_order_value=100_000, max_price_pct=50),
    DEFAULT_KEY: Precaution(max_order_quantity=1_000, max_order_value=200_000, max_price_pct=5),
}


def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:,.4g}"


def _limit(value: float, currency: str, base: str) -> str:
    """A value cap, naming the base currency when the order's is another."""
    return f"{_num(value)} {base}" if currency else _num(value)


_UNITS = {"STK": "shares", "FUT": "contracts", "OPT": "contracts", "FOP": "contracts"}


@dataclass(frozen=True, slots=True)
class Precautions:
    """The precautionary caps of every security type, and the check of one order."""

    by_sec_type: Mapping[str, Precaution] = field(default_factory=lambda: DEFAULT_PRECAUTIONS)

    @classmethod
    def none(cls) -> Precautions:
        """Every cap off (unit tests of other limits; never the shipped default)."""
        return cls({DEFAULT_KEY: Precaution()})

    def for_contract(self, sec_type: str, multiplier: float = 1.0) -> Precaution:
        """The caps that apply to a contract of ``sec_type`` with ``multiplier``."""
        own = self.by_sec_type.get(sec_type)
        if own is not None:
            return own
        fallback = self.by_sec_type.get(DEFAULT_KEY, Precaution())
        qty = fallback.max_order_quantity
        if qty is not None and multiplier > 1:
            qty = max(1.0, math.floor(qty / multiplier))
        return replace(fallback, max_order_quantity=qty)

    def check(
        self,
        *,
        sec_type: str,
        multiplier: float,
        quantity: float,
        price: float | None,
        prices: tuple[float, ...] = (),
        reference: float | None = None,
        symbol: str = "",
        fx: float | None = 1.0,
        currency: str = "",
        base: str = "",
    ) -> list[str]:
        """Every cap the opening ``quantity`` breaks, in words.

        ``price`` values the order (its limit, else the market); ``prices`` are its limit
        and stop prices, compared with ``reference`` (the market's mid, else last).
        ``fx`` converts the value into ``base`` (the caps' currency) when the contract's
        ``currency`` is another one; None: no rate known yet, the value cap refuses.
        """
        cap = self.for_contract(sec_type, multiplier)
        unit = _UNITS.get(sec_type, "units")
        what = f"{symbol} " if symbol else ""
        sec_type = sec_type or "an unknown security type"
        reasons: list[str] = []
        if cap.max_order_quantity is not None and quantity > cap.max_order_quantity + 1e-9:
            reasons.append(
                f"precautionary size {_num(cap.max_order_quantity)} {unit} for {sec_type}: "
                f"this order is {_num(quantity)}"
            )
        if cap.max_order_value is not None:
            if price is None:
                reasons.append(
                    f"precautionary value {_limit(cap.max_order_value, currency, base)} "
                    f"for {sec_type}: no price for {what}yet to value the order"
                )
            elif fx is None:
                reasons.append(
                    f"no exchange rate {currency}→{base} yet: cannot check precautionary "
                    f"value {_limit(cap.max_order_value, currency, base)} for {sec_type}"
                )
            else:
                value = quantity * price * multiplier
                if value * fx > cap.max_order_value + 1e-6:
                    amount = f"{_num(value)} {currency} = {_num(value * fx)} {base}"
                    reasons.append(
                        f"precautionary value {_limit(cap.max_order_value, currency, base)} "
                        f"for {sec_type}: this order is {amount if currency else _num(value)}"
                    )
        if cap.max_price_pct is not None and prices and not reference:
            # As the account's fat-finger band: a price that cannot be compared is refused.
            reasons.append(
                f"no market price for {symbol or 'the contract'}: cannot check the "
                f"precautionary price band {cap.max_price_pct:g}% for {sec_type}"
            )
        elif cap.max_price_pct is not None and prices and reference:
            for p in prices:
                dist = abs(p - reference) / reference * 100
                if dist > cap.max_price_pct + 1e-9:
                    reasons.append(
                        f"precautionary price band {cap.max_price_pct:g}% for {sec_type}: "
                        f"{_num(p) if p >= 100 else f'{p:g}'} is {dist:.1f}% from the market "
                        f"{reference:g}"
                    )
        return reasons

    def describe(self) -> list[tuple[str, Precaution]]:
        """Each security type's caps, the shipped types first in their order (stocks,
        futures, forex, options), then any others, ``default`` last; for the risk panel."""
        known = [k for k in DEFAULT_PRECAUTIONS if k in self.by_sec_type and k != DEFAULT_KEY]
        keys = known + sorted(k for k in self.by_sec_type if k not in known and k != DEFAULT_KEY)
        if DEFAULT_KEY in self.by_sec_type:
            keys.append(DEFAULT_KEY)
        return [(k, self.by_sec_type[k]) for k in keys]
