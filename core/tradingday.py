"""The trading day: where it starts, and the one routine that rolls it over in place.

A console stays open from Monday to Friday, so "today" changes under it. The day
starts at ``start`` (midnight by default) in the exchange's time zone (``tz``, New York
by default, as IB's US day). :class:`TradingDay` is the single owner of that boundary:
the portfolio, risk and the GUI all take their day from one instance and subscribe to
its ``dayStarted`` event, so they roll over together and exactly once.

The boundary is noticed two ways: a timer armed for the next start (re-armed at least
every :data:`MAX_SLEEP_S`, so a suspended laptop or a clock jump is caught soon after),
and :meth:`TradingDay.check`, which anything with a fresh timestamp (a fill, a mark)
may call. The clock (``now``) and the timer (``call_later``) are injectable, so tests
move the clock across a boundary and fire the timer instead of waiting for either.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from eventkit import Event

log = logging.getLogger(__name__)

#: IB's US trading day: midnight, New York time.
DEFAULT_TZ = "America/New_York"
#: The longest the boundary timer sleeps before looking at the clock again (seconds).
MAX_SLEEP_S = 60.0


def _now_utc() -> datetime:
    return datetime.now(UTC)


class Timer(Protocol):
    """A scheduled call that can be called off (as :class:`asyncio.TimerHandle`)."""

    def cancel(self) -> None: ...


#: Schedules ``callback`` in ``delay`` seconds (as the running loop's ``call_later``).
CallLater = Callable[[float, Callable[[], None]], Timer]


def _loop_call_later(delay: float, callback: Callable[[], None]) -> Timer:
    return asyncio.get_running_loop().call_later(delay, callback)


def trading_day_start(when: datetime, tz: str = DEFAULT_TZ, start: time = time(0)) -> datetime:
    """The start (UTC) of the trading day that ``when`` falls in: the latest ``start``
    o'clock in ``tz`` at or before ``when``."""
    zone = ZoneInfo(tz)
    local = when.astimezone(zone)
    day = local.date() if local.time() >= start else local.date() - timedelta(days=1)
    return datetime.combine(day, start, tzinfo=zone).astimezone(UTC)


def trading_day_of(when: datetime, tz: str = DEFAULT_TZ, start: time = time(0)) -> date:
    """The trading day (its local date in ``tz``) that ``when`` falls in."""
    return trading_day_start(when, tz, start).astimezone(ZoneInfo(tz)).date()


@dataclass(frozen=True, slots=True)
class TradingDayStarted:
    """A new trading day began: ``day`` (local date) from ``start`` (UTC); ``previous``
    is the day that ended (None at the first day of a session)."""

    day: date
    start: datetime
    previous: date | None
    previous_start: datetime | None
    time: datetime = field(default_factory=_now_utc)

    def describe(self) -> str:
        """One line for the log."""
        return f"trading day {self.day.isoformat()} started (previous {self.previous or '-'})"


class TradingDay:
    """The current trading day and its rollover.

    Events:
        * ``dayStarted`` (:class:`TradingDayStarted`): emitted once per boundary crossed,
          after :attr:`start` has moved (handlers that ask for "today" get the new day).
    """

    def __init__(
        self,
        tz: str = DEFAULT_TZ,
        start: time = time(0),
        *,
        now: Callable[[], datetime] = _now_utc,
        call_later: CallLater = _loop_call_later,
    ) -> None:
        ZoneInfo(tz)  # fail now on a misspelt zone, not at the first rollover
        self.tz = tz
        self.start_time = start
        self.now = now
        self.call_later = call_later
        self.dayStarted: Event = Event("dayStarted")
        self._start = trading_day_start(now(), tz, start)
        self._next = self.next_start()
        self._timer: Timer | None = None

    @property
    def start(self) -> datetime:
        """When the current trading day started (UTC)."""
        return self._start

    @property
    def day(self) -> date:
        """The current trading day (local date in :attr:`tz`)."""
        return self._start.astimezone(ZoneInfo(self.tz)).date()

    def start_of(self, when: datetime) -> datetime:
        """The start (UTC) of the trading day ``when`` falls in."""
        return trading_day_start(when, self.tz, self.start_time)

    def next_start(self) -> datetime:
        """When the next trading day starts (UTC); DST changes are respected."""
        zone = ZoneInfo(self.tz)
        local_day = self._start.astimezone(zone).date() + timedelta(days=1)
        return datetime.combine(local_day, self.start_time, tzinfo=zone).astimezone(UTC)

    def check(self, when: datetime | None = None) -> TradingDayStarted | None:
        """Roll over if ``when`` (default: now) is in a later trading day; returns the
        event emitted, or None. An earlier ``when`` (a replayed fill) changes nothing."""
        when = when if when is not None else self.now()
        if when < self._next:
            return None  # the common case, called on every mark: one comparison
        start = self.start_of(when)
        previous, previous_start = self.day, self._start
        self._start = start
        self._next = self.next_start()
        event = TradingDayStarted(self.day, start, previous, previous_start, self.now())
        log.warning("%s", event.describe())
        self.dayStarted.emit(event)
        return event

    # -- the boundary timer -----------------------------------------------------------

    def run(self) -> None:
        """Watch for the boundary on the running loop (idempotent)."""
        if self._timer is None:
            self._arm()

    def stop(self) -> None:
        """Stop watching."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        wait = (self.next_start() - self.now()).total_seconds()
        self._timer = self.call_later(min(max(wait, 0.01), MAX_SLEEP_S), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        try:
            self.check()
        finally:
            self._arm()
