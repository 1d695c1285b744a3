"""The gate judges the canonical order on the canonical contract (QA defects 3, 4, 8, 10).

The pure pieces are tested directly: ``core.pretrade.check`` and ``Precautions.check``
on plain inputs, ``OrderAdmission`` with a details lookup standing for the contract
cache and a recording gate. What reaches the socket is tested in
tests/integration/test_gate_canonical.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from eventkit import Event
from ib_async import Contract, ContractDetails, Order

from core.admission import EMERGENCY_ACTOR, ApproveAll, OrderAdmission, OrderRefused
from core.audit import AuditLog
from core.events import MANUAL
from core.exposure import ExposureBook
from core.orders import create_limit_order, describe_order, validate_order
from core.precautions import Precautions
from core.pretrade import LimitSet, check
from core.risk import RiskManager
from core.trading import OrderIntent, PreTradeDecision
from core.trading_state import TradingStates

AAPL_ID, ES_ID, EUR_ID = 265598, 495512563, 12087792
AAPL = Contract(conId=AAPL_ID, symbol="AAPL", secType="STK", exchange="SMART", currency="USD")
ES = Contract(
    conId=ES_ID,
    symbol="ES",
    secType="FUT",
    exchange="CME",
    currency="USD",
    multiplier="50",
    lastTradeDateOrContractMonth="20261218",
    localSymbol="ESZ6",
)
EURUSD = Contract(conId=EUR_ID, symbol="EUR", secType="CASH", exchange="IDEALPRO", currency="USD")
DETAILS = {
    AAPL_ID: ContractDetails(contract=AAPL, minTick=0.01, minSize=1, sizeIncrement=1),
    ES_ID: ContractDetails(contract=ES, minTick=0.25, minSize=1, sizeIncrement=1),
    EUR_ID: ContractDetails(contract=EURUSD, minTick=0.00005, minSize=1, sizeIncrement=1),
}


def cache(contract: Contract) -> ContractDetails | None:
    """The contract cache: by conId, or by the fields a qualification asked with."""
    if contract.conId:
        return DETAILS.get(contract.conId)
    for details in DETAILS.values():
        c = details.contract
        assert c is not None
        if (c.symbol, c.secType) == (contract.symbol, contract.secType):
            return details
    return None


def nothing_cached(contract: Contract) -> ContractDetails | None:
    return None


def judge(book: ExposureBook, contract: Contract, order: Order) -> PreTradeDecision:
    limits = LimitSet(precautions=Precautions())
    intent = OrderIntent(MANUAL, "gui", contract, order)
    return check(book, limits, TradingStates(), intent, now=0.0, wall=lambda: None)  # type: ignore[arg-type,return-value]


# -- 3a: the precautionary price band never passes an order silently --------------------


def test_pretrade_limit_order_without_a_market_price_then_refused_naming_the_band():
    book = ExposureBook()  # no quote for AAPL: nothing to compare the price with

    decision = judge(book, AAPL, create_limit_order("BUY", 10, 800.0))

    assert not decision.approved
    assert decision.reasons == (
        "no market price for AAPL: cannot check the precautionary price band 5% for STK",
    )


def test_pretrade_limit_order_with_a_market_price_then_the_band_judges_it():
    book = ExposureBook()
    book.on_quote(AAPL_ID, bid=229.99, ask=230.01, last=230.0, symbol="AAPL")

    far = judge(book, AAPL, create_limit_order("BUY", 10, 800.0))
    near = judge(book, AAPL, create_limit_order("BUY", 10, 229.0))

    assert not far.approved and "precautionary price band 5% for STK" in far.reasons[0]
    assert near.approved


def test_precautions_band_with_no_or_zero_reference_then_refused():
    caps = Precautions()
    for reference in (None, 0.0):
        reasons = caps.check(
            sec_type="CASH",
            multiplier=1.0,
            quantity=1000,
            price=1.5,
            prices=(1.5,),
            reference=reference,
            symbol="EUR.USD",
        )
        assert reasons == [
            "no market price for EUR.USD: cannot check the precautionary price band 2% for CASH"
        ]


def test_precautions_market_order_without_reference_then_no_band_reason():
    reasons = Precautions().check(
        sec_type="STK", multiplier=1.0, quantity=10, price=230.0, prices=(), reference=None
    )
    assert reasons == []


# -- 3b: valued with the contract's real multiplier and type, never a default ------------


def test_pretrade_future_without_a_known_multiplier_then_refused_not_valued_at_one():
    book = ExposureBook()
    book.on_quote(ES_ID, bid=5841.0, ask=5841.25, last=5841.0, symbol="ES")
    bare = Contract(conId=ES_ID, symbol="ES", secType="FUT", exchange="CME")  # no multiplier

    decision = judge(book, bare, create_limit_order("BUY", 8, 5841.0))

    assert not decision.approved
    assert decision.reasons == (
        "multiplier (FUT) of ES not known: cannot check the precautionary caps; "
        "qualify the contract first",
    )


def test_pretrade_conid_only_contract_of_unknown_type_then_refused_naming_what_is_missing():
    book = ExposureBook()

    decision = judge(book, Contract(conId=620002612), create_limit_order("BUY", 8, 5841.0))

    assert not decision.approved
    assert "security type of" in decision.reasons[0]
    assert "for :" not in " ".join(decision.reasons)  # never an empty security type


def test_pretrade_future_with_its_multiplier_then_the_value_cap_counts_it():
    book = ExposureBook()
    book.on_quote(ES_ID, bid=5841.0, ask=5841.25, last=5841.0, symbol="ES")

    decision = judge(book, ES, create_limit_order("BUY", 8, 5841.0))

    # 8 x 5,841 x 50 = 2,336,400 > 1,500,000
    assert not decision.approved
    assert "precautionary value 1,500,000 for FUT: this order is 2,336,400" in decision.reasons


# -- the admission: canonical contract, account, every problem at once -----------------


class RecordingGate:
    def __init__(self, inner: Any = None) -> None:
        self.inner = inner or ApproveAll()
        self.asked: list[OrderIntent] = []

    def check(self, intent: OrderIntent) -> PreTradeDecision:
        self.asked.append(intent)
        decision: PreTradeDecision = self.inner.check(intent)
        return decision

    def at_wire(self, intent: OrderIntent, decision: PreTradeDecision) -> str | None:
        return None


def admission(
    gate: Any = None, *, lookup: Any = cache, account: str = "DU0000002", prefetch: Any = None
) -> OrderAdmission:
    return OrderAdmission(
        readonly=False,
        pre_trade=gate or RecordingGate(),
        permissions=lambda strategy, contract, order: [],
        audit=AuditLog(),
        rejected=Event("orderRejected"),
        tell=lambda message: None,
        details_lookup=lookup,
        prefetch=prefetch,
        account=lambda: account,
    )


def test_unqualified_contract_with_no_details_then_refused_saying_how_to_qualify():
    gate = RecordingGate()
    asked: list[Contract] = []
    part = admission(gate, lookup=nothing_cached, prefetch=asked.append)
    contract = Contract(symbol="ES", secType="FUT", exchange="CME", currency="USD")

    with pytest.raises(OrderRefused) as refused:
        part.admit(contract, create_limit_order("BUY", 8, 5841.10), "s", "s", "place", None)

    (reason,) = refused.value.reasons
    assert reason.startswith("contract ES (FUT) is not qualified (its details are not known)")
    assert "await trades.qualify(contract)" in reason
    assert gate.asked == []  # nothing judged on a guess
    assert asked == [contract]  # and the details were asked for, for the next attempt


def test_qualified_contract_whose_details_are_not_cached_then_refused_too():
    part = admission(lookup=nothing_cached)

    with pytest.raises(OrderRefused, match="not qualified"):
        part.admit(AAPL, create_limit_order("BUY", 10, 223.105), "s", "s", "place", None)


def test_emergency_stop_order_with_no_details_then_still_goes_on():
    part = admission(lookup=nothing_cached)
    order = Order(action="SELL", totalQuantity=10, orderType="MKT", tif="DAY")

    contract, decision, _ = part.admit(AAPL, order, "s", EMERGENCY_ACTOR, "place", None)

    assert decision.approved and contract is AAPL


def test_conid_only_contract_then_judged_on_the_qualified_contract_from_the_cache():
    gate = RecordingGate(RiskManager(precautions=Precautions()))
    gate.inner.on_quote(ES_ID, bid=5841.0, ask=5841.25, last=5841.0, symbol="ES")
    part = admission(gate)

    with pytest.raises(OrderRefused) as refused:
        part.admit(
            Contract(conId=ES_ID, exchange="CME"),
            create_limit_order("BUY", 8, 5841.0),
            "s",
            "s",
            "place",
            None,
        )

    judged = gate.asked[0].contract
    assert (judged.secType, judged.multiplier, judged.symbol) == ("FUT", "50", "ES")
    assert "precautionary value 1,500,000 for FUT: this order is 2,336,400" in (
        refused.value.reasons
    )


def test_off_tick_price_then_refused_for_the_tick_with_no_details_fetched_later():
    part = admission()

    with pytest.raises(OrderRefused) as refused:
        part.admit(
            Contract(symbol="AAPL", secType="STK", exchange="SMART", currency="USD"),
            create_limit_order("BUY", 10, 223.105),
            "s",
            "s",
            "place",
            None,
        )

    assert any("not on the tick 0.01" in r for r in refused.value.reasons)


def test_verdict_lists_the_tick_problem_and_the_value_cap_together():
    gate = RecordingGate(RiskManager(precautions=Precautions()))
    gate.inner.on_quote(ES_ID, bid=5889.5, ask=5889.75, last=5889.5, symbol="ES")
    part = admission(gate)

    reasons = part.verdict(ES, create_limit_order("BUY", 7, 5889.65), MANUAL, "gui")

    assert any("not on the tick 0.25" in r for r in reasons)
    assert "precautionary value 1,500,000 for FUT: this order is 2,061,377" in reasons
    assert [i.preview for i in gate.asked] == [True]


def test_placing_with_a_validation_problem_asks_the_gate_only_as_a_preview():
    gate = RecordingGate(RiskManager(precautions=Precautions()))
    gate.inner.on_quote(ES_ID, bid=5889.5, ask=5889.75, last=5889.5, symbol="ES")
    part = admission(gate)

    with pytest.raises(OrderRefused) as refused:
        part.admit(ES, create_limit_order("BUY", 7, 5889.65), "s", "s", "place", None)

    assert len(refused.value.reasons) == 2  # the tick and the value cap
    assert [i.preview for i in gate.asked] == [True]  # refused: not counted as sent


def test_order_with_no_quantity_then_the_gate_is_not_asked():
    gate = RecordingGate()
    part = admission(gate)
    order = create_limit_order("BUY", 10, 223.10)
    order.totalQuantity = 0

    reasons = part.verdict(AAPL, order, MANUAL, "gui")

    assert reasons == ["quantity 0 must be positive"]
    assert gate.asked == []


def test_order_is_stamped_with_the_console_account_before_it_is_judged():
    gate = RecordingGate()
    part = admission(gate, account="DU0000002")
    order = create_limit_order("BUY", 10, 223.10)

    part.admit(AAPL, order, "s", "s", "place", None)

    assert order.account == "DU0000002"
    assert gate.asked[0].order.account == "DU0000002"


def test_order_for_another_account_then_refused_with_the_reason():
    gate = RecordingGate()
    part = admission(gate, account="DU0000002")
    order = create_limit_order("BUY", 10, 223.10)
    order.account = "DU0000001"

    with pytest.raises(OrderRefused) as refused:
        part.admit(AAPL, order, "s", "s", "place", None)

    assert refused.value.reasons[0].startswith(
        "account DU0000001: this console trades account DU0000002"
    )
    preview = create_limit_order("BUY", 10, 223.10)
    preview.account = "DU0000001"
    assert part.verdict(AAPL, preview, MANUAL, "gui")[0].startswith("account DU0000001")


# -- 10: the words ---------------------------------------------------------------------


def test_describe_order_with_no_tif_then_does_not_say_day():
    order = create_limit_order("BUY", 10, 800.0)
    order.tif = ""

    line = describe_order(AAPL, order)

    assert "DAY" not in line and "(no TIF)" in line
    assert describe_order(AAPL, create_limit_order("BUY", 10, 800.0)).endswith("DAY")


def test_nearest_valid_prices_never_offer_zero():
    order = create_limit_order("BUY", 1000, 0.00002)

    problems = validate_order(EURUSD, order, DETAILS[EUR_ID])

    (tick,) = [p for p in problems if "tick" in p]
    assert "nearest valid price: 0.00005" in tick
    assert "0.00000" not in tick
