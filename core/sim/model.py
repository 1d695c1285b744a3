"""Domain objects shared by the simulated gateway's two halves.

The *engine* side (``universe.py``, ``market.py``, ``engine.py``) simulates an
exchange and a broker account: instruments, a seeded price walk, order matching,
executions, commissions, positions and cash. It knows nothing of sockets.

The *wire* side (``protocol.py``, ``server.py``) speaks the TWS API to clients
and translates between wire messages and these objects.

Everything here is plain data. Nothing here imports ib_async: the simulated
gateway is a server for any TWS API client.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

UNSET_DOUBLE = 1.7976931348623157e308  # IB's "no value" for doubles on the wire
UNSET_INTEGER = 2**31 - 1  # IB's "no value" for ints on the wire


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable contract of the simulated universe."""

    con_id: int
    symbol: str
    sec_type: str  # STK, FUT, CASH
    exchange: str  # routing exchange: SMART, CME, IDEALPRO
    primary_exchange: str  # NASDAQ, NYSE, ARCA, CME, IDEALPRO
    currency: str
    min_tick: float
    multiplier: float  # 1 for stocks and forex, 50 for ES
    local_symbol: str
    trading_class: str
    long_name: str
    industry: str
    category: str
    time_zone_id: str  # e.g. "US/Eastern", "US/Central"
    trading_hours: str  # IB format: "20261125:0400-20261125:2000;20261126:CLOSED;..."
    liquid_hours: str  # regular trading hours, same format
    initial_price: float
    daily_volatility: float  # standard deviation of daily returns, e.g. 0.02
    last_trade_date: str = ""  # futures: YYYYMMDD
    min_size: float = 1.0  # smallest order quantity and its increment
    size_increment: float = 1.0
    md_size_multiplier: int = 1


@dataclass(slots=True)
class Quote:
    """The current top of book of one instrument."""

    bid: float
    ask: float
    last: float
    bid_size: float
    ask_size: float
    last_size: float
    volume: float
    high: float
    low: float
    open: float
    close: float  # previous session's close
    time: float  # epoch seconds of the last change


@dataclass(frozen=True, slots=True)
class Bar:
    """One historical bar; ``time`` is the bar's start in epoch seconds."""

    time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float
    count: int


class OrderState(enum.StrEnum):
    """IB's order status strings, as orderStatus carries them."""

    PENDING_SUBMIT = "PendingSubmit"
    PRE_SUBMITTED = "PreSubmitted"  # accepted, waiting for a trigger (stops) or outside RTH
    SUBMITTED = "Submitted"
    PENDING_CANCEL = "PendingCancel"
    CANCELLED = "Cancelled"
    FILLED = "Filled"
    INACTIVE = "Inactive"
    API_CANCELLED = "ApiCancelled"


DONE_STATES = frozenset({OrderState.CANCELLED, OrderState.FILLED, OrderState.API_CANCELLED})


@dataclass(slots=True)
class OrderRequest:
    """An order as a client sent it (placeOrder), in IB's field names' spirit.

    ``extra`` keeps every other placeOrder field the wire side parsed, by the
    name ib_async's ``Order`` uses, as the raw string, so that openOrder can
    echo it back unchanged.
    """

    order_id: int
    client_id: int
    con_id: int
    action: str  # BUY / SELL
    total_quantity: float
    order_type: str  # MKT, LMT, STP, STP LMT, TRAIL
    lmt_price: float | None = None
    aux_price: float | None = None  # stop price; trailing amount for TRAIL
    trailing_percent: float | None = None
    trail_stop_price: float | None = None
    tif: str = "DAY"  # DAY, GTC, IOC
    outside_rth: bool = False
    account: str = ""
    order_ref: str = ""
    what_if: bool = False
    parent_id: int = 0
    transmit: bool = True
    oca_group: str = ""
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SimOrder:
    """An order the engine holds, with its live state."""

    request: OrderRequest
    perm_id: int
    state: OrderState
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    triggered: bool = False  # stops: the trigger has been hit
    trail_stop_price: float | None = None  # TRAIL: the current stop level
    why_held: str = ""
    created: float = 0.0  # epoch seconds

    @property
    def remaining(self) -> float:
        return self.request.total_quantity - self.filled

    @property
    def key(self) -> tuple[int, int]:
        """Orders are identified by (client id, order id), as in TWS."""
        return (self.request.client_id, self.request.order_id)


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill, as execDetails and commissionReport report it."""

    exec_id: str  # unique, e.g. "0000e0d5.6553a1b2.01.01"
    order_id: int
    client_id: int
    perm_id: int
    con_id: int
    account: str
    side: str  # BOT / SLD
    shares: float
    price: float
    cum_qty: float
    avg_price: float
    time: float  # epoch seconds
    exchange: str  # where it filled, e.g. "NASDAQ", "CME", "IDEALPRO"
    order_ref: str
    commission: float
    commission_currency: str
    realized_pnl: float | None  # None when the fill opened or added (IB sends UNSET_DOUBLE)


@dataclass(frozen=True, slots=True)
class Position:
    """A position of an account in one instrument; average cost includes the multiplier, as IB's."""

    account: str
    con_id: int
    quantity: float
    avg_cost: float


@dataclass(frozen=True, slots=True)
class PortfolioItem:
    """updatePortfolio's content for one position, marked at the current price."""

    account: str
    con_id: int
    quantity: float
    market_price: float
    market_value: float
    average_cost: float
    unrealized_pnl: float
    realized_pnl: float


@dataclass(frozen=True, slots=True)
class AccountPnL:
    """reqPnL's figures for an account (or reqPnLSingle's for one position)."""

    daily_pnl: float
    unrealized_pnl: float
    realized_pnl: float
    position: float = 0.0  # reqPnLSingle only
    value: float = 0.0  # reqPnLSingle only


@dataclass(frozen=True, slots=True)
class WhatIfResult:
    """What a whatIf order would cost; nothing is executed."""

    init_margin_before: float
    maint_margin_before: float
    equity_with_loan_before: float
    init_margin_change: float
    maint_margin_change: float
    equity_with_loan_change: float
    init_margin_after: float
    maint_margin_after: float
    equity_with_loan_after: float
    commission: float
    min_commission: float
    max_commission: float
    commission_currency: str


# --- what the engine tells the wire side -------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderChanged:
    """An order's state, filled quantity or prices changed: send openOrder and orderStatus."""

    order: SimOrder


@dataclass(frozen=True, slots=True)
class ExecutionOccurred:
    """A fill happened: send execDetails (reqId -1) and commissionReport to the order's client
    and to client 0; account and portfolio updates follow."""

    execution: Execution


@dataclass(frozen=True, slots=True)
class OrderError:
    """IB-style error for an order id (201 rejected, 110 price not on the tick, 202 cancelled)."""

    client_id: int
    order_id: int
    code: int
    message: str


EngineEvent = OrderChanged | ExecutionOccurred | OrderError


class OrderRejected(Exception):
    """Raised by the engine when an order is refused; carries IB's error code and text."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
