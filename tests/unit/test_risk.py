"""RiskManager without a gateway: limits, states, health, utilization, drawdown, sizing."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from ib_async import Contract, Order

from core.breach import wants_emergency_stop
from core.connection import ConnectionState, ConnectionStatusChanged
from core.events import MANUAL, OrderUpdated, PnLChanged, PositionChanged, TradingState
from core.flatten import FlattenAuthority, FlattenIntent
from core.risk import (
    ACCOUNT,
    EMERGENCY_ACTOR,
    IB_MAX_MESSAGES_PER_SECOND,
    STATE_KEY,
    RiskLimitBreached,
    RiskLimits,
    RiskManager,
    RiskPolicy,
    SizingParams,
    TradingHours,
    contract_scope,
    limits_from_settings,
    size_by_volatility,
    volatility_size,
)
from core.trading import OrderIntent
from core.wire import MAX_MESSAGES_PER_SECOND
from helpers import Timers

AAPL, MSFT = 265598, 272093


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeStore:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def save_state(self, key: str, value: Any) -> None:
        self.data[key] = copy.deepcopy(value)

    async def load_state(self, key: str) -> Any:
        return copy.deepcopy(self.data.get(key))


def stock(symbol: str = "AAPL", con_id: int | None = None) -> Contract:
    if con_id is None:
        con_id = {"AAPL": AAPL, "MSFT": MSFT}.get(symbol, 0)
    return Contract(secType="STK", symbol=symbol, exchange="SMART", currency="USD", conId=con_id)


def intent(
    action: str,
    qty: float,
    *,
    symbol: str = "AAPL",
    strategy: str = MANUAL,
    actor: str | None = None,
    order_type: str = "MKT",
    lmt: float | None = None,
    aux: float | None = None,
    contract: Contract | None = None,
    order: Order | None = None,
    replaces: Order | None = None,
    flatten: FlattenIntent | None = None,
) -> OrderIntent:
    if order is None:
        order = Order(action=action, totalQuantity=qty, orderType=order_type)
        if lmt is not None:
            order.lmtPrice = lmt
        if aux is not None:
            order.auxPrice = aux
    return OrderIntent(
        strategy,
        actor or strategy,
        contract or stock(symbol),
        order,
        replaces=replaces,
        flatten=flatten,
    )


def make(limits: RiskLimits | None = None, **kwargs: Any) -> RiskManager:
    risk = RiskManager(limits, clock=kwargs.pop("clock", FakeClock()), **kwargs)
    risk.on_quote(AAPL, bid=99.99, ask=100.01, last=100.0, symbol="AAPL")
    risk.on_quote(MSFT, bid=49.99, ask=50.01, last=50.0, symbol="MSFT")
    return risk


def refused(risk: RiskManager, i: OrderIntent) -> tuple[str, ...]:
    decision = risk.check(i)
    assert not decision.approved, "expected a refusal"
    return decision.reasons


def approved(risk: RiskManager, i: OrderIntent) -> None:
    decision = risk.check(i)
    assert decision.approved, decision.reasons


def working(
    risk: RiskManager,
    order_id: int,
    action: str,
    remaining: float,
    *,
    con_id: int = AAPL,
    symbol: str = "AAPL",
    strategy: str = MANUAL,
    status: str = "Submitted",
) -> None:
    risk.on_order_update(
        OrderUpdated(
            order_id=order_id,
            perm_id=0,
            client_id=1,
            strategy=strategy,
            account="DU1",
            con_id=con_id,
            symbol=symbol,
            sec_type="STK",
            action=action,
            quantity=remaining,
            order_type="LMT",
            limit_price=1.0,
            stop_price=None,
            tif="DAY",
            status=status,
            filled=0.0,
            remaining=remaining,
            avg_fill_price=None,
        )
    )


def strategy_position(strategy: str, con_id: int, qty: float, symbol: str = "AAPL") -> Any:
    return PositionChanged(
        strategy=strategy,
        account="DU1",
        con_id=con_id,
        symbol=symbol,
        sec_type="STK",
        currency="USD",
        multiplier=1.0,
        quantity=qty,
        avg_cost=100.0,
        last=None,
        market_value=None,
        unrealized_pnl=None,
        realized_pnl=0.0,
        daily_pnl=None,
        commissions=0.0,
    )


# -- each limit: the order that would breach is refused, one just under passes ---------------


def test_max_order_quantity_when_exceeded_then_refused_and_at_limit_passes():
    risk = make(RiskLimits(max_order_quantity=1000))

    reasons = refused(risk, intent("BUY", 1001))

    assert reasons == ("max order quantity 1,000 shares: this order is 1,001",)
    approved(risk, intent("BUY", 1000))


def test_max_order_notional_values_the_order_as_the_ticket_does():
    # limit price, else stop price, else the side it trades at (ask to buy, bid to
    # sell), else the mark: core.orders.valuation_price, the ticket's notional too
    risk = make(RiskLimits(max_order_notional=50_000))

    assert refused(risk, intent("BUY", 500)) == (
        "max order notional 50,000: this order is 50,005",  # 500 x the ask 100.01
    )
    approved(risk, intent("BUY", 499))
    assert refused(risk, intent("SELL", 501)) == (
        "max order notional 50,000: this order is 50,094.99",  # 501 x the bid 99.99
    )
    assert refused(risk, intent("BUY", 400, order_type="LMT", lmt=130.0)) == (
        "max order notional 50,000: this order is 52,000",
    )
    assert refused(risk, intent("BUY", 400, order_type="STP", aux=126.0)) == (
        "max order notional 50,000: this order is 50,400",  # at its stop, not the mark
    )
    risk.on_quote(AAPL, bid=None, ask=None, last=100.0, symbol="AAPL")
    approved(risk, intent("BUY", 500))  # no bid/ask: the mark (last)


def test_valuation_price_is_one_rule_for_every_order_type():
    from ib_async import Order

    from core.orders import valuation_price

    quote = {"bid": 99.0, "ask": 101.0, "mark": 100.0}
    assert valuation_price(Order(action="BUY", orderType="MKT"), **quote) == 101.0
    assert valuation_price(Order(action="SELL", orderType="MKT"), **quote) == 99.0
    assert valuation_price(Order(action="BUY", orderType="LMT", lmtPrice=98.5), **quote) == 98.5
    assert valuation_price(Order(action="SELL", orderType="STP", auxPrice=95.0), **quote) == 95.0
    assert (
        valuation_price(Order(action="BUY", orderType="STP LMT", lmtPrice=102, auxPrice=101.5))
        == 102
    )
    assert valuation_price(Order(action="BUY", orderType="MKT"), mark=100.0) == 100.0
    assert valuation_price(Order(action="BUY", orderType="MKT")) is None
    spread = Order(action="BUY", orderType="LMT", lmtPrice=-0.35)
    assert valuation_price(spread) == -0.35  # a calendar spread trades below zero


def test_max_position_when_order_would_exceed_then_refused_naming_the_value():
    risk = make(RiskLimits(max_position_quantity=1000))
    risk.on_account_position(AAPL, 800, symbol="AAPL")

    assert refused(risk, intent("BUY", 400)) == (
        "max position AAPL 1,000 shares: this order would make it 1,200",
    )
    approved(risk, intent("BUY", 200))


def test_max_position_counts_working_orders_on_the_same_side():
    risk = make(RiskLimits(max_position_quantity=1000))
    risk.on_account_position(AAPL, 800, symbol="AAPL")
    working(risk, 1, "BUY", 150)

    reasons = refused(risk, intent("BUY", 100))

    assert reasons == (
        "max position AAPL 1,000 shares: this order would make it 1,050 (with 150 working)",
    )
    approved(risk, intent("BUY", 50))


def test_modification_does_not_count_the_order_it_replaces():
    risk = make(RiskLimits(max_position_quantity=1000, max_working_orders=1))
    old = Order(action="BUY", totalQuantity=900, orderType="LMT", clientId=1, orderId=7)
    working(risk, 7, "BUY", 900)

    approved(risk, intent("BUY", 1000, order_type="LMT", lmt=100.0, replaces=old))
    reasons = refused(risk, intent("BUY", 200, order_type="LMT", lmt=100.0))
    assert any("max working orders 1: this order would make it 2" in r for r in reasons)


def test_max_position_notional():
    risk = make(RiskLimits(max_position_notional=100_000))
    risk.on_account_position(AAPL, 900, symbol="AAPL")

    assert refused(risk, intent("BUY", 101)) == (
        "max position notional AAPL 100,000: this order would make it 100,100",
    )
    approved(risk, intent("BUY", 100))


def test_max_gross_exposure_sums_longs_and_shorts():
    risk = make(RiskLimits(max_gross_exposure=100_000))
    risk.on_account_position(AAPL, 500, symbol="AAPL")  # 50,000
    risk.on_account_position(MSFT, -600, symbol="MSFT")  # -30,000

    assert refused(risk, intent("SELL", 401, symbol="MSFT")) == (
        "max gross exposure 100,000: this order would make it 100,050",
    )
    approved(risk, intent("SELL", 400, symbol="MSFT"))


def test_max_net_exposure():
    risk = make(RiskLimits(max_net_exposure=30_000))
    risk.on_account_position(AAPL, 500, symbol="AAPL")  # +50,000
    risk.on_account_position(MSFT, -600, symbol="MSFT")  # -30,000: net 20,000

    assert refused(risk, intent("BUY", 101)) == (
        "max net exposure 30,000: this order would make it 30,100",
    )
    approved(risk, intent("BUY", 100))


def test_max_working_orders():
    risk = make(RiskLimits(max_working_orders=2))
    working(risk, 1, "BUY", 10)
    approved(risk, intent("BUY", 10, order_type="LMT", lmt=99.0))
    working(risk, 2, "BUY", 10)

    assert refused(risk, intent("BUY", 10, order_type="LMT", lmt=99.0)) == (
        "max working orders 2: this order would make it 3",
    )
    working(risk, 2, "BUY", 0, status="Cancelled")
    approved(risk, intent("BUY", 10, order_type="LMT", lmt=99.0))


def test_max_orders_per_second_with_a_sliding_window():
    clock = FakeClock()
    risk = make(RiskLimits(max_orders_per_second=3), clock=clock)
    for _ in range(3):
        approved(risk, intent("BUY", 1))

    assert refused(risk, intent("BUY", 1)) == (
        "max orders per second 3: this order would make it 4 in the last second",
    )
    clock.t += 1.0
    approved(risk, intent("BUY", 1))


def test_console_wide_ib_message_cap():
    clock = FakeClock()
    risk = make(clock=clock)
    for _ in range(IB_MAX_MESSAGES_PER_SECOND):
        approved(risk, intent("BUY", 1))

    reasons = refused(risk, intent("BUY", 1))

    # One number paces the wire and caps the gate (core.wire.MAX_MESSAGES_PER_SECOND).
    assert IB_MAX_MESSAGES_PER_SECOND == MAX_MESSAGES_PER_SECOND < 50
    n = IB_MAX_MESSAGES_PER_SECOND
    assert reasons == (
        f"IB message cap {n} per second (whole console): this order would make it {n + 1} "
        "in the last second",
    )


def test_daily_loss_limit_refuses_opening_orders_once_reached():
    risk = make(RiskLimits(daily_loss_limit=5000))
    risk.on_pnl(PnLChanged(None, -4999.0, 0.0, -4999.0))
    approved(risk, intent("BUY", 1))

    risk.on_pnl(PnLChanged(None, -5200.0, 0.0, -5200.0))

    assert "daily loss limit 5,000: the day's loss is 5,200" in refused(risk, intent("BUY", 1))


def test_daily_loss_limit_pct_of_starting_net_liquidation():
    risk = make(RiskLimits(daily_loss_limit_pct=2))
    risk.on_net_liquidation(100_000)
    risk.on_pnl(PnLChanged(None, -1999.0, 0.0, -1999.0))
    approved(risk, intent("BUY", 1))

    risk.on_pnl(PnLChanged(None, -2000.0, 0.0, -2000.0))

    assert "daily loss limit 2% of net liquidation (2,000): the day's loss is 2,000" in refused(
        risk, intent("BUY", 1)
    )


def test_max_drawdown_from_the_days_high_water_mark():
    risk = make(RiskLimits(max_drawdown=3000))
    risk.on_pnl(PnLChanged(None, 4000.0, 0.0, 4000.0))
    risk.on_pnl(PnLChanged(None, 1001.0, 0.0, 1001.0))
    approved(risk, intent("BUY", 1))

    risk.on_pnl(PnLChanged(None, 1000.0, 0.0, 1000.0))

    assert "max drawdown 3,000: the day's P&L is 3,000 below its high" in refused(
        risk, intent("BUY", 1)
    )


def test_fat_finger_band_on_limit_and_stop_prices():
    risk = make(RiskLimits(fat_finger_pct=5))

    assert refused(risk, intent("BUY", 1, order_type="LMT", lmt=106.0)) == (
        "fat-finger band 5%: price 106 is 6% from the market 100",
    )
    approved(risk, intent("BUY", 1, order_type="LMT", lmt=104.9))
    assert refused(risk, intent("SELL", 1, order_type="STP", aux=94.0)) == (
        "fat-finger band 5%: price 94 is 6% from the market 100",
    )


def test_fat_finger_without_a_market_price_then_refused():
    risk = make(RiskLimits(fat_finger_pct=5))

    reasons = refused(risk, intent("BUY", 1, symbol="XYZ", order_type="LMT", lmt=10.0))

    assert reasons == ("no market price for XYZ: cannot check the fat-finger band",)


def test_trading_hours_refuse_opening_orders_outside_the_window():
    at = [datetime(2025, 3, 4, 15, 0, tzinfo=UTC)]  # 10:00 New York, a Tuesday
    hours = TradingHours.parse("09:30-16:00 America/New_York")
    risk = make(RiskLimits(trading_hours=hours), now=lambda: at[0])
    approved(risk, intent("BUY", 1))

    at[0] = datetime(2025, 3, 4, 22, 0, tzinfo=UTC)  # 17:00 New York

    assert refused(risk, intent("BUY", 1)) == (
        "trading hours 09:30-16:00 America/New_York: it is Tue 17:00 there",
    )


def test_every_reason_is_listed_at_once():
    risk = make(RiskLimits(max_order_quantity=10, max_position_quantity=10, fat_finger_pct=1))

    reasons = refused(risk, intent("BUY", 20, order_type="LMT", lmt=110.0))

    assert len(reasons) == 3
    assert [r.split(" ")[0] for r in reasons] == ["max", "max", "fat-finger"]


def test_strategy_limits_apply_with_the_strategy_named():
    risk = RiskManager(None, {"momo": RiskLimits(max_order_quantity=100)}, clock=FakeClock())

    reasons = refused(risk, intent("BUY", 101, strategy="momo"))

    assert reasons == ("max order quantity 100 shares (strategy momo): this order is 101",)
    approved(risk, intent("BUY", 101, strategy="other"))


# -- reducing orders are never refused by a limit -------------------------------------------------


def test_reducing_order_passes_every_limit():
    clock = FakeClock()
    tiny = RiskLimits(
        max_order_quantity=1,
        max_order_notional=1,
        max_position_quantity=1,
        max_position_notional=1,
        max_gross_exposure=1,
        max_net_exposure=1,
        max_working_orders=1,
        max_orders_per_second=1,
        daily_loss_limit=1,
        max_drawdown=1,
        fat_finger_pct=1,
    )
    risk = make(tiny, clock=clock)
    risk.on_account_position(AAPL, 1000, symbol="AAPL")
    risk.on_pnl(PnLChanged(None, -10_000.0, 0.0, -10_000.0))
    working(risk, 1, "BUY", 5)
    working(risk, 2, "BUY", 5)

    approved(risk, intent("SELL", 500, order_type="LMT", lmt=50.0))
    approved(risk, intent("SELL", 500))


def test_flip_counts_as_opening_for_the_part_beyond_flat():
    risk = make(RiskLimits(max_order_quantity=40))
    risk.on_account_position(AAPL, 100, symbol="AAPL")

    assert refused(risk, intent("SELL", 150)) == ("max order quantity 40 shares: this order is 50",)
    approved(risk, intent("SELL", 140))


# -- trading states -------------------------------------------------------------------------------


def test_reducing_lets_a_closing_order_through_and_refuses_an_opening_one():
    risk = make()
    risk.on_account_position(AAPL, 100, symbol="AAPL")
    risk.set_trading_state(ACCOUNT, TradingState.REDUCING, "end of day", "gui")

    approved(risk, intent("SELL", 100))
    reasons = refused(risk, intent("BUY", 10))
    assert reasons == (
        "trading is REDUCING (account: end of day); only orders that reduce a position are "
        "let through: this order would increase the AAPL position (100 -> 110)",
    )
    assert "reverse the AAPL position (100 -> -50)" in refused(risk, intent("SELL", 150))[0]
    assert "open the MSFT position" in refused(risk, intent("BUY", 1, symbol="MSFT"))[0]


def test_reducing_counts_working_closing_orders():
    risk = make()
    risk.on_account_position(AAPL, 100, symbol="AAPL")
    risk.set_trading_state(ACCOUNT, TradingState.REDUCING, "test", "gui")
    working(risk, 1, "SELL", 100)

    assert refused(risk, intent("SELL", 100))


def test_halted_refuses_everything_but_the_emergency_stops_own_orders():
    risk = make()
    risk.on_account_position(AAPL, 100, symbol="AAPL")
    risk.set_trading_state(ACCOUNT, TradingState.HALTED, "stop", "gui")

    assert refused(risk, intent("SELL", 100)) == (
        "trading is HALTED (account: stop); only the emergency stop's flattening orders are sent",
    )
    # claiming the actor is not enough: the order needs an issued flatten intent
    assert refused(risk, intent("SELL", 100, actor=EMERGENCY_ACTOR))
    grant = risk.flatten_authority.issue(AAPL, "SELL", 100, "test stop")
    flatten = intent("SELL", 100, actor=EMERGENCY_ACTOR)
    decision = risk.check(dataclasses.replace(flatten, flatten=grant))
    assert decision.approved and decision.flatten
    # single use: the same intent lets no second order through
    assert refused(risk, dataclasses.replace(flatten, flatten=grant))


def test_flatten_intent_not_issued_by_the_authority_is_refused():
    risk = make()
    risk.on_account_position(AAPL, 100, symbol="AAPL")
    risk.set_trading_state(ACCOUNT, TradingState.HALTED, "stop", "gui")
    forged = FlattenAuthority().issue(AAPL, "SELL", 100, "forged")

    assert refused(risk, intent("SELL", 100, actor=EMERGENCY_ACTOR, flatten=forged))


def test_flatten_intent_covers_only_its_contract_side_and_quantity():
    risk = make()
    risk.on_account_position(AAPL, 100, symbol="AAPL")
    risk.on_account_position(MSFT, 100, symbol="MSFT")
    risk.set_trading_state(ACCOUNT, TradingState.HALTED, "stop", "gui")
    grant = risk.flatten_authority.issue(AAPL, "SELL", 50, "test stop")

    assert refused(risk, intent("SELL", 100, actor=EMERGENCY_ACTOR, flatten=grant))
    assert refused(risk, intent("SELL", 50, symbol="MSFT", actor=EMERGENCY_ACTOR, flatten=grant))
    assert refused(risk, intent("SELL", 50, actor="momo", flatten=grant))
    approved(risk, intent("SELL", 50, actor=EMERGENCY_ACTOR, flatten=grant))


def test_flattening_order_that_would_reverse_is_refused():
    risk = make()
    risk.on_account_position(AAPL, 100, symbol="AAPL")
    risk.set_trading_state(ACCOUNT, TradingState.HALTED, "stop", "gui")
    grant = risk.flatten_authority.issue(AAPL, "SELL", 150, "test stop")

    reasons = refused(risk, intent("SELL", 150, actor=EMERGENCY_ACTOR, flatten=grant))

    assert reasons == ("flattening order would reverse the AAPL position (100 -> -50)",)


def test_effective_state_is_the_stricter_of_account_strategy_and_contract():
    risk = make()
    risk.set_trading_state("momo", TradingState.HALTED, "bad fills", "gui")
    risk.set_trading_state(contract_scope(MSFT), TradingState.HALTED, "halt MSFT", "gui")

    assert risk.effective_state("momo") is TradingState.HALTED
    assert "strategy momo: bad fills" in refused(risk, intent("BUY", 1, strategy="momo"))[0]
    approved(risk, intent("BUY", 1, strategy="other"))
    assert "contract MSFT: halt MSFT" in refused(risk, intent("BUY", 1, symbol="MSFT"))[0]


def test_strategy_reducing_judged_on_the_strategys_own_position():
    risk = make()
    risk.on_account_position(AAPL, 0, symbol="AAPL")
    risk.on_strategy_position(strategy_position("a", AAPL, 100))
    risk.on_strategy_position(strategy_position("b", AAPL, -100))
    risk.set_trading_state("a", TradingState.REDUCING, "test", "gui")

    approved(risk, intent("SELL", 100, strategy="a"))
    assert refused(risk, intent("BUY", 1, strategy="a"))


def test_state_change_is_an_event_and_an_audit_record():
    risk = make()
    changes = []
    risk.tradingStateChanged += changes.append

    assert risk.set_trading_state(ACCOUNT, "REDUCING", "vol spike", "gui")
    assert not risk.set_trading_state(ACCOUNT, "REDUCING", "vol spike", "gui")

    assert len(changes) == 1
    c = changes[0]
    assert (c.scope, c.state, c.previous, c.reason, c.changed_by) == (
        ACCOUNT,
        TradingState.REDUCING,
        TradingState.ACTIVE,
        "vol spike",
        "gui",
    )
    rec = risk.audit.records[-1]
    assert rec.action == "set_trading_state" and rec.result == "vol spike"


def test_halted_is_left_only_by_reset_halt_with_the_confirmation():
    risk = make()
    risk.set_trading_state(ACCOUNT, TradingState.HALTED, "stop", "gui")

    with pytest.raises(ValueError, match="reset_halt"):
        risk.set_trading_state(ACCOUNT, TradingState.ACTIVE, "try", "gui")
    with pytest.raises(ValueError, match="RESUME"):
        risk.reset_halt("gui", "resume please")
    assert risk.state_of() is TradingState.HALTED

    risk.reset_halt("gui", "RESUME")

    assert risk.state_of() is TradingState.ACTIVE
    assert [r.action for r in risk.audit.records][-3:] == [
        "reset_halt",
        "set_trading_state",
        "reset_halt",
    ]


@pytest.mark.asyncio
async def test_trading_state_survives_a_restart_through_the_store():
    store = FakeStore()
    risk = make(store=store)
    risk.set_trading_state(ACCOUNT, TradingState.HALTED, "emergency", "gui")
    risk.set_trading_state("momo", TradingState.REDUCING, "drawdown", "risk")
    await risk.flush_state()
    assert store.data[STATE_KEY]["scopes"][ACCOUNT]["state"] == "HALTED"

    again = make(store=store)
    events = []
    again.tradingStateChanged += events.append
    restored = await again.restore()

    assert restored == {ACCOUNT: TradingState.HALTED, "momo": TradingState.REDUCING}
    assert again.state_of() is TradingState.HALTED
    assert again.reason_of() == "emergency"
    assert again.state_of("momo") is TradingState.REDUCING
    assert {e.scope for e in events} == {ACCOUNT, "momo"}
    assert refused(again, intent("BUY", 1))


# -- connection and data health -------------------------------------------------------------------


def status(state: ConnectionState, reason: str = "") -> ConnectionStatusChanged:
    return ConnectionStatusChanged(state, "127.0.0.1", 4002, 1, reason=reason)


def test_link_lost_moves_to_reducing_and_back_when_healthy():
    risk = make()

    risk.on_connection_status(status(ConnectionState.LINK_LOST, "1100"))
    assert risk.state_of() is TradingState.REDUCING
    assert risk.reason_of() == "IB connectivity lost (1100)"

    risk.on_connection_status(status(ConnectionState.CONNECTED))
    assert risk.state_of() is TradingState.ACTIVE


def test_link_restored_does_not_undo_a_persons_state():
    risk = make()
    risk.on_connection_status(status(ConnectionState.LINK_LOST))
    risk.set_trading_state(ACCOUNT, TradingState.REDUCING, "I want it so", "gui")

    risk.on_connection_status(status(ConnectionState.CONNECTED))

    assert risk.state_of() is TradingState.REDUCING


def test_link_lost_leaves_halted_alone():
    risk = make()
    risk.set_trading_state(ACCOUNT, TradingState.HALTED, "stop", "gui")

    risk.on_connection_status(status(ConnectionState.LINK_LOST))
    risk.on_connection_status(status(ConnectionState.CONNECTED))

    assert risk.state_of() is TradingState.HALTED


def test_stale_data_makes_the_contract_reduce_only():
    risk = make()
    risk.on_account_position(AAPL, 100, symbol="AAPL")

    risk.on_stale(AAPL, True)

    assert refused(risk, intent("BUY", 1)) == (
        "market data for AAPL is stale: only orders that reduce a position are let through",
    )
    approved(risk, intent("SELL", 100))
    approved(risk, intent("BUY", 1, symbol="MSFT"))
    risk.on_stale(AAPL, False)
    approved(risk, intent("BUY", 1))


def test_stale_data_policy_account_moves_the_account_to_reducing():
    risk = make(policy=RiskPolicy(on_stale_data="account"))

    risk.on_stale(AAPL, True)
    assert risk.state_of() is TradingState.REDUCING
    risk.on_stale(AAPL, False)
    assert risk.state_of() is TradingState.ACTIVE


# -- utilization ----------------------------------------------------------------------------------


def test_utilization_events_are_emitted_only_on_meaningful_change():
    risk = make(RiskLimits(max_position_quantity=1000, max_gross_exposure=200_000))
    seen = []
    risk.utilizationChanged += seen.append

    risk.on_account_position(AAPL, 500, symbol="AAPL")
    risk.publish_utilization()
    first = {(u.limit, u.utilization) for u in seen}
    assert first == {("max_position_quantity", 0.5), ("max_gross_exposure", 0.25)}

    seen.clear()
    risk.on_account_position(AAPL, 505, symbol="AAPL")  # +0.5 %: not worth an event
    assert risk.publish_utilization() == 0

    risk.on_account_position(AAPL, 520, symbol="AAPL")
    risk.publish_utilization()
    assert {u.limit for u in seen} == {"max_position_quantity", "max_gross_exposure"}
    assert seen[0].scope == ACCOUNT


def test_utilization_when_a_storm_of_changes_then_one_timer_and_one_event():
    risk = make(
        RiskLimits(max_gross_exposure=1_000_000), policy=RiskPolicy(utilization_interval=0.01)
    )
    timers = Timers()
    risk.utilization.call_later = timers
    seen = []
    risk.utilizationChanged += seen.append

    for q in range(1, 200):
        risk.on_account_position(AAPL, q * 10, symbol="AAPL")
    assert seen == []  # coalesced: nothing until the timer fires
    assert timers.delays == [0.01]
    timers.fire()

    assert len(seen) == 1
    assert seen[0].value == pytest.approx(199_0 * 100)
    assert timers.delays == []  # nothing more to come
    risk.on_account_position(AAPL, 3000, symbol="AAPL")
    assert timers.delays == [0.01]  # the next change is scheduled again


@pytest.mark.asyncio
async def test_utilization_when_on_the_loop_then_published_by_its_timer():
    risk = make(
        RiskLimits(max_gross_exposure=1_000_000), policy=RiskPolicy(utilization_interval=0.01)
    )
    published = asyncio.Event()
    risk.utilizationChanged += lambda _u: published.set()

    risk.on_account_position(AAPL, 10, symbol="AAPL")
    await asyncio.wait_for(published.wait(), 5)


# -- drawdown watch -------------------------------------------------------------------------------


def test_daily_loss_breach_moves_to_reducing_with_event_and_audit():
    risk = make(RiskLimits(daily_loss_limit=1000))
    breaches = []
    risk.limitBreached += breaches.append

    risk.on_pnl(PnLChanged(None, -999.0, 0.0, -999.0))
    assert risk.state_of() is TradingState.ACTIVE
    risk.on_pnl(PnLChanged(None, -1000.0, 0.0, -1000.0))
    risk.on_pnl(PnLChanged(None, -1100.0, 0.0, -1100.0))

    assert risk.state_of() is TradingState.REDUCING
    assert [(b.scope, b.limit, b.action) for b in breaches] == [
        (ACCOUNT, "daily_loss_limit", "reducing")
    ]
    assert any(r.action == "limit_breached" for r in risk.audit.records)


def test_strategy_drawdown_breach_with_halt_action_halts_only_that_strategy():
    risk = RiskManager(
        None,
        {"momo": RiskLimits(max_drawdown=500)},
        policy=RiskPolicy(breach_action="halt"),
    )

    risk.on_pnl(PnLChanged("momo", 800.0, 0.0, 800.0))
    risk.on_pnl(PnLChanged("momo", 250.0, 0.0, 250.0))

    assert risk.state_of("momo") is TradingState.HALTED
    assert risk.state_of() is TradingState.ACTIVE


def test_breach_with_emergency_stop_action_halts_and_asks_for_the_stop():
    breaches: list[RiskLimitBreached] = []
    risk = make(
        RiskLimits(daily_loss_limit=1000), policy=RiskPolicy(breach_action="emergency_stop")
    )
    risk.limitBreached += breaches.append

    risk.on_pnl(PnLChanged(None, -1500.0, 0.0, -1500.0))

    # HALTED at once, whoever listens; the event asks the session to run the stop
    assert risk.state_of(ACCOUNT) is TradingState.HALTED
    assert [(b.scope, b.describe(), wants_emergency_stop(b)) for b in breaches] == [
        ("account", "daily loss limit 1,000 breached: 1,500", True)
    ]


# -- contracts without a conId --------------------------------------------------------------------


def test_unqualified_contract_is_matched_to_the_known_position_by_symbol():
    risk = make(RiskLimits(max_position_quantity=100))
    risk.on_account_position(AAPL, 100, symbol="AAPL")
    bare = Contract(secType="STK", symbol="AAPL", exchange="SMART", currency="USD")

    approved(risk, intent("SELL", 50, contract=bare))
    assert refused(risk, intent("BUY", 1, contract=bare))


# -- configuration --------------------------------------------------------------------------------


def test_limits_from_settings_takes_account_and_strategy_limits():
    from core.config import RiskSettings

    settings = RiskSettings(
        max_order_quantity=500, strategies={"momo": {"max_position_quantity": 50}}
    )

    account, strategies = limits_from_settings(settings)

    assert account.max_order_quantity == 500
    assert strategies["momo"].max_position_quantity == 50
    assert strategies["momo"].max_order_quantity is None
    risk = RiskManager.from_settings(settings)
    assert risk.limits_of("momo").max_position_quantity == 50


def test_limits_refuse_non_positive_values():
    with pytest.raises(ValueError, match="max_order_quantity"):
        RiskLimits(max_order_quantity=0)


# -- sizing ---------------------------------------------------------------------------------------


def bars(n: int = 30, rng: float = 2.0, close: float = 100.0) -> pd.DataFrame:
    closes = np.full(n, close)
    return pd.DataFrame(
        {"open": closes, "high": closes + rng / 2, "low": closes - rng / 2, "close": closes}
    )


def test_size_by_atr_rounds_down_to_the_lot():
    params = SizingParams(method="atr", risk_amount=1000, risk_pct=None, stop_multiple=2)

    size = size_by_volatility(bars(rng=2.0), params, lot_size=100)

    assert size.volatility == pytest.approx(2.0)
    assert size.risk_per_unit == pytest.approx(4.0)
    assert size.quantity == 200  # 250 rounded down to lots of 100


def test_size_by_pct_of_net_liq_with_multiplier():
    params = SizingParams(method="atr", risk_pct=1.0, stop_multiple=1)

    size = size_by_volatility(bars(rng=10.0), params, net_liquidation=100_000, multiplier=50)

    assert size.budget == 1000
    assert size.quantity == 2  # 1000 / (10 x 50)


def test_size_budget_in_base_currency_is_converted_to_the_contracts():
    # 1,000 USD of risk on a JPY-priced contract whose ATR is 100 JPY: 1,000 USD is
    # 150,000 JPY at 1/150, so 1,500 units (not 10, as dividing USD by yen gave)
    params = SizingParams(method="atr", risk_amount=1000, risk_pct=None, stop_multiple=1)

    size = size_by_volatility(bars(rng=100.0, close=15_000.0), params, rate=1 / 150)

    assert size.budget == 1000 and size.quantity == 1500
    assert "at rate" in size.explanation


@pytest.mark.asyncio
async def test_suggest_size_refuses_without_an_exchange_rate_and_converts_with_one():
    class FakeMarketData:
        async def historical_bars(self, contract: Contract, **kwargs: Any) -> pd.DataFrame:
            return bars(rng=100.0, close=15_000.0)

    risk = RiskManager(sizing={MANUAL: SizingParams(risk_amount=1000, risk_pct=None)})
    jpy = Contract(secType="STK", symbol="7203", conId=77, exchange="TSEJ", currency="JPY")
    with pytest.raises(ValueError, match="no exchange rate JPY"):
        await risk.suggest_size(FakeMarketData(), jpy)
    risk.on_exchange_rate("JPY", 1 / 150)
    size = await risk.suggest_size(FakeMarketData(), jpy)
    assert size.quantity == 1500 // SizingParams().stop_multiple


def test_size_by_stdev_of_returns():
    closes = 100 * np.exp(np.cumsum(np.tile([0.01, -0.01], 20)))
    df = pd.DataFrame({"open": closes, "high": closes, "low": closes, "close": closes})
    params = SizingParams(method="stdev", risk_amount=1000, risk_pct=None, stop_multiple=1)

    size = size_by_volatility(df, params)

    assert size.volatility == pytest.approx(0.01 * closes[-1], rel=0.05)
    assert size.quantity == pytest.approx(1000 // size.risk_per_unit)


def test_size_without_budget_is_an_error():
    with pytest.raises(ValueError, match="budget"):
        size_by_volatility(bars(), SizingParams(risk_amount=None, risk_pct=1.0))


@pytest.mark.asyncio
async def test_volatility_size_fetches_bars_through_market_data():
    class FakeMarketData:
        def __init__(self) -> None:
            self.asked: dict[str, Any] = {}

        async def historical_bars(self, contract: Contract, **kwargs: Any) -> pd.DataFrame:
            self.asked = kwargs
            return bars(rng=4.0)

    md = FakeMarketData()
    risk = RiskManager(sizing={"momo": SizingParams(risk_amount=800, risk_pct=None)})

    size = await risk.suggest_size(md, stock(), "momo")

    assert size.quantity == 100  # 800 / (2 x 4)
    assert md.asked["bar_size"] == "1 day"
    direct = await volatility_size(md, stock(), SizingParams(risk_amount=80, risk_pct=None))
    assert direct.quantity == 10


def test_risk_prices_keep_negative_spread_prices_and_drop_placeholders():
    from core.exposure import price as _price

    assert _price(-0.35) == -0.35  # a calendar spread can trade below zero
    assert _price(0.0) is None and _price(None) is None
    assert _price(1.7976931348623157e308) is None and _price(float("nan")) is None
    assert _price(float("-inf")) is None and _price(-1.7976931348623157e308) is None
    assert _price(101.25) == 101.25 and _price(101) == 101.0 and _price("0") is None
