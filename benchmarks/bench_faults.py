"""Fault soak: continuous trading by several strategies while the gateway drops, restarts,
plays IB's nightly reset, and the emergency stop runs under bursts of orders. Prints
what a trader must be able to take blindly; ``--check`` exits 1 when any of it is not
zero (the slow test runs that).

* fills lost / duplicated: executions at the gateway missing from the journal, or
  journalled as new more than once;
* orders lost, and how they were reported: written, not known to the gateway; each must
  have ended ``Lost`` (and nothing the gateway has may be reported lost);
* ids reused: an order id handed out twice by the console;
* non-flattening orders written while HALTED: ``placeOrder`` frames on the socket, while
  the account was HALTED, that were not the emergency stop's own;
* orders left pending: neither acknowledged nor ended when the run is over.

    .venv/bin/python benchmarks/bench_faults.py [--seconds 60] [--seed 7] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ib_async import Contract, Trade  # noqa: E402

from core.connection import ClientIdRegistry, Connection, ReconnectPolicy  # noqa: E402
from core.emergency import EmergencyStop  # noqa: E402
from core.events import LOST, NOT_SENT, FillRecorded, TradingState  # noqa: E402
from core.orders import create_limit_order, create_market_order  # noqa: E402
from core.risk import ACCOUNT, EMERGENCY_ACTOR, RESUME_CONFIRMATION, RiskManager  # noqa: E402
from core.session import emergency_stop_for  # noqa: E402
from core.sim import SimGateway  # noqa: E402
from core.strategies import StrategyManager  # noqa: E402
from core.trading import OrderRefused, TradeManager  # noqa: E402

SYMBOLS = ("AAPL", "MSFT", "AMZN", "NVDA", "META", "GOOGL")
STRATEGIES = ("alpha", "beta", "gamma")
FAST = ReconnectPolicy(
    initial_delay=0.05, max_delay=0.5, jitter=0.05, heartbeat_interval=1.0, heartbeat_timeout=2.0
)


class MemoryJournal:
    """The fills journal's contract: idempotent by exec id."""

    def __init__(self) -> None:
        self.rows: dict[str, FillRecorded] = {}

    async def append_fills(self, fills: Sequence[FillRecorded]) -> int:
        await asyncio.sleep(0)
        new = 0
        for f in fills:
            if f.exec_id not in self.rows:
                new += 1
            self.rows[f.exec_id] = f
        return new


class StateMemory:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def save_state(self, key: str, value: Any) -> None:
        self.data[key] = value

    async def load_state(self, key: str) -> Any:
        return self.data.get(key)


@dataclass
class Soak:
    gateway: SimGateway
    state: Path
    port: int
    conn: Connection
    trades: TradeManager
    risk: RiskManager
    stop: EmergencyStop
    journal: MemoryJournal
    placed: list[Trade] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    halted_frames: list[int] = field(default_factory=list)
    drops: int = 0
    restarts: int = 0
    nightly: int = 0
    stops: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    contracts: dict[str, Contract] = field(default_factory=dict)
    told: Counter[str] = field(default_factory=Counter)  # fills given to strategies


def tap(s: Soak) -> None:
    """Record every placeOrder frame written while the account is HALTED."""
    client = s.conn.ib.client

    def install() -> None:
        conn = client.conn
        if getattr(conn.sendMsg, "_tapped", False):
            return
        write = conn.sendMsg

        def tapped(data: bytes) -> None:
            fields = data[4:].split(b"\0", 2)
            if fields[0] == b"3" and s.risk.state_of(ACCOUNT) is TradingState.HALTED:
                s.halted_frames.append(int(fields[1]))
            write(data)

        tapped._tapped = True  # type: ignore[attr-defined]
        conn.sendMsg = tapped

    install()
    s.conn.connected += lambda _again: install()


def place(s: Soak, strategy: str, rng: random.Random) -> None:
    if not s.conn.is_connected or s.risk.state_of(ACCOUNT) is not TradingState.ACTIVE:
        return
    symbol = rng.choice(SYMBOLS)
    contract = s.contracts[symbol]
    side = rng.choice(("BUY", "SELL"))
    if rng.random() < 0.7:
        order = create_market_order(side, rng.randint(1, 5))
    else:
        inst = s.gateway.universe.find(symbol=symbol)[0]
        q = s.gateway.market.quote(inst.con_id)
        px = round(q.bid * 0.99 if side == "BUY" else q.ask * 1.01, 2)
        order = create_limit_order(side, rng.randint(1, 5), px)
    try:
        trade = s.trades.place_order(contract, order, strategy)
    except OrderRefused as refused:
        s.refusals[refused.reasons[0][:40]] += 1
        return
    s.placed.append(trade)
    s.ids.append(trade.order.orderId)


async def trader(s: Soak, strategy: str, until: float, seed: int) -> None:
    rng = random.Random(seed)
    while time.monotonic() < until:
        place(s, strategy, rng)
        if rng.random() < 0.1:
            working = [t for t in s.placed if not t.isDone() and t.order.orderRef == strategy]
            if working and s.conn.is_connected:
                try:
                    s.trades.cancel_order(rng.choice(working), actor=strategy)
                except OrderRefused as refused:
                    s.refusals[refused.reasons[0][:40]] += 1
        await asyncio.sleep(rng.uniform(0.1, 0.25))


async def place_written(s: Soak, rng: random.Random, timeout: float = 10.0) -> None:
    """Place orders until one goes straight onto the socket (the gateway has not read it
    yet): refused, paced or not ACTIVE yet, it tries again. A drop mid-order must always
    have an order to lose, whatever the machine's speed (on a slow one the pacing's second
    was often full, the order waited at the wire and the drop only un-sent it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if s.trades.wire.waiting or not s.conn.is_connected:
            await asyncio.sleep(0.01)
            continue
        before = len(s.placed)
        place(s, rng.choice(STRATEGIES), rng)
        if len(s.placed) > before and s.trades.wire.was_written(s.placed[-1].order.orderId):
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("no order could be written for the drop mid-order")


async def connected(s: Soak, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not (s.conn.is_connected and s.conn.state.value == "connected"):
        if time.monotonic() > deadline:
            raise RuntimeError("no reconnect")
        await asyncio.sleep(0.05)
    await s.trades.resync()


def pending_orders(s: Soak) -> list[Any]:
    """Placed orders neither acknowledged nor ended (yet)."""
    return [t for t in s.placed if t.orderStatus.status in ("PendingSubmit", "ApiPending")]


async def settled(s: Soak, timeout: float) -> None:
    """Wait until no placed order is pending, at most ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    changed = asyncio.Event()

    def on_update(_update: Any) -> None:
        changed.set()

    s.trades.orderUpdated += on_update
    try:
        await asyncio.sleep(0.5)  # the last bursts' answers, at the least
        while pending_orders(s) and (left := deadline - loop.time()) > 0:
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), left)
    finally:
        s.trades.orderUpdated -= on_update


async def faults(s: Soak, until: float, seed: int) -> None:
    rng = random.Random(seed)
    kinds = ["drop", "drop-mid-order", "restart", "nightly", "stop"]
    rng.shuffle(kinds)
    n = 0
    # every kind at least once, however slow the machine; then more while time is left
    while n < len(kinds) or time.monotonic() < until - 3:
        await asyncio.sleep(rng.uniform(1.5, 3.0))
        kind = kinds[n % len(kinds)]  # every kind, in a seeded order
        n += 1
        await connected(s)
        if kind == "drop":
            s.drops += 1
            await s.gateway.drop_connections()
        elif kind == "drop-mid-order":
            # an order written, and the gateway gone before it reads it
            s.drops += 1
            await place_written(s, rng)
            for session in list(s.gateway._sessions):
                session.abort()
        elif kind == "restart":
            s.restarts += 1
            await s.gateway.stop()
            await asyncio.sleep(rng.uniform(0.1, 0.6))
            s.gateway = SimGateway("127.0.0.1", s.port, state_path=s.state, tick_interval=0.05)
            await s.gateway.start()
        elif kind == "nightly":
            # TWS's nightly restart: dropped, refused, logged out of IB (1100), then
            # 1102 or 1101; the traders keep placing orders throughout
            s.nightly += 1
            await s.gateway.nightly_reset(
                down_for=rng.uniform(0.2, 0.8),
                relogin_for=rng.uniform(0.2, 0.8),
                data_lost=rng.random() < 0.5,
            )
        else:
            s.stops += 1
            for _ in range(25):  # a burst, most of it still waiting for the pacing
                place(s, rng.choice(STRATEGIES), rng)
            await s.stop.stop("soak: stop under a burst")
            await asyncio.sleep(0.3)
            s.risk.reset_halt("soak", RESUME_CONFIRMATION)


async def soak(seconds: float, seed: int) -> dict[str, int]:
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    state = tmp / "sim.json"
    gw = SimGateway("127.0.0.1", 0, state_path=state, tick_interval=0.05, seed=seed)
    await gw.start()
    conn = Connection("127.0.0.1", gw.port, 11, timeout=5, policy=FAST, registry=ClientIdRegistry())
    journal = MemoryJournal()
    trades = TradeManager(conn.ib, StrategyManager(), journal=journal, connection=conn)
    risk = RiskManager(store=StateMemory(), audit=trades.audit)
    await risk.restore()
    risk.attach_trade_manager(trades)
    risk.attach_ib(conn.ib)
    risk.attach_connection(conn, trades)
    stop = emergency_stop_for(
        risk,
        trades,
        conn,
        cancel_timeout=5,
        fill_timeout=10,
        reconnect_timeout=20,
    )
    s = Soak(gw, state, gw.port, conn, trades, risk, stop, journal)
    put = trades.strategy_manager.message_queue.put

    def record(message: Any) -> None:
        if message.get("type") == "fill":
            s.told[message["fill"].execution.execId] += 1
        put(message)

    trades.strategy_manager.message_queue.put = record  # type: ignore[method-assign]
    await conn.connect()
    tap(s)
    trades.wire.max_per_second = 20  # bursts outrun the pacing: orders wait at the wire
    for symbol in SYMBOLS:
        # as a strategy does: qualified through the trade manager, whose gate then
        # knows the details (tick, multiplier) it checks orders against
        s.contracts[symbol] = await trades.qualify(
            Contract(symbol=symbol, secType="STK", exchange="SMART", currency="USD")
        )
    until = time.monotonic() + seconds
    await asyncio.gather(
        *(trader(s, name, until, seed + i) for i, name in enumerate(STRATEGIES)),
        faults(s, until, seed),
    )
    await connected(s)
    # Every order written answers within a round trip or two; on a loaded machine that
    # can take longer than a fixed second, so wait for the answers (bounded): an order
    # still pending after that is reported as stuck, not one still on its way.
    await settled(s, timeout=15.0)
    await trades.resync()
    await trades.wait_journalled()
    figures = report(s)
    await conn.disconnect()
    await s.gateway.stop()
    return figures


def report(s: Soak) -> dict[str, int]:
    cid = s.conn.ib.client.clientId
    engine = s.gateway.engine
    at_gateway = {e.exec_id for e in engine.executions(client_id=cid)}
    journalled = set(s.journal.rows)
    flatten_ids = {
        r.order_id
        for r in s.trades.audit.records
        if r.actor == EMERGENCY_ACTOR and r.action == "place"
    }
    written = [t for t in s.placed if s.trades.wire.was_written(t.order.orderId)]
    actually_lost = {t.order.orderId for t in written if engine.order(cid, t.order.orderId) is None}
    reported_lost = {t.order.orderId for t in s.placed if t.log and t.log[-1].status == LOST}
    not_sent = {t.order.orderId for t in s.placed if t.log and t.log[-1].status == NOT_SENT}
    pending = pending_orders(s)
    for t in pending:
        oid = t.order.orderId
        gw_order = engine.order(cid, oid)
        perm = getattr(gw_order, "perm_id", None)
        ib_trades = [
            (x.order.orderId, x.orderStatus.status, x.order.permId, x is t)
            for x in s.conn.ib.trades()
            if x.order.orderId == oid or (perm and x.order.permId == perm)
        ]
        logging.getLogger("soak").error(
            "left pending: #%d written=%s at gateway=%s (%s, perm %s) in flight=%s live=%s "
            "ib_async knows=%s log=%s",
            oid,
            s.trades.wire.was_written(oid),
            gw_order is not None,
            getattr(gw_order, "state", None),
            perm,
            s.trades.in_flight.get((cid, oid)),
            (cid, oid) in s.trades.in_flight.live,
            ib_trades,
            [(e.status, e.message) for e in t.log],
        )
    figures = {
        "orders placed": len(s.placed),
        "orders written": len(written),
        "orders not sent (dropped at the wire)": len(not_sent),
        "not-sent orders found at the gateway": sum(
            1 for oid in not_sent if engine.order(cid, oid) is not None
        ),
        "executions at the gateway": len(at_gateway),
        "fills lost": len(at_gateway - journalled),
        "fills lost to strategies": len(at_gateway - set(s.told)),
        "fills duplicated": sum(n - 1 for n in s.told.values()),
        "orders lost": len(actually_lost),
        "lost orders reported": len(reported_lost & actually_lost),
        "reported lost but at the gateway": len(reported_lost - actually_lost),
        "ids reused": len(s.ids) - len(set(s.ids)),
        "non-flattening orders written while HALTED": len(
            [oid for oid in s.halted_frames if oid not in flatten_ids]
        ),
        "orders left pending": len(pending),
        "connection drops": s.drops,
        "gateway restarts": s.restarts,
        "nightly resets (TWS restart, 1100-1102)": s.nightly,
        "emergency stops": s.stops,
    }
    return figures


def failures(figures: dict[str, int]) -> list[str]:
    must_be_zero = (
        "not-sent orders found at the gateway",
        "fills lost",
        "fills lost to strategies",
        "fills duplicated",
        "reported lost but at the gateway",
        "ids reused",
        "non-flattening orders written while HALTED",
        "orders left pending",
    )
    out = [name for name in must_be_zero if figures[name]]
    if figures["lost orders reported"] != figures["orders lost"]:
        out.append("lost orders reported != orders lost")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--check", action="store_true", help="exit 1 unless every must-be-0 is 0")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    t0 = time.perf_counter()
    figures = asyncio.run(soak(args.seconds, args.seed))
    print(
        f"fault soak, {args.seconds:.0f} s of trading by {len(STRATEGIES)} strategies "
        f"(seed {args.seed}, {time.perf_counter() - t0:.0f} s wall):"
    )
    for name, value in figures.items():
        print(f"  {name:45s} {value:8d}")
    bad = failures(figures)
    if bad:
        print("FAILED: " + ", ".join(bad))
    return 1 if bad and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
