"""The window's two status read-outs: the connection indicator and the account strip.

:class:`ConnectionIndicator` (status bar) says where the connection is, in colour, and
while retrying the attempt and a countdown to the next try. :class:`AccountStrip`
(toolbar) shows IB's headline account figures. Each binds to a session itself.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QWidget

from core.events import AccountValuesChanged, ConnectionState, ConnectionStatusChanged
from gui import theme
from gui.models.formatting import PLACEHOLDER, number

if TYPE_CHECKING:
    from core.session import ConsoleSession

#: Indicator colours by state: green is good, amber is working on it, red needs a person.
STATE_COLOURS = {
    ConnectionState.CONNECTED: theme.GAIN,
    ConnectionState.CONNECTING: theme.AMBER,
    ConnectionState.RECONNECTING: theme.AMBER,
    ConnectionState.LINK_LOST: theme.AMBER,
    ConnectionState.DISCONNECTED: theme.LOSS,
    ConnectionState.GIVEN_UP: theme.LOSS,
}


class ConnectionIndicator(QLabel):
    """``● connected``, or ``● not connected · attempt 3 · next try in 4 s`` counting
    down while the connection is retried; the tooltip has the full status."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("● starting", parent)
        self.setStyleSheet(f"color: {theme.AMBER}; padding: 0 8px;")
        self.setObjectName("connectionIndicator")
        self.setAccessibleName("Connection state")
        self._status: ConnectionStatusChanged | None = None
        self._next_try_at: float | None = None
        # Counts down to the next connection attempt while retrying (stopped otherwise).
        self._countdown = QTimer(self)
        self._countdown.setInterval(1000)
        self._countdown.timeout.connect(self._tick)

    def bind(self, session: ConsoleSession) -> None:
        """Follow ``session``'s connection (its last status at once)."""
        session.connection.statusChanged += self.on_status
        if session.connection.last_status is not None:
            self.on_status(session.connection.last_status)

    def on_status(self, status: ConnectionStatusChanged) -> None:
        """Show ``status``."""
        self._status = status
        retrying = status.state is ConnectionState.RECONNECTING and status.next_retry_in
        self._next_try_at = time.monotonic() + status.next_retry_in if retrying else None
        if self._next_try_at is not None:
            self._countdown.start()
        else:
            self._countdown.stop()
        self.setText(f"● {self._words(status)}")
        self.setToolTip(status.describe())
        colour = STATE_COLOURS[status.state]
        self.setStyleSheet(f"color: {colour}; font-weight: 600; padding: 0 8px;")

    def show_error(self, message: str) -> None:
        """Say why there is no connection at all (the session could not start)."""
        self.setText(f"● not connected: {message}")
        self.setStyleSheet(f"color: {theme.LOSS}; padding: 0 8px;")

    def _words(self, status: ConnectionStatusChanged) -> str:
        """The state, and while retrying the attempt and the seconds to the next try."""
        if status.state is not ConnectionState.RECONNECTING:
            return status.state.value
        words = f"not connected · attempt {status.attempt}"
        if self._next_try_at is not None:
            left = max(0.0, self._next_try_at - time.monotonic())
            words += f" · next try in {left:.0f} s"
        else:
            words += " · trying now"
        return words

    def _tick(self) -> None:
        status = self._status
        if status is None or status.state is not ConnectionState.RECONNECTING:
            self._countdown.stop()
            return
        self.setText(f"● {self._words(status)}")


def accounts_text(accounts: Sequence[str], orders_to: str) -> str:
    """The status bar's accounts: the one orders go to, then any other IB manages
    (orders never go to those: the console refuses them)."""
    if not orders_to:
        return ", ".join(accounts)
    others = [a for a in accounts if a != orders_to]
    return f"orders to {orders_to}" + (f" (not to {', '.join(others)})" if others else "")


def _money(value: float | None) -> str:
    """Account-size figures in whole currency units (cents are noise at this scale)."""
    return PLACEHOLDER if value is None else f"{value:,.0f}"


class AccountStrip(QLabel):
    """NetLiq, cash, buying power and IB's day P&L, as IB reports them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.setObjectName("accountStrip")
        self.setAccessibleName("Account values")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setStyleSheet(f"font-family: '{theme.mono_family()}'; padding: 0 14px;")
        self.setToolTip(
            "Net liquidation, cash and buying power as IB reports them; day P&L is IB's "
            "account P&L since its daily reset (the positions grid sums the console's own "
            "per-position figures, which can differ by commissions and timing)."
        )

    def bind(self, session: ConsoleSession) -> None:
        """Follow ``session``'s account values (what is known at once)."""
        session.account.valuesChanged += self.on_account_values
        self.on_account_values(session.account.values())

    def on_account_values(self, v: AccountValuesChanged) -> None:
        """Show ``v``."""
        daily = v.daily_pnl
        pnl_colour = theme.pnl_colour(daily)
        colour = pnl_colour.name() if pnl_colour is not None else theme.TEXT
        dim = theme.TEXT_DIM
        # P&L with cents, as the grid's totals and the chart show it.
        self.setText(
            f"<span style='color:{dim}'>NetLiq</span> "
            f"{_money(v.net_liquidation)}"
            f" &nbsp; <span style='color:{dim}'>Cash</span> {_money(v.cash)}"
            f" &nbsp; <span style='color:{dim}'>BP</span> {_money(v.buying_power)}"
            f" &nbsp; <span style='color:{dim}'>IB day P&amp;L</span> "
            f"<span style='color:{colour}'>{number(daily, 2, sign=True)}</span>"
        )
