"""Exposure by strategy in the risk panel follows the positions grid."""

from __future__ import annotations

from gui.widgets.risk_panel import RiskPanel
from tests.gui.conftest import make_position


def test_exposures_listed_by_gross_with_net_sign(qtbot):
    panel = RiskPanel(confirm=lambda _q: True)
    qtbot.addWidget(panel)

    panel.set_exposures({"trend": (700_000.0, 700_000.0), "meanrev": (87_000.0, 13_000.0)})

    text = panel.exposure_label.text()
    assert text.index("trend") < text.index("meanrev")
    assert "700,000" in text and "+13,000" in text


def test_no_positions_says_so(qtbot):
    panel = RiskPanel(confirm=lambda _q: True)
    qtbot.addWidget(panel)
    panel.set_exposures({})
    assert panel.exposure_label.text() == "no positions"


def test_window_sums_grid_rows_per_strategy(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from core.session import SessionOptions
    from gui.mainwindow import MainWindow

    window = MainWindow(
        SessionOptions(),
        settings=QSettings(str(tmp_path / "l.ini"), QSettings.Format.IniFormat),
    )
    qtbot.addWidget(window)
    model = window.positions_model
    model.on_position_changed(make_position(strategy="a", con_id=1, market_value=1000.0))
    model.on_position_changed(make_position(strategy="a", con_id=2, market_value=-400.0))
    model.on_position_changed(make_position(strategy="b", con_id=1, market_value=50.0))
    model.flush()

    text = window.risk_panel.exposure_label.text()
    assert "1,400" in text and "+600" in text and "+50" in text
