"""Audit trail model, fed by :class:`core.events.AuditRecorded` (append-only)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QColor, QFont

from core.events import AuditRecorded
from gui import theme
from gui.models.base import LEFT, RIGHT, AppendOnlyModel, Column
from gui.models.formatting import fmt_text, fmt_time

if TYPE_CHECKING:
    from core.session import ConsoleSession

#: Results starting with these words read as refusals or failures.
BAD_RESULTS = ("refused", "rejected", "error", "failed", "denied")
GOOD_RESULTS = ("accepted", "ok", "done", "filled", "sent")
#: Actions that stand out in the trail.
LOUD_ACTIONS = frozenset({"emergency_stop", "set_trading_state", "cancel_all", "halt"})


def result_colour(value: Any, row: Mapping[str, Any]) -> QColor | None:
    """Red for refusals and errors, green for acceptances."""
    text = str(value or "").strip().lower()
    if text.startswith(BAD_RESULTS):
        return theme.colour(theme.LOSS)
    if text.startswith(GOOD_RESULTS):
        return theme.colour(theme.GAIN)
    return None


def _action_colour(value: Any, row: Mapping[str, Any]) -> QColor | None:
    return theme.colour(theme.AMBER) if value in LOUD_ACTIONS else None


def action_words(value: Any, row: Mapping[str, Any] | None = None) -> str:
    """Core's action code as words: ``set_trading_state`` -> ``Set trading state``."""
    text = fmt_text(value).replace("_", " ")
    return text[:1].upper() + text[1:]  # not str.capitalize(): it would lower "IB"


# Strategy comes late: most records (risk, system, account-wide cancels) have none; it
# stays for the order records that have one, and for filtering.
COLUMNS: tuple[Column, ...] = (
    Column("time", "Time", fmt_time, LEFT, mono=True, width=9),
    Column("actor", "Actor", fmt_text, LEFT, width=9),
    # 20: "Emergency stop preview" in full, so a dry run never reads as a real stop.
    Column("action", "Action", action_words, LEFT, _action_colour, width=20),
    Column("subject", "Subject", fmt_text, LEFT, mono=True, width=34),
    Column("result", "Result", fmt_text, LEFT, result_colour, width=40),
    Column("order_id", "Order", fmt_text, RIGHT, width=6),
    Column("strategy", "Strategy", fmt_text, LEFT, width=9),
)


class AuditModel(AppendOnlyModel):
    """The audit trail, newest last; capped at ``max_rows`` (oldest dropped).

    Slots: :meth:`on_audit_recorded`; :meth:`load` replaces all rows.
    """

    columns = COLUMNS

    def __init__(
        self, parent: QObject | None = None, *, max_rows: int = 20_000, frame_ms: int = 16
    ) -> None:
        super().__init__(COLUMNS, parent, max_rows=max_rows, frame_ms=frame_ms)
        self._bold = QFont(theme.ui_font())
        self._bold.setBold(True)

    def bind(self, session: ConsoleSession) -> None:
        """Show ``session``'s audit trail: what is recorded so far, then each record."""
        session.audit.recorded += self.on_audit_recorded
        self.load(list(session.audit.records))

    def on_audit_recorded(self, event: AuditRecorded) -> None:
        """Append a record."""
        self.append(self.row_from_event(event))

    def load(self, events: Iterable[AuditRecorded]) -> None:
        """Replace every row with ``events`` (e.g. today's audit from the store)."""
        rows = [self.row_from_event(e) for e in events][-self.max_rows :]
        self._seq = len(rows)
        self.reset((i + 1, row) for i, row in enumerate(rows))

    @staticmethod
    def row_from_event(event: AuditRecorded) -> dict[str, Any]:
        """The row dict for an event."""
        return {
            "time": event.time,
            "actor": event.actor,
            "action": event.action,
            "subject": event.subject,
            "result": event.result,
            "order_id": event.order_id,
            "strategy": event.strategy,
            "__event": event,
        }

    def cell_font(self, row: Mapping[str, Any], column: Column) -> QFont | None:
        if column.key == "action" and row.get("action") in LOUD_ACTIONS:
            return self._bold
        return super().cell_font(row, column)

    def display_text(self, pos: int, column: int) -> str:
        """The cell's text for the filter; an action also matches its raw code name
        (``set_trading_state``), the name in logs and the store."""
        text = super().display_text(pos, column)
        if self._columns[column].key == "action":
            return f"{text} {self.row_at(pos).get('action') or ''}"
        return text

    def row_tooltip(self, row: Mapping[str, Any], column: Column) -> str | None:
        if column.key in ("subject", "result"):
            return str(row.get(column.key) or "") or None
        if column.key == "action":
            return str(row.get("action") or "") or None  # the raw code name
        return None
