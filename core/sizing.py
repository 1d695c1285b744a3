"""Volatility-based position sizing (the ticket's "size by risk" and strategies).

The risk of one unit is ``stop_multiple`` x the volatility in price x the multiplier;
the suggested quantity is the risk budget over that, rounded down to the lot. The budget
is in the account's base currency, the bars' prices in the contract's: :func:`size_in_base`
converts with IB's rate (the exposure book's, :class:`Rates`) and refuses to guess one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from ib_async import Contract

from core.pretrade import num as _num

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BarsSource",
    "PositionSize",
    "Rates",
    "SizingParams",
    "size_by_volatility",
    "size_in_base",
    "volatility_size",
]


class BarsSource(Protocol):
    """Historical bars (core.marketdata.MarketData)."""

    async def historical_bars(
        self,
        contract: Contract,
        duration: str = ...,
        bar_size: str = ...,
        what_to_show: str = ...,
        use_rth: bool = ...,
    ) -> pd.DataFrame: ...


class Rates(Protocol):
    """IB's exchange rates into the base currency (core.exposure.ExposureBook)."""

    @property
    def base_currency(self) -> str: ...

    def rate(self, currency: str) -> float | None: ...


@dataclass(frozen=True, slots=True)
class SizingParams:
    """Per-strategy parameters of volatility-based sizing.

    The risk of one unit is ``stop_multiple`` x the volatility in price x the multiplier;
    the quantity is the budget over that, rounded down to the lot. The budget is
    ``risk_amount``, or ``risk_pct`` % of net liquidation (the smaller when both).
    """

    method: Literal["atr", "stdev"] = "atr"
    risk_amount: float | None = None
    risk_pct: float | None = 0.5
    stop_multiple: float = 2.0
    atr_period: int = 14
    bar_size: str = "1 day"
    duration: str = "3 M"
    what_to_show: str = "TRADES"
    lot_size: float = 1.0
    max_quantity: float | None = None


@dataclass(frozen=True, slots=True)
class PositionSize:
    """A suggested quantity and how it was reached."""

    quantity: float
    budget: float  # in the base currency
    risk_per_unit: float
    volatility: float  # in price units per bar
    method: str
    explanation: str


def size_by_volatility(
    bars: pd.DataFrame,
    params: SizingParams,
    *,
    net_liquidation: float | None = None,
    multiplier: float = 1.0,
    lot_size: float | None = None,
    rate: float = 1.0,
) -> PositionSize:
    """Quantity whose ``stop_multiple``-volatility move loses the risk budget.

    Parameters
    ----------
    bars:
        OHLC bars (columns ``high``, ``low``, ``close``), oldest first.
    params:
        Method, budget and rounding (:class:`SizingParams`).
    net_liquidation:
        Needed when the budget is a percentage.
    multiplier:
        The contract's multiplier.
    lot_size:
        Overrides ``params.lot_size`` (e.g. from the contract's size increment).
    rate:
        Base currency per unit of the contract's currency (IB's ``ExchangeRate``): the
        budget is in the base currency, the bars' prices in the contract's.

    Raises
    ------
    ValueError
        No budget can be set, or the bars are too few or show no volatility.
    """
    from core.marketdata import average_true_range, returns_volatility

    budgets = []
    if params.risk_amount is not None:
        budgets.append(params.risk_amount)
    if params.risk_pct is not None and net_liquidation:
        budgets.append(net_liquidation * params.risk_pct / 100)
    if not budgets:
        raise ValueError(
            "no risk budget: set risk_amount, or risk_pct with a known net liquidation"
        )
    budget = min(budgets)
    if not rate > 0:
        raise ValueError(f"exchange rate {rate!r}: cannot size")
    local = budget / rate  # in the contract's currency, as the volatility is
    if params.method == "atr":
        vol = average_true_range(bars, params.atr_period)
        what = f"ATR({params.atr_period})"
    else:
        vol = returns_volatility(bars) * float(bars["close"].iloc[-1])
        what = "std of returns x last close"
    if not math.isfinite(vol) or vol <= 0:
        raise ValueError(f"volatility is {vol!r}: cannot size")
    per_unit = params.stop_multiple * vol * (multiplier or 1.0)
    lot = lot_size or params.lot_size or 1.0
    qty = math.floor(local / per_unit / lot + 1e-9) * lot
    if params.max_quantity is not None:
        qty = min(qty, math.floor(params.max_quantity / lot) * lot)
    qty = max(qty, 0.0)
    return PositionSize(
        quantity=qty,
        budget=budget,
        risk_per_unit=per_unit,
        volatility=vol,
        method=params.method,
        explanation=(
            f"budget {_num(budget)}"
            + (f" at rate {rate:.6g} = {_num(local)}" if rate != 1.0 else "")
            + f" / ({params.stop_multiple:g} x {what} {vol:.4g} x "
            f"multiplier {multiplier:g}) = {local / per_unit:.2f}, rounded down to "
            f"lots of {lot:g}: {_num(qty)}"
        ),
    )


async def volatility_size(
    market_data: BarsSource,
    contract: Contract,
    params: SizingParams,
    *,
    net_liquidation: float | None = None,
    multiplier: float = 1.0,
    lot_size: float | None = None,
    rate: float = 1.0,
) -> PositionSize:
    """Fetch bars with ``market_data.historical_bars`` and :func:`size_by_volatility`."""
    bars = await market_data.historical_bars(
        contract,
        duration=params.duration,
        bar_size=params.bar_size,
        what_to_show=params.what_to_show,
        use_rth=True,
    )
    return size_by_volatility(
        bars,
        params,
        net_liquidation=net_liquidation,
        multiplier=multiplier,
        lot_size=lot_size,
        rate=rate,
    )


async def size_in_base(
    market_data: BarsSource,
    contract: Contract,
    params: SizingParams,
    rates: Rates,
    *,
    net_liquidation: float | None = None,
    multiplier: float | None = None,
    lot_size: float | None = None,
) -> PositionSize:
    """:func:`volatility_size` with the budget in the base currency, converted at IB's
    rate of ``contract``'s currency; ``multiplier`` defaults to the contract's.

    Raises
    ------
    ValueError
        IB has sent no rate for the contract's currency yet (and see
        :func:`size_by_volatility`).
    """
    mult = multiplier
    if mult is None:
        mult = float(contract.multiplier) if contract.multiplier else 1.0
    rate = rates.rate(contract.currency)
    if rate is None:  # the budget is in the base currency, the prices are not
        raise ValueError(
            f"no exchange rate {contract.currency}→{rates.base_currency} yet: cannot size"
        )
    return await volatility_size(
        market_data,
        contract,
        params,
        net_liquidation=net_liquidation,
        multiplier=mult,
        lot_size=lot_size,
        rate=rate,
    )
