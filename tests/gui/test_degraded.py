"""Degraded states are visible and recover (issue 11, point 4).

No gateway at start, the emergency stop with no connection, and closing with working
orders: each with the real window, a real session and, where one is needed, the
simulated gateway started on the port the console keeps trying.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from core.events import TradingState
from core.orders import create_limit_order
from core.session import ConsoleSession, SessionOptions
from core.sim import SimGateway
from gui.mainwindow import MainWindow
from gui.theme import apply_theme
from helpers import act, run_until, tradable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_window(options: SessionOptions, tmp_path: Path, qtbot: Any) -> MainWindow:
    layout = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    window = MainWindow(options, settings=layout)
    qtbot.addWidget(window)
    window.show()
    return window


@pytest.fixture
def offline(
    qloop: qasync.QEventLoop, qapp: QApplication, qtbot: Any, tmp_path: Path, ib_log_guard: Any
) -> Iterator[tuple[ConsoleSession, MainWindow, int]]:
    """A window whose session found no gateway at start (it keeps trying)."""
    ib_log_guard.expect(r"API connection failed")
    ib_log_guard.expect(r"Make sure API port")
    apply_theme(qapp)
    port = free_port()
    store = f"lmdb://{tmp_path / 'arctic'}"
    # A previous run left the account HALTED: saved in the store, not at the gateway.
    first = qloop.run_until_complete(
        ConsoleSession.prepare(SessionOptions(port=port), store_uri=store)
    )
    first.risk.set_trading_state("account", TradingState.HALTED, "left halted", by="gui")
    qloop.run_until_complete(first.risk.flush_state())
    qloop.run_until_complete(first.stop())

    options = SessionOptions(port=port, connect_timeout=2.0)
    window = make_window(options, tmp_path, qtbot)
    # the window is up before the session is built; it binds to the prepared session
    session = qloop.run_until_complete(ConsoleSession.prepare(options, store_uri=store))
    act(qloop, lambda: window.bind(session))
    connected = qloop.run_until_complete(session.connect(keep_trying=True))
    assert connected is False
    try:
        yield session, window, port
    finally:
        qloop.run_until_complete(session.stop())


def test_no_gateway_at_start_then_retries_shows_state_and_recovers(offline, qloop, tmp_path):
    session, window, port = offline
    # the persisted state, before any connection
    assert window.risk_panel.trading_state() is TradingState.HALTED
    assert window.halted_banner.isVisible()
    assert window.ticket.state_label.text().startswith("HALTED")
    # retrying, with the attempt and the next try on screen
    run_until(
        qloop,
        lambda: "attempt" in window.connection_indicator.text(),
        what="the attempt count in the status bar",
    )
    assert "not connected" in window.connection_indicator.text()
    assert "not connected" in window.ticket.description.text()
    assert "cannot be looked up" in window.ticket.description.text()

    gateway = SimGateway("127.0.0.1", port, state_path=tmp_path / "sim.json")
    qloop.run_until_complete(gateway.start())
    try:
        run_until(
            qloop,
            lambda: window.connection_indicator.text() == "● connected",
            timeout=20,
            what="the retry to connect once the gateway listens",
        )
        assert window.ticket.offline_reason == ""
        assert window.ticket.description.text() == ""
    finally:
        qloop.run_until_complete(session.stop())
        qloop.run_until_complete(gateway.stop())


def test_stop_pressed_with_no_gateway_halts_at_once_and_says_it_could_not_finish(offline, qloop):
    session, window, _port = offline
    session.emergency.reconnect_timeout = 1.5  # the bound, shortened for the test
    session.risk.reset_halt(by="gui", confirmation="RESUME")
    assert not window.halted_banner.isVisible()

    assert window.controller is not None
    act(qloop, window.controller.emergency_stop)

    # at once, before any round trip
    assert window.halted_banner.isVisible()
    assert window.risk_panel.trading_state() is TradingState.HALTED
    assert window.ticket.state_label.text().startswith("HALTED")
    run_until(
        qloop,
        lambda: "waiting for the connection" in window.statusBar().currentMessage(),
        what="what the stop waits for",
    )
    controller = window.controller
    run_until(qloop, lambda: controller.stop_result, timeout=10, what="the stop's end")
    box = controller.last_stop_box
    assert box is not None
    assert box.isVisible()
    assert box.windowTitle() == "Emergency stop incomplete"
    assert "could NOT finish" in box.text()
    assert "no reconnect within 1.5s" in box.informativeText()
    assert "INCOMPLETE" in window.statusBar().currentMessage()


# -- closing with working orders --------------------------------------------------------------


@pytest.fixture
def trading(
    qloop: qasync.QEventLoop, qapp: QApplication, qtbot: Any, tmp_path: Path, ib_log_guard: Any
) -> Iterator[tuple[ConsoleSession, MainWindow]]:
    """A connected window with one limit order resting at the simulated gateway."""
    ib_log_guard.expect(r"Error 202, reqId \d+: Order Canceled")
    apply_theme(qapp)
    options = SessionOptions(sim_state_file=tmp_path / "sim.json", sim_tick_interval=0.05)
    window = make_window(options, tmp_path, qtbot)
    session = qloop.run_until_complete(ConsoleSession.start(options))
    act(qloop, lambda: window.bind(session))
    gw, trades = session.gateway, session.trades
    assert gw is not None
    bid = gw.market.quote(gw.universe.find(symbol="AAPL")[0].con_id).bid
    trades.place_order(
        qloop.run_until_complete(tradable(session, "AAPL")),
        create_limit_order("BUY", 10, round(bid * 0.97, 2)),
        "manual",
        actor="gui",
    )
    run_until(qloop, lambda: session.working_orders_at_ib() == 1, what="one working order")
    try:
        yield session, window
    finally:
        qloop.run_until_complete(session.stop())


def test_close_with_working_orders_asks_and_can_stay(trading, qloop):
    _session, window = trading
    asked: list[int] = []

    def answer(n: int) -> str:
        asked.append(n)
        return "stay"

    assert window.controller is not None
    window.controller.ask_close_with_working_orders = answer  # type: ignore[method-assign]
    act(qloop, window.close_by_user)

    assert asked == [1]
    assert window.isVisible()


def test_close_with_working_orders_can_cancel_them_first(trading, qloop, qapp):
    session, window = trading
    # as in the app (main.py): closing the window must not end the loop by itself
    quit_on_close = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)
    try:
        cancel_then_close(session, window, qloop)
    finally:
        qapp.setQuitOnLastWindowClosed(quit_on_close)


def cancel_then_close(session: ConsoleSession, window: MainWindow, qloop: Any) -> None:
    assert window.controller is not None
    window.controller.ask_close_with_working_orders = lambda n: "cancel"  # type: ignore[method-assign]
    closed: list[bool] = []
    window.closing.connect(lambda: closed.append(True))

    act(qloop, window.close_by_user)
    run_until(qloop, lambda: closed, what="the window to close after the cancels")

    assert session.gateway is not None
    assert session.gateway.engine.open_orders() == []
