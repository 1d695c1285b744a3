"""Session P&L chart (pyqtgraph): account total, per-strategy lines, realized/unrealized.

* One line per (series, kind): the account (``TOTAL``) and each strategy, each with
  ``total``, ``realized`` and ``unrealized`` kinds. The account total is always shown;
  the strategies' totals and the realized/unrealized breakdown are toggled by the
  check boxes (and by clicking legend entries).
* Resolution is one point per second per series: a second update within the same second
  replaces the last point, so a full day is at most 86,400 points per line.
* Smooth for a full day: every line uses ``setDownsampling(auto=True, mode='peak')`` and
  ``setClipToView(True)`` (peaks survive downsampling, only the visible range is drawn),
  1 px cosmetic pens and no grid (thick antialiased strokes and translucent grid lines
  dominate the paint time otherwise).
* Appending never re-creates items: points go into growable numpy buffers and dirty lines
  get one ``setData`` per frame (a single-shot timer started by the first new point).
* A crosshair shows the time and the value under the cursor; the headline above the
  plot reads each visible line's value at that time (latest values when not hovering).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from core.events import PnLChanged
from gui import theme
from gui.models.formatting import PLACEHOLDER, number

TOTAL = "TOTAL"
KINDS = ("total", "realized", "unrealized")
KIND_STYLES = {
    "total": Qt.PenStyle.SolidLine,
    "realized": Qt.PenStyle.DashLine,
    "unrealized": Qt.PenStyle.DotLine,
}
ACCOUNT_COLOUR = "#e8edf3"
#: The account's realized/unrealized lines get their own hues (dash styles vanish in
#: a dense 1 s line); a strategy's are lighter/darker shades of its colour.
ACCOUNT_BREAKDOWN_COLOURS = {"realized": "#5fb3ff", "unrealized": "#b48cff"}
RESOLUTION_S = 1.0
FRAME_MS = 16


class MoneyAxis(pg.AxisItem):
    """A value axis with thousands separators and no SI prefixes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        decimals = 0 if spacing >= 1 else min(4, max(0, -math.floor(math.log10(spacing))))
        return [f"{v * scale:,.{decimals}f}" for v in values]


class _Series:
    """Growable x/y buffers of one line, plus its plot item."""

    __slots__ = ("item", "n", "x", "y")

    def __init__(self, item: pg.PlotDataItem, capacity: int = 4096) -> None:
        self.item = item
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


class PnLChart(QWidget):
    """The P&L chart.

    Slots: :meth:`on_pnl_changed` (live), :meth:`load_history` (a DataFrame from the
    store), :meth:`append` (one value), :meth:`clear`.
    """

    def __init__(self, parent: QWidget | None = None, *, frame_ms: int = FRAME_MS) -> None:
        super().__init__(parent)
        theme.configure_pyqtgraph()
        self._series: dict[tuple[str, str], _Series] = {}
        self._colours: dict[str, str] = {TOTAL: ACCOUNT_COLOUR}
        self._dirty: set[tuple[str, str]] = set()
        self._hover_t: float | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(frame_ms)
        self._timer.timeout.connect(self.flush)

        self.headline = QLabel(self)
        self.headline.setObjectName("pnlHeadline")
        self.headline.setTextFormat(Qt.TextFormat.RichText)
        self.readout = QLabel(self)
        self.readout.setTextFormat(Qt.TextFormat.RichText)
        self.readout.setProperty("role", "number")
        # Long readouts (many strategies) are clipped rather than widening the chart.
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.readout.setMinimumWidth(0)
        self.show_strategies = QCheckBox("Strategies", self)
        self.show_strategies.setChecked(True)
        self.show_breakdown = QCheckBox("Realized / unrealized", self)
        self.show_strategies.toggled.connect(self._apply_visibility)
        self.show_breakdown.toggled.connect(self._apply_visibility)

        self.plot_widget = pg.PlotWidget(
            self,
            axisItems={
                "bottom": pg.DateAxisItem(orientation="bottom"),
                "left": MoneyAxis(orientation="left"),
            },
        )
        self.plot_widget.setBackground(theme.SURFACE)
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.setClipToView(True)
        # No grid: translucent grid lines cost more to paint than the four P&L lines
        # together; the zero line and the axis ticks carry the scale.
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(theme.BORDER))
            axis.setTextPen(pg.mkPen(theme.TEXT_DIM))
            axis.setTickFont(theme.number_font())
        self.plot.getAxis("left").setWidth(72)
        self.plot.getViewBox().setMouseEnabled(x=True, y=False)
        self.plot.getViewBox().setAutoVisible(y=True)
        self.legend = self.plot.addLegend(
            offset=(10, 8),
            labelTextColor=theme.TEXT,
            brush=pg.mkBrush(21, 27, 35, 200),
            pen=pg.mkPen(theme.BORDER),
            colCount=8,
        )
        zero = pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen(theme.TEXT_FAINT, width=1))
        zero.setZValue(-10)
        self.plot.addItem(zero, ignoreBounds=True)

        cross_pen = pg.mkPen(theme.TEXT_DIM, width=1, style=Qt.PenStyle.DashLine)
        self.v_line = pg.InfiniteLine(angle=90, movable=False, pen=cross_pen)
        self.h_line = pg.InfiniteLine(angle=0, movable=False, pen=cross_pen)
        self.cursor_label = pg.TextItem(
            color=theme.TEXT, fill=pg.mkBrush(31, 40, 51, 230), border=pg.mkPen(theme.BORDER)
        )
        self.cursor_label.setFont(theme.number_font())
        for item in (self.v_line, self.h_line, self.cursor_label):
            item.setZValue(50)
            item.hide()
            self.plot.addItem(item, ignoreBounds=True)
        self._mouse_proxy = pg.SignalProxy(
            self.plot_widget.scene().sigMouseMoved, rateLimit=60, slot=self._on_mouse_moved
        )

        top = QHBoxLayout()
        top.setContentsMargins(4, 0, 4, 0)
        top.setSpacing(14)
        top.addWidget(self.headline)
        title = QLabel("session P&L", self)
        title.setProperty("role", "dim")
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(self.show_strategies)
        top.addWidget(self.show_breakdown)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.readout)
        layout.addWidget(self.plot_widget, 1)
        self._update_headline()

    # ----- data in -------------------------------------------------------------------
    def on_pnl_changed(self, event: PnLChanged) -> None:
        """Append the event's realized, unrealized and total P&L."""
        t = event.time.timestamp()
        name = event.strategy or TOTAL
        self.append(name, "realized", t, event.realized)
        self.append(name, "unrealized", t, event.unrealized)
        self.append(name, "total", t, event.total)

    def append(self, name: str, kind: str, t: float | datetime, value: float) -> None:
        """Append one point (epoch seconds or a datetime) to a line; drawn next frame."""
        if value is None or not math.isfinite(value) or abs(value) >= 1e300:
            return  # IB's placeholders never reach the chart
        if isinstance(t, datetime):
            t = t.timestamp()
        self._get(name, kind).append(float(t), float(value))
        self._dirty.add((name, kind))
        if not self._timer.isActive():
            self._timer.start()

    def load_history(self, frame: Any) -> None:
        """Load a session's history from a pandas DataFrame.

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
                series = self._get(str(name), kind)
                hx, hy = x[ok], y[ok]
                if series.n:
                    live_x, live_y = series.x[: series.n].copy(), series.y[: series.n].copy()
                    keep = hx < math.floor(live_x[0])
                    hx = np.concatenate([hx[keep], live_x])
                    hy = np.concatenate([hy[keep], live_y])
                series.replace(hx, hy)
                self._dirty.add((str(name), kind))
        self.flush()
        self.plot.enableAutoRange()

    def clear(self) -> None:
        """Remove every line."""
        for series in self._series.values():
            self.plot.removeItem(series.item)
            self.legend.removeItem(series.item)
        self._series.clear()
        self._dirty.clear()
        self._colours = {TOTAL: ACCOUNT_COLOUR}
        self._update_headline()

    def flush(self) -> None:
        """Push dirty lines to their plot items now (the frame timer calls this)."""
        self._timer.stop()
        # Hidden lines keep their new points and are pushed when shown: setData costs a
        # bounds scan of the whole day per line.
        pushed = set()
        for key in self._dirty:
            series = self._series.get(key)
            if series is None:
                pushed.add(key)
            elif series.item.isVisible():
                series.item.setData(
                    series.x[: series.n], series.y[: series.n], skipFiniteCheck=True
                )
                pushed.add(key)
        self._dirty -= pushed
        if self._hover_t is None:
            self._update_headline()

    # ----- queries -------------------------------------------------------------------
    def series(self, name: str, kind: str = "total") -> pg.PlotDataItem | None:
        """The plot item of a line (``name`` is a strategy or :data:`TOTAL`)."""
        s = self._series.get((name, kind))
        return s.item if s else None

    def point_count(self, name: str, kind: str = "total") -> int:
        """Points stored for a line."""
        s = self._series.get((name, kind))
        return s.n if s else 0

    def names(self) -> list[str]:
        """Series names: :data:`TOTAL` first, then strategies in order of appearance."""
        seen = dict.fromkeys(n for n, _ in self._series)
        return sorted(seen, key=lambda n: n != TOTAL)

    def latest(self, name: str = TOTAL, kind: str = "total") -> float | None:
        """The latest value of a line."""
        s = self._series.get((name, kind))
        return s.last() if s else None

    # ----- internals -----------------------------------------------------------------
    def _get(self, name: str, kind: str) -> _Series:
        key = (name, kind)
        series = self._series.get(key)
        if series is not None:
            return series
        colour = self._colours.get(name)
        if colour is None:
            colour = theme.SERIES_COLOURS[(len(self._colours) - 1) % len(theme.SERIES_COLOURS)]
            self._colours[name] = colour
        # 1 px cosmetic pens: Qt's raster engine strokes an antialiased 2 px path of a
        # downsampled full day ~30x slower (170 ms vs 5 ms a frame for four lines).
        # The account total stands out by colour (white) and by being drawn on top.
        width = 1
        line_colour = QColor(colour)
        if kind != "total":
            if name == TOTAL:
                line_colour = QColor(ACCOUNT_BREAKDOWN_COLOURS[kind])
            else:
                line_colour = (
                    line_colour.lighter(150) if kind == "realized" else line_colour.darker(150)
                )
        pen = pg.mkPen(line_colour, width=width, style=KIND_STYLES[kind])
        label = None
        if kind == "total":
            label = "Total" if name == TOTAL else name
        elif name == TOTAL:
            label = f"Total {kind}"
        item = pg.PlotDataItem(pen=pen, name=label, skipFiniteCheck=True)
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
        item.setZValue(10 if name == TOTAL else 5)
        self.plot.addItem(item)
        # Shown by a legend click: push the points it missed while hidden.
        item.visibleChanged.connect(self._on_item_visibility)
        series = _Series(item)
        self._series[key] = series
        self._apply_visibility_one(name, kind, item)
        return series

    def _on_item_visibility(self) -> None:
        if self._dirty and not self._timer.isActive():
            self._timer.start()

    def _visible(self, name: str, kind: str) -> bool:
        if name != TOTAL and not self.show_strategies.isChecked():
            return False
        return kind == "total" or self.show_breakdown.isChecked()

    def _apply_visibility_one(self, name: str, kind: str, item: pg.PlotDataItem) -> None:
        item.setVisible(self._visible(name, kind))

    def _apply_visibility(self, *args: Any) -> None:
        for (name, kind), series in self._series.items():
            self._apply_visibility_one(name, kind, series.item)
        if self._dirty:
            self.flush()
        self._update_headline()

    def _on_mouse_moved(self, args: tuple[Any, ...]) -> None:
        pos = args[0]
        vb = self.plot.getViewBox()
        if not self.plot.sceneBoundingRect().contains(pos) or not self._series:
            self._hide_crosshair()
            return
        point = vb.mapSceneToView(pos)
        self.show_crosshair_at(point.x(), point.y())

    def show_crosshair_at(self, t: float, value: float) -> None:
        """Place the crosshair at (time, value) and read every visible line there."""
        self._hover_t = t
        self.v_line.setPos(t)
        self.h_line.setPos(value)
        stamp = datetime.fromtimestamp(t).strftime("%H:%M:%S")
        self.cursor_label.setText(f"{stamp}  {number(value, 2, sign=True)}")
        (x0, x1), (y0, y1) = self.plot.getViewBox().viewRange()
        # Keep the label inside the plot: flip it to the left/below near the edges.
        ax = 1.0 if t > x0 + 0.7 * (x1 - x0) else 0.0
        ay = 0.0 if value < y0 + 0.8 * (y1 - y0) else 1.0
        self.cursor_label.setAnchor((ax, 1.0 - ay))
        self.cursor_label.setPos(QPointF(t, value))
        for item in (self.v_line, self.h_line, self.cursor_label):
            item.show()
        self._update_headline(t)

    def _hide_crosshair(self) -> None:
        if self._hover_t is None:
            return
        self._hover_t = None
        for item in (self.v_line, self.h_line, self.cursor_label):
            item.hide()
        self._update_headline()

    def leaveEvent(self, event: Any) -> None:
        self._hide_crosshair()
        super().leaveEvent(event)

    def _update_headline(self, t: float | None = None) -> None:
        def value_of(name: str, kind: str) -> float | None:
            s = self._series.get((name, kind))
            if s is None:
                return None
            return s.value_at(t) if t is not None else s.last()

        def coloured(v: float | None) -> str:
            c = theme.pnl_colour(v)
            hex_ = c.name() if c is not None else theme.TEXT
            return f"<span style='color:{hex_}'>{number(v, 2, sign=True)}</span>"

        latest = self.latest(TOTAL, "total")
        self.headline.setText(coloured(latest) if latest is not None else "P&amp;L " + PLACEHOLDER)
        self.headline.setToolTip("Account P&L now (realized + unrealized)")
        dim = theme.TEXT_DIM
        parts = []
        if t is not None:
            stamp = f"{datetime.fromtimestamp(t):%H:%M:%S}"
            total = value_of(TOTAL, "total")
            parts.append(f"<span style='color:{theme.ACCENT}'>at {stamp}</span> {coloured(total)}")
        for kind, title in (("realized", "Realized"), ("unrealized", "Unrealized")):
            v = value_of(TOTAL, kind)
            if v is not None:
                parts.append(f"<span style='color:{dim}'>{title}</span> {coloured(v)}")
        if self.show_strategies.isChecked():
            for name in self.names():
                if name == TOTAL:
                    continue
                v = value_of(name, "total")
                if v is not None:
                    c = self._colours.get(name, theme.TEXT)
                    parts.append(f"<span style='color:{c}'>■ {name}</span> {coloured(v)}")
        self.readout.setText("&nbsp;&nbsp; ".join(parts))
