"""The pre-trade check: ``check(book, limits, states, intent) -> PreTradeDecision``.

A pure function of its inputs: the exposure book (:class:`core.exposure.ExposureBook`),
the limits (:class:`LimitSet`), the trading states (:class:`core.trading_state.TradingStates`),
the order (:class:`core.trading.OrderIntent`) and the clocks it is given. It changes
nothing (recording a sent order is the caller's business: :func:`record_sent`), so a
test builds the inputs with plain values and reads the verdict. It is O(1) in the number
of positions: it reads the book's aggregates, never walks them
(``benchmarks/bench_risk.py``: well under 50 µs with 1,000 positions).

The answer is an approval or *every* reason for refusal in plain words, naming the
limit, its value and the value the order would reach::

    max position AAPL 1,000 shares: this order would make it 1,200

Trading states
--------------
``ACTIVE`` lets everything through that the limits allow. ``REDUCING`` lets through only
orders that shrink a position (an order that would flip a position counts as opening for
the part beyond flat). ``HALTED`` lets through nothing but the emergency stop's own
flattening orders, which the caller vouches for (``flatten_authorized``: a
:class:`core.flatten.FlattenIntent` the authority issued), and even those only if they
do not reverse the account's position. Each scope (account, strategy, contract) judges
with its own notion of "reducing".

What "reduces a position" means
-------------------------------
For the account scope: the account's position in the contract as IB reports it. For a
strategy: the strategy's own position (from the portfolio). Orders from the ticket
(``manual``), ``external`` ones, and every strategy while no portfolio feeds the book,
are judged against the account's position. Working orders on the same side count: with
100 long and a working SELL 100, another SELL 100 opens a short. Orders that reduce a
position are never refused by a limit (a trader must always be able to get out).

Currencies
----------
Money limits are in the account's base currency; an order's notional is in its
contract's currency (USD.JPY is priced in JPY). Every amount compared with a money limit
is converted with IB's own rate (:meth:`core.exposure.ExposureBook.rate`); an opening
order in a currency without a rate yet is refused for the limits that need one ("no
exchange rate JPY→USD yet: cannot check max order notional"), never judged unconverted.
Refusals state both amounts: ``this order is 1,500,025 JPY = 10,013 USD``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from ib_async import Contract, Order

from core.config import RiskLimits
from core.events import EXTERNAL, MANUAL, TradingState
from core.exposure import ExposureBook, Key, ScopeBook, price, recent
from core.orders import valuation_price
from core.precautions import Precautions
from core.trading import OrderIntent, PreTradeDecision
from core.trading_state import ACCOUNT, ScopeState, TradingStates, contract_scope

__all__ = ["LimitSet", "check", "num", "pct_loss_limit", "record_sent"]

_EPS = 1e-9
_UNITS = {"STK": "shares", "FUT": "contracts", "OPT": "contracts", "FOP": "contracts"}
#: Security types IB gives no multiplier (each unit is worth its price).
_UNMULTIPLIED = frozenset({"STK", "CASH", "IND", "CMDTY", "BOND", "CRYPTO", "FUND"})
_LIMIT_TYPES = frozenset({"LMT", "STP LMT", "LIT", "LOC", "TRAIL LIMIT"})
_STOP_TYPES = frozenset({"STP", "STP LMT", "MIT", "LIT"})
_ACTIVE, _HALTED = TradingState.ACTIVE, TradingState.HALTED


# The check reads about forty limit attributes per order. Pydantic's attribute access
# costs ~90 ns each, so the check reads a slots copy of each scope's RiskLimits, made
# from the model's own field list (one definition; nothing to keep in step).
_FastLimits = dataclasses.make_dataclass(
    "_FastLimits", [(name, Any) for name in RiskLimits.model_fields], frozen=True, slots=True
)


def _fast(limits: RiskLimits) -> RiskLimits:
    values = {name: getattr(limits, name) for name in RiskLimits.model_fields}
    return cast(RiskLimits, _FastLimits(**values))


class LimitSet:
    """Every scope's limits, the precautionary caps and the console's message cap."""

    __slots__ = (
        "account",
        "by_scope",
        "max_messages_per_second",
        "precautions",
        "rate_limited",
        "strategies",
    )

    def __init__(
        self,
        account: RiskLimits | None = None,
        strategies: Mapping[str, RiskLimits] | None = None,
        *,
        precautions: Precautions | None = None,
        max_messages_per_second: int = 50,
    ) -> None:
        self.account = account or RiskLimits()
        self.strategies: dict[str, RiskLimits] = dict(strategies or {})
        self.precautions = precautions
        self.max_messages_per_second = max_messages_per_second
        # only scopes with some limit set: an empty one costs the check nothing
        #: The scopes that have some limit, each as a quick-to-read copy.
        self.by_scope: dict[str, RiskLimits] = {
            name: _fast(lim)
            for name, lim in (("account", self.account), *self.strategies.items())
            if not lim.is_empty()
        }
        #: The scopes with a ``max_orders_per_second`` (their sends are counted).
        self.rate_limited = frozenset(
            name for name, lim in self.by_scope.items() if lim.max_orders_per_second is not None
        )

    def of(self, scope: str) -> RiskLimits:
        """The limits of ``scope`` (empty when none)."""
        if scope == "account":
            return self.account
        return self.strategies.get(scope) or RiskLimits()

    def active(self, scope: str) -> RiskLimits | None:
        """The limits of ``scope`` when it has any, else None (a read-only copy with the
        same attributes, quick to read)."""
        return self.by_scope.get(scope)

    def replace(self, scope: str, limits: RiskLimits) -> LimitSet:
        """A copy with ``scope``'s limits replaced."""
        strategies = dict(self.strategies)
        account = self.account
        if scope == "account":
            account = limits
        else:
            strategies[scope] = limits
        return LimitSet(
            account,
            strategies,
            precautions=self.precautions,
            max_messages_per_second=self.max_messages_per_second,
        )


def num(x: float) -> str:
    """``1200`` -> ``1,200``; ``12.5`` -> ``12.50``."""
    r = round(x)
    if abs(x - r) < 1e-9:
        return f"{r:,}"
    return f"{x:,.2f}"


def _pct(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".") + "%"


def pct_loss_limit(book: ExposureBook, limits: RiskLimits) -> float | None:
    """The day's loss limit in money for a percentage limit (None: not known yet)."""
    pct = limits.daily_loss_limit_pct
    if pct is None:
        return None
    base = book.loss_base
    return base * pct / 100 if base else None


def check(
    book: ExposureBook,
    limits: LimitSet,
    states: TradingStates,
    intent: OrderIntent,
    *,
    now: float,
    wall: Callable[[], datetime],
    flatten_authorized: bool = False,
) -> PreTradeDecision:
    """Approve ``intent`` or refuse it with every reason (see the module docstring).

    ``now`` is monotonic seconds (order rates), ``wall`` gives the aware wall-clock time
    (trading hours; asked only when a scope has trading hours). ``flatten_authorized``
    says the caller verified the intent's :class:`core.flatten.FlattenIntent`.
    """
    order = intent.order
    contract = intent.contract
    key = contract.conId or book.key(contract)
    acct = book.account
    strat = book.scopes.get(intent.strategy)
    buy = order.action == "BUY"
    signed = float(order.totalQuantity) if buy else -float(order.totalQuantity)
    side = 0 if buy else 1
    replaces = intent.replaces
    replaced = (
        book.replaced(replaces.clientId, replaces.orderId, side) if replaces is not None else 0.0
    )
    # which book judges "reducing" for the strategy: its own, unless unknown
    own = strat
    if own is None or not book.strategy_positions_known or intent.strategy in (MANUAL, EXTERNAL):
        own = None
    acct_open = _opening(acct, key, signed, side, replaced)
    own_open = _opening(own, key, signed, side, replaced) if own is not None else acct_open
    con_id = key if isinstance(key, int) else None
    # the state this verdict is given under: the wire re-asks if it tightens (at_wire)
    judged = states.effective(intent.strategy, con_id)
    if flatten_authorized:
        if acct_open > _EPS:
            pos = acct.qty.get(key, 0.0)
            return PreTradeDecision(
                False,
                (
                    f"flattening order would reverse the {book.symbol_for(key, contract)} "
                    f"position ({num(pos)} -> {num(pos + signed)})",
                ),
            )
        return PreTradeDecision(True, judged_under=judged, flatten=True)
    reasons: list[str] = []
    if judged is not _ACTIVE:
        sstate = states.get(intent.strategy)
        cstate = states.get(contract_scope(con_id)) if con_id else None
        for name, st, opening in (
            ("account", states.account, acct_open),
            (intent.strategy, sstate, own_open),
            (contract_scope(con_id) if con_id else "", cstate, acct_open),
        ):
            if st is None or st.state is _ACTIVE:
                continue
            if st.state is _HALTED:
                return PreTradeDecision(False, (_state_reason(book, name, st),))
            if opening > _EPS:
                judge = own if st is sstate and own is not None else acct
                reasons.append(
                    _state_reason(book, name, st)
                    + ": "
                    + _opening_text(book, judge, key, contract, signed)
                )
    if max(acct_open, own_open) <= _EPS:
        if reasons:
            return PreTradeDecision(False, tuple(reasons))
        return PreTradeDecision(True, judged_under=judged)
    # an opening order: the limits of each scope it opens in apply
    if key in book.stale:
        reasons.append(
            f"market data for {book.symbol_for(key, contract)} is stale: "
            "only orders that reduce a position are let through"
        )
    cap = limits.max_messages_per_second
    sent = book.console_sent  # inlined exposure.recent(): this is the hot path
    recent = len(sent)
    i = 0
    while i < recent and now - sent[i] >= 1.0:
        i += 1
    recent -= i
    if recent >= cap:
        reasons.append(
            f"IB message cap {cap} per second (whole console): "
            f"this order would make it {recent + 1} in the last second"
        )
    # the order's prices, read once for every scope
    lmt = price(order.lmtPrice) if order.orderType in _LIMIT_TYPES else None
    mult = book.mult.get(key)
    if mult is None:
        mult = float(contract.multiplier) if contract.multiplier else 1.0
    fx = book.fx.get(key)  # precomputed (1.0 for the base currency): the common case
    if fx is None:
        fx = _fx(book, key, contract)
    mark = book.mark.get(key)
    if lmt is None:  # valued as the ticket values it: stop price, else the side it trades at
        quote = book.quotes.get(key)
        bid, ask = (quote[0], quote[1]) if quote is not None else (None, None)
        worth = valuation_price(order, bid=bid, ask=ask, mark=mark)
    else:
        worth = lmt
    prices = (lmt, worth, mark, mult, fx)
    if acct_open > _EPS:
        lim = limits.by_scope.get("account")
        if lim is not None:
            _check_scope(
                book,
                acct,
                lim,
                "",
                intent,
                key,
                signed,
                side,
                acct_open,
                replaced,
                prices,
                now,
                wall,
                reasons,
            )
        if limits.precautions is not None:
            reasons += _check_precautions(book, limits.precautions, intent, key, acct_open, worth)
    if strat is not None and own_open > _EPS:
        lim = limits.by_scope.get(strat.name)
        if lim is not None:
            _check_scope(
                book,
                strat,
                lim,
                f" (strategy {strat.name})",
                intent,
                key,
                signed,
                side,
                own_open,
                replaced,
                prices,
                now,
                wall,
                reasons,
            )
    if reasons:
        return PreTradeDecision(False, tuple(reasons))
    return PreTradeDecision(True, judged_under=judged)


def record_sent(book: ExposureBook, limits: LimitSet, strategy: str, now: float) -> bool:
    """The caller's half of an approval: count the order as sent at ``now``, for the
    console's pacing and for each of the account and ``strategy`` whose order rate is
    limited. True when a limit's use changed (the utilization then needs publishing)."""
    rated = limits.rate_limited
    if not rated:
        book.record_sent(now)
        return False
    if ACCOUNT in rated:
        if strategy in rated:
            book.record_sent(now, ACCOUNT, strategy)
        else:
            book.record_sent(now, ACCOUNT)
    elif strategy in rated:
        book.record_sent(now, strategy)
    else:
        book.record_sent(now)
        return False
    return True


def _opening(book: ScopeBook | None, key: Key, signed: float, side: int, replaced: float) -> float:
    """The part of an order that opens or increases a position in ``book`` (0: reducing)."""
    if book is None:
        return abs(signed)
    pos = book.qty.get(key, 0.0)
    if pos == 0.0 or (pos > 0) == (signed > 0):
        return abs(signed)
    pending = book.working.get(key)
    same = (pending[side] if pending else 0.0) - replaced
    capacity = abs(pos) - max(0.0, same)
    if capacity < 0.0:
        capacity = 0.0
    over = abs(signed) - capacity
    return over if over > _EPS else 0.0


def _stop_price(order: Order) -> float | None:
    return price(order.auxPrice) if order.orderType in _STOP_TYPES else None


def _check_scope(
    book: ExposureBook,
    scope: ScopeBook,
    lim: RiskLimits,
    sfx: str,
    intent: OrderIntent,
    key: Key,
    signed: float,
    side: int,
    opening: float,
    replaced: float,
    prices: tuple[float | None, float | None, float | None, float, float | None],
    now: float,
    wall: Callable[[], datetime],
    reasons: list[str],
) -> None:
    """Every limit of one scope an opening order is judged by; appends to ``reasons``.
    ``prices``: the limit price (None: none), the price the order is valued at
    (:func:`core.orders.valuation_price`; None: none known), the mark, the multiplier and
    the rate to the base currency (None: not known yet)."""
    order, contract = intent.order, intent.contract
    lmt, px, mark, mult, fx = prices
    if lim.max_order_quantity is not None and opening > lim.max_order_quantity + _EPS:
        reasons.append(
            f"max order quantity {num(lim.max_order_quantity)} "
            f"{_unit(book, key, contract)}{sfx}: this order is {num(opening)}"
        )
    if lim.max_order_notional is not None:
        if px is None:
            reasons.append(_no_price(book, key, contract, "max order notional", sfx))
        elif fx is None:
            reasons.append(_no_rate(book, key, contract, "max order notional", sfx))
        elif opening * px * mult * fx > lim.max_order_notional + _EPS:
            reasons.append(
                f"max order notional {_limit(book, key, contract, lim.max_order_notional)}"
                f"{sfx}: this order is {_money(book, key, contract, opening * px * mult, fx)}"
            )
    pos = scope.qty.get(key, 0.0)
    pending = scope.working.get(key)
    same_side = (pending[side] if pending else 0.0) - replaced
    proj = pos + signed + (same_side if side == 0 else -same_side)
    if lim.max_position_quantity is not None and abs(proj) > lim.max_position_quantity + _EPS:
        with_working = f" (with {num(same_side)} working)" if same_side > _EPS else ""
        reasons.append(
            f"max position {book.symbol_for(key, contract)} {num(lim.max_position_quantity)} "
            f"{_unit(book, key, contract)}{sfx}: this order would make it "
            f"{num(abs(proj))}{with_working}"
        )
    if (
        lim.max_position_notional is not None
        or lim.max_gross_exposure is not None
        or lim.max_net_exposure is not None
    ):
        vpx = mark if mark is not None else px
        if vpx is None:
            reasons.append(_no_price(book, key, contract, "position value", sfx))
        elif fx is None:
            reasons.append(_no_rate(book, key, contract, "position value", sfx))
        else:
            local_val = proj * vpx * mult
            new_val = local_val * fx
            old_val = scope.notional.get(key, 0.0)
            if (
                lim.max_position_notional is not None
                and abs(new_val) > lim.max_position_notional + _EPS
            ):
                reasons.append(
                    f"max position notional {book.symbol_for(key, contract)} "
                    f"{_limit(book, key, contract, lim.max_position_notional)}{sfx}: "
                    f"this order would make it {_money(book, key, contract, abs(local_val), fx)}"
                )
            if scope.unrated and (
                lim.max_gross_exposure is not None or lim.max_net_exposure is not None
            ):
                # a position valued at nothing would make any total a guess
                held = next(iter(scope.unrated))
                reasons.append(
                    f"no exchange rate {_foreign(book, held, None)}→{book.base_currency} yet "
                    f"for the {book.symbol_for(held)} position{sfx}: "
                    "cannot check gross and net exposure"
                )
            else:
                if lim.max_gross_exposure is not None:
                    gross = scope.gross - abs(old_val) + abs(new_val)
                    if gross > lim.max_gross_exposure + _EPS and gross > scope.gross:
                        reasons.append(
                            f"max gross exposure {num(lim.max_gross_exposure)}{sfx}: "
                            f"this order would make it {num(gross)}"
                        )
                if lim.max_net_exposure is not None:
                    net = scope.net - old_val + new_val
                    if abs(net) > lim.max_net_exposure + _EPS and abs(net) > abs(scope.net):
                        reasons.append(
                            f"max net exposure {num(lim.max_net_exposure)}{sfx}: "
                            f"this order would make it {num(net)}"
                        )
    if lim.max_working_orders is not None and intent.replaces is None:
        n = scope.working_count + 1
        if n > lim.max_working_orders:
            reasons.append(
                f"max working orders {num(lim.max_working_orders)}{sfx}: "
                f"this order would make it {n}"
            )
    if lim.max_orders_per_second is not None:
        n = recent(scope.sent, now) + 1
        if n > lim.max_orders_per_second:
            reasons.append(
                f"max orders per second {num(lim.max_orders_per_second)}{sfx}: "
                f"this order would make it {n} in the last second"
            )
    if scope.pnl is not None:
        loss = -scope.pnl
        if lim.daily_loss_limit is not None and loss >= lim.daily_loss_limit:
            reasons.append(
                f"daily loss limit {num(lim.daily_loss_limit)}{sfx}: the day's loss is {num(loss)}"
            )
        if lim.daily_loss_limit_pct is not None:
            pct_limit = pct_loss_limit(book, lim)
            if pct_limit is not None and loss >= pct_limit:
                reasons.append(
                    f"daily loss limit {_pct(lim.daily_loss_limit_pct)} of net liquidation "
                    f"({num(pct_limit)}){sfx}: the day's loss is {num(loss)}"
                )
        if lim.max_drawdown is not None and scope.hwm - scope.pnl >= lim.max_drawdown:
            reasons.append(
                f"max drawdown {num(lim.max_drawdown)}{sfx}: the day's P&L is "
                f"{num(scope.hwm - scope.pnl)} below its high"
            )
    if lim.fat_finger_pct is not None:
        ref = book.ref.get(key)
        banded = [p for p in (lmt, _stop_price(order)) if p is not None]
        if banded and ref is None:
            reasons.append(_no_price(book, key, contract, "the fat-finger band", sfx))
        elif ref is not None:
            for p in banded:
                dist = abs(p - ref) / ref * 100
                if dist > lim.fat_finger_pct + _EPS:
                    reasons.append(
                        f"fat-finger band {_pct(lim.fat_finger_pct)}{sfx}: price "
                        f"{num(p)} is {_pct(dist)} from the market {num(ref)}"
                    )
    hours = lim.trading_hours
    if hours is not None:
        at = wall()
        if not hours.allows(at):
            local = at.astimezone(ZoneInfo(hours.tz))
            reasons.append(f"trading hours {hours.describe()}{sfx}: it is {local:%a %H:%M} there")


def _check_precautions(
    book: ExposureBook,
    precautions: Precautions,
    intent: OrderIntent,
    key: Key,
    opening: float,
    worth: float | None,
) -> list[str]:
    """The precautionary caps of the contract's security type (core.precautions);
    ``worth`` is the price the order is valued at (:func:`core.orders.valuation_price`)."""
    order, contract = intent.order, intent.contract
    # The order's own (qualified) contract first: a key first seen in a quote is assumed
    # STK. Never a guessed multiplier or type: an order that cannot be valued is refused.
    sec_type = contract.secType or book.sec_type.get(key) or ""
    mult = price(contract.multiplier) if contract.multiplier else None
    if mult is None:
        mult = book.mult.get(key)
    if mult is None and sec_type in _UNMULTIPLIED:
        mult = 1.0  # IB sends no multiplier for these: one unit is one unit
    if not sec_type or mult is None:
        missing = "security type" if not sec_type else f"multiplier ({sec_type})"
        return [
            f"{missing} of {book.symbol_for(key, contract)} not known: cannot check the "
            "precautionary caps; qualify the contract first"
        ]
    lmt = price(order.lmtPrice) if order.orderType in _LIMIT_TYPES else None
    stop = _stop_price(order)
    fx = book.fx.get(key)
    if fx is None:
        fx = _fx(book, key, contract)
    return precautions.check(
        sec_type=sec_type,
        multiplier=mult,
        quantity=opening,
        price=worth,
        prices=tuple(p for p in (lmt, stop) if p is not None),
        reference=book.ref.get(key),
        symbol=book.symbol_for(key, contract),
        fx=fx,
        currency=_foreign(book, key, contract) if fx != 1.0 else "",
        base=book.base_currency,
    )


def _state_reason(book: ExposureBook, name: str, st: ScopeState) -> str:
    if name == "account":
        where = "account"
    elif name.startswith("contract:"):
        con_id = int(name[9:])
        where = f"contract {book.symbol.get(con_id, con_id)}"
    else:
        where = f"strategy {name}"
    rule = (
        "only the emergency stop's flattening orders are sent"
        if st.state is _HALTED
        else "only orders that reduce a position are let through"
    )
    return f"trading is {st.state} ({where}: {st.reason}); {rule}"


def _opening_text(
    book: ExposureBook, scope: ScopeBook, key: Key, contract: Contract, signed: float
) -> str:
    pos = scope.qty.get(key, 0.0)
    new = pos + signed
    if pos and new and (pos > 0) != (new > 0):
        verb = "reverse"
    elif pos == 0:
        verb = "open"
    else:
        verb = "increase"
    return (
        f"this order would {verb} the {book.symbol_for(key, contract)} position "
        f"({num(pos)} -> {num(new)})"
    )


def _no_price(book: ExposureBook, key: Key, contract: Contract, what: str, sfx: str) -> str:
    return f"no market price for {book.symbol_for(key, contract)}{sfx}: cannot check {what}"


def _fx(book: ExposureBook, key: Key, contract: Contract) -> float | None:
    """Base currency per unit of the order's currency (None: IB sent no rate yet)."""
    fx = book.fx.get(key)
    return fx if fx is not None else book.rate(contract.currency or book.currency.get(key, ""))


def _foreign(book: ExposureBook, key: Key, contract: Contract | None) -> str:
    """The contract's currency when it is not the base currency, else ""."""
    cur = (contract.currency if contract is not None else "") or book.currency.get(key, "")
    return "" if cur == book.base_currency else cur


def _no_rate(book: ExposureBook, key: Key, contract: Contract, what: str, sfx: str) -> str:
    cur = _foreign(book, key, contract)
    return f"no exchange rate {cur}→{book.base_currency} yet{sfx}: cannot check {what}"


def _limit(book: ExposureBook, key: Key, contract: Contract, value: float) -> str:
    """A money limit, naming its currency when the order's is another."""
    return f"{num(value)} {book.base_currency}" if _foreign(book, key, contract) else num(value)


def _money(book: ExposureBook, key: Key, contract: Contract, amount: float, fx: float) -> str:
    """An amount in the contract's currency, with its base equivalent when that differs:
    ``1,500,025 JPY = 10,013 USD``."""
    cur = _foreign(book, key, contract)
    if not cur:
        return num(amount)
    return f"{num(amount)} {cur} = {num(round(amount * fx))} {book.base_currency}"


def _unit(book: ExposureBook, key: Key, contract: Contract) -> str:
    return _UNITS.get(book.sec_type.get(key) or contract.secType or "STK", "units")
