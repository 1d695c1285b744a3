"""The order ticket: symbol, side, size, type, prices, TIF; a preview before sending.

Everything the ticket decides comes from :class:`core.order_entry.OrderEntry`:
instrument lookup, the preview (notional, commission estimate, every reason the order
would be refused, risk's verdict included), the gateway's whatIf margin impact, and
sending. The widget only collects input, shows answers and flags bad input in place.

Keyboard: the window binds F2 (buy), F3 (sell) and Ctrl+L (focus the symbol); Enter in
the ticket sends, after the confirmation when the notional is above the threshold. Tab
runs symbol -> quantity -> type -> prices -> TIF -> send; the quote and side buttons
are clicked, not tabbed through.

Honest input: the number fields hold exactly what they show or say why the entry is
not a number (:mod:`gui.widgets.number_field`); the send button reads the order it
would send, or why it cannot (a bad field, a refusal, HALTED / REDUCING, read-only,
no connection). The verdict is recomputed at once when the trading state or a limit
changes (:meth:`OrderTicket.on_trading_state_changed`, :meth:`OrderTicket.reevaluate`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import shiboken6
from ib_async import Order
from PySide6.QtCore import QEvent, QObject, QStringListModel, Qt, QTimer, Signal
from PySide6.QtGui import QFontMetrics, QHideEvent, QKeyEvent, QResizeEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QCompleter,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from core.events import MANUAL, TradingState, TradingStateChanged
from core.marketdata import Quote
from core.order_entry import InstrumentInfo, OrderEntry, OrderPreview
from core.orders import (
    create_limit_order,
    create_market_order,
    create_stop_limit_order,
    create_stop_order,
)
from core.trading import OrderRefused
from gui import theme
from gui.models.formatting import PLACEHOLDER
from gui.tasks import spawn
from gui.widgets.form_scroll import VerticalScrollArea
from gui.widgets.number_field import NumberField

log = logging.getLogger(__name__)

ORDER_TYPES = ("LMT", "MKT", "STP", "STP LMT")
TIFS = ("DAY", "GTC", "IOC")
#: The ticket's quantity for a newly chosen instrument when no preset is given.
DEFAULT_QUANTITY: Mapping[str, float] = {"STK": 100.0, "FUT": 1.0, "CASH": 20_000.0, "OPT": 1.0}
#: The largest quantity the ticket will send (above it the entry is flagged).
MAX_QUANTITY = 1e9


def _decimals(min_tick: float) -> int:
    text = f"{min_tick:.10f}".rstrip("0")
    return max(0, len(text.split(".")[1])) if "." in text else 0


def _money(value: float | None, currency: str = "USD") -> str:
    if value is None or not math.isfinite(value):
        return PLACEHOLDER
    return f"{value:,.2f} {currency}"


class QuoteButton(QPushButton):
    """A price you can click: sets the ticket's limit price."""

    def __init__(self, caption: str, colour: str) -> None:
        super().__init__(PLACEHOLDER)
        self.caption = caption
        self.price: float | None = None
        self.setFlat(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip(f"{caption}: click to use as the limit price")
        # Transparent: a price, not a button, until hovered (the global QPushButton
        # background would otherwise box it).
        self.setStyleSheet(
            f"QPushButton {{ color: {colour}; font-family: '{theme.mono_family()}';"
            " font-size: 13pt; font-weight: 600; background: transparent; border: none;"
            " border-radius: 4px; padding: 2px 6px; }"
            f"QPushButton:hover {{ background: {theme.HOVER}; }}"
            f"QPushButton:pressed {{ background: {theme.SELECTION}; }}"
        )

    def set_price(self, price: float | None, decimals: int) -> None:
        """Show a price, or the placeholder when there is none."""
        self.price = price
        self.setText(PLACEHOLDER if price is None else f"{price:,.{decimals}f}")


class PriceBox(NumberField):
    """A price field that shows nothing while it does not apply to the order type.

    What was typed is kept, so switching back (LMT -> STP LMT) restores it; a disabled
    "0.00" looked exactly like a price that will be sent.
    """

    def __init__(self) -> None:
        super().__init__(decimals=2, maximum=1e9, step=0.01, negative_hint="a price is above 0")
        self._applies = True
        self._kept = ""

    def applies(self) -> bool:
        """Whether the field is part of the current order type."""
        return self._applies

    def set_applies(self, applies: bool) -> None:
        """Enable the field and show its entry, or disable it and show it blank."""
        if applies == self._applies:
            return
        self._applies = applies
        if applies:
            self.setEnabled(True)
            self.setText(self._kept)
        else:
            self._kept = self.text()
            kept = (self._value, self._error)
            self.setText("")
            self._value, self._error = kept  # the value stays, only hidden
            self.setEnabled(False)

    def clear_entry(self) -> None:
        """Blank, whether shown or hidden (a new instrument's price is not the last one's)."""
        self._kept = ""
        if self._applies:
            self.setText("")
        else:
            self._value, self._error = None, "empty"

    def setValue(self, value: float) -> None:
        if self._applies:
            super().setValue(value)
        else:
            self._kept = self.textFromValue(value)
            self._value, self._error = value, None


class SendButton(QPushButton):
    """The send button: the order on the first line; why it cannot go on the second,
    elided to the button's width (never cut at both ends, never widening the ticket)."""

    def __init__(self) -> None:
        super().__init__("")
        self._lines: tuple[str, str] = ("", "")

    def set_lines(self, order: str, reason: str = "") -> None:
        """Show ``order`` and, under it, ``reason`` (empty: the order alone)."""
        self._lines = (order, reason)
        self._apply()

    def lines(self) -> tuple[str, str]:
        """The order and the reason, whole (the text may be elided)."""
        return self._lines

    def _apply(self) -> None:
        order, reason = self._lines
        if not reason:
            self.setText(order)
            return
        room = max(60, self.width() - 20)
        metrics = QFontMetrics(self.font())
        elided = metrics.elidedText(reason, Qt.TextElideMode.ElideRight, room)
        self.setText(f"{metrics.elidedText(order, Qt.TextElideMode.ElideRight, room)}\n{elided}")

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._apply()


def _number_style(extra: str = "") -> str:
    """A label style sheet in the number font; a later setStyleSheet replaces the whole
    sheet, so every style of a number label goes through here to keep the font."""
    return f"font-family: '{theme.mono_family()}'; {extra}".strip()


class OrderTicket(QFrame):
    """Order entry.

    Signals
    -------
    orderSent(object): the ib_async Trade of an order that was sent.
    orderRefused(str): why an order was refused (already shown in the ticket).
    """

    orderSent = Signal(object)
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
        super().__init__(parent)
        self.setObjectName("orderTicket")
        self.setAccessibleName("Order ticket")
        self.entry = entry
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
        self._build(strategies or [MANUAL])
        # Debounces (single-shot, restarted on input): not polling.
        self._search_timer = self._single_shot(250, self._search)
        self._margin_timer = self._single_shot(600, self._check_margin)
        self._quote_timer = self._single_shot(16, self._apply_quote)
        self._pending_quote: Quote | None = None
        self._set_side("BUY")
        self._on_type_changed()
        self._refresh()

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

    def _build(self, strategies: list[str]) -> None:
        # The fields scroll on a short screen; the verdict, the reasons, the send button
        # and the last order's status stay pinned below them, always in view.
        body = QWidget(self)
        outer = QVBoxLayout(body)
        outer.setContentsMargins(10, 8, 10, 4)
        outer.setSpacing(8)

        # symbol + description
        self.symbol_edit = QLineEdit()
        self.symbol_edit.setPlaceholderText("Symbol (AAPL, ES, EUR.USD)")
        self.symbol_edit.setClearButtonEnabled(True)
        f = self.symbol_edit.font()
        f.setPointSize(f.pointSize() + 3)
        f.setBold(True)
        self.symbol_edit.setFont(f)
        self._completions = QStringListModel(self)
        completer = QCompleter(self._completions, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        completer.activated.connect(self._on_completion)
        self.symbol_edit.setCompleter(completer)
        self.symbol_edit.textEdited.connect(lambda _t: self._search_timer.start())
        self.symbol_edit.editingFinished.connect(self._resolve_symbol)
        # Enter in the symbol looks it up and moves on to the quantity; it never sends
        # (the order on the ticket is still the previous instrument's until resolved).
        self.symbol_edit.installEventFilter(self)
        outer.addWidget(self.symbol_edit)
        self.description = QLabel("")
        self.description.setStyleSheet(f"color: {theme.TEXT_DIM};")
        self.description.setWordWrap(True)
        # A long error ("unknown contract ZZZZ ...") wraps; it never widens the dock.
        self.description.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        outer.addWidget(self.description)

        # quotes
        quotes = QGridLayout()
        quotes.setHorizontalSpacing(4)
        self.bid_button = QuoteButton("Bid", theme.SELL)
        self.ask_button = QuoteButton("Ask", theme.BUY)
        self.last_label = QLabel(PLACEHOLDER)
        self.last_label.setStyleSheet(f"font-family: '{theme.mono_family()}'; font-size: 11pt;")
        for col, (title, w) in enumerate(
            (("BID", self.bid_button), ("LAST", self.last_label), ("ASK", self.ask_button))
        ):
            cap = QLabel(title)
            cap.setAlignment(Qt.AlignmentFlag.AlignCenter)
            cap.setStyleSheet(f"color: {theme.TEXT_FAINT}; font-size: 8pt; letter-spacing: 1px;")
            quotes.addWidget(cap, 0, col)
            quotes.addWidget(w, 1, col, alignment=Qt.AlignmentFlag.AlignCenter)
        self.bid_button.clicked.connect(lambda: self._use_price(self.bid_button.price))
        self.ask_button.clicked.connect(lambda: self._use_price(self.ask_button.price))
        outer.addLayout(quotes)

        # side
        sides = QHBoxLayout()
        self.buy_button = QPushButton("BUY")
        self.sell_button = QPushButton("SELL")
        self._side_group = QButtonGroup(self)
        for b in (self.buy_button, self.sell_button):
            b.setCheckable(True)
            b.setMinimumHeight(30)
            self._side_group.addButton(b)
            sides.addWidget(b)
        self.buy_button.clicked.connect(lambda: self._set_side("BUY"))
        self.sell_button.clicked.connect(lambda: self._set_side("SELL"))
        outer.addLayout(sides)

        # fields, each with its reason under it when the entry is not usable
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(6)
        qty_row = QHBoxLayout()
        self.quantity = NumberField(
            decimals=0,
            maximum=MAX_QUANTITY,
            step=100,
            negative_hint="the side (BUY / SELL) gives the direction",
        )
        self.quantity.setValue(100)
        qty_row.addWidget(self.quantity, 1)
        self.size_button = QPushButton("Size by risk")
        self.size_button.setToolTip("Quantity from the contract's volatility and the risk budget")
        self.size_button.clicked.connect(self._size_by_risk)
        self.size_button.setEnabled(self.size_by_risk is not None)
        qty_row.addWidget(self.size_button)
        form.addRow("Quantity", qty_row)
        self.quantity_error = self._error_label(form)
        self.order_type = QComboBox()
        self.order_type.addItems(ORDER_TYPES)
        form.addRow("Type", self.order_type)
        self.limit_price = self._price_box()
        form.addRow("Limit", self.limit_price)
        self.limit_error = self._error_label(form)
        self.stop_price = self._price_box()
        form.addRow("Stop", self.stop_price)
        self.stop_error = self._error_label(form)
        tif_row = QHBoxLayout()
        self.tif = QComboBox()
        self.tif.addItems(TIFS)
        tif_row.addWidget(self.tif, 1)
        self.outside_rth = QCheckBox("Outside RTH")
        tif_row.addWidget(self.outside_rth)
        form.addRow("TIF", tif_row)
        self.strategy = QComboBox()
        self.strategy.setEditable(True)
        self.strategy.addItems(strategies)
        self.strategy.setCurrentText(MANUAL)
        form.addRow("Strategy", self.strategy)
        outer.addLayout(form)

        preview = QFormLayout()
        preview.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.notional_label = QLabel(PLACEHOLDER)
        self.commission_label = QLabel(PLACEHOLDER)
        self.margin_label = QLabel(PLACEHOLDER)
        for title, w in (
            ("Notional", self.notional_label),
            ("Est. commission", self.commission_label),
            ("Margin impact", self.margin_label),
        ):
            w.setStyleSheet(_number_style())
            preview.addRow(title, w)
        outer.addLayout(preview)
        outer.addStretch(1)

        # pinned: trading state, verdict and reasons, send button, last order's status
        self.state_label = QLabel("")
        self.state_label.setObjectName("ticketTradingState")
        self.state_label.setAccessibleName("Trading state")
        self.state_label.setWordWrap(True)
        self.state_label.hide()
        self.verdict_label = QLabel(PLACEHOLDER)
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setStyleSheet(_number_style())
        self.problems = QLabel("")
        self.problems.setWordWrap(True)
        self.problems.setObjectName("ticketProblems")
        self.problems.setAccessibleName("Why the order cannot be sent")
        self.problems.setStyleSheet(f"color: {theme.LOSS};")
        self.problems.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.send_button = SendButton()
        # Two lines: the order, and under it why it cannot go (when it cannot). Its
        # width follows the ticket's, never the text's: a long reason must not widen it.
        self.send_button.setMinimumHeight(46)
        self.send_button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.send_button.clicked.connect(self.submit)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet(f"color: {theme.TEXT_DIM};")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)
        self.fields_area = VerticalScrollArea(body, self)
        root.addWidget(self.fields_area, 1)
        pinned = QVBoxLayout()
        pinned.setContentsMargins(10, 4, 10, 8)
        pinned.setSpacing(4)
        verdict_row = QHBoxLayout()
        verdict_caption = QLabel("Risk check")
        verdict_caption.setStyleSheet(f"color: {theme.TEXT_DIM};")
        verdict_row.addWidget(verdict_caption)
        verdict_row.addWidget(self.verdict_label, 1)
        pinned.addWidget(self.state_label)
        pinned.addLayout(verdict_row)
        pinned.addWidget(self.problems)
        pinned.addWidget(self.send_button)
        pinned.addWidget(self.status)
        root.addLayout(pinned)

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
        self._name_controls()

    def _error_label(self, form: QFormLayout) -> QLabel:
        """A red line under a field, shown only while its entry cannot be used."""
        label = QLabel("")
        label.setWordWrap(True)
        label.setStyleSheet(f"color: {theme.LOSS}; font-size: 9pt;")
        label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        label.hide()
        form.addRow("", label)
        return label

    def _name_controls(self) -> None:
        """Object and accessible names (tests, screen readers); the tab chain a trader
        types through: symbol -> quantity -> type -> prices -> TIF -> send."""
        for w, name, text in (
            (self.symbol_edit, "ticketSymbol", "Symbol"),
            (self.description, "ticketDescription", "Instrument"),
            (self.bid_button, "ticketBid", "Bid price: click to use as limit"),
            (self.ask_button, "ticketAsk", "Ask price: click to use as limit"),
            (self.last_label, "ticketLast", "Last price"),
            (self.buy_button, "ticketBuy", "Buy side"),
            (self.sell_button, "ticketSell", "Sell side"),
            (self.quantity, "ticketQuantity", "Quantity"),
            (self.quantity_error, "ticketQuantityError", "Quantity problem"),
            (self.size_button, "ticketSizeByRisk", "Size by risk"),
            (self.order_type, "ticketOrderType", "Order type"),
            (self.limit_price, "ticketLimitPrice", "Limit price"),
            (self.limit_error, "ticketLimitError", "Limit price problem"),
            (self.stop_price, "ticketStopPrice", "Stop price"),
            (self.stop_error, "ticketStopError", "Stop price problem"),
            (self.tif, "ticketTif", "Time in force"),
            (self.outside_rth, "ticketOutsideRth", "Outside regular trading hours"),
            (self.strategy, "ticketStrategy", "Strategy"),
            (self.notional_label, "ticketNotional", "Notional"),
            (self.commission_label, "ticketCommission", "Estimated commission"),
            (self.margin_label, "ticketMargin", "Margin impact"),
            (self.verdict_label, "ticketVerdict", "Risk check"),
            (self.send_button, "ticketSend", "Send order"),
            (self.status, "ticketStatus", "Last order status"),
        ):
            w.setObjectName(name)
            w.setAccessibleName(text)
        # Clicked, not tabbed through: four presses from Symbol to Quantity lost a size.
        for b in (self.bid_button, self.ask_button, self.buy_button, self.sell_button):
            b.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.size_button.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        chain = (
            self.symbol_edit,
            self.quantity,
            self.order_type,
            self.limit_price,
            self.stop_price,
            self.tif,
            self.outside_rth,
            self.strategy,
            self.send_button,
        )
        for a, b in itertools.pairwise(chain):
            QWidget.setTabOrder(a, b)

    def _price_box(self) -> PriceBox:
        return PriceBox()

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
        why = "read-only mode: this console sends no orders" if readonly else ""
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
        self._show_state()
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
            for button in (self.bid_button, self.ask_button):
                button.set_price(None, 2)
            self.last_label.setText(PLACEHOLDER)
            self._flag(self.symbol_edit, True)
            why = str(exc) or type(exc).__name__
            if self.offline_reason:
                why = f"{self.offline_reason}: cannot look up {text.strip().upper()} ({why})"
            self.description.setText(why)
            self.description.setStyleSheet(f"color: {theme.LOSS};")
            self._refresh()
            return None
        self._flag(self.symbol_edit, False)
        previous = self.info
        self.info = info
        self.description.setText(f"{info.description} · {info.sec_type} · {info.currency}")
        self.description.setStyleSheet(f"color: {theme.TEXT_DIM};")
        decimals = _decimals(info.min_tick)
        for box in (self.limit_price, self.stop_price):
            box.setDecimals(decimals)
            box.setSingleStep(info.min_tick)
        self.quantity.setDecimals(0 if info.size_increment >= 1 else _decimals(info.size_increment))
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

    def build_order(self) -> Order:
        """The order the ticket describes now (not validated)."""
        side, qty = self._side, self.quantity.value()
        kind = self.order_type.currentText()
        lmt, stp = self.limit_price.value(), self.stop_price.value()
        if kind == "MKT":
            order = (
                create_market_order(side, qty)
                if qty > 0
                else Order(action=side, orderType="MKT", totalQuantity=qty)
            )
        elif kind == "LMT":
            order = Order(action=side, orderType="LMT", totalQuantity=qty, lmtPrice=lmt)
            if qty > 0 and lmt > 0:
                order = create_limit_order(side, qty, lmt)
        elif kind == "STP":
            order = Order(action=side, orderType="STP", totalQuantity=qty, auxPrice=stp)
            if qty > 0 and stp > 0:
                order = create_stop_order(side, qty, stp)
        else:
            order = Order(
                action=side, orderType="STP LMT", totalQuantity=qty, lmtPrice=lmt, auxPrice=stp
            )
            if qty > 0 and lmt > 0 and stp > 0:
                order = create_stop_limit_order(side, qty, stp, lmt)
        order.tif = self.tif.currentText()
        order.outsideRth = self.outside_rth.isChecked()
        return order

    def _entry_problem(self, field: NumberField, title: str, applies: bool) -> str | None:
        """Why a field's entry cannot be sent, in place; None when it can.

        A bad entry (letters, "-5", "1e12") is flagged at once; an empty or zero field
        only once there is an instrument to trade (an empty ticket is not an error).
        """
        if not applies:
            return None
        error = field.error()
        chosen = self.info is not None
        if error == "empty":
            return f"{title}: type a number" if chosen else None
        if error is not None:
            return f"{title}: {error}"
        if field.value() <= 0:
            return f"{title}: must be above 0" if chosen else None
        return None

    def _order_text(self, kind: str) -> str:
        """The order in words, as it would be sent ("BUY 100 AAPL STP 185.00 LMT 185.50");
        "?" stands for a field whose entry is not a number."""

        def shown(field: NumberField) -> str:
            if field.error() == "empty":
                return ""
            return "?" if field.error() else field.textFromValue(field.value())

        stop = shown(self.stop_price) if kind in ("STP", "STP LMT") else ""
        limit = shown(self.limit_price) if kind in ("LMT", "STP LMT") else ""
        if kind == "STP LMT":
            words: tuple[str, ...] = ("STP", stop, "LMT" if limit else "", limit)
        else:
            words = (kind, stop or limit)
        qty = shown(self.quantity) or "?"
        symbol = self.info.symbol if self.info else ""
        # Only non-empty parts: no symbol yet must not leave a double space.
        return " ".join(p for p in (self._side, qty, symbol, *words) if p)

    def _refresh(self) -> None:
        """Recompute the preview, the inline flags and what the send button says."""
        order = self.build_order()
        kind = order.orderType
        entry_problems = {
            field: problem
            for field, problem in (
                (self.quantity, self._entry_problem(self.quantity, "Quantity", True)),
                (
                    self.limit_price,
                    self._entry_problem(
                        self.limit_price, "Limit price", kind in ("LMT", "STP LMT")
                    ),
                ),
                (
                    self.stop_price,
                    self._entry_problem(self.stop_price, "Stop price", kind in ("STP", "STP LMT")),
                ),
            )
        }
        for field, label in (
            (self.quantity, self.quantity_error),
            (self.limit_price, self.limit_error),
            (self.stop_price, self.stop_error),
        ):
            problem = entry_problems[field]
            label.setText(problem.split(": ", 1)[1] if problem else "")
            label.setVisible(problem is not None)
        field_problems = [p for p in entry_problems.values() if p]
        preview: OrderPreview | None = None
        if self.entry is not None and self.info is not None and not field_problems:
            preview = self.entry.preview(self.info, order, self._strategy())
        self._preview = preview
        risk_problems = list(preview.problems) if preview is not None else []
        self._mark_fields(tuple(risk_problems), entry_problems)
        cur = self.info.currency if self.info else "USD"
        self.notional_label.setText(_money(preview.notional if preview else None, cur))
        self.commission_label.setText(_money(preview.est_commission if preview else None, cur))
        self._show_verdict(preview, field_problems)

        # Why it cannot be sent, most fundamental first.
        blocked: list[str] = []
        if self.readonly:
            blocked.append("read-only mode: this console sends no orders")
        if self._state is TradingState.HALTED:
            blocked.append(f"HALTED: {self._state_reason or 'trading is stopped'}")
        if self.offline_reason:
            blocked.append(self.offline_reason)
        if self.info is None:
            blocked.append("choose a symbol")
        blocked += field_problems
        halted = self._state is TradingState.HALTED
        # HALTED is said once, first; risk's own wording of it would only repeat it.
        blocked += [p for p in risk_problems if not (halted and "HALTED" in p)]
        self.problems.setText("\n".join(f"• {p}" for p in blocked if p != "choose a symbol"))
        order_text = self._order_text(kind)
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

    def _show_verdict(self, preview: OrderPreview | None, field_problems: list[str]) -> None:
        if field_problems and self.info is not None:
            self.verdict_label.setText("not checked: fix the fields")
            self.verdict_label.setToolTip("\n".join(field_problems))
            self.verdict_label.setStyleSheet(_number_style(f"color: {theme.LOSS};"))
            self.margin_label.setText(PLACEHOLDER)
        elif preview is None:
            self.verdict_label.setText(PLACEHOLDER)
            self.verdict_label.setToolTip("")
            self.verdict_label.setStyleSheet(_number_style(f"color: {theme.TEXT_DIM};"))
        elif preview.approved:
            self.verdict_label.setText("OK: within limits")
            self.verdict_label.setToolTip("")
            self.verdict_label.setStyleSheet(
                _number_style(f"color: {theme.GAIN}; font-weight: 600;")
            )
        else:
            n = len(preview.problems)
            self.verdict_label.setText(f"REFUSED ({n} reason{'s' if n > 1 else ''} below)")
            self.verdict_label.setToolTip("\n".join(preview.problems))
            self.verdict_label.setStyleSheet(
                _number_style(f"color: {theme.LOSS}; font-weight: 600;")
            )
            self.margin_label.setText(PLACEHOLDER)  # a whatIf of an order that cannot be sent

    def _show_state(self) -> None:
        state = self._state
        if state is None or state is TradingState.ACTIVE:
            self.state_label.hide()
            return
        colour = theme.LOSS if state is TradingState.HALTED else theme.AMBER
        what = (
            "no new orders; cancels still go through"
            if state is TradingState.HALTED
            else "only orders that reduce a position pass"
        )
        self.state_label.setText(f"{state.value}: {what}. {self._state_reason}".strip())
        self.state_label.setStyleSheet(
            f"color: {colour}; font-weight: 700; border: 1px solid {colour};"
            " border-radius: 4px; padding: 4px 6px;"
        )
        self.state_label.show()

    def _mark_fields(
        self,
        problems: tuple[str, ...],
        entry_problems: Mapping[NumberField, str | None] | None = None,
    ) -> None:
        entry_problems = entry_problems or {}
        text = " ".join(problems).lower()
        self._flag(self.quantity, bool(entry_problems.get(self.quantity)) or "quantity" in text)
        # A field that does not apply is never flagged.
        # Core names the field ("limit price 0.00 ...", "stop price ..."): a bare "limit"
        # is also every risk limit's reason, and "stop" a HALTED one's.
        self._flag(
            self.limit_price,
            self.limit_price.applies()
            and (bool(entry_problems.get(self.limit_price)) or "limit price" in text),
        )
        self._flag(
            self.stop_price,
            self.stop_price.applies()
            and (bool(entry_problems.get(self.stop_price)) or "stop price" in text),
        )

    @staticmethod
    def _flag(widget: QWidget, invalid: bool) -> None:
        if widget.property("invalid") == invalid:
            return
        widget.setProperty("invalid", invalid)
        widget.setStyleSheet(f"border: 1px solid {theme.LOSS};" if invalid else "")

    # -- sending ------------------------------------------------------------------------

    def submit(self) -> None:
        """Send the order (after confirmation for large notionals)."""
        if self.readonly or self.entry is None or self.info is None:
            return
        self._refresh()
        preview = self._preview
        if preview is None or not preview.approved or not self.send_button.isEnabled():
            return  # the button says why
        order = self.build_order()
        if (
            self.confirm_above_notional is not None
            and preview.notional is not None
            and preview.notional > self.confirm_above_notional
            and not self._confirm(order, preview)
        ):
            self.status.setText("not sent: cancelled at confirmation")
            return
        try:
            trade = self.entry.place(self.info, order, self._strategy())
        except OrderRefused as exc:
            text = "; ".join(exc.reasons)
            self.status.setText(f"REFUSED: {text}")
            self.status.setStyleSheet(f"color: {theme.LOSS};")
            self.orderRefused.emit(text)
            return
        self.status.setText(f"sent #{trade.order.orderId}: {self.send_button.text()}")
        self.status.setStyleSheet(f"color: {theme.TEXT_DIM};")
        trade.statusEvent += self._on_trade_status
        self.orderSent.emit(trade)

    def _confirm(self, order: Order, preview: OrderPreview) -> bool:
        assert self.info is not None
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Confirm large order")
        box.setText(
            f"{self.send_button.text()}\n\nNotional {_money(preview.notional, self.info.currency)} "
            f"is above {_money(self.confirm_above_notional, self.info.currency)}."
        )
        box.setStandardButtons(QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        return box.exec() == QMessageBox.StandardButton.Ok

    def _on_trade_status(self, trade: Any) -> None:
        status = trade.orderStatus.status
        last = trade.log[-1] if trade.log else None
        text = f"#{trade.order.orderId} {status}"
        if last is not None and last.errorCode:
            # IB rejections are shown, not only logged.
            text += f": error {last.errorCode}: {last.message}"
            self.status.setStyleSheet(f"color: {theme.LOSS};")
            self.orderRefused.emit(text)
        self.status.setText(text)

    # -- helpers ------------------------------------------------------------------------

    def _strategy(self) -> str:
        return self.strategy.currentText().strip() or MANUAL

    def _set_side(self, side: str) -> None:
        self._side = "SELL" if side.upper() == "SELL" else "BUY"
        (self.sell_button if self._side == "SELL" else self.buy_button).setChecked(True)
        colour = theme.SELL if self._side == "SELL" else theme.BUY
        for b, c, on in (
            (self.buy_button, theme.BUY, self._side == "BUY"),
            (self.sell_button, theme.SELL, self._side == "SELL"),
        ):
            # The widget's own sheet outranks dark.qss's :disabled rule, so read-only
            # needs its own (the chosen side keeps only its border colour).
            b.setStyleSheet(
                f"QPushButton {{ background: {c if on else theme.RAISED}; color: "
                f"{'#ffffff' if on else c}; font-weight: 700; border: 1px solid {c}; }}"
                f"QPushButton:disabled {{ background: {theme.SURFACE}; color: {theme.TEXT_FAINT};"
                f" border-color: {c if on else theme.BORDER}; }}"
            )
        self.send_button.setStyleSheet(
            f"QPushButton {{ background: {colour}; color: #ffffff; font-weight: 700;"
            " font-size: 11pt; border: none; border-radius: 4px; }"
            f"QPushButton:disabled {{ background: {theme.RAISED}; color: {theme.TEXT_FAINT}; }}"
        )
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
        d = _decimals(self.info.min_tick)
        self.bid_button.set_price(q.bid, d)
        self.ask_button.set_price(q.ask, d)
        self.last_label.setText(PLACEHOLDER if q.last is None else f"{q.last:,.{d}f}")
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
        if not shiboken6.isValid(self._completions):
            return  # the ticket closed while the search ran
        self._completions.setStringList([f"{m.symbol}  {m.description}" for m in matches])

    def _check_margin(self) -> None:
        if (
            self.entry is None
            or self.info is None
            or self._preview is None
            or not self._preview.approved
        ):
            return
        spawn(self._do_margin(self.info, self.build_order()), what="margin check")

    async def _do_margin(self, info: InstrumentInfo, order: Order) -> None:
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
