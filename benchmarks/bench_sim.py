"""Simulated gateway on loopback: order round trip and tick throughput, as seen by ib_async.

Prints figures; it asserts nothing. The gateway runs in its own process (as
``python -m core.sim``), so the client's loop measures only the client's work.

    .venv/bin/python benchmarks/bench_sim.py [--orders 1000] [--storm-seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ib_async import IB, MarketOrder, Stock

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def gateway_process(port: int, tick_interval: float):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core.sim",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--tick-interval",
            str(tick_interval),
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
    )
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            raise RuntimeError("the simulated gateway did not start")
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


async def order_round_trip(port: int, n: int) -> None:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=11, timeout=10)
    contract = Stock("AAPL", "SMART", "USD")
    await ib.qualifyContractsAsync(contract)
    latencies = []
    for i in range(n):
        done = asyncio.get_running_loop().create_future()
        order = MarketOrder("BUY" if i % 2 == 0 else "SELL", 1)
        t0 = time.perf_counter()
        trade = ib.placeOrder(contract, order)

        def on_status(t, done=done):
            if t.orderStatus.status == "Filled" and not done.done():
                done.set_result(time.perf_counter())

        trade.statusEvent += on_status
        if trade.orderStatus.status == "Filled":
            done.set_result(time.perf_counter())
        t1 = await asyncio.wait_for(done, 10)
        latencies.append((t1 - t0) * 1000)
    ib.disconnect()
    print(f"order round trip, placeOrder -> Filled, {n} market orders of 1 share:")
    print(
        f"  p50 {statistics.median(latencies):.2f} ms   p99 {pct(latencies, 99):.2f} ms   "
        f"max {max(latencies):.2f} ms"
    )


async def tick_storm(port: int, seconds: float) -> None:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=12, timeout=10)
    symbols = await ib.reqMatchingSymbolsAsync("")  # may be empty; fall back to a list
    names = [d.contract.symbol for d in symbols or [] if d.contract.secType == "STK"]
    names = names or ["AAPL", "MSFT", "AMZN", "GOOGL", "META", "NVDA", "TSLA", "JPM", "V", "JNJ"]
    contracts = [Stock(s, "SMART", "USD") for s in names]
    await ib.qualifyContractsAsync(*contracts)
    updates = 0

    def on_pending(tickers):
        nonlocal updates
        updates += len(tickers)

    ib.pendingTickersEvent += on_pending
    for c in contracts:
        ib.reqMktData(c)
    await asyncio.sleep(1.0)  # warm up
    stats0 = ib.client.connectionStats()
    u0, t0 = updates, time.perf_counter()
    await asyncio.sleep(seconds)
    stats1 = ib.client.connectionStats()
    dt = time.perf_counter() - t0
    msgs = stats1.numMsgRecv - stats0.numMsgRecv
    ib.disconnect()
    print(f"tick storm, {len(contracts)} subscriptions, gateway ticking as fast as it can:")
    print(
        f"  {msgs / dt:,.0f} messages/s consumed by one ib_async client, "
        f"{(updates - u0) / dt:,.0f} ticker updates/s"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=1000)
    ap.add_argument("--storm-seconds", type=float, default=5.0)
    args = ap.parse_args()
    port = free_port()
    with gateway_process(port, tick_interval=0.25):
        asyncio.run(order_round_trip(port, args.orders))
    port = free_port()
    with gateway_process(port, tick_interval=0.0005):
        asyncio.run(tick_storm(port, args.storm_seconds))


if __name__ == "__main__":
    main()
