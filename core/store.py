"""The console's ArcticDB store: fills journal, orders, audit, positions, P&L, daily, state.

One :class:`Store` wraps one ArcticDB instance given by a URI:

* ``lmdb:///path/to/arctic``: local disk (the default; the config module puts it in the
  user's data directory);
* ``s3://host:bucket?port=9000&access=KEY&secret=SECRET&region=...`` (``s3s://`` for
  TLS): MinIO, AWS or any S3 endpoint, for several consoles sharing one bucket. The
  bucket must exist. The URI's credentials never reach a log line or a ``repr``
  (:func:`redact_uri`).

Threads and ordering
--------------------
ArcticDB calls never run on the asyncio (Qt) loop thread. Writes go to one dedicated
writer thread, so they happen in the order they were asked for; history reads go to a
second thread so a long read never delays a fill's write. Every public method that
touches storage is a coroutine.

Libraries and schema
--------------------
Times are UTC. A *journal* library holds one symbol per UTC day and writer,
``"<YYYY-MM-DD>.<writer>"`` (``writer`` names the console, default ``"console"``), so no
two processes ever append to the same symbol (ArcticDB does not support concurrent
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
``state`` (one symbol per key)
    one row, column ``json``: a small JSON value that must survive a restart (e.g.
    risk's trading state).

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
recording the same execution at the same moment. Concurrent calls are grouped into one
write (group commit). ``append_fills`` returns only after ArcticDB's write returned: a
returned fill is durable.

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
import enum
import gc
import json
import logging
import math
import re
import threading
import typing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from eventkit import Event

from core.events import (
    AuditRecorded,
    FillRecorded,
    OrderUpdated,
    PnLChanged,
    PositionChanged,
    StoreErrorOccurred,
)

log = logging.getLogger(__name__)

#: The ``strategy`` value of the account's own P&L series.
ACCOUNT_TOTAL = "*"

FILLS, ORDERS, AUDIT, POSITIONS, PNL, DAILY, STATE = (
    "fills",
    "orders",
    "audit",
    "positions",
    "pnl",
    "daily",
    "state",
)
LIBRARIES = (FILLS, ORDERS, AUDIT, POSITIONS, PNL, DAILY, STATE)

_SECRET_KEYS = ("secret", "access", "AccountKey", "SharedAccessSignature", "password")
_SECRET_RE = re.compile(r"(?i)\b(" + "|".join(_SECRET_KEYS) + r")=([^&;]*)")
_NAME_RE = re.compile(r"[^A-Za-z0-9_\-]")

T = TypeVar("T")


def redact_uri(uri: str) -> str:
    """``uri`` with every credential value replaced by ``***`` (for logs and ``repr``)."""
    return _SECRET_RE.sub(lambda m: f"{m.group(1)}=***", uri)


def _secrets(uri: str) -> list[str]:
    return [m.group(2) for m in _SECRET_RE.finditer(uri) if m.group(2)]


class StoreError(RuntimeError):
    """A store operation failed; ``operation`` names it, ``__cause__`` is ArcticDB's error."""

    def __init__(self, operation: str, message: str) -> None:
        self.operation = operation
        super().__init__(f"{operation}: {message}")


@dataclasses.dataclass(frozen=True, slots=True)
class DailySummary:
    """One strategy's (or the account's, :data:`ACCOUNT_TOTAL`) figures for one day."""

    day: date
    strategy: str
    realized: float
    unrealized: float
    daily: float
    commissions: float
    fills: int


# -- dataclass <-> DataFrame ---------------------------------------------------------------

(
    _KIND_FLOAT,
    _KIND_OPT_FLOAT,
    _KIND_INT,
    _KIND_OPT_INT,
    _KIND_STR,
    _KIND_OPT_STR,
    _KIND_TIME,
    _KIND_BOOL,
) = range(8)


def _kind(hint: Any) -> int:
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if base is datetime:
        return _KIND_TIME
    if base is bool:
        return _KIND_BOOL
    if base is float:
        return _KIND_OPT_FLOAT if optional else _KIND_FLOAT
    if base is int:
        return _KIND_OPT_INT if optional else _KIND_INT
    return _KIND_OPT_STR if optional else _KIND_STR


_SCHEMAS: dict[type, list[tuple[str, int]]] = {}


def _schema(cls: type) -> list[tuple[str, int]]:
    schema = _SCHEMAS.get(cls)
    if schema is None:
        hints = typing.get_type_hints(cls)
        schema = [(f.name, _kind(hints[f.name])) for f in dataclasses.fields(cls)]
        _SCHEMAS[cls] = schema
    return schema


def _to_utc(t: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    return ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)


def records_to_frame(records: Sequence[Any], cls: type) -> pd.DataFrame:
    """Frozen event dataclasses as a DataFrame with ArcticDB-friendly dtypes.

    ``None`` in a float or int field becomes NaN (ints with None become float columns);
    times become ``datetime64[ns, UTC]``; enums their value.
    """
    cols: dict[str, Any] = {}
    for name, kind in _schema(cls):
        values = [getattr(r, name) for r in records]
        if kind == _KIND_TIME:
            cols[name] = pd.DatetimeIndex([_to_utc(v) for v in values], tz=UTC)
        elif kind in (_KIND_FLOAT, _KIND_OPT_FLOAT, _KIND_OPT_INT):
            cols[name] = np.array(
                [math.nan if v is None else float(v) for v in values], dtype=np.float64
            )
        elif kind == _KIND_INT:
            cols[name] = np.array(values, dtype=np.int64)
        elif kind == _KIND_BOOL:
            cols[name] = np.array(values, dtype=bool)
        else:
            # None becomes "" (ArcticDB types an all-None column as string anyway).
            cols[name] = np.array(
                ["" if v is None else v.value if isinstance(v, enum.Enum) else v for v in values],
                dtype=object,
            )
    return pd.DataFrame(cols)


def frame_to_records(df: pd.DataFrame, cls: type[T]) -> list[T]:
    """The inverse of :func:`records_to_frame` (the ``time`` field may be the index)."""
    schema = _schema(cls)
    columns: dict[str, list[Any]] = {}
    for name, kind in schema:
        if name in df.columns:
            raw = df[name]
        elif name == df.index.name:
            raw = df.index.to_series()
        else:
            columns[name] = [None] * len(df)
            continue
        if kind == _KIND_TIME:
            columns[name] = [ts.to_pydatetime() for ts in _utc_index(raw)]
        elif kind == _KIND_FLOAT:
            columns[name] = [float(v) for v in raw]
        elif kind == _KIND_OPT_FLOAT:
            columns[name] = [None if v != v else float(v) for v in raw]
        elif kind == _KIND_INT:
            columns[name] = [int(v) for v in raw]
        elif kind == _KIND_OPT_INT:
            columns[name] = [None if v != v else int(v) for v in raw]
        elif kind == _KIND_BOOL:
            columns[name] = [bool(v) for v in raw]
        elif kind == _KIND_OPT_STR:
            columns[name] = [v if isinstance(v, str) and v else None for v in raw]
        else:
            columns[name] = [v if isinstance(v, str) else "" for v in raw]
    names = [n for n, _ in schema]
    return [
        cls(**dict(zip(names, row, strict=True))) for row in zip(*columns.values(), strict=True)
    ]


def _utc_index(values: Any) -> pd.DatetimeIndex:
    """Times as a UTC DatetimeIndex (ArcticDB returns time columns tz-naive, in UTC)."""
    index = pd.DatetimeIndex(values)
    return index.tz_localize(UTC) if index.tz is None else index.tz_convert(UTC)


def _empty(cls: type) -> pd.DataFrame:
    df = records_to_frame([], cls)
    return df.set_index("time") if "time" in df.columns else df


# -- the store -----------------------------------------------------------------------------


class Store:
    """The console's ArcticDB persistence; see the module docstring for the schema.

    Use ``async with Store(uri) as store`` or call :meth:`open` and :meth:`close`.
    Nothing blocking happens in the constructor.

    Events:
        * ``errorEvent`` (error: :class:`core.events.StoreErrorOccurred`): a storage
          operation failed (also logged, and raised to the caller as :class:`StoreError`
          where there is one)
    """

    def __init__(
        self,
        uri: str,
        *,
        writer: str = "console",
        flush_points: int = 1000,
        flush_seconds: float = 5.0,
        max_buffered: int = 1_000_000,
    ) -> None:
        self._uri = uri
        self.writer = _NAME_RE.sub("_", writer) or "console"
        self.flush_points = flush_points
        self.flush_seconds = flush_seconds
        self.max_buffered = max_buffered
        self.errorEvent: Event = Event("errorEvent")
        self._secrets = _secrets(uri)
        self._write_pool = ThreadPoolExecutor(1, thread_name_prefix="store-write")
        self._read_pool = ThreadPoolExecutor(1, thread_name_prefix="store-read")
        self._arctic: Any = None
        self._libs: dict[str, Any] = {}
        self._open_lock = threading.Lock()
        self._closed = False
        # Owned by the writer thread.
        self._known: dict[date, set[str]] = {}
        # Known exec ids whose journalled copies all lack the commission.
        self._uncommissioned: set[str] = set()
        # Pending fills that are commission updates of a journalled execution.
        self._updates: set[str] = set()
        self._pending_fills: dict[str, FillRecorded] = {}
        self._unreported: set[str] = set()
        self._last_index: dict[tuple[str, str], np.int64] = {}
        self._open_positions: dict[tuple[str, int], PositionChanged] | None = None
        self._positions_day: date | None = None
        # Owned by the loop thread.
        self._fill_queue: list[tuple[list[FillRecorded], asyncio.Future[int]]] = []
        self._fill_task: asyncio.Task[None] | None = None
        self._pnl_buffer: list[PnLChanged] = []
        self._pos_buffer: list[PositionChanged] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._pnl_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """The URI with credentials redacted."""
        return redact_uri(self._uri)

    def __repr__(self) -> str:
        return f"Store({self.uri!r}, writer={self.writer!r})"

    async def open(self) -> Store:
        """Connect, create the libraries if missing and load the exec ids journalled
        today and yesterday (UTC: what IB replays after a restart), so the first fills
        do not wait for that. Raises :class:`StoreError`."""
        await self._write("open", self._open_sync)
        today = datetime.now(UTC).date()
        await self._write("open", self._known_day, today)
        await self._write("open", self._known_day, date.fromordinal(today.toordinal() - 1))
        return self

    async def __aenter__(self) -> Store:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Write everything buffered and pending, then release the threads.

        Raises :class:`StoreError` if something could not be written (it is still
        logged and emitted); the threads are released either way.
        """
        if self._closed:
            return
        try:
            if self._fill_task is not None:
                with contextlib.suppress(Exception):
                    await self._fill_task
            await self.flush()
            if self._pending_fills:
                await self.append_fills([])
        finally:
            self._closed = True
            if self._flush_timer is not None:
                self._flush_timer.cancel()
            await asyncio.to_thread(self._read_pool.shutdown, True)
            await asyncio.to_thread(self._write_pool.shutdown, True)
            # LMDB allows one open environment per path and process: let it go now, so
            # the same path can be opened again (restart in tests, tools).
            self._libs.clear()
            self._arctic = None
            gc.collect()

    def _open_sync(self) -> None:
        with self._open_lock:
            if self._arctic is not None:
                return
            import arcticdb

            arctic = arcticdb.Arctic(self._uri)
            options = arcticdb.LibraryOptions(dynamic_schema=True, prune_previous_versions=True)
            for name in LIBRARIES:
                self._libs[name] = arctic.get_library(
                    name, create_if_missing=True, library_options=options
                )
            self._arctic = arctic
            log.info("store opened: %s (writer %s)", self.uri, self.writer)

    def _lib(self, name: str) -> Any:
        if self._arctic is None:
            self._open_sync()
        return self._libs[name]

    # -- running on the store's threads ----------------------------------------------------

    async def _write(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        return await self._run(self._write_pool, operation, fn, *args)

    async def _read(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        return await self._run(self._read_pool, operation, fn, *args)

    async def _run(
        self, pool: ThreadPoolExecutor, operation: str, fn: Callable[..., T], *args: Any
    ) -> T:
        if self._closed:
            raise StoreError(operation, "the store is closed")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, fn, *args)
        except Exception as exc:
            raise self._failure(operation, exc) from exc

    def _failure(self, operation: str, exc: BaseException) -> StoreError:
        if isinstance(exc, StoreError):
            return exc
        message = f"{type(exc).__name__}: {exc}"
        for secret in self._secrets:
            message = message.replace(secret, "***")
        error = StoreError(operation, message)
        log.error(
            "store %s failed on %s: %s (%d fills pending)",
            operation,
            self.uri,
            message,
            len(self._pending_fills),
        )
        with contextlib.suppress(Exception):
            self.errorEvent.emit(
                StoreErrorOccurred(operation, message, pending_fills=len(self._pending_fills))
            )
        return error

    # -- journals (writer thread) ----------------------------------------------------------

    def _symbol(self, day: date, writer: str | None = None) -> str:
        return f"{day.isoformat()}.{writer or self.writer}"

    def _append_journal(self, library: str, day: date, df: pd.DataFrame) -> None:
        """Append ``df`` (with a ``time`` column) to this writer's symbol for ``day``."""
        lib = self._lib(library)
        symbol = self._symbol(day)
        key = (library, symbol)
        last = self._last_index.get(key)
        if last is None:
            last = np.int64(np.iinfo(np.int64).min)
            if lib.has_symbol(symbol):
                tail = lib.tail(symbol, 1).data
                if len(tail):
                    last = np.int64(pd.DatetimeIndex(tail.index)[-1].value)
        times = pd.DatetimeIndex(df["time"]).asi8
        index = np.maximum.accumulate(np.maximum(times, last))
        df = df.set_axis(pd.DatetimeIndex(index.astype("datetime64[ns]")).tz_localize(UTC))
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

    def _known_day(self, day: date) -> set[str]:
        known = self._known.get(day)
        if known is None:
            lib = self._lib(FILLS)
            known = set()
            prefix = day.isoformat() + "."
            with_commission: set[str] = set()
            for symbol in lib.list_symbols():
                if symbol.startswith(prefix):
                    df = lib.read(symbol, columns=["exec_id", "commission"]).data
                    known.update(df["exec_id"])
                    if "commission" in df.columns:
                        with_commission.update(df["exec_id"][df["commission"].notna()])
            self._uncommissioned |= known - with_commission
            self._known[day] = known
        return known

    @staticmethod
    def _fill_day(fill: FillRecorded) -> date:
        return _to_utc(fill.time).date()

    def _write_fills_sync(self, fills: list[FillRecorded]) -> set[str]:
        """Write the fills the journal does not hold; return the ids now reported new."""
        batch_ids = {f.exec_id for f in fills}
        incoming: dict[str, FillRecorded] = {}
        for fill in fills:
            if fill.exec_id in incoming:
                continue
            if fill.exec_id in self._pending_fills:
                if self._pending_fills[fill.exec_id].commission is None:
                    self._pending_fills[fill.exec_id] = fill  # a later one may know more
                continue
            if fill.exec_id in self._known_day(self._fill_day(fill)):
                if fill.commission is None or fill.exec_id not in self._uncommissioned:
                    continue
                # Journalled without its commission: write it again, now with it.
                self._updates.add(fill.exec_id)
            incoming[fill.exec_id] = fill
        to_write = {**self._pending_fills, **incoming}
        if not to_write:
            return self._report(batch_ids, set())
        self._pending_fills = to_write
        by_day: dict[date, list[FillRecorded]] = {}
        for fill in to_write.values():
            by_day.setdefault(self._fill_day(fill), []).append(fill)
        written: set[str] = set()
        try:
            for day, day_fills in sorted(by_day.items()):
                self._append_journal(FILLS, day, records_to_frame(day_fills, FillRecorded))
                ids = {f.exec_id for f in day_fills}
                self._known_day(day).update(ids)
                for f in day_fills:
                    if f.commission is None:
                        self._uncommissioned.add(f.exec_id)
                    else:
                        self._uncommissioned.discard(f.exec_id)
                written |= ids - self._updates  # a commission update is not a new fill
                self._updates -= ids
                for exec_id in ids:
                    del self._pending_fills[exec_id]
        except BaseException:
            # Durable but not acknowledged to the caller: count them new next time.
            self._unreported |= written
            raise
        return self._report(batch_ids, written)

    def _report(self, batch_ids: set[str], written: set[str]) -> set[str]:
        """The ids to report new to this batch's callers.

        A fill written by another call than the one that brought it (a pending fill
        written by a later call) is reported new to the first caller that presents it
        again, so the caller that got the error still gets to handle it.
        """
        self._unreported |= written - batch_ids
        reported = (written & batch_ids) | (batch_ids & self._unreported)
        self._unreported -= reported
        return reported

    # -- fills -----------------------------------------------------------------------------

    async def append_fills(self, fills: Sequence[FillRecorded]) -> int:
        """Journal the executions not journalled yet; return how many of ``fills`` were new.

        Returns once they are durable. Raises :class:`StoreError` when the write failed:
        the fills then wait in the store's pending queue and go first with the next call;
        the caller must not treat them as handled and should call again later.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._fill_queue.append((list(fills), future))
        if self._fill_task is None or self._fill_task.done():
            self._fill_task = loop.create_task(self._drain_fills())
        return await future

    async def _drain_fills(self) -> None:
        while self._fill_queue:
            batch, self._fill_queue = self._fill_queue, []
            everything = [f for fills, _ in batch for f in fills]
            try:
                new_ids = await self._write("append_fills", self._write_fills_sync, everything)
            except Exception as exc:
                error = exc if isinstance(exc, StoreError) else self._failure("append_fills", exc)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
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
        """How many fills wait for a successful write."""
        return len(self._pending_fills)

    async def fills(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        strategy: str | None = None,
        *,
        account: str | None = None,
    ) -> pd.DataFrame:
        """Journalled fills with ``start <= time <= end`` (UTC), indexed by time.

        One row per ``exec_id``: of several copies (a commission that arrived late,
        concurrent writers) the last one with a commission, else the first.
        """
        df = await self._read("fills", self._read_journal, FILLS, start, end, FillRecorded)
        if len(df):
            df = _one_row_per_execution(df)
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

    # -- journal reads (reader thread) -----------------------------------------------------

    def _journal_symbols(
        self, library: str, first: date | None, last: date | None
    ) -> list[tuple[date, str]]:
        out = []
        for symbol in self._lib(library).list_symbols():
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
        lo = _to_utc(start) if start is not None else None
        hi = _to_utc(end) if end is not None else None
        symbols = self._journal_symbols(
            library, lo.date() if lo is not None else None, hi.date() if hi is not None else None
        )
        if not symbols:
            return _empty(cls)
        lib = self._lib(library)
        frames = []
        for item in lib.read_batch([s for _, s in symbols]):
            data = getattr(item, "data", None)
            if data is None:
                raise RuntimeError(f"reading {library}: {item}")
            frames.append(data)
        df = pd.concat(frames) if len(frames) > 1 else frames[0]
        times = _utc_index(df["time"])
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
        """Buffer one P&L point (``strategy`` None is the account); never blocks."""
        self._pnl_buffer.append(point)
        self._buffered()

    def record_positions(self, changes: Iterable[PositionChanged]) -> None:
        """Buffer position snapshots; never blocks."""
        self._pos_buffer.extend(changes)
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
        if self._closed or (self._flush_task is not None and not self._flush_task.done()):
            return

        async def background() -> None:
            with contextlib.suppress(StoreError):  # logged and emitted; buffers kept
                await self.flush()

        self._flush_task = asyncio.ensure_future(background())

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
            rows = [_PnLRow.of(p) for p in pnl]
            self._append_records(PNL, rows, _PnLRow)
            pnl.clear()  # written: a failure below must not write them twice
        if positions:
            self._write_positions(positions)

    def _write_positions(self, positions: list[PositionChanged]) -> None:
        if self._open_positions is None:
            self._open_positions = self._last_positions_before(None)
        by_day: dict[date, list[PositionChanged]] = {}
        for p in positions:
            by_day.setdefault(_to_utc(p.time).date(), []).append(p)
        for day, rows in sorted(by_day.items()):
            lib = self._lib(POSITIONS)
            if self._positions_day != day and not lib.has_symbol(self._symbol(day)):
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
                df = df[_utc_index(df["time"]) <= when]
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
        return await self._read("positions_at", self._positions_at_sync, _to_utc(when))

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
            df = await self._read("pnl", self._read_journal, PNL, start, end, _PnLRow)
        buffered = [
            p
            for p in self._pnl_buffer
            if (start is None or p.time >= start) and (end is None or p.time <= end)
        ]
        if buffered:
            rows = [_PnLRow.of(p) for p in buffered]
            extra = records_to_frame(rows, _PnLRow).set_index("time")
            df = pd.concat([df, extra]).sort_index(kind="stable") if len(df) else extra
        if strategy is not None:
            df = df[df["strategy"] == strategy]
        return df

    # -- daily summaries -------------------------------------------------------------------

    async def save_daily(self, summaries: Sequence[DailySummary]) -> None:
        """Save daily summaries; the days they cover replace what was saved for them."""
        await self._write("save_daily", self._save_daily_sync, list(summaries))

    def _save_daily_sync(self, summaries: list[DailySummary]) -> None:
        if not summaries:
            return
        lib = self._lib(DAILY)
        symbol = f"summary.{self.writer}"
        df = pd.DataFrame(
            {
                "strategy": np.array([s.strategy for s in summaries], dtype=object),
                "realized": np.array([s.realized for s in summaries], dtype=np.float64),
                "unrealized": np.array([s.unrealized for s in summaries], dtype=np.float64),
                "daily": np.array([s.daily for s in summaries], dtype=np.float64),
                "commissions": np.array([s.commissions for s in summaries], dtype=np.float64),
                "fills": np.array([s.fills for s in summaries], dtype=np.int64),
            },
            index=pd.DatetimeIndex([pd.Timestamp(s.day, tz=UTC) for s in summaries], name="day"),
        ).sort_index(kind="stable")
        if not lib.has_symbol(symbol):
            lib.write(symbol, df)
            return
        old = lib.read(symbol).data
        days = set(df.index)
        merged = pd.concat([old[~old.index.isin(days)], df]).sort_index(kind="stable")
        lib.write(symbol, merged)

    async def daily(self, start: date | None = None, end: date | None = None) -> pd.DataFrame:
        """Daily summaries (every writer's) between two days inclusive, indexed by day."""
        return await self._read("daily", self._daily_sync, start, end)

    def _daily_sync(self, start: date | None, end: date | None) -> pd.DataFrame:
        lib = self._lib(DAILY)
        frames = []
        for symbol in lib.list_symbols():
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
        self._lib(STATE).write(_state_symbol(key), pd.DataFrame({"json": [text]}))

    async def load_state(self, key: str, default: Any = None) -> Any:
        """The value saved under ``key``, or ``default``.

        Runs on the writer thread, so it sees every :meth:`save_state` awaited before.
        """
        return await self._write("load_state", self._load_state_sync, key, default)

    def _load_state_sync(self, key: str, default: Any) -> Any:
        lib = self._lib(STATE)
        symbol = _state_symbol(key)
        if not lib.has_symbol(symbol):
            return default
        return json.loads(lib.read(symbol).data["json"].iloc[0])


def _one_row_per_execution(df: pd.DataFrame) -> pd.DataFrame:
    """Per ``exec_id``, the last row with a commission, else the first row."""
    ids = df["exec_id"]
    if not ids.duplicated().any():
        return df
    n = len(df)
    position = np.arange(n)
    has = df["commission"].notna().to_numpy()
    # Higher is better: rows with a commission beat those without, later ones first;
    # without one, the first copy wins.
    score = np.where(has, n + position, -position)
    best = pd.Series(score).groupby(ids.to_numpy()).transform("max").to_numpy()
    return df[score == best]


def _state_symbol(key: str) -> str:
    return "state." + _NAME_RE.sub("_", key)


@dataclasses.dataclass(frozen=True, slots=True)
class _PnLRow:
    strategy: str
    daily: float
    realized: float
    unrealized: float
    total: float
    time: datetime

    @classmethod
    def of(cls, p: PnLChanged) -> _PnLRow:
        """A P&L event as its stored row (the account's series is named ``*``)."""
        strategy = p.strategy if p.strategy is not None else ACCOUNT_TOTAL
        return cls(strategy, p.daily, p.realized, p.unrealized, p.total, p.time)
