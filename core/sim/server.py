"""The simulated IB gateway: an asyncio TCP server speaking the TWS API.

:class:`SimGateway` accepts TWS API clients (ib_async, the official ibapi, anything that
speaks the wire protocol), translates their requests for the engine side
(:mod:`core.sim.universe`, :mod:`core.sim.market`, :mod:`core.sim.engine`) and streams
the engine's events back as TWS messages.

Concurrency model: everything runs on one asyncio loop. Each client has a
:class:`_Session` whose messages are written with one ``transport.write`` per message,
so messages never interleave, and writes never block: a client that stops reading is
dropped once its send buffer passes :data:`MAX_SEND_BUFFER` instead of holding up others.

Logging goes to ``logging.getLogger("core.sim")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from core.sim import protocol as p
from core.sim.engine import Engine
from core.sim.market import MAX_DEPTH_ROWS, Market
from core.sim.model import (
    EngineEvent,
    ExecutionOccurred,
    Instrument,
    OrderChanged,
    OrderError,
    OrderRejected,
    OrderState,
    Quote,
    SimOrder,
)
from core.sim.universe import Universe

log = logging.getLogger("core.sim")

MAX_SEND_BUFFER = 16 * 1024 * 1024
"""A client whose unsent data exceeds this many bytes is too slow and gets dropped."""
HANDSHAKE_TIMEOUT = 30.0
"""Seconds a new connection may take to send its ``API\\0`` hello and version range."""
STATE_SAVE_DELAY = 0.2
"""Debounce of state saves: a burst of fills is written once (and always on stop)."""
_STATE_FORMAT = 1

MSG_NO_SECURITY = "No security definition has been found for the request"
MSG_CLIENT_ID_IN_USE = (
    "Unable to connect as the client id is already in use. Retry with a unique client id."
)
MSG_CONNECTIVITY_LOST = "Connectivity between IB and Trader Workstation has been lost."
MSG_RESTORED_DATA_KEPT = (
    "Connectivity between IB and Trader Workstation has been restored - data maintained. "
    "All data farms are connected: usfarm; ushmds; secdefil."
)
MSG_RESTORED_DATA_LOST = (
    "Connectivity between IB and Trader Workstation has been restored - data lost.*"
)
MSG_NOT_SUBSCRIBED = (
    "Requested market data is not subscribed. Check API status by selecting the Account menu "
    "then under Management choose Market Data Subscription Manager and/or confirm "
    "reqMarketDataType."
)
MSG_PACING = "Max rate of messages per second has been exceeded:max=50 rec=51 (1)"
# The data-farm notices TWS sends every client after it logs on (codes 2104/2106/2158,
# which clients treat as information).
FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefil"),
)
# What a client hears from a TWS that is up but not (yet) logged in to IB, as after its
# nightly restart: 1100 and the farms broken (2103/2105, warnings to clients).
LINK_DOWN_NOTICES = (
    (1100, MSG_CONNECTIVITY_LOST),
    (2103, "Market data farm connection is broken:usfarm"),
    (2105, "HMDS data farm connection is broken:ushmds"),
)
ORDER_TYPES_STK = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,DEACTDIS,"
    "DEACTEOD,GAT,GTC,GTD,GTT,HID,IOC,LIT,LMT,MIT,MKT,MTL,NGCOMB,NONALGO,OCA,STP,STPLMT,"
    "TRAIL,WHATIF"
)
LEDGER_KEYS = ("CashBalance", "TotalCashBalance", "NetLiquidationByCurrency")
_EXCHANGES = {
    "STK": "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,ISLAND,DRCTEDGE,BEX,BATS,EDGEA,IEX,NASDAQ",
    "FUT": "CME,QBALGO",
    "CASH": "IDEALPRO",
}
# The depth service TWS names per security type in mktDepthExchanges.
_DEPTH_SERVICE = {"STK": "Deep2", "FUT": "Deep", "CASH": "Deep"}
_BAR_UNITS = {"sec": 1, "secs": 1, "min": 60, "mins": 60, "hour": 3600, "hours": 3600}
_BAR_UNITS |= {"day": 86_400, "days": 86_400, "week": 7 * 86_400, "weeks": 7 * 86_400}
_BAR_UNITS |= {"month": 30 * 86_400, "months": 30 * 86_400}
_DURATION_UNITS = {"S": 1, "D": 86_400, "W": 7 * 86_400, "M": 30 * 86_400, "Y": 365 * 86_400}


class RequestRefused(ValueError):
    """A request handler's refusal of a well-formed but invalid request: answered with
    error ``code`` (321 by default) and the request's id; the session stays."""

    def __init__(self, cause: str, code: int = 321) -> None:
        super().__init__(cause)
        self.code = code


def _request_id(request: object) -> int:
    """The id an error reply about ``request`` carries: its reqId or orderId, else -1."""
    for name in ("req_id", "order_id"):
        value = getattr(request, name, None)
        if isinstance(value, int):
            return value
    return -1


class SimStateError(ValueError):
    """The gateway's state file cannot be read; carries the path. Never a silent reset."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"simulated gateway state file {path} is unusable: {reason}")
        self.path = path
        self.reason = reason


@dataclass(slots=True)
class _MktSub:
    con_id: int
    requested: int = 1  # the market data type the client asked for (1-4)
    data_type: int = 1  # the type served: 1 live, 2 frozen, 3 delayed, 4 delayed frozen
    last: dict[int, float] = field(default_factory=dict)  # tick type -> value last sent

    @property
    def delayed(self) -> bool:
        """Ticks go out as the delayed tick types (66-76, 88)."""
        return self.data_type in (3, 4)


@dataclass(slots=True)
class _DepthSub:
    con_id: int
    rows: int
    smart: bool
    market_maker: str
    # what the client holds: (price, size) by position, bids and asks
    bids: list[tuple[float, float]] = field(default_factory=list)
    asks: list[tuple[float, float]] = field(default_factory=list)


@dataclass(slots=True)
class _HistSub:
    con_id: int
    bar_size_s: int
    what: str
    use_rth: bool
    format_date: int


@dataclass(eq=False)
class _Session:
    """One client connection and everything it subscribed to."""

    serial: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    peer: str
    version: int = 0
    client_id: int | None = None
    auto_open_orders: bool = False
    market_data_type: int = 1
    mkt: dict[int, _MktSub] = field(default_factory=dict)
    hist: dict[int, _HistSub] = field(default_factory=dict)
    depth: dict[int, _DepthSub] = field(default_factory=dict)
    account_updates: str | None = None
    positions: bool = False
    multi: dict[int, str] = field(default_factory=dict)  # reqId -> account
    summary: dict[int, tuple[str, ...]] = field(default_factory=dict)  # reqId -> tags
    pnl: dict[int, str] = field(default_factory=dict)  # reqId -> account
    pnl_single: dict[int, tuple[str, int]] = field(default_factory=dict)
    # what was last sent, for pushing changes only
    sent_values: dict[tuple[str, str, str], str] = field(default_factory=dict)
    sent_portfolio: dict[tuple[str, int], tuple[float, ...]] = field(default_factory=dict)
    sent_positions: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)
    sent_multi: dict[tuple[int, str, str], str] = field(default_factory=dict)
    sent_summary: dict[tuple[int, str, str, str], str] = field(default_factory=dict)
    sent_pnl: dict[tuple[str, int], tuple[float, ...]] = field(default_factory=dict)
    closed: bool = False

    def send(self, msg: p.Msg) -> None:
        """Queue one message; drops the client when it cannot keep up."""
        if self.closed:
            return
        transport = self.writer.transport
        if transport.is_closing():
            return
        transport.write(p.encode(msg))
        if transport.get_write_buffer_size() > MAX_SEND_BUFFER:
            log.warning("client %s is not reading; dropping it", self.describe())
            self.abort()

    def send_raw(self, data: bytes) -> None:
        if not self.closed and not self.writer.transport.is_closing():
            self.writer.transport.write(data)

    def abort(self) -> None:
        """Close the socket at once, as a network failure would."""
        self.closed = True
        self.writer.transport.abort()

    def describe(self) -> str:
        cid = "-" if self.client_id is None else str(self.client_id)
        return f"#{self.serial} {self.peer} client {cid}"


class SimGateway:
    """A simulated IB gateway that TWS API clients connect to over TCP.

    Parameters
    ----------
    host, port:
        Where to listen; ``port=0`` picks a free port, read it from :attr:`port` after
        :meth:`start`. Binds only to ``host`` (loopback by default).
    seed:
        Seed of the market's random walk: the same seed gives the same prices.
    accounts:
        Account ids the gateway manages (managedAccounts).
    server_version:
        Highest TWS API server version to speak, 157..178 (178, as a current TWS, by
        default). Each client gets the highest version both sides speak, as with TWS: a
        client offering ``v100..163`` is served at 163; one whose maximum is below 157 is
        closed without a reply.
    state_path:
        Optional JSON file: loaded by :meth:`start` when it exists, saved after changes
        and on :meth:`stop`. A corrupt file raises :class:`SimStateError`.
    tick_interval:
        Seconds between market steps of the background walk; 0 or less disables the
        walk (tests drive it with :meth:`step_market` and :meth:`set_price`).
    initial_cash, universe, clock:
        Starting cash per account, the instruments (default: :meth:`Universe.default`)
        and the time source shared with the market and the engine.
    live_data:
        Whether the login has live market data (default). With it, every
        ``reqMarketDataType`` is served live as type 1 (frozen, 2, while the market is
        frozen and 2 or 4 was asked), as TWS has done since 970; without it, types 3/4
        are served with the delayed tick types (66 bid, 67 ask, 68 last, ...) and types
        1/2 are refused with error 354. The prices are the simulated market's current
        ones either way: the simulator does not hold data back 15 minutes.
    max_depth_requests:
        Market depth subscriptions open at once across all clients, as IB's per-user
        limit (3 by default); one more is refused with error 309.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 0,
        accounts: Sequence[str] = ("DU0000001",),
        server_version: int = p.DEFAULT_SERVER_VERSION,
        state_path: str | Path | None = None,
        tick_interval: float = 0.25,
        initial_cash: float = 1_000_000.0,
        universe: Universe | None = None,
        clock: Callable[[], float] = time.time,
        live_data: bool = True,
        max_depth_requests: int = 3,
    ) -> None:
        if not p.MIN_CLIENT_VERSION <= server_version <= p.MAX_CLIENT_VERSION:
            raise ValueError(
                f"server_version {server_version} outside "
                f"{p.MIN_CLIENT_VERSION}..{p.MAX_CLIENT_VERSION}"
            )
        if not accounts:
            raise ValueError("at least one account is needed")
        self.host = host
        self.port = port
        self.seed = seed
        self.accounts = list(accounts)
        self.server_version = server_version
        self.state_path = Path(state_path) if state_path is not None else None
        self.tick_interval = tick_interval
        self.initial_cash = initial_cash
        self.clock = clock
        self.live_data = live_data
        self.max_depth_requests = max_depth_requests
        self.universe = universe if universe is not None else Universe.default()
        self.market = Market(self.universe, seed=seed, clock=clock)
        self.engine = Engine(
            self.universe, self.market, self.accounts, initial_cash=initial_cash, clock=clock
        )
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._by_client: dict[int, _Session] = {}
        self._next_ids: dict[int, int] = {}
        self._serial = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tick_task: asyncio.Task[None] | None = None
        self._save_handle: asyncio.TimerHandle | None = None
        self._refuse_handle: asyncio.TimerHandle | None = None
        self._refusing_until = 0.0
        self._link_down = False  # TWS up but not logged in to IB (nightly reset)
        self._reset_task: asyncio.Task[None] | None = None
        self._running = False
        self._market_rules: dict[float, int] = {}
        self._contracts: dict[tuple[int, int], p.ContractSpec] = {}

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the state file (if any), bind, and start the market walk."""
        if self._running:
            return
        self._load_state()
        await self._listen()
        self._running = True
        if self.tick_interval > 0:
            self._tick_task = asyncio.create_task(self._tick_loop(), name="sim-market")
        log.info(
            "simulated gateway listening on %s:%d (server version %d, accounts %s)",
            self.host,
            self.port,
            self.server_version,
            ",".join(self.accounts),
        )

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        sockets = self._server.sockets or ()
        if sockets and self.port == 0:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close every session, stop listening and save the state."""
        if not self._running:
            return
        self._running = False
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
            self._tick_task = None
        if self._refuse_handle is not None:
            self._refuse_handle.cancel()
            self._refuse_handle = None
        for session in list(self._sessions):
            session.abort()
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        self._save_state()
        log.info("simulated gateway on %s:%d stopped", self.host, self.port)

    async def __aenter__(self) -> SimGateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def client_ids(self) -> list[int]:
        """Client ids of the sessions currently connected (after startApi)."""
        return sorted(self._by_client)

    # --- test controls --------------------------------------------------------------------

    def step_market(self, n: int = 1) -> None:
        """Advance the walk ``n`` quote updates now: push ticks, match orders."""
        for _ in range(n):
            self._advance()

    def set_price(self, symbol_or_con_id: str | int, price: float) -> None:
        """Put an instrument's last price at ``price`` (bid/ask one tick around), push it
        to subscribers and match orders against it."""
        inst = self._instrument(symbol_or_con_id)
        self.market.set_price(inst.con_id, price)
        self._after_quotes([inst.con_id], match_all=False)

    def _instrument(self, symbol_or_con_id: str | int) -> Instrument:
        if isinstance(symbol_or_con_id, int):
            inst = self.universe.by_con_id(symbol_or_con_id)
            if inst is None:
                raise KeyError(f"unknown con_id {symbol_or_con_id}")
            return inst
        if symbol_or_con_id.isdigit():
            return self._instrument(int(symbol_or_con_id))
        symbol = symbol_or_con_id.upper()
        found = self.universe.find(symbol=symbol)
        if not found and "." in symbol:  # "EUR.USD"
            base, _, quote = symbol.partition(".")
            found = self.universe.find(symbol=base, currency=quote)
        if not found:
            raise KeyError(f"unknown symbol {symbol_or_con_id!r}")
        return found[0]  # a future's front month comes first

    # --- faults ---------------------------------------------------------------------------

    async def drop_connections(self) -> None:
        """Abort every client connection now, as a network failure would."""
        sessions = list(self._sessions)
        log.warning("fault: dropping %d connection(s)", len(sessions))
        for session in sessions:
            session.abort()
        # Let the sessions' tasks see the close before returning.
        await asyncio.sleep(0)

    def refuse_connections(self, seconds: float) -> None:
        """Stop listening for ``seconds``: new connections are refused, open ones stay."""
        log.warning("fault: refusing connections for %.1f s", seconds)
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._refuse_handle is not None:
            self._refuse_handle.cancel()
        loop = asyncio.get_running_loop()
        # The coroutine is created only when due, so a stop() in between leaves none unawaited.
        self._refuse_handle = loop.call_later(seconds, lambda: self._spawn(self._relisten()))

    async def _relisten(self) -> None:
        self._refuse_handle = None
        if self._running and self._server is None:
            await self._listen()
            log.warning("fault over: accepting connections again on port %d", self.port)

    def reject_next_order(self, code: int, message: str) -> None:
        """The next placeOrder is rejected with IB error ``code`` and ``message``."""
        log.warning("fault: next order will be rejected with %d", code)
        self.engine.reject_next(code, message)

    def delay_fills(self, ms: float) -> None:
        """Orders fill no sooner than ``ms`` milliseconds after they were placed."""
        log.warning("fault: fills delayed by %.0f ms", ms)
        self.engine.fill_delay_s = max(0.0, ms / 1000.0)

    def freeze_market_data(self, frozen: bool = True) -> None:
        """Stop (or resume) the price walk: no new ticks reach subscribers."""
        log.warning("fault: market data %s", "frozen" if frozen else "unfrozen")
        self.market.frozen = frozen
        self._announce_data_types()

    def send_pacing_violation(self, req_id: int = -1) -> None:
        """Send error 100 (pacing violation) to every client."""
        log.warning("fault: pacing violation to every client")
        self._broadcast_error(req_id, 100, MSG_PACING)

    def connectivity_lost(self) -> None:
        """Send error 1100 (IB-side connectivity lost) to every client; sockets stay open."""
        log.warning("fault: connectivity to IB lost")
        self._broadcast_error(-1, 1100, MSG_CONNECTIVITY_LOST)

    def connectivity_restored(self, data_lost: bool = False) -> None:
        """Send 1102 (restored, data maintained) or 1101 (restored, data lost)."""
        log.warning("fault over: connectivity restored (data %s)", "lost" if data_lost else "kept")
        if data_lost:
            self._broadcast_error(-1, 1101, MSG_RESTORED_DATA_LOST)
        else:
            self._broadcast_error(-1, 1102, MSG_RESTORED_DATA_KEPT)

    def nightly_reset(
        self, *, down_for: float = 60.0, relogin_for: float = 10.0, data_lost: bool = False
    ) -> asyncio.Task[None]:
        """Play TWS / IB Gateway's nightly restart; returns the task playing it (await it
        to wait for the end).

        1. Every API connection is dropped and the port refuses connections for
           ``down_for`` seconds (TWS is restarting).
        2. The port listens again, but for ``relogin_for`` seconds TWS is not logged in
           to IB: clients that connect hear 1100 and the data farms broken (2103, 2105)
           instead of the farm OK notices; the market walk pauses and no market data
           goes out. Orders, positions and executions survive (they live at IB).
        3. IB is back: 1102 "data maintained" (or, with ``data_lost``, 1101: every market
           data and depth subscription is forgotten and must be requested again), the
           farm OK notices, and market data flows again.

        IB's message codes page names the nightly server reset among the causes of 1100
        and documents 1101 (restored, market data requests lost: resubmit) and 1102
        (restored, data maintained), and 2103/2105 (a data farm connection broken; outside
        that reset, usually the ISP): https://interactivebrokers.github.io/tws-api/message_codes.html
        """
        if down_for < 0 or relogin_for < 0:
            raise ValueError("nightly_reset: durations must not be negative")
        if self._reset_task is not None and not self._reset_task.done():
            log.warning("fault: a nightly reset is already under way")
            return self._reset_task
        task = asyncio.ensure_future(self._play_nightly_reset(down_for, relogin_for, data_lost))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        self._reset_task = task
        return task

    async def _play_nightly_reset(self, down_for: float, relogin_for: float, lost: bool) -> None:
        log.warning(
            "fault: nightly reset (down %.1f s, logging in %.1f s, data %s)",
            down_for,
            relogin_for,
            "lost" if lost else "kept",
        )
        self._link_down = True
        if self._refuse_handle is not None:  # this reset decides when to listen again
            self._refuse_handle.cancel()
            self._refuse_handle = None
        if self._server is not None:
            self._server.close()
            self._server = None
        await self.drop_connections()
        try:
            await asyncio.sleep(down_for)
            if not self._running:
                return
            if self._server is None:
                await self._listen()
            log.warning("nightly reset: listening on port %d, not logged in to IB", self.port)
            await asyncio.sleep(relogin_for)
        finally:
            self._link_down = False
        if not self._running:
            return
        if lost:
            for session in self._sessions:
                session.mkt.clear()
                session.depth.clear()
        self.connectivity_restored(data_lost=lost)
        for session in self._live_sessions():
            for code, text in FARM_NOTICES:
                session.send(p.error(session.version, -1, code, text))
        # Subscribers (kept, or made while logged out) get the current quotes.
        self._push_quotes({sub.con_id for s in self._live_sessions() for sub in s.mkt.values()})
        log.warning("nightly reset over")

    @property
    def accepting(self) -> bool:
        """True while the port accepts new connections."""
        return self._server is not None

    @property
    def link_down(self) -> bool:
        """True while a nightly reset has TWS up but not logged in to IB."""
        return self._link_down

    def _broadcast_error(self, req_id: int, code: int, message: str) -> None:
        for session in self._live_sessions():
            session.send(p.error(session.version, req_id, code, message))

    # --- connections ----------------------------------------------------------------------

    def _live_sessions(self) -> list[_Session]:
        return [s for s in self._sessions if s.client_id is not None and not s.closed]

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulated gateway task failed", exc_info=task.exception())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        self._serial += 1
        session = _Session(self._serial, reader, writer, peer)
        self._sessions.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._run_session(session)
        except (ConnectionError, asyncio.IncompleteReadError):
            log.info("connection %s closed", session.describe())
        except TimeoutError:
            log.warning(
                "connection %s: no handshake within %.0f s", session.peer, HANDSHAKE_TIMEOUT
            )
        except p.ProtocolError as exc:
            log.warning("connection %s: protocol error, closing: %s", session.describe(), exc)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("connection %s: unexpected error, closing", session.describe())
        finally:
            self._end_session(session)
            if task is not None:
                self._tasks.discard(task)

    def _end_session(self, session: _Session) -> None:
        self._sessions.discard(session)
        if session.client_id is not None and self._by_client.get(session.client_id) is session:
            del self._by_client[session.client_id]
        if not session.closed:
            session.closed = True
            session.writer.transport.close()
        log.info("session %s ended", session.describe())

    async def _run_session(self, session: _Session) -> None:
        reader = session.reader
        hello = await asyncio.wait_for(reader.readexactly(len(p.HELLO)), HANDSHAKE_TIMEOUT)
        if hello != p.HELLO:
            raise p.ProtocolError(f"expected the API hello, got {hello!r}")
        frames = p.FrameReader()
        pending: deque[bytes] = deque()

        async def next_frame(timeout: float | None = None) -> bytes | None:
            while not pending:
                data = await asyncio.wait_for(reader.read(65536), timeout)
                if not data:
                    return None
                pending.extend(frames.feed(data))
            return pending.popleft()

        version_frame = await next_frame(HANDSHAKE_TIMEOUT)
        if version_frame is None:
            return
        client_hello = p.parse_hello(version_frame)
        version = client_hello.negotiate(p.MIN_CLIENT_VERSION, self.server_version)
        if version is None:
            # TWS shows "The socket client is out of date" and answers nothing a client
            # could act on; closing without a reply is what such a client sees.
            log.warning(
                "connection %s: client range v%d..%d has no version in %d..%d; closing",
                session.peer,
                client_hello.min_version,
                client_hello.max_version,
                p.MIN_CLIENT_VERSION,
                self.server_version,
            )
            return
        session.version = version
        session.send_raw(p.server_hello(version, self.clock()))
        log.info("connection %s: handshake done (v%d)", session.peer, version)
        while not session.closed:
            payload = await next_frame()
            if payload is None:
                return
            self._dispatch(session, p.split_fields(payload))

    # --- dispatch -------------------------------------------------------------------------

    def _dispatch(self, session: _Session, fields: list[str]) -> None:
        """Parse and handle one request. Whatever goes wrong, the client gets an error
        reply carrying the request's id and the session stays up, as with TWS: 320 for
        a request that does not parse, 321 for one that is invalid or not simulated,
        322 for a failure while handling it."""
        try:
            msg_id, request = p.parse_request(fields, session.version)
        except p.UnsupportedRequest as exc:
            log.info("%s: %s", session.describe(), exc)
            self._reject(session, -1, 321, f"unsupported message {exc.msg_id}")
            return
        except p.MalformedRequest as exc:
            log.warning("%s: %s", session.describe(), exc)
            session.send(
                p.error(
                    session.version,
                    exc.req_id,
                    320,
                    f"Error reading request. Message id {exc.msg_id}. {exc.reason}",
                )
            )
            return
        if session.client_id is None and msg_id != p.In.START_API:
            log.warning("%s: %s before startApi refused", session.describe(), msg_id.name)
            self._reject(session, _request_id(request), 321, "startApi must come first")
            return
        handler = self._handlers.get(msg_id)
        if handler is None:  # parsed but deliberately ignored (e.g. setServerLogLevel)
            return
        try:
            handler(self, session, request)
        except RequestRefused as exc:
            log.info("%s: %s refused: %s", session.describe(), msg_id.name, exc)
            self._reject(session, _request_id(request), exc.code, str(exc))
        except Exception as exc:
            # A bug in one handler must not end the session, nor leave the client waiting.
            log.exception("%s: error handling %s", session.describe(), msg_id.name)
            session.send(
                p.error(
                    session.version,
                    _request_id(request),
                    322,
                    f"Error processing request.-'sim' : cause - {type(exc).__name__}: {exc}",
                )
            )

    @staticmethod
    def _reject(session: _Session, req_id: int, code: int, cause: str) -> None:
        """Answer a request TWS cannot read (320) or refuses to validate (321 and others)."""
        what = "reading" if code == 320 else "validating"
        text = f"Error {what} request.-'sim' : cause - {cause}"
        session.send(p.error(session.version, req_id, code, text))

    def _on_start_api(self, session: _Session, req: p.StartApi) -> None:
        if session.client_id is not None:
            return
        cid = req.client_id
        existing = self._by_client.get(cid)
        if existing is not None and not (existing.closed or existing.reader.at_eof()):
            log.warning("%s: client id %d already in use; closing", session.peer, cid)
            session.send(p.error(session.version, -1, 326, MSG_CLIENT_ID_IN_USE))
            session.closed = True
            session.writer.transport.close()
            return
        if existing is not None:
            self._end_session(existing)
        session.client_id = cid
        self._by_client[cid] = session
        log.info("%s: API started", session.describe())
        session.send(p.next_valid_id(self._next_id(cid)))
        session.send(p.managed_accounts(self.accounts))
        for code, text in LINK_DOWN_NOTICES if self._link_down else FARM_NOTICES:
            session.send(p.error(session.version, -1, code, text))

    def _next_id(self, client_id: int) -> int:
        return max(self._next_ids.get(client_id, 1), 1)

    # market data

    def _resolve(self, c: p.ContractSpec) -> list[Instrument]:
        if c.con_id:
            inst = self.universe.by_con_id(c.con_id)
            return [inst] if inst is not None else []
        return self.universe.find(
            symbol=c.symbol,
            sec_type=c.sec_type,
            exchange=c.exchange,
            currency=c.currency,
            last_trade_date=c.last_trade_date,
            local_symbol=c.local_symbol,
        )

    def _resolve_one(self, session: _Session, req_id: int, c: p.ContractSpec) -> Instrument | None:
        found = self._resolve(c)
        if len(found) == 1:
            return found[0]
        if found:
            text = f"The contract description specified for {c.symbol} is ambiguous."
        else:
            text = MSG_NO_SECURITY
        session.send(p.error(session.version, req_id, 200, text))
        return None

    def _served_data_type(self, requested: int) -> int | None:
        """The market data type TWS serves for ``requested`` (None: nothing to serve).

        As TWS since 970: where live data is available (``live_data``) it is sent as
        type 1 whatever was asked, frozen (2) only for a frozen market when 2 or 4 was
        asked; without live data, 3 and 4 give delayed (3) or delayed frozen (4) data
        with the delayed tick types, and 1 or 2 give nothing (error 354).
        """
        frozen = self.market.frozen and requested in (2, 4)
        if self.live_data:
            return 2 if frozen else 1
        if requested in (3, 4):
            return 4 if frozen else 3
        return None

    def _on_req_mkt_data(self, session: _Session, req: p.ReqMktData) -> None:
        inst = self._resolve_one(session, req.req_id, req.contract)
        if inst is None:
            return
        data_type = self._served_data_type(session.market_data_type)
        if data_type is None:
            session.send(p.error(session.version, req.req_id, 354, MSG_NOT_SUBSCRIBED))
            return
        session.send(p.tick_req_params(req.req_id, inst.min_tick, "9c0001", 3))
        session.send(p.market_data_type(req.req_id, data_type))
        sub = _MktSub(inst.con_id, session.market_data_type, data_type)
        if not self._link_down:  # logged out of IB: the first ticks come at 1102
            for msg in self._quote_ticks(req.req_id, inst, self.market.quote(inst.con_id), sub):
                session.send(msg)
        if req.snapshot or req.regulatory_snapshot:
            session.send(p.tick_snapshot_end(req.req_id))
        else:
            session.mkt[req.req_id] = sub

    def _on_cancel_mkt_data(self, session: _Session, req: p.ReqId) -> None:
        session.mkt.pop(req.req_id, None)

    def _on_req_market_data_type(self, session: _Session, req: p.ReqMarketDataType) -> None:
        # As documented by IB, the type applies to the market data requests that follow.
        if req.market_data_type not in (1, 2, 3, 4):
            raise RequestRefused(f"invalid market data type {req.market_data_type}")
        session.market_data_type = req.market_data_type

    def _announce_data_types(self) -> None:
        """After the market froze or thawed: subscriptions that asked for frozen data
        switch between live/delayed and frozen, announced with marketDataType."""
        for session in self._live_sessions():
            for req_id, sub in session.mkt.items():
                served = self._served_data_type(sub.requested)
                if served is not None and served != sub.data_type:
                    sub.data_type = served
                    session.send(p.market_data_type(req_id, served))

    @staticmethod
    def _quote_ticks(req_id: int, inst: Instrument, q: Quote, sub: _MktSub) -> list[p.Msg]:
        """The ticks that changed since ``sub.last`` (updated in place); all at first.
        Delayed subscriptions get the delayed tick types (66 for 1, 67 for 2, ...)."""
        out: list[p.Msg] = []
        T = p.TickType
        last = sub.last
        wire: Callable[[p.TickType], int] = (
            (lambda t: p.DELAYED_TICK[t]) if sub.delayed else (lambda t: t)
        )

        def changed(tick: int, *values: float) -> bool:
            key = hash(values)
            if last.get(tick) == key:
                return False
            last[tick] = key
            return True

        if changed(T.BID, q.bid, q.bid_size):
            out.append(p.tick_price(req_id, wire(T.BID), q.bid, q.bid_size, 0))
        if changed(T.ASK, q.ask, q.ask_size):
            out.append(p.tick_price(req_id, wire(T.ASK), q.ask, q.ask_size, 0))
        if inst.sec_type != "CASH":  # IDEALPRO quotes carry no trades
            if q.last > 0 and changed(T.LAST, q.last, q.last_size, q.time):
                out.append(p.tick_price(req_id, wire(T.LAST), q.last, q.last_size, 0))
                out.append(p.tick_string(req_id, wire(T.LAST_TIMESTAMP), str(int(q.time))))
            if changed(T.VOLUME, q.volume):
                out.append(p.tick_size(req_id, wire(T.VOLUME), q.volume))
        for tick, value in ((T.HIGH, q.high), (T.LOW, q.low), (T.CLOSE, q.close), (T.OPEN, q.open)):
            if value > 0 and changed(tick, value):
                out.append(p.tick_price(req_id, wire(tick), value, 0.0, 0))
        return out

    # market depth

    def _on_req_mkt_depth(self, session: _Session, req: p.ReqMktDepth) -> None:
        inst = self._resolve_one(session, req.req_id, req.contract)
        if inst is None:
            return
        if not self.live_data:  # TWS has no delayed depth
            session.send(p.error(session.version, req.req_id, 354, MSG_NOT_SUBSCRIBED))
            return
        if req.num_rows <= 0:
            raise RequestRefused(f"numRows must be positive, got {req.num_rows}")
        open_books = sum(len(s.depth) for s in self._live_sessions())
        if req.req_id not in session.depth and open_books >= self.max_depth_requests:
            text = (
                f"Max number ({self.max_depth_requests}) of market depth requests has been reached"
            )
            session.send(p.error(session.version, req.req_id, 309, text))
            return
        sub = _DepthSub(
            inst.con_id,
            min(req.num_rows, MAX_DEPTH_ROWS),
            req.smart_depth,
            inst.primary_exchange or inst.exchange,
        )
        session.depth[req.req_id] = sub
        self._push_depth(session, req.req_id, sub)

    def _on_cancel_mkt_depth(self, session: _Session, req: p.CancelMktDepth) -> None:
        session.depth.pop(req.req_id, None)

    def _on_req_mkt_depth_exchanges(self, session: _Session, req: p.NoArgs) -> None:
        rows = sorted(
            {
                (i.primary_exchange or i.exchange, i.sec_type, "", _DEPTH_SERVICE[i.sec_type], 1)
                for i in self.universe
                if i.sec_type in _DEPTH_SERVICE
            }
        )
        session.send(p.mkt_depth_exchanges(rows))

    def _push_depth(self, session: _Session, req_id: int, sub: _DepthSub) -> None:
        """Send the changes of the book since what the client holds (all of it at first):
        insert (0) for new positions, update (1) for changed ones, delete (2) for gone."""
        bids, asks = self.market.depth(sub.con_id, sub.rows)
        for side, held, levels in ((1, sub.bids, bids), (0, sub.asks, asks)):
            now = [(lv.price, lv.size) for lv in levels]
            for pos in range(max(len(held), len(now))):
                if pos >= len(now):
                    op, (price, size) = 2, held[pos]
                elif pos >= len(held):
                    op, (price, size) = 0, now[pos]
                elif held[pos] != now[pos]:
                    op, (price, size) = 1, now[pos]
                else:
                    continue
                if sub.smart or sub.market_maker == "NASDAQ":
                    # TWS reports each level's exchange (market maker) for SMART depth and
                    # for NASDAQ's book; other books come as plain updateMktDepth.
                    msg = p.update_mkt_depth_l2(
                        req_id, pos, sub.market_maker, op, side, price, size, sub.smart
                    )
                else:
                    msg = p.update_mkt_depth(req_id, pos, op, side, price, size)
                session.send(msg)
            held[:] = now

    def _on_req_contract_details(self, session: _Session, req: p.ReqContractDetails) -> None:
        found = self._resolve(req.contract)
        if not found:
            session.send(p.error(session.version, req.req_id, 200, MSG_NO_SECURITY))
            return
        for inst in found:
            session.send(
                p.contract_details(
                    session.version,
                    req.req_id,
                    inst,
                    _EXCHANGES.get(inst.sec_type, inst.exchange),
                    ORDER_TYPES_STK,
                    self._market_rule_id(inst.min_tick),
                )
            )
        session.send(p.contract_details_end(req.req_id))

    def _market_rule_id(self, tick: float) -> int:
        known = {0.01: 26, 0.25: 67, 0.00005: 239}
        rule = known.get(tick)
        if rule is None:
            rule = self._market_rules.setdefault(tick, 1000 + len(self._market_rules))
        else:
            self._market_rules[tick] = rule
        return rule

    def _on_req_market_rule(self, session: _Session, req: p.ReqMarketRule) -> None:
        for tick, rule in self._market_rules.items():
            if rule == req.market_rule_id:
                session.send(p.market_rule(rule, [(0.0, tick)]))
                return
        session.send(p.market_rule(req.market_rule_id, [(0.0, 0.01)]))

    def _on_req_matching_symbols(self, session: _Session, req: p.ReqMatchingSymbols) -> None:
        session.send(
            p.symbol_samples(session.version, req.req_id, self.universe.search(req.pattern))
        )

    def _on_req_historical_data(self, session: _Session, req: p.ReqHistoricalData) -> None:
        inst = self._resolve_one(session, req.req_id, req.contract)
        if inst is None:
            return
        try:
            bar_size_s = parse_bar_size(req.bar_size)
            duration_s = parse_duration(req.duration)
            end = parse_end_time(req.end_date_time) if req.end_date_time else self.clock()
            bars = self.market.bars(
                inst.con_id, end, duration_s, bar_size_s, req.what_to_show or "TRADES", req.use_rth
            )
        except ValueError as exc:
            session.send(
                p.error(
                    session.version,
                    req.req_id,
                    162,
                    f"Historical Market Data Service error message:{exc}",
                )
            )
            return
        daily = bar_size_s >= 86_400
        # TWS writes the span's ends, and formatDate 1 bar times, in the exchange's zone.
        tz = inst.time_zone_id
        start_s = p.format_zoned_time(end - duration_s, tz)
        end_s = p.format_zoned_time(end, tz)
        session.send(
            p.historical_data(req.req_id, bars, start_s, end_s, req.format_date, daily, tz)
        )
        if req.keep_up_to_date:
            session.hist[req.req_id] = _HistSub(
                inst.con_id, bar_size_s, req.what_to_show or "TRADES", req.use_rth, req.format_date
            )

    def _on_cancel_historical_data(self, session: _Session, req: p.ReqId) -> None:
        session.hist.pop(req.req_id, None)

    def _on_req_head_timestamp(self, session: _Session, req: p.ReqHeadTimestamp) -> None:
        inst = self._resolve_one(session, req.req_id, req.contract)
        if inst is None:
            return
        first = int(self.clock()) - 5 * 365 * 86_400
        text = str(first) if req.format_date == 2 else p.format_zoned_time(first, inst.time_zone_id)
        session.send(p.head_timestamp(req.req_id, text))

    # orders

    def _on_place_order(self, session: _Session, po: p.PlaceOrder) -> None:
        assert session.client_id is not None
        cid = session.client_id
        req = po.request
        req.client_id = cid
        self._next_ids[cid] = max(self._next_ids.get(cid, 1), po.order_id + 1)
        self._schedule_save()
        inst = self._resolve_one(session, po.order_id, po.contract)
        if inst is None:
            return
        req.con_id = inst.con_id
        if not req.account and len(self.accounts) == 1:
            req.account = self.accounts[0]
        if req.what_if:
            try:
                result = self.engine.what_if(req)
            except OrderRejected as exc:
                session.send(p.error(session.version, po.order_id, exc.code, exc.message))
                return
            preview = SimOrder(request=req, perm_id=0, state=OrderState.PRE_SUBMITTED)
            session.send(
                p.open_order(session.version, preview, inst, "PreSubmitted", result, po.contract)
            )
            return
        if not req.account:
            req.account = self.accounts[0]
        try:
            events = self.engine.place(req)
        except OrderRejected as exc:
            log.info(
                "%s: order %d rejected: %d %s",
                session.describe(),
                po.order_id,
                exc.code,
                exc.message,
            )
            session.send(p.error(session.version, po.order_id, exc.code, exc.message))
            return
        self._contracts[(cid, po.order_id)] = po.contract
        self._emit(events)
        if self.engine.fill_delay_s > 0:
            # No market step may come soon (tests, a frozen market): match when due.
            loop = asyncio.get_running_loop()
            loop.call_later(self.engine.fill_delay_s + 0.001, self._match_now)

    def _match_now(self) -> None:
        if self._running:
            try:
                self._emit(self.engine.on_market())
            except Exception:
                log.exception("matching pass failed")

    def _on_cancel_order(self, session: _Session, req: p.CancelOrder) -> None:
        assert session.client_id is not None
        try:
            events = self.engine.cancel(session.client_id, req.order_id)
        except OrderRejected as exc:
            session.send(p.error(session.version, req.order_id, exc.code, exc.message))
            return
        self._emit(events)

    def _on_req_global_cancel(self, session: _Session, req: p.NoArgs) -> None:
        self._emit(self.engine.global_cancel())

    def _send_order(self, session: _Session, order: SimOrder) -> None:
        inst = self.universe.by_con_id(order.request.con_id)
        if inst is None:
            return
        contract = self._contracts.get(order.key)
        session.send(p.open_order(session.version, order, inst, str(order.state), None, contract))
        session.send(p.order_status(order))

    def _on_req_open_orders(self, session: _Session, req: p.NoArgs) -> None:
        # Client 0 sees every client's orders, as with TWS's master/auto-bind client.
        cid = None if session.client_id == 0 else session.client_id
        for order in self.engine.open_orders(cid):
            self._send_order(session, order)
        session.send(p.open_order_end())

    def _on_req_all_open_orders(self, session: _Session, req: p.NoArgs) -> None:
        for order in self.engine.open_orders():
            self._send_order(session, order)
        session.send(p.open_order_end())

    def _on_req_auto_open_orders(self, session: _Session, req: p.ReqAutoOpenOrders) -> None:
        if session.client_id != 0:
            session.send(
                p.error(
                    session.version,
                    -1,
                    321,
                    "Error validating request.-'bF' : cause - The API client is not "
                    "configured to allow auto-binding of orders (client id must be 0).",
                )
            )
            return
        session.auto_open_orders = req.auto_bind

    def _on_req_completed_orders(self, session: _Session, req: p.ReqCompletedOrders) -> None:
        for order in self.engine.completed_orders():
            inst = self.universe.by_con_id(order.request.con_id)
            if inst is None:
                continue
            done = _ib_time(self.clock())
            session.send(
                p.completed_order(
                    session.version,
                    order,
                    inst,
                    done,
                    str(order.state),
                    self._contracts.get(order.key),
                )
            )
        session.send(p.completed_orders_end())

    def _on_req_executions(self, session: _Session, req: p.ReqExecutions) -> None:
        f = req.filter
        since = None
        if f.time.strip():
            try:
                since = parse_end_time(f.time)
            except ValueError as exc:
                # A malformed filter field is a read error (320), which also ends the
                # client's request; silently ignoring it would replay everything.
                raise RequestRefused(f"execution filter time: {exc}", 320) from exc
        elif f.time:
            raise RequestRefused(f"execution filter time {f.time!r} is blank", 320)
        for ex in self.engine.executions(
            client_id=f.client_id,
            account=f.account,
            symbol=f.symbol,
            sec_type=f.sec_type,
            exchange=f.exchange,
            side=f.side,
            since=since,
        ):
            inst = self.universe.by_con_id(ex.con_id)
            if inst is None:
                continue
            session.send(p.exec_details(session.version, req.req_id, ex, inst))
            session.send(p.commission_report(ex))
        session.send(p.exec_details_end(req.req_id))

    def _on_req_ids(self, session: _Session, req: p.ReqIds) -> None:
        assert session.client_id is not None
        session.send(p.next_valid_id(self._next_id(session.client_id)))

    # account

    def _account_of(self, name: str) -> str | None:
        if not name and len(self.accounts) == 1:
            return self.accounts[0]
        return name if name in self.accounts else None

    def _on_req_account_updates(self, session: _Session, req: p.ReqAccountUpdates) -> None:
        if not req.subscribe:
            session.account_updates = None
            return
        account = self._account_of(req.account)
        if account is None:
            session.send(p.error(session.version, -1, 321, f"Invalid account: {req.account}"))
            return
        session.account_updates = account
        session.sent_values.clear()
        session.sent_portfolio.clear()
        self._push_account_updates(session, initial=True)
        session.send(p.account_download_end(account))

    def _on_req_account_updates_multi(
        self, session: _Session, req: p.ReqAccountUpdatesMulti
    ) -> None:
        account = self._account_of(req.account)
        if account is None:
            session.send(
                p.error(session.version, req.req_id, 321, f"Invalid account: {req.account}")
            )
            return
        session.multi[req.req_id] = account
        self._push_multi(session, req.req_id, account)
        session.send(p.account_update_multi_end(req.req_id))

    def _on_cancel_account_updates_multi(self, session: _Session, req: p.ReqId) -> None:
        session.multi.pop(req.req_id, None)

    def _on_req_account_summary(self, session: _Session, req: p.ReqAccountSummary) -> None:
        tags = tuple(t.strip() for t in req.tags.split(",") if t.strip())
        session.summary[req.req_id] = tags
        self._push_summary(session, req.req_id, tags)
        session.send(p.account_summary_end(req.req_id))

    def _on_cancel_account_summary(self, session: _Session, req: p.ReqId) -> None:
        session.summary.pop(req.req_id, None)

    def _on_req_positions(self, session: _Session, req: p.NoArgs) -> None:
        session.positions = True
        session.sent_positions.clear()
        self._push_positions(session)
        session.send(p.position_end())

    def _on_cancel_positions(self, session: _Session, req: p.NoArgs) -> None:
        session.positions = False

    def _on_req_pnl(self, session: _Session, req: p.ReqPnL) -> None:
        account = self._account_of(req.account)
        if account is None:
            session.send(
                p.error(session.version, req.req_id, 321, f"Invalid account: {req.account}")
            )
            return
        session.pnl[req.req_id] = account
        self._push_pnl(session)

    def _on_cancel_pnl(self, session: _Session, req: p.ReqId) -> None:
        session.pnl.pop(req.req_id, None)
        session.sent_pnl.pop(("", req.req_id), None)

    def _on_req_pnl_single(self, session: _Session, req: p.ReqPnLSingle) -> None:
        account = self._account_of(req.account)
        if account is None or self.universe.by_con_id(req.con_id) is None:
            session.send(
                p.error(session.version, req.req_id, 321, "Invalid account or contract id")
            )
            return
        session.pnl_single[req.req_id] = (account, req.con_id)
        self._push_pnl(session)

    def _on_cancel_pnl_single(self, session: _Session, req: p.ReqId) -> None:
        session.pnl_single.pop(req.req_id, None)
        session.sent_pnl.pop(("single", req.req_id), None)

    def _on_req_current_time(self, session: _Session, req: p.NoArgs) -> None:
        session.send(p.current_time(int(self.clock())))

    def _on_req_managed_accts(self, session: _Session, req: p.NoArgs) -> None:
        session.send(p.managed_accounts(self.accounts))

    def _on_req_user_info(self, session: _Session, req: p.ReqId) -> None:
        session.send(p.user_info(req.req_id))

    def _on_set_server_log_level(self, session: _Session, req: p.SetServerLogLevel) -> None:
        log.debug("%s: server log level %d (accepted, ignored)", session.describe(), req.level)

    _handlers: dict[p.In, Callable[[SimGateway, _Session, Any], None]] = {
        p.In.START_API: _on_start_api,
        p.In.REQ_MKT_DATA: _on_req_mkt_data,
        p.In.CANCEL_MKT_DATA: _on_cancel_mkt_data,
        p.In.REQ_MARKET_DATA_TYPE: _on_req_market_data_type,
        p.In.REQ_CONTRACT_DATA: _on_req_contract_details,
        p.In.REQ_MATCHING_SYMBOLS: _on_req_matching_symbols,
        p.In.REQ_MARKET_RULE: _on_req_market_rule,
        p.In.REQ_HISTORICAL_DATA: _on_req_historical_data,
        p.In.CANCEL_HISTORICAL_DATA: _on_cancel_historical_data,
        p.In.REQ_HEAD_TIMESTAMP: _on_req_head_timestamp,
        p.In.PLACE_ORDER: _on_place_order,
        p.In.CANCEL_ORDER: _on_cancel_order,
        p.In.REQ_GLOBAL_CANCEL: _on_req_global_cancel,
        p.In.REQ_OPEN_ORDERS: _on_req_open_orders,
        p.In.REQ_ALL_OPEN_ORDERS: _on_req_all_open_orders,
        p.In.REQ_AUTO_OPEN_ORDERS: _on_req_auto_open_orders,
        p.In.REQ_COMPLETED_ORDERS: _on_req_completed_orders,
        p.In.REQ_EXECUTIONS: _on_req_executions,
        p.In.REQ_IDS: _on_req_ids,
        p.In.REQ_ACCT_DATA: _on_req_account_updates,
        p.In.REQ_ACCOUNT_UPDATES_MULTI: _on_req_account_updates_multi,
        p.In.CANCEL_ACCOUNT_UPDATES_MULTI: _on_cancel_account_updates_multi,
        p.In.REQ_ACCOUNT_SUMMARY: _on_req_account_summary,
        p.In.CANCEL_ACCOUNT_SUMMARY: _on_cancel_account_summary,
        p.In.REQ_POSITIONS: _on_req_positions,
        p.In.CANCEL_POSITIONS: _on_cancel_positions,
        p.In.REQ_PNL: _on_req_pnl,
        p.In.CANCEL_PNL: _on_cancel_pnl,
        p.In.REQ_PNL_SINGLE: _on_req_pnl_single,
        p.In.CANCEL_PNL_SINGLE: _on_cancel_pnl_single,
        p.In.REQ_CURRENT_TIME: _on_req_current_time,
        p.In.REQ_MANAGED_ACCTS: _on_req_managed_accts,
        p.In.REQ_USER_INFO: _on_req_user_info,
        p.In.SET_SERVER_LOGLEVEL: _on_set_server_log_level,
        p.In.REQ_MKT_DEPTH: _on_req_mkt_depth,
        p.In.CANCEL_MKT_DEPTH: _on_cancel_mkt_depth,
        p.In.REQ_MKT_DEPTH_EXCHANGES: _on_req_mkt_depth_exchanges,
    }

    # --- engine events --------------------------------------------------------------------

    def _order_audience(self, client_id: int) -> list[_Session]:
        """The owner's session and every auto-binding client 0 (TWS's order visibility)."""
        out = []
        owner = self._by_client.get(client_id)
        if owner is not None and not owner.closed:
            out.append(owner)
        if client_id != 0:
            zero = self._by_client.get(0)
            if zero is not None and zero.auto_open_orders and not zero.closed:
                out.append(zero)
        return out

    def _emit(self, events: Iterable[EngineEvent]) -> None:
        """Translate engine events to messages, then push account changes once."""
        touched: set[str] = set()
        changed_any = False
        for event in events:
            changed_any = True
            if isinstance(event, OrderChanged):
                order = event.order
                for session in self._order_audience(order.request.client_id):
                    self._send_order(session, order)
            elif isinstance(event, ExecutionOccurred):
                ex = event.execution
                touched.add(ex.account)
                inst = self.universe.by_con_id(ex.con_id)
                if inst is None:
                    continue
                for session in self._order_audience(ex.client_id):
                    session.send(p.exec_details(session.version, -1, ex, inst))
                    session.send(p.commission_report(ex))
            elif isinstance(event, OrderError):
                owner = self._by_client.get(event.client_id)
                if owner is not None:
                    owner.send(p.error(owner.version, event.order_id, event.code, event.message))
        if touched:
            self._push_all_accounts()
        if changed_any:
            # Only order and account changes are worth a write; quotes are saved on stop.
            self._schedule_save()

    # --- account pushes -------------------------------------------------------------------

    def _push_all_accounts(self) -> None:
        for session in self._live_sessions():
            if session.account_updates is not None:
                self._push_account_updates(session)
            for req_id, account in session.multi.items():
                self._push_multi(session, req_id, account)
            for req_id, tags in session.summary.items():
                self._push_summary(session, req_id, tags)
            if session.positions:
                self._push_positions(session)
            if session.pnl or session.pnl_single:
                self._push_pnl(session)

    def _push_account_updates(self, session: _Session, initial: bool = False) -> None:
        account = session.account_updates
        if account is None:
            return
        sent_any = initial
        for key, value, currency in self.engine.account_values(account):
            k = (account, key, currency)
            if session.sent_values.get(k) != value:
                session.sent_values[k] = value
                session.send(p.update_account_value(key, value, currency, account))
                sent_any = True
        current = {item.con_id: item for item in self.engine.portfolio(account)}
        for con_id, item in current.items():
            inst = self.universe.by_con_id(con_id)
            if inst is None:
                continue
            row = (
                item.quantity,
                item.market_price,
                item.market_value,
                item.average_cost,
                item.unrealized_pnl,
                item.realized_pnl,
            )
            if session.sent_portfolio.get((account, con_id)) != row:
                session.sent_portfolio[(account, con_id)] = row
                session.send(p.update_portfolio(inst, *row, account))
                sent_any = True
        for acct, con_id in list(session.sent_portfolio):
            if acct == account and con_id not in current:
                # A closed position: IB sends it once more with quantity 0.
                del session.sent_portfolio[(acct, con_id)]
                inst = self.universe.by_con_id(con_id)
                if inst is None:
                    continue
                realized = self.engine.pnl_single(account, con_id).realized_pnl
                mark = self.market.mark(con_id)
                session.send(p.update_portfolio(inst, 0.0, mark, 0.0, 0.0, 0.0, realized, account))
                sent_any = True
        if sent_any:
            session.send(p.update_account_time(self.clock()))

    def _push_multi(self, session: _Session, req_id: int, account: str) -> None:
        for key, value, currency in self.engine.account_values(account):
            k = (req_id, key, currency)
            if session.sent_multi.get(k) != value:
                session.sent_multi[k] = value
                session.send(p.account_update_multi(req_id, account, "", key, value, currency))

    def _summary_rows(self, tags: tuple[str, ...]) -> list[tuple[str, str, str, str]]:
        wanted = set(tags)
        ledger = any(t.startswith("$LEDGER") for t in tags)
        rows = []
        for account in self.accounts:
            for key, value, currency in self.engine.account_values(account):
                if currency == "BASE":
                    if ledger:
                        rows.append((account, key, value, currency))
                elif key in wanted or (ledger and key in ("UnrealizedPnL", "RealizedPnL")):
                    rows.append((account, key, value, currency))
            if ledger:
                net = dict((k, v) for k, v, c in self.engine.account_values(account) if c == "USD")
                for key in LEDGER_KEYS:
                    if key in net:
                        rows.append((account, key, net[key], "USD"))
        return rows

    def _push_summary(self, session: _Session, req_id: int, tags: tuple[str, ...]) -> None:
        for account, key, value, currency in self._summary_rows(tags):
            k = (req_id, account, key, currency)
            if session.sent_summary.get(k) != value:
                session.sent_summary[k] = value
                session.send(p.account_summary(req_id, account, key, value, currency))

    def _push_positions(self, session: _Session) -> None:
        current = {(pos.account, pos.con_id): pos for pos in self.engine.positions()}
        for key, pos in current.items():
            row = (pos.quantity, pos.avg_cost)
            inst = self.universe.by_con_id(pos.con_id)
            if inst is not None and session.sent_positions.get(key) != row:
                session.sent_positions[key] = row
                session.send(p.position(pos.account, inst, pos.quantity, pos.avg_cost))
        for key in list(session.sent_positions):
            if key not in current:
                del session.sent_positions[key]
                inst = self.universe.by_con_id(key[1])
                if inst is not None:
                    session.send(p.position(key[0], inst, 0.0, 0.0))

    def _push_pnl(self, session: _Session) -> None:
        for req_id, account in session.pnl.items():
            value = self.engine.pnl(account)
            totals = (value.daily_pnl, value.unrealized_pnl, value.realized_pnl)
            if session.sent_pnl.get(("", req_id)) != totals:
                session.sent_pnl[("", req_id)] = totals
                session.send(p.pnl(req_id, value))
        for req_id, (account, con_id) in session.pnl_single.items():
            value = self.engine.pnl_single(account, con_id)
            row = (
                value.position,
                value.daily_pnl,
                value.unrealized_pnl,
                value.realized_pnl,
                value.value,
            )
            if session.sent_pnl.get(("single", req_id)) != row:
                session.sent_pnl[("single", req_id)] = row
                session.send(p.pnl_single(req_id, value))

    # --- the market walk ------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            if self._link_down:
                continue  # no prices while TWS is logged out of IB
            try:
                self._advance()
            except Exception:
                log.exception("market step failed")

    def _advance(self) -> None:
        changed = self.market.step()
        self._after_quotes(changed, match_all=True)

    def _after_quotes(self, changed: list[int], match_all: bool) -> None:
        if changed:
            self._push_quotes(set(changed))
        # Every pass, not only on changes: delayed fills become due with time alone.
        events = self.engine.on_market(None if match_all else changed)
        self._emit(events)
        if changed:
            for session in self._live_sessions():
                if session.account_updates is not None:
                    self._push_account_updates(session)
                if session.positions:
                    self._push_positions(session)
                if session.pnl or session.pnl_single:
                    self._push_pnl(session)

    def _push_quotes(self, changed: set[int]) -> None:
        if self._link_down:
            return
        quotes: dict[int, Quote] = {}
        for session in self._live_sessions():
            for req_id, sub in session.mkt.items():
                if sub.con_id not in changed:
                    continue
                q = quotes.get(sub.con_id)
                if q is None:
                    q = quotes[sub.con_id] = self.market.quote(sub.con_id)
                inst = self.universe.by_con_id(sub.con_id)
                if inst is None:
                    continue
                for msg in self._quote_ticks(req_id, inst, q, sub):
                    session.send(msg)
            for req_id, dsub in session.depth.items():
                if dsub.con_id in changed:
                    self._push_depth(session, req_id, dsub)
            for req_id, hsub in session.hist.items():
                if hsub.con_id in changed:
                    self._push_bar(session, req_id, hsub)

    def _push_bar(self, session: _Session, req_id: int, sub: _HistSub) -> None:
        try:
            bars = self.market.bars(
                sub.con_id, self.clock(), sub.bar_size_s, sub.bar_size_s, sub.what, sub.use_rth
            )
        except (KeyError, ValueError):
            return
        inst = self.universe.by_con_id(sub.con_id)
        if bars and inst is not None:
            daily = sub.bar_size_s >= 86_400
            session.send(
                p.historical_data_update(
                    req_id, bars[-1], sub.format_date, daily, inst.time_zone_id
                )
            )

    # --- state ----------------------------------------------------------------------------

    def _schedule_save(self) -> None:
        if self.state_path is None or self._save_handle is not None or not self._running:
            return
        loop = asyncio.get_running_loop()
        self._save_handle = loop.call_later(STATE_SAVE_DELAY, self._save_later)

    def _save_later(self) -> None:
        self._save_handle = None
        try:
            self._save_state()
        except Exception:
            log.exception("saving the simulated gateway state failed")

    def state(self) -> dict[str, Any]:
        """The JSON-serialisable state the gateway saves (engine, market, order ids)."""
        return {
            "format": _STATE_FORMAT,
            "seed": self.seed,
            "accounts": self.accounts,
            "next_order_ids": {str(k): v for k, v in sorted(self._next_ids.items())},
            "engine": self.engine.to_state(),
        }

    def _save_state(self) -> None:
        """Write the state atomically: a temporary file in the same folder, then rename."""
        if self.state_path is None:
            return
        path = self.state_path
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(self.state(), indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _load_state(self) -> None:
        path = self.state_path
        if path is None or not path.exists():
            return
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SimStateError(path, str(exc)) from exc
        if not isinstance(raw, dict) or raw.get("format") != _STATE_FORMAT:
            raise SimStateError(path, "not a simulated gateway state (unknown format)")
        try:
            engine = Engine.from_state(raw["engine"], self.universe, self.market, clock=self.clock)
            next_ids = {int(k): int(v) for k, v in dict(raw.get("next_order_ids", {})).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise SimStateError(path, str(exc)) from exc
        if engine.accounts != self.accounts:
            log.warning(
                "state file %s has accounts %s; using them instead of %s",
                path,
                engine.accounts,
                self.accounts,
            )
            self.accounts = list(engine.accounts)
        self.engine = engine
        for order in [*engine.open_orders(), *engine.completed_orders()]:
            cid, oid = order.key
            next_ids[cid] = max(next_ids.get(cid, 1), oid + 1)
        self._next_ids = next_ids
        log.info(
            "loaded state from %s: %d working order(s), %d position(s)",
            path,
            len(engine.open_orders()),
            len(engine.positions()),
        )


# --- request value parsing -----------------------------------------------------------------


def parse_bar_size(text: str) -> int:
    """IB's barSizeSetting ("1 min", "5 mins", "1 hour", "1 day") in seconds."""
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]+)\s*", text)
    if not m or m.group(2).lower() not in _BAR_UNITS or int(m.group(1)) <= 0:
        raise ValueError(f"invalid bar size {text!r}")
    return int(m.group(1)) * _BAR_UNITS[m.group(2).lower()]


def parse_duration(text: str) -> int:
    """IB's durationStr ("60 S", "1 D", "2 W", "1 M", "1 Y") in seconds."""
    m = re.fullmatch(r"\s*(\d+)\s*([SDWMY])\s*", text.upper())
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"invalid duration {text!r}")
    return int(m.group(1)) * _DURATION_UNITS[m.group(2)]


def parse_end_time(text: str) -> float:
    """An IB date-time: ``YYYYMMDD HH:MM:SS [TZ]``, ``YYYYMMDD-HH:MM:SS`` (UTC),
    ``YYYYMMDD`` or epoch seconds; a missing zone means UTC (the gateway's zone).

    Anything else (blank, truncated, an unknown zone) raises ``ValueError`` naming the text.
    """
    s = text.strip()
    try:
        if s.isdigit() and len(s) != 8:
            return datetime.fromtimestamp(float(s), UTC).timestamp()  # range-checked
        if "-" in s and " " not in s:
            return datetime.strptime(s, "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC).timestamp()
        parts = s.split()
        if len(parts) == 1:
            return datetime.strptime(parts[0], "%Y%m%d").replace(tzinfo=UTC).timestamp()
        if len(parts) not in (2, 3):
            raise ValueError("expected date, time and an optional zone")
        moment = datetime.strptime(parts[0] + " " + parts[1], "%Y%m%d %H:%M:%S")
        zone: Any = _zone(parts[2]) if len(parts) > 2 else UTC
        return moment.replace(tzinfo=zone).timestamp()
    except (ValueError, OverflowError, OSError) as exc:
        raise ValueError(f"invalid date-time {text!r}: {exc}") from exc


def _zone(name: str) -> Any:
    try:
        return ZoneInfo(name)
    except Exception as exc:  # ZoneInfoNotFoundError, or a malformed key
        raise ValueError(f"unknown time zone {name!r}") from exc


def _ib_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d %H:%M:%S") + " UTC"


__all__ = ["SimGateway", "SimStateError", "parse_bar_size", "parse_duration", "parse_end_time"]
