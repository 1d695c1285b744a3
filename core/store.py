"""The console's ArcticDB store: fills journal, orders, audit, positions, P&L, daily, state.

Where the parts are: this module is the store's face (opening, closing, the fills
queue, the public reads and writes) and composes its parts, each a small class:
:mod:`core.store_health` (state, fills not durable yet, failure reports),
:mod:`core.store_threads` (the threads and bounded calls), :mod:`core.store_roster`
(the writer's lease and the roster), :mod:`core.store_journals` (the day-per-symbol
journals), :mod:`core.store_series` (buffered P&L and positions),
:mod:`core.store_follow` (other consoles' fills), :mod:`core.store_state` (key/value
state), :mod:`core.store_daily` (daily summaries); :mod:`core.fills_ledger` decides
what of a batch of fills to write and to report new; :mod:`core.arctic_io` makes
ArcticDB's calls safe on a shared store; :mod:`core.frames` converts records to frames
and back.

One :class:`Store` wraps one ArcticDB instance given by a URI:

* ``lmdb:///path/to/arctic``: local disk (the default; the config module puts it in the
  user's data directory);
* ``s3://host:bucket?port=9000&access=KEY&secret=SECRET&region=...`` (``s3s://`` for
  TLS): MinIO, AWS or any S3 endpoint, for several consoles sharing one bucket. The
  bucket must exist. The URI's credentials (keys, ``user:password@``) never reach a log
  line or a ``repr`` (:func:`core.config.redact_uri`).

Threads, ordering and health
----------------------------
ArcticDB calls never run on the asyncio (Qt) loop thread. Fills have a writer thread of
their own, so a fill never waits behind a flush of buffered series or a batch of order
updates; the other writes go to a second writer thread, in the order they were asked
for; history reads to a third, so a long read delays no write; the lease is renewed on a
fourth. Every public method that touches storage is a coroutine.

Every call is bounded by ``call_timeout``: a call that does not answer (S3 unreachable
blocks a call for as long as the SDK retries) raises :class:`StoreError` to its caller
and is reported, while it goes on in its thread (it cannot be interrupted); what it
carried is kept, and a fills write that lands after its caller gave up is reported new
to the caller's retry. ``healthEvent`` (:class:`core.events.StoreHealthChanged`) says
the store's state (``ok``, ``slow``, ``failing``, ``lease lost``, ``closed``) and
:attr:`Store.pending_fills`, every fill not durable yet (queued, being written, or kept
after a failure).

A desk on one store: writers and leases
---------------------------------------
Each console writes under its own *writer* name (``[store] writer``, by default derived
from account, client id and machine: :func:`core.config.default_writer`), and holds a
lease on it in the ``leases`` library (:mod:`core.lease`): a second live console with the
same name is refused at :meth:`Store.open`, naming the holder; a killed console's lease
expires ``lease_seconds`` after its last renewal. Every write first checks the lease
(renewing it when it is not good for another half of its length, e.g. after an
outage), and a console whose lease was taken over writes nothing more. So each journal
symbol has exactly one writing process: pruning its previous versions on append is safe
for its data. Readers of a shared store look a symbol's latest version up on every read
and read again when a version vanished under them (its writer pruned it meanwhile).
Every writer puts its name on a roster (symbol ``roster`` of ``leases``) at open and at
each renewal; what runs periodically or on the write path finds the other writers'
journals through it, because ArcticDB's ``list_symbols``, ``has_symbol`` and
``get_description`` hold Python's GIL while S3 is silent and would freeze the console on
an outage (reads and writes release it). History reads and opening list symbols from
storage (:func:`core.arctic_io.list_symbols`).

Several processes opening a new store at once create its libraries once: "already
exists" means another one won, and its library is used.

Libraries and schema
--------------------
Times are UTC. A *journal* library holds one symbol per UTC day and writer,
``"<YYYY-MM-DD>.<writer>"`` (the console's writer name, see above), so no two processes
ever append to the same symbol (ArcticDB does not support concurrent
writers to one symbol) and a day's records are one small read. A journal symbol's index
is the record's time made non-decreasing within the symbol (ArcticDB appends must not go
back in time; a replayed execution can be older than the last row); the true time is
kept in the ``time`` column, which reads return as the index. Every library uses
dynamic schema, so columns can be added later.

``fills`` (journal, one row per execution; :class:`core.events.FillRecorded`)
    exec_id str (unique), order_id, perm_id, client_id int, strategy, account str,
    con_id int, symbol, sec_type, currency, exchange, side (BOT/SLD), quantity (unsigned),
    price, multiplier float, commission float (NaN: not reported yet), realized_pnl float
    (NaN: none), order_ref str, time.
``orders`` (journal; :class:`core.events.OrderUpdated`)
    every field of the event, one row per update.
``audit`` (journal; :class:`core.events.AuditRecorded`)
    actor, action, subject, result str, order_id float (NaN: none), strategy str, time.
``positions`` (journal; :class:`core.events.PositionChanged`)
    snapshots per (strategy, con_id): every field of the event. The first write of a day
    carries every open position forward, so one day's symbol (plus the previous day's
    last rows) answers :meth:`Store.positions_at`.
``pnl`` (journal; :class:`core.events.PnLChanged`)
    strategy str (:data:`ACCOUNT_TOTAL` for the account), daily, realized, unrealized,
    total float, time. Buffered: see below.
``daily`` (symbol ``"summary.<writer>"``, index: the UTC day, one row per strategy;
:class:`DailySummary`)
    strategy, realized, unrealized, daily, commissions float, fills int. Saving a day
    replaces that day's rows.
``state`` (one symbol per writer and key, ``"state.<writer>.<key>"``)
    one row, column ``json``: a small JSON value that must survive a restart (e.g.
    risk's trading state). A key saved before writers were named (``"state.<key>"``)
    is read when the writer has none of its own.
``leases`` (one symbol per writer, ``"lease.<writer>"``)
    who holds the writer name and until when (:mod:`core.lease`).

The fills journal: idempotent and durable
-----------------------------------------
:meth:`Store.append_fills` writes only executions whose ``exec_id`` the journal does
not hold yet, and returns how many of the caller's were new. The check is an in-memory
set per journal day, loaded (the ``exec_id`` column of that day's symbols, every
writer's) the first time a day is touched, so replays after a reconnect or a restart
write nothing twice. One exception: an execution journalled without its commission
(the report had not arrived) is written once more when it comes again with the
commission; that second copy is not counted as new. Reads keep one row per ``exec_id``:
the last copy that has a commission, else the first, which also covers two consoles
recording the same execution at the same moment. An execution of another IB client
(seen in a replay) is first checked against every writer's journal of its day again:
another console may have journalled it since. Concurrent calls are grouped into one
write (group commit). ``append_fills`` returns only once its rows read back from the
store: a returned fill is durable. After a failed append the store re-reads what of it
landed (a timeout can hide a successful write) before writing again, so a retry writes
nothing twice.

Every writer's fills are the account's book: :meth:`Store.load_book_fills` returns them
with another console's strategies marked as its (``strategy@writer``,
:func:`foreign_fill`), and :meth:`Store.follow` emits the fills other writers journal
while this console runs. Position snapshots and P&L points of marked strategies are not
recorded again here: their console records them.

When a write fails (a full disk, S3 unreachable, permissions), the failed fills stay in
an in-memory pending queue inside the store, the error is logged, emitted as
``errorEvent`` and raised to the caller as :class:`StoreError`. The caller must not count
the fill as handled; it retries (the TradeManager does, with backoff). Every later
``append_fills`` writes the pending fills first. A fill is never dropped silently: until
it is durable it is in the pending queue *and* unacknowledged at the caller; if the
process dies meanwhile, IB replays the day's executions on the next connect.

Buffered series
---------------
P&L points (:meth:`Store.record_pnl`) and position snapshots
(:meth:`Store.record_positions`) are buffered and written every ``flush_points`` points
or ``flush_seconds`` seconds, and by :meth:`Store.flush` / :meth:`Store.close`. They
can be recomputed from the fills, so a failed flush keeps them buffered (up to
``max_buffered`` points, oldest dropped beyond that, with an error) and retries at the
next flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from eventkit import Event

from core.arctic_io import get_or_create_library
from core.config import redact_uri
from core.events import (
    AuditRecorded,
    FillRecorded,
    OrderUpdated,
    PnLChanged,
    PositionChanged,
    StoreHealthChanged,
)
from core.fills_ledger import FillsLedger
from core.frames import (
    ACCOUNT_TOTAL,
    DailySummary,
    frame_to_records,
    one_row_per_execution,
    records_to_frame,
    to_utc,
)
from core.lease import LEASES, LeaseHeld
from core.store_daily import DAILY, DailySummaries
from core.store_follow import ForeignFills, foreign_fill, foreign_strategy
from core.store_health import LeaseLost, StoreError, StoreHealth
from core.store_journals import Journals
from core.store_roster import LEGACY_WRITER, ROSTER, WriterRegistry
from core.store_series import PNL, POSITIONS, SeriesBuffer
from core.store_state import STATE, KeyValueState
from core.store_threads import StoreThreads
from core.tasks import Tasks

__all__ = [
    "ACCOUNT_TOTAL",
    "LEGACY_WRITER",
    "ROSTER",
    "DailySummary",
    "LeaseHeld",
    "LeaseLost",
    "Store",
    "StoreError",
    "foreign_fill",
    "foreign_strategy",
    "frame_to_records",
    "records_to_frame",
    "writer_name",
]

log = logging.getLogger(__name__)

FILLS, ORDERS, AUDIT = "fills", "orders", "audit"
LIBRARIES = (FILLS, ORDERS, AUDIT, POSITIONS, PNL, DAILY, STATE, LEASES)

#: After creating a shared store's libraries: how long other consoles' simultaneous
#: creations may take to land (see Store._open_sync).
CREATE_SETTLE_S = 1.0

_NAME_RE = re.compile(r"[^A-Za-z0-9_\-]")


def writer_name(name: str) -> str:
    """``name`` as a writer name: letters, digits, ``_`` and ``-`` (others become ``_``)."""
    return _NAME_RE.sub("_", name.strip()) or LEGACY_WRITER


# -- the store -----------------------------------------------------------------------------


class Store:
    """The console's ArcticDB persistence; see the module docstring for the schema.

    Use ``async with Store(uri) as store`` or call :meth:`open` and :meth:`close`.
    Nothing blocking happens in the constructor.

    Events:
        * ``errorEvent`` (error: :class:`core.events.StoreErrorOccurred`): a storage
          operation failed (also logged, and raised to the caller as :class:`StoreError`
          where there is one)
        * ``healthEvent`` (health: :class:`core.events.StoreHealthChanged`): the store's
          state or its count of fills not durable yet changed
        * ``foreignFillsEvent`` (writer: str, fills: list of
          :class:`core.events.FillRecorded`): another console's fills, new since the
          last look (:meth:`follow`)
    """

    def __init__(
        self,
        uri: str,
        *,
        writer: str = "console",
        lease_seconds: float | None = 30.0,
        call_timeout: float | None = 10.0,
        slow_seconds: float = 2.0,
        description: str = "",
        client_id: int | None = None,
        flush_points: int = 1000,
        flush_seconds: float = 5.0,
        max_buffered: int = 1_000_000,
    ) -> None:
        self._uri = uri
        self.writer = writer_name(writer)
        self.client_id = client_id
        self._arctic: Any = None
        self._libs: dict[str, Any] = {}
        self._open_lock = threading.Lock()
        self._tasks = Tasks("store")
        # The parts, each with only what it needs of the others.
        self._registry = WriterRegistry(
            lambda: self._lib(LEASES),
            self.writer,
            is_local=self.is_local,
            lease_seconds=lease_seconds,
            description=description,
        )
        self._health = StoreHealth(uri, self.writer, lost=lambda: self._registry.lost)
        self._threads = StoreThreads(
            self._health, call_timeout=call_timeout, slow_seconds=slow_seconds
        )
        self._journals = Journals(
            self._lib, self.writer, check=self._registry.check, is_own=self._registry.is_own
        )
        self._foreign = ForeignFills(self._journals, self._registry, self._threads)
        self._series = SeriesBuffer(
            self._journals,
            self._threads,
            self._health,
            is_foreign=self._foreign.is_foreign,
            flush_points=flush_points,
            flush_seconds=flush_seconds,
            max_buffered=max_buffered,
        )
        self._daily = DailySummaries(lambda: self._lib(DAILY), self.writer, self._registry.check)
        self._values = KeyValueState(lambda: self._lib(STATE), self.writer, self._registry.check)
        # Owned by the fills thread.
        self._ledger = FillsLedger(
            library=lambda: self._lib(FILLS),
            symbol_of=self._journals.symbol,
            writers=self._registry.writers,
            append=lambda day, df: self._journals.append(FILLS, day, df),
            report_durable=self._health.report_durable,
            client_id=client_id,
        )
        # Owned by the loop thread: fills waiting for the fills thread, with their callers.
        self._fill_queue: list[tuple[list[FillRecorded], asyncio.Future[int]]] = []
        self.errorEvent: Event = self._health.errorEvent
        self.healthEvent: Event = self._health.healthEvent
        self.foreignFillsEvent: Event = self._foreign.event

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """The URI with credentials redacted."""
        return redact_uri(self._uri)

    @property
    def is_local(self) -> bool:
        """True for an LMDB or in-memory store (on this machine only)."""
        return self._uri.lower().startswith(("lmdb://", "mem://"))

    def __repr__(self) -> str:
        return f"Store({self.uri!r}, writer={self.writer!r})"

    async def open(self) -> Store:
        """Connect, create the libraries if missing, take the writer's lease and load
        the exec ids journalled today and yesterday (UTC: what IB replays after a
        restart), so the first fills do not wait for that.

        Raises :class:`StoreError`; its ``__cause__`` is :class:`core.lease.LeaseHeld`
        when another live console writes under the same name.
        """
        self._health.bind_loop()
        try:
            return await self._open()
        except BaseException:
            await self._release_threads()
            raise

    async def _open(self) -> Store:
        threads, timeout = self._threads, self._threads.long_timeout
        await threads.call(threads.writes, "open", self._open_sync, timeout=timeout)
        if self._registry.lease_seconds is not None:
            await threads.call(threads.lease, "open", self._registry.acquire, timeout=timeout)
            await threads.call(threads.lease, "open", self._registry.register, timeout=timeout)
            self._tasks.spawn(self._keep_lease(), "lease")
        today = datetime.now(UTC).date()
        for day in (today, date.fromordinal(today.toordinal() - 1)):
            await threads.call(threads.fills, "open", self._ledger.known_day, day, timeout=timeout)
        return self

    async def __aenter__(self) -> Store:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, timeout: float | None = None) -> None:
        """Write everything buffered and pending, release the lease and the threads.

        Waits at most ``timeout`` seconds (default: the call timeout, or 30 s) for the
        writes. Raises :class:`StoreError` naming what could not be written (it is also
        logged and emitted); the threads are released either way.
        """
        if self._threads.closed:
            return
        if timeout is None:
            call_timeout = self._threads.call_timeout
            timeout = 3 * call_timeout if call_timeout is not None else 30.0
        problem: StoreError | None = None
        try:
            async with asyncio.timeout(timeout):
                for fill_task in self._tasks.of("fills"):
                    with contextlib.suppress(Exception):
                        await asyncio.shield(fill_task)
                await self.flush()
                if self._ledger.pending:
                    await self.append_fills([])
        except StoreError as exc:
            problem = exc
        except TimeoutError:
            error = RuntimeError(f"still writing after {timeout:g} s")
            problem = self._health.failure("close", error)
        finally:
            for task in self._tasks.of("lease"):
                task.cancel()
            self._foreign.stop()
            if self._registry.lease is not None and self._registry.lost is None and not problem:
                with contextlib.suppress(Exception):
                    await self._threads.call(
                        self._threads.lease, "close", self._registry.release, timeout=timeout
                    )
            pending = sorted(set(self._health.pending_ids) | set(self._ledger.pending))
            if pending:
                log.error(
                    "store closed with %d fills not durable (IB replays them at the next "
                    "connect): %s",
                    len(pending),
                    ", ".join(pending[:20]) + (" …" if len(pending) > 20 else ""),
                )
            self._threads.closed = True
            self._health.set("closed", "closed" + (f": {problem}" if problem else ""))
            await self._release_threads(wait=problem is None)
        if problem is not None:
            raise problem

    async def _release_threads(self, *, wait: bool = True) -> None:
        self._series.stop()
        # A hung call cannot be interrupted: after a failed close, do not wait for it.
        await self._threads.shutdown(wait=wait)
        # LMDB allows one open environment per path and process: let it go now, so the
        # same path can be opened again (restart in tests, tools).
        self._libs.clear()
        self._arctic = None
        gc.collect()

    def _open_sync(self) -> None:
        with self._open_lock:
            if self._arctic is not None:
                return
            import arcticdb
            from arcticdb.config import set_config_int

            if not self.is_local:
                # Other consoles write here: look up a symbol's latest version on every
                # read instead of trusting a cache for seconds (a cached version can
                # have been pruned by its writer's next append meanwhile).
                set_config_int("VersionMap.ReloadInterval", 0)
            arctic = arcticdb.Arctic(self._uri)
            options = arcticdb.LibraryOptions(dynamic_schema=True, prune_previous_versions=True)
            new = not self.is_local and not all(arctic.has_library(n) for n in LIBRARIES)
            for name in LIBRARIES:
                self._libs[name] = get_or_create_library(arctic, name, options)
            if new:
                # Consoles opening a new bucket at the same instant can each create a
                # library: ArcticDB gives every creation its own storage prefix and the
                # config written last wins, so a console could journal where no other
                # ever reads. Let the creations settle, then take the libraries as the
                # store names them now (one fresh lookup, no cache).
                time.sleep(CREATE_SETTLE_S)
                arctic = arcticdb.Arctic(self._uri)
                for name in LIBRARIES:
                    self._libs[name] = arctic.get_library(name)
            self._arctic = arctic
            log.info("store opened: %s (writer %s)", self.uri, self.writer)

    def _lib(self, name: str) -> Any:
        if self._arctic is None:
            self._open_sync()
        return self._libs[name]

    async def _keep_lease(self) -> None:
        """Renew the lease every third of its length until it is lost or the store closes."""
        lease = self._registry.lease
        assert lease is not None
        while not self._threads.closed and self._registry.lost is None:
            await asyncio.sleep(lease.lease_seconds / 3)
            with contextlib.suppress(StoreError):  # reported; tried again next time
                await self._threads.call(self._threads.lease, "renew lease", self._registry.renew)

    # -- health ----------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``ok``, ``slow``, ``failing``, ``lease lost`` or ``closed``
        (see :class:`core.events.StoreHealthChanged`)."""
        return self._health.state

    def health(self) -> StoreHealthChanged:
        """The store's health now, as an event (for a window attaching late)."""
        return self._health.snapshot()

    @property
    def pending_fills(self) -> int:
        """How many fills are not durable yet: queued, being written, or kept after a
        failed write (until a later write succeeds)."""
        return self._health.pending

    @property
    def pending_fill_ids(self) -> list[str]:
        """The exec ids of :attr:`pending_fills`, sorted (for a shutdown report)."""
        return self._health.pending_ids

    # -- fills -----------------------------------------------------------------------------

    async def append_fills(self, fills: Sequence[FillRecorded]) -> int:
        """Journal the executions not journalled yet; return how many of ``fills`` were new.

        Returns once they are durable: appended and read back. Raises
        :class:`StoreError` when the write failed or timed out: the fills then wait in
        the store's pending queue and go first with the next call; the caller must not
        treat them as handled and should call again later.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        fills = list(fills)
        self._fill_queue.append((fills, future))
        self._health.handed(f.exec_id for f in fills)
        self._tasks.ensure("fills", self._drain_fills)
        return await future

    async def _drain_fills(self) -> None:
        """Write the queued fills, every caller's at once (group commit)."""
        while self._fill_queue:
            batch, self._fill_queue = self._fill_queue, []
            everything = [f for fills, _ in batch for f in fills]
            try:
                new_ids, durable = await self._threads.call(
                    self._threads.fills,
                    "append_fills",
                    self._ledger.write,
                    everything,
                    abandoned=self._ledger.abandoned,
                )
            except Exception as exc:
                error = self._health.failure("append_fills", exc)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self._health.durable(durable)
            for fills, future in batch:
                count = 0
                for fill in fills:
                    if fill.exec_id in new_ids:
                        new_ids.discard(fill.exec_id)  # the first caller counts it
                        count += 1
                if not future.done():
                    future.set_result(count)

    async def fills(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        strategy: str | None = None,
        *,
        account: str | None = None,
    ) -> pd.DataFrame:
        """Journalled fills with ``start <= time <= end`` (UTC), indexed by time.

        Every writer's; a ``writer`` column names the console that journalled each.
        One row per ``exec_id``: of several copies (a commission that arrived late,
        concurrent writers) the last one with a commission, else the first.
        """
        df = await self._threads.read("fills", self._journals.read, FILLS, start, end, FillRecorded)
        if len(df):
            df = one_row_per_execution(df)
        if strategy is not None:
            df = df[df["strategy"] == strategy]
        if account is not None:
            df = df[df["account"] == account]
        return df

    async def load_fills(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> list[FillRecorded]:
        """Journalled fills as :class:`core.events.FillRecorded`, in time order."""
        df = await self.fills(start, end)
        return frame_to_records(df, FillRecorded)

    async def load_fills_by_writer(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> list[tuple[str, FillRecorded]]:
        """Journalled fills in time order, each with the writer that journalled it."""
        df = await self.fills(start, end)
        writers = list(df["writer"]) if "writer" in df.columns else [self.writer] * len(df)
        return list(zip(writers, frame_to_records(df, FillRecorded), strict=True))

    async def load_book_fills(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> list[FillRecorded]:
        """Every writer's fills in time order, another console's with its strategies
        marked as its (:func:`foreign_fill`): what the account's book is rebuilt from."""
        return [
            self._foreign.mark(fill, writer)
            for writer, fill in await self.load_fills_by_writer(start, end)
        ]

    def is_own(self, writer: str) -> bool:
        """True if journals of ``writer`` are this console's: its own name, and on a
        local store the name every console used before writers were named."""
        return self._registry.is_own(writer)

    def follow(self, interval: float = 1.0) -> None:
        """Start looking every ``interval`` seconds for fills other writers journalled
        today; new ones are emitted as ``foreignFillsEvent(writer, fills)``. The first
        look emits the day's rows so far: whatever was journalled between a
        :meth:`load_book_fills` and this call is not missed (listeners key fills by
        ``exec_id``, so the ones they had are no news to them)."""
        self._foreign.follow(interval)

    # -- orders and audit ------------------------------------------------------------------

    async def append_orders(self, updates: Sequence[OrderUpdated]) -> int:
        """Journal order updates (durable on return); returns how many were written."""
        return await self._threads.write(
            "append_orders", self._journals.append_records, ORDERS, list(updates), OrderUpdated
        )

    async def append_audit(self, records: Sequence[AuditRecorded]) -> int:
        """Journal audit records (durable on return); returns how many were written."""
        return await self._threads.write(
            "append_audit", self._journals.append_records, AUDIT, list(records), AuditRecorded
        )

    async def orders(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        strategy: str | None = None,
        *,
        order_id: int | None = None,
    ) -> pd.DataFrame:
        """Order updates in a time range, indexed by time."""
        df = await self._threads.read(
            "orders", self._journals.read, ORDERS, start, end, OrderUpdated
        )
        if strategy is not None:
            df = df[df["strategy"] == strategy]
        if order_id is not None:
            df = df[df["order_id"] == order_id]
        return df

    async def audit(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """Audit records in a time range, indexed by time."""
        return await self._threads.read(
            "audit", self._journals.read, AUDIT, start, end, AuditRecorded
        )

    async def last_order_updates(self, days: int = 3) -> list[OrderUpdated]:
        """The orders still working at this console's last run, as last journalled.

        Reads this console's newest ``days`` days of order journals (each run journals
        every working order as it connects, so they hold every order that can still be
        working at IB) and returns each order's last update whose status was working,
        with ``placed`` filled in: as recorded, or for a journal written before it was,
        the order's first update read.
        """
        return await self._threads.read(
            "last_order_updates", self._journals.last_order_updates, ORDERS, days
        )

    # -- P&L and positions (buffered) ------------------------------------------------------

    def record_pnl(self, point: PnLChanged) -> None:
        """Buffer one P&L point (``strategy`` None is the account); never blocks.

        Another console's strategies (as marked by :func:`foreign_fill`) are left out:
        that console records them."""
        self._series.record_pnl(point)

    def record_positions(self, changes: Iterable[PositionChanged]) -> None:
        """Buffer position snapshots (not another console's); never blocks."""
        self._series.record_positions(changes)

    async def flush(self) -> None:
        """Write the buffered P&L points and position snapshots.

        On failure they stay buffered for the next flush and :class:`StoreError` is raised.
        """
        await self._series.flush()

    async def positions_at(self, when: datetime) -> pd.DataFrame:
        """Open positions per (strategy, con_id) as last recorded at or before ``when``.

        Includes every writer's snapshots (a ``writer`` column says whose); rows with
        quantity 0 are left out.
        """
        return await self._threads.read("positions_at", self._series.positions_at, to_utc(when))

    async def pnl(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        strategy: str | None = None,
    ) -> pd.DataFrame:
        """P&L points in a range, indexed by time: columns strategy, daily, realized,
        unrealized, total. ``strategy`` filters one series (:data:`ACCOUNT_TOTAL` for the
        account); points still buffered are included."""
        return await self._series.pnl(start, end, strategy)

    # -- daily summaries -------------------------------------------------------------------

    async def save_daily(self, summaries: Sequence[DailySummary]) -> None:
        """Save daily summaries; the days they cover replace what was saved for them.

        Another console's strategies are left out (that console saves them); the
        account's row (:data:`ACCOUNT_TOTAL`) is the whole account's."""
        own = [s for s in summaries if not self._foreign.is_foreign(s.strategy)]
        await self._threads.write("save_daily", self._daily.save, own)

    async def daily(self, start: date | None = None, end: date | None = None) -> pd.DataFrame:
        """Daily summaries (every writer's) between two days inclusive, indexed by day."""
        return await self._threads.read("daily", self._daily.read, start, end)

    # -- state -----------------------------------------------------------------------------

    async def save_state(self, key: str, value: Any) -> None:
        """Save a small JSON-serialisable value under ``key`` (durable on return)."""
        text = self._values.encode(value)
        await self._threads.write("save_state", self._values.save, key, text)

    async def load_state(self, key: str, default: Any = None) -> Any:
        """The value saved under ``key``, or ``default``.

        Runs on the writer thread, so it sees every :meth:`save_state` awaited before.
        """
        return await self._threads.write("load_state", self._values.load, key, default)
