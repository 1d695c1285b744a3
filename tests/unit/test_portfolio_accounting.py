"""Average-cost accounting of the PositionBook, checked against figures worked by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.events import FillRecorded
from core.portfolio import ACCOUNT, PositionBook

T0 = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
_ids = count()


def fill(
    side: str,
    qty: float,
    price: float,
    *,
    strategy: str = "alpha",
    con_id: int = 1,
    commission: float | None = 0.0,
    multiplier: float = 1.0,
    sec_type: str = "STK",
    symbol: str = "AAPL",
    currency: str = "USD",
    time: datetime | None = None,
    exec_id: str | None = None,
) -> FillRecorded:
    n = next(_ids)
    return FillRecorded(
        exec_id=exec_id or f"e{n:06d}",
        order_id=n,
        perm_id=n,
        client_id=1,
        strategy=strategy,
        account="DU0000001",
        con_id=con_id,
        symbol=symbol,
        sec_type=sec_type,
        currency=currency,
        exchange="SMART",
        side=side,
        quantity=qty,
        price=price,
        multiplier=multiplier,
        commission=commission,
        realized_pnl=None,
        order_ref=strategy,
        time=time or T0 + timedelta(seconds=n),
    )


def test_partial_closes_when_long_then_average_cost_realized() -> None:
    book = PositionBook()
    book.apply(fill("BOT", 100, 10.0))
    book.apply(fill("BOT", 100, 12.0))  # avg (1000 + 1200) / 200 = 11
    book.apply(fill("SLD", 50, 15.0))  # (15 - 11) * 50 = +200

    pos = book.get("alpha", 1)
    assert pos is not None
    assert (pos.quantity, pos.avg_cost, pos.realized_gross) == (150, 11.0, 200.0)

    book.apply(fill("SLD", 150, 9.0))  # (9 - 11) * 150 = -300
    assert pos.quantity == 0 and pos.avg_cost == 0
    assert pos.realized_pnl == pytest.approx(-100.0)
    assert pos.unrealized_pnl == 0.0


def test_flip_when_sell_exceeds_long_then_rest_opens_short_at_fill_price() -> None:
    book = PositionBook()
    book.apply(fill("BOT", 100, 50.0))
    changed = book.apply(fill("SLD", 150, 55.0))  # closes 100: +500, opens -50 @ 55

    assert changed is not None
    assert (changed.quantity, changed.avg_cost, changed.realized_pnl) == (-50, 55.0, 500.0)

    book.apply(fill("BOT", 50, 53.0))  # short covered 2 lower: +100
    pos = book.get("alpha", 1)
    assert pos is not None and pos.quantity == 0
    assert pos.realized_pnl == pytest.approx(600.0)


def test_commissions_when_partially_closed_then_split_like_ib() -> None:
    book = PositionBook()
    book.apply(fill("BOT", 100, 10.0, commission=1.0))
    book.apply(fill("BOT", 100, 11.0, commission=1.0))
    pos = book.get("alpha", 1)
    assert pos is not None
    # IB's avgCost carries the commissions: 10.5 + 2 / 200.
    assert pos.ib_avg_cost == pytest.approx(10.51)

    book.apply(fill("SLD", 50, 12.0, commission=1.0))
    # Gross (12 - 10.5) * 50 = 75; commissions of the closed part: 2 * 50/200 + 1 = 1.5.
    assert pos.realized_gross == pytest.approx(75.0)
    assert pos.realized_pnl == pytest.approx(73.5)
    assert pos.commissions == pytest.approx(3.0)
    assert pos.ib_avg_cost == pytest.approx(10.5 + 1.5 / 150)

    book.mark(1, 13.0)
    # Gross (13 - 10.5) * 150 = 375, less the open part's 1.5 of commissions.
    assert pos.unrealized_pnl == pytest.approx(373.5)
    assert pos.total_pnl == pytest.approx(75 + 375 - 3)


def test_commissions_when_flipped_then_opening_share_stays_in_cost() -> None:
    book = PositionBook()
    book.apply(fill("BOT", 100, 10.0, commission=2.0))
    book.apply(fill("SLD", 300, 12.0, commission=3.0))

    pos = book.get("alpha", 1)
    assert pos is not None
    assert pos.quantity == -200 and pos.avg_cost == 12.0
    assert pos.realized_gross == pytest.approx(200.0)
    assert pos.realized_pnl == pytest.approx(197.0)  # 200 - 2 - 3 * 100/300
    assert pos.ib_avg_cost == pytest.approx(12.0 + 2.0 / 200)


def test_future_when_es_multiplier_50_then_pnl_scaled() -> None:
    es = {"con_id": 495512563, "multiplier": 50.0, "sec_type": "FUT", "symbol": "ES"}
    book = PositionBook()
    book.apply(fill("BOT", 2, 5000.25, commission=4.50, **es))  # type: ignore[arg-type]
    book.apply(fill("SLD", 1, 5010.75, commission=2.25, **es))  # type: ignore[arg-type]
    book.mark(495512563, 5005.0)

    pos = book.get("alpha", 495512563)
    assert pos is not None
    assert pos.avg_cost == 5000.25  # per unit, multiplier excluded
    assert pos.realized_gross == pytest.approx(10.5 * 50)  # 525
    assert pos.realized_pnl == pytest.approx(525 - 2.25 - 2.25)
    assert pos.market_value == pytest.approx(5005 * 50)
    assert pos.unrealized_pnl == pytest.approx(4.75 * 50 - 2.25)  # 235.25
    assert pos.ib_avg_cost == pytest.approx(5000.25 * 50 + 2.25)


def test_forex_when_eurusd_then_quantity_in_eur_pnl_in_usd() -> None:
    fx = {"con_id": 12087792, "sec_type": "CASH", "symbol": "EUR.USD", "currency": "USD"}
    book = PositionBook()
    book.apply(fill("BOT", 100_000, 1.0850, commission=2.0, **fx))  # type: ignore[arg-type]
    book.apply(fill("SLD", 40_000, 1.0900, commission=2.0, **fx))  # type: ignore[arg-type]
    book.mark(12087792, 1.0800)

    pos = book.get("alpha", 12087792)
    assert pos is not None
    assert pos.quantity == 60_000  # EUR
    assert pos.currency == "USD"
    assert pos.realized_gross == pytest.approx(200.0)  # 0.0050 * 40,000 USD
    assert pos.realized_pnl == pytest.approx(200.0 - 0.8 - 2.0)
    assert pos.unrealized_pnl == pytest.approx(-0.0050 * 60_000 - 1.2)
    assert pos.market_value == pytest.approx(64_800.0)


def test_short_when_covered_partially_then_realized() -> None:
    book = PositionBook()
    book.apply(fill("SLD", 100, 20.0))
    book.apply(fill("SLD", 100, 22.0))  # short 200 @ 21
    book.apply(fill("BOT", 50, 19.0))  # (19 - 21) * 50 * -1 = +100
    book.mark(1, 20.0)

    pos = book.get("alpha", 1)
    assert pos is not None
    assert (pos.quantity, pos.avg_cost) == (-150, 21.0)
    assert pos.realized_pnl == pytest.approx(100.0)
    assert pos.unrealized_pnl == pytest.approx(150.0)  # (20 - 21) * -150


def test_daily_when_overnight_position_then_from_previous_close() -> None:
    day_start = T0.replace(hour=4)
    book = PositionBook(day_start)
    book.apply(fill("BOT", 100, 10.0, time=day_start - timedelta(hours=10)))
    book.set_close(1, 11.0)
    book.apply(fill("BOT", 100, 12.0, time=day_start + timedelta(hours=1)))
    book.mark(1, 13.0)

    pos = book.get("alpha", 1)
    assert pos is not None
    # Overnight 100 from 11 to 13: +200; today's 100 from 12 to 13: +100.
    assert pos.daily_pnl == pytest.approx(300.0)
    assert pos.sod_quantity == 100


def test_mark_when_ib_placeholder_then_ignored() -> None:
    book = PositionBook()
    book.apply(fill("BOT", 10, 100.0))

    assert book.mark(1, 1.7976931348623157e308) == []
    assert book.mark(1, math.nan) == []
    assert book.mark(1, None) == []
    pos = book.get("alpha", 1)
    assert pos is not None and pos.last is None and pos.unrealized_pnl is None
    assert book.mark(1, 101.0)[0].unrealized_pnl == pytest.approx(10.0)


def test_apply_when_duplicate_then_ignored_and_late_commission_replaces() -> None:
    book = PositionBook()
    first = fill("BOT", 10, 100.0, commission=None, exec_id="x1")

    assert book.apply(first) is not None
    assert book.apply(first) is None
    with_commission = FillRecorded(**{**_asdict(first), "commission": 1.5})
    changed = book.apply(with_commission)

    assert changed is not None and changed.commissions == 1.5
    assert book.apply(with_commission) is None


def test_apply_when_late_fill_arrives_then_same_as_time_order() -> None:
    a = fill("BOT", 100, 10.0, time=T0)
    b = fill("SLD", 50, 12.0, time=T0 + timedelta(seconds=10))
    c = fill("BOT", 100, 11.0, time=T0 + timedelta(seconds=5))  # arrives last
    book = PositionBook()
    for f in (a, b, c):
        book.apply(f)

    pos, ref = book.get("alpha", 1), PositionBook.rebuild([a, b, c]).get("alpha", 1)
    assert pos is not None and ref is not None
    # In time order: avg 10.5 after c, then b realizes (12 - 10.5) * 50 = 75.
    assert pos.realized_gross == pytest.approx(75.0) == ref.realized_gross
    assert pos.avg_cost == pytest.approx(10.5)


def test_account_book_when_strategies_share_contract_then_totals_add_up() -> None:
    fills = [
        fill("BOT", 100, 10.0, strategy="a"),
        fill("BOT", 100, 20.0, strategy="b"),
        fill("SLD", 100, 15.0, strategy="a"),
    ]
    book = PositionBook.rebuild(fills)
    account = PositionBook.rebuild(fills, collapse_to=ACCOUNT)
    book.mark(1, 15.0)
    account.mark(1, 15.0)

    a, b, acct = book.get("a", 1), book.get("b", 1), account.get(ACCOUNT, 1)
    assert a is not None and b is not None and acct is not None
    assert (a.realized_pnl, b.unrealized_pnl) == (500.0, -500.0)
    # IB sees one position: bought at an average of 15, sold 100 at 15.
    assert (acct.realized_pnl, acct.unrealized_pnl) == (0.0, 0.0)
    assert a.total_pnl + b.total_pnl == pytest.approx(acct.total_pnl)  # type: ignore[operator]


def _asdict(f: FillRecorded) -> dict[str, object]:
    return {name: getattr(f, name) for name in FillRecorded.__dataclass_fields__}


# -- property: rebuild from the journal == incremental ---------------------------------------

_fill_spec = st.tuples(
    st.sampled_from(["alpha", "beta"]),
    st.sampled_from([(1, 1.0), (2, 50.0)]),  # (con_id, multiplier): a stock and a future
    st.sampled_from(["BOT", "SLD"]),
    st.integers(1, 300),
    st.integers(900, 1100),
    st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.35])),
    st.integers(0, 3600),
)


@settings(max_examples=150, deadline=None)
@given(specs=st.lists(_fill_spec, min_size=1, max_size=40), order=st.randoms(use_true_random=False))
def test_rebuild_when_random_fills_in_any_arrival_order_then_equals_incremental(
    specs: list[tuple[str, tuple[int, float], str, int, int, float | None, int]],
    order: object,
) -> None:
    fills = [
        fill(
            side,
            qty,
            cents / 100,
            strategy=strategy,
            con_id=con_id,
            multiplier=mult,
            commission=commission,
            time=T0 + timedelta(seconds=secs),
        )
        for strategy, (con_id, mult), side, qty, cents, commission, secs in specs
    ]
    arrival = list(fills)
    order.shuffle(arrival)  # type: ignore[attr-defined]
    day_start = T0 + timedelta(minutes=30)
    incremental = PositionBook(day_start)
    account = PositionBook(day_start, collapse_to=ACCOUNT)
    for f in arrival:
        incremental.apply(f)
        account.apply(f)
    rebuilt = PositionBook.rebuild(fills, day_start)
    for book in (incremental, rebuilt, account):
        book.set_close(1, 10.0)
        book.set_close(2, 10.0)
        book.mark(1, 10.5)
        book.mark(2, 9.75)

    assert set(incremental.positions) == set(rebuilt.positions)
    for key, pos in incremental.positions.items():
        ref = rebuilt.positions[key]
        for name in (
            "quantity",
            "avg_cost",
            "realized_gross",
            "realized_pnl",
            "commissions",
            "cost_commissions",
            "unrealized_pnl",
            "daily_pnl",
        ):
            assert getattr(pos, name) == pytest.approx(getattr(ref, name), rel=1e-9, abs=1e-6), name
    # The strategies' totals add up to the account's, daily P&L too.
    for con_id in (1, 2):
        mine = [p for p in incremental if p.con_id == con_id]
        acct = account.get(ACCOUNT, con_id)
        if acct is None:
            continue
        assert sum(p.total_pnl for p in mine) == pytest.approx(acct.total_pnl, abs=1e-6)  # type: ignore[misc]
        assert sum(p.daily_pnl for p in mine) == pytest.approx(acct.daily_pnl, abs=1e-6)  # type: ignore[misc]
