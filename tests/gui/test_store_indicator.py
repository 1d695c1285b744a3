"""The store's health in the status bar, fed by the store's ``healthEvent``.

A real session (embedded gateway, LMDB store) and window; the store's fills writes are
made to hang, as on an S3 outage, and the status bar must say so, with the count of
fills not journalled, then recover.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import qasync
from PySide6.QtWidgets import QApplication
from store_records import make_fill

from core.session import ConsoleSession, SessionOptions
from gui import theme
from gui.mainwindow import MainWindow
from helpers import run_until
from tests.gui.conftest import open_console


@pytest.fixture
def console(
    qloop: qasync.QEventLoop, qapp: QApplication, qtbot: Any, tmp_path: Path
) -> Iterator[tuple[ConsoleSession, MainWindow]]:
    options = SessionOptions(
        sim_state_file=tmp_path / "sim.json",
        sim_tick_interval=0.05,
        store_uri=f"lmdb://{tmp_path / 'arctic'}",
        store_call_timeout=0.3,
    )
    with open_console(qloop, qtbot, tmp_path, options) as console:
        yield console


def test_store_outage_shows_in_status_bar_with_pending_fills_then_clears(
    console: tuple[ConsoleSession, MainWindow],
    qloop: qasync.QEventLoop,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session, window = console
    store = session.store
    assert store is not None
    indicator = window.store_indicator
    assert indicator.isVisible() and indicator.text() == "● store"
    assert store.writer in indicator.toolTip()

    lib = store._lib("fills")
    real_append = lib.append
    release = threading.Event()
    monkeypatch.setattr(lib, "append", lambda *a, **k: (release.wait(10), real_append(*a, **k)))
    fills = [make_fill(i, time=datetime.now(UTC)) for i in range(2)]
    writes = [qloop.create_task(store.append_fills([f])) for f in fills]

    run_until(qloop, lambda: "failing" in indicator.text(), what="the store shown failing")
    assert indicator.text() == "● store failing · 2 fills not journalled"
    assert theme.LOSS in indicator.styleSheet()
    assert "no answer from the store" in indicator.toolTip()

    release.set()  # the store answers again
    monkeypatch.setattr(lib, "append", real_append)
    for task in writes:
        qloop.run_until_complete(_quietly(task))
    for fill in fills:
        qloop.run_until_complete(store.append_fills([fill]))  # the callers' retries
    run_until(qloop, lambda: indicator.text() == "● store", what="the store shown ok")


async def _quietly(task: Any) -> None:
    try:
        await task
    except Exception:
        pass  # timed out: the retry after it is what matters
