"""Hypothesis: whatever the sequence of order attempts and state changes, nothing but the
emergency stop's own flattening orders passes the gate while HALTED."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from ib_async import Contract, Order

from core.events import TradingState
from core.risk import ACCOUNT, EMERGENCY_ACTOR, RiskManager, contract_scope
from core.trading import OrderIntent

CON_IDS = (1, 2, 3)
STRATEGIES = ("manual", "momo", "mr")
SCOPES = (ACCOUNT, "momo", "mr", contract_scope(1))


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.1
        return self.t


order_attempt = st.tuples(
    st.just("order"),
    st.sampled_from(STRATEGIES),
    st.sampled_from((*STRATEGIES, EMERGENCY_ACTOR)),
    st.sampled_from(CON_IDS),
    st.sampled_from(("BUY", "SELL")),
    st.integers(1, 300),
    st.booleans(),  # authorised as a flattening order
)
state_change = st.tuples(
    st.just("state"),
    st.sampled_from(SCOPES),
    st.sampled_from(tuple(TradingState)),
)
position_change = st.tuples(st.just("position"), st.sampled_from(CON_IDS), st.integers(-200, 200))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(order_attempt, state_change, position_change), max_size=40))
def test_no_order_passes_while_halted_except_flattening(steps):
    risk = RiskManager(clock=Clock())
    for con_id in CON_IDS:
        risk.on_quote(con_id, bid=9.99, ask=10.01, last=10.0, symbol=f"S{con_id}")
    for step in steps:
        if step[0] == "state":
            _, scope, state = step
            if risk.state_of(scope) is TradingState.HALTED and state is not TradingState.HALTED:
                risk.reset_halt("gui", "RESUME", scope=scope, to=state)
            else:
                risk.set_trading_state(scope, state, "test", "gui")
            continue
        if step[0] == "position":
            _, con_id, qty = step
            risk.on_account_position(con_id, qty, symbol=f"S{con_id}")
            continue
        _, strategy, actor, con_id, action, qty, authorised = step
        order = Order(action=action, totalQuantity=qty, orderType="MKT")
        contract = Contract(secType="STK", symbol=f"S{con_id}", conId=con_id, currency="USD")
        grant = risk.flatten_authority.issue(con_id, action, qty, "test") if authorised else None
        intent = OrderIntent(strategy, actor, contract, order, flatten=grant)
        position = risk.position(ACCOUNT, con_id)
        halted = risk.effective_state(strategy, con_id) is TradingState.HALTED
        decision = risk.check(intent)
        if decision.approved and halted:
            assert authorised and actor == EMERGENCY_ACTOR
            signed = qty if action == "BUY" else -qty
            # a flattening order only ever shrinks the position, never reverses it
            assert position * signed < 0 and abs(signed) <= abs(position)
        if decision.approved and risk.effective_state(strategy, con_id) is TradingState.REDUCING:
            signed = qty if action == "BUY" else -qty
            assert position * signed < 0 and abs(signed) <= abs(position)
