"""Positions grid: filter, strategy selector, hide-flat toggle, grouping by strategy,
totals, context menu."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import QModelIndex, QPoint, Qt, Signal
from PySide6.QtGui import QAction, QFontMetrics
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QLabel,
    QSizePolicy,
    QStackedWidget,
    QWidget,
)

from core.events import PositionChanged
from gui import theme
from gui.models.base import KEY_ROLE, TableProxy
from gui.models.formatting import number
from gui.models.positions import PositionsModel
from gui.models.positions_tree import PositionsTreeModel
from gui.widgets.table_view import DataTreeView, DefaultColumns, FilteredTable, row_height

ALL_STRATEGIES = "All strategies"
#: Widths fitted so a position reads whole (strategy to unrealized P&L) in the centre
#: of a 1366x768 window.
POSITION_COLUMNS = DefaultColumns(
    widths={"strategy": 9, "quantity": 8, "last": 9, "daily_pnl": 10, "unrealized_pnl": 10}
)
TOTALS = (("unrealized_pnl", "Unrealized"), ("realized_pnl", "Realized"), ("daily_pnl", "Daily"))


class PositionsView(FilteredTable):
    """The positions grid.

    Signals (each carries the row's latest :class:`core.events.PositionChanged`)
    -------
    closeRequested(PositionChanged): context menu "Close position".
    reverseRequested(PositionChanged): context menu "Reverse position".
    sendToTicketRequested(PositionChanged): context menu "Send to ticket", and a
        double-click (the ticket pre-fills the closing order).
    resolveBreakRequested(ReconciliationBreakFound): context menu on a BREAK row,
        "Attribute the difference to external".

    "Group by strategy" shows the same rows as a tree: one row per strategy with its
    totals, its positions beneath (:class:`PositionsTreeModel`); filters, the strategy
    selector, context menu and double-click work the same in both.
    """

    closeRequested = Signal(object)
    reverseRequested = Signal(object)
    sendToTicketRequested = Signal(object)
    resolveBreakRequested = Signal(object)

    def __init__(self, model: PositionsModel | None = None, parent: QWidget | None = None):
        model = model if model is not None else PositionsModel()
        super().__init__(model, parent, placeholder="Filter symbol, strategy…")
        self.positions = model
        if model.parent() is None:
            model.setParent(self)
        self.strategy_combo = QComboBox(self)
        self.strategy_combo.addItem(ALL_STRATEGIES)
        self.strategy_combo.setMinimumWidth(120)
        self.strategy_combo.currentTextChanged.connect(self._on_strategy_selected)
        self.hide_flat = QCheckBox("Hide flat", self)
        self.hide_flat.toggled.connect(self._on_hide_flat)
        self.group_by_strategy = QCheckBox("Group by strategy", self)
        self.group_by_strategy.setToolTip("One row per strategy with its totals")
        self.group_by_strategy.toggled.connect(self.set_grouped)
        self.tree_model = PositionsTreeModel(model, self, row_height=row_height())
        self.tree = DataTreeView(self.tree_model, model.column_specs, self)
        self.tree.sortByColumn(model.column_of("strategy"), Qt.SortOrder.AscendingOrder)
        # A strategy row says "12 positions" where its positions show a symbol.
        symbol_col = model.column_of("symbol")
        needed = QFontMetrics(theme.ui_font()).horizontalAdvance("00 positions") + 28
        self.tree.default_widths["symbol"] = needed
        self.tree.setColumnWidth(symbol_col, max(self.tree.columnWidth(symbol_col), needed))
        for grid in (self.view, self.tree):
            grid.set_default_columns(POSITION_COLUMNS)
        self.tree.doubleClicked.connect(self._on_tree_double_clicked)
        self.tree.customContextMenuRequested.connect(self._show_tree_context_menu)
        self.filter_edit.textChanged.connect(self.tree.proxy.set_text_filter)
        self.stack = QStackedWidget(self)
        layout = self.layout()
        layout.removeWidget(self.view)
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.tree)
        layout.addWidget(self.stack, 1)
        self.totals_label = QLabel(self)
        self.totals_label.setProperty("role", "number")
        self.totals_label.setTextFormat(Qt.TextFormat.RichText)
        # Shown in full when there is room; never what sets the window's minimum width.
        self.totals_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.toolbar.addWidget(self.strategy_combo)
        self.toolbar.addWidget(self.hide_flat)
        self.toolbar.addWidget(self.group_by_strategy)
        self.toolbar.addSpacing(12)
        self.toolbar.addWidget(self.totals_label)
        self.finish_toolbar()
        self.view.sortByColumn(model.column_of("strategy"), Qt.SortOrder.AscendingOrder)
        self.view.doubleClicked.connect(self._on_double_clicked)
        model.flushed.connect(self._on_model_flushed)
        model.modelReset.connect(self._on_model_flushed)
        self._on_model_flushed()

    def name_controls(self, name: str, title: str) -> None:
        """The grid's names (see :meth:`FilteredTable.name_controls`), and its own
        controls': the strategy filter, hide flat, group by strategy, the tree."""
        super().name_controls(name, title)
        for w, object_name, text in (
            (self.strategy_combo, f"{name}Strategy", "Show strategy"),
            (self.hide_flat, f"{name}HideFlat", "Hide flat positions"),
            (self.group_by_strategy, f"{name}Grouped", "Group by strategy"),
            (self.tree, f"{name}Tree", f"{title} by strategy"),
        ):
            w.setObjectName(object_name)
            w.setAccessibleName(text)

    def context_actions(self, source_row: int | None) -> list[QAction | None]:
        if source_row is None:
            return []
        event = self.positions.event_at(source_row)
        if event is None:
            return []
        flat = event.quantity == 0
        close = self.make_action(
            f"Close {event.symbol} ({event.strategy})",
            "close",
            lambda: self.closeRequested.emit(event),
        )
        reverse = self.make_action(
            "Reverse position", "reverse", lambda: self.reverseRequested.emit(event)
        )
        ticket = self.make_action(
            "Send to ticket", "ticket", lambda: self.sendToTicketRequested.emit(event)
        )
        close.setEnabled(not flat)
        reverse.setEnabled(not flat)
        actions: list[QAction | None] = [
            ticket,
            None,
            self.order_action(close),
            self.order_action(reverse),
        ]
        brk = self.positions.break_event(event.con_id)
        if brk is not None:
            resolve = self.make_action(
                f"Attribute the difference ({brk.difference:+,g}) to external…",
                None,
                lambda: self.resolveBreakRequested.emit(brk),
            )
            resolve.setToolTip(brk.likely_cause)
            actions += [None, resolve]
        return actions

    def is_grouped(self) -> bool:
        """Whether the grid shows positions grouped by strategy."""
        return self.stack.currentWidget() is self.tree

    def set_grouped(self, grouped: bool) -> None:
        """Show the positions grouped by strategy (a tree with totals) or flat."""
        self.stack.setCurrentWidget(self.tree if grouped else self.view)
        if self.group_by_strategy.isChecked() != grouped:
            self.group_by_strategy.setChecked(grouped)

    def selected_positions(self) -> list[PositionChanged]:
        """The selected rows' latest events (strategy rows of the grouped grid: none)."""
        if self.is_grouped():
            rows = [self._tree_source_row(i) for i in self.tree.selectionModel().selectedRows()]
        else:
            rows = list(self.view.selected_source_rows())
        events = (self.positions.event_at(r) for r in rows if r is not None)
        return [e for e in events if e is not None]

    # ----- internals -----------------------------------------------------------------
    def _on_double_clicked(self, index: QModelIndex) -> None:
        row = self.view.source_row(index)
        event = self.positions.event_at(row) if row is not None else None
        if event is not None:
            self.sendToTicketRequested.emit(event)

    def _tree_source_row(self, index: QModelIndex) -> int | None:
        """The flat model row of a grouped-grid index (None for a strategy row)."""
        key = self.tree.proxy.data(index.siblingAtColumn(0), KEY_ROLE)
        return self.positions.position(key) if key is not None else None

    def _on_tree_double_clicked(self, index: QModelIndex) -> None:
        row = self._tree_source_row(index)
        event = self.positions.event_at(row) if row is not None else None
        if event is not None:  # a strategy row: Qt expands or collapses it
            self.sendToTicketRequested.emit(event)

    def _show_tree_context_menu(self, pos: QPoint) -> None:
        index = self.tree.indexAt(pos)
        row = self._tree_source_row(index) if index.isValid() else None
        self.exec_context_menu(self.context_actions(row), self.tree.viewport().mapToGlobal(pos))

    def _set_predicate(self, name: str, test: Callable[[Mapping[str, Any]], bool] | None) -> None:
        proxies: tuple[TableProxy, ...] = (self.proxy, self.tree.proxy)
        for proxy in proxies:
            proxy.set_predicate(name, test)

    def _on_strategy_selected(self, name: str) -> None:
        if name == ALL_STRATEGIES or not name:
            self._set_predicate("strategy", None)
        else:
            self._set_predicate("strategy", lambda row: row.get("strategy") == name)

    def _on_hide_flat(self, hide: bool) -> None:
        self._set_predicate("flat", (lambda row: row.get("quantity") != 0) if hide else None)

    def _on_model_flushed(self, *args: Any) -> None:
        strategies = sorted({str(r.get("strategy")) for r in self.positions.rows()})
        present = {self.strategy_combo.itemText(i) for i in range(self.strategy_combo.count())}
        for name in strategies:
            if name not in present:
                self.strategy_combo.addItem(name)
        totals = self.positions.totals()
        parts = []
        for key, title in TOTALS:
            value = totals[key]
            colour = theme.pnl_colour(value)
            hex_ = colour.name() if colour is not None else theme.TEXT
            parts.append(
                f"<span style='color:{theme.TEXT_DIM}'>{title}</span> "
                f"<span style='color:{hex_}'>{number(value, 2, sign=True)}</span>"
            )
        text = "&nbsp;&nbsp;&nbsp;".join(parts)
        if text != self.totals_label.text():  # a rich-text relayout per frame is not free
            self.totals_label.setText(text)
