"""Small helpers for tests (importable as ``helpers``: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo

import pytest


async def wait_for(predicate: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    """Poll ``predicate`` on the loop until true; fail the test with ``what`` on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.01)


async def settle(ib: Any, turns: int = 3, timeout: float = 5.0) -> None:
    """Wait one round trip to the gateway, for tests that assert something did NOT happen.

    TWS answers requests in order on one stream and ib_async decodes messages in order,
    firing their events as it goes: once the reply is in, every message the gateway sent
    before it has been handled. The few zero-time loop turns after it let the callbacks
    those events scheduled run. Unlike a sleep, this is never too short on a loaded
    machine and never longer than needed. Frames the console's wire gate still holds go
    out before this request (the gate keeps order), so it covers them too.

    The request is reqMatchingSymbols, keyed by its own request id: ib_async keys
    reqCurrentTime by name, so one in flight with the console's heartbeat would leave
    one of the two unanswered.
    """
    if ib is not None and ib.isConnected():
        req_id = ib.client.getReqId()
        answered = ib.wrapper.startReq(req_id)
        ib.client.reqMatchingSymbols(req_id, "settle")
        await asyncio.wait_for(answered, timeout)
    for _ in range(turns):
        await asyncio.sleep(0)


def run_until(
    loop: asyncio.AbstractEventLoop,
    predicate: Callable[[], object],
    timeout: float = 15.0,
    what: str = "",
) -> None:
    """Run the (Qt+asyncio) loop until ``predicate`` holds; fail with ``what`` on timeout."""

    async def wait() -> None:
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for {what or predicate}")
            await asyncio.sleep(0.02)

    loop.run_until_complete(wait())


def act(loop: asyncio.AbstractEventLoop, action: Callable[[], object]) -> None:
    """Do a GUI action *inside* the running loop, as in the app.

    qasync dispatches asyncio callbacks from Qt's event queue; events processed while
    the loop is not running (QTest's clicks do that) would resume tasks without a
    running loop. Running the action in a coroutine avoids it.
    """

    async def run() -> None:
        action()
        await asyncio.sleep(0)

    loop.run_until_complete(run())


class RunningClock:
    """A wall clock that runs on at the real pace from where it was set; the test may
    move it forward (:meth:`advance`), as a boundary passing, without waiting."""

    def __init__(self, start: datetime) -> None:
        self._start = start
        self._origin = time.monotonic()

    def __call__(self) -> datetime:
        return self._start + timedelta(seconds=time.monotonic() - self._origin)

    def advance(self, **delta: float) -> None:
        """Move the clock forward by ``timedelta(**delta)``."""
        self._start += timedelta(**delta)


@dataclass
class ScheduledCall:
    """One call a :class:`Timers` holds."""

    delay: float
    callback: Callable[[], object]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    """An injected ``call_later`` (``(delay, callback) -> handle``): keeps each call it
    is given until the test fires it, so a timer's outcome needs no waiting."""

    def __init__(self) -> None:
        self.pending: list[ScheduledCall] = []

    def __call__(self, delay: float, callback: Callable[[], object]) -> ScheduledCall:
        call = ScheduledCall(delay, callback)
        self.pending.append(call)
        return call

    @property
    def delays(self) -> list[float]:
        """The delays of the calls pending (not cancelled), in the order scheduled."""
        return [c.delay for c in self.pending if not c.cancelled]

    def fire(self) -> None:
        """Run the calls pending now (those they schedule wait for the next fire)."""
        due, self.pending = self.pending, []
        for call in due:
            if not call.cancelled:
                call.callback()


def clock_from(start: datetime) -> RunningClock:
    """A clock that reads ``start`` now and runs on at the real pace from there."""
    return RunningClock(start)


def next_new_york_day(weekend: bool, hour_utc: int = 16) -> datetime:
    """A moment within the next six days (the simulated gateway lists seven days of hours)
    on a New York weekday (``weekend=False``, 16:00 UTC: regular hours) or a Saturday."""
    today = datetime.now(ZoneInfo("America/New_York")).date()
    for ahead in range(1, 7):
        day = today + timedelta(days=ahead)
        if (day.weekday() >= 5) == weekend:
            return datetime.combine(day, dtime(hour_utc), tzinfo=UTC)
    raise AssertionError("no such day in the next six")


async def tradable(session: Any, symbol: str) -> Any:
    """``symbol``'s qualified contract with its first quote in: what an order needs to
    pass the gate (the contract's details for the tick and value, a market price for
    the price band), as the ticket gets them."""
    info = await session.order_entry.instrument(symbol)
    await session.order_entry.wait_quote(info)
    return info.contract
