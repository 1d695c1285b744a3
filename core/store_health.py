"""The store's health: its state, the fills not durable yet, and how failures are told.

Owns what a trader's status bar shows of the store (:class:`core.events.StoreHealthChanged`:
``ok``, ``slow``, ``failing``, ``lease lost``, ``closed``, and the count of fills not
durable yet) and the one way a storage failure is reported: logged with the URI's
credentials redacted, emitted as :class:`core.events.StoreErrorOccurred`, and returned as
the :class:`StoreError` the caller raises. Kept apart from :class:`core.store.Store` so
every part of the store (its threads, the fills journal, the buffered series) reports the
same way through one narrow object, and none of them holds the others' state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Iterable

from eventkit import Event

from core.config import redact_uri, secrets_in
from core.events import StoreErrorOccurred, StoreHealthChanged

log = logging.getLogger("core.store")


class StoreError(RuntimeError):
    """A store operation failed; ``operation`` names it, ``__cause__`` is ArcticDB's error."""

    def __init__(self, operation: str, message: str) -> None:
        self.operation = operation
        super().__init__(f"{operation}: {message}")


class LeaseLost(RuntimeError):
    """This console's writer name was taken over: it writes nothing more."""


class StoreHealth:
    """The store's state and its fills not durable yet; emits when either changes.

    Events:
        * ``errorEvent`` (:class:`core.events.StoreErrorOccurred`): an operation failed
        * ``healthEvent`` (:class:`core.events.StoreHealthChanged`): state or count changed

    ``lost`` says why the writer's lease was lost (None while it is held): a failure then
    reads ``lease lost``, which nothing but closing replaces.
    """

    def __init__(self, uri: str, writer: str, lost: Callable[[], str | None]) -> None:
        self.writer = writer
        self.errorEvent: Event = Event("errorEvent")
        self.healthEvent: Event = Event("healthEvent")
        self._uri = redact_uri(uri)
        self._secrets = secrets_in(uri)
        self._lost = lost
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = threading.get_ident()
        self.state = "ok"
        self._message = ""
        self._last: tuple[str, int] = ("ok", 0)
        # Owned by the loop thread: every fill handed to the store and not durable yet.
        self._not_durable: set[str] = set()

    def bind_loop(self) -> None:
        """Take the running loop as the one events are emitted on (at open)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    # -- fills not durable yet -------------------------------------------------------------

    @property
    def pending(self) -> int:
        """How many fills are not durable yet."""
        return len(self._not_durable)

    @property
    def pending_ids(self) -> list[str]:
        """The exec ids of the fills not durable yet, sorted."""
        return sorted(self._not_durable)

    def handed(self, exec_ids: Iterable[str]) -> None:
        """Loop thread: these fills were handed to the store (not durable until told)."""
        before = len(self._not_durable)
        self._not_durable.update(exec_ids)
        if len(self._not_durable) != before:
            self.set()

    def durable(self, exec_ids: set[str]) -> None:
        """Loop thread: these fills are durable."""
        self._not_durable -= exec_ids
        self.set()

    def report_durable(self, exec_ids: set[str]) -> None:
        """From a store thread: these fills are durable."""
        if exec_ids and self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.durable, set(exec_ids))

    # -- state -----------------------------------------------------------------------------

    def snapshot(self) -> StoreHealthChanged:
        """The health now, as an event (for a window attaching late)."""
        return StoreHealthChanged(self.state, self.pending, self._message, self.writer)

    def after_write(self, operation: str, elapsed: float, slow_seconds: float) -> None:
        """A write answered after ``elapsed`` seconds: slow, or recovered from slow or
        failing (a lease renewal alone does not clear a failure while fills wait)."""
        if elapsed > slow_seconds:
            self.set("slow", f"{operation} took {elapsed:.1f} s")
        elif self.state in ("slow", "failing") and (
            operation != "renew lease" or not self._not_durable
        ):
            self.set("ok", "")

    def set(self, state: str | None = None, message: str | None = None) -> None:
        """Update the state (None: keep it) and emit when state or pending count changed.

        Runs on the loop thread; other threads go through ``call_soon_threadsafe``.
        """
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                self._loop.call_soon_threadsafe(self.set, state, message)
            return
        if state is not None and not (self.state == "lease lost" and state != "closed"):
            self.state = state
            if message is not None:
                self._message = message
        key = (self.state, self.pending)
        if key == self._last:
            return
        self._last = key
        event = self.snapshot()
        if self.state in ("failing", "lease lost"):
            log.warning("store %s: %s (%d fills pending)", *key[:1], event.message, key[1])
        with contextlib.suppress(Exception):
            self.healthEvent.emit(event)

    def failure(self, operation: str, exc: BaseException, *, health: bool = True) -> StoreError:
        """Report a failed operation (log, ``errorEvent``, state) and return its error,
        its message free of the URI's credentials. ``health``: False for reads, which
        do not make the store ``failing``."""
        if isinstance(exc, StoreError):
            return exc
        message = redact_uri(f"{type(exc).__name__}: {exc}")
        for secret in self._secrets:
            message = message.replace(secret, "***")
        error = StoreError(operation, message)
        log.error(
            "store %s failed on %s: %s (%d fills pending)",
            operation,
            self._uri,
            message,
            self.pending,
        )
        with contextlib.suppress(Exception):
            self.errorEvent.emit(StoreErrorOccurred(operation, message, self.pending))
        lost = self._lost()
        if lost is not None:
            self.set("lease lost", lost)
        elif health:
            self.set("failing", f"{operation}: {message}")
        return error
