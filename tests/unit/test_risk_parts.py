"""The risk manager's parts on their own: the pure check, the state machine, the seams."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import grimp
import pytest
from ib_async import Contract, Order

from core.config import ConfigError, RiskLimits, TradingHours, load_settings
from core.events import MANUAL, TradingState
from core.exposure import ExposureBook
from core.pretrade import LimitSet, check, record_sent
from core.trading import OrderIntent
from core.trading_state import (
    ACCOUNT,
    RESUME_CONFIRMATION,
    TRANSITIONS,
    TradingStates,
    contract_scope,
)

AAPL = 265598
T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def aapl_order(action: str, qty: float, **order: float | str) -> OrderIntent:
    contract = Contract(secType="STK", symbol="AAPL", conId=AAPL, currency="USD")
    return OrderIntent(MANUAL, MANUAL, contract, Order(action=action, totalQuantity=qty, **order))


def judge(book: ExposureBook, limits: LimitSet, states: TradingStates, i: OrderIntent) -> tuple:
    d = check(book, limits, states, i, now=100.0, wall=lambda: T0)
    return d.approved, d.reasons


# -- the pure check ------------------------------------------------------------------------


def test_check_is_a_function_of_plain_inputs_and_changes_nothing():
    book = ExposureBook()
    book.on_quote(AAPL, bid=99.99, ask=100.01, last=100.0, symbol="AAPL")
    book.on_account_position(AAPL, 900, symbol="AAPL")
    limits = LimitSet(RiskLimits(max_position_quantity=1000))
    states = TradingStates()

    assert judge(book, limits, states, aapl_order("BUY", 100)) == (True, ())
    assert judge(book, limits, states, aapl_order("BUY", 300)) == (
        False,
        ("max position AAPL 1,000 shares: this order would make it 1,200",),
    )
    # judging is not sending: nothing was counted, the book is as it was
    assert book.console_sent == type(book.console_sent)()
    assert book.account.qty == {AAPL: 900}


def test_recording_a_send_counts_it_for_the_console_and_each_rate_limited_scope():
    book = ExposureBook()
    limits = LimitSet(
        RiskLimits(max_orders_per_second=5),
        {"momo": RiskLimits(max_orders_per_second=2), "slow": RiskLimits(max_order_quantity=9)},
    )

    assert record_sent(book, limits, "momo", 10.0)  # the panel's use moved
    assert not record_sent(book, LimitSet(), "momo", 10.5)  # no rate limit anywhere
    assert record_sent(book, limits, "slow", 10.6)  # the account's rate still counts

    assert book.console_recent(10.9) == 3
    assert book.account.recent(10.9) == 2
    assert book.scope("momo").recent(10.9) == 1
    assert book.scope("slow").recent(10.9) == 0


def test_check_under_reducing_lets_only_the_reducing_part_through():
    book = ExposureBook()
    book.on_account_position(AAPL, 100, symbol="AAPL")
    states = TradingStates()
    states.set(ACCOUNT, TradingState.REDUCING, "drawdown", "gui")

    assert judge(book, LimitSet(), states, aapl_order("SELL", 100))[0]
    approved, reasons = judge(book, LimitSet(), states, aapl_order("SELL", 150))
    assert not approved
    assert reasons == (
        "trading is REDUCING (account: drawdown); only orders that reduce a position are let "
        "through: this order would reverse the AAPL position (100 -> -50)",
    )


def test_check_under_halted_refuses_unless_the_caller_vouches_for_a_flatten():
    book = ExposureBook()
    book.on_account_position(AAPL, 100, symbol="AAPL")
    states = TradingStates()
    states.set(contract_scope(AAPL), TradingState.HALTED, "halt AAPL", "gui")
    sell = aapl_order("SELL", 100)

    assert not judge(book, LimitSet(), states, sell)[0]
    d = check(book, LimitSet(), states, sell, now=0.0, wall=lambda: T0, flatten_authorized=True)
    assert d.approved and d.flatten and d.judged_under is TradingState.HALTED


# -- the trading-state machine -------------------------------------------------------------


def test_halted_is_left_only_by_reset_with_the_typed_confirmation():
    assert {k for k, how in TRANSITIONS.items() if how == "reset"} == {
        (TradingState.HALTED, TradingState.ACTIVE),
        (TradingState.HALTED, TradingState.REDUCING),
    }
    states = TradingStates(now=lambda: T0)
    states.set(ACCOUNT, TradingState.HALTED, "stop", "gui")

    with pytest.raises(ValueError, match="reset_halt"):
        states.set(ACCOUNT, TradingState.ACTIVE, "back", "gui")
    with pytest.raises(ValueError, match=RESUME_CONFIRMATION):
        states.reset_halt("gui", "resume please")
    states.reset_halt("gui", RESUME_CONFIRMATION, to=TradingState.REDUCING)

    assert states.state_of() is TradingState.REDUCING


def test_every_change_records_who_and_when():
    clock = [T0]
    states = TradingStates(now=lambda: clock[0])
    seen = []
    states.changed += seen.append
    states.set("momo", TradingState.REDUCING, "drawdown", "risk")
    clock[0] = T0.replace(hour=16)
    states.set("momo", TradingState.HALTED, "runaway", "gui")

    assert [(e.previous, e.state, e.changed_by, e.time) for e in seen] == [
        (TradingState.ACTIVE, TradingState.REDUCING, "risk", T0),
        (TradingState.REDUCING, TradingState.HALTED, "gui", T0.replace(hour=16)),
    ]
    snap = states.snapshot()["scopes"]["momo"]
    assert (snap["state"], snap["by"], snap["time"]) == ("HALTED", "gui", clock[0].isoformat())


# -- the seams -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("core")


def emergency_modules(graph: grimp.ImportGraph) -> list[str]:
    """core.emergency and its parts (core.emergency_*)."""
    stop = sorted(m for m in graph.modules if m.startswith("core.emergency"))
    assert {"core.emergency", "core.emergency_cancel", "core.emergency_report"} <= set(stop)
    return stop


def test_risk_and_the_emergency_stop_do_not_import_each_other(graph: grimp.ImportGraph):
    for stop in emergency_modules(graph):
        assert not graph.chain_exists(importer="core.risk", imported=stop), stop
        assert not graph.chain_exists(importer=stop, imported="core.risk"), stop


@pytest.mark.parametrize(
    "part",
    [
        "core.pretrade",
        "core.trading_state",
        "core.exposure",
        "core.breach",
        "core.utilization",
        "core.sizing",
        "core.risk_feeds",
    ],
)
def test_risk_parts_do_not_depend_on_the_facade_or_the_stop(graph: grimp.ImportGraph, part: str):
    for facade in ("core.risk", "core.session", *emergency_modules(graph)):
        assert not graph.chain_exists(importer=part, imported=facade), (part, facade)


# -- one RiskLimits ------------------------------------------------------------------------


def test_risk_limits_are_one_class_read_from_the_config(tmp_path: Path):
    import core.risk

    config = tmp_path / "c.toml"
    config.write_text(
        '[risk]\nmax_order_quantity = 500\ntrading_hours = "09:30-16:00"\n'
        "[risk.strategies.momo]\nmax_position_quantity = 50\n"
    )
    settings = load_settings(config, env={"IBCONSOLE_HOME": str(tmp_path)})
    risk = core.risk.RiskManager.from_settings(settings.risk)

    assert core.risk.RiskLimits is RiskLimits
    assert risk.limits.trading_hours == TradingHours.parse("09:30-16:00 America/New_York")
    assert risk.limits_of("momo") == RiskLimits(max_position_quantity=50)


def test_bad_trading_hours_in_the_config_name_the_key(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text('[risk]\ntrading_hours = "9.30 to 4"\n')

    with pytest.raises(ConfigError, match=r"risk\.trading_hours: .*9\.30 to 4"):
        load_settings(config, env={"IBCONSOLE_HOME": str(tmp_path)})
