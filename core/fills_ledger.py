"""The fills journal's bookkeeping: idempotent by exec id, durable on return.

:class:`FillsLedger` decides, on the store's fills thread, what of a batch of fills to
write and what to report new to its callers (see the ``core.store`` docstring, "The
fills journal: idempotent and durable"): exec ids known per journal day (every
writer's), fills pending after a failed write, commission updates (written again, not
new), and days whose last append failed (what landed is read back before writing
again). It owns no storage: the store hands it the fills library, the writers, an
append and a way to say fills are durable.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pandas as pd

from core.arctic_io import read_many, read_or_none
from core.events import FillRecorded
from core.frames import records_to_frame, to_utc

__all__ = ["FillsLedger"]


def _fill_day(fill: FillRecorded) -> date:
    """The UTC day whose journal symbol holds ``fill``."""
    return to_utc(fill.time).date()


class FillsLedger:
    """What the fills journal holds and what still has to be written; fills thread only.

    ``library`` gives the fills library, ``symbol_of(day, writer)`` a journal symbol
    (None: this writer's), ``writers`` every writer whose journals may hold the
    account's fills, ``append(day, frame)`` appends to this writer's symbol of ``day``,
    ``report_durable(ids)`` is told of fills now durable; ``client_id`` is this
    console's IB client id (None: unknown).
    """

    def __init__(
        self,
        *,
        library: Callable[[], Any],
        symbol_of: Callable[[date, str | None], str],
        writers: Callable[[], list[str]],
        append: Callable[[date, pd.DataFrame], None],
        report_durable: Callable[[set[str]], None],
        client_id: int | None,
    ) -> None:
        self._library = library
        self._symbol_of = symbol_of
        self._writers = writers
        self._append = append
        self._report_durable = report_durable
        self._client_id = client_id
        self._known: dict[date, set[str]] = {}
        # Known exec ids whose journalled copies all lack the commission.
        self._uncommissioned: set[str] = set()
        # Pending fills that are commission updates of a journalled execution.
        self._updates: set[str] = set()
        #: Fills not written yet (after a failed write), by exec id.
        self.pending: dict[str, FillRecorded] = {}
        self._unreported: set[str] = set()
        # Days whose last append failed: what landed is re-read before writing again.
        self._recheck: set[date] = set()

    def known_day(self, day: date) -> set[str]:
        """The exec ids journalled for ``day`` by any writer (read once, then kept)."""
        known = self._known.get(day)
        if known is None:
            from arcticdb import ReadRequest

            known = set()
            with_commission: set[str] = set()
            requests = [
                ReadRequest(self._symbol_of(day, w), columns=["exec_id", "commission"])
                for w in self._writers()
            ]
            for df in read_many(self._library(), requests).values():
                known.update(df["exec_id"])
                if "commission" in df.columns:
                    with_commission.update(df["exec_id"][df["commission"].notna()])
            self._uncommissioned |= known - with_commission
            self._known[day] = known
        return known

    def _maybe_theirs(self, fill: FillRecorded) -> bool:
        """An execution of another IB client (a replay after a reconnect shows them):
        another console of the desk may have journalled it already."""
        return self._client_id is not None and fill.client_id != self._client_id

    def _refresh_known(self, day: date) -> None:
        """Load the day's exec ids again, every writer's (fills thread)."""
        self._known.pop(day, None)
        self.known_day(day)

    def _journalled_copies(self, day: date) -> dict[str, bool]:
        """This writer's journal for ``day``: exec id -> whether a copy has a commission."""
        df = read_or_none(
            self._library(), self._symbol_of(day, None), columns=["exec_id", "commission"]
        )
        if df is None:
            return {}
        out: dict[str, bool] = {}
        for exec_id, commission in zip(df["exec_id"], df["commission"], strict=True):
            out[exec_id] = out.get(exec_id, False) or commission == commission
        return out

    def _settle_rechecks(self, written: set[str]) -> None:
        """After a failed append: pending fills that landed anyway are written, not
        written again (a timeout or a lost reply can hide a successful append)."""
        for day in sorted(self._recheck):
            pending = [f for f in self.pending.values() if _fill_day(f) == day]
            if pending:
                copies = self._journalled_copies(day)
                for f in pending:
                    if f.exec_id in copies and (f.commission is None or copies[f.exec_id]):
                        self._landed(day, [f])
                        if f.exec_id not in self._updates:  # an update is not a new fill
                            written.add(f.exec_id)
                        self._updates.discard(f.exec_id)
            self._recheck.discard(day)

    def _landed(self, day: date, fills: list[FillRecorded]) -> None:
        """Bookkeeping for fills now in the journal."""
        self.known_day(day).update(f.exec_id for f in fills)
        for f in fills:
            if f.commission is None:
                self._uncommissioned.add(f.exec_id)
            else:
                self._uncommissioned.discard(f.exec_id)
            self.pending.pop(f.exec_id, None)

    def _verify(self, day: date, ids: set[str]) -> None:
        """Read the rows back: an append counts only once a read returns them."""
        lib = self._library()
        symbol = self._symbol_of(day, None)
        try:
            tail = lib.tail(symbol, len(ids), columns=["exec_id"]).data
        except Exception as exc:
            raise RuntimeError(f"fills appended to {symbol} do not read back: {exc}") from exc
        missing = ids - set(tail["exec_id"])
        if missing:
            raise RuntimeError(
                f"{len(missing)} fills appended to {self._symbol_of(day, None)} do not read back"
            )

    def write(self, fills: list[FillRecorded]) -> tuple[set[str], set[str]]:
        """Write the fills the journal does not hold.

        Returns the ids to report new to this batch's callers, and every id now durable.
        """
        batch_ids = {f.exec_id for f in fills}
        written: set[str] = set()
        durable: set[str] = set()
        self._settle_rechecks(written)
        incoming: dict[str, FillRecorded] = {}
        refreshed: set[date] = set()
        for fill in fills:
            if fill.exec_id in incoming:
                continue
            if fill.exec_id in self.pending:
                if self.pending[fill.exec_id].commission is None:
                    self.pending[fill.exec_id] = fill  # a later one may know more
                continue
            day = _fill_day(fill)
            unknown = fill.exec_id not in self.known_day(day)
            if unknown and self._maybe_theirs(fill) and day not in refreshed:
                refreshed.add(day)
                self._refresh_known(day)  # another console may have journalled it since
            if fill.exec_id in self.known_day(day):
                if fill.commission is None or fill.exec_id not in self._uncommissioned:
                    durable.add(fill.exec_id)
                    continue
                # Journalled without its commission: write it again, now with it.
                self._updates.add(fill.exec_id)
            incoming[fill.exec_id] = fill
        self.pending = {**self.pending, **incoming}
        by_day: dict[date, list[FillRecorded]] = {}
        for fill in self.pending.values():
            by_day.setdefault(_fill_day(fill), []).append(fill)
        try:
            for day, day_fills in sorted(by_day.items()):
                ids = {f.exec_id for f in day_fills}
                try:
                    self._append(day, records_to_frame(day_fills, FillRecorded))
                    self._verify(day, ids)
                except BaseException:
                    self._recheck.add(day)
                    raise
                self._landed(day, day_fills)
                written |= ids - self._updates  # a commission update is not a new fill
                durable |= ids
                self._updates -= ids
        except BaseException:
            # Durable but not acknowledged to the caller: count them new next time.
            self._unreported |= written
            self._report_durable(written)
            raise
        return self._report(batch_ids, written), durable | written

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

    def abandoned(self, result: tuple[set[str], set[str]]) -> None:
        """A fills write that timed out finished after all (on the fills thread): its
        callers were told it failed, so they get the new fills reported when they retry."""
        reported, durable = result
        self._unreported |= reported
        self._report_durable(durable)
