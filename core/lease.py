"""A writer's lease in a shared ArcticDB store: one live console per writer identity.

Each console writes its journals under its own *writer* name (``"<day>.<writer>"``
symbols), because ArcticDB does not support two processes appending to one symbol. The
lease makes sure the name is really one process's: it is a one-row symbol
``lease.<writer>`` in the store's ``leases`` library saying who holds the name (a random
id per process, with host, pid and a description for the message) and until when.

* :meth:`WriterLease.acquire` refuses (:class:`LeaseHeld`, naming the holder) while
  another process holds an unexpired lease; a lease left by a killed console expires
  ``lease_seconds`` after its last renewal and is then taken over.
* The holder renews it every ``lease_seconds / 3``; each renewal first reads the lease
  back, so a console whose lease was taken over (it was cut off from the store for
  longer than the lease) learns it at once and stops writing.

ArcticDB has no compare-and-swap, so taking a lease is *write, wait, read back*: two
processes taking a free lease at the same instant both write, and after ``settle``
seconds both read the one that landed last; only its writer goes on. Expiry compares
wall clocks: the desk's machines must agree on the time to well within
``lease_seconds`` (NTP does).
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd

#: The library that holds every writer's lease.
LEASES = "leases"


@dataclasses.dataclass(frozen=True, slots=True)
class LeaseRecord:
    """Who holds a writer name, and until when (seconds since the epoch)."""

    writer: str
    holder: str  # a random id per process
    host: str
    pid: int
    description: str  # e.g. "client 2, account DU0000001"
    renewed: float
    expires: float

    def describe(self, now: float) -> str:
        """The holder as a trader reads it: host, pid, description and the lease's age."""
        since = datetime.fromtimestamp(self.renewed, UTC).strftime("%H:%M:%S UTC")
        who = f"{self.description} on {self.host} (pid {self.pid})"
        return f"{who}, renewed {since}, expires in {max(0.0, self.expires - now):.0f} s"


class LeaseHeld(RuntimeError):
    """Another live console holds this writer name; ``holder`` says which."""

    def __init__(self, writer: str, holder: LeaseRecord, now: float) -> None:
        self.writer = writer
        self.holder = holder
        super().__init__(
            f"store writer {writer!r} is in use by {holder.describe(now)}; close that "
            "console, or give this one another name ([store] writer)"
        )


class WriterLease:
    """The lease on one writer name; every method blocks (run it off the loop)."""

    def __init__(
        self,
        library: Any,
        writer: str,
        *,
        lease_seconds: float = 30.0,
        settle: float | None = None,
        description: str = "",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.library = library
        self.writer = writer
        self.lease_seconds = lease_seconds
        self.settle = settle if settle is not None else min(1.0, lease_seconds / 10)
        self.holder = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.description = description or "a console"
        self._clock = clock
        self._sleep = sleep
        #: Until when this process's lease is known good (0: not held).
        self.valid_until = 0.0

    @property
    def symbol(self) -> str:
        """The lease's symbol in the ``leases`` library."""
        return f"lease.{self.writer}"

    def read(self) -> LeaseRecord | None:
        """The lease as stored, or None when there is none."""
        # A read, not has_symbol: ArcticDB's has_symbol holds the GIL while S3 answers.
        try:
            df = self.library.read(self.symbol).data
        except Exception as exc:
            from arcticdb.exceptions import NoSuchVersionException

            if isinstance(exc, NoSuchVersionException):
                return None
            raise
        row = df.iloc[0]
        return LeaseRecord(
            writer=str(row["writer"]),
            holder=str(row["holder"]),
            host=str(row["host"]),
            pid=int(row["pid"]),
            description=str(row["description"]),
            renewed=float(row["renewed"]),
            expires=float(row["expires"]),
        )

    def _write(self, expires: float, *, prune: bool) -> None:
        now = self._clock()
        df = pd.DataFrame(
            {
                "writer": [self.writer],
                "holder": [self.holder],
                "host": [self.host],
                "pid": [self.pid],
                "description": [self.description],
                "renewed": [now],
                "expires": [expires],
            }
        )
        self.library.write(self.symbol, df, prune_previous_versions=prune)

    def acquire(self) -> None:
        """Take the lease, or raise :class:`LeaseHeld` naming the live holder."""
        now = self._clock()
        current = self.read()
        if current is not None and current.holder != self.holder and current.expires > now:
            raise LeaseHeld(self.writer, current, now)
        # No pruning: a process taking the lease at the same instant must not lose the
        # version it reads back to a prune of ours.
        try:
            self._write(now + self.lease_seconds, prune=False)
        except Exception:
            # ArcticDB refuses a write racing another's to the same symbol: if that
            # other one took the lease, say so; else it is a storage error.
            current = self.read()
            if current is not None and current.holder != self.holder:
                raise LeaseHeld(self.writer, current, self._clock()) from None
            raise
        self._sleep(self.settle)
        current = self.read()
        if current is None or current.holder != self.holder:
            self.valid_until = 0.0
            if current is None:
                raise RuntimeError(f"the lease on writer {self.writer!r} vanished while taken")
            raise LeaseHeld(self.writer, current, self._clock())
        self.valid_until = now + self.lease_seconds

    def renew(self) -> None:
        """Extend the lease; :class:`LeaseHeld` if another process holds it now."""
        now = self._clock()
        current = self.read()
        if current is None or current.holder != self.holder:
            self.valid_until = 0.0
            if current is None:
                raise RuntimeError(f"the lease on writer {self.writer!r} was deleted")
            raise LeaseHeld(self.writer, current, now)
        # Only the holder writes here: pruning its own old versions is safe.
        self._write(now + self.lease_seconds, prune=True)
        self.valid_until = now + self.lease_seconds

    def release(self) -> None:
        """Give the lease up (it expires now), if this process still holds it."""
        current = self.read()
        if current is not None and current.holder == self.holder:
            self._write(0.0, prune=True)
        self.valid_until = 0.0

    def fresh(self, margin: float) -> bool:
        """True if the lease is good for at least ``margin`` more seconds."""
        return self._clock() + margin < self.valid_until
