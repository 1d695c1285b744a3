"""A simulated-gateway universe with instruments priced in other currencies than USD."""

from __future__ import annotations

import dataclasses

from core.sim.universe import Universe

USDJPY_CON_ID = 15016059


def universe_with_usdjpy() -> Universe:
    """The default universe and USD.JPY (priced in JPY, about 150)."""
    base = Universe.default()
    eur = base.find(symbol="EUR", currency="USD")[0]
    usdjpy = dataclasses.replace(
        eur,
        con_id=USDJPY_CON_ID,
        symbol="USD",
        currency="JPY",
        min_tick=0.005,
        local_symbol="USD.JPY",
        trading_class="USD.JPY",
        long_name="US Dollar",
        initial_price=150.0,
    )
    return Universe([*base.find(), usdjpy])
