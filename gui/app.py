"""Runs the console: the window first, then the session it binds to.

The window is on screen before the session exists (starting the embedded gateway and
opening the store take a moment, and a failure must be shown somewhere); once
:meth:`core.session.ConsoleSession.prepare` returns the whole session, the window binds
to it and shows the persisted state while the connection is made or retried.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path

from PySide6.QtWidgets import QApplication

from core.config import Settings
from core.demo import place_demo_book
from core.events import ConnectionState, ConnectionStatusChanged
from core.session import ConsoleSession, SessionOptions
from gui.mainwindow import MainWindow
from gui.theme import apply_theme

log = logging.getLogger(__name__)


async def run_console(
    app: QApplication,
    options: SessionOptions,
    settings: Settings | None = None,
    *,
    screenshot: Path | None = None,
    demo: bool = False,
    config_path: Path | None = None,
) -> int:
    """Show the window, start the session, and run until the window closes.

    With ``screenshot``, save the window once it is connected and its data loaded,
    then quit: used by the tests and for the README. ``config_path`` is the config
    file *Help → Open config file* opens (``--config``; the user's default without).
    """
    apply_theme(app)
    window = MainWindow(options, settings)
    if config_path is not None:
        window.help_menu.config_path = config_path
    window.show()
    log.info("startup: window shown")  # benchmarks/bench_startup.py reads these lines
    quit_requested = asyncio.Event()
    app.aboutToQuit.connect(quit_requested.set)
    window.closing.connect(quit_requested.set)
    ready = asyncio.Event()

    def on_status(status: ConnectionStatusChanged) -> None:
        if status.state is ConnectionState.CONNECTED:
            ready.set()

    try:
        session = await ConsoleSession.prepare(options, settings)
    except Exception as exc:  # shown in the window, which stays up until closed
        log.exception("could not start the session")
        window.show_startup_error(str(exc))
        if screenshot is None:
            await quit_requested.wait()
        window.close()
        return 1 if screenshot is not None else 0
    try:
        # The window binds before connecting: the persisted trading state (a HALTED
        # console stays HALTED) and the attempts to connect are on screen while the
        # gateway is still unreachable.
        session.connection.statusChanged += on_status
        window.bind(session)
        try:
            # A real TWS that is not up yet is retried with backoff; a screenshot
            # cannot wait for it.
            connected = await session.connect(
                keep_trying=screenshot is None and not session.embedded
            )
        except Exception as exc:  # shown in the window, which stays up
            log.exception("could not connect")
            window.show_startup_error(str(exc))
            if screenshot is not None:
                return 1
        else:
            if connected:
                log.info("startup: connected, the window is usable")
                ready.set()
            freeze_startup_heap()
            if demo and session.embedded:
                await place_demo_book(session.order_entry)
        if screenshot is not None:
            await asyncio.wait_for(ready.wait(), 30)
            await window.wait_loaded()
            log.info("startup: loaded")
            return 0 if save_screenshot(window, screenshot) else 1
        await quit_requested.wait()
        return 0
    finally:
        await session.stop()
        window.close()


def freeze_startup_heap() -> None:
    """Exempt everything alive after start-up from garbage collection.

    The modules, contracts, tickers and widgets built at start-up live for the whole
    session, yet each full collection walks them all: ~60 ms with 500 subscriptions, a
    visible stall of the GUI loop every few seconds of a tick storm. Collected from
    here on: only what is made afterwards (``gc.freeze``, the same reason as in forked
    servers).
    """
    gc.collect()
    gc.freeze()


def save_screenshot(window: MainWindow, path: Path) -> bool:
    """Render the window to a PNG (``grab`` paints synchronously; no event processing
    here: nested ``processEvents`` inside a coroutine would re-enter asyncio tasks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    window.notifier.hide()  # a passing toast is not part of the window's picture
    ok = window.grab().save(str(path))
    log.info("screenshot saved to %s: %s", path, ok)
    return bool(ok)
