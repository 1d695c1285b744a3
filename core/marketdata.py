"""Market data: streaming quotes, snapshots, historical bars, volatility, staleness.

Subscriptions are remembered by contract id, so after a reconnect (ib_async forgets
its tickers when the socket closes) or IB's 1101 "data lost", every one is renewed.
A quote that stops updating for ``stale_after`` seconds is reported stale; risk and
the positions grid use that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from eventkit import Event
from ib_async import IB, Contract, Ticker

from core.connection import Connection
from core.orders import price_or_none

log = logging.getLogger(__name__)


def clean_price(value: Any) -> float | None:
    """A tick's price or size as a float, or None for IB's placeholders: "not set"
    (:func:`core.orders.price_or_none`) and -1, which a tick uses for "no data"."""
    try:
        v = price_or_none(value)
    except (TypeError, ValueError):
        return None
    return None if v == -1 else v


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book for one contract; None where IB has sent nothing (yet)."""

    con_id: int
    symbol: str
    bid: float | None
    ask: float | None
    last: float | None
    bid_size: float | None
    ask_size: float | None
    last_size: float | None
    volume: float | None
    close: float | None
    time: float  # epoch seconds of the last update received
    stale: bool = False

    @property
    def mid(self) -> float | None:
        """Mid price when both sides are there."""
        if self.bid is not None and self.ask is not None and self.bid > 0 and self.ask > 0:
            return (self.bid + self.ask) / 2
        return None

    @property
    def mark(self) -> float | None:
        """The price to value a position at: last, else mid, else the previous close."""
        return (
            self.last
            if self.last is not None
            else (self.mid if self.mid is not None else self.close)
        )


def quote_from_ticker(ticker: Ticker, received: float | None = None) -> Quote:
    """Translate an ib_async ticker into a :class:`Quote` (placeholders become None)."""
    c = ticker.contract
    assert c is not None
    symbol = c.localSymbol if c.secType == "CASH" and c.localSymbol else c.symbol
    return Quote(
        con_id=c.conId,
        symbol=symbol,
        bid=clean_price(ticker.bid),
        ask=clean_price(ticker.ask),
        last=clean_price(ticker.last),
        bid_size=clean_price(ticker.bidSize),
        ask_size=clean_price(ticker.askSize),
        last_size=clean_price(ticker.lastSize),
        volume=clean_price(ticker.volume),
        close=clean_price(ticker.close),
        time=received if received is not None else time.time(),
    )


class MarketData:
    """Streaming quotes for subscribed contracts.

    Events:
        * ``quotesUpdated`` (quotes: list[:class:`Quote`]): one batch per ib_async update
        * ``staleChanged`` (con_id: int, stale: bool)
    """

    def __init__(
        self,
        ib: IB,
        connection: Connection | None = None,
        *,
        stale_after: float = 10.0,
        generic_ticks: str = "",
    ) -> None:
        self.ib = ib
        self.stale_after = stale_after
        self.generic_ticks = generic_ticks
        self.quotesUpdated: Event = Event("quotesUpdated")
        self.staleChanged: Event = Event("staleChanged")
        self._contracts: dict[int, Contract] = {}
        self._quotes: dict[int, Quote] = {}
        self._stale: set[int] = set()
        self._watchdog: asyncio.TimerHandle | None = None
        ib.pendingTickersEvent += self._on_pending_tickers
        if connection is not None:
            connection.connected += self._on_connected
            connection.marketDataLost += self._on_data_lost

    # -- subscriptions ------------------------------------------------------------------

    def subscribe(self, contract: Contract) -> Ticker:
        """Stream quotes for a qualified contract (conId set); idempotent."""
        if not contract.conId:
            raise ValueError(f"subscribe needs a qualified contract (conId), got {contract.symbol}")
        self._contracts[contract.conId] = contract
        ticker = self.ib.ticker(contract)
        if ticker is None:
            ticker = self.ib.reqMktData(contract, self.generic_ticks)
        self._arm_watchdog()
        return ticker

    def unsubscribe(self, contract: Contract) -> None:
        """Stop streaming a contract."""
        c = self._contracts.pop(contract.conId, None)
        if c is not None and self.ib.isConnected() and self.ib.ticker(c) is not None:
            self.ib.cancelMktData(c)
        self._quotes.pop(contract.conId, None)
        self._stale.discard(contract.conId)

    @property
    def subscriptions(self) -> list[Contract]:
        """Contracts streamed now."""
        return list(self._contracts.values())

    def quote(self, con_id: int) -> Quote | None:
        """The latest quote of a subscribed contract."""
        return self._quotes.get(con_id)

    def resubscribe_all(self) -> None:
        """Request every remembered subscription again (after a reconnect or 1101)."""
        for contract in self._contracts.values():
            if self.ib.ticker(contract) is None:
                self.ib.reqMktData(contract, self.generic_ticks)
        log.info("market data: %d subscriptions renewed", len(self._contracts))

    def _on_connected(self, reconnect: bool) -> None:
        if reconnect:
            self.resubscribe_all()

    def _on_data_lost(self) -> None:
        """1101: the gateway forgot every subscription while ib_async still holds the
        tickers, so each is cancelled and asked for again (same ticker, new request)."""
        if not self.ib.isConnected():
            return  # the reconnect's resubscribe_all does it
        for contract in self._contracts.values():
            if self.ib.ticker(contract) is not None:
                self.ib.cancelMktData(contract)
            self.ib.reqMktData(contract, self.generic_ticks)
        log.info("market data: %d subscriptions renewed after 1101", len(self._contracts))

    # -- one-off requests ---------------------------------------------------------------

    async def snapshot(self, contract: Contract, timeout: float = 5.0) -> Quote:
        """One quote now, without a lasting subscription."""
        tickers = await asyncio.wait_for(self.ib.reqTickersAsync(contract), timeout)
        if not tickers:
            raise LookupError(f"no market data for {contract.symbol}")
        return quote_from_ticker(tickers[0])

    async def historical_bars(
        self,
        contract: Contract,
        duration: str = "1 D",
        bar_size: str = "1 min",
        what_to_show: str = "TRADES",
        use_rth: bool = False,
        timeout: float = 30.0,
    ) -> pd.DataFrame:
        """Bars as a DataFrame indexed by time: open, high, low, close, volume, average, count."""
        bars = await self.ib.reqHistoricalDataAsync(
            contract,
            endDateTime="",
            durationStr=duration,
            barSizeSetting=bar_size,
            whatToShow=what_to_show,
            useRTH=use_rth,
            formatDate=2,
            timeout=timeout,
        )
        rows = [
            {
                "time": pd.Timestamp(b.date),
                "open": b.open,
                "high": b.high,
                "low": b.low,
                "close": b.close,
                "volume": float(b.volume),
                "average": b.average,
                "count": b.barCount,
            }
            for b in bars
        ]
        df = pd.DataFrame(
            rows, columns=["time", "open", "high", "low", "close", "volume", "average", "count"]
        )
        return df.set_index("time")

    # -- events -------------------------------------------------------------------------

    def _on_pending_tickers(self, tickers: set[Ticker]) -> None:
        now = time.time()
        batch = []
        for ticker in tickers:
            c = ticker.contract
            if c is None or c.conId not in self._contracts:
                continue
            q = quote_from_ticker(ticker, now)
            self._quotes[c.conId] = q
            batch.append(q)
            if c.conId in self._stale:
                self._stale.discard(c.conId)
                self.staleChanged.emit(c.conId, False)
        if batch:
            self.quotesUpdated.emit(batch)

    def _arm_watchdog(self) -> None:
        if self._watchdog is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._watchdog = loop.call_later(1.0, self._check_stale)

    def _check_stale(self) -> None:
        """Once a second: flag quotes that stopped (a health check, not data polling)."""
        self._watchdog = None
        now = time.time()
        for con_id in self._contracts:
            q = self._quotes.get(con_id)
            last = q.time if q is not None else None
            if last is not None and now - last > self.stale_after and con_id not in self._stale:
                self._stale.add(con_id)
                log.warning(
                    "market data for %s is stale (%.0fs)", q.symbol if q else con_id, now - last
                )
                self.staleChanged.emit(con_id, True)
        if self._contracts:
            self._arm_watchdog()

    def is_stale(self, con_id: int) -> bool:
        """True when the contract's quotes stopped updating."""
        return con_id in self._stale


# -- volatility (used by risk's position sizing) -------------------------------------------


def average_true_range(bars: pd.DataFrame, period: int = 14) -> float:
    """Wilder's ATR of OHLC bars (columns high, low, close), in price units."""
    if len(bars) < 2:
        raise ValueError(f"ATR needs at least 2 bars, got {len(bars)}")
    high, low, close = bars["high"], bars["low"], bars["close"]
    prev = close.shift(1)
    tr = pd.concat([high - low, (high - prev).abs(), (low - prev).abs()], axis=1).max(axis=1)
    tr = tr.iloc[1:]
    return float(tr.ewm(alpha=1 / period, adjust=False).mean().iloc[-1])


def returns_volatility(bars: pd.DataFrame) -> float:
    """Standard deviation of close-to-close log returns, per bar."""
    closes = bars["close"].to_numpy(dtype=float)
    if len(closes) < 3:
        raise ValueError(f"volatility needs at least 3 bars, got {len(closes)}")
    return float(np.diff(np.log(closes)).std(ddof=1))
