"""One way to start background coroutines from the GUI: :func:`spawn`.

A bare ``create_task`` loses its exception silently; ``spawn`` keeps a reference
(so the task is not garbage-collected mid-flight) and hands any failure, with what the
task was doing, to the loop's exception handler: logged with its traceback (the log
view shows it) and, in the running console, shown in an error dialog (gui.help).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
_running: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, T], *, what: str = "") -> asyncio.Task[T]:
    """Run ``coro`` on the loop; a failure goes to the loop's exception handler as
    "``what`` failed" with its traceback."""
    task = asyncio.ensure_future(coro)
    _running.add(task)

    def done(t: asyncio.Task[Any]) -> None:
        _running.discard(t)
        if t.cancelled():
            return
        exc = t.exception()
        if exc is not None:
            # The loop's exception handler logs it with its traceback and, once the
            # console's ErrorReporter is installed (gui.help), shows it to the trader.
            t.get_loop().call_exception_handler(
                {"message": f"{what or 'background task'} failed", "exception": exc, "task": t}
            )

    task.add_done_callback(done)
    return task


def running() -> int:
    """How many spawned tasks are still running (for tests and shutdown)."""
    return len(_running)
