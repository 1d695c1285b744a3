"""The trade manager's parts on their own, through their narrow constructor arguments:
the checks (core.admission), the order records (core.order_records), the fill handler
(core.fill_handling), IB's order errors (core.order_errors), the contracts and account
orders are judged on (core.order_contracts) and the reconnect's resync
(core.order_resync). TradeManager's behaviour as a whole is tested in
test_trading_journal.py and tests/integration."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from eventkit import Event
from ib_async import (
    IB,
    CommissionReport,
    Contract,
    ContractDetails,
    Execution,
    Fill,
    Order,
    OrderStatus,
    Trade,
)

from core.admission import (
    READONLY_REASON,
    ApproveAll,
    OrderAdmission,
    OrderIntent,
    OrderRefused,
    PreTradeDecision,
)
from core.audit import AuditLog
from core.events import (
    NOT_SENT,
    ConnectionState,
    ConnectionStatusChanged,
    FillRecorded,
    OrderRejected,
    OrderUpdated,
)
from core.fill_handling import FillHandler
from core.order_records import OrderRecords
from core.tasks import Tasks
from core.trading import TradeManager

T0 = datetime(2024, 5, 1, 13, 30, tzinfo=UTC)
AAPL = Contract(conId=265598, symbol="AAPL", secType="STK", currency="USD", exchange="SMART")
#: What the contract cache knows of AAPL: orders are judged on it (tick, multiplier).
AAPL_DETAILS = ContractDetails(contract=AAPL, minTick=0.01, minSize=1, sizeIncrement=1)


def known(contract: Contract) -> ContractDetails | None:
    return AAPL_DETAILS if contract.conId == AAPL.conId or contract.symbol == "AAPL" else None


def limit_order(quantity: float = 100, price: float = 190.0) -> Order:
    return Order(action="BUY", totalQuantity=quantity, orderType="lmt", lmtPrice=price, tif="DAY")


def admission(told: list[dict[str, Any]], rejected: list[OrderRejected], **kw: Any):
    event = Event("orderRejected")
    event += rejected.append
    audit = AuditLog()
    part = OrderAdmission(
        readonly=kw.pop("readonly", False),
        pre_trade=kw.pop("pre_trade", ApproveAll()),
        permissions=kw.pop("permissions", lambda strategy, contract, order: []),
        audit=audit,
        rejected=event,
        tell=told.append,
        details_lookup=kw.pop("details_lookup", known),
        account=kw.pop("account", None),
    )
    return part, audit


class RecordingGate:
    """A gate that refuses everything and remembers what it was asked."""

    def __init__(self) -> None:
        self.asked: list[OrderIntent] = []

    def check(self, intent: OrderIntent) -> PreTradeDecision:
        self.asked.append(intent)
        return PreTradeDecision(False, ("over the position limit",))

    def at_wire(self, intent: OrderIntent, decision: PreTradeDecision) -> str | None:
        return None


def test_admission_refusal_is_audited_published_told_and_raised_with_every_reason():
    told: list[dict[str, Any]] = []
    rejected: list[OrderRejected] = []
    part, audit = admission(told, rejected, readonly=True)

    with pytest.raises(OrderRefused) as refused:
        part.admit("AAPL", limit_order(), "alpha", "gui", "place", None)  # not a contract

    reasons = refused.value.reasons
    assert reasons[0] == READONLY_REASON and len(reasons) > 1  # every problem, read-only first
    assert [r.reasons for r in rejected] == [reasons]
    assert [(m["type"], m["strategy"]) for m in told] == [("error", "alpha")]
    assert [(r.actor, r.action) for r in audit.records] == [("gui", "place")]
    assert audit.records[0].result.startswith("refused: ")


def test_admission_verdict_asks_the_gate_as_a_preview_and_records_nothing():
    told: list[dict[str, Any]] = []
    rejected: list[OrderRejected] = []
    gate = RecordingGate()
    part, audit = admission(told, rejected, pre_trade=gate)
    order = limit_order()

    assert part.verdict(AAPL, order, "alpha", "gui") == ["over the position limit"]

    assert [i.preview for i in gate.asked] == [True]
    assert gate.asked[0].order is not order and gate.asked[0].order.orderType == "LMT"
    assert order.orderType == "lmt"  # judged on a canonical copy: the caller's is untouched
    assert not told and not rejected and not audit.records


def test_trade_manager_pre_trade_when_replaced_then_its_checks_use_the_new_gate():
    # The RiskManager installs itself as the gate after the trade manager is built.
    tm = TradeManager(IB(), details_lookup=known)
    gate = RecordingGate()
    tm.pre_trade = gate

    assert tm.pre_trade is gate
    assert tm.verdict(AAPL, limit_order(), "alpha") == ["over the position limit"]
    assert len(gate.asked) == 1


def submitted_trade(status: str = "Submitted") -> Trade:
    order = Order(
        orderId=7, clientId=1, permId=1007, action="BUY", totalQuantity=100, orderType="MKT"
    )
    return Trade(contract=AAPL, order=order, orderStatus=OrderStatus(orderId=7, status=status))


def test_order_records_show_the_status_ended_here_and_refuse_one_that_cannot_follow():
    ended: dict[tuple[int, int], tuple[str, str]] = {}
    records = OrderRecords(journal=None, tasks=Tasks("test"), ended=ended)
    shown: list[OrderUpdated] = []
    records.orderUpdated += shown.append
    records.strategy_of_order[(1, 7)] = "alpha"
    trade = submitted_trade("PendingSubmit")

    assert records.publish(trade)
    ended[(1, 7)] = (NOT_SENT, "paced out")
    trade.orderStatus.status = "Inactive"
    assert records.publish(trade)
    trade.orderStatus.status = "Submitted"
    del ended[(1, 7)]
    assert not records.publish(trade)  # Submitted cannot follow NotSent: not shown

    assert [(u.status, u.strategy) for u in shown] == [
        ("PendingSubmit", "alpha"),
        (NOT_SENT, "alpha"),
    ]


class FlakyJournal:
    """Fails the first ``failures`` writes, then keeps what it is given."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.fills: list[FillRecorded] = []

    async def append_fills(self, fills: Sequence[FillRecorded]) -> int:
        if self.failures:
            self.failures -= 1
            raise OSError("store unreachable")
        self.fills.extend(fills)
        return len(fills)


def commissioned_fill(exec_id: str = "e1") -> Fill:
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
    report = CommissionReport(execId=exec_id, commission=1.0, currency="USD")
    return Fill(contract=AAPL, execution=execution, commissionReport=report, time=T0)


@pytest.mark.asyncio
async def test_fill_handler_when_the_journal_fails_then_retries_and_publishes_once():
    journal = FlakyJournal(failures=1)
    told: list[dict[str, Any]] = []
    records = OrderRecords(journal=None, tasks=Tasks("test"), ended={})
    fills = FillHandler(journal=journal, records=records, tasks=Tasks("test"), tell=told.append)
    published: list[FillRecorded] = []
    errors: list[Exception] = []
    fills.fillReceived += published.append
    fills.journalError += errors.append
    fill = commissioned_fill()

    fills.handle(None, fill)
    fills.handle(None, fill)  # a replay of the same execution: no effect
    assert await asyncio.wait_for(fills.wait(lambda: None), 10)

    assert [type(e) for e in errors] == [OSError]
    assert [f.exec_id for f in journal.fills] == ["e1"]
    assert [(f.exec_id, f.strategy, f.commission) for f in published] == [("e1", "alpha", 1.0)]
    assert [m["type"] for m in told] == ["fill"]
    assert fills.handled == {"e1"} and fills.not_journalled() == []


# -- modifications (core.order_changes) and the link going down (core.order_records) --------


def test_terms_match_when_quantity_and_prices_match_unset_prices_included():
    from ib_async.util import UNSET_DOUBLE

    from core.order_changes import Terms

    order = limit_order(100, 190.0)
    terms = Terms.of(order)

    assert terms == Terms(100.0, 190.0, UNSET_DOUBLE)
    assert terms.same(Terms(100.0, 190.0 + 1e-12, UNSET_DOUBLE))
    assert not terms.same(Terms(100.0, 190.01, UNSET_DOUBLE))
    assert not terms.same(Terms(90.0, 190.0, UNSET_DOUBLE))
    assert not Terms(float("nan"), 1.0, 1.0).same(Terms(float("nan"), 1.0, 1.0))
    changed = limit_order(5, 1.0)
    terms.put_into(changed)
    assert Terms.of(changed) == terms


def test_new_total_below_the_filled_quantity_is_refused_with_the_reason():
    from core.order_changes import _below_filled

    trade = submitted_trade()
    trade.orderStatus.filled = 100

    assert _below_filled(trade, limit_order(50)) == (
        "new total quantity 50 is below the 100 already filled: the total includes what "
        "filled; to stop further fills, cancel the order"
    )
    assert _below_filled(trade, limit_order(100)) == ""  # nothing more to fill: IB decides
    assert _below_filled(trade, limit_order(800)) == ""
    trade.orderStatus.filled = 0
    assert _below_filled(trade, limit_order(1)) == ""
    bad = limit_order()
    bad.totalQuantity = "abc"  # type: ignore[assignment]
    assert _below_filled(trade, bad) == ""  # validation refuses it, with its own reason


def test_order_records_when_the_link_drops_then_working_orders_are_marked_once():
    records = OrderRecords(journal=None, tasks=Tasks("test"), ended={})
    shown: list[OrderUpdated] = []
    records.orderUpdated += shown.append
    working, done = submitted_trade(), submitted_trade("Filled")
    done.order.orderId = done.orderStatus.orderId = 8
    records.publish(working)
    records.publish(done)

    assert records.mark_link_down() == 1
    assert records.mark_link_down() == 0  # already marked
    marked = shown[-1]
    assert (marked.order_id, marked.status, marked.link_down) == (7, "Submitted", True)
    assert "link down" in marked.message
    assert records.last_update(working) == marked

    records.publish(working)  # IB reports it again after the reconnect
    assert not shown[-1].link_down and records.mark_link_down() == 1


def test_pending_changes_tell_a_refused_modification_from_other_errors():
    from core.order_changes import MODIFY_ANSWER_S, PendingChanges, Terms

    now = [100.0]
    book = PendingChanges(clock=lambda: now[0])
    was, asked = Terms(10, 190.0, 0.0), Terms(10, 189.0, 0.0)
    key = (1, 7)

    assert book.refused(key, 201) is None  # nothing on its way: not a refusal
    book.sent(key, was, asked)
    assert book.before(key) == was
    assert book.refused(key, 202) is None and key in book  # a cancel's answer, not this
    assert book.refused(key, 201) == was and key not in book  # refused: put back `was`

    book.sent(key, was, asked)
    book.confirmed(key, Terms(10, 189.0, 0.0))  # IB's openOrder carries what was asked
    assert key not in book

    book.sent(key, was, asked)
    book.sent(key, book.before(key) or was, Terms(12, 189.0, 0.0))  # a second, at once
    book.confirmed(key, asked)  # the first one confirmed: now the one to go back to
    assert book.before(key) == asked and key in book
    assert book.refused(key, 110) == asked

    book.sent(key, was, asked)
    now[0] += MODIFY_ANSWER_S + 1
    assert book.refused(key, 201) is None and key not in book  # too late to be its answer


class RefuseModifications:
    """Stands in for OrderChanges: IB's 201 refuses the pending modification."""

    def refused(self, trade: Trade, code: int, message: str) -> str | None:
        return f"modification refused: {message}" if code == 201 else None


def test_order_errors_tell_a_refused_modification_a_notice_and_a_rejection_apart():
    from core.order_errors import OrderErrors

    ib = IB()
    ib.client.clientId = 1
    trade = submitted_trade()
    ib.wrapper.trades[(1, 7)] = trade
    records = OrderRecords(journal=None, tasks=Tasks("test"), ended={})
    shown: list[OrderUpdated] = []
    records.orderUpdated += shown.append
    told: list[dict[str, Any]] = []
    rejected: list[OrderRejected] = []
    event = Event("orderRejected")
    event += rejected.append
    heard: list[tuple[int, int]] = []
    audit = AuditLog()
    errors = OrderErrors(
        ib,
        changes=RefuseModifications(),
        records=records,
        audit=audit,
        rejected=event,
        tell=told.append,
        acknowledged=lambda client_id, order_id: heard.append((client_id, order_id)),
    )

    assert errors.on_refused(trade, 201, "price out of range") is not None
    errors.on_error(7, 201, "price out of range", None)
    assert told[-1]["modification_refused"] is True and heard == [(1, 7)]
    assert [(r.code, r.message) for r in rejected] == [
        (201, "modification refused: price out of range")
    ]
    assert shown[-1].status == "Submitted"  # it still works, as it was
    assert [(r.actor, r.action) for r in audit.records] == [("ib", "modify")]
    assert "still works as before" in audit.records[0].result

    errors.on_error(7, 202, "order cancelled", None)  # a cancel's answer: not a rejection
    assert told[-1]["modification_refused"] is False and len(rejected) == 1

    errors.on_error(7, 201, "rejected", None)  # no modification pending: a rejection
    assert [(r.code, r.message) for r in rejected][-1] == (201, "rejected")
    assert [r.action for r in audit.records] == ["modify", "error"]

    errors.on_error(8, 201, "not ours", None)  # an order this client does not know
    errors.on_error(-1, 2104, "farm ok", None)  # not about an order
    assert len(told) == 3


class Configured:
    def __init__(self, account: str) -> None:
        self.account = account


def test_order_contracts_account_is_the_configured_one_else_none_before_connecting():
    from core.contracts import ContractService
    from core.order_contracts import OrderContracts

    ib = IB()

    def contracts(configured: Configured | None) -> OrderContracts:
        return OrderContracts(ib, ContractService(ib), configured=configured, tasks=Tasks("t"))

    assert contracts(Configured("DU123")).account == "DU123"
    assert contracts(Configured("")).account == ""  # IB's first, once connected
    assert contracts(None).account == ""
    assert contracts(None).details(AAPL) is None  # nothing qualified yet


class LinkLost:
    """The gateway is up but not logged in to IB (1100)."""

    state = ConnectionState.LINK_LOST


@pytest.mark.asyncio
async def test_order_resync_when_the_link_drops_then_working_orders_stay_unconfirmed_not_lost():
    from core.inflight import InFlightOrders
    from core.order_resync import OrderResync
    from core.orderids import OrderIdSequence
    from core.wire import WireGate

    ib = IB()
    ib.client.clientId = 1
    tasks, audit, rejected = Tasks("test"), AuditLog(), Event("orderRejected")
    records = OrderRecords(journal=None, tasks=tasks, ended={})
    shown: list[OrderUpdated] = []
    records.orderUpdated += shown.append
    in_flight = InFlightOrders(
        ib,
        wire=WireGate(ib),
        audit=audit,
        order_ids=OrderIdSequence(),
        records=records,
        rejected=rejected,
        tell=lambda message: None,
        on_status=lambda trade: None,
    )
    fills = FillHandler(journal=None, records=records, tasks=tasks, tell=lambda message: None)
    learnt: list[str] = []

    async def learn_working() -> None:
        learnt.append("working")

    async def journalled() -> list[str]:
        return []

    resync = OrderResync(
        ib,
        link=LinkLost(),
        readonly=False,
        in_flight=in_flight,
        records=records,
        fills=fills,
        tasks=tasks,
        learn_working=learn_working,
        wait_journalled=journalled,
    )
    working = submitted_trade()
    in_flight.watch(working)
    records.publish(working)

    resync.on_disconnected()
    assert shown[-1].link_down and in_flight.unconfirmed() == {(1, 7)}

    assert await resync.resync() == 0  # IB's order lists cannot be read: nothing is lost
    assert in_flight.unconfirmed() == {(1, 7)} and resync.lost_orders() == []
    await tasks.wait("working contracts")
    assert learnt == ["working"]  # the working orders' contract details are asked for

    back = ConnectionStatusChanged(ConnectionState.CONNECTED, "127.0.0.1", 4002, 1)
    resync.on_connection_status(back)  # IB is back: looked for again
    assert tasks.of("resync")
    await resync.synchronised()
    assert not tasks.of("resync")
