"""Entry point: flags + config -> qasync loop -> the console window.

``ibconsole`` (installed) or ``python main.py`` (checkout) with no TWS configured starts
the embedded simulated gateway; ``--host H --port P --client-id N`` talks to a real TWS
/ IB Gateway. ``--install-desktop-entry`` adds the console to the desktop's menus.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("ibconsole")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; flags override the config file and the environment."""
    p = argparse.ArgumentParser(prog="ibconsole", description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, help="TOML config file")
    p.add_argument("--host", help="TWS / IB Gateway host (default 127.0.0.1)")
    p.add_argument(
        "--port",
        type=int,
        help="TWS / IB Gateway API port (paper: TWS 7497, Gateway 4002); "
        "without it the console runs on its embedded simulated gateway",
    )
    p.add_argument("--client-id", type=int, dest="client_id", help="API client id (default 1)")
    p.add_argument(
        "--readonly", action="store_true", default=None, help="disable every order control"
    )
    p.add_argument(
        "--screenshot", type=Path, help="save the window to this PNG once loaded, then exit"
    )
    p.add_argument("--sim-state", type=Path, dest="sim_state", help="embedded gateway's state file")
    p.add_argument("--seed", type=int, help="embedded gateway's market seed")
    p.add_argument(
        "--demo",
        action="store_true",
        help="on the embedded simulated gateway, place a small demonstration book at start",
    )
    p.add_argument("--log-level", dest="log_level", help="DEBUG, INFO, WARNING, ...")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    desktop = p.add_mutually_exclusive_group()
    desktop.add_argument(
        "--install-desktop-entry",
        action="store_true",
        help="add IB Console to this Linux desktop's application menu (with its icon), then exit",
    )
    desktop.add_argument(
        "--uninstall-desktop-entry",
        action="store_true",
        help="remove what --install-desktop-entry added, then exit",
    )
    return p.parse_args(argv)


def _version() -> str:
    from gui.desktop import app_version

    return app_version()


def desktop_entry(install: bool) -> int:
    """``--install-desktop-entry`` / ``--uninstall-desktop-entry``."""
    from gui.desktop import install_desktop_entry, uninstall_desktop_entry

    if install:
        paths = install_desktop_entry()
        print(f"installed {paths.desktop_file}\n          {paths.icon}")
    else:
        removed = uninstall_desktop_entry()
        print("\n".join(f"removed {p}" for p in removed) or "no desktop entry was installed")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console; returns the process exit code."""
    args = parse_args(argv)
    if args.install_desktop_entry or args.uninstall_desktop_entry:
        return desktop_entry(args.install_desktop_entry)
    if args.screenshot is not None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    # Imported here so that `--help` answers without loading Qt. The imports make a
    # quarter of a million long-lived objects (modules, classes): without the collector
    # passing over them ~350 times meanwhile (~0.3 s of CPU), then frozen out of its
    # way for good (see gui.app.freeze_startup_heap). Qt-free modules first: once
    # PySide6 is imported, shiboken reads the source of every module imported after it
    # (looking for `from __feature__`), ~0.2 s of CPU for pandas, ib_async, pydantic
    # and ArcticDB. benchmarks/bench_startup.py measures start-up.
    gc.disable()
    try:
        import arcticdb  # noqa: F401  (the store imports it on first use: here, before Qt)

        from core.config import ConfigError, default_config_path, load_settings, setup_logging
        from core.session import SessionOptions

        from PySide6.QtWidgets import QApplication  # isort: skip

        from gui.app import run_console
        from gui.desktop import APP_ID
        from gui.help import ErrorReporter
        from gui.loop import ConsoleEventLoop
    finally:
        gc.freeze()
        gc.enable()

    try:
        settings = load_settings(
            args.config,
            overrides={
                "ib.host": args.host,
                "ib.port": args.port,
                "ib.client_id": args.client_id,
                "ib.readonly": args.readonly,
                "sim.state_file": args.sim_state,
                "sim.seed": args.seed,
                "logging.level": args.log_level,
            },
        )
    except ConfigError as exc:
        print(f"ibconsole: configuration error:\n{exc}", file=sys.stderr)
        return 2
    setup_logging(settings.logging)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        # ib_async logs every order and portfolio message at INFO: the file and the log
        # view keep its warnings and errors unless DEBUG is asked for.
        logging.getLogger("ib_async").setLevel(logging.WARNING)
    log.info("settings: %s", settings.redacted())
    options = SessionOptions.from_settings(settings)
    # argv[0] names the X11 window class the desktop entry's StartupWMClass matches,
    # however the console was started (installed command or python main.py).
    app = QApplication.instance() or QApplication([APP_ID])
    app.setApplicationName("IB Console")
    app.setOrganizationName("ibconsole")
    app.setApplicationVersion(_version())
    app.setDesktopFileName(APP_ID)  # Wayland app id: the taskbar shows the entry's icon
    # Closing the window must run the orderly shutdown in run_console (journal flushed,
    # gateway state saved) before the loop ends; Qt would otherwise quit at once.
    app.setQuitOnLastWindowClosed(False)
    loop = ConsoleEventLoop(app)
    asyncio.set_event_loop(loop)
    quit_on_signals(app)
    # From here an unexpected exception is logged and shown, and the console runs on
    # (no dialog for --screenshot: nobody is there to close it).
    errors = ErrorReporter(log_path=settings.logging.file, dialogs=args.screenshot is None)
    errors.install(loop)
    with loop:
        try:
            return loop.run_until_complete(
                run_console(
                    app,
                    options,
                    settings,
                    screenshot=args.screenshot,
                    demo=args.demo,
                    config_path=args.config or default_config_path(),
                )
            )
        finally:
            errors.uninstall()


def quit_on_signals(app: Any) -> None:
    """Ctrl+C or SIGTERM close the console the orderly way (orders journalled, state
    saved). Qt blocks in C++, so a light timer lets Python run its signal handlers."""
    from PySide6.QtCore import QTimer

    def request_quit(signum: int, _frame: object) -> None:
        log.warning("signal %s: closing the console", signal.Signals(signum).name)
        # Closing the window runs the normal shutdown; app.quit() would cut it short.
        for widget in app.topLevelWidgets():
            widget.close()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, request_quit)
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(250)


if __name__ == "__main__":
    sys.exit(main())
