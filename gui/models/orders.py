"""Working-orders model, fed by :class:`core.events.OrderUpdated`.

Rows are keyed by ``(client_id, order_id)``, or by ``("perm", perm_id)`` for orders with
no API order id (placed in TWS by hand).

An order the gateway never received after a drop, or no longer knows after a
reconnect (``Lost``), stays in the grid, its status and message in red, until the
trading day ends; so does an order that ended while the console was disconnected (core
marks it ``while_away``: cancelled in TWS, filled), since nobody saw it end. While the
connection is down, working orders show ``link down ·`` before their status, in amber:
core marks them ``link_down`` until IB confirms them again after the reconnect.

Done orders (Filled, Cancelled, ApiCancelled, NotSent) **linger**: the row stays for
``done_linger_ms`` (default 3 s), dimmed and showing its final status, then leaves the
grid. A row that vanished the instant it filled would leave the trader wondering whether
it filled or was cancelled; three seconds is enough to see it. ``done_linger_ms=0``
removes done orders immediately. An order first seen already done is not shown.

Price and quantity cells are editable while the order works. Editing does not change
the row: :meth:`setData` emits ``modifyRequested(order_id, field, value)`` and marks the
cell *requested* (italic amber, tooltip) until core confirms with an ``OrderUpdated``
carrying that value, or refuses with an ``OrderRejected``, or the order ends.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont

from core.events import DONE_STATUSES as DONE
from core.events import EXTERNAL, LOST, NOT_SENT, OrderRejected, OrderUpdated
from gui import theme
from gui.models.base import CENTER, LEFT, RIGHT, Column, KeyedTableModel
from gui.models.formatting import (
    clean,
    decimals_for_tick,
    fmt_price,
    fmt_quantity,
    fmt_text,
    fmt_time,
    is_missing,
)

if TYPE_CHECKING:
    from core.session import ConsoleSession

DONE_STATUSES = frozenset(DONE)
#: Fields a person may modify in place.
EDITABLE_FIELDS = ("quantity", "limit_price", "stop_price")

STATUS_COLOURS = {
    "Submitted": theme.ACCENT,
    "PreSubmitted": theme.TEXT_DIM,
    "PendingSubmit": theme.AMBER,
    "PendingCancel": theme.AMBER,
    "ApiPending": theme.AMBER,
    "Inactive": theme.LOSS,
    "Filled": theme.GAIN,
    "Cancelled": theme.TEXT_FAINT,
    "ApiCancelled": theme.TEXT_FAINT,
    NOT_SENT: theme.AMBER,
    LOST: theme.LOSS,
}


def _side_colour(value: Any, row: Mapping[str, Any]) -> QColor | None:
    return theme.side_colour(value)


#: Before the status of a working order while the connection is down (before, so a
#: narrow Status column still shows it when it elides the rest).
LINK_DOWN_MARK = "link down · "


def _status_colour(value: Any, row: Mapping[str, Any]) -> QColor | None:
    name = theme.AMBER if row.get("link_down") else STATUS_COLOURS.get(value)
    return theme.colour(name) if name else None


def _status_text(value: Any, row: Mapping[str, Any]) -> str:
    text = fmt_text(value, row)
    return LINK_DOWN_MARK + text if row.get("link_down") else text


def _id_text(value: Any, row: Mapping[str, Any]) -> str:
    return str(value) if value else ""  # 0: placed in TWS, no API order id


def _filled_text(value: Any, row: Mapping[str, Any]) -> str:
    if is_missing(value) or value == 0:
        return ""
    return fmt_quantity(value, row)


# The order as a trader reads it first (what, how much, at what price, where it stands),
# then the references; the message last, where it stretches.
COLUMNS: tuple[Column, ...] = (
    Column("time", "Time", fmt_time, LEFT, mono=True, width=9),
    Column("symbol", "Symbol", fmt_text, LEFT, width=8),
    Column("action", "Side", fmt_text, CENTER, _side_colour, width=5),
    Column("quantity", "Qty", fmt_quantity, RIGHT, editable=True, width=8),
    Column("filled", "Filled", _filled_text, RIGHT, width=8),  # as wide as Qty: "100,000"
    Column("order_type", "Type", fmt_text, CENTER, width=7),
    Column("limit_price", "Limit", fmt_price, RIGHT, editable=True, width=9),
    Column("stop_price", "Stop", fmt_price, RIGHT, editable=True, width=9),
    # Drawn in the UI font, though counted in number-font digits: 14 fits "PendingCancel".
    Column("status", "Status", _status_text, LEFT, _status_colour, width=14),
    Column("strategy", "Strategy", fmt_text, LEFT, width=10),
    Column("tif", "TIF", fmt_text, CENTER, width=4),
    Column("order_id", "Id", _id_text, RIGHT, width=5),
    Column("message", "Message", fmt_text, LEFT, width=24),
)


def order_key(event: OrderUpdated) -> Hashable:
    """The row key of an order: ``(client_id, order_id)`` or ``("perm", perm_id)``."""
    if event.order_id:
        return (event.client_id, event.order_id)
    return ("perm", event.perm_id)


class OrdersModel(KeyedTableModel):
    """Working orders.

    Signals
    -------
    modifyRequested(int order_id, str field, float value): a person edited a cell;
        ``field`` is one of ``quantity``, ``limit_price``, ``stop_price``.

    Slots: :meth:`on_order_updated`, :meth:`on_order_rejected`; :meth:`set_tick`;
    :meth:`start_day`.
    """

    columns = COLUMNS
    modifyRequested = Signal(int, str, float)

    def __init__(
        self, parent: QObject | None = None, *, done_linger_ms: int = 3000, frame_ms: int = 16
    ) -> None:
        super().__init__(COLUMNS, parent, frame_ms=frame_ms)
        self.done_linger_ms = done_linger_ms
        self._ticks: dict[int, int] = {}
        self._requested_font = QFont(theme.number_font())
        self._requested_font.setItalic(True)

    def bind(self, session: ConsoleSession) -> None:
        """Show ``session``'s orders: every one it knows now, then each update; the
        previous day's finished orders leave when a new trading day starts."""
        session.trades.orderUpdated += self.on_order_updated
        session.trades.orderRejected += self.on_order_rejected
        session.trading_day.dayStarted += lambda e: self.start_day(e.start)
        session.trades.republish_orders()  # the orders known before the window bound

    # ----- slots ---------------------------------------------------------------------
    def on_order_updated(self, event: OrderUpdated) -> None:
        """Apply an order's new state; done orders leave after the linger time."""
        key = order_key(event)
        known = key in self or key in self._pending
        if not event.is_working and not known:
            return
        row = self.row_from_event(event)
        previous = self._pending.get(key) or self.row(key) or {}
        requested = dict(previous.get("_requested") or {})
        for name in list(requested):
            if not event.is_working or _equal(row.get(name), requested[name]):
                del requested[name]
        row["_requested"] = requested or None
        if event.placed is None and previous.get("time") is not None:
            # The order's time is when it was placed (first seen), not its last status:
            # a modify or a partial fill must not make it look like a new order.
            row["time"] = previous["time"]
        self._learn_tick(event.con_id, event.min_tick)
        self.upsert(key, row)
        if not event.is_working:
            if event.status == LOST or event.while_away:
                # Stays until the day ends: the trader must see what was lost, or what
                # ended while nobody was watching.
                return
            if self.done_linger_ms <= 0:
                self.flush()
                self.remove(key)
            else:
                QTimer.singleShot(self.done_linger_ms, self, lambda: self._expire(key))

    def start_day(self, start: datetime) -> None:
        """A new trading day from ``start``: drop finished orders last updated before it
        (orders still working, e.g. GTC, stay: they can still fill today)."""
        self.remove_where(lambda row: row["status"] in DONE and row["time"] < start)

    def on_order_rejected(self, event: OrderRejected) -> None:
        """A modification was refused: drop the cells' *requested* marks for the order."""
        for key in self._keys:
            row = self.row(key)
            if row and row.get("order_id") == event.order_id and row.get("_requested"):
                self.patch(key, _requested=None, message=event.message)

    def set_tick(self, con_id: int, tick: float | None) -> None:
        """Show the contract's prices with the decimals of its minimum tick."""
        self._ticks[con_id] = decimals_for_tick(tick)
        for key, row in zip(self._keys, self._rows, strict=True):
            if row.get("con_id") == con_id:
                self.patch(key)

    def _learn_tick(self, con_id: int, tick: float | None) -> None:
        """A tick recorded with an event (e.g. restored from the journal after a
        restart), for a contract whose tick is not known here yet."""
        if tick and con_id not in self._ticks:
            self._ticks[con_id] = decimals_for_tick(tick)

    def tick_decimals(self, con_id: int) -> int:
        """Price decimals for a contract (2 when its tick is unknown)."""
        return self._ticks.get(con_id, 2)

    def event_at(self, pos: int) -> OrderUpdated | None:
        """The last :class:`OrderUpdated` of model row ``pos``."""
        event = self.row_at(pos).get("__event")
        return event if isinstance(event, OrderUpdated) else None

    def working_order_ids(self) -> list[int]:
        """Order ids of the rows still working."""
        return [r["order_id"] for r in self._rows if r.get("status") not in DONE_STATUSES]

    @staticmethod
    def row_from_event(event: OrderUpdated) -> dict[str, Any]:
        """The row dict for an event."""
        return {
            # When it was placed (core keeps it across restarts), not its last update.
            "time": event.placed or event.time,
            "order_id": event.order_id,
            "perm_id": event.perm_id,
            "strategy": event.strategy,
            "symbol": event.symbol,
            "action": event.action,
            "quantity": event.quantity,
            "filled": event.filled,
            "order_type": event.order_type,
            "limit_price": clean(event.limit_price),
            "stop_price": clean(event.stop_price),
            "tif": event.tif,
            "status": event.status,
            "message": event.message,
            "link_down": event.link_down,
            "while_away": event.while_away,
            "con_id": event.con_id,
            "sec_type": event.sec_type,
            "__event": event,
        }

    # ----- editing -------------------------------------------------------------------
    def is_editable(self, row: Mapping[str, Any], column: Column) -> bool:
        if row.get("status") in DONE_STATUSES or row.get("status") == "PendingCancel":
            return False
        if column.key == "quantity":
            return True
        return not is_missing(row.get(column.key))  # only prices the order type uses

    def setData(
        self,
        index: QModelIndex | QPersistentModelIndex,
        value: Any,
        role: int = Qt.ItemDataRole.EditRole,
    ) -> bool:
        """Ask core to modify the order; the row changes only when core confirms."""
        if role != Qt.ItemDataRole.EditRole or not index.isValid():
            return False
        col = self._columns[index.column()]
        row = self._rows[index.row()]
        if col.key not in EDITABLE_FIELDS or not self.is_editable(row, col):
            return False
        try:
            number = float(str(value).replace(",", ""))
        except (TypeError, ValueError):
            return False
        if is_missing(number) or number <= 0 or _equal(number, row.get(col.key)):
            return False
        if col.key == "quantity" and number < (row.get("filled") or 0):
            return False  # cannot shrink below what already filled
        requested = dict(row.get("_requested") or {})
        requested[col.key] = number
        self.patch(self._keys[index.row()], _requested=requested)
        self.modifyRequested.emit(int(row["order_id"]), col.key, number)
        return True

    # ----- hooks ---------------------------------------------------------------------
    def derive(self, key: Hashable, row: dict[str, Any]) -> dict[str, Any]:
        con_id = row.get("con_id")
        row["_decimals"] = self._ticks.get(con_id, 2) if isinstance(con_id, int) else 2
        return row

    def cell_text(self, row: Mapping[str, Any], column: Column) -> str:
        requested = row.get("_requested")
        if requested and column.key in requested:
            return column.fmt(requested[column.key], row)
        return super().cell_text(row, column)

    def cell_colour(self, row: Mapping[str, Any], column: Column) -> QColor | None:
        requested = row.get("_requested")
        if requested and column.key in requested:
            return theme.colour(theme.AMBER)
        if row.get("status") == LOST and column.key in ("status", "message"):
            return theme.colour(theme.LOSS)  # in doubt until looked at: never dimmed
        if row.get("status") in DONE_STATUSES:
            # A finished row is dimmed whole: a bright side or status would still read
            # as a live order.
            return self.row_foreground(row)
        return super().cell_colour(row, column)

    def row_background(self, row: Mapping[str, Any]) -> QColor | None:
        if row.get("status") in DONE_STATUSES:
            return theme.DONE_TINT
        if row.get("strategy") == EXTERNAL:
            return theme.EXTERNAL_TINT
        return None

    def row_foreground(self, row: Mapping[str, Any]) -> QColor | None:
        if row.get("status") in DONE_STATUSES:
            return theme.colour(theme.TEXT_FAINT)
        return None

    def row_tooltip(self, row: Mapping[str, Any], column: Column) -> str | None:
        requested = row.get("_requested")
        if requested and column.key in requested:
            return (
                f"Modification requested: {column.fmt(requested[column.key], row)}; "
                f"was {column.fmt(row.get(column.key), row)}. Waiting for IB."
            )
        if column.key in ("message", "status") and row.get("message"):
            return str(row["message"])  # why it ended: NotSent, Lost, a rejection
        if column.editable and self.is_editable(row, column):
            return "Double-click to modify"
        return None

    def cell_font(self, row: Mapping[str, Any], column: Column) -> QFont | None:
        requested = row.get("_requested")
        if requested and column.key in requested:
            return self._requested_font
        return super().cell_font(row, column)

    def _expire(self, key: Hashable) -> None:
        if key in self._pending:
            self.flush()
        row = self.row(key)
        if row is not None and row.get("status") in DONE_STATUSES:
            self.remove(key)


def _equal(a: Any, b: Any) -> bool:
    if is_missing(a) or is_missing(b):
        return is_missing(a) and is_missing(b)
    return abs(float(a) - float(b)) < 1e-9
