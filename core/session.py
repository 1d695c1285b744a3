"""The running core of one console: embedded gateway, connection and every manager.

``main.py`` builds a :class:`ConsoleSession` from the settings and hands it to the GUI.
With no TWS port configured, the session starts the simulated gateway in-process on a
free loopback port, with its state in the user's data directory, so positions persist
between runs. Everything the GUI shows comes from the managers built here; the GUI
subscribes to their events and calls their commands.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import pandas as pd
from eventkit import Event
from ib_async import Contract, ContractDetails

from core.account import AccountInfo
from core.audit import AuditLog
from core.config import Settings, default_writer, user_data_dir
from core.connection import (
    Connection,
    ConnectionFailed,
    ConnectionState,
    ConnectionStatusChanged,
    ReconnectPolicy,
)
from core.contracts import ContractService
from core.emergency import EmergencyStop
from core.events import (
    FillRecorded,
    PositionChanged,
    SessionResynchronised,
    TradingState,
    TradingStateChanged,
)
from core.heap import trim_heap_forever
from core.marketdata import MarketData
from core.order_entry import InstrumentInfo, OrderEntry
from core.orderids import OrderIdSequence
from core.portfolio import PortfolioManager
from core.risk import RiskManager, RiskPolicy
from core.sim import SimGateway
from core.store import ACCOUNT_TOTAL, Store, StoreError, foreign_fill
from core.strategies import StrategyManager
from core.trading import TradeManager
from core.tradingday import DEFAULT_TZ, TradingDay, TradingDayStarted

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """What a session needs to start; ``port=None`` means the embedded simulated gateway."""

    host: str = "127.0.0.1"
    port: int | None = None
    client_id: int = 1
    connect_timeout: float = 10.0
    readonly: bool = False
    account: str = ""
    sim_state_file: Path | None = None
    sim_seed: int = 0
    sim_accounts: tuple[str, ...] = ("DU0000001",)
    sim_tick_interval: float = 0.25
    #: ArcticDB URI; None keeps everything in memory (no journal: tests, demos).
    store_uri: str | None = None
    #: Where the order-id reservation is kept (ids are never reused across restarts).
    order_ids_file: Path | None = None
    #: Reconnection backoff and heartbeat (None: :class:`ReconnectPolicy`'s defaults).
    reconnect_policy: ReconnectPolicy | None = None
    #: The trading day's boundary: ``day_start`` o'clock in ``day_tz`` (IB's US day:
    #: midnight, New York). Portfolio, risk and the GUI roll over there, in place.
    day_tz: str = DEFAULT_TZ
    day_start: time = time(0)
    #: This console's writer name in the store; empty: :func:`core.config.default_writer`.
    store_writer: str = ""
    store_lease_seconds: float = 30.0
    store_call_timeout: float = 10.0
    store_shutdown_timeout: float = 15.0
    #: How often to look for fills other consoles journalled (None: never).
    store_follow_seconds: float | None = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionOptions:
        """The session's options from the loaded settings."""
        ib, sim = settings.ib, settings.sim
        return cls(
            host=ib.host,
            port=ib.port,
            client_id=ib.client_id,
            connect_timeout=ib.connect_timeout,
            readonly=ib.readonly,
            account=ib.account,
            sim_state_file=sim.state_file,
            sim_seed=sim.seed,
            sim_accounts=tuple(sim.accounts),
            sim_tick_interval=sim.tick_interval,
            store_uri=settings.store.uri,
            order_ids_file=user_data_dir() / "order-ids.json",
            day_tz=ib.day_tz,
            day_start=ib.day_start,
            store_writer=settings.store_writer,
            store_lease_seconds=settings.store.lease_seconds,
            store_call_timeout=settings.store.call_timeout,
            store_shutdown_timeout=settings.store.shutdown_timeout,
        )

    @property
    def writer(self) -> str:
        """The store writer name these options give (configured, else derived)."""
        return self.store_writer or default_writer(
            self.account, self.client_id, self.host, self.port
        )


class ConsoleSession:
    """Owns the embedded gateway (if any), the connection and the managers.

    Events:
        * ``resynchronised`` (:class:`core.events.SessionResynchronised`): after every
          reconnect, once orders, executions and market data are caught up.
        * ``trading_day.dayStarted`` (:class:`core.tradingday.TradingDayStarted`): a new
          trading day began (after the portfolio and risk rolled over); the GUI drops
          the previous day's rows.
    """

    def __init__(
        self,
        options: SessionOptions,
        settings: Settings | None = None,
        *,
        store_uri: str | None = None,
    ) -> None:
        if store_uri is not None:
            options = dataclasses.replace(options, store_uri=store_uri)
        self.options = options
        self.settings = settings
        self.gateway: SimGateway | None = None
        self.connection: Connection | None = None
        self.audit = AuditLog()
        self.strategies: StrategyManager | None = None
        self.trades: TradeManager | None = None
        self.contracts: ContractService | None = None
        self.market: MarketData | None = None
        self.account: AccountInfo | None = None
        self.order_entry: OrderEntry | None = None
        self.store: Store | None = None
        self.portfolio: PortfolioManager | None = None
        self.risk: RiskManager | None = None
        self._marked: set[int] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.resynchronised: Event = Event("resynchronised")
        self.trading_day = TradingDay(options.day_tz, options.day_start)
        self.trading_day.dayStarted += self._on_day_started
        self._down_since: datetime | None = None
        #: (fill: FillRecorded) another console's fill, strategy marked ``name@writer``.
        self.foreignFillReceived: Event = Event("foreignFillReceived")

    @property
    def embedded(self) -> bool:
        """True when the session runs against its own simulated gateway."""
        return self.options.port is None

    async def start(self) -> None:
        """Start the embedded gateway if needed, build the managers, and connect."""
        await self.prepare()
        await self.connect()

    async def prepare(self) -> None:
        """Everything but connecting: the embedded gateway, the store, every manager.

        The persisted trading state (a HALTED console stays HALTED) is known when this
        returns, so a window can show it before (or without) a connection.
        """
        opts = self.options
        host, port = opts.host, opts.port
        if port is None:
            if opts.sim_state_file is not None:
                opts.sim_state_file.parent.mkdir(parents=True, exist_ok=True)
            self.gateway = SimGateway(
                "127.0.0.1",
                0,
                seed=opts.sim_seed,
                accounts=opts.sim_accounts,
                state_path=opts.sim_state_file,
                tick_interval=opts.sim_tick_interval,
            )
            await self.gateway.start()
            host, port = "127.0.0.1", self.gateway.port
            log.info("embedded simulated gateway on %s:%d", host, port)
        if opts.store_uri is not None:
            self.store = await Store(
                opts.store_uri,
                writer=opts.writer,
                lease_seconds=opts.store_lease_seconds,
                call_timeout=opts.store_call_timeout,
                client_id=opts.client_id,
                description=f"client {opts.client_id}"
                + (f", account {opts.account}" if opts.account else ""),
            ).open()
            self.audit.attach_sink(self.store.append_audit)
        conn = self.connection = Connection(
            host,
            port,
            opts.client_id,
            timeout=opts.connect_timeout,
            readonly=opts.readonly,
            account=opts.account,
            policy=opts.reconnect_policy or ReconnectPolicy(),
        )
        ib = conn.ib
        self.contracts = ContractService(ib)
        self.market = MarketData(ib, conn)
        self.account = AccountInfo(ib, opts.account, conn)
        self.strategies = StrategyManager()
        contracts = self.contracts

        def details_lookup(c: Contract) -> ContractDetails | None:
            return contracts.cached(c) or (contracts.by_con_id(c.conId) if c.conId else None)

        self.trades = TradeManager(
            ib,
            self.strategies,
            journal=self.store,
            audit=self.audit,
            details_lookup=details_lookup,
            connection=conn,
            order_ids=OrderIdSequence(opts.order_ids_file),
        )
        # Before connecting: IB's openOrder carries no placement time.
        await self.trades.restore()
        self.order_entry = OrderEntry(self.contracts, self.market, self.trades)
        self.portfolio = PortfolioManager(
            ib,
            self.store,
            account=opts.account,
            audit=self.audit.append,
            trading_day=self.trading_day,
        )
        self.portfolio.positionChanged += self._on_position
        self.trades.fillReceived += self.portfolio.on_fill
        await self.portfolio.restore()
        if self.store is not None and opts.store_follow_seconds is not None:
            # The account's book across consoles: other consoles' fills, as theirs.
            self.store.foreignFillsEvent += self._on_foreign_fills
            self.store.follow(opts.store_follow_seconds)
        risk_settings = self.settings.risk if self.settings is not None else None
        policy = RiskPolicy(
            breach_action=risk_settings.breach_action if risk_settings else "reducing",
            on_stale_data=risk_settings.on_stale_data if risk_settings else "contract",
            reduce_on_link_lost=risk_settings.reduce_on_link_lost if risk_settings else True,
        )
        self.risk = (
            RiskManager.from_settings(
                risk_settings,
                store=self.store,
                audit=self.audit,
                policy=policy,
                trading_day=self.trading_day,
            )
            if risk_settings is not None
            else RiskManager(
                store=self.store, audit=self.audit, policy=policy, trading_day=self.trading_day
            )
        )
        await self.risk.restore()  # a HALTED console stays HALTED across restarts
        risk = self.risk
        risk.attach_trade_manager(self.trades)
        risk.attach_ib(ib, opts.account)
        risk.attach_connection(conn, self.trades)
        risk.attach_market_data(self.market)
        risk.attach_account(self.account)
        risk.attach_portfolio(self.portfolio)
        risk.attach_emergency_stop(
            EmergencyStop(
                risk, self.trades, conn, account=opts.account, details_lookup=details_lookup
            )
        )
        conn.connected += self._on_connected
        conn.statusChanged += self._on_status
        self._spawn(trim_heap_forever())  # a week-long run keeps a flat resident size

    async def connect(self, *, keep_trying: bool = False) -> bool:
        """Connect (after :meth:`prepare`) and start the strategies; True when connected.

        A first attempt that fails raises :class:`core.connection.ConnectionFailed`, or
        with ``keep_trying`` goes on in the background with the reconnection backoff
        (its statuses say the attempt and the next try) and returns False.
        """
        assert self.connection is not None and self.strategies is not None
        assert self.trades is not None
        connected = True
        try:
            await self.connection.connect()  # `connected` starts subscriptions, resync
        except ConnectionFailed as exc:
            if not keep_trying:
                raise
            log.warning("%s; retrying with backoff", exc)
            self.connection.keep_trying()
            connected = False
        await self.strategies.start(self.trades)
        self.trading_day.run()
        return connected

    def _on_foreign_fills(self, writer: str, fills: list[FillRecorded]) -> None:
        """Another console journalled fills: into the book under its strategies, marked
        as its (``strategy@writer``), so positions, P&L and reconciliation cover the
        account and none of it passes for this console's."""
        assert self.portfolio is not None
        for fill in fills:
            relabelled = foreign_fill(fill, writer)
            self.portfolio.on_fill(relabelled)
            self.foreignFillReceived.emit(relabelled)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("session task failed: %s", task.exception(), exc_info=task.exception())

    def _on_connected(self, reconnect: bool) -> None:
        # Reconcile once the day's executions have been re-read (TradeManager.resync).
        self._spawn(self._reconcile_after_sync(reconnect))

    def _on_day_started(self, event: TradingDayStarted) -> None:
        if self.trades is not None:
            self.trades.start_day()  # one day's order bookkeeping, not a week's
        # In the audit trail too: the day's limits and figures started again here.
        self.audit.record(
            "system",
            "new_trading_day",
            f"{event.day.isoformat()} from {event.start:%Y-%m-%d %H:%M} UTC "
            f"(previous {event.previous or '-'}): daily P&L and loss limits reset",
            "rolled over",
        )

    def _on_status(self, status: ConnectionStatusChanged) -> None:
        if self._down_since is None and status.state in (
            ConnectionState.DISCONNECTED,
            ConnectionState.RECONNECTING,
        ):
            self._down_since = status.time

    async def _reconcile_after_sync(self, reconnect: bool = False) -> None:
        assert self.trades is not None and self.portfolio is not None
        recovered = await self.trades.resync()
        if reconnect:
            self._tell_resynchronised(recovered)
        else:
            self._down_since = None  # failed first attempts are not an outage
        await self.portfolio.reconcile(settle=0.5)
        for event in self.position_events():
            self._on_position(event)

    def _tell_resynchronised(self, recovered: int) -> None:
        assert self.connection is not None
        event = SessionResynchronised(
            down_since=self._down_since,
            executions_recovered=recovered,
            working_orders=sum(not t.isDone() for t in self.connection.ib.openTrades()),
            subscriptions=len(self.market.subscriptions) if self.market is not None else 0,
            trading_state=(self.risk.state_of() if self.risk is not None else TradingState.ACTIVE),
        )
        self._down_since = None
        log.warning("%s", event.describe())
        self.resynchronised.emit(event)

    def trading_state_events(self) -> list[TradingStateChanged]:
        """The current trading states as events (for a window attaching late)."""
        if self.risk is None:
            return []
        return [
            TradingStateChanged(
                scope, state, state, self.risk.reason_of(scope) or "no restriction in force", "risk"
            )
            for scope, state in self.risk.states().items()
        ]

    def position_events(self) -> list[PositionChanged]:
        """The current state of every (strategy, contract) position, as events."""
        if self.portfolio is None:
            return []
        return [p.changed() for p in self.portfolio.book]

    def _on_position(self, event: PositionChanged) -> None:
        """Stream marks for every contract the book holds, so unrealized P&L is live."""
        if event.con_id in self._marked or not event.quantity:
            return
        if self.connection is None or not self.connection.is_connected:
            return  # restored before connecting: subscribed once connected
        self._marked.add(event.con_id)
        self._spawn(self._subscribe_con_id(event.con_id))

    async def _subscribe_con_id(self, con_id: int) -> None:
        assert self.contracts is not None and self.market is not None
        try:
            contract = await self.contracts.qualify(Contract(conId=con_id))
        except BaseException:
            self._marked.discard(con_id)  # try again on the next position event
            raise
        self.market.subscribe(contract)

    async def size_by_risk(self, info: InstrumentInfo) -> float | None:
        """The risk manager's volatility-based quantity for the ticket."""
        if self.risk is None or self.market is None:
            return None
        size = await self.risk.suggest_size(
            self.market,
            info.contract,
            multiplier=info.multiplier,
            lot_size=info.size_increment,
        )
        return float(size.quantity)

    async def todays_fills(self) -> list[FillRecorded]:
        """The day's fills from the journal, for the fills view at start."""
        if self.store is None:
            return []
        return await self.store.load_book_fills(self.trading_day.start)

    async def todays_pnl(self) -> pd.DataFrame | None:
        """The day's P&L points from the store, for the chart at start."""
        if self.store is None:
            return None
        df = await self.store.pnl(self.trading_day.start, datetime.now(UTC))
        if len(df):
            # the store names the account series "*"; events and the chart use None
            df["strategy"] = df["strategy"].where(df["strategy"] != ACCOUNT_TOTAL)
        return df

    async def stop(self) -> None:
        """Stop strategies, flush fills, disconnect, then stop the embedded gateway."""
        self.trading_day.stop()
        if self.strategies is not None:
            await self.strategies.stop()
        if self.trades is not None:
            timeout = self.options.store_shutdown_timeout
            pending = await self.trades.wait_journalled(timeout)
            if pending:
                log.error(
                    "closing with %d fills not journalled after %g s: %s; IB replays them "
                    "at the next connect",
                    len(pending),
                    timeout,
                    ", ".join(pending),
                )
        for task in list(self._tasks):
            task.cancel()
        if self.portfolio is not None:
            self.portfolio.close()
        await self.audit.flush()
        if self.connection is not None:
            await self.connection.disconnect()
        if self.store is not None:
            try:
                await self.store.close(self.options.store_shutdown_timeout)
            except StoreError as exc:
                log.error("the store did not close cleanly: %s", exc)
        if self.gateway is not None:
            await self.gateway.stop()
