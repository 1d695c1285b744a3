"""AccountInfo turns ib_async's account values into one event per packet that changed
a figure."""

from __future__ import annotations

from ib_async import IB, AccountValue

from core.account import AccountInfo

ACCOUNT = "DU1"


def value(tag: str, amount: str, currency: str = "USD") -> AccountValue:
    return AccountValue(account=ACCOUNT, tag=tag, value=amount, currency=currency, modelCode="")


def make() -> tuple[IB, AccountInfo, list]:
    ib = IB()
    info = AccountInfo(ib, ACCOUNT)
    seen: list = []
    info.valuesChanged += seen.append
    return ib, info, seen


def packet(ib: IB, *values: AccountValue) -> None:
    """What ib_async does for one network packet: each value, then updateEvent."""
    for v in values:
        ib.accountValueEvent.emit(v)
    ib.updateEvent.emit()


def test_several_values_in_one_packet_make_one_event_with_all_of_them():
    ib, _, seen = make()

    packet(ib, value("NetLiquidation", "1000000"), value("TotalCashValue", "250000.5"))

    assert len(seen) == 1
    assert seen[0].net_liquidation == 1_000_000.0
    assert seen[0].cash == 250_000.5


def test_a_packet_that_changes_no_figure_makes_no_event():
    ib, _, seen = make()
    packet(ib, value("NetLiquidation", "1000000"))

    packet(ib, value("NetLiquidation", "1000000"), value("AvailableFunds", "5"))
    packet(ib)

    assert len(seen) == 1


def test_values_of_other_accounts_and_currencies_are_ignored():
    ib, info, seen = make()

    packet(ib, value("NetLiquidation", "7", currency="EUR"))
    other = AccountValue(
        account="DU2", tag="NetLiquidation", value="9", currency="USD", modelCode=""
    )
    packet(ib, other)

    assert seen == []
    assert info.values().net_liquidation is None


def test_placeholder_value_is_no_figure():
    ib, info, seen = make()
    packet(ib, value("NetLiquidation", "1000000"))

    packet(ib, value("NetLiquidation", ""))

    assert info.values().net_liquidation is None
    assert [v.net_liquidation for v in seen] == [1_000_000.0, None]


def test_a_pnl_of_minus_one_is_a_loss_not_a_placeholder():
    from core.account import _figure
    from core.marketdata import clean_price

    assert _figure(-1.0) == -1.0
    assert _figure(1.7976931348623157e308) is None
    assert clean_price(-1.0) is None  # in a tick, -1 means "no data"
