"""Precautionary caps: on by default, per security type, scaled by the multiplier."""

from __future__ import annotations

import pytest
from ib_async import Contract, Order

from core.events import MANUAL
from core.precautions import DEFAULT_PRECAUTIONS, Precaution, Precautions
from core.risk import RiskManager
from core.trading import OrderIntent

AAPL, ES = 265598, 495512563


def _risk() -> RiskManager:
    risk = RiskManager(precautions=Precautions())
    risk.on_quote(AAPL, bid=229.99, ask=230.01, last=230.0, symbol="AAPL")
    es = Contract(conId=ES, symbol="ES", secType="FUT", multiplier="50", currency="USD")
    risk.learn_contract(es)
    risk.on_quote(ES, bid=5899.75, ask=5900.0, last=5900.0, symbol="ES", sec_type="FUT")
    return risk


def _intent(contract: Contract, action: str, qty: float, lmt: float | None = None) -> OrderIntent:
    order = Order(action=action, totalQuantity=qty, orderType="MKT" if lmt is None else "LMT")
    if lmt is not None:
        order.lmtPrice = lmt
    return OrderIntent(MANUAL, "gui", contract, order)


STOCK = Contract(conId=AAPL, symbol="AAPL", secType="STK", currency="USD")
FUTURE = Contract(conId=ES, symbol="ES", secType="FUT", multiplier="50", currency="USD")


def test_huge_stock_order_when_no_limits_configured_then_refused_by_precautions() -> None:
    decision = _risk().check(_intent(STOCK, "BUY", 999_999_999))

    assert not decision.approved
    text = " ".join(decision.reasons)
    assert "precautionary size 2,000 shares for STK" in text
    assert "precautionary value 200,000 for STK" in text


def test_future_value_counts_the_multiplier() -> None:
    # 5 ES at 5,900 x 50 = 1,475,000: under the 1,500,000 cap; 6 are 1,770,000.
    risk = _risk()
    assert risk.check(_intent(FUTURE, "BUY", 5)).approved
    decision = risk.check(_intent(FUTURE, "BUY", 6))
    assert not decision.approved
    assert "this order is 1,770,000" in " ".join(decision.reasons)


def test_limit_far_from_the_market_when_band_on_then_refused() -> None:
    decision = _risk().check(_intent(STOCK, "BUY", 10, lmt=184.0))  # 20 % below

    assert not decision.approved
    assert "precautionary price band 5% for STK" in decision.reasons[0]


def test_closing_order_when_above_the_size_cap_then_let_through() -> None:
    risk = _risk()
    risk.on_account_position(AAPL, 5_000, symbol="AAPL")

    assert risk.check(_intent(STOCK, "SELL", 5_000)).approved


def test_unknown_type_uses_default_scaled_by_multiplier() -> None:
    caps = Precautions({"default": Precaution(max_order_quantity=1_000)})

    assert caps.for_contract("WAR", 100).max_order_quantity == 10
    assert caps.for_contract("WAR", 1).max_order_quantity == 1_000


def test_cap_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="max_order_value"):
        Precaution(max_order_value=0)


def test_every_shipped_type_has_every_cap_on() -> None:
    for sec_type, cap in DEFAULT_PRECAUTIONS.items():
        assert None not in (cap.max_order_quantity, cap.max_order_value, cap.max_price_pct), (
            sec_type
        )
