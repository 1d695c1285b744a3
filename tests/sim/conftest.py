"""Fixtures for driving the simulated gateway with the real ib_async client.

``gateway`` is a started :class:`SimGateway` on an ephemeral port with a fixed seed and
no background walk (tests move prices with ``step_market``/``set_price``); ``ib`` is an
``ib_async.IB`` connected to it as client 1; ``sim`` offers factories for more gateways
and clients (all cleaned up after the test) and a ``settle`` helper.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from ib_async import IB

from core.sim import SimGateway
from helpers import settle

SEED = 1234
ACCOUNT = "DU0000001"


class SimTools:
    """Factories and waits for gateway tests; everything made here is closed afterwards."""

    account = ACCOUNT

    def __init__(self) -> None:
        self.gateways: list[SimGateway] = []
        self.clients: list[IB] = []

    async def gateway(self, **kw: Any) -> SimGateway:
        """Start another gateway (loopback, ephemeral port, seeded, no walk task)."""
        kw.setdefault("seed", SEED)
        kw.setdefault("tick_interval", 0)
        gw = SimGateway("127.0.0.1", kw.pop("port", 0), **kw)
        await gw.start()
        self.gateways.append(gw)
        return gw

    async def connect(self, gw: SimGateway, client_id: int = 1, **kw: Any) -> IB:
        """An ib_async client connected to ``gw``."""
        ib = IB()
        self.clients.append(ib)
        await ib.connectAsync("127.0.0.1", gw.port, clientId=client_id, timeout=5, **kw)
        return ib

    @staticmethod
    async def settle(ib: IB | None = None) -> None:
        """Let in-flight messages arrive: one reqCurrentTime round trip (see helpers.settle)."""
        await settle(ib)

    async def close(self) -> None:
        for ib in self.clients:
            ib.disconnect()
        for gw in self.gateways:
            await gw.stop()
        await asyncio.sleep(0)


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[SimTools]:
    tools = SimTools()
    try:
        yield tools
    finally:
        await tools.close()


@pytest_asyncio.fixture
async def gateway(sim: SimTools) -> SimGateway:
    """Overrides the suite-wide gateway: no background walk, so tests control prices."""
    return await sim.gateway()


@pytest_asyncio.fixture
async def ib(sim: SimTools, gateway: SimGateway) -> IB:
    return await sim.connect(gateway, 1)
