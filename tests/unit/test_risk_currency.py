"""Money limits are in the base currency: the gate converts with IB's exchange rates.

USD.JPY is priced in JPY and SAP (Xetra) in EUR; the account's base is USD. Rates are
IB's ``ExchangeRate`` account values: base per unit of the currency.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from eventkit import Event
from ib_async import AccountValue, Contract, Order, Position

from core.config import RiskLimits
from core.events import MANUAL
from core.exposure import ExposureBook
from core.precautions import Precautions
from core.pretrade import LimitSet, check
from core.risk import RiskManager
from core.trading import OrderIntent
from core.trading_state import TradingStates

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
USDJPY = Contract(
    secType="CASH", symbol="USD", conId=15016059, currency="JPY", localSymbol="USD.JPY"
)
SAP = Contract(secType="STK", symbol="SAP", conId=14204, currency="EUR", exchange="SMART")
JPY_RATE = 1 / 150  # USD per JPY
EUR_RATE = 1.08  # USD per EUR


def order(contract: Contract, action: str, qty: float, lmt: float | None = None) -> OrderIntent:
    o = (
        Order(action=action, totalQuantity=qty, orderType="LMT", lmtPrice=lmt)
        if lmt is not None
        else Order(action=action, totalQuantity=qty, orderType="MKT")
    )
    return OrderIntent(MANUAL, MANUAL, contract, o)


def judge(book: ExposureBook, limits: LimitSet, intent: OrderIntent) -> tuple[bool, tuple]:
    d = check(book, limits, TradingStates(), intent, now=100.0, wall=lambda: T0)
    return d.approved, d.reasons


def fx_book(*, rates: bool = True) -> ExposureBook:
    book = ExposureBook()
    book.learn_contract(USDJPY)
    book.learn_contract(SAP)
    book.on_quote(USDJPY.conId, bid=149.995, ask=150.005, last=150.0, sec_type="CASH")
    book.on_quote(SAP.conId, bid=199.9, ask=200.1, last=200.0)
    if rates:
        book.on_exchange_rate("JPY", JPY_RATE)
        book.on_exchange_rate("EUR", EUR_RATE)
    return book


def test_jpy_order_notional_is_judged_in_usd():
    book = fx_book()
    limits = LimitSet(RiskLimits(max_order_notional=25_000))

    # 20,000 USD.JPY at 150 is 3,000,000 JPY = 20,000 USD: inside a 25,000 USD cap
    assert judge(book, limits, order(USDJPY, "BUY", 20_000)) == (True, ())
    assert judge(book, limits, order(USDJPY, "BUY", 30_000)) == (
        False,
        ("max order notional 25,000 USD: this order is 4,500,150 JPY = 30,001 USD",),  # at the ask
    )


def test_eur_stock_position_notional_is_judged_in_usd():
    book = fx_book()
    limits = LimitSet(RiskLimits(max_position_notional=100_000))

    # 400 SAP at 200 EUR is 80,000 EUR = 86,400 USD
    assert judge(book, limits, order(SAP, "BUY", 400, 200.0)) == (True, ())
    # 480 SAP is 96,000 EUR (under the figure unconverted) = 103,680 USD: over
    assert judge(book, limits, order(SAP, "BUY", 480, 200.0)) == (
        False,
        (
            "max position notional SAP 100,000 USD: "
            "this order would make it 96,000 EUR = 103,680 USD",
        ),
    )


def test_opening_order_without_a_rate_is_refused_and_reducing_passes():
    book = fx_book(rates=False)
    book.on_account_position(SAP.conId, 100, symbol="SAP", currency="EUR")
    limits = LimitSet(RiskLimits(max_order_notional=1e9))

    assert judge(book, limits, order(USDJPY, "BUY", 1)) == (
        False,
        ("no exchange rate JPY→USD yet: cannot check max order notional",),
    )
    assert judge(book, limits, order(SAP, "BUY", 10, 200.0)) == (
        False,
        ("no exchange rate EUR→USD yet: cannot check max order notional",),
    )
    # reducing orders pass as always
    assert judge(book, limits, order(SAP, "SELL", 100)) == (True, ())
    book.on_exchange_rate("JPY", JPY_RATE)
    assert judge(book, limits, order(USDJPY, "BUY", 1)) == (True, ())


def test_precautionary_value_caps_are_in_usd():
    book = fx_book()
    limits = LimitSet(precautions=Precautions())  # CASH 2,500,000; STK 200,000 an order

    # 1,000,000 USD.JPY at 150 is 150,000,000 JPY = 1,000,000 USD
    assert judge(book, limits, order(USDJPY, "BUY", 1_000_000, 150.0)) == (True, ())
    # 1,000 SAP at 200 EUR is 200,000 EUR = 216,000 USD
    assert judge(book, limits, order(SAP, "BUY", 1_000, 200.0)) == (
        False,
        ("precautionary value 200,000 USD for STK: this order is 200,000 EUR = 216,000 USD",),
    )


def test_precautionary_value_cap_without_a_rate_refuses():
    book = fx_book(rates=False)
    limits = LimitSet(precautions=Precautions())

    assert judge(book, limits, order(USDJPY, "BUY", 20_000)) == (
        False,
        ("no exchange rate JPY→USD yet: cannot check precautionary value 2,500,000 USD for CASH",),
    )


def test_gross_exposure_of_a_eur_position_is_in_usd_and_follows_the_rate():
    book = fx_book()
    book.on_account_position(SAP.conId, 100, symbol="SAP", currency="EUR")

    # 100 SAP at 200 EUR = 20,000 EUR = 21,600 USD
    assert book.account.gross == pytest.approx(21_600)
    assert book.account.net == pytest.approx(21_600)
    book.on_exchange_rate("EUR", 1.10)
    assert book.account.gross == pytest.approx(22_000)


def test_a_position_without_a_rate_is_not_counted_unconverted():
    book = fx_book(rates=False)
    book.on_account_position(SAP.conId, 100, symbol="SAP", currency="EUR")
    aapl = Contract(secType="STK", symbol="AAPL", conId=265598, currency="USD")
    book.on_quote(aapl.conId, bid=99.99, ask=100.01, last=100.0, symbol="AAPL")
    limits = LimitSet(RiskLimits(max_gross_exposure=1_000_000))

    assert book.account.gross == 0.0
    assert judge(book, limits, order(aapl, "BUY", 10)) == (
        False,
        ("no exchange rate EUR→USD yet for the SAP position: cannot check gross and net exposure",),
    )
    book.on_exchange_rate("EUR", EUR_RATE)
    assert book.account.gross == pytest.approx(21_600)
    assert judge(book, limits, order(aapl, "BUY", 10)) == (True, ())


class FakeIB:
    """The part of ib_async's IB that RiskManager.attach_ib follows."""

    def __init__(self, values: list[AccountValue]) -> None:
        self.positionEvent = Event("positionEvent")
        self.accountValueEvent = Event("accountValueEvent")
        self.values = values

    def positions(self) -> list[Position]:
        return []

    def accountValues(self, account: str = "") -> list[AccountValue]:
        return [v for v in self.values if not account or v.account == account]


def test_risk_manager_takes_ibs_exchange_rates_and_base_currency_from_account_values():
    ib = FakeIB([AccountValue("DU1", "ExchangeRate", "1.00", "BASE", "")])
    risk = RiskManager(RiskLimits(max_order_notional=25_000))
    risk.attach_ib(ib, "DU1")  # type: ignore[arg-type]
    risk.learn_contract(USDJPY)
    risk.on_quote(USDJPY.conId, bid=149.995, ask=150.005, last=150.0, sec_type="CASH")
    assert risk.check(order(USDJPY, "BUY", 20_000)).reasons == (
        "no exchange rate JPY→USD yet: cannot check max order notional",
    )

    ib.accountValueEvent.emit(AccountValue("DU2", "ExchangeRate", "0.5", "JPY", ""))
    ib.accountValueEvent.emit(AccountValue("DU1", "ExchangeRate", "0.0066666667", "JPY", ""))
    assert risk.check(order(USDJPY, "BUY", 20_000)).approved

    # an account in JPY: the cap is 25,000 JPY, and a JPY order needs no rate
    ib.accountValueEvent.emit(AccountValue("DU1", "NetLiquidation", "1e8", "JPY", ""))
    assert risk.check(order(USDJPY, "BUY", 1_000)).reasons == (
        "max order notional 25,000: this order is 150,005",  # 1,000 at the ask 150.005
    )
