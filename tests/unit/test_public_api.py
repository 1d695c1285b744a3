"""The seed's names are importable from ``core``; the simulated gateway stays light."""

from __future__ import annotations

import subprocess
import sys

import core


def test_seed_names_are_exported_from_core():
    from core import (
        PortfolioManager,
        RiskManager,
        StrategyManager,
        TradeManager,
        connect_to_IB,
        create_market_order,
        create_stock_contract,
        disconnect_from_IB,
    )

    assert callable(connect_to_IB) and callable(disconnect_from_IB)
    assert TradeManager.__module__ == "core.trading"
    assert PortfolioManager.__module__ == "core.portfolio"
    assert RiskManager.__module__ == "core.risk"
    assert StrategyManager().message_queue.empty()
    order = create_market_order("BUY", 100)
    contract = create_stock_contract("AAPL", "SMART", "USD")
    assert (order.action, order.totalQuantity, contract.symbol) == ("BUY", 100, "AAPL")


def test_unknown_name_is_an_attribute_error():
    try:
        core.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_the_simulated_gateway_does_not_load_arcticdb_or_pandas():
    code = "import sys, core.sim; print('arcticdb' in sys.modules, 'core.store' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
