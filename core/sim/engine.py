"""Order matching and account keeping for the simulated gateway.

The engine is pure and synchronous: it never sleeps, never reads the wall clock except
through the injected ``clock``, and given the same market and the same calls produces
the same events. The wire side calls ``place``/``cancel`` on client requests and
``on_market`` after every ``Market.step``; every call returns the ``EngineEvent``s to
send, in order.

Here: order handling, matching and the trading day. The account book and its queries
are in :mod:`core.sim.engine_book`, the pre-trade checks in :mod:`core.sim.engine_checks`,
the saved state in :mod:`core.sim.engine_state`, and what they share (records, IB's
texts, commissions, the fill arithmetic) in :mod:`core.sim.engine_base`.

Matching
    BUY fills at the ask and SELL at the bid, at most the displayed size per matching
    pass: the orders that match in one pass share the displayed size of the current quote
    (``Market.version``), and an order gets at most one fill per pass, so a 5,000-share
    market order against 800 shares offered fills in parts over several quote updates.
    A limit order fills when marketable (buy limit >= ask, sell limit <= bid), at the
    touch, which is the better of limit and touch. Stops trigger on the last price (buy:
    last >= stop, sell: last <= stop); STP and TRAIL then behave as market orders,
    STP LMT as a limit. IOC orders get one matching pass when they become eligible and
    the rest is cancelled. DAY orders expire when the US/Eastern date changes.

Order states (``_TRANSITIONS``)
    Accepted orders start Submitted; PreSubmitted when they wait for something: a stop
    trigger, a parent fill, a later order of their group with transmit=True, or (with
    ``enforce_trading_hours``) the session. A bracket's children are one-cancels-other:
    the first fill of one cancels its siblings; an ``oca_group`` does the same across a
    client's orders. Cancelling a parent cancels its children.

Commissions (per order, IB "fixed" in spirit)
    The commission of an order is a function of its cumulative quantity and value;
    each execution is charged the increase, so a minimum lands on the first fill:

    - stocks: 0.005 USD a share, at least 1.00 USD, at most 1% of the trade value;
    - futures: 2.25 USD a contract (0.85 commission + 1.40 exchange and regulatory);
    - forex: 0.2 basis points of the trade value, at least 2.00 USD.

Accounting (one USD cash balance per account)
    Stocks and EUR.USD: cash moves by -signed quantity * price * multiplier - commission;
    a EUR.USD position is a quantity of EUR valued in USD, like a stock. Futures move cash
    only by commissions and by realized P&L when a position shrinks (no notional), so
    NetLiquidation = cash + stock/forex market value + futures unrealized P&L.
    Average cost is IB's: per unit, including the multiplier *and the commissions paid
    to open* (ES bought at 5900.00 for 2.25: 295,002.25). Realized P&L of a closing fill
    is measured against it and net of the closing commission, as commissionReport's;
    a fill that flips a position realizes the closed part and opens the rest at the fill
    price. ``positions()`` lists non-zero positions only; ``position()`` gives a zero one.

Rejection codes (IB's documented codes where IB has one)
    434 a zero size; 388 a size below the minimum; 110 a price off the tick grid; 387 an
    unsupported order type; 105 a modification that changes the contract or side;
    104 a modification of a filled order; 103 a duplicate id; 10006 a missing parent;
    200 an unknown contract. Cases IB documents no code for (a negative or missing
    price, a negative size, an unknown action, TIF or account, margin) get TWS's
    generic 201 "Order rejected - reason:..." with the reason spelled out.

Margins (simple, per position, on the mark)
    stocks 50% initial / 25% maintenance of market value; futures 6% / 5% of notional;
    forex 3% / 3%. EquityWithLoanValue = NetLiquidation; an order whose full fill would
    take the initial margin above it is rejected (201), as IB does.

Daily P&L is NetLiquidation minus the start-of-day NetLiquidation, kept per account.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from core.sim.engine_base import (
    _EASTERN,
    _EPS,
    _STOP_TYPES,
    _TRANSITIONS,
    MSG_CANCELLED,
    MSG_DUPLICATE,
    MSG_MISSING_PARENT,
    MSG_MODIFY_FILLED,
    MSG_MODIFY_MISMATCH,
    MSG_NO_SECURITY,
    MSG_REJECTED,
    MSG_TICK,
    MSG_UNSUPPORTED_TYPE,
    MSG_ZERO_SIZE,
    ORDER_TYPES,
    TIFS,
    _Account,
    _apply_fill,
    _Pos,
    commission_for,
)
from core.sim.engine_book import EngineBook
from core.sim.engine_checks import OrderChecks
from core.sim.engine_state import EngineState
from core.sim.market import Market, on_tick
from core.sim.model import (
    DONE_STATES,
    EngineEvent,
    Execution,
    ExecutionOccurred,
    Instrument,
    OrderChanged,
    OrderError,
    OrderRejected,
    OrderRequest,
    OrderState,
    SimOrder,
    WhatIfResult,
)
from core.sim.universe import Universe

__all__ = [
    "MSG_CANCELLED",
    "MSG_DUPLICATE",
    "MSG_MISSING_PARENT",
    "MSG_MODIFY_FILLED",
    "MSG_MODIFY_MISMATCH",
    "MSG_NO_SECURITY",
    "MSG_REJECTED",
    "MSG_TICK",
    "MSG_UNSUPPORTED_TYPE",
    "MSG_ZERO_SIZE",
    "ORDER_TYPES",
    "TIFS",
    "Engine",
    "commission_for",
]


class Engine(EngineBook, OrderChecks, EngineState):
    """Simulated exchange and broker: matches orders against the market, keeps accounts.

    Every command returns the list of ``EngineEvent``s it caused, in the order the wire
    side must send them:

    - ``OrderChanged`` (order: SimOrder snapshot): after each state, fill or modification;
    - ``ExecutionOccurred`` (execution: Execution): each fill, before its OrderChanged;
    - ``OrderError`` (client_id, order_id, code, message): 202 after a cancellation.

    Faults: ``fill_delay_s`` (orders younger than this do not fill) and ``reject_next``.
    """

    def __init__(
        self,
        universe: Universe,
        market: Market,
        accounts: list[str],
        *,
        initial_cash: float = 1_000_000.0,
        clock: Callable[[], float] = time.time,
        enforce_trading_hours: bool = False,
    ) -> None:
        if not accounts:
            raise ValueError("the engine needs at least one account")
        self.universe = universe
        self.market = market
        self.accounts = list(accounts)
        self.initial_cash = float(initial_cash)
        self.enforce_trading_hours = enforce_trading_hours
        self.fill_delay_s = 0.0
        self._clock = clock
        self._accounts = {
            a: _Account(cash=self.initial_cash, sod_net_liq=self.initial_cash) for a in accounts
        }
        self._positions: dict[tuple[str, int], _Pos] = {}
        self._orders: dict[tuple[int, int], SimOrder] = {}
        self._completed: list[tuple[int, int]] = []
        self._held: set[tuple[int, int]] = set()  # transmit=False, not yet released
        self._commission_paid: dict[tuple[int, int], float] = {}
        self._executions: list[Execution] = []
        self._next_perm_id = 1_000_001
        self._exec_seq = 0
        self._reject_next: tuple[int, str] | None = None
        # (con_id, "bid"/"ask") -> (quote version, quantity already taken from it)
        self._consumed: dict[tuple[int, str], tuple[int, float]] = {}
        self._day = self._today()
        self._rates_snapshot: tuple[float, dict[str, float]] | None = None

    def reject_next(self, code: int, message: str) -> None:
        """Fault injection: the next ``place`` raises OrderRejected(code, message)."""
        self._reject_next = (code, message)

    def place(self, req: OrderRequest) -> list[EngineEvent]:
        """Accept a new order, or modify the working order with the same (client, order) id.

        ``req`` is normalised in place (action, type and TIF upper-case; UNSET_DOUBLE and
        NaN prices become None; a market order's limit price is dropped) and kept as the
        order's request. Raises OrderRejected with IB's code and text when refused.
        """
        if self._reject_next is not None:
            code, message = self._reject_next
            self._reject_next = None
            raise OrderRejected(code, message)
        if req.what_if:
            raise OrderRejected(201, MSG_REJECTED + "whatIf orders are answered by what_if()")
        events: list[EngineEvent] = []
        events.extend(self._roll_day_if_needed())
        key = (req.client_id, req.order_id)
        existing = self._orders.get(key)
        if existing is not None and existing.state in DONE_STATES:
            if existing.state == OrderState.FILLED:
                raise OrderRejected(104, MSG_MODIFY_FILLED)
            raise OrderRejected(103, MSG_DUPLICATE)
        inst = self._validate(req, existing)
        if existing is None and not req.parent_id:
            # Bracket children close what their parent opens: no margin check for them.
            self._check_margin(req, inst)
        now = self._clock()
        if existing is None:
            order = SimOrder(
                request=req,
                perm_id=self._next_perm_id,
                state=OrderState.PENDING_SUBMIT,
                created=now,
            )
            self._next_perm_id += 1
            self._orders[key] = order
            if not req.transmit:
                self._held.add(key)
            if req.order_type == "TRAIL":
                order.trail_stop_price = self._initial_trail_stop(req, inst)
        else:
            order = existing
            self._modify(order, req, inst)
            if req.transmit:
                self._held.discard(key)
        released = self._release_group(req) if req.transmit else []
        # Announce the order in its resting state, then give it (and anything its
        # transmission released) a matching pass.
        self._sync_state(order, events, force=True)
        for other in released:
            self._sync_state(other, events)
        if order.request.total_quantity - order.filled <= _EPS:
            self._set_state(order, OrderState.FILLED, events)
        for o in sorted([order, *released], key=lambda o: o.perm_id):
            self._match(o, events, now)
        return events

    def what_if(self, req: OrderRequest) -> WhatIfResult:
        """Margin and commission of ``req`` were it filled in full; nothing is executed.

        Raises OrderRejected when the order is invalid.
        """
        inst = self._validate(req, None)
        account = req.account or self.accounts[0]
        ref = self._reference_price(req, inst)
        qty = req.total_quantity
        signed = qty if req.action.upper() == "BUY" else -qty
        init_before, maint_before = self._margins(account)
        init_after, maint_after = self._margins(account, extra=(inst.con_id, signed, ref))
        commission = commission_for(inst, qty, qty * ref * inst.multiplier)
        ewl = self._net_liq(account)
        return WhatIfResult(
            init_margin_before=init_before,
            maint_margin_before=maint_before,
            equity_with_loan_before=ewl,
            init_margin_change=init_after - init_before,
            maint_margin_change=maint_after - maint_before,
            equity_with_loan_change=-commission,
            init_margin_after=init_after,
            maint_margin_after=maint_after,
            equity_with_loan_after=ewl - commission,
            commission=commission,
            min_commission=commission,
            max_commission=commission,
            commission_currency=inst.currency,
        )

    def cancel(self, client_id: int, order_id: int) -> list[EngineEvent]:
        """Cancel a working order (and its bracket children).

        Raises OrderRejected 10147 for an unknown order, 161 for one already done.
        """
        order = self._orders.get((client_id, order_id))
        if order is None:
            raise OrderRejected(
                10147, f"OrderId {order_id} that needs to be cancelled is not found."
            )
        if order.state in DONE_STATES:
            raise OrderRejected(
                161,
                "Cancel attempted when order is not in a cancellable state.  "
                f"Order permId ={order.perm_id}",
            )
        events: list[EngineEvent] = []
        self._cancel(order, events)
        return events

    def global_cancel(self) -> list[EngineEvent]:
        """Cancel every working order of every client (reqGlobalCancel)."""
        events: list[EngineEvent] = []
        for order in self.open_orders():
            if order.state not in DONE_STATES:
                self._cancel(order, events)
        return events

    def on_market(self, con_ids: Iterable[int] | None = None) -> list[EngineEvent]:
        """Run one matching pass over the working orders of ``con_ids`` (default: all).

        Call after ``Market.step``: triggers stops, moves trailing stops, fills
        marketable orders against the displayed size, honours ``fill_delay_s``.
        """
        events = self._roll_day_if_needed()
        wanted = None if con_ids is None else set(con_ids)
        now = self._clock()
        for order in self.open_orders():
            if wanted is None or order.request.con_id in wanted:
                self._match(order, events, now)
        return events

    def _modify(self, order: SimOrder, req: OrderRequest, inst: Instrument) -> None:
        old = order.request
        order.request = req
        if req.order_type == "TRAIL":
            if req.trail_stop_price is not None:
                order.trail_stop_price = req.trail_stop_price
            elif old.order_type != "TRAIL" or order.trail_stop_price is None:
                order.trail_stop_price = self._initial_trail_stop(req, inst)
        else:
            order.trail_stop_price = None
        if req.order_type not in _STOP_TYPES or (
            old.order_type != req.order_type or old.aux_price != req.aux_price
        ):
            # A new stop level is armed afresh; a non-stop order has nothing to trigger.
            order.triggered = False

    def _release_group(self, req: OrderRequest) -> list[SimOrder]:
        """IB's transmit rule: an order with transmit=True releases its held parent and
        siblings (and its held OCA group)."""
        released = []
        for key in sorted(self._held, key=lambda k: self._orders[k].perm_id):
            o = self._orders[key]
            r = o.request
            if r.client_id != req.client_id:
                continue
            same_parent = req.parent_id and (
                r.order_id == req.parent_id or r.parent_id == req.parent_id
            )
            same_oca = req.oca_group and r.oca_group == req.oca_group
            if same_parent or same_oca:
                released.append(o)
        for o in released:
            self._held.discard(o.key)
        return released

    def _is_active(self, order: SimOrder) -> bool:
        """Whether the order may trigger and fill now (held, waiting or closed: not)."""
        if order.state in DONE_STATES or order.key in self._held:
            return False
        req = order.request
        if req.parent_id:
            parent = self._orders.get((req.client_id, req.parent_id))
            if parent is None or parent.state != OrderState.FILLED:
                return False
        if self.enforce_trading_hours:
            inst = self._inst(req.con_id)
            rth_only = inst.sec_type == "STK" and not req.outside_rth
            if not self.universe.is_open(inst.con_id, self._clock(), liquid=rth_only):
                return False
        return True

    def _resting_state(self, order: SimOrder) -> OrderState:
        if not self._is_active(order):
            return OrderState.PRE_SUBMITTED
        if order.request.order_type in _STOP_TYPES and not order.triggered:
            return OrderState.PRE_SUBMITTED
        return OrderState.SUBMITTED

    def _sync_state(self, order: SimOrder, events: list[EngineEvent], force: bool = False) -> None:
        """Move a working order to its resting state; ``force`` announces it even if same."""
        if order.state in DONE_STATES:
            return
        target = self._resting_state(order)
        if force or target != order.state:
            self._set_state(order, target, events)

    def _set_state(self, order: SimOrder, state: OrderState, events: list[EngineEvent]) -> None:
        """The one place an order's state changes; emits OrderChanged."""
        if state not in _TRANSITIONS[order.state]:
            raise RuntimeError(f"order {order.key}: illegal transition {order.state} -> {state}")
        order.state = state
        if state in DONE_STATES:
            self._held.discard(order.key)
            self._completed.append(order.key)
        events.append(OrderChanged(replace(order)))

    def _cancel(self, order: SimOrder, events: list[EngineEvent], reason: str = "") -> None:
        if order.state in DONE_STATES:
            return
        self._set_state(order, OrderState.CANCELLED, events)
        events.append(
            OrderError(order.request.client_id, order.request.order_id, 202, MSG_CANCELLED + reason)
        )
        # A parent's cancellation takes its children with it.
        for child in self._children(order):
            self._cancel(child, events)

    def _children(self, order: SimOrder) -> list[SimOrder]:
        cid, oid = order.key
        return [
            o
            for o in self.open_orders(cid)
            if o.request.parent_id == oid and o.perm_id != order.perm_id
        ]

    def _oca_siblings(self, order: SimOrder) -> list[SimOrder]:
        req = order.request
        out = []
        for o in self.open_orders(req.client_id):
            if o.perm_id == order.perm_id:
                continue
            r = o.request
            if (req.parent_id and r.parent_id == req.parent_id) or (
                req.oca_group and r.oca_group == req.oca_group
            ):
                out.append(o)
        return out

    def _initial_trail_stop(self, req: OrderRequest, inst: Instrument) -> float:
        if req.trail_stop_price is not None:
            return req.trail_stop_price
        return self._trail_level(req, inst, self.market.mark(inst.con_id))

    @staticmethod
    def _trail_level(req: OrderRequest, inst: Instrument, last: float) -> float:
        if req.trailing_percent is not None and not (req.aux_price and req.aux_price > 0):
            amount = last * req.trailing_percent / 100
        else:
            amount = req.aux_price or 0.0
        if req.action == "SELL":
            return max(on_tick(last - amount, inst.min_tick, "down"), inst.min_tick)
        return on_tick(last + amount, inst.min_tick, "up")

    def _match(self, order: SimOrder, events: list[EngineEvent], now: float) -> None:
        """One matching pass for one order: trail, trigger, fill at most once."""
        if order.state in DONE_STATES:
            return
        if not self._is_active(order):
            self._sync_state(order, events)
            return
        req = order.request
        inst = self._inst(req.con_id)
        last = self.market.mark(inst.con_id)
        if req.order_type == "TRAIL" and not order.triggered:
            level = self._trail_level(req, inst, last)
            stop = order.trail_stop_price
            if stop is None or (level > stop if req.action == "SELL" else level < stop):
                order.trail_stop_price = level
        if req.order_type in _STOP_TYPES and not order.triggered:
            stop = order.trail_stop_price if req.order_type == "TRAIL" else req.aux_price
            assert stop is not None
            if (req.action == "BUY" and last >= stop - _EPS) or (
                req.action == "SELL" and last <= stop + _EPS
            ):
                order.triggered = True
        self._sync_state(order, events)
        if order.state != OrderState.SUBMITTED:
            return
        if now - order.created < self.fill_delay_s - _EPS:
            return
        self._try_fill(order, inst, events, now)
        if req.tif == "IOC" and order.state not in DONE_STATES:
            # Immediate-or-cancel: one eligible pass, then the rest is cancelled.
            self._cancel(order, events)

    def _try_fill(
        self, order: SimOrder, inst: Instrument, events: list[EngineEvent], now: float
    ) -> None:
        req = order.request
        q = self.market.quote(inst.con_id)
        buy = req.action == "BUY"
        side = "ask" if buy else "bid"
        price, size = (q.ask, q.ask_size) if buy else (q.bid, q.bid_size)
        if price <= 0 or size <= 0:
            return
        if req.order_type in ("LMT", "STP LMT"):
            limit = req.lmt_price
            assert limit is not None
            if (buy and limit < price - _EPS) or (not buy and limit > price + _EPS):
                return
        version = self.market.version(inst.con_id)
        seen_version, taken = self._consumed.get((inst.con_id, side), (version, 0.0))
        if seen_version != version:
            taken = 0.0
        available = size - taken
        qty = min(order.remaining, available)
        qty = math.floor(qty / inst.size_increment + 1e-9) * inst.size_increment
        if qty <= _EPS:
            return
        self._consumed[(inst.con_id, side)] = (version, taken + qty)
        self._execute(order, inst, qty, price, events, now)

    def _execute(
        self,
        order: SimOrder,
        inst: Instrument,
        qty: float,
        price: float,
        events: list[EngineEvent],
        now: float,
    ) -> None:
        req = order.request
        account = req.account or self.accounts[0]
        signed = qty if req.action == "BUY" else -qty
        mult = inst.multiplier
        # Commission: the order's total for its new cumulative fill, minus what it paid.
        new_filled = order.filled + qty
        new_value = (order.filled * order.avg_fill_price + qty * price) * mult
        paid = self._commission_paid.get(order.key, 0.0)
        commission = round(max(commission_for(inst, new_filled, new_value) - paid, 0.0), 6)
        self._commission_paid[order.key] = paid + commission

        pos = self._positions.setdefault((account, inst.con_id), _Pos())
        realized, settled = _apply_fill(pos, signed, price * mult, commission)
        acct = self._accounts[account]
        if inst.sec_type == "FUT":
            acct.cash += settled - commission
        else:
            acct.cash -= signed * price * mult + commission
        pos.day_flow -= signed * price * mult + commission
        if realized is not None:
            acct.realized += realized

        order.avg_fill_price = (order.filled * order.avg_fill_price + qty * price) / new_filled
        order.filled = new_filled
        order.last_fill_price = price
        self._exec_seq += 1
        execution = Execution(
            exec_id=f"{order.perm_id:08x}.{self._exec_seq:08x}.01.01",
            order_id=req.order_id,
            client_id=req.client_id,
            perm_id=order.perm_id,
            con_id=inst.con_id,
            account=account,
            side="BOT" if req.action == "BUY" else "SLD",
            shares=qty,
            price=price,
            cum_qty=new_filled,
            avg_price=order.avg_fill_price,
            time=now,
            exchange=inst.primary_exchange,
            order_ref=req.order_ref,
            commission=commission,
            commission_currency=inst.currency,
            realized_pnl=realized,
        )
        self._executions.append(execution)
        events.append(ExecutionOccurred(execution))
        if order.remaining <= _EPS:
            self._set_state(order, OrderState.FILLED, events)
        else:
            self._set_state(order, order.state, events)
        # One-cancels-other: a fill of a bracket child or an OCA member cancels the rest.
        for sibling in self._oca_siblings(order):
            self._cancel(sibling, events)
        if order.state == OrderState.FILLED:
            for child in self._children(order):
                self._sync_state(child, events)

    def _today(self) -> str:
        return dt.datetime.fromtimestamp(self._clock(), _EASTERN).date().isoformat()

    def _roll_day_if_needed(self) -> list[EngineEvent]:
        """At a new US/Eastern date: expire DAY orders, forget yesterday's executions and
        finished orders, and take new start-of-day values for daily P&L."""
        today = self._today()
        events: list[EngineEvent] = []
        if today == self._day:
            return events
        self._day = today
        for order in self.open_orders():
            if order.request.tif == "DAY":
                self._cancel(order, events)
        for key in self._completed:
            self._orders.pop(key, None)
            self._commission_paid.pop(key, None)
        self._completed.clear()
        self._executions.clear()
        for (_, con_id), p in self._positions.items():
            p.sod_value = p.qty * self.market.mark(con_id) * self._inst(con_id).multiplier
            p.day_flow = 0.0
            p.realized = 0.0
        for name, acct in self._accounts.items():
            acct.realized = 0.0
            acct.sod_net_liq = self._net_liq(name)
        self._positions = {k: p for k, p in self._positions.items() if abs(p.qty) > _EPS}
        return events
