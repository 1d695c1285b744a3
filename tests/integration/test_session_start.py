"""ConsoleSession.prepare/start: a session is returned whole, or everything it started
is stopped again and the error raised (nothing left listening, nothing left open)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import core.session as session_module
from core.portfolio import PortfolioManager
from core.session import ConsoleSession, SessionOptions
from core.sim import SimGateway

pytestmark = pytest.mark.asyncio

PARTS = (
    "connection",
    "audit",
    "strategies",
    "trades",
    "contracts",
    "market",
    "account",
    "order_entry",
    "portfolio",
    "risk",
    "emergency",
)


@pytest.fixture
def gateways(monkeypatch: pytest.MonkeyPatch) -> list[SimGateway]:
    """The embedded gateways sessions start (seen from outside: the session keeps its own)."""
    started: list[SimGateway] = []
    start = session_module._start_gateway

    async def recorded(opts: SessionOptions) -> SimGateway:
        gateway = await start(opts)
        started.append(gateway)
        return gateway

    monkeypatch.setattr(session_module, "_start_gateway", recorded)
    return started


async def refuses(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


async def test_a_prepared_session_has_every_part_and_knows_its_state_before_connecting(
    tmp_path: Path, gateways: list[SimGateway]
) -> None:
    options = SessionOptions(sim_state_file=tmp_path / "sim.json")
    session = await ConsoleSession.prepare(options, store_uri=f"lmdb://{tmp_path / 'arctic'}")
    try:
        assert [p for p in PARTS if getattr(session, p) is None] == []
        assert session.embedded and session.store is not None
        assert not session.connection.is_connected  # prepared, not connected
        assert [e.scope for e in session.trading_state_events()] == ["account"]
    finally:
        await session.stop()
    assert await refuses(gateways[0].port)


async def test_a_session_whose_restore_fails_stops_the_gateway_and_closes_the_store(
    tmp_path: Path, gateways: list[SimGateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: Any) -> int:
        raise RuntimeError("journal unreadable")

    monkeypatch.setattr(PortfolioManager, "restore", broken)
    uri = f"lmdb://{tmp_path / 'arctic'}"
    options = SessionOptions(sim_state_file=tmp_path / "sim.json")

    with pytest.raises(RuntimeError, match="journal unreadable"):
        await ConsoleSession.prepare(options, store_uri=uri)

    [gateway] = gateways
    assert await refuses(gateway.port)  # the embedded gateway was stopped
    monkeypatch.undo()
    # the store was closed (its writer lease given back): the next start opens it
    again = await ConsoleSession.prepare(options, store_uri=uri)
    await again.stop()


async def test_a_first_connection_that_fails_stops_what_start_started(
    tmp_path: Path, gateways: list[SimGateway], ib_log_guard: Any
) -> None:
    ib_log_guard.expect(r"API connection failed")
    ib_log_guard.expect(r"Make sure API port")
    gateway = SimGateway("127.0.0.1", 0)
    await gateway.start()
    port = gateway.port
    await gateway.stop()  # a TWS port nobody listens on
    options = SessionOptions(port=port, connect_timeout=1.0)

    with pytest.raises(ConnectionError):
        await ConsoleSession.start(options, store_uri=f"lmdb://{tmp_path / 'arctic'}")

    # the store was closed (its writer lease given back): the next start opens it
    again = await ConsoleSession.prepare(options, store_uri=f"lmdb://{tmp_path / 'arctic'}")
    await again.stop()
    assert gateways == []  # a TWS session starts no embedded gateway
