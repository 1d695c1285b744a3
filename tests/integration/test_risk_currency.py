"""Risk limits in the base currency, against the simulated gateway (QA report, defect 5).

The gateway sends IB's ``ExchangeRate`` account values; the gate converts a USD.JPY
order's JPY notional with them before comparing it with a USD limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from fx_universe import USDJPY_CON_ID, universe_with_usdjpy
from ib_async import Forex
from integration.conftest import FAST

from core.connection import ClientIdRegistry, Connection
from core.orders import create_market_order
from core.risk import RiskLimits, RiskManager
from core.sim import SimGateway
from core.strategies import StrategyManager
from core.trading import OrderRefused, TradeManager
from helpers import wait_for

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def jpy_desk(ib_log_guard: Any) -> AsyncIterator[tuple[SimGateway, TradeManager]]:
    gw = SimGateway("127.0.0.1", 0, seed=7, tick_interval=0.05, universe=universe_with_usdjpy())
    await gw.start()
    conn = Connection("127.0.0.1", gw.port, 1, timeout=5, policy=FAST, registry=ClientIdRegistry())
    tm = TradeManager(conn.ib, StrategyManager(), connection=conn)
    await conn.connect()
    try:
        yield gw, tm
    finally:
        await tm.wait_journalled()
        await conn.disconnect()
        await gw.stop()


async def test_usdjpy_order_is_judged_in_usd_with_the_gateways_rates(jpy_desk):
    gw, tm = jpy_desk
    ib = tm.ib
    await wait_for(
        lambda: any(v.tag == "ExchangeRate" and v.currency == "JPY" for v in ib.accountValues()),
        5,
        "the JPY exchange rate as an account value",
    )
    rates = {v.currency: float(v.value) for v in ib.accountValues() if v.tag == "ExchangeRate"}
    assert rates["BASE"] == 1.0 and rates["USD"] == 1.0
    assert rates["JPY"] == pytest.approx(1 / 150, rel=0.05)

    risk = RiskManager(RiskLimits(max_order_notional=25_000))
    risk.attach_trade_manager(tm)
    risk.attach_ib(ib)
    contract = await tm.qualify(Forex("USDJPY"))  # as a strategy does: the gate knows it
    q = gw.market.quote(USDJPY_CON_ID)
    risk.learn_contract(contract)
    risk.on_quote(USDJPY_CON_ID, bid=q.bid, ask=q.ask, last=q.last, sec_type="CASH")

    # 20,000 USD.JPY is about 3,000,000 JPY, about 20,000 USD: inside 25,000 USD
    trade = tm.place_order(contract, create_market_order("BUY", 20_000), "fx")
    await wait_for(lambda: trade.orderStatus.status == "Filled", 10, "the USD.JPY fill")

    # 30,000 is about 30,000 USD: refused, with both amounts
    with pytest.raises(OrderRefused) as refused:
        tm.place_order(contract, create_market_order("BUY", 30_000), "fx")
    [reason] = refused.value.reasons
    assert reason.startswith("max order notional 25,000 USD: this order is 4,5")
    assert " JPY = 30,0" in reason and reason.endswith(" USD")
