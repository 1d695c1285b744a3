"""Working-orders grid: in-place modify of price and quantity, cancel, cancel all."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QKeyEvent, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from gui import shortcuts, theme
from gui.models.base import ROW_ROLE, cell_data
from gui.models.formatting import WHOLE_QUANTITY_TYPES
from gui.models.orders import DONE_STATUSES, OrdersModel
from gui.widgets.table_view import FilteredTable

AnyIndex = QModelIndex | QPersistentModelIndex

EDITOR_SHEET = (
    "QAbstractSpinBox::up-button, QAbstractSpinBox::down-button"
    " { width: 0px; border: none; }"
    "QAbstractSpinBox::up-arrow, QAbstractSpinBox::down-arrow { width: 0px; border: none; }"
)


class OrderEditDelegate(QStyledItemDelegate):
    """Edits prices on the contract's tick grid and quantities in whole units (stocks)."""

    def createEditor(
        self, parent: QWidget, option: QStyleOptionViewItem, index: AnyIndex
    ) -> QWidget:
        row = cell_data(index, ROW_ROLE) or {}
        editor = QDoubleSpinBox(parent)
        # No steppers (the arrow keys step a tick), hidden by width, not NoButtons: under
        # the dark style sheet a spin box without buttons lays its text field out 1 px
        # wide, so the editor opened looking empty although it held the current value.
        editor.setStyleSheet(EDITOR_SHEET)
        editor.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        editor.setFont(theme.number_font())
        editor.setGroupSeparatorShown(True)
        editor.setKeyboardTracking(False)
        column = index.model().headerData(index.column(), Qt.Orientation.Horizontal)
        if column == "Qty":
            whole = row.get("sec_type") in WHOLE_QUANTITY_TYPES
            editor.setDecimals(0 if whole else 4)
            editor.setRange(1 if whole else 0.0001, 1e9)
            editor.setSingleStep(1)
        else:
            decimals = int(row.get("_decimals", 2))
            editor.setDecimals(decimals)
            editor.setRange(10.0**-decimals, 1e9)
            editor.setSingleStep(10.0**-decimals)  # up/down arrows move one tick
        return editor

    def setEditorData(self, editor: QWidget, index: AnyIndex) -> None:
        value = cell_data(index, Qt.ItemDataRole.EditRole)
        if isinstance(editor, QDoubleSpinBox) and value is not None:
            editor.setValue(float(value))
            editor.selectAll()

    def setModelData(self, editor: QWidget, model: Any, index: AnyIndex) -> None:
        if isinstance(editor, QDoubleSpinBox):
            editor.interpretText()
            model.setData(index, editor.value(), Qt.ItemDataRole.EditRole)


class OrdersView(FilteredTable):
    """The working-orders grid.

    Double-click (or F2) a Qty, Limit or Stop cell to modify it; Enter sends the
    request, Escape abandons it. Delete cancels the selected orders.

    Signals
    -------
    cancelRequested(int order_id): context menu "Cancel order", or the Delete key.
    cancelAllRequested(): the "Cancel all" button or context menu.
    modifyRequested(int order_id, str field, float value): forwarded from the model.
    """

    cancelRequested = Signal(int)
    cancelAllRequested = Signal()
    modifyRequested = Signal(int, str, float)

    def __init__(self, model: OrdersModel | None = None, parent: QWidget | None = None):
        model = model if model is not None else OrdersModel()
        super().__init__(model, parent, placeholder="Filter symbol, strategy, status…")
        self.orders = model
        if model.parent() is None:
            model.setParent(self)
        model.modifyRequested.connect(self.modifyRequested)
        self.view.setItemDelegate(OrderEditDelegate(self.view))
        self.view.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.cancel_all_button = QPushButton(theme.icon("cancel"), "Cancel all", self)
        self.cancel_all_button.setObjectName("ordersCancelAll")
        self.cancel_all_button.setAccessibleName("Cancel all working orders")
        self.cancel_all_button.setProperty("role", "danger")
        self.cancel_all_button.setToolTip("Cancel every working order of the account")
        self.cancel_all_button.clicked.connect(self.cancelAllRequested)
        self.finish_toolbar()
        self.toolbar.addWidget(self.cancel_all_button)
        self.view.sortByColumn(model.column_of("time"), Qt.SortOrder.DescendingOrder)
        self._cancel_shortcut = QShortcut(self.view)
        shortcuts.bind(self._cancel_shortcut, "cancel_order")
        self._cancel_shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
        self._cancel_shortcut.activated.connect(self.cancel_selected)

    def set_readonly(self, reason: str) -> None:
        """Read-only: no cancel, no cancel all, no in-place modify; each says why."""
        super().set_readonly(reason)
        self.cancel_all_button.setEnabled(not reason)
        self.cancel_all_button.setToolTip(reason or "Cancel every working order of the account")
        self.view.setEditTriggers(
            QAbstractItemView.EditTrigger.NoEditTriggers
            if reason
            else QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.view.setToolTip(reason)

    def cancel_selected(self) -> None:
        """Emit ``cancelRequested`` for every selected working order."""
        if self.readonly_reason:
            return
        for row in self.view.selected_source_rows():
            data = self.orders.row_at(row)
            if data.get("status") not in DONE_STATUSES:
                self.cancelRequested.emit(int(data["order_id"]))

    def context_actions(self, source_row: int | None) -> list[QAction | None]:
        actions: list[QAction | None] = []
        if source_row is not None:
            row = self.orders.row_at(source_row)
            order_id = int(row["order_id"])
            cancel = self.make_action(
                f"Cancel order {order_id} ({row.get('symbol', '')})",
                "cancel",
                lambda: self.cancelRequested.emit(order_id),
            )
            cancel.setEnabled(row.get("status") not in DONE_STATUSES)
            actions += [self.order_action(cancel), None]
        cancel_all = self.make_action("Cancel all orders", "cancel", self.cancelAllRequested.emit)
        cancel_all.setEnabled(bool(self.orders.working_order_ids()))
        actions.append(self.order_action(cancel_all))
        return actions

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Delete:
            self.cancel_selected()
            return
        super().keyPressEvent(event)
