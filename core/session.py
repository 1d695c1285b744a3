"""The running core of one console: embedded gateway, connection and every manager.

``main.py`` builds a :class:`ConsoleSession` from the settings and hands it to the GUI.
With no TWS port configured, the session starts the simulated gateway in-process on a
free loopback port, with its state in the user's data directory, so positions persist
between runs. Everything the GUI shows comes from the managers built here; the GUI
subscribes to their events and calls their commands (and the few commands here that
span managers: cancel by order id, close a position, cancel everything and wait).

A session is built whole, once: :meth:`ConsoleSession.prepare` starts the embedded
gateway, opens the store, builds every manager and restores the persisted book and
trading state, and only then returns the session; :meth:`ConsoleSession.start` also
connects. No part is ever missing or replaced afterwards, so nothing that holds a
session checks for one. Connecting is the one step after: a window can bind to a
prepared session and show its persisted state (a HALTED console stays HALTED) while
:meth:`ConsoleSession.connect` keeps trying a gateway that is not up yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, Final

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
    ReconciliationBreakFound,
    SessionResynchronised,
    StoreHealthChanged,
    TradingStateChanged,
    now_utc,
)
from core.heap import trim_heap_forever
from core.marketdata import MarketData
from core.order_entry import InstrumentInfo, OrderEntry
from core.orderids import OrderIdSequence
from core.orders import create_market_order
from core.portfolio import PortfolioManager
from core.risk import RiskManager, RiskPolicy
from core.sim import SimGateway
from core.store import ACCOUNT_TOTAL, Store, StoreError, foreign_fill
from core.strategies import StrategyManager
from core.tasks import Tasks
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
    #: The clock the emergency stop reads to tell a contract's regular hours (market
    #: orders inside them, marketable limits outside); tests pin it to a weekday or a
    #: weekend so the path they test does not depend on when they run.
    stop_clock: Callable[[], datetime] = now_utc
    #: The clock of the trading day and of the embedded gateway (the times of its fills
    #: and quotes): tests move it across the day's boundary instead of waiting for it.
    clock: Callable[[], datetime] = now_utc

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


def emergency_stop_for(
    risk: RiskManager, trades: TradeManager, connection: Connection, **options: Any
) -> EmergencyStop:
    """The emergency stop wired to ``risk`` the one way: HALTED set through risk's trading
    states, positions and quotes from its book, flattening orders authorised by its
    flatten authority, and a breach whose action is the stop running it. ``options``
    are :class:`core.emergency.EmergencyStop`'s (account, details lookup, timeouts, clock).
    """
    stop = EmergencyStop(
        trades,
        connection,
        states=risk,
        view=risk.book,
        audit=risk.audit,
        authority=risk.flatten_authority,
        **options,
    )
    risk.limitBreached += stop.on_breach
    return stop


class ConsoleSession:
    """Owns the embedded gateway (if any), the store (if any), the connection and the
    managers; built whole by :meth:`prepare` or :meth:`start` (see the module docstring).

    ``gateway`` is None exactly when the console talks to a real TWS, and ``store``
    exactly when it keeps everything in memory (no ``store_uri``): facts of the
    configuration, fixed at start, which the GUI never needs to look at. Every other
    part is always there and never replaced.

    Events:
        * ``resynchronised`` (:class:`core.events.SessionResynchronised`): after every
          reconnect, once orders, executions and market data are caught up.
        * ``trading_day.dayStarted`` (:class:`core.tradingday.TradingDayStarted`): a new
          trading day began (after the portfolio and risk rolled over); the GUI drops
          the previous day's rows.
        * ``foreignFillReceived`` (:class:`core.events.FillRecorded`): another console's
          fill, its strategy marked ``name@writer``.
        * ``storeHealthChanged`` (:class:`core.events.StoreHealthChanged`): the store's
          health changed (never emitted without a store).
    """

    def __init__(
        self,
        options: SessionOptions,
        settings: Settings | None,
        *,
        gateway: SimGateway | None,
        store: Store | None,
    ) -> None:
        """Build every manager around a started ``gateway`` and an opened ``store``; no
        I/O. Use :meth:`prepare` or :meth:`start`, which also start and restore."""
        self.options: Final = options
        self.settings: Final = settings
        self.gateway: Final = gateway
        self.store: Final = store
        self._tasks = Tasks("session")
        self._marked: set[int] = set()
        self._down_since: datetime | None = None
        self.resynchronised: Event = Event("resynchronised")
        self.foreignFillReceived: Event = Event("foreignFillReceived")
        self.storeHealthChanged: Event = Event("storeHealthChanged")
        self.trading_day: Final = TradingDay(options.day_tz, options.day_start, now=options.clock)
        self.trading_day.dayStarted += self._on_day_started
        self.audit: Final = AuditLog()
        if store is not None:
            self.audit.attach_sink(store.append_audit)
            store.healthEvent += self.storeHealthChanged.emit
        if gateway is not None:
            host, port = "127.0.0.1", gateway.port
        else:
            assert options.port is not None  # no gateway: a configured TWS
            host, port = options.host, options.port
        conn = Connection(
            host,
            port,
            options.client_id,
            timeout=options.connect_timeout,
            readonly=options.readonly,
            account=options.account,
            policy=options.reconnect_policy or ReconnectPolicy(),
        )
        self.connection: Final = conn
        ib = conn.ib
        contracts = ContractService(ib)
        self.contracts: Final = contracts
        self.market: Final = MarketData(ib, conn)
        self.account: Final = AccountInfo(ib, options.account, conn)
        self.strategies: Final = StrategyManager()

        def details_lookup(c: Contract) -> ContractDetails | None:
            return contracts.cached(c) or (contracts.by_con_id(c.conId) if c.conId else None)

        self.trades: Final = TradeManager(
            ib,
            self.strategies,
            journal=store,
            audit=self.audit,
            details_lookup=details_lookup,
            connection=conn,
            order_ids=OrderIdSequence(options.order_ids_file),
            contracts=contracts,
        )
        self.order_entry: Final = OrderEntry(contracts, self.market, self.trades)
        self.portfolio: Final = PortfolioManager(
            ib,
            store,
            account=options.account,
            audit=self.audit.append,
            trading_day=self.trading_day,
        )
        self.portfolio.positionChanged += self._on_position
        self.trades.fillReceived += self.portfolio.on_fill
        if store is not None and options.store_follow_seconds is not None:
            # The account's book across consoles: other consoles' fills, as theirs.
            store.foreignFillsEvent += self._on_foreign_fills
        risk_settings = settings.risk if settings is not None else None
        policy = RiskPolicy(
            breach_action=risk_settings.breach_action if risk_settings else "reducing",
            on_stale_data=risk_settings.on_stale_data if risk_settings else "contract",
            reduce_on_link_lost=risk_settings.reduce_on_link_lost if risk_settings else True,
        )
        risk = (
            RiskManager.from_settings(
                risk_settings,
                store=store,
                audit=self.audit,
                policy=policy,
                trading_day=self.trading_day,
            )
            if risk_settings is not None
            else RiskManager(
                store=store, audit=self.audit, policy=policy, trading_day=self.trading_day
            )
        )
        self.risk: Final = risk
        risk.attach_trade_manager(self.trades)
        self.order_entry.in_base = risk.in_base  # the ticket's notional in the base currency
        trades = self.trades
        risk.attach_ib(ib, lambda: trades.account)  # the account orders go to
        risk.attach_connection(conn, self.trades)
        risk.attach_market_data(self.market)
        risk.attach_account(self.account)
        risk.attach_portfolio(self.portfolio)
        # The stop depends on risk's parts through Protocols; risk only emits breaches.
        self.emergency: Final = emergency_stop_for(
            risk,
            self.trades,
            conn,
            account=options.account,
            details_lookup=details_lookup,
            now=options.stop_clock,
        )
        conn.connected += self._on_connected
        conn.statusChanged += self._on_status

    # -- building ----------------------------------------------------------------------

    @classmethod
    async def prepare(
        cls,
        options: SessionOptions,
        settings: Settings | None = None,
        *,
        store_uri: str | None = None,
    ) -> ConsoleSession:
        """A whole session, not connected yet: the embedded gateway started, the store
        opened, every manager built, the book and the trading state restored.

        The persisted trading state (a HALTED console stays HALTED) is known when this
        returns, so a window can show it before (or without) a connection. Whatever
        was started is stopped again when a step fails, and the error raised.
        """
        if store_uri is not None:
            options = dataclasses.replace(options, store_uri=store_uri)
        gateway = await _start_gateway(options) if options.port is None else None
        try:
            store = await _open_store(options) if options.store_uri is not None else None
        except BaseException:
            if gateway is not None:
                await gateway.stop()
            raise
        try:
            session = cls(options, settings, gateway=gateway, store=store)
        except BaseException:
            if store is not None:
                await store.close(options.store_shutdown_timeout)
            if gateway is not None:
                await gateway.stop()
            raise
        try:
            await session._restore()
        except BaseException:
            await session.stop()
            raise
        return session

    @classmethod
    async def start(
        cls,
        options: SessionOptions,
        settings: Settings | None = None,
        *,
        store_uri: str | None = None,
    ) -> ConsoleSession:
        """A whole session, connected (:meth:`prepare`, then :meth:`connect`); a failed
        first connection stops what was started and raises
        :class:`core.connection.ConnectionFailed`."""
        session = await cls.prepare(options, settings, store_uri=store_uri)
        try:
            await session.connect()
        except BaseException:
            await session.stop()
            raise
        return session

    async def _restore(self) -> None:
        # Before connecting: IB's openOrder carries no placement time.
        await self.trades.restore()
        await self.portfolio.restore()
        if self.store is not None and self.options.store_follow_seconds is not None:
            self.store.follow(self.options.store_follow_seconds)
        await self.risk.restore()  # a HALTED console stays HALTED across restarts
        self._tasks.spawn(trim_heap_forever(), "trim heap")  # a flat resident size all week

    @property
    def embedded(self) -> bool:
        """True when the session runs against its own simulated gateway."""
        return self.gateway is not None

    async def connect(self, *, keep_trying: bool = False) -> bool:
        """Connect and start the strategies; True when connected.

        A first attempt that fails raises :class:`core.connection.ConnectionFailed`, or
        with ``keep_trying`` goes on in the background with the reconnection backoff
        (its statuses say the attempt and the next try) and returns False.
        """
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

    # -- what the GUI shows --------------------------------------------------------------

    def trading_state_events(self) -> list[TradingStateChanged]:
        """The current trading states as events (for a window binding late)."""
        return self.risk.state_events()  # with the actor and time each was set

    def position_events(self) -> list[PositionChanged]:
        """The current state of every (strategy, contract) position, as events."""
        return [p.changed() for p in self.portfolio.book]

    def store_health(self) -> StoreHealthChanged | None:
        """The store's health now; None when the session keeps everything in memory."""
        return self.store.health() if self.store is not None else None

    def working_orders_at_ib(self) -> int:
        """Orders working at IB that this console sees (0 when not connected)."""
        if not self.connection.is_connected:
            return 0
        return sum(not t.isDone() for t in self.connection.ib.openTrades())

    async def todays_fills(self) -> list[FillRecorded]:
        """The day's fills from the journal, for the fills view at start."""
        if self.store is None:
            return []
        return await self.store.load_book_fills(self.trading_day.start)

    async def todays_pnl(self) -> pd.DataFrame:
        """The day's P&L points from the store, for the chart at start (empty without)."""
        if self.store is None:
            return pd.DataFrame()
        df = await self.store.pnl(self.trading_day.start, datetime.now(UTC))
        if len(df):
            # the store names the account series "*"; events and the chart use None
            df["strategy"] = df["strategy"].where(df["strategy"] != ACCOUNT_TOTAL)
        return df

    # -- commands that span managers -----------------------------------------------------

    async def size_by_risk(self, info: InstrumentInfo) -> float:
        """The risk manager's volatility-based quantity for the ticket."""
        size = await self.risk.suggest_size(
            self.market,
            info.contract,
            multiplier=info.multiplier,
            lot_size=info.size_increment,
        )
        return float(size.quantity)

    def cancel_order(self, order_id: int, *, actor: str = "gui") -> None:
        """Cancel this client's working order ``order_id``.

        Raises ``LookupError`` when it is not an order of this session, and
        :class:`core.trading.OrderRefused` when the cancel cannot be sent.
        """
        trade = self.trades.trade_for_order_id(order_id)
        if trade is None:
            raise LookupError(f"order {order_id} is not one of this session's")
        self.trades.cancel_order(trade, actor=actor)

    async def close_position(
        self, symbol: str, strategy: str, quantity: float, *, reverse: bool = False
    ) -> None:
        """Send the market order that closes (or with ``reverse`` reverses) a position of
        ``quantity`` (signed) held by ``strategy``; it passes the risk check like any
        order (:class:`core.trading.OrderRefused` says why not)."""
        if not quantity:
            return
        side = "SELL" if quantity > 0 else "BUY"
        size = abs(quantity) * (2 if reverse else 1)
        info = await self.order_entry.instrument(symbol)
        self.order_entry.place(info, create_market_order(side, size), strategy)

    async def resolve_break(self, brk: ReconciliationBreakFound, *, actor: str = "gui") -> None:
        """Attribute a break's difference to ``external`` (journalled, audited), then
        reconcile again so the break clears once IB and the journal agree."""
        await self.portfolio.reconciliation.resolve_break(brk, actor=actor)
        await self.portfolio.reconciliation.reconcile(confirm=0)

    async def cancel_all_and_wait(self, timeout: float = 5.0, *, actor: str = "gui") -> int:
        """Cancel every working order and wait (at most ``timeout`` s) for IB to confirm;
        returns how many are still working (e.g. before closing the console)."""
        all_done = asyncio.Event()

        def check(*_: object) -> None:
            if not self.working_orders_at_ib():  # or the link went: none seen working
                all_done.set()

        # IB confirms each cancel with an order status; the session's view follows it.
        self.trades.orderUpdated += check
        self.connection.statusChanged += check
        try:
            self.trades.cancel_all(actor=actor)
            check()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_done.wait(), timeout)
        finally:
            self.trades.orderUpdated -= check
            self.connection.statusChanged -= check
        return self.working_orders_at_ib()

    # -- internals -----------------------------------------------------------------------

    def _on_foreign_fills(self, writer: str, fills: list[FillRecorded]) -> None:
        """Another console journalled fills: into the book under its strategies, marked
        as its (``strategy@writer``), so positions, P&L and reconciliation cover the
        account and none of it passes for this console's."""
        for fill in fills:
            relabelled = foreign_fill(fill, writer)
            self.portfolio.on_fill(relabelled)
            self.foreignFillReceived.emit(relabelled)

    def _on_connected(self, reconnect: bool) -> None:
        # Reconcile once the day's executions have been re-read (TradeManager.resync).
        self._tasks.spawn(self._reconcile_after_sync(reconnect), "reconcile after sync")

    def _on_day_started(self, event: TradingDayStarted) -> None:
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
        recovered = await self.trades.resync()
        if reconnect:
            self._tell_resynchronised(recovered)
        else:
            self._down_since = None  # failed first attempts are not an outage
        await self.portfolio.reconciliation.reconcile(settle=0.5)
        for event in self.position_events():
            self._on_position(event)

    def _tell_resynchronised(self, recovered: int) -> None:
        event = SessionResynchronised(
            down_since=self._down_since,
            executions_recovered=recovered,
            working_orders=self.working_orders_at_ib(),
            subscriptions=len(self.market.subscriptions),
            trading_state=self.risk.state_of(),
        )
        self._down_since = None
        log.warning("%s", event.describe())
        self.resynchronised.emit(event)

    def _on_position(self, event: PositionChanged) -> None:
        """Stream marks for every contract the book holds, so unrealized P&L is live."""
        if event.con_id in self._marked or not event.quantity:
            return
        if not self.connection.is_connected:
            return  # restored before connecting: subscribed once connected
        self._marked.add(event.con_id)
        self._tasks.spawn(self._subscribe_con_id(event.con_id), f"marks of {event.con_id}")

    async def _subscribe_con_id(self, con_id: int) -> None:
        try:
            contract = await self.contracts.qualify(Contract(conId=con_id))
        except BaseException:
            self._marked.discard(con_id)  # try again on the next position event
            raise
        self.market.subscribe(contract)

    async def stop(self) -> None:
        """Stop strategies, flush fills, disconnect, then stop the embedded gateway."""
        self.trading_day.stop()
        await self.strategies.stop()
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
        await self._tasks.cancel_all()
        self.portfolio.close()
        await self.audit.flush()
        await self.connection.disconnect()
        if self.store is not None:
            try:
                await self.store.close(self.options.store_shutdown_timeout)
            except StoreError as exc:
                log.error("the store did not close cleanly: %s", exc)
        if self.gateway is not None:
            await self.gateway.stop()


async def _start_gateway(opts: SessionOptions) -> SimGateway:
    """The embedded simulated gateway, listening on a free loopback port."""
    if opts.sim_state_file is not None:
        opts.sim_state_file.parent.mkdir(parents=True, exist_ok=True)
    gateway = SimGateway(
        "127.0.0.1",
        0,
        seed=opts.sim_seed,
        accounts=opts.sim_accounts,
        state_path=opts.sim_state_file,
        tick_interval=opts.sim_tick_interval,
        clock=lambda: opts.clock().timestamp(),
    )
    await gateway.start()
    log.info("embedded simulated gateway on 127.0.0.1:%d", gateway.port)
    return gateway


async def _open_store(opts: SessionOptions) -> Store:
    """The store at ``opts.store_uri``, opened under this console's writer name."""
    assert opts.store_uri is not None
    return await Store(
        opts.store_uri,
        writer=opts.writer,
        lease_seconds=opts.store_lease_seconds,
        call_timeout=opts.store_call_timeout,
        client_id=opts.client_id,
        description=f"client {opts.client_id}"
        + (f", account {opts.account}" if opts.account else ""),
    ).open()
