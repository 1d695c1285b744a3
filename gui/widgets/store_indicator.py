"""The store's health in the status bar: its state and the fills not durable yet."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtWidgets import QLabel, QWidget

from core.events import StoreHealthChanged
from gui import theme

if TYPE_CHECKING:
    from core.session import ConsoleSession

_COLOURS = {
    "ok": theme.TEXT_DIM,
    "slow": theme.AMBER,
    "failing": theme.LOSS,
    "lease lost": theme.LOSS,
    "closed": theme.TEXT_FAINT,
}


class StoreIndicator(QLabel):
    """``● store`` while all is well; says so, in colour, when the store is slow or
    failing, and how many fills wait to be journalled. The tooltip has the detail.

    Slot: :meth:`on_store_health` (a :class:`core.events.StoreHealthChanged`).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.setToolTip("no store: fills are kept in memory only")
        self.hide()  # until a store reports

    def bind(self, session: ConsoleSession) -> None:
        """Follow ``session``'s store (stays hidden when it keeps everything in memory)."""
        session.storeHealthChanged += self.on_store_health
        health = session.store_health()
        if health is not None:
            self.on_store_health(health)

    def on_store_health(self, event: StoreHealthChanged) -> None:
        """Show ``event``."""
        words = "store" if event.state == "ok" else f"store {event.state}"
        if event.state == "lease lost":
            words = "store: writer taken over, nothing written"
        if event.pending_fills:
            s = "" if event.pending_fills == 1 else "s"
            words += f" · {event.pending_fills} fill{s} not journalled"
        self.setText(f"● {words}")
        weight = 400 if event.state == "ok" else 600
        colour = _COLOURS.get(event.state, theme.AMBER)
        self.setStyleSheet(f"color: {colour}; font-weight: {weight}; padding: 0 8px;")
        detail = f"\n{event.message}" if event.message else ""
        self.setToolTip(f"Store writer {event.writer}: {event.state}{detail}")
        self.show()
