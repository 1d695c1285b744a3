"""Accounting by hand: commissions, average cost, realized P&L, cash, margins, state."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.sim.engine import Engine, commission_for
from core.sim.market import Market
from core.sim.model import OrderRequest, OrderState
from core.sim.universe import Universe

TODAY = dt.date(2026, 11, 25)
EASTERN = ZoneInfo("US/Eastern")
AAPL, INTC, EURUSD = 265598, 270639, 12087792
ACCT = "DU111111"
CASH0 = 1_000_000.0


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(dt.datetime(2026, 11, 25, 10, 0, tzinfo=EASTERN).timestamp())


@pytest.fixture(scope="module")
def universe() -> Universe:
    return Universe.default(TODAY)


@pytest.fixture
def es(universe: Universe) -> int:
    return universe.find(symbol="ES")[0].con_id


@pytest.fixture
def market(universe: Universe, clock: FakeClock) -> Market:
    return Market(universe, seed=11, clock=clock)


@pytest.fixture
def engine(universe: Universe, market: Market, clock: FakeClock) -> Engine:
    return Engine(universe, market, [ACCT, "DU222222"], initial_cash=CASH0, clock=clock)


_next_id = iter(range(1, 10_000))


def trade(
    engine: Engine, market: Market, con_id: int, action: str, qty: float, bid: float, ask: float
) -> Any:
    """Quote bid/ask with plenty of size and fill a market order completely."""
    market.set_quote(con_id, bid=bid, ask=ask, last=(bid + ask) / 2, bid_size=1e9, ask_size=1e9)
    oid = next(_next_id)
    engine.place(
        OrderRequest(
            order_id=oid,
            client_id=1,
            con_id=con_id,
            action=action,
            total_quantity=qty,
            order_type="MKT",
        )
    )
    o = engine.order(1, oid)
    assert o is not None and o.state == OrderState.FILLED
    return engine.executions()[-1]


def values(engine: Engine, account: str = ACCT) -> dict[str, str]:
    return {k: v for k, v, cur in engine.account_values(account) if cur in ("USD", "")}


def test_stock_buy_charges_the_minimum_commission_and_moves_cash(
    engine: Engine, market: Market
) -> None:
    ex = trade(engine, market, AAPL, "BUY", 100, 100.00, 100.02)
    assert ex.commission == 1.00 and ex.realized_pnl is None
    [pos] = engine.positions(ACCT)
    assert (pos.quantity, pos.avg_cost) == (100, pytest.approx(100.03))  # IB: cost incl. commission
    assert float(values(engine)["TotalCashValue"]) == pytest.approx(CASH0 - 10_002.00 - 1.00)


def test_stock_commission_rates() -> None:
    universe = Universe.default(TODAY)
    aapl = universe.by_con_id(AAPL)
    assert aapl is not None
    assert commission_for(aapl, 100, 10_000) == 1.00  # minimum
    assert commission_for(aapl, 1000, 100_000) == 5.00  # 0.005 a share
    assert commission_for(aapl, 1, 22.0) == pytest.approx(0.22)  # capped at 1% of value


def test_commission_minimum_lands_on_the_first_fill_of_an_order(
    engine: Engine, market: Market
) -> None:
    market.set_quote(AAPL, bid=100.00, ask=100.01, last=100.00, ask_size=100)
    engine.place(OrderRequest(1, 1, AAPL, "BUY", 300, "MKT"))
    market.set_quote(AAPL, ask_size=200)
    engine.on_market()
    assert [e.commission for e in engine.executions()] == [1.00, 0.50]


def test_partial_close_realizes_against_average_cost_net_of_commission(
    engine: Engine, market: Market
) -> None:
    trade(engine, market, AAPL, "BUY", 300, 99.99, 100.00)  # commission 1.50, avg 100.005
    ex = trade(engine, market, AAPL, "SELL", 100, 110.00, 110.01)  # commission 1.00
    assert ex.realized_pnl == pytest.approx(100 * (110.00 - 100.005) - 1.00)
    [pos] = engine.positions(ACCT)
    assert (pos.quantity, pos.avg_cost) == (200, pytest.approx(100.005))
    cash = CASH0 - 300 * 100.00 - 1.50 + 100 * 110.00 - 1.00
    assert float(values(engine)["TotalCashValue"]) == pytest.approx(cash)
    assert engine.pnl(ACCT).realized_pnl == pytest.approx(998.50)
    [item] = engine.portfolio(ACCT)
    assert item.realized_pnl == pytest.approx(998.50)


def test_long_flipped_to_short_in_one_fill(engine: Engine, market: Market) -> None:
    trade(engine, market, AAPL, "BUY", 100, 50.00, 50.01)  # commission 1.00: avg 50.02
    ex = trade(engine, market, AAPL, "SELL", 300, 60.00, 60.01)  # commission 1.50
    # Closing part: 100 shares and a third of the commission.
    assert ex.realized_pnl == pytest.approx(100 * (60.00 - 50.02) - 0.50)
    [pos] = engine.positions(ACCT)
    assert pos.quantity == -200
    assert pos.avg_cost == pytest.approx(60.00 + 1.00 / 200)
    # Back to flat: buy 200 at 55.01, gain on the short.
    ex = trade(engine, market, AAPL, "BUY", 200, 55.00, 55.01)
    assert ex.realized_pnl == pytest.approx(200 * (60.005 - 55.01) - 1.00)
    assert engine.positions(ACCT) == []
    assert engine.position(ACCT, AAPL).quantity == 0


def test_es_future_cash_moves_by_pnl_not_notional(engine: Engine, market: Market, es: int) -> None:
    ex = trade(engine, market, es, "BUY", 2, 5900.00, 5900.25)
    assert ex.commission == pytest.approx(4.50) and ex.exchange == "CME"
    [pos] = engine.positions(ACCT)
    assert pos.avg_cost == pytest.approx(5900.25 * 50 + 2.25)
    v = values(engine)
    assert float(v["TotalCashValue"]) == pytest.approx(CASH0 - 4.50)
    # Marked at last 5900.00: NetLiq = cash + unrealized (raw, without notional).
    assert engine.market.mark(es) == 5900.00
    assert float(v["NetLiquidation"]) == pytest.approx(CASH0 - 4.50 + 2 * (5900.00 - 5900.25) * 50)
    assert float(v["GrossPositionValue"]) == 0
    assert float(v["InitMarginReq"]) == pytest.approx(2 * 5900.00 * 50 * 0.06)
    ex = trade(engine, market, es, "SELL", 2, 5910.00, 5910.25)
    assert ex.realized_pnl == pytest.approx(2 * (5910.00 * 50 - (5900.25 * 50 + 2.25)) - 4.50)
    assert float(values(engine)["TotalCashValue"]) == pytest.approx(
        CASH0 - 9.00 + 2 * (5910.00 - 5900.25) * 50
    )
    assert engine.pnl(ACCT).realized_pnl == pytest.approx(966.0)


def test_eurusd_position_in_eur_valued_in_usd(engine: Engine, market: Market) -> None:
    ex = trade(engine, market, EURUSD, "BUY", 100_000, 1.08000, 1.08005)
    assert ex.commission == pytest.approx(max(0.00002 * 108_005, 2.0))
    [pos] = engine.positions(ACCT)
    assert pos.quantity == 100_000
    assert pos.avg_cost == pytest.approx(1.08005 + 2.1601 / 100_000)
    market.set_quote(EURUSD, bid=1.09000, ask=1.09005, last=1.09000)
    [item] = engine.portfolio(ACCT)
    assert item.market_value == pytest.approx(109_000.0)
    assert item.unrealized_pnl == pytest.approx(109_000.0 - 108_005.0 - 2.1601)
    small = trade(engine, market, EURUSD, "SELL", 10_000, 1.09000, 1.09005)
    assert small.commission == 2.00  # minimum


def test_net_liquidation_and_daily_pnl_follow_the_mark(engine: Engine, market: Market) -> None:
    trade(engine, market, AAPL, "BUY", 1000, 99.99, 100.00)  # commission 5.00
    market.set_quote(AAPL, bid=100.99, ask=101.01, last=101.00)
    v = values(engine)
    assert float(v["NetLiquidation"]) == pytest.approx(CASH0 - 5.00 + 1000 * 1.00)
    assert float(v["GrossPositionValue"]) == pytest.approx(101_000.0)
    assert float(v["InitMarginReq"]) == pytest.approx(50_500.0)
    assert float(v["MaintMarginReq"]) == pytest.approx(25_250.0)
    assert float(v["AvailableFunds"]) == pytest.approx(float(v["NetLiquidation"]) - 50_500.0)
    assert float(v["ExcessLiquidity"]) == pytest.approx(float(v["NetLiquidation"]) - 25_250.0)
    assert float(v["UnrealizedPnL"]) == pytest.approx(1000 * (101.00 - 100.005))
    pnl = engine.pnl(ACCT)
    assert pnl.daily_pnl == pytest.approx(995.0)
    single = engine.pnl_single(ACCT, AAPL)
    assert (single.position, single.value) == (1000, pytest.approx(101_000.0))
    assert single.daily_pnl == pytest.approx(995.0)
    assert single.unrealized_pnl == pytest.approx(pnl.unrealized_pnl)
    assert engine.pnl_single(ACCT, INTC) == engine.pnl_single("DU222222", AAPL)


def test_account_values_are_strings_with_ib_keys(engine: Engine) -> None:
    rows = engine.account_values(ACCT)
    keys = {k for k, _, _ in rows}
    for key in (
        "NetLiquidation",
        "TotalCashValue",
        "CashBalance",
        "BuyingPower",
        "ExcessLiquidity",
        "AvailableFunds",
        "EquityWithLoanValue",
        "GrossPositionValue",
        "InitMarginReq",
        "MaintMarginReq",
        "UnrealizedPnL",
        "RealizedPnL",
        "AccountType",
    ):
        assert key in keys
    assert all(isinstance(v, str) for _, v, _ in rows)
    assert values(engine)["NetLiquidation"] == "1000000.00"
    assert values(engine)["BuyingPower"] == "4000000.00"


def test_accounts_are_kept_apart(engine: Engine, market: Market) -> None:
    market.set_quote(AAPL, bid=100.00, ask=100.01, last=100.00, ask_size=1000)
    engine.place(OrderRequest(1, 1, AAPL, "BUY", 100, "MKT", account="DU222222"))
    assert engine.positions(ACCT) == []
    assert [p.account for p in engine.positions()] == ["DU222222"]
    assert values(engine)["NetLiquidation"] == "1000000.00"


# --- state ----------------------------------------------------------------------------------


def _busy_engine(engine: Engine, market: Market, es: int) -> None:
    trade(engine, market, AAPL, "BUY", 300, 99.99, 100.00)
    trade(engine, market, AAPL, "SELL", 100, 101.00, 101.01)
    trade(engine, market, es, "SELL", 1, 5900.00, 5900.25)
    trade(engine, market, EURUSD, "BUY", 20_000, 1.08, 1.08005)
    market.set_quote(AAPL, bid=100.00, ask=100.01, last=100.00, ask_size=100, bid_size=100)
    engine.place(OrderRequest(500, 1, AAPL, "BUY", 500, "MKT"))  # partly filled
    engine.place(OrderRequest(501, 1, AAPL, "BUY", 100, "LMT", lmt_price=90.0, tif="GTC"))
    engine.place(OrderRequest(502, 2, AAPL, "SELL", 100, "TRAIL", aux_price=2.0))
    engine.place(OrderRequest(503, 2, AAPL, "BUY", 100, "LMT", lmt_price=80.0, transmit=False))
    engine.place(OrderRequest(504, 2, AAPL, "BUY", 100, "LMT", lmt_price=80.0))
    engine.cancel(2, 504)
    engine.fill_delay_s = 0.5


def test_state_round_trip_through_json_is_equal(
    engine: Engine, market: Market, universe: Universe, clock: FakeClock, es: int
) -> None:
    _busy_engine(engine, market, es)
    state = engine.to_state()
    loaded = json.loads(json.dumps(state))
    fresh_market = Market(universe, seed=99, clock=clock)
    restored = Engine.from_state(loaded, universe, fresh_market, clock=clock)
    assert restored.to_state() == state
    assert restored.positions() == engine.positions()
    assert restored.account_values(ACCT) == engine.account_values(ACCT)
    assert [o.key for o in restored.open_orders()] == [(1, 500), (1, 501), (2, 502), (2, 503)]
    assert restored.order(2, 503).state == OrderState.PRE_SUBMITTED  # type: ignore[union-attr]
    assert restored.fill_delay_s == 0.5


def test_restored_engine_carries_on(
    engine: Engine, market: Market, universe: Universe, clock: FakeClock, es: int
) -> None:
    _busy_engine(engine, market, es)
    fresh_market = Market(universe, seed=99, clock=clock)
    restored = Engine.from_state(
        json.loads(json.dumps(engine.to_state())), universe, fresh_market, clock=clock
    )
    fresh_market.set_quote(AAPL, ask_size=1000)
    clock.now += 1.0  # past the saved fill delay
    restored.on_market()
    o = restored.order(1, 500)
    assert o is not None and o.state == OrderState.FILLED
    ids = [e.exec_id for e in restored.executions()]
    assert len(set(ids)) == len(ids)
    restored.place(OrderRequest(600, 1, AAPL, "BUY", 1, "MKT"))
    perm_ids = [o.perm_id for o in restored.completed_orders() + restored.open_orders()]
    assert len(set(perm_ids)) == len(perm_ids)
    assert max(perm_ids) == restored.order(1, 600).perm_id  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.pop("cash"), "cash"),
        (lambda s: s.update(version=99), "version"),
        (lambda s: s["positions"].append({"account": ACCT, "con_id": 1, "qty": 1.0}), "con_id 1"),
        (lambda s: s["positions"].append({"account": "X", "con_id": AAPL, "qty": 1.0}), "account"),
        (lambda s: s["working_orders"].append({"request": {}}), "order"),
        (lambda s: s.update(positions=5), "malformed"),
    ],
)
def test_malformed_state_raises_a_clear_value_error(
    engine: Engine, market: Market, universe: Universe, clock: FakeClock, mutate: Any, message: str
) -> None:
    state = json.loads(json.dumps(engine.to_state()))
    mutate(state)
    with pytest.raises(ValueError, match=message):
        Engine.from_state(state, universe, Market(universe, clock=clock), clock=clock)


def test_state_that_is_not_a_mapping_is_refused(universe: Universe, clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        Engine.from_state([], universe, Market(universe, clock=clock), clock=clock)  # type: ignore[arg-type]


def test_account_values_carry_an_exchange_rate_per_currency_like_tws(
    engine: Engine, market: Market
) -> None:
    rates = {cur: v for k, v, cur in engine.account_values(ACCT) if k == "ExchangeRate"}

    # base per unit: BASE and USD 1, EUR from the EUR.USD pair's mark
    assert set(rates) == {"BASE", "USD", "EUR"}
    assert float(rates["BASE"]) == float(rates["USD"]) == 1.0
    assert float(rates["EUR"]) == pytest.approx(market.mark(EURUSD))
