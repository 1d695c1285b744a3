"""Client-id registry and status wording (no socket)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from core.connection import (
    ClientIdRegistry,
    Connection,
    ConnectionState,
    ConnectionStatusChanged,
    ReconnectPolicy,
)


def test_registry_gives_next_free_id_and_skips_foreign_ones():
    reg = ClientIdRegistry()
    assert reg.claim(1) == 1
    assert reg.claim(1) == 2
    reg.mark_foreign(3)
    assert reg.claim(1) == 4
    reg.release(1)
    assert reg.claim(1) == 1
    assert reg.in_use() == {1, 2, 4}


def test_reconnecting_status_says_attempt_and_next_try():
    s = ConnectionStatusChanged(
        ConnectionState.RECONNECTING,
        "127.0.0.1",
        4002,
        7,
        reason="refused",
        attempt=3,
        next_retry_in=1.25,
    )
    assert s.describe() == (
        "reconnecting, attempt 3 (127.0.0.1:4002 client 7), next try in 1.2s: refused"
    )


@pytest.mark.asyncio
async def test_retrying_runs_as_a_named_task_that_disconnect_ends() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conn = Connection("127.0.0.1", port, 901, timeout=0.5, policy=ReconnectPolicy(initial_delay=5))
    conn.keep_trying()
    names = {t.get_name() for t in asyncio.all_tasks()}
    assert "connection:reconnect" in names

    await conn.disconnect()

    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("connection:")]
    assert conn.state is ConnectionState.DISCONNECTED
