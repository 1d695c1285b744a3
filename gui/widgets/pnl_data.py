"""The P&L chart's points, apart from how they are drawn (no Qt, no pyqtgraph).

:class:`PnLData` keeps one :class:`LineBuffer` per (series, kind) line: the account
(:data:`TOTAL`) and each strategy, each with the :data:`KINDS`. It owns what the chart
must get right about the numbers: one point per second (:data:`RESOLUTION_S`), IB's
placeholders never stored, the store's history merged in front of the live points, a
new trading day dropping the earlier ones, and which lines have points not drawn yet
(``dirty``). :class:`gui.widgets.pnl_chart.PnLChart` draws them, a plot item per line.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np

TOTAL = "TOTAL"
KINDS = ("total", "realized", "unrealized")
RESOLUTION_S = 1.0

#: A line: (series name, kind), the name a strategy or :data:`TOTAL`.
Key = tuple[str, str]


class LineBuffer:
    """Growable x (epoch seconds) / y buffers of one line, one point per second."""

    __slots__ = ("n", "x", "y")

    def __init__(self, capacity: int = 4096) -> None:
        self.x = np.empty(capacity, dtype=np.float64)
        self.y = np.empty(capacity, dtype=np.float64)
        self.n = 0

    def append(self, t: float, v: float) -> None:
        n = self.n
        if n and math.floor(t / RESOLUTION_S) <= math.floor(self.x[n - 1] / RESOLUTION_S):
            self.y[n - 1] = v  # same second (or late): replace, keep one point per second
            return
        if n == len(self.x):
            self._grow(2 * n)
        self.x[n] = t
        self.y[n] = v
        self.n = n + 1

    def replace(self, x: np.ndarray, y: np.ndarray) -> None:
        capacity = max(4096, 1 << int(len(x) * 1.25).bit_length())
        self.x = np.empty(capacity, dtype=np.float64)
        self.y = np.empty(capacity, dtype=np.float64)
        self.x[: len(x)] = x
        self.y[: len(y)] = y
        self.n = len(x)

    def value_at(self, t: float) -> float | None:
        i = int(np.searchsorted(self.x[: self.n], t, side="right")) - 1
        return float(self.y[i]) if i >= 0 else None

    def last(self) -> float | None:
        return float(self.y[self.n - 1]) if self.n else None

    def _grow(self, capacity: int) -> None:
        # New arrays: the views already handed to pyqtgraph stay valid.
        x = np.empty(capacity, dtype=np.float64)
        y = np.empty(capacity, dtype=np.float64)
        x[: self.n] = self.x[: self.n]
        y[: self.n] = self.y[: self.n]
        self.x, self.y = x, y


class PnLData:
    """Every line's points, lines in order of appearance."""

    def __init__(self) -> None:
        self.lines: dict[Key, LineBuffer] = {}
        #: Lines with points their plot items do not show yet.
        self.dirty: set[Key] = set()

    def line(self, name: str, kind: str) -> LineBuffer:
        """The line ``(name, kind)``, made on first use."""
        line = self.lines.get((name, kind))
        if line is None:
            line = self.lines[(name, kind)] = LineBuffer()
        return line

    def append(self, name: str, kind: str, t: float | datetime, value: float) -> bool:
        """Add one point (epoch seconds or a datetime); False when ``value`` is not a
        number (None, NaN, IB's unset placeholder) and nothing was stored."""
        if value is None or not math.isfinite(value) or abs(value) >= 1e300:
            return False  # IB's placeholders never reach the chart
        if isinstance(t, datetime):
            t = t.timestamp()
        self.line(name, kind).append(float(t), float(value))
        self.dirty.add((name, kind))
        return True

    def load_history(self, frame: Any) -> None:
        """Merge a session's history from a pandas DataFrame.

        Columns: ``time`` (or a DatetimeIndex), ``realized``, ``unrealized``, optionally
        ``total`` (else realized + unrealized) and ``strategy`` (None/NaN/"" or "TOTAL"
        for the account). History older than the first live point of each line is put
        in front of it; several rows in one second keep the last.
        """
        import pandas as pd

        df = frame.reset_index() if "time" not in frame.columns else frame
        if "time" not in df.columns:
            df = df.rename(columns={df.columns[0]: "time"})
        times = pd.DatetimeIndex(pd.to_datetime(df["time"], utc=True))
        work = pd.DataFrame(
            {
                "t": times.asi8 / 1e9,
                "name": (
                    df["strategy"].fillna(TOTAL).replace("", TOTAL).astype(str).to_numpy()
                    if "strategy" in df.columns
                    else TOTAL
                ),
                "realized": df["realized"].to_numpy(dtype=float),
                "unrealized": df["unrealized"].to_numpy(dtype=float),
            }
        )
        work["total"] = (
            df["total"].to_numpy(dtype=float)
            if "total" in df.columns
            else work["realized"] + work["unrealized"]
        )
        work["sec"] = np.floor(work["t"] / RESOLUTION_S)
        work = work.sort_values("t", kind="stable").drop_duplicates(["name", "sec"], keep="last")
        for name, group in work.groupby("name", sort=False):
            x = group["t"].to_numpy()
            for kind in KINDS:
                y = group[kind].to_numpy()
                ok = np.isfinite(y) & (np.abs(y) < 1e300)
                line = self.line(str(name), kind)
                hx, hy = x[ok], y[ok]
                if line.n:
                    live_x, live_y = line.x[: line.n].copy(), line.y[: line.n].copy()
                    keep = hx < math.floor(live_x[0])
                    hx = np.concatenate([hx[keep], live_x])
                    hy = np.concatenate([hy[keep], live_y])
                line.replace(hx, hy)
                self.dirty.add((str(name), kind))

    def start_day(self, t0: float) -> None:
        """Drop every point before ``t0`` (epoch seconds): a new trading day."""
        for key, line in self.lines.items():
            keep = line.x[: line.n] >= t0
            if not keep.all():
                line.replace(line.x[: line.n][keep], line.y[: line.n][keep])
                self.dirty.add(key)

    def clear(self) -> None:
        """Forget every line."""
        self.lines.clear()
        self.dirty.clear()

    # ----- queries -------------------------------------------------------------------
    def names(self) -> list[str]:
        """Series names: :data:`TOTAL` first, then strategies in order of appearance."""
        seen = dict.fromkeys(n for n, _ in self.lines)
        return sorted(seen, key=lambda n: n != TOTAL)

    def point_count(self, name: str, kind: str = "total") -> int:
        """Points stored for a line."""
        line = self.lines.get((name, kind))
        return line.n if line else 0

    def value(self, name: str, kind: str = "total", t: float | None = None) -> float | None:
        """A line's value at time ``t`` (its latest when None); None before its first
        point or when there is no such line."""
        line = self.lines.get((name, kind))
        if line is None:
            return None
        return line.value_at(t) if t is not None else line.last()

    def first_time(self) -> float | None:
        """The earliest point of any line (None when there are none)."""
        firsts = [float(line.x[0]) for line in self.lines.values() if line.n]
        return min(firsts) if firsts else None
