"""Client-id registry and status wording (no socket)."""

from __future__ import annotations

from core.connection import ClientIdRegistry, ConnectionState, ConnectionStatusChanged


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
