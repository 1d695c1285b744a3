"""Order matching and account keeping for the simulated gateway.

The engine is pure and synchronous: it never sleeps, never reads the wall clock except
through the injected ``clock``, and given the same market and the same calls produces
the same events. The wire side calls ``place``/``cancel`` on client requests and
``on_market`` after every ``Market.step``; every call returns the ``EngineEvent``s to
send, in order.

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

import dataclasses
import datetime as dt
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from core.sim.market import Market, on_tick
from core.sim.model import (
    DONE_STATES,
    UNSET_DOUBLE,
    AccountPnL,
    EngineEvent,
    Execution,
    ExecutionOccurred,
    Instrument,
    OrderChanged,
    OrderError,
    OrderRejected,
    OrderRequest,
    OrderState,
    PortfolioItem,
    Position,
    SimOrder,
    WhatIfResult,
)
from core.sim.universe import Universe

__all__ = ["Engine"]

_STATE_VERSION = 1
_EPS = 1e-9
_EASTERN = ZoneInfo("US/Eastern")

ORDER_TYPES = frozenset({"MKT", "LMT", "STP", "STP LMT", "TRAIL"})
TIFS = frozenset({"DAY", "GTC", "IOC"})
_STOP_TYPES = frozenset({"STP", "STP LMT", "TRAIL"})

# IB's texts for the codes the engine raises or emits.
MSG_NO_SECURITY = "No security definition has been found for the request"
MSG_REJECTED = "Order rejected - reason:"
MSG_TICK = "The price does not conform to the minimum price variation for this contract."
MSG_DUPLICATE = "Duplicate order id"
MSG_MODIFY_FILLED = "Can't modify a filled order"
MSG_CANCELLED = "Order Canceled - reason:"
MSG_UNSUPPORTED_TYPE = "Unsupported order type for this exchange and security type."
MSG_ZERO_SIZE = "The order size cannot be zero."
MSG_MISSING_PARENT = "Missing parent order."
MSG_MODIFY_MISMATCH = "Order being modified does not match original order."

# (initial, maintenance) margin as a fraction of market value / notional.
_MARGIN_RATES = {"STK": (0.50, 0.25), "FUT": (0.06, 0.05), "CASH": (0.03, 0.03)}

# Allowed order-state transitions. Staying in a state is allowed (a partial fill, a
# modification); done states are terminal.
_TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    OrderState.PENDING_SUBMIT: frozenset(
        {
            OrderState.PENDING_SUBMIT,
            OrderState.PRE_SUBMITTED,
            OrderState.SUBMITTED,
            OrderState.CANCELLED,
            OrderState.FILLED,
        }
    ),
    OrderState.PRE_SUBMITTED: frozenset(
        {
            OrderState.PRE_SUBMITTED,
            OrderState.SUBMITTED,
            OrderState.CANCELLED,
            OrderState.FILLED,
        }
    ),
    OrderState.SUBMITTED: frozenset(
        {
            OrderState.SUBMITTED,
            OrderState.PRE_SUBMITTED,
            OrderState.CANCELLED,
            OrderState.FILLED,
        }
    ),
    OrderState.INACTIVE: frozenset(
        {OrderState.INACTIVE, OrderState.PRE_SUBMITTED, OrderState.SUBMITTED, OrderState.CANCELLED}
    ),
    OrderState.PENDING_CANCEL: frozenset({OrderState.CANCELLED, OrderState.FILLED}),
    OrderState.CANCELLED: frozenset(),
    OrderState.FILLED: frozenset(),
    OrderState.API_CANCELLED: frozenset(),
}


def commission_for(inst: Instrument, quantity: float, value: float) -> float:
    """The commission of a whole order of ``quantity`` worth ``value`` USD (see module doc)."""
    if quantity <= 0:
        return 0.0
    if inst.sec_type == "FUT":
        fee = 2.25 * quantity
    elif inst.sec_type == "CASH":
        fee = max(0.00002 * value, 2.0)
    else:
        fee = min(max(0.005 * quantity, 1.0), 0.01 * value)
    return round(fee, 6)


def _price(value: float | None) -> float | None:
    """A price field as the wire side may pass it: None, UNSET_DOUBLE or NaN mean unset."""
    if value is None or math.isnan(value) or value >= UNSET_DOUBLE / 2:
        return None
    return float(value)


def _on_grid(price: float, tick: float) -> bool:
    n = price / tick
    return abs(n - round(n)) < 1e-6


def _sign(x: float) -> int:
    return 1 if x > _EPS else -1 if x < -_EPS else 0


@dataclass(slots=True)
class _Pos:
    """One account's position in one instrument (see the module doc for the conventions)."""

    qty: float = 0.0
    avg_cost: float = 0.0  # per unit, with multiplier and opening commissions (IB's)
    avg_price: float = 0.0  # per unit, with multiplier, without commissions
    realized: float = 0.0  # today's realized P&L, net of commissions
    sod_value: float = 0.0  # start-of-day market value, for daily P&L
    day_flow: float = 0.0  # today's cash flow of its trades: -sum(qty*price*mult) - commissions


@dataclass(slots=True)
class _Account:
    cash: float
    realized: float = 0.0
    sod_net_liq: float = 0.0


class Engine:
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

    # --- commands -----------------------------------------------------------------------

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

    # --- queries ------------------------------------------------------------------------

    def open_orders(self, client_id: int | None = None) -> list[SimOrder]:
        """Working (not done) orders, oldest first; ``client_id`` None means every client."""
        out = [
            o
            for o in self._orders.values()
            if o.state not in DONE_STATES
            and (client_id is None or o.request.client_id == client_id)
        ]
        out.sort(key=lambda o: o.perm_id)
        return out

    def completed_orders(self) -> list[SimOrder]:
        """Today's filled and cancelled orders, in the order they finished."""
        return [self._orders[k] for k in self._completed if k in self._orders]

    def order(self, client_id: int, order_id: int) -> SimOrder | None:
        """The order with this id (working or done today), or None."""
        return self._orders.get((client_id, order_id))

    def executions(
        self,
        *,
        client_id: int = 0,
        account: str = "",
        symbol: str = "",
        sec_type: str = "",
        exchange: str = "",
        side: str = "",
        since: float | None = None,
    ) -> list[Execution]:
        """Today's executions matching an IB ExecutionFilter (0 and "" match anything).

        ``side`` is "BUY"/"SELL" (or "BOT"/"SLD"); ``since`` is epoch seconds, inclusive.
        """
        want_side = {"BUY": "BOT", "SELL": "SLD"}.get(side.upper(), side.upper())
        out = []
        for ex in self._executions:
            inst = self.universe.by_con_id(ex.con_id)
            if client_id and ex.client_id != client_id:
                continue
            if account and ex.account != account:
                continue
            if inst is not None:
                if symbol and inst.symbol.upper() != symbol.upper():
                    continue
                if sec_type and inst.sec_type != sec_type.upper():
                    continue
                exchanges = {inst.exchange.upper(), inst.primary_exchange.upper()}
                if exchange and exchange.upper() not in exchanges | {ex.exchange.upper()}:
                    continue
            if want_side and ex.side != want_side:
                continue
            if since is not None and ex.time < since:
                continue
            out.append(ex)
        return out

    def positions(self, account: str | None = None) -> list[Position]:
        """Non-zero positions of ``account`` (None: every account), by account then con_id."""
        out = [
            Position(acct, con_id, p.qty, p.avg_cost)
            for (acct, con_id), p in sorted(self._positions.items())
            if abs(p.qty) > _EPS and (account is None or acct == account)
        ]
        return out

    def position(self, account: str, con_id: int) -> Position:
        """One position, zero (avg cost 0) when there is none: what to send after a close."""
        p = self._positions.get((account, con_id))
        if p is None or abs(p.qty) <= _EPS:
            return Position(account, con_id, 0.0, 0.0)
        return Position(account, con_id, p.qty, p.avg_cost)

    def portfolio(self, account: str) -> list[PortfolioItem]:
        """updatePortfolio rows: every non-zero position of ``account``, marked to market."""
        out = []
        for (acct, con_id), p in sorted(self._positions.items()):
            if acct != account or abs(p.qty) <= _EPS:
                continue
            inst = self._inst(con_id)
            mark = self.market.mark(con_id)
            value = p.qty * mark * inst.multiplier
            out.append(
                PortfolioItem(
                    account=acct,
                    con_id=con_id,
                    quantity=p.qty,
                    market_price=mark,
                    market_value=value,
                    average_cost=p.avg_cost,
                    unrealized_pnl=value - p.qty * p.avg_cost,
                    realized_pnl=p.realized,
                )
            )
        return out

    def account_values(self, account: str) -> list[tuple[str, str, str]]:
        """updateAccountValue rows (key, value, currency) of ``account``; values are strings.

        Raises KeyError for an unknown account.
        """
        acct = self._accounts[account]
        net_liq = self._net_liq(account)
        init, maint = self._margins(account)
        unrealized = sum(item.unrealized_pnl for item in self.portfolio(account))
        gross = stock = futures_pnl = 0.0
        for item in self.portfolio(account):
            inst = self._inst(item.con_id)
            if inst.sec_type == "FUT":
                # IB's totals carry no futures notional, only their P&L.
                futures_pnl += item.unrealized_pnl
            else:
                gross += abs(item.market_value)
                if inst.sec_type == "STK":
                    stock += item.market_value
        available = net_liq - init
        excess = net_liq - maint
        cushion = excess / net_liq if net_liq > 0 else 0.0

        def usd(key: str, value: float) -> tuple[str, str, str]:
            return (key, f"{value:.2f}", "USD")

        rows = [
            ("AccountCode", account, ""),
            ("AccountType", "INDIVIDUAL", ""),
            ("AccountReady", "true", ""),
            ("Currency", "USD", "USD"),
            usd("NetLiquidation", net_liq),
            usd("TotalCashValue", acct.cash),
            usd("SettledCash", acct.cash),
            usd("CashBalance", acct.cash),
            ("CashBalance", f"{acct.cash:.2f}", "BASE"),
            ("TotalCashBalance", f"{acct.cash:.2f}", "BASE"),
            ("NetLiquidationByCurrency", f"{net_liq:.2f}", "BASE"),
            usd("BuyingPower", max(available, 0.0) * 4),
            usd("AvailableFunds", available),
            usd("ExcessLiquidity", excess),
            usd("EquityWithLoanValue", net_liq),
            usd("GrossPositionValue", gross),
            usd("StockMarketValue", stock),
            usd("FuturesPNL", futures_pnl),
            usd("InitMarginReq", init),
            usd("MaintMarginReq", maint),
            usd("FullInitMarginReq", init),
            usd("FullMaintMarginReq", maint),
            usd("FullAvailableFunds", available),
            usd("FullExcessLiquidity", excess),
            usd("UnrealizedPnL", unrealized),
            usd("RealizedPnL", acct.realized),
            ("Cushion", f"{cushion:.6f}", ""),
            ("Leverage-S", f"{(gross / net_liq if net_liq > 0 else 0.0):.4f}", ""),
            ("DayTradesRemaining", "-1", ""),
        ]
        return rows

    def pnl(self, account: str) -> AccountPnL:
        """reqPnL figures: daily (net liquidation change today), unrealized, realized."""
        acct = self._accounts[account]
        unrealized = sum(item.unrealized_pnl for item in self.portfolio(account))
        return AccountPnL(
            daily_pnl=self._net_liq(account) - acct.sod_net_liq,
            unrealized_pnl=unrealized,
            realized_pnl=acct.realized,
        )

    def pnl_single(self, account: str, con_id: int) -> AccountPnL:
        """reqPnLSingle figures for one position (zeros when there is none)."""
        p = self._positions.get((account, con_id))
        if p is None:
            return AccountPnL(0.0, 0.0, 0.0, 0.0, 0.0)
        inst = self._inst(con_id)
        value = p.qty * self.market.mark(con_id) * inst.multiplier
        return AccountPnL(
            daily_pnl=value - p.sod_value + p.day_flow,
            unrealized_pnl=value - p.qty * p.avg_cost,
            realized_pnl=p.realized,
            position=p.qty,
            value=value,
        )

    # --- validation ---------------------------------------------------------------------

    def _validate(self, req: OrderRequest, existing: SimOrder | None) -> Instrument:
        """Normalise ``req`` in place and check it; returns its instrument."""
        inst = self.universe.by_con_id(req.con_id)
        if inst is None:
            raise OrderRejected(200, MSG_NO_SECURITY)
        req.action = req.action.upper().strip()
        req.order_type = " ".join(req.order_type.upper().split())
        req.tif = (req.tif or "DAY").upper().strip()
        req.lmt_price = _price(req.lmt_price)
        req.aux_price = _price(req.aux_price)
        req.trailing_percent = _price(req.trailing_percent)
        req.trail_stop_price = _price(req.trail_stop_price)
        if req.action not in ("BUY", "SELL"):
            raise OrderRejected(201, MSG_REJECTED + f"Invalid action '{req.action}'")
        if req.order_type not in ORDER_TYPES:
            raise OrderRejected(387, MSG_UNSUPPORTED_TYPE + f" ({req.order_type})")
        if req.tif not in TIFS:
            raise OrderRejected(201, MSG_REJECTED + f"Invalid time in force '{req.tif}'")
        if req.account and req.account not in self._accounts:
            raise OrderRejected(201, MSG_REJECTED + f"Invalid account '{req.account}'")
        qty = req.total_quantity
        if qty == 0:
            raise OrderRejected(434, MSG_ZERO_SIZE)
        if qty < 0 or math.isnan(qty):
            raise OrderRejected(201, MSG_REJECTED + "The order quantity must be positive")
        if qty < inst.min_size - _EPS:
            raise OrderRejected(
                388,
                f"Order size {qty:g} is smaller than the minimum required size of "
                f"{inst.min_size:g}.",
            )
        n = qty / inst.size_increment
        if abs(n - round(n)) > 1e-6:
            raise OrderRejected(
                201,
                MSG_REJECTED + f"The order size {qty:g} is not a multiple of the size increment "
                f"{inst.size_increment:g} (minimum {inst.min_size:g})",
            )
        if req.order_type in ("LMT", "STP LMT"):
            if req.lmt_price is None or req.lmt_price <= 0:
                raise OrderRejected(201, MSG_REJECTED + "A limit order needs a positive price")
            if not _on_grid(req.lmt_price, inst.min_tick):
                raise OrderRejected(110, MSG_TICK)
        else:
            req.lmt_price = None  # a market order's price field carries nothing
        if req.order_type in ("STP", "STP LMT"):
            if req.aux_price is None or req.aux_price <= 0:
                raise OrderRejected(201, MSG_REJECTED + "A stop order needs a positive stop price")
            if not _on_grid(req.aux_price, inst.min_tick):
                raise OrderRejected(110, MSG_TICK)
        if req.order_type == "TRAIL":
            amount_ok = req.aux_price is not None and req.aux_price > 0
            pct_ok = req.trailing_percent is not None and 0 < req.trailing_percent < 100
            if not (amount_ok or pct_ok):
                raise OrderRejected(
                    201, MSG_REJECTED + "A trailing stop needs a trailing amount or percent"
                )
            if req.trail_stop_price is not None and not _on_grid(
                req.trail_stop_price, inst.min_tick
            ):
                raise OrderRejected(110, MSG_TICK)
        if req.parent_id:
            parent = self._orders.get((req.client_id, req.parent_id))
            if parent is None or parent.state == OrderState.CANCELLED:
                raise OrderRejected(10006, MSG_MISSING_PARENT + f" ({req.parent_id})")
        if existing is not None:
            old = existing.request
            if req.con_id != old.con_id or req.action != old.action:
                raise OrderRejected(105, MSG_MODIFY_MISMATCH)
            if qty < existing.filled - _EPS:
                raise OrderRejected(
                    201,
                    MSG_REJECTED
                    + f"The quantity {qty:g} is below the filled quantity {existing.filled:g}",
                )
        return inst

    def _check_margin(self, req: OrderRequest, inst: Instrument) -> None:
        account = req.account or self.accounts[0]
        signed = req.total_quantity if req.action == "BUY" else -req.total_quantity
        ref = self._reference_price(req, inst)
        init_before, _ = self._margins(account)
        init_after, _ = self._margins(account, extra=(inst.con_id, signed, ref))
        ewl = self._net_liq(account)
        if init_after > init_before + _EPS and init_after > ewl:
            raise OrderRejected(
                201,
                MSG_REJECTED + "YOUR ORDER IS NOT ACCEPTED. IN ORDER TO OBTAIN THE DESIRED "
                f"POSITION YOUR EQUITY WITH LOAN VALUE [{ewl:.2f} USD] MUST EXCEED THE "
                f"INITIAL MARGIN [{init_after:.2f} USD]",
            )

    def _reference_price(self, req: OrderRequest, inst: Instrument) -> float:
        if req.lmt_price is not None:
            return req.lmt_price
        if req.order_type in ("STP", "STP LMT") and req.aux_price is not None:
            return req.aux_price
        q = self.market.quote(inst.con_id)
        touch = q.ask if req.action.upper() == "BUY" else q.bid
        return touch if touch > 0 else self.market.mark(inst.con_id)

    # --- order lifecycle ----------------------------------------------------------------

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

    # --- matching -----------------------------------------------------------------------

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

    # --- accounting helpers -------------------------------------------------------------

    def _inst(self, con_id: int) -> Instrument:
        inst = self.universe.by_con_id(con_id)
        if inst is None:
            raise KeyError(f"con_id {con_id} is not in the universe")
        return inst

    def _net_liq(self, account: str) -> float:
        total = self._accounts[account].cash
        for (acct, con_id), p in self._positions.items():
            if acct != account or abs(p.qty) <= _EPS:
                continue
            inst = self._inst(con_id)
            value = p.qty * self.market.mark(con_id) * inst.multiplier
            total += value - p.qty * p.avg_price if inst.sec_type == "FUT" else value
        return total

    def _margins(
        self, account: str, extra: tuple[int, float, float] | None = None
    ) -> tuple[float, float]:
        """(initial, maintenance) margin of ``account``; ``extra`` = (con_id, signed qty,
        price) adds a hypothetical fill, valuing that position at the given price."""
        qtys: dict[int, float] = {
            con_id: p.qty for (acct, con_id), p in self._positions.items() if acct == account
        }
        prices: dict[int, float] = {}
        if extra is not None:
            con_id, signed, price = extra
            qtys[con_id] = qtys.get(con_id, 0.0) + signed
            prices[con_id] = price
        init = maint = 0.0
        for con_id, qty in qtys.items():
            if abs(qty) <= _EPS:
                continue
            inst = self._inst(con_id)
            price = prices.get(con_id) or self.market.mark(con_id)
            notional = abs(qty) * price * inst.multiplier
            rate_init, rate_maint = _MARGIN_RATES.get(inst.sec_type, (1.0, 1.0))
            init += notional * rate_init
            maint += notional * rate_maint
        return init, maint

    # --- days ---------------------------------------------------------------------------

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

    # --- persistence --------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything needed to resume, JSON-serialisable (the market's quotes included)."""
        return {
            "version": _STATE_VERSION,
            "day": self._day,
            "accounts": list(self.accounts),
            "initial_cash": self.initial_cash,
            "fill_delay_s": self.fill_delay_s,
            "cash": {name: a.cash for name, a in self._accounts.items()},
            "realized": {name: a.realized for name, a in self._accounts.items()},
            "sod_net_liq": {name: a.sod_net_liq for name, a in self._accounts.items()},
            "positions": [
                {"account": acct, "con_id": con_id, **dataclasses.asdict(p)}
                for (acct, con_id), p in sorted(self._positions.items())
            ],
            "executions": [dataclasses.asdict(e) for e in self._executions],
            "working_orders": [_order_to_dict(o) for o in self.open_orders()],
            "completed_orders": [_order_to_dict(o) for o in self.completed_orders()],
            "held": [list(k) for k in sorted(self._held)],
            "commission_paid": [
                [cid, oid, paid] for (cid, oid), paid in sorted(self._commission_paid.items())
            ],
            "next_perm_id": self._next_perm_id,
            "exec_seq": self._exec_seq,
            "market": self.market.to_state(),
        }

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        universe: Universe,
        market: Market,
        *,
        clock: Callable[[], float] = time.time,
        enforce_trading_hours: bool = False,
    ) -> Engine:
        """Rebuild an engine saved by ``to_state``; the market gets its saved quotes back.

        Raises ValueError naming what is wrong when ``state`` is malformed. A state saved
        on an earlier day is rolled to today (DAY orders expire, executions are dropped).
        """
        if not isinstance(state, dict):
            raise ValueError("engine state must be a JSON object")
        if state.get("version") != _STATE_VERSION:
            raise ValueError(
                f"engine state version {state.get('version')!r} is not {_STATE_VERSION}"
            )
        try:
            engine = cls(
                universe,
                market,
                [str(a) for a in state["accounts"]],
                initial_cash=float(state["initial_cash"]),
                clock=clock,
                enforce_trading_hours=enforce_trading_hours,
            )
            engine.fill_delay_s = float(state["fill_delay_s"])
            for name in engine.accounts:
                acct = engine._accounts[name]
                acct.cash = float(state["cash"][name])
                acct.realized = float(state["realized"][name])
                acct.sod_net_liq = float(state["sod_net_liq"][name])
            for raw in state["positions"]:
                d = dict(raw)
                account, con_id = str(d.pop("account")), int(d.pop("con_id"))
                _require_account(engine, account)
                _require_instrument(universe, con_id)
                engine._positions[(account, con_id)] = _Pos(**{k: float(v) for k, v in d.items()})
            for raw in state["executions"]:
                engine._executions.append(Execution(**raw))
            for raw in state["working_orders"]:
                order = _order_from_dict(raw, universe)
                if order.state in DONE_STATES:
                    raise ValueError(f"working order {order.key} is in state {order.state}")
                engine._orders[order.key] = order
            for raw in state["completed_orders"]:
                order = _order_from_dict(raw, universe)
                if order.state not in DONE_STATES:
                    raise ValueError(f"completed order {order.key} is in state {order.state}")
                engine._orders[order.key] = order
                engine._completed.append(order.key)
            for cid, oid in state["held"]:
                if (int(cid), int(oid)) not in engine._orders:
                    raise ValueError(f"held order {(cid, oid)} is not a known order")
                engine._held.add((int(cid), int(oid)))
            for cid, oid, paid in state["commission_paid"]:
                engine._commission_paid[(int(cid), int(oid))] = float(paid)
            engine._next_perm_id = int(state["next_perm_id"])
            engine._exec_seq = int(state["exec_seq"])
            engine._day = str(state["day"])
            if "market" in state:
                market.restore(state["market"])
        except KeyError as exc:
            raise ValueError(f"malformed engine state: missing {exc}") from exc
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"malformed engine state: {exc}") from exc
        engine._roll_day_if_needed()
        return engine


def _apply_fill(
    pos: _Pos, signed: float, unit: float, commission: float
) -> tuple[float | None, float]:
    """Apply a fill of ``signed`` units at ``unit`` (price * multiplier) to ``pos``.

    Returns (realized P&L net of commission, or None for an opening fill; gross P&L of
    the closed part against the commission-free average price, for futures cash).
    """
    q0 = pos.qty
    if _sign(q0) == 0 or _sign(q0) == _sign(signed):
        new = q0 + signed
        pos.avg_cost = (abs(q0) * pos.avg_cost + abs(signed) * unit + commission) / abs(new)
        pos.avg_price = (abs(q0) * pos.avg_price + abs(signed) * unit) / abs(new)
        pos.qty = new
        return None, 0.0
    closed = min(abs(signed), abs(q0))
    direction = _sign(q0)
    close_commission = commission * closed / abs(signed)
    realized = closed * (unit - pos.avg_cost) * direction - close_commission
    settled = closed * (unit - pos.avg_price) * direction
    new = q0 + signed
    if abs(new) <= _EPS:
        pos.qty, pos.avg_cost, pos.avg_price = 0.0, 0.0, 0.0
    elif _sign(new) == direction:
        pos.qty = new
    else:
        # Flipped: the rest opens at the fill price, carrying its share of the commission.
        opened = abs(new)
        pos.qty = new
        pos.avg_cost = unit + (commission - close_commission) / opened
        pos.avg_price = unit
    pos.realized += realized
    return realized, settled


def _order_to_dict(order: SimOrder) -> dict[str, Any]:
    return {
        "request": dataclasses.asdict(order.request),
        "perm_id": order.perm_id,
        "state": order.state.value,
        "filled": order.filled,
        "avg_fill_price": order.avg_fill_price,
        "last_fill_price": order.last_fill_price,
        "triggered": order.triggered,
        "trail_stop_price": order.trail_stop_price,
        "why_held": order.why_held,
        "created": order.created,
    }


def _order_from_dict(raw: dict[str, Any], universe: Universe) -> SimOrder:
    try:
        req = OrderRequest(**raw["request"])
        order = SimOrder(
            request=req,
            perm_id=int(raw["perm_id"]),
            state=OrderState(raw["state"]),
            filled=float(raw["filled"]),
            avg_fill_price=float(raw["avg_fill_price"]),
            last_fill_price=float(raw["last_fill_price"]),
            triggered=bool(raw["triggered"]),
            trail_stop_price=(
                None if raw["trail_stop_price"] is None else float(raw["trail_stop_price"])
            ),
            why_held=str(raw["why_held"]),
            created=float(raw["created"]),
        )
    except KeyError as exc:
        raise ValueError(f"malformed order in engine state: missing {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise ValueError(f"malformed order in engine state: {exc}") from exc
    _require_instrument(universe, req.con_id)
    return order


def _require_instrument(universe: Universe, con_id: int) -> None:
    if universe.by_con_id(con_id) is None:
        raise ValueError(f"engine state refers to con_id {con_id}, which is not in the universe")


def _require_account(engine: Engine, account: str) -> None:
    if account not in engine._accounts:
        raise ValueError(f"engine state refers to unknown account {account!r}")
