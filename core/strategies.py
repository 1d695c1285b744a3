"""StrategyManager: strategies, their permissions, and the message queue from the TradeManager.

The TradeManager puts one message per order event on ``message_queue`` in the seed's
shape (``{'type': 'order', 'strategy': name, 'trade': Trade}``, ``{'type': 'fill', ...,
'fill': Fill}``, plus ``'status'``, ``'cancel'`` and ``'error'``). The manager's consumer
task hands each message to the strategy it names, in order, and only to it.

Permissions (allowed symbols, allowed security types, maximum order size) are checked
by :meth:`StrategyManager.check_permissions`, which the TradeManager calls before an
order leaves the process.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ib_async import Contract, Order, Trade

from core.tasks import Tasks

log = logging.getLogger(__name__)


class OrderRouter(Protocol):
    """What a strategy sends its orders through: the TradeManager's commands.

    A Protocol rather than the class itself, so that strategies sit below trading (the
    TradeManager feeds their message queue) without importing it back.
    """

    def place_order(
        self, contract: Contract, order: Order, strategy_symbol: str, *, actor: str | None = None
    ) -> Trade: ...

    def place_bracket(
        self,
        contract: Contract,
        parent: Order,
        take_profit: Order,
        stop_loss: Order,
        strategy_symbol: str,
        *,
        actor: str | None = None,
    ) -> list[Trade]: ...

    def modify_order(
        self, trade: Trade, new_order: Order, *, actor: str | None = None
    ) -> Trade: ...

    def cancel_order(self, trade: Trade, *, actor: str | None = None) -> Trade | None: ...

    def cancel_all(self, *, actor: str = "gui", strategy: str | None = None) -> int: ...


Message = Mapping[str, Any]


class MessageQueue:
    """A FIFO that producers feed with a plain, non-blocking ``put(message)``.

    ``asyncio.Queue.put`` is a coroutine; the seed's code calls ``put`` without awaiting,
    so this queue's ``put`` is synchronous and never blocks (it is unbounded: order
    events are few, and dropping one is never acceptable).
    """

    def __init__(self) -> None:
        self._items: collections.deque[Message] = collections.deque()
        self._waiter: asyncio.Event | None = None

    def put(self, message: Message) -> None:
        """Append a message; wakes the consumer."""
        self._items.append(message)
        if self._waiter is not None:
            self._waiter.set()

    put_nowait = put

    async def get(self) -> Message:
        """Wait for and remove the oldest message."""
        while not self._items:
            if self._waiter is None:
                self._waiter = asyncio.Event()
            self._waiter.clear()
            await self._waiter.wait()
        return self._items.popleft()

    def get_nowait(self) -> Message:
        """Remove the oldest message; raises ``asyncio.QueueEmpty`` if there is none."""
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    def qsize(self) -> int:
        """How many messages wait."""
        return len(self._items)

    def empty(self) -> bool:
        """True when no message waits."""
        return not self._items


@dataclass(frozen=True, slots=True)
class StrategyPermissions:
    """What a strategy may trade; empty sets mean "anything"."""

    allowed_symbols: frozenset[str] = frozenset()
    allowed_sec_types: frozenset[str] = frozenset()
    max_order_quantity: float | None = None

    def problems(self, contract: Contract, order: Order) -> list[str]:
        """Every reason this strategy may not send ``order`` on ``contract``."""
        out = []
        symbol = (contract.symbol or "").upper()
        if self.allowed_symbols and symbol not in self.allowed_symbols:
            allowed = ", ".join(sorted(self.allowed_symbols))
            out.append(f"{symbol or '(no symbol)'} is not among the allowed symbols ({allowed})")
        sec_type = contract.secType or ""
        if self.allowed_sec_types and sec_type not in self.allowed_sec_types:
            allowed = ", ".join(sorted(self.allowed_sec_types))
            out.append(f"security type {sec_type or '(none)'} is not allowed ({allowed})")
        qty = float(order.totalQuantity or 0)
        if self.max_order_quantity is not None and qty > self.max_order_quantity:
            out.append(
                f"quantity {qty:g} is above the strategy's maximum order size "
                f"{self.max_order_quantity:g}"
            )
        return out


class Strategy:
    """Base class for strategies: override the ``on_*`` callbacks you need.

    A strategy places orders through ``self.trade_manager.place_order(contract, order,
    self.name)`` once the manager has started it. Callbacks run on the event loop:
    keep them short, schedule long work.
    """

    def __init__(self, name: str, permissions: StrategyPermissions | None = None) -> None:
        if not name or name in ("manual", "external"):
            raise ValueError(f"strategy name {name!r} is reserved or empty")
        self.name = name
        self.permissions = permissions or StrategyPermissions()
        self.trade_manager: OrderRouter | None = None
        self.running = False

    async def on_start(self) -> None:
        """Called once when the manager starts the strategy."""

    async def on_stop(self) -> None:
        """Called once when the manager stops the strategy (before the console exits)."""

    def on_message(self, message: Message) -> None:
        """Every message for this strategy; dispatches to the typed callbacks."""
        kind = message.get("type")
        handler = {
            "order": self.on_order,
            "status": self.on_status,
            "fill": self.on_fill,
            "cancel": self.on_cancel,
            "error": self.on_error,
        }.get(str(kind))
        if handler is not None:
            handler(message)

    def on_order(self, message: Message) -> None:
        """An order of this strategy was sent."""

    def on_status(self, message: Message) -> None:
        """An order's status changed."""

    def on_fill(self, message: Message) -> None:
        """An execution (already journalled) of one of this strategy's orders."""

    def on_cancel(self, message: Message) -> None:
        """An order was cancelled."""

    def on_error(self, message: Message) -> None:
        """IB refused or reported on an order: ``message['code']``, ``message['message']``."""


class StrategyManager:
    """Registers strategies, starts and stops them, and delivers their messages.

    ``StrategyManager()`` needs no arguments; ``message_queue.put(message)`` never blocks.
    Messages naming an unknown strategy (``manual``, ``external``) are consumed and kept
    in :attr:`unrouted` for inspection (bounded).
    """

    def __init__(self) -> None:
        self.message_queue = MessageQueue()
        self._strategies: dict[str, Strategy] = {}
        self._tasks = Tasks("strategies")
        self.unrouted: collections.deque[Message] = collections.deque(maxlen=1000)

    # -- registry ----------------------------------------------------------------------

    def register(self, strategy: Strategy) -> None:
        """Add a strategy; names are unique."""
        if strategy.name in self._strategies:
            raise ValueError(f"a strategy named {strategy.name!r} is already registered")
        self._strategies[strategy.name] = strategy

    def strategy(self, name: str) -> Strategy | None:
        """The registered strategy of that name."""
        return self._strategies.get(name)

    @property
    def names(self) -> list[str]:
        """Registered strategy names."""
        return list(self._strategies)

    def check_permissions(self, strategy_name: str, contract: Contract, order: Order) -> list[str]:
        """Reasons the strategy may not send this order (empty: allowed).

        Orders from the ticket (``manual``) and unregistered names are not restricted
        here; risk limits still apply to them.
        """
        strategy = self._strategies.get(strategy_name)
        if strategy is None:
            return []
        return strategy.permissions.problems(contract, order)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self, trade_manager: OrderRouter | None = None) -> None:
        """Start consuming the queue, then start every registered strategy."""
        self._tasks.ensure("queue", self._consume)
        for strategy in self._strategies.values():
            if trade_manager is not None:
                strategy.trade_manager = trade_manager
            if not strategy.running:
                await strategy.on_start()
                strategy.running = True
                log.info("strategy %s started", strategy.name)

    async def stop(self) -> None:
        """Stop every strategy, deliver what is queued, then stop consuming."""
        for strategy in self._strategies.values():
            if strategy.running:
                try:
                    await strategy.on_stop()
                finally:
                    strategy.running = False
                    log.info("strategy %s stopped", strategy.name)
        self.drain()
        await self._tasks.cancel_all()

    def drain(self) -> int:
        """Deliver every queued message now; returns how many."""
        n = 0
        while not self.message_queue.empty():
            self._deliver(self.message_queue.get_nowait())
            n += 1
        return n

    async def _consume(self) -> None:
        while True:
            message = await self.message_queue.get()
            self._deliver(message)

    def _deliver(self, message: Message) -> None:
        name = str(message.get("strategy", ""))
        strategy = self._strategies.get(name)
        if strategy is None:
            self.unrouted.append(message)
            return
        try:
            strategy.on_message(message)
        except Exception:
            # A failing strategy must not stop the others' messages.
            log.exception("strategy %s failed handling a %s message", name, message.get("type"))


class ExampleMeanReversion(Strategy):
    """A small example: buys ``quantity`` when the last price drops ``threshold`` below
    the session's first price, and sells it back when it recovers. For illustration only.
    """

    def __init__(self, symbol: str = "AAPL", quantity: int = 10, threshold: float = 0.01) -> None:
        super().__init__(
            f"meanrev_{symbol.lower()}",
            StrategyPermissions(frozenset({symbol.upper()}), frozenset({"STK"}), quantity * 2),
        )
        self.symbol = symbol.upper()
        self.quantity = quantity
        self.threshold = threshold
        self.reference: float | None = None
        self.position = 0.0
        self.fills: list[Message] = []

    def on_price(self, contract: Contract, last: float) -> None:
        """Feed a price; sends an order when the rule says so."""
        from core.orders import create_market_order

        if self.trade_manager is None or not self.running:
            return
        if self.reference is None:
            self.reference = last
            return
        if self.position == 0 and last < self.reference * (1 - self.threshold):
            self.trade_manager.place_order(
                contract, create_market_order("BUY", self.quantity), self.name
            )
            self.position = self.quantity  # optimistic; corrected by fills
        elif self.position > 0 and last >= self.reference:
            self.trade_manager.place_order(
                contract, create_market_order("SELL", self.position), self.name
            )
            self.position = 0

    def on_fill(self, message: Message) -> None:
        self.fills.append(message)
