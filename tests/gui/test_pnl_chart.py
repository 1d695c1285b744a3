"""P&L chart: appends reuse items, one point per second, downsampling and history."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from core.events import PnLChanged
from gui.widgets.pnl_chart import TOTAL, PnLChart
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
