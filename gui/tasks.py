"""One way to start background coroutines from the GUI: :func:`spawn`.

A bare ``create_task`` loses its exception silently; ``spawn`` keeps a reference
(so the task is not garbage-collected mid-flight) and logs any failure with what the
task was doing, so it reaches the log view and, through it, the trader.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger("gui")

T = TypeVar("T")
_running: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, T], *, what: str = "") -> asyncio.Task[T]:
    """Run ``coro`` on the loop; failures are logged as ERROR naming ``what``."""
    task = asyncio.ensure_future(coro)
    _running.add(task)

    def done(t: asyncio.Task[Any]) -> None:
        _running.discard(t)
        if t.cancelled():
            return
        exc = t.exception()
        if exc is not None:
            log.error("%s failed: %s", what or "background task", exc, exc_info=exc)

    task.add_done_callback(done)
    return task


def running() -> int:
    """How many spawned tasks are still running (for tests and shutdown)."""
    return len(_running)
