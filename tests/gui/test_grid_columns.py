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


@pytest.fixture
def options(tmp_path: Path) -> SessionOptions:
    return SessionOptions(sim_state_file=tmp_path / "sim.json")


def test_the_header_menu_hides_and_shows_each_column(qapp, qtbot, options, tmp_path):
    window = window_on(options, tmp_path / "l.ini", qtbot)
    for name in GRIDS:
        view = grid(window, name)
        menu = view._header_menu()
        entries = [a for a in menu.actions() if a.isCheckable()]
        assert [a.text() for a in entries] == [c.title for c in view.column_specs]
        assert all(a.isChecked() for a in entries)
        second = entries[1]
        second.toggle()  # as a click on the entry does
        assert view.column_specs[1].key not in view.visible_column_keys()
        menu = view._header_menu()
        assert not [a for a in menu.actions() if a.isCheckable()][1].isChecked()
        [a for a in menu.actions() if a.isCheckable()][1].toggle()
        assert view.visible_column_keys()[1] == view.column_specs[1].key
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
        assert view.visible_column_keys() == view.column_keys()


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
    assert orders.visible_column_keys() == orders.column_keys()
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
