"""A desk on one S3 store: run with ``python benchmarks/bench_store_s3.py`` (``make bench``).

Two writers (two processes, as two consoles) append fills to one bucket of a local S3
server (moto, in its own process: ``tests/moto_s3.py``), one ``append_fills`` per fill,
awaited as the TradeManager does, at about 10 fills a second each. Printed: fill to
durable (appended and read back) p50 / p99 / max per writer,

* with nothing else going on, and
* with the buffered series running: P&L points (5 series at 1 Hz, flushed every
  second), position snapshots and order updates (one per fill), as a console writes them.

moto answers slower than a real S3 endpoint on a fast link; compare the two lines with
each other rather than with a figure from AWS.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

FILLS_PER_WRITER = 120
RATE_HZ = 10.0


def _fill(writer: int, i: int) -> object:
    from core.events import FillRecorded

    return FillRecorded(
        exec_id=f"{writer:04x}e1a2.{i:08d}.01.01",
        order_id=i,
        perm_id=i,
        client_id=writer,
        strategy=f"s{writer}",
        account="DU0000001",
        con_id=265598,
        symbol="AAPL",
        sec_type="STK",
        currency="USD",
        exchange="SMART",
        side="BOT" if i % 2 else "SLD",
        quantity=10.0,
        price=190.0 + i / 100,
        multiplier=1.0,
        commission=1.0,
        realized_pnl=None,
        order_ref="",
        time=datetime.now(UTC),
    )


async def _write(uri: str, writer: int, series: bool, start_at: float) -> list[float]:
    from core.events import OrderUpdated, PnLChanged, PositionChanged
    from core.store import Store

    store = Store(uri, writer=f"bench-{writer}", flush_seconds=1.0)
    await store.open()
    await asyncio.sleep(max(0.0, start_at - time.time()))  # both writers start together
    stop = asyncio.Event()

    async def pnl() -> None:
        while not stop.is_set():
            now = datetime.now(UTC)
            for s in (None, "a", "b", "c", "d"):
                store.record_pnl(PnLChanged(s, 1.0, 0.5, 0.5, now))
            await asyncio.sleep(1.0)

    feeder = asyncio.ensure_future(pnl()) if series else None
    latencies = []
    orders: set[asyncio.Future[int]] = set()
    for i in range(FILLS_PER_WRITER):
        fill = _fill(writer, i)
        t = time.perf_counter()
        await store.append_fills([fill])  # type: ignore[list-item]
        latencies.append((time.perf_counter() - t) * 1000)
        if series:
            now = datetime.now(UTC)
            store.record_positions(
                [
                    PositionChanged(
                        f"s{writer}",
                        "DU0000001",
                        265598,
                        "AAPL",
                        "STK",
                        "USD",
                        1.0,
                        float(i),
                        190.0,
                        190.1,
                        19.0 * i,
                        1.0,
                        0.0,
                        1.0,
                        1.0,
                        now,
                    )
                ]
            )
            update = OrderUpdated(
                i,
                i,
                writer,
                f"s{writer}",
                "DU0000001",
                265598,
                "AAPL",
                "STK",
                "BUY",
                10,
                "MKT",
                None,
                None,
                "DAY",
                "Filled",
                10,
                0,
                190.0,
                time=now,
            )
            orders.add(asyncio.ensure_future(store.append_orders([update])))
        await asyncio.sleep(1 / RATE_HZ)
    stop.set()
    await asyncio.gather(*orders)
    if feeder is not None:
        await feeder
    await store.close()
    return latencies


def _writer_process(uri: str, writer: int, series: bool, start_at: float, out: mp.Queue) -> None:
    out.put((writer, asyncio.run(_write(uri, writer, series, start_at))))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run(uri: str, series: bool) -> dict[int, list[float]]:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()
    start_at = time.time() + 8.0  # after both have opened the store (imports, lease)
    procs = [
        ctx.Process(target=_writer_process, args=(uri, w, series, start_at, out)) for w in (1, 2)
    ]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=600) for _ in procs)
    for p in procs:
        p.join(30)
    return results


def main() -> None:
    try:
        from moto_s3 import MotoS3
    except ImportError:
        print("moto is not installed (pip install -e '.[test]'): S3 figures skipped")
        return
    server = MotoS3()
    try:
        for series in (False, True):
            uri = server.new_bucket()
            results = run(uri, series)
            label = "with buffered series" if series else "fills only"
            for writer, lat in sorted(results.items()):
                print(
                    f"S3 (moto), 2 writers, {label}: writer {writer} fill-to-durable "
                    f"p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms, "
                    f"max {max(lat):.1f} ms, mean {statistics.fmean(lat):.1f} ms "
                    f"({len(lat)} fills at {RATE_HZ:g}/s)"
                )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
