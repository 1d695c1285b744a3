"""core.orders: constructors, brackets, validation (every problem at once), descriptions."""

from __future__ import annotations

import math

import pytest
from ib_async import Contract, ContractDetails, Order, Stock
from ib_async.util import UNSET_DOUBLE

from core.contracts import create_forex_contract, create_future_contract
from core.orders import (
    BracketOrder,
    OrderValidationError,
    assign_bracket_ids,
    create_bracket_order,
    create_limit_order,
    create_market_order,
    create_stop_limit_order,
    create_stop_order,
    describe_order,
    ensure_valid,
    is_unset,
    price_or_none,
    validate_order,
)


def aapl() -> Stock:
    return Stock("AAPL", "SMART", "USD", conId=265598)


def aapl_details(min_size: float = 1, size_increment: float = 1) -> ContractDetails:
    return ContractDetails(
        contract=aapl(), minTick=0.01, minSize=min_size, sizeIncrement=size_increment
    )


def es_details() -> ContractDetails:
    es = create_future_contract("ES", "202612", "CME")
    es.conId = 495512563
    return ContractDetails(contract=es, minTick=0.25, minSize=1, sizeIncrement=1)


# ---------------------------------------------------------------- constructors


@pytest.mark.parametrize("action", ["buy", "BUY", " Buy "])
def test_create_market_order_when_action_any_case_then_upper_and_day(action: str) -> None:
    order = create_market_order(action, 100)

    assert (order.action, order.totalQuantity, order.orderType, order.tif) == (
        "BUY",
        100,
        "MKT",
        "DAY",
    )
    assert order.transmit is True


def test_create_limit_order_when_valid_then_limit_price_set() -> None:
    order = create_limit_order("sell", 10, 189.5, tif="gtc", outsideRth=True)

    assert (order.action, order.orderType, order.lmtPrice, order.tif) == (
        "SELL",
        "LMT",
        189.5,
        "GTC",
    )
    assert order.outsideRth is True
    assert order.auxPrice == UNSET_DOUBLE


def test_create_stop_order_when_valid_then_aux_price_is_stop() -> None:
    order = create_stop_order("SELL", 10, 180.0)

    assert (order.orderType, order.auxPrice, order.lmtPrice) == ("STP", 180.0, UNSET_DOUBLE)


def test_create_stop_limit_order_when_valid_then_both_prices() -> None:
    order = create_stop_limit_order("BUY", 10, stop_price=190.0, limit_price=190.5)

    assert (order.orderType, order.auxPrice, order.lmtPrice) == ("STP LMT", 190.0, 190.5)


def test_create_limit_order_when_every_argument_bad_then_all_problems_listed() -> None:
    with pytest.raises(OrderValidationError) as excinfo:
        create_limit_order("HOLD", 0, -1.0, tif="FOREVER")

    assert excinfo.value.problems == [
        "action 'HOLD' is not BUY or SELL",
        "quantity 0 must be positive",
        "limit price -1 must be positive",
        "time in force 'FOREVER' is not one of DAY, GTC, IOC, GTD, OPG, FOK",
    ]
    assert isinstance(excinfo.value, ValueError)


@pytest.mark.parametrize(
    ("quantity", "problem"),
    [
        (math.nan, "quantity nan is not a finite number"),
        (UNSET_DOUBLE, "is not a finite number"),
        ("ten", "quantity 'ten' is not a number"),
        (-5, "quantity -5 must be positive"),
    ],
)
def test_create_market_order_when_bad_quantity_then_problem_names_it(
    quantity: object, problem: str
) -> None:
    with pytest.raises(OrderValidationError, match=problem):
        create_market_order("BUY", quantity)  # type: ignore[arg-type]


# ---------------------------------------------------------------- brackets


def test_create_bracket_order_when_buy_then_three_linked_orders_last_transmits() -> None:
    bracket = create_bracket_order("buy", 100, 189.5, 195.0, 185.0)

    parent, take_profit, stop_loss = bracket
    assert isinstance(bracket, BracketOrder)
    assert (parent.action, parent.orderType, parent.lmtPrice) == ("BUY", "LMT", 189.5)
    assert (take_profit.action, take_profit.orderType, take_profit.lmtPrice) == (
        "SELL",
        "LMT",
        195.0,
    )
    assert (stop_loss.action, stop_loss.orderType, stop_loss.auxPrice) == ("SELL", "STP", 185.0)
    assert [o.transmit for o in bracket] == [False, False, True]
    assert {o.totalQuantity for o in bracket} == {100}
    assert {o.tif for o in bracket} == {"DAY"}
    assert bracket.orders == (parent, take_profit, stop_loss)


def test_create_bracket_order_when_frozen_then_fields_not_reassignable() -> None:
    bracket = create_bracket_order("BUY", 1, 10.0, 11.0, 9.0)

    with pytest.raises(AttributeError):
        bracket.parent = Order()  # type: ignore[misc]


def test_assign_bracket_ids_when_parent_id_then_children_follow_and_link() -> None:
    bracket = create_bracket_order("SELL", 5, 100.0, 95.0, 105.0)

    assign_bracket_ids(bracket, 41)

    assert [o.orderId for o in bracket] == [41, 42, 43]
    assert [o.parentId for o in bracket] == [0, 41, 41]


def test_assign_bracket_ids_when_explicit_child_ids_then_used() -> None:
    bracket = create_bracket_order("BUY", 5, 100.0, 105.0, 95.0)

    assign_bracket_ids(bracket, 10, take_profit_id=20, stop_loss_id=30)

    assert [o.orderId for o in bracket] == [10, 20, 30]


@pytest.mark.parametrize(
    ("args", "message"),
    [((0,), "parent_id: 0 must be a positive order id"), ((5, 5, 6), "must differ")],
)
def test_assign_bracket_ids_when_bad_ids_then_value_error(
    args: tuple[int, ...], message: str
) -> None:
    bracket = create_bracket_order("BUY", 5, 100.0, 105.0, 95.0)

    with pytest.raises(ValueError, match=message):
        assign_bracket_ids(bracket, *args)


def test_create_bracket_order_when_buy_prices_inverted_then_both_problems_listed() -> None:
    with pytest.raises(OrderValidationError) as excinfo:
        create_bracket_order("BUY", 100, 189.5, 185.0, 195.0)

    assert excinfo.value.problems == [
        "take-profit price 185 must be above the entry price 189.5 for a BUY bracket",
        "stop-loss price 195 must be below the entry price 189.5 for a BUY bracket",
    ]


def test_create_bracket_order_when_sell_prices_inverted_then_both_problems_listed() -> None:
    with pytest.raises(OrderValidationError) as excinfo:
        create_bracket_order("SELL", 100, 189.5, 195.0, 185.0)

    assert excinfo.value.problems == [
        "take-profit price 195 must be below the entry price 189.5 for a SELL bracket",
        "stop-loss price 185 must be above the entry price 189.5 for a SELL bracket",
    ]


# ---------------------------------------------------------------- validation


def test_validate_order_when_valid_limit_order_then_no_problems() -> None:
    order = create_limit_order("BUY", 100, 189.5)

    assert validate_order(aapl(), order, aapl_details()) == []
    ensure_valid(aapl(), order, aapl_details())


def test_validate_order_when_everything_wrong_then_every_problem_listed() -> None:
    contract = Stock("AAPL", "SMART", "USD")  # not qualified
    order = Order(action="HOLD", totalQuantity=-5, orderType="LIMIT", tif="FOREVER")

    problems = validate_order(contract, order, aapl_details())

    assert problems == [
        "contract AAPL is not qualified (conId 0): look it up before placing an order",
        "action 'HOLD' is not BUY or SELL",
        "quantity -5 must be positive",
        "order type 'LIMIT' is unknown (expected one of MKT, LMT, STP, STP LMT, MIT, LIT, "
        "MOC, LOC, MTL, TRAIL, TRAIL LIMIT, REL)",
        "time in force 'FOREVER' is not one of DAY, GTC, IOC, GTD, OPG, FOK",
    ]


def test_ensure_valid_when_problems_then_error_carries_all_of_them() -> None:
    order = Order(action="BUY", totalQuantity=0, orderType="LMT", tif="DAY")

    with pytest.raises(OrderValidationError) as excinfo:
        ensure_valid(aapl(), order)

    assert excinfo.value.problems == [
        "quantity 0 must be positive",
        "limit price is missing (a LMT order needs one)",
    ]
    assert str(excinfo.value) == "; ".join(excinfo.value.problems)


@pytest.mark.parametrize("quantity", [None, UNSET_DOUBLE, math.nan])
def test_validate_order_when_quantity_unset_then_missing(quantity: float | None) -> None:
    order = Order(action="BUY", totalQuantity=quantity, orderType="MKT", tif="DAY")  # type: ignore[arg-type]

    assert validate_order(aapl(), order) == ["quantity is missing"]


def test_validate_order_when_fractional_shares_then_not_whole_problem() -> None:
    order = Order(action="BUY", totalQuantity=10.5, orderType="MKT", tif="DAY")

    assert validate_order(aapl(), order) == [
        "quantity 10.5 is not a whole number of shares (fractional shares are not supported)"
    ]


def test_validate_order_when_fractional_futures_then_not_whole_contracts() -> None:
    details = es_details()
    assert details.contract is not None
    order = create_market_order("BUY", 1.5)

    assert validate_order(details.contract, order, details) == [
        "quantity 1.5 is not a whole number of contracts"
    ]


def test_validate_order_when_fractional_forex_then_allowed() -> None:
    eurusd = create_forex_contract("EURUSD")
    eurusd.conId = 12087792

    assert validate_order(eurusd, create_market_order("BUY", 20000.5)) == []


def test_validate_order_when_below_min_size_and_off_increment_then_both_listed() -> None:
    details = aapl_details(min_size=100, size_increment=100)
    order = create_market_order("BUY", 50)

    assert validate_order(aapl(), order, details) == [
        "quantity 50 is below the minimum size 100",
        "quantity 50 is not a multiple of the size increment 100 (nearest valid: 100)",
    ]


def test_validate_order_when_off_size_increment_then_nearest_quantities_named() -> None:
    details = aapl_details(min_size=100, size_increment=100)

    problems = validate_order(aapl(), create_market_order("SELL", 250), details)

    assert problems == [
        "quantity 250 is not a multiple of the size increment 100 (nearest valid: 200 or 300)"
    ]


def test_validate_order_when_details_sizes_unset_then_ignored() -> None:
    details = aapl_details(min_size=UNSET_DOUBLE, size_increment=0)

    assert validate_order(aapl(), create_market_order("BUY", 7), details) == []


def test_validate_order_when_limit_off_tick_then_tick_and_nearest_prices_named() -> None:
    order = create_limit_order("BUY", 100, 189.503)

    assert validate_order(aapl(), order, aapl_details()) == [
        "limit price 189.503 is not on the tick 0.01 (nearest valid prices: 189.50 or 189.51)"
    ]


def test_validate_order_when_future_stop_off_quarter_tick_then_named() -> None:
    details = es_details()
    assert details.contract is not None
    order = create_stop_order("SELL", 1, 4500.1)

    assert validate_order(details.contract, order, details) == [
        "stop price 4500.1 is not on the tick 0.25 (nearest valid prices: 4500.00 or 4500.25)"
    ]


def test_validate_order_when_prices_missing_then_each_missing_price_named() -> None:
    order = Order(action="BUY", totalQuantity=1, orderType="STP LMT", tif="DAY")

    assert validate_order(aapl(), order) == [
        "stop price is missing (a STP LMT order needs one)",
        "limit price is missing (a STP LMT order needs one)",
    ]


def test_validate_order_when_prices_not_positive_then_each_named() -> None:
    order = Order(
        action="SELL", totalQuantity=1, orderType="STP LMT", auxPrice=0.0, lmtPrice=-2.5, tif="DAY"
    )

    assert validate_order(aapl(), order, aapl_details()) == [
        "stop price 0 must be positive",
        "limit price -2.5 must be positive",
    ]


def test_validate_order_when_combo_negative_limit_then_allowed() -> None:
    combo = Contract(secType="BAG", symbol="SPY", conId=28812380, exchange="SMART")
    order = Order(action="BUY", totalQuantity=1, orderType="LMT", lmtPrice=-0.5, tif="DAY")

    assert validate_order(combo, order) == []


def test_validate_order_when_buy_stop_limit_below_stop_then_relation_problem() -> None:
    order = create_stop_limit_order("BUY", 10, stop_price=190.0, limit_price=189.0)

    assert validate_order(aapl(), order, aapl_details()) == [
        "limit price 189 is below the stop price 190: a BUY stop-limit triggers above its "
        "stop, so this limit would not fill"
    ]


def test_validate_order_when_sell_stop_limit_above_stop_then_relation_problem() -> None:
    order = create_stop_limit_order("SELL", 10, stop_price=180.0, limit_price=181.0)

    assert validate_order(aapl(), order, aapl_details()) == [
        "limit price 181 is above the stop price 180: a SELL stop-limit triggers below its "
        "stop, so this limit would not fill"
    ]


def test_validate_order_when_stop_limit_on_right_side_then_no_problem() -> None:
    buy = create_stop_limit_order("BUY", 10, stop_price=190.0, limit_price=190.5)
    sell = create_stop_limit_order("SELL", 10, stop_price=180.0, limit_price=180.0)

    assert validate_order(aapl(), buy, aapl_details()) == []
    assert validate_order(aapl(), sell, aapl_details()) == []


def test_validate_order_when_tif_missing_then_problem() -> None:
    order = Order(action="BUY", totalQuantity=1, orderType="MKT")

    assert validate_order(aapl(), order) == [
        "time in force is missing (one of DAY, GTC, IOC, GTD, OPG, FOK)"
    ]


def test_validate_order_when_gtd_without_date_then_problem() -> None:
    order = create_limit_order("BUY", 1, 10.0, tif="GTD")

    assert validate_order(aapl(), order) == ["a GTD order needs a good-till date (goodTillDate)"]


@pytest.mark.parametrize("tif", ["DAY", "GTC", "IOC", "OPG", "FOK"])
def test_validate_order_when_each_known_tif_then_accepted(tif: str) -> None:
    assert validate_order(aapl(), create_limit_order("BUY", 1, 10.0, tif=tif)) == []


def test_validate_order_when_trail_without_amount_then_problem() -> None:
    order = Order(action="SELL", totalQuantity=1, orderType="TRAIL", tif="DAY")

    assert validate_order(aapl(), order) == [
        "trailing amount or percentage is missing (a TRAIL order needs one)"
    ]


def test_validate_order_when_details_for_other_contract_then_problem() -> None:
    details = es_details()

    problems = validate_order(aapl(), create_market_order("BUY", 1), details)

    assert problems == [
        "the contract details are for conId 495512563, not for the order's contract (conId 265598)"
    ]


def test_validate_order_when_order_type_missing_then_problem_says_none() -> None:
    order = Order(action="BUY", totalQuantity=1, tif="DAY")

    assert validate_order(aapl(), order) == [
        "order type (none) is unknown (expected one of MKT, LMT, STP, STP LMT, MIT, LIT, "
        "MOC, LOC, MTL, TRAIL, TRAIL LIMIT, REL)"
    ]


# ---------------------------------------------------------------- placeholders


@pytest.mark.parametrize(
    ("value", "unset"),
    [(None, True), (math.nan, True), (UNSET_DOUBLE, True), (math.inf, True), (0.0, False)],
)
def test_is_unset_when_placeholders_then_true(value: float | None, unset: bool) -> None:
    assert is_unset(value) is unset


def test_price_or_none_when_placeholder_then_none_else_float() -> None:
    assert price_or_none(UNSET_DOUBLE) is None
    assert price_or_none(189.5) == 189.5


# ---------------------------------------------------------------- descriptions


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (create_limit_order("BUY", 100, 189.5), "BUY 100 AAPL LMT 189.50 DAY"),
        (create_market_order("sell", 25), "SELL 25 AAPL MKT DAY"),
        (create_stop_order("SELL", 10, 180, tif="GTC"), "SELL 10 AAPL STP 180.00 GTC"),
        (
            create_stop_limit_order("BUY", 10, 190, 190.5),
            "BUY 10 AAPL STP LMT 190.00 LMT 190.50 DAY",
        ),
        (
            Order(action="BUY", totalQuantity=1, orderType="LMT", tif="DAY"),
            "BUY 1 AAPL LMT ? DAY",
        ),
        (
            Order(action="SELL", totalQuantity=5, orderType="TRAIL", trailingPercent=2, tif="DAY"),
            "SELL 5 AAPL TRAIL 2% DAY",
        ),
        (
            create_limit_order(
                "BUY", 3, 10.0, tif="GTD", goodTillDate="20261231 16:00:00 US/Eastern"
            ),
            "BUY 3 AAPL LMT 10.00 GTD 20261231 16:00:00 US/Eastern",
        ),
        (
            create_limit_order("BUY", 3, 10.0, orderRef="momo", parentId=41, outsideRth=True),
            "BUY 3 AAPL LMT 10.00 DAY outside RTH parent #41 [momo]",
        ),
    ],
)
def test_describe_order_when_each_type_then_one_line(order: Order, expected: str) -> None:
    assert describe_order(aapl(), order) == expected


def test_describe_order_when_forex_fraction_then_exact_quantity() -> None:
    eurusd = create_forex_contract("EURUSD")

    assert describe_order(eurusd, create_limit_order("BUY", 20000.5, 1.08345)) == (
        "BUY 20000.5 EUR.USD LMT 1.08345 DAY"
    )
