"""Restart the console on the same gateway and store: the grids show what they showed.

Issue 11 point 8: after a restart EUR.USD fill prices came back as "1.08" (1.08005
before) and a working order came back with the restart as its time. Each test runs the
real window on real sessions (ib_async, ArcticDB on LMDB) against one simulated gateway
that stays up while the console restarts, as TWS does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from core.contracts import create_forex_contract
from core.orders import create_limit_order, create_market_order
from core.session import ConsoleSession, SessionOptions
from core.sim import SimGateway
from gui.mainwindow import MainWindow
from gui.models.formatting import fmt_time
from helpers import act, run_until, wait_for


@pytest.fixture
def sim(qloop: qasync.QEventLoop) -> Iterator[SimGateway]:
    """One simulated gateway for every console start of the test."""
    gateway = SimGateway("127.0.0.1", 0, seed=20261125, tick_interval=0.05)
    qloop.run_until_complete(gateway.start())
    try:
        yield gateway
    finally:
        qloop.run_until_complete(gateway.stop())


def start_console(
    qloop: qasync.QEventLoop, qtbot: Any, tmp_path: Path, port: int
) -> tuple[ConsoleSession, MainWindow]:
    """A console as the app starts it: window, session on the store, attached."""
    options = SessionOptions(port=port, store_uri=f"lmdb://{tmp_path / 'arctic'}")
    settings = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    window = MainWindow(options, settings=settings)
    qtbot.addWidget(window)
    session = qloop.run_until_complete(ConsoleSession.prepare(options))
    act(qloop, lambda: window.bind(session))
    qloop.run_until_complete(session.connect())
    return session, window


def texts(model: Any, key: str) -> list[str]:
    """Column ``key`` of every row, as the grid shows it."""
    model.flush()
    return [model.display_text(pos, model.column_of(key)) for pos in range(model.rowCount())]


def test_restart_then_fx_prices_keep_their_decimals_and_orders_their_time(
    qloop: qasync.QEventLoop, qapp: QApplication, qtbot: Any, tmp_path: Path, sim: SimGateway
) -> None:
    session, window = start_console(qloop, qtbot, tmp_path, sim.port)
    try:

        async def trade() -> tuple[float, float, Any]:
            eurusd = await session.contracts.qualify(create_forex_contract("EURUSD"))
            trades = session.trades
            # Bought and sold: no position, so nothing subscribes EUR.USD's quotes
            # after the restart (they would teach the grids its tick).
            prices = []
            for action in ("BUY", "SELL"):
                t = trades.place_order(eurusd, create_market_order(action, 20000), "manual")
                await wait_for(lambda t=t: t.fills, what=f"the {action} filled")
                prices.append(t.fills[0].execution.price)
            working = trades.place_order(
                eurusd, create_limit_order("BUY", 20000, 1.00005), "manual"
            )
            await wait_for(lambda: working.orderStatus.status == "Submitted", what="working at IB")
            await trades.wait_journalled()
            return prices[0], prices[1], working

        bought, sold, working = qloop.run_until_complete(trade())
        placed = working.log[0].time
    finally:
        qloop.run_until_complete(session.stop())
        window.close()

    session, window = start_console(qloop, qtbot, tmp_path, sim.port)
    try:
        fills, orders = window.fills_model, window.orders_model
        run_until(qloop, lambda: fills.rowCount() == 2, what="the day's fills from the journal")
        run_until(qloop, lambda: orders.rowCount() == 1, what="the working order from IB")
        assert sorted(texts(fills, "price")) == sorted([f"{bought:,.5f}", f"{sold:,.5f}"])
        assert texts(orders, "limit_price") == ["1.00005"]
        assert orders.rows()[0]["time"] == placed  # not the restart's time
        assert texts(orders, "time") == [fmt_time(placed)]
    finally:
        qloop.run_until_complete(session.stop())


def test_restart_then_an_fx_position_shows_its_decimals_before_any_quote(
    qloop: qasync.QEventLoop, qapp: QApplication, qtbot: Any, tmp_path: Path, sim: SimGateway
) -> None:
    session, window = start_console(qloop, qtbot, tmp_path, sim.port)
    try:

        async def buy() -> float:
            eurusd = await session.contracts.qualify(create_forex_contract("EURUSD"))
            t = session.trades.place_order(eurusd, create_market_order("BUY", 20000), "manual")
            await wait_for(lambda: t.fills, what="the buy filled")
            await session.trades.wait_journalled()
            return float(t.fills[0].execution.price)

        price = qloop.run_until_complete(buy())
    finally:
        qloop.run_until_complete(session.stop())
        window.close()

    # Started again, not connected: the book and the day's fills come from the journal,
    # and no quote can have arrived.
    options = SessionOptions(port=sim.port, store_uri=f"lmdb://{tmp_path / 'arctic'}")
    settings = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    window = MainWindow(options, settings=settings)
    qtbot.addWidget(window)
    session = qloop.run_until_complete(ConsoleSession.prepare(options))
    try:
        act(qloop, lambda: window.bind(session))
        assert window._history_task is not None
        qloop.run_until_complete(window._history_task)

        assert texts(window.positions_model, "avg_cost") == [f"{price:,.5f}"]
    finally:
        qloop.run_until_complete(session.stop())
