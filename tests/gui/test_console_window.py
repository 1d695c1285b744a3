"""The whole console window on the embedded simulated gateway, driven as a person would.

pytest-qt has no qasync fixture: ``qloop`` (tests/gui/conftest.py) makes one, and
``act``/``run_until`` (tests/helpers.py) drive it. Each test starts a real
ConsoleSession (embedded gateway, real ib_async client, temporary store) and the main
window, types and clicks, and runs the loop until what a trader would see is there.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import qasync
from ib_async import Contract, Position
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication

from core.connection import ConnectionState
from core.contracts import create_stock_contract
from core.orders import create_market_order
from core.session import ConsoleSession, SessionOptions
from gui.mainwindow import MainWindow
from gui.theme import apply_theme
from gui.widgets.pnl_chart import TOTAL
from helpers import act, clock_from, run_until
from tests.gui.conftest import open_console


@pytest.fixture
def console(
    qloop: qasync.QEventLoop, qapp: QApplication, qtbot: Any, tmp_path: Path
) -> Iterator[tuple[ConsoleSession, MainWindow]]:
    """A started session on its own simulated gateway and the window bound to it."""
    options = SessionOptions(
        sim_state_file=tmp_path / "sim.json",
        sim_tick_interval=0.05,
        store_uri=f"lmdb://{tmp_path / 'arctic'}",
    )
    with open_console(qloop, qtbot, tmp_path, options) as console:
        yield console


def test_order_typed_into_ticket_fills_and_shows_everywhere(console, qloop, qtbot):
    session, window = console
    ticket = window.ticket

    act(qloop, lambda: qtbot.keyClicks(ticket.symbol_edit, "AAPL"))
    act(qloop, lambda: qtbot.keyClick(ticket.symbol_edit, Qt.Key.Key_Return))
    run_until(qloop, lambda: ticket.info is not None, what="AAPL resolved")
    run_until(qloop, lambda: ticket.ask_button.price is not None, what="a live ask")
    act(qloop, lambda: ticket.order_type.setCurrentText("MKT"))
    act(qloop, lambda: ticket.quantity.setValue(50))
    assert ticket.send_button.isEnabled(), ticket.problems.text()
    act(qloop, lambda: qtbot.mouseClick(ticket.send_button, Qt.MouseButton.LeftButton))

    run_until(qloop, lambda: window.fills_model.rowCount() == 1, what="the fill in the fills view")
    run_until(
        qloop,
        lambda: any(
            r.get("symbol") == "AAPL" and r.get("quantity") == 50
            for r in window.positions_model.rows()
        ),
        what="AAPL +50 in the positions grid",
    )
    run_until(qloop, lambda: window.pnl_chart.names(), what="a P&L line")
    assert session.gateway is not None
    assert [p.quantity for p in session.gateway.engine.positions()] == [50]


def test_invalid_ticket_input_is_flagged_and_send_disabled(console, qloop, qtbot):
    _session, window = console
    ticket = window.ticket
    act(qloop, lambda: qtbot.keyClicks(ticket.symbol_edit, "AAPL"))
    act(qloop, lambda: qtbot.keyClick(ticket.symbol_edit, Qt.Key.Key_Return))
    run_until(qloop, lambda: ticket.info is not None, what="AAPL resolved")

    act(qloop, lambda: ticket.order_type.setCurrentText("LMT"))
    act(qloop, lambda: ticket.limit_price.setValue(0))
    act(qloop, lambda: ticket.quantity.setValue(0))

    assert not ticket.send_button.isEnabled()
    assert ticket.quantity.property("invalid") is True
    assert ticket.limit_price.property("invalid") is True
    assert "quantity" in ticket.problems.text().lower()


def test_unknown_symbol_says_so_in_the_ticket(console, qloop, qtbot, ib_log_guard):
    ib_log_guard.expect(r"Error 200, reqId \d+: No security definition")
    _session, window = console
    ticket = window.ticket
    act(qloop, lambda: qtbot.keyClicks(ticket.symbol_edit, "ZZZZZ"))
    act(qloop, lambda: qtbot.keyClick(ticket.symbol_edit, Qt.Key.Key_Return))
    run_until(
        qloop, lambda: "unknown contract" in ticket.description.text(), what="an error in place"
    )
    assert ticket.info is None
    assert not ticket.send_button.isEnabled()


def test_readonly_mode_disables_order_controls(qloop, qapp, qtbot, tmp_path):
    options = SessionOptions(sim_state_file=tmp_path / "sim.json", readonly=True)
    window = MainWindow(
        options, settings=QSettings(str(tmp_path / "l.ini"), QSettings.Format.IniFormat)
    )
    qtbot.addWidget(window)

    assert not window.ticket.send_button.isEnabled()
    assert not window.ticket.buy_button.isEnabled()
    assert not window.buy_action.isEnabled()
    assert "read-only" in window.windowTitle()


def test_positions_grouping_is_remembered_for_the_next_start(qloop, qapp, qtbot, tmp_path):
    settings_file = str(tmp_path / "l.ini")
    options = SessionOptions(sim_state_file=tmp_path / "sim.json")
    first = MainWindow(options, settings=QSettings(settings_file, QSettings.Format.IniFormat))
    qtbot.addWidget(first)
    assert not first.positions_view.is_grouped()
    first.positions_view.group_by_strategy.click()
    first.save_layout()

    second = MainWindow(options, settings=QSettings(settings_file, QSettings.Format.IniFormat))
    qtbot.addWidget(second)

    assert second.positions_view.is_grouped()
    assert second.positions_view.group_by_strategy.isChecked()


def test_window_fits_a_1366_by_768_laptop_screen(qapp, qtbot, tmp_path):
    apply_theme(qapp)
    window = MainWindow(
        SessionOptions(sim_state_file=tmp_path / "sim.json"),
        settings=QSettings(str(tmp_path / "l.ini"), QSettings.Format.IniFormat),
    )
    qtbot.addWidget(window)
    window.show()

    window.resize(1366, 728)  # the screen less a task bar

    # a minimum size beyond the screen would keep the window larger than asked
    assert (window.width(), window.height()) == (1366, 728)


def test_lost_connection_shows_in_status_bar_then_recovers(console, qloop, ib_log_guard):
    ib_log_guard.expect(r"Peer closed connection|Connection reset by peer")
    session, window = console
    assert session.gateway is not None
    session.connection.policy = type(session.connection.policy)(initial_delay=0.2, max_delay=0.5)
    seen: list[str] = []
    session.connection.statusChanged += lambda s: seen.append(window.connection_indicator.text())

    qloop.run_until_complete(session.gateway.drop_connections())

    run_until(qloop, lambda: any("disconnected" in t for t in seen), what="disconnected shown")
    run_until(
        qloop,
        lambda: (
            session.connection.state is ConnectionState.CONNECTED
            and "connected" in window.connection_indicator.text()
        ),
        what="reconnected shown",
    )
    assert window.connection_indicator.text() == "● connected"


def test_break_resolved_from_the_grid_goes_to_external_and_loses_its_mark(console, qloop):
    session, window = console
    ib = session.connection.ib
    msft = qloop.run_until_complete(
        session.contracts.qualify(
            Contract(symbol="MSFT", secType="STK", exchange="SMART", currency="USD")
        )
    )
    # IB reports 25 MSFT the console never saw an execution for (bought in TWS, say).
    account = session.portfolio.account
    ib.wrapper.positions[account][msft.conId] = Position(account, msft, 25.0, 410.0)
    [brk] = qloop.run_until_complete(session.portfolio.reconciliation.reconcile(confirm=0))
    run_until(qloop, lambda: msft.conId in window.positions_model.breaks(), what="BREAK shown")

    assert window.controller is not None
    qloop.run_until_complete(window.controller.resolve(brk))

    def resolved() -> bool:
        row = window.positions_model.row(("external", msft.conId))
        return (
            msft.conId not in window.positions_model.breaks()
            and row is not None
            and row["quantity"] == 25
        )

    run_until(qloop, resolved, what="the difference in external and the BREAK mark gone")
    assert session.portfolio.reconciliation.find_breaks() == []
    assert "resolve_break" in [r.action for r in session.audit.records]


def test_trading_day_boundary_then_grids_and_chart_start_the_new_day(qloop, qapp, qtbot, tmp_path):
    # The day ends an hour from now on a clock the test moves (the day's and the
    # gateway's): a boundary passed when the test says, no restart.
    clock = clock_from(datetime.now(UTC))
    boundary = (clock() + timedelta(hours=1)).replace(microsecond=0)
    options = SessionOptions(
        sim_state_file=tmp_path / "sim.json",
        sim_tick_interval=0.05,
        day_tz="UTC",
        day_start=boundary.time(),
        clock=clock,
    )
    window = MainWindow(
        options, settings=QSettings(str(tmp_path / "l.ini"), QSettings.Format.IniFormat)
    )
    qtbot.addWidget(window)
    store = f"lmdb://{tmp_path / 'arctic'}"
    session = qloop.run_until_complete(ConsoleSession.start(options, store_uri=store))
    try:
        act(qloop, lambda: window.bind(session))

        async def buy() -> None:
            contract = await session.contracts.qualify(create_stock_contract("AAPL"))
            session.trades.place_order(contract, create_market_order("BUY", 10), "manual")

        qloop.run_until_complete(buy())
        run_until(qloop, lambda: window.fills_model.rowCount() == 1, what="the day's fill")
        run_until(qloop, lambda: window.pnl_chart.point_count(TOTAL) > 0, what="P&L points")
        x, _ = window.pnl_chart.series(TOTAL).getOriginalDataset()
        assert x is not None
        yesterdays_last = float(x.max())

        # The boundary passes; the day's timer looks at the clock (what its callback does).
        clock.advance(seconds=(boundary - clock()).total_seconds() + 0.5)
        act(qloop, session.trading_day.check)

        assert session.trading_day.start == boundary
        run_until(qloop, lambda: window.fills_model.rowCount() == 0, what="fills grid emptied")
        x, _ = window.pnl_chart.series(TOTAL).getOriginalDataset()
        assert x is None or len(x) == 0 or x.min() > yesterdays_last  # the day's points went
        qloop.run_until_complete(buy())
        run_until(qloop, lambda: window.fills_model.rowCount() == 1, what="the new day's fill")
    finally:
        qloop.run_until_complete(session.stop())
