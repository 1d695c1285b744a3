"""Store and portfolio figures: run with ``python benchmarks/bench_store.py`` (``make bench``).

* fill-to-durable latency of the fills journal (one ``append_fills`` per fill, awaited
  as the TradeManager does), p50/p99 over 1,000 fills; and a burst of 1,000 concurrent
  calls (group commit);
* reading a day of 1-second P&L points (86,400), written as the console writes them
  (flushes of 1,000 points);
* rebuilding positions from 100,000 fills: reading them from the journal, and the
  PositionBook rebuild itself.

Everything runs on LMDB in a temporary directory.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.events import FillRecorded, PnLChanged
from core.portfolio import PositionBook
from core.store import Store

DAY = datetime(2024, 5, 1, tzinfo=UTC)


def make_fill(i: int, rng: random.Random, t: datetime) -> FillRecorded:
    con_id = 1000 + rng.randrange(50)
    return FillRecorded(
        exec_id=f"0000e1a2.{i:09d}.01.01",
        order_id=i,
        perm_id=i,
        client_id=1,
        strategy=f"strategy{rng.randrange(4)}",
        account="DU0000001",
        con_id=con_id,
        symbol=f"S{con_id}",
        sec_type="STK",
        currency="USD",
        exchange="SMART",
        side=rng.choice(("BOT", "SLD")),
        quantity=float(rng.randrange(1, 500)),
        price=round(100 + rng.uniform(-5, 5), 2),
        multiplier=1.0,
        commission=1.0,
        realized_pnl=None,
        order_ref="",
        time=t,
    )


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def bench_latency(root: Path) -> None:
    rng = random.Random(1)
    async with Store(f"lmdb://{root / 'latency'}") as store:
        now = datetime.now(UTC)
        latencies = []
        for i in range(1000):
            fill = make_fill(i, rng, now + timedelta(milliseconds=i))
            t = time.perf_counter()
            await store.append_fills([fill])
            latencies.append((time.perf_counter() - t) * 1000)
        print(
            f"fill-to-durable, sequential: p50 {pct(latencies, 50):.2f} ms, "
            f"p99 {pct(latencies, 99):.2f} ms, max {max(latencies):.2f} ms (1,000 fills)"
        )
        burst = [
            make_fill(10_000 + i, rng, now + timedelta(seconds=2, milliseconds=i))
            for i in range(1000)
        ]
        t = time.perf_counter()
        counts = await asyncio.gather(*[store.append_fills([f]) for f in burst])
        elapsed = (time.perf_counter() - t) * 1000
        assert sum(counts) == 1000
        print(
            f"fill-to-durable, 1,000 concurrent: all durable after {elapsed:.1f} ms (group commit)"
        )
        t = time.perf_counter()
        replay = await store.append_fills(burst)
        replay_ms = (time.perf_counter() - t) * 1000
        print(f"replaying 1,000 journalled fills: {replay} written, {replay_ms:.1f} ms")


async def bench_pnl_day(root: Path) -> None:
    async with Store(f"lmdb://{root / 'pnl'}", flush_points=1000, flush_seconds=3600) as store:
        t = time.perf_counter()
        for s in range(86_400):
            store.record_pnl(
                PnLChanged(None, s * 0.01, s * 0.005, s * 0.005, DAY + timedelta(seconds=s))
            )
            if (s + 1) % 1000 == 0:
                await store.flush()
        await store.flush()
        write = time.perf_counter() - t
        reads = []
        for _ in range(5):
            t = time.perf_counter()
            df = await store.pnl(DAY, DAY + timedelta(days=1) - timedelta(microseconds=1))
            reads.append(time.perf_counter() - t)
        assert len(df) == 86_400, len(df)
        t = time.perf_counter()
        hour = await store.pnl(DAY + timedelta(hours=14), DAY + timedelta(hours=15))
        hour_s = time.perf_counter() - t
        print(
            f"P&L day of 1-second points (86,400 rows, 87 flushes): read median "
            f"{statistics.median(reads) * 1000:.1f} ms; one hour {hour_s * 1000:.1f} ms "
            f"({len(hour)} rows); writing it took {write:.2f} s"
        )


async def bench_rebuild(root: Path) -> None:
    rng = random.Random(2)
    n = 100_000
    fills = [
        make_fill(i, rng, DAY - timedelta(days=20) + timedelta(seconds=17 * i)) for i in range(n)
    ]
    async with Store(f"lmdb://{root / 'rebuild'}") as store:
        t = time.perf_counter()
        written = await store.append_fills(fills)
        write_s = time.perf_counter() - t
        assert written == n
    async with Store(f"lmdb://{root / 'rebuild'}") as store:
        t = time.perf_counter()
        loaded = await store.load_fills()
        load_s = time.perf_counter() - t
    assert len(loaded) == n
    t = time.perf_counter()
    book = PositionBook.rebuild(loaded, DAY)
    rebuild_s = time.perf_counter() - t
    t = time.perf_counter()
    incremental = PositionBook(DAY)
    for f in fills:
        incremental.apply(f)
    incr_s = time.perf_counter() - t
    print(
        f"rebuild from 100,000 fills ({len(book)} positions): journal read {load_s:.2f} s "
        f"+ PositionBook.rebuild {rebuild_s:.2f} s; incremental apply {incr_s:.2f} s "
        f"({incr_s / n * 1e6:.1f} us/fill); journalling them in one call took {write_s:.2f} s"
    )


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        root = Path(tmp)
        await bench_latency(root)
        await bench_pnl_day(root)
        await bench_rebuild(root)


if __name__ == "__main__":
    asyncio.run(main())
