"""Random sequences of place / modify / cancel / market steps keep the engine's invariants."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.sim.engine import Engine
from core.sim.market import Market, on_tick
from core.sim.model import (
    DONE_STATES,
    EngineEvent,
    ExecutionOccurred,
    OrderChanged,
    OrderRejected,
    OrderRequest,
    OrderState,
)
from core.sim.universe import Universe

TODAY = dt.date(2026, 11, 25)
START = dt.datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("US/Eastern")).timestamp()
AAPL, EURUSD = 265598, 12087792
ACCOUNTS = ["DU1", "DU2"]
CASH0 = 1_000_000.0
UNIVERSE = Universe.default(TODAY)
ES = UNIVERSE.find(symbol="ES")[0].con_id


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


_place = st.tuples(
    st.just("place"),
    st.integers(0, 2),  # instrument
    st.sampled_from(["BUY", "SELL"]),
    st.integers(1, 30),  # quantity in lots
    st.sampled_from(["MKT", "LMT", "STP", "STP LMT", "TRAIL"]),
    st.sampled_from(["DAY", "GTC", "IOC"]),
    st.integers(-4, 4),  # price offset in ticks from the touch
    st.integers(0, 1),  # account
    st.sampled_from([0, 0, 0, 0, 0, 1, 2]),  # 0: no parent; else parent = an earlier order
)
_modify = st.tuples(st.just("modify"), st.integers(1, 40), st.integers(1, 30), st.integers(-4, 4))
_cancel = st.tuples(st.just("cancel"), st.integers(1, 40))
_step = st.tuples(st.just("step"), st.integers(1, 5))
_other = st.sampled_from([("global_cancel",), ("advance",)])
OPS = st.lists(st.one_of(_place, _place, _modify, _cancel, _step, _step, _other), max_size=40)

LOTS = {AAPL: 100.0, EURUSD: 25_000.0, ES: 1.0}


class Checker:
    """Runs operations and checks the invariants after each."""

    def __init__(self, instruments: list[int], seed: int) -> None:
        self.clock = FakeClock()
        self.market = Market(UNIVERSE, seed=seed, clock=self.clock)
        self.engine = Engine(UNIVERSE, self.market, list(ACCOUNTS), clock=self.clock)
        self.instruments = instruments
        self.next_id = 1
        self.requests: dict[int, OrderRequest] = {}
        self.cancelled: set[tuple[int, int]] = set()

    def run(self, op: tuple) -> None:
        kind = op[0]
        events: list[EngineEvent] = []
        try:
            if kind == "place":
                events = self._place(*op[1:])
            elif kind == "modify":
                events = self._modify(*op[1:])
            elif kind == "cancel":
                events = self.engine.cancel(1, op[1])
            elif kind == "step":
                for _ in range(op[1]):
                    self.market.step()
                    events += self.engine.on_market()
            elif kind == "global_cancel":
                events = self.engine.global_cancel()
            elif kind == "advance":
                self.clock.now += 1.0
        except OrderRejected:
            pass
        self._check_events(events)
        self._check_invariants()

    def _price(self, con_id: int, action: str, offset: int) -> float:
        q = self.market.quote(con_id)
        tick = UNIVERSE.by_con_id(con_id).min_tick  # type: ignore[union-attr]
        touch = q.ask if action == "BUY" else q.bid
        return on_tick(touch + offset * tick, tick)

    def _place(
        self,
        inst: int,
        action: str,
        lots: int,
        otype: str,
        tif: str,
        offset: int,
        account: int,
        parent: int,
    ) -> list[EngineEvent]:
        con_id = self.instruments[inst % len(self.instruments)]
        oid = self.next_id
        self.next_id += 1
        price = self._price(con_id, action, offset)
        tick = UNIVERSE.by_con_id(con_id).min_tick  # type: ignore[union-attr]
        req = OrderRequest(
            order_id=oid,
            client_id=1,
            con_id=con_id,
            action=action,
            total_quantity=lots * LOTS[con_id],
            order_type=otype,
            tif=tif,
            account=ACCOUNTS[account],
            lmt_price=price if otype in ("LMT", "STP LMT") else None,
            aux_price=(
                price if otype in ("STP", "STP LMT") else (4 * tick if otype == "TRAIL" else None)
            ),
            parent_id=max(oid - parent, 0) if parent else 0,
        )
        self.requests[oid] = req
        return self.engine.place(req)

    def _modify(self, oid: int, lots: int, offset: int) -> list[EngineEvent]:
        old = self.requests.get(oid)
        if old is None:
            return []
        price = self._price(old.con_id, old.action, offset)
        req = OrderRequest(
            order_id=oid,
            client_id=1,
            con_id=old.con_id,
            action=old.action,
            total_quantity=lots * LOTS[old.con_id],
            order_type=old.order_type,
            tif=old.tif,
            account=old.account,
            lmt_price=price if old.lmt_price is not None else None,
            aux_price=old.aux_price
            if old.order_type == "TRAIL"
            else (price if old.aux_price is not None else None),
            parent_id=old.parent_id,
        )
        return self.engine.place(req)

    def _check_events(self, events: list[EngineEvent]) -> None:
        for event in events:
            if isinstance(event, OrderChanged):
                key = event.order.key
                assert key not in self.cancelled, f"{key} changed after it was cancelled"
                if event.order.state == OrderState.CANCELLED:
                    self.cancelled.add(key)
                assert event.order.filled <= event.order.request.total_quantity + 1e-9
            elif isinstance(event, ExecutionOccurred):
                key = (event.execution.client_id, event.execution.order_id)
                assert key not in self.cancelled, f"{key} filled after it was cancelled"

    def _check_invariants(self) -> None:
        engine = self.engine
        execs = engine.executions()
        assert len({e.exec_id for e in execs}) == len(execs)
        # Position = signed sum of executions.
        signed: dict[tuple[str, int], float] = defaultdict(float)
        per_order: dict[tuple[int, int], float] = defaultdict(float)
        for e in execs:
            signed[(e.account, e.con_id)] += e.shares if e.side == "BOT" else -e.shares
            per_order[(e.client_id, e.order_id)] += e.shares
        for acct in ACCOUNTS:
            for con_id in self.instruments:
                expected = signed.get((acct, con_id), 0.0)
                assert engine.position(acct, con_id).quantity == pytest.approx(expected, abs=1e-6)
        # No order filled beyond its quantity; filled = sum of its executions.
        for key, req in ((1, oid) for oid in self.requests):
            o = engine.order(key, req)
            if o is None:
                continue
            assert o.filled <= o.request.total_quantity + 1e-9
            assert o.filled == pytest.approx(per_order.get(o.key, 0.0), abs=1e-6)
            if o.state == OrderState.FILLED:
                assert o.remaining == pytest.approx(0.0, abs=1e-9)
            if o.state not in DONE_STATES:
                assert o.remaining > 0
        state = engine.to_state()
        for acct in ACCOUNTS:
            mine = [e for e in execs if e.account == acct]
            commissions = sum(e.commission for e in mine)
            mult = {c: UNIVERSE.by_con_id(c).multiplier for c in self.instruments}  # type: ignore[union-attr]

            def sgn(e: object) -> float:
                return 1.0 if e.side == "BOT" else -1.0  # type: ignore[attr-defined]

            # Cash: stocks and forex move by notional, futures only by their P&L.
            if ES not in self.instruments:
                flows = sum(sgn(e) * e.shares * e.price * mult[e.con_id] for e in mine)
                assert state["cash"][acct] == pytest.approx(CASH0 - flows - commissions, abs=1e-4)
            # Equity: net liquidation = initial - commissions + every fill marked to market.
            marked = sum(
                sgn(e) * e.shares * (self.market.mark(e.con_id) - e.price) * mult[e.con_id]
                for e in mine
            )
            net_liq = CASH0 + engine.pnl(acct).daily_pnl
            assert net_liq == pytest.approx(CASH0 - commissions + marked, abs=1e-4)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, seed=st.integers(0, 3))
def test_random_operations_on_stocks_and_forex_keep_invariants(ops: list, seed: int) -> None:
    checker = Checker([AAPL, EURUSD], seed)
    for op in ops:
        checker.run(op)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, seed=st.integers(0, 3))
def test_random_operations_with_a_future_keep_invariants(ops: list, seed: int) -> None:
    checker = Checker([AAPL, EURUSD, ES], seed)
    for op in ops:
        checker.run(op)
