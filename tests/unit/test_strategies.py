"""StrategyManager: queue, delivery by strategy and in order, permissions."""

from __future__ import annotations

import asyncio

import pytest
from ib_async import Order, Stock

from core.strategies import MessageQueue, Strategy, StrategyManager, StrategyPermissions
from helpers import wait_for


class Recorder(Strategy):
    def __init__(self, name: str, permissions: StrategyPermissions | None = None) -> None:
        super().__init__(name, permissions)
        self.seen: list[tuple[str, int]] = []

    def on_message(self, message):
        self.seen.append((message["type"], message["n"]))
        super().on_message(message)


def test_message_queue_put_does_not_block_and_keeps_order():
    q = MessageQueue()
    for i in range(3):
        q.put({"n": i})
    assert q.qsize() == 3
    assert [q.get_nowait()["n"] for _ in range(3)] == [0, 1, 2]
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()


@pytest.mark.asyncio
async def test_each_strategy_receives_only_its_own_messages_in_order():
    sm = StrategyManager()
    a, b = Recorder("a"), Recorder("b")
    sm.register(a)
    sm.register(b)
    await sm.start()
    for n in range(5):
        sm.message_queue.put({"type": "status", "strategy": "a" if n % 2 else "b", "n": n})
    sm.message_queue.put({"type": "fill", "strategy": "manual", "n": 99})
    await wait_for(lambda: sm.unrouted, what="the last message handled")
    await sm.stop()

    assert a.seen == [("status", 1), ("status", 3)]
    assert b.seen == [("status", 0), ("status", 2), ("status", 4)]
    assert [m["n"] for m in sm.unrouted] == [99]


@pytest.mark.asyncio
async def test_failing_strategy_does_not_stop_delivery_to_others():
    class Broken(Strategy):
        def on_message(self, message):
            raise RuntimeError("boom")

    sm = StrategyManager()
    good = Recorder("good")
    sm.register(Broken("broken"))
    sm.register(good)
    sm.message_queue.put({"type": "fill", "strategy": "broken", "n": 1})
    sm.message_queue.put({"type": "fill", "strategy": "good", "n": 2})

    assert sm.drain() == 2
    assert good.seen == [("fill", 2)]


def test_permissions_list_every_problem():
    perms = StrategyPermissions(frozenset({"AAPL"}), frozenset({"FUT"}), max_order_quantity=100)
    order = Order(action="BUY", totalQuantity=500, orderType="MKT")

    problems = perms.problems(Stock("MSFT", "SMART", "USD"), order)

    assert len(problems) == 3
    assert "MSFT is not among the allowed symbols (AAPL)" in problems[0]
    assert "security type STK is not allowed" in problems[1]
    assert "quantity 500 is above" in problems[2]


def test_manual_orders_are_not_restricted_by_strategy_permissions():
    sm = StrategyManager()
    order = Order(action="BUY", totalQuantity=10**6, orderType="MKT")
    assert sm.check_permissions("manual", Stock("XYZ"), order) == []


def test_duplicate_and_reserved_names_refused():
    sm = StrategyManager()
    sm.register(Recorder("x"))
    with pytest.raises(ValueError, match="already registered"):
        sm.register(Recorder("x"))
    with pytest.raises(ValueError, match="reserved"):
        Strategy("external")
