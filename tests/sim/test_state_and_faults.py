"""State surviving a gateway restart, and every injected fault."""

from __future__ import annotations

import asyncio
import json

import pytest
from ib_async import IB, LimitOrder, MarketOrder, Stock

from core.sim import SimGateway, SimStateError
from helpers import wait_for

AAPL = 265598


async def aapl(ib: IB) -> Stock:
    (contract,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    return contract


@pytest.mark.asyncio
async def test_state_when_gateway_restarts_then_cash_positions_orders_executions_survive(
    sim, tmp_path
):
    path = tmp_path / "state.json"
    gw = await sim.gateway(state_path=path)
    ib = await sim.connect(gw, 1)
    contract = await aapl(ib)
    gw.market.set_quote(AAPL, bid=199.99, ask=200.01, bid_size=500, ask_size=500)
    filled = ib.placeOrder(contract, MarketOrder("BUY", 50, orderRef="keep"))
    await wait_for(filled.isDone, what="fill")
    working = ib.placeOrder(contract, LimitOrder("BUY", 5, 150.0, orderRef="rest"))
    await wait_for(lambda: working.orderStatus.status == "Submitted", what="working")
    cash = gw.engine.account_values("DU0000001")
    ib.disconnect()
    await gw.stop()
    assert json.loads(path.read_text())["engine"]["positions"]

    again = await sim.gateway(state_path=path)
    assert again.engine.account_values("DU0000001") == cash
    ib2 = await sim.connect(again, 1)
    assert [p.position for p in ib2.positions()] == [50]
    assert [t.order.orderRef for t in ib2.openTrades()] == ["rest"]
    assert [f.execution.orderRef for f in ib2.fills()] == ["keep"]
    # order ids continue after the restart: no 103 for a fresh order
    assert ib2.client.getReqId() > working.order.orderId
    again.set_price(AAPL, 149.0)
    (rest,) = ib2.openTrades()
    await wait_for(rest.isDone, what="restored order fills")


@pytest.mark.asyncio
async def test_state_when_file_corrupt_then_clear_error(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{ not json")
    gw = SimGateway("127.0.0.1", 0, state_path=path, tick_interval=0)
    with pytest.raises(SimStateError) as err:
        await gw.start()
    assert str(path) in str(err.value)
    path.write_text(json.dumps({"format": 1, "engine": {"version": 1}}))
    with pytest.raises(SimStateError):
        await SimGateway("127.0.0.1", 0, state_path=path, tick_interval=0).start()
    assert path.read_text() == json.dumps({"format": 1, "engine": {"version": 1}})  # untouched


@pytest.mark.asyncio
async def test_drop_connections_when_called_then_clients_disconnected_and_can_reconnect(
    ib, gateway, sim, ib_log_guard
):
    ib_log_guard.expect("Peer closed connection|Connection reset by peer")
    dropped = asyncio.Event()
    ib.disconnectedEvent += dropped.set
    await gateway.drop_connections()
    await asyncio.wait_for(dropped.wait(), 5)
    assert not ib.isConnected()
    await wait_for(lambda: gateway.client_ids == [], what="session gone")
    again = await sim.connect(gateway, 1)
    assert again.isConnected()


@pytest.mark.asyncio
async def test_refuse_connections_when_called_then_refused_until_over(
    gateway, ib, sim, ib_log_guard
):
    ib_log_guard.expect("API connection failed")
    ib_log_guard.expect("Make sure API port")
    gateway.refuse_connections(0.3)
    with pytest.raises(ConnectionRefusedError):
        await sim.connect(gateway, 2)
    assert ib.isConnected()  # open sessions stay
    assert await ib.reqCurrentTimeAsync()
    await wait_for(lambda: gateway.accepting, timeout=5, what="listening again")
    other = await sim.connect(gateway, 2)
    assert other.isConnected()


@pytest.mark.asyncio
async def test_reject_next_order_when_set_then_error_with_that_code(ib, gateway, ib_log_guard):
    ib_log_guard.expect("Error 201")
    ib_log_guard.expect("Canceled order")
    contract = await aapl(ib)
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, msg, c: errors.append((req_id, code, msg))
    gateway.reject_next_order(201, "Order rejected - reason:simulated")
    trade = ib.placeOrder(contract, LimitOrder("BUY", 1, 100.0))
    await wait_for(trade.isDone, what="rejected")
    assert errors == [(trade.order.orderId, 201, "Order rejected - reason:simulated")]
    after = ib.placeOrder(contract, LimitOrder("BUY", 1, 100.0))
    await wait_for(lambda: after.orderStatus.status == "Submitted", what="next accepted")


@pytest.mark.asyncio
async def test_delay_fills_when_set_then_fill_arrives_later(sim):
    # The gateway's clock moves only when the test says so: the delay is measured on it,
    # so the outcome does not depend on how busy the machine is.
    now = [1_772_463_600.0]  # Monday 2 March 2026, 10:00 in New York: AAPL trades
    gateway = await sim.gateway(clock=lambda: now[0])
    ib = await sim.connect(gateway, 1)
    contract = await aapl(ib)
    gateway.market.set_quote(AAPL, bid=199.99, ask=200.01, bid_size=500, ask_size=500)
    gateway.delay_fills(300)
    trade = ib.placeOrder(contract, MarketOrder("BUY", 10))
    await wait_for(lambda: trade.orderStatus.status == "Submitted", what="ack")
    now[0] += 0.25  # (steps a float at this epoch holds exactly)
    gateway.step_market()
    await sim.settle(ib)
    assert not trade.fills  # 250 ms: short of the delay
    now[0] += 0.0625  # 312.5 ms: past it
    gateway.step_market()
    await wait_for(trade.isDone, what="delayed fill")
    assert trade.orderStatus.status == "Filled"


@pytest.mark.asyncio
async def test_freeze_market_data_when_frozen_then_no_ticks(ib, gateway, sim):
    contract = await aapl(ib)
    ticker = ib.reqMktData(contract)
    await wait_for(lambda: ticker.bid > 0, what="first quote")
    updates = 0

    def count(_t: object) -> None:
        nonlocal updates
        updates += 1

    ticker.updateEvent += count
    gateway.freeze_market_data()
    gateway.step_market(50)
    await sim.settle(ib)
    assert updates == 0
    gateway.freeze_market_data(False)
    gateway.step_market(50)
    await wait_for(lambda: updates > 0, what="ticks again")


@pytest.mark.asyncio
async def test_pacing_violation_when_sent_then_error_100(ib, gateway, ib_log_guard):
    ib_log_guard.expect("Error 100")
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, c: errors.append(code)
    gateway.send_pacing_violation()
    await wait_for(lambda: errors == [100], what="error 100")


@pytest.mark.asyncio
@pytest.mark.parametrize(("data_lost", "code"), [(False, 1102), (True, 1101)])
async def test_connectivity_when_lost_and_restored_then_1100_then_110x(
    ib, gateway, ib_log_guard, data_lost, code
):
    ib_log_guard.expect("Error 110[012]")
    errors: list[int] = []
    ib.errorEvent += lambda req_id, c, msg, contract: errors.append(c)
    gateway.connectivity_lost()
    await wait_for(lambda: errors == [1100], what="1100")
    assert ib.isConnected()
    gateway.connectivity_restored(data_lost=data_lost)
    await wait_for(lambda: errors == [1100, code], what=str(code))


@pytest.mark.asyncio
async def test_slow_client_when_buffer_overflows_then_dropped_others_served(
    gateway, sim, monkeypatch
):
    import socket

    import core.sim.server as server
    from core.sim import protocol as p

    monkeypatch.setattr(server, "MAX_SEND_BUFFER", 100_000)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", gateway.port))
    _reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(p.HELLO + p.frame_raw(b"v157..178") + p.encode([71, 2, 42, ""]))
    await writer.drain()
    await wait_for(lambda: 42 in gateway.client_ids, what="raw client up")
    writer.transport.pause_reading()  # a client that never reads
    contract = [AAPL, "", "", "", 0.0, "", "", "", "", "", "", ""]
    for req_id in range(40):  # each answer is about a megabyte of 5-second bars
        writer.write(
            p.encode([20, req_id, *contract, 0, "", "5 secs", "1 D", 0, "TRADES", 2, 0, ""])
        )
    await writer.drain()
    await wait_for(lambda: 42 not in gateway.client_ids, timeout=10, what="slow client dropped")
    ib = await sim.connect(gateway, 1)
    assert await ib.reqCurrentTimeAsync()
    writer.close()


@pytest.mark.asyncio
async def test_state_when_fill_happens_then_written_without_stop(sim, tmp_path):
    path = tmp_path / "state.json"
    gw = await sim.gateway(state_path=path)
    ib = await sim.connect(gw, 1)
    contract = await aapl(ib)
    gw.market.set_quote(AAPL, bid=199.99, ask=200.01, bid_size=500, ask_size=500)
    trade = ib.placeOrder(contract, MarketOrder("BUY", 5))
    await wait_for(trade.isDone, what="fill")
    await wait_for(
        lambda: path.exists() and json.loads(path.read_text())["engine"]["executions"],
        what="state written",
    )
    assert not list(tmp_path.glob("*.tmp"))  # atomic: no temporary file left behind


@pytest.mark.asyncio
@pytest.mark.parametrize(("data_lost", "code"), [(False, 1102), (True, 1101)])
async def test_nightly_reset_when_played_then_dropped_refused_logged_out_then_restored(
    ib, gateway, sim, ib_log_guard, data_lost, code
):
    ib_log_guard.expect("Peer closed connection|Connection reset by peer")
    ib_log_guard.expect("API connection failed|Make sure API port")
    ib_log_guard.expect("Error 110[012]")
    contract = await aapl(ib)
    working = ib.placeOrder(contract, LimitOrder("BUY", 5, 150.0, orderRef="rest"))
    await wait_for(lambda: working.orderStatus.status == "Submitted", what="working")
    dropped = asyncio.Event()
    ib.disconnectedEvent += dropped.set

    reset = gateway.nightly_reset(down_for=0.4, relogin_for=0.4, data_lost=data_lost)

    await asyncio.wait_for(dropped.wait(), 5)
    with pytest.raises(ConnectionRefusedError):  # TWS is restarting
        await sim.connect(gateway, 2)
    await wait_for(lambda: gateway.link_down and gateway.accepting, what="listening")
    again = IB()
    sim.clients.append(again)
    codes: list[int] = []
    again.errorEvent += lambda req_id, c, msg, contract: codes.append(c)
    await again.connectAsync("127.0.0.1", gateway.port, clientId=1, timeout=5)
    ticker = again.reqMktData(contract)
    gateway.step_market(20)
    await sim.settle(again)
    assert codes[:3] == [1100, 2103, 2105]  # up, but not logged in to IB
    assert ticker.bid != ticker.bid  # NaN: no data while logged out
    assert [t.order.permId for t in again.openTrades()] == [working.order.permId]

    await asyncio.wait_for(reset, 5)
    await sim.settle(again)

    assert codes[3:] == [code, 2104, 2106, 2158]
    if data_lost:  # the subscription is gone: asked again, data flows
        assert ticker.bid != ticker.bid
        again.cancelMktData(contract)
        ticker = again.reqMktData(contract)
    await wait_for(lambda: ticker.bid > 0, what="quotes after the reset")
