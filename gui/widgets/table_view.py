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

import json
import logging
import time
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSettings,
    Qt,
    QTimer,
)
from PySide6.QtGui import QAction, QFontMetrics, QIcon, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QTableView,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from gui import theme
from gui.models.base import KEY_ROLE, Column, KeyedTableModel, TableProxy

log = logging.getLogger(__name__)


def apply_column_widths(
    view: QTableView | QTreeView,
    specs: Sequence[Column],
    fitted: Mapping[str, float] | None = None,
) -> None:
    """Size a grid's columns from their specs: ``width`` characters of the number font,
    and never narrower than the header title.

    ``fitted`` gives some columns a width in characters fitted to their content (a grid
    in a narrow dock): the cell's padding only, the title with room for the sort arrow
    only where the content leaves none.
    """
    digit = QFontMetrics(theme.number_font()).horizontalAdvance("0")
    header_metrics = QFontMetrics(theme.ui_font())
    fitted = fitted or {}
    for i, col in enumerate(specs):
        if col.key in fitted:
            title = header_metrics.horizontalAdvance(col.title) + 18  # the header's padding
            # The cell's padding: the style sheet's 6 px a side, Qt's text margin 3.
            chars = round(fitted[col.key] * digit) + 18
        else:
            title = header_metrics.horizontalAdvance(col.title) + 30  # padding + sort arrow
            chars = (col.width or 10) * digit + 20
        view.setColumnWidth(i, max(title, chars))


@dataclass(frozen=True, slots=True)
class DefaultColumns:
    """A grid's columns before a person arranges them (and after "Reset columns").

    ``order``: the keys shown first, left to right (the others follow in the model's
    order); ``hidden``: keys hidden; ``widths``: characters fitted to the content for
    the columns that must share a narrow dock (:func:`apply_column_widths`). What a
    person saved replaces all of it (:func:`restore_grid_columns`).
    """

    order: tuple[str, ...] = ()
    hidden: frozenset[str] = frozenset()
    widths: Mapping[str, float] = field(default_factory=dict)


def configure_grid(view: QAbstractItemView, stretch_last: bool) -> None:
    """The look and behaviour every grid shares: rows selected whole, no editing on
    click, compact rows, sortable headers that move."""
    view.setAlternatingRowColors(True)
    view.setWordWrap(False)
    view.setTextElideMode(Qt.TextElideMode.ElideRight)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
    view.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
    header = view.horizontalHeader() if isinstance(view, QTableView) else view.header()
    header.setHighlightSections(False)
    header.setSectionsMovable(True)
    header.setStretchLastSection(stretch_last)
    header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)


#: Where a grid's columns are kept in the window's settings: ``columns/<objectName>``.
COLUMNS_SETTINGS_GROUP = "columns"


class ColumnLayout:
    """Columns a person shows, hides, reorders and resizes; kept by column key.

    Mixed into the grid views before their Qt class. The header's context menu has a
    checkable entry per column (the last shown one cannot be hidden) and "Reset
    columns"; sections are dragged to reorder them (:func:`configure_grid`). The state
    is saved by column *key*, not position, so a column added in a later version
    appears instead of shifting every saved one (Qt's ``QHeaderView.saveState`` is
    positional). :func:`save_grid_columns` / :func:`restore_grid_columns` keep every
    named grid of a window in its settings.
    """

    column_specs: Sequence[Column]
    #: The columns' defaults (:meth:`set_default_columns`); the model's order, all shown.
    default_columns = DefaultColumns()

    def init_columns(self, specs: Sequence[Column]) -> None:
        """Set up the header menu (call from ``__init__`` once the header exists)."""
        self.column_specs = tuple(specs)
        #: Default widths wider than the spec's, by column key (kept by a reset).
        self.default_widths: dict[str, int] = {}
        header = self.header_view()
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._show_header_menu)

    def header_view(self) -> QHeaderView:
        """The horizontal header."""
        view: Any = self
        return view.horizontalHeader() if isinstance(view, QTableView) else view.header()

    def column_keys(self) -> list[str]:
        """Column keys in model (logical) order."""
        return [c.key for c in self.column_specs]

    def visible_column_keys(self) -> list[str]:
        """The shown columns' keys, left to right as on screen."""
        header = self.header_view()
        keys = self.column_keys()
        return [
            keys[header.logicalIndex(v)]
            for v in range(header.count())
            if not header.isSectionHidden(header.logicalIndex(v))
        ]

    def set_column_visible(self, key: str, visible: bool) -> None:
        """Show or hide a column (the last shown column stays)."""
        keys = self.column_keys()
        if key not in keys:
            raise KeyError(f"no column {key!r}")
        if not visible and self.visible_column_keys() == [key]:
            return  # a grid with no column cannot be got back from its header
        self.header_view().setSectionHidden(keys.index(key), not visible)

    def move_column(self, key: str, to: int) -> None:
        """Put a column at visual position ``to`` (as dragging its header does)."""
        header = self.header_view()
        logical = self.column_keys().index(key)
        header.moveSection(header.visualIndex(logical), max(0, min(to, header.count() - 1)))

    def column_state(self) -> dict[str, Any]:
        """Order (keys, left to right), hidden keys and widths: JSON-serialisable."""
        header = self.header_view()
        keys = self.column_keys()
        return {
            "order": [keys[header.logicalIndex(v)] for v in range(header.count())],
            "hidden": [k for i, k in enumerate(keys) if header.isSectionHidden(i)],
            "widths": {
                k: header.sectionSize(i)
                for i, k in enumerate(keys)
                if not header.isSectionHidden(i)
            },
        }

    def restore_column_state(self, state: dict[str, Any]) -> None:
        """Apply a :meth:`column_state`; unknown keys are ignored, new columns keep
        their default place and width."""
        header = self.header_view()
        keys = self.column_keys()
        known = [k for k in state.get("order", []) if k in keys]
        for target, key in enumerate(known):
            self.move_column(key, target)
        hidden = set(state.get("hidden", []))
        for i, key in enumerate(keys):
            header.setSectionHidden(i, key in hidden)
        if header.hiddenSectionCount() >= header.count():
            header.setSectionHidden(0, False)  # never a grid without a column
        for key, width in dict(state.get("widths", {})).items():
            if key in keys and isinstance(width, int) and width > 0:
                header.resizeSection(keys.index(key), width)

    def set_default_columns(self, defaults: DefaultColumns) -> None:
        """The grid's own default order, hidden columns and fitted widths; applied now
        (a saved arrangement, restored later, still wins)."""
        self.default_columns = defaults
        self.reset_columns()

    def reset_columns(self) -> None:
        """The default columns (:attr:`default_columns`: by default every column shown,
        in the model's order) at their default widths."""
        header = self.header_view()
        keys = self.column_keys()
        defaults = self.default_columns
        first = [k for k in defaults.order if k in keys]
        for target, key in enumerate([*first, *(k for k in keys if k not in first)]):
            logical = keys.index(key)
            header.setSectionHidden(logical, key in defaults.hidden)
            header.moveSection(header.visualIndex(logical), target)
        view: Any = self
        apply_column_widths(view, self.column_specs, defaults.widths)
        for key, width in self.default_widths.items():
            header.resizeSection(keys.index(key), max(header.sectionSize(keys.index(key)), width))

    def _header_menu(self) -> QMenu:
        header = self.header_view()
        menu = QMenu(header)
        menu.setObjectName("columnsMenu")
        shown = self.visible_column_keys()
        for i in range(header.count()):  # in the order they are shown
            logical = header.logicalIndex(i)
            spec = self.column_specs[logical]
            action = menu.addAction(spec.title)
            action.setCheckable(True)
            action.setChecked(not header.isSectionHidden(logical))
            action.setData(spec.key)
            # The last shown column cannot go: the header (and this menu) would go with it.
            action.setEnabled(shown != [spec.key])
            action.toggled.connect(lambda on, key=spec.key: self.set_column_visible(key, on))
        menu.addSeparator()
        reset = menu.addAction("Reset columns")
        reset.setToolTip("Every column shown, in the default order and widths")
        reset.triggered.connect(self.reset_columns)
        return menu

    def _show_header_menu(self, pos: QPoint) -> None:
        header = self.header_view()
        self._header_menu().exec(header.viewport().mapToGlobal(pos))


def _column_layouts(root: QWidget) -> Iterator[tuple[str, ColumnLayout]]:
    for view in root.findChildren(QAbstractItemView):
        if isinstance(view, ColumnLayout) and view.objectName():
            yield view.objectName(), view


def save_grid_columns(root: QWidget, settings: QSettings) -> None:
    """Keep the columns of every named grid under ``root`` in ``settings``."""
    for name, view in _column_layouts(root):
        settings.setValue(f"{COLUMNS_SETTINGS_GROUP}/{name}", json.dumps(view.column_state()))


def restore_grid_columns(root: QWidget, settings: QSettings) -> None:
    """Apply the columns kept by :func:`save_grid_columns`; a damaged entry is logged
    and leaves that grid at its defaults."""
    for name, view in _column_layouts(root):
        text = settings.value(f"{COLUMNS_SETTINGS_GROUP}/{name}")
        if not text:
            continue
        try:
            state = json.loads(str(text))
            if not isinstance(state, dict):
                raise ValueError("not a mapping")
            view.restore_column_state(state)
        except (ValueError, TypeError) as exc:
            log.warning("the saved columns of %s are unreadable (%s): defaults kept", name, exc)
            view.reset_columns()


def reset_grid_columns(root: QWidget) -> None:
    """Every named grid under ``root`` back to its default columns."""
    for _name, view in _column_layouts(root):
        view.reset_columns()


#: Target cost of one repaint of changed rows (ms); a frame is 16 ms.
PAINT_BUDGET_MS = 5.0
#: Starting estimate of the cost of painting one row (ms), refined by measurement.
INITIAL_MS_PER_ROW = 0.8


class BandedRepaint:
    """Repaints a change spanning many rows in bands, one per pass of the event loop
    (see the module docstring). Mixed into the grid views before their Qt class.

    Changed areas are kept in content coordinates (viewport y plus the scroll offset),
    so a scroll between two bands paints the right rows.
    """

    paint_budget_ms: float
    ms_per_row: float
    _dirty: tuple[int, int] | None
    _band_timer: QTimer

    def init_banding(self) -> None:
        """Set up banding (call from ``__init__`` once the Qt object exists)."""
        self.paint_budget_ms = PAINT_BUDGET_MS
        self.ms_per_row = INITIAL_MS_PER_ROW
        self._dirty = None
        self._band_timer = QTimer(self)  # type: ignore[arg-type]
        self._band_timer.setSingleShot(True)
        self._band_timer.setInterval(0)
        self._band_timer.timeout.connect(self._paint_next_band)

    def band_rows(self) -> int:
        """How many rows one band repaints: the budget over the measured cost per row."""
        return max(1, int(self.paint_budget_ms / max(self.ms_per_row, 1e-3)))

    def pending_repaint(self) -> tuple[int, int] | None:
        """The changed area not yet repainted, in content pixels (top, bottom), or None."""
        return self._dirty

    def changed_extent(
        self,
        top_left: QModelIndex | QPersistentModelIndex,
        bottom_right: QModelIndex | QPersistentModelIndex,
    ) -> tuple[int, int] | None:
        """Viewport y range (top, bottom) of the rows of a change, None if not shown."""
        raise NotImplementedError

    def band_row_height(self) -> int:
        """The height of one row, in pixels."""
        return row_height()

    def dataChanged(
        self,
        top_left: QModelIndex | QPersistentModelIndex,
        bottom_right: QModelIndex | QPersistentModelIndex,
        roles: Sequence[int] = (),
    ) -> None:
        view: QAbstractItemView = self  # type: ignore[assignment]
        extent = (
            self.changed_extent(top_left, bottom_right)
            if top_left.isValid() and bottom_right.isValid()
            else None
        )
        row_h = max(self.band_row_height(), 1)
        if extent is None or (extent[1] - extent[0]) <= self.band_rows() * row_h:
            # Small changes repaint as Qt would; a band in progress still covers them.
            super().dataChanged(top_left, bottom_right, list(roles))  # type: ignore[misc]
            return
        offset = view.verticalScrollBar().value()
        top, bottom = extent[0] + offset, extent[1] + offset
        if self._dirty is not None:
            top, bottom = min(top, self._dirty[0]), max(bottom, self._dirty[1])
        self._dirty = (top, bottom)
        if not self._band_timer.isActive():
            # On the next pass of the loop, not in the same breath as the model's batch.
            self._band_timer.start()

    def paintEvent(self, event: QPaintEvent) -> None:
        started = time.perf_counter()
        super().paintEvent(event)  # type: ignore[misc]
        rows = event.rect().height() / max(self.band_row_height(), 1)
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
        view: QAbstractItemView = self  # type: ignore[assignment]
        viewport = view.viewport()
        offset = view.verticalScrollBar().value()
        top = max(dirty[0] - offset, 0)
        bottom = min(dirty[1] - offset, viewport.height())
        if top >= bottom:
            return  # off screen: Qt paints those rows when they scroll in
        end = min(bottom, top + self.band_rows() * max(self.band_row_height(), 1))
        viewport.update(QRect(0, top, viewport.width(), end - top))
        if end < bottom:
            self._dirty = (end + offset, bottom + offset)


class DataTableView(BandedRepaint, ColumnLayout, QTableView):
    """A compact, sortable grid over a keyed model (wrapped in a :class:`TableProxy`).

    Changes spanning several rows are repainted in bands (:class:`BandedRepaint`).
    """

    def __init__(self, model: KeyedTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.init_banding()
        self.source = model
        self.proxy = TableProxy(model, self, resort_ms=model.resort_ms)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.setShowGrid(False)
        # Stretch a trailing text column (a message); numbers stay next to their header.
        specs = model.column_specs
        configure_grid(self, bool(specs) and not (specs[-1].align & Qt.AlignmentFlag.AlignRight))
        vheader = self.verticalHeader()
        vheader.setVisible(False)
        vheader.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vheader.setDefaultSectionSize(row_height())
        self.apply_column_widths()
        self.init_columns(specs)

    def apply_column_widths(self) -> None:
        """Size columns from their specs (see :func:`apply_column_widths`)."""
        apply_column_widths(self, self.source.column_specs)

    def band_row_height(self) -> int:
        return self.verticalHeader().defaultSectionSize()

    def changed_extent(
        self,
        top_left: QModelIndex | QPersistentModelIndex,
        bottom_right: QModelIndex | QPersistentModelIndex,
    ) -> tuple[int, int] | None:
        first, last = top_left.row(), bottom_right.row()
        if first < 0 or last < first:
            return None
        return self.rowViewportPosition(first), self.rowViewportPosition(last) + self.rowHeight(
            last
        )

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


def row_height() -> int:
    """The grids' row height: the number font's line plus padding."""
    return QFontMetrics(theme.number_font()).height() + 8


class DataTreeView(BandedRepaint, ColumnLayout, QTreeView):
    """A grouped grid, the same look as :class:`DataTableView`, over a tree model whose
    leaves are keyed rows (e.g. :class:`gui.models.positions_tree.PositionsTreeModel`),
    wrapped in a :class:`TableProxy` (sorting within each group, filters on the leaves).

    Groups start expanded; one a person collapsed stays collapsed when rows come and
    go, the grid is re-sorted or filtered.
    """

    def __init__(
        self,
        model: QAbstractItemModel,
        specs: Sequence[Column],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.init_banding()
        self.source = model
        self.proxy = TableProxy(model, self)
        self.setModel(self.proxy)
        self.setSortingEnabled(True)
        self.setUniformRowHeights(True)  # no per-row size queries into Python
        self.setIndentation(14)
        self.setAllColumnsShowFocus(True)
        configure_grid(self, False)
        apply_column_widths(self, specs)
        self.init_columns(specs)
        self._collapsed_keys: set[Any] = set()
        self.collapsed.connect(lambda index: self._collapsed_keys.add(self._key(index)))
        self.expanded.connect(lambda index: self._collapsed_keys.discard(self._key(index)))
        self.proxy.rowsInserted.connect(self._expand_new)
        self.proxy.modelReset.connect(self._expand_groups)
        self.proxy.layoutChanged.connect(self._expand_groups)
        self._expand_groups()

    def changed_extent(
        self,
        top_left: QModelIndex | QPersistentModelIndex,
        bottom_right: QModelIndex | QPersistentModelIndex,
    ) -> tuple[int, int] | None:
        first, last = self.visualRect(top_left), self.visualRect(bottom_right)
        if not first.isValid() or not last.isValid():
            return None  # inside a collapsed group
        return min(first.top(), last.top()), max(first.bottom(), last.bottom()) + 1

    def is_collapsed_by_user(self, key: Any) -> bool:
        """Whether a person collapsed the group with this key."""
        return key in self._collapsed_keys

    def _key(self, index: QModelIndex | QPersistentModelIndex) -> Any:
        return self.proxy.data(index.siblingAtColumn(0), KEY_ROLE)

    def _expand_new(self, parent: QModelIndex, first: int, last: int) -> None:
        if parent.isValid():
            return  # rows inside a group: the group keeps its state
        for row in range(first, last + 1):
            index = self.proxy.index(row, 0)
            if self._key(index) not in self._collapsed_keys:
                self.setExpanded(index, True)

    def _expand_groups(self, *args: Any) -> None:
        self._expand_new(QModelIndex(), 0, self.proxy.rowCount() - 1)


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
        # Narrow enough that the docks beside the positions grid keep their columns at
        # 1366x768 (the filter widens with the grid, up to its maximum).
        self.filter_edit.setMinimumWidth(120)
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

    def name_controls(self, name: str, title: str) -> None:
        """Object and accessible names for the grid and its filter (tests, screen
        readers): ``name`` in camelCase ("orders"), ``title`` in words ("Working orders")."""
        self.setObjectName(f"{name}View")
        self.view.setObjectName(f"{name}Table")
        self.view.setAccessibleName(title)
        self.filter_edit.setObjectName(f"{name}Filter")
        self.filter_edit.setAccessibleName(f"Filter {title.lower()}")
        self.count_label.setObjectName(f"{name}Count")
        self.count_label.setAccessibleName(f"{title} shown")

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

    #: Why order-changing actions are off ("" when they are on): read-only mode.
    readonly_reason = ""

    def set_readonly(self, reason: str) -> None:
        """Turn order-changing actions off, saying why ("" turns them back on)."""
        self.readonly_reason = reason

    def order_action(self, action: QAction) -> QAction:
        """``action`` changes orders: off, with the reason, while read-only."""
        if self.readonly_reason:
            action.setEnabled(False)
            action.setText(f"{action.text()} (read-only)")
            action.setToolTip(self.readonly_reason)
        return action

    def _show_context_menu(self, pos: Any) -> None:
        index = self.view.indexAt(pos)
        source_row = self.view.source_row(index) if index.isValid() else None
        self.exec_context_menu(
            self.context_actions(source_row), self.view.viewport().mapToGlobal(pos)
        )

    def exec_context_menu(self, actions: list[QAction | None], at: QPoint) -> None:
        """Show a menu of ``actions`` (None: a separator) at global position ``at``."""
        if not actions:
            return
        menu = QMenu(self)
        menu.setToolTipsVisible(True)  # a disabled action says why
        for action in actions:
            if action is None:
                menu.addSeparator()
            else:
                menu.addAction(action)
        menu.exec(at)

    def _update_count(self, *args: Any) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        noun = "row" if total == 1 else "rows"
        self.count_label.setText(
            f"{total:,} {noun}" if shown == total else f"{shown:,} of {total:,} {noun}"
        )
