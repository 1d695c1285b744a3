"""The store's journals: one symbol per UTC day and writer, appended in time order.

Owns how a journal library (fills, orders, audit, positions, P&L) is laid out and
touched: the symbol of a day (``"<YYYY-MM-DD>.<writer>"``), appends whose index never
goes back in time (the true time stays in the ``time`` column), and reads of a time
range across every writer's symbols. Runs on the store's threads only (it blocks).
Kept apart from :class:`core.store.Store` so the journals' layout is in one place and
every writer of a journal (the fills ledger, the buffered series, orders and audit)
appends the same way, after the same lease check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd

from core.arctic_io import list_symbols, missing, read_batch, with_retry
from core.events import OrderUpdated
from core.frames import empty_frame, frame_to_records, records_to_frame, to_utc, utc_index


def symbol_writer(symbol: str) -> str:
    """The writer of a journal symbol (``"<day>.<writer>"``)."""
    return symbol.split(".", 1)[1]


class Journals:
    """Appends to and reads of the day-per-symbol journals of one writer's store.

    ``library(name)`` gives an ArcticDB library; ``check()`` runs before every append
    (the writer's lease); ``is_own(writer)`` says whether a writer's journals are this
    console's.
    """

    def __init__(
        self,
        library: Callable[[str], Any],
        writer: str,
        *,
        check: Callable[[], None],
        is_own: Callable[[str], bool],
    ) -> None:
        self.library = library
        self.writer = writer
        self._check = check
        self._is_own = is_own
        # Owned by whichever thread writes the library (fills or the other journals).
        self._last_index: dict[tuple[str, str], np.int64] = {}

    def symbol(self, day: date, writer: str | None = None) -> str:
        """The journal symbol of ``day`` and ``writer`` (default: this console's)."""
        return f"{day.isoformat()}.{writer or self.writer}"

    # -- writes ----------------------------------------------------------------------------

    def append(self, library: str, day: date, df: pd.DataFrame) -> None:
        """Append ``df`` (with a ``time`` column) to this writer's symbol for ``day``.

        Only this process writes this symbol (the lease sees to it), so the versions
        it prunes are its own, and its last index is its own to cache.
        """
        self._check()
        lib = self.library(library)
        symbol = self.symbol(day)
        key = (library, symbol)
        last = self._last_index.get(key)
        if last is None:
            last = np.int64(np.iinfo(np.int64).min)
            try:
                tail = lib.tail(symbol, 1).data
            except Exception as exc:
                if not missing(exc):
                    raise
                tail = None  # its first append
            if tail is not None and len(tail):
                last = np.int64(pd.DatetimeIndex(tail.index)[-1].value)
        times = pd.DatetimeIndex(df["time"]).asi8
        index = np.maximum.accumulate(np.maximum(times, last))
        df = df.set_axis(pd.DatetimeIndex(index.astype("datetime64[ns]")).tz_localize(UTC))
        # Until this append is known to have landed, the cached last index is not ours.
        self._last_index.pop(key, None)
        lib.append(symbol, df)
        self._last_index[key] = np.int64(index[-1])

    def append_records(self, library: str, records: Sequence[Any], cls: type) -> int:
        """Append records (dataclasses with a ``time``) to their days' symbols."""
        if not records:
            return 0
        df = records_to_frame(records, cls)
        days = pd.DatetimeIndex(df["time"]).date
        for day in sorted(set(days)):
            self.append(library, day, df[days == day])
        return len(records)

    # -- reads -----------------------------------------------------------------------------

    def symbols(
        self, library: str, first: date | None, last: date | None
    ) -> list[tuple[date, str]]:
        """Every writer's (day, symbol) of ``library`` between two days inclusive."""
        out = []
        for symbol in list_symbols(self.library(library)):
            try:
                day = date.fromisoformat(symbol.split(".", 1)[0])
            except ValueError:
                continue
            if (first is None or day >= first) and (last is None or day <= last):
                out.append((day, symbol))
        return sorted(out)

    def read(
        self, library: str, start: datetime | None, end: datetime | None, cls: type
    ) -> pd.DataFrame:
        """Every writer's rows with ``start <= time <= end``, indexed by time, with a
        ``writer`` column."""
        lo = to_utc(start) if start is not None else None
        hi = to_utc(end) if end is not None else None
        symbols = self.symbols(
            library, lo.date() if lo is not None else None, hi.date() if hi is not None else None
        )
        if not symbols:
            return empty_frame(cls)
        lib = self.library(library)
        frames = []
        for (_, symbol), item in zip(symbols, with_retry(read_batch, lib, symbols), strict=True):
            frames.append(item.assign(writer=symbol_writer(symbol)))
        df = pd.concat(frames) if len(frames) > 1 else frames[0]
        times = utc_index(df["time"])
        df["time"] = times
        keep = np.ones(len(df), dtype=bool)
        if lo is not None:
            keep &= times >= lo
        if hi is not None:
            keep &= times <= hi
        df = df[keep].set_index("time").sort_index(kind="stable")
        return df

    def last_order_updates(self, library: str, days: int) -> list[OrderUpdated]:
        """Each order's last update in this console's newest ``days`` days of order
        journals, if it was working; ``placed`` filled in (see
        :meth:`core.store.Store.last_order_updates`)."""
        own = [
            (day, symbol)
            for day, symbol in self.symbols(library, None, None)
            if self._is_own(symbol_writer(symbol))
        ]
        newest = sorted({day for day, _ in own})[-days:]
        symbols = [(day, symbol) for day, symbol in own if day in newest]
        if not symbols:
            return []
        frames = with_retry(read_batch, self.library(library), symbols)
        df = pd.concat(frames) if len(frames) > 1 else frames[0]
        df = df.sort_values("time", kind="stable")
        first: dict[tuple[int, int], datetime] = {}
        last: dict[tuple[int, int], OrderUpdated] = {}
        for update in frame_to_records(df, OrderUpdated):
            key = (update.client_id, update.order_id) if update.order_id else (0, -update.perm_id)
            first.setdefault(key, update.placed or update.time)
            last[key] = update
        return [
            dataclasses.replace(u, placed=u.placed or first[key])
            for key, u in last.items()
            if u.is_working
        ]
