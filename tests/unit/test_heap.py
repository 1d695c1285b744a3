"""The session's periodic heap trim (core.heap)."""

from __future__ import annotations

import asyncio
import contextlib
import platform
import threading

import pytest

from core import heap


@pytest.mark.skipif(platform.system() != "Linux", reason="glibc only")
def test_glibc_malloc_trim_is_found_and_callable():
    trim = heap.malloc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)


@pytest.mark.asyncio
async def test_trim_runs_repeatedly_off_the_loop_thread(monkeypatch: pytest.MonkeyPatch):
    threads: list[int] = []
    loop = asyncio.get_running_loop()
    three = asyncio.Event()

    def fake_trim(pad: int) -> int:
        threads.append(threading.get_ident())
        if len(threads) == 3:
            loop.call_soon_threadsafe(three.set)
        return 1

    monkeypatch.setattr(heap, "malloc_trim", lambda: fake_trim)
    task = asyncio.ensure_future(heap.trim_heap_forever(interval=0.01))
    await asyncio.wait_for(three.wait(), 5)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert threading.get_ident() not in threads


@pytest.mark.asyncio
async def test_no_malloc_trim_then_nothing_runs(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(heap, "malloc_trim", lambda: None)
    await asyncio.wait_for(heap.trim_heap_forever(interval=0.01), 1)
