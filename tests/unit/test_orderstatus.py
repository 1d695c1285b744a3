"""The order-status transition table (core.orderstatus) and its use by the trade manager."""

from __future__ import annotations

from typing import Any

import pytest
from ib_async import Contract, Order, OrderStatus, Trade

from core.events import LOST, NOT_SENT, OrderUpdated
from core.orderstatus import TRANSITIONS, allowed
from core.trading import TradeManager


@pytest.mark.parametrize(
    ("previous", "new"),
    [
        ("PendingSubmit", "Submitted"),
        ("Submitted", "Submitted"),  # a partial fill repeats the status
        ("Submitted", "PreSubmitted"),  # a modified stop re-arms
        ("PendingCancel", "Submitted"),  # the cancel was refused
        ("Cancelled", "Filled"),  # the fill raced the cancel
        ("PendingSubmit", NOT_SENT),
        ("Submitted", LOST),
        (LOST, "Submitted"),  # it turned up
        ("Submitted", "SomethingNew"),  # unknown to us: shown
    ],
)
def test_changes_an_order_can_make(previous: str, new: str):
    assert allowed(previous, new)


@pytest.mark.parametrize(
    ("previous", "new"),
    [
        ("Filled", "Submitted"),
        ("Filled", "Cancelled"),
        ("Cancelled", "Submitted"),
        ("Cancelled", "PendingCancel"),
        (NOT_SENT, "Submitted"),
        ("Submitted", "PendingSubmit"),
        ("Submitted", NOT_SENT),
    ],
)
def test_changes_that_cannot_be_true(previous: str, new: str):
    assert not allowed(previous, new)


def test_every_status_named_in_the_table_has_a_row():
    named = set().union(*TRANSITIONS.values())
    assert named <= set(TRANSITIONS)


class FakeIB:
    """Just enough of ib_async.IB for TradeManager to publish order updates."""

    def __init__(self) -> None:
        from eventkit import Event
        from ib_async import IB

        real = IB()
        self.client = real.client
        self.wrapper = real.wrapper
        for name in (
            "orderStatusEvent",
            "openOrderEvent",
            "execDetailsEvent",
            "commissionReportEvent",
            "errorEvent",
            "disconnectedEvent",
        ):
            setattr(self, name, Event(name))

    def trades(self) -> list[Any]:
        return []


def test_a_stale_status_after_filled_is_neither_shown_nor_told():
    tm = TradeManager(FakeIB())  # type: ignore[arg-type]
    shown: list[OrderUpdated] = []
    tm.orderUpdated += shown.append
    trade = Trade(
        Contract(conId=1, symbol="AAPL", secType="STK"),
        Order(orderId=5, clientId=1, action="BUY", totalQuantity=1, orderType="MKT"),
        OrderStatus(orderId=5, status="Filled"),
    )
    tm._on_order_status(trade)
    trade.orderStatus.status = "Submitted"  # a stale message, replayed
    tm._on_order_status(trade)
    assert [u.status for u in shown] == ["Filled"]
    told = []
    while not tm.strategy_manager.message_queue.empty():
        told.append(tm.strategy_manager.message_queue.get_nowait()["status"])
    assert told == ["Filled"]
