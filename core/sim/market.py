"""Seeded prices for the simulated gateway: a top-of-book random walk and historical bars.

Every instrument has its own ``random.Random`` seeded from ``(seed, con_id)``, so its
walk does not depend on which other instruments were stepped, and two markets with the
same seed stepped the same way quote the same prices. A step is one quote update: the
hidden fair price takes a log-normal step sized for about four updates a second over a
6.5-hour day, the bid and ask sit one or two ticks apart around it on the tick grid,
sizes refresh, and sometimes a trade prints at the bid or the ask (moving ``last``,
``volume``, ``high`` and ``low``).

Bars are generated backwards from the current price: the last bar closes at the current
last (or bid, ask, midpoint), and each earlier close takes a seeded step whose random
numbers depend only on the bar's start time, so overlapping requests draw the same shape.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from core.sim.model import Bar, Instrument, Quote
from core.sim.universe import Universe

__all__ = ["MAX_DEPTH_ROWS", "DepthLevel", "Market", "on_tick"]

MAX_DEPTH_ROWS = 10
"""Most depth levels a side the gateway serves (IB serves 5 to 10 by exchange)."""

_STEPS_PER_DAY = 4 * 6.5 * 3600  # about four quote updates a second over a regular session
_RTH_SECONDS = 6.5 * 3600  # a "day" of volatility, for intraday bars
_DAY = 86_400
_MAX_BARS = 100_000  # protects the server from "1 Y of 1 secs"
_WHAT_TO_SHOW_QUOTES = {"MIDPOINT", "BID", "ASK", "BID_ASK"}


def _decimals(tick: float) -> int:
    """How many decimals a price on this tick grid needs (0.25 -> 2, 0.00005 -> 5)."""
    for d in range(10):
        if abs(round(tick, d) - tick) < 1e-12:
            return d
    return 10


def on_tick(price: float, tick: float, mode: str = "nearest") -> float:
    """``price`` moved onto the tick grid ("nearest", "down" or "up"), with clean decimals."""
    n = price / tick
    if mode == "down":
        k = math.floor(n + 1e-9)
    elif mode == "up":
        k = math.ceil(n - 1e-9)
    else:
        k = round(n)
    return round(k * tick, _decimals(tick))


@dataclass(frozen=True, slots=True)
class DepthLevel:
    """One level of the order book: a price on the tick grid and the size shown there."""

    price: float
    size: float


@dataclass(frozen=True, slots=True)
class _Profile:
    """How an instrument's book looks: lot sizes and spreads."""

    tick: float
    sigma_step: float
    quote_lot: float  # displayed sizes are 1..quote_lots of these
    quote_lots: int
    trade_lot: float  # printed trade sizes are 1..trade_lots of these
    trade_lots: int
    wide_spread_p: float  # probability of a two-tick spread


def _profile(inst: Instrument) -> _Profile:
    sigma = inst.daily_volatility / math.sqrt(_STEPS_PER_DAY)
    if inst.sec_type == "FUT":
        return _Profile(inst.min_tick, sigma, 1.0, 60, 1.0, 10, 0.05)
    if inst.sec_type == "CASH":
        return _Profile(inst.min_tick, sigma, 500_000.0, 10, 100_000.0, 5, 0.5)
    # Stocks: 100..2000 displayed, so a few thousand shares fill in several parts.
    return _Profile(inst.min_tick, sigma, 100.0, 20, 100.0, 5, 0.2)


@dataclass(slots=True)
class _Book:
    inst: Instrument
    profile: _Profile
    rng: random.Random
    fair: float
    quote: Quote
    version: int = 0


class Market:
    """Top-of-book quotes and bars for every instrument of a universe.

    ``frozen`` (fault injection "freeze market data"): while True, ``step`` changes
    nothing. ``version(con_id)`` increases whenever a quote changes; the engine uses it
    to let orders share, not repeat, one displayed size.
    """

    def __init__(
        self, universe: Universe, seed: int = 0, clock: Callable[[], float] = time.time
    ) -> None:
        self.universe = universe
        self.seed = seed
        self.frozen = False
        self._clock = clock
        self._books: dict[int, _Book] = {}
        now = clock()
        for inst in universe:
            prof = _profile(inst)
            rng = random.Random(f"sim-market:{seed}:{inst.con_id}")
            price = on_tick(inst.initial_price, prof.tick)
            bid = on_tick(inst.initial_price, prof.tick, "down")
            quote = Quote(
                bid=bid,
                ask=on_tick(bid + prof.tick, prof.tick),
                last=price,
                bid_size=prof.quote_lot * rng.randint(1, prof.quote_lots),
                ask_size=prof.quote_lot * rng.randint(1, prof.quote_lots),
                last_size=0.0,
                volume=0.0,
                high=price,
                low=price,
                open=price,
                close=price,
                time=now,
            )
            self._books[inst.con_id] = _Book(inst, prof, rng, inst.initial_price, quote)

    # --- quotes -------------------------------------------------------------------------

    def quote(self, con_id: int) -> Quote:
        """A copy of the current quote; KeyError for an unknown con_id."""
        return replace(self._books[con_id].quote)

    def version(self, con_id: int) -> int:
        """A counter that changes whenever this instrument's quote changes."""
        return self._books[con_id].version

    def mark(self, con_id: int) -> float:
        """The price positions are valued at: the last trade, or the midpoint if none."""
        q = self._books[con_id].quote
        if q.last > 0:
            return q.last
        return (q.bid + q.ask) / 2

    def depth(self, con_id: int, rows: int) -> tuple[list[DepthLevel], list[DepthLevel]]:
        """The order book, ``rows`` levels a side (1..:data:`MAX_DEPTH_ROWS`): bids best
        first, asks best first.

        Level 0 is the quote itself (its prices and displayed sizes); deeper levels sit
        one tick apart on the grid, away from the touch, so the book moves with the top
        of book. A deeper level's size depends only on its price (a seeded draw growing
        with the distance from the touch), so a level keeps its size while the quote
        moves around it instead of flickering. KeyError for an unknown con_id.
        """
        book = self._books[con_id]
        q, prof = book.quote, book.profile
        n = max(1, min(rows, MAX_DEPTH_ROWS))
        bids = [DepthLevel(q.bid, q.bid_size)]
        asks = [DepthLevel(q.ask, q.ask_size)]
        for k in range(1, n):
            bid = on_tick(q.bid - k * prof.tick, prof.tick)
            if bid > 0:
                bids.append(DepthLevel(bid, self._level_size(book, "B", bid, k)))
            ask = on_tick(q.ask + k * prof.tick, prof.tick)
            asks.append(DepthLevel(ask, self._level_size(book, "A", ask, k)))
        return bids, asks

    def _level_size(self, book: _Book, side: str, price: float, distance: int) -> float:
        rng = random.Random(f"sim-depth:{self.seed}:{book.inst.con_id}:{side}:{price!r}")
        lots = rng.randint(1, book.profile.quote_lots) + distance
        return book.profile.quote_lot * lots

    def step(self, con_ids: Iterable[int] | None = None) -> list[int]:
        """Advance the walk one quote update for ``con_ids`` (default: all).

        Returns the con_ids whose quote changed; unknown ids are ignored.
        """
        if self.frozen:
            return []
        ids = list(self._books) if con_ids is None else list(con_ids)
        changed = []
        now = self._clock()
        for con_id in ids:
            book = self._books.get(con_id)
            if book is not None and self._step_book(book, now):
                changed.append(con_id)
        return changed

    def _step_book(self, book: _Book, now: float) -> bool:
        prof, rng, q = book.profile, book.rng, book.quote
        before = (q.bid, q.ask, q.last, q.bid_size, q.ask_size, q.volume)
        book.fair = max(book.fair * math.exp(prof.sigma_step * rng.gauss(0.0, 1.0)), 3 * prof.tick)
        self._quote_around(book, book.fair, two_ticks=rng.random() < prof.wide_spread_p)
        if rng.random() < 0.6:
            q.bid_size = prof.quote_lot * rng.randint(1, prof.quote_lots)
        if rng.random() < 0.6:
            q.ask_size = prof.quote_lot * rng.randint(1, prof.quote_lots)
        if rng.random() < 0.4:
            price = q.ask if rng.random() < 0.5 else q.bid
            self._print(book, price, prof.trade_lot * rng.randint(1, prof.trade_lots))
        if before == (q.bid, q.ask, q.last, q.bid_size, q.ask_size, q.volume):
            return False
        q.time = now
        book.version += 1
        return True

    @staticmethod
    def _quote_around(book: _Book, fair: float, two_ticks: bool) -> None:
        tick, q = book.profile.tick, book.quote
        if two_ticks:
            mid = on_tick(fair, tick)
            bid = on_tick(mid - tick, tick)
        else:
            bid = on_tick(fair, tick, "down")
        bid = max(bid, tick)
        q.bid = bid
        q.ask = on_tick(bid + (2 if two_ticks else 1) * tick, tick)

    @staticmethod
    def _print(book: _Book, price: float, size: float) -> None:
        q = book.quote
        q.last = price
        q.last_size = size
        q.volume += size
        q.high = max(q.high, price)
        q.low = min(q.low, price)

    def set_price(self, con_id: int, price: float) -> None:
        """Put ``last`` at ``price`` (on the tick grid), bid one tick below and ask one above.

        For tests and scenarios; a trade prints at the price (volume grows by one lot).
        """
        book = self._books[con_id]
        tick = book.profile.tick
        price = max(on_tick(price, tick), 2 * tick)
        book.fair = price
        book.quote.bid = on_tick(price - tick, tick)
        book.quote.ask = on_tick(price + tick, tick)
        self._print(book, price, book.profile.trade_lot)
        book.quote.time = self._clock()
        book.version += 1

    def set_quote(
        self,
        con_id: int,
        *,
        bid: float | None = None,
        ask: float | None = None,
        last: float | None = None,
        bid_size: float | None = None,
        ask_size: float | None = None,
    ) -> None:
        """Set parts of a quote exactly (tests): prices go onto the tick grid, bid < ask."""
        book = self._books[con_id]
        tick, q = book.profile.tick, book.quote
        if bid is not None:
            q.bid = on_tick(bid, tick)
        if ask is not None:
            q.ask = on_tick(ask, tick)
        if q.ask <= q.bid:
            raise ValueError(f"bid {q.bid} must be below ask {q.ask}")
        if bid_size is not None:
            q.bid_size = bid_size
        if ask_size is not None:
            q.ask_size = ask_size
        if last is not None:
            self._print(book, on_tick(last, tick), book.profile.trade_lot)
        book.fair = (q.bid + q.ask) / 2
        q.time = self._clock()
        book.version += 1

    # --- persistence --------------------------------------------------------------------

    def to_state(self) -> dict[str, dict[str, float]]:
        """The quotes, JSON-serialisable, keyed by str(con_id)."""
        out: dict[str, dict[str, float]] = {}
        for con_id, book in self._books.items():
            q = book.quote
            out[str(con_id)] = {
                "bid": q.bid,
                "ask": q.ask,
                "last": q.last,
                "bid_size": q.bid_size,
                "ask_size": q.ask_size,
                "last_size": q.last_size,
                "volume": q.volume,
                "high": q.high,
                "low": q.low,
                "open": q.open,
                "close": q.close,
                "fair": book.fair,
            }
        return out

    def restore(self, state: dict[str, Any]) -> None:
        """Put back quotes saved by ``to_state``; unknown con_ids are skipped.

        Raises ValueError on a malformed entry.
        """
        if not isinstance(state, dict):
            raise ValueError("market state must be a mapping of con_id to quote")
        now = self._clock()
        for key, saved in state.items():
            try:
                book = self._books.get(int(key))
                if book is None:
                    continue
                q = book.quote
                for name in (
                    "bid",
                    "ask",
                    "last",
                    "bid_size",
                    "ask_size",
                    "last_size",
                    "volume",
                    "high",
                    "low",
                    "open",
                    "close",
                ):
                    setattr(q, name, float(saved[name]))
                book.fair = float(saved["fair"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"malformed market state for con_id {key!r}: {exc}") from exc
            q.time = now
            book.version += 1

    # --- historical bars ----------------------------------------------------------------

    def bars(
        self,
        con_id: int,
        end: float,
        duration_s: int,
        bar_size_s: int,
        what_to_show: str = "TRADES",
        use_rth: bool = False,
    ) -> list[Bar]:
        """Historical bars ending at epoch ``end`` and covering ``duration_s`` seconds.

        Intraday bars start on multiples of ``bar_size_s`` and only in trading hours
        (``use_rth``: regular hours); if ``end`` falls in a closed period the window ends
        at the last session instead, as IB's "1 D" on a Saturday gives Friday. Bars of a
        day or more are one per weekday, stamped at local midnight. The last bar's close
        is the current last (MIDPOINT: midpoint, BID: bid, ASK: ask). TRADES bars have
        volume > 0; quote bars carry volume, wap and count of -1, as IB sends them.
        Raises KeyError for an unknown con_id, ValueError for non-positive sizes.
        """
        book = self._books[con_id]
        if duration_s <= 0 or bar_size_s <= 0:
            raise ValueError("duration and bar size must be positive")
        what = what_to_show.upper()
        if bar_size_s >= _DAY:
            times = self._day_slots(book.inst, end, duration_s, bar_size_s)
        else:
            times = self._intraday_slots(con_id, end, duration_s, bar_size_s, use_rth)
        if not times:
            return []
        return self._make_bars(book, times, bar_size_s, what)

    def _intraday_slots(
        self, con_id: int, end: float, duration_s: int, bar: int, use_rth: bool
    ) -> list[int]:
        def open_at(t: int) -> bool:
            return self.universe.is_open(con_id, t, use_rth) or self.universe.is_open(
                con_id, t + bar // 2, use_rth
            )

        last = int(end) // bar * bar
        # Find the last open slot, at most a long weekend back.
        probe, limit = last, last - 4 * _DAY
        while probe > limit and not open_at(probe):
            probe -= bar
        if probe <= limit:
            return []
        times: list[int] = []
        t = probe
        first = probe + bar - duration_s
        while t >= first and len(times) < _MAX_BARS:
            if open_at(t):
                times.append(t)
            t -= bar
        times.reverse()
        return times

    @staticmethod
    def _day_slots(inst: Instrument, end: float, duration_s: int, bar: int) -> list[int]:
        tz = ZoneInfo(inst.time_zone_id)
        end_day = dt.datetime.fromtimestamp(end, tz).date()
        step_days = max(1, bar // _DAY)
        n_days = max(1, math.ceil(duration_s / _DAY))
        times: list[int] = []
        day = end_day
        while (end_day - day).days < n_days and len(times) < _MAX_BARS:
            if step_days > 1 or day.weekday() < 5:
                times.append(int(dt.datetime.combine(day, dt.time(), tz).timestamp()))
            day -= dt.timedelta(days=step_days)
        # At least one bar: "1 D" asked on a Sunday shows Friday.
        while not times:
            if day.weekday() < 5:
                times.append(int(dt.datetime.combine(day, dt.time(), tz).timestamp()))
            day -= dt.timedelta(days=1)
        times.reverse()
        return times

    def _make_bars(self, book: _Book, times: list[int], bar: int, what: str) -> list[Bar]:
        inst, q = book.inst, book.quote
        tick = inst.min_tick
        if what == "BID":
            anchor = q.bid
        elif what == "ASK":
            anchor = q.ask
        elif what in ("MIDPOINT", "BID_ASK"):
            anchor = (q.bid + q.ask) / 2
            tick = tick / 2  # a midpoint may sit between two ticks
        else:
            anchor = q.last if q.last > 0 else (q.bid + q.ask) / 2
        anchor = max(on_tick(anchor, tick), tick)
        if bar >= _DAY:
            sigma = inst.daily_volatility * math.sqrt(bar / _DAY)
            per_bar_volume = self.universe.daily_volume(inst.con_id) * bar / _DAY * 5 / 7
        else:
            sigma = inst.daily_volatility * math.sqrt(bar / _RTH_SECONDS)
            per_bar_volume = self.universe.daily_volume(inst.con_id) * bar / _RTH_SECONDS
        n = len(times)
        draws = [random.Random(f"sim-bars:{self.seed}:{inst.con_id}:{bar}:{t}") for t in times]
        # Closes backwards from the anchor: close[i-1] = close[i] / exp(step of bar i).
        closes = [0.0] * n
        closes[-1] = anchor
        log_price = math.log(anchor)
        for i in range(n - 1, 0, -1):
            log_price -= sigma * draws[i].gauss(0.0, 1.0)
            closes[i - 1] = max(on_tick(math.exp(log_price), tick), tick)
        first_open = math.exp(log_price - sigma * draws[0].gauss(0.0, 1.0))
        lot = 100.0 if inst.sec_type == "STK" else 1.0
        quotes_only = what in _WHAT_TO_SHOW_QUOTES
        out = []
        for i, t in enumerate(times):
            rng = draws[i]
            close = closes[i]
            open_ = closes[i - 1] if i else max(on_tick(first_open, tick), tick)
            hi = max(open_, close) * math.exp(abs(rng.gauss(0.0, 0.5)) * sigma)
            lo = min(open_, close) * math.exp(-abs(rng.gauss(0.0, 0.5)) * sigma)
            high = on_tick(hi, tick, "up")
            low = max(on_tick(lo, tick, "down"), tick)
            low = min(low, open_, close)
            if quotes_only:
                volume, wap, count = -1.0, -1.0, -1
            else:
                volume = max(lot, round(per_bar_volume * rng.lognormvariate(0.0, 0.5)))
                wap = round(min(max((high + low + close) / 3, low), high), 6)
                count = max(1, int(volume / (lot * 3)))
            out.append(Bar(t, open_, high, low, close, float(volume), wap, count))
        return out
