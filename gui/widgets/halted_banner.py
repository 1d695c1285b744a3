"""A red strip across the window while trading is HALTED; a person must reset it."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from core.events import TradingState, TradingStateChanged
from gui import theme
from gui.models.formatting import fmt_time

if TYPE_CHECKING:
    from core.session import ConsoleSession

ACCOUNT_SCOPE = "account"


class HaltedBanner(QFrame):
    """Shown while the account's trading state is HALTED, hidden otherwise.

    Slots: :meth:`on_trading_state_changed`, :meth:`set_halted`, :meth:`clear`.

    Signals
    -------
    resetRequested(): the person pressed "Reset…" (the window confirms and asks core).
    """

    resetRequested = Signal()

    def __init__(self, parent: QWidget | None = None, *, scope: str = ACCOUNT_SCOPE) -> None:
        super().__init__(parent)
        self.scope = scope
        self.setObjectName("haltedBanner")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(12)
        self.icon_label = QLabel(self)
        self.icon_label.setPixmap(theme.icon("halted").pixmap(22, 22))
        self.title_label = QLabel("TRADING HALTED", self)
        self.title_label.setObjectName("haltedTitle")
        self.detail_label = QLabel(self)
        self.detail_label.setWordWrap(True)
        detail_font = QFont(theme.ui_font())
        self.detail_label.setFont(detail_font)
        self.reset_button = QPushButton("Reset…", self)
        self.reset_button.setToolTip("Return to ACTIVE (asks for confirmation; audited)")
        self.reset_button.clicked.connect(self.resetRequested)
        layout.addWidget(self.icon_label)
        layout.addWidget(self.title_label)
        layout.addWidget(self.detail_label, 1)
        layout.addWidget(self.reset_button)
        self.hide()

    def bind(self, session: ConsoleSession) -> None:
        """Follow ``session``'s trading state (shown at once when it starts HALTED)."""
        session.risk.tradingStateChanged += self.on_trading_state_changed
        for event in session.trading_state_events():
            self.on_trading_state_changed(event)

    def on_trading_state_changed(self, event: TradingStateChanged) -> None:
        """Show on HALTED for this banner's scope; hide on any other state."""
        if event.scope != self.scope:
            return
        if event.state is TradingState.HALTED:
            self.set_halted(event.reason, event.time, event.changed_by)
        else:
            self.clear()

    def set_halted(self, reason: str, since: datetime | None = None, by: str = "") -> None:
        """Show the banner with why, since when and by whom."""
        parts = [reason or "no reason given"]
        if since is not None:
            parts.append(f"since {fmt_time(since)}")
        if by:
            parts.append(f"by {by}")
        self.detail_label.setText(" · ".join(parts))
        self.setToolTip(
            "Trading is halted: nothing but the emergency stop's own flattening orders "
            "is sent. A person must reset it."
        )
        self.show()

    def clear(self) -> None:
        """Hide the banner."""
        self.hide()
