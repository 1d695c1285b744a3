"""core.contracts: constructors, tick rounding, price bands."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ib_async import Contract, Forex, Future, Option, Stock

from core.contracts import (
    create_forex_contract,
    create_future_contract,
    create_option_contract,
    create_stock_contract,
    describe_contract,
    format_price,
    is_on_tick,
    price_band,
    round_to_tick,
    tick_decimals,
)

# ---------------------------------------------------------------- constructors


def test_create_stock_contract_when_defaults_then_smart_usd_stock() -> None:
    contract = create_stock_contract("aapl")

    assert isinstance(contract, Stock)
    assert (contract.secType, contract.symbol, contract.exchange, contract.currency) == (
        "STK",
        "AAPL",
        "SMART",
        "USD",
    )
    assert contract.conId == 0


def test_create_stock_contract_when_exchange_and_currency_given_then_used() -> None:
    contract = create_stock_contract("SAP", "ibis", "eur")

    assert (contract.exchange, contract.currency) == ("IBIS", "EUR")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"symbol": ""}, "symbol: must not be empty"),
        ({"symbol": "   "}, "symbol: must not be empty"),
        ({"symbol": "AA$"}, "symbol: 'AA$' is not a valid symbol"),
        ({"symbol": "AAPL", "exchange": ""}, "exchange: must not be empty"),
        ({"symbol": "AAPL", "currency": "US"}, "currency: 'US' is not a three-letter currency"),
    ],
)
def test_create_stock_contract_when_bad_argument_then_value_error_names_it(
    kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("$", r"\$")):
        create_stock_contract(**kwargs)


def test_create_future_contract_when_month_given_then_future() -> None:
    contract = create_future_contract("es", "202612", "cme", multiplier="50")

    assert isinstance(contract, Future)
    assert (contract.symbol, contract.lastTradeDateOrContractMonth, contract.exchange) == (
        "ES",
        "202612",
        "CME",
    )
    assert (contract.multiplier, contract.currency) == ("50", "USD")


@pytest.mark.parametrize(
    ("date", "message"),
    [
        ("2026-12", "last_trade_date_or_month: '2026-12' is not a date YYYYMMDD or a month"),
        ("202613", "last_trade_date_or_month: '202613' is not a real date or month"),
        ("20260230", "last_trade_date_or_month: '20260230' is not a real date or month"),
    ],
)
def test_create_future_contract_when_bad_date_then_value_error_names_argument(
    date: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        create_future_contract("ES", date, "CME")


def test_create_future_contract_when_exchange_empty_then_value_error() -> None:
    with pytest.raises(ValueError, match="exchange: must not be empty"):
        create_future_contract("ES", "202612", "")


def test_create_future_contract_when_multiplier_negative_then_value_error() -> None:
    with pytest.raises(ValueError, match="multiplier: '-50' must be positive"):
        create_future_contract("ES", "202612", "CME", multiplier="-50")


@pytest.mark.parametrize("pair", ["EURUSD", "EUR.USD", "eur/usd", " EUR.USD "])
def test_create_forex_contract_when_pair_forms_then_same_contract(pair: str) -> None:
    contract = create_forex_contract(pair)

    assert isinstance(contract, Forex)
    assert (contract.symbol, contract.currency, contract.exchange) == ("EUR", "USD", "IDEALPRO")


@pytest.mark.parametrize("pair", ["EURUS", "EUR.US.D", "EUR123", "", "USDUSD"])
def test_create_forex_contract_when_bad_pair_then_value_error_names_pair(pair: str) -> None:
    with pytest.raises(ValueError, match=r"^pair: "):
        create_forex_contract(pair)


@pytest.mark.parametrize(("right", "expected"), [("c", "C"), ("CALL", "C"), ("put", "P")])
def test_create_option_contract_when_right_spellings_then_normalised(
    right: str, expected: str
) -> None:
    contract = create_option_contract("aapl", "20261218", 190, right)

    assert isinstance(contract, Option)
    assert contract.right == expected
    assert (contract.symbol, contract.strike, contract.multiplier) == ("AAPL", 190.0, "100")
    assert (contract.exchange, contract.currency) == ("SMART", "USD")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"right": "X"}, "right: 'X' is not C, CALL, P or PUT"),
        ({"strike": 0}, "strike: 0 must be a positive number"),
        ({"strike": float("nan")}, "strike: nan must be a positive number"),
        ({"expiry": "tomorrow"}, "expiry: 'tomorrow' is not a date"),
        ({"symbol": ""}, "symbol: must not be empty"),
    ],
)
def test_create_option_contract_when_bad_argument_then_value_error_names_it(
    kwargs: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {"symbol": "AAPL", "expiry": "20261218", "strike": 190, "right": "C"}
    args.update(kwargs)

    with pytest.raises(ValueError, match=message):
        create_option_contract(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("contract", "expected"),
    [
        (create_stock_contract("AAPL"), "AAPL"),
        (create_future_contract("ES", "202612", "CME"), "ES 202612"),
        (Future("ES", "202612", "CME", localSymbol="ESZ6"), "ESZ6"),
        (create_forex_contract("EURUSD"), "EUR.USD"),
        (create_option_contract("AAPL", "20261218", 190, "C"), "AAPL 20261218 190.00 C"),
        (Contract(conId=42), "conId 42"),
    ],
)
def test_describe_contract_when_each_type_then_short_name(
    contract: Contract, expected: str
) -> None:
    assert describe_contract(contract) == expected


# ---------------------------------------------------------------- ticks


@pytest.mark.parametrize(
    ("price", "tick", "direction", "expected"),
    [
        (189.505, 0.01, "nearest", 189.51),
        (189.504, 0.01, "nearest", 189.50),
        (189.501, 0.01, "up", 189.51),
        (189.509, 0.01, "down", 189.50),
        (4500.13, 0.25, "nearest", 4500.25),
        (4500.12, 0.25, "nearest", 4500.0),
        (4500.125, 0.25, "nearest", 4500.25),
        (4500.01, 0.25, "up", 4500.25),
        (4500.24, 0.25, "down", 4500.0),
        (1.23456, 0.00005, "nearest", 1.23455),
        (1.234575, 0.00005, "nearest", 1.2346),
        (1.23451, 0.00005, "up", 1.23455),
        (0.3, 0.1, "nearest", 0.3),
        (-3.456, 0.01, "nearest", -3.46),
        (-3.451, 0.01, "down", -3.46),
        (100.0, 0.01, "up", 100.0),
    ],
)
def test_round_to_tick_when_cases_then_exact_float(
    price: float, tick: float, direction: str, expected: float
) -> None:
    assert round_to_tick(price, tick, direction) == expected  # type: ignore[arg-type]


def test_round_to_tick_when_decimal_input_then_float_out() -> None:
    assert round_to_tick(Decimal("10.006"), Decimal("0.01")) == 10.01


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((10.0, 0.0), "min_tick: 0.0 must be positive"),
        ((10.0, -0.01), "min_tick: -0.01 must be positive"),
        ((float("nan"), 0.01), "price: nan is not a finite number"),
        ((float("inf"), 0.01), "price: inf is not a finite number"),
        ((10.0, 0.01, "sideways"), "direction: 'sideways' is not"),
    ],
)
def test_round_to_tick_when_bad_argument_then_value_error_names_it(
    args: tuple[object, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        round_to_tick(*args)  # type: ignore[arg-type]


TICKS = st.sampled_from(
    [Decimal(t) for t in ("0.01", "0.05", "0.25", "0.5", "1", "0.0001", "0.00005", "0.005")]
)
PRICES = st.decimals(min_value=Decimal("-100000"), max_value=Decimal("100000"), places=6)


@given(price=PRICES, tick=TICKS)
def test_round_to_tick_when_any_price_then_on_tick_and_within_half_a_tick(
    price: Decimal, tick: Decimal
) -> None:
    result = round_to_tick(float(price), float(tick))

    exact = Decimal(str(result))
    assert exact % tick == 0
    assert is_on_tick(result, float(tick))
    assert abs(exact - Decimal(str(float(price)))) <= tick / 2


@given(price=PRICES, tick=TICKS)
def test_round_to_tick_when_up_or_down_then_brackets_price_within_one_tick(
    price: Decimal, tick: Decimal
) -> None:
    exact = Decimal(str(float(price)))

    up = Decimal(str(round_to_tick(float(price), float(tick), "up")))
    down = Decimal(str(round_to_tick(float(price), float(tick), "down")))

    assert down <= exact <= up
    assert up - down in (0, tick)
    assert up % tick == 0 and down % tick == 0


def test_is_on_tick_when_float_noise_then_still_on_tick() -> None:
    assert is_on_tick(100 * 1.1, 0.01)  # 110.00000000000001
    assert is_on_tick(4500.25, 0.25)
    assert not is_on_tick(4500.1, 0.25)
    assert not is_on_tick(189.505, 0.01)
    assert is_on_tick(1.08345, 0.00005)


@pytest.mark.parametrize(
    ("tick", "decimals"), [(0.01, 2), (0.25, 2), (0.00005, 5), (1, 0), (0.5, 1), (5, 0)]
)
def test_tick_decimals_when_ticks_then_decimals_needed(tick: float, decimals: int) -> None:
    assert tick_decimals(tick) == decimals


@pytest.mark.parametrize(
    ("price", "tick", "expected"),
    [
        (189.5, None, "189.50"),
        (100, None, "100.00"),
        (1.08345, None, "1.08345"),
        (1.1, 0.00005, "1.10000"),
        (4500.25, 0.25, "4500.25"),
    ],
)
def test_format_price_when_values_then_at_least_two_decimals(
    price: float, tick: float | None, expected: str
) -> None:
    assert format_price(price, tick) == expected


def test_price_band_when_pct_then_symmetric_bounds() -> None:
    assert price_band(100.0, 5) == (95.0, 105.0)


def test_price_band_when_tick_given_then_bounds_inside_band_on_tick() -> None:
    low, high = price_band(189.37, 1, min_tick=0.01)

    # 1 % of 189.37 is 1.8937: the band is [187.4763, 191.2637].
    assert (low, high) == (187.48, 191.26)


def test_price_band_when_negative_reference_then_ordered_bounds() -> None:
    assert price_band(-20.0, 10) == (-22.0, -18.0)


def test_price_band_when_negative_pct_then_value_error() -> None:
    with pytest.raises(ValueError, match="pct: -1 must not be negative"):
        price_band(100.0, -1)
