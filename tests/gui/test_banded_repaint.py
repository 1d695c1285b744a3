"""Grids repaint a change spanning many rows in bands, and every changed row on screen
ends up painted with its new value."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QApplication

from gui.models.base import RIGHT, Column, KeyedTableModel
from gui.models.formatting import fmt_price
from gui.widgets.table_view import DataTableView

COLUMNS = (Column("name", "Name"), Column("price", "Price", fmt_price, RIGHT))
ROWS = 60
BAND = 4


class RecordingModel(KeyedTableModel):
    """Records which rows Qt asked to display (i.e. painted) since the last reset."""

    def __init__(self) -> None:
        super().__init__(COLUMNS, frame_ms=0)
        self.painted_rows: set[int] = set()

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):  # type: ignore[no-untyped-def]
        if role == Qt.ItemDataRole.DisplayRole:
            self.painted_rows.add(index.row())
        return super().data(index, role)


def deliver_paints() -> None:
    """Deliver the paints asked for so far: ``update()`` posts them as events, so one
    pass over the posted events paints them (no waiting for a frame)."""
    QApplication.processEvents()


class PaintRects(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.heights: list[int] = []

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.heights.append(event.rect().height())  # type: ignore[attr-defined]
        return False


def make(qtbot):
    model = RecordingModel()
    for i in range(ROWS):
        model.upsert(i, {"name": f"S{i:02d}", "price": 100.0 + i})
    model.flush()
    view = DataTableView(model)
    view.resize(400, 20 * view.verticalHeader().defaultSectionSize() + 40)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    view.band_rows = lambda: BAND  # type: ignore[method-assign]
    rects = PaintRects()
    view.viewport().installEventFilter(rects)
    deliver_paints()
    return model, view, rects


def visible_rows(view: DataTableView) -> set[int]:
    top = view.rowAt(0)
    bottom = view.rowAt(view.viewport().height() - 1)
    bottom = bottom if bottom >= 0 else view.model().rowCount() - 1
    return {view.proxy.mapToSource(view.proxy.index(r, 0)).row() for r in range(top, bottom + 1)}


def change_all(model: RecordingModel, delta: float) -> None:
    for i in range(ROWS):
        model.patch(i, price=100.0 + i + delta)
    model.painted_rows.clear()
    model.flush()


def test_change_of_every_row_repaints_the_screen_in_bands(qtbot):
    model, view, rects = make(qtbot)
    rects.heights.clear()

    change_all(model, 0.5)
    qtbot.waitUntil(lambda: view.pending_repaint() is None, timeout=2000)
    deliver_paints()

    row_h = view.rowHeight(0)
    on_screen = visible_rows(view)
    assert len(on_screen) > BAND  # the test needs more rows on screen than one band
    assert len(rects.heights) >= len(on_screen) // BAND
    assert max(rects.heights) <= BAND * row_h
    assert on_screen <= model.painted_rows  # every changed row on screen was repainted


def test_one_row_change_is_painted_at_once_without_banding(qtbot):
    model, view, rects = make(qtbot)
    first = view.proxy.mapToSource(view.proxy.index(0, 0)).row()
    rects.heights.clear()
    model.painted_rows.clear()

    model.patch(first, price=1.0)
    model.flush()

    assert view.pending_repaint() is None
    qtbot.waitUntil(lambda: first in model.painted_rows, timeout=2000)
    assert max(rects.heights) <= view.rowHeight(0)


def test_change_of_rows_below_the_screen_paints_nothing(qtbot):
    model, view, rects = make(qtbot)
    off_screen = [i for i in range(ROWS) if i not in visible_rows(view)]
    assert len(off_screen) > BAND
    rects.heights.clear()
    model.painted_rows.clear()

    for i in off_screen:
        model.patch(i, price=1.0)
    model.flush()
    qtbot.waitUntil(lambda: view.pending_repaint() is None, timeout=2000)
    deliver_paints()

    assert rects.heights == []
    assert model.painted_rows.isdisjoint(off_screen)


def test_paint_cost_per_row_is_learnt_from_paints(qtbot):
    model, view, _ = make(qtbot)
    view.ms_per_row = 1_000.0  # absurd estimate: one row per band
    change_all(model, 1.0)
    qtbot.waitUntil(lambda: view.pending_repaint() is None, timeout=5000)
    assert view.ms_per_row < 1_000.0
