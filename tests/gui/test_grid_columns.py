"""Grid columns a person shows, hides and reorders, kept across restarts (issue 11, 7),
and a ticket whose every row is in view on a 1366x768 laptop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QRect, QSettings
from PySide6.QtWidgets import QAbstractItemView, QApplication

from core.session import SessionOptions
from gui.mainwindow import MainWindow
from gui.theme import apply_theme
from gui.widgets.table_view import ColumnLayout

#: Every grid of the window, by the object name its columns are kept under.
GRIDS = ("positionsTable", "positionsTree", "ordersTable", "fillsTable", "logTable", "auditTable")


def window_on(options: SessionOptions, settings_file: Path, qtbot: Any) -> MainWindow:
    window = MainWindow(options, settings=QSettings(str(settings_file), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    return window


def grid(window: MainWindow, name: str) -> ColumnLayout:
    [view] = [v for v in window.findChildren(QAbstractItemView) if v.objectName() == name]
    assert isinstance(view, ColumnLayout), name
    return view


def default_keys(view: ColumnLayout) -> list[str]:
    """The columns a grid shows by default, left to right (its own order first)."""
    keys = view.column_keys()
    defaults = view.default_columns
    first = [k for k in defaults.order if k in keys]
    return [k for k in [*first, *(k for k in keys if k not in first)] if k not in defaults.hidden]


@pytest.fixture
def options(tmp_path: Path) -> SessionOptions:
    return SessionOptions(sim_state_file=tmp_path / "sim.json")


def test_the_header_menu_hides_and_shows_each_column(qapp, qtbot, options, tmp_path):
    window = window_on(options, tmp_path / "l.ini", qtbot)
    for name in GRIDS:
        view = grid(window, name)
        menu = view._header_menu()
        entries = [a for a in menu.actions() if a.isCheckable()]
        # in the order they are shown
        titles = {c.key: c.title for c in view.column_specs}
        assert [a.text() for a in entries] == [titles[k] for k in default_keys(view)]
        assert all(a.isChecked() for a in entries)
        second = entries[1]
        key = second.data()
        second.toggle()  # as a click on the entry does
        assert key not in view.visible_column_keys()
        menu = view._header_menu()
        assert not [a for a in menu.actions() if a.isCheckable()][1].isChecked()
        [a for a in menu.actions() if a.isCheckable()][1].toggle()
        assert view.visible_column_keys()[1] == key
        assert view.header_view().sectionsMovable()  # dragged to reorder


def test_the_last_shown_column_cannot_be_hidden(qapp, qtbot, options, tmp_path):
    window = window_on(options, tmp_path / "l.ini", qtbot)
    view = grid(window, "fillsTable")
    keys = view.column_keys()
    for key in keys[1:]:
        view.set_column_visible(key, False)
    view.set_column_visible(keys[0], False)
    assert view.visible_column_keys() == [keys[0]]
    [only] = [a for a in view._header_menu().actions() if a.isCheckable() and a.isChecked()]
    assert not only.isEnabled()


def test_hidden_and_moved_columns_come_back_after_a_restart(qapp, qtbot, options, tmp_path):
    first = window_on(options, tmp_path / "l.ini", qtbot)
    expected = {}
    for name in GRIDS:
        view = grid(first, name)
        keys = view.column_keys()
        view.set_column_visible(keys[2], False)
        view.move_column(keys[-1], 0)  # the last column first
        view.header_view().resizeSection(3, 222)
        expected[name] = (view.visible_column_keys(), view.header_view().sectionSize(3))
        assert expected[name][0][0] == keys[-1] and keys[2] not in expected[name][0]
    first.save_layout()
    first.close()

    second = window_on(options, tmp_path / "l.ini", qtbot)
    for name in GRIDS:
        view = grid(second, name)
        assert (view.visible_column_keys(), view.header_view().sectionSize(3)) == expected[name]

    # View > Reset layout: the columns too
    second.reset_layout_to_default()
    for name in GRIDS:
        view = grid(second, name)
        assert view.visible_column_keys() == default_keys(view)


def test_damaged_or_outdated_saved_columns_leave_the_grid_usable(qapp, qtbot, options, tmp_path):
    settings = QSettings(str(tmp_path / "l.ini"), QSettings.Format.IniFormat)
    settings.setValue("columns/ordersTable", "{not json")
    # a column this version does not have, and one it has that was not saved
    settings.setValue(
        "columns/fillsTable", '{"order": ["gone", "symbol", "time"], "hidden": ["gone"]}'
    )
    settings.sync()

    window = window_on(options, tmp_path / "l.ini", qtbot)

    orders = grid(window, "ordersTable")
    assert orders.visible_column_keys() == default_keys(orders)
    fills = grid(window, "fillsTable")
    shown = fills.visible_column_keys()
    assert shown[:2] == ["symbol", "time"]
    assert sorted(shown) == sorted(fills.column_keys())


def test_every_ticket_row_is_in_view_on_a_1366_by_768_screen(qapp, qtbot, options, tmp_path):
    apply_theme(qapp)
    window = window_on(options, tmp_path / "l.ini", qtbot)
    window.resize(1366, 768 - 40)  # the screen less a task bar
    window.show()
    qtbot.waitExposed(window)
    QApplication.processEvents()
    ticket = window.ticket

    area = ticket.fields_area
    assert area.verticalScrollBar().maximum() == 0, "the ticket's fields scroll"
    viewport = QRect(
        area.viewport().mapTo(ticket, area.viewport().rect().topLeft()), area.viewport().size()
    )
    for field in (
        ticket.quantity,
        ticket.order_type,
        ticket.limit_price,
        ticket.stop_price,
        ticket.tif,
        ticket.strategy,
    ):
        rect = QRect(field.mapTo(ticket, field.rect().topLeft()), field.size())
        assert viewport.contains(rect), field.objectName()
    for pinned in (ticket.notional_label, ticket.verdict_label, ticket.send_button):
        assert pinned.visibleRegion().boundingRect().height() == pinned.height()


def shown_whole(view: ColumnLayout, key: str) -> bool:
    """Whether column ``key`` is on screen whole, without scrolling sideways."""
    header = view.header_view()
    logical = view.column_keys().index(key)
    left = header.sectionViewportPosition(logical)
    return (
        not header.isSectionHidden(logical)
        and left >= 0
        and left + header.sectionSize(logical) <= header.viewport().width()
    )


def test_what_a_trader_reads_first_is_in_view_at_1366_by_768(qapp, qtbot, options, tmp_path):
    apply_theme(qapp)
    window = window_on(options, tmp_path / "l.ini", qtbot)
    window.resize(1366, 768 - 40)
    window.show()
    qtbot.waitExposed(window)
    QApplication.processEvents()

    reads = {
        "fillsTable": ["time", "symbol", "side", "quantity", "price"],
        "ordersTable": [
            "symbol",
            "action",
            "quantity",
            "order_type",
            "limit_price",
            "stop_price",
            "status",
        ],
        "positionsTable": ["strategy", "symbol", "quantity", "last", "daily_pnl", "unrealized_pnl"],
    }
    for name, keys in reads.items():
        view = grid(window, name)
        assert view.visible_column_keys()[: len(keys)] == keys, name
        hidden = [k for k in keys if not shown_whole(view, k)]
        assert not hidden, f"{name}: {hidden} not in view"


def test_widths_a_person_saved_still_win_over_the_fitted_defaults(qapp, qtbot, options, tmp_path):
    first = window_on(options, tmp_path / "l.ini", qtbot)
    fills = grid(first, "fillsTable")
    price = fills.column_keys().index("price")
    default = fills.header_view().sectionSize(price)
    fills.header_view().resizeSection(price, default + 57)
    first.save_layout()
    first.close()

    second = window_on(options, tmp_path / "l.ini", qtbot)
    assert grid(second, "fillsTable").header_view().sectionSize(price) == default + 57


def test_a_three_line_symbol_message_pushes_no_ticket_row_out_of_view(
    qapp, qtbot, options, tmp_path
):
    apply_theme(qapp)
    window = window_on(options, tmp_path / "l.ini", qtbot)
    window.resize(1366, 768 - 40)
    window.show()
    qtbot.waitExposed(window)
    QApplication.processEvents()
    ticket = window.ticket
    message = (
        "unknown contract 'ZZZZ' (any type, any exchange, any currency): IB has no "
        "definition for it; check the symbol, or type the exchange and currency too"
    )
    ticket.description.setText(message)
    QApplication.processEvents()

    assert ticket.description.text() == message  # whole, for whoever reads it
    assert ticket.description.toolTip() == message  # shown cut short: whole in the tooltip
    area = ticket.fields_area
    assert area.verticalScrollBar().maximum() == 0, "the ticket's fields scroll"
    viewport = QRect(
        area.viewport().mapTo(ticket, area.viewport().rect().topLeft()), area.viewport().size()
    )
    for row in (ticket.strategy, ticket.commission_label, ticket.margin_label):
        rect = QRect(row.mapTo(ticket, row.rect().topLeft()), row.size())
        assert viewport.contains(rect), row.objectName()
