"""Working-orders grid: in-place modify of price and quantity, cancel, cancel all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPersistentModelIndex, QPoint, Qt, Signal
from PySide6.QtGui import QAction, QKeyEvent, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolTip,
    QWidget,
)

from core.events import OrderUpdated
from gui import shortcuts, theme
from gui.models.base import ROW_ROLE, cell_data
from gui.models.formatting import WHOLE_QUANTITY_TYPES, fmt_quantity
from gui.models.orders import DONE_STATUSES, OrdersModel
from gui.widgets.number_field import NumberField
from gui.widgets.table_view import DefaultColumns, FilteredTable
from gui.widgets.ticket_form import FIELD_TITLES, TicketForm, price_field, quantity_field

AnyIndex = QModelIndex | QPersistentModelIndex
#: Asked before a modification goes: (the order now, the field, the new value) -> go.
ConfirmModify = Callable[[OrderUpdated, str, float], bool]
_COMMIT_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Tab, Qt.Key.Key_Backtab)

#: The grid as a trader reads an order: what, how much, how, at what price, where it
#: stands; then the references. At 1366x768 everything up to Status is in view.
ORDER_COLUMNS = DefaultColumns(
    order=(
        "symbol",
        "action",
        "quantity",
        "order_type",
        "limit_price",
        "stop_price",
        "status",
        "filled",
        "time",
    ),
    widths={
        "symbol": 7.5,
        "action": 4,
        "quantity": 7,
        "order_type": 7,
        "limit_price": 8,
        "stop_price": 8,
        "status": 12.5,
        "filled": 7,
        "time": 8,
    },
)


def _field(index: AnyIndex) -> str:
    """The order field a cell shows ("quantity", "limit_price", ...)."""
    model: Any = index.model()
    while hasattr(model, "sourceModel"):
        model = model.sourceModel()
    return str(model.column_specs[index.column()].key)


class OrderEditDelegate(QStyledItemDelegate):
    """Edits a working order's quantity and prices under the ticket's entry rules.

    The editor is the ticket's own field (:func:`gui.widgets.ticket_form.quantity_field`,
    :func:`~gui.widgets.ticket_form.price_field`): it holds exactly what was typed. An
    entry the ticket would not send ("1e12", "-5", "0", "12.345" for a whole quantity,
    more decimals than the tick, less than already filled) is flagged in place with the
    reason and never sent: Enter keeps the editor open, red, its reason in the tooltip
    and in ``entryRefused``; leaving the cell abandons it (said the same way). A valid,
    changed entry is handed on as ``editCommitted`` once the editor has closed.

    Signals
    -------
    entryRefused(str): why an entry was not sent.
    editCommitted(QPersistentModelIndex, float): a valid changed entry, to send.
    """

    entryRefused = Signal(str)
    editCommitted = Signal(QPersistentModelIndex, float)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        #: Reopened entries with why they were refused, by (order id, field).
        self.reopen: dict[tuple[int, str], tuple[float, str]] = {}
        self._cells: dict[NumberField, QPersistentModelIndex] = {}

    def createEditor(
        self, parent: QWidget, option: QStyleOptionViewItem, index: AnyIndex
    ) -> QWidget:
        row = cell_data(index, ROW_ROLE) or {}
        if _field(index) == "quantity":
            whole = row.get("sec_type") in WHOLE_QUANTITY_TYPES
            editor = quantity_field(0 if whole else 4, step=1, parent=parent)
        else:
            editor = price_field(int(row.get("_decimals", 2)), parent=parent)
        editor.setObjectName("orderCellEditor")
        editor.setFont(theme.number_font())
        self._cells[editor] = QPersistentModelIndex(index)  # dropped in destroyEditor
        return editor

    def destroyEditor(self, editor: QWidget, index: AnyIndex) -> None:
        if isinstance(editor, NumberField):
            self._cells.pop(editor, None)
        super().destroyEditor(editor, index)

    def setEditorData(self, editor: QWidget, index: AnyIndex) -> None:
        # Once open, the entry is the trader's: a status update of the row must not
        # replace what is being typed.
        if not isinstance(editor, NumberField) or editor.property("opened"):
            return
        editor.setProperty("opened", True)
        row = cell_data(index, ROW_ROLE) or {}
        again = self.reopen.pop((int(row.get("order_id") or 0), _field(index)), None)
        if again is not None:
            value, reason = again
            editor.setValue(value)
            self.refuse(editor, reason)
            return
        value = cell_data(index, Qt.ItemDataRole.EditRole)
        if value is not None:
            editor.setValue(float(value))
        editor.selectAll()

    def problem(self, editor: NumberField, index: AnyIndex) -> str | None:
        """Why the entry cannot be sent (the ticket's words), or None."""
        key = _field(index)
        problem = TicketForm.entry_problem(editor, FIELD_TITLES[key], True, True)
        if problem is None and key == "quantity":
            row = cell_data(index, ROW_ROLE) or {}
            filled = float(row.get("filled") or 0)
            if editor.value() < filled:
                problem = (
                    f"Quantity: {editor.text()} is less than the "
                    f"{fmt_quantity(filled, row)} already filled"
                )
        return problem

    def refuse(self, editor: NumberField, reason: str) -> None:
        """Flag the entry in place: red, the reason in its tooltip and said at once."""
        TicketForm.flag(editor, True)
        editor.setToolTip(reason)
        editor.setAccessibleDescription(reason)
        if editor.isVisible():
            QToolTip.showText(editor.mapToGlobal(QPoint(0, editor.height())), reason, editor)
        self.entryRefused.emit(f"not sent: {reason}")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            isinstance(watched, NumberField)
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in _COMMIT_KEYS
        ):
            index = self._cells.get(watched)
            problem = self.problem(watched, index) if index is not None else None
            if problem is not None:
                self.refuse(watched, problem)
                return True  # stays open: fix it, or Escape
        return super().eventFilter(watched, event)

    def setModelData(self, editor: QWidget, model: Any, index: AnyIndex) -> None:
        if not isinstance(editor, NumberField):
            return
        problem = self.problem(editor, index)
        if problem is not None:  # left the cell with an entry that cannot go
            self.entryRefused.emit(f"not sent: {problem}")
            return
        value = editor.value()
        current = cell_data(index, Qt.ItemDataRole.EditRole)
        if current is not None and abs(float(current) - value) < 1e-9:
            return  # nothing changed, nothing to send
        self.editCommitted.emit(QPersistentModelIndex(index), value)


class OrdersView(FilteredTable):
    """The working-orders grid.

    Double-click (or F2) a Qty, Limit or Stop cell to modify it; Enter sends the
    request, Escape abandons it. The entry follows the ticket's rules
    (:class:`OrderEditDelegate`); before it goes, ``confirm_modify`` (the controller's,
    when bound) may ask the trader, as the ticket does for a large order. A
    modification core refuses (off the tick, over a limit) comes back through
    :meth:`refuse_edit`: the cell opens again on the entry, flagged with the reason.
    Delete cancels the selected orders.

    Signals
    -------
    cancelRequested(int order_id): context menu "Cancel order", or the Delete key.
    cancelAllRequested(): the "Cancel all" button or context menu.
    modifyRequested(int order_id, str field, float value): forwarded from the model.
    entryRefused(str): why an entry was not sent (for the status bar).
    """

    cancelRequested = Signal(int)
    cancelAllRequested = Signal()
    modifyRequested = Signal(int, str, float)
    entryRefused = Signal(str)

    def __init__(self, model: OrdersModel | None = None, parent: QWidget | None = None):
        model = model if model is not None else OrdersModel()
        super().__init__(model, parent, placeholder="Filter symbol, strategy, status…")
        self.orders = model
        if model.parent() is None:
            model.setParent(self)
        model.modifyRequested.connect(self.modifyRequested)
        #: Asked before a modification is sent (None: it goes at once).
        self.confirm_modify: ConfirmModify | None = None
        self.delegate = OrderEditDelegate(self.view)
        self.view.setItemDelegate(self.delegate)
        self.delegate.entryRefused.connect(self.entryRefused)
        # Queued: the modification is asked about and sent once the editor has closed.
        self.delegate.editCommitted.connect(self._send_edit, Qt.ConnectionType.QueuedConnection)
        self.view.set_default_columns(ORDER_COLUMNS)
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

    def _send_edit(self, index: QPersistentModelIndex, value: float) -> None:
        """Ask (``confirm_modify``), then hand the modification to the model, which
        marks the cell requested and emits ``modifyRequested``."""
        if not index.isValid():
            return  # the order left the grid meanwhile
        row = cell_data(index, ROW_ROLE) or {}
        event = row.get("__event")
        field = _field(index)
        if (
            self.confirm_modify is not None
            and isinstance(event, OrderUpdated)
            and not self.confirm_modify(event, field, value)
        ):
            self.entryRefused.emit("not sent: cancelled at confirmation")
            return
        self.proxy.setData(index, value, Qt.ItemDataRole.EditRole)

    def refuse_edit(self, order_id: int, field: str, value: float, reason: str) -> None:
        """A modification of ``order_id``'s ``field`` to ``value`` was refused: open the
        cell again on that entry, flagged with ``reason`` (said in the status bar when
        the order can no longer be edited)."""
        column = self.orders.column_of(field)
        for r in range(self.proxy.rowCount() if not self.readonly_reason else 0):
            index = self.proxy.index(r, column)
            row = cell_data(index, ROW_ROLE) or {}
            if row.get("order_id") == order_id and index.flags() & Qt.ItemFlag.ItemIsEditable:
                self.delegate.reopen[(order_id, field)] = (value, reason)
                self.view.setCurrentIndex(index)
                self.view.edit(index)
                if self.view.state() == QAbstractItemView.State.EditingState:
                    return  # the reopened editor says it
                self.delegate.reopen.pop((order_id, field), None)
                break
        self.entryRefused.emit(f"not sent: {reason}")

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
