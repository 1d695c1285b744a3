"""P&L chart: appends reuse items, one point per second, downsampling and history."""

from __future__ import annotations

import gc
import re
import weakref
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from PySide6.QtGui import QImage, QPainter, QTextDocument
from PySide6.QtWidgets import QApplication

from core.events import PnLChanged
from gui.widgets.pnl_chart import MIN_SPAN_S, MIN_ZOOM_S, TOTAL, PnLChart
from tests.gui.conftest import T0


def make_chart(qtbot) -> PnLChart:
    chart = PnLChart()
    qtbot.addWidget(chart)
    return chart


def test_pnl_event_then_total_realized_unrealized_lines(qtbot):
    chart = make_chart(qtbot)
    chart.on_pnl_changed(PnLChanged(None, 0.0, 100.0, -30.0, time=T0))
    chart.flush()
    assert chart.latest(TOTAL, "total") == 70.0
    assert chart.latest(TOTAL, "realized") == 100.0
    assert chart.latest(TOTAL, "unrealized") == -30.0


def test_appends_then_same_plot_item_reused_and_data_grows(qtbot):
    chart = make_chart(qtbot)
    chart.on_pnl_changed(PnLChanged("trend", 0.0, 1.0, 1.0, time=T0))
    chart.flush()
    item = chart.series("trend")
    items_before = len(chart.plot.listDataItems())
    for i in range(1, 5000):  # grows past the initial buffer capacity
        chart.on_pnl_changed(
            PnLChanged("trend", 0.0, float(i), 1.0, time=T0 + timedelta(seconds=i))
        )
    chart.flush()
    assert chart.series("trend") is item
    assert len(chart.plot.listDataItems()) == items_before
    x, y = item.getOriginalDataset()
    assert len(x) == 5000
    assert y[-1] == 4999 + 1.0


def test_appends_then_drawn_once_per_frame(qtbot):
    chart = make_chart(qtbot)
    chart.on_pnl_changed(PnLChanged(None, 0.0, 1.0, 0.0, time=T0))
    item = chart.series(TOTAL)
    assert item.getOriginalDataset()[0] is None  # not drawn yet: coalesced
    qtbot.waitUntil(lambda: item.getOriginalDataset()[0] is not None, timeout=1000)
    assert len(item.getOriginalDataset()[0]) == 1


def test_updates_within_one_second_then_last_point_replaced(qtbot):
    chart = make_chart(qtbot)
    for ms in (0, 200, 700):
        chart.on_pnl_changed(
            PnLChanged(None, 0.0, float(ms), 0.0, time=T0 + timedelta(milliseconds=ms))
        )
    chart.on_pnl_changed(PnLChanged(None, 0.0, 5.0, 0.0, time=T0 + timedelta(seconds=1)))
    chart.flush()
    assert chart.point_count(TOTAL) == 2
    assert list(chart.series(TOTAL).getOriginalDataset()[1]) == [700.0, 5.0]


def test_downsampling_peak_and_clip_to_view_configured(qtbot):
    chart = make_chart(qtbot)
    chart.append("trend", "total", T0, 1.0)
    chart.flush()
    for item in (chart.series("trend"),):
        assert item.opts["autoDownsample"] is True
        assert item.opts["downsampleMethod"] == "peak"
        assert item.opts["clipToView"] is True
    assert chart.plot.downsampleMode()[1:] == (True, "peak")
    assert chart.plot.clipToViewMode() is True


def test_placeholder_values_then_not_plotted(qtbot):
    chart = make_chart(qtbot)
    chart.append(TOTAL, "total", T0, float("nan"))
    chart.append(TOTAL, "total", T0, 1.7976931348623157e308)
    assert chart.point_count(TOTAL) == 0


def test_load_history_full_day_at_one_second(qtbot):
    chart = make_chart(qtbot)
    n = 86_400
    times = pd.date_range(T0, periods=n, freq="1s")
    frame = pd.concat(
        [
            pd.DataFrame(
                {
                    "time": times,
                    "strategy": None,
                    "realized": np.arange(n, dtype=float),
                    "unrealized": np.ones(n),
                }
            ),
            pd.DataFrame(
                {
                    "time": times,
                    "strategy": "trend",
                    "realized": np.zeros(n),
                    "unrealized": np.ones(n),
                }
            ),
        ]
    )
    chart.load_history(frame)
    assert chart.point_count(TOTAL) == n
    assert chart.point_count("trend") == n
    assert chart.latest(TOTAL, "total") == n - 1 + 1.0
    assert set(chart.names()) == {TOTAL, "trend"}
    # a live point afterwards is appended to the same item
    item = chart.series(TOTAL)
    chart.on_pnl_changed(PnLChanged(None, 0.0, 1.0, 1.0, time=T0 + timedelta(seconds=n)))
    chart.flush()
    assert chart.series(TOTAL) is item
    assert chart.point_count(TOTAL) == n + 1


def test_load_history_after_live_points_then_history_goes_in_front(qtbot):
    chart = make_chart(qtbot)
    chart.on_pnl_changed(PnLChanged(None, 0.0, 50.0, 0.0, time=T0 + timedelta(seconds=100)))
    frame = pd.DataFrame(
        {
            "time": [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=200)],
            "realized": [1.0, 2.0, 3.0],
            "unrealized": [0.0, 0.0, 0.0],
        }
    )
    chart.load_history(frame)
    _x, y = chart.series(TOTAL).getOriginalDataset()
    assert list(y) == [1.0, 2.0, 50.0]


def test_strategy_toggle_hides_strategy_lines_not_the_total(qtbot):
    chart = make_chart(qtbot)
    chart.on_pnl_changed(PnLChanged(None, 0.0, 1.0, 0.0, time=T0))
    chart.on_pnl_changed(PnLChanged("trend", 0.0, 1.0, 0.0, time=T0))
    chart.show_strategies.setChecked(False)
    assert not chart.series("trend").isVisible()
    assert chart.series(TOTAL).isVisible()
    assert not chart.series(TOTAL, "realized").isVisible()
    chart.show_breakdown.setChecked(True)
    assert chart.series(TOTAL, "realized").isVisible()


def test_crosshair_reads_values_at_the_time(qtbot):
    chart = make_chart(qtbot)
    for i, v in enumerate((10.0, 20.0, 30.0)):
        chart.on_pnl_changed(PnLChanged(None, 0.0, v, 0.0, time=T0 + timedelta(seconds=i)))
    chart.flush()
    chart.show_crosshair_at((T0 + timedelta(seconds=1, milliseconds=500)).timestamp(), 20.0)
    assert chart.v_line.isVisible()
    assert "+20.00" in chart.readout.text()
    assert "+30.00" in chart.headline.text()  # the headline stays on the latest total


# ----- narrow dock: time axis, minimum span, legend, readout, crosshair, unit ------------
DOCK = (440, 450)


def shown_chart(qtbot, size: tuple[int, int] = DOCK) -> PnLChart:
    chart = make_chart(qtbot)
    chart.resize(*size)
    chart.show()
    qtbot.waitExposed(chart)
    return chart


def settle() -> None:
    for _ in range(3):
        QApplication.processEvents()


def seconds_of_pnl(chart: PnLChart, n: int, strategies: tuple[str, ...] = ()) -> None:
    for i in range(n):
        t = T0 + timedelta(seconds=i)
        chart.on_pnl_changed(PnLChanged(None, 0.0, float(i), -1.0, time=t))
        for s in strategies:
            chart.on_pnl_changed(PnLChanged(s, 0.0, float(-i), 1.0, time=t))
    chart.flush()
    settle()


def drawn_tick_texts(axis) -> list[str]:
    """The tick labels the axis paints for its current range."""
    image = QImage(8, 8, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _axis, _ticks, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [text for _rect, _flags, text in texts]


def clock_labels(x0: float, x1: float) -> set[str]:
    """Every local HH:MM and HH:MM:SS between two epoch times."""
    stamps = [datetime.fromtimestamp(t) for t in range(int(x0), int(x1) + 2)]
    return {f"{s:%H:%M:%S}" for s in stamps} | {f"{s:%H:%M}" for s in stamps}


def readout_rows(chart: PnLChart) -> list[str]:
    doc = QTextDocument()
    doc.setHtml(chart.readout.text())
    return [r for r in re.split("[\n\u2028]", doc.toPlainText()) if r]


def test_fresh_session_opens_on_the_minimum_span_ending_at_its_data(qtbot):
    chart = shown_chart(qtbot)
    seconds_of_pnl(chart, 3)
    (x0, x1), _ = chart.plot.getViewBox().viewRange()
    assert x1 - x0 >= MIN_SPAN_S
    # the axis ends with the data (within the view's padding): no minutes of future
    # ahead of the session, which read as a chart that stopped
    last = T0.timestamp() + 2
    assert last <= x1 <= last + 0.1 * (x1 - x0)


def test_looking_back_stops_following_and_follow_live_resumes(qtbot):
    chart = shown_chart(qtbot)
    seconds_of_pnl(chart, 3)
    vb = chart.plot.getViewBox()
    start = T0.timestamp()
    vb.setXRange(start - 3_600, start - 3_000)  # a person drags back an hour
    settle()
    assert vb.viewRange()[0][1] < start

    chart.follow_live()
    settle()

    (x0, x1), _ = vb.viewRange()
    assert x0 <= start + 2 <= x1  # the session's points are back in view


def test_full_day_then_whole_day_in_view(qtbot):
    chart = shown_chart(qtbot)
    n = 86_400
    times = pd.date_range(T0, periods=n, freq="1s")
    chart.load_history(pd.DataFrame({"time": times, "realized": 0.0, "unrealized": 1.0}))
    settle()
    (x0, x1), _ = chart.plot.getViewBox().viewRange()
    assert x0 <= T0.timestamp() and x1 >= T0.timestamp() + n - 1


def test_short_session_time_axis_shows_clock_times(qtbot):
    chart = shown_chart(qtbot)
    seconds_of_pnl(chart, 3)
    axis = chart.plot.getAxis("bottom")
    texts = drawn_tick_texts(axis)
    assert len(texts) >= 2
    assert all(re.fullmatch(r"\d\d:\d\d(:\d\d)?", t) for t in texts), texts
    assert set(texts) <= clock_labels(*axis.range)


def test_zoomed_in_to_seconds_then_axis_still_clock_times_and_zoom_stops(qtbot):
    chart = shown_chart(qtbot)
    seconds_of_pnl(chart, 120)
    t0 = T0.timestamp()
    chart.plot.setXRange(t0 + 10, t0 + 13, padding=0)  # what a few wheel clicks ask for
    settle()
    (x0, x1), _ = chart.plot.getViewBox().viewRange()
    assert x1 - x0 == pytest.approx(MIN_ZOOM_S)
    axis = chart.plot.getAxis("bottom")
    texts = drawn_tick_texts(axis)
    assert len(texts) >= 2
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in texts), texts
    assert set(texts) <= clock_labels(x0, x1)


def test_legend_lists_only_lines_the_check_boxes_show(qtbot):
    chart = make_chart(qtbot)
    seconds_of_pnl(chart, 2, strategies=("trend", "meanrev"))
    assert [label for label, _ in chart.legend_entries()] == ["Total", "trend", "meanrev"]
    assert "realized" not in chart.legend.text()
    chart.show_breakdown.setChecked(True)
    assert [label for label, _ in chart.legend_entries()] == [
        "Total",
        "Total realized",
        "Total unrealized",
        "trend",
        "meanrev",
    ]
    chart.show_strategies.setChecked(False)
    chart.show_breakdown.setChecked(False)
    assert chart.legend_entries() == [("Total", True)]
    assert "trend" not in chart.legend.text()


def test_legend_click_hides_line_keeps_entry_and_click_shows_it_again(qtbot):
    chart = make_chart(qtbot)
    seconds_of_pnl(chart, 2, strategies=("trend",))

    def click(label: str) -> None:
        href = str([entry for entry, _ in chart.legend_entries()].index(label))
        assert f"href='{href}'" in chart.legend.text()
        chart.legend.linkActivated.emit(href)

    click("trend")
    assert not chart.series("trend").isVisible()
    assert ("trend", False) in chart.legend_entries()  # still listed, to click back on
    chart.show_breakdown.setChecked(True)  # the check boxes do not undo the click
    assert not chart.series("trend").isVisible()
    click("trend")
    assert chart.series("trend").isVisible()


def test_legend_sits_below_the_plot_not_on_it(qtbot):
    chart = shown_chart(qtbot)
    seconds_of_pnl(chart, 2, strategies=("trend", "meanrev", "manual"))
    plot = chart.plot_widget.geometry()
    legend = chart.legend.geometry()
    assert legend.top() >= plot.bottom()
    assert legend.bottom() <= chart.rect().bottom()


def test_narrow_dock_readout_wraps_into_aligned_rows_without_clipping(qtbot):
    strategies = ("trend", "meanrev", "manual", "pairs", "an_unusually_long_strategy")
    chart = shown_chart(qtbot)
    seconds_of_pnl(chart, 3, strategies=strategies)
    assert chart.minimumSizeHint().width() <= DOCK[0]
    assert chart.readout.sizeHint().width() <= chart.readout.contentsRect().width()
    rows = readout_rows(chart)
    assert len(rows) > 1
    # monospace cells of one width: every full row is as long as the first
    assert {len(r) for r in rows[:-1]} == {len(rows[0])}
    text = "\n".join(rows)
    for name in strategies[:-1]:
        assert f"■ {name}" in text
    assert "■ an_unusuall…" in text  # elided, not cut mid-cell
    # the rows do not jump when the crosshair comes and goes, also before the first point
    for t in (T0.timestamp() + 1.5, T0.timestamp() - 60):
        chart.show_crosshair_at(t, 0.0)
        hovered = readout_rows(chart)
        assert [len(r) for r in hovered] == [len(r) for r in rows]
        assert hovered[0].startswith("at ")


def test_crosshair_label_stays_inside_the_plot(qtbot):
    chart = shown_chart(qtbot)
    seconds_of_pnl(chart, 600)
    vb = chart.plot.getViewBox()
    (x0, x1), (y0, y1) = vb.viewRange()
    for fx in (0.02, 0.5, 0.65, 0.98):
        for fy in (0.02, 0.5, 0.98):
            chart.show_crosshair_at(x0 + fx * (x1 - x0), y0 + fy * (y1 - y0))
            settle()
            assert vb.viewRange()[0] == [x0, x1]
            inside = vb.sceneBoundingRect()
            label = chart.cursor_label.sceneBoundingRect()
            assert inside.contains(label), (fx, fy, label, inside)


def test_headline_stays_live_while_hovering(qtbot):
    chart = make_chart(qtbot)
    seconds_of_pnl(chart, 3)
    chart.show_crosshair_at(T0.timestamp() + 0.5, 0.0)
    chart.on_pnl_changed(PnLChanged(None, 0.0, 500.0, 0.0, time=T0 + timedelta(seconds=10)))
    chart.flush()
    assert "+500.00" in chart.headline.text()
    assert "+500.00" not in chart.readout.text()  # the readout stays at the hovered time


def test_value_axis_labelled_with_currency(qtbot):
    chart = make_chart(qtbot)
    axis = chart.plot.getAxis("left")
    assert axis.label.isVisible()
    assert "USD" in axis.labelString()
    chart.set_currency("EUR")
    assert "EUR" in axis.labelString()
    assert "USD" not in axis.labelString()


def test_title_does_not_blink_as_the_headline_grows(qtbot):
    chart = shown_chart(qtbot)
    shown_at = {}
    for i, v in enumerate((1.0, -10_000.0)):
        chart.append(TOTAL, "total", T0 + timedelta(seconds=i), v)
        chart.flush()
        widths = range(360, 720, 8)
        for w in widths:
            chart.resize(w, 450)
            settle()
            shown_at.setdefault(v, []).append(chart.title.isVisible())
    assert shown_at[1.0] == shown_at[-10_000.0]
    assert True in shown_at[1.0] and False in shown_at[1.0]  # the range spans the switch


def test_start_day_then_earlier_points_dropped_and_new_ones_appended(qtbot):
    chart = make_chart(qtbot)
    for i in range(10):
        chart.on_pnl_changed(PnLChanged("trend", 0.0, float(i), 0.0, time=T0 + timedelta(hours=i)))
    chart.flush()

    chart.start_day(T0 + timedelta(hours=6))
    chart.on_pnl_changed(PnLChanged("trend", 0.0, 50.0, 0.0, time=T0 + timedelta(hours=11)))
    chart.flush()

    x, y = chart.series("trend").getOriginalDataset()
    assert list(y) == [6.0, 7.0, 8.0, 9.0, 50.0]
    assert x[0] == (T0 + timedelta(hours=6)).timestamp()
    assert chart.latest("trend") == 50.0


def test_dropped_chart_freed_at_once_not_left_to_the_cyclic_gc(qtbot):
    # A reference cycle through the chart (a callback from its data back to it) left it
    # to the cyclic GC, which deleted it in the middle of Qt's events: a segfault.
    chart = PnLChart()
    chart.on_pnl_changed(PnLChanged("trend", 0.0, 1.0, 0.0, time=T0))
    chart.load_history(pd.DataFrame({"time": [T0], "realized": [1.0], "unrealized": [0.0]}))
    chart.flush()
    ref = weakref.ref(chart)
    gc.disable()
    try:
        del chart
        assert ref() is None
    finally:
        gc.enable()
