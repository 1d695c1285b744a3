"""Safe at the desk (issue 11): defaults, honest numbers, the ticket following the state.

Each test runs the whole window on a started session against the embedded simulated
gateway (real ib_async client), with the settings a fresh install loads (the shipped
defaults), and drives it the way a trader would: typing into the fields.
"""

from __future__ import annotations

from typing import Any

import pytest
import qasync
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QWidget

from core.events import TradingState
from core.orders import create_limit_order
from core.session import ConsoleSession
from gui.mainwindow import MainWindow
from gui.widgets.order_ticket import OrderTicket
from helpers import act, run_until, settle, tradable


def rest_an_order(
    session: ConsoleSession, window: MainWindow, qloop: qasync.QEventLoop
) -> tuple[Any, float]:
    """A BUY 10 AAPL limit 3 % under the bid (inside the 5 % band, far enough not to
    fill), working at the gateway and shown in the orders grid; (gateway, limit)."""
    gw = session.gateway
    assert gw is not None  # the embedded simulated gateway
    bid = gw.market.quote(gw.universe.find(symbol="AAPL")[0].con_id).bid
    price = round(bid * 0.97, 2)
    session.trades.place_order(
        qloop.run_until_complete(tradable(session, "AAPL")),
        create_limit_order("BUY", 10, price),
        "manual",
        actor="gui",
    )
    run_until(
        qloop, lambda: len(window.orders_model.working_order_ids()) == 1, what="a working order"
    )
    return gw, price


def choose(qloop: qasync.QEventLoop, qtbot: Any, ticket: OrderTicket, symbol: str) -> None:
    """Type a symbol and Enter; wait until it is resolved and quoted."""
    act(qloop, lambda: ticket.symbol_edit.setFocus())
    act(qloop, lambda: ticket.symbol_edit.clear())
    act(qloop, lambda: qtbot.keyClicks(ticket.symbol_edit, symbol))
    act(qloop, lambda: qtbot.keyClick(ticket.symbol_edit, Qt.Key.Key_Return))
    run_until(
        qloop,
        lambda: (
            ticket.info is not None
            and symbol.replace(".", "") in ticket.info.symbol.replace(".", "")
        ),
        what=f"{symbol} resolved",
    )
    run_until(qloop, lambda: ticket.ask_button.price is not None, what=f"a {symbol} quote")


def type_into(qloop: qasync.QEventLoop, qtbot: Any, field: Any, text: str) -> None:
    """Select what a field holds and type ``text`` over it, key by key."""
    act(qloop, lambda: field.setFocus())
    act(qloop, lambda: field.selectAll())
    act(qloop, lambda: qtbot.keyClicks(field, text))


# -- 1. safe out of the box -----------------------------------------------------------------


def test_huge_market_order_with_shipped_config_is_refused_with_the_precaution(desk, qloop, qtbot):
    _session, window = desk
    ticket = window.ticket
    choose(qloop, qtbot, ticket, "AAPL")
    act(qloop, lambda: ticket.order_type.setCurrentText("MKT"))
    type_into(qloop, qtbot, ticket.quantity, "999999999")

    assert not ticket.send_button.isEnabled()
    assert ticket.verdict_label.text().startswith("REFUSED")
    assert "precautionary size 2,000 shares for STK" in ticket.problems.text()
    first, reason = ticket.send_button.lines()
    assert first == "BUY 999,999,999 AAPL MKT"
    assert reason.startswith("precautionary")


def test_risk_panel_shows_the_shipped_precautions(desk):
    _session, window = desk
    panel = window.risk_panel
    assert panel.precaution_text("STK", "max_order_quantity") == "2,000"
    assert panel.precaution_text("FUT", "max_order_value") == "1,500,000"
    assert panel.precaution_text("CASH", "max_price_pct") == "2%"


def test_gui_confirmation_threshold_from_the_config_reaches_the_ticket(desk):
    _session, window = desk
    assert window.ticket.confirm_above_notional == 25_000.0


def test_size_resets_to_the_instruments_default_when_the_instrument_changes(desk, qloop, qtbot):
    _session, window = desk
    ticket = window.ticket
    choose(qloop, qtbot, ticket, "AAPL")
    assert ticket.quantity.value() == 100
    type_into(qloop, qtbot, ticket.quantity, "300")
    choose(qloop, qtbot, ticket, "ES")

    assert ticket.quantity.value() == 1  # never 300 ES (about 88 million)
    assert ticket.send_button.text().startswith("BUY 1 ES")
    choose(qloop, qtbot, ticket, "EUR.USD")
    assert ticket.quantity.value() == 20_000


# -- 2. numbers are what they look like --------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("1e12", "scientific notation"),
        ("abc", "'abc' is not a number"),
        ("-5", "negative"),
        ("12x", "'12x' is not a number"),
        ("1,5", "use '.' for decimals"),
        ("99999999999", "above the most the ticket sends"),
    ],
)
def test_quantity_entry_that_is_not_a_plain_number_is_flagged_in_place(
    desk, qloop, qtbot, typed, why
):
    _session, window = desk
    ticket = window.ticket
    choose(qloop, qtbot, ticket, "AAPL")
    act(qloop, lambda: ticket.order_type.setCurrentText("MKT"))
    type_into(qloop, qtbot, ticket.quantity, typed)

    assert ticket.quantity.text() == typed  # nothing dropped, nothing clamped
    assert ticket.quantity.property("invalid") is True
    assert ticket.quantity_error.isVisible()
    assert why in ticket.quantity_error.text()
    assert not ticket.send_button.isEnabled()
    first, reason = ticket.send_button.lines()
    assert first == "BUY ? AAPL MKT"
    assert reason.startswith("Quantity:")


def test_limit_price_in_scientific_notation_is_flagged_not_read_as_digits(desk, qloop, qtbot):
    _session, window = desk
    ticket = window.ticket
    choose(qloop, qtbot, ticket, "AAPL")
    act(qloop, lambda: ticket.order_type.setCurrentText("LMT"))
    type_into(qloop, qtbot, ticket.limit_price, "1e12")

    assert ticket.limit_price.text() == "1e12"
    assert "scientific notation" in ticket.limit_error.text()
    assert ticket.send_button.lines()[0] == "BUY 100 AAPL LMT ?"
    assert not ticket.send_button.isEnabled()


def test_grouped_quantity_is_sent_exactly_as_shown(desk, qloop, qtbot):
    _session, window = desk
    ticket = window.ticket
    choose(qloop, qtbot, ticket, "EUR.USD")
    act(qloop, lambda: ticket.order_type.setCurrentText("MKT"))
    type_into(qloop, qtbot, ticket.quantity, "125,000")

    assert ticket.quantity.value() == 125_000
    assert ticket.order_spec().quantity == 125_000
    assert ticket.send_button.text() == "BUY 125,000 EUR.USD MKT"
    assert ticket.send_button.isEnabled(), ticket.problems.text()


# -- 3. the ticket follows the trading state ------------------------------------------------


def test_halt_and_reducing_are_shown_in_the_ticket_at_once(desk, qloop, qtbot):
    session, window = desk
    ticket = window.ticket
    choose(qloop, qtbot, ticket, "AAPL")
    act(qloop, lambda: ticket.order_type.setCurrentText("MKT"))
    assert ticket.send_button.isEnabled(), ticket.problems.text()

    act(
        qloop,
        lambda: session.risk.set_trading_state(
            "account", TradingState.REDUCING, reason="test", by="gui"
        ),
    )
    # no other input: the state change alone re-judged the order
    assert ticket.state_label.isVisible()
    assert ticket.state_label.text().startswith("REDUCING")
    assert not ticket.send_button.isEnabled()
    assert "REDUCING" in ticket.send_button.lines()[1]

    act(
        qloop,
        lambda: session.risk.set_trading_state(
            "account", TradingState.HALTED, reason="emergency stop", by="gui"
        ),
    )
    assert ticket.state_label.text().startswith("HALTED")
    assert ticket.send_button.lines()[1].startswith("HALTED")
    assert not ticket.send_button.isEnabled()
    assert ticket.verdict_label.text().startswith("REFUSED")


# -- 5. read-only means read-only -----------------------------------------------------------


def test_readonly_window_changes_no_order_and_says_why(desk, qloop, qtbot):
    session, window = desk
    gw, _price = rest_an_order(session, window, qloop)

    act(qloop, lambda: window.set_readonly(True))
    view = window.orders_view
    act(qloop, lambda: view.view.selectRow(0))
    act(qloop, lambda: view.view.setFocus())
    act(qloop, lambda: qtbot.keyClick(view.view, Qt.Key.Key_Delete))
    act(qloop, lambda: view.cancel_all_button.click())
    act(qloop, window.cancel_all_action.trigger)
    controller = window.controller
    assert controller is not None
    act(
        qloop,
        lambda: controller.modify_order(window.orders_model.working_order_ids()[0], "quantity", 5),
    )
    qloop.run_until_complete(settle(session.connection.ib))  # any cancel or modify is in

    assert len(gw.engine.open_orders()) == 1
    assert gw.engine.open_orders()[0].request.total_quantity == 10  # not modified
    for control in (view.cancel_all_button, window.stop_button):
        assert not control.isEnabled()
        assert "read-only" in control.toolTip()
    for action in (window.cancel_all_action, window.stop_action, window.buy_action):
        assert not action.isEnabled()
        assert "read-only" in action.toolTip()
    assert view.view.editTriggers() == view.view.EditTrigger.NoEditTriggers
    assert window.readonly_badge.isVisible()
    menu = view.context_actions(0)
    assert all(not a.isEnabled() for a in menu if a is not None and "ancel" in a.text())
    assert "read-only" in " ".join(window.ticket.send_button.lines())


# -- 6. keyboard and ticket layout ------------------------------------------------------------


def test_tab_from_symbol_reaches_quantity_and_the_size_typed_is_kept(desk, qloop, qtbot):
    _session, window = desk
    ticket = window.ticket
    choose(qloop, qtbot, ticket, "EUR.USD")
    act(qloop, lambda: ticket.symbol_edit.setFocus())
    act(qloop, lambda: qtbot.keyClick(ticket.symbol_edit, Qt.Key.Key_Tab))
    focused = QApplication.focusWidget()
    assert focused is ticket.quantity, focused.objectName() if focused else None
    act(qloop, lambda: ticket.quantity.selectAll())
    act(qloop, lambda: qtbot.keyClicks(ticket.quantity, "20000"))
    assert ticket.quantity.value() == 20_000
    chain = []
    widget = ticket.quantity
    for _ in range(6):
        widget = widget.nextInFocusChain()
        while not widget.focusPolicy() & Qt.FocusPolicy.TabFocus or not widget.isEnabled():
            widget = widget.nextInFocusChain()
        chain.append(widget.objectName())
    assert chain[:2] == ["ticketOrderType", "ticketLimitPrice"]
    assert "ticketBid" not in chain and "ticketBuy" not in chain


def test_unknown_symbol_clears_the_quotes_and_keeps_the_width(desk, qloop, qtbot, ib_log_guard):
    ib_log_guard.expect(r"Error 200, reqId \d+: No security definition")
    _session, window = desk
    ticket = window.ticket
    choose(qloop, qtbot, ticket, "EUR.USD")
    width = window.docks["Order ticket"].width()
    act(qloop, lambda: ticket.symbol_edit.setFocus())
    act(qloop, lambda: ticket.symbol_edit.clear())
    act(qloop, lambda: qtbot.keyClicks(ticket.symbol_edit, "ZZZZ"))
    act(qloop, lambda: qtbot.keyClick(ticket.symbol_edit, Qt.Key.Key_Return))
    run_until(qloop, lambda: ticket.info is None, what="ZZZZ refused")
    run_until(qloop, lambda: "ZZZZ" in ticket.description.text(), what="the reason by the field")

    assert ticket.bid_button.text() == ticket.ask_button.text() == "\N{EN DASH}" or (
        ticket.bid_button.price is None and ticket.ask_button.price is None
    )
    assert ticket.bid_button.price is None and ticket.ask_button.price is None
    assert window.docks["Order ticket"].width() == width


def test_first_symbol_prefills_the_limit_from_its_first_quote(desk, qloop, qtbot):
    _session, window = desk
    ticket = window.ticket
    choose(qloop, qtbot, ticket, "AAPL")
    run_until(qloop, lambda: ticket.limit_price.value() > 0, what="the limit prefilled")
    assert ticket.limit_price.value() == ticket.ask_button.price
    assert not ticket.limit_price.property("invalid")


# -- 7 / 9. a window that fits; small things ---------------------------------------------------


def test_window_opens_within_the_available_screen(desk):
    _session, window = desk
    # offscreen's screen is 800x800: the window is as small as its contents allow,
    # and those fit a 1366x768 laptop
    available = window.screen().availableGeometry().size()
    bound = available.expandedTo(window.minimumSizeHint())
    assert window.width() <= bound.width()
    assert window.height() <= bound.height()
    assert window.minimumSizeHint().width() <= 1366
    assert window.minimumSizeHint().height() <= 768


def test_positions_columns_put_pnl_before_the_book_keeping(desk):
    _session, window = desk
    model = window.positions_model
    order = [model.column_of(k) for k in ("symbol", "quantity", "last", "daily_pnl")]
    assert order == sorted(order)
    assert model.column_of("unrealized_pnl") < model.column_of("market_value")
    assert model.column_of("daily_pnl") < model.column_of("avg_cost")


def test_floated_dock_title_has_one_ampersand(desk):
    _session, window = desk
    dock = window.docks["P&L"]
    assert dock.windowTitle() == "P&&L"  # docked: the title bar's mnemonic escape
    dock.setFloating(True)
    assert dock.windowTitle() == "P&L"  # floated: a window title, plain text
    dock.setFloating(False)
    assert dock.windowTitle() == "P&&L"


def test_every_trader_control_has_an_object_and_an_accessible_name(desk):
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractItemView,
        QComboBox,
        QLineEdit,
    )

    _session, window = desk
    kinds = (QAbstractButton, QLineEdit, QComboBox, QAbstractItemView)
    missing = []
    areas = (
        window.ticket,
        window.risk_panel,
        window.orders_view,
        window.positions_view,
        window.fills_view,
        window.log_view,
        window.audit_view,
    )
    for area in areas:
        for w in area.findChildren(QWidget):
            if not isinstance(w, kinds) or isinstance(w.parent(), QComboBox | QLineEdit):
                continue  # a combo's own line edit and list are named through the combo
            if type(w).__name__ in ("QHeaderView", "QListView", "QToolButton"):
                continue  # Qt's own parts (headers, completer popups, clear buttons)
            if w.objectName().startswith("qt_"):
                continue  # Qt's own (the table's corner button)
            if not w.objectName() or not w.accessibleName():
                text = w.text() if isinstance(w, QAbstractButton | QLineEdit) else ""
                missing.append(f"{type(w).__name__} {w.objectName()!r} {text}")
    assert missing == []


# -- 9. notifications ---------------------------------------------------------------------------


def test_fill_and_state_change_each_show_a_notification(desk, qloop, qtbot):
    session, window = desk
    ticket = window.ticket
    choose(qloop, qtbot, ticket, "AAPL")
    act(qloop, lambda: ticket.order_type.setCurrentText("MKT"))
    type_into(qloop, qtbot, ticket.quantity, "10")
    act(qloop, ticket.submit)
    run_until(
        qloop,
        lambda: any(k == "fill" for k, _ in window.notifier.history),
        what="a fill notification",
    )
    assert window.notifier.isVisible()
    _kind, text = next(h for h in window.notifier.history if h[0] == "fill")
    assert text.startswith("BOUGHT 10 AAPL @ ")
    act(
        qloop,
        lambda: session.risk.set_trading_state(
            "account", TradingState.REDUCING, reason="test", by="gui"
        ),
    )
    assert ("state", "Trading REDUCING: test") in window.notifier.history
    assert not window.sound_action.isChecked()  # sound is opt-in, from the View menu


def test_a_burst_of_fills_is_one_toast_and_the_history_is_bounded(qtbot):
    from PySide6.QtWidgets import QWidget

    from gui.widgets.notifier import HISTORY, Notifier

    parent = QWidget()
    qtbot.addWidget(parent)
    notifier = Notifier(parent)
    for i in range(50):
        notifier.notify("fill", f"BOUGHT {i + 1} AAPL @ 230")
    notifier.notify("state", "Trading HALTED: test")
    assert notifier.text() == "BOUGHT 1 AAPL @ 230"  # the first, shown at once
    notifier._next()
    assert notifier.text() == "49 fills, the latest:\nBOUGHT 50 AAPL @ 230"
    notifier._next()
    assert notifier.text() == "Trading HALTED: test"
    for i in range(HISTORY + 10):
        notifier.notify("rejected", f"REJECTED {i}")
    assert len(notifier.history) == HISTORY


# -- 9. the in-place modify editor -------------------------------------------------------------


def test_modify_editor_opens_showing_the_current_price_and_the_time_stays(desk, qloop, qtbot):
    from PySide6.QtGui import QFontMetrics

    from gui.widgets.number_field import NumberField

    session, window = desk
    gw, price = rest_an_order(session, window, qloop)
    model, grid = window.orders_model, window.orders_view.view
    proxy = window.orders_view.proxy
    limit = proxy.index(0, model.column_of("limit_price"))
    time_cell = proxy.index(0, model.column_of("time"))
    placed_at = time_cell.data()

    act(qloop, lambda: grid.setCurrentIndex(limit))
    act(qloop, lambda: grid.edit(limit))
    [editor] = [e for e in grid.findChildren(NumberField) if e.isVisible()]
    field = editor.lineEdit()
    assert field.text() == f"{price:,.2f}" == limit.data()
    # the text is on screen, not in a field too narrow to show it (it looked empty)
    assert field.width() >= QFontMetrics(field.font()).horizontalAdvance(field.text())

    new_price = round(price - 0.05, 2)
    act(qloop, field.selectAll)
    act(qloop, lambda: qtbot.keyClicks(field, f"{new_price:.2f}"))
    act(qloop, lambda: qtbot.keyClick(field, Qt.Key.Key_Return))
    run_until(
        qloop,
        lambda: gw.engine.open_orders()[0].request.lmt_price == new_price,
        what="the modification at the gateway",
    )
    run_until(
        qloop,
        lambda: proxy.index(0, model.column_of("limit_price")).data() == f"{new_price:,.2f}",
        what="the modification confirmed in the grid",
    )
    assert proxy.index(0, model.column_of("time")).data() == placed_at


# -- the ticket follows its order through core's events (issue 12, 4) -------------------------


def test_ticket_shows_its_orders_fill_and_an_ib_rejection_from_cores_events(
    desk, qloop, qtbot, ib_log_guard
):
    ib_log_guard.expect(r"Error 201, reqId \d+: Order rejected - reason:no trading permissions")
    session, window = desk
    gw = session.gateway
    assert gw is not None
    ticket = window.ticket
    refused: list[str] = []
    ticket.orderRefused.connect(refused.append)
    choose(qloop, qtbot, ticket, "AAPL")
    act(qloop, lambda: ticket.order_type.setCurrentText("MKT"))
    type_into(qloop, qtbot, ticket.quantity, "10")

    act(qloop, ticket.submit)
    run_until(qloop, lambda: "Filled" in ticket.status.text(), what="the fill in the ticket")
    assert ticket.status.text().startswith("#")
    assert " Filled 10/10 @ " in ticket.status.text()

    gw.reject_next_order(201, "Order rejected - reason:no trading permissions")
    act(qloop, ticket.submit)
    run_until(qloop, lambda: "REJECTED" in ticket.status.text(), what="the rejection")
    assert "error 201: Order rejected - reason:no trading permissions" in ticket.status.text()
    assert refused and "error 201" in refused[-1]


# -- 9. one last price: the positions grid and the ticket ------------------------------------


def test_positions_last_is_the_tickets_last_on_the_es_tick(desk, qloop, qtbot):
    session, window = desk
    gw, trades = session.gateway, session.trades
    assert gw is not None and trades is not None
    ticket = window.ticket
    ticket.confirm_above_notional = None  # no modal confirmation in a test
    choose(qloop, qtbot, ticket, "ES")
    act(qloop, lambda: ticket.order_type.setCurrentText("MKT"))
    act(qloop, ticket.submit)
    es = ticket.info
    assert es is not None and es.min_tick == 0.25
    model = window.positions_model
    run_until(
        qloop,
        lambda: any(r.get("con_id") == es.con_id and r.get("quantity") == 1 for r in model.rows()),
        what="the ES position",
    )
    # The last trade printed below the quote (the book moved up since): the mid of the
    # bid and ask, 5,906.625, is off ES's 0.25 grid and is not the last.
    gw.market.frozen = True  # the walk stands still; only this quote moves
    gw.market.set_quote(es.con_id, bid=5906.50, ask=5906.75, last=5906.00)
    gw._after_quotes([es.con_id], match_all=False)  # pushed to subscribers as a step is
    run_until(qloop, lambda: ticket.last_label.text() == "5,906.00", what="the ticket's last")
    last = model.column_specs[model.column_of("last")]

    def shown() -> str:
        model.flush()
        row = next(r for r in model.rows() if r.get("con_id") == es.con_id)
        return model.cell_text(row, last)

    run_until(qloop, lambda: shown() != "", what="the position's last")
    run_until(qloop, lambda: shown() == "5,906.00", timeout=5, what=f"5,906.00, not {shown()}")
    assert shown() == ticket.last_label.text()


def test_closing_a_position_from_the_grid_sends_the_market_order_through_core(
    desk, qloop, qtbot, monkeypatch
):
    from PySide6.QtWidgets import QMessageBox

    session, window = desk
    gw = session.gateway
    assert gw is not None
    ticket = window.ticket
    choose(qloop, qtbot, ticket, "AAPL")
    act(qloop, lambda: ticket.order_type.setCurrentText("MKT"))
    type_into(qloop, qtbot, ticket.quantity, "10")
    act(qloop, ticket.submit)
    model = window.positions_model
    run_until(
        qloop,
        lambda: any(r.get("symbol") == "AAPL" and r.get("quantity") == 10 for r in model.rows()),
        what="10 AAPL held",
    )
    event = next(model.event_at(i) for i, r in enumerate(model.rows()) if r.get("symbol") == "AAPL")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)

    act(qloop, lambda: window.positions_view.closeRequested.emit(event))

    run_until(
        qloop,
        lambda: any(r.get("symbol") == "AAPL" and r.get("quantity") == 0 for r in model.rows()),
        what="the position closed",
    )
