"""Grid wrappers: sorting, filters, context-menu and double-click signals; theme."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from core.events import AuditRecorded, ReconciliationBreakFound
from gui import theme
from gui.widgets.fills_view import FillsView
from gui.widgets.log_view import AuditView, LogView
from gui.widgets.orders_view import OrdersView
from gui.widgets.positions_view import PositionsView
from tests.gui.conftest import T0, make_fill, make_order, make_position


def positions_view(qtbot) -> PositionsView:
    view = PositionsView()
    qtbot.addWidget(view)
    for strategy, symbol, con_id, qty, pnl in (
        ("trend", "AAPL", 1, 100, 50.0),
        ("trend", "MSFT", 2, 0, 0.0),
        ("meanrev", "SPY", 3, -50, -20.0),
    ):
        view.positions.on_position_changed(
            make_position(
                strategy=strategy, symbol=symbol, con_id=con_id, quantity=qty, unrealized_pnl=pnl
            )
        )
    view.positions.flush()
    return view


def row_of(view, symbol: str) -> int:
    model = view.model
    return next(r for r in range(model.rowCount()) if model.row_at(r)["symbol"] == symbol)


def test_positions_context_menu_actions_emit_signals_with_the_event(qtbot, signal_log):
    view = positions_view(qtbot)
    closes = signal_log(view.closeRequested)
    reverses = signal_log(view.reverseRequested)
    tickets = signal_log(view.sendToTicketRequested)
    ticket, _, close, reverse = view.context_actions(row_of(view, "AAPL"))
    close.trigger()
    reverse.trigger()
    ticket.trigger()
    for log in (closes, reverses, tickets):
        assert len(log) == 1
        assert log.calls[0][0].symbol == "AAPL"


def test_positions_context_menu_on_flat_row_then_close_and_reverse_disabled(qtbot):
    view = positions_view(qtbot)
    _, _, close, reverse = view.context_actions(row_of(view, "MSFT"))
    assert not close.isEnabled() and not reverse.isEnabled()


def test_break_row_context_menu_offers_to_attribute_the_difference(qtbot, signal_log):
    view = positions_view(qtbot)
    brk = ReconciliationBreakFound("DU1", 1, "AAPL", 125.0, 100.0, "traded in TWS")
    view.positions.on_reconciliation_break(brk)
    view.positions.flush()
    resolves = signal_log(view.resolveBreakRequested)

    *_, resolve = view.context_actions(row_of(view, "AAPL"))
    resolve.trigger()

    assert "+25" in resolve.text() and "external" in resolve.text()
    assert resolves.calls == [(brk,)]
    assert len(view.context_actions(row_of(view, "SPY"))) == 4  # no break: no such item


def test_positions_double_click_then_send_to_ticket(qtbot, signal_log):
    view = positions_view(qtbot)
    tickets = signal_log(view.sendToTicketRequested)
    source = view.model.index(row_of(view, "SPY"), 0)
    view.view.doubleClicked.emit(view.proxy.mapFromSource(source))
    assert tickets.calls[0][0].symbol == "SPY"


def test_positions_strategy_selector_and_hide_flat(qtbot):
    view = positions_view(qtbot)
    names = [view.strategy_combo.itemText(i) for i in range(view.strategy_combo.count())]
    assert names == ["All strategies", "meanrev", "trend"]
    view.strategy_combo.setCurrentText("trend")
    assert view.proxy.rowCount() == 2
    view.hide_flat.setChecked(True)
    assert view.proxy.rowCount() == 1
    view.strategy_combo.setCurrentText("All strategies")
    assert view.proxy.rowCount() == 2


def test_positions_filter_box_filters_rows(qtbot):
    view = positions_view(qtbot)
    view.filter_edit.setText("spy")
    assert view.proxy.rowCount() == 1


def test_positions_totals_label_sums_pnl(qtbot):
    view = positions_view(qtbot)
    assert "+30.00" in view.totals_label.text()


def test_positions_header_click_sorts_numerically(qtbot):
    view = positions_view(qtbot)
    col = view.model.column_of("unrealized_pnl")
    view.view.sortByColumn(col, Qt.SortOrder.AscendingOrder)
    values = [view.proxy.index(r, col).data() for r in range(view.proxy.rowCount())]
    assert values == ["-20.00", "0.00", "+50.00"]


def orders_view(qtbot) -> OrdersView:
    view = OrdersView()
    qtbot.addWidget(view)
    view.orders.on_order_updated(make_order(order_id=1, time=T0))
    view.orders.on_order_updated(
        make_order(order_id=2, symbol="MSFT", time=T0 + timedelta(seconds=5))
    )
    view.orders.flush()
    return view


def test_orders_sorted_newest_first(qtbot):
    view = orders_view(qtbot)
    assert view.proxy.index(0, view.orders.column_of("symbol")).data() == "MSFT"


def test_orders_cancel_from_context_menu_then_cancel_requested(qtbot, signal_log):
    view = orders_view(qtbot)
    cancels = signal_log(view.cancelRequested)
    cancel, _, cancel_all = view.context_actions(view.orders.position((1, 2)))
    cancel.trigger()
    assert cancels.calls == [(2,)]
    alls = signal_log(view.cancelAllRequested)
    cancel_all.trigger()
    view.cancel_all_button.click()
    assert len(alls) == 2


def test_orders_delete_key_cancels_selected(qtbot, signal_log):
    view = orders_view(qtbot)
    cancels = signal_log(view.cancelRequested)
    view.view.selectRow(0)
    view.cancel_selected()
    assert cancels.calls == [(2,)]


def test_orders_edit_through_view_then_modify_requested_forwarded(qtbot, signal_log):
    view = orders_view(qtbot)
    requests = signal_log(view.modifyRequested)
    index = view.proxy.index(0, view.orders.column_of("limit_price"))
    assert view.proxy.setData(index, 191.0)
    assert requests.calls == [(2, "limit_price", 191.0)]


def test_orders_price_editor_steps_by_the_contract_tick(qtbot):
    view = orders_view(qtbot)
    view.orders.set_tick(265598, 0.0001)
    view.orders.flush()
    view.show()
    index = view.proxy.index(0, view.orders.column_of("limit_price"))
    editor = view.view.itemDelegate().createEditor(view.view.viewport(), None, index)
    assert editor.decimals() == 4
    assert abs(editor.singleStep() - 0.0001) < 1e-12


def test_fills_view_newest_first_and_send_to_ticket(qtbot, signal_log):
    view = FillsView()
    qtbot.addWidget(view)
    view.fills.on_fill_recorded(make_fill(exec_id="a", time=T0))
    view.fills.on_fill_recorded(make_fill(exec_id="b", time=T0 + timedelta(seconds=3)))
    view.fills.flush()
    assert view.proxy.index(0, view.fills.column_of("exec_id")).data() == "b"
    tickets = signal_log(view.sendToTicketRequested)
    view.context_actions(view.fills.position("a"))[0].trigger()
    assert tickets.calls[0][0].exec_id == "a"


def test_new_fill_takes_its_place_at_once_without_a_full_resort(qtbot):
    view = FillsView()
    qtbot.addWidget(view)
    for i in range(50):
        view.fills.on_fill_recorded(make_fill(exec_id=f"e{i:02d}", time=T0 + timedelta(seconds=i)))
    view.fills.flush()
    view.proxy.resort()

    view.fills.on_fill_recorded(make_fill(exec_id="new", time=T0 + timedelta(minutes=5)))
    view.fills.on_fill_recorded(make_fill(exec_id="mid", time=T0 + timedelta(seconds=24.5)))
    view.fills.flush()

    col = view.fills.column_of("exec_id")
    shown = [view.proxy.index(r, col).data() for r in range(view.proxy.rowCount())]
    assert shown[:2] == ["new", "e49"]
    assert shown[shown.index("e25") + 1] == "mid"
    assert not view.proxy._resort_timer.isActive()


def test_views_size_columns_from_specs_and_stretch_only_text_tail(qtbot):
    view = positions_view(qtbot)
    header = view.view.horizontalHeader()
    assert not header.stretchLastSection()  # last column (% NLV) is numeric
    assert view.view.columnWidth(view.model.column_of("market_value")) > 80
    orders = orders_view(qtbot)
    assert orders.view.horizontalHeader().stretchLastSection()  # message column


def test_theme_applies_style_sheet_and_icons_load(qtbot):
    app = QApplication.instance()
    old_sheet, old_palette = app.styleSheet(), app.palette()
    try:
        theme.apply_theme(app)
        assert "@MONO@" not in app.styleSheet()
        assert "QTableView" in app.styleSheet()
    finally:
        app.setStyleSheet(old_sheet)
        app.setPalette(old_palette)
    for svg in sorted(theme.ICONS.glob("*.svg")):
        icon = QIcon(str(svg))
        assert not icon.isNull(), svg
        assert not icon.pixmap(32, 32).isNull(), svg
    assert theme.number_font().fixedPitch()


@pytest.fixture
def themed(qapp):
    """The console's fonts and style sheet (cell padding): widths as a trader sees them."""
    saved = (qapp.style().name(), qapp.palette(), qapp.font(), qapp.styleSheet())
    theme.apply_theme(qapp)
    yield
    qapp.setStyleSheet(saved[3])
    qapp.setFont(saved[2])
    qapp.setPalette(saved[1])
    qapp.setStyle(saved[0])


def shows_in_full(view, column: int) -> bool:
    """The column is wide enough for the text of the rows it shows (nothing elided)."""
    return view.view.columnWidth(column) >= view.view.sizeHintForColumn(column)


def test_fills_in_a_450_px_dock_then_price_visible_without_scrolling(qtbot, themed):
    view = FillsView()
    qtbot.addWidget(view)
    view.fills.on_fill_recorded(make_fill(quantity=25_000.0, price=5_181.25))
    view.fills.flush()
    view.resize(450, 300)
    view.show()
    qtbot.waitExposed(view)
    grid = view.view
    price = view.fills.column_of("price")
    assert grid.horizontalScrollBar().value() == 0
    right_edge = grid.columnViewportPosition(price) + grid.columnWidth(price)
    assert right_edge <= grid.viewport().width()
    assert shows_in_full(view, price)


def test_order_and_fill_grids_wide_enough_for_their_longest_values(qtbot, themed):
    orders = OrdersView()
    qtbot.addWidget(orders)
    for order_id, status in enumerate(("PendingCancel", "PreSubmitted", "PendingSubmit"), 1):
        orders.orders.on_order_updated(
            make_order(
                order_id=order_id,
                perm_id=order_id,
                quantity=200_000.0,
                filled=100_000.0,
                status=status,
            )
        )
    orders.orders.flush()
    fills = FillsView()
    qtbot.addWidget(fills)
    fills.fills.on_fill_recorded(make_fill(exchange="IDEALPRO"))
    fills.fills.flush()
    for view in (orders, fills):
        view.resize(1600, 300)
        view.show()
        qtbot.waitExposed(view)
    assert shows_in_full(orders, orders.orders.column_of("filled"))
    assert shows_in_full(orders, orders.orders.column_of("status"))
    assert shows_in_full(fills, fills.fills.column_of("exchange"))


def test_log_level_column_wide_enough_for_every_level_name(qtbot, themed):
    view = LogView()
    qtbot.addWidget(view)
    view.set_min_level(logging.DEBUG)
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        view.log_model.on_record({"level": logging.getLevelName(level), "levelno": level})
    view.log_model.flush()
    view.resize(1200, 300)
    view.show()
    qtbot.waitExposed(view)
    assert shows_in_full(view, view.log_model.column_of("level"))


def test_audit_actions_shown_as_words_in_full(qtbot, themed):
    view = AuditView()
    qtbot.addWidget(view)
    for action in ("emergency_stop_preview", "set_trading_state", "emergency_stop"):
        view.audit.on_audit_recorded(AuditRecorded("gui", action, "account", "started"))
    view.audit.flush()
    view.resize(1200, 300)
    view.show()
    qtbot.waitExposed(view)
    assert shows_in_full(view, view.audit.column_of("action"))


def test_modified_order_keeps_the_time_it_was_placed(qtbot):
    view = orders_view(qtbot)
    key = view.orders.keys()[0]
    placed = view.orders.row(key)["time"]
    before = view.orders.row(key)
    view.orders.on_order_updated(
        make_order(
            order_id=before["order_id"],
            perm_id=before["perm_id"],
            limit_price=190.0,
            time=placed + timedelta(minutes=5),
        )
    )
    view.orders.flush()
    assert view.orders.row(key)["limit_price"] == 190.0
    assert view.orders.row(key)["time"] == placed
