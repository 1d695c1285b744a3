"""The status bar says which account orders go to (QA defect 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import qasync
from PySide6.QtWidgets import QApplication

from core.config import load_settings
from core.orders import create_market_order
from core.session import SessionOptions
from gui.widgets.status_labels import accounts_text
from helpers import run_until, tradable
from tests.gui.conftest import open_console


def test_accounts_text_names_where_orders_go_and_the_others():
    assert accounts_text(("DU1", "DU2"), "DU2") == "orders to DU2 (not to DU1)"
    assert accounts_text(("DU1",), "DU1") == "orders to DU1"
    assert accounts_text((), "") == ""


def test_console_for_the_second_account_says_so_and_its_orders_go_there(
    qloop: qasync.QEventLoop, qapp: QApplication, qtbot: Any, tmp_path: Path
):
    settings = load_settings(env={"IBCONSOLE_HOME": str(tmp_path)})
    options = SessionOptions(
        sim_state_file=tmp_path / "sim.json",
        sim_tick_interval=0.05,
        sim_accounts=("DU0000001", "DU0000002"),
        account="DU0000002",
    )
    with open_console(qloop, qtbot, tmp_path, options, settings) as (session, window):
        run_until(qloop, lambda: "orders to" in window.gateway_label.text(), what="accounts")
        assert "orders to DU0000002 (not to DU0000001)" in window.gateway_label.text()

        aapl = qloop.run_until_complete(tradable(session, "AAPL"))
        trade = session.trades.place_order(aapl, create_market_order("BUY", 10), "manual")
        run_until(qloop, lambda: trade.orderStatus.status == "Filled", what="the fill")
        gw = session.gateway
        assert gw is not None
        assert gw.engine.position("DU0000002", aapl.conId).quantity == 10
        assert gw.engine.position("DU0000001", aapl.conId).quantity == 0
