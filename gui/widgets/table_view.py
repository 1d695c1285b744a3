"""The shared table widget: a ``QTableView`` over a :class:`TableProxy`, with a filter box.

The grids (positions, orders, fills, audit, log) are thin subclasses that add their own
controls, context menus and signals.

Banded repaint. Each painted cell costs several calls from Qt into Python (one per role
the delegate asks for, each through the proxy), so repainting a full grid of changed
rows takes ~15 ms, which in a tick storm would block the GUI loop for a whole frame at
every refresh. When many rows change at once, :class:`DataTableView` repaints them in
bands sized to a per-paint budget (:data:`PAINT_BUDGET_MS`, learnt from the measured
cost per row), one band per pass of the event loop, so input, socket reads and timers
get a turn between bands; the grid is still complete within a few milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, Qt, QTimer
from PySide6.QtGui import QAction, QFontMetrics, QIcon, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from gui import theme
from gui.models.base import KeyedTableModel, TableProxy

#: Target cost of one repaint of changed rows (ms); a frame is 16 ms.
PAINT_BUDGET_MS = 5.0
#: Starting estimate of the cost of painting one row (ms), refined by measurement.
INITIAL_MS_PER_ROW = 0.8


class DataTableView(QTableView):
    """A compact, sortable grid over a keyed model (wrapped in a :class:`TableProxy`).

    Changes spanning several rows are repainted in bands (see the module docstring).
    """

    def __init__(self, model: KeyedTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.paint_budget_ms = PAINT_BUDGET_MS
        self.ms_per_row = INITIAL_MS_PER_ROW
        self._dirty: tuple[int, int] | None = None  # view rows waiting for a band
        self._band_timer = QTimer(self)
        self._band_timer.setSingleShot(True)
        self._band_timer.setInterval(0)
        self._band_timer.timeout.connect(self._paint_next_band)
        self.source = model
        self.proxy = TableProxy(model, self, resort_ms=model.resort_ms)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        vheader = self.verticalHeader()
        vheader.setVisible(False)
        vheader.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vheader.setDefaultSectionSize(QFontMetrics(theme.number_font()).height() + 8)
        header = self.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionsMovable(True)
        # Stretch a trailing text column (a message); numbers stay next to their header.
        specs = model.column_specs
        header.setStretchLastSection(
            bool(specs) and not (specs[-1].align & Qt.AlignmentFlag.AlignRight)
        )
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.apply_column_widths()

    def apply_column_widths(self) -> None:
        """Size columns from their specs: ``width`` characters of the number font, and
        never narrower than the header title."""
        digit = QFontMetrics(theme.number_font()).horizontalAdvance("0")
        header_metrics = QFontMetrics(theme.ui_font())
        for i, col in enumerate(self.source.column_specs):
            title = header_metrics.horizontalAdvance(col.title) + 30  # padding + sort arrow
            chars = (col.width or 10) * digit + 20
            self.setColumnWidth(i, max(title, chars))

    # ----- banded repaint -------------------------------------------------------------
    def band_rows(self) -> int:
        """How many rows one band repaints: the budget over the measured cost per row."""
        return max(1, int(self.paint_budget_ms / max(self.ms_per_row, 1e-3)))

    def pending_rows(self) -> tuple[int, int] | None:
        """The view rows changed but not yet repainted (first, last), or None."""
        return self._dirty

    def dataChanged(
        self,
        top_left: QModelIndex | QPersistentModelIndex,
        bottom_right: QModelIndex | QPersistentModelIndex,
        roles: Sequence[int] = (),
    ) -> None:
        first, last = top_left.row(), bottom_right.row()
        if first < 0 or last < first or last - first + 1 <= self.band_rows():
            # Small changes repaint as Qt would; a band in progress still covers them.
            super().dataChanged(top_left, bottom_right, list(roles))
            return
        if self._dirty is not None:
            first, last = min(first, self._dirty[0]), max(last, self._dirty[1])
        self._dirty = (first, last)
        if not self._band_timer.isActive():
            self._paint_next_band()

    def paintEvent(self, event: QPaintEvent) -> None:
        started = time.perf_counter()
        super().paintEvent(event)
        height = self.verticalHeader().defaultSectionSize()
        rows = event.rect().height() / max(height, 1)
        if rows >= 1:
            ms = (time.perf_counter() - started) * 1000 / rows
            self.ms_per_row += 0.3 * (ms - self.ms_per_row)  # smoothed: one slow paint is noise
        if self._dirty is not None and not self._band_timer.isActive():
            # The next band after this paint: the loop serves other work in between.
            self._band_timer.start()

    def _paint_next_band(self) -> None:
        dirty, self._dirty = self._dirty, None
        if dirty is None:
            return
        viewport = self.viewport()
        top = self.rowAt(0)
        bottom = self.rowAt(viewport.height() - 1)
        if top < 0:
            return  # no rows on screen
        if bottom < 0:
            bottom = self.model().rowCount() - 1
        first, last = max(dirty[0], top), min(dirty[1], bottom)
        if first > last:
            return  # the change is off screen: Qt paints those rows when they scroll in
        end = min(last, first + self.band_rows() - 1)
        y = self.rowViewportPosition(first)
        y_end = self.rowViewportPosition(end) + self.rowHeight(end)
        viewport.update(QRect(0, y, viewport.width(), y_end - y))
        if end < last:
            self._dirty = (end + 1, last)

    def source_index(self, index: QModelIndex | QPersistentModelIndex) -> QModelIndex:
        """Map a view (proxy) index to the source model."""
        return self.proxy.mapToSource(index)

    def source_row(self, index: QModelIndex | QPersistentModelIndex) -> int | None:
        """The source model row of a view index (None if invalid)."""
        src = self.proxy.mapToSource(index)
        return src.row() if src.isValid() else None

    def selected_source_rows(self) -> list[int]:
        """Source rows of the selection, in view order."""
        rows = sorted({i.row() for i in self.selectionModel().selectedRows()})
        out = []
        for r in rows:
            src = self.proxy.mapToSource(self.proxy.index(r, 0))
            if src.isValid():
                out.append(src.row())
        return out

    def selected_keys(self) -> list[Hashable]:
        """Keys of the selected rows."""
        return [self.source.key_at(r) for r in self.selected_source_rows()]

    def visible_row_count(self) -> int:
        """Rows passing the filter."""
        return self.proxy.rowCount()


class FilteredTable(QWidget):
    """A :class:`DataTableView` with a filter line above it and room for more controls.

    Subclasses add widgets to :attr:`toolbar` (an ``QHBoxLayout``) and build menus in
    :meth:`context_actions`.
    """

    def __init__(
        self,
        model: KeyedTableModel,
        parent: QWidget | None = None,
        *,
        placeholder: str = "Filter…",
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.view = DataTableView(model, self)
        self.proxy = self.view.proxy
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText(placeholder)
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.addAction(theme.icon("filter"), QLineEdit.ActionPosition.LeadingPosition)
        self.filter_edit.setMinimumWidth(230)
        self.filter_edit.setMaximumWidth(320)
        self.filter_edit.textChanged.connect(self.proxy.set_text_filter)
        self.count_label = QLabel(self)
        self.count_label.setProperty("role", "dim")
        self.toolbar = QHBoxLayout()
        self.toolbar.setContentsMargins(0, 0, 0, 0)
        self.toolbar.setSpacing(8)
        self.toolbar.addWidget(self.filter_edit)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(self.toolbar)
        layout.addWidget(self.view, 1)
        self.view.customContextMenuRequested.connect(self._show_context_menu)
        for signal in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset):
            signal.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)

    def finish_toolbar(self) -> None:
        """Push the row count to the right end of the toolbar (call after adding widgets)."""
        self.toolbar.addStretch(1)
        self.toolbar.addWidget(self.count_label)
        self._update_count()

    def context_actions(self, source_row: int | None) -> list[QAction | None]:
        """Actions for a context menu on ``source_row`` (None: empty area);
        None entries become separators."""
        return []

    def make_action(self, text: str, icon: str | None = None, slot: Any = None) -> QAction:
        """An action parented to this widget."""
        action = QAction(theme.icon(icon) if icon else QIcon(), text, self)
        if slot is not None:
            action.triggered.connect(slot)
        return action

    def _show_context_menu(self, pos: Any) -> None:
        index = self.view.indexAt(pos)
        source_row = self.view.source_row(index) if index.isValid() else None
        actions = self.context_actions(source_row)
        if not actions:
            return
        menu = QMenu(self)
        for action in actions:
            if action is None:
                menu.addSeparator()
            else:
                menu.addAction(action)
        menu.exec(self.view.viewport().mapToGlobal(pos))

    def _update_count(self, *args: Any) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        noun = "row" if total == 1 else "rows"
        self.count_label.setText(
            f"{total:,} {noun}" if shown == total else f"{shown:,} of {total:,} {noun}"
        )
