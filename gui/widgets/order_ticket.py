"""The order ticket: symbol, side, size, type, prices, TIF; a preview before sending.

Everything the ticket decides comes from :class:`core.order_entry.OrderEntry`:
instrument lookup, the preview (notional, commission estimate, every reason the order
would be refused, risk's verdict included), the gateway's whatIf margin impact, and
sending. The widget only collects input, shows answers and flags bad input in place.

Keyboard: the window binds F2 (buy), F3 (sell) and Ctrl+L (focus the symbol); Enter in
the ticket sends, after the confirmation when the notional is above the threshold.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any

from ib_async import Order
from PySide6.QtCore import QStringListModel, Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QKeyEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QCompleter,
    QDoubleSpinBox,
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

from core.events import MANUAL
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

log = logging.getLogger(__name__)

ORDER_TYPES = ("LMT", "MKT", "STP", "STP LMT")
TIFS = ("DAY", "GTC", "IOC")


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


class PriceBox(QDoubleSpinBox):
    """A price field that shows nothing while it does not apply to the order type.

    The value is kept, so switching back (LMT -> STP LMT) restores what was typed; a
    disabled "0.00" looked exactly like a price that will be sent.
    """

    def __init__(self) -> None:
        super().__init__()
        self._applies = True

    def applies(self) -> bool:
        """Whether the field is part of the current order type."""
        return self._applies

    def set_applies(self, applies: bool) -> None:
        """Enable the field and show its value, or disable it and show it blank."""
        self._applies = applies
        self.setEnabled(applies)
        # Qt re-formats the text only when the value changes; re-setting the special
        # value text is the public way to make it re-format now (signals stay quiet).
        self.setSpecialValueText(self.specialValueText())

    def textFromValue(self, value: float) -> str:
        return super().textFromValue(value) if self._applies else ""


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
        confirm_above_notional: float | None = 100_000.0,
        size_by_risk: Callable[[InstrumentInfo], Any] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("orderTicket")
        self.entry = entry
        self.confirm_above_notional = confirm_above_notional
        self.size_by_risk = size_by_risk
        self.info: InstrumentInfo | None = None
        self.readonly = False
        self._preview: OrderPreview | None = None
        self._resolving: asyncio.Task[Any] | None = None
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
        # The fields scroll on a short screen; the send button and the last order's
        # status stay pinned below them, always in view.
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
        outer.addWidget(self.symbol_edit)
        self.description = QLabel("")
        self.description.setStyleSheet(f"color: {theme.TEXT_DIM};")
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

        # fields
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(6)
        qty_row = QHBoxLayout()
        self.quantity = QDoubleSpinBox()
        self.quantity.setRange(0, 1e9)
        self.quantity.setDecimals(0)
        self.quantity.setSingleStep(100)
        self.quantity.setValue(100)
        self.quantity.setGroupSeparatorShown(True)
        self.quantity.setAlignment(Qt.AlignmentFlag.AlignRight)
        qty_row.addWidget(self.quantity, 1)
        self.size_button = QPushButton("Size by risk")
        self.size_button.setToolTip("Quantity from the contract's volatility and the risk budget")
        self.size_button.clicked.connect(self._size_by_risk)
        self.size_button.setEnabled(self.size_by_risk is not None)
        qty_row.addWidget(self.size_button)
        form.addRow("Quantity", qty_row)
        self.order_type = QComboBox()
        self.order_type.addItems(ORDER_TYPES)
        form.addRow("Type", self.order_type)
        self.limit_price = self._price_box()
        form.addRow("Limit", self.limit_price)
        self.stop_price = self._price_box()
        form.addRow("Stop", self.stop_price)
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

        # inline problems and preview
        self.problems = QLabel("")
        self.problems.setWordWrap(True)
        self.problems.setObjectName("ticketProblems")
        self.problems.setStyleSheet(f"color: {theme.LOSS};")
        outer.addWidget(self.problems)
        preview = QFormLayout()
        preview.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.notional_label = QLabel(PLACEHOLDER)
        self.commission_label = QLabel(PLACEHOLDER)
        self.margin_label = QLabel(PLACEHOLDER)
        self.verdict_label = QLabel(PLACEHOLDER)
        self.verdict_label.setWordWrap(True)
        for title, w in (
            ("Notional", self.notional_label),
            ("Est. commission", self.commission_label),
            ("Margin impact", self.margin_label),
            ("Risk check", self.verdict_label),
        ):
            w.setStyleSheet(_number_style())
            preview.addRow(title, w)
        outer.addLayout(preview)

        self.send_button = QPushButton("BUY")
        self.send_button.setMinimumHeight(38)
        self.send_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.send_button.clicked.connect(self.submit)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setStyleSheet(f"color: {theme.TEXT_DIM};")
        outer.addStretch(1)
        root = QVBoxLayout(self)
        root.setContentsMargins(0, 0, 0, 0)
        root.setSpacing(0)
        self.fields_area = VerticalScrollArea(body, self)
        root.addWidget(self.fields_area, 1)
        pinned = QVBoxLayout()
        pinned.setContentsMargins(10, 4, 10, 8)
        pinned.setSpacing(6)
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

    def _price_box(self) -> PriceBox:
        box = PriceBox()
        box.setRange(0, 1e9)
        box.setDecimals(2)
        box.setSingleStep(0.01)
        box.setGroupSeparatorShown(True)
        box.setAlignment(Qt.AlignmentFlag.AlignRight)
        box.setKeyboardTracking(True)
        return box

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
        for w in (self.buy_button, self.sell_button, self.send_button, self.size_button):
            w.setEnabled(not readonly)
        self.send_button.setToolTip("read-only mode: orders are disabled" if readonly else "")
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
        if price is not None:
            self.order_type.setCurrentText("LMT")
            self.limit_price.setValue(price)
        self._resolve_symbol()

    async def resolve(self, text: str) -> InstrumentInfo | None:
        """Look the symbol up and watch its quotes; errors are shown in place."""
        if self.entry is None:
            return None
        try:
            info = await self.entry.instrument(text)
        except Exception as exc:
            self.info = None
            self._flag(self.symbol_edit, True)
            self.description.setText(str(exc))
            self.description.setStyleSheet(f"color: {theme.LOSS};")
            self._refresh()
            return None
        self._flag(self.symbol_edit, False)
        self.info = info
        self.description.setText(f"{info.description} · {info.sec_type} · {info.currency}")
        self.description.setStyleSheet(f"color: {theme.TEXT_DIM};")
        decimals = _decimals(info.min_tick)
        for box in (self.limit_price, self.stop_price):
            box.setDecimals(decimals)
            box.setSingleStep(info.min_tick)
        self.quantity.setDecimals(0 if info.size_increment >= 1 else _decimals(info.size_increment))
        self.quantity.setSingleStep(100 if info.sec_type == "STK" else max(info.size_increment, 1))
        quote = self.entry.watch(info)
        if quote is not None:
            self.on_quote(quote)
            if not self.limit_price.value():
                self._use_price(quote.ask if self._side == "BUY" else quote.bid)
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

    def _refresh(self) -> None:
        """Recompute the preview and the inline flags (cheap, synchronous)."""
        order = self.build_order()
        kind = order.orderType
        symbol = self.info.symbol if self.info else ""
        # The label states the whole order, trigger included: it is what the trader
        # reads last before sending ("BUY 100 AAPL STP 185.00 LMT 185.50").
        stop = limit = ""
        if kind in ("STP", "STP LMT") and self.stop_price.value():
            stop = self.stop_price.textFromValue(self.stop_price.value())
        if kind in ("LMT", "STP LMT") and self.limit_price.value():
            limit = self.limit_price.textFromValue(self.limit_price.value())
        if kind == "STP LMT":
            words = ("STP", stop, "LMT" if limit else "", limit)
        else:
            words = (kind, stop or limit)
        parts = (self._side, f"{self.quantity.value():,.0f}", symbol, *words)
        # Only non-empty parts: no symbol yet must not leave a double space.
        self.send_button.setText(" ".join(p for p in parts if p))
        problems: list[str] = []
        if self.info is None:
            problems.append("choose a symbol")
        # Fields are flagged only once there is an instrument to trade: an empty ticket
        # is not an error.
        chosen = self.info is not None
        self._flag(self.quantity, chosen and self.quantity.value() <= 0)
        self._flag(
            self.limit_price,
            chosen and kind in ("LMT", "STP LMT") and self.limit_price.value() <= 0,
        )
        self._flag(
            self.stop_price, chosen and kind in ("STP", "STP LMT") and self.stop_price.value() <= 0
        )
        preview: OrderPreview | None = None
        if self.entry is not None and self.info is not None:
            preview = self.entry.preview(self.info, order, self._strategy())
            problems += list(preview.problems)
            self._mark_fields(preview.problems)
        self._preview = preview
        cur = self.info.currency if self.info else "USD"
        self.notional_label.setText(_money(preview.notional if preview else None, cur))
        self.commission_label.setText(_money(preview.est_commission if preview else None, cur))
        self.problems.setText("\n".join(f"• {p}" for p in problems if p != "choose a symbol"))
        if preview is None:
            self.verdict_label.setText(PLACEHOLDER)
            self.verdict_label.setStyleSheet(_number_style(f"color: {theme.TEXT_DIM};"))
        elif preview.approved:
            self.verdict_label.setText("OK: within limits")
            self.verdict_label.setStyleSheet(
                _number_style(f"color: {theme.GAIN}; font-weight: 600;")
            )
        else:
            # the reasons are listed above the preview, by the fields
            n = len(preview.problems)
            self.verdict_label.setText(f"REFUSED ({n} reason{'s' if n > 1 else ''} above)")
            self.verdict_label.setToolTip("\n".join(preview.problems))
            self.verdict_label.setStyleSheet(
                _number_style(f"color: {theme.LOSS}; font-weight: 600;")
            )
            self.margin_label.setText(PLACEHOLDER)  # a whatIf of an order that cannot be sent
        self.send_button.setEnabled(not self.readonly and preview is not None and preview.approved)
        if preview is not None and preview.approved and not self.readonly:
            self._margin_timer.start()

    def _mark_fields(self, problems: tuple[str, ...]) -> None:
        text = " ".join(problems).lower()
        self._flag(self.quantity, "quantity" in text or self.quantity.value() <= 0)
        # A field that does not apply is never flagged.
        # Core names the field ("limit price 0.00 ...", "stop price ..."): a bare "limit"
        # is also every risk limit's reason, and "stop" a HALTED one's.
        self._flag(self.limit_price, self.limit_price.applies() and "limit price" in text)
        self._flag(self.stop_price, self.stop_price.applies() and "stop price" in text)

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
        if preview is None or not preview.approved:
            return
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

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not self.symbol_edit.hasFocus():
            self.submit()
            return
        super().keyPressEvent(event)
