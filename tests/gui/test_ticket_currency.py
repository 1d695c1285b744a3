"""The ticket on an instrument priced in another currency than the account's (QA defect 5).

The shipped precautions cap a forex order at 2,500,000 in the base currency (USD):
20,000 USD.JPY is 3,000,000 JPY, but only 20,000 USD, and goes; the ticket's notional
line shows both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qasync
from fx_universe import USDJPY_CON_ID, universe_with_usdjpy
from PySide6.QtWidgets import QApplication

from core.config import load_settings
from core.session import ConsoleSession, SessionOptions
from core.sim import SimGateway
from gui.mainwindow import MainWindow
from helpers import act, run_until
from tests.gui.conftest import open_console
from tests.gui.test_safe_desk import choose, type_into


@pytest.fixture
def jpy_desk(
    qloop: qasync.QEventLoop, qapp: QApplication, qtbot: Any, tmp_path: Path
) -> Iterator[tuple[ConsoleSession, MainWindow, SimGateway]]:
    """The window with the shipped settings on a gateway that also lists USD.JPY."""
    gw = SimGateway("127.0.0.1", 0, universe=universe_with_usdjpy(), tick_interval=0.05)
    qloop.run_until_complete(gw.start())
    try:
        settings = load_settings(env={"IBCONSOLE_HOME": str(tmp_path)})
        options = SessionOptions(port=gw.port, connect_timeout=3.0)
        with open_console(qloop, qtbot, tmp_path, options, settings) as (session, window):
            yield session, window, gw
    finally:
        qloop.run_until_complete(gw.stop())


def test_usdjpy_ticket_shows_the_usd_notional_and_the_order_passes_the_usd_cap(
    jpy_desk, qloop, qtbot
):
    session, window, gw = jpy_desk
    ticket = window.ticket
    ticket.confirm_above_notional = None
    run_until(
        qloop,
        lambda: session.risk.in_base(1.0, "JPY") is not None,
        what="the gateway's JPY rate",
    )
    choose(qloop, qtbot, ticket, "USD.JPY")
    act(qloop, lambda: ticket.order_type.setCurrentText("MKT"))
    type_into(qloop, qtbot, ticket.quantity, "20000")

    jpy, usd = ticket.notional_label.text().split(" = ")
    assert jpy.endswith(" JPY") and usd.endswith(" USD")
    assert float(usd.removesuffix(" USD").replace(",", "")) == pytest.approx(20_000, rel=0.01)
    assert ticket.send_button.isEnabled(), ticket.problems.text()

    act(qloop, ticket.submit)
    run_until(
        qloop,
        lambda: any(
            p.con_id == USDJPY_CON_ID and p.quantity == 20_000 for p in gw.engine.positions()
        ),
        what="the USD.JPY order filled at the gateway",
    )
