"""core.tasks: named background tasks, failures logged, cancelled together."""

from __future__ import annotations

import asyncio
import logging

import pytest

from core.tasks import Tasks


@pytest.mark.asyncio
async def test_a_task_is_named_after_its_owner_and_work():
    tasks = Tasks("journal")
    task = tasks.spawn(asyncio.sleep(0), "fills")
    assert task.get_name() == "journal:fills"
    await task
    assert tasks.running() == 0


@pytest.mark.asyncio
async def test_a_failure_is_logged_once_with_its_traceback(caplog: pytest.LogCaptureFixture):
    async def boom() -> None:
        raise ValueError("disk full")

    tasks = Tasks("store")
    with caplog.at_level(logging.ERROR, logger="core.tasks"):
        task = tasks.spawn(boom(), "save")
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)
    [record] = caplog.records
    assert record.getMessage() == "store: save failed: disk full"
    assert record.exc_info is not None


@pytest.mark.asyncio
async def test_ensure_keeps_one_task_of_a_kind():
    tasks = Tasks("audit")
    gate = asyncio.Event()
    first = tasks.ensure("flush", gate.wait)
    assert tasks.ensure("flush", gate.wait) is first
    gate.set()
    await first
    assert tasks.ensure("flush", gate.wait) is not first


@pytest.mark.asyncio
async def test_cancel_all_stops_everything_and_waits():
    tasks = Tasks("conn")
    a = tasks.spawn(asyncio.sleep(60), "heartbeat")
    b = tasks.spawn(asyncio.sleep(60), "reconnect")
    await tasks.cancel_all()
    assert a.cancelled() and b.cancelled() and tasks.running() == 0


def test_spawn_without_a_loop_raises_and_leaves_nothing_half_started():
    async def work() -> None:
        pass

    coro = work()
    with pytest.raises(RuntimeError):
        Tasks("portfolio").spawn(coro, "daily save")
    assert coro.cr_frame is None  # closed: no "never awaited" warning later


@pytest.mark.asyncio
async def test_an_awaited_task_leaves_its_failure_to_the_awaiting_caller(
    caplog: pytest.LogCaptureFixture,
):
    async def not_found() -> None:
        raise LookupError("no such contract")

    tasks = Tasks("contracts")
    with caplog.at_level(logging.ERROR, logger="core.tasks"):
        task = tasks.spawn(not_found(), "details", awaited=True)
        with pytest.raises(LookupError):
            await task
        await asyncio.sleep(0)
    assert caplog.records == []  # the caller has the error; no second report
    assert task.get_name() == "contracts:details" and tasks.running() == 0
