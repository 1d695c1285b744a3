"""The seeded market: determinism, tick-grid invariants, bars consistent with the walk."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from zoneinfo import ZoneInfo

import pytest

from core.sim.market import Market, on_tick
from core.sim.universe import Universe

TODAY = dt.date(2026, 11, 25)
EASTERN = ZoneInfo("US/Eastern")
NOW = dt.datetime(2026, 11, 25, 11, 0, tzinfo=EASTERN).timestamp()
AAPL, SPY, EURUSD = 265598, 756733, 12087792


def clock() -> float:
    return NOW


@pytest.fixture(scope="module")
def universe() -> Universe:
    return Universe.default(TODAY)


@pytest.fixture
def market(universe: Universe) -> Market:
    return Market(universe, seed=7, clock=clock)


def _es(universe: Universe) -> int:
    return universe.find(symbol="ES")[0].con_id


def _on_grid(x: float, tick: float) -> bool:
    return abs(x / tick - round(x / tick)) < 1e-6


def test_initial_quote_sits_at_the_initial_price(market: Market, universe: Universe) -> None:
    q = market.quote(AAPL)
    assert q.last == 230.0 and q.close == 230.0 and q.open == 230.0
    assert q.bid < q.ask
    assert q.volume == 0


def test_same_seed_gives_same_prices(universe: Universe) -> None:
    a, b = Market(universe, seed=3, clock=clock), Market(universe, seed=3, clock=clock)
    for _ in range(200):
        assert a.step() == b.step()
    for inst in universe:
        assert a.quote(inst.con_id) == b.quote(inst.con_id)


def test_different_seeds_give_different_walks(universe: Universe) -> None:
    a, b = Market(universe, seed=1, clock=clock), Market(universe, seed=2, clock=clock)
    for _ in range(200):
        a.step()
        b.step()
    assert a.quote(AAPL) != b.quote(AAPL)


def test_walk_of_one_instrument_does_not_depend_on_the_others_stepped(
    universe: Universe,
) -> None:
    a, b = Market(universe, seed=5, clock=clock), Market(universe, seed=5, clock=clock)
    for _ in range(100):
        a.step()
        b.step([AAPL])
    assert a.quote(AAPL) == b.quote(AAPL)
    assert b.quote(SPY).volume == 0  # never stepped


@pytest.mark.parametrize("con_id", [AAPL, SPY, EURUSD, "ES"])
def test_quotes_stay_on_the_tick_grid_with_a_tight_spread(
    market: Market, universe: Universe, con_id: int | str
) -> None:
    cid = _es(universe) if con_id == "ES" else int(con_id)
    inst = universe.by_con_id(cid)
    assert inst is not None
    tick = inst.min_tick
    volume = 0.0
    for _ in range(2000):
        market.step([cid])
        q = market.quote(cid)
        assert q.bid < q.ask
        assert _on_grid(q.bid, tick) and _on_grid(q.ask, tick) and _on_grid(q.last, tick)
        assert round((q.ask - q.bid) / tick) in (1, 2)
        assert q.bid_size > 0 and q.ask_size > 0
        assert q.low <= q.last <= q.high
        assert q.volume >= volume
        assert q.close == on_tick(inst.initial_price, tick)
        volume = q.volume
    assert volume > 0


def test_stock_sizes_are_round_lots_up_to_2000(market: Market) -> None:
    sizes = set()
    for _ in range(500):
        market.step([AAPL])
        q = market.quote(AAPL)
        sizes.update((q.bid_size, q.ask_size))
    assert all(s % 100 == 0 and 100 <= s <= 2000 for s in sizes)
    assert len(sizes) > 5


def test_a_step_is_small_but_prices_move(market: Market) -> None:
    lasts = set()
    for _ in range(400):  # about 100 seconds of quotes
        market.step([AAPL])
        lasts.add(market.quote(AAPL).last)
    assert len(lasts) > 3
    assert all(abs(p / 230.0 - 1) < 0.02 for p in lasts)


def test_frozen_market_does_not_change(market: Market) -> None:
    before = market.quote(AAPL)
    version = market.version(AAPL)
    market.frozen = True
    assert market.step() == []
    assert market.quote(AAPL) == before
    assert market.version(AAPL) == version
    market.frozen = False
    assert AAPL in market.step()


def test_step_returns_changed_ids_and_bumps_version(market: Market) -> None:
    version = market.version(AAPL)
    changed = market.step([AAPL, 424242])  # unknown ids are ignored
    assert changed in ([AAPL], [])
    assert (market.version(AAPL) > version) == bool(changed)


def test_set_price_puts_last_on_grid_with_bid_and_ask_around(market: Market) -> None:
    market.set_price(AAPL, 101.234)
    q = market.quote(AAPL)
    assert (q.bid, q.last, q.ask) == (101.22, 101.23, 101.24)
    assert q.high >= 230.0 and q.low == 101.23


def test_set_quote_sets_exact_sizes_and_refuses_a_crossed_book(market: Market) -> None:
    market.set_quote(AAPL, bid=100.0, ask=100.05, bid_size=300, ask_size=500)
    q = market.quote(AAPL)
    assert (q.bid, q.ask, q.bid_size, q.ask_size) == (100.0, 100.05, 300, 500)
    with pytest.raises(ValueError):
        market.set_quote(AAPL, bid=101.0)


def test_quote_is_a_copy(market: Market) -> None:
    q = market.quote(AAPL)
    q.last = 1.0
    assert market.quote(AAPL).last == 230.0


def test_unknown_con_id_raises_key_error(market: Market) -> None:
    with pytest.raises(KeyError):
        market.quote(1)


def test_state_round_trip_restores_quotes(market: Market, universe: Universe) -> None:
    for _ in range(50):
        market.step()
    saved = market.to_state()
    other = Market(universe, seed=99, clock=clock)
    other.restore(saved)
    for inst in universe:
        a, b = market.quote(inst.con_id), other.quote(inst.con_id)
        assert (a.bid, a.ask, a.last, a.volume, a.high, a.low) == (
            b.bid,
            b.ask,
            b.last,
            b.volume,
            b.high,
            b.low,
        )
    with pytest.raises(ValueError):
        other.restore({str(AAPL): {"bid": 1.0}})


# --- bars ---------------------------------------------------------------------------------


def _check_bars_consistent(bars: list, tick: float) -> None:
    assert bars
    for b in bars:
        assert b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high
        for price in (b.open, b.high, b.low, b.close):
            assert _on_grid(price, tick) and price > 0
    times = [b.time for b in bars]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_minute_bars_end_at_the_current_last_and_are_consistent(market: Market) -> None:
    for _ in range(20):
        market.step([AAPL])
    bars = market.bars(AAPL, NOW, 3600, 60)
    assert len(bars) == 60
    assert bars[-1].close == market.quote(AAPL).last
    _check_bars_consistent(bars, 0.01)
    assert all(b.volume > 0 and b.count > 0 for b in bars)
    assert all(b.low <= b.wap <= b.high for b in bars)
    assert all(b.time % 60 == 0 for b in bars)
    assert bars[-1].time <= NOW < bars[-1].time + 60


def test_bars_are_deterministic(market: Market) -> None:
    assert market.bars(AAPL, NOW, 7200, 300) == market.bars(AAPL, NOW, 7200, 300)


def test_overlapping_bar_requests_draw_the_same_shape(market: Market) -> None:
    long = market.bars(AAPL, NOW, 7200, 300)
    short = market.bars(AAPL, NOW - 3600, 3600, 300)
    # Different anchors, same returns: close-to-close ratios of the shared bars agree.
    shared = {b.time: b.close for b in long}
    common = [b for b in short if b.time in shared]
    assert len(common) >= 5
    for a, b in itertools.pairwise(common):
        assert math.isclose(shared[b.time] / shared[a.time], b.close / a.close, rel_tol=2e-3)


def test_intraday_bars_skip_closed_hours(market: Market, universe: Universe) -> None:
    bars = market.bars(AAPL, NOW, 2 * 86400, 3600)
    for b in bars:
        assert universe.is_open(AAPL, b.time) or universe.is_open(AAPL, b.time + 1800)
    rth = market.bars(AAPL, NOW, 86400, 1800, use_rth=True)
    assert all(universe.is_open(AAPL, b.time + 900, liquid=True) for b in rth)


def test_bars_asked_on_a_weekend_end_at_fridays_session(market: Market) -> None:
    saturday_noon = dt.datetime(2026, 11, 28, 12, 0, tzinfo=EASTERN).timestamp()
    bars = market.bars(AAPL, saturday_noon, 86400, 60)
    last_local = dt.datetime.fromtimestamp(bars[-1].time, EASTERN)
    assert last_local.weekday() == 4 and last_local.hour == 19
    assert len(bars) == 16 * 60


def test_daily_bars_are_one_per_weekday_over_a_year(market: Market) -> None:
    bars = market.bars(SPY, NOW, 365 * 86400, 86400)
    assert 255 <= len(bars) <= 262
    for b in bars:
        local = dt.datetime.fromtimestamp(b.time, EASTERN)
        assert local.weekday() < 5 and (local.hour, local.minute) == (0, 0)
    assert bars[-1].close == market.quote(SPY).last
    _check_bars_consistent(bars, 0.01)


def test_es_and_fx_bars_on_their_ticks(market: Market, universe: Universe) -> None:
    es = _es(universe)
    _check_bars_consistent(market.bars(es, NOW, 86400, 900), 0.25)
    _check_bars_consistent(market.bars(EURUSD, NOW, 86400, 900), 0.00005)


def test_quote_bars_end_at_midpoint_bid_ask_and_carry_no_volume(market: Market) -> None:
    market.set_quote(AAPL, bid=100.0, ask=100.01)
    q = market.quote(AAPL)
    mid = market.bars(AAPL, NOW, 3600, 60, "MIDPOINT")
    assert mid[-1].close == pytest.approx((q.bid + q.ask) / 2)
    assert all(b.volume == -1 and b.count == -1 for b in mid)
    _check_bars_consistent(mid, 0.005)
    assert market.bars(AAPL, NOW, 3600, 60, "BID")[-1].close == q.bid
    assert market.bars(AAPL, NOW, 3600, 60, "ASK")[-1].close == q.ask


def test_bars_refuse_nonsense(market: Market) -> None:
    with pytest.raises(KeyError):
        market.bars(1, NOW, 3600, 60)
    with pytest.raises(ValueError):
        market.bars(AAPL, NOW, 0, 60)
    with pytest.raises(ValueError):
        market.bars(AAPL, NOW, 3600, 0)
