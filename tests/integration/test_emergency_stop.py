"""The emergency stop against the simulated gateway, through the real ib_async client."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio

from core.contracts import create_stock_contract
from core.emergency import EmergencyStop, StopScope
from core.events import TradingState
from core.orders import create_limit_order, create_market_order
from core.risk import ACCOUNT, EMERGENCY_ACTOR, RiskManager
from core.session import ConsoleSession, SessionOptions, emergency_stop_for
from core.trading import OrderRefused
from helpers import RunningClock, clock_from, next_new_york_day, settle, wait_for

pytestmark = pytest.mark.asyncio

SYMBOLS = ("AAPL", "MSFT", "AMZN", "GOOGL", "META", "NVDA", "TSLA", "NFLX", "INTC", "AMD")


class FakeStore:
    """The ArcticDB store's state API, in memory."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def save_state(self, key: str, value: Any) -> None:
        self.data[key] = copy.deepcopy(value)

    async def load_state(self, key: str) -> Any:
        return copy.deepcopy(self.data.get(key))


@dataclass
class Stopper:
    core: Any
    risk: RiskManager
    stop: EmergencyStop
    store: FakeStore
    clock: RunningClock  # risk's (order rates: the console-wide message cap)


@pytest_asyncio.fixture
async def stopper(core: Any, ib_log_guard: Any) -> AsyncIterator[Stopper]:
    ib_log_guard.expect(r"Error 202, reqId \d+: Order Canceled")
    store = FakeStore()
    clock = clock_from(datetime.now(UTC))
    risk = RiskManager(store=store, audit=core.trades.audit, clock=lambda: clock().timestamp())
    await risk.restore()
    risk.attach_trade_manager(core.trades)
    risk.attach_ib(core.connection.ib)
    risk.attach_connection(core.connection, core.trades)
    stop = emergency_stop_for(
        risk,
        core.trades,
        core.connection,
        cancel_timeout=5,
        fill_timeout=10,
        reconnect_timeout=20,
    )
    yield Stopper(core, risk, stop, store, clock)


def gateway_flat(gw: Any) -> bool:
    return all(abs(p.quantity) < 1e-9 for p in gw.engine.positions())


async def build_book(s: Stopper, n_orders: int = 50, symbols: tuple[str, ...] = SYMBOLS) -> None:
    """One open position per symbol (long and short alternately) and ``n_orders`` resting
    limit orders spread over the symbols, far from the market. The orders come faster
    than risk's message cap allows in a second: its clock is moved on, not waited for
    (the wire gate paces the frames to IB on the real clock)."""
    core = s.core
    gw = core.gateway
    fills = []
    # qualified first, as a strategy does: orders are checked on IB's contract details
    contracts = {sym: await core.trades.qualify(create_stock_contract(sym)) for sym in symbols}
    for i, sym in enumerate(symbols):
        action = "BUY" if i % 2 == 0 else "SELL"
        fills.append(
            core.trades.place_order(contracts[sym], create_market_order(action, 10 + i), "book")
        )
    await wait_for(
        lambda: all(t.orderStatus.status == "Filled" for t in fills), 10, "positions filled"
    )
    s.clock.advance(seconds=1)  # a new second for the console-wide cap (risk's clock)
    for i in range(n_orders):
        if i and i % 40 == 0:
            s.clock.advance(seconds=1)
        sym = symbols[i % len(symbols)]
        inst = gw.universe.find(symbol=sym)[0]
        q = gw.market.quote(inst.con_id)
        buy = i % 2 == 0
        px = round((q.bid * 0.8) if buy else (q.ask * 1.2), 2)
        core.trades.place_order(
            contracts[sym],
            create_limit_order("BUY" if buy else "SELL", 10, px),
            "book",
        )
    await wait_for(
        lambda: len(gw.engine.open_orders()) == n_orders, 10, f"{n_orders} working orders"
    )
    await wait_for(
        lambda: len([p for p in core.connection.ib.positions() if p.position]) == len(symbols),
        5,
        "positions seen by the client",
    )


def flattening_orders(s: Stopper) -> list[Any]:
    return [
        r for r in s.core.trades.audit.records if r.actor == EMERGENCY_ACTOR and r.action == "place"
    ]


async def test_emergency_stop_with_50_orders_and_10_positions_then_flat_order_free_and_halted(
    stopper: Stopper,
):
    s = stopper
    gw = s.core.gateway
    await build_book(s)

    result = await s.stop.stop("test: runaway", flatten=True)

    assert gw.engine.open_orders() == []
    assert gateway_flat(gw)
    assert result.ok, result.describe()
    assert result.flat and result.order_free
    assert len(result.orders_cancelled) == 50
    assert len(result.positions_closed) == 10
    assert s.risk.state_of() is TradingState.HALTED
    # each flattening order passed HALTED on its own flatten intent, spent on its order id
    assert sorted(s.risk.flatten_authority.spent.values()) == sorted(
        o.order_id for o in result.positions_closed
    )
    # a restarted console is still HALTED
    restarted = RiskManager(store=s.store)
    await restarted.restore()
    assert restarted.state_of() is TradingState.HALTED
    assert "runaway" in restarted.reason_of()
    # and nothing new gets through
    aapl = await s.core.trades.qualify(create_stock_contract("AAPL"))
    with pytest.raises(OrderRefused, match="HALTED"):
        s.core.trades.place_order(aapl, create_market_order("BUY", 1), "book")
    assert any(
        r.action == "emergency_stop" and "flat and order-free" in r.result
        for r in s.core.trades.audit.records
    )


async def test_emergency_stop_pressed_twice_does_not_double_the_flattening(stopper: Stopper):
    s = stopper
    gw = s.core.gateway
    await build_book(s, n_orders=20)

    first, second = await asyncio.gather(s.stop.stop("first press"), s.stop.stop("second press"))
    third = await s.stop.stop("third press, after it finished")

    assert first is second
    assert len(flattening_orders(s)) == 10
    assert third.positions_closed == ()
    assert gw.engine.open_orders() == [] and gateway_flat(gw)


async def test_emergency_stop_dry_run_sends_nothing(stopper: Stopper):
    s = stopper
    gw = s.core.gateway
    await build_book(s, n_orders=20)
    positions_before = [(p.con_id, p.quantity) for p in gw.engine.positions()]

    preview = await s.stop.stop("what would happen", dry_run=True)
    await settle(s.core.connection.ib)

    assert preview.dry_run
    assert len(preview.orders_cancelled) == 20
    assert len(preview.positions_closed) == 10
    assert {o.action for o in preview.positions_closed} == {"BUY", "SELL"}
    assert len(gw.engine.open_orders()) == 20
    assert [(p.con_id, p.quantity) for p in gw.engine.positions()] == positions_before
    assert s.risk.state_of() is TradingState.ACTIVE
    assert flattening_orders(s) == []
    assert "would" in preview.describe()


async def test_emergency_stop_for_one_contract_leaves_the_rest(stopper: Stopper):
    s = stopper
    gw = s.core.gateway
    await build_book(s, n_orders=20)
    aapl = gw.universe.find(symbol="AAPL")[0].con_id

    result = await s.stop.stop("AAPL only", scope=StopScope.contract(aapl, "AAPL"))

    assert result.ok, result.describe()
    assert [o.symbol for o in result.positions_closed] == ["AAPL"]
    assert all(o.request.con_id != aapl for o in gw.engine.open_orders())
    assert len(gw.engine.open_orders()) == 18
    assert gw.engine.position(gw.accounts[0], aapl).quantity == 0
    assert len(gw.engine.positions()) == 9
    assert s.risk.state_of() is TradingState.ACTIVE
    assert s.risk.effective_state("book", aapl) is TradingState.HALTED
    # other contracts still trade
    msft = await s.core.trades.qualify(create_stock_contract("MSFT"))
    s.core.trades.place_order(msft, create_market_order("BUY", 1), "book")


async def test_emergency_stop_when_connection_drops_midway_then_completes_after_reconnect(
    stopper: Stopper, ib_log_guard: Any
):
    ib_log_guard.expect(
        r"Peer closed connection|Connection reset by peer|API connection failed|Make sure API port"
    )
    s = stopper
    gw = s.core.gateway
    await build_book(s, n_orders=20)
    gw.delay_fills(300)  # the flattening orders wait at the gateway: drop the link meanwhile

    task = asyncio.ensure_future(s.stop.stop("drop test"))
    await wait_for(lambda: len(flattening_orders(s)) >= 3, 10, "flattening under way")
    await gw.drop_connections()
    result = await asyncio.wait_for(task, 60)

    assert result.reconnects >= 1
    assert gw.engine.open_orders() == []
    assert gateway_flat(gw), gw.engine.positions()
    assert result.flat and result.order_free, result.describe()
    assert s.risk.state_of() is TradingState.HALTED


async def test_daily_loss_breach_from_simulated_prices_takes_the_action(stopper: Stopper):
    from core.account import AccountInfo
    from core.risk import RiskLimits

    s = stopper
    gw = s.core.gateway
    gw.freeze_market_data(True)
    aapl = await s.core.trades.qualify(create_stock_contract("AAPL"))
    trade = s.core.trades.place_order(aapl, create_market_order("BUY", 1000), "book")
    await wait_for(lambda: trade.orderStatus.status == "Filled", 10, "filled")
    price = trade.orderStatus.avgFillPrice
    s.risk.set_limits(ACCOUNT, RiskLimits(daily_loss_limit=5000))
    account = AccountInfo(s.core.connection.ib)
    s.risk.attach_account(account)
    account.start()
    breaches = []
    s.risk.limitBreached += breaches.append

    gw.set_price("AAPL", round(price * 0.9, 2))  # about -10 % on 1,000 shares

    await wait_for(lambda: breaches, 10, "the breach")
    assert breaches[0].limit == "daily_loss_limit"
    assert s.risk.state_of() is TradingState.REDUCING
    with pytest.raises(OrderRefused, match="REDUCING"):
        s.core.trades.place_order(aapl, create_market_order("BUY", 1), "book")


@pytest.mark.parametrize("weekend", [False, True], ids=["regular-hours", "weekend"])
async def test_flattening_order_type_follows_the_stop_clock_not_the_wall_clock(
    weekend: bool, tmp_path: Any, ib_log_guard: Any
):
    """In regular hours the stop closes at market; outside them with a marketable limit
    allowed outside RTH. Which one a test sees is decided by the injected clock."""
    ib_log_guard.expect(r"Error 202, reqId \d+: Order Canceled")
    options = SessionOptions(
        sim_tick_interval=0.05, stop_clock=clock_from(next_new_york_day(weekend))
    )
    session = await ConsoleSession.start(options)
    try:
        aapl = await session.trades.qualify(create_stock_contract("AAPL"))
        session.trades.place_order(aapl, create_market_order("BUY", 10), "book")
        await wait_for(
            lambda: any(p.position == 10 for p in session.connection.ib.positions()),
            5,
            "the position at the client",
        )
        (held,) = [p for p in session.connection.ib.positions() if p.position]
        await wait_for(
            lambda: all(session.risk.book.quote(held.contract.conId)[:2]), 5, "bid and ask"
        )
        result = await session.emergency.stop("test: clock", flatten=True)
        assert result.ok, result.describe()
        (closed,) = result.positions_closed
        (closing,) = [
            t.order for t in session.connection.ib.trades() if t.order.orderId == closed.order_id
        ]
    finally:
        await session.stop()
    if weekend:
        assert (closing.orderType, closing.outsideRth) == ("LMT", True)
        assert closing.lmtPrice > 0
    else:
        assert (closing.orderType, closing.outsideRth) == ("MKT", False)


async def test_emergency_stop_names_an_order_lost_across_the_reconnect(
    stopper: Stopper, ib_log_guard: Any
):
    """Pressed while the gateway is down; it comes back without the working order (TWS
    restarted without it): the stop cancels nothing, and says so instead of reading
    order-free."""
    from core.sim import SimGateway

    ib_log_guard.expect(
        r"Peer closed connection|Connection reset by peer|API connection failed|Make sure API port"
    )
    s = stopper
    old = s.core.gateway
    old.freeze_market_data(True)
    aapl = old.universe.find(symbol="AAPL")[0]
    price = round(old.market.quote(aapl.con_id).bid * 0.9, 2)
    trade = s.core.trades.place_order(
        await s.core.trades.qualify(create_stock_contract("AAPL")),
        create_limit_order("BUY", 10, price),
        "book",
    )
    await wait_for(lambda: trade.orderStatus.status == "Submitted", what="working")
    await old.stop()
    await wait_for(lambda: not s.core.connection.ib.isConnected(), what="down")
    task = asyncio.ensure_future(s.stop.stop("gateway gone", flatten=False))
    fresh = SimGateway("127.0.0.1", old.port, seed=20261125, tick_interval=0.05)
    await fresh.start()
    try:
        result = await asyncio.wait_for(task, 60)
    finally:
        await fresh.stop()

    assert result.orders_lost and f"#{trade.order.orderId} BUY 10 AAPL" in result.orders_lost[0]
    assert not result.ok
    assert "LOST" in result.outcome and "look for it in TWS" in result.outcome
    assert "look for it in TWS" in result.describe()
    assert "order-free" not in result.outcome
    assert fresh.engine.open_orders() == []  # nothing resent
