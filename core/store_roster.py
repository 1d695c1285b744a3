"""This console's writer name on a store: its lease, and the roster of every writer.

Owns the rule that makes a shared store safe: each journal symbol has one writing
process. The writer's lease (:mod:`core.lease`) is taken at open, renewed on the lease
thread, and checked before every write (:meth:`WriterRegistry.check`); once another
console took the name over, nothing more is written. The roster (symbol ``roster`` of
``leases``) lists every writer, so the store finds the other consoles' journals without
ArcticDB's ``list_symbols``, which holds Python's GIL while S3 is silent. Kept apart from
:class:`core.store.Store` because none of the journals' logic needs more of it than
:meth:`~WriterRegistry.check`, :meth:`~WriterRegistry.writers` and
:meth:`~WriterRegistry.is_own`.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import Any

import pandas as pd
from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_attempt

from core.arctic_io import read_or_none
from core.compat import forget_cached_versions
from core.lease import LeaseHeld, WriterLease
from core.store_health import LeaseLost

log = logging.getLogger("core.store")

#: The symbol of the ``leases`` library listing every writer of the store.
ROSTER = "roster"

#: The writer every console used before writers were named (see :meth:`WriterRegistry.is_own`).
LEGACY_WRITER = "console"


class WriterRegistry:
    """One writer's lease and its place on the roster (any store thread; the lease's
    renewals are serialised by a lock)."""

    def __init__(
        self,
        library: Callable[[], Any],
        writer: str,
        *,
        is_local: bool,
        lease_seconds: float | None,
        description: str = "",
    ) -> None:
        self._library = library  # the ``leases`` library (opened on first use)
        self.writer = writer
        self.is_local = is_local
        self.lease_seconds = lease_seconds
        self.description = description
        self.lease: WriterLease | None = None
        self.lost: str | None = None  # why the lease was lost, once it is
        self._lock = threading.Lock()

    def is_own(self, writer: str) -> bool:
        """True if journals of ``writer`` are this console's: its own name, and on a
        local store the name every console used before writers were named."""
        return writer == self.writer or (writer == LEGACY_WRITER and self.is_local)

    # -- the lease -------------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the writer's lease (raises :class:`core.lease.LeaseHeld` when a live
        console holds it; :meth:`register` follows). Nothing when leases are off."""
        if self.lease_seconds is None:
            return
        self.lease = WriterLease(
            self._library(),
            self.writer,
            lease_seconds=self.lease_seconds,
            # One machine sees its own writes at once; S3 gets a second for the
            # read-back that settles two consoles taking the lease together.
            settle=0.02 if self.is_local else None,
            description=self.description,
        )
        self.lease.acquire()

    def renew(self) -> None:
        """Renew the lease and make sure this writer is on the roster (lease thread)."""
        assert self.lease is not None
        with self._lock:
            try:
                self.lease.renew()
            except LeaseHeld as exc:
                self.lost = str(exc)
                raise
        self.register()

    def check(self) -> None:
        """Before every write: refuse once the lease is lost; renew it first when it is
        not good for another half of its length (after an outage, say), so nothing is
        written under a name another console may have taken meanwhile."""
        if self.lease is None:
            return
        if self.lost is not None:
            raise LeaseLost(self.lost)
        if not self.lease.fresh(self.lease.lease_seconds / 2):
            self.renew()

    def release(self) -> None:
        """Give the name up (at a clean close)."""
        if self.lease is not None:
            self.lease.release()

    # -- the roster ------------------------------------------------------------------------

    def roster(self) -> list[str]:
        """The writers registered in this store (any thread)."""
        lib = self._library()
        forget_cached_versions(lib)  # a lost concurrent first write stays cached otherwise
        df = read_or_none(lib, ROSTER)
        return [] if df is None else [str(w) for w in df["writer"]]

    def writers(self) -> list[str]:
        """Every writer whose journals may hold the account's records: the roster, this
        console, and on a local store the name used before writers were named."""
        names = dict.fromkeys([self.writer, *self.roster()])
        if self.is_local:
            names[LEGACY_WRITER] = None
        return list(names)

    def register(self, attempts: int = 3) -> bool:
        """Put this writer on the roster if it is not; True once it is seen there.

        At open and at every renewal (and on every pass of following other writers).
        Two consoles registering at the same instant can each overwrite the other's
        addition, so each attempt reads the roster first and adds this writer to what it
        holds then (the other console's name stays), and the attempts are spaced by a
        short random pause that grows with each. Before, the console left out stayed
        invisible to the others' books until its next lease renewal (a flaky desk test).
        """
        # A local store's writes land at once: only a short pause (start-up waits for
        # this); S3 needs time for a racing write to show.
        pause = 0.01 if self.is_local else 0.1

        def spacing(state: RetryCallState) -> float:
            return random.uniform(pause / 5, pause) * state.attempt_number

        retrying = Retrying(
            retry=retry_if_result(lambda registered: not registered),
            stop=stop_after_attempt(attempts),
            wait=spacing,
            retry_error_callback=lambda _state: False,
        )
        registered: bool = retrying(self._register_once)
        if not registered:
            log.warning(
                "store roster: %s not registered yet; again at the next renewal", self.writer
            )
        return registered

    def _register_once(self) -> bool:
        """One attempt: True if this writer is on the roster already, else write it there
        (read back by the next attempt)."""
        roster = self.roster()
        if self.writer in roster:
            return True
        df = pd.DataFrame({"writer": [*roster, self.writer]})
        try:
            # No pruning: another writer may be reading it at this moment.
            self._library().write(ROSTER, df, prune_previous_versions=False)
        except Exception as exc:
            # ArcticDB refuses a write racing another process's to the same symbol.
            log.info("store roster busy (%s); trying again", exc)
        return False
