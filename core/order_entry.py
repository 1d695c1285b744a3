"""What the order ticket asks of core: instruments, previews, margin impact, sending.

The ticket is a GUI widget; everything it needs to *decide* lives here, so it can be
tested without Qt and a strategy could use it too:

* :meth:`OrderEntry.instrument` turns what a trader types ("AAPL", "ES", "EUR.USD")
  into a qualified contract with its tick, multiplier and lot rules;
* :meth:`OrderEntry.preview` gives the notional, the estimated commission and every
  reason the order would be refused (validation, strategy permissions, risk), before
  anything is sent;
* :meth:`OrderEntry.margin_impact` asks the gateway for a whatIf order;
* :meth:`OrderEntry.place` sends through the TradeManager (``actor="gui"``);
  :meth:`OrderEntry.send` does the same for the GUI and answers the order id to follow
  in :attr:`OrderEntry.orderUpdated` / :attr:`OrderEntry.orderRejected`.

The GUI describes an order as an :class:`OrderSpec` (plain values); core alone builds
the ``ib_async`` order from it, so the GUI never imports ``ib_async``.

Commission estimates follow IB's fixed pricing for US stocks (0.005 USD a share,
1 USD minimum, at most 1% of the trade value), 2.25 USD a futures contract with fees,
and 0.2 basis points of the value (2 USD minimum) for IDEALPRO forex. IB charges what
it charges; the estimate is for the preview only.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from eventkit import Event
from ib_async import Contract, ContractDetails, Order, Trade

from core.contracts import (
    AmbiguousContract,
    ContractNotFound,
    ContractService,
    create_forex_contract,
    create_stock_contract,
)
from core.events import MANUAL
from core.marketdata import MarketData, Quote
from core.orders import (
    canonicalize_order,
    create_limit_order,
    create_market_order,
    create_stop_limit_order,
    create_stop_order,
    valuation_price,
)
from core.trading import TradeManager

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InstrumentInfo:
    """A qualified contract with what the ticket needs to know about it."""

    contract: Contract
    details: ContractDetails
    symbol: str  # what the trader sees: AAPL, ESZ6, EUR.USD
    sec_type: str
    currency: str
    min_tick: float
    multiplier: float
    min_size: float
    size_increment: float
    description: str

    @property
    def con_id(self) -> int:
        """IB's contract id."""
        return self.contract.conId


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """An order as a person describes it (the ticket): side, size, type, prices, TIF.

    Not validated: what the fields hold, a zero or negative included, so the preview
    can say what is wrong with it. ``limit_price`` / ``stop_price`` are None where the
    order type has none.
    """

    action: str  # BUY / SELL
    quantity: float
    order_type: str = "MKT"  # MKT, LMT, STP, STP LMT
    limit_price: float | None = None
    stop_price: float | None = None
    tif: str = "DAY"
    outside_rth: bool = False

    def to_order(self) -> Order:
        """The ``ib_async`` order (the canonical constructors when the values allow)."""
        side, qty, kind = self.action, self.quantity, self.order_type
        lmt = self.limit_price if self.limit_price is not None else 0.0
        stp = self.stop_price if self.stop_price is not None else 0.0
        order: Order
        if kind == "MKT":
            order = (
                create_market_order(side, qty)
                if qty > 0
                else Order(action=side, orderType="MKT", totalQuantity=qty)
            )
        elif kind == "LMT":
            order = Order(action=side, orderType="LMT", totalQuantity=qty, lmtPrice=lmt)
            if qty > 0 and lmt > 0:
                order = create_limit_order(side, qty, lmt)
        elif kind == "STP":
            order = Order(action=side, orderType="STP", totalQuantity=qty, auxPrice=stp)
            if qty > 0 and stp > 0:
                order = create_stop_order(side, qty, stp)
        else:
            order = Order(
                action=side, orderType=kind, totalQuantity=qty, lmtPrice=lmt, auxPrice=stp
            )
            if kind == "STP LMT" and qty > 0 and lmt > 0 and stp > 0:
                order = create_stop_limit_order(side, qty, stp, lmt)
        order.tif = self.tif
        order.outsideRth = self.outside_rth
        return order


def _as_order(order: OrderSpec | Order) -> Order:
    return order.to_order() if isinstance(order, OrderSpec) else order


@dataclass(frozen=True, slots=True)
class OrderPreview:
    """What an order would be, before it is sent."""

    notional: float | None  # quantity x price x multiplier, None without a price
    est_commission: float | None
    reference_price: float | None  # the price the notional uses
    problems: tuple[str, ...]  # every reason it would be refused now
    #: The notional in the account's base currency (None: same currency, or no rate
    #: known yet), and that currency's name.
    base_notional: float | None = None
    base_currency: str = ""

    @property
    def approved(self) -> bool:
        """True when nothing stands in the way."""
        return not self.problems


@dataclass(frozen=True, slots=True)
class MarginImpact:
    """The gateway's whatIf answer."""

    init_margin_change: float | None
    maint_margin_change: float | None
    equity_with_loan_after: float | None
    commission: float | None


@dataclass(frozen=True, slots=True)
class InstrumentMatch:
    """One answer of a symbol search, for the ticket's completer."""

    symbol: str
    sec_type: str
    currency: str
    exchange: str
    description: str


def estimate_commission(sec_type: str, quantity: float, price: float, multiplier: float) -> float:
    """IB fixed-pricing estimate of an order's commission in the contract's currency."""
    quantity = abs(quantity)
    value = quantity * price * multiplier
    if sec_type == "FUT":
        return 2.25 * quantity
    if sec_type == "CASH":
        return max(2.0, value * 0.2e-4)
    per_share = max(1.0, 0.005 * quantity)
    return min(per_share, 0.01 * value) if value > 0 else per_share


def _number(value: object) -> float | None:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and abs(v) < 1e300 else None


class OrderEntry:
    """The order ticket's view of core (see the module docstring)."""

    def __init__(
        self, contracts: ContractService, market: MarketData, trades: TradeManager
    ) -> None:
        self.contracts = contracts
        self.market = market
        self.trades = trades
        #: Converts an amount of a currency into the base currency (risk's
        #: :meth:`core.risk.RiskManager.in_base`); None: no conversion shown.
        self.in_base: Callable[[float, str], tuple[float, str] | None] | None = None
        self._by_text: dict[str, InstrumentInfo] = {}

    @property
    def orderUpdated(self) -> Event:
        """Every order's :class:`core.events.OrderUpdated` (the ticket follows its own)."""
        return self.trades.orderUpdated

    @property
    def orderRejected(self) -> Event:
        """Every refusal, :class:`core.events.OrderRejected` (IB's or the console's)."""
        return self.trades.orderRejected

    # -- instruments --------------------------------------------------------------------

    async def search(self, pattern: str) -> list[InstrumentMatch]:
        """Instruments whose symbol or name matches, for completion as the trader types."""
        if not pattern.strip():
            return []
        found = await self.contracts.search(pattern)
        out = []
        for d in found:
            c = d.contract
            if c is None:
                continue
            symbol = c.localSymbol if c.secType == "CASH" and c.localSymbol else c.symbol
            out.append(
                InstrumentMatch(
                    symbol, c.secType, c.currency, c.primaryExchange or c.exchange, c.description
                )
            )
        return out

    async def instrument(self, text: str) -> InstrumentInfo:
        """Resolve what the trader typed: a stock symbol, a forex pair or a future root.

        Raises :class:`core.contracts.ContractNotFound` (or ``ValueError`` for empty input)
        with a message that names what was typed.
        """
        key = text.strip().upper()
        if not key:
            raise ValueError("type a symbol, e.g. AAPL, ES or EUR.USD")
        if key in self._by_text:
            return self._by_text[key]
        candidates: list[Contract] = []
        # Ask IB's symbol search first, so only the right kind of contract is requested
        # (probing a future root as a stock would log a needless error 200).
        try:
            found = await self.contracts.search(key)
        except Exception as exc:  # a failed search only loses the hint
            log.debug("symbol search for %s failed: %s", key, exc)
            found = []
        for d in found:
            c = d.contract
            if c is None or key not in (c.symbol, c.localSymbol, f"{c.symbol}.{c.currency}"):
                continue
            if c.secType == "STK":
                candidates.append(create_stock_contract(c.symbol, "SMART", c.currency or "USD"))
            elif c.secType == "CASH":
                candidates.append(create_forex_contract(f"{c.symbol}{c.currency}"))
            elif c.secType == "FUT":
                candidates.append(Contract(symbol=c.symbol, secType="FUT", currency=c.currency))
        pair = key.replace(".", "").replace("/", "")
        if not candidates:  # no hint from the search: try the readings in turn
            if len(pair) == 6 and pair.isalpha():
                candidates.append(create_forex_contract(pair))
            elif key.replace(".", "").replace(" ", "").isalnum():
                candidates.append(create_stock_contract(key))
                candidates.append(Contract(symbol=key, secType="FUT"))
        last_error: Exception | None = None
        for contract in candidates:
            try:
                details = await self.contracts.details(contract)
            except ContractNotFound as exc:
                last_error = exc
                continue
            except AmbiguousContract as exc:
                # A future root without an expiry: the front month is what a trader means.
                dated = [d for d in exc.candidates if d.contract and d.contract.secType == "FUT"]
                if not dated:
                    last_error = exc
                    continue
                details = min(dated, key=lambda d: d.contract.lastTradeDateOrContractMonth)  # type: ignore[union-attr]
            except Exception as exc:  # timeout: try the next reading
                last_error = exc
                continue
            info = self._info(details)
            self._by_text[key] = info
            return info
        if last_error is not None and not isinstance(last_error, ContractNotFound):
            raise last_error
        raise ContractNotFound(Contract(symbol=key))

    def _info(self, details: ContractDetails) -> InstrumentInfo:
        assert details.contract is not None
        c = Contract.recreate(details.contract)
        if c.secType == "STK":
            c.exchange = "SMART"
        symbol = c.localSymbol if c.secType in ("CASH", "FUT") and c.localSymbol else c.symbol
        return InstrumentInfo(
            contract=c,
            details=details,
            symbol=symbol,
            sec_type=c.secType,
            currency=c.currency,
            min_tick=_number(details.minTick) or 0.01,
            multiplier=_number(c.multiplier) or 1.0,
            min_size=_number(details.minSize) or 1.0,
            size_increment=_number(details.sizeIncrement) or 1.0,
            description=details.longName or c.description or symbol,
        )

    def watch(self, info: InstrumentInfo) -> Quote | None:
        """Stream the instrument's quotes (idempotent); returns the latest if known."""
        self.market.subscribe(info.contract)
        return self.market.quote(info.con_id)

    async def wait_quote(self, info: InstrumentInfo, timeout: float = 3.0) -> Quote | None:
        """Watch the instrument and wait for its first quote (risk prices orders by it)."""
        quote = self.watch(info)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while quote is None and loop.time() < deadline:
            await asyncio.sleep(0.05)
            quote = self.market.quote(info.con_id)
        return quote

    # -- before sending -----------------------------------------------------------------

    def preview(
        self, info: InstrumentInfo, order: OrderSpec | Order, strategy: str = MANUAL
    ) -> OrderPreview:
        """Notional, commission estimate and every reason for refusal, without sending.

        Judged on a copy in the canonical form the trade manager would send.
        """
        order = copy.copy(_as_order(order))
        malformed = canonicalize_order(order)
        quote = self.market.quote(info.con_id)
        # valued as the risk check values it (one rule: core.orders.valuation_price)
        price = (
            valuation_price(order, bid=quote.bid, ask=quote.ask, mark=quote.mark)
            if quote is not None
            else valuation_price(order)
        )
        qty = _number(order.totalQuantity) or 0.0
        notional = qty * price * info.multiplier if price is not None else None
        commission = (
            estimate_commission(info.sec_type, qty, price, info.multiplier)
            if price is not None and qty > 0
            else None
        )
        problems = malformed or self.trades.verdict(
            info.contract, order, strategy, "gui", info.details
        )
        base = None
        if notional is not None and self.in_base is not None:
            base = self.in_base(notional, info.currency)
        if base is not None and base[1] != info.currency:
            return OrderPreview(notional, commission, price, tuple(problems), *base)
        return OrderPreview(notional, commission, price, tuple(problems))

    async def margin_impact(
        self, info: InstrumentInfo, order: OrderSpec | Order
    ) -> MarginImpact | None:
        """The gateway's whatIf estimate, or None if it does not answer in time."""
        order = _as_order(order)
        probe = Order(**{k: v for k, v in vars(order).items() if k != "orderId"})
        probe.orderId = 0
        try:
            state = await asyncio.wait_for(self.trades.what_if(info.contract, probe), 5)
        except TimeoutError:
            return None
        if not state:
            return None
        return MarginImpact(
            init_margin_change=_number(state.initMarginChange),
            maint_margin_change=_number(state.maintMarginChange),
            equity_with_loan_after=_number(state.equityWithLoanAfter),
            commission=_number(state.commission),
        )

    # -- sending ------------------------------------------------------------------------

    def place(
        self, info: InstrumentInfo, order: OrderSpec | Order, strategy: str = MANUAL
    ) -> Trade:
        """Send through the TradeManager as the GUI; raises ``OrderRefused`` with reasons."""
        return self.trades.place_order(
            info.contract, _as_order(order), strategy or MANUAL, actor="gui"
        )

    def send(self, info: InstrumentInfo, spec: OrderSpec, strategy: str = MANUAL) -> int:
        """:meth:`place` for the GUI: the order id, whose progress comes as
        :attr:`orderUpdated` and :attr:`orderRejected` events; raises ``OrderRefused``."""
        return int(self.place(info, spec, strategy).order.orderId)
