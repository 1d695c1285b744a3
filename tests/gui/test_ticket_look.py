"""How the order ticket and the emergency stop read: labels, placeholders, fonts, states.

The dark style sheet is applied to a host widget (not the application) so these tests
see what the console shows without restyling every other test's widgets.
"""

from __future__ import annotations

import pytest
from eventkit import Event
from ib_async import Contract, ContractDetails
from PySide6.QtCore import QPoint
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QStyle,
    QStyleOptionSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.marketdata import Quote
from core.order_entry import InstrumentInfo, OrderPreview
from gui import theme
from gui.models.formatting import PLACEHOLDER
from gui.widgets.emergency_stop import EmergencyStopButton
from gui.widgets.order_ticket import ORDER_TYPES, OrderTicket

AAPL = InstrumentInfo(
    contract=Contract(conId=265598, symbol="AAPL", secType="STK", currency="USD"),
    details=ContractDetails(),
    symbol="AAPL",
    sec_type="STK",
    currency="USD",
    min_tick=0.01,
    multiplier=1.0,
    min_size=1.0,
    size_increment=1.0,
    description="APPLE INC",
)


class FakeEntry:
    """Just enough of OrderEntry for the ticket's synchronous preview."""

    def __init__(self, problems: tuple[str, ...] = ()) -> None:
        self.problems = problems
        self.orderUpdated = Event("orderUpdated")
        self.orderRejected = Event("orderRejected")
        self.in_base = None  # no exchange rates: amounts judged as they are

    def preview(self, info, order, strategy) -> OrderPreview:  # type: ignore[no-untyped-def]
        return OrderPreview(order.quantity * 190.0, 1.0, 190.0, self.problems)

    def watch(self, info):  # type: ignore[no-untyped-def]
        return None


def styled(qtbot, widget: QWidget) -> QWidget:
    """``widget`` inside a host carrying the console's style sheet, shown."""
    host = QWidget()
    host.setStyleSheet(theme.style_sheet())
    lay = QVBoxLayout(host)
    lay.addWidget(widget)
    qtbot.addWidget(host)
    host.resize(360, 620)
    host.show()
    qtbot.waitExposed(host)
    widget._host = host  # type: ignore[attr-defined]  # qtbot holds it only weakly
    return host


@pytest.fixture
def make_ticket(qtbot):  # type: ignore[no-untyped-def]
    """``make_ticket(entry, info=...)`` -> a styled ticket, its hosts deleted afterwards."""
    made: list[OrderTicket] = []

    def make(entry: FakeEntry | None = None, *, info: bool = False) -> OrderTicket:
        ticket = OrderTicket(entry)
        styled(qtbot, ticket)
        made.append(ticket)
        if info:
            ticket.info = AAPL
            ticket._refresh()
        return ticket

    yield make
    for ticket in made:
        # An approved preview starts the whatIf debounce; without an asyncio loop it
        # would fire into a later test.
        ticket._margin_timer.stop()
        ticket._host.deleteLater()


def pixel(widget: QWidget, x: int, y: int) -> QColor:
    image: QImage = widget.grab().toImage()
    return image.pixelColor(x, y)


# -- send button label -------------------------------------------------------------------


@pytest.mark.parametrize("with_symbol", [False, True])
@pytest.mark.parametrize("kind", ORDER_TYPES)
@pytest.mark.parametrize("side", ["BUY", "SELL"])
def test_send_label_has_single_spaces_for_every_order_type(make_ticket, kind, side, with_symbol):
    ticket = make_ticket(FakeEntry(), info=with_symbol)
    ticket.set_side(side)
    ticket.order_type.setCurrentText(kind)
    ticket.limit_price.setValue(189.5)
    ticket.stop_price.setValue(189.0)
    text = ticket.send_button.text().splitlines()[0]  # the order; a reason may follow
    assert "  " not in text
    assert text == text.strip()
    assert text.startswith(f"{side} 100 ")
    assert text.split(" ")[2] == ("AAPL" if with_symbol else kind.split(" ")[0])


@pytest.mark.parametrize(
    ("kind", "label"),
    [
        ("MKT", "SELL 100 AAPL MKT"),
        ("LMT", "SELL 100 AAPL LMT 189.50"),
        ("STP", "SELL 100 AAPL STP 189.00"),
        ("STP LMT", "SELL 100 AAPL STP 189.00 LMT 189.50"),
    ],
)
def test_send_label_states_every_price_of_the_order(make_ticket, kind, label):
    ticket = make_ticket(FakeEntry(), info=True)
    ticket.set_side("SELL")
    ticket.order_type.setCurrentText(kind)
    ticket.limit_price.setValue(189.5)
    ticket.stop_price.setValue(189.0)
    assert ticket.send_button.lines()[0] == label
    # whole on the button: on two lines (before a term) where one is too narrow
    assert ticket.send_button.text().replace("\n", " ") == label
    first_line = ticket.send_button.text().split("\n")[0]
    assert not first_line.endswith(("STP", "LMT"))  # a term stays with its price


def test_empty_ticket_send_label_reads_side_size_type(make_ticket):
    ticket = make_ticket()
    assert ticket.send_button.text() == "BUY 100 LMT\nchoose a symbol"


# -- placeholders and fonts --------------------------------------------------------------


def test_empty_ticket_shows_the_grid_placeholder_everywhere(make_ticket):
    ticket = make_ticket()
    for w in (
        ticket.bid_button,
        ticket.ask_button,
        ticket.last_label,
        ticket.notional_label,
        ticket.commission_label,
        ticket.margin_label,
        ticket.verdict_label,
    ):
        assert w.text() == PLACEHOLDER


def test_missing_quote_side_shows_placeholder(qtbot, make_ticket):
    ticket = make_ticket(FakeEntry(), info=True)
    quote = Quote(AAPL.con_id, "AAPL", None, 189.86, None, None, 200, None, None, None, 0.0)
    ticket.on_quote(quote)
    qtbot.waitUntil(lambda: ticket.ask_button.text() == "189.86", timeout=1000)
    assert ticket.bid_button.text() == PLACEHOLDER
    assert ticket.last_label.text() == PLACEHOLDER


@pytest.mark.parametrize(
    ("entry", "info", "verdict"),
    [
        (None, False, PLACEHOLDER),
        (FakeEntry(), True, "OK: within limits"),
        (FakeEntry(("quantity above the limit",)), True, "REFUSED (1 reason below)"),
    ],
)
def test_verdict_keeps_the_number_font_in_every_state(make_ticket, entry, info, verdict):
    ticket = make_ticket(entry, info=info)
    ticket.order_type.setCurrentText("MKT")  # no price to type: the verdict is risk's
    assert ticket.verdict_label.text() == verdict
    ticket.verdict_label.ensurePolished()
    ticket.notional_label.ensurePolished()
    assert ticket.verdict_label.font().family() == theme.mono_family()
    assert ticket.verdict_label.font().family() == ticket.notional_label.font().family()


def test_quote_buttons_have_no_box_behind_them(make_ticket):
    ticket = make_ticket()
    button = ticket.bid_button
    # a point inside the button, left of the centred dash, as drawn over the ticket
    at = button.mapTo(ticket, QPoint(3, button.height() // 2))
    inside = pixel(ticket, at.x(), at.y())
    assert inside != QColor(theme.RAISED)
    assert inside == QColor(theme.BG)


# -- price fields that do not apply ------------------------------------------------------


def test_price_field_that_does_not_apply_is_blank_disabled_and_keeps_its_value(make_ticket):
    ticket = make_ticket(FakeEntry(), info=True)
    ticket.order_type.setCurrentText("STP LMT")
    ticket.stop_price.setValue(188.5)
    ticket.order_type.setCurrentText("LMT")
    assert not ticket.stop_price.isEnabled()
    assert ticket.stop_price.lineEdit().text() == ""
    assert ticket.stop_price.value() == 188.5  # kept, only hidden
    assert ticket.limit_price.lineEdit().text() == ""  # no price typed: blank, not 0.00
    ticket.order_type.setCurrentText("STP LMT")
    assert ticket.stop_price.isEnabled()
    assert ticket.stop_price.lineEdit().text() == "188.50"


def test_both_prices_blank_for_a_market_order(make_ticket):
    ticket = make_ticket(FakeEntry(), info=True)
    ticket.limit_price.setValue(189.5)
    ticket.order_type.setCurrentText("MKT")
    assert ticket.limit_price.lineEdit().text() == ""
    assert ticket.stop_price.lineEdit().text() == ""
    assert ticket.send_button.text() == "BUY 100 AAPL MKT"


def test_disabled_price_field_is_not_flagged_by_a_stop_reason(make_ticket):
    ticket = make_ticket(FakeEntry(("account is HALTED (emergency stop)",)), info=True)
    ticket.order_type.setCurrentText("LMT")
    ticket.limit_price.setValue(189.5)
    assert not ticket.stop_price.property("invalid")


def test_risk_limit_refusal_flags_quantity_not_the_limit_price(make_ticket):
    reason = "max position quantity: 300 would exceed the limit of 200"
    ticket = make_ticket(FakeEntry((reason,)), info=True)
    ticket.order_type.setCurrentText("STP LMT")
    ticket.limit_price.setValue(189.5)
    ticket.stop_price.setValue(189.0)
    assert ticket.quantity.property("invalid")
    assert not ticket.limit_price.property("invalid")
    assert not ticket.stop_price.property("invalid")


def test_price_refusal_flags_that_price_field(make_ticket):
    reason = "limit price 189.503 is not a multiple of the tick 0.01"
    ticket = make_ticket(FakeEntry((reason,)), info=True)
    ticket.order_type.setCurrentText("STP LMT")
    ticket.limit_price.setValue(189.5)
    ticket.stop_price.setValue(189.0)
    assert ticket.limit_price.property("invalid")
    assert not ticket.stop_price.property("invalid")


def test_disabled_price_field_is_drawn_flat(make_ticket):
    ticket = make_ticket()  # LMT: limit applies, stop does not
    limit, stop = ticket.limit_price, ticket.stop_price
    assert pixel(stop, stop.width() // 2, stop.height() // 2) == QColor(theme.SURFACE)
    assert pixel(limit, limit.width() // 2, limit.height() // 2) == QColor(theme.RAISED)


# -- the style sheet ---------------------------------------------------------------------


@pytest.mark.parametrize("cls", [QLineEdit, QComboBox, QDoubleSpinBox, QCheckBox, QPushButton])
def test_disabled_widgets_use_the_faint_text_colour(qtbot, cls):
    widget = cls()
    styled(qtbot, widget)
    pal = widget.palette()
    role = widget.foregroundRole()
    assert pal.color(QPalette.ColorGroup.Disabled, role) == QColor(theme.TEXT_FAINT)
    assert pal.color(QPalette.ColorGroup.Active, role) == QColor(theme.TEXT)


def test_spin_box_arrows_are_visible(qtbot):
    box = QDoubleSpinBox()
    box.setRange(0, 100)
    box.setValue(50)
    styled(qtbot, box)
    opt = QStyleOptionSpinBox()
    box.initStyleOption(opt)
    image = box.grab().toImage()
    for sub in (QStyle.SubControl.SC_SpinBoxUp, QStyle.SubControl.SC_SpinBoxDown):
        rect = box.style().subControlRect(QStyle.ComplexControl.CC_SpinBox, opt, sub, box)
        assert rect.width() >= 12, rect
        brightest = max(
            image.pixelColor(x, y).lightness()
            for x in range(rect.left(), rect.right() + 1)
            for y in range(rect.top(), rect.bottom() + 1)
        )
        assert brightest > 140, f"no visible arrow in {sub}"


# -- emergency stop ----------------------------------------------------------------------


def test_hold_fill_darkens_the_button_so_white_text_stays_readable(qtbot):
    button = EmergencyStopButton(shortcut="")
    qtbot.addWidget(button)
    button.resize(360, 62)
    button.show()
    qtbot.waitExposed(button)
    # between the stop icon and the title: background only
    x, y = 60, button.height() // 2
    idle = pixel(button, x, y)
    button._progress = 0.5
    held = pixel(button, x, y)
    assert held.lightness() < idle.lightness()
    # the progress bar along the bottom edge is bright where done, absent beyond
    bottom = button.height() - 4
    assert pixel(button, 100, bottom).lightness() > 200
    assert pixel(button, 300, bottom).lightness() < 160


def test_hidden_ticket_drops_its_pending_lookups(qtbot):
    ticket = OrderTicket(None)
    qtbot.addWidget(ticket)
    ticket.show()
    ticket._margin_timer.start()
    ticket._search_timer.start()

    ticket.hide()

    assert not ticket._margin_timer.isActive()
    assert not ticket._search_timer.isActive()


def test_send_button_stays_in_view_when_the_ticket_is_short(qtbot):
    ticket = OrderTicket(None)
    qtbot.addWidget(ticket)
    ticket.resize(360, 260)  # a laptop screen, the risk panel below it
    ticket.show()
    qtbot.waitExposed(ticket)

    top = ticket.send_button.mapTo(ticket, QPoint(0, 0)).y()
    assert ticket.send_button.isVisible()
    assert top >= 0 and top + ticket.send_button.height() <= ticket.height()
    assert ticket.fields_area.verticalScrollBar().maximum() > 0  # the fields scroll instead


def test_a_price_reason_names_its_field_limit_and_stop_share_a_row(make_ticket):
    ticket = make_ticket(FakeEntry(), info=True)
    ticket.order_type.setCurrentText("STP LMT")
    ticket.limit_price.setText("230.00")
    ticket._refresh()
    assert ticket.stop_error.isVisibleTo(ticket)
    assert ticket.stop_error.text() == "Stop price: type a number"
    assert not ticket.limit_error.isVisibleTo(ticket)


def test_the_trading_state_takes_one_line_and_explains_itself_in_the_tooltip(make_ticket):
    from core.events import TradingState, TradingStateChanged

    ticket = make_ticket(FakeEntry(), info=True)
    ticket.on_trading_state_changed(
        TradingStateChanged(
            "account", TradingState.HALTED, TradingState.ACTIVE, "emergency stop", "gui"
        )
    )
    assert ticket.state_label.text() == "HALTED: emergency stop"
    assert "cancels still go through" in ticket.state_label.toolTip()


def test_a_large_order_is_confirmed_first_and_cancel_sends_nothing(make_ticket, monkeypatch):
    asked: list[str] = []

    def answer(box: QMessageBox) -> QMessageBox.StandardButton:
        asked.append(box.text())
        return QMessageBox.StandardButton.Cancel

    monkeypatch.setattr(QMessageBox, "exec", answer)
    entry = FakeEntry()
    entry.send = lambda *a: pytest.fail("sent after Cancel")  # type: ignore[attr-defined]
    ticket = make_ticket(entry, info=True)
    ticket.confirm_above_notional = 1_000.0
    ticket.order_type.setCurrentText("MKT")
    ticket._refresh()

    ticket.submit()

    assert asked == ["BUY 100 AAPL MKT\n\nNotional 19,000.00 USD is above 1,000.00 USD."]
    assert ticket.status.text() == "not sent: cancelled at confirmation"
