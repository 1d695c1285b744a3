"""Positions grid model, fed by :class:`core.events.PositionChanged`.

One row per (strategy, contract). Flat positions stay in the grid (their realized P&L
still counts for the day; the view can hide them). Rows of the ``external`` bucket and
of contracts with a reconciliation break are tinted; a row whose mark stopped updating
shows a STALE marker and its last price in italics.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QColor, QFont

from core.events import (
    EXTERNAL,
    AccountValuesChanged,
    PositionChanged,
    ReconciliationBreakFound,
)
from gui import theme
from gui.models.base import CENTER, LEFT, RIGHT, Column, KeyedTableModel
from gui.models.formatting import (
    clean,
    decimals_for_tick,
    fmt_money,
    fmt_percent,
    fmt_pnl,
    fmt_price,
    fmt_quantity,
    fmt_text,
    is_missing,
)

if TYPE_CHECKING:
    from core.session import ConsoleSession


def _pnl(value: Any, row: Mapping[str, Any]) -> QColor | None:
    return theme.pnl_colour(value)


def _qty_colour(value: Any, row: Mapping[str, Any]) -> QColor | None:
    if is_missing(value) or value == 0:
        return theme.colour(theme.TEXT_FAINT)
    return theme.colour(theme.BUY) if value > 0 else theme.colour(theme.SELL)


def _flag_text(value: Any, row: Mapping[str, Any]) -> str:
    flags = [name for name, on in (("BREAK", row.get("_break")), ("STALE", value)) if on]
    return " ".join(flags)


def _flag_colour(value: Any, row: Mapping[str, Any]) -> QColor | None:
    return theme.colour(theme.AMBER) if value or row.get("_break") else None


def _last_colour(value: Any, row: Mapping[str, Any]) -> QColor | None:
    return theme.colour(theme.TEXT_DIM) if row.get("stale") else None


#: In the order a trader reads a position: what, how much, where it trades, what it
#: makes today and open; the rest after (a 1366 px screen cut the P&L off before).
COLUMNS: tuple[Column, ...] = (
    Column("strategy", "Strategy", fmt_text, LEFT, width=10),
    Column("symbol", "Symbol", fmt_text, LEFT, width=8, mono=False),
    Column("quantity", "Qty", fmt_quantity, RIGHT, _qty_colour, width=8),
    Column("last", "Last", fmt_price, RIGHT, _last_colour, width=9),
    Column("daily_pnl", "Daily P&L", fmt_pnl, RIGHT, _pnl, width=11),
    Column("unrealized_pnl", "Unrealized", fmt_pnl, RIGHT, _pnl, width=11),
    Column(
        "stale",
        "Flag",
        _flag_text,
        CENTER,
        _flag_colour,
        mono=False,
        width=7,
        tooltip="BREAK: IB's position differs from the journal's (hover the row for "
        "why); STALE: the market data for this contract stopped updating",
    ),
    Column("market_value", "Mkt value", fmt_money, RIGHT, width=12),
    Column("realized_pnl", "Realized", fmt_pnl, RIGHT, _pnl, width=11),
    Column("avg_cost", "Avg cost", fmt_price, RIGHT, width=9),
    Column(
        "pct_nlv",
        "% NLV",
        fmt_percent,
        RIGHT,
        width=7,
        tooltip="Market value as a percentage of the account's net liquidation",
    ),
)

PositionKey = tuple[str, int]


class PositionsModel(KeyedTableModel):
    """Positions by (strategy, con_id).

    Slots: :meth:`on_position_changed`, :meth:`on_account_values`,
    :meth:`on_reconciliation_break`, :meth:`on_reconciled`. Also :meth:`set_net_liquidation`,
    :meth:`set_tick`, :meth:`mark_break`, :meth:`clear_break`.
    """

    columns = COLUMNS

    def __init__(self, parent: QObject | None = None, *, frame_ms: int = 16) -> None:
        super().__init__(COLUMNS, parent, frame_ms=frame_ms)
        self._net_liquidation: float | None = None
        self._ticks: dict[int, int] = {}  # con_id -> price decimals
        self._breaks: dict[int, str] = {}  # con_id -> description
        self._break_events: dict[int, ReconciliationBreakFound] = {}  # for resolving
        self._bold = QFont(theme.ui_font())
        self._bold.setBold(True)
        self._italic_mono = QFont(theme.number_font())
        self._italic_mono.setItalic(True)

    def bind(self, session: ConsoleSession) -> None:
        """Show ``session``'s book: its positions now and every change, the account's
        net liquidation, reconciliation breaks and stale marks."""
        session.portfolio.positionChanged += self.on_position_changed
        session.portfolio.reconciliation.reconciliationBreak += self.on_reconciliation_break
        session.portfolio.reconciliation.reconciled += self.on_reconciled
        session.account.valuesChanged += self.on_account_values
        session.market.staleChanged += self.on_stale_changed
        for event in session.position_events():
            self.on_position_changed(event)

    # ----- slots ---------------------------------------------------------------------
    def on_position_changed(self, event: PositionChanged) -> None:
        """Insert or update the row for the event's (strategy, con_id)."""
        self.upsert((event.strategy, event.con_id), self.row_from_event(event))

    def on_account_values(self, event: AccountValuesChanged) -> None:
        """Take the account's net liquidation for the % NLV column."""
        if event.net_liquidation is not None:
            self.set_net_liquidation(event.net_liquidation)

    def on_reconciliation_break(self, event: ReconciliationBreakFound) -> None:
        """Highlight every row of the contract whose IB position differs from ours."""
        self._break_events[event.con_id] = event
        self.mark_break(
            event.con_id,
            f"Reconciliation break: IB {event.ib_quantity:g}, stored "
            f"{event.stored_quantity:g} ({event.likely_cause})",
        )

    def on_reconciled(self, breaks: list[ReconciliationBreakFound]) -> None:
        """A reconciliation finished: contracts it no longer finds lose their mark."""
        still = {brk.con_id for brk in breaks}
        for con_id in list(self._breaks):
            if con_id not in still:
                self.clear_break(con_id)

    def on_stale_changed(self, con_id: int, stale: bool) -> None:
        """The contract's mark stopped (or resumed) updating: flag its rows."""
        for key in list(self.keys()):
            if isinstance(key, tuple) and key[1] == con_id:
                self.patch(key, stale=stale)

    # ----- commands ------------------------------------------------------------------
    def set_net_liquidation(self, value: float | None) -> None:
        """Set the account's net liquidation and recompute % NLV for every row."""
        value = clean(value)
        if value == self._net_liquidation:
            return
        self._net_liquidation = value
        self.rederive()  # % NLV of every row, once per batch; unchanged rows emit nothing

    def net_liquidation(self) -> float | None:
        """The net liquidation used for % NLV."""
        return self._net_liquidation

    def set_tick(self, con_id: int, tick: float | None) -> None:
        """Show the contract's prices with the decimals of its minimum tick."""
        self._ticks[con_id] = decimals_for_tick(tick)
        self._repatch(con_id)

    def mark_break(self, con_id: int, description: str = "Reconciliation break") -> None:
        """Highlight the contract's rows as a reconciliation break."""
        self._breaks[con_id] = description
        self._repatch(con_id)

    def clear_break(self, con_id: int) -> None:
        """Remove a contract's reconciliation-break highlight."""
        self._break_events.pop(con_id, None)
        if self._breaks.pop(con_id, None) is not None:
            self._repatch(con_id)

    def breaks(self) -> dict[int, str]:
        """Contracts currently marked as breaks, with their descriptions."""
        return dict(self._breaks)

    def break_event(self, con_id: int) -> ReconciliationBreakFound | None:
        """The reconciliation's report of a contract's break (None if not a break)."""
        return self._break_events.get(con_id)

    def event_at(self, pos: int) -> PositionChanged | None:
        """The last :class:`PositionChanged` of model row ``pos``."""
        event = self.row_at(pos).get("__event")
        return event if isinstance(event, PositionChanged) else None

    def totals(self) -> dict[str, float]:
        """Sums of market value and P&L columns over all rows (missing values skipped)."""
        out = {"market_value": 0.0, "unrealized_pnl": 0.0, "realized_pnl": 0.0, "daily_pnl": 0.0}
        for row in self._rows:
            for k in out:
                v = row.get(k)
                if not is_missing(v):
                    out[k] += v
        return out

    @staticmethod
    def row_from_event(event: PositionChanged) -> dict[str, Any]:
        """The row dict for an event (missing marks become None)."""
        return {
            "strategy": event.strategy,
            "symbol": event.symbol,
            "quantity": event.quantity,
            "avg_cost": clean(event.avg_cost),
            "last": clean(event.last),
            "market_value": clean(event.market_value),
            "unrealized_pnl": clean(event.unrealized_pnl),
            "realized_pnl": clean(event.realized_pnl),
            "daily_pnl": clean(event.daily_pnl),
            "stale": event.stale,
            "sec_type": event.sec_type,
            "con_id": event.con_id,
            "__event": event,
        }

    # ----- hooks ---------------------------------------------------------------------
    def derive(self, key: Hashable, row: dict[str, Any]) -> dict[str, Any]:
        con_id = row.get("con_id")
        row["_decimals"] = self._ticks.get(con_id, 2) if isinstance(con_id, int) else 2
        row["_break"] = self._breaks.get(con_id) if isinstance(con_id, int) else None
        if row.get("quantity") == 0:
            row["avg_cost"] = None  # meaningless once flat
        mv = row.get("market_value")
        nlv = self._net_liquidation
        row["pct_nlv"] = None if is_missing(mv) or not nlv else 100.0 * mv / nlv
        return row

    def row_background(self, row: Mapping[str, Any]) -> QColor | None:
        if row.get("_break"):
            return theme.BREAK_TINT
        if row.get("strategy") == EXTERNAL:
            return theme.EXTERNAL_TINT
        return None

    def row_foreground(self, row: Mapping[str, Any]) -> QColor | None:
        if row.get("quantity") == 0:
            return theme.colour(theme.TEXT_DIM)
        return None

    def row_tooltip(self, row: Mapping[str, Any], column: Column) -> str | None:
        if row.get("_break"):
            return str(row["_break"])
        if row.get("stale") and column.key in ("last", "stale", "market_value"):
            return "The market data for this contract stopped updating; marks are old."
        if row.get("strategy") == EXTERNAL and column.key == "strategy":
            return "Not placed by the console (TWS or another client); unattributed."
        return None

    def cell_font(self, row: Mapping[str, Any], column: Column) -> QFont | None:
        if column.key == "last" and row.get("stale"):
            return self._italic_mono
        if column.key == "stale" and (row.get("stale") or row.get("_break")):
            return self._bold
        return super().cell_font(row, column)

    def _repatch(self, con_id: int) -> None:
        # Pending rows are derived when applied; applied rows are re-derived via patch.
        for key, row in zip(self._keys, self._rows, strict=True):
            if row.get("con_id") == con_id:
                self.patch(key)
