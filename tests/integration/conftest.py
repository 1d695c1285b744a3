"""A connected core (Connection + StrategyManager + TradeManager) on the simulated gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest_asyncio

from core.connection import ClientIdRegistry, Connection, ReconnectPolicy
from core.strategies import StrategyManager
from core.trading import TradeManager

#: Fast reconnection for tests: the gateway is on loopback.
FAST = ReconnectPolicy(
    initial_delay=0.05, max_delay=0.5, jitter=0.05, heartbeat_interval=0.5, heartbeat_timeout=1.0
)


@dataclass
class Core:
    gateway: Any
    connection: Connection
    strategies: StrategyManager
    trades: TradeManager
    messages: list[dict[str, Any]]


@pytest_asyncio.fixture
async def core(gateway: Any) -> AsyncIterator[Core]:
    """Connect as client 1 and record every message the strategies' queue receives."""
    conn = Connection(
        "127.0.0.1", gateway.port, 1, timeout=5, policy=FAST, registry=ClientIdRegistry()
    )
    sm = StrategyManager()
    tm = TradeManager(conn.ib, sm, connection=conn)
    messages: list[dict[str, Any]] = []
    put = sm.message_queue.put

    def record(message: Any) -> None:
        messages.append(dict(message))
        put(message)

    sm.message_queue.put = record  # type: ignore[method-assign]
    await conn.connect()
    try:
        yield Core(gateway, conn, sm, tm, messages)
    finally:
        await tm.wait_journalled()
        await conn.disconnect()
