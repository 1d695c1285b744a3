"""Fixtures shared by every test suite.

``ib_log_guard`` is autouse: ib_async catches and *logs* decoder exceptions, so a
malformed message from the simulated gateway shows up only as a log line and a hang.
Any WARNING or ERROR from an ``ib_async`` logger fails the test unless the test
declared it expected with ``ib_log_guard.expect(pattern)``.

``no_leaked_windows`` (autouse in tests/gui) fails a test that leaves a top-level Qt
widget alive; see its docstring.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


class IbLogGuard(logging.Handler):
    """Collects ib_async log records at WARNING and above; see the module docstring."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self._expected: list[re.Pattern[str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def expect(self, pattern: str) -> None:
        """Allow log records whose message matches ``pattern`` (re.search)."""
        self._expected.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        """Messages logged that no ``expect`` pattern allowed."""
        out = []
        for record in self.records:
            msg = record.getMessage()
            if not any(p.search(msg) for p in self._expected):
                out.append(f"{record.name} {record.levelname}: {msg}")
        return out


@pytest.fixture(autouse=True)
def ib_log_guard() -> Iterator[IbLogGuard]:
    """Fail the test on any unexpected warning or error logged by ib_async."""
    guard = IbLogGuard()
    logger = logging.getLogger("ib_async")
    old_level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(guard)
    try:
        yield guard
    finally:
        logger.removeHandler(guard)
        logger.setLevel(old_level)
    problems = guard.unexpected()
    if problems:
        pytest.fail("unexpected ib_async log records:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point the console's data, config and log directories at a fresh temporary folder."""
    home = tmp_path_factory.mktemp("ibconsole-home")
    monkeypatch.setenv("IBCONSOLE_HOME", str(home))
    return home


# -- no leaked windows ----------------------------------------------------------------------

_LEAK_BEFORE = pytest.StashKey[set[int]]()
_CALL_PASSED = pytest.StashKey[bool]()


@pytest.fixture
def no_leaked_windows(qapp: Any, request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves a new top-level widget alive (napari's suite does the
    same): ``QApplication.topLevelWidgets()`` before the test is compared with after it,
    once every fixture is torn down, pytest-qt has closed what ``qtbot.addWidget`` was
    given, the ``deleteLater`` deletions have run and the test's objects are collected.

    A window left alive keeps its timers, models and event subscriptions running into
    the following tests (which then see signals they never caused, or crash when it
    touches a closed loop); in the app it is memory that grows per window. Close what
    a test opens: ``qtbot.addWidget(w)``, or ``w.close(); w.deleteLater()`` in the
    fixture that made it. Leaked widgets are closed and deleted by the check, so one
    leak does not spill into the next test; a test that already failed is not failed
    twice for what it left behind.
    """
    request.node.stash[_LEAK_BEFORE] = {id(w) for w in qapp.topLevelWidgets()}
    yield


def _flush_qt_deletions() -> None:
    """Run pending events and the ``deleteLater`` deletions they post (Qt runs those only
    from an event loop, so processEvents alone leaves them pending), and collect the
    Python wrappers that kept widgets alive in reference cycles."""
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent

    for collect in (False, True, False):
        QCoreApplication.processEvents()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        if collect:
            gc.collect()


def _may_leak(widget: Any) -> bool:
    """Whether a widget left alive counts as a leak.

    Not a hidden menu: pyqtgraph gives each plot a "Plot Options" menu tree with no Qt
    parent, which lives as long as Python holds the plot, and pytest's log capture can
    hold it past teardown (a logged traceback's frames reach the window). Hidden, a menu
    runs nothing; a menu left open is still caught.
    """
    from PySide6.QtWidgets import QMenu

    return widget.isVisible() or not isinstance(widget, QMenu)


def _describe(widget: Any) -> str:
    label = " ".join(p for p in (repr(widget.windowTitle()), widget.objectName()) if p != "''")
    return f"{type(widget).__name__} {label}".strip()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_CALL_PASSED] = report.passed
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    result = yield  # every fixture is torn down now
    before = item.stash.get(_LEAK_BEFORE, None)
    if before is None:
        return result
    from PySide6.QtWidgets import QApplication

    # The fixtures' values (a window, a session) are still held here until pytest drops
    # them after this hook; drop them now so that what they owned can go.
    if isinstance(getattr(item, "funcargs", None), dict):
        item.funcargs.clear()  # type: ignore[attr-defined]
    _flush_qt_deletions()
    leaked = [w for w in QApplication.topLevelWidgets() if id(w) not in before and _may_leak(w)]
    if not leaked:
        return result
    names = sorted(_describe(w) for w in leaked)
    for widget in leaked:
        widget.close()
        widget.deleteLater()
    _flush_qt_deletions()
    if item.stash.get(_CALL_PASSED, False):
        pytest.fail(
            f"the test leaked {len(names)} top-level widget(s): {', '.join(names)}",
            pytrace=False,
        )
    return result


# -- the simulated gateway and a connected client, for integration tests ------------------

SEED = 20261125


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[Any]:
    """A simulated gateway on a free loopback port, fast ticks, fixed seed."""
    from core.sim import SimGateway

    gw = SimGateway("127.0.0.1", 0, seed=SEED, tick_interval=0.05)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()
