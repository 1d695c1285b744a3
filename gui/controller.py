"""What a person does in the window, as commands on the session.

:class:`MainWindow` is layout and binding: it shows what core publishes. Every action
that changes something at IB or in the book (close, reverse, cancel, cancel all,
modify, set a trading state, the emergency stop, reset HALTED, resolve a break, what
to do with working orders when closing) is handled here: asked about where a person
must confirm, refused in read-only mode, sent as a core command, and its outcome said
in the window. Nothing here holds an ib_async object or calls a private method of core.

The controller is built once the session is (``MainWindow.bind``); it talks to the
window through the narrow :class:`ConsoleView`, so it does not import the window.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QInputDialog, QMessageBox, QStatusBar, QWidget

from core.emergency import EmergencyStopProgress, EmergencyStopResult
from core.events import OrderUpdated, PositionChanged, ReconciliationBreakFound, TradingState
from core.trading import OrderRefused
from gui.models.formatting import decimals_for_tick
from gui.tasks import spawn
from gui.widgets.ticket_form import confirm_large_order
from gui.widgets.ticket_verdict import confirmation_reason, order_terms

if TYPE_CHECKING:
    from core.session import ConsoleSession
    from gui.widgets.emergency_stop import EmergencyStopButton

log = logging.getLogger(__name__)

RESET_CONFIRMATION = "RESUME"
#: Why order-changing controls are off in read-only mode (their tooltips).
READONLY_REASON = "read-only mode (--readonly): this console changes no orders"
#: The grid's editable order fields and the keyword each is modified by.
_MODIFIABLE = ("quantity", "limit_price", "stop_price")


class ConsoleView(Protocol):
    """What the controller needs of the window (``MainWindow`` has it all)."""

    readonly: bool
    stop_button: EmergencyStopButton
    #: The ``[gui]`` notional above which an order is confirmed first (None: never).
    confirm_above_notional: float | None

    def modify_refused(self, order_id: int, field: str, value: float, reason: str) -> None: ...

    def statusBar(self) -> QStatusBar: ...

    def working_orders_shown(self) -> int: ...

    def close(self) -> bool: ...


class ConsoleController(QObject):
    """The window's commands on ``session``; dialogs are parented to ``view``.

    After an emergency stop, ``stop_result`` is its :class:`EmergencyStopResult` and
    ``last_stop_box`` the (non-modal) box that says how it went.
    """

    def __init__(self, view: ConsoleView, parent: QWidget, session: ConsoleSession) -> None:
        super().__init__(parent)
        self.view = view
        self.parent_widget = parent
        self.session = session
        self.stop_running = False
        self.stop_result: EmergencyStopResult | None = None
        self.last_stop_box: QMessageBox | None = None
        self.closing_confirmed = False
        session.emergency.progress += self.on_stop_progress

    def _say(self, text: str, ms: int = 0) -> None:
        self.view.statusBar().showMessage(text, ms)

    def refused_readonly(self) -> bool:
        """True (and said in the status bar) when read-only forbids an order change."""
        if self.view.readonly:
            self._say(READONLY_REASON, 8000)
        return self.view.readonly

    # -- positions ----------------------------------------------------------------------

    def close_position(self, p: PositionChanged, *, reverse: bool = False) -> None:
        """Ask, then close (or reverse) ``p`` at market."""
        if self.refused_readonly() or not p.quantity:
            return
        side = "SELL" if p.quantity > 0 else "BUY"
        qty = abs(p.quantity) * (2 if reverse else 1)
        verb = "Reverse" if reverse else "Close"
        answer = QMessageBox.question(
            self.parent_widget,
            f"{verb} position",
            f"{verb} {p.strategy} {p.symbol} {p.quantity:+,.0f}:\n{side} {qty:,.0f} at market?",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        spawn(self._close(p, reverse), what=f"{verb} {p.symbol}")

    async def _close(self, p: PositionChanged, reverse: bool) -> None:
        try:
            await self.session.close_position(p.symbol, p.strategy, p.quantity, reverse=reverse)
        except OrderRefused as exc:
            QMessageBox.warning(self.parent_widget, "Order refused", "\n".join(exc.reasons))

    def resolve_break(self, brk: ReconciliationBreakFound) -> None:
        """Ask, then attribute a reconciliation break's difference to ``external``."""
        answer = QMessageBox.question(
            self.parent_widget,
            "Resolve reconciliation break",
            f"IB holds {brk.ib_quantity:,g} {brk.symbol}; the console's strategies hold "
            f"{brk.stored_quantity:,g}.\nLikely cause: {brk.likely_cause}.\n\n"
            f"Attribute the difference ({brk.difference:+,g}) to the external bucket? "
            "It is written to the journal and audited; no order is sent.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            spawn(self.resolve(brk), what=f"resolving the {brk.symbol} break")

    async def resolve(self, brk: ReconciliationBreakFound) -> None:
        """Resolve ``brk`` without asking (journalled, audited); a refusal is shown."""
        try:
            await self.session.resolve_break(brk, actor="gui")
        except Exception as exc:  # the journal refused it: nothing changed
            log.error("could not resolve the %s break: %s", brk.symbol, exc)
            QMessageBox.warning(self.parent_widget, "Break not resolved", str(exc))

    # -- orders -------------------------------------------------------------------------

    def cancel_order(self, order_id: int) -> None:
        """Cancel one working order of this console."""
        if self.refused_readonly():
            return
        try:
            self.session.cancel_order(order_id, actor="gui")
        except LookupError as exc:
            self._say(str(exc), 8000)
        except OrderRefused as exc:  # not connected, or not this client's order
            QMessageBox.warning(self.parent_widget, "Cancel not sent", "\n".join(exc.reasons))

    def cancel_all(self) -> None:
        """Ask, then cancel every working order of the account."""
        if self.refused_readonly():
            return
        n = self.view.working_orders_shown()
        answer = QMessageBox.question(
            self.parent_widget,
            "Cancel all",
            f"Cancel every working order of the account ({n} shown)?",
        )
        if answer == QMessageBox.StandardButton.Yes:
            try:
                self.session.trades.cancel_all(actor="gui")
            except OrderRefused as exc:
                QMessageBox.warning(self.parent_widget, "Cancels not sent", "\n".join(exc.reasons))

    def confirm_modify(self, order: OrderUpdated, field: str, value: float) -> bool:
        """Whether the grid's modification of ``order`` may go: asked, as the ticket
        asks a new order, when it raises the order's notional above the ``[gui]``
        threshold (:func:`confirmation_reason`); the dialog says old -> new."""
        multiplier, currency = self._terms(order)
        quantity = value if field == "quantity" else order.quantity
        limit = value if field == "limit_price" else order.limit_price
        stop = value if field == "stop_price" else order.stop_price
        was = _notional(order.quantity, order.limit_price, order.stop_price, multiplier)
        now = _notional(quantity, limit, stop, multiplier)
        if was is None or now is None:  # a market order: valued at the quote, as the ticket
            quote = self.session.market.quote(order.con_id)
            mark = quote.mark if quote is not None else None
            was = _notional(order.quantity, mark, None, multiplier)
            now = _notional(quantity, mark, None, multiplier)
        why = confirmation_reason(
            now,
            self.view.confirm_above_notional,
            currency,
            was=was,
            to_base=self.session.risk.in_base,
        )
        if why is None:
            return True
        words = _modification_words(order, field, value)
        return confirm_large_order(self.parent_widget, words, why)

    def _terms(self, order: OrderUpdated) -> tuple[float | None, str]:
        """The contract's multiplier and currency (None, "": not known here).

        Core's order event carries neither: they are read from the contract the order
        was sent on and the contract details core cached.
        """
        trade = self.session.trades.trade_for_order_id(order.order_id, order.client_id)
        details = self.session.contracts.by_con_id(order.con_id)
        known = [c for c in (details.contract if details else None, trade and trade.contract) if c]
        currency = next((c.currency for c in known if c.currency), "")
        for contract in known:
            try:
                if contract.multiplier:
                    return float(contract.multiplier), currency
            except ValueError:
                continue
        # No multiplier given: a stock or a currency pair counts one unit per unit.
        return (1.0 if order.sec_type in ("STK", "CASH") else None), currency

    def modify_order(self, order_id: int, field: str, value: float) -> None:
        """Change a working order's quantity, limit or stop (the grid's edit); a
        refusal (off the tick, over a limit, not connected) is flagged on the cell."""
        if self.refused_readonly() or field not in _MODIFIABLE:
            return
        try:
            self.session.trades.modify_order_fields(order_id, **{field: value})
        except OrderRefused as exc:
            self.view.modify_refused(order_id, field, value, "; ".join(exc.reasons))
        except LookupError as exc:
            self._say(f"modify not sent: {exc}", 8000)

    # -- closing ------------------------------------------------------------------------

    def may_close(self) -> bool:
        """Whether the window may close now that a person asked: with orders working at
        IB they are asked first. False keeps it open ("cancel" closes it again once the
        cancels are confirmed)."""
        n = 0 if self.closing_confirmed else self.session.working_orders_at_ib()
        if not n:
            return True
        choice = self.ask_close_with_working_orders(n)
        if choice == "stay":
            return False
        if choice == "cancel" and not self.view.readonly:
            spawn(self.cancel_then_close(), what="cancelling before closing")
            return False
        return True

    def ask_close_with_working_orders(self, n: int) -> str:
        """Ask what to do with ``n`` working orders: "cancel", "leave" or "stay"."""
        box = QMessageBox(self.parent_widget)
        box.setObjectName("closeWithWorkingOrders")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Working orders")
        box.setText(
            f"{n} order{'s are' if n != 1 else ' is'} working at IB. Closing the console "
            "does not cancel them: they stay working at IB and can fill while it is closed."
        )
        cancel = box.addButton(f"Cancel {n} and close", QMessageBox.ButtonRole.DestructiveRole)
        leave = box.addButton("Close, leave them working", QMessageBox.ButtonRole.AcceptRole)
        stay = box.addButton("Don't close", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(stay)
        box.exec()
        clicked = box.clickedButton()
        return "cancel" if clicked is cancel else "leave" if clicked is leave else "stay"

    async def cancel_then_close(self, timeout: float = 5.0) -> None:
        """Cancel every working order, wait for IB to confirm (bounded), then close."""
        self._say("cancelling every working order before closing…")
        left = await self.session.cancel_all_and_wait(timeout, actor="gui")
        if left:
            QMessageBox.warning(
                self.parent_widget,
                "Not all cancelled",
                f"{left} order(s) not confirmed cancelled within {timeout:g} s; "
                "they may still be working at IB. The console closes now.",
            )
        self.closing_confirmed = True
        self.view.close()

    # -- trading state ------------------------------------------------------------------

    def set_trading_state(self, scope: str, state: str) -> None:
        """The risk panel's request: ``scope`` to ``state``."""
        self.session.risk.set_trading_state(
            scope, TradingState(state), reason="set in the risk panel", by="gui"
        )

    def reset_halt(self) -> None:
        """Ask for the typed confirmation, then allow trading again after HALTED."""
        text, ok = QInputDialog.getText(
            self.parent_widget,
            "Reset HALTED",
            f"Trading is HALTED. Type {RESET_CONFIRMATION} to allow trading again:",
        )
        if not ok:
            return
        try:
            self.session.risk.reset_halt(by="gui", confirmation=text.strip())
        except ValueError as exc:
            QMessageBox.warning(self.parent_widget, "Not reset", str(exc))

    # -- the emergency stop -------------------------------------------------------------

    def confirm_emergency_stop(self) -> None:
        """The menu's stop: asks first (the button's hold or double press is the ask)."""
        if self.refused_readonly():
            return
        answer = QMessageBox.warning(
            self.parent_widget,
            "Emergency stop",
            "Cancel every working order and flatten every position now?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.emergency_stop()

    def emergency_stop(self) -> None:
        """Cancel every order, then flatten every position (one at a time)."""
        if self.stop_running or self.refused_readonly():
            return
        self.stop_running = True
        self.view.stop_button.set_busy_text("STOPPING…")
        self._say("EMERGENCY STOP: cancelling orders, then flattening…")
        spawn(self._run_emergency_stop(), what="emergency stop")

    async def _run_emergency_stop(self) -> None:
        try:
            summary = await self.session.emergency.stop(
                "emergency stop button", flatten=True, actor="gui"
            )
        finally:
            self.stop_running = False
            self.view.stop_button.set_busy_text("")
        text = summary.describe()
        box = QMessageBox(self.parent_widget)
        box.setObjectName("emergencyStopResult")
        if summary.ok:
            self._say(f"Emergency stop done: {text.splitlines()[0]}", 30000)
            box.setIcon(QMessageBox.Icon.Information)
            box.setWindowTitle("Emergency stop")
            box.setText(text)
        else:
            # Said plainly, and kept on screen: a stop that could not finish leaves
            # orders or positions at IB that someone must deal with now.
            headline = (
                "The emergency stop could NOT finish. Trading stays HALTED here, but "
                "orders may still be working and positions open at IB: check TWS now."
            )
            self._say(f"EMERGENCY STOP INCOMPLETE: {headline}")
            box.setIcon(QMessageBox.Icon.Critical)
            box.setWindowTitle("Emergency stop incomplete")
            box.setText(headline)
            box.setInformativeText(text)
        box.setModal(False)
        box.show()
        self.last_stop_box = box
        self.stop_result = summary

    def on_stop_progress(self, progress: EmergencyStopProgress) -> None:
        """What the running stop waits for, on the button and in the status bar."""
        if not self.stop_running:
            return
        self.view.stop_button.set_busy_text(progress.detail)
        self._say(f"EMERGENCY STOP: {progress.detail}")


def _notional(
    quantity: float, limit: float | None, stop: float | None, multiplier: float | None
) -> float | None:
    """quantity x price x multiplier, priced as core's preview prices an order (the
    limit, else the stop); None without a price or a multiplier."""
    price = limit if limit is not None else stop
    if price is None or multiplier is None:
        return None
    return quantity * price * multiplier


def _modification_words(order: OrderUpdated, field: str, value: float) -> str:
    """The order as it would go, the changed term old -> new ("BUY 10 → 800 AAPL LMT
    223.10", "SELL 5 ES STP 5,800.00 → 5,790.25")."""
    decimals = decimals_for_tick(order.min_tick)

    def price(name: str, now: float | None) -> str:
        text = f"{now:,.{decimals}f}" if now is not None else ""
        return f"{text} → {value:,.{decimals}f}" if field == name else text

    qty = f"{order.quantity:,g}"
    if field == "quantity":
        qty += f" → {value:,g}"
    limit, stop = price("limit_price", order.limit_price), price("stop_price", order.stop_price)
    if order.order_type == "STP LMT":
        terms = ["STP", stop, "LMT", limit]
    else:
        terms = [order.order_type, stop or limit]
    words = " ".join(p for p in (order.action, qty, order.symbol, *terms) if p)
    return f"Modify #{order.order_id}: {order_terms(words, order.tif)}"
