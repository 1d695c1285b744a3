"""The console window under a gateway tick storm: is the grid current, and does the GUI stall?

Prints figures; it asserts nothing (run by ``make bench``). Issue 6 asks for "the time
from a gateway tick storm (500 symbols, 20,000 ticks/s) to the grid being current, and
how long the GUI loop is blocked at worst while it runs (target: never more than one
frame, 16 ms)".

Set-up. The simulated gateway runs in its own process (this script with ``--gateway``),
so its work does not run on the GUI's loop: it serves a synthetic universe of
``--symbols`` made-up stocks (:meth:`core.sim.universe.Universe.synthetic`) and holds a
position in each, bought by the console's client id earlier in the day. This process
starts the real console offscreen: a :class:`core.session.ConsoleSession` connected to
that gateway (real ib_async client, in-memory store) and the full
:class:`gui.mainwindow.MainWindow`, attached as in the app. At connect the session
takes in the day's executions, so the positions grid has one row per symbol, and every
held contract streams quotes (each quote moves its row's last, value and P&L).

The storm. The gateway steps a slice of the symbols at a time (``--slice``), paced so
the tick messages it sends (tickPrice, tickSize, tickString: what IB calls ticks)
average ``--rate`` per second. Alongside, as the simulated gateway does on every quote
change, it pushes the account's portfolio rows, account values and P&L.

Measured:

* **GUI loop blocking**: a 5 ms ``QTimer`` heartbeat on the GUI thread records how late
  each beat fires; with qasync, every asyncio callback (socket reads, ib_async decoding,
  core's handlers) runs inside Qt's loop, so a late beat is the loop being blocked.
  Reported: the worst, p99 and median lateness, and how many beats came more than one
  frame (16 ms) late.
* **Grid current**: after the storm stops, the time from the gateway's last tick being
  written to the moment every row of the positions model shows the gateway's final
  mark (core.marketdata.Quote.mark: last, else mid), checked on each of the
  model's coalesced flushes.

    .venv/bin/python benchmarks/bench_gui.py [--symbols 500] [--rate 20000] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ACCOUNT = "DU0000001"
CLIENT_ID = 1
FRAME_MS = 16.0
HEARTBEAT_MS = 5


# ----- the gateway process -------------------------------------------------------------------


def _seed_state(symbols: int, path: Path) -> None:
    """A gateway state file: the console's client bought every synthetic symbol today."""
    from core.sim import SimGateway
    from core.sim.model import OrderRequest
    from core.sim.universe import Universe

    gw = SimGateway(
        universe=Universe.synthetic(symbols),
        accounts=(ACCOUNT,),
        tick_interval=0,
        initial_cash=50_000_000.0,
    )
    for i, inst in enumerate(gw.universe):
        qty = max(1.0, round(5_000.0 / inst.initial_price))
        req = OrderRequest(
            order_id=i + 1,
            client_id=CLIENT_ID,
            con_id=inst.con_id,
            action="BUY" if i % 3 else "SELL",
            total_quantity=qty,
            order_type="MKT",
            account=ACCOUNT,
            order_ref="manual",
        )
        gw.engine.place(req)
    gw.engine.on_market()
    path.write_text(json.dumps(gw.state()), encoding="utf-8")


def _mark(bid: float, ask: float, last: float) -> float:
    """The mark the console shows (core.marketdata.Quote.mark, which the positions grid
    and the ticket share: last, else mid)."""
    if last > 0:
        return last
    if bid > 0 and ask > 0:
        return (bid + ask) / 2
    return last


async def _serve_gateway(args: argparse.Namespace) -> None:
    """Child process: serve the synthetic universe; storm on request (commands on stdin).

    Commands, one a line: ``storm RATE SLICE`` starts the storm, ``stop`` ends it and
    answers ``stopped {json}`` (the last tick's time, the counts and every final mark),
    ``quit`` exits.
    """
    from core.sim import SimGateway
    from core.sim.server import SimGateway as _Gw
    from core.sim.universe import Universe

    state = Path(tempfile.mkdtemp(prefix="bench-gui-")) / "sim.json"
    _seed_state(args.symbols, state)
    gw = SimGateway(
        "127.0.0.1",
        0,
        universe=Universe.synthetic(args.symbols),
        accounts=(ACCOUNT,),
        state_path=state,
        tick_interval=0,  # the storm below drives the market
        initial_cash=50_000_000.0,
    )
    # Count the tick messages the gateway writes (instrumentation only).
    ticks = [0]
    original = _Gw._quote_ticks

    def counting(req_id: int, inst: Any, q: Any, last: dict[int, float]) -> list[Any]:
        out = original(req_id, inst, q, last)
        ticks[0] += len(out)
        return out

    gw._quote_ticks = counting  # type: ignore[method-assign]
    await gw.start()
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line.strip())
        loop.call_soon_threadsafe(commands.put_nowait, "quit")

    threading.Thread(target=read_stdin, daemon=True).start()
    print(f"ready {gw.port}", flush=True)
    con_ids = [inst.con_id for inst in gw.universe]
    storm: asyncio.Task[None] | None = None
    info: dict[str, Any] = {}

    async def run_storm(rate: float, size: int, account_pushes: bool) -> None:
        # Pace on the ticks actually written: the next slice is due when the running
        # total would be on schedule, so the average rate is ``rate`` (bursts of one
        # slice's ticks, never a backlog).
        t0 = time.monotonic()
        ticks0 = ticks[0]
        steps = 0
        i = 0
        while True:
            part = con_ids[i : i + size]
            i = (i + size) % len(con_ids)
            changed = gw.market.step(part)
            if account_pushes:
                # The simulated gateway's whole post-quote path: ticks, order matching,
                # and portfolio rows, account values and P&L pushed on every step.
                gw._after_quotes(changed, match_all=False)
            else:
                # Ticks only, as TWS does (it sends portfolio and account updates on
                # its own slow schedule, not per quote).
                gw._push_quotes(set(changed))
            info["last_tick"] = time.monotonic()
            steps += 1
            info["ticks"] = ticks[0] - ticks0
            info["seconds"] = info["last_tick"] - t0
            info["steps"] = steps
            due = t0 + (ticks[0] - ticks0) / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    while True:
        cmd = await commands.get()
        if cmd.startswith("storm"):
            _, rate, size, pushes = cmd.split()
            info.clear()
            storm = asyncio.create_task(run_storm(float(rate), int(size), pushes == "1"))
        elif cmd == "stop":
            if storm is not None:
                storm.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await storm
            marks = {}
            for con_id in con_ids:
                q = gw.market.quote(con_id)
                marks[str(con_id)] = _mark(q.bid, q.ask, q.last)
            print("stopped " + json.dumps({**info, "marks": marks}), flush=True)
        elif cmd == "quit":
            break
    if storm is not None:
        storm.cancel()
    await gw.stop()


# ----- the console process -------------------------------------------------------------------


class Gateway:
    """The gateway child process and its command pipe."""

    def __init__(self, symbols: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--gateway", "--symbols", str(symbols)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            self.close()
            raise RuntimeError("the gateway process did not start")
        self.port = int(line[1])
        self._lines: asyncio.Queue[str] | None = None

    def start_reader(self, loop: asyncio.AbstractEventLoop) -> None:
        """Read the child's answers on a thread; hand them to ``loop``."""
        self._lines = asyncio.Queue()
        queue = self._lines

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                loop.call_soon_threadsafe(queue.put_nowait, line)

        threading.Thread(target=read, daemon=True).start()

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    async def answer(self, prefix: str, timeout: float = 30.0) -> str:
        assert self._lines is not None
        while True:
            line = await asyncio.wait_for(self._lines.get(), timeout)
            if line.startswith(prefix):
                return line[len(prefix) :].strip()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("quit")
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(10)


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


class Heartbeat:
    """A 5 ms precise QTimer on the GUI thread; records how late each beat fires (ms)."""

    def __init__(self, interval_ms: int = HEARTBEAT_MS) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.interval = interval_ms / 1000
        # An array of doubles: 8 bytes a beat, so a long run's record stays small.
        self.lateness: array[float] = array("d")
        self._last = 0.0
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._beat)

    def start(self) -> None:
        del self.lateness[:]
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _beat(self) -> None:
        now = time.perf_counter()
        self.lateness.append(max(0.0, (now - self._last - self.interval) * 1000))
        self._last = now


def _rss_mb(pid: int | str = "self") -> float:
    """A process's resident memory (this one by default), from /proc (Linux)."""
    with open(f"/proc/{pid}/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class MemoryWatch:
    """Resident memory through a long storm: samples, and what grew after warm-up."""

    samples: list[tuple[float, float, int]] = field(default_factory=list)  # s, MB, ticks
    gateway: list[float] = field(default_factory=list)  # the gateway process's MB
    warm_s: float = 0.0
    top: list[str] = field(default_factory=list)
    heartbeat_mb: float = 0.0


async def _watch_memory(
    args: argparse.Namespace, received: list[int], heartbeat: Heartbeat, gateway_pid: int
) -> MemoryWatch:
    """Sample RSS every ``--sample`` seconds; with ``--tracemalloc``, diff the Python heap
    between the end of warm-up (a quarter of the run, at most 60 s) and the end."""
    import gc
    import tracemalloc

    watch = MemoryWatch(warm_s=min(60.0, args.seconds / 4))
    t0 = time.perf_counter()
    first = None
    warm_taken = False
    trim = None
    if args.trim:
        from core.heap import malloc_trim

        trim = malloc_trim()
    while (elapsed := time.perf_counter() - t0) < args.seconds:
        if trim is not None:
            trim(0)  # hand freed heap back first: what remains is in use (or fragmented)
        watch.samples.append((elapsed, _rss_mb(), received[0]))
        watch.gateway.append(_rss_mb(gateway_pid))
        if not warm_taken and elapsed >= watch.warm_s:
            warm_taken = True
            if args.tracemalloc:
                gc.collect()
                tracemalloc.start(8)
                first = tracemalloc.take_snapshot()
        await asyncio.sleep(args.sample)
    watch.samples.append((time.perf_counter() - t0, _rss_mb(), received[0]))
    watch.gateway.append(_rss_mb(gateway_pid))
    watch.heartbeat_mb = heartbeat.lateness.itemsize * len(heartbeat.lateness) / 2**20
    if first is not None:
        gc.collect()
        last = tracemalloc.take_snapshot()
        tracemalloc.stop()
        for stat in last.compare_to(first, "traceback")[:12]:
            if stat.size_diff <= 0:
                continue
            where = " <- ".join(
                f"{Path(fr.filename).name}:{fr.lineno}" for fr in list(stat.traceback)[:4]
            )
            watch.top.append(
                f"  {stat.size_diff / 2**20:+8.2f} MB {stat.count_diff:+9d} blocks  {where}"
            )
    return watch


def _print_memory(watch: MemoryWatch) -> None:
    samples = watch.samples
    warm = [s for s in samples if s[0] >= watch.warm_s] or samples
    (t_w, rss_w, ticks_w), (t_e, rss_e, ticks_e) = warm[0], samples[-1]
    minutes = max(t_e - t_w, 1e-9) / 60
    millions = max(ticks_e - ticks_w, 1) / 1e6
    print("resident memory (RSS) through the storm:")
    print(
        f"  start {samples[0][1]:.0f} MB, after warm-up ({watch.warm_s:.0f} s) {rss_w:.0f} MB, "
        f"end {rss_e:.0f} MB"
    )
    print(
        f"  slope after warm-up: {(rss_e - rss_w) / minutes:+.2f} MB/min, "
        f"{(rss_e - rss_w) / millions:+.2f} MB per million ticker updates "
        f"(the benchmark's own heartbeat record: {watch.heartbeat_mb:.1f} MB at the end)"
    )
    g_warm = watch.gateway[len(samples) - len(warm)]
    print(
        f"  the simulated gateway's process: start {watch.gateway[0]:.0f} MB, after warm-up "
        f"{g_warm:.0f} MB, end {watch.gateway[-1]:.0f} MB, "
        f"{(watch.gateway[-1] - g_warm) / minutes:+.2f} MB/min after warm-up"
    )
    if watch.top:
        print("  Python heap growth after warm-up, largest first (tracemalloc):")
        for line in watch.top:
            print(line)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


async def _wait_until(predicate: Any, timeout: float) -> bool:
    """Poll ``predicate`` every 0.1 s for up to ``timeout`` seconds (set-up only)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


async def _run_console(args: argparse.Namespace, gateway: Gateway) -> None:
    from ib_async import Contract
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from core.session import ConsoleSession, SessionOptions
    from gui.app import freeze_startup_heap
    from gui.mainwindow import MainWindow

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    loop = asyncio.get_running_loop()
    gateway.start_reader(loop)
    tmp = Path(tempfile.mkdtemp(prefix="bench-gui-console-"))
    options = SessionOptions(
        port=gateway.port, client_id=CLIENT_ID, account=ACCOUNT, connect_timeout=30
    )
    window = MainWindow(options, settings=QSettings(str(tmp / "l.ini"), QSettings.Format.IniFormat))
    window.positions_view.set_grouped(args.grouped)
    window.show()
    t_setup = time.perf_counter()
    session = await ConsoleSession.start(options)
    window.bind(session)
    ib = session.connection.ib
    # Set-up only: lift the wire's pacing (core.wire, 45 messages/s) so 500
    # subscriptions take seconds, not half a minute; put back before the storm.
    wire = session.trades.wire
    max_requests = wire.max_per_second
    wire.max_per_second = 100_000
    model = window.positions_model

    def rows_in() -> int:
        return sum(1 for r in model.rows() if r.get("quantity"))

    await _wait_until(lambda: rows_in() >= args.symbols, 60)
    # The session subscribes each held contract; subscribe any it has not (idempotent).
    held = {r["con_id"] for r in model.rows() if r.get("quantity")}
    for con_id in held - {c.conId for c in session.market.subscriptions}:
        session.market.subscribe(await session.contracts.qualify(Contract(conId=con_id)))
    await _wait_until(
        lambda: sum(1 for r in model.rows() if r.get("last") is not None) >= len(held), 60
    )
    wire.max_per_second = max_requests
    freeze_startup_heap()  # as the app does once attached
    await asyncio.sleep(1.0)
    setup_s = time.perf_counter() - t_setup
    quotes_live = sum(1 for r in model.rows() if r.get("last") is not None)

    received = [0]

    def on_tickers(tickers: Any) -> None:
        received[0] += len(tickers)

    ib.pendingTickersEvent += on_tickers
    flushes = [0]

    def on_flush() -> None:
        flushes[0] += 1

    model.flushed.connect(on_flush)

    heartbeat = Heartbeat()
    stats0 = ib.client.connectionStats()
    cpu0 = time.process_time()
    heartbeat.start()
    t0 = time.perf_counter()
    gateway.send(f"storm {args.rate} {args.slice} {int(args.account_pushes)}")
    if args.memory:
        memory = await _watch_memory(args, received, heartbeat, gateway.proc.pid)
    else:
        await asyncio.sleep(args.seconds)
    gateway.send("stop")
    stopped = json.loads(await gateway.answer("stopped"))
    storm_s = time.perf_counter() - t0
    cpu_storm = time.process_time() - cpu0
    stats1 = ib.client.connectionStats()
    during = list(heartbeat.lateness)

    # Grid current: every row shows the gateway's final mark.
    marks = {int(k): float(v) for k, v in stopped["marks"].items()}
    current_at: list[float] = []
    current = asyncio.Event()

    def is_current() -> bool:
        for row in model.rows():
            want = marks.get(row.get("con_id", -1))
            got = row.get("last")
            if want is not None and (got is None or abs(got - want) > 1e-6):
                return False
        return True

    def check() -> None:
        if not current_at and is_current():
            current_at.append(time.monotonic())
            current.set()

    model.flushed.connect(check)
    check()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(current.wait(), 30)
    heartbeat.stop()
    after = list(heartbeat.lateness[len(during) :])
    model.flushed.disconnect(check)
    ib.pendingTickersEvent -= on_tickers
    catch_up_ms = (current_at[0] - stopped["last_tick"]) * 1000 if current_at else None
    window_rows = model.rowCount()
    await session.stop()
    window.close()

    gw_seconds = stopped.get("seconds") or 1.0
    gw_ticks = stopped.get("ticks", 0)
    msgs = stats1.numMsgRecv - stats0.numMsgRecv
    late = [x for x in during if x > FRAME_MS]
    stalled_ms = sum(x for x in late)
    print(f"machine: {_machine()}; Qt offscreen (QT_QPA_PLATFORM=offscreen), no GPU")
    print(
        f"set-up: {window_rows} grid rows, {quotes_live} with a live mark, "
        f"in {setup_s:.1f} s (session start, executions, {len(held)} subscriptions)"
    )
    print(
        f"storm: {args.symbols} symbols, target {args.rate:,.0f} ticks/s for {args.seconds:g} s, "
        f"{args.slice} symbols per gateway step; positions grid "
        f"{'grouped by strategy' if args.grouped else 'flat'}"
        f"{'; portfolio and account pushed on every step' if args.account_pushes else ''}"
    )
    print(
        f"  gateway wrote {gw_ticks / gw_seconds:,.0f} ticks/s "
        f"({gw_ticks:,} ticks in {stopped.get('steps', 0):,} steps over {gw_seconds:.1f} s)"
    )
    print(
        f"  console received {msgs / storm_s:,.0f} messages/s (ticks + portfolio + account), "
        f"{received[0] / storm_s:,.0f} ticker updates/s; {flushes[0] / storm_s:.0f} grid "
        f"flushes/s; console CPU {100 * cpu_storm / storm_s:.0f}% of one core"
    )
    print("GUI loop blocking during the storm (lateness of a 5 ms heartbeat):")
    print(
        f"  max {max(during, default=0):.1f} ms   p99 {_pct(during, 99):.1f} ms   "
        f"p50 {_pct(during, 50):.2f} ms   beats {len(during):,} "
        f"(expected {storm_s * 1000 / HEARTBEAT_MS:,.0f})   "
        f"over one frame ({FRAME_MS:g} ms): {len(late)}"
    )
    print(
        f"  time inside stalls longer than a frame: {stalled_ms / 1000:.1f} s of "
        f"{storm_s:.1f} s ({100 * stalled_ms / 1000 / storm_s:.0f}%)"
    )
    if args.memory:
        _print_memory(memory)
    verdict = "within" if max(during, default=0) <= FRAME_MS else "OVER"
    print(f"  target: never more than one frame ({FRAME_MS:g} ms): {verdict}")
    if catch_up_ms is None:
        print("grid current after the storm: NOT within 30 s")
    else:
        print(
            f"grid current after the storm: {catch_up_ms:.0f} ms from the gateway's last tick "
            f"to every row showing its final mark (max lateness meanwhile "
            f"{max(after, default=0):.1f} ms)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--rate", type=float, default=20_000, help="tick messages per second")
    ap.add_argument("--seconds", type=float, default=15.0, help="storm duration")
    ap.add_argument("--slice", type=int, default=25, help="symbols stepped per gateway step")
    ap.add_argument(
        "--account-pushes",
        action="store_true",
        help="also push portfolio rows, account values and P&L on every gateway step",
    )
    ap.add_argument(
        "--grouped", action="store_true", help="show the positions grid grouped by strategy"
    )
    ap.add_argument(
        "--memory", action="store_true", help="sample resident memory through the storm"
    )
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples")
    ap.add_argument(
        "--trim", action="store_true", help="with --memory: malloc_trim(0) before each sample"
    )
    ap.add_argument(
        "--tracemalloc", action="store_true", help="with --memory: diff the Python heap"
    )
    ap.add_argument("--gateway", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.gateway:
        asyncio.run(_serve_gateway(args))
        return

    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    import logging

    from PySide6.QtWidgets import QApplication

    from gui.loop import ConsoleEventLoop
    from gui.theme import apply_theme

    # Errors only: at connect the console logs a line per reconciled contract (500).
    logging.basicConfig(level=logging.ERROR)
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    apply_theme(app)
    gateway = Gateway(args.symbols)
    loop = ConsoleEventLoop(app)
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_run_console(args, gateway))
    finally:
        gateway.close()
        loop.close()
        asyncio.set_event_loop(None)


if __name__ == "__main__":
    main()
