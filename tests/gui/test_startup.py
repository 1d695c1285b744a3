"""``MainWindow.wait_loaded`` (used by ``--screenshot``) waits for what the window
needs, not for a fixed second (issue 11 point 10)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtCore import QSettings

from core.session import SessionOptions
from gui.mainwindow import MainWindow
from tests.gui.conftest import make_position


@pytest.fixture
def window(qloop: qasync.QEventLoop, qtbot: Any, tmp_path: Path) -> MainWindow:
    """A window bound to no session: the test feeds its models."""
    settings = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    w = MainWindow(SessionOptions(), settings=settings)
    qtbot.addWidget(w)
    return w


def test_wait_loaded_when_a_position_has_no_price_then_it_waits_and_says_what_is_missing(
    window: MainWindow, qloop: qasync.QEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    window.positions_model.on_position_changed(make_position(symbol="AAPL", last=None))

    with caplog.at_level(logging.WARNING, logger="gui.mainwindow"):
        qloop.run_until_complete(window.wait_loaded(timeout=0.2))

    assert "not fully loaded" in caplog.text and "no price yet for AAPL" in caplog.text


def test_wait_loaded_when_every_position_is_priced_then_it_returns_painted(
    window: MainWindow, qloop: qasync.QEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    window.positions_model.on_position_changed(make_position(symbol="AAPL", last=190.0))
    window.positions_model.on_position_changed(
        make_position(symbol="MSFT", con_id=272093, last=None, stale=True)  # no data: shown so
    )

    with caplog.at_level(logging.WARNING, logger="gui.mainwindow"):
        qloop.run_until_complete(window.wait_loaded(timeout=5))

    assert "not fully loaded" not in caplog.text
    assert not window.positions_model.has_pending()  # coalesced updates are on screen
    assert window.positions_model.rowCount() == 2
