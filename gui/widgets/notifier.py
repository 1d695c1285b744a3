"""Notifications: a fill, a rejection or a trading-state change shows for a few seconds
over the window's top right corner, and optionally sounds.

The sound is the desktop's alert (``QApplication.beep``): Qt's ``QSoundEffect`` lives in
QtMultimedia, which the PySide6 wheels the console depends on do not ship. The toggle
is *View > Sound on fills and rejections*, remembered with the layout.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from core.events import FillRecorded, OrderRejected, TradingStateChanged
from gui import theme

if TYPE_CHECKING:
    from core.session import ConsoleSession

#: How long one notification stays (ms); queued ones follow.
SHOW_MS = 4000
#: Notifications remembered in ``history``.
HISTORY = 200
PLURALS = {"fill": "fills", "rejected": "rejections", "state": "state changes"}

KIND_COLOURS = {"fill": theme.GAIN, "rejected": theme.LOSS, "state": theme.AMBER}


def rejection_text(event: OrderRejected) -> str:
    """One line for a refused order: whose refusal (IB's code, or the console's) and why."""
    who = f"IB {event.code}" if event.code else "refused"
    return f"Order {event.order_id or ''} {event.symbol}: {who}: {event.message}"


class Notifier(QLabel):
    """A toast over the top right of ``parent``; :meth:`notify` queues one."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("notification")
        self.setAccessibleName("Notification")
        self.setWordWrap(True)
        self.setMaximumWidth(420)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hide()
        self.sound = False
        # The latest notifications (for tests and a future history view): bounded, the
        # console runs all week.
        self.history: deque[tuple[str, str]] = deque(maxlen=HISTORY)
        self._queue: deque[list[Any]] = deque()  # [kind, latest text, how many]
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SHOW_MS)
        self._timer.timeout.connect(self._next)

    def bind(self, session: ConsoleSession) -> None:
        """Toast ``session``'s fills, rejections and the account's trading-state changes."""
        session.trades.fillReceived += self.on_fill
        session.trades.orderRejected += self.on_rejected
        session.risk.tradingStateChanged += self.on_trading_state

    def on_fill(self, fill: FillRecorded) -> None:
        """A fill of this console."""
        side = "BOUGHT" if fill.side == "BOT" else "SOLD"
        self.notify(
            "fill", f"{side} {fill.quantity:,g} {fill.symbol} @ {fill.price:,g} ({fill.strategy})"
        )

    def on_rejected(self, event: OrderRejected) -> None:
        """An order or a modification refused."""
        self.notify("rejected", f"REJECTED  {rejection_text(event)}")

    def on_trading_state(self, event: TradingStateChanged) -> None:
        """The account's trading state changed (strategies' states are the panel's)."""
        if event.scope == "account" and event.previous != event.state:
            self.notify("state", f"Trading {event.state.value}: {event.reason}")

    def notify(self, kind: str, text: str) -> None:
        """Show ``text`` (kind: ``fill``, ``rejected`` or ``state``), after any shown now."""
        self.history.append((kind, text))
        if self.sound and kind in ("fill", "rejected", "state"):
            QApplication.beep()
        for waiting in self._queue:
            if waiting[0] == kind:  # a burst (a sweep's 50 fills) is one toast a kind
                waiting[1] = text
                waiting[2] += 1
                break
        else:
            self._queue.append([kind, text, 1])
        if not self._timer.isActive():
            self._next()

    def _next(self) -> None:
        if not self._queue:
            self.hide()
            return
        kind, text, count = self._queue.popleft()
        if count > 1:
            text = f"{count} {PLURALS.get(kind, kind)}, the latest:\n{text}"
        colour = KIND_COLOURS.get(kind, theme.TEXT)
        self.setText(text)
        self.setStyleSheet(
            f"background: {theme.RAISED}; color: {theme.TEXT}; border: 2px solid {colour};"
            " border-radius: 6px; padding: 8px 12px; font-weight: 600;"
        )
        self.adjustSize()
        parent = self.parentWidget()
        if parent is not None:
            self.move(parent.width() - self.width() - 16, 96)
        self.raise_()
        self.show()
        self._timer.start()
