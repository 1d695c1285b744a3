"""What the simulated gateway's parts share: a client session, TWS's notices, and the
gateway's state as the parts see it.

:class:`SimGateway` (:mod:`core.sim.server`) is assembled from parts, each in its own
module: the request handlers for market data (:mod:`core.sim.serve_market`), orders
(:mod:`core.sim.serve_orders`) and the account (:mod:`core.sim.serve_account`), fault
injection (:mod:`core.sim.faults`) and the state file (:mod:`core.sim.persistence`).
:class:`GatewayParts` declares, for the type checker and the reader, the attributes and
methods the parts use of each other; the gateway provides them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.sim import protocol as p
from core.sim.engine import Engine
from core.sim.market import Market
from core.sim.model import EngineEvent, Instrument
from core.sim.universe import Universe

log = logging.getLogger("core.sim")

DEFAULT_MAX_SEND_BUFFER = 16 * 1024 * 1024

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


class RequestRefused(ValueError):
    """A request handler's refusal of a well-formed but invalid request: answered with
    error ``code`` (321 by default) and the request's id; the session stays."""

    def __init__(self, cause: str, code: int = 321) -> None:
        super().__init__(cause)
        self.code = code


def request_id(request: object) -> int:
    """The id an error reply about ``request`` carries: its reqId or orderId, else -1."""
    for name in ("req_id", "order_id"):
        value = getattr(request, name, None)
        if isinstance(value, int):
            return value
    return -1


@dataclass(slots=True)
class MktSub:
    """A market data subscription: what was asked and served, and what was last sent."""

    con_id: int
    requested: int = 1  # the market data type the client asked for (1-4)
    data_type: int = 1  # the type served: 1 live, 2 frozen, 3 delayed, 4 delayed frozen
    last: dict[int, float] = field(default_factory=dict)  # tick type -> value last sent

    @property
    def delayed(self) -> bool:
        """Ticks go out as the delayed tick types (66-76, 88)."""
        return self.data_type in (3, 4)


@dataclass(slots=True)
class DepthSub:
    """A market depth subscription and the book the client holds."""

    con_id: int
    rows: int
    smart: bool
    market_maker: str
    # what the client holds: (price, size) by position, bids and asks
    bids: list[tuple[float, float]] = field(default_factory=list)
    asks: list[tuple[float, float]] = field(default_factory=list)


@dataclass(slots=True)
class HistSub:
    """Historical bars kept up to date (keepUpToDate)."""

    con_id: int
    bar_size_s: int
    what: str
    use_rth: bool
    format_date: int


@dataclass(eq=False)
class Session:
    """One client connection and everything it subscribed to."""

    serial: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    peer: str
    version: int = 0
    client_id: int | None = None
    auto_open_orders: bool = False
    market_data_type: int = 1
    mkt: dict[int, MktSub] = field(default_factory=dict)
    hist: dict[int, HistSub] = field(default_factory=dict)
    depth: dict[int, DepthSub] = field(default_factory=dict)
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
    max_send_buffer: int = DEFAULT_MAX_SEND_BUFFER
    """A client whose unsent data exceeds this many bytes is too slow and gets dropped."""

    def send(self, msg: p.Msg) -> None:
        """Queue one message; drops the client when it cannot keep up."""
        if self.closed:
            return
        transport = self.writer.transport
        if transport.is_closing():
            return
        transport.write(p.encode(msg))
        if transport.get_write_buffer_size() > self.max_send_buffer:
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


class GatewayParts:
    """The state and services the gateway's parts share (declarations only).

    Each part is a mixin of :class:`~core.sim.server.SimGateway`; this base names what
    they may use of the gateway and of each other, so that each part reads, and type
    checks, on its own.
    """

    accounts: list[str]
    clock: Callable[[], float]
    universe: Universe
    market: Market
    engine: Engine
    live_data: bool
    max_depth_requests: int
    port: int
    _running: bool
    _server: asyncio.Server | None
    _sessions: set[Session]
    _by_client: dict[int, Session]
    _next_ids: dict[int, int]
    _tasks: set[asyncio.Task[Any]]
    _refuse_handle: asyncio.TimerHandle | None
    _link_down: bool
    _reset_task: asyncio.Task[None] | None
    _market_rules: dict[float, int]
    _contracts: dict[tuple[int, int], p.ContractSpec]

    if TYPE_CHECKING:

        def _live_sessions(self) -> list[Session]: ...
        def _spawn(self, coro: Any) -> None: ...
        def _task_done(self, task: asyncio.Task[Any]) -> None: ...
        async def _listen(self) -> None: ...
        def _next_id(self, client_id: int) -> int: ...
        def _schedule_save(self) -> None: ...
        def _emit(self, events: Iterable[EngineEvent]) -> None: ...
        def _resolve_one(
            self, session: Session, req_id: int, c: p.ContractSpec
        ) -> Instrument | None: ...
        def _announce_data_types(self) -> None: ...
        def _push_quotes(self, changed: set[int]) -> None: ...
        def _push_all_accounts(self) -> None: ...
        def _push_account_updates(self, session: Session, initial: bool = False) -> None: ...
        def _push_positions(self, session: Session) -> None: ...
        def _push_pnl(self, session: Session) -> None: ...
