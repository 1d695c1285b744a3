"""Other consoles' fills on a shared store: marking them, and following them live.

Owns the desk's view of the other writers: an execution journalled by another console
is that console's, so its strategy is marked ``strategy@writer`` (:func:`foreign_fill`)
in this console's book, and this console records neither positions nor P&L of a marked
strategy (:meth:`ForeignFills.is_foreign`). :meth:`ForeignFills.follow` looks every
second for the rows other writers appended to today's fills journals and emits them as
``event(writer, fills)``. Kept apart from :class:`core.store.Store` so the store's own
journals need nothing from it but :meth:`~ForeignFills.is_foreign`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import UTC, datetime

from eventkit import Event

from core.arctic_io import read_many
from core.events import FillRecorded
from core.frames import frame_to_records, utc_index
from core.store_health import StoreError
from core.store_journals import Journals
from core.store_roster import WriterRegistry
from core.store_threads import StoreThreads
from core.tasks import Tasks

FILLS = "fills"


def foreign_strategy(strategy: str, writer: str) -> str:
    """Another console's strategy as this console's book names it: ``strategy@writer``."""
    return f"{strategy}@{writer}"


def foreign_fill(fill: FillRecorded, writer: str) -> FillRecorded:
    """Another console's fill, its strategy marked as that console's (idempotent)."""
    suffix = f"@{writer}"
    if fill.strategy.endswith(suffix):
        return fill
    return dataclasses.replace(fill, strategy=foreign_strategy(fill.strategy, writer))


class ForeignFills:
    """The other writers' strategies as marked here, and the live follow of their fills.

    ``event`` (writer: str, fills: list of :class:`core.events.FillRecorded`): another
    console's fills, new since the last look.
    """

    def __init__(
        self,
        journals: Journals,
        registry: WriterRegistry,
        threads: StoreThreads,
    ) -> None:
        self._journals = journals
        self._registry = registry
        self._threads = threads
        self.event: Event = Event("foreignFillsEvent")
        self._tasks = Tasks("store")
        # Other consoles' strategies as marked in this console's book (loop thread).
        self.strategies: set[str] = set()
        # Rows of each followed symbol seen so far (reader thread).
        self._followed_rows: dict[str, int] = {}
        #: Looks finished so far (what they found emitted): what a test awaits to know the
        #: follow looked again, instead of sleeping for it.
        self.looks = 0

    def is_foreign(self, strategy: str | None) -> bool:
        """True for another console's strategy (as marked here): its console records it."""
        return strategy in self.strategies

    def mark(self, fill: FillRecorded, writer: str) -> FillRecorded:
        """``fill`` of ``writer`` as this console's book holds it: another writer's is
        marked as theirs, and their strategy's positions and P&L are not recorded here."""
        if self._registry.is_own(writer):
            return fill
        relabelled = foreign_fill(fill, writer)
        self.strategies.add(relabelled.strategy)
        return relabelled

    def follow(self, interval: float = 1.0) -> None:
        """Start looking every ``interval`` seconds (see :meth:`core.store.Store.follow`)."""
        self._tasks.ensure("follow", lambda: self._follow(interval))

    def stop(self) -> None:
        """Stop following (the store is closing)."""
        for task in self._tasks.of("follow"):
            task.cancel()

    async def _follow(self, interval: float) -> None:
        while not self._threads.closed:
            try:
                found = await self._threads.read("follow", self._new_rows)
                # The roster has no compare-and-swap: another console registering at
                # the same instant can overwrite this one's entry after it was checked.
                # Looking every pass makes the others see this console within a second.
                if self._registry.lease is not None:
                    await self._threads.call(self._threads.lease, "follow", self._registry.register)
            except StoreError:
                found = []  # reported; looked at again next time
            for writer, fills in found:
                for fill in fills:
                    self.mark(fill, writer)  # its positions are not ours to record
                if fills:
                    with contextlib.suppress(Exception):  # a listener's bug is not ours
                        self.event.emit(writer, fills)
            self.looks += 1
            await asyncio.sleep(interval)

    def _new_rows(self) -> list[tuple[str, list[FillRecorded]]]:
        """Other writers' rows appended since the last look (reader thread)."""
        from arcticdb import ReadRequest

        today = datetime.now(UTC).date()
        theirs = {
            self._journals.symbol(today, w): w
            for w in self._registry.writers()
            if not self._registry.is_own(w)
        }
        requests = [
            ReadRequest(symbol, row_range=(self._followed_rows.get(symbol, 0), None))
            for symbol in theirs
        ]
        out = []
        for symbol, df in read_many(self._journals.library(FILLS), requests).items():
            if not len(df):
                continue
            self._followed_rows[symbol] = self._followed_rows.get(symbol, 0) + len(df)
            df = df.assign(time=utc_index(df["time"])).set_index("time")
            out.append((theirs[symbol], frame_to_records(df, FillRecorded)))
        return out
