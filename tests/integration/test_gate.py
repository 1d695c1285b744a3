"""The gate holds up to the wire: against the simulated gateway, through a real socket.

Each test here failed on the console before the wire gate (issue 10): orders written
after HALTED from ib_async's throttle, risk bypassed by spelling, an order id reused
after an order was lost in a drop, and exceptions instead of refusals.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from ib_async import Contract, Order

from core.contracts import create_stock_contract
from core.emergency import EmergencyStop
from core.events import LOST, NOT_SENT, OrderUpdated, TradingState
from core.orders import create_limit_order, create_market_order
from core.risk import ACCOUNT, EMERGENCY_ACTOR, RiskLimits, RiskManager
from core.session import emergency_stop_for
from core.sim.protocol import In
from core.strategies import Strategy, StrategyManager, StrategyPermissions
from core.trading import OrderRefused
from helpers import settle, wait_for

PLACE_ORDER = In.PLACE_ORDER

pytestmark = pytest.mark.asyncio


class FakeStore:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def save_state(self, key: str, value: Any) -> None:
        self.data[key] = value

    async def load_state(self, key: str) -> Any:
        return self.data.get(key)


@dataclass
class WireTap:
    """Every placeOrder frame that reached the socket, with the trading state then."""

    risk: RiskManager
    frames: list[tuple[int, TradingState]] = field(default_factory=list)

    def install(self, client: Any) -> None:
        conn = client.conn
        write = conn.sendMsg

        def tapped(data: bytes) -> None:
            fields = data[4:].split(b"\0")
            if fields[0] == b"3":
                self.frames.append((int(fields[1]), self.risk.state_of(ACCOUNT)))
            write(data)

        conn.sendMsg = tapped


@dataclass
class Gate:
    core: Any
    risk: RiskManager
    stop: EmergencyStop
    tap: WireTap
    updates: list[OrderUpdated]


@pytest_asyncio.fixture
async def gate(core: Any, ib_log_guard: Any) -> AsyncIterator[Gate]:
    ib_log_guard.expect(r"Error 202, reqId \d+: Order Canceled")
    risk = RiskManager(
        RiskLimits(max_order_quantity=1_000, fat_finger_pct=10.0),
        store=FakeStore(),
        audit=core.trades.audit,
    )
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
    tap = WireTap(risk)
    tap.install(core.connection.ib.client)
    updates: list[OrderUpdated] = []
    core.trades.orderUpdated += updates.append
    yield Gate(core, risk, stop, tap, updates)


def mark(gw: Any, symbol: str) -> float:
    q = gw.market.quote(gw.universe.find(symbol=symbol)[0].con_id)
    return round((q.bid + q.ask) / 2, 2)


async def quoted(g: Gate, symbol: str) -> Contract:
    """A qualified contract whose quote risk knows (the fat-finger band needs one)."""
    gw = g.core.gateway
    inst = gw.universe.find(symbol=symbol)[0]
    q = gw.market.quote(inst.con_id)
    g.risk.on_quote(inst.con_id, bid=q.bid, ask=q.ask, last=q.last, symbol=symbol)
    return await g.core.trades.qualify(create_stock_contract(symbol))


# -- 1. nothing past HALTED --------------------------------------------------------------


async def test_halt_during_a_paced_burst_then_no_waiting_order_is_written(gate: Gate):
    g = gate
    wire = g.core.trades.wire
    wire.max_per_second = 5  # a burst larger than the pacing: most orders wait
    contract = await quoted(g, "AAPL")
    px = mark(g.core.gateway, "AAPL")
    trades = [
        g.core.trades.place_order(contract, create_limit_order("BUY", 1, round(px * 0.95, 2)), "a")
        for _ in range(20)
    ]
    assert wire.waiting > 0, "the burst should outrun the pacing"

    g.risk.set_trading_state(ACCOUNT, TradingState.HALTED, "test halt", "gui")
    # Every waiting frame is written or dropped as the pacing lets it through.
    await wait_for(lambda: wire.waiting == 0, 10, "the burst drained")
    await settle(g.core.connection.ib)

    after = [oid for oid, state in g.tap.frames if state is TradingState.HALTED]
    assert after == []
    not_sent = [t for t in trades if t.order.orderId not in {oid for oid, _ in g.tap.frames}]
    assert not_sent, "some orders must have been held back"
    for t in not_sent:
        assert t.isDone()
        assert t.log[-1].status == NOT_SENT
        assert "trading became HALTED" in t.log[-1].message
    ended = {u.order_id for u in g.updates if u.status == NOT_SENT}
    assert ended == {t.order.orderId for t in not_sent}
    strategy_news = [
        m for m in g.core.messages if m["type"] == "status" and m.get("status") == NOT_SENT
    ]
    assert len(strategy_news) == len(not_sent)


async def test_emergency_stop_under_a_burst_then_only_flattening_frames_while_halted(gate: Gate):
    g = gate
    g.core.trades.wire.max_per_second = 10
    contract = await quoted(g, "MSFT")
    filled = g.core.trades.place_order(contract, create_market_order("BUY", 50), "a")
    await wait_for(lambda: filled.orderStatus.status == "Filled", 10, "a position to flatten")
    await wait_for(lambda: g.risk.position(ACCOUNT, contract.conId) == 50, 5, "risk's position")
    for _ in range(30):  # whatever the pacing window holds, the burst outruns it
        g.core.trades.place_order(contract, create_market_order("BUY", 1), "a")

    result = await g.stop.stop("burst then stop")

    flatten_ids = {
        r.order_id
        for r in g.core.trades.audit.records
        if r.actor == EMERGENCY_ACTOR and r.action == "place"
    }
    while_halted = [oid for oid, state in g.tap.frames if state is TradingState.HALTED]
    assert flatten_ids, "the stop sends a flattening order"
    assert set(while_halted) <= flatten_ids, (while_halted, flatten_ids)
    assert result.flat
    assert all(abs(p.quantity) < 1e-9 for p in g.core.gateway.engine.positions())


# -- 2. one canonical order --------------------------------------------------------------


@pytest.mark.parametrize(
    ("order_type", "tif", "action"),
    [("lmt", "DAY", "BUY"), ("LMT ", "day", "buy"), (" Lmt", " DAY ", " Buy ")],
)
async def test_spelling_of_type_or_tif_then_same_fat_finger_refusal(
    gate: Gate, order_type: str, tif: str, action: str
):
    g = gate
    contract = await quoted(g, "AAPL")
    away = round(mark(g.core.gateway, "AAPL") * 1.4, 2)
    order = Order(action=action, totalQuantity=10, orderType=order_type, lmtPrice=away, tif=tif)

    with pytest.raises(OrderRefused) as refused:
        g.core.trades.place_order(contract, order, "a")

    assert any("fat-finger band" in r for r in refused.value.reasons)
    assert g.tap.frames == []


async def test_accepted_odd_spelling_then_exactly_the_canonical_order_is_sent(gate: Gate):
    g = gate
    contract = await quoted(g, "AAPL")
    near = round(mark(g.core.gateway, "AAPL") * 0.97, 2)
    order = Order(action=" buy", totalQuantity=5, orderType="lmt ", lmtPrice=near, tif="gtc")

    trade = g.core.trades.place_order(contract, order, "a")

    assert (trade.order.action, trade.order.orderType, trade.order.tif) == ("BUY", "LMT", "GTC")
    gw = g.core.gateway
    await wait_for(lambda: gw.engine.open_orders(), 5, "the order at the gateway")
    [at_gateway] = gw.engine.open_orders()
    req = at_gateway.request
    assert (req.action, req.order_type, req.tif) == ("BUY", "LMT", "GTC")
    assert req.lmt_price == pytest.approx(near)


# -- 3. order identity across a drop ---------------------------------------------------------


async def test_order_lost_in_a_drop_then_reported_lost_and_its_id_never_reused(
    gate: Gate, ib_log_guard: Any
):
    ib_log_guard.expect("Socket disconnect|Peer closed|disconnected|Connection reset")
    g = gate
    gw = g.core.gateway
    contract = await quoted(g, "AAPL")
    px = round(mark(gw, "AAPL") * 0.95, 2)
    g.core.trades.wire.max_per_second = 10_000  # no pacing in the way: written at once

    lost = g.core.trades.place_order(contract, create_limit_order("BUY", 3, px), "alpha")
    assert g.core.trades.wire.was_written(lost.order.orderId)
    for session in list(gw._sessions):  # the gateway dies before it reads the frame
        session.abort()

    reconnected = asyncio.get_running_loop().create_future()
    g.core.connection.connected += lambda again: reconnected.done() or reconnected.set_result(1)
    await asyncio.wait_for(reconnected, 15)
    await g.core.trades.resync()

    assert lost.isDone() and lost.log[-1].status == LOST
    assert "not resent" in lost.log[-1].message
    assert any(u.order_id == lost.order.orderId and u.status == LOST for u in g.updates)
    told = [m for m in g.core.messages if m.get("status") == LOST]
    assert [m["strategy"] for m in told] == ["alpha"]
    assert any(
        r.action == "lost" and r.order_id == lost.order.orderId for r in g.core.trades.audit.records
    )
    assert not gw.engine.open_orders(), "the gateway never saw it"

    other = g.core.trades.place_order(contract, create_limit_order("BUY", 4, px), "beta")
    assert other.order.orderId > lost.order.orderId
    await wait_for(lambda: len(gw.engine.open_orders()) == 1, 5, "beta's order working")

    g.core.trades.cancel_order(lost, actor="alpha")  # aims at the lost order: a no-op
    await settle(g.core.connection.ib)
    assert len(gw.engine.open_orders()) == 1, "beta's order must still be working"
    with pytest.raises(OrderRefused):
        g.core.trades.modify_order(lost, create_limit_order("BUY", 3, px))


# -- 4. every wrong input is a clear refusal -------------------------------------------------


def bad_orders() -> list[tuple[str, Any]]:
    good = {"action": "BUY", "totalQuantity": 10, "orderType": "LMT", "lmtPrice": 1.0, "tif": "DAY"}
    cases: list[tuple[str, Any]] = [
        ("quantity", {**good, "totalQuantity": True}),
        ("quantity", {**good, "totalQuantity": 10**30}),
        ("quantity", {**good, "totalQuantity": "abc"}),
        ("order type", {**good, "orderType": 5}),
        ("time in force", {**good, "orderType": None, "tif": 3}),
        ("time in force", {**good, "tif": ["DAY"]}),
        ("limit price", {**good, "lmtPrice": "1.0"}),
        ("action", {**good, "action": 1}),
        ("orderRef", {**good, "orderRef": 7}),
    ]
    out = []
    for what, kwargs in cases:
        order = Order()
        for k, v in kwargs.items():
            setattr(order, k, v)
        out.append((what, order))
    return out


@pytest.mark.parametrize(("what", "order"), bad_orders(), ids=[w for w, _ in bad_orders()])
async def test_malformed_order_then_refusal_naming_the_field(gate: Gate, what: str, order: Order):
    g = gate
    contract = await quoted(g, "AAPL")
    rejected: list[Any] = []
    g.core.trades.orderRejected += rejected.append

    with pytest.raises(OrderRefused) as refused:
        g.core.trades.place_order(contract, order, "a")

    assert any(what.split()[0] in r for r in refused.value.reasons), refused.value.reasons
    assert rejected and rejected[0].reasons == refused.value.reasons
    assert g.tap.frames == []


async def test_wrong_kinds_at_every_entry_point_then_refusals(gate: Gate):
    g = gate
    tm = g.core.trades
    contract = await quoted(g, "AAPL")
    px = round(mark(g.core.gateway, "AAPL") * 0.95, 2)
    with pytest.raises(OrderRefused):
        tm.place_order("AAPL", create_limit_order("BUY", 1, px), "a")  # type: ignore[arg-type]
    with pytest.raises(OrderRefused):
        tm.place_order(contract, "BUY 1 AAPL", "a")  # type: ignore[arg-type]
    with pytest.raises(OrderRefused):
        tm.place_order(contract, create_limit_order("BUY", 1, px), 42)  # type: ignore[arg-type]
    with pytest.raises(OrderRefused):
        tm.cancel_order("#1")  # type: ignore[arg-type]
    with pytest.raises(OrderRefused):
        tm.modify_order(None, create_limit_order("BUY", 1, px))  # type: ignore[arg-type]

    working = tm.place_order(contract, create_limit_order("BUY", 1, px), "a")
    with pytest.raises(OrderRefused) as refused:
        tm.modify_order_fields(working.order.orderId, quantity="abc")  # type: ignore[arg-type]
    assert "quantity 'abc' is not a number" in refused.value.reasons
    with pytest.raises(OrderRefused):
        tm.modify_order(working, "more")  # type: ignore[arg-type]
    assert working.orderStatus.status not in ("Cancelled", "Inactive")


async def test_strategy_permission_check_on_text_quantity_then_refusal(gate: Gate):
    g = gate
    sm: StrategyManager = g.core.strategies
    sm.register(Strategy("capped", StrategyPermissions(max_order_quantity=5)))
    contract = await quoted(g, "AAPL")
    order = create_market_order("BUY", 1)
    order.totalQuantity = "abc"  # type: ignore[assignment]

    with pytest.raises(OrderRefused) as refused:
        g.core.trades.place_order(contract, order, "capped")

    assert refused.value.reasons == ("quantity 'abc' is not a number",)


async def test_order_id_given_by_the_caller_then_refused(gate: Gate):
    g = gate
    contract = await quoted(g, "AAPL")
    order = create_limit_order("BUY", 1, round(mark(g.core.gateway, "AAPL") * 0.95, 2))
    order.orderId = 1
    with pytest.raises(OrderRefused) as refused:
        g.core.trades.place_order(contract, order, "a")
    assert "ids are never reused" in refused.value.reasons[0]


async def test_after_a_drop_the_trade_object_held_keeps_following_its_order(
    gate: Gate, ib_log_guard: Any
):
    ib_log_guard.expect("Socket disconnect|Peer closed|disconnected|Connection reset")
    g = gate
    gw = g.core.gateway
    contract = await quoted(g, "AAPL")
    mid = mark(gw, "AAPL")
    px = round(mid * 0.96, 2)
    working = g.core.trades.place_order(
        contract, create_limit_order("BUY", 2, round(mid * 0.91, 2)), "alpha"
    )
    filled = g.core.trades.place_order(contract, create_limit_order("BUY", 3, px), "alpha")
    await wait_for(lambda: len(gw.engine.open_orders()) == 2, 5, "two working orders")
    await wait_for(lambda: filled.orderStatus.status == "Submitted", 5, "acknowledged")

    reconnected = asyncio.get_running_loop().create_future()
    g.core.connection.connected += lambda again: reconnected.done() or reconnected.set_result(1)
    await gw.drop_connections()
    gw.set_price("AAPL", round(mid * 0.94, 2))  # fills the second order while the console is away
    await wait_for(lambda: len(gw.engine.open_orders()) == 1, 5, "a fill while disconnected")
    await asyncio.wait_for(reconnected, 15)
    await g.core.trades.resync()

    assert filled.orderStatus.status == "Filled"
    assert any(m.get("status") == "Filled" and m["trade"] is filled for m in g.core.messages)
    assert working.orderStatus.status == "Submitted"
    g.core.trades.cancel_order(working, actor="alpha")
    await wait_for(lambda: working.orderStatus.status == "Cancelled", 5, "the held object")
    assert not gw.engine.open_orders()


async def test_an_order_the_gateway_filled_after_the_link_dropped_unanswered_ends_filled(
    gate: Gate, ib_log_guard: Any, monkeypatch: pytest.MonkeyPatch
):
    """The gateway read the order and the link died before its answer reached the
    console: the console never learnt its perm id, and after the reconnect IB lists it
    only among completed orders (by perm id) and executions. The object held must end
    Filled, not stay PendingSubmit for the rest of the day (seen in the fault soak)."""
    ib_log_guard.expect("Socket disconnect|Peer closed|disconnected|Connection reset")
    g = gate
    gw = g.core.gateway
    contract = await quoted(g, "AAPL")
    g.core.trades.wire.max_per_second = 10_000  # no pacing in the way: written at once
    handlers = type(gw)._handlers
    place = handlers[PLACE_ORDER]

    def place_then_die(server: Any, session: Any, request: Any) -> None:
        for each in list(server._sessions):
            each.closed = True  # its answers never leave...
        place(server, session, request)  # ...though the gateway takes (and fills) it
        for each in list(server._sessions):
            each.abort()

    monkeypatch.setitem(handlers, PLACE_ORDER, place_then_die)
    reconnected = asyncio.get_running_loop().create_future()
    g.core.connection.connected += lambda again: reconnected.done() or reconnected.set_result(1)
    held = g.core.trades.place_order(contract, create_market_order("BUY", 5), "alpha")
    await asyncio.wait_for(reconnected, 15)
    monkeypatch.setitem(handlers, PLACE_ORDER, place)
    await wait_for(lambda: not gw.engine.open_orders(), 5, "filled at the gateway")
    await g.core.trades.resync()

    assert held.orderStatus.status == "Filled", [(e.status, e.message) for e in held.log]
    assert held.order.permId
    assert sum(f.execution.shares for f in held.fills) == 5
    assert any(u.order_id == held.order.orderId and u.status == "Filled" for u in g.updates)


async def test_new_trading_day_forgets_finished_orders_and_keeps_working_ones(gate: Gate):
    g = gate
    tm = g.core.trades
    gw = g.core.gateway
    contract = await quoted(g, "AAPL")
    done = tm.place_order(contract, create_market_order("BUY", 1), "alpha")
    working = tm.place_order(
        contract, create_limit_order("BUY", 1, round(mark(gw, "AAPL") * 0.95, 2)), "beta"
    )
    await wait_for(lambda: done.orderStatus.status == "Filled", 5, "a filled order")
    await wait_for(lambda: working.orderStatus.status == "Submitted", 5, "a working order")
    await tm.wait_journalled()

    assert tm.start_day() == 1

    key = (working.order.clientId, working.order.orderId)
    assert list(tm.records.strategy_of_order) == [key]
    assert tm.strategy_of(done) == "alpha"  # from its orderRef
    assert tm.wire.was_written(working.order.orderId)
    assert not tm.wire.was_written(done.order.orderId)
    assert tm.fills.handled, "without a journal, exec ids are the only guard against replays"
    g.core.trades.cancel_order(working, actor="beta")
    await wait_for(lambda: working.orderStatus.status == "Cancelled", 5, "still cancellable")


async def test_another_consoles_strategy_is_not_traded_from_here(gate: Gate):
    g = gate
    contract = await quoted(g, "AAPL")
    with pytest.raises(OrderRefused) as refused:
        g.core.trades.place_order(contract, create_market_order("SELL", 1), "momo@DU1-c2-pc")
    assert "belongs to another console (DU1-c2-pc)" in refused.value.reasons[0]
    assert g.tap.frames == []


async def test_read_only_session_writes_no_order_frame_whatever_calls_it(gateway: Any):
    from core.connection import ClientIdRegistry, Connection
    from core.trading import READONLY_REASON, TradeManager

    conn = Connection(
        "127.0.0.1", gateway.port, 3, timeout=5, readonly=True, registry=ClientIdRegistry()
    )
    tm = TradeManager(conn.ib, connection=conn)
    await conn.connect()
    try:
        [aapl] = await conn.ib.qualifyContractsAsync(create_stock_contract("AAPL"))
        with pytest.raises(OrderRefused) as refused:
            tm.place_order(aapl, create_market_order("BUY", 1), "a")
        assert refused.value.reasons[0] == READONLY_REASON
        with pytest.raises(OrderRefused):
            tm.cancel_all()
        dropped: list[Any] = []
        tm.wire.frameDropped += dropped.append
        conn.ib.placeOrder(aapl, create_market_order("BUY", 1))  # around the trade manager
        conn.ib.reqGlobalCancel()
        await settle(conn.ib)
        assert [d.order_id for d in dropped] and not gateway.engine.open_orders()
        assert not gateway.engine.executions()
    finally:
        await conn.disconnect()
