"""What the gate refuses never reaches IB, on every road (QA defects 3 and 4).

Against the simulated gateway through a real socket, with the shipped precautionary
caps on and a console that trades the second of two accounts: each refused order is
refused with its reason and no placeOrder frame is written. Each of these orders was
written on the console before (a limit with no market price, a future valued without
its multiplier, off-tick prices, a modification of a working order, the account).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from ib_async import Contract, Order

from core.connection import ClientIdRegistry, Connection
from core.contracts import create_stock_contract
from core.orders import create_limit_order, create_market_order
from core.precautions import Precautions
from core.risk import RiskManager
from core.strategies import StrategyManager
from core.trading import OrderRefused, TradeManager
from helpers import settle, wait_for

pytestmark = pytest.mark.asyncio

ACCOUNTS = ("DU0000001", "DU0000002")
CONSOLE_ACCOUNT = "DU0000002"


@dataclass
class Tap:
    """Every placeOrder frame written to the socket (its raw fields)."""

    frames: list[list[bytes]] = field(default_factory=list)

    def install(self, client: Any) -> None:
        conn = client.conn
        write = conn.sendMsg

        def tapped(data: bytes) -> None:
            fields = data[4:].split(b"\0")
            if fields[0] == b"3":
                self.frames.append(fields)
            write(data)

        conn.sendMsg = tapped


@dataclass
class Desk:
    gateway: Any
    trades: TradeManager
    risk: RiskManager
    tap: Tap


@pytest_asyncio.fixture
async def desk() -> AsyncIterator[Desk]:
    from core.sim import SimGateway

    gw = SimGateway("127.0.0.1", 0, seed=7, tick_interval=0.05, accounts=ACCOUNTS)
    await gw.start()
    conn = Connection(
        "127.0.0.1", gw.port, 1, timeout=5, account=CONSOLE_ACCOUNT, registry=ClientIdRegistry()
    )
    trades = TradeManager(conn.ib, StrategyManager(), connection=conn)
    risk = RiskManager(precautions=Precautions())  # the shipped caps, nothing else
    risk.attach_trade_manager(trades)
    await conn.connect()
    risk.attach_ib(conn.ib, CONSOLE_ACCOUNT)
    tap = Tap()
    tap.install(conn.ib.client)
    try:
        yield Desk(gw, trades, risk, tap)
    finally:
        await trades.wait_journalled()
        await conn.disconnect()
        await gw.stop()


def quote(d: Desk, con_id: int, symbol: str) -> tuple[float, float]:
    """Tell risk the gateway's quote (the band's reference); returns bid and ask."""
    q = d.gateway.market.quote(con_id)
    d.risk.on_quote(con_id, bid=q.bid, ask=q.ask, last=q.last, symbol=symbol)
    return q.bid, q.ask


def front_es(d: Desk) -> Any:
    return sorted(d.gateway.universe.find(symbol="ES"), key=lambda i: i.last_trade_date)[0]


async def refused(d: Desk, contract: Contract, order: Order) -> tuple[str, ...]:
    """Place ``order``: it must be refused and nothing written to the socket."""
    before = len(d.tap.frames)
    with pytest.raises(OrderRefused) as refusal:
        d.trades.place_order(contract, order, "s")
    await settle(d.trades.ib)
    assert d.tap.frames[before:] == []
    return refusal.value.reasons


async def test_limit_order_without_a_market_price_then_refused_and_nothing_written(desk: Desk):
    aapl = await desk.trades.qualify(create_stock_contract("AAPL"))

    reasons = await refused(desk, aapl, create_limit_order("BUY", 10, 800.0))

    assert reasons == (
        "no market price for AAPL: cannot check the precautionary price band 5% for STK",
    )
    assert desk.gateway.engine.open_orders() == []


async def test_future_not_qualified_or_conid_only_then_valued_with_its_multiplier(desk: Desk):
    es = front_es(desk)
    bid, _ = quote(desk, es.con_id, "ES")
    price = round(bid * 0.99 * 4) / 4
    unqualified = Contract(
        symbol="ES",
        secType="FUT",
        exchange="CME",
        currency="USD",
        lastTradeDateOrContractMonth=str(es.last_trade_date),
    )

    first = await refused(desk, unqualified, create_limit_order("BUY", 8, price))
    assert "is not qualified" in first[0] and "await trades.qualify(contract)" in first[0]

    await desk.trades.qualify(unqualified)  # what the refusal says to do
    again = await refused(desk, unqualified, create_limit_order("BUY", 8, price))
    conid_only = await refused(
        desk, Contract(conId=es.con_id, exchange="CME"), create_limit_order("BUY", 8, price)
    )

    value = f"{8 * price * 50:,.0f}"
    for reasons in (again, conid_only):
        assert reasons == (f"precautionary value 1,500,000 for FUT: this order is {value}",)
    assert desk.gateway.engine.open_orders() == []


async def test_off_tick_prices_then_refused_and_nothing_written(desk: Desk):
    aapl = await desk.trades.qualify(create_stock_contract("AAPL"))
    bid, _ = quote(desk, aapl.conId, "AAPL")
    es = front_es(desk)
    es_bid, _ = quote(desk, es.con_id, "ES")

    stock = await refused(desk, aapl, create_limit_order("BUY", 10, round(bid * 0.99, 2) + 0.005))
    unqualified_future = await refused(
        desk,
        Contract(conId=es.con_id, exchange="CME"),  # details not asked for yet
        create_limit_order("BUY", 1, round(es_bid * 0.99 * 4) / 4 + 0.10),
    )

    assert any("is not on the tick 0.01" in r for r in stock)
    assert "is not qualified" in unqualified_future[0]
    assert desk.gateway.engine.open_orders() == []


async def test_modify_without_a_market_price_then_refused_and_the_order_unchanged(desk: Desk):
    desk.gateway.freeze_market_data(True)
    aapl = await desk.trades.qualify(create_stock_contract("AAPL"))
    bid, _ = quote(desk, aapl.conId, "AAPL")
    px = round(bid * 0.97, 2)
    working = desk.trades.place_order(aapl, create_limit_order("BUY", 10, px), "s")
    await wait_for(lambda: working.orderStatus.status == "Submitted", 5, "working")
    # a restart: the gate knows no quote yet, as for a restored working order
    restarted = RiskManager(precautions=Precautions())
    restarted.attach_trade_manager(desk.trades)
    before = len(desk.tap.frames)

    with pytest.raises(OrderRefused) as refusal:
        desk.trades.modify_order_fields(working.order.orderId, limit_price=round(bid * 1.39, 2))
    await settle(desk.trades.ib)

    assert refusal.value.reasons == (
        "no market price for AAPL: cannot check the precautionary price band 5% for STK",
    )
    assert desk.tap.frames[before:] == []
    [at_ib] = desk.gateway.engine.open_orders()
    assert at_ib.request.lmt_price == pytest.approx(px)


async def test_orders_carry_the_console_account_and_another_account_is_refused(desk: Desk):
    aapl = await desk.trades.qualify(create_stock_contract("AAPL"))
    quote(desk, aapl.conId, "AAPL")

    trade = desk.trades.place_order(aapl, create_market_order("BUY", 10), "s")
    await wait_for(lambda: trade.orderStatus.status == "Filled", 10, "filled")

    assert trade.order.account == CONSOLE_ACCOUNT
    assert CONSOLE_ACCOUNT.encode() in desk.tap.frames[-1]
    assert desk.gateway.engine.position(CONSOLE_ACCOUNT, aapl.conId).quantity == 10
    assert desk.gateway.engine.position(ACCOUNTS[0], aapl.conId).quantity == 0

    other = create_market_order("BUY", 10)
    other.account = ACCOUNTS[0]
    reasons = await refused(desk, aapl, other)
    assert reasons[0].startswith(f"account {ACCOUNTS[0]}: this console trades account DU0000002")
