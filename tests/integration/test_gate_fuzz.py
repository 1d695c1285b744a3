"""Generated orders and API calls against the gate and the simulated gateway.

* The gate's verdict on an order is its verdict on the order's canonical form, and what
  is sent is that canonical form.
* Thousands of malformed calls at every public entry point end in the project's
  refusal types, never another exception.
* Nothing the gate refused, and nothing beyond a configured limit, is at the gateway.
"""

from __future__ import annotations

import copy
import math
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ib_async import Contract, Order

from core.contracts import create_stock_contract
from core.orders import (
    OrderValidationError,
    canonicalize_order,
    create_limit_order,
    create_market_order,
    create_stop_limit_order,
    create_stop_order,
)
from core.risk import RiskLimits, RiskManager
from core.trading import OrderRefused
from helpers import settle, wait_for

pytestmark = pytest.mark.asyncio

MAX_QTY = 50
FAT_FINGER = 5.0
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


def spellings(word: str) -> st.SearchStrategy[str]:
    """``word`` in any letter case, with stray spaces around and inside."""
    return st.tuples(
        st.lists(st.booleans(), min_size=len(word), max_size=len(word)),
        st.sampled_from(["", " ", "  "]),
        st.sampled_from(["", " ", "\t"]),
        st.sampled_from([" ", "  "]),
    ).map(
        lambda t: (
            t[1]
            + "".join(
                c.upper() if up else c.lower() for c, up in zip(word, t[0], strict=True)
            ).replace(" ", t[3])
            + t[2]
        )
    )


def numbers() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(-5, 200),
        st.floats(allow_nan=True, allow_infinity=True),
        st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-10, max_value=99),
        st.sampled_from([True, False, None, "10", "abc", 10**30, 1e12, [1], Decimal("NaN")]),
    )


def junk() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=8),
        st.lists(st.integers(), max_size=2),
        st.builds(object),
    )


def all_orders(gw: Any) -> list[Any]:
    """Every order the gateway accepted: working, done, or filled."""
    return gw.engine.open_orders() + gw.engine.completed_orders()


@pytest_asyncio.fixture
async def gated(core: Any) -> Any:
    risk = RiskManager(RiskLimits(max_order_quantity=MAX_QTY, fat_finger_pct=FAT_FINGER))
    risk.attach_trade_manager(core.trades)
    gw = core.gateway
    inst = gw.universe.find(symbol="AAPL")[0]
    q = gw.market.quote(inst.con_id)
    risk.on_quote(inst.con_id, bid=q.bid, ask=q.ask, last=q.last, symbol="AAPL")
    contract = await core.trades.qualify(create_stock_contract("AAPL"))
    core.trades.wire.max_per_second = 10_000  # the gate's own cap still applies
    return core, risk, contract, (q.bid + q.ask) / 2


async def test_verdict_equals_the_canonical_forms_and_only_approved_orders_reach_ib(gated: Any):
    core, _risk, contract, mid = gated
    tm = core.trades
    sent: dict[int, Order] = {}
    refusals = 0

    @settings(FUZZ, max_examples=300)
    @given(
        action=st.one_of(spellings("buy"), spellings("sell"), st.sampled_from(["", "HOLD"])),
        order_type=st.one_of(
            spellings("lmt"), spellings("mkt"), spellings("stp lmt"), st.just("LIMIT")
        ),
        tif=st.one_of(spellings("day"), spellings("gtc"), st.just("")),
        quantity=st.one_of(st.integers(1, 2 * MAX_QTY), st.floats(0.5, 80)),
        away=st.floats(0.85, 1.15),
    )
    def check(action: str, order_type: str, tif: str, quantity: float, away: float) -> None:
        nonlocal refusals
        price = round(mid * away, 2)
        order = Order(
            action=action,
            totalQuantity=quantity,
            orderType=order_type,
            tif=tif,
            lmtPrice=price,
            auxPrice=round(price * 1.001, 2),
        )
        canonical = copy.copy(order)
        assert canonicalize_order(canonical) == []
        expected = tm.verdict(contract, canonical, "fuzz")
        assert tm.verdict(contract, order, "fuzz") == expected
        try:
            trade = tm.place_order(contract, order, "fuzz")
        except OrderRefused as refused:
            assert list(refused.reasons) == expected
            refusals += 1
            return
        assert expected == []
        assert (order.action, order.orderType, order.tif) == (
            canonical.action,
            canonical.orderType,
            canonical.tif,
        )
        sent[trade.order.orderId] = copy.copy(trade.order)

    check()
    assert sent and refusals, (len(sent), refusals)
    gw = core.gateway
    await wait_for(
        lambda: (
            {o.request.order_id for o in all_orders(gw) if o.request.order_ref == "fuzz"}
            == set(sent)
        ),
        15,
        "every approved order, and only those, at the gateway",
    )
    for o in all_orders(gw):
        req = o.request
        mine = sent[req.order_id]
        assert req.total_quantity <= MAX_QTY
        assert (req.action, req.order_type, req.tif) == (mine.action, mine.orderType, mine.tif)
        if req.lmt_price is not None and req.order_type in ("LMT", "STP LMT"):
            assert abs(req.lmt_price - mid) / mid * 100 <= FAT_FINGER + 1e-6


async def test_thousands_of_malformed_calls_then_only_refusals(gated: Any):
    core, _risk, contract, mid = gated
    tm = core.trades
    resting = tm.place_order(contract, create_limit_order("BUY", 1, round(mid * 0.97, 2)), "fz")
    await wait_for(lambda: resting.orderStatus.status == "Submitted", 5, "a working order")
    calls = 0
    ours = (OrderRefused, OrderValidationError, LookupError)

    @settings(FUZZ, max_examples=1500)
    @given(
        target=st.sampled_from(["place", "modify", "fields", "cancel", "create"]),
        action=st.one_of(st.sampled_from(["BUY", "SELL"]), junk()),
        quantity=numbers(),
        order_type=st.one_of(st.sampled_from(["LMT", "MKT", "STP", "STP LMT"]), junk()),
        price=numbers(),
        tif=st.one_of(st.sampled_from(["DAY", "GTC"]), junk()),
        who=st.one_of(st.just("fz"), junk()),
        what=st.one_of(st.just(contract), junk(), st.builds(Contract)),
    )
    def call(
        target: str,
        action: Any,
        quantity: Any,
        order_type: Any,
        price: Any,
        tif: Any,
        who: Any,
        what: Any,
    ) -> None:
        nonlocal calls
        calls += 1
        order = Order()
        order.action, order.totalQuantity, order.orderType = action, quantity, order_type
        order.lmtPrice, order.auxPrice, order.tif = price, price, tif
        try:
            if target == "place":
                tm.place_order(what, order, who)
            elif target == "modify":
                tm.modify_order(resting, order, actor=who)
            elif target == "fields":
                tm.modify_order_fields(
                    resting.order.orderId if who == "fz" else who,
                    quantity=quantity,
                    limit_price=price,
                )
            elif target == "cancel":
                tm.cancel_order(what if who != "fz" else order)
            else:
                for make in (create_market_order, create_limit_order, create_stop_order):
                    args = (
                        (action, quantity)
                        if make is create_market_order
                        else (action, quantity, price)
                    )
                    make(*args, tif=tif)
                create_stop_limit_order(action, quantity, price, price, tif=tif)
        except ours:
            return

    call()
    assert calls >= 1000
    # Every frame the gate still holds reaches the gateway before this round trip ends.
    await settle(core.connection.ib, timeout=60)
    gw = core.gateway
    for o in all_orders(gw):
        req = o.request
        assert 0 < req.total_quantity <= MAX_QTY and math.isfinite(req.total_quantity)
        assert req.order_type in ("LMT", "MKT", "STP", "STP LMT")
        if req.lmt_price is not None and req.order_type in ("LMT", "STP LMT"):
            assert abs(req.lmt_price - mid) / mid * 100 <= FAT_FINGER + 1e-6
