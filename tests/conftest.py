"""Fixtures shared by every test suite.

``ib_log_guard`` is autouse: ib_async catches and *logs* decoder exceptions, so a
malformed message from the simulated gateway shows up only as a log line and a hang.
Any WARNING or ERROR from an ``ib_async`` logger fails the test unless the test
declared it expected with ``ib_log_guard.expect(pattern)``.
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
