"""Handshake, startApi and the requests ib_async makes while connecting."""

from __future__ import annotations

import asyncio
import struct

import pytest
from ib_async import IB, MarketOrder, Stock
from ib_async.client import Client

from core.sim import MAX_CLIENT_VERSION, MIN_CLIENT_VERSION, SimGateway
from core.sim import protocol as p
from helpers import wait_for


def test_ib_async_supported_range() -> None:
    # The pin in pyproject relies on this: ib_async must accept what the gateway speaks.
    assert Client.MinClientVersion <= MIN_CLIENT_VERSION
    assert Client.MaxClientVersion >= MAX_CLIENT_VERSION
    assert Client.MinClientVersion <= p.DEFAULT_SERVER_VERSION <= Client.MaxClientVersion


@pytest.mark.asyncio
async def test_connect_when_default_then_ready_without_timeouts(gateway, ib, ib_log_guard):
    assert ib.isConnected()
    assert ib.client.serverVersion() == 178
    assert ib.managedAccounts() == ["DU0000001"]
    assert gateway.client_ids == [1]
    assert not [r for r in ib_log_guard.records if "timed out" in r.getMessage()]
    ib.disconnect()
    await wait_for(lambda: gateway.client_ids == [], what="the gateway sees the disconnect")


@pytest.mark.asyncio
async def test_connect_when_server_version_157_then_ready(sim):
    gw = await sim.gateway(server_version=157)
    ib = await sim.connect(gw, 3)
    assert ib.client.serverVersion() == 157
    assert ib.managedAccounts() == ["DU0000001"]
    assert await ib.reqCurrentTimeAsync()


@pytest.mark.asyncio
async def test_connect_when_several_accounts_then_all_managed(sim):
    gw = await sim.gateway(accounts=["DU1", "DU2"])
    ib = await sim.connect(gw, 1)
    assert ib.managedAccounts() == ["DU1", "DU2"]


async def _raw(gw: SimGateway, data: bytes, read: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(data)
    await writer.drain()
    got = await asyncio.wait_for(reader.read(), 5) if read else b""
    writer.close()
    return got


@pytest.mark.asyncio
async def test_handshake_when_range_excludes_version_then_closed_and_gateway_serves(
    gateway, sim, caplog
):
    got = await _raw(gateway, p.HELLO + p.frame_raw(b"v100..150"))
    assert got == b""  # closed without an answer
    assert "has no version in 157..178" in caplog.text
    ib = await sim.connect(gateway, 2)
    assert ib.isConnected()


async def _handshake(gw: SimGateway, offer: bytes) -> str:
    """The server version a raw client offering ``offer`` is answered with."""
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    try:
        writer.write(p.HELLO + p.frame_raw(offer))
        frames = p.FrameReader()
        payloads: list[bytes] = []
        while not payloads:
            data = await asyncio.wait_for(reader.read(1000), 5)
            assert data, "closed without an answer"
            payloads += frames.feed(data)
        return p.split_fields(payloads[0])[0]
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("offer", "expected"),
    [
        (b"v100..157", "157"),  # the case: an official client's older maximum
        (b"v100..163", "163"),
        (b"v157..176", "176"),
        (b"v170", "170"),
        (b"v100..200", "178"),  # a newer client gets the gateway's highest
    ],
)
@pytest.mark.asyncio
async def test_handshake_when_client_offers_older_maximum_then_negotiated_down(
    gateway, offer, expected
):
    assert await _handshake(gateway, offer) == expected


@pytest.mark.asyncio
async def test_handshake_when_gateway_capped_then_client_gets_the_cap(sim):
    gw = await sim.gateway(server_version=170)
    assert await _handshake(gw, b"v100..178") == "170"
    assert await _handshake(gw, b"v100..163") == "163"


@pytest.mark.parametrize("version", range(MIN_CLIENT_VERSION, MAX_CLIENT_VERSION + 1))
@pytest.mark.asyncio
async def test_ib_async_when_offering_each_version_then_served_at_it(sim, gateway, version):
    """ib_async capped at ``version`` connects, qualifies, streams, trades, replays."""
    ib = IB()
    sim.clients.append(ib)
    ib.client.MaxClientVersion = version  # what an older client would offer
    await ib.connectAsync("127.0.0.1", gateway.port, clientId=1, timeout=5)
    assert ib.client.serverVersion() == version
    assert ib.managedAccounts() == ["DU0000001"]
    (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    assert aapl.conId == 265598
    ticker = ib.reqMktData(aapl)
    gateway.set_price("AAPL", 200.0)
    await sim.settle(ib)
    assert ticker.bid > 0 and ticker.ask > ticker.bid
    trade = ib.placeOrder(aapl, MarketOrder("BUY", 1))
    for _ in range(50):
        if trade.isDone():
            break
        gateway.step_market()
        await sim.settle(ib)
    assert trade.orderStatus.status == "Filled"
    fills = await ib.reqExecutionsAsync()
    assert [f.execution.orderId for f in fills] == [trade.order.orderId]
    assert [t.order.permId for t in await ib.reqCompletedOrdersAsync(False)] == [trade.order.permId]


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        p.HELLO + b"\xff\xff\xff\xff" + b"x" * 100,
        p.HELLO + p.frame_raw(b"nonsense"),
        p.HELLO + p.frame_raw(b"v157..178") + struct.pack(">I", 3) + b"\xff\xfe\x00",
    ],
)
@pytest.mark.asyncio
async def test_garbage_when_sent_then_closed_and_gateway_alive(gateway, sim, garbage):
    await _raw(gateway, garbage)
    ib = await sim.connect(gateway, 2)
    assert await ib.reqCurrentTimeAsync()


@pytest.mark.asyncio
async def test_handshake_answer_is_version_and_time(gateway):
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(p.HELLO + p.frame_raw(b"v157..178"))
    frames = p.FrameReader()
    payloads: list[bytes] = []
    while not payloads:
        payloads += frames.feed(await asyncio.wait_for(reader.read(1000), 5))
    version, conn_time = p.split_fields(payloads[0])
    assert version == "178"
    assert conn_time.endswith(" UTC") and len(conn_time.split()) == 3
    writer.close()


@pytest.mark.asyncio
async def test_duplicate_client_id_when_connecting_then_326_and_closed(gateway, ib, ib_log_guard):
    ib_log_guard.expect("326")
    ib_log_guard.expect("API connection failed")
    ib_log_guard.expect("Peer closed connection|Connection reset by peer")
    second = IB()
    errors: list[int] = []
    second.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    with pytest.raises((TimeoutError, ConnectionError)):
        await second.connectAsync("127.0.0.1", gateway.port, clientId=1, timeout=1)
    assert 326 in errors
    assert ib.isConnected()
    assert gateway.client_ids == [1]


@pytest.mark.asyncio
async def test_reconnect_when_same_client_id_after_disconnect_then_accepted(gateway, ib, sim):
    ib.disconnect()
    again = await sim.connect(gateway, 1)
    assert again.isConnected()


@pytest.mark.asyncio
async def test_current_time_is_gateway_clock(sim):
    gw = await sim.gateway(clock=lambda: 1_800_000_000.0)
    ib = await sim.connect(gw, 1)
    now = await ib.reqCurrentTimeAsync()
    assert now.timestamp() == 1_800_000_000


@pytest.mark.asyncio
async def test_unsupported_request_when_sent_then_321_not_crash(gateway, ib):
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, msg, c: errors.append((req_id, code, msg))
    ib.client.send(12, 1, True)  # reqNewsBulletins: not simulated
    assert await ib.reqCurrentTimeAsync()
    assert [(r, c) for r, c, _ in errors] == [(-1, 321)]
    assert "unsupported message 12" in errors[0][2]


@pytest.mark.asyncio
async def test_start_api_when_client_has_working_orders_then_they_are_sent_unasked(
    gateway, ib, ib_log_guard
):
    # TWS sends a (re)connecting client id its working orders (openOrder + orderStatus)
    # before any reqOpenOrders.
    from ib_async import LimitOrder

    gateway.freeze_market_data(True)
    aapl = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(aapl)
    trade = ib.placeOrder(aapl, LimitOrder("BUY", 5, 100.0))
    await wait_for(lambda: trade.orderStatus.status == "Submitted", what="working")
    ib.disconnect()
    await wait_for(lambda: gateway.client_ids == [], what="gone")

    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(p.HELLO + p.frame_raw(b"v157..178"))
    frames = p.FrameReader()
    seen: list[list[str]] = []

    async def until(msg_id: str) -> None:
        while not any(f[0] == msg_id for f in seen):
            for payload in frames.feed(await asyncio.wait_for(reader.read(65536), 5)):
                seen.append(p.split_fields(payload))

    while not seen:  # the handshake's answer
        for payload in frames.feed(await asyncio.wait_for(reader.read(1000), 5)):
            seen.append(p.split_fields(payload))
    writer.write(p.frame_raw(b"71\x002\x001\x00\x00"))  # startApi as client 1, asking nothing
    await until("3")  # orderStatus
    writer.close()

    opened = [f for f in seen if f[0] == "5"]
    statuses = [f for f in seen if f[0] == "3"]
    assert opened and opened[0][1] == str(trade.order.orderId)
    assert statuses[0][1:3] == [str(trade.order.orderId), "Submitted"]
