"""The store's daily summaries: one row per strategy and UTC day, per writer.

Owns the ``daily`` library's layout (symbol ``"summary.<writer>"``, indexed by day) and
its one rule: saving a day replaces what was saved for that day. Blocking: the store runs
it on its writer and reader threads. Kept apart from :class:`core.store.Store` so the
summaries' format is one small class's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date
from typing import Any

import pandas as pd

from core.arctic_io import list_symbols, read_or_none
from core.frames import DailySummary, daily_frame

DAILY = "daily"

_COLUMNS = ["strategy", "realized", "unrealized", "daily", "commissions", "fills"]


class DailySummaries:
    """Saves one writer's daily summaries and reads every writer's.

    ``library()`` gives the ``daily`` library; ``check()`` runs before every save (the
    writer's lease).
    """

    def __init__(self, library: Callable[[], Any], writer: str, check: Callable[[], None]) -> None:
        self._library = library
        self._writer = writer
        self._check = check

    def save(self, summaries: list[DailySummary]) -> None:
        """Save ``summaries``; the days they cover replace what was saved for them."""
        if not summaries:
            return
        self._check()
        lib = self._library()
        symbol = f"summary.{self._writer}"
        df = daily_frame(summaries)
        old = read_or_none(lib, symbol)
        if old is None:
            lib.write(symbol, df)
            return
        days = set(df.index)
        merged = pd.concat([old[~old.index.isin(days)], df]).sort_index(kind="stable")
        lib.write(symbol, merged)

    def read(self, start: date | None, end: date | None) -> pd.DataFrame:
        """Every writer's summaries between two days inclusive, indexed by day, with a
        ``writer`` column."""
        lib = self._library()
        frames = []
        for symbol in list_symbols(lib):
            if symbol.startswith("summary."):
                df = lib.read(symbol).data
                df["writer"] = symbol.split(".", 1)[1]
                frames.append(df)
        if not frames:
            return pd.DataFrame(columns=_COLUMNS)
        df = pd.concat(frames).sort_index(kind="stable")
        if start is not None:
            df = df[df.index >= pd.Timestamp(start, tz=UTC)]
        if end is not None:
            df = df[df.index <= pd.Timestamp(end, tz=UTC)]
        return df
