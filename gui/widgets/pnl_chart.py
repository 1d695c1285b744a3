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

Three modules: this one is the dock's widget (headline, readout, check boxes, legend, and
which line shows in what colour); :mod:`gui.widgets.pnl_plot` the pyqtgraph plot (axes,
zero line, crosshair); :mod:`gui.widgets.pnl_data` the points themselves (Qt-free: one
per second, history merged in, a new day trimmed).
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
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
from gui.widgets.pnl_data import KINDS, TOTAL, PnLData
from gui.widgets.pnl_plot import PnLPlot

if TYPE_CHECKING:
    from core.session import ConsoleSession

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


class PnLChart(QWidget):
    """The P&L chart.

    Slots: :meth:`on_pnl_changed` (live), :meth:`load_history` (a DataFrame from the
    store), :meth:`append` (one value), :meth:`clear`.
    """

    def __init__(self, parent: QWidget | None = None, *, frame_ms: int = FRAME_MS) -> None:
        super().__init__(parent)
        theme.configure_pyqtgraph()
        # No callback from the data to the chart: a reference cycle would leave the
        # widget to the cyclic GC, which may delete it in the middle of Qt's events.
        self._data = PnLData()
        self._items: dict[tuple[str, str], pg.PlotDataItem] = {}
        self._colours: dict[str, str] = {TOTAL: ACCOUNT_COLOUR}
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

        self.plot_widget = PnLPlot(self, min_span_s=MIN_SPAN_S, min_zoom_s=MIN_ZOOM_S)
        self.plot = self.plot_widget.getPlotItem()
        self.v_line = self.plot_widget.v_line
        self.h_line = self.plot_widget.h_line
        self.cursor_label = self.plot_widget.cursor_label
        self.set_currency(CURRENCY)
        self._mouse_proxy = pg.SignalProxy(
            self.plot_widget.scene().sigMouseMoved, rateLimit=60, slot=self._on_mouse_moved
        )
        # A drag or zoom stops the chart following the session; a double-click resumes.
        self.plot_widget.scene().sigMouseClicked.connect(self._on_mouse_clicked)

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
        if not self._data.append(name, kind, t, value):
            return
        if (name, kind) not in self._items:
            self._add_line(name, kind)
        if not self._timer.isActive():
            self._timer.start()

    def load_history(self, frame: Any) -> None:
        """Load a session's history from a pandas DataFrame (the store's; its columns:
        :meth:`gui.widgets.pnl_data.PnLData.load_history`): older than each line's first
        live point, it goes in front of it."""
        self._data.load_history(frame)
        for name, kind in self._data.lines:
            if (name, kind) not in self._items:
                self._add_line(name, kind)
        self.flush()
        self.plot.enableAutoRange()

    def start_day(self, start: datetime) -> None:
        """A new trading day from ``start``: drop the earlier points (the store keeps
        them); lines keep their colours and visibility."""
        self._data.start_day(start.timestamp())
        self.flush()
        self.plot.enableAutoRange()

    def clear(self) -> None:
        """Remove every line."""
        for item in self._items.values():
            self.plot.removeItem(item)
        self._items.clear()
        self._data.clear()
        self._user_hidden.clear()
        self._colours = {TOTAL: ACCOUNT_COLOUR}
        self.plot_widget.set_span_start(None)
        self._update_headline()
        self._update_legend()

    def set_currency(self, code: str) -> None:
        """Label the value axis with the account's currency (default :data:`CURRENCY`)."""
        if getattr(self, "_axis_currency", None) == (code or CURRENCY):
            return  # account updates repeat it several times a second
        self._currency = self._axis_currency = code or CURRENCY
        self.plot_widget.set_unit(self._currency)

    def flush(self) -> None:
        """Push dirty lines to their plot items now (the frame timer calls this)."""
        self._timer.stop()
        # Hidden lines keep their new points and are pushed when shown: setData costs a
        # bounds scan of the whole day per line.
        pushed = set()
        for key in self._data.dirty:
            line = self._data.lines.get(key)
            if line is None:
                pushed.add(key)  # cleared since
                continue
            item = self._items[key]
            if item.isVisible():
                item.setData(line.x[: line.n], line.y[: line.n], skipFiniteCheck=True)
                pushed.add(key)
        self._data.dirty -= pushed
        self.plot_widget.set_span_start(self._data.first_time())
        # While hovering the readout stays at the hovered time; the headline stays live.
        self._update_headline(self._hover_t)

    # ----- queries -------------------------------------------------------------------
    def series(self, name: str, kind: str = "total") -> pg.PlotDataItem | None:
        """The plot item of a line (``name`` is a strategy or :data:`TOTAL`)."""
        return self._items.get((name, kind))

    def point_count(self, name: str, kind: str = "total") -> int:
        """Points stored for a line."""
        return self._data.point_count(name, kind)

    def names(self) -> list[str]:
        """Series names: :data:`TOTAL` first, then strategies in order of appearance."""
        return self._data.names()

    def latest(self, name: str = TOTAL, kind: str = "total") -> float | None:
        """The latest value of a line."""
        return self._data.value(name, kind)

    def value_at(self, t: float, name: str = TOTAL, kind: str = "total") -> float | None:
        """A line's value at time ``t`` (epoch seconds); None before its first point."""
        return self._data.value(name, kind, t)

    # ----- internals -----------------------------------------------------------------
    def _add_line(self, name: str, kind: str) -> None:
        """A plot item for a line new in the data."""
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
        item = self.plot_widget.add_line(pen, label, z=10 if name == TOTAL else 5)
        # Shown by a legend click: push the points it missed while hidden.
        item.visibleChanged.connect(self._on_item_visibility)
        self._items[(name, kind)] = item
        self._apply_visibility_one(name, kind, item)
        if label is not None:
            self._update_legend()

    def _on_item_visibility(self) -> None:
        if self._data.dirty and not self._timer.isActive():
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
        for (name, kind), item in self._items.items():
            self._apply_visibility_one(name, kind, item)
        if self._data.dirty:
            self.flush()
        self._update_headline(self._hover_t)
        self._update_legend()

    def legend_entries(self) -> list[tuple[str, bool]]:
        """The legend's (label, line shown) entries, in order."""
        return [
            (str(self._items[key].opts["name"]), key not in self._user_hidden)
            for key in self._legend_keys
        ]

    def _update_legend(self) -> None:
        # Only lines the check boxes show are listed: a key for hidden lines is noise in
        # a narrow dock. Account lines first, then strategies in order of appearance.
        order = {n: i for i, n in enumerate(self.names())}
        keys = sorted(
            (k for k, item in self._items.items() if item.opts.get("name") and self._enabled(*k)),
            key=lambda k: (order[k[0]], KINDS.index(k[1])),
        )
        self._legend_keys = keys
        entries = []
        for i, key in enumerate(keys):
            item = self._items[key]
            label = html.escape(str(item.opts["name"])).replace(" ", "&nbsp;")
            if key in self._user_hidden:
                sample = f"<span style='color:{theme.TEXT_FAINT}'>{KIND_GLYPHS[key[1]]}</span>"
                text = f"<s style='color:{theme.TEXT_FAINT}'>{label}</s>"
            else:
                colour = item.opts["pen"].color().name()
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
        if not self.plot.sceneBoundingRect().contains(pos) or not self._items:
            self._hide_crosshair()
            return
        point = vb.mapSceneToView(pos)
        self.show_crosshair_at(point.x(), point.y())

    def show_crosshair_at(self, t: float, value: float) -> None:
        """Place the crosshair at (time, value) and read every visible line there."""
        self._hover_t = t
        stamp = datetime.fromtimestamp(t).strftime("%H:%M:%S")
        self.plot_widget.show_crosshair(t, value, f"{stamp}  {number(value, 2, sign=True)}")
        self._update_headline(t)

    def _hide_crosshair(self) -> None:
        if self._hover_t is None:
            return
        self._hover_t = None
        self.plot_widget.hide_crosshair()
        self._update_headline()

    def leaveEvent(self, event: Any) -> None:
        self._hide_crosshair()
        super().leaveEvent(event)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._update_headline(self._hover_t)

    def _update_headline(self, t: float | None = None) -> None:
        def value_of(name: str, kind: str) -> float | None:
            return self._data.value(name, kind, t)

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
        if (TOTAL, "total") in self._items:
            total = value_of(TOTAL, "total")
            if t is not None:
                cells.append((f"at {datetime.fromtimestamp(t):%H:%M:%S}", theme.ACCENT, total))
            else:
                cells.append(("Total", theme.TEXT_DIM, total))
        # A line without a value at the hovered time (before its first point) keeps its
        # cell, with a placeholder.
        for kind, title in (("realized", "Realized"), ("unrealized", "Unrealized")):
            if (TOTAL, kind) in self._items:
                cells.append((title, theme.TEXT_DIM, value_of(TOTAL, kind)))
        if self.show_strategies.isChecked():
            for name in self.names():
                if name == TOTAL or (name, "total") not in self._items:
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
