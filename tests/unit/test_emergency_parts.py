"""The emergency stop's parts on their own, without a gateway: the words it reports and
the plan of what closes each position (the rounds run against the simulated gateway in
tests/integration/test_emergency_stop.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from ib_async import Contract, ContractDetails, Position

from core.emergency import (
    EmergencyStopResult,
    FlattenOrder,
    FlattenPlanner,
    StopFailure,
    StopScope,
)
from core.emergency_report import StopRun

AAPL = Contract(secType="STK", conId=265598, symbol="AAPL", currency="USD", exchange="NASDAQ")
EURUSD = Contract(secType="CASH", conId=12087792, symbol="EUR", localSymbol="EUR.USD")
T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # Wednesday 10:00 New York
NIGHT = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)  # Wednesday 20:00 New York


class Book:
    """A StopView: strategy positions and quotes as given."""

    def __init__(
        self,
        held: dict[str, dict[int, float]],
        quotes: dict[int, tuple[float | None, float | None, float | None]] | None = None,
    ) -> None:
        self.held = held
        self.quotes = quotes or {}
        self.strategy_positions_known = True

    def strategy_positions(self, con_id: int | None = None) -> dict[str, dict[int, float]]:
        if con_id is None:
            return self.held
        return {name: q for name, q in self.held.items() if con_id in q}

    def quote(self, con_id: int) -> tuple[float | None, float | None, float | None]:
        return self.quotes.get(con_id, (None, None, None))

    def con_id_of(self, contract: Contract) -> int | None:
        return contract.conId or None


def planner(book: Book, *, at: datetime = T0, hours: bool = False) -> FlattenPlanner:
    details = ContractDetails(
        timeZoneId="US/Eastern",
        minTick=0.01,
        tradingHours="20261125:0400-20261125:2000",
        liquidHours="20261125:0930-20261125:1600",
    )
    return FlattenPlanner(
        book,
        (lambda _c: details) if hours else None,
        limit_slippage_pct=1.0,
        now=lambda: at,
    )


def result(**fields: object) -> EmergencyStopResult:
    base: dict[str, object] = dict(
        reason="runaway",
        scope=StopScope.of("momo"),
        flatten=True,
        dry_run=False,
        started=T0,
        finished=T0,
    )
    return EmergencyStopResult(**(base | fields))  # type: ignore[arg-type]


# -- the words -----------------------------------------------------------------------------


def test_result_when_flat_then_the_gui_lines_and_the_audit_line_say_so():
    done = result(
        orders_cancelled=("#3 BUY 10 AAPL LMT 189.50 DAY",),
        positions_closed=(FlattenOrder("momo", AAPL.conId, "AAPL", "SELL", 100, "MKT"),),
    )

    assert done.ok and done.outcome == "flat and order-free"
    assert done.describe().splitlines() == [
        "Emergency stop: strategy momo - runaway",
        "  cancelled 1 working orders",
        "    #3 BUY 10 AAPL LMT 189.50 DAY",
        "  sent 1 flattening orders",
        "    SELL 100 AAPL MKT (momo)",
        "  flat and order-free",
    ]
    assert done.summary() == "flat and order-free; 1 orders cancelled, 1 flattening orders"


def test_result_when_not_flat_then_what_is_left_and_each_failure_are_named():
    left = result(
        positions_remaining=("AAPL 50 (external)",),
        working_remaining=("#7 SELL 5 AAPL LMT 200 DAY",),
        failures=(StopFailure("cancel", "#7", "placed by client 2"),),
    )

    assert not left.ok
    assert left.describe().splitlines()[-2:] == [
        "  NOT flat/order-free: AAPL 50 (external), #7 SELL 5 AAPL LMT 200 DAY",
        "  failed: cancel: #7: placed by client 2",
    ]
    assert left.summary() == (
        "NOT flat/order-free: AAPL 50 (external), #7 SELL 5 AAPL LMT 200 DAY; "
        "0 orders cancelled, 0 flattening orders; 1 failures"
    )


def test_dry_run_says_what_it_would_do_and_nothing_about_flatness():
    preview = result(
        dry_run=True,
        positions_closed=(FlattenOrder("momo", AAPL.conId, "AAPL", "SELL", 100, "LMT", 188.1),),
    )

    assert preview.describe().splitlines() == [
        "Emergency stop (dry run): would strategy momo - runaway",
        "  cancel 0 working orders",
        "  send 1 flattening orders",
        "    SELL 100 AAPL LMT 188.1 (momo)",
    ]
    assert preview.summary() == "would cancel 0 orders and send 1 flattening orders"


# -- the plan ------------------------------------------------------------------------------


def test_plan_splits_an_account_position_among_its_holders_largest_first():
    book = Book({"rev": {AAPL.conId: 30.0}, "momo": {AAPL.conId: 100.0}, "short": {}})
    run = StopRun("runaway", StopScope.account(), True, "gui")

    targets = planner(book).plan(run, [Position("DU1", AAPL, 150.0, 190.0)])

    assert [(t.strategy, t.quantity) for t in targets] == [
        ("momo", 100.0),
        ("rev", 30.0),
        ("external", 20.0),
    ]
    assert [t.describe() for t in targets][-1] == "AAPL 20 (external)"


def test_plan_for_a_strategy_the_account_holds_the_other_way_then_nothing_and_a_failure():
    book = Book({"momo": {AAPL.conId: 100.0}})
    run = StopRun("runaway", StopScope.of("momo"), True, "gui")

    targets = planner(book).plan(run, [Position("DU1", AAPL, -40.0, 190.0)])

    assert targets == []
    assert [f.step for f in run.failures] == ["flatten"]
    assert "would reverse the account" in run.failures[0].reason


def test_planned_orders_in_regular_hours_go_at_market_and_fx_is_named_by_its_pair():
    book = Book({})
    run = StopRun("runaway", StopScope.account(), True, "gui")
    positions = [Position("DU1", AAPL, 100.0, 190.0), Position("DU1", EURUSD, -25000.0, 1.1)]

    orders = planner(book).planned_orders(run, positions)

    assert [o.describe() for o in orders] == [
        "SELL 100 AAPL MKT (external)",
        "BUY 25000 EUR.USD MKT (external)",
    ]


def test_planned_orders_outside_regular_hours_are_marketable_limits_on_the_tick():
    book = Book({}, quotes={AAPL.conId: (190.005, 190.2, 190.1)})
    run = StopRun("runaway", StopScope.account(), True, "gui")

    orders = planner(book, at=NIGHT, hours=True).planned_orders(
        run, [Position("DU1", AAPL, 100.0, 190.0)]
    )

    # 1% through the bid, rounded down to the cent for a sell
    assert orders == [FlattenOrder("external", AAPL.conId, "AAPL", "SELL", 100.0, "LMT", 188.1)]
    assert run.failures == []


def test_result_with_a_lost_order_never_reads_order_free_and_names_it():
    lost = result(
        flatten=False,
        orders_lost=("#4 BUY 10 AAPL LMT 180.00 DAY [book]",),
    )

    assert not lost.ok
    assert lost.outcome == (
        "flat, no order working at IB; 1 order LOST (IB did not know it after the "
        "reconnect): look for it in TWS"
    )
    assert lost.describe().splitlines()[2:5] == [
        "  LOST 1 order: IB did not know it after the reconnect, so it was not cancelled; "
        "look for it in TWS",
        "    #4 BUY 10 AAPL LMT 180.00 DAY [book]",
        "  sent 0 flattening orders",
    ]
    assert "LOST" in lost.summary()
