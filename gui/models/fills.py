"""Fills of the day, fed by :class:`core.events.FillRecorded` (and the journal at start).

Keyed by IB's ``exec_id``: a replayed execution updates its row instead of adding one,
and the commission, which IB reports separately, fills in when it arrives.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QColor

from core.events import EXTERNAL, FillRecorded
from gui import theme
from gui.models.base import CENTER, LEFT, RIGHT, Column, KeyedTableModel
from gui.models.formatting import (
    clean,
    decimals_for_tick,
    fmt_money,
    fmt_pnl,
    fmt_price,
    fmt_quantity,
    fmt_text,
    fmt_time,
)

if TYPE_CHECKING:
    from core.session import ConsoleSession

SIDE_NAMES = {"BOT": "BUY", "SLD": "SELL"}


def _side_text(value: Any, row: Mapping[str, Any]) -> str:
    return SIDE_NAMES.get(value, value or "")


def _side_colour(value: Any, row: Mapping[str, Any]) -> QColor | None:
    return theme.side_colour(value)


def _pnl_colour(value: Any, row: Mapping[str, Any]) -> QColor | None:
    return theme.pnl_colour(value)


def _commission_text(value: Any, row: Mapping[str, Any]) -> str:
    return fmt_money(value, row)


# What a trader checks first comes first, so a ~450 px dock shows the price without
# scrolling: time, symbol, side, quantity, price, then the money, then the references.
COLUMNS: tuple[Column, ...] = (
    Column("time", "Time", fmt_time, LEFT, mono=True, width=9),
    Column("symbol", "Symbol", fmt_text, LEFT, width=8),
    Column("side", "Side", _side_text, CENTER, _side_colour, width=5),
    Column("quantity", "Qty", fmt_quantity, RIGHT, width=8),
    Column("price", "Price", fmt_price, RIGHT, width=10),
    Column("realized_pnl", "Realized", fmt_pnl, RIGHT, _pnl_colour, width=11),
    Column("notional", "Value", fmt_money, RIGHT, width=12),
    Column(
        "commission",
        "Comm.",
        _commission_text,
        RIGHT,
        width=7,
        tooltip="Commission (blank until IB's commission report arrives)",
    ),
    Column("strategy", "Strategy", fmt_text, LEFT, width=11),
    Column("exchange", "Exch.", fmt_text, LEFT, width=9),  # "IDEALPRO" in full
    Column("order_id", "Order", fmt_text, RIGHT, width=6),
    Column("exec_id", "Exec id", fmt_text, LEFT, mono=True, width=22),
)


class FillsModel(KeyedTableModel):
    """Executions keyed by exec id.

    Slots: :meth:`on_fill_recorded`; :meth:`load` replaces all rows (journal load);
    :meth:`set_tick`; :meth:`start_day` drops the previous trading day's rows.
    """

    resort_ms = 0  # fills only arrive (and gain a commission): placed as they come

    columns = COLUMNS

    def __init__(self, parent: QObject | None = None, *, frame_ms: int = 16) -> None:
        super().__init__(COLUMNS, parent, frame_ms=frame_ms)
        self._ticks: dict[int, int] = {}
        self._day_start: datetime | None = None

    def bind(self, session: ConsoleSession) -> None:
        """Show ``session``'s fills of the trading day, this console's and other
        consoles' (the journal's earlier ones come from :meth:`load`)."""
        self.start_day(session.trading_day.start)
        session.trading_day.dayStarted += lambda e: self.start_day(e.start)
        session.trades.fillReceived += self.on_fill_recorded
        session.foreignFillReceived += self.on_fill_recorded

    def on_fill_recorded(self, event: FillRecorded) -> None:
        """Add the execution (or update it, e.g. when its commission arrives); one from
        before the trading day (a replay after a reconnect) belongs to history only."""
        if self._day_start is not None and event.time < self._day_start:
            return
        self._learn_tick(event)
        self.upsert(event.exec_id, self.row_from_event(event))

    def start_day(self, start: datetime) -> None:
        """A new trading day from ``start``: drop the earlier executions (they stay in
        the journal, for the history views)."""
        self._day_start = start
        self.remove_where(lambda row: row["time"] < start)

    def load(self, fills: Iterable[FillRecorded]) -> None:
        """Replace every row with ``fills`` (the day's journal), in one reset."""
        fills = list(fills)
        for f in fills:
            self._learn_tick(f)
        self.reset((f.exec_id, self.row_from_event(f)) for f in fills)

    def _learn_tick(self, fill: FillRecorded) -> None:
        """The tick recorded with the fill, for a contract whose tick is not known here
        yet: after a restart a price shows as it did (1.08005, not 1.08)."""
        if fill.min_tick and fill.con_id not in self._ticks:
            self._ticks[fill.con_id] = decimals_for_tick(fill.min_tick)

    def set_tick(self, con_id: int, tick: float | None) -> None:
        """Show the contract's prices with the decimals of its minimum tick."""
        self._ticks[con_id] = decimals_for_tick(tick)
        for key, row in zip(self._keys, self._rows, strict=True):
            if row.get("con_id") == con_id:
                self.patch(key)

    def event_at(self, pos: int) -> FillRecorded | None:
        """The :class:`FillRecorded` of model row ``pos``."""
        event = self.row_at(pos).get("__event")
        return event if isinstance(event, FillRecorded) else None

    @staticmethod
    def row_from_event(event: FillRecorded) -> dict[str, Any]:
        """The row dict for an event."""
        return {
            "time": event.time,
            "strategy": event.strategy,
            "symbol": event.symbol,
            "side": event.side,
            "quantity": event.quantity,
            "price": event.price,
            "notional": event.quantity * event.price * (event.multiplier or 1.0),
            "commission": clean(event.commission),
            "realized_pnl": clean(event.realized_pnl) or None,  # 0 means "opened": blank
            "exchange": event.exchange,
            "order_id": event.order_id,
            "exec_id": event.exec_id,
            "con_id": event.con_id,
            "sec_type": event.sec_type,
            "__event": event,
        }

    def derive(self, key: Hashable, row: dict[str, Any]) -> dict[str, Any]:
        con_id = row.get("con_id")
        row["_decimals"] = self._ticks.get(con_id, 2) if isinstance(con_id, int) else 2
        return row

    def row_background(self, row: Mapping[str, Any]) -> QColor | None:
        return theme.EXTERNAL_TINT if row.get("strategy") == EXTERNAL else None
