"""Fills of the day: newest first, filterable, with "send to ticket" and copy."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QWidget

from gui.models.fills import FillsModel
from gui.widgets.table_view import DefaultColumns, FilteredTable

#: A fill as a trader reads it: when, what, which way, how many, at what price; then
#: the money and the references. The first five fit the Fills dock at 1366x768.
FILL_COLUMNS = DefaultColumns(
    order=("time", "symbol", "side", "quantity", "price"),
    widths={"time": 8, "symbol": 7.5, "side": 4, "quantity": 7, "price": 8},
)


class FillsView(FilteredTable):
    """The fills grid.

    Signals
    -------
    sendToTicketRequested(FillRecorded): context menu "Send to ticket".
    """

    sendToTicketRequested = Signal(object)

    def __init__(self, model: FillsModel | None = None, parent: QWidget | None = None):
        model = model if model is not None else FillsModel()
        super().__init__(model, parent, placeholder="Filter symbol, strategy, exec id…")
        self.fills = model
        if model.parent() is None:
            model.setParent(self)
        self.finish_toolbar()
        self.view.set_default_columns(FILL_COLUMNS)
        self.view.sortByColumn(model.column_of("time"), Qt.SortOrder.DescendingOrder)

    def context_actions(self, source_row: int | None) -> list[QAction | None]:
        if source_row is None:
            return []
        event = self.fills.event_at(source_row)
        if event is None:
            return []
        ticket = self.make_action(
            "Send to ticket", "ticket", lambda: self.sendToTicketRequested.emit(event)
        )
        copy = self.make_action(
            "Copy exec id", "copy", lambda: QGuiApplication.clipboard().setText(event.exec_id)
        )
        return [ticket, copy]
