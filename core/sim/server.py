"""The simulated IB gateway: an asyncio TCP server speaking the TWS API.

:class:`SimGateway` accepts TWS API clients (ib_async, the official ibapi, anything that
speaks the wire protocol), translates their requests for the engine side
(:mod:`core.sim.universe`, :mod:`core.sim.market`, :mod:`core.sim.engine`) and streams
the engine's events back as TWS messages.

Concurrency model: everything runs on one asyncio loop. Each client has a
:class:`~core.sim.parts.Session` whose messages are written with one ``transport.write``
per message, so messages never interleave, and writes never block: a client that stops reading is
dropped once its send buffer passes :data:`MAX_SEND_BUFFER` instead of holding up others.

The gateway is assembled from parts, one module each: connections, dispatch and the
market walk here; request handlers in :mod:`core.sim.serve_market`,
:mod:`core.sim.serve_orders` and :mod:`core.sim.serve_account`; fault injection in
:mod:`core.sim.faults`; the state file in :mod:`core.sim.persistence`. What the parts
share is declared in :mod:`core.sim.parts`.

Logging goes to ``logging.getLogger("core.sim")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.sim import protocol as p
from core.sim.engine import Engine
from core.sim.faults import FaultInjection
from core.sim.market import Market
from core.sim.model import Instrument
from core.sim.parts import (
    FARM_NOTICES,
    LINK_DOWN_NOTICES,
    MSG_CLIENT_ID_IN_USE,
    RequestRefused,
    Session,
    request_id,
)
from core.sim.persistence import STATE_SAVE_DELAY, SimStateError, StateFile, snapshot
from core.sim.serve_account import AccountHandlers
from core.sim.serve_market import (
    MarketDataHandlers,
    parse_bar_size,
    parse_duration,
    parse_end_time,
)
from core.sim.serve_orders import OrderHandlers
from core.sim.universe import Universe

log = logging.getLogger("core.sim")

MAX_SEND_BUFFER = 16 * 1024 * 1024
"""A client whose unsent data exceeds this many bytes is too slow and gets dropped."""
HANDSHAKE_TIMEOUT = 30.0
"""Seconds a new connection may take to send its ``API\\0`` hello and version range."""


class SimGateway(FaultInjection, MarketDataHandlers, OrderHandlers, AccountHandlers):
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
        self._sessions: set[Session] = set()
        self._by_client: dict[int, Session] = {}
        self._next_ids: dict[int, int] = {}
        self._serial = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tick_task: asyncio.Task[None] | None = None
        self._state_file = StateFile(self.state_path) if self.state_path is not None else None
        self._refuse_handle: asyncio.TimerHandle | None = None
        self._refusing_until = 0.0
        self._link_down = False  # TWS up but not logged in to IB (nightly reset)
        self._reset_task: asyncio.Task[None] | None = None
        self._running = False
        self._market_rules: dict[float, int] = {}
        self._contracts: dict[tuple[int, int], p.ContractSpec] = {}

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
        if self._state_file is not None:
            self._state_file.cancel()
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

    # --- connections ----------------------------------------------------------------------

    def _live_sessions(self) -> list[Session]:
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
        session = Session(self._serial, reader, writer, peer, max_send_buffer=MAX_SEND_BUFFER)
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

    def _end_session(self, session: Session) -> None:
        self._sessions.discard(session)
        if session.client_id is not None and self._by_client.get(session.client_id) is session:
            del self._by_client[session.client_id]
        if not session.closed:
            session.closed = True
            session.writer.transport.close()
        log.info("session %s ended", session.describe())

    async def _run_session(self, session: Session) -> None:
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

    def _dispatch(self, session: Session, fields: list[str]) -> None:
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
            self._reject(session, request_id(request), 321, "startApi must come first")
            return
        handler = self._handlers.get(msg_id)
        if handler is None:  # parsed but deliberately ignored (e.g. setServerLogLevel)
            return
        try:
            handler(self, session, request)
        except RequestRefused as exc:
            log.info("%s: %s refused: %s", session.describe(), msg_id.name, exc)
            self._reject(session, request_id(request), exc.code, str(exc))
        except Exception as exc:
            # A bug in one handler must not end the session, nor leave the client waiting.
            log.exception("%s: error handling %s", session.describe(), msg_id.name)
            session.send(
                p.error(
                    session.version,
                    request_id(request),
                    322,
                    f"Error processing request.-'sim' : cause - {type(exc).__name__}: {exc}",
                )
            )

    @staticmethod
    def _reject(session: Session, req_id: int, code: int, cause: str) -> None:
        """Answer a request TWS cannot read (320) or refuses to validate (321 and others)."""
        what = "reading" if code == 320 else "validating"
        text = f"Error {what} request.-'sim' : cause - {cause}"
        session.send(p.error(session.version, req_id, code, text))

    def _on_start_api(self, session: Session, req: p.StartApi) -> None:
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
        # As TWS does when a client id (re)connects: its working orders, unasked.
        if cid != 0:
            for order in self.engine.open_orders(cid):
                self._send_order(session, order)

    def _next_id(self, client_id: int) -> int:
        return max(self._next_ids.get(client_id, 1), 1)

    def _on_req_current_time(self, session: Session, req: p.NoArgs) -> None:
        session.send(p.current_time(int(self.clock())))

    def _on_req_managed_accts(self, session: Session, req: p.NoArgs) -> None:
        session.send(p.managed_accounts(self.accounts))

    def _on_req_user_info(self, session: Session, req: p.ReqId) -> None:
        session.send(p.user_info(req.req_id))

    def _on_set_server_log_level(self, session: Session, req: p.SetServerLogLevel) -> None:
        log.debug("%s: server log level %d (accepted, ignored)", session.describe(), req.level)

    _handlers: dict[p.In, Callable[[Any, Session, Any], None]] = {
        p.In.START_API: _on_start_api,
        p.In.REQ_MKT_DATA: MarketDataHandlers._on_req_mkt_data,
        p.In.CANCEL_MKT_DATA: MarketDataHandlers._on_cancel_mkt_data,
        p.In.REQ_MARKET_DATA_TYPE: MarketDataHandlers._on_req_market_data_type,
        p.In.REQ_CONTRACT_DATA: MarketDataHandlers._on_req_contract_details,
        p.In.REQ_MATCHING_SYMBOLS: MarketDataHandlers._on_req_matching_symbols,
        p.In.REQ_MARKET_RULE: MarketDataHandlers._on_req_market_rule,
        p.In.REQ_HISTORICAL_DATA: MarketDataHandlers._on_req_historical_data,
        p.In.CANCEL_HISTORICAL_DATA: MarketDataHandlers._on_cancel_historical_data,
        p.In.REQ_HEAD_TIMESTAMP: MarketDataHandlers._on_req_head_timestamp,
        p.In.PLACE_ORDER: OrderHandlers._on_place_order,
        p.In.CANCEL_ORDER: OrderHandlers._on_cancel_order,
        p.In.REQ_GLOBAL_CANCEL: OrderHandlers._on_req_global_cancel,
        p.In.REQ_OPEN_ORDERS: OrderHandlers._on_req_open_orders,
        p.In.REQ_ALL_OPEN_ORDERS: OrderHandlers._on_req_all_open_orders,
        p.In.REQ_AUTO_OPEN_ORDERS: OrderHandlers._on_req_auto_open_orders,
        p.In.REQ_COMPLETED_ORDERS: OrderHandlers._on_req_completed_orders,
        p.In.REQ_EXECUTIONS: OrderHandlers._on_req_executions,
        p.In.REQ_IDS: OrderHandlers._on_req_ids,
        p.In.REQ_ACCT_DATA: AccountHandlers._on_req_account_updates,
        p.In.REQ_ACCOUNT_UPDATES_MULTI: AccountHandlers._on_req_account_updates_multi,
        p.In.CANCEL_ACCOUNT_UPDATES_MULTI: AccountHandlers._on_cancel_account_updates_multi,
        p.In.REQ_ACCOUNT_SUMMARY: AccountHandlers._on_req_account_summary,
        p.In.CANCEL_ACCOUNT_SUMMARY: AccountHandlers._on_cancel_account_summary,
        p.In.REQ_POSITIONS: AccountHandlers._on_req_positions,
        p.In.CANCEL_POSITIONS: AccountHandlers._on_cancel_positions,
        p.In.REQ_PNL: AccountHandlers._on_req_pnl,
        p.In.CANCEL_PNL: AccountHandlers._on_cancel_pnl,
        p.In.REQ_PNL_SINGLE: AccountHandlers._on_req_pnl_single,
        p.In.CANCEL_PNL_SINGLE: AccountHandlers._on_cancel_pnl_single,
        p.In.REQ_CURRENT_TIME: _on_req_current_time,
        p.In.REQ_MANAGED_ACCTS: _on_req_managed_accts,
        p.In.REQ_USER_INFO: _on_req_user_info,
        p.In.SET_SERVER_LOGLEVEL: _on_set_server_log_level,
        p.In.REQ_MKT_DEPTH: MarketDataHandlers._on_req_mkt_depth,
        p.In.CANCEL_MKT_DEPTH: MarketDataHandlers._on_cancel_mkt_depth,
        p.In.REQ_MKT_DEPTH_EXCHANGES: MarketDataHandlers._on_req_mkt_depth_exchanges,
    }

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

    # --- state ----------------------------------------------------------------------------

    def _schedule_save(self) -> None:
        if self._state_file is not None and self._running:
            self._state_file.schedule(self.state)

    def state(self) -> dict[str, Any]:
        """The JSON-serialisable state the gateway saves (engine, market, order ids)."""
        return snapshot(self.seed, self.accounts, self._next_ids, self.engine)

    def _save_state(self) -> None:
        if self._state_file is not None:
            self._state_file.write(self.state())

    def _load_state(self) -> None:
        if self._state_file is None:
            return
        loaded = self._state_file.load(self.universe, self.market, self.clock)
        if loaded is None:
            return
        engine, next_ids = loaded
        if engine.accounts != self.accounts:
            log.warning(
                "state file %s has accounts %s; using them instead of %s",
                self._state_file.path,
                engine.accounts,
                self.accounts,
            )
            self.accounts = list(engine.accounts)
        self.engine = engine
        self._next_ids = next_ids
        log.info(
            "loaded state from %s: %d working order(s), %d position(s)",
            self._state_file.path,
            len(engine.open_orders()),
            len(engine.positions()),
        )


__all__ = [
    "HANDSHAKE_TIMEOUT",
    "MAX_SEND_BUFFER",
    "STATE_SAVE_DELAY",
    "SimGateway",
    "SimStateError",
    "parse_bar_size",
    "parse_duration",
    "parse_end_time",
]
