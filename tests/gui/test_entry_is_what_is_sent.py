"""What a field shows is what is sent (QA report, defects 2 and 9).

The orders grid's in-place editor follows the ticket's entry rules: it holds what was
typed, flags an entry the ticket would refuse in place with the ticket's reason and
never sends it; a modification core refuses (off the tick) opens the cell again,
flagged; one that raises the order's notional above the ``[gui]`` threshold asks the
ticket's confirmation, old -> new. The send button states every term sent that is not
the default (TIF, outside RTH).

Each test runs the whole window on a started session against the embedded simulated
gateway (real ib_async client), typing as a trader does.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from gui.mainwindow import MainWindow
from gui.widgets.number_field import NumberField
from helpers import act, run_until, settle
from tests.gui.test_safe_desk import choose, rest_an_order, type_into


def cell_editor(window: MainWindow) -> NumberField | None:
    """The orders grid's open cell editor, if any."""
    grid = window.orders_view.view
    shown = [e for e in grid.findChildren(NumberField) if e.isVisible()]
    return shown[0] if shown else None


def edit_cell(qloop: Any, qtbot: Any, window: MainWindow, column: str, typed: str) -> NumberField:
    """Open the first order's ``column`` cell, type ``typed`` over it and press Enter;
    the editor (which may have closed)."""
    model, grid, proxy = window.orders_model, window.orders_view.view, window.orders_view.proxy
    index = proxy.index(0, model.column_of(column))
    act(qloop, lambda: grid.setCurrentIndex(index))
    act(qloop, lambda: grid.edit(index))
    editor = cell_editor(window)
    assert editor is not None, "the cell did not open for editing"
    act(qloop, editor.selectAll)
    act(qloop, lambda: qtbot.keyClicks(editor, typed))
    act(qloop, lambda: qtbot.keyClick(editor, Qt.Key.Key_Return))
    return editor


def test_bad_grid_entries_are_flagged_in_place_with_the_tickets_reason_and_never_sent(
    desk, qloop, qtbot
):
    session, window = desk
    gw, price = rest_an_order(session, window, qloop)
    cases = {
        "quantity": {
            "1e12": "scientific notation",
            "-5": "negative: the side (BUY / SELL) gives the direction",
            "0": "must be above 0",
            "abc": "not a number",
            "12.345": "whole numbers only",
            "99999999999": "above the most the ticket sends",
        },
        "limit_price": {
            "1e12": "scientific notation",
            "-5": "negative: a price is above 0",
            f"{price - 0.013:.3f}": "at most 2 decimals",
        },
    }
    for column, entries in cases.items():
        for typed, reason in entries.items():
            editor = edit_cell(qloop, qtbot, window, column, typed)
            # Enter did not close it, rewrite it nor send it: it is flagged, with why.
            assert cell_editor(window) is editor, f"{column} {typed!r}: editor closed"
            assert editor.text() == typed
            assert editor.property("invalid") is True
            assert reason in editor.toolTip(), (typed, editor.toolTip())
            assert reason in window.statusBar().currentMessage()
            assert "not sent" in window.statusBar().currentMessage()
            act(qloop, lambda e=editor: qtbot.keyClick(e, Qt.Key.Key_Escape))
            assert cell_editor(window) is None
    qloop.run_until_complete(settle(session.connection.ib))

    [working] = gw.engine.open_orders()
    assert (working.request.total_quantity, working.request.lmt_price) == (10, price)
    row = window.orders_model.row_at(0)
    assert not row.get("_requested"), "a refused entry was marked as requested"


def test_a_grid_modification_raising_the_notional_past_the_threshold_asks_old_to_new(
    desk, qloop, qtbot, monkeypatch
):
    session, window = desk
    gw, price = rest_an_order(session, window, qloop)  # BUY 10 AAPL: ~2,200 USD
    asked: list[tuple[str, str]] = []
    answer = [False]

    def confirm(_parent: object, order: str, why: str) -> bool:
        asked.append((order, why))
        return answer[0]

    monkeypatch.setattr("gui.controller.confirm_large_order", confirm)

    edit_cell(qloop, qtbot, window, "quantity", "800")
    run_until(qloop, lambda: asked, what="the confirmation")
    order, why = asked[0]
    order_id = window.orders_model.row_at(0)["order_id"]
    assert order == f"Modify #{order_id}: BUY 10 → 800 AAPL LMT {price:,.2f}"
    assert why == (
        f"Notional {10 * price:,.2f} USD → {800 * price:,.2f} USD is above 25,000.00 USD."
    )
    qloop.run_until_complete(settle(session.connection.ib))
    assert gw.engine.open_orders()[0].request.total_quantity == 10  # cancelled: not sent
    assert "cancelled at confirmation" in window.statusBar().currentMessage()

    answer[0] = True
    edit_cell(qloop, qtbot, window, "quantity", "800")
    run_until(
        qloop,
        lambda: gw.engine.open_orders()[0].request.total_quantity == 800,
        what="the confirmed modification at the gateway",
    )
    # Smaller again: nothing is asked (the notional goes down).
    asked.clear()
    run_until(qloop, lambda: window.orders_model.row_at(0)["quantity"] == 800, what="800 shown")
    edit_cell(qloop, qtbot, window, "quantity", "700")
    run_until(
        qloop,
        lambda: gw.engine.open_orders()[0].request.total_quantity == 700,
        what="the smaller order at the gateway",
    )
    assert asked == []


def test_a_modification_core_refuses_opens_the_cell_again_flagged_with_why(
    desk, qloop, qtbot, monkeypatch
):
    session, window = desk
    gw, _price = rest_an_order(session, window, qloop)
    boxes: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: boxes.append(str(a[2:])))
    monkeypatch.setattr("gui.controller.confirm_large_order", lambda *_a: True)

    # Above the shipped precaution for a stock order (2,000 shares): core refuses it.
    edit_cell(qloop, qtbot, window, "quantity", "2500")
    run_until(qloop, lambda: cell_editor(window) is not None, what="the cell opened again")
    editor = cell_editor(window)
    assert editor is not None
    assert editor.text() == "2,500"  # the entry, kept
    assert editor.property("invalid") is True
    why = editor.toolTip()
    assert "precautionary size 2,000 shares for STK" in why
    assert why in window.statusBar().currentMessage()
    assert boxes == []  # flagged in place, not a modal box
    qloop.run_until_complete(settle(session.connection.ib))
    assert gw.engine.open_orders()[0].request.total_quantity == 10
    act(qloop, lambda: qtbot.keyClick(editor, Qt.Key.Key_Escape))
    assert cell_editor(window) is None
    assert window.orders_model.row_at(0)["quantity"] == 10


def test_the_send_button_states_the_tif_and_outside_rth_it_sends(desk, qloop, qtbot):
    _session, window = desk
    ticket = window.ticket
    choose(qloop, qtbot, ticket, "AAPL")
    ask = ticket.ask_button.price
    assert ask is not None
    stop = f"{round(ask * 1.02, 2):.2f}"
    type_into(qloop, qtbot, ticket.quantity, "3")
    act(qloop, lambda: ticket.order_type.setCurrentText("STP"))
    type_into(qloop, qtbot, ticket.stop_price, stop)
    act(qloop, lambda: ticket.tif.setCurrentText("IOC"))
    act(qloop, lambda: ticket.outside_rth.setChecked(True))

    order = f"BUY 3 AAPL STP {float(stop):,.2f} IOC · outside RTH"
    assert ticket.send_button.lines()[0] == order
    if ticket.send_button.isEnabled():  # the whole order is on the button, not elided
        assert ticket.send_button.text().replace("\n", " ") == order

    act(qloop, lambda: ticket.order_type.setCurrentText("MKT"))
    act(qloop, lambda: ticket.tif.setCurrentText("DAY"))
    assert ticket.send_button.lines()[0] == "BUY 3 AAPL MKT · outside RTH"
    act(qloop, lambda: ticket.outside_rth.setChecked(False))
    assert ticket.send_button.lines()[0] == "BUY 3 AAPL MKT"  # the defaults go unsaid


def test_a_quantity_below_what_already_filled_is_flagged_not_sent(qtbot, signal_log):
    from gui.widgets.orders_view import OrdersView
    from tests.gui.conftest import make_order

    view = OrdersView()
    qtbot.addWidget(view)
    view.orders.on_order_updated(make_order(quantity=800.0, filled=100.0, remaining=700.0))
    view.orders.flush()
    view.show()
    qtbot.waitExposed(view)
    requests = signal_log(view.modifyRequested)
    said = signal_log(view.entryRefused)
    index = view.proxy.index(0, view.orders.column_of("quantity"))
    view.view.setCurrentIndex(index)
    view.view.edit(index)
    [editor] = [e for e in view.view.findChildren(NumberField) if e.isVisible()]
    editor.selectAll()
    qtbot.keyClicks(editor, "50")
    qtbot.keyClick(editor, Qt.Key.Key_Return)

    assert editor.isVisible() and editor.text() == "50"
    assert "less than the 100 already filled" in editor.toolTip()
    assert said.calls and "less than the 100 already filled" in str(said.calls[-1][0])
    qtbot.keyClick(editor, Qt.Key.Key_Escape)
    QApplication.processEvents()
    assert requests.calls == []
