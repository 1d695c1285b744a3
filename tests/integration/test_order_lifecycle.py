"""Orders are never shown in a state IB does not have them in: a modification IB refuses
leaves the order working; after a reconnect an order that ended while the console was
away shows how it ended, and one IB no longer knows ends Lost (never resent); while the
link is down, working orders are marked unconfirmed. Against the simulated gateway,
through the real ib_async client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from core.contracts import create_stock_contract
from core.events import LOST, OrderRejected, OrderUpdated
from core.orders import create_limit_order
from core.trading import OrderRefused
from helpers import settle, wait_for

pytestmark = pytest.mark.asyncio

DROPPED = (
    r"Peer closed connection|Connection reset by peer|API connection failed|Make sure API port"
)


async def resting(core: Any, qty: float = 10, strategy: str = "swing") -> tuple[Any, float]:
    """A BUY LMT for AAPL resting 5 % under the (frozen) market, working at the gateway."""
    gw = core.gateway
    gw.freeze_market_data(True)
    aapl = gw.universe.find(symbol="AAPL")[0]
    price = round(gw.market.quote(aapl.con_id).bid * 0.95, 2)
    trade = core.trades.place_order(
        await core.trades.qualify(create_stock_contract("AAPL")),
        create_limit_order("BUY", qty, price),
        strategy,
    )
    await wait_for(lambda: trade.orderStatus.status == "Submitted", what="working")
    return trade, price


def gateway_terms(core: Any) -> list[tuple[int, float, float]]:
    return [
        (o.request.order_id, o.request.total_quantity, o.request.lmt_price)
        for o in core.gateway.engine.open_orders()
    ]


# -- 1. a refused modification leaves the order working -------------------------------------


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (201, "Order rejected - reason:margin"),
        (110, "The price does not conform to the minimum price variation for this contract."),
    ],
)
async def test_refused_modification_leaves_order_working_with_refusal_shown(
    core, ib_log_guard, code, text
):
    trade, price = await resting(core)
    before = gateway_terms(core)
    updates: list[OrderUpdated] = []
    rejections: list[OrderRejected] = []
    core.trades.orderUpdated += updates.append
    core.trades.orderRejected += rejections.append
    core.gateway.reject_next_order(code, text)

    core.trades.modify_order_fields(trade.order.orderId, limit_price=round(price - 1, 2))
    await wait_for(lambda: rejections, what=f"IB's {code}")
    await settle(core.connection.ib)

    assert gateway_terms(core) == before  # IB still has the order as it was
    assert trade.orderStatus.status == "Submitted"
    assert trade.order.lmtPrice == pytest.approx(price)  # its last confirmed price
    assert core.connection.ib.openTrades() == [trade]
    assert updates and updates[-1].status == "Submitted" and updates[-1].is_working
    assert updates[-1].limit_price == pytest.approx(price)
    assert "modification refused by IB" in updates[-1].message and str(code) in updates[-1].message
    assert all(u.status == "Submitted" for u in updates)  # never shown Cancelled meanwhile
    assert rejections[-1].code == code and "still works" in rejections[-1].message
    refused = [r for r in core.trades.audit.records if r.action == "modify" and r.actor == "ib"]
    assert refused and refused[-1].result.startswith(f"refused: error {code}")
    told = [m for m in core.messages if m["type"] == "error" and m.get("code") == code]
    assert told and told[-1]["modification_refused"] is True
    assert not any(m["type"] == "cancel" for m in core.messages)

    # The order can still be modified: IB confirms the next one.
    core.trades.modify_order_fields(trade.order.orderId, quantity=12)
    await wait_for(lambda: gateway_terms(core)[0][1] == 12, what="the next modification")
    await wait_for(lambda: updates[-1].quantity == 12, what="the next modification shown")


async def test_refused_modification_counts_among_working_orders_at_ib(core, ib_log_guard):
    ib_log_guard.expect(r"Error 202, reqId \d+: Order Canceled")
    trade, price = await resting(core)
    core.gateway.reject_next_order(201, "Order rejected - reason:test")
    rejections: list[OrderRejected] = []
    core.trades.orderRejected += rejections.append

    core.trades.modify_order_fields(trade.order.orderId, limit_price=round(price + 1, 2))
    await wait_for(lambda: rejections, what="IB's 201")
    await settle(core.connection.ib)

    # What the session's quit prompt counts (ConsoleSession.working_orders_at_ib).
    assert sum(not t.isDone() for t in core.connection.ib.openTrades()) == 1
    core.trades.cancel_order(trade)  # and a cancel still reaches it
    await wait_for(lambda: trade.orderStatus.status == "Cancelled", what="cancelled")
    assert core.gateway.engine.open_orders() == []


async def test_error_for_a_new_order_still_ends_it(core, ib_log_guard):
    ib_log_guard.expect(r"Error 201|Canceled order")
    core.gateway.reject_next_order(201, "Order rejected - reason: new order")
    trade = core.trades.place_order(
        await core.trades.qualify(create_stock_contract("AAPL")),
        create_limit_order("BUY", 1, 100.0),
        "s",
    )
    await wait_for(lambda: trade.orderStatus.status == "Cancelled", what="rejected new order")


async def test_modify_to_total_below_filled_is_refused_before_anything_is_written(
    core, ib_log_guard
):
    gw = core.gateway
    gw.freeze_market_data(True)
    aapl = gw.universe.find(symbol="AAPL")[0]
    quote = gw.market.quote(aapl.con_id)
    trade = core.trades.place_order(
        await core.trades.qualify(create_stock_contract("AAPL")),
        create_limit_order("BUY", 3000, quote.ask),
        "big",
    )
    await wait_for(lambda: trade.orderStatus.filled > 0, what="a partial fill")
    await wait_for(lambda: trade.orderStatus.status == "Submitted", what="still working")
    filled = trade.orderStatus.filled
    assert 0 < filled < 3000, "the displayed size fills part of the order"
    sent = []
    core.connection.ib.client.placeOrder = lambda *a, **k: sent.append(a)  # nothing may go out

    with pytest.raises(OrderRefused, match=r"below the .* already filled"):
        core.trades.modify_order_fields(trade.order.orderId, quantity=filled - 1)

    assert sent == []
    assert trade.order.totalQuantity == 3000
    refusal = core.trades.audit.records[-1]
    assert refusal.action == "modify" and "already filled" in refusal.result


# -- 6 and 7. what the reconnect finds --------------------------------------------------------


async def test_order_cancelled_at_tws_while_down_shows_cancelled_after_reconnect(
    core, ib_log_guard
):
    ib_log_guard.expect(DROPPED)
    gw = core.gateway
    trade, _ = await resting(core)
    updates: list[OrderUpdated] = []
    core.trades.orderUpdated += updates.append
    gw.refuse_connections(0.3)
    await gw.drop_connections()
    await wait_for(lambda: not core.connection.ib.isConnected(), what="down")
    gw.engine.cancel(1, trade.order.orderId)  # cancelled in TWS meanwhile

    await wait_for(lambda: core.connection.ib.isConnected(), timeout=10, what="reconnect")
    await core.trades.resync()
    await settle(core.connection.ib)

    last = updates[-1]
    assert (last.order_id, last.status) == (trade.order.orderId, "Cancelled")
    assert last.while_away and not last.link_down
    assert "while the console was disconnected" in last.message
    assert [m for m in core.messages if m["type"] == "cancel"][-1]["trade"] is trade


async def test_working_orders_marked_link_down_until_ib_confirms_them(core, ib_log_guard):
    ib_log_guard.expect(DROPPED)
    gw = core.gateway
    trade, _ = await resting(core)
    updates: list[OrderUpdated] = []
    core.trades.orderUpdated += updates.append
    gw.refuse_connections(0.5)

    await gw.drop_connections()
    await wait_for(lambda: not core.connection.ib.isConnected(), what="down")

    assert [(u.order_id, u.status, u.link_down) for u in updates] == [
        (trade.order.orderId, "Submitted", True)
    ]
    assert "link down" in updates[0].message
    await wait_for(lambda: core.connection.ib.isConnected(), timeout=10, what="reconnect")
    await core.trades.resync()
    assert updates[-1].status == "Submitted" and not updates[-1].link_down
    assert core.trades.lost_orders() == []


@pytest_asyncio.fixture
async def restartable(core: Any) -> AsyncIterator[Any]:
    """``core``, whose gateway can be restarted without its state (a fresh one on the
    same port: every order forgotten), as when TWS restarts without the session's
    orders; the fresh gateway is stopped at the end."""
    from core.sim import SimGateway

    fresh: list[Any] = []

    async def restart() -> Any:
        old = core.gateway
        await old.stop()
        gw = SimGateway("127.0.0.1", old.port, seed=20261125, tick_interval=0.05)
        await gw.start()
        fresh.append(gw)
        core.gateway = gw
        return gw

    core.restart_gateway = restart
    try:
        yield core
    finally:
        for gw in fresh:
            await gw.stop()


async def test_order_the_gateway_no_longer_knows_ends_lost_and_is_not_resent(
    restartable, ib_log_guard
):
    ib_log_guard.expect(DROPPED)
    core = restartable
    trade, _ = await resting(core)
    updates: list[OrderUpdated] = []
    rejections: list[OrderRejected] = []
    core.trades.orderUpdated += updates.append
    core.trades.orderRejected += rejections.append

    gw = await core.restart_gateway()  # drops the link; comes back without the order
    await wait_for(lambda: core.connection.ib.isConnected(), timeout=10, what="reconnect")
    await core.trades.resync()
    await settle(core.connection.ib)

    last = updates[-1]
    assert (last.order_id, last.status) == (trade.order.orderId, LOST)
    assert "look for it in TWS" in last.message and not last.link_down
    assert any(u.link_down and u.status == "Submitted" for u in updates)  # while down
    assert trade.isDone() and core.connection.ib.openTrades() == []
    assert gw.engine.open_orders() == []  # never resent
    assert rejections and rejections[-1].order_id == trade.order.orderId
    told = [m for m in core.messages if m.get("status") == LOST]
    assert told and told[-1]["strategy"] == "swing" and told[-1]["trade"] is trade
    assert core.trades.lost_orders() == [trade]
    assert any(r.action == "lost" for r in core.trades.audit.records)
    await core.trades.resync()  # a later resync says nothing more
    assert [u.status for u in updates].count(LOST) == 1


async def test_other_clients_order_gone_after_reconnect_ends_lost(restartable, ib_log_guard):
    from ib_async import IB, LimitOrder, Stock

    ib_log_guard.expect(DROPPED)
    core = restartable
    other = IB()
    await other.connectAsync("127.0.0.1", core.gateway.port, clientId=7, timeout=5)
    try:
        core.gateway.freeze_market_data(True)
        aapl = Stock("AAPL", "SMART", "USD")
        await other.qualifyContractsAsync(aapl)
        theirs = other.placeOrder(aapl, LimitOrder("BUY", 5, 100.0))
        await wait_for(lambda: theirs.orderStatus.status == "Submitted", what="other's order")
        await core.trades.resync()
    finally:
        other.disconnect()
    updates: list[OrderUpdated] = []
    core.trades.orderUpdated += updates.append

    await core.restart_gateway()
    await wait_for(lambda: core.connection.ib.isConnected(), timeout=10, what="reconnect")
    await core.trades.resync()

    assert [(u.client_id, u.status) for u in updates][-1] == (7, LOST)


async def test_read_only_console_shows_an_order_cancelled_while_away_not_lost(
    gateway, ib_log_guard
):
    """A read-only session does not get completed orders from ib_async's connect: the
    resync asks for them, so an order that ended while away is not called lost."""
    from ib_async import IB, LimitOrder, Stock

    from core.connection import ClientIdRegistry, Connection
    from core.trading import TradeManager
    from tests.integration.conftest import FAST

    ib_log_guard.expect(DROPPED)
    gateway.freeze_market_data(True)
    other = IB()
    await other.connectAsync("127.0.0.1", gateway.port, clientId=7, timeout=5)
    aapl = Stock("AAPL", "SMART", "USD")
    await other.qualifyContractsAsync(aapl)
    theirs = other.placeOrder(aapl, LimitOrder("BUY", 5, 100.0))
    await wait_for(lambda: theirs.orderStatus.status == "Submitted", what="other's order")
    conn = Connection(
        "127.0.0.1",
        gateway.port,
        3,
        timeout=5,
        readonly=True,
        policy=FAST,
        registry=ClientIdRegistry(),
    )
    trades = TradeManager(conn.ib, connection=conn)
    updates: list[OrderUpdated] = []
    trades.orderUpdated += updates.append
    await conn.connect()
    try:
        await trades.resync()
        assert updates and updates[-1].status == "Submitted"
        gateway.refuse_connections(0.3)
        await gateway.drop_connections()  # the other client goes too
        await wait_for(lambda: not conn.ib.isConnected(), what="down")
        gateway.engine.cancel(7, theirs.order.orderId)  # cancelled in TWS meanwhile

        await wait_for(lambda: conn.ib.isConnected(), timeout=10, what="reconnect")
        await trades.resync()

        assert (updates[-1].client_id, updates[-1].status) == (7, "Cancelled")
        assert updates[-1].while_away
        assert trades.lost_orders() == []
    finally:
        other.disconnect()
        await conn.disconnect()


async def test_order_not_listed_while_gateway_logs_in_is_looked_for_again_once_ib_is_back(
    core, ib_log_guard
):
    """TWS back after its restart but not logged in to IB yet (1100): its order lists may
    be incomplete then, so nothing is called lost until IB is back (1102); an order still
    unknown then is."""
    from core.events import ConnectionState

    ib_log_guard.expect(DROPPED + r"|1100|Connectivity|2103|2105|farm")
    gw = core.gateway
    trade, _ = await resting(core)
    updates: list[OrderUpdated] = []
    core.trades.orderUpdated += updates.append

    reset = gw.nightly_reset(down_for=0.3, relogin_for=1.0)
    await wait_for(lambda: not core.connection.ib.isConnected(), what="down")
    # The restarted TWS does not have the order (the simulator's book, emptied by hand).
    del gw.engine._orders[(1, trade.order.orderId)]
    await wait_for(
        lambda: core.connection.state is ConnectionState.LINK_LOST, timeout=10, what="1100"
    )
    await core.trades.resync()

    assert [(u.status, u.link_down) for u in updates] == [("Submitted", True)]
    assert not trade.isDone()
    await reset
    await wait_for(lambda: updates[-1].status == LOST, timeout=10, what="Lost once IB is back")
    assert gw.engine.open_orders() == []
