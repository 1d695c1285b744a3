"""The store's buffered series: P&L points and position snapshots.

Owns what the console records many times a second and can recompute from the fills:
:class:`SeriesBuffer` keeps P&L points and position snapshots in memory and writes them
every ``flush_points`` points or ``flush_seconds`` seconds (and on :meth:`~SeriesBuffer.flush`),
keeps them after a failed write for the next flush (up to ``max_buffered``, the oldest
dropped beyond that, with an error), carries every open position into a day's first
snapshot, and answers the reads that must see what is still buffered. Kept apart from
:class:`core.store.Store` so the buffering's timer, lock and carried-forward positions are
one small object's, not the whole store's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Iterable
from datetime import date, datetime

import numpy as np
import pandas as pd

from core.arctic_io import read_or_none
from core.events import PnLChanged, PositionChanged
from core.frames import PnLRow, frame_to_records, records_to_frame, to_utc, utc_index
from core.store_health import StoreError, StoreHealth
from core.store_journals import Journals, symbol_writer
from core.store_threads import StoreThreads
from core.tasks import Tasks

PNL, POSITIONS = "pnl", "positions"


class SeriesBuffer:
    """Buffered P&L points and position snapshots, and their reads.

    ``is_foreign(strategy)``: another console's strategy, which that console records.
    """

    def __init__(
        self,
        journals: Journals,
        threads: StoreThreads,
        health: StoreHealth,
        *,
        is_foreign: Callable[[str | None], bool],
        flush_points: int,
        flush_seconds: float,
        max_buffered: int,
    ) -> None:
        self._journals = journals
        self._threads = threads
        self._health = health
        self._is_foreign = is_foreign
        self.flush_points = flush_points
        self.flush_seconds = flush_seconds
        self.max_buffered = max_buffered
        self._tasks = Tasks("store")
        # Owned by the loop thread.
        self.pnl_buffer: list[PnLChanged] = []
        self.pos_buffer: list[PositionChanged] = []
        self._timer: asyncio.TimerHandle | None = None
        self._lock = asyncio.Lock()
        # Owned by the writer thread.
        self._open_positions: dict[tuple[str, int], PositionChanged] | None = None
        self._positions_day: date | None = None

    # -- buffering (loop thread) -----------------------------------------------------------

    def record_pnl(self, point: PnLChanged) -> None:
        """Buffer one P&L point unless it is another console's; never blocks."""
        if self._is_foreign(point.strategy):
            return
        self.pnl_buffer.append(point)
        self._buffered()

    def record_positions(self, changes: Iterable[PositionChanged]) -> None:
        """Buffer position snapshots (not another console's); never blocks."""
        self.pos_buffer.extend(c for c in changes if not self._is_foreign(c.strategy))
        self._buffered()

    def _buffered(self) -> None:
        total = len(self.pnl_buffer) + len(self.pos_buffer)
        if total > self.max_buffered:
            excess = total - self.max_buffered
            dropped = min(excess, len(self.pnl_buffer))
            del self.pnl_buffer[:dropped]
            del self.pos_buffer[: excess - dropped]
            self._health.failure(
                "buffer", RuntimeError(f"buffer full: {excess} oldest points dropped")
            )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: flush() writes them
        if total >= self.flush_points:
            self._spawn_flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.flush_seconds, self._spawn_flush)

    def _spawn_flush(self) -> None:
        self._timer = None
        if self._threads.closed or self._tasks.of("flush"):
            return

        async def background() -> None:
            with contextlib.suppress(StoreError):  # logged and emitted; buffers kept
                await self.flush()

        self._tasks.spawn(background(), "flush")

    def stop(self) -> None:
        """No more timed flushes (the store is closing)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def flush(self) -> None:
        """Write the buffered points; on failure they stay buffered for the next flush
        and :class:`StoreError` is raised."""
        self.stop()
        # The lock keeps a P&L read from running while points are in flight (out of the
        # buffer, not yet in the journal), where it would see them in neither.
        async with self._lock:
            while self.pnl_buffer or self.pos_buffer:
                pnl, self.pnl_buffer = self.pnl_buffer, []
                positions, self.pos_buffer = self.pos_buffer, []
                try:
                    await self._threads.write("flush", self._flush_sync, pnl, positions)
                except StoreError:
                    self.pnl_buffer[:0] = pnl
                    self.pos_buffer[:0] = positions
                    raise

    # -- writing (writer thread) -----------------------------------------------------------

    def _flush_sync(self, pnl: list[PnLChanged], positions: list[PositionChanged]) -> None:
        if pnl:
            rows = [PnLRow.of(p) for p in pnl]
            self._journals.append_records(PNL, rows, PnLRow)
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
            lib = self._journals.library(POSITIONS)
            new_day = self._positions_day != day
            if new_day and read_or_none(lib, self._journals.symbol(day), row_range=(0, 1)) is None:
                # The day's first snapshot carries every open position forward.
                t0 = rows[0].time
                carried = [
                    dataclasses.replace(p, time=t0)
                    for key, p in self._open_positions.items()
                    if p.quantity != 0 and key not in {(r.strategy, r.con_id) for r in rows}
                ]
                rows = carried + rows
            self._positions_day = day
            self._journals.append_records(POSITIONS, rows, PositionChanged)
            for p in rows:
                self._open_positions[(p.strategy, p.con_id)] = p

    # -- reads -----------------------------------------------------------------------------

    def _last_positions_before(
        self, when: pd.Timestamp | None, writer: str | None = None
    ) -> dict[tuple[str, int], PositionChanged]:
        """The last snapshot per (strategy, con_id) at or before ``when`` (None: ever)."""
        lib = self._journals.library(POSITIONS)
        day = when.date() if when is not None else None
        wanted = writer or self._journals.writer
        days = [
            (d, s)
            for d, s in self._journals.symbols(POSITIONS, None, day)
            if symbol_writer(s) == wanted
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

    def positions_at(self, when: pd.Timestamp) -> pd.DataFrame:
        """Reader thread: every writer's open positions at ``when`` (see
        :meth:`core.store.Store.positions_at`)."""
        writers = sorted(
            {symbol_writer(s) for _, s in self._journals.symbols(POSITIONS, None, None)}
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
        """P&L points journalled and still buffered (see :meth:`core.store.Store.pnl`)."""
        async with self._lock:
            df = await self._threads.read("pnl", self._journals.read, PNL, start, end, PnLRow)
        buffered = [
            p
            for p in self.pnl_buffer
            if (start is None or p.time >= start) and (end is None or p.time <= end)
        ]
        if buffered:
            rows = [PnLRow.of(p) for p in buffered]
            extra = records_to_frame(rows, PnLRow).set_index("time")
            df = pd.concat([df, extra]).sort_index(kind="stable") if len(df) else extra
        if strategy is not None:
            df = df[df["strategy"] == strategy]
        return df
