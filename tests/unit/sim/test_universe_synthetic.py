"""The opt-in synthetic universe: many made-up stocks for benchmarks and load tests."""

from __future__ import annotations

import datetime as dt

import pytest

from core.sim import SimGateway
from core.sim.__main__ import build_parser
from core.sim.universe import SYNTHETIC_CON_ID_BASE, Universe, synthetic_symbol

TODAY = dt.date(2026, 11, 25)


def test_synthetic_when_500_then_500_distinct_stocks_with_stable_ids() -> None:
    universe = Universe.synthetic(500, TODAY)
    instruments = list(universe)
    assert len(universe) == 500
    assert all(i.sec_type == "STK" and i.currency == "USD" for i in instruments)
    assert len({i.symbol for i in instruments}) == 500
    assert [i.con_id for i in instruments] == list(
        range(SYNTHETIC_CON_ID_BASE, SYNTHETIC_CON_ID_BASE + 500)
    )
    assert (instruments[0].symbol, instruments[1].symbol, instruments[26].symbol) == (
        "XAAA",
        "XAAB",
        "XABA",
    )


def test_synthetic_when_built_twice_then_identical_and_smaller_n_is_a_prefix() -> None:
    a = list(Universe.synthetic(50, TODAY))
    b = list(Universe.synthetic(50, TODAY))
    c = list(Universe.synthetic(80, TODAY))
    assert a == b
    assert c[:50] == a


def test_synthetic_prices_volatility_and_volume_are_plausible() -> None:
    universe = Universe.synthetic(500, TODAY)
    prices = [i.initial_price for i in universe]
    assert min(prices) >= 4.0 and max(prices) <= 810.0
    assert max(prices) / min(prices) > 50  # spread out, not all alike
    assert all(0.01 <= i.daily_volatility <= 0.04 for i in universe)
    assert all(0.5e6 <= universe.daily_volume(i.con_id) <= 20e6 for i in universe)
    assert all(i.min_tick == 0.01 and i.trading_hours for i in universe)


def test_synthetic_stocks_are_found_like_real_ones() -> None:
    universe = Universe.synthetic(500, TODAY)
    [found] = universe.find(symbol="xaab", sec_type="STK", exchange="SMART")
    assert found.con_id == SYNTHETIC_CON_ID_BASE + 1
    assert universe.find(con_id=SYNTHETIC_CON_ID_BASE + 499)[0].symbol == synthetic_symbol(499)
    assert [i.symbol for i in universe.search("XAA", limit=3)] == ["XAAA", "XAAB", "XAAC"]


def test_default_when_extra_symbols_then_default_plus_synthetic() -> None:
    plain = Universe.default(TODAY)
    extended = Universe.default(TODAY, extra_symbols=500)
    assert len(extended) == len(plain) + 500
    assert [i.con_id for i in extended][: len(plain)] == [i.con_id for i in plain]
    assert extended.by_con_id(265598) is not None  # AAPL still there
    assert extended.daily_volume(SYNTHETIC_CON_ID_BASE) == Universe.synthetic(1).daily_volume(
        SYNTHETIC_CON_ID_BASE
    )


def test_default_universe_has_no_synthetic_stocks() -> None:
    assert not [i for i in Universe.default(TODAY) if i.con_id >= SYNTHETIC_CON_ID_BASE]


@pytest.mark.parametrize("n", [-1, 26**3 + 1])
def test_synthetic_when_n_out_of_range_then_value_error(n: int) -> None:
    with pytest.raises(ValueError, match="n must be"):
        Universe.synthetic(n, TODAY)


def test_synthetic_symbol_when_index_out_of_range_then_value_error() -> None:
    assert synthetic_symbol(26**3 - 1) == "XZZZ"
    with pytest.raises(ValueError):
        synthetic_symbol(26**3)


def test_gateway_with_synthetic_universe_quotes_every_symbol() -> None:
    gw = SimGateway(universe=Universe.synthetic(500), tick_interval=0)
    assert len(gw.universe) == 500
    changed = gw.market.step()
    assert len(changed) > 400  # nearly every book moves on a step
    quote = gw.market.quote(SYNTHETIC_CON_ID_BASE + 7)
    assert 0 < quote.bid < quote.ask


def test_cli_synthetic_flag_parses() -> None:
    assert build_parser().parse_args([]).synthetic == 0
    assert build_parser().parse_args(["--synthetic", "500"]).synthetic == 500
