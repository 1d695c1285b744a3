"""TradeManager and its journal: order updates are journalled in the background, and a
commission that arrives after its fill was journalled is journalled too, counted once.

A real (unconnected) ``ib_async.IB`` supplies the events; the journal is a fake that
records what it is given, and can be made slow or failing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from ib_async import IB, CommissionReport, Contract, Execution, Fill, Order, OrderStatus, Trade

import core.fill_handling
import core.order_records
from core.events import FillRecorded, OrderUpdated
from core.portfolio import PositionBook
from core.trading import TradeManager

pytestmark = pytest.mark.asyncio

T0 = datetime(2024, 5, 1, 13, 30, tzinfo=UTC)
AAPL = Contract(conId=265598, symbol="AAPL", secType="STK", currency="USD", exchange="SMART")


class FakeJournal:
    """Records appends; ``gate`` (when set) holds each write until it is set."""

    def __init__(self, *, orders: bool = True) -> None:
        self.fills: list[FillRecorded] = []
        self.order_batches: list[list[OrderUpdated]] = []
        self.known: set[str] = set()
        self.fail_orders = 0  # how many append_orders calls fail next
        self.failed_orders = 0  # append_orders calls failed so far
        self.gate: asyncio.Event | None = None
        self.waiting = 0  # writes held at the gate now
        if not orders:
            self.append_orders = None  # type: ignore[assignment]

    async def append_fills(self, fills: Sequence[FillRecorded]) -> int:
        await self._pass_gate()
        self.fills.extend(fills)
        new = {f.exec_id for f in fills} - self.known
        self.known |= new
        return len(new)

    async def append_orders(self, updates: Sequence[OrderUpdated]) -> int:
        await self._pass_gate()
        if self.fail_orders:
            self.fail_orders -= 1
            self.failed_orders += 1
            raise RuntimeError("disk full")
        self.order_batches.append(list(updates))
        return len(updates)

    async def _pass_gate(self) -> None:
        if self.gate is None:
            return
        self.waiting += 1
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1


def make_trade(order_id: int = 7, status: str = "Submitted", filled: float = 0) -> Trade:
    order = Order(
        orderId=order_id,
        clientId=1,
        permId=1000 + order_id,
        action="BUY",
        totalQuantity=100,
        orderType="MKT",
        orderRef="alpha",
    )
    return Trade(
        contract=AAPL,
        order=order,
        orderStatus=OrderStatus(
            orderId=order_id, status=status, filled=filled, remaining=100 - filled
        ),
    )


def make_fill(exec_id: str = "e1", commission: float | None = None) -> Fill:
    execution = Execution(
        execId=exec_id,
        time=T0,
        acctNumber="DU0000001",
        exchange="SMART",
        side="BOT",
        shares=100,
        price=190.0,
        permId=1007,
        clientId=1,
        orderId=7,
        orderRef="alpha",
    )
    report = CommissionReport()
    if commission is not None:
        report = CommissionReport(execId=exec_id, commission=commission, currency="USD")
    return Fill(contract=AAPL, execution=execution, commissionReport=report, time=T0)


def report_commission(ib: IB, trade: Trade, fill: Fill, commission: float) -> None:
    """What ib_async does when a commission report comes: update the Fill, then emit."""
    fill.commissionReport.execId = fill.execution.execId
    fill.commissionReport.commission = commission
    fill.commissionReport.currency = "USD"
    ib.commissionReportEvent.emit(trade, fill, fill.commissionReport)


@pytest.fixture
def ib() -> IB:
    return IB()


@pytest.fixture
def fast_commission_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core.fill_handling, "COMMISSION_WAIT_S", 0.01)


async def until(predicate: object, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


# -- order updates ---------------------------------------------------------------------


async def test_order_updates_when_published_then_journalled_in_one_batch_in_order(ib):
    journal = FakeJournal()
    tm = TradeManager(ib, journal=journal)
    trade = make_trade()

    for status, filled in (("PreSubmitted", 0), ("Submitted", 0), ("Filled", 100)):
        trade.orderStatus.status, trade.orderStatus.filled = status, filled
        ib.orderStatusEvent.emit(trade)
    assert journal.order_batches == []  # nothing written inside the event handler
    await tm.wait_journalled()

    assert len(journal.order_batches) == 1
    batch = journal.order_batches[0]
    assert [u.status for u in batch] == ["PreSubmitted", "Submitted", "Filled"]
    assert batch[-1].filled == 100 and batch[-1].strategy == "alpha"


async def test_order_updates_when_writer_is_slow_then_loop_not_blocked_and_next_batch_waits(ib):
    journal = FakeJournal()
    journal.gate = asyncio.Event()
    tm = TradeManager(ib, journal=journal)
    published: list[OrderUpdated] = []
    tm.orderUpdated += published.append
    trade = make_trade()

    ib.orderStatusEvent.emit(trade)
    await until(lambda: journal.waiting == 1)  # the writer is now stuck in append_orders
    ib.orderStatusEvent.emit(trade)
    ib.orderStatusEvent.emit(trade)

    assert len(published) == 3  # events went out although the journal is stuck
    journal.gate.set()
    await tm.wait_journalled()
    assert [len(b) for b in journal.order_batches] == [1, 2]


async def test_order_updates_when_write_fails_then_logged_and_kept_for_next_attempt(ib, caplog):
    journal = FakeJournal()
    journal.fail_orders = 1
    tm = TradeManager(ib, journal=journal)
    trade = make_trade()

    with caplog.at_level(logging.ERROR, logger="core.order_records"):
        ib.orderStatusEvent.emit(trade)
        await tm.wait_journalled()  # the failed write leaves the update in the backlog,
        # and wait_journalled's own attempt succeeds
    assert any("could not be journalled" in r.getMessage() for r in caplog.records)
    assert [len(b) for b in journal.order_batches] == [1]

    ib.orderStatusEvent.emit(trade)
    await tm.wait_journalled()
    assert [len(b) for b in journal.order_batches] == [1, 1]


async def test_order_updates_when_backlog_overflows_then_oldest_dropped(ib, monkeypatch, caplog):
    monkeypatch.setattr(core.order_records, "MAX_ORDER_BACKLOG", 3)
    journal = FakeJournal()
    journal.fail_orders = 10**6
    tm = TradeManager(ib, journal=journal)
    trade = make_trade()

    with caplog.at_level(logging.ERROR, logger="core.order_records"):
        for i in range(5):
            trade.orderStatus.filled = i
            ib.orderStatusEvent.emit(trade)
            await until(lambda i=i: journal.failed_orders == i + 1)  # its write failed
        journal.fail_orders = 0
        await tm.wait_journalled()

    assert [u.filled for b in journal.order_batches for u in b] == [2, 3, 4]
    assert any("backlog full" in r.getMessage() for r in caplog.records)


async def test_order_updates_when_journal_has_no_append_orders_then_only_published(ib):
    journal = FakeJournal(orders=False)
    tm = TradeManager(ib, journal=journal)
    published: list[OrderUpdated] = []
    tm.orderUpdated += published.append

    ib.orderStatusEvent.emit(make_trade())
    await tm.wait_journalled()

    assert len(published) == 1 and journal.order_batches == []


# -- late commissions ------------------------------------------------------------------


async def test_fill_when_commission_comes_with_it_then_journalled_once(ib):
    journal = FakeJournal()
    tm = TradeManager(ib, journal=journal)
    received: list[FillRecorded] = []
    tm.fillReceived += received.append

    ib.execDetailsEvent.emit(make_trade(), make_fill(commission=1.25))
    await tm.wait_journalled()

    assert [f.commission for f in journal.fills] == [1.25]
    assert [f.commission for f in received] == [1.25]


async def test_fill_when_commission_comes_late_then_journalled_again_and_counted_once(
    ib, fast_commission_wait
):
    journal = FakeJournal()
    tm = TradeManager(ib, journal=journal)
    received: list[FillRecorded] = []
    tm.fillReceived += received.append
    messages: list[dict] = []
    tm.strategy_manager.message_queue.put = messages.append  # type: ignore[method-assign]
    trade, fill = make_trade(status="Filled", filled=100), make_fill()

    ib.execDetailsEvent.emit(trade, fill)
    await until(lambda: len(received) == 1)  # the wait expired: journalled without one
    assert journal.fills[0].commission is None
    report_commission(ib, trade, fill, 1.5)
    await tm.wait_journalled()

    assert [f.commission for f in journal.fills] == [None, 1.5]
    assert [(f.exec_id, f.commission) for f in received] == [("e1", None), ("e1", 1.5)]
    assert [m["type"] for m in messages if m["type"] == "fill"] == ["fill"]  # told once
    book = PositionBook()
    for f in received:
        book.apply(f)
    pos = book.get("alpha", AAPL.conId)
    assert pos is not None
    assert (pos.quantity, pos.fills, pos.commissions) == (100, 1, 1.5)


async def test_fill_when_commission_arrives_during_first_write_then_journalled_after_it(
    ib, fast_commission_wait
):
    journal = FakeJournal()
    journal.gate = asyncio.Event()
    tm = TradeManager(ib, journal=journal)
    received: list[FillRecorded] = []
    tm.fillReceived += received.append
    trade, fill = make_trade(status="Filled", filled=100), make_fill()

    ib.execDetailsEvent.emit(trade, fill)
    await until(lambda: journal.waiting == 1)  # the commission-less write is in flight, held
    report_commission(ib, trade, fill, 2.0)
    journal.gate.set()
    await tm.wait_journalled()

    assert [f.commission for f in journal.fills] == [None, 2.0]
    assert [f.commission for f in received] == [None, 2.0]


async def test_fill_when_commission_reported_twice_then_journalled_again_only_once(
    ib, fast_commission_wait
):
    journal = FakeJournal()
    tm = TradeManager(ib, journal=journal)
    trade, fill = make_trade(status="Filled", filled=100), make_fill()

    ib.execDetailsEvent.emit(trade, fill)
    await until(lambda: len(journal.fills) == 1)
    await tm.wait_journalled()
    report_commission(ib, trade, fill, 1.0)
    report_commission(ib, trade, fill, 1.0)
    await tm.wait_journalled()

    assert [f.commission for f in journal.fills] == [None, 1.0]


async def test_fill_when_journal_fails_then_retried_and_published_once(
    ib, monkeypatch, caplog, fast_commission_wait
):
    journal = FakeJournal()
    failures = [RuntimeError("disk full")]
    real_append = journal.append_fills

    async def flaky(fills: Sequence[FillRecorded]) -> int:
        if failures:
            raise failures.pop()
        return await real_append(fills)

    journal.append_fills = flaky  # type: ignore[method-assign]
    monkeypatch.setattr(asyncio, "sleep", _fast_sleep(asyncio.sleep))
    tm = TradeManager(ib, journal=journal)
    received: list[FillRecorded] = []
    tm.fillReceived += received.append

    with caplog.at_level(logging.ERROR, logger="core.fill_handling"):
        ib.execDetailsEvent.emit(make_trade(), make_fill(commission=1.0))
        await until(lambda: len(received) == 1)
        await tm.wait_journalled()

    assert len(journal.fills) == 1 and len(received) == 1
    assert any("retrying" in r.getMessage() for r in caplog.records)


def _fast_sleep(sleep):  # type: ignore[no-untyped-def]
    async def fast(delay: float, *args: object) -> object:
        return await sleep(min(delay, 0.001), *args)

    return fast


@pytest.mark.asyncio
@pytest.mark.parametrize("status", ["PendingCancel", "Cancelled", "Inactive"])
async def test_fill_after_cancel_request_is_journalled_and_delivered(ib: IB, status: str) -> None:
    # A cancel is a request: IB may still fill the order (ib_insync #491). The fill counts.
    journal = FakeJournal()
    tm = TradeManager(ib, journal=journal)
    got: list[FillRecorded] = []
    tm.fillReceived += got.append
    trade = make_trade(status=status)
    fill = make_fill("late-1", commission=1.0)

    ib.execDetailsEvent.emit(trade, fill)
    await tm.wait_journalled()

    assert [f.exec_id for f in got] == ["late-1"]
    assert [f.exec_id for f in journal.fills] == ["late-1"]
    queue = tm.strategy_manager.message_queue
    kinds = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [(m["type"], m["strategy"]) for m in kinds if m["type"] == "fill"] == [("fill", "alpha")]
