"""A demonstration book for the simulated gateway: ``python main.py --demo``.

Two small strategies place real orders through the TradeManager (so everything a trader
sees, from fills to P&L, comes from the normal road): a few market orders that open
positions and a few limit orders that keep working away from the market. It refuses to
run against anything but the embedded simulated gateway.
"""

from __future__ import annotations

import logging

from core.contracts import round_to_tick
from core.order_entry import OrderEntry
from core.orders import create_limit_order, create_market_order
from core.trading import OrderRefused

log = logging.getLogger(__name__)

#: (strategy, symbol, side, quantity)
OPENING_TRADES = (
    ("trend", "AAPL", "BUY", 300),
    ("trend", "NVDA", "BUY", 200),
    ("trend", "ES", "BUY", 2),
    ("meanrev", "TSLA", "SELL", 150),
    ("meanrev", "MSFT", "BUY", 120),
    ("trend", "EUR.USD", "BUY", 100_000),
    ("manual", "SPY", "BUY", 100),
)
#: (strategy, symbol, side, quantity, distance from the touch in %)
RESTING_ORDERS = (
    ("trend", "AMZN", "BUY", 100, -1.5),
    ("meanrev", "JPM", "SELL", 80, 1.2),
    ("manual", "META", "BUY", 50, -2.0),
)


async def place_demo_book(entry: OrderEntry) -> int:
    """Place the demo orders; returns how many were sent."""
    sent = 0
    for strategy, symbol, side, qty in OPENING_TRADES:
        info = await entry.instrument(symbol)
        await entry.wait_quote(info)
        try:
            entry.place(info, create_market_order(side, qty), strategy)
            sent += 1
        except OrderRefused as exc:
            log.warning("demo: %s %s refused: %s", side, symbol, exc)
    for strategy, symbol, side, qty, pct in RESTING_ORDERS:
        info = await entry.instrument(symbol)
        quote = await entry.wait_quote(info)
        ref = quote.mark if quote is not None else None
        if ref is None:
            continue
        price = round_to_tick(ref * (1 + pct / 100), info.min_tick)
        try:
            entry.place(info, create_limit_order(side, qty, price), strategy)
            sent += 1
        except OrderRefused as exc:
            log.warning("demo: %s %s refused: %s", side, symbol, exc)
    log.info("demo: %d orders sent", sent)
    return sent
