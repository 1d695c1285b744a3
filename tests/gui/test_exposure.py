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


def test_exposures_are_added_in_the_base_currency_never_across_currencies(qtbot):
    from gui.widgets.risk_panel import exposures_by_strategy

    rows = [
        {"strategy": "a", "quantity": 100, "market_value": 20_000.0, "currency": "EUR"},
        {"strategy": "a", "quantity": -10, "market_value": -1_500_000.0, "currency": "JPY"},
        {"strategy": "a", "quantity": 5, "market_value": 1_000.0, "currency": "USD"},
        {"strategy": "b", "quantity": 1, "market_value": 500.0, "currency": "CHF"},
    ]
    rates = {"USD": 1.0, "EUR": 1.08, "JPY": 1 / 150}

    def to_base(amount: float, currency: str) -> tuple[float, str] | None:
        rate = rates.get(currency)
        return None if rate is None else (amount * rate, "USD")

    exposures, unconverted = exposures_by_strategy(rows, to_base)
    gross, net = exposures["a"]
    assert round(gross) == 21_600 + 10_000 + 1_000  # not 1,521,000
    assert round(net) == 21_600 - 10_000 + 1_000
    assert "b" not in exposures and unconverted == {"CHF"}  # no rate: left out, and said

    panel = RiskPanel(confirm=lambda _q: True)
    qtbot.addWidget(panel)
    panel.set_exposures(exposures, unconverted)
    text = panel.exposure_label.text()
    assert "32,600" in text and "CHF not counted: no exchange rate" in text
