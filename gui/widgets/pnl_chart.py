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
* A crosshair shows the time and the value under the cursor; the readout above the
  plot reads the account and each shown strategy at that time (latest values when not
  hovering), in monospace cells that wrap into as many columns as the width allows.
* Sized for a narrow dock (~440 px): the time axis always reads as clock time, a fresh
  session opens on at least :data:`MIN_SPAN_S`, and the legend sits below the plot,
  wraps, and lists only the lines the check boxes show (a line switched off by clicking
  its legend entry stays listed, struck through, so it can be clicked back on).
"""

from __future__ import annotations

import html
import math
from collections import OrderedDict
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from pyqtgraph.graphicsItems.DateAxisItem import (
    HOUR_SPACING,
    MINUTE_SPACING,
    SECOND_SPACING,
    TickSpec,
    ZoomLevel,
    makeSStepper,
)
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QFontMetrics
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from core.events import AccountValuesChanged, PnLChanged
from gui import theme
from gui.models.formatting import PLACEHOLDER, number

if TYPE_CHECKING:
    from core.session import ConsoleSession

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
#: Legend samples: the line styles drawn as box-drawing glyphs (one monospace label).
KIND_GLYPHS = {"total": "──", "realized": "╌╌", "unrealized": "┈┈"}
RESOLUTION_S = 1.0
FRAME_MS = 16
#: Auto-range never shows less than this: a fresh session opens on the five minutes that
#: end at its first point, not on a few seconds stretched across the dock. The axis never
#: runs ahead of the data (five empty minutes of future read as a frozen chart).
MIN_SPAN_S = 300.0
#: Zooming in stops at one minute: points are a second apart, there is nothing finer.
MIN_ZOOM_S = 60.0
#: Readout names longer than this are elided (the legend below shows them whole).
NAME_CHARS = 12
CURRENCY = "USD"

# Clock-only zoom levels. pyqtgraph's defaults show "29.500" (seconds.millis) for short
# spans and "Tue 14" at midnight; in a P&L dock both read like amounts.
_SECONDS = ZoomLevel(
    [TickSpec(SECOND_SPACING, makeSStepper(SECOND_SPACING), "%H:%M:%S", [1, 2, 5, 10, 15, 30])],
    "99:99:99",
)
_MINUTES = ZoomLevel(
    [TickSpec(MINUTE_SPACING, makeSStepper(MINUTE_SPACING), "%H:%M", [1, 2, 5, 10, 15, 30])],
    "99:99",
)
_HOURS = ZoomLevel(
    [TickSpec(HOUR_SPACING, makeSStepper(HOUR_SPACING), "%H:%M", [1, 2, 3, 6, 12])], "99:99"
)


class ClockAxis(pg.DateAxisItem):
    """A time axis of epoch seconds that always reads as local wall-clock time."""

    def __init__(self, orientation: str = "bottom", **kwargs: Any) -> None:
        super().__init__(orientation, **kwargs)
        # Largest tick spacing (s) each level can produce, coarsest first (pyqtgraph's
        # convention): the finest level whose spacing fits the labels wins.
        self.zoomLevels = OrderedDict([(np.inf, _HOURS), (30 * 60, _MINUTES), (30, _SECONDS)])


class _SpanFloor(pg.GraphicsObject):
    """Draws nothing; its x bounds make auto-range show at least ``MIN_SPAN_S``."""

    def __init__(self) -> None:
        super().__init__()
        self.start: float | None = None

    def dataBounds(
        self, ax: int, frac: float = 1.0, orthoRange: Any = None
    ) -> tuple[float, float] | None:
        if ax != 0 or self.start is None:
            return None
        return (self.start - MIN_SPAN_S, self.start)

    def boundingRect(self) -> QRectF:
        return QRectF()

    def paint(self, *args: Any) -> None:
        pass


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
        # Lines switched off by a legend click; the check boxes never switch them on.
        self._user_hidden: set[tuple[str, str]] = set()
        self._legend_keys: list[tuple[str, str]] = []
        self._currency = CURRENCY
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
        self.readout.setFont(theme.number_font())
        # The readout breaks into rows of cells itself (see _layout_readout), so it must
        # not widen the chart; Ignored lets the dock decide the width.
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.readout.setMinimumWidth(0)
        self.legend = QLabel(self)
        self.legend.setObjectName("pnlLegend")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.legend.setProperty("role", "number")
        self.legend.setFont(theme.number_font())
        self.legend.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse)
        self.legend.setToolTip("Click an entry to hide or show its line")
        self.legend.linkActivated.connect(self._on_legend_clicked)
        self.show_strategies = QCheckBox("Strategies", self)
        self.show_strategies.setChecked(True)
        self.show_breakdown = QCheckBox("Realized / unrealized", self)
        self.show_strategies.toggled.connect(self._apply_visibility)
        self.show_breakdown.toggled.connect(self._apply_visibility)

        self.plot_widget = pg.PlotWidget(
            self,
            axisItems={"bottom": ClockAxis(orientation="bottom"), "left": MoneyAxis("left")},
        )
        self.plot_widget.setBackground(theme.SURFACE)
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.setClipToView(True)
        # No grid: translucent grid lines cost more to paint than the four P&L lines
        # together; the zero line and the axis ticks carry the scale.
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        # Room above the top tick label and right of the last time label, which the
        # view would otherwise clip at the widget's edge.
        self.plot.layout.setContentsMargins(1, 8, 8, 1)
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(theme.BORDER))
            axis.setTextPen(pg.mkPen(theme.TEXT_DIM))
            axis.setTickFont(theme.number_font())
        self.set_currency(CURRENCY)
        vb = self.plot.getViewBox()
        vb.setMouseEnabled(x=True, y=False)
        vb.setAutoVisible(y=True)
        vb.setLimits(minXRange=MIN_ZOOM_S)
        self._span_floor = _SpanFloor()
        vb.addItem(self._span_floor)
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
        # A drag or zoom stops the chart following the session; a double-click resumes.
        self.plot_widget.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        self.plot_widget.setToolTip("Drag or scroll to look back; double-click to follow live")

        top = QHBoxLayout()
        top.setContentsMargins(4, 0, 4, 0)
        top.setSpacing(12)
        top.addWidget(self.headline)
        self.title = QLabel("session P&L", self)
        self.title.setProperty("role", "dim")
        # The title gives way first in a narrow dock (hidden in _fit_title, not clipped).
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        top.addWidget(self.title, 1)
        top.addWidget(self.show_strategies)
        top.addWidget(self.show_breakdown)
        self._top = top
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.readout)
        layout.addWidget(self.plot_widget, 1)
        layout.addWidget(self.legend)
        self._update_headline()
        self._update_legend()

    def bind(self, session: ConsoleSession) -> None:
        """Plot ``session``'s P&L as it changes (the day's earlier points come from
        :meth:`load_history`); a new trading day starts a new chart."""
        session.portfolio.pnlChanged += self.on_pnl_changed
        session.account.valuesChanged += self._on_account_values
        session.trading_day.dayStarted += lambda e: self.start_day(e.start)

    def _on_account_values(self, values: AccountValuesChanged) -> None:
        if values.currency:  # the account's currency labels the account's series
            self.set_currency(values.currency)

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

    def start_day(self, start: datetime) -> None:
        """A new trading day from ``start``: drop the earlier points (the store keeps
        them); lines keep their colours and visibility."""
        t0 = start.timestamp()
        for key, series in self._series.items():
            keep = series.x[: series.n] >= t0
            if not keep.all():
                series.replace(series.x[: series.n][keep], series.y[: series.n][keep])
                self._dirty.add(key)
        self.flush()
        self.plot.enableAutoRange()

    def clear(self) -> None:
        """Remove every line."""
        for series in self._series.values():
            self.plot.removeItem(series.item)
        self._series.clear()
        self._dirty.clear()
        self._user_hidden.clear()
        self._colours = {TOTAL: ACCOUNT_COLOUR}
        self._update_span_floor()
        self._update_headline()
        self._update_legend()

    def set_currency(self, code: str) -> None:
        """Label the value axis with the account's currency (default :data:`CURRENCY`)."""
        if getattr(self, "_axis_currency", None) == (code or CURRENCY):
            return  # account updates repeat it several times a second
        self._currency = self._axis_currency = code or CURRENCY
        axis = self.plot.getAxis("left")
        axis.setLabel(self._currency, color=theme.TEXT_FAINT, **{"font-size": "8pt"})
        # A fixed width (ticks plus the rotated label) keeps the plot from shifting
        # sideways whenever the tick labels change length.
        ticks = QFontMetrics(theme.number_font()).horizontalAdvance("-888,888")
        axis.setWidth(ticks + 12 + int(axis.label.boundingRect().height() * 0.8))

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
        self._update_span_floor()
        # While hovering the readout stays at the hovered time; the headline stays live.
        self._update_headline(self._hover_t)

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
        if label is not None:
            self._update_legend()
        return series

    def _update_span_floor(self) -> None:
        firsts = [float(s.x[0]) for s in self._series.values() if s.n]
        start = min(firsts) if firsts else None
        if start != self._span_floor.start:
            self._span_floor.start = start
            self._span_floor.informViewBoundsChanged()

    def _on_item_visibility(self) -> None:
        if self._dirty and not self._timer.isActive():
            self._timer.start()

    def _enabled(self, name: str, kind: str) -> bool:
        """Shown by the check boxes (a legend click may still have switched it off)."""
        if name != TOTAL and not self.show_strategies.isChecked():
            return False
        return kind == "total" or self.show_breakdown.isChecked()

    def _visible(self, name: str, kind: str) -> bool:
        return self._enabled(name, kind) and (name, kind) not in self._user_hidden

    def _apply_visibility_one(self, name: str, kind: str, item: pg.PlotDataItem) -> None:
        item.setVisible(self._visible(name, kind))

    def _apply_visibility(self, *args: Any) -> None:
        for (name, kind), series in self._series.items():
            self._apply_visibility_one(name, kind, series.item)
        if self._dirty:
            self.flush()
        self._update_headline(self._hover_t)
        self._update_legend()

    def legend_entries(self) -> list[tuple[str, bool]]:
        """The legend's (label, line shown) entries, in order."""
        return [
            (str(self._series[key].item.opts["name"]), key not in self._user_hidden)
            for key in self._legend_keys
        ]

    def _update_legend(self) -> None:
        # Only lines the check boxes show are listed: a key for hidden lines is noise in
        # a narrow dock. Account lines first, then strategies in order of appearance.
        order = {n: i for i, n in enumerate(self.names())}
        keys = sorted(
            (k for k, s in self._series.items() if s.item.opts.get("name") and self._enabled(*k)),
            key=lambda k: (order[k[0]], KINDS.index(k[1])),
        )
        self._legend_keys = keys
        entries = []
        for i, key in enumerate(keys):
            series = self._series[key]
            label = html.escape(str(series.item.opts["name"])).replace(" ", "&nbsp;")
            if key in self._user_hidden:
                sample = f"<span style='color:{theme.TEXT_FAINT}'>{KIND_GLYPHS[key[1]]}</span>"
                text = f"<s style='color:{theme.TEXT_FAINT}'>{label}</s>"
            else:
                colour = series.item.opts["pen"].color().name()
                sample = f"<span style='color:{colour}'>{KIND_GLYPHS[key[1]]}</span>"
                text = f"<span style='color:{theme.TEXT_DIM}'>{label}</span>"
            entries.append(f"<a href='{i}' style='text-decoration:none'>{sample}&nbsp;{text}</a>")
        # Plain spaces between entries: the label wraps there, never inside an entry.
        self.legend.setText(" &nbsp; ".join(entries))
        self.legend.setVisible(bool(entries))

    def _on_legend_clicked(self, link: str) -> None:
        key = self._legend_keys[int(link)]
        self._user_hidden ^= {key}
        self._apply_visibility()

    def follow_live(self) -> None:
        """Fit the whole session again and keep following new points."""
        self.plot.enableAutoRange()

    def _on_mouse_clicked(self, event: Any) -> None:
        if event.double():
            self.follow_live()

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
        vb = self.plot.getViewBox()
        (_, x1), (_, y1) = vb.viewRange()
        # Keep the label inside the plot: flip it left of / below the cursor when its
        # size in pixels would run past the right / top edge.
        px, py = vb.viewPixelSize()
        rect = self.cursor_label.boundingRect()
        ax = 1.0 if t + rect.width() * px > x1 else 0.0
        ay = 0.0 if value + rect.height() * py > y1 else 1.0
        self.cursor_label.setAnchor((ax, ay))
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

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._update_headline(self._hover_t)

    def _update_headline(self, t: float | None = None) -> None:
        def value_of(name: str, kind: str) -> float | None:
            s = self._series.get((name, kind))
            if s is None:
                return None
            return s.value_at(t) if t is not None else s.last()

        latest = self.latest(TOTAL, "total")
        self.headline.setText(
            _coloured(latest, number(latest, 2, sign=True))
            if latest is not None
            else "P&amp;L " + PLACEHOLDER
        )
        self.headline.setToolTip(
            f"Account session P&L now (realized + unrealized), {self._currency}"
        )
        self._fit_title()
        # (label, label colour, value): the same cells hovering or not, so the rows do
        # not jump under the mouse; the first cell names the hovered time.
        cells: list[tuple[str, str, float | None]] = []
        if (TOTAL, "total") in self._series:
            total = value_of(TOTAL, "total")
            if t is not None:
                cells.append((f"at {datetime.fromtimestamp(t):%H:%M:%S}", theme.ACCENT, total))
            else:
                cells.append(("Total", theme.TEXT_DIM, total))
        # A line without a value at the hovered time (before its first point) keeps its
        # cell, with a placeholder.
        for kind, title in (("realized", "Realized"), ("unrealized", "Unrealized")):
            if (TOTAL, kind) in self._series:
                cells.append((title, theme.TEXT_DIM, value_of(TOTAL, kind)))
        if self.show_strategies.isChecked():
            for name in self.names():
                if name == TOTAL or (name, "total") not in self._series:
                    continue
                shown = name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"
                cells.append(
                    (f"■ {shown}", self._colours.get(name, theme.TEXT), value_of(name, "total"))
                )
        self.readout.setText(self._layout_readout(cells))

    def _layout_readout(self, cells: list[tuple[str, str, float | None]]) -> str:
        """Monospace cells padded to one width, as many per row as the label fits."""
        if not cells:
            return ""
        values = [number(v, 2, sign=True) for _, _, v in cells]
        # Widths fixed for the hovered label ("at HH:MM:SS") and values up to
        # "+99,999.99", so the column count does not change under the mouse.
        name_w = max(len("at 00:00:00"), *(len(label) for label, _, _ in cells))
        value_w = max(len("+99,999.99"), *(len(v) for v in values))
        cell_w, gap = name_w + 1 + value_w, 3
        char = max(1, self.readout.fontMetrics().horizontalAdvance("0"))
        avail = max(0, self.readout.contentsRect().width()) // char
        cols = max(1, (avail + gap) // (cell_w + gap))
        rows, row = [], []
        for (label, colour, v), text in zip(cells, values, strict=True):
            pad = "&nbsp;" * (name_w - len(label) + 1 + value_w - len(text))
            row.append(
                f"<span style='color:{colour}'>{html.escape(label)}</span>{pad}{_coloured(v, text)}"
            )
            if len(row) == cols:
                rows.append(("&nbsp;" * gap).join(row))
                row = []
        if row:
            rows.append(("&nbsp;" * gap).join(row))
        return "<br>".join(rows)

    def _fit_title(self) -> None:
        # Hidden, not clipped, when the headline and check boxes need the width. Sized
        # for a five-figure headline so the title does not blink as the P&L moves.
        top = self._top
        headline = max(
            self.headline.sizeHint().width(),
            self.headline.fontMetrics().horizontalAdvance("-88,888.88") + 4,
        )
        needed = (
            headline
            + self.title.sizeHint().width()
            + self.show_strategies.sizeHint().width()
            + self.show_breakdown.sizeHint().width()
            + 3 * top.spacing()
            + top.contentsMargins().left()
            + top.contentsMargins().right()
        )
        margins = self.layout().contentsMargins() if self.layout() else None
        avail = self.width() - (margins.left() + margins.right() if margins else 0)
        self.title.setVisible(needed <= avail)


def _coloured(value: float | None, text: str) -> str:
    c = theme.pnl_colour(value)
    return f"<span style='color:{c.name() if c is not None else theme.TEXT}'>{text}</span>"
