"""RiskManager.check() latency with 1,000 positions, and emergency-stop time.

Prints figures; it asserts nothing.

* ``check``: microseconds per pre-trade check (p50 / p99 / mean) with 1,000 positions in
  the account and in one strategy, every limit set, for an opening order that passes,
  one refused by several limits, a reducing one, and one in JPY (converted to the base
  currency with IB's rate); through ``RiskManager.check`` (what
  the TradeManager calls: the check plus counting the order as sent) and, for the first,
  the pure ``core.pretrade.check`` alone.
* ``stop``: seconds from the emergency-stop call to the simulated gateway confirming it
  is flat and order-free, for 10 / 50 / 200 working orders over 10 symbols with 10 open
  positions (in-process gateway on loopback, real ib_async client).

    .venv/bin/python benchmarks/bench_risk.py [--checks 20000] [--no-stop]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ib_async import Contract, Order  # noqa: E402

from core.events import PositionChanged, now_utc  # noqa: E402
from core.pretrade import check as pure_check  # noqa: E402
from core.risk import RiskLimits, RiskManager, RiskPolicy  # noqa: E402
from core.trading import OrderIntent  # noqa: E402

N_POSITIONS = 1000


class SteppingClock:
    """Advances 0.1 s per reading, so the order-rate windows never fill up."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.1
        return self.t


def loaded_manager() -> RiskManager:
    limits = RiskLimits(
        max_order_quantity=10_000,
        max_order_notional=5_000_000,
        max_position_quantity=100_000,
        max_position_notional=50_000_000,
        max_gross_exposure=1e12,
        max_net_exposure=1e12,
        max_working_orders=10_000,
        max_orders_per_second=1000,
        daily_loss_limit=1e9,
        max_drawdown=1e9,
        fat_finger_pct=10,
    )
    risk = RiskManager(
        limits, {"momo": limits}, clock=SteppingClock(), policy=RiskPolicy(utilization_step=1)
    )
    for i in range(N_POSITIONS):
        con_id = 1000 + i
        sym = f"S{i:04d}"
        risk.on_quote(con_id, bid=99.99, ask=100.01, last=100.0, symbol=sym)
        risk.on_account_position(con_id, 100 + i, symbol=sym)
        risk.on_strategy_position(
            PositionChanged(
                strategy="momo",
                account="DU1",
                con_id=con_id,
                symbol=sym,
                sec_type="STK",
                currency="USD",
                multiplier=1.0,
                quantity=100 + i,
                avg_cost=100.0,
                last=100.0,
                market_value=None,
                unrealized_pnl=None,
                realized_pnl=0.0,
                daily_pnl=None,
                commissions=0.0,
            )
        )
    return risk


def time_checks(
    risk: RiskManager | Callable[[OrderIntent], object], intent: OrderIntent, n: int
) -> list[float]:
    check = risk.check if isinstance(risk, RiskManager) else risk
    out = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        check(intent)
        out.append((clock() - t0) / 1000)
    return out


def report(name: str, samples: list[float], decision: object) -> None:
    samples = sorted(samples)
    p50 = samples[len(samples) // 2]
    p99 = samples[int(len(samples) * 0.99)]
    print(
        f"  {name:<38} p50 {p50:6.1f} us   p99 {p99:6.1f} us   mean "
        f"{statistics.fmean(samples):6.1f} us   ({decision})"
    )


def bench_check(n: int) -> None:
    risk = loaded_manager()
    c = Contract(secType="STK", symbol="S0500", conId=1500, exchange="SMART", currency="USD")
    opening = OrderIntent(
        "momo", "momo", c, Order(action="BUY", totalQuantity=100, orderType="LMT", lmtPrice=100.5)
    )
    refused = OrderIntent(
        "momo", "momo", c, Order(action="BUY", totalQuantity=20_000, orderType="LMT", lmtPrice=150)
    )
    reducing = OrderIntent(
        "momo", "momo", c, Order(action="SELL", totalQuantity=100, orderType="MKT")
    )
    jpy = Contract(secType="STK", symbol="J7203", conId=7203, exchange="SMART", currency="JPY")
    risk.learn_contract(jpy)
    risk.on_quote(jpy.conId, bid=2999, ask=3001, last=3000.0, symbol="J7203")
    risk.on_exchange_rate("JPY", 1 / 150)
    in_jpy = OrderIntent(
        "momo", "momo", jpy, Order(action="BUY", totalQuantity=100, orderType="LMT", lmtPrice=3001)
    )
    print(f"check() with {N_POSITIONS} positions (account + strategy), every limit set:")
    for name, intent in (
        ("opening order, approved", opening),
        ("opening order, refused by 4 limits", refused),
        ("reducing order, approved", reducing),
        ("opening order in JPY, approved", in_jpy),
    ):
        time_checks(risk, intent, 1000)  # warm up
        decision = risk.check(intent)
        label = "approved" if decision.approved else f"{len(decision.reasons)} reasons"
        report(name, time_checks(risk, intent, n), label)

    def pure(intent: OrderIntent) -> object:
        return pure_check(
            risk.book, risk.limit_set, risk.state_machine, intent, now=0.0, wall=now_utc
        )

    time_checks(pure, opening, 1000)
    report("pure check(), opening order", time_checks(pure, opening, n), "approved")


async def until(predicate: Callable[[], object], step: float = 0.02) -> None:
    """Poll ``predicate`` on the loop (the gateway's state has no events to await)."""
    while not predicate():  # noqa: ASYNC110
        await asyncio.sleep(step)


async def bench_stop(order_counts: tuple[int, ...]) -> None:
    """Time the stop for each number of working orders."""
    symbols = ("AAPL", "MSFT", "AMZN", "GOOGL", "META", "NVDA", "TSLA", "NFLX", "INTC", "AMD")
    print("emergency stop, call -> gateway flat and order-free (10 positions):")
    for n_orders in order_counts:
        await stop_once(n_orders, symbols)


async def stop_once(n_orders: int, symbols: tuple[str, ...]) -> None:
    """Build 10 positions and ``n_orders`` working orders, then time one stop."""
    from core.connection import ClientIdRegistry, Connection, ReconnectPolicy
    from core.contracts import create_stock_contract
    from core.orders import create_limit_order, create_market_order
    from core.session import emergency_stop_for
    from core.sim import SimGateway
    from core.strategies import StrategyManager
    from core.trading import TradeManager

    gw = SimGateway("127.0.0.1", 0, seed=1, tick_interval=0.05)
    await gw.start()
    conn = Connection(
        "127.0.0.1",
        gw.port,
        1,
        timeout=5,
        policy=ReconnectPolicy(),
        registry=ClientIdRegistry(),
    )
    tm = TradeManager(conn.ib, StrategyManager(), connection=conn)
    await conn.connect()
    try:
        # as a strategy does: its instruments qualified once, before it trades
        contracts = {sym: await tm.qualify(create_stock_contract(sym)) for sym in symbols}
        fills = [
            tm.place_order(
                contracts[sym],
                create_market_order("BUY" if i % 2 == 0 else "SELL", 10 + i),
                "book",
            )
            for i, sym in enumerate(symbols)
        ]
        await until(lambda: all(t.orderStatus.status == "Filled" for t in fills))
        for i in range(n_orders):
            sym = symbols[i % len(symbols)]
            inst = gw.universe.find(symbol=sym)[0]
            q = gw.market.quote(inst.con_id)
            buy = i % 2 == 0
            px = round(q.bid * 0.8 if buy else q.ask * 1.2, 2)
            tm.place_order(
                contracts[sym],
                create_limit_order("BUY" if buy else "SELL", 10, px),
                "book",
            )
        await until(lambda: len(gw.engine.open_orders()) >= n_orders)
        await until(lambda: len([p for p in conn.ib.positions() if p.position]) >= 10)
        risk = RiskManager()
        risk.attach_trade_manager(tm)
        risk.attach_ib(conn.ib)
        risk.attach_connection(conn, tm)
        stop = emergency_stop_for(
            risk,
            tm,
            conn,
        )
        # The set-up's own requests (orders, details) must not fill the pacing window
        # the stop then waits on: the figure is the stop's, from a quiet second.
        await until(lambda: tm.wire.waiting == 0)
        await asyncio.sleep(1.0)
        t0 = time.perf_counter()
        result = await stop.stop("benchmark")
        await until(
            lambda: (
                not gw.engine.open_orders()
                and all(abs(p.quantity) < 1e-9 for p in gw.engine.positions())
            ),
            0.005,
        )
        elapsed = time.perf_counter() - t0
        print(
            f"  {n_orders:>4} orders: {elapsed:6.2f} s  ({len(result.orders_cancelled)} "
            f"cancelled, {len(result.positions_closed)} flattening orders, "
            f"{result.rounds} rounds, ok={result.ok})"
        )
    finally:
        await tm.wait_journalled()
        await conn.disconnect()
        await gw.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=20_000)
    parser.add_argument("--no-stop", action="store_true", help="skip the emergency-stop timing")
    args = parser.parse_args()
    bench_check(args.checks)
    if not args.no_stop:
        import logging

        logging.basicConfig(level=logging.CRITICAL)
        asyncio.run(bench_stop((10, 50, 200)))


if __name__ == "__main__":
    main()
