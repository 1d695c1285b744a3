"""The ArcticDB store on LMDB in a temporary directory.

These tests are a contract: ``tests/integration/test_store_s3.py`` runs every
``test_*`` function here again against a local S3 server (moto, in its own process) by
overriding the ``store_uri`` fixture.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from store_records import T0, make_fill, make_position

from core.config import redact_uri
from core.events import (
    AuditRecorded,
    FillRecorded,
    OrderUpdated,
    PnLChanged,
    StoreErrorOccurred,
)
from core.store import ACCOUNT_TOTAL, DailySummary, Store, StoreError
from core.store_journals import Journals
from helpers import wait_for


@pytest.fixture(autouse=True)
def fast_storage_lock() -> None:
    """ArcticDB waits ``StorageLock.WaitMs`` (1 s) the first time it compacts a new
    library's symbol list, to see whether another process contends for the lock. Every
    test starts with new libraries; one process, so no contention: wait 10 ms."""
    from arcticdb.config import set_config_int

    set_config_int("StorageLock.WaitMs", 10)


@pytest.fixture
def store_uri(tmp_path: Path) -> str:
    """An LMDB store in the test's temporary directory."""
    return f"lmdb://{tmp_path / 'arctic'}"


@pytest_asyncio.fixture
async def store(store_uri: str) -> AsyncIterator[Store]:
    s = Store(store_uri, flush_seconds=60)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.mark.asyncio
async def test_append_fills_when_replayed_then_written_once(store: Store) -> None:
    fills = [make_fill(i) for i in range(5)]

    first = await store.append_fills(fills)
    second = await store.append_fills([*fills, make_fill(5)])

    assert (first, second) == (5, 1)
    df = await store.fills()
    assert len(df) == 6
    assert df["exec_id"].is_unique


@pytest.mark.asyncio
async def test_append_fills_after_reopen_then_nothing_written_twice(store_uri: str) -> None:
    fills = [make_fill(i, commission=None if i % 2 else 1.25) for i in range(4)]
    async with Store(store_uri) as s:
        assert await s.append_fills(fills) == 4

    async with Store(store_uri) as s:
        again = await s.append_fills(fills)
        loaded = await s.load_fills()

    assert again == 0
    assert loaded == fills  # every field round-trips, None commission included


@pytest.mark.asyncio
async def test_append_fills_when_concurrent_then_grouped_and_counted_once(store: Store) -> None:
    fills = [make_fill(i) for i in range(20)]

    counts = await asyncio.gather(
        *[store.append_fills([f]) for f in fills], store.append_fills(fills[:5])
    )

    assert sum(counts) == 20
    assert len(await store.fills()) == 20


@pytest.mark.asyncio
async def test_append_fills_when_older_than_last_then_accepted(store: Store) -> None:
    # A replay after a reconnect brings an execution older than the journal's last row.
    await store.append_fills([make_fill(1, time=T0 + timedelta(hours=1))])

    assert await store.append_fills([make_fill(2, time=T0)]) == 1

    df = await store.fills()
    assert list(df["exec_id"]) == [make_fill(2).exec_id, make_fill(1).exec_id]


@pytest.mark.asyncio
async def test_fills_when_range_and_strategy_then_filtered(store: Store) -> None:
    day2 = T0 + timedelta(days=1)
    await store.append_fills(
        [
            make_fill(1, time=T0),
            make_fill(2, time=T0 + timedelta(minutes=5), strategy="beta"),
            make_fill(3, time=day2),
        ]
    )

    today = await store.fills(T0, T0 + timedelta(hours=1))
    beta = await store.fills(strategy="beta")
    tomorrow = await store.fills(day2 - timedelta(minutes=1), day2 + timedelta(minutes=1))

    assert len(today) == 2
    assert list(beta["order_id"]) == [2]
    assert list(tomorrow["order_id"]) == [3]
    assert str(today.index.tz) == "UTC"


@pytest.mark.asyncio
async def test_append_fills_when_disk_full_then_error_raised_fill_kept_and_retried(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    errors: list[StoreErrorOccurred] = []
    store.errorEvent += errors.append
    lib = store._lib("fills")
    real_append = lib.append
    monkeypatch.setattr(
        lib, "append", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "No space left on device"))
    )
    fill = make_fill(1)

    with pytest.raises(StoreError, match="No space left"):
        await store.append_fills([fill])
    assert store.pending_fills == 1
    assert errors and errors[0].operation == "append_fills" and errors[0].pending_fills == 1
    assert len(await store.fills()) == 0

    monkeypatch.setattr(lib, "append", real_append)
    # An unrelated call writes the pending fill first...
    assert await store.append_fills([make_fill(2)]) == 1
    assert store.pending_fills == 0
    # ...and the caller that got the error still sees its fill as new when it retries.
    assert await store.append_fills([fill]) == 1
    assert await store.append_fills([fill]) == 0
    assert len(await store.fills()) == 2


@pytest.mark.asyncio
async def test_io_when_called_then_runs_off_the_loop_thread(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    real = Journals.append

    def spy(self: Journals, *args: Any) -> None:
        threads.append(threading.current_thread().name)
        real(self, *args)

    monkeypatch.setattr(Journals, "append", spy)

    await store.append_fills([make_fill(1)])

    assert threads and all(t.startswith("store-write") for t in threads)
    assert threading.current_thread().name not in threads


@pytest.mark.asyncio
async def test_orders_and_audit_when_appended_then_read_back(store: Store) -> None:
    update = OrderUpdated(
        order_id=7,
        perm_id=77,
        client_id=1,
        strategy="alpha",
        account="DU0000001",
        con_id=265598,
        symbol="AAPL",
        sec_type="STK",
        action="BUY",
        quantity=100,
        order_type="LMT",
        limit_price=190.5,
        stop_price=None,
        tif="DAY",
        status="Submitted",
        filled=0,
        remaining=100,
        avg_fill_price=None,
        time=T0,
    )
    record = AuditRecorded("gui", "place", "BUY 100 AAPL LMT 190.50 DAY", "sent", 7, "alpha", T0)

    assert await store.append_orders([update]) == 1
    assert (
        await store.append_audit([record, AuditRecorded("risk", "halt", "x", "ok", time=T0)]) == 2
    )

    orders = await store.orders(strategy="alpha")
    audit = await store.audit(T0 - timedelta(seconds=1), T0 + timedelta(seconds=1))
    assert orders.iloc[0]["limit_price"] == 190.5
    assert orders.iloc[0]["status"] == "Submitted"
    assert list(audit["actor"]) == ["gui", "risk"]
    assert audit.iloc[0]["order_id"] == 7


@pytest.mark.asyncio
async def test_pnl_when_buffered_then_readable_and_flushed_in_ranges(store: Store) -> None:
    for i in range(120):
        t = T0 + timedelta(seconds=i)
        store.record_pnl(PnLChanged(None, float(i), 1.0, 2.0, t))
        store.record_pnl(PnLChanged("alpha", float(i), 0.5, 1.0, t))

    buffered = await store.pnl(strategy=ACCOUNT_TOTAL)
    await store.flush()
    minute = await store.pnl(T0 + timedelta(seconds=30), T0 + timedelta(seconds=89), ACCOUNT_TOTAL)
    alpha = await store.pnl(strategy="alpha")

    assert len(buffered) == 120
    assert len(minute) == 60
    assert minute["daily"].iloc[0] == 30.0
    assert (minute["total"] == 3.0).all()
    assert len(alpha) == 120


@pytest.mark.asyncio
async def test_pnl_when_flush_points_reached_then_written_in_background(store_uri: str) -> None:
    async with Store(store_uri, flush_points=10, flush_seconds=60) as s:
        for i in range(10):
            s.record_pnl(PnLChanged(None, float(i), 0.0, 0.0, T0 + timedelta(seconds=i)))
        await wait_for(lambda: not s._series.pnl_buffer, what="the background write")
        assert len(await s.pnl()) == 10


@pytest.mark.asyncio
async def test_positions_at_when_days_pass_then_open_positions_carried(store: Store) -> None:
    day2 = T0 + timedelta(days=1)
    store.record_positions(
        [
            make_position("alpha", 1, 100, T0),
            make_position("beta", 2, -50, T0 + timedelta(minutes=1)),
            make_position("alpha", 1, 0, T0 + timedelta(minutes=2)),
            make_position("alpha", 1, 30, T0 + timedelta(minutes=3)),
        ]
    )
    await store.flush()
    store.record_positions([make_position("beta", 2, -20, day2)])
    await store.flush()

    before = await store.positions_at(T0 - timedelta(seconds=1))
    at_1 = await store.positions_at(T0 + timedelta(minutes=1))
    at_2 = await store.positions_at(T0 + timedelta(minutes=2, seconds=30))
    night = await store.positions_at(day2 - timedelta(hours=1))
    after = await store.positions_at(day2 + timedelta(hours=1))

    def qty(df: Any) -> dict[tuple[str, int], float]:
        return {(r.strategy, r.con_id): r.quantity for r in df.itertuples()}

    assert qty(before) == {}
    assert qty(at_1) == {("alpha", 1): 100, ("beta", 2): -50}
    assert qty(at_2) == {("beta", 2): -50}
    assert qty(night) == {("alpha", 1): 30, ("beta", 2): -50}
    assert qty(after) == {("alpha", 1): 30, ("beta", 2): -20}


@pytest.mark.asyncio
async def test_state_when_saved_then_survives_reopen(store_uri: str) -> None:
    async with Store(store_uri) as s:
        assert await s.load_state("risk/trading_state", "ACTIVE") == "ACTIVE"
        await s.save_state("risk/trading_state", {"account": "HALTED", "reason": "drawdown"})

    async with Store(store_uri) as s:
        value = await s.load_state("risk/trading_state")

    assert value == {"account": "HALTED", "reason": "drawdown"}


@pytest.mark.asyncio
async def test_daily_when_saved_twice_then_day_replaced(store: Store) -> None:
    d1, d2 = date(2024, 5, 1), date(2024, 5, 2)
    await store.save_daily(
        [DailySummary(d1, "alpha", 10, 0, 10, 1, 2), DailySummary(d1, "*", 10, 0, 10, 1, 2)]
    )
    await store.save_daily([DailySummary(d2, "alpha", 5, 1, 6, 1, 1)])
    await store.save_daily([DailySummary(d1, "alpha", 12, 0, 12, 1, 3)])

    df = await store.daily()
    first = await store.daily(d1, d1)

    assert len(df) == 2
    assert list(first["realized"]) == [12.0]
    assert list(first["fills"]) == [3]


def test_redact_uri_when_credentials_then_hidden() -> None:
    uri = "s3://minio.local:bucket?port=9000&access=AKIAXYZ&secret=s3cr3t/Key&region=eu"

    redacted = redact_uri(uri)
    store = Store(uri)

    assert "s3cr3t" not in redacted and "AKIAXYZ" not in redacted
    assert "port=9000" in redacted and "region=eu" in redacted
    assert "s3cr3t" not in repr(store) and "s3cr3t" not in store.uri
    error = store._health.failure("open", RuntimeError(f"cannot reach {uri}"))
    assert "s3cr3t" not in str(error)


def test_store_when_uri_has_user_and_password_then_neither_repr_nor_errors_show_it() -> None:
    # The store's own redaction used to leave ``user:password@`` visible.
    uri = "s3s://trader:hunter2@minio.local:bucket?port=9000"
    store = Store(uri)

    error = store._health.failure("open", RuntimeError(f"cannot reach {uri}; password hunter2"))

    assert "hunter2" not in repr(store) and "hunter2" not in store.uri
    assert store.uri == "s3s://trader:***@minio.local:bucket?port=9000"
    assert "hunter2" not in str(error)


@pytest.mark.asyncio
async def test_append_fills_when_commission_comes_later_then_kept_and_not_counted_new(
    store_uri: str,
) -> None:
    first, later = make_fill(1, commission=None), make_fill(1, commission=1.5)
    async with Store(store_uri) as store:
        counts = [
            await store.append_fills([first, make_fill(2, commission=None)]),
            await store.append_fills([later]),  # the commission report, late
            await store.append_fills([later, first]),  # replays write nothing more
        ]
        loaded = {f.exec_id: f.commission for f in await store.load_fills()}
    assert counts == [2, 0, 0]
    assert loaded == {first.exec_id: 1.5, make_fill(2).exec_id: None}

    async with Store(store_uri) as store:  # what lacks a commission is known after reopen
        assert await store.append_fills([make_fill(2, commission=0.5), later]) == 0
        loaded = {f.exec_id: f.commission for f in await store.load_fills()}
        raw = await store._threads.read(
            "raw", store._journals.read, "fills", None, None, FillRecorded
        )
    assert loaded == {first.exec_id: 1.5, make_fill(2).exec_id: 0.5}
    assert len(raw) == 4  # two executions, each written twice: never a third time
