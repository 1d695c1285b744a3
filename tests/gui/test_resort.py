"""The grid re-sorts only when a change can reorder it."""

from __future__ import annotations

from PySide6.QtCore import Qt

from gui.models.base import Column, KeyedTableModel, TableProxy

COLUMNS = (Column("name", "Name"), Column("price", "Price"))


def make(qtbot):
    model = KeyedTableModel(COLUMNS, frame_ms=0)
    proxy = TableProxy(model, resort_ms=250)
    for i, name in enumerate(("c", "a", "b")):
        model.upsert(name, {"name": name, "price": float(i)})
    model.flush()
    return model, proxy


def test_price_change_in_grid_sorted_by_name_does_not_schedule_a_resort(qtbot):
    model, proxy = make(qtbot)
    proxy.sort(0, Qt.SortOrder.AscendingOrder)
    proxy.resort()

    model.patch("a", price=99.0)
    model.flush()

    assert not proxy._resort_timer.isActive()
    assert [proxy.index(r, 0).data() for r in range(3)] == ["a", "b", "c"]


def test_change_in_the_sort_column_reorders_after_the_throttle(qtbot):
    model, proxy = make(qtbot)
    proxy.sort(1, Qt.SortOrder.AscendingOrder)
    proxy.resort()

    model.patch("c", price=99.0)
    model.flush()

    assert proxy._resort_timer.isActive()
    qtbot.waitUntil(lambda: proxy.index(2, 0).data() == "c", timeout=2000)
