"""The asyncio loop inside Qt's: qasync, with one gap closed.

qasync dispatches asyncio callbacks (socket reads, timers, executor results) from Qt's
event queue. Qt events processed while the asyncio loop is not formally running (qasync
itself does that once after ``run_until_complete``, and so do test tools that call
``processEvents``) would resume tasks with no running loop, and they fail with
"no running event loop". :class:`ConsoleEventLoop` and :func:`loop_running` keep
asyncio's running loop set whenever this loop's callbacks can be dispatched.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

import qasync
from PySide6.QtWidgets import QApplication

from core.compat import current_running_loop, set_running_loop

T = TypeVar("T")


@contextlib.contextmanager
def loop_running(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Mark ``loop`` as asyncio's running loop for the block (unless one already is)."""
    previous = current_running_loop()
    if previous is None:
        set_running_loop(loop)
    try:
        yield
    finally:
        if previous is None:
            set_running_loop(None)


def process_events(loop: asyncio.AbstractEventLoop) -> None:
    """``QApplication.processEvents()`` with ``loop`` marked running."""
    app = QApplication.instance()
    if app is not None:
        with loop_running(loop):
            app.processEvents()


class ConsoleEventLoop(qasync.QEventLoop):
    """qasync's ``QEventLoop`` whose ``run_until_complete`` ends cleanly."""

    def run_until_complete(self, future: Awaitable[T]) -> T:  # type: ignore[override]
        """Run until ``future`` is done; the final event flush sees a running loop."""
        if self.is_running():
            raise RuntimeError("Event loop already running")
        task = asyncio.ensure_future(future, loop=self)

        def stop(*_: Any) -> None:
            self.stop()

        task.add_done_callback(stop)
        try:
            self.run_forever()
        finally:
            task.remove_done_callback(stop)
        process_events(self)
        if not task.done():
            raise RuntimeError("Event loop stopped before Future completed.")
        return task.result()
