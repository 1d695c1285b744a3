"""The broker layer the GUI and strategies share (no Qt here).

The seed's public names are importable from ``core`` directly::

    from core import TradeManager, create_stock_contract, create_market_order

They are loaded on first use (PEP 562), so ``python -m core.sim`` does not pay for
pandas and ArcticDB it never needs.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "connect_to_IB": "core.connection",
    "disconnect_from_IB": "core.connection",
    "Connection": "core.connection",
    "ConnectionState": "core.connection",
    "TradeManager": "core.trading",
    "OrderRefused": "core.trading",
    "StrategyManager": "core.strategies",
    "Strategy": "core.strategies",
    "StrategyPermissions": "core.strategies",
    "PortfolioManager": "core.portfolio",
    "RiskManager": "core.risk",
    "RiskLimits": "core.risk",
    "EmergencyStop": "core.emergency",
    "Store": "core.store",
    "MarketData": "core.marketdata",
    "AccountInfo": "core.account",
    "ContractService": "core.contracts",
    "create_stock_contract": "core.contracts",
    "create_future_contract": "core.contracts",
    "create_forex_contract": "core.contracts",
    "create_option_contract": "core.contracts",
    "round_to_tick": "core.contracts",
    "create_market_order": "core.orders",
    "create_limit_order": "core.orders",
    "create_stop_order": "core.orders",
    "create_stop_limit_order": "core.orders",
    "create_bracket_order": "core.orders",
    "validate_order": "core.orders",
    "load_settings": "core.config",
    "TradingDay": "core.tradingday",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
