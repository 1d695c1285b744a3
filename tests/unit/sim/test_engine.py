"""The matching engine: order types, lifecycles, partial fills, brackets, validation."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.sim.engine import Engine
from core.sim.market import Market
from core.sim.model import (
    UNSET_DOUBLE,
    EngineEvent,
    ExecutionOccurred,
    OrderChanged,
    OrderError,
    OrderRejected,
    OrderRequest,
    OrderState,
)
from core.sim.universe import Universe

TODAY = dt.date(2026, 11, 25)
EASTERN = ZoneInfo("US/Eastern")
AAPL, MSFT, EURUSD = 265598, 272093, 12087792
ACCOUNTS = ["DU111111", "DU222222"]


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2026, 11, 25, 10, 0, tzinfo=EASTERN).timestamp())


@pytest.fixture(scope="module")
def universe() -> Universe:
    return Universe.default(TODAY)


@pytest.fixture
def market(universe: Universe, clock: FakeClock) -> Market:
    m = Market(universe, seed=11, clock=clock)
    m.set_quote(AAPL, bid=100.00, ask=100.01, last=100.00, bid_size=500, ask_size=500)
    m.set_quote(MSFT, bid=400.00, ask=400.02, last=400.00, bid_size=1000, ask_size=1000)
    return m


@pytest.fixture
def engine(universe: Universe, market: Market, clock: FakeClock) -> Engine:
    return Engine(universe, market, list(ACCOUNTS), clock=clock)


def order(order_id: int, action: str = "BUY", qty: float = 100, otype: str = "MKT", **kw: Any):
    kw.setdefault("con_id", AAPL)
    kw.setdefault("client_id", 1)
    return OrderRequest(
        order_id=order_id, action=action, total_quantity=qty, order_type=otype, **kw
    )


def changes(events: list[EngineEvent]) -> list[OrderChanged]:
    return [e for e in events if isinstance(e, OrderChanged)]


def fills(events: list[EngineEvent]) -> list[ExecutionOccurred]:
    return [e for e in events if isinstance(e, ExecutionOccurred)]


def states(events: list[EngineEvent], order_id: int | None = None) -> list[str]:
    return [
        e.order.state.value
        for e in changes(events)
        if order_id is None or e.order.request.order_id == order_id
    ]


def tick_market(market: Market, engine: Engine, **quote: float) -> list[EngineEvent]:
    """Move AAPL's quote (a new quote version) and run one matching pass."""
    market.set_quote(AAPL, **quote)
    return engine.on_market([AAPL])


# --- market orders ------------------------------------------------------------------------


def test_market_buy_fills_at_the_ask_immediately(engine: Engine) -> None:
    events = engine.place(order(1, "BUY", 100))
    assert [type(e).__name__ for e in events] == [
        "OrderChanged",
        "ExecutionOccurred",
        "OrderChanged",
    ]
    assert states(events) == ["Submitted", "Filled"]
    ex = fills(events)[0].execution
    assert (ex.side, ex.shares, ex.price, ex.cum_qty, ex.avg_price) == (
        "BOT",
        100,
        100.01,
        100,
        100.01,
    )
    assert ex.account == ACCOUNTS[0] and ex.exchange == "NASDAQ"
    done = engine.order(1, 1)
    assert done is not None and done.state == OrderState.FILLED and done.remaining == 0


def test_market_sell_fills_at_the_bid(engine: Engine) -> None:
    ex = fills(engine.place(order(1, "SELL", 100)))[0].execution
    assert (ex.side, ex.price) == ("SLD", 100.00)


def test_market_buy_larger_than_ask_size_fills_in_parts(engine: Engine, market: Market) -> None:
    events = engine.place(order(1, "BUY", 1200))
    assert [f.execution.shares for f in fills(events)] == [500]
    assert states(events) == ["Submitted", "Submitted"]
    # Same quote again: the displayed size is used up, nothing more fills.
    assert engine.on_market() == []
    events = tick_market(market, engine, ask=100.02, ask_size=400)
    assert [(f.execution.shares, f.execution.price) for f in fills(events)] == [(400, 100.02)]
    events = tick_market(market, engine, ask=100.03, ask_size=2000)
    assert [f.execution.shares for f in fills(events)] == [300]
    assert states(events) == ["Filled"]
    o = engine.order(1, 1)
    assert o is not None and o.filled == 1200
    assert o.avg_fill_price == pytest.approx((500 * 100.01 + 400 * 100.02 + 300 * 100.03) / 1200)


def test_orders_share_the_displayed_size_within_one_quote(engine: Engine) -> None:
    first = engine.place(order(1, "BUY", 300))
    second = engine.place(order(2, "BUY", 300))
    assert [f.execution.shares for f in fills(first)] == [300]
    assert [f.execution.shares for f in fills(second)] == [200]


def test_order_changed_events_carry_snapshots(engine: Engine, market: Market) -> None:
    events = engine.place(order(1, "BUY", 600))
    tick_market(market, engine, ask_size=1000)
    snapshot = changes(events)[-1].order
    assert snapshot.filled == 500 and snapshot.state == OrderState.SUBMITTED


# --- limit orders -------------------------------------------------------------------------


def test_limit_buy_below_the_ask_rests_then_fills_when_marketable(
    engine: Engine, market: Market
) -> None:
    events = engine.place(order(1, "BUY", 100, "LMT", lmt_price=99.50))
    assert states(events) == ["Submitted"] and not fills(events)
    assert not fills(tick_market(market, engine, bid=99.60, ask=99.62))
    events = tick_market(market, engine, bid=99.40, ask=99.45)
    ex = fills(events)[0].execution
    assert ex.price == 99.45  # the touch, better than the limit
    assert states(events) == ["Filled"]


def test_marketable_limit_fills_at_the_touch(engine: Engine) -> None:
    ex = fills(engine.place(order(1, "BUY", 100, "LMT", lmt_price=101.00)))[0].execution
    assert ex.price == 100.01
    ex = fills(engine.place(order(2, "SELL", 100, "LMT", lmt_price=99.00)))[0].execution
    assert ex.price == 100.00


def test_sell_limit_above_the_bid_rests(engine: Engine, market: Market) -> None:
    engine.place(order(1, "SELL", 100, "LMT", lmt_price=100.50))
    assert not fills(tick_market(market, engine, bid=100.40, ask=100.45))
    ex = fills(tick_market(market, engine, bid=100.50, ask=100.52))[0].execution
    assert ex.price == 100.50


# --- stops --------------------------------------------------------------------------------


def test_buy_stop_waits_presubmitted_until_last_crosses_then_fills_at_ask(
    engine: Engine, market: Market
) -> None:
    events = engine.place(order(1, "BUY", 100, "STP", aux_price=101.00))
    assert states(events) == ["PreSubmitted"]
    assert tick_market(market, engine, bid=100.50, ask=100.51, last=100.50) == []
    events = tick_market(market, engine, bid=101.00, ask=101.02, last=101.00)
    assert states(events) == ["Submitted", "Filled"]
    assert fills(events)[0].execution.price == 101.02


def test_sell_stop_triggers_when_last_falls_to_the_stop(engine: Engine, market: Market) -> None:
    engine.place(order(1, "SELL", 100, "STP", aux_price=99.00))
    events = tick_market(market, engine, bid=98.90, ask=98.95, last=98.95)
    assert fills(events)[0].execution.price == 98.90


def test_stop_limit_triggers_then_rests_as_a_limit(engine: Engine, market: Market) -> None:
    engine.place(order(1, "BUY", 100, "STP LMT", aux_price=101.00, lmt_price=101.05))
    # Triggered, but the ask is above the limit: Submitted, resting.
    events = tick_market(market, engine, bid=101.08, ask=101.10, last=101.10)
    assert states(events) == ["Submitted"] and not fills(events)
    events = tick_market(market, engine, bid=101.00, ask=101.04, last=101.00)
    assert fills(events)[0].execution.price == 101.04


def test_trailing_stop_follows_the_price_up_and_triggers_on_the_pullback(
    engine: Engine, market: Market
) -> None:
    market.set_quote(AAPL, bid=99.99, ask=100.01, last=100.00)
    events = engine.place(order(1, "SELL", 100, "TRAIL", aux_price=1.00))
    assert states(events) == ["PreSubmitted"]
    o = engine.order(1, 1)
    assert o is not None and o.trail_stop_price == 99.00
    tick_market(market, engine, bid=102.99, ask=103.01, last=103.00)
    assert o.trail_stop_price == 102.00
    assert tick_market(market, engine, bid=102.49, ask=102.51, last=102.50) == []
    assert o.trail_stop_price == 102.00  # a sell stop never moves down
    events = tick_market(market, engine, bid=101.98, ask=102.00, last=101.99)
    assert fills(events)[0].execution.price == 101.98


def test_trailing_percent_buy_stop(engine: Engine, market: Market) -> None:
    market.set_quote(AAPL, bid=99.99, ask=100.01, last=100.00)
    engine.place(order(1, "BUY", 100, "TRAIL", trailing_percent=2.0, aux_price=UNSET_DOUBLE))
    o = engine.order(1, 1)
    assert o is not None and o.trail_stop_price == 102.00
    tick_market(market, engine, bid=94.99, ask=95.01, last=95.00)
    assert o.trail_stop_price == 96.90
    assert fills(tick_market(market, engine, bid=96.90, ask=96.92, last=96.91))


# --- IOC, cancel ---------------------------------------------------------------------------


def test_ioc_fills_what_is_available_and_cancels_the_rest(engine: Engine) -> None:
    events = engine.place(order(1, "BUY", 800, tif="IOC"))
    assert [f.execution.shares for f in fills(events)] == [500]
    assert states(events) == ["Submitted", "Submitted", "Cancelled"]
    assert any(isinstance(e, OrderError) and e.code == 202 for e in events)
    o = engine.order(1, 1)
    assert o is not None and o.filled == 500 and o.state == OrderState.CANCELLED


def test_ioc_limit_not_marketable_is_cancelled_at_once(engine: Engine) -> None:
    events = engine.place(order(1, "BUY", 100, "LMT", lmt_price=99.00, tif="IOC"))
    assert not fills(events)
    assert states(events) == ["Submitted", "Cancelled"]


def test_cancel_working_order_emits_cancelled_then_error_202(engine: Engine) -> None:
    engine.place(order(1, "BUY", 100, "LMT", lmt_price=90.00))
    events = engine.cancel(1, 1)
    assert isinstance(events[0], OrderChanged) and events[0].order.state == OrderState.CANCELLED
    assert isinstance(events[1], OrderError)
    assert (events[1].code, events[1].message) == (202, "Order Canceled - reason:")
    assert engine.open_orders() == []
    assert [o.key for o in engine.completed_orders()] == [(1, 1)]


def test_nothing_fills_after_cancel(engine: Engine, market: Market) -> None:
    engine.place(order(1, "BUY", 1000))
    engine.cancel(1, 1)
    assert tick_market(market, engine, ask_size=5000) == []
    o = engine.order(1, 1)
    assert o is not None and o.filled == 500


def test_cancel_unknown_order_raises_10147(engine: Engine) -> None:
    with pytest.raises(OrderRejected) as exc:
        engine.cancel(1, 77)
    assert exc.value.code == 10147
    assert exc.value.message == "OrderId 77 that needs to be cancelled is not found."


def test_cancel_filled_order_raises_161(engine: Engine) -> None:
    engine.place(order(1))
    with pytest.raises(OrderRejected) as exc:
        engine.cancel(1, 1)
    assert exc.value.code == 161


def test_global_cancel_cancels_every_clients_working_orders(engine: Engine) -> None:
    engine.place(order(1, "BUY", 100, "LMT", lmt_price=90.00, client_id=1))
    engine.place(order(1, "BUY", 100, "LMT", lmt_price=91.00, client_id=2))
    engine.place(order(2, "SELL", 100, "STP", aux_price=80.00, client_id=2))
    events = engine.global_cancel()
    assert states(events) == ["Cancelled"] * 3
    assert engine.open_orders() == []


def test_open_orders_by_client(engine: Engine) -> None:
    engine.place(order(1, "BUY", 100, "LMT", lmt_price=90.00, client_id=1))
    engine.place(order(5, "BUY", 100, "LMT", lmt_price=91.00, client_id=2))
    assert [o.key for o in engine.open_orders(2)] == [(2, 5)]
    assert [o.key for o in engine.open_orders()] == [(1, 1), (2, 5)]


# --- modify --------------------------------------------------------------------------------


def test_modify_limit_price_makes_the_order_marketable(engine: Engine) -> None:
    engine.place(order(1, "BUY", 100, "LMT", lmt_price=99.00))
    events = engine.place(order(1, "BUY", 100, "LMT", lmt_price=100.05))
    assert states(events) == ["Submitted", "Filled"]
    assert fills(events)[0].execution.price == 100.01
    assert engine.order(1, 1).perm_id == 1_000_001  # type: ignore[union-attr]


def test_modify_quantity_of_a_partly_filled_order(engine: Engine, market: Market) -> None:
    engine.place(order(1, "BUY", 800))
    events = engine.place(order(1, "BUY", 600))
    assert states(events) == ["Submitted"]
    events = tick_market(market, engine, ask_size=1000)
    assert [f.execution.shares for f in fills(events)] == [100]
    assert states(events) == ["Filled"]


def test_modify_quantity_down_to_the_filled_quantity_fills_the_order(engine: Engine) -> None:
    engine.place(order(1, "BUY", 800))
    events = engine.place(order(1, "BUY", 500))
    assert states(events)[-1] == "Filled"


def test_modify_quantity_below_filled_is_rejected_201(engine: Engine) -> None:
    engine.place(order(1, "BUY", 800))
    with pytest.raises(OrderRejected) as exc:
        engine.place(order(1, "BUY", 300))
    assert exc.value.code == 201


def test_modify_cannot_change_the_side(engine: Engine) -> None:
    engine.place(order(1, "BUY", 100, "LMT", lmt_price=90.00))
    with pytest.raises(OrderRejected) as exc:
        engine.place(order(1, "SELL", 100, "LMT", lmt_price=90.00))
    assert exc.value.code == 105


def test_modify_a_filled_order_is_rejected_104(engine: Engine) -> None:
    engine.place(order(1))
    with pytest.raises(OrderRejected) as exc:
        engine.place(order(1, "BUY", 200))
    assert (exc.value.code, exc.value.message) == (104, "Can't modify a filled order")


def test_reusing_a_cancelled_order_id_is_rejected_103(engine: Engine) -> None:
    engine.place(order(1, "BUY", 100, "LMT", lmt_price=90.00))
    engine.cancel(1, 1)
    with pytest.raises(OrderRejected) as exc:
        engine.place(order(1, "BUY", 100, "LMT", lmt_price=90.00))
    assert (exc.value.code, exc.value.message) == (103, "Duplicate order id")


def test_modify_stop_into_limit(engine: Engine) -> None:
    engine.place(order(1, "BUY", 100, "STP", aux_price=110.00))
    events = engine.place(order(1, "BUY", 100, "LMT", lmt_price=100.01))
    assert states(events) == ["Submitted", "Filled"]


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("req", "code"),
    [
        (order(1, con_id=12345), 200),
        (order(1, qty=0), 434),
        (order(1, qty=-5), 201),
        (order(1, qty=10.5), 201),
        (order(1, qty=0.5), 388),
        (order(1, otype="LMT"), 201),
        (order(1, otype="LMT", lmt_price=0.0), 201),
        (order(1, otype="LMT", lmt_price=UNSET_DOUBLE), 201),
        (order(1, otype="LMT", lmt_price=100.005), 110),
        (order(1, otype="STP"), 201),
        (order(1, otype="STP", aux_price=100.001), 110),
        (order(1, otype="STP LMT", aux_price=100.0), 201),
        (order(1, otype="TRAIL"), 201),
        (order(1, otype="MOC"), 387),
        (order(1, tif="FOK"), 201),
        (order(1, action="SHORT"), 201),
        (order(1, parent_id=99), 10006),
        (order(1, account="U999"), 201),
    ],
)
def test_invalid_orders_are_rejected_with_ib_codes(
    engine: Engine, req: OrderRequest, code: int
) -> None:
    with pytest.raises(OrderRejected) as exc:
        engine.place(req)
    assert exc.value.code == code
    assert engine.open_orders() == [] and engine.order(1, 1) is None


def test_rejection_texts_are_ibs(engine: Engine) -> None:
    with pytest.raises(OrderRejected) as exc:
        engine.place(order(1, con_id=12345))
    assert exc.value.message == "No security definition has been found for the request"
    with pytest.raises(OrderRejected) as exc:
        engine.place(order(1, otype="LMT", lmt_price=100.005))
    assert exc.value.message == (
        "The price does not conform to the minimum price variation for this contract."
    )
    with pytest.raises(OrderRejected) as exc:
        engine.place(order(1, qty=0))
    assert exc.value.message == "The order size cannot be zero."
    with pytest.raises(OrderRejected) as exc:
        engine.place(order(1, qty=-5))
    assert exc.value.message.startswith("Order rejected - reason:")


def test_order_beyond_buying_power_is_rejected(engine: Engine) -> None:
    with pytest.raises(OrderRejected) as exc:
        engine.place(order(1, "BUY", 30_000, con_id=MSFT))  # 12M of stock on 1M equity
    assert exc.value.code == 201 and "MARGIN" in exc.value.message


def test_es_rejects_prices_off_the_quarter_tick(engine: Engine, universe: Universe) -> None:
    es = universe.find(symbol="ES")[0].con_id
    with pytest.raises(OrderRejected) as exc:
        engine.place(order(1, "BUY", 1, "LMT", con_id=es, lmt_price=5900.10))
    assert exc.value.code == 110
    engine.place(order(2, "BUY", 1, "LMT", con_id=es, lmt_price=5000.25))


def test_market_order_ignores_a_price_field(engine: Engine) -> None:
    events = engine.place(order(1, lmt_price=0.0, aux_price=UNSET_DOUBLE))
    assert states(events)[-1] == "Filled"


def test_what_if_order_via_place_is_refused(engine: Engine) -> None:
    with pytest.raises(OrderRejected):
        engine.place(order(1, what_if=True))


# --- faults --------------------------------------------------------------------------------


def test_reject_next_refuses_only_the_next_order(engine: Engine) -> None:
    engine.reject_next(201, "Order rejected - reason:simulated")
    with pytest.raises(OrderRejected) as exc:
        engine.place(order(1))
    assert (exc.value.code, exc.value.message) == (201, "Order rejected - reason:simulated")
    assert states(engine.place(order(2)))[-1] == "Filled"


def test_fill_delay_holds_fills_until_the_order_is_old_enough(
    engine: Engine, market: Market, clock: FakeClock
) -> None:
    engine.fill_delay_s = 2.0
    events = engine.place(order(1))
    assert states(events) == ["Submitted"] and not fills(events)
    clock.advance(1.0)
    assert engine.on_market() == []
    clock.advance(1.0)
    assert states(engine.on_market()) == ["Filled"]


# --- brackets and OCA ---------------------------------------------------------------------


def bracket(engine: Engine, qty: float = 100, tp: float = 101.00, sl: float = 99.00):
    """ib_async's bracketOrder: parent and take-profit with transmit=False, then the stop."""
    e1 = engine.place(order(1, "BUY", qty, "LMT", lmt_price=100.01, transmit=False))
    e2 = engine.place(order(2, "SELL", qty, "LMT", lmt_price=tp, parent_id=1, transmit=False))
    e3 = engine.place(order(3, "SELL", qty, "STP", aux_price=sl, parent_id=1))
    return e1, e2, e3


def test_untransmitted_orders_are_held_until_the_group_transmits(engine: Engine) -> None:
    e1, e2, e3 = bracket(engine)
    assert states(e1) == ["PreSubmitted"] and not fills(e1)
    assert states(e2) == ["PreSubmitted"]
    # The stop-loss transmits the whole group: the parent fills at once.
    assert [f.execution.order_id for f in fills(e3)] == [1]
    assert engine.order(1, 1).state == OrderState.FILLED  # type: ignore[union-attr]
    assert engine.order(1, 2).state == OrderState.SUBMITTED  # type: ignore[union-attr]
    assert engine.order(1, 3).state == OrderState.PRE_SUBMITTED  # type: ignore[union-attr]


def test_bracket_take_profit_fill_cancels_the_stop_loss(engine: Engine, market: Market) -> None:
    bracket(engine)
    events = tick_market(market, engine, bid=101.00, ask=101.02, last=101.01)
    assert [f.execution.order_id for f in fills(events)] == [2]
    assert engine.order(1, 2).state == OrderState.FILLED  # type: ignore[union-attr]
    assert engine.order(1, 3).state == OrderState.CANCELLED  # type: ignore[union-attr]
    assert any(isinstance(e, OrderError) and e.order_id == 3 and e.code == 202 for e in events)
    assert engine.positions() == []


def test_bracket_stop_loss_fill_cancels_the_take_profit(engine: Engine, market: Market) -> None:
    bracket(engine)
    events = tick_market(market, engine, bid=98.95, ask=98.97, last=98.96)
    assert [f.execution.order_id for f in fills(events)] == [3]
    assert engine.order(1, 2).state == OrderState.CANCELLED  # type: ignore[union-attr]


def test_children_stay_inactive_until_the_parent_fills(engine: Engine, market: Market) -> None:
    engine.place(order(1, "BUY", 100, "LMT", lmt_price=95.00, transmit=False))
    engine.place(order(2, "SELL", 100, "LMT", lmt_price=99.00, parent_id=1))
    # The child would be marketable (bid 100 >= 99) but its parent has not filled.
    assert engine.order(1, 2).state == OrderState.PRE_SUBMITTED  # type: ignore[union-attr]
    assert not fills(tick_market(market, engine, bid=100.00, ask=100.01))
    events = tick_market(market, engine, bid=94.98, ask=95.00)
    assert [f.execution.order_id for f in fills(events)] == [1]
    events = tick_market(market, engine, bid=99.00, ask=99.02)
    assert [f.execution.order_id for f in fills(events)] == [2]


def test_cancelling_a_parent_cancels_its_children(engine: Engine) -> None:
    engine.place(order(1, "BUY", 100, "LMT", lmt_price=95.00, transmit=False))
    engine.place(order(2, "SELL", 100, "LMT", lmt_price=99.00, parent_id=1))
    events = engine.cancel(1, 1)
    assert [(e.order.request.order_id, e.order.state.value) for e in changes(events)] == [
        (1, "Cancelled"),
        (2, "Cancelled"),
    ]


def test_oca_group_fill_cancels_the_other_members(engine: Engine, market: Market) -> None:
    engine.place(order(1, "BUY", 100, "LMT", lmt_price=99.00, oca_group="g"))
    engine.place(order(2, "BUY", 100, "LMT", lmt_price=98.00, oca_group="g"))
    events = tick_market(market, engine, bid=98.97, ask=98.99)
    assert [f.execution.order_id for f in fills(events)] == [1]
    assert engine.order(1, 2).state == OrderState.CANCELLED  # type: ignore[union-attr]


# --- executions, what-if, hours, days -----------------------------------------------------


def test_executions_filter_like_ib(engine: Engine, clock: FakeClock) -> None:
    engine.place(order(1, "BUY", 100, client_id=1))
    clock.advance(10)
    engine.place(order(1, "SELL", 100, client_id=2, con_id=MSFT, account=ACCOUNTS[1]))
    assert len(engine.executions()) == 2
    assert [e.client_id for e in engine.executions(client_id=2)] == [2]
    assert [e.con_id for e in engine.executions(symbol="msft")] == [MSFT]
    assert [e.side for e in engine.executions(side="BUY")] == ["BOT"]
    assert [e.account for e in engine.executions(account=ACCOUNTS[1])] == [ACCOUNTS[1]]
    assert len(engine.executions(sec_type="STK", exchange="SMART")) == 2
    assert engine.executions(sec_type="FUT") == []
    assert [e.client_id for e in engine.executions(since=clock.now)] == [2]


def test_exec_ids_and_perm_ids_are_unique_and_ib_shaped(engine: Engine, market: Market) -> None:
    engine.place(order(1, "BUY", 1200))
    tick_market(market, engine, ask_size=400)
    engine.place(order(2, "SELL", 100))
    execs = engine.executions()
    ids = [e.exec_id for e in execs]
    assert len(set(ids)) == len(ids) == 3
    assert ids[0] == f"{execs[0].perm_id:08x}.00000001.01.01"
    assert execs[0].perm_id < execs[2].perm_id


def test_what_if_estimates_margin_and_commission_without_executing(engine: Engine) -> None:
    result = engine.what_if(order(1, "BUY", 1000, "LMT", lmt_price=100.00, what_if=True))
    assert result.init_margin_before == 0
    assert result.init_margin_after == pytest.approx(50_000.0)
    assert result.maint_margin_after == pytest.approx(25_000.0)
    assert result.commission == pytest.approx(5.0)
    assert result.equity_with_loan_before == pytest.approx(1_000_000.0)
    assert engine.executions() == [] and engine.open_orders() == []
    with pytest.raises(OrderRejected):
        engine.what_if(order(2, otype="LMT", lmt_price=-1.0))


def test_enforced_trading_hours_hold_orders_until_the_open(
    universe: Universe, market: Market, clock: FakeClock
) -> None:
    clock.now = dt.datetime(2026, 11, 25, 8, 0, tzinfo=EASTERN).timestamp()
    engine = Engine(universe, market, ACCOUNTS, clock=clock, enforce_trading_hours=True)
    events = engine.place(order(1))
    assert states(events) == ["PreSubmitted"] and not fills(events)
    # Outside RTH allowed: pre-market (04:00-09:30) trades.
    assert states(engine.place(order(2, outside_rth=True)))[-1] == "Filled"
    clock.now = dt.datetime(2026, 11, 25, 9, 30, tzinfo=EASTERN).timestamp()
    market.set_quote(AAPL, ask_size=1000)
    assert states(engine.on_market()) == ["Submitted", "Filled"]


def test_day_orders_expire_at_the_next_date_gtc_orders_stay(
    engine: Engine, clock: FakeClock
) -> None:
    engine.place(order(1, "BUY", 100, "LMT", lmt_price=90.00))
    engine.place(order(2, "BUY", 100, "LMT", lmt_price=90.00, tif="GTC"))
    engine.place(order(3, "BUY", 100))
    clock.advance(86_400)
    events = engine.on_market()
    assert [(e.order.request.order_id, e.order.state.value) for e in changes(events)] == [
        (1, "Cancelled")
    ]
    assert [o.key for o in engine.open_orders()] == [(1, 2)]
    assert engine.executions() == [] and engine.completed_orders() == []
    assert engine.pnl(ACCOUNTS[0]).daily_pnl == pytest.approx(0.0)


def test_order_ids_are_per_client(engine: Engine) -> None:
    engine.place(order(1, client_id=1))
    events = engine.place(order(1, client_id=2))
    assert states(events)[-1] == "Filled"
