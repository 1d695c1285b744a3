"""The order ticket's instrument: the symbol looked up, its completions and its quotes.

:class:`InstrumentForm` is :class:`gui.widgets.ticket_form.TicketForm` (the layout) plus
what the symbol box does: a debounced search fills the completer; Enter, a completion
or leaving the box looks the symbol up through :class:`core.order_entry.OrderEntry`
(a failure is said in place and nothing of the previous instrument stays); a new
instrument sets the price grid and its own default size and watches its quotes, which
are coalesced to one repaint a frame, prefill the limit at the side's touch and can be
clicked into the limit. Judging and sending the order is
:class:`gui.widgets.order_ticket.OrderTicket`, built on this class; its ``_refresh``
judges the order again whenever the instrument or a quote changes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import shiboken6
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QHideEvent, QKeyEvent
from PySide6.QtWidgets import QWidget

from core.marketdata import Quote
from core.order_entry import InstrumentInfo, OrderEntry
from gui import theme
from gui.tasks import spawn
from gui.widgets.ticket_form import TicketForm, decimals_of

__all__ = ["DEFAULT_QUANTITY", "InstrumentForm"]

#: The ticket's quantity for a newly chosen instrument when no preset is given.
DEFAULT_QUANTITY: Mapping[str, float] = {"STK": 100.0, "FUT": 1.0, "CASH": 20_000.0, "OPT": 1.0}


class InstrumentForm(TicketForm):
    """The ticket form with its instrument looked up and quoted (no order logic)."""

    def __init__(
        self,
        strategies: list[str] | None = None,
        default_quantity: Mapping[str, float] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(strategies, parent)
        #: Core's order entry (set through ``OrderTicket.entry``; None without a session).
        self._entry: OrderEntry | None = None
        #: BUY or SELL (the ticket's logic sets it): the limit is prefilled at its touch.
        self._side = "BUY"
        self.default_quantity: Mapping[str, float] = dict(default_quantity or DEFAULT_QUANTITY)
        self.info: InstrumentInfo | None = None
        #: Why nothing can be looked up or sent now (no connection), or "".
        self.offline_reason = ""
        self._resolving: asyncio.Task[Any] | None = None
        # A size or price asked for by ``OrderTicket.load``, kept over the defaults of
        # the instrument being looked up; the limit waits for the first quote.
        self._pending_quantity: float | None = None
        self._pending_price: float | None = None
        self._prefill_limit = False
        self._pending_quote: Quote | None = None
        # Debounces (single-shot, restarted on input): not polling.
        self._search_timer = self._single_shot(250, self._search)
        self._quote_timer = self._single_shot(16, self._apply_quote)
        self.symbol_edit.completer().activated.connect(self._on_completion)
        self.symbol_edit.textEdited.connect(lambda _t: self._search_timer.start())
        self.symbol_edit.editingFinished.connect(self._resolve_symbol)
        # Enter in the symbol looks it up and moves on to the quantity; it never sends
        # (the order on the ticket is still the previous instrument's until resolved).
        self.symbol_edit.installEventFilter(self)
        self.bid_button.clicked.connect(lambda: self._use_price(self.bid_button.price))
        self.ask_button.clicked.connect(lambda: self._use_price(self.ask_button.price))

    def _refresh(self) -> None:
        """Judge the order again: the ticket's logic (``OrderTicket``) does."""
        raise NotImplementedError

    def _single_shot(self, ms: int, slot: Callable[[], Any]) -> QTimer:
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(ms)
        timer.timeout.connect(slot)
        return timer

    def hideEvent(self, event: QHideEvent) -> None:
        # A closed ticket (its dock or the window) looks nothing up: a debounced search
        # firing after the session stopped would have no loop to run on.
        for timer in (self._search_timer, self._quote_timer):
            timer.stop()
        super().hideEvent(event)

    # -- public slots -------------------------------------------------------------------

    def focus_symbol(self) -> None:
        """Put the cursor in the symbol box, text selected."""
        self.symbol_edit.setFocus()
        self.symbol_edit.selectAll()

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

    async def resolve(self, text: str) -> InstrumentInfo | None:
        """Look the symbol up and watch its quotes; errors are shown in place."""
        if self._entry is None:
            return None
        try:
            info = await self._entry.instrument(text)
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
        quote = self._entry.watch(info)
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

    # -- quotes -------------------------------------------------------------------------

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

    # -- the symbol box -----------------------------------------------------------------

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
        if self._entry is None or len(text) < 1:
            return
        spawn(self._do_search(text), what="symbol search")

    async def _do_search(self, text: str) -> None:
        assert self._entry is not None
        matches = await self._entry.search(text)
        if not shiboken6.isValid(self.completions):
            return  # the ticket closed while the search ran
        self.completions.setStringList([f"{m.symbol}  {m.description}" for m in matches])

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
