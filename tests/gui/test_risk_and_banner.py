"""Risk panel colours and state; the HALTED banner."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.events import LimitUtilizationChanged, TradingState, TradingStateChanged
from gui import theme
from gui.models.formatting import fmt_time
from gui.widgets.halted_banner import HaltedBanner
from gui.widgets.risk_panel import RiskPanel


def make_panel(qtbot, confirm=lambda q: True) -> RiskPanel:
    panel = RiskPanel(confirm=confirm)
    qtbot.addWidget(panel)
    return panel


@pytest.mark.parametrize(
    ("value", "band"),
    [
        (0.0, "ok"),
        (69.9, "ok"),
        (70.0, "warn"),
        (89.9, "warn"),
        (90.0, "breach"),
        (150.0, "breach"),
    ],
)
def test_limit_utilization_then_bar_coloured_by_band(qtbot, value, band):
    panel = make_panel(qtbot)
    panel.on_limit_utilization_changed(
        LimitUtilizationChanged("account", "daily_loss", value, 100.0)
    )
    assert panel.limit_band("account", "daily_loss") == band
    bar = panel.limit_bar("account", "daily_loss")
    assert bar.property("band") == band
    assert theme.utilization_colour(value / 100.0).name() == theme.BAND_COLOURS[band]


def test_limit_update_then_same_bar_updated_and_recoloured(qtbot):
    panel = make_panel(qtbot)
    event = LimitUtilizationChanged("account", "max_gross_exposure", 100_000.0, 1_000_000.0)
    panel.on_limit_utilization_changed(event)
    bar = panel.limit_bar("account", "max_gross_exposure")
    panel.on_limit_utilization_changed(
        LimitUtilizationChanged("account", "max_gross_exposure", 950_000.0, 1_000_000.0)
    )
    assert panel.limit_bar("account", "max_gross_exposure") is bar
    assert bar.value() == 950
    assert panel.limit_band("account", "max_gross_exposure") == "breach"


def test_over_limit_then_bar_full_and_percent_above_100(qtbot):
    panel = make_panel(qtbot)
    panel.on_limit_utilization_changed(LimitUtilizationChanged("account", "daily_loss", 12.0, 10.0))
    assert panel.limit_bar("account", "daily_loss").value() == 1000
    assert panel._limits[("account", "daily_loss")].percent.text() == "120%"


def test_zero_limit_then_zero_utilization_not_an_error(qtbot):
    panel = make_panel(qtbot)
    panel.on_limit_utilization_changed(LimitUtilizationChanged("account", "x", 5.0, 0.0))
    assert panel.limit_band("account", "x") == "ok"


@pytest.mark.parametrize("state", list(TradingState))
def test_trading_state_then_badge_shows_it(qtbot, state):
    panel = make_panel(qtbot)
    panel.on_trading_state_changed(
        TradingStateChanged("account", state, TradingState.ACTIVE, "why", "risk")
    )
    assert panel.badge.text() == state.value
    assert panel.badge.property("state") == state.value
    assert panel.trading_state() is state


def test_strategy_state_then_chip_not_badge(qtbot):
    panel = make_panel(qtbot)
    panel.on_trading_state_changed(
        TradingStateChanged("trend", TradingState.REDUCING, TradingState.ACTIVE, "loss", "risk")
    )
    assert panel.badge.text() == "UNKNOWN"
    assert panel._chips["trend"].text() == "trend: REDUCING"


def test_reduce_button_when_confirmed_then_state_requested(qtbot, signal_log):
    panel = make_panel(qtbot)
    panel.on_trading_state_changed(
        TradingStateChanged("account", TradingState.ACTIVE, TradingState.ACTIVE, "", "gui")
    )
    requests = signal_log(panel.tradingStateRequested)
    panel.reduce_button.click()
    assert requests.calls == [("account", "REDUCING")]


def test_reduce_button_when_declined_then_nothing_requested(qtbot, signal_log):
    panel = make_panel(qtbot, confirm=lambda q: False)
    panel.on_trading_state_changed(
        TradingStateChanged("account", TradingState.ACTIVE, TradingState.ACTIVE, "", "gui")
    )
    requests = signal_log(panel.tradingStateRequested)
    panel.reduce_button.click()
    assert len(requests) == 0


def test_halted_then_state_buttons_disabled(qtbot):
    panel = make_panel(qtbot)
    panel.on_trading_state_changed(
        TradingStateChanged("account", TradingState.HALTED, TradingState.ACTIVE, "stop", "gui")
    )
    assert not panel.reduce_button.isEnabled()
    assert not panel.resume_button.isEnabled()


def test_halted_banner_shown_on_halt_and_hidden_on_reset(qtbot, signal_log):
    banner = HaltedBanner()
    qtbot.addWidget(banner)
    assert banner.isHidden()
    banner.on_trading_state_changed(
        TradingStateChanged(
            "account", TradingState.HALTED, TradingState.ACTIVE, "emergency stop", "gui"
        )
    )
    assert not banner.isHidden()
    assert "emergency stop" in banner.detail_label.text()
    resets = signal_log(banner.resetRequested)
    banner.reset_button.click()
    assert len(resets) == 1
    banner.on_trading_state_changed(
        TradingStateChanged("account", TradingState.ACTIVE, TradingState.HALTED, "reset", "gui")
    )
    assert banner.isHidden()


def test_halted_banner_ignores_strategy_scopes(qtbot):
    banner = HaltedBanner()
    qtbot.addWidget(banner)
    banner.on_trading_state_changed(
        TradingStateChanged("trend", TradingState.HALTED, TradingState.ACTIVE, "x", "risk")
    )
    assert banner.isHidden()


def test_trading_state_line_says_since_when_and_by_whom(qtbot):
    panel = make_panel(qtbot)
    halted_at = datetime(2026, 11, 25, 18, 14, 0, tzinfo=UTC)
    panel.on_trading_state_changed(
        TradingStateChanged(
            "account", TradingState.HALTED, TradingState.ACTIVE, "emergency stop", "gui", halted_at
        )
    )
    assert panel.reason_label.text() == (f"emergency stop · since {fmt_time(halted_at)} · by gui")
