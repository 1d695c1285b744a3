"""The order ticket's layout: its fields, quotes, verdict and send button, and how each
state of them is drawn. No decisions here: on this form
:class:`gui.widgets.ticket_instrument.InstrumentForm` looks the symbol up and shows its
quotes, and :class:`gui.widgets.order_ticket.OrderTicket` on that judges the order
through core and tells the form what to show (the send button's words come from
:mod:`gui.widgets.ticket_verdict`).

Layout, top to bottom: the symbol and what it resolved to; bid, last and ask (click a
price to use it as the limit); BUY / SELL; the fields in a grid two pairs wide where
they are short (Type and TIF, Limit and Stop), so the whole form fits the ticket's
height on a 1366x768 screen; the commission estimate and margin impact. Pinned under
the fields, always in view: the trading state when not ACTIVE, the notional and the
risk verdict, the reasons the order cannot go, the send button and the last order's
status.

Tab runs symbol -> quantity -> type -> prices -> TIF -> strategy -> send; the quote and
side buttons are clicked, not tabbed through.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from PySide6.QtCore import QEvent, QRect, QStringListModel, Qt
from PySide6.QtGui import QFontMetrics, QResizeEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QCompleter,
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

from core.events import MANUAL, TradingState
from core.order_entry import OrderPreview
from gui import theme
from gui.models.formatting import PLACEHOLDER, money
from gui.widgets.form_scroll import VerticalScrollArea
from gui.widgets.number_field import NumberField
from gui.widgets.ticket_verdict import SendVerdict

__all__ = [
    "FIELD_TITLES",
    "LIMIT_TYPES",
    "MAX_PRICE",
    "MAX_QUANTITY",
    "ORDER_TYPES",
    "STOP_TYPES",
    "TIFS",
    "LinesLabel",
    "PriceBox",
    "QuoteButton",
    "SendButton",
    "TicketForm",
    "confirm_large_order",
    "decimals_of",
    "money",
    "number_style",
    "price_field",
    "quantity_field",
]

ORDER_TYPES = ("LMT", "MKT", "STP", "STP LMT")
#: The order types that carry a limit price, and those that carry a stop price.
LIMIT_TYPES = ("LMT", "STP LMT")
STOP_TYPES = ("STP", "STP LMT")
TIFS = ("DAY", "GTC", "IOC")
#: The largest quantity the ticket will send (above it the entry is flagged).
MAX_QUANTITY = 1e9
#: The largest price a field takes (above it the entry is flagged).
MAX_PRICE = 1e9
#: What a negative entry is told (a quantity has no sign; a price is positive).
QUANTITY_HINT = "the side (BUY / SELL) gives the direction"
PRICE_HINT = "a price is above 0"
#: The name of each order field in a reason ("Limit price: '-5' is negative: ...").
FIELD_TITLES = {"quantity": "Quantity", "limit_price": "Limit price", "stop_price": "Stop price"}


def quantity_field(
    decimals: int = 0, *, step: float = 100, parent: QWidget | None = None
) -> NumberField:
    """A quantity entry under the ticket's rules (the ticket's field, the orders
    grid's editor): a plain positive number of at most ``decimals`` decimals, up to
    :data:`MAX_QUANTITY`, anything else flagged with the reason, never rewritten."""
    return NumberField(
        parent, decimals=decimals, maximum=MAX_QUANTITY, step=step, negative_hint=QUANTITY_HINT
    )


def price_field(decimals: int = 2, parent: QWidget | None = None) -> NumberField:
    """A price entry under the ticket's rules (the orders grid's editor; the ticket's
    :class:`PriceBox`): at most ``decimals`` decimals (the tick's), Up/Down step one
    tick of that size."""
    return NumberField(
        parent,
        decimals=decimals,
        maximum=MAX_PRICE,
        step=10.0**-decimals,
        negative_hint=PRICE_HINT,
    )


def decimals_of(min_tick: float) -> int:
    """How many decimals a price on ``min_tick``'s grid shows."""
    text = f"{min_tick:.10f}".rstrip("0")
    return max(0, len(text.split(".")[1])) if "." in text else 0


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
        super().__init__(decimals=2, maximum=MAX_PRICE, step=0.01, negative_hint=PRICE_HINT)
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


class LinesLabel(QLabel):
    """A wrapped label of at most ``lines`` lines, always that tall: a longer text is
    cut at a word with "…", whole in the tooltip. The ticket's rows under it keep their
    place whatever it says (a three-line "unknown contract" message pushed the
    commission row out of view at 1366x768). :meth:`text` is the whole text."""

    def __init__(self, lines: int = 2, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._lines = lines
        self._full = ""
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        # Its width follows the ticket's, never the text's.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self._fit_height()

    def text(self) -> str:  # type: ignore[override]
        """The whole text (what is shown may be cut short)."""
        return self._full

    def setText(self, text: str) -> None:  # type: ignore[override]
        """Show ``text``, cut to the label's lines when longer."""
        self._full = text
        self._apply()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._fit_height()
            self._apply()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._apply()

    def _fit_height(self) -> None:
        metrics = QFontMetrics(self.font())
        self.setFixedHeight(metrics.lineSpacing() * (self._lines - 1) + metrics.height() + 2)

    def _fits(self, text: str, metrics: QFontMetrics) -> bool:
        flags = int(Qt.TextFlag.TextWordWrap)
        box = metrics.boundingRect(QRect(0, 0, max(1, self.width()), 10_000), flags, text)
        # Half a line of slack: a font's line spacing may be less than its height.
        return box.height() < (self._lines + 0.5) * metrics.lineSpacing()

    def _apply(self) -> None:
        full = self._full
        metrics = QFontMetrics(self.font())
        shown = full
        if full and not self._fits(full, metrics):
            words = full.split(" ")
            while len(words) > 1 and not self._fits(" ".join(words) + "…", metrics):
                words.pop()
            shown = " ".join(words) + "…"
        super().setText(shown)
        self.setToolTip(full if shown != full else "")


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
        room = max(60, self.width() - 20)
        metrics = QFontMetrics(self.font())
        if not reason:
            # The order whole, on two lines when one is too narrow (a long STP LMT with
            # its TIF and "outside RTH"): a button that can send never hides a term.
            # Its width means something only once shown (resizeEvent applies it again).
            self.setText(_wrapped(order, metrics, room) if self.isVisible() else order)
            return
        elided = metrics.elidedText(reason, Qt.TextElideMode.ElideRight, room)
        self.setText(f"{metrics.elidedText(order, Qt.TextElideMode.ElideRight, room)}\n{elided}")

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._apply()


def _wrapped(text: str, metrics: QFontMetrics, room: int) -> str:
    """``text`` on one line when it fits ``room`` pixels, else broken once at the last
    space (a " · " first) that lets the first line fit."""
    if metrics.horizontalAdvance(text) <= room:
        return text
    if " · " in text:
        head, tail = text.split(" · ", 1)
        if metrics.horizontalAdvance(f"{head} ·") <= room:
            return f"{head} ·\n{tail}"
    words = text.split(" ")
    fitting = [
        cut
        for cut in range(len(words) - 1, 0, -1)
        if metrics.horizontalAdvance(" ".join(words[:cut])) <= room
    ]
    # Before a term ("LMT 189.50", "GTC") rather than between a term and its price.
    cut = next((c for c in fitting if words[c][:1].isalpha()), fitting[0] if fitting else 0)
    if not cut:
        return text
    return f"{' '.join(words[:cut])}\n{' '.join(words[cut:])}"


def number_style(extra: str = "") -> str:
    """A label style sheet in the number font; a later setStyleSheet replaces the whole
    sheet, so every style of a number label goes through here to keep the font."""
    return f"font-family: '{theme.mono_family()}'; {extra}".strip()


class TicketForm(QFrame):
    """The ticket's widgets, laid out and named; presentation helpers only."""

    def __init__(self, strategies: list[str] | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("orderTicket")
        self.setAccessibleName("Order ticket")
        self._build(strategies or [MANUAL])
        self._name_controls()

    # -- construction -------------------------------------------------------------------

    def _build(self, strategies: list[str]) -> None:
        # The fields scroll on a very short screen; the verdict, the reasons, the send
        # button and the last order's status stay pinned below them, always in view.
        body = QWidget(self)
        outer = QVBoxLayout(body)
        outer.setContentsMargins(10, 6, 10, 2)
        outer.setSpacing(6)

        # symbol + description
        self.symbol_edit = QLineEdit()
        self.symbol_edit.setPlaceholderText("Symbol (AAPL, ES, EUR.USD)")
        self.symbol_edit.setClearButtonEnabled(True)
        f = self.symbol_edit.font()
        f.setPointSize(f.pointSize() + 3)
        f.setBold(True)
        self.symbol_edit.setFont(f)
        self.completions = QStringListModel(self)
        completer = QCompleter(self.completions, self)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.symbol_edit.setCompleter(completer)
        outer.addWidget(self.symbol_edit)
        # One line, always: a long error ("unknown contract 'ZZZZ' (any type, ...") is
        # cut with "…" (whole in its tooltip). Wrapped to three lines it pushed the
        # commission and margin rows out of view at 1366x768; it never widens the dock.
        self.description = LinesLabel(1)
        self.description.setStyleSheet(f"color: {theme.TEXT_DIM};")
        outer.addWidget(self.description)

        # quotes
        quotes = QGridLayout()
        quotes.setHorizontalSpacing(4)
        quotes.setVerticalSpacing(0)
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
        outer.addLayout(quotes)

        # side
        sides = QHBoxLayout()
        self.buy_button = QPushButton("BUY")
        self.sell_button = QPushButton("SELL")
        self.side_group = QButtonGroup(self)
        for b in (self.buy_button, self.sell_button):
            b.setCheckable(True)
            b.setMinimumHeight(30)
            self.side_group.addButton(b)
            sides.addWidget(b)
        outer.addLayout(sides)

        # The fields: a grid, two pairs a row where the fields are short (a type, a TIF,
        # a price), each entry's reason on the row under it, shown only while the entry
        # cannot be used. Six rows of one field each left the Strategy row half under
        # the pinned verdict at 1366x768.
        grid = QGridLayout()
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(5)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        self.quantity = quantity_field()
        self.quantity.setValue(100)
        self.size_button = QPushButton("Size by risk")
        self.size_button.setToolTip("Quantity from the contract's volatility and the risk budget")
        self.order_type = QComboBox()
        self.order_type.addItems(ORDER_TYPES)
        self.tif = QComboBox()
        self.tif.addItems(TIFS)
        self.limit_price = PriceBox()
        self.stop_price = PriceBox()
        self.strategy = QComboBox()
        self.strategy.setEditable(True)
        self.strategy.addItems(strategies)
        self.strategy.setCurrentText(MANUAL)
        self.outside_rth = QCheckBox("Outside RTH")
        self.quantity_error = _error_label()
        self.limit_error = _error_label()
        self.stop_error = _error_label()
        row = 0
        grid.addWidget(_caption("Quantity"), row, 0)
        grid.addWidget(self.quantity, row, 1, 1, 2)
        grid.addWidget(self.size_button, row, 3)
        grid.addWidget(self.quantity_error, row + 1, 1, 1, 3)
        row += 2
        grid.addWidget(_caption("Type"), row, 0)
        grid.addWidget(self.order_type, row, 1)
        grid.addWidget(_caption("TIF"), row, 2)
        grid.addWidget(self.tif, row, 3)
        row += 1
        grid.addWidget(_caption("Limit"), row, 0)
        grid.addWidget(self.limit_price, row, 1)
        grid.addWidget(_caption("Stop"), row, 2)
        grid.addWidget(self.stop_price, row, 3)
        grid.addWidget(self.limit_error, row + 1, 0, 1, 4)
        grid.addWidget(self.stop_error, row + 2, 0, 1, 4)
        row += 3
        grid.addWidget(_caption("Strategy"), row, 0)
        grid.addWidget(self.strategy, row, 1)
        grid.addWidget(self.outside_rth, row, 2, 1, 2)
        outer.addLayout(grid)

        preview = QGridLayout()
        preview.setHorizontalSpacing(8)
        preview.setVerticalSpacing(2)
        self.notional_label = QLabel(PLACEHOLDER)
        self.commission_label = QLabel(PLACEHOLDER)
        self.margin_label = QLabel(PLACEHOLDER)
        self.notional_label.setStyleSheet(number_style())
        for r, (title, w) in enumerate(
            (("Est. commission", self.commission_label), ("Margin impact", self.margin_label))
        ):
            w.setStyleSheet(number_style())
            preview.addWidget(_caption(title), r, 0)
            preview.addWidget(w, r, 1)
        preview.setColumnStretch(1, 1)
        outer.addLayout(preview)
        outer.addStretch(1)

        # pinned: trading state, verdict and reasons, send button, last order's status
        self.state_label = QLabel("")
        self.state_label.setWordWrap(True)
        self.state_label.hide()
        self.verdict_label = QLabel(PLACEHOLDER)
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setStyleSheet(number_style())
        self.problems = QLabel("")
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet(f"color: {theme.LOSS};")
        self.problems.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.send_button = SendButton()
        # Two lines: the order, and under it why it cannot go (when it cannot). Its
        # width follows the ticket's, never the text's: a long reason must not widen it.
        self.send_button.setMinimumHeight(46)
        self.send_button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
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
        pinned.setContentsMargins(10, 4, 10, 6)
        pinned.setSpacing(4)
        # The notional is pinned with the verdict: an order far over a limit is read by
        # its size first, and a long list of reasons must not scroll it away.
        figures = QGridLayout()
        figures.setHorizontalSpacing(8)
        figures.setVerticalSpacing(2)
        for r, (title, w) in enumerate(
            (("Notional", self.notional_label), ("Risk check", self.verdict_label))
        ):
            caption = QLabel(title)
            caption.setStyleSheet(f"color: {theme.TEXT_DIM};")
            figures.addWidget(caption, r, 0)
            figures.addWidget(w, r, 1)
        figures.setColumnStretch(1, 1)
        pinned.addWidget(self.state_label)
        pinned.addLayout(figures)
        pinned.addWidget(self.problems)
        pinned.addWidget(self.send_button)
        pinned.addWidget(self.status)
        root.addLayout(pinned)

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
            (self.state_label, "ticketTradingState", "Trading state"),
            (self.verdict_label, "ticketVerdict", "Risk check"),
            (self.problems, "ticketProblems", "Why the order cannot be sent"),
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

    # -- what the fields say ------------------------------------------------------------

    @staticmethod
    def entry_problem(field: NumberField, title: str, applies: bool, chosen: bool) -> str | None:
        """Why a field's entry cannot be sent, in place; None when it can.

        A bad entry (letters, "-5", "1e12") is flagged at once; an empty or zero field
        only once an instrument is ``chosen`` (an empty ticket is not an error).
        """
        if not applies:
            return None
        error = field.error()
        if error == "empty":
            return f"{title}: type a number" if chosen else None
        if error is not None:
            return f"{title}: {error}"
        if field.value() <= 0:
            return f"{title}: must be above 0" if chosen else None
        return None

    def order_words(self, side: str, kind: str, symbol: str) -> str:
        """The order in words, as it would be sent ("BUY 100 AAPL STP 185.00 LMT 185.50");
        "?" stands for a field whose entry is not a number."""

        def shown(field: NumberField) -> str:
            if field.error() == "empty":
                return ""
            return "?" if field.error() else field.textFromValue(field.value())

        stop = shown(self.stop_price) if kind in STOP_TYPES else ""
        limit = shown(self.limit_price) if kind in LIMIT_TYPES else ""
        if kind == "STP LMT":
            words: tuple[str, ...] = ("STP", stop, "LMT" if limit else "", limit)
        else:
            words = (kind, stop or limit)
        qty = shown(self.quantity) or "?"
        # Only non-empty parts: no symbol yet must not leave a double space.
        return " ".join(p for p in (side, qty, symbol, *words) if p)

    def show_entry_problems(self, problems: Mapping[NumberField, str | None]) -> None:
        """Each number field's problem (:meth:`entry_problem`) on the line under it,
        shown only while it has one."""
        for field, label in (
            (self.quantity, self.quantity_error),
            (self.limit_price, self.limit_error),
            (self.stop_price, self.stop_error),
        ):
            problem = problems.get(field)
            # Limit and Stop share a row: their reasons name the field; the quantity's
            # sits under it alone.
            shown = problem.split(": ", 1)[1] if problem and field is self.quantity else problem
            label.setText(shown or "")
            label.setVisible(problem is not None)

    def mark_fields(
        self,
        problems: tuple[str, ...],
        entry_problems: Mapping[NumberField, str | None] | None = None,
    ) -> None:
        """Outline the fields a refusal (``problems``) or a bad entry is about."""
        entry_problems = entry_problems or {}
        text = " ".join(problems).lower()
        self.flag(self.quantity, bool(entry_problems.get(self.quantity)) or "quantity" in text)
        # A field that does not apply is never flagged.
        # Core names the field ("limit price 0.00 ...", "stop price ..."): a bare "limit"
        # is also every risk limit's reason, and "stop" a HALTED one's.
        self.flag(
            self.limit_price,
            self.limit_price.applies()
            and (bool(entry_problems.get(self.limit_price)) or "limit price" in text),
        )
        self.flag(
            self.stop_price,
            self.stop_price.applies()
            and (bool(entry_problems.get(self.stop_price)) or "stop price" in text),
        )

    def confirm_large(self, why: str) -> bool:
        """Ask before sending the order the send button reads; ``why`` says what is
        large about it (:func:`confirm_large_order`)."""
        return confirm_large_order(self, self.send_button.lines()[0], why)

    # -- how states are drawn -----------------------------------------------------------

    def show_side(self, side: str) -> None:
        """Draw ``side`` (BUY / SELL) chosen, and the send button in its colour."""
        (self.sell_button if side == "SELL" else self.buy_button).setChecked(True)
        colour = theme.SELL if side == "SELL" else theme.BUY
        for b, c, on in (
            (self.buy_button, theme.BUY, side == "BUY"),
            (self.sell_button, theme.SELL, side == "SELL"),
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

    def show_quotes(
        self, bid: float | None, ask: float | None, last: float | None, decimals: int
    ) -> None:
        """The instrument's bid, ask and last (None: the placeholder)."""
        self.bid_button.set_price(bid, decimals)
        self.ask_button.set_price(ask, decimals)
        self.last_label.setText(PLACEHOLDER if last is None else f"{last:,.{decimals}f}")

    def show_verdict(self, preview: OrderPreview | None, field_problems: list[str]) -> None:
        """Risk's verdict on the order, or why it was not judged (``field_problems``:
        the entries that are not usable)."""
        if field_problems:
            self.verdict_label.setText("not checked: fix the fields")
            self.verdict_label.setToolTip("\n".join(field_problems))
            self.verdict_label.setStyleSheet(number_style(f"color: {theme.LOSS};"))
            self.margin_label.setText(PLACEHOLDER)
        elif preview is None:
            self.verdict_label.setText(PLACEHOLDER)
            self.verdict_label.setToolTip("")
            self.verdict_label.setStyleSheet(number_style(f"color: {theme.TEXT_DIM};"))
        elif preview.approved:
            self.verdict_label.setText("OK: within limits")
            self.verdict_label.setToolTip("")
            self.verdict_label.setStyleSheet(
                number_style(f"color: {theme.GAIN}; font-weight: 600;")
            )
        else:
            n = len(preview.problems)
            self.verdict_label.setText(f"REFUSED ({n} reason{'s' if n > 1 else ''} below)")
            self.verdict_label.setToolTip("\n".join(preview.problems))
            self.verdict_label.setStyleSheet(
                number_style(f"color: {theme.LOSS}; font-weight: 600;")
            )
            self.margin_label.setText(PLACEHOLDER)  # a whatIf of an order that cannot be sent

    def show_send(self, verdict: SendVerdict) -> None:
        """The reasons under the risk verdict, and the send button: the order it would
        send, or under it the first reason it cannot (every reason in its tooltip)."""
        self.problems.setText("\n".join(f"• {p}" for p in verdict.listed))
        self.send_button.set_lines(verdict.order, verdict.reason)
        self.send_button.setToolTip(verdict.tooltip)
        self.send_button.setAccessibleDescription(verdict.tooltip)
        self.send_button.setEnabled(verdict.sendable)

    def show_state(self, state: TradingState | None, reason: str) -> None:
        """The account's trading state, shown only when it is not ACTIVE."""
        if state is None or state is TradingState.ACTIVE:
            self.state_label.hide()
            return
        colour = theme.LOSS if state is TradingState.HALTED else theme.AMBER
        what = (
            "no new orders; cancels still go through"
            if state is TradingState.HALTED
            else "only orders that reduce a position pass"
        )
        # One line (the pinned area's height is taken from the fields above it); what
        # the state means is in the tooltip, and the reasons list says what it refuses.
        self.state_label.setText(f"{state.value}: {reason}" if reason else state.value)
        self.state_label.setToolTip(f"{state.value}: {what}.")
        self.state_label.setAccessibleDescription(f"{state.value}: {what}.")
        self.state_label.setStyleSheet(
            f"color: {colour}; font-weight: 700; border: 1px solid {colour};"
            " border-radius: 4px; padding: 2px 6px;"
        )
        self.state_label.show()

    def show_status(self, text: str, *, error: bool = False) -> None:
        """The last order's status line (red for a refusal or an IB error)."""
        self.status.setText(text)
        self.status.setStyleSheet(f"color: {theme.LOSS if error else theme.TEXT_DIM};")

    @staticmethod
    def flag(widget: QWidget, invalid: bool) -> None:
        """Outline a field in red while its entry cannot be used."""
        if widget.property("invalid") == invalid:
            return
        widget.setProperty("invalid", invalid)
        widget.setStyleSheet(f"border: 1px solid {theme.LOSS};" if invalid else "")


def confirm_large_order(parent: QWidget, order: str, why: str) -> bool:
    """Ask before ``order`` (in words, as it goes out) is sent: the ticket's new order
    and the orders grid's modification ask the same. ``why`` says what is large about
    it (:func:`gui.widgets.ticket_verdict.confirmation_reason`). Cancel is the default."""
    box = QMessageBox(parent)
    box.setObjectName("confirmLargeOrder")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Confirm large order")
    box.setText(f"{order}\n\n{why}")
    box.setStandardButtons(QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    return box.exec() == QMessageBox.StandardButton.Ok


def _caption(text: str) -> QLabel:
    label = QLabel(text)
    label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return label


def _error_label() -> QLabel:
    """A red line under a field, shown only while its entry cannot be used."""
    label = QLabel("")
    label.setWordWrap(True)
    label.setStyleSheet(f"color: {theme.LOSS}; font-size: 9pt;")
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    label.hide()
    return label
