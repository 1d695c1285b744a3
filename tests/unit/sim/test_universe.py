"""The simulated universe: IB-like contract lookups, futures months, trading hours."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest

from core.sim.universe import Universe, es_front_months, third_friday

TODAY = dt.date(2026, 11, 25)  # a Wednesday, the day before Thanksgiving
EASTERN = ZoneInfo("US/Eastern")
CENTRAL = ZoneInfo("US/Central")


@pytest.fixture
def universe() -> Universe:
    return Universe.default(TODAY)


def _ts(y: int, mo: int, d: int, h: int, mi: int, tz: ZoneInfo) -> float:
    return dt.datetime(y, mo, d, h, mi, tzinfo=tz).timestamp()


def test_default_universe_has_liquid_us_stocks_es_and_eurusd(universe: Universe) -> None:
    symbols = {i.symbol for i in universe if i.sec_type == "STK"}
    assert len(symbols) >= 20
    for sym in ("AAPL", "MSFT", "AMZN", "GOOGL", "META", "NVDA", "TSLA", "JPM", "V", "SPY", "QQQ"):
        assert sym in symbols
    assert [i.local_symbol for i in universe if i.sec_type == "FUT"] == ["ESZ6", "ESH7"]
    assert [i.local_symbol for i in universe if i.sec_type == "CASH"] == ["EUR.USD"]
    assert len({i.con_id for i in universe}) == len(universe)


def test_stocks_carry_realistic_contract_details(universe: Universe) -> None:
    aapl = universe.by_con_id(265598)
    assert aapl is not None
    assert (aapl.symbol, aapl.exchange, aapl.primary_exchange, aapl.currency) == (
        "AAPL",
        "SMART",
        "NASDAQ",
        "USD",
    )
    assert aapl.min_tick == 0.01 and aapl.multiplier == 1
    assert aapl.long_name == "APPLE INC"
    assert aapl.time_zone_id == "US/Eastern"
    assert universe.by_con_id(756733).primary_exchange == "ARCA"  # type: ignore[union-attr]
    assert universe.by_con_id(272093).symbol == "MSFT"  # type: ignore[union-attr]
    assert universe.by_con_id(1) is None


def test_find_stock_by_symbol_is_case_insensitive_and_smart_matches(universe: Universe) -> None:
    found = universe.find(symbol="aapl", sec_type="STK", exchange="SMART", currency="USD")
    assert [i.con_id for i in found] == [265598]


def test_find_stock_by_primary_exchange(universe: Universe) -> None:
    assert [i.con_id for i in universe.find(symbol="AAPL", exchange="NASDAQ")] == [265598]
    assert universe.find(symbol="AAPL", exchange="NYSE") == []


def test_find_with_empty_criteria_is_a_wildcard(universe: Universe) -> None:
    assert len(universe.find(sec_type="STK")) >= 20
    assert [i.symbol for i in universe.find(con_id=272093)] == ["MSFT"]


def test_find_unknown_contract_returns_empty_list(universe: Universe) -> None:
    assert universe.find(symbol="NOPE") == []
    assert universe.find(con_id=42) == []
    assert universe.find(symbol="AAPL", currency="EUR") == []


def test_find_es_without_expiry_returns_every_listed_month_front_first(
    universe: Universe,
) -> None:
    found = universe.find(symbol="ES", sec_type="FUT", exchange="CME")
    assert [i.local_symbol for i in found] == ["ESZ6", "ESH7"]
    es = found[0]
    assert (es.local_symbol, es.last_trade_date, es.trading_class) == ("ESZ6", "20261218", "ES")
    assert es.multiplier == 50 and es.min_tick == 0.25
    assert es.time_zone_id == "US/Central"


def test_find_es_by_contract_month_or_local_symbol(universe: Universe) -> None:
    assert [i.local_symbol for i in universe.find(symbol="ES", last_trade_date="202703")] == [
        "ESH7"
    ]
    assert [i.local_symbol for i in universe.find(symbol="ES", last_trade_date="20261218")] == [
        "ESZ6"
    ]
    assert [i.local_symbol for i in universe.find(local_symbol="esh7")] == ["ESH7"]
    assert [i.local_symbol for i in universe.find(symbol="ES", exchange="GLOBEX")] == [
        "ESZ6",
        "ESH7",
    ]
    assert [i.local_symbol for i in universe.find(symbol="ES", sec_type="CONTFUT")] == ["ESZ6"]


def test_find_eurusd_like_ib_forex_contract(universe: Universe) -> None:
    found = universe.find(symbol="EUR", sec_type="CASH", exchange="IDEALPRO", currency="USD")
    assert [i.local_symbol for i in found] == ["EUR.USD"]
    fx = found[0]
    assert fx.con_id == 12087792
    assert fx.min_tick == 0.00005 and fx.multiplier == 1 and fx.min_size == 1
    assert universe.find(local_symbol="EUR.USD") == found


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (dt.date(2026, 11, 25), [(2026, 12), (2027, 3)]),
        (dt.date(2026, 12, 18), [(2026, 12), (2027, 3)]),  # expiry day still trades
        (dt.date(2026, 12, 19), [(2027, 3), (2027, 6)]),
        (dt.date(2027, 1, 4), [(2027, 3), (2027, 6)]),
    ],
)
def test_es_front_months_roll_after_the_third_friday(
    today: dt.date, expected: list[tuple[int, int]]
) -> None:
    assert es_front_months(today, 2) == expected


def test_third_friday() -> None:
    assert third_friday(2026, 12) == dt.date(2026, 12, 18)
    assert third_friday(2027, 3) == dt.date(2027, 3, 19)
    assert third_friday(2026, 5) == dt.date(2026, 5, 15)


def test_es_local_symbol_follows_today() -> None:
    uni = Universe.default(dt.date(2027, 1, 10))
    assert [i.local_symbol for i in uni.find(symbol="ES")] == ["ESH7", "ESM7"]


_SESSION = re.compile(r"^\d{8}:(CLOSED|\d{4}-\d{8}:\d{4})$")


def test_stock_trading_hours_in_ib_format_with_weekend_closed(universe: Universe) -> None:
    aapl = universe.by_con_id(265598)
    assert aapl is not None
    parts = aapl.trading_hours.split(";")
    assert len(parts) == 7
    assert all(_SESSION.match(p) for p in parts)
    assert parts[0] == "20261125:0400-20261125:2000"
    assert "20261128:CLOSED" in parts and "20261129:CLOSED" in parts
    assert aapl.liquid_hours.split(";")[0] == "20261125:0930-20261125:1600"


def test_es_hours_are_globex_sessions_from_the_previous_evening(universe: Universe) -> None:
    es = universe.find(symbol="ES")[0]
    parts = es.trading_hours.split(";")
    assert all(_SESSION.match(p) for p in parts)
    assert "20261124:1700-20261125:1600" in parts
    assert "20261128:CLOSED" in parts
    assert "20261129:1700-20261130:1600" in parts  # Sunday evening opens Monday


def test_eurusd_hours_run_sunday_evening_to_friday_evening(universe: Universe) -> None:
    fx = universe.find(symbol="EUR")[0]
    parts = fx.trading_hours.split(";")
    assert "20261126:1715-20261127:1700" in parts
    assert "20261128:CLOSED" in parts
    assert "20261129:1715-20261130:1700" in parts


@pytest.mark.parametrize(
    ("when", "liquid", "expected"),
    [
        (_ts(2026, 11, 25, 10, 0, EASTERN), True, True),
        (_ts(2026, 11, 25, 9, 0, EASTERN), True, False),
        (_ts(2026, 11, 25, 9, 0, EASTERN), False, True),
        (_ts(2026, 11, 25, 3, 59, EASTERN), False, False),
        (_ts(2026, 11, 25, 20, 0, EASTERN), False, False),
        (_ts(2026, 11, 28, 12, 0, EASTERN), False, False),  # Saturday
    ],
)
def test_stock_is_open(universe: Universe, when: float, liquid: bool, expected: bool) -> None:
    assert universe.is_open(265598, when, liquid) is expected


def test_es_and_fx_sessions_open_sunday_evening(universe: Universe) -> None:
    es = universe.find(symbol="ES")[0].con_id
    assert universe.is_open(es, _ts(2026, 11, 29, 18, 0, CENTRAL))
    assert not universe.is_open(es, _ts(2026, 11, 29, 16, 0, CENTRAL))
    assert not universe.is_open(es, _ts(2026, 11, 30, 16, 30, CENTRAL))  # daily break
    assert universe.is_open(12087792, _ts(2026, 11, 29, 17, 30, EASTERN))
    assert not universe.is_open(12087792, _ts(2026, 11, 27, 17, 30, EASTERN))  # Friday evening
    assert not universe.is_open(999, _ts(2026, 11, 25, 12, 0, EASTERN))


def test_search_puts_symbol_prefix_matches_before_name_matches(universe: Universe) -> None:
    found = [i.symbol for i in universe.search("aa")]
    assert found[0] == "AAPL"
    by_name = [i.symbol for i in universe.search("apple")]
    assert by_name == ["AAPL"]
    mixed = [i.symbol for i in universe.search("INT")]
    # INTC by its symbol first, then IBM by "INTL BUSINESS MACHINES"
    assert mixed.index("INTC") < mixed.index("IBM")


def test_search_honours_limit_and_lists_only_the_front_future(universe: Universe) -> None:
    assert len(universe.search("A", limit=3)) == 3
    es = [i.local_symbol for i in universe.search("ES")]
    assert es[0] == "ESZ6"  # the symbol match, then names like "TESLA INC"
    assert "ESH7" not in es and "TSLA" in es
    assert universe.search("") == []
    assert universe.search("zzzz") == []
    assert universe.search("V")[0].symbol == "V"
