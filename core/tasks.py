"""Background tasks of core: started with a name, failures logged once, cancelled together.

Core runs a few coroutines beside the caller: the reconnect loop, the heartbeat, journal
writers, the strategies' queue, state saves. Each object that starts them owns a
:class:`Tasks`, so there is one way to start one (named ``owner:what``, visible in
``asyncio.all_tasks()`` and in a debugger), one way a failure is reported (logged at
ERROR with its traceback, never lost in an unretrieved exception), and one way to stop
them all on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Tasks:
    """The background tasks of one owner (see the module docstring)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._tasks: dict[asyncio.Task[Any], str] = {}
        self._awaited: set[asyncio.Task[Any]] = set()

    def spawn(
        self, coro: Coroutine[Any, Any, T], what: str, *, awaited: bool = False
    ) -> asyncio.Task[T]:
        """Start ``coro`` on the running loop as ``owner:what``.

        ``awaited``: a caller awaits the task and handles its failure (a request whose
        error is an answer, such as "no such contract"), so a failure is not logged
        here; the task is still named, tracked and cancelled with the others.

        Raises ``RuntimeError`` when no loop runs (the coroutine is closed first, so
        nothing is left half-started): callers without a loop do the work themselves.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coro.close()
            raise
        task = loop.create_task(coro, name=f"{self.owner}:{what}")
        self._tasks[task] = what
        if awaited:
            self._awaited.add(task)
        task.add_done_callback(self._done)
        return task

    def ensure(self, what: str, start: Callable[[], Coroutine[Any, Any, T]]) -> asyncio.Task[T]:
        """The running task named ``what``, or a new one from ``start()`` (one at a time:
        e.g. a single writer draining a queue)."""
        for task, name in self._tasks.items():
            if name == what and not task.done():
                return task
        return self.spawn(start(), what)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        """The running tasks (e.g. to await them all in a test)."""
        return iter([t for t in self._tasks if not t.done()])

    def of(self, what: str) -> list[asyncio.Task[Any]]:
        """The running tasks named ``what``."""
        return [t for t, n in self._tasks.items() if n == what and not t.done()]

    def running(self, what: str | None = None) -> int:
        """How many tasks (named ``what``, if given) are still running."""
        return sum(1 for t, n in self._tasks.items() if not t.done() and what in (None, n))

    async def wait(self, what: str) -> None:
        """Wait for the running tasks named ``what`` (their failures are logged, not raised)."""
        current = asyncio.current_task()
        pending = [t for t, n in self._tasks.items() if n == what and t is not current]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def cancel_all(self) -> None:
        """Cancel every task and wait until they have stopped."""
        tasks = [t for t in self._tasks if not t.done() and t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _done(self, task: asyncio.Task[Any]) -> None:
        what = self._tasks.pop(task, "?")
        awaited = task in self._awaited
        self._awaited.discard(task)
        if task.cancelled():
            return
        exc = task.exception()  # retrieved either way: never "exception never retrieved"
        if awaited:
            return
        if exc is not None:
            log.error("%s: %s failed: %s", self.owner, what, exc, exc_info=exc)
