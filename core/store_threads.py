"""The store's threads: where ArcticDB calls run, and how long a caller waits for one.

ArcticDB calls never run on the asyncio (Qt) loop thread. This module owns the four
single-thread pools (fills; the other writes, in order; history reads; the lease) and
:meth:`StoreThreads.call`, which runs a call on one of them bounded by the call timeout
and reports a failure or a slow write through :class:`core.store_health.StoreHealth`.
Kept apart from :class:`core.store.Store` so the journals' logic above it never deals
with pools, timeouts or calls that go on after their caller gave up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from core.store_health import StoreError, StoreHealth

T = TypeVar("T")


class _Default:
    """The type of :data:`DEFAULT` (a timeout left to the store's setting)."""


DEFAULT = _Default()


class StoreThreads:
    """The store's four threads and its bounded calls on them."""

    def __init__(
        self, health: StoreHealth, *, call_timeout: float | None, slow_seconds: float
    ) -> None:
        self.health = health
        self.call_timeout = call_timeout
        self.slow_seconds = slow_seconds
        # Fills have a thread of their own, so a fill never waits behind a flush of
        # buffered series or a batch of order updates; the lease has one so it is
        # renewed while a write hangs.
        self.fills = ThreadPoolExecutor(1, thread_name_prefix="store-write-fills")
        self.writes = ThreadPoolExecutor(1, thread_name_prefix="store-write")
        self.reads = ThreadPoolExecutor(1, thread_name_prefix="store-read")
        self.lease = ThreadPoolExecutor(1, thread_name_prefix="store-lease")
        self.closed = False

    @property
    def long_timeout(self) -> float | None:
        """The bound of opening and of history reads (many days on S3)."""
        return None if self.call_timeout is None else 6 * self.call_timeout

    async def write(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the writer thread (in the order asked)."""
        return await self.call(self.writes, operation, fn, *args)

    async def read(self, operation: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the reader thread, with the longer bound."""
        return await self.call(self.reads, operation, fn, *args, timeout=self.long_timeout)

    async def call(
        self,
        pool: ThreadPoolExecutor,
        operation: str,
        fn: Callable[..., T],
        *args: Any,
        timeout: float | _Default | None = DEFAULT,
        abandoned: Callable[[T], None] | None = None,
    ) -> T:
        """Run ``fn`` on ``pool``, bounded by ``timeout`` (default: the call timeout).

        A call that times out cannot be interrupted: it goes on in its thread and the
        caller gets a :class:`StoreError`; ``abandoned`` then gets its result if it
        succeeds later. Writes (every pool but the reader's) drive the store's health.
        """
        if self.closed:
            raise StoreError(operation, "the store is closed")
        limit = self.call_timeout if isinstance(timeout, _Default) else timeout
        health = pool is not self.reads
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
            raise self.health.failure(operation, error, health=health) from error
        except Exception as exc:
            raise self.health.failure(operation, exc, health=health) from exc
        if health:
            self.health.after_write(operation, time.monotonic() - started, self.slow_seconds)
        return result

    async def shutdown(self, *, wait: bool = True) -> None:
        """Refuse further calls and let the threads go (without waiting for a hung call
        when ``wait`` is False: it cannot be interrupted)."""
        self.closed = True
        for pool in (self.reads, self.writes, self.fills, self.lease):
            await asyncio.to_thread(pool.shutdown, wait, cancel_futures=not wait)
