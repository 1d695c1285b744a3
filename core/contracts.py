"""Contracts: constructors, lookup with a per-session cache, price and trading-hours utilities.

The constructors return ``ib_async`` contracts (the seed's vocabulary) after checking
their arguments, so a typo fails where it is made with a message naming the argument,
not later as IB's "No security definition has been found".

:class:`ContractService` asks IB for contract details at most once per contract per
session: concurrent callers for the same contract share one in-flight request, and
the answer (or IB's "unknown contract") is remembered. It uses only ib_async's
``*Async`` methods: the console runs under qasync, where the blocking twins break.

Prices are rounded with :class:`~decimal.Decimal` arithmetic on the shortest decimal
form of the float (``str(0.1) == "0.1"``), so ``round_to_tick(189.505, 0.01)`` is exactly
the float ``189.51`` and ticks like ``0.00005`` or ``0.25`` do not drift.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import re
from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal, Protocol

from ib_async import (
    Contract,
    ContractDescription,
    ContractDetails,
    Forex,
    Future,
    Option,
    RequestError,
    Stock,
)

from core.tasks import Tasks
from core.timeutils import Session, TradingSessions, exchange_zone

__all__ = [
    "NO_SECURITY_DEFINITION",
    "AmbiguousContract",
    "ContractCache",
    "ContractError",
    "ContractNotFound",
    "ContractService",
    "Session",
    "TradingSessions",
    "contract_key",
    "create_forex_contract",
    "create_future_contract",
    "create_option_contract",
    "create_stock_contract",
    "describe_contract",
    "exchange_zone",
    "format_price",
    "is_on_tick",
    "price_band",
    "round_to_tick",
    "tick_decimals",
]

log = logging.getLogger(__name__)

#: IB's error for a request that matches no contract.
NO_SECURITY_DEFINITION = 200

_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9 .\-/&]*$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_PAIR = re.compile(r"^([A-Z]{3})[./]?([A-Z]{3})$")
_DATE = re.compile(r"^\d{6}(\d{2})?$")


# --------------------------------------------------------------------------- constructors


def _symbol(value: str, name: str = "symbol") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: must not be empty")
    text = value.strip().upper()
    if not _SYMBOL.match(text):
        raise ValueError(f"{name}: {value!r} is not a valid symbol")
    return text


def _exchange(value: str, name: str = "exchange") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: must not be empty")
    return value.strip().upper()


def _currency(value: str, name: str = "currency") -> str:
    text = value.strip().upper() if isinstance(value, str) else ""
    if not _CURRENCY.match(text):
        raise ValueError(f"{name}: {value!r} is not a three-letter currency code")
    return text


def _contract_date(value: str, name: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not _DATE.match(text):
        raise ValueError(f"{name}: {value!r} is not a date YYYYMMDD or a month YYYYMM")
    fmt = "%Y%m%d" if len(text) == 8 else "%Y%m"
    try:
        datetime.strptime(text, fmt)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not a real date or month") from None
    return text


def _multiplier(value: str | int | float, name: str = "multiplier") -> str:
    text = str(value).strip()
    if not text:
        return ""
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{name}: {value!r} is not a number") from None
    if not number.is_finite() or number <= 0:
        raise ValueError(f"{name}: {value!r} must be positive")
    return text


def create_stock_contract(symbol: str, exchange: str = "SMART", currency: str = "USD") -> Stock:
    """A stock (or ETF) contract, e.g. ``create_stock_contract("AAPL")``.

    Raises
    ------
    ValueError
        For an empty or malformed symbol, an empty exchange or a bad currency code.
    """
    return Stock(_symbol(symbol), _exchange(exchange), _currency(currency))


def create_future_contract(
    symbol: str,
    last_trade_date_or_month: str,
    exchange: str,
    currency: str = "USD",
    multiplier: str = "",
) -> Future:
    """A futures contract, e.g. ``create_future_contract("ES", "202612", "CME")``.

    ``last_trade_date_or_month`` is ``YYYYMM`` (the contract month) or ``YYYYMMDD``
    (the last trading day). ``multiplier`` is only needed where a symbol trades with
    several (IB's string form, e.g. ``"50"``).
    """
    return Future(
        _symbol(symbol),
        _contract_date(last_trade_date_or_month, "last_trade_date_or_month"),
        _exchange(exchange),
        multiplier=_multiplier(multiplier),
        currency=_currency(currency),
    )


def create_forex_contract(pair: str = "EURUSD", exchange: str = "IDEALPRO") -> Forex:
    """A currency pair: ``"EURUSD"``, ``"EUR.USD"`` or ``"EUR/USD"`` (base, then quote)."""
    match = _PAIR.match(pair.strip().upper()) if isinstance(pair, str) else None
    if match is None:
        raise ValueError(f"pair: {pair!r} is not a currency pair like 'EURUSD' or 'EUR.USD'")
    base, quote = match.group(1), match.group(2)
    if base == quote:
        raise ValueError(f"pair: {pair!r} names the same currency twice")
    return Forex(symbol=base, currency=quote, exchange=_exchange(exchange))


def create_option_contract(
    symbol: str,
    expiry: str,
    strike: float,
    right: str,
    exchange: str = "SMART",
    currency: str = "USD",
    multiplier: str = "100",
) -> Option:
    """An option, e.g. ``create_option_contract("AAPL", "20261218", 190, "C")``.

    ``right`` is ``C``/``CALL`` or ``P``/``PUT`` in any case; ``expiry`` is ``YYYYMMDD``
    (or ``YYYYMM`` for the month's standard expiry).
    """
    problems_right = right.strip().upper() if isinstance(right, str) else ""
    rights = {"C": "C", "CALL": "C", "P": "P", "PUT": "P"}
    if problems_right not in rights:
        raise ValueError(f"right: {right!r} is not C, CALL, P or PUT")
    try:
        strike_value = float(strike)
    except (TypeError, ValueError):
        raise ValueError(f"strike: {strike!r} is not a number") from None
    if not math.isfinite(strike_value) or strike_value <= 0:
        raise ValueError(f"strike: {strike!r} must be a positive number")
    return Option(
        _symbol(symbol),
        _contract_date(expiry, "expiry"),
        strike_value,
        rights[problems_right],
        _exchange(exchange),
        multiplier=_multiplier(multiplier),
        currency=_currency(currency),
    )


def describe_contract(contract: Contract) -> str:
    """A short human name: ``AAPL``, ``ES 202612``, ``EUR.USD``, ``AAPL 20261218 190 C``."""
    sec = contract.secType
    if sec == "CASH":
        return f"{contract.symbol}.{contract.currency}"
    if sec in ("FUT", "CONTFUT"):
        if contract.localSymbol:
            return contract.localSymbol
        return f"{contract.symbol} {contract.lastTradeDateOrContractMonth}".strip()
    if sec in ("OPT", "FOP", "WAR"):
        strike = format_price(contract.strike) if contract.strike else ""
        parts = [contract.symbol, contract.lastTradeDateOrContractMonth, strike, contract.right]
        return " ".join(p for p in parts if p)
    return contract.symbol or contract.localSymbol or f"conId {contract.conId}"


# --------------------------------------------------------------------------- prices


def _dec(value: float | Decimal | int | str, name: str) -> Decimal:
    """``value`` as the Decimal of its shortest decimal form; ValueError if not finite."""
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name}: {value!r} is not a number") from None
    if not d.is_finite():
        raise ValueError(f"{name}: {value!r} is not a finite number")
    return d


def _tick(min_tick: float | Decimal) -> Decimal:
    tick = _dec(min_tick, "min_tick")
    if tick <= 0:
        raise ValueError(f"min_tick: {min_tick!r} must be positive")
    return tick


Direction = Literal["nearest", "up", "down"]
_ROUNDING = {"nearest": ROUND_HALF_UP, "up": ROUND_CEILING, "down": ROUND_FLOOR}


def round_to_tick(
    price: float | Decimal, min_tick: float | Decimal, direction: Direction = "nearest"
) -> float:
    """``price`` on the tick grid: to the nearest tick (halves away from zero), or up / down.

    Exact in decimal: the result is the float closest to a whole multiple of
    ``min_tick`` (``round_to_tick(1.23456, 0.00005) == 1.23455``).

    Raises
    ------
    ValueError
        For a non-finite price, a non-positive tick or an unknown direction.
    """
    if direction not in _ROUNDING:
        raise ValueError(f"direction: {direction!r} is not 'nearest', 'up' or 'down'")
    tick = _tick(min_tick)
    ticks = (_dec(price, "price") / tick).to_integral_value(rounding=_ROUNDING[direction])
    return float(ticks * tick)


def is_on_tick(price: float | Decimal, min_tick: float | Decimal) -> bool:
    """True when ``price`` is a whole multiple of ``min_tick``.

    A float that is off the grid only by binary noise (``100 * 1.1``) counts as on it:
    the tolerance is a billionth of a tick.
    """
    tick = _tick(min_tick)
    ticks = _dec(price, "price") / tick
    return abs(ticks - ticks.to_integral_value(rounding=ROUND_HALF_UP)) <= Decimal("1e-9")


def tick_decimals(min_tick: float | Decimal) -> int:
    """How many decimals a price on this tick needs (0.01 -> 2, 0.25 -> 2, 0.00005 -> 5)."""
    exponent = _tick(min_tick).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def format_price(price: float | Decimal, min_tick: float | Decimal | None = None) -> str:
    """A price for people: at least two decimals, as many as the tick (or the value) needs."""
    d = _dec(price, "price")
    decimals = tick_decimals(min_tick) if min_tick else 0
    exponent = d.normalize().as_tuple().exponent
    own = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    return f"{d:.{max(2, decimals, min(own, 10))}f}"


def price_band(reference: float, pct: float, min_tick: float | None = None) -> tuple[float, float]:
    """``(low, high)`` within ``pct`` percent of ``reference`` (5 means +/- 5 %).

    With ``min_tick`` the bounds are moved onto the grid *inside* the band (low up,
    high down), so every price between them on the tick is within the band.
    """
    ref = _dec(reference, "reference")
    pct_d = _dec(pct, "pct")
    if pct_d < 0:
        raise ValueError(f"pct: {pct!r} must not be negative")
    width = abs(ref) * pct_d / 100
    low, high = ref - width, ref + width
    if min_tick is None:
        return float(low), float(high)
    tick = _tick(min_tick)
    low_t = (low / tick).to_integral_value(rounding=ROUND_CEILING) * tick
    high_t = (high / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
    return float(low_t), float(high_t)


# --------------------------------------------------------------------------- lookup


class ContractError(Exception):
    """A contract could not be looked up."""


class ContractNotFound(ContractError, LookupError):
    """IB knows no contract matching the request."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        super().__init__(
            f"unknown contract {describe_contract(contract)!r} "
            f"({contract.secType or 'any type'}, {contract.exchange or 'any exchange'}, "
            f"{contract.currency or 'any currency'}): IB has no definition for it"
        )


class AmbiguousContract(ContractError):
    """The request matches several contracts; ``candidates`` lists their details."""

    def __init__(self, contract: Contract, candidates: list[ContractDetails]) -> None:
        self.contract = contract
        self.candidates = candidates
        shown = ", ".join(
            f"{describe_contract(d.contract)} {d.contract.secType} "
            f"{d.contract.primaryExchange or d.contract.exchange} {d.contract.currency} "
            f"(conId {d.contract.conId})"
            for d in candidates[:5]
            if d.contract is not None
        )
        more = f" and {len(candidates) - 5} more" if len(candidates) > 5 else ""
        super().__init__(
            f"contract {describe_contract(contract)!r} is ambiguous: it matches {shown}{more}; "
            "give the exchange, currency or primary exchange"
        )


class _IBLike(Protocol):
    def reqContractDetailsAsync(self, contract: Contract) -> Awaitable[list[ContractDetails]]: ...

    def reqMatchingSymbolsAsync(
        self, pattern: str
    ) -> Awaitable[list[ContractDescription] | None]: ...


_KEY_FIELDS = (
    "secType",
    "symbol",
    "lastTradeDateOrContractMonth",
    "strike",
    "right",
    "multiplier",
    "exchange",
    "primaryExchange",
    "currency",
    "localSymbol",
    "tradingClass",
    "includeExpired",
    "secIdType",
    "secId",
)


def contract_key(contract: Contract) -> Hashable:
    """The cache key of a request: its conId and exchange if it has one, else its fields."""
    if contract.conId:
        return ("conId", contract.conId, contract.exchange or "")
    return tuple(getattr(contract, f) for f in _KEY_FIELDS)


class ContractService:
    """Contract details and qualification for one IB session, each asked for once.

    ``qualify`` and ``details`` share a cache keyed by the request
    (:func:`contract_key`); results are also indexed by conId, so a later request by
    conId is answered from the cache. Concurrent callers for one contract await the
    same request. "Unknown contract" answers are cached too (IB's answer does not
    change within a session); timeouts and connection errors are not, so a retry asks
    again. :meth:`clear` forgets everything (e.g. after a reconnect to another gateway).
    """

    def __init__(self, ib: _IBLike, *, timeout: float = 10.0) -> None:
        self.ib = ib
        self.timeout = timeout
        self._results: dict[Hashable, ContractDetails | ContractNotFound | AmbiguousContract] = {}
        self._pending: dict[Hashable, asyncio.Future[ContractDetails]] = {}
        self._tasks = Tasks("contracts")
        #: How many contract-details requests went to IB (for tests and diagnostics).
        self.requests_sent = 0

    # ---- public API

    async def details(self, contract: Contract) -> ContractDetails:
        """The contract's details (one match), from the cache or from IB.

        Raises
        ------
        ContractNotFound
            IB knows no such contract.
        AmbiguousContract
            Several contracts match; the error lists them.
        ContractError
            IB did not answer within ``timeout`` seconds.
        """
        key = contract_key(contract)
        cached = self._results.get(key)
        if isinstance(cached, ContractDetails):
            return cached
        if cached is not None:
            raise cached.with_traceback(None)
        pending = self._pending.get(key)
        if pending is None:
            # awaited: its failure (no such contract, ambiguous) is the callers' answer
            pending = self._tasks.spawn(self._fetch(key, contract), "details", awaited=True)
            self._pending[key] = pending
            pending.add_done_callback(functools.partial(self._request_done, key))
        # shield: one caller giving up must not cancel the request for the others.
        return await asyncio.shield(pending)

    async def qualify(self, contract: Contract) -> Contract:
        """A qualified copy of ``contract`` (conId and every field filled in by IB).

        The argument is not modified. As ``ib_async`` does, a ``SMART`` request stays
        ``SMART``-routed rather than taking the listing exchange IB reports.
        """
        details = await self.details(contract)
        assert details.contract is not None
        qualified = Contract.recreate(details.contract)
        if contract.exchange == "SMART":
            qualified.exchange = "SMART"
        return qualified

    async def search(self, pattern: str) -> list[ContractDescription]:
        """Contracts whose symbol or name matches ``pattern`` (IB's symbol search).

        Not cached: the search box asks as the user types. IB's timeout gives ``[]``.
        """
        if not pattern.strip():
            raise ValueError("pattern: must not be empty")
        found = await self.ib.reqMatchingSymbolsAsync(pattern.strip())
        return list(found or [])

    def cached(self, contract: Contract) -> ContractDetails | None:
        """The details if already known, without asking IB (for synchronous callers)."""
        result = self._results.get(contract_key(contract))
        return result if isinstance(result, ContractDetails) else None

    def by_con_id(self, con_id: int) -> ContractDetails | None:
        """Known details of a conId, whichever request found them."""
        for key, result in self._results.items():
            if (
                isinstance(result, ContractDetails)
                and isinstance(key, tuple)
                and key[:2] == ("conId", con_id)
            ):
                return result
        return None

    def min_tick(self, con_id: int) -> float | None:
        """The known minimum price increment of a conId (None until its details are
        known): what a price column needs, without handing out IB's details object."""
        details = self.by_con_id(con_id)
        return float(details.minTick) if details is not None and details.minTick else None

    def forget(self, contract: Contract) -> None:
        """Drop one contract's cached answer (the next request asks IB again)."""
        self._results.pop(contract_key(contract), None)

    def clear(self) -> None:
        """Drop every cached answer."""
        self._results.clear()

    def __len__(self) -> int:
        """How many distinct contracts are known."""
        return len(
            {
                r.contract.conId
                for r in self._results.values()
                if isinstance(r, ContractDetails) and r.contract is not None
            }
        )

    # ---- internals

    def _request_done(self, key: Hashable, future: asyncio.Future[ContractDetails]) -> None:
        self._pending.pop(key, None)
        if not future.cancelled():
            future.exception()  # retrieved: callers that gave up must not leave it unread

    async def _fetch(self, key: Hashable, contract: Contract) -> ContractDetails:
        self.requests_sent += 1
        log.debug("contract details request for %s", describe_contract(contract))
        try:
            found = await asyncio.wait_for(
                _as_awaitable(self.ib.reqContractDetailsAsync, contract), self.timeout
            )
        except TimeoutError:
            raise ContractError(
                f"no answer from IB within {self.timeout:g} s for contract "
                f"{describe_contract(contract)!r}"
            ) from None
        except RequestError as exc:
            if exc.code != NO_SECURITY_DEFINITION:
                raise ContractError(
                    f"IB refused the details of {describe_contract(contract)!r}: "
                    f"error {exc.code}: {exc.message}"
                ) from exc
            found = []
        matches = [d for d in found or [] if d.contract is not None]
        if contract.secType and len(matches) > 1:
            # IB may add other security types to a request that named one.
            same = [d for d in matches if d.contract and d.contract.secType == contract.secType]
            matches = same or matches
        if not matches:
            error = ContractNotFound(contract)
            self._results[key] = error
            raise error
        if len(matches) > 1:
            ambiguous = AmbiguousContract(contract, matches)
            self._results[key] = ambiguous
            # Each is IB's answer for its conId (the ticket picks ES's front month from
            # them): an order on it finds its details.
            for d in matches:
                assert d.contract is not None
                self._results.setdefault(("conId", d.contract.conId, d.contract.exchange), d)
            raise ambiguous
        details = matches[0]
        assert details.contract is not None
        self._results[key] = details
        # Index by conId too, under both the requested and the listing exchange.
        con_id = details.contract.conId
        self._results.setdefault(("conId", con_id, contract.exchange or ""), details)
        self._results.setdefault(("conId", con_id, details.contract.exchange or ""), details)
        return details


async def _as_awaitable(
    request: Callable[[Contract], Awaitable[list[ContractDetails]]], contract: Contract
) -> list[ContractDetails]:
    return await request(contract)


#: The name the design notes use for the same object.
ContractCache = ContractService
