"""The order ticket's logic: what the trader typed becomes an order core judges and sends.

The layout and how each state is drawn are :class:`gui.widgets.ticket_form.TicketForm`;
this class is that form plus the decisions, and every decision comes from
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
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QKeyEvent
from PySide6.QtWidgets import QWidget

from core.events import MANUAL, OrderRejected, OrderUpdated, TradingState, TradingStateChanged
from core.marketdata import Quote
from core.order_entry import InstrumentInfo, OrderEntry, OrderPreview, OrderSpec
from core.trading import OrderRefused
from gui import theme
from gui.models.formatting import PLACEHOLDER
from gui.tasks import spawn
from gui.widgets.ticket_form import (
    MAX_QUANTITY,
    ORDER_TYPES,
    TIFS,
    PriceBox,
    TicketForm,
    decimals_of,
    money,
)

__all__ = ["DEFAULT_QUANTITY", "MAX_QUANTITY", "ORDER_TYPES", "TIFS", "OrderTicket", "PriceBox"]

#: The ticket's quantity for a newly chosen instrument when no preset is given.
DEFAULT_QUANTITY: Mapping[str, float] = {"STK": 100.0, "FUT": 1.0, "CASH": 20_000.0, "OPT": 1.0}


class OrderTicket(TicketForm):
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
        super().__init__(strategies, parent)
        self._entry: OrderEntry | None = None
        self.confirm_above_notional = confirm_above_notional
        self.size_by_risk = size_by_risk
        self.default_quantity: Mapping[str, float] = dict(default_quantity or DEFAULT_QUANTITY)
        self.info: InstrumentInfo | None = None
        self.readonly = False
        #: Why nothing can be looked up or sent now (no connection), or "".
        self.offline_reason = ""
        self._state: TradingState | None = None
        self._state_reason = ""
        self._preview: OrderPreview | None = None
        self._resolving: asyncio.Task[Any] | None = None
        self._pending_quantity: float | None = None
        self._pending_price: float | None = None
        self._prefill_limit = False
        #: The orders sent from this ticket whose status it shows (the latest last).
        self._sent: list[int] = []
        self._rejected: int | None = None
        # Debounces (single-shot, restarted on input): not polling.
        self._search_timer = self._single_shot(250, self._search)
        self._margin_timer = self._single_shot(600, self._check_margin)
        self._quote_timer = self._single_shot(16, self._apply_quote)
        self._pending_quote: Quote | None = None
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
        # A closed ticket (its dock or the window) looks nothing up: a debounced margin
        # check or search firing after the session stopped would have no loop to run on.
        for timer in (self._search_timer, self._margin_timer, self._quote_timer):
            timer.stop()
        super().hideEvent(event)

    # -- construction -------------------------------------------------------------------

    def _single_shot(self, ms: int, slot: Callable[[], Any]) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(ms)
        timer.timeout.connect(slot)
        return timer

    def _connect(self) -> None:
        self.symbol_edit.completer().activated.connect(self._on_completion)
        self.symbol_edit.textEdited.connect(lambda _t: self._search_timer.start())
        self.symbol_edit.editingFinished.connect(self._resolve_symbol)
        # Enter in the symbol looks it up and moves on to the quantity; it never sends
        # (the order on the ticket is still the previous instrument's until resolved).
        self.symbol_edit.installEventFilter(self)
        self.bid_button.clicked.connect(lambda: self._use_price(self.bid_button.price))
        self.ask_button.clicked.connect(lambda: self._use_price(self.ask_button.price))
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

    def focus_symbol(self) -> None:
        """Put the cursor in the symbol box, text selected."""
        self.symbol_edit.setFocus()
        self.symbol_edit.selectAll()

    def set_side(self, side: str) -> None:
        """BUY or SELL."""
        self._set_side(side.upper())

    def set_readonly(self, readonly: bool) -> None:
        """Disable every order control (``--readonly`` or a read-only connection)."""
        self.readonly = readonly
        why = "read-only mode: sends no orders" if readonly else ""
        for w in (self.buy_button, self.sell_button, self.send_button, self.size_button):
            w.setEnabled(not readonly)
            w.setToolTip(why or w.toolTip())
        if not readonly:
            self.size_button.setToolTip(
                "Quantity from the contract's volatility and the risk budget"
            )
        self._refresh()

    def set_offline(self, reason: str) -> None:
        """Say why nothing can be looked up or sent ("" when connected again)."""
        if reason == self.offline_reason:
            return
        self.offline_reason = reason
        if reason and self.info is None:
            self.description.setText(f"{reason}: symbols cannot be looked up yet")
            self.description.setStyleSheet(f"color: {theme.AMBER};")
        elif not reason and self.info is None:
            self.description.setText("")
            self.description.setStyleSheet(f"color: {theme.TEXT_DIM};")
            if self.symbol_edit.text().strip():
                self._resolve_symbol()  # what was typed while offline is looked up now
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

    async def resolve(self, text: str) -> InstrumentInfo | None:
        """Look the symbol up and watch its quotes; errors are shown in place."""
        if self.entry is None:
            return None
        try:
            info = await self.entry.instrument(text)
        except Exception as exc:
            # Nothing of the previous instrument stays: its quotes beside an unknown
            # symbol read as this symbol's prices.
            self.info = None
            self._pending_quote = None
            self.show_quotes(None, None, None, 2)
            self.flag(self.symbol_edit, True)
            why = str(exc) or type(exc).__name__
            if self.offline_reason:
                why = f"{self.offline_reason}: cannot look up {text.strip().upper()} ({why})"
            self.description.setText(why)
            self.description.setStyleSheet(f"color: {theme.LOSS};")
            self._refresh()
            return None
        self.flag(self.symbol_edit, False)
        previous = self.info
        self.info = info
        self.description.setText(f"{info.description} · {info.sec_type} · {info.currency}")
        self.description.setStyleSheet(f"color: {theme.TEXT_DIM};")
        decimals = decimals_of(info.min_tick)
        for box in (self.limit_price, self.stop_price):
            box.setDecimals(decimals)
            box.setSingleStep(info.min_tick)
        self.quantity.setDecimals(
            0 if info.size_increment >= 1 else decimals_of(info.size_increment)
        )
        self.quantity.setSingleStep(100 if info.sec_type == "STK" else max(info.size_increment, 1))
        if previous is None or previous.con_id != info.con_id:
            # A size or a price is never carried from one instrument to another: 100
            # AAPL is 23,000 USD, 100 ES is 29 million.
            qty = self._pending_quantity
            if qty is None:
                qty = self.default_quantity.get(info.sec_type, max(info.min_size, 1.0))
            self.quantity.setValue(qty)
            if self._pending_price is None:
                self.limit_price.clear_entry()
                self._prefill_limit = True
            self.stop_price.clear_entry()
        self._pending_quantity = None
        self._pending_price = None
        quote = self.entry.watch(info)
        if quote is not None:
            self.on_quote(quote)
            self._apply_quote()
        self._refresh()
        return info

    def on_quote(self, quote: Quote) -> None:
        """A quote arrived (from MarketData.quotesUpdated); coalesced to one repaint a frame."""
        if self.info is None or quote.con_id != self.info.con_id:
            return
        self._pending_quote = quote
        if not self._quote_timer.isActive():
            self._quote_timer.start()

    def on_quotes(self, quotes: list[Quote]) -> None:
        """A batch of quotes; only this ticket's contract matters."""
        for q in quotes:
            self.on_quote(q)

    # -- building the order -------------------------------------------------------------

    def order_spec(self) -> OrderSpec:
        """The order the ticket describes now (not validated), as core takes it."""
        kind = self.order_type.currentText()
        return OrderSpec(
            action=self._side,
            quantity=self.quantity.value(),
            order_type=kind,
            limit_price=self.limit_price.value() if kind in ("LMT", "STP LMT") else None,
            stop_price=self.stop_price.value() if kind in ("STP", "STP LMT") else None,
            tif=self.tif.currentText(),
            outside_rth=self.outside_rth.isChecked(),
        )

    def _refresh(self) -> None:
        """Recompute the preview, the inline flags and what the send button says."""
        spec = self.order_spec()
        kind = spec.order_type
        chosen = self.info is not None
        entry_problems = {
            field: problem
            for field, problem in (
                (self.quantity, self.entry_problem(self.quantity, "Quantity", True, chosen)),
                (
                    self.limit_price,
                    self.entry_problem(
                        self.limit_price, "Limit price", kind in ("LMT", "STP LMT"), chosen
                    ),
                ),
                (
                    self.stop_price,
                    self.entry_problem(
                        self.stop_price, "Stop price", kind in ("STP", "STP LMT"), chosen
                    ),
                ),
            )
        }
        for field, label in (
            (self.quantity, self.quantity_error),
            (self.limit_price, self.limit_error),
            (self.stop_price, self.stop_error),
        ):
            problem = entry_problems[field]
            # Limit and Stop share a row: their reasons name the field; the quantity's
            # sits under it alone.
            shown = problem.split(": ", 1)[1] if problem and field is self.quantity else problem
            label.setText(shown or "")
            label.setVisible(problem is not None)
        field_problems = [p for p in entry_problems.values() if p]
        preview: OrderPreview | None = None
        if self.entry is not None and self.info is not None and not field_problems:
            preview = self.entry.preview(self.info, spec, self._strategy())
        self._preview = preview
        risk_problems = list(preview.problems) if preview is not None else []
        self.mark_fields(tuple(risk_problems), entry_problems)
        cur = self.info.currency if self.info else "USD"
        self.notional_label.setText(money(preview.notional if preview else None, cur))
        self.commission_label.setText(money(preview.est_commission if preview else None, cur))
        self.show_verdict(preview, field_problems if self.info is not None else [])

        # Why it cannot be sent, most fundamental first.
        blocked: list[str] = []
        if self.readonly:
            blocked.append("read-only mode: sends no orders")
        halted_text = f"HALTED: {self._state_reason or 'trading is stopped'}"
        if self._state is TradingState.HALTED:
            blocked.append(halted_text)
        if self.offline_reason:
            blocked.append(self.offline_reason)
        if self.info is None:
            blocked.append("choose a symbol")
        blocked += field_problems
        halted = self._state is TradingState.HALTED
        # HALTED is said once, first; risk's own wording of it would only repeat it.
        blocked += [p for p in risk_problems if not (halted and "HALTED" in p)]
        # The list under the verdict leaves out what the ticket says elsewhere already:
        # the trading state has its own line, no symbol is the button's, and being
        # offline is said under the symbol field while no instrument is shown there.
        said = {"choose a symbol"}
        if halted and self.state_label.isVisibleTo(self):
            said.add(halted_text)
        if self.offline_reason and self.description.text().startswith(self.offline_reason):
            said.add(self.offline_reason)
        self.problems.setText("\n".join(f"• {p}" for p in blocked if p not in said))
        order_text = self.order_words(self._side, kind, self.info.symbol if self.info else "")
        sendable = not blocked and preview is not None and preview.approved
        if sendable:
            self.send_button.set_lines(order_text)
            self.send_button.setToolTip(f"Send {order_text} (Enter)")
        else:
            first = blocked[0] if blocked else "checking…"
            self.send_button.set_lines(order_text, first)
            self.send_button.setToolTip("Cannot send:\n" + "\n".join(blocked or [first]))
        self.send_button.setAccessibleDescription(self.send_button.toolTip())
        self.send_button.setEnabled(sendable)
        if sendable:
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
        if (
            self.confirm_above_notional is not None
            and preview.notional is not None
            and preview.notional > self.confirm_above_notional
            and not self.confirm_large(
                f"Notional {money(preview.notional, self.info.currency)} is above "
                f"{money(self.confirm_above_notional, self.info.currency)}."
            )
        ):
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
        self.show_status(f"sent #{order_id}: {self.send_button.text()}")
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
        self.limit_price.set_applies(kind in ("LMT", "STP LMT"))
        self.stop_price.set_applies(kind in ("STP", "STP LMT"))
        self._refresh()

    def _use_price(self, price: float | None) -> None:
        if price is None:
            return
        if self.order_type.currentText() in ("MKT", "STP"):
            self.order_type.setCurrentText("LMT")
        self.limit_price.setValue(price)

    def _apply_quote(self) -> None:
        q = self._pending_quote
        if q is None or self.info is None:
            return
        d = decimals_of(self.info.min_tick)
        self.show_quotes(q.bid, q.ask, q.last, d)
        if self._prefill_limit and self.limit_price.error() != "empty":
            self._prefill_limit = False  # the trader typed a price first: it stays
        if self._prefill_limit:
            # The limit starts at the touch of the side, from the first quote whenever it
            # comes (before, a first symbol whose quote came late kept a red 0.00).
            touch = q.ask if self._side == "BUY" else q.bid
            touch = touch if touch is not None else q.last
            if touch is not None:
                self._prefill_limit = False
                self.limit_price.setValue(touch)
                return  # setValue refreshed the preview
        if self.order_type.currentText() == "MKT":
            self._refresh()  # the notional of a market order follows the touch

    def _on_completion(self, text: str) -> None:
        self.symbol_edit.setText(text.split(" ")[0])
        self._resolve_symbol()

    def _resolve_symbol(self) -> None:
        text = self.symbol_edit.text().strip()
        if not text or (
            self.info is not None and text.upper() in (self.info.symbol, self.info.contract.symbol)
        ):
            self._pending_quantity = self._pending_price = None
            return
        self._resolving = spawn(self.resolve(text), what=f"looking up {text}")

    def _search(self) -> None:
        text = self.symbol_edit.text().strip()
        if self.entry is None or len(text) < 1:
            return
        spawn(self._do_search(text), what="symbol search")

    async def _do_search(self, text: str) -> None:
        assert self.entry is not None
        matches = await self.entry.search(text)
        if not shiboken6.isValid(self.completions):
            return  # the ticket closed while the search ran
        self.completions.setStringList([f"{m.symbol}  {m.description}" for m in matches])

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

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            watched is self.symbol_edit
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        ):
            popup = self.symbol_edit.completer().popup()
            if popup is not None and popup.isVisible():
                return False  # the completer takes the chosen line
            self._resolve_symbol()
            self.quantity.setFocus()
            self.quantity.selectAll()
            return True
        return super().eventFilter(watched, event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not self.symbol_edit.hasFocus():
            self.submit()
            return
        super().keyPressEvent(event)
