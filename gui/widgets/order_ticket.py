"""The order ticket's logic: what the trader typed becomes an order core judges and sends.

The ticket is three layers, each where a reader would look for it:
:class:`gui.widgets.ticket_form.TicketForm` lays the widgets out and draws each state;
:class:`gui.widgets.ticket_instrument.InstrumentForm` looks the symbol up, fills the
completer and shows the quotes; this class, on top, judges and sends the order. What the
send button says (the order, or why it cannot go) and whether a large order is confirmed
first are pure functions in :mod:`gui.widgets.ticket_verdict`. Every decision comes from
:class:`core.order_entry.OrderEntry`: instrument lookup, the preview (notional,
commission estimate, every reason the order would be refused, risk's verdict included),
the gateway's whatIf margin impact, and sending. The order is described to core as an
:class:`core.order_entry.OrderSpec` (plain values); the ticket follows the order it sent
through core's ``OrderUpdated`` / ``OrderRejected`` events, never an ``ib_async`` object.

Keyboard: the window binds F2 (buy), F3 (sell) and Ctrl+L (focus the symbol); Enter in
the ticket sends, after the confirmation when the notional is above the threshold.

Honest input: the number fields hold exactly what they show or say why the entry is
not a number (:mod:`gui.widgets.number_field`); the send button reads the order it
would send, or why it cannot (a bad field, a refusal, HALTED / REDUCING, read-only,
no connection). The verdict is recomputed at once when the trading state or a limit
changes (:meth:`OrderTicket.on_trading_state_changed`, :meth:`OrderTicket.reevaluate`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QHideEvent, QKeyEvent
from PySide6.QtWidgets import QWidget

from core.events import MANUAL, OrderRejected, OrderUpdated, TradingState, TradingStateChanged
from core.order_entry import InstrumentInfo, OrderEntry, OrderPreview, OrderSpec
from core.trading import OrderRefused
from gui.models.formatting import PLACEHOLDER, money
from gui.tasks import spawn
from gui.widgets.number_field import NumberField
from gui.widgets.ticket_form import (
    FIELD_TITLES,
    LIMIT_TYPES,
    MAX_QUANTITY,
    ORDER_TYPES,
    STOP_TYPES,
    TIFS,
    PriceBox,
    decimals_of,
)
from gui.widgets.ticket_instrument import DEFAULT_QUANTITY, InstrumentForm
from gui.widgets.ticket_verdict import READ_ONLY, confirmation_reason, judge_send

__all__ = ["DEFAULT_QUANTITY", "MAX_QUANTITY", "ORDER_TYPES", "TIFS", "OrderTicket", "PriceBox"]


class OrderTicket(InstrumentForm):
    """Order entry.

    Signals
    -------
    orderSent(int): the id of an order that was sent (its progress: core's events).
    orderRefused(str): why an order was refused (already shown in the ticket).
    """

    orderSent = Signal(int)
    orderRefused = Signal(str)

    def __init__(
        self,
        entry: OrderEntry | None = None,
        *,
        strategies: list[str] | None = None,
        confirm_above_notional: float | None = 25_000.0,
        size_by_risk: Callable[[InstrumentInfo], Any] | None = None,
        default_quantity: Mapping[str, float] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(strategies, default_quantity, parent)
        self.confirm_above_notional = confirm_above_notional
        self.size_by_risk = size_by_risk
        self.readonly = False
        self._state: TradingState | None = None
        self._state_reason = ""
        self._preview: OrderPreview | None = None
        #: The orders sent from this ticket whose status it shows (the latest last).
        self._sent: list[int] = []
        self._rejected: int | None = None
        # Debounced like the lookups (single-shot, restarted on input): not polling.
        self._margin_timer = self._single_shot(600, self._check_margin)
        self._connect()
        self.size_button.setEnabled(self.size_by_risk is not None)
        self.entry = entry
        self._set_side("BUY")
        self._on_type_changed()
        self._refresh()

    @property
    def entry(self) -> OrderEntry | None:
        """Core's order entry (None until the session runs); the ticket follows the
        orders it sends through its events."""
        return self._entry

    @entry.setter
    def entry(self, entry: OrderEntry | None) -> None:
        if entry is self._entry:
            return
        if self._entry is not None:
            self._entry.orderUpdated.disconnect(self._on_order_updated)
            self._entry.orderRejected.disconnect(self._on_order_rejected)
        self._entry = entry
        if entry is not None:
            entry.orderUpdated.connect(self._on_order_updated)
            entry.orderRejected.connect(self._on_order_rejected)

    def hideEvent(self, event: QHideEvent) -> None:
        # A closed ticket asks nothing (the form stops its lookups): a debounced margin
        # check firing after the session stopped would have no loop to run on.
        self._margin_timer.stop()
        super().hideEvent(event)

    # -- construction -------------------------------------------------------------------

    def _connect(self) -> None:
        self.buy_button.clicked.connect(lambda: self._set_side("BUY"))
        self.sell_button.clicked.connect(lambda: self._set_side("SELL"))
        self.size_button.clicked.connect(self._size_by_risk)
        self.send_button.clicked.connect(self.submit)
        for sig in (
            self.quantity.valueChanged,
            self.limit_price.valueChanged,
            self.stop_price.valueChanged,
            self.tif.currentIndexChanged,
            self.outside_rth.toggled,
            self.strategy.currentTextChanged,
        ):
            sig.connect(self._refresh)
        self.order_type.currentIndexChanged.connect(self._on_type_changed)

    # -- public slots -------------------------------------------------------------------

    def set_side(self, side: str) -> None:
        """BUY or SELL."""
        self._set_side(side.upper())

    def set_readonly(self, readonly: bool) -> None:
        """Disable every order control (``--readonly`` or a read-only connection)."""
        self.readonly = readonly
        why = READ_ONLY if readonly else ""
        for w in (self.buy_button, self.sell_button, self.send_button, self.size_button):
            w.setEnabled(not readonly)
            w.setToolTip(why or w.toolTip())
        if not readonly:
            self.size_button.setToolTip(
                "Quantity from the contract's volatility and the risk budget"
            )
        self._refresh()

    def on_trading_state_changed(self, event: TradingStateChanged) -> None:
        """The account's trading state moved: show it and judge the order again now."""
        if event.scope != "account":
            self.reevaluate()  # a strategy's state can change this order's verdict
            return
        self._state = TradingState(event.state)
        self._state_reason = event.reason
        self.show_state(self._state, self._state_reason)
        self._refresh()

    def reevaluate(self, *_args: object) -> None:
        """Judge the order again (a limit, a position or a state changed)."""
        self._refresh()

    def load(
        self,
        symbol: str,
        side: str | None = None,
        quantity: float | None = None,
        price: float | None = None,
    ) -> None:
        """Fill the ticket (double-click on a position, a fill, a context menu)."""
        self.symbol_edit.setText(symbol)
        if side:
            self._set_side(side)
        if quantity is not None:
            self.quantity.setValue(abs(quantity))
            # The instrument's default size must not replace the size asked for here.
            self._pending_quantity = abs(quantity)
        if price is not None:
            self.order_type.setCurrentText("LMT")
            self.limit_price.setValue(price)
            self._pending_price = price
        self._resolve_symbol()

    # -- building the order -------------------------------------------------------------

    def order_spec(self) -> OrderSpec:
        """The order the ticket describes now (not validated), as core takes it."""
        kind = self.order_type.currentText()
        return OrderSpec(
            action=self._side,
            quantity=self.quantity.value(),
            order_type=kind,
            limit_price=self.limit_price.value() if kind in LIMIT_TYPES else None,
            stop_price=self.stop_price.value() if kind in STOP_TYPES else None,
            tif=self.tif.currentText(),
            outside_rth=self.outside_rth.isChecked(),
        )

    def _refresh(self) -> None:
        """Recompute the preview, the inline flags and what the send button says."""
        spec = self.order_spec()
        kind = spec.order_type
        chosen = self.info is not None
        entry_problems: dict[NumberField, str | None] = {
            self.quantity: self.entry_problem(
                self.quantity, FIELD_TITLES["quantity"], True, chosen
            ),
            self.limit_price: self.entry_problem(
                self.limit_price, FIELD_TITLES["limit_price"], kind in LIMIT_TYPES, chosen
            ),
            self.stop_price: self.entry_problem(
                self.stop_price, FIELD_TITLES["stop_price"], kind in STOP_TYPES, chosen
            ),
        }
        self.show_entry_problems(entry_problems)
        field_problems = [p for p in entry_problems.values() if p]
        preview: OrderPreview | None = None
        if self.entry is not None and self.info is not None and not field_problems:
            preview = self.entry.preview(self.info, spec, self._strategy())
        self._preview = preview
        self.mark_fields(preview.problems if preview is not None else (), entry_problems)
        cur = self.info.currency if self.info else "USD"
        notional = money(preview.notional if preview else None, cur)
        if preview is not None and preview.base_notional is not None:  # limits are in the base
            notional += f" = {preview.base_notional:,.0f} {preview.base_currency}"
        self.notional_label.setText(notional)
        self.commission_label.setText(money(preview.est_commission if preview else None, cur))
        self.show_verdict(preview, field_problems if chosen else [])
        verdict = judge_send(
            self.order_words(self._side, kind, self.info.symbol if self.info else ""),
            preview,
            chosen=chosen,
            tif=spec.tif,
            outside_rth=spec.outside_rth,
            field_problems=field_problems,
            readonly=self.readonly,
            state=self._state,
            state_reason=self._state_reason,
            offline_reason=self.offline_reason,
            offline_shown=self.description.text().startswith(self.offline_reason),
        )
        self.show_send(verdict)
        if verdict.sendable:
            self._margin_timer.start()

    # -- sending ------------------------------------------------------------------------

    def submit(self) -> None:
        """Send the order (after confirmation for large notionals)."""
        if self.readonly or self.entry is None or self.info is None:
            return
        self._refresh()
        preview = self._preview
        if preview is None or not preview.approved or not self.send_button.isEnabled():
            return  # the button says why
        spec = self.order_spec()
        large = confirmation_reason(
            preview.notional,
            self.confirm_above_notional,
            self.info.currency,
            to_base=self.entry.in_base,
        )
        if large is not None and not self.confirm_large(large):
            self.show_status("not sent: cancelled at confirmation")
            return
        try:
            order_id = self.entry.send(self.info, spec, self._strategy())
        except OrderRefused as exc:
            text = "; ".join(exc.reasons)
            self.show_status(f"REFUSED: {text}", error=True)
            self.orderRefused.emit(text)
            return
        self._sent = [*self._sent[-9:], order_id]
        self._rejected = None
        self.show_status(f"sent #{order_id}: {self.send_button.lines()[0]}")
        self.orderSent.emit(order_id)

    def _is_mine(self, order_id: int) -> bool:
        # The ticket's own orders only: the latest one's line is what it shows.
        return bool(self._sent) and order_id == self._sent[-1]

    def _on_order_updated(self, event: OrderUpdated) -> None:
        """The last order sent from here moved (core's event): show its status."""
        if not self._is_mine(event.order_id) or not shiboken6.isValid(self):
            return
        text = f"#{event.order_id} {event.status}"
        if event.filled:
            text += f" {event.filled:,g}/{event.quantity:,g}"
            if event.avg_fill_price is not None:
                text += f" @ {event.avg_fill_price:,.{self._price_decimals()}f}"
        if event.order_id == self._rejected:
            return  # the rejection's reason stays in view; the grid has the status
        self.show_status(text)

    def _on_order_rejected(self, event: OrderRejected) -> None:
        """IB (or the console) refused the last order sent from here: said in red."""
        if not self._is_mine(event.order_id) or not shiboken6.isValid(self):
            return
        text = f"#{event.order_id} REJECTED: " + (
            f"error {event.code}: {event.message}" if event.code else event.message
        )
        self._rejected = event.order_id
        self.show_status(text, error=True)
        self.orderRefused.emit(text)

    def _price_decimals(self) -> int:
        return decimals_of(self.info.min_tick) if self.info is not None else 2

    # -- helpers ------------------------------------------------------------------------

    def _strategy(self) -> str:
        return self.strategy.currentText().strip() or MANUAL

    def _set_side(self, side: str) -> None:
        self._side = "SELL" if side.upper() == "SELL" else "BUY"
        self.show_side(self._side)
        self._refresh()

    def _on_type_changed(self) -> None:
        kind = self.order_type.currentText()
        self.limit_price.set_applies(kind in LIMIT_TYPES)
        self.stop_price.set_applies(kind in STOP_TYPES)
        self._refresh()

    def _check_margin(self) -> None:
        if (
            self.entry is None
            or self.info is None
            or self._preview is None
            or not self._preview.approved
        ):
            return
        spawn(self._do_margin(self.info, self.order_spec()), what="margin check")

    async def _do_margin(self, info: InstrumentInfo, order: OrderSpec) -> None:
        assert self.entry is not None
        impact = await self.entry.margin_impact(info, order)
        if impact is None:
            self.margin_label.setText(PLACEHOLDER)
            return
        init = impact.init_margin_change
        self.margin_label.setText(
            PLACEHOLDER if init is None else f"{init:+,.2f} {info.currency} initial"
        )

    def _size_by_risk(self) -> None:
        if self.size_by_risk is None or self.info is None:
            return
        result = self.size_by_risk(self.info)
        if asyncio.iscoroutine(result):
            spawn(self._apply_size(result), what="size by risk")
        elif result:
            self.quantity.setValue(float(result))

    async def _apply_size(self, coro: Any) -> None:
        qty = await coro
        if qty:
            self.quantity.setValue(float(qty))
            self.status.setText(f"sized by risk: {qty:,.0f}")

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not self.symbol_edit.hasFocus():
            self.submit()
            return
        super().keyPressEvent(event)
