"""What the ticket's send button says, judged without a widget (gui.widgets.ticket_verdict)."""

from __future__ import annotations

from core.events import TradingState
from core.order_entry import OrderPreview
from gui.widgets.ticket_verdict import confirmation_reason, judge_send, order_terms

ORDER = "BUY 100 AAPL LMT 190.00"


def preview(*problems: str) -> OrderPreview:
    return OrderPreview(19_000.0, 1.0, 190.0, problems)


def test_an_approved_order_reads_itself_and_goes_on_enter():
    verdict = judge_send(ORDER, preview(), chosen=True)

    assert verdict.sendable
    assert verdict.reason == ""
    assert verdict.tooltip == f"Send {ORDER} (Enter)"
    assert verdict.listed == ()


def test_reasons_come_most_fundamental_first_and_the_button_shows_the_first():
    verdict = judge_send(
        ORDER,
        preview("position limit 500 exceeded"),
        chosen=True,
        field_problems=["Quantity: must be above 0"],
        readonly=True,
        state=TradingState.REDUCING,
        offline_reason="not connected to the gateway",
    )

    assert verdict.blocked == (
        "read-only mode: sends no orders",
        "not connected to the gateway",
        "Quantity: must be above 0",
        "position limit 500 exceeded",
    )
    assert not verdict.sendable
    assert verdict.reason == "read-only mode: sends no orders"
    assert verdict.tooltip == f"Cannot send {ORDER}:\n" + "\n".join(verdict.blocked)


def test_halted_is_said_once_and_not_repeated_under_the_verdict():
    verdict = judge_send(
        ORDER,
        preview("HALTED: no new orders", "notional limit exceeded"),
        chosen=True,
        state=TradingState.HALTED,
        state_reason="emergency stop",
    )

    # Risk's own HALTED wording is dropped; the ticket's state line already says it.
    assert verdict.blocked == ("HALTED: emergency stop", "notional limit exceeded")
    assert verdict.listed == ("notional limit exceeded",)
    assert verdict.reason == "HALTED: emergency stop"


def test_halted_without_a_reason_still_says_why():
    verdict = judge_send(ORDER, preview(), chosen=True, state=TradingState.HALTED)

    assert verdict.reason == "HALTED: trading is stopped"


def test_no_symbol_is_the_buttons_to_say_and_offline_is_listed_unless_said_under_the_symbol():
    offline = "not connected to the gateway"
    listed = judge_send("BUY 100 LMT", None, chosen=False, offline_reason=offline)
    said = judge_send("BUY 100 LMT", None, chosen=False, offline_reason=offline, offline_shown=True)

    assert listed.blocked == (offline, "choose a symbol")
    assert listed.listed == (offline,)
    assert said.listed == ()
    assert said.reason == offline


def test_an_order_core_has_not_judged_yet_cannot_go():
    verdict = judge_send(ORDER, None, chosen=True)  # no session: no preview

    assert not verdict.sendable
    assert verdict.blocked == ()
    assert verdict.reason == "checking…"
    assert verdict.tooltip == f"Cannot send {ORDER}:\nchecking…"


def test_only_a_notional_above_the_threshold_is_confirmed():
    assert confirmation_reason(25_000.01, 25_000.0, "USD") == (
        "Notional 25,000.01 USD is above 25,000.00 USD."
    )
    assert confirmation_reason(25_000.0, 25_000.0, "USD") is None
    assert confirmation_reason(1e9, None, "USD") is None  # no threshold configured
    assert confirmation_reason(None, 25_000.0, "USD") is None  # no price, no notional


def test_the_order_states_every_term_sent_that_is_not_the_default():
    assert order_terms("BUY 3 AAPL STP 234.60") == "BUY 3 AAPL STP 234.60"
    assert order_terms("BUY 3 AAPL STP 234.60", "DAY", False) == "BUY 3 AAPL STP 234.60"
    assert order_terms("BUY 3 AAPL STP 234.60", "IOC", True) == (
        "BUY 3 AAPL STP 234.60 IOC · outside RTH"
    )
    assert order_terms("SELL 1 ES LMT 5,900.00", "GTC") == "SELL 1 ES LMT 5,900.00 GTC"
    assert order_terms("BUY 10 AAPL MKT", outside_rth=True) == "BUY 10 AAPL MKT · outside RTH"

    verdict = judge_send(ORDER, None, chosen=True, tif="GTC", outside_rth=True)
    assert verdict.order == f"{ORDER} GTC · outside RTH"  # the button's first line


def test_a_modification_is_confirmed_only_when_it_raises_the_notional_past_the_threshold():
    assert confirmation_reason(178_472.0, 25_000.0, "USD", was=2_230.9) == (
        "Notional 2,230.90 USD → 178,472.00 USD is above 25,000.00 USD."
    )
    # lowering (or keeping) a large order goes at once; below the threshold too
    assert confirmation_reason(150_000.0, 25_000.0, "USD", was=178_472.0) is None
    assert confirmation_reason(30_000.0, 25_000.0, "USD", was=30_000.0) is None
    assert confirmation_reason(20_000.0, 25_000.0, "USD", was=2_000.0) is None
    assert confirmation_reason(30_000.0, None, "USD", was=2_000.0) is None
    assert confirmation_reason(None, 25_000.0, "USD", was=2_000.0) is None


def test_the_threshold_is_judged_in_the_base_currency_like_the_limits():
    rates = {"USD": 1.0, "JPY": 1 / 150, "GBP": 1.27}

    def to_base(amount: float, currency: str) -> tuple[float, str] | None:
        rate = rates.get(currency)
        return None if rate is None else (amount * rate, "USD")

    # 3,000,000 JPY is 20,000 USD: under a 25,000 threshold, it goes at once
    assert confirmation_reason(3_000_000.0, 25_000.0, "JPY", to_base=to_base) is None
    # 20,000 GBP is 25,400 USD: above it, and the question says both amounts
    assert confirmation_reason(20_000.0, 25_000.0, "GBP", to_base=to_base) == (
        "Notional 20,000.00 GBP = 25,400.00 USD is above 25,000.00 USD."
    )
    assert confirmation_reason(20_000.0, 25_000.0, "GBP", was=1_000.0, to_base=to_base) == (
        "Notional 1,000.00 GBP = 1,270.00 USD → 20,000.00 GBP = 25,400.00 USD"
        " is above 25,000.00 USD."
    )
    # no rate yet: asked, never waved through
    why = confirmation_reason(10.0, 25_000.0, "CHF", to_base=to_base)
    assert why is not None and "no exchange rate" in why
    # the base currency itself is shown once
    assert confirmation_reason(30_000.0, 25_000.0, "USD", to_base=to_base) == (
        "Notional 30,000.00 USD is above 25,000.00 USD."
    )
