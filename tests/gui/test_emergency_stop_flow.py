"""The emergency stop in the full window, against the embedded simulated gateway.

A trader with working orders and open positions presses the big red button the way
the guard asks (two presses, or press and hold): the gateway ends with no working
order and no position, the window shows HALTED (banner and risk panel), and the
ticket refuses a new opening order, saying why. A single brief click does nothing.

``qloop`` (tests/gui/conftest.py) and ``act`` / ``run_until`` (tests/helpers.py) run
GUI actions inside the asyncio loop, as the app does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication

from core.events import TradingState
from core.orders import create_limit_order, create_market_order
from core.session import ConsoleSession, SessionOptions
from gui.mainwindow import MainWindow
from helpers import act, clock_from, next_new_york_day, run_until, settle, tradable
from tests.gui.conftest import open_console

LEFT = Qt.MouseButton.LeftButton
#: (symbol, side, quantity) of the positions built before the stop.
POSITIONS = (("AAPL", "BUY", 30), ("MSFT", "SELL", 20), ("NVDA", "BUY", 50))


@pytest.fixture
def console(
    qloop: qasync.QEventLoop, qapp: QApplication, qtbot: Any, tmp_path: Path, ib_log_guard: Any
) -> Iterator[tuple[ConsoleSession, MainWindow]]:
    """A started session on its own simulated gateway and the window bound to it."""
    ib_log_guard.expect(r"Error 202, reqId \d+: Order Canceled")
    options = SessionOptions(
        sim_state_file=tmp_path / "sim.json",
        sim_tick_interval=0.05,
        store_uri=f"lmdb://{tmp_path / 'arctic'}",
        # the stop closes at market in regular hours: the same path whenever this runs
        stop_clock=clock_from(next_new_york_day(weekend=False)),
    )
    with open_console(qloop, qtbot, tmp_path, options) as console:
        yield console


def gateway_positions(session: ConsoleSession) -> dict[str, float]:
    """Non-zero positions at the gateway, by symbol."""
    gw = session.gateway
    assert gw is not None
    out = {}
    for pos in gw.engine.positions():
        inst = gw.universe.by_con_id(pos.con_id)
        assert inst is not None
        out[inst.symbol] = pos.quantity
    return out


def build_book(session: ConsoleSession, window: MainWindow, qloop: qasync.QEventLoop) -> None:
    """Three open positions and two resting limit orders far from the market."""
    trades, gw = session.trades, session.gateway
    assert gw is not None  # the embedded simulated gateway
    contracts = {
        symbol: qloop.run_until_complete(tradable(session, symbol))
        for symbol in {p[0] for p in POSITIONS} | {"AAPL", "MSFT"}
    }
    for symbol, side, qty in POSITIONS:
        trades.place_order(contracts[symbol], create_market_order(side, qty), "manual", actor="gui")
    want = {s: (q if side == "BUY" else -q) for s, side, q in POSITIONS}
    run_until(qloop, lambda: gateway_positions(session) == want, what="positions at the gateway")
    for symbol, side, factor in (("AAPL", "BUY", 0.8), ("MSFT", "SELL", 1.25)):
        quote = gw.market.quote(gw.universe.find(symbol=symbol)[0].con_id)
        price = round((quote.bid if side == "BUY" else quote.ask) * factor, 2)
        trades.place_order(
            contracts[symbol],
            create_limit_order(side, 10, price),
            "manual",
            actor="gui",
        )
    run_until(qloop, lambda: len(gw.engine.open_orders()) == 2, what="two working orders")
    run_until(
        qloop,
        lambda: len(window.orders_model.working_order_ids()) == 2,
        what="two working orders in the orders view",
    )
    run_until(
        qloop,
        lambda: (
            sorted(r["symbol"] for r in window.positions_model.rows() if r.get("quantity"))
            == ["AAPL", "MSFT", "NVDA"]
        ),
        what="three positions in the grid",
    )


def stop_button_centre(window: MainWindow) -> QPoint:
    return window.stop_button.rect().center()


def assert_stopped_and_halted(
    session: ConsoleSession, window: MainWindow, qloop: qasync.QEventLoop
) -> None:
    """Wait for the stop to finish; the gateway is flat and order-free; HALTED shows."""
    gw = session.gateway
    assert gw is not None
    run_until(
        qloop,
        lambda: gw.engine.open_orders() == [] and gateway_positions(session) == {},
        timeout=30,
        what="no working order and no position at the gateway",
    )
    run_until(
        qloop,
        lambda: "Emergency stop done" in window.statusBar().currentMessage(),
        timeout=30,
        what="the stop's summary",
    )
    assert all(abs(p.quantity) < 1e-9 for p in gw.engine.positions())
    run_until(
        qloop,
        lambda: (
            all(not r.get("quantity") for r in window.positions_model.rows())
            and not window.orders_model.working_order_ids()
        ),
        what="the grid flat and no working order shown",
    )
    assert window.halted_banner.isVisible()
    assert window.risk_panel.trading_state() is TradingState.HALTED
    assert window.risk_panel.badge.text() == "HALTED"


def assert_ticket_refuses_opening_order(
    window: MainWindow, qloop: qasync.QEventLoop, qtbot: Any
) -> None:
    ticket = window.ticket
    act(qloop, lambda: qtbot.keyClicks(ticket.symbol_edit, "AAPL"))
    act(qloop, lambda: qtbot.keyClick(ticket.symbol_edit, Qt.Key.Key_Return))
    run_until(qloop, lambda: ticket.info is not None, what="AAPL resolved")
    run_until(qloop, lambda: ticket.ask_button.price is not None, what="a live ask")
    act(qloop, lambda: ticket.set_side("BUY"))
    act(qloop, lambda: ticket.order_type.setCurrentText("MKT"))
    act(qloop, lambda: ticket.quantity.setValue(10))
    assert not ticket.send_button.isEnabled()
    assert ticket.verdict_label.text().startswith("REFUSED")
    assert "HALTED" in ticket.verdict_label.toolTip()
    assert ticket.state_label.text().startswith("HALTED")  # said once, on its own line
    assert "HALTED" not in ticket.problems.text()
    assert "HALTED" in ticket.send_button.toolTip()


def test_two_presses_on_stop_button_then_flat_order_free_halted_and_ticket_refuses(
    console, qloop, qtbot
):
    session, window = console
    build_book(session, window, qloop)
    button = window.stop_button
    fired: list[bool] = []
    button.triggered.connect(lambda: fired.append(True))

    act(qloop, lambda: qtbot.mouseClick(button, LEFT, pos=stop_button_centre(window)))
    assert button.is_armed() and not fired  # the first press only arms
    act(qloop, lambda: qtbot.mousePress(button, LEFT, pos=stop_button_centre(window)))
    act(qloop, lambda: qtbot.mouseRelease(button, LEFT, pos=stop_button_centre(window)))

    assert fired == [True]
    assert_stopped_and_halted(session, window, qloop)
    assert_ticket_refuses_opening_order(window, qloop, qtbot)


def test_press_and_hold_on_stop_button_then_flat_order_free_and_halted(console, qloop, qtbot):
    session, window = console
    build_book(session, window, qloop)
    button = window.stop_button

    fired: list[bool] = []
    button.triggered.connect(lambda: fired.append(True))

    act(qloop, lambda: qtbot.mousePress(button, LEFT, pos=stop_button_centre(window)))
    run_until(qloop, lambda: button.hold_progress() > 0, what="the hold fill sweeping")
    run_until(qloop, lambda: fired, what="the hold to complete")  # held past the hold time
    act(qloop, lambda: qtbot.mouseRelease(button, LEFT, pos=stop_button_centre(window)))

    assert_stopped_and_halted(session, window, qloop)


def test_single_brief_click_on_stop_button_then_nothing_happens(console, qloop, qtbot):
    session, window = console
    build_book(session, window, qloop)
    gw, risk = session.gateway, session.risk
    assert gw is not None and risk is not None
    button = window.stop_button
    button.double_press_ms = 300  # let the arming lapse quickly
    fired: list[bool] = []
    button.triggered.connect(lambda: fired.append(True))
    positions_before = gateway_positions(session)

    act(qloop, lambda: qtbot.mouseClick(button, LEFT, pos=stop_button_centre(window)))
    run_until(qloop, lambda: not button.is_armed(), what="the arming to lapse")
    qloop.run_until_complete(settle(session.connection.ib))  # anything sent has landed

    assert fired == []
    assert len(gw.engine.open_orders()) == 2
    assert gateway_positions(session) == positions_before
    assert risk.state_of("account") is TradingState.ACTIVE
    assert not window.halted_banner.isVisible()
    assert window.risk_panel.trading_state() is TradingState.ACTIVE
