"""The console window's toolbar: the order actions, the account, read-only, the stop.

Left to right: Buy (F2), Sell (F3), Symbol (Ctrl+L) and Cancel all (Ctrl+Shift+C), each
with its shortcut in its tooltip and working from any part of the window; then the
account strip, the READ-ONLY badge (shown only in read-only mode, where the eye goes
first) and the emergency stop button. :class:`gui.mainwindow.MainWindow` puts the same
actions in its Trade menu and connects them (the ticket, the controller's commands).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QMainWindow, QSizePolicy, QToolBar, QWidget

from gui import shortcuts, theme
from gui.widgets.emergency_stop import EmergencyStopButton
from gui.widgets.status_labels import AccountStrip


def action_tooltip(action: QAction, why: str = "") -> str:
    """What ``action`` says on hover: ``why`` it is off, else its name and shortcut."""
    default = action.text().rstrip("…")
    shortcut = action.shortcut().toString()
    return why or (f"{default} ({shortcut})" if shortcut else default)


class MainToolBar(QToolBar):
    """The toolbar of ``window`` (its actions are the window's: their shortcuts work
    wherever the focus is); ``readonly_reason`` is the READ-ONLY badge's tooltip."""

    def __init__(self, window: QMainWindow, *, readonly_reason: str) -> None:
        super().__init__("Main", window)
        self.setObjectName("toolbar_main")
        self.setMovable(False)
        self.setFloatable(False)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.buy_action = QAction(theme.icon("buy"), "Buy", window)
        shortcuts.bind(self.buy_action, "buy")
        self.sell_action = QAction(theme.icon("sell"), "Sell", window)
        shortcuts.bind(self.sell_action, "sell")
        self.symbol_action = QAction(theme.icon("ticket"), "Symbol", window)
        shortcuts.bind(self.symbol_action, "symbol")
        self.cancel_all_action = QAction(theme.icon("cancel"), "Cancel all", window)
        shortcuts.bind(self.cancel_all_action, "cancel_all")
        for a, name in (
            (self.buy_action, "actionBuy"),
            (self.sell_action, "actionSell"),
            (self.symbol_action, "actionSymbol"),
            (self.cancel_all_action, "actionCancelAll"),
        ):
            a.setObjectName(name)
            a.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
            a.setToolTip(action_tooltip(a))
            self.addAction(a)
        spacer = QWidget(self)
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.addWidget(spacer)
        self.account_strip = AccountStrip(self)
        self.addWidget(self.account_strip)
        # Read-only is a state of the whole window, shown where the eye goes first.
        self.readonly_badge = QLabel("READ-ONLY", self)
        self.readonly_badge.setObjectName("readonlyBadge")
        self.readonly_badge.setAccessibleName("Read-only mode")
        self.readonly_badge.setToolTip(readonly_reason)
        self.readonly_badge.setStyleSheet(
            f"color: {theme.BG}; background: {theme.AMBER}; font-weight: 800;"
            " letter-spacing: 1px; border-radius: 4px; padding: 6px 12px; margin: 0 8px;"
        )
        self._readonly_badge_action = self.addWidget(self.readonly_badge)
        self._readonly_badge_action.setVisible(False)
        self.stop_button = EmergencyStopButton(parent=self)
        self.stop_button.setObjectName("emergencyStop")
        self.stop_button.setAccessibleName("Emergency stop: cancel every order, flatten")
        self.stop_button.setMinimumWidth(230)
        self.addWidget(self.stop_button)

    def trade_actions(self) -> tuple[QAction, ...]:
        """Buy, Sell, Symbol, Cancel all (the Trade menu lists them too)."""
        return (self.buy_action, self.sell_action, self.symbol_action, self.cancel_all_action)

    def set_readonly(self, readonly: bool, why: str) -> None:
        """Buy, Sell, Cancel all and the stop button off (saying ``why``), the badge on;
        or all back."""
        for a in (self.buy_action, self.sell_action, self.cancel_all_action):
            a.setEnabled(not readonly)
            a.setToolTip(action_tooltip(a, why))
        self.stop_button.setEnabled(not readonly)
        self.stop_button.setToolTip(why or self.stop_button.toolTip())
        self._readonly_badge_action.setVisible(readonly)
