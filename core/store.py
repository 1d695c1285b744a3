"""The console's ArcticDB store: fills journal, orders, audit, positions, P&L, daily, state.

Where the parts are: this module is the store (threads, health, leases, the journals'
reads and writes); :mod:`core.fills_ledger` decides what of a batch of fills to write
and to report new; :mod:`core.arctic_io` makes ArcticDB's calls safe on a shared store;
:mod:`core.frames` converts records to frames and back.

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
import dataclasses
import gc
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from eventkit import Event

from core.arctic_io import (
    get_or_create_library,
    list_symbols,
    missing,
    read_batch,
    read_many,
    read_or_none,
    with_retry,
)
from core.compat import forget_cached_versions
from core.config import redact_uri, secrets_in
from core.events import (
    AuditRecorded,
    FillRecorded,
    OrderUpdated,
    PnLChanged,
    PositionChanged,
    StoreErrorOccurred,
    StoreHealthChanged,
)
from core.fills_ledger import FillsLedger
from core.frames import (
    ACCOUNT_TOTAL,
    DailySummary,
    PnLRow,
    daily_frame,
    empty_frame,
    frame_to_records,
    one_row_per_execution,
    records_to_frame,
    to_utc,
    utc_index,
)
from core.lease import LEASES, LeaseHeld, WriterLease
from core.tasks import Tasks

__all__ = [
    "ACCOUNT_TOTAL",
    "LEGACY_WRITER",
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

FILLS, ORDERS, AUDIT, POSITIONS, PNL, DAILY, STATE = (
    "fills",
    "orders",
    "audit",
    "positions",
    "pnl",
    "daily",
    "state",
)
LIBRARIES = (FILLS, ORDERS, AUDIT, POSITIONS, PNL, DAILY, STATE, LEASES)

#: The symbol of the ``leases`` library listing every writer of the store.
ROSTER = "roster"
#: After creating a shared store's libraries: how long other consoles' simultaneous
#: creations may take to land (see Store._open_sync).
CREATE_SETTLE_S = 1.0

#: The writer every console used before writers were named (see :meth:`Store.is_own`).
LEGACY_WRITER = "console"

_NAME_RE = re.compile(r"[^A-Za-z0-9_\-]")

T = TypeVar("T")


class StoreError(RuntimeError):
    """A store operation failed; ``operation`` names it, ``__cause__`` is ArcticDB's error."""

    def __init__(self, operation: str, message: str) -> None:
        self.operation = operation
        super().__init__(f"{operation}: {message}")


class LeaseLost(RuntimeError):
    """This console's writer name was taken over: it writes nothing more."""


class _Default:
    """The type of :data:`_DEFAULT` (a timeout left to the store's setting)."""


_DEFAULT = _Default()


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
        self.lease_seconds = lease_seconds
        self.call_timeout = call_timeout
        self.slow_seconds = slow_seconds
        self.description = description
        self.client_id = client_id
        self.flush_points = flush_points
        self.flush_seconds = flush_seconds
        self.max_buffered = max_buffered
        self.errorEvent: Event = Event("errorEvent")
        self.healthEvent: Event = Event("healthEvent")
        self.foreignFillsEvent: Event = Event("foreignFillsEvent")
        self._secrets = secrets_in(uri)
        # Fills have a thread of their own, so a fill never waits behind a flush of
        # buffered series or a batch of order updates; the lease has one so it is
        # renewed while a write hangs.
        self._fill_pool = ThreadPoolExecutor(1, thread_name_prefix="store-write-fills")
        self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="store-write")
        self._read_pool = ThreadPoolExecutor(1, thread_name_prefix="store-read")
        self._lease_pool = ThreadPoolExecutor(1, thread_name_prefix="store-lease")
        self._arctic: Any = None
        self._libs: dict[str, Any] = {}
        self._open_lock = threading.Lock()
        self._closed = False
        self._lease: WriterLease | None = None
        self._lease_lock = threading.Lock()
        self._tasks = Tasks("store")
        self._lost: str | None = None  # why the lease was lost, once it is
        # Owned by the fills thread.
        self._ledger = FillsLedger(
            library=lambda: self._lib(FILLS),
            symbol_of=self._symbol,
            writers=self._writers,
            append=lambda day, df: self._append_journal(FILLS, day, df),
            report_durable=self._report_durable,
            client_id=client_id,
        )
        # Owned by whichever thread writes the library (fills or the other journals).
        self._last_index: dict[tuple[str, str], np.int64] = {}
        self._open_positions: dict[tuple[str, int], PositionChanged] | None = None
        self._positions_day: date | None = None
        # Owned by the loop thread.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = threading.get_ident()
        self._fill_queue: list[tuple[list[FillRecorded], asyncio.Future[int]]] = []
        self._not_durable: set[str] = set()
        self._state = "ok"
        self._health_message = ""
        self._last_health: tuple[str, int] = ("ok", 0)
        self._pnl_buffer: list[PnLChanged] = []
        self._pos_buffer: list[PositionChanged] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._pnl_lock = asyncio.Lock()
        # Following other writers' fills (the reader thread owns the row counts).
        self._followed_rows: dict[str, int] = {}
        # Other consoles' strategies as marked in this console's book (loop thread).
        self._foreign_strategies: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """The URI with credentials redacted."""
        return redact_uri(self._uri)

    def __repr__(self) -> str:
        return f"Store({self.uri!r}, writer={self.writer!r})"

    async def open(self) -> Store:
        """Connect, create the libraries if missing, take the writer's lease and load
        the exec ids journalled today and yesterday (UTC: what IB replays after a
        restart), so the first fills do not wait for that.

        Raises :class:`StoreError`; its ``__cause__`` is :class:`core.lease.LeaseHeld`
        when another live console writes under the same name.
        """
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        try:
            return await self._open()
        except BaseException:
            await self._release_threads()
            raise

    async def _open(self) -> Store:
        open_timeout = None if self.call_timeout is None else 6 * self.call_timeout
        await self._call(self._write_pool, "open", self._open_sync, timeout=open_timeout)
        if self.lease_seconds is not None:
            self._lease = WriterLease(
                self._lib(LEASES),
                self.writer,
                lease_seconds=self.lease_seconds,
                # One machine sees its own writes at once; S3 gets a second for the
                # read-back that settles two consoles taking the lease together.
                settle=0.02 if self.is_local else None,
                description=self.description,
            )
            await self._call(self._lease_pool, "open", self._lease.acquire, timeout=open_timeout)
            await self._call(self._lease_pool, "open", self._register_sync, timeout=open_timeout)
            self._tasks.spawn(self._keep_lease(), "lease")
        today = datetime.now(UTC).date()
        for day in (today, date.fromordinal(today.toordinal() - 1)):
            await self._call(
                self._fill_pool, "open", self._ledger.known_day, day, timeout=open_timeout
            )
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
        if self._closed:
            return
        if timeout is None:
            timeout = 3 * self.call_timeout if self.call_timeout is not None else 30.0
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
            problem = self._failure("close", RuntimeError(f"still writing after {timeout:g} s"))
        finally:
            for task in self._tasks.of("lease") + self._tasks.of("follow"):
                task.cancel()
            lease = self._lease
            if lease is not None and self._lost is None and problem is None:
                with contextlib.suppress(Exception):
                    await self._call(self._lease_pool, "close", lease.release, timeout=timeout)
            pending = sorted(self._not_durable | set(self._ledger.pending))
            if pending:
                log.error(
                    "store closed with %d fills not durable (IB replays them at the next "
                    "connect): %s",
                    len(pending),
                    ", ".join(pending[:20]) + (" …" if len(pending) > 20 else ""),
                )
            self._closed = True
            self._set_health("closed", "closed" + (f": {problem}" if problem else ""))
            await self._release_threads(wait=problem is None)
        if problem is not None:
            raise problem

    async def _release_threads(self, *, wait: bool = True) -> None:
        self._closed = True
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        pools = (self._read_pool, self._write_pool, self._fill_pool, self._lease_pool)
        for pool in pools:
            # A hung call cannot be interrupted: after a failed close, do not wait for it.
            await asyncio.to_thread(pool.shutdown, wait, cancel_futures=not wait)
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

    # -- the lease -------------------------------------------------------------------------

    async def _keep_lease(self) -> None:
        """Renew the lease every third of its length until it is lost or the store closes."""
        assert self._lease is not None
        while not self._closed and self._lost is None:
            await asyncio.sleep(self._lease.lease_seconds / 3)
            with contextlib.suppress(StoreError):  # reported; tried again next time
                await self._call(self._lease_pool, "renew lease", self._renew_sync)

    def _renew_sync(self) -> None:
        assert self._lease is not None
        with self._lease_lock:
            try:
                self._lease.renew()
            except LeaseHeld as exc:
                self._lost = str(exc)
                raise
        self._register_sync()

    def _check_lease(self) -> None:
        """Before every write: refuse once the lease is lost; renew it first when it is
        not good for another half of its length (after an outage, say), so nothing is
        written under a name another console may have taken meanwhile."""
        if self._lease is None:
            return
        if self._lost is not None:
            raise LeaseLost(self._lost)
        if not self._lease.fresh(self._lease.lease_seconds / 2):
            self._renew_sync()

    # -- running on the store's threads ----------------------------------------------------

    async def _write(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        return await self._call(self._write_pool, operation, fn, *args)

    async def _read(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        # History reads can be long (many days on S3): they get a longer bound.
        timeout = None if self.call_timeout is None else 6 * self.call_timeout
        return await self._call(self._read_pool, operation, fn, *args, timeout=timeout)

    async def _call(
        self,
        pool: ThreadPoolExecutor,
        operation: str,
        fn: Callable[..., T],
        *args: Any,
        timeout: float | _Default | None = _DEFAULT,
        abandoned: Callable[[T], None] | None = None,
    ) -> T:
        """Run ``fn`` on ``pool``, bounded by ``timeout`` (default: the call timeout).

        A call that times out cannot be interrupted: it goes on in its thread and the
        caller gets a :class:`StoreError`; ``abandoned`` then gets its result if it
        succeeds later. Writes (every pool but the reader's) drive the store's health.
        """
        if self._closed:
            raise StoreError(operation, "the store is closed")
        limit = self.call_timeout if isinstance(timeout, _Default) else timeout
        health = pool is not self._read_pool
        cf = pool.submit(fn, *args)
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(cf), limit)
        except TimeoutError:
            if abandoned is not None and not cf.cancelled():
                cf.add_done_callback(lambda f: None if f.exception() else abandoned(f.result()))
            error = TimeoutError(
                f"no answer from the store after {limit:g} s"
                + ("" if cf.cancelled() else "; the call goes on in the background")
            )
            raise self._failure(operation, error, health=health) from error
        except Exception as exc:
            raise self._failure(operation, exc, health=health) from exc
        if health:
            elapsed = time.monotonic() - started
            if elapsed > self.slow_seconds:
                self._set_health("slow", f"{operation} took {elapsed:.1f} s")
            elif self._state in ("slow", "failing") and (
                operation != "renew lease" or not self._not_durable
            ):
                self._set_health("ok", "")
        return result

    def _failure(self, operation: str, exc: BaseException, *, health: bool = True) -> StoreError:
        if isinstance(exc, StoreError):
            return exc
        message = redact_uri(f"{type(exc).__name__}: {exc}")
        for secret in self._secrets:
            message = message.replace(secret, "***")
        error = StoreError(operation, message)
        log.error(
            "store %s failed on %s: %s (%d fills pending)",
            operation,
            self.uri,
            message,
            self.pending_fills,
        )
        with contextlib.suppress(Exception):
            self.errorEvent.emit(StoreErrorOccurred(operation, message, self.pending_fills))
        if self._lost is not None:
            self._set_health("lease lost", self._lost)
        elif health:
            self._set_health("failing", f"{operation}: {message}")
        return error

    # -- health ----------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``ok``, ``slow``, ``failing``, ``lease lost`` or ``closed``
        (see :class:`core.events.StoreHealthChanged`)."""
        return self._state

    def health(self) -> StoreHealthChanged:
        """The store's health now, as an event (for a window attaching late)."""
        return StoreHealthChanged(
            self._state, self.pending_fills, self._health_message, self.writer
        )

    def _set_health(self, state: str | None = None, message: str | None = None) -> None:
        """Update the state (None: keep it) and emit when state or pending count changed.

        Runs on the loop thread; other threads go through ``call_soon_threadsafe``.
        """
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                self._loop.call_soon_threadsafe(self._set_health, state, message)
            return
        if state is not None and not (self._state == "lease lost" and state != "closed"):
            self._state = state
            if message is not None:
                self._health_message = message
        key = (self._state, self.pending_fills)
        if key == self._last_health:
            return
        self._last_health = key
        event = self.health()
        if self._state in ("failing", "lease lost"):
            log.warning("store %s: %s (%d fills pending)", *key[:1], event.message, key[1])
        with contextlib.suppress(Exception):
            self.healthEvent.emit(event)

    # -- journals (any writing thread) -----------------------------------------------------

    def _symbol(self, day: date, writer: str | None = None) -> str:
        return f"{day.isoformat()}.{writer or self.writer}"

    def _append_journal(self, library: str, day: date, df: pd.DataFrame) -> None:
        """Append ``df`` (with a ``time`` column) to this writer's symbol for ``day``.

        Only this process writes this symbol (the lease sees to it), so the versions
        it prunes are its own, and its last index is its own to cache.
        """
        self._check_lease()
        lib = self._lib(library)
        symbol = self._symbol(day)
        key = (library, symbol)
        last = self._last_index.get(key)
        if last is None:
            last = np.int64(np.iinfo(np.int64).min)
            try:
                tail = lib.tail(symbol, 1).data
            except Exception as exc:
                if not missing(exc):
                    raise
                tail = None  # its first append
            if tail is not None and len(tail):
                last = np.int64(pd.DatetimeIndex(tail.index)[-1].value)
        times = pd.DatetimeIndex(df["time"]).asi8
        index = np.maximum.accumulate(np.maximum(times, last))
        df = df.set_axis(pd.DatetimeIndex(index.astype("datetime64[ns]")).tz_localize(UTC))
        # Until this append is known to have landed, the cached last index is not ours.
        self._last_index.pop(key, None)
        lib.append(symbol, df)
        self._last_index[key] = np.int64(index[-1])

    def _append_records(self, library: str, records: Sequence[Any], cls: type) -> int:
        if not records:
            return 0
        df = records_to_frame(records, cls)
        days = pd.DatetimeIndex(df["time"]).date
        for day in sorted(set(days)):
            self._append_journal(library, day, df[days == day])
        return len(records)

    def _report_durable(self, ids: set[str]) -> None:
        """From a store thread: these fills are durable (for :attr:`pending_fills`)."""
        if ids and self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._now_durable, set(ids))

    def _now_durable(self, ids: set[str]) -> None:
        self._not_durable -= ids
        self._set_health()

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
        before = len(self._not_durable)
        self._not_durable.update(f.exec_id for f in fills)
        if len(self._not_durable) != before:
            self._set_health()
        self._tasks.ensure("fills", self._drain_fills)
        return await future

    async def _drain_fills(self) -> None:
        while self._fill_queue:
            batch, self._fill_queue = self._fill_queue, []
            everything = [f for fills, _ in batch for f in fills]
            try:
                new_ids, durable = await self._call(
                    self._fill_pool,
                    "append_fills",
                    self._ledger.write,
                    everything,
                    abandoned=self._ledger.abandoned,
                )
            except Exception as exc:
                error = exc if isinstance(exc, StoreError) else self._failure("append_fills", exc)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            self._now_durable(durable)
            for fills, future in batch:
                count = 0
                for fill in fills:
                    if fill.exec_id in new_ids:
                        new_ids.discard(fill.exec_id)  # the first caller counts it
                        count += 1
                if not future.done():
                    future.set_result(count)

    @property
    def pending_fills(self) -> int:
        """How many fills are not durable yet: queued, being written, or kept after a
        failed write (until a later write succeeds)."""
        return len(self._not_durable)

    @property
    def pending_fill_ids(self) -> list[str]:
        """The exec ids of :attr:`pending_fills`, sorted (for a shutdown report)."""
        return sorted(self._not_durable)

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
        df = await self._read("fills", self._read_journal, FILLS, start, end, FillRecorded)
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
        out = []
        for writer, fill in await self.load_fills_by_writer(start, end):
            if self.is_own(writer):
                out.append(fill)
            else:
                out.append(self._foreign(fill, writer))
        return out

    def _foreign(self, fill: FillRecorded, writer: str) -> FillRecorded:
        relabelled = foreign_fill(fill, writer)
        # Their console records their positions and P&L: this one must not again.
        self._foreign_strategies.add(relabelled.strategy)
        return relabelled

    def is_own(self, writer: str) -> bool:
        """True if journals of ``writer`` are this console's: its own name, and on a
        local store the name every console used before writers were named."""
        return writer == self.writer or (writer == LEGACY_WRITER and self.is_local)

    @property
    def is_local(self) -> bool:
        """True for an LMDB or in-memory store (on this machine only)."""
        return self._uri.lower().startswith(("lmdb://", "mem://"))

    # -- following other writers -----------------------------------------------------------

    def follow(self, interval: float = 1.0) -> None:
        """Start looking every ``interval`` seconds for fills other writers journalled
        today; new ones are emitted as ``foreignFillsEvent(writer, fills)``. The first
        look emits the day's rows so far: whatever was journalled between a
        :meth:`load_book_fills` and this call is not missed (listeners key fills by
        ``exec_id``, so the ones they had are no news to them)."""
        self._tasks.ensure("follow", lambda: self._follow(interval))

    async def _follow(self, interval: float) -> None:
        while not self._closed:
            try:
                found = await self._read("follow", self._foreign_fills_sync)
                # The roster has no compare-and-swap: another console registering at
                # the same instant can overwrite this one's entry after it was checked.
                # Looking every pass makes the others see this console within a second.
                if self._lease is not None:
                    await self._call(self._lease_pool, "follow", self._register_sync)
            except StoreError:
                found = []  # reported; looked at again next time
            for writer, fills in found:
                for fill in fills:
                    self._foreign(fill, writer)  # its positions are not ours to record
                if fills:
                    with contextlib.suppress(Exception):  # a listener's bug is not ours
                        self.foreignFillsEvent.emit(writer, fills)
            await asyncio.sleep(interval)

    def _foreign_fills_sync(self) -> list[tuple[str, list[FillRecorded]]]:
        """Other writers' rows appended since the last look (reader thread)."""
        from arcticdb import ReadRequest

        today = datetime.now(UTC).date()
        theirs = {self._symbol(today, w): w for w in self._writers() if not self.is_own(w)}
        requests = [
            ReadRequest(symbol, row_range=(self._followed_rows.get(symbol, 0), None))
            for symbol in theirs
        ]
        out = []
        for symbol, df in read_many(self._lib(FILLS), requests).items():
            if not len(df):
                continue
            self._followed_rows[symbol] = self._followed_rows.get(symbol, 0) + len(df)
            df = df.assign(time=utc_index(df["time"])).set_index("time")
            out.append((theirs[symbol], frame_to_records(df, FillRecorded)))
        return out

    # -- the desk's roster -----------------------------------------------------------------

    def _roster_sync(self) -> list[str]:
        """The writers registered in this store (any thread)."""
        lib = self._lib(LEASES)
        forget_cached_versions(lib)  # a lost concurrent first write stays cached otherwise
        df = read_or_none(lib, ROSTER)
        return [] if df is None else [str(w) for w in df["writer"]]

    def _register_sync(self, attempts: int = 3) -> None:
        """Put this writer on the roster if it is not (lease thread: at open and at every
        renewal). Two consoles registering at the same instant can each overwrite the
        other's addition, so the write is read back and tried again after a short random
        pause until this writer is on it (the other console's name stays: each retry
        adds to what the roster holds then), and :meth:`_follow` looks again every pass.
        Before, the console left out stayed invisible to the others' books until its
        next lease renewal (a flaky desk test)."""
        for attempt in range(attempts):
            roster = self._roster_sync()
            if self.writer in roster:
                return
            df = pd.DataFrame({"writer": [*roster, self.writer]})
            try:
                # No pruning: another writer may be reading it at this moment.
                self._lib(LEASES).write(ROSTER, df, prune_previous_versions=False)
            except Exception as exc:
                # ArcticDB refuses a write racing another process's to the same symbol.
                log.info("store roster busy (%s); trying again", exc)
            # A local store's writes land at once: only a short pause (start-up waits
            # for this); S3 needs time for a racing write to show.
            pause = 0.01 if self.is_local else 0.1
            time.sleep(random.uniform(pause / 5, pause) * (attempt + 1))
        log.warning("store roster: %s not registered yet; again at the next renewal", self.writer)

    def _writers(self) -> list[str]:
        """Every writer whose journals may hold the account's records: the roster, this
        console, and on a local store the name used before writers were named."""
        names = dict.fromkeys([self.writer, *self._roster_sync()])
        if self.is_local:
            names[LEGACY_WRITER] = None
        return list(names)

    # -- orders and audit ------------------------------------------------------------------

    async def append_orders(self, updates: Sequence[OrderUpdated]) -> int:
        """Journal order updates (durable on return); returns how many were written."""
        return await self._write(
            "append_orders", self._append_records, ORDERS, list(updates), OrderUpdated
        )

    async def append_audit(self, records: Sequence[AuditRecorded]) -> int:
        """Journal audit records (durable on return); returns how many were written."""
        return await self._write(
            "append_audit", self._append_records, AUDIT, list(records), AuditRecorded
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
        df = await self._read("orders", self._read_journal, ORDERS, start, end, OrderUpdated)
        if strategy is not None:
            df = df[df["strategy"] == strategy]
        if order_id is not None:
            df = df[df["order_id"] == order_id]
        return df

    async def audit(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> pd.DataFrame:
        """Audit records in a time range, indexed by time."""
        return await self._read("audit", self._read_journal, AUDIT, start, end, AuditRecorded)

    async def last_order_updates(self, days: int = 3) -> list[OrderUpdated]:
        """The orders still working at this console's last run, as last journalled.

        Reads this console's newest ``days`` days of order journals (each run journals
        every working order as it connects, so they hold every order that can still be
        working at IB) and returns each order's last update whose status was working,
        with ``placed`` filled in: as recorded, or for a journal written before it was,
        the order's first update read.
        """
        return await self._read("last_order_updates", self._last_order_updates_sync, days)

    def _last_order_updates_sync(self, days: int) -> list[OrderUpdated]:
        own = [
            (day, symbol)
            for day, symbol in self._journal_symbols(ORDERS, None, None)
            if self.is_own(symbol.split(".", 1)[1])
        ]
        newest = sorted({day for day, _ in own})[-days:]
        symbols = [(day, symbol) for day, symbol in own if day in newest]
        if not symbols:
            return []
        frames = with_retry(read_batch, self._lib(ORDERS), symbols)
        df = pd.concat(frames) if len(frames) > 1 else frames[0]
        df = df.sort_values("time", kind="stable")
        first: dict[tuple[int, int], datetime] = {}
        last: dict[tuple[int, int], OrderUpdated] = {}
        for update in frame_to_records(df, OrderUpdated):
            key = (update.client_id, update.order_id) if update.order_id else (0, -update.perm_id)
            first.setdefault(key, update.placed or update.time)
            last[key] = update
        return [
            dataclasses.replace(u, placed=u.placed or first[key])
            for key, u in last.items()
            if u.is_working
        ]

    # -- journal reads (reader thread) -----------------------------------------------------

    def _journal_symbols(
        self, library: str, first: date | None, last: date | None
    ) -> list[tuple[date, str]]:
        out = []
        for symbol in list_symbols(self._lib(library)):
            try:
                day = date.fromisoformat(symbol.split(".", 1)[0])
            except ValueError:
                continue
            if (first is None or day >= first) and (last is None or day <= last):
                out.append((day, symbol))
        return sorted(out)

    def _read_journal(
        self, library: str, start: datetime | None, end: datetime | None, cls: type
    ) -> pd.DataFrame:
        lo = to_utc(start) if start is not None else None
        hi = to_utc(end) if end is not None else None
        symbols = self._journal_symbols(
            library, lo.date() if lo is not None else None, hi.date() if hi is not None else None
        )
        if not symbols:
            return empty_frame(cls)
        lib = self._lib(library)
        frames = []
        for (_, symbol), item in zip(symbols, with_retry(read_batch, lib, symbols), strict=True):
            frames.append(item.assign(writer=symbol.split(".", 1)[1]))
        df = pd.concat(frames) if len(frames) > 1 else frames[0]
        times = utc_index(df["time"])
        df["time"] = times
        keep = np.ones(len(df), dtype=bool)
        if lo is not None:
            keep &= times >= lo
        if hi is not None:
            keep &= times <= hi
        df = df[keep].set_index("time").sort_index(kind="stable")
        return df

    # -- P&L and positions (buffered) ------------------------------------------------------

    def record_pnl(self, point: PnLChanged) -> None:
        """Buffer one P&L point (``strategy`` None is the account); never blocks.

        Another console's strategies (as marked by :func:`foreign_fill`) are left out:
        that console records them."""
        if point.strategy in self._foreign_strategies:
            return
        self._pnl_buffer.append(point)
        self._buffered()

    def record_positions(self, changes: Iterable[PositionChanged]) -> None:
        """Buffer position snapshots (not another console's); never blocks."""
        self._pos_buffer.extend(c for c in changes if c.strategy not in self._foreign_strategies)
        self._buffered()

    def _buffered(self) -> None:
        total = len(self._pnl_buffer) + len(self._pos_buffer)
        if total > self.max_buffered:
            excess = total - self.max_buffered
            dropped = min(excess, len(self._pnl_buffer))
            del self._pnl_buffer[:dropped]
            del self._pos_buffer[: excess - dropped]
            self._failure("buffer", RuntimeError(f"buffer full: {excess} oldest points dropped"))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: flush() writes them
        if total >= self.flush_points:
            self._spawn_flush()
        elif self._flush_timer is None:
            self._flush_timer = loop.call_later(self.flush_seconds, self._spawn_flush)

    def _spawn_flush(self) -> None:
        self._flush_timer = None
        if self._closed or self._tasks.of("flush"):
            return

        async def background() -> None:
            with contextlib.suppress(StoreError):  # logged and emitted; buffers kept
                await self.flush()

        self._tasks.spawn(background(), "flush")

    async def flush(self) -> None:
        """Write the buffered P&L points and position snapshots.

        On failure they stay buffered for the next flush and :class:`StoreError` is raised.
        """
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        # The lock keeps a P&L read from running while points are in flight (out of the
        # buffer, not yet in the journal), where it would see them in neither.
        async with self._pnl_lock:
            while self._pnl_buffer or self._pos_buffer:
                pnl, self._pnl_buffer = self._pnl_buffer, []
                positions, self._pos_buffer = self._pos_buffer, []
                try:
                    await self._write("flush", self._flush_sync, pnl, positions)
                except StoreError:
                    self._pnl_buffer[:0] = pnl
                    self._pos_buffer[:0] = positions
                    raise

    def _flush_sync(self, pnl: list[PnLChanged], positions: list[PositionChanged]) -> None:
        if pnl:
            rows = [PnLRow.of(p) for p in pnl]
            self._append_records(PNL, rows, PnLRow)
            pnl.clear()  # written: a failure below must not write them twice
        if positions:
            self._write_positions(positions)

    def _write_positions(self, positions: list[PositionChanged]) -> None:
        if self._open_positions is None:
            self._open_positions = self._last_positions_before(None)
        by_day: dict[date, list[PositionChanged]] = {}
        for p in positions:
            by_day.setdefault(to_utc(p.time).date(), []).append(p)
        for day, rows in sorted(by_day.items()):
            lib = self._lib(POSITIONS)
            new_day = self._positions_day != day
            if new_day and read_or_none(lib, self._symbol(day), row_range=(0, 1)) is None:
                # The day's first snapshot carries every open position forward.
                t0 = rows[0].time
                carried = [
                    dataclasses.replace(p, time=t0)
                    for key, p in self._open_positions.items()
                    if p.quantity != 0 and key not in {(r.strategy, r.con_id) for r in rows}
                ]
                rows = carried + rows
            self._positions_day = day
            self._append_records(POSITIONS, rows, PositionChanged)
            for p in rows:
                self._open_positions[(p.strategy, p.con_id)] = p

    def _last_positions_before(
        self, when: pd.Timestamp | None, writer: str | None = None
    ) -> dict[tuple[str, int], PositionChanged]:
        """The last snapshot per (strategy, con_id) at or before ``when`` (None: ever)."""
        lib = self._lib(POSITIONS)
        day = when.date() if when is not None else None
        wanted = writer or self.writer
        days = [
            (d, s)
            for d, s in self._journal_symbols(POSITIONS, None, day)
            if s.split(".", 1)[1] == wanted
        ]
        for d, symbol in reversed(days):
            df = lib.read(symbol).data
            if when is not None and d == day:
                df = df[utc_index(df["time"]) <= when]
            if len(df):
                df = df.sort_values("time", kind="stable")
                last = df.groupby(["strategy", "con_id"], sort=False).tail(1)
                return {(p.strategy, p.con_id): p for p in frame_to_records(last, PositionChanged)}
        return {}

    async def positions_at(self, when: datetime) -> pd.DataFrame:
        """Open positions per (strategy, con_id) as last recorded at or before ``when``.

        Includes every writer's snapshots (a ``writer`` column says whose); rows with
        quantity 0 are left out.
        """
        return await self._read("positions_at", self._positions_at_sync, to_utc(when))

    def _positions_at_sync(self, when: pd.Timestamp) -> pd.DataFrame:
        writers = sorted(
            {s.split(".", 1)[1] for _, s in self._journal_symbols(POSITIONS, None, None)}
        )
        rows: list[PositionChanged] = []
        owners: list[str] = []
        for writer in writers:
            found = self._last_positions_before(when, writer)
            for p in found.values():
                if p.quantity != 0:
                    rows.append(p)
                    owners.append(writer)
        df = records_to_frame(rows, PositionChanged)
        df["writer"] = np.array(owners, dtype=object)
        return df.sort_values(["strategy", "con_id"], kind="stable").reset_index(drop=True)

    async def pnl(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        strategy: str | None = None,
    ) -> pd.DataFrame:
        """P&L points in a range, indexed by time: columns strategy, daily, realized,
        unrealized, total. ``strategy`` filters one series (:data:`ACCOUNT_TOTAL` for the
        account); points still buffered are included."""
        async with self._pnl_lock:
            df = await self._read("pnl", self._read_journal, PNL, start, end, PnLRow)
        buffered = [
            p
            for p in self._pnl_buffer
            if (start is None or p.time >= start) and (end is None or p.time <= end)
        ]
        if buffered:
            rows = [PnLRow.of(p) for p in buffered]
            extra = records_to_frame(rows, PnLRow).set_index("time")
            df = pd.concat([df, extra]).sort_index(kind="stable") if len(df) else extra
        if strategy is not None:
            df = df[df["strategy"] == strategy]
        return df

    # -- daily summaries -------------------------------------------------------------------

    async def save_daily(self, summaries: Sequence[DailySummary]) -> None:
        """Save daily summaries; the days they cover replace what was saved for them.

        Another console's strategies are left out (that console saves them); the
        account's row (:data:`ACCOUNT_TOTAL`) is the whole account's."""
        own = [s for s in summaries if s.strategy not in self._foreign_strategies]
        await self._write("save_daily", self._save_daily_sync, own)

    def _save_daily_sync(self, summaries: list[DailySummary]) -> None:
        if not summaries:
            return
        self._check_lease()
        lib = self._lib(DAILY)
        symbol = f"summary.{self.writer}"
        df = daily_frame(summaries)
        old = read_or_none(lib, symbol)
        if old is None:
            lib.write(symbol, df)
            return
        days = set(df.index)
        merged = pd.concat([old[~old.index.isin(days)], df]).sort_index(kind="stable")
        lib.write(symbol, merged)

    async def daily(self, start: date | None = None, end: date | None = None) -> pd.DataFrame:
        """Daily summaries (every writer's) between two days inclusive, indexed by day."""
        return await self._read("daily", self._daily_sync, start, end)

    def _daily_sync(self, start: date | None, end: date | None) -> pd.DataFrame:
        lib = self._lib(DAILY)
        frames = []
        for symbol in list_symbols(lib):
            if symbol.startswith("summary."):
                df = lib.read(symbol).data
                df["writer"] = symbol.split(".", 1)[1]
                frames.append(df)
        if not frames:
            return pd.DataFrame(
                columns=["strategy", "realized", "unrealized", "daily", "commissions", "fills"]
            )
        df = pd.concat(frames).sort_index(kind="stable")
        if start is not None:
            df = df[df.index >= pd.Timestamp(start, tz=UTC)]
        if end is not None:
            df = df[df.index <= pd.Timestamp(end, tz=UTC)]
        return df

    # -- state -----------------------------------------------------------------------------

    async def save_state(self, key: str, value: Any) -> None:
        """Save a small JSON-serialisable value under ``key`` (durable on return)."""
        text = json.dumps(value)
        await self._write("save_state", self._save_state_sync, key, text)

    def _save_state_sync(self, key: str, text: str) -> None:
        self._check_lease()
        symbol = _state_symbol(key, self.writer)
        self._lib(STATE).write(symbol, pd.DataFrame({"json": [text]}))

    async def load_state(self, key: str, default: Any = None) -> Any:
        """The value saved under ``key``, or ``default``.

        Runs on the writer thread, so it sees every :meth:`save_state` awaited before.
        """
        return await self._write("load_state", self._load_state_sync, key, default)

    def _load_state_sync(self, key: str, default: Any) -> Any:
        lib = self._lib(STATE)
        # This writer's value; before writers were named, one value for every console.
        for symbol in (_state_symbol(key, self.writer), _state_symbol(key)):
            df = read_or_none(lib, symbol)
            if df is not None:
                return json.loads(df["json"].iloc[0])
        return default


def foreign_strategy(strategy: str, writer: str) -> str:
    """Another console's strategy as this console's book names it: ``strategy@writer``."""
    return f"{strategy}@{writer}"


def foreign_fill(fill: FillRecorded, writer: str) -> FillRecorded:
    """Another console's fill, its strategy marked as that console's (idempotent)."""
    suffix = f"@{writer}"
    if fill.strategy.endswith(suffix):
        return fill
    return dataclasses.replace(fill, strategy=foreign_strategy(fill.strategy, writer))


def _state_symbol(key: str, writer: str | None = None) -> str:
    """A state key's symbol: each writer has its own (writing one symbol from two
    processes is what ArcticDB does not support); without a writer, the old shared one."""
    name = _NAME_RE.sub("_", key)
    return f"state.{writer}.{name}" if writer else f"state.{name}"
