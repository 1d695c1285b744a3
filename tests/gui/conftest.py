"""Helpers for GUI tests (pytest-qt, offscreen; QT_QPA_PLATFORM is set in tests/conftest.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from core.config import Settings
from core.events import FillRecorded, OrderUpdated, PositionChanged
from core.session import ConsoleSession, SessionOptions

if TYPE_CHECKING:
    from gui.mainwindow import MainWindow

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def make_position(**kw: object) -> PositionChanged:
    """A PositionChanged with sensible defaults; keyword arguments override."""
    fields: dict[str, object] = dict(
        strategy="trend",
        account="DU1",
        con_id=265598,
        symbol="AAPL",
        sec_type="STK",
        currency="USD",
        multiplier=1.0,
        quantity=100.0,
        avg_cost=180.0,
        last=190.0,
        market_value=19_000.0,
        unrealized_pnl=1_000.0,
        realized_pnl=0.0,
        daily_pnl=250.0,
        commissions=1.0,
        stale=False,
        time=T0,
    )
    fields.update(kw)
    return PositionChanged(**fields)  # type: ignore[arg-type]


def make_order(**kw: object) -> OrderUpdated:
    """An OrderUpdated (a working LMT buy) with defaults; keyword arguments override."""
    fields: dict[str, object] = dict(
        order_id=11,
        perm_id=5011,
        client_id=1,
        strategy="manual",
        account="DU1",
        con_id=265598,
        symbol="AAPL",
        sec_type="STK",
        action="BUY",
        quantity=100.0,
        order_type="LMT",
        limit_price=189.5,
        stop_price=None,
        tif="DAY",
        status="Submitted",
        filled=0.0,
        remaining=100.0,
        avg_fill_price=None,
        message="",
        time=T0,
    )
    fields.update(kw)
    return OrderUpdated(**fields)  # type: ignore[arg-type]


def make_fill(**kw: object) -> FillRecorded:
    """A FillRecorded with defaults; keyword arguments override."""
    fields: dict[str, object] = dict(
        exec_id="0001.01",
        order_id=11,
        perm_id=5011,
        client_id=1,
        strategy="manual",
        account="DU1",
        con_id=265598,
        symbol="AAPL",
        sec_type="STK",
        currency="USD",
        exchange="ISLAND",
        side="BOT",
        quantity=100.0,
        price=189.5,
        multiplier=1.0,
        commission=None,
        realized_pnl=None,
        order_ref="manual",
        time=T0 + timedelta(seconds=1),
    )
    fields.update(kw)
    return FillRecorded(**fields)  # type: ignore[arg-type]


class SignalLog:
    """Records every emission of a Qt signal (args as tuples)."""

    def __init__(self, signal: object) -> None:
        self.calls: list[tuple[object, ...]] = []
        signal.connect(self._record)  # type: ignore[attr-defined]

    def _record(self, *args: object) -> None:
        self.calls.append(args)

    def __len__(self) -> int:
        return len(self.calls)


@pytest.fixture(autouse=True)
def _no_leaked_windows(no_leaked_windows):  # type: ignore[no-untyped-def]
    """Every GUI test fails if it leaves a top-level widget alive (tests/conftest.py)."""


@pytest.fixture
def signal_log():
    """``signal_log(signal)`` -> a :class:`SignalLog` recording that signal."""
    return SignalLog


# -- a qasync loop for tests that run the whole console --------------------------------


@pytest.fixture
def qloop(qapp, monkeypatch):  # type: ignore[no-untyped-def]
    """An asyncio loop running inside Qt's, like the app's.

    pytest-qt processes Qt events between setup, call and teardown; with the loop marked
    running then, the asyncio callbacks those events dispatch work as in the app. The
    loop is closed afterwards: qasync resolves host names in QThreads, and a loop left
    open makes Qt abort at interpreter exit.
    """
    import asyncio

    import pytestqt.plugin

    from gui.loop import ConsoleEventLoop, process_events

    loop = ConsoleEventLoop(qapp)
    asyncio.set_event_loop(loop)
    monkeypatch.setattr(pytestqt.plugin, "_process_events", lambda: process_events(loop))
    try:
        yield loop
    finally:
        loop.close()
        asyncio.set_event_loop(None)


# -- a whole console: the window, then the session built whole and bound to it ---------


@contextlib.contextmanager
def open_console(
    qloop: Any,
    qtbot: Any,
    tmp_path: Path,
    options: SessionOptions,
    config: Settings | None = None,
) -> Iterator[tuple[ConsoleSession, MainWindow]]:
    """A console as ``gui.app`` opens one: the themed window on screen first, then the
    session started (built whole, connected) and bound to it; the session is stopped
    afterwards and qtbot closes the window. The window's layout is kept in ``tmp_path``."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from gui.mainwindow import MainWindow
    from gui.theme import apply_theme
    from helpers import act

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    apply_theme(app)
    layout = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    window = MainWindow(options, config, settings=layout)
    qtbot.addWidget(window)
    act(qloop, window.show)
    session = qloop.run_until_complete(ConsoleSession.start(options, config))
    act(qloop, lambda: window.bind(session))
    try:
        yield session, window
    finally:
        qloop.run_until_complete(session.stop())


@pytest.fixture
def desk(
    qloop: Any, qapp: Any, qtbot: Any, tmp_path: Path
) -> Iterator[tuple[ConsoleSession, MainWindow]]:
    """The window on a session started with the shipped default settings (the ticket
    confirms above 25,000; the default precautions apply)."""
    from core.config import load_settings

    settings = load_settings(env={"IBCONSOLE_HOME": str(tmp_path)})
    options = SessionOptions(sim_state_file=tmp_path / "sim.json", sim_tick_interval=0.05)
    with open_console(qloop, qtbot, tmp_path, options, settings) as console:
        yield console
