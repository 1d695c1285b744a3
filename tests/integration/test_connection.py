"""Connection: client ids, automatic reconnection, exactly-once fills after a reconnect."""

from __future__ import annotations

import pytest

from core.connection import (
    ClientIdRegistry,
    Connection,
    ConnectionFailed,
    ConnectionState,
    ReconnectPolicy,
)
from core.contracts import create_stock_contract
from core.orders import create_limit_order
from helpers import settle, wait_for

pytestmark = pytest.mark.asyncio

FAST = ReconnectPolicy(
    initial_delay=0.05, max_delay=0.5, jitter=0.05, heartbeat_interval=0.5, heartbeat_timeout=1.0
)


async def test_duplicate_client_id_moves_to_next_free_one(gateway, ib_log_guard):
    ib_log_guard.expect(
        r"Error 326|API connection failed|Peer closed connection|Connection reset by peer"
    )
    first = Connection("127.0.0.1", gateway.port, 5, timeout=5, registry=ClientIdRegistry())
    second = Connection("127.0.0.1", gateway.port, 5, timeout=5, registry=ClientIdRegistry())
    await first.connect()
    try:
        await second.connect()
        assert first.client_id == 5
        assert second.client_id == 6
        assert second.state is ConnectionState.CONNECTED
    finally:
        await second.disconnect()
        await first.disconnect()


async def test_connect_to_closed_port_fails_with_clear_reason(ib_log_guard):
    ib_log_guard.expect(r"API connection failed|Make sure API port")
    conn = Connection("127.0.0.1", 1, 1, timeout=2, registry=ClientIdRegistry())

    with pytest.raises(ConnectionFailed, match="connection refused"):
        await conn.connect()

    assert conn.state is ConnectionState.DISCONNECTED


async def test_dropped_connection_reconnects_with_states_reported(core, ib_log_guard):
    ib_log_guard.expect(
        r"Peer closed connection|Connection reset by peer|API connection failed|Make sure API port"
    )
    states = []
    core.connection.statusChanged += lambda s: states.append(s.state)

    await core.gateway.drop_connections()

    await wait_for(lambda: ConnectionState.CONNECTED in states, timeout=10, what="reconnect")
    assert states[0] is ConnectionState.DISCONNECTED
    assert ConnectionState.RECONNECTING in states
    assert core.connection.ib.isConnected()


async def test_refused_connections_back_off_then_succeed(core, ib_log_guard):
    ib_log_guard.expect(
        r"Peer closed connection|Connection reset by peer|API connection failed|Make sure API port"
    )
    statuses = []
    core.connection.statusChanged += statuses.append
    core.gateway.refuse_connections(1.0)

    await core.gateway.drop_connections()

    await wait_for(
        lambda: statuses and statuses[-1].state is ConnectionState.CONNECTED,
        timeout=15,
        what="reconnect after refusals",
    )
    attempts = [s.attempt for s in statuses if s.state is ConnectionState.RECONNECTING]
    assert max(attempts) >= 2
    delays = [s.next_retry_in for s in statuses if s.next_retry_in is not None]
    assert delays and all(d <= FAST.max_delay + FAST.jitter for d in delays)


async def test_fill_while_disconnected_is_delivered_once_after_reconnect(core, ib_log_guard):
    ib_log_guard.expect(
        r"Peer closed connection|Connection reset by peer|API connection failed|Make sure API port"
    )
    gw = core.gateway
    gw.freeze_market_data(True)
    aapl = gw.universe.find(symbol="AAPL")[0]
    bid = gw.market.quote(aapl.con_id).bid
    price = round(bid - 1.0, 2)
    trade = core.trades.place_order(
        await core.trades.qualify(create_stock_contract("AAPL")),
        create_limit_order("BUY", 10, price),
        "swing",
    )
    await wait_for(lambda: trade.orderStatus.status == "Submitted", what="working")
    fills = []
    core.trades.fillReceived += fills.append
    refuse_for = 0.5
    gw.refuse_connections(refuse_for)

    await gw.drop_connections()
    gw.set_price("AAPL", price - 0.5)  # the order fills while the console is away
    await wait_for(lambda: core.connection.ib.isConnected(), timeout=10, what="reconnect")
    await wait_for(lambda: len(fills) >= 1, timeout=5, what="the fill after reconnect")
    await core.trades.resync()  # the reconnect's resync, over (and once more: no duplicate)
    await settle(core.connection.ib)
    await core.trades.wait_journalled()

    assert len(fills) == 1
    assert fills[0].strategy == "swing"
    assert fills[0].quantity == 10
    assert [m["type"] for m in core.messages].count("fill") == 1
    order_state = [t for t in core.connection.ib.trades() if t.order.permId == trade.order.permId]
    assert order_state and order_state[0].orderStatus.status == "Filled"


async def test_connectivity_loss_and_restore_reported(core, ib_log_guard):
    ib_log_guard.expect(r"1100|1102|Connectivity")
    states = []
    core.connection.statusChanged += lambda s: states.append(s.state)

    core.gateway.connectivity_lost()
    await wait_for(lambda: ConnectionState.LINK_LOST in states, what="link lost")
    core.gateway.connectivity_restored()
    await wait_for(lambda: states[-1] is ConnectionState.CONNECTED, what="link restored")
