"""The P&L chart's pyqtgraph plot: clock and money axes, the zero line, the crosshair.

:class:`PnLPlot` is the drawing surface of :class:`gui.widgets.pnl_chart.PnLChart`
(which owns the lines' colours, visibility, readout and legend; the points are in
:mod:`gui.widgets.pnl_data`). Set up to stay smooth for a full day of 1 s points:
downsampling by peak and clip-to-view on the plot and on every line, 1 px cosmetic
pens, no grid (translucent grid lines cost more to paint than the lines together), and
the mouse pans and zooms time only.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

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
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QFontMetrics, QPen
from PySide6.QtWidgets import QWidget

from gui import theme

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


class MoneyAxis(pg.AxisItem):
    """A value axis with thousands separators and no SI prefixes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        decimals = 0 if spacing >= 1 else min(4, max(0, -math.floor(math.log10(spacing))))
        return [f"{v * scale:,.{decimals}f}" for v in values]


class _SpanFloor(pg.GraphicsObject):
    """Draws nothing; its x bounds make auto-range show at least ``span`` seconds,
    ending at ``start`` (the session's first point)."""

    def __init__(self, span: float) -> None:
        super().__init__()
        self.span = span
        self.start: float | None = None

    def dataBounds(
        self, ax: int, frac: float = 1.0, orthoRange: Any = None
    ) -> tuple[float, float] | None:
        if ax != 0 or self.start is None:
            return None
        return (self.start - self.span, self.start)

    def boundingRect(self) -> QRectF:
        return QRectF()

    def paint(self, *args: Any) -> None:
        pass


class PnLPlot(pg.PlotWidget):
    """Time (clock) against money: auto-range never shows less than ``min_span_s`` and
    zooming in stops at ``min_zoom_s``. ``v_line``, ``h_line`` and ``cursor_label`` are
    the crosshair (hidden until :meth:`show_crosshair`)."""

    def __init__(self, parent: QWidget | None, *, min_span_s: float, min_zoom_s: float) -> None:
        super().__init__(
            parent,
            axisItems={"bottom": ClockAxis(orientation="bottom"), "left": MoneyAxis("left")},
        )
        self.setBackground(theme.SURFACE)
        plot = self.getPlotItem()
        plot.setDownsampling(auto=True, mode="peak")
        plot.setClipToView(True)
        # No grid: translucent grid lines cost more to paint than the four P&L lines
        # together; the zero line and the axis ticks carry the scale.
        plot.setMenuEnabled(False)
        plot.hideButtons()
        # Room above the top tick label and right of the last time label, which the
        # view would otherwise clip at the widget's edge.
        plot.layout.setContentsMargins(1, 8, 8, 1)
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            axis.setPen(pg.mkPen(theme.BORDER))
            axis.setTextPen(pg.mkPen(theme.TEXT_DIM))
            axis.setTickFont(theme.number_font())
        vb = plot.getViewBox()
        vb.setMouseEnabled(x=True, y=False)
        vb.setAutoVisible(y=True)
        vb.setLimits(minXRange=min_zoom_s)
        self._span_floor = _SpanFloor(min_span_s)
        vb.addItem(self._span_floor)
        zero = pg.InfiniteLine(pos=0, angle=0, pen=pg.mkPen(theme.TEXT_FAINT, width=1))
        zero.setZValue(-10)
        plot.addItem(zero, ignoreBounds=True)

        cross_pen = pg.mkPen(theme.TEXT_DIM, width=1, style=Qt.PenStyle.DashLine)
        self.v_line = pg.InfiniteLine(angle=90, movable=False, pen=cross_pen)
        self.h_line = pg.InfiniteLine(angle=0, movable=False, pen=cross_pen)
        self.cursor_label = pg.TextItem(
            color=theme.TEXT, fill=pg.mkBrush(31, 40, 51, 230), border=pg.mkPen(theme.BORDER)
        )
        self.cursor_label.setFont(theme.number_font())
        for item in self._crosshair():
            item.setZValue(50)
            item.hide()
            plot.addItem(item, ignoreBounds=True)
        self.setToolTip("Drag or scroll to look back; double-click to follow live")

    def add_line(self, pen: QPen, label: str | None, z: float) -> pg.PlotDataItem:
        """A new line drawn with ``pen`` (listed in a legend as ``label``, if any)."""
        item = pg.PlotDataItem(pen=pen, name=label, skipFiniteCheck=True)
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
        item.setZValue(z)
        self.getPlotItem().addItem(item)
        return item

    def set_span_start(self, start: float | None) -> None:
        """Where the session's first point is (None: no points): auto-range shows at
        least ``min_span_s`` up to it."""
        if start != self._span_floor.start:
            self._span_floor.start = start
            self._span_floor.informViewBoundsChanged()

    def set_unit(self, unit: str) -> None:
        """Label the value axis (the account's currency)."""
        axis = self.getPlotItem().getAxis("left")
        axis.setLabel(unit, color=theme.TEXT_FAINT, **{"font-size": "8pt"})
        # A fixed width (ticks plus the rotated label) keeps the plot from shifting
        # sideways whenever the tick labels change length.
        ticks = QFontMetrics(theme.number_font()).horizontalAdvance("-888,888")
        axis.setWidth(ticks + 12 + int(axis.label.boundingRect().height() * 0.8))

    def show_crosshair(self, t: float, value: float, text: str) -> None:
        """The crosshair at (time, value), labelled ``text``."""
        self.v_line.setPos(t)
        self.h_line.setPos(value)
        self.cursor_label.setText(text)
        vb = self.getPlotItem().getViewBox()
        (_, x1), (_, y1) = vb.viewRange()
        # Keep the label inside the plot: flip it left of / below the cursor when its
        # size in pixels would run past the right / top edge.
        px, py = vb.viewPixelSize()
        rect = self.cursor_label.boundingRect()
        ax = 1.0 if t + rect.width() * px > x1 else 0.0
        ay = 0.0 if value + rect.height() * py > y1 else 1.0
        self.cursor_label.setAnchor((ax, ay))
        self.cursor_label.setPos(QPointF(t, value))
        for item in self._crosshair():
            item.show()

    def hide_crosshair(self) -> None:
        for item in self._crosshair():
            item.hide()

    def _crosshair(self) -> tuple[pg.GraphicsObject, ...]:
        return (self.v_line, self.h_line, self.cursor_label)
