"""Trading hours and exchange time zones from IB's contract details.

IB describes a contract's sessions in ``ContractDetails.tradingHours`` (all sessions,
pre/post market included) and ``liquidHours`` (the regular session) as text in the
exchange's local time, with the zone in ``timeZoneId``. Two formats occur:

* current: ``20261125:0930-20261125:1600;20261126:CLOSED`` (a session may end on a
  later day: ``20261124:1700-20261125:1600`` for a futures overnight session);
* older: ``20261125:0930-1600`` or ``20261125:0400-0930,0930-1600`` (times of the day
  named before the colon; an end at or before the start means the next day).

``timeZoneId`` uses IB's names (``US/Eastern``, ``EST``, ``MET``, ``JST``, ...). They are
mapped to canonical IANA zones before :mod:`zoneinfo` sees them, because the legacy
aliases (``US/Eastern``) are missing from some systems' tz databases, and IB's ``EST``
means New York time *with* daylight saving, not the fixed-offset ``EST`` zone.

Every time here is timezone-aware; naive datetimes are refused rather than guessed.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "IB_TIME_ZONES",
    "Session",
    "TradingSessions",
    "exchange_zone",
    "parse_sessions",
]

#: IB ``timeZoneId`` values mapped to IANA names. Anything else is passed to zoneinfo.
IB_TIME_ZONES: dict[str, str] = {
    "US/Eastern": "America/New_York",
    "EST": "America/New_York",
    "EST5EDT": "America/New_York",
    "EDT": "America/New_York",
    "US/Central": "America/Chicago",
    "CST": "America/Chicago",
    "CST6CDT": "America/Chicago",
    "CDT": "America/Chicago",
    "US/Mountain": "America/Denver",
    "MST": "America/Denver",
    "MST7MDT": "America/Denver",
    "US/Pacific": "America/Los_Angeles",
    "PST": "America/Los_Angeles",
    "PST8PDT": "America/Los_Angeles",
    "GMT": "Europe/London",
    "GB": "Europe/London",
    "BST": "Europe/London",
    "MET": "Europe/Berlin",
    "CET": "Europe/Berlin",
    "MEZ": "Europe/Berlin",
    "EET": "Europe/Helsinki",
    "JST": "Asia/Tokyo",
    "Japan": "Asia/Tokyo",
    "Hongkong": "Asia/Hong_Kong",
    "HKT": "Asia/Hong_Kong",
    "Singapore": "Asia/Singapore",
    "SGT": "Asia/Singapore",
    "IST": "Asia/Kolkata",
    "Australia/NSW": "Australia/Sydney",
    "Australia/ACT": "Australia/Sydney",
    "AET": "Australia/Sydney",
    "Canada/Eastern": "America/Toronto",
    "UTC": "UTC",
    "Etc/UTC": "UTC",
}


def exchange_zone(time_zone_id: str) -> ZoneInfo:
    """The :class:`ZoneInfo` for an IB ``timeZoneId``.

    Raises
    ------
    ValueError
        When the name is empty or unknown (naming it).
    """
    name = time_zone_id.strip()
    if not name:
        raise ValueError("timeZoneId is empty: the contract details carry no time zone")
    try:
        return ZoneInfo(IB_TIME_ZONES.get(name, name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"timeZoneId {time_zone_id!r} is not a known time zone") from exc


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session, ``start`` inclusive, ``end`` exclusive (timezone-aware)."""

    start: datetime
    end: datetime

    def contains(self, at: datetime) -> bool:
        """True when ``at`` falls within the session."""
        return self.start <= at < self.end


def _local(day: date, hhmm: str, tz: ZoneInfo, text: str) -> datetime:
    if len(hhmm) != 4 or not hhmm.isdigit():
        raise ValueError(f"bad time {hhmm!r} in trading hours {text!r}")
    hour, minute = int(hhmm[:2]), int(hhmm[2:])
    if hour == 24 and minute == 0:
        return datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(days=1)
    if hour > 23 or minute > 59:
        raise ValueError(f"bad time {hhmm!r} in trading hours {text!r}")
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)


def _day(yyyymmdd: str, text: str) -> date:
    if len(yyyymmdd) != 8 or not yyyymmdd.isdigit():
        raise ValueError(f"bad date {yyyymmdd!r} in trading hours {text!r}")
    try:
        return datetime.strptime(yyyymmdd, "%Y%m%d").date()
    except ValueError as exc:
        raise ValueError(f"bad date {yyyymmdd!r} in trading hours {text!r}") from exc


def _stamp(part: str, default_day: date | None, tz: ZoneInfo, text: str) -> tuple[datetime, bool]:
    """``YYYYMMDD:HHMM`` or ``HHMM``; returns the time and whether it named its day."""
    if ":" in part:
        d, _, hhmm = part.partition(":")
        return _local(_day(d, text), hhmm, tz, text), True
    if default_day is None:
        raise ValueError(f"a time without a date in trading hours {text!r}")
    return _local(default_day, part, tz, text), False


def parse_sessions(text: str, tz: ZoneInfo) -> list[Session]:
    """Parse IB's trading-hours text (either format) into sorted sessions in ``tz``.

    Raises
    ------
    ValueError
        When the text is malformed (quoting it).
    """
    sessions: list[Session] = []
    for chunk in text.split(";"):
        chunk = chunk.strip()
        if not chunk or chunk.endswith("CLOSED"):
            continue
        # Older format: "YYYYMMDD:HHMM-HHMM[,HHMM-HHMM]"; current: "D:HHMM-D:HHMM".
        head, _, tail = chunk.partition(":")
        day: date | None = None
        ranges = [chunk]
        if "-" in chunk and len(head) == 8 and head.isdigit() and tail.count(":") == 0:
            day = _day(head, text)
            ranges = tail.split(",")
        for rng in ranges:
            start_txt, sep, end_txt = rng.strip().partition("-")
            if not sep:
                raise ValueError(f"bad session {rng!r} in trading hours {text!r}")
            start, _ = _stamp(start_txt.strip(), day, tz, text)
            end, dated = _stamp(end_txt.strip(), day or start.date(), tz, text)
            if not dated and end <= start:
                end = _local(start.date() + timedelta(days=1), end_txt.strip(), tz, text)
            if end <= start:
                raise ValueError(f"session {rng!r} ends before it starts in {text!r}")
            sessions.append(Session(start, end))
    sessions.sort(key=lambda s: s.start)
    return sessions


def _aware(at: datetime, name: str) -> datetime:
    if at.tzinfo is None or at.tzinfo.utcoffset(at) is None:
        raise ValueError(f"{name} must be timezone-aware (got naive {at.isoformat()})")
    return at


class _HasHours(Protocol):
    timeZoneId: str
    tradingHours: str
    liquidHours: str


class TradingSessions:
    """A contract's sessions, as IB listed them (about a week ahead), in exchange time.

    ``from_details(details)`` uses ``tradingHours`` (extended hours included);
    ``from_details(details, liquid=True)`` the regular session (``liquidHours``).
    Questions beyond the listed days answer "closed" / ``None``: IB does not say.
    """

    def __init__(self, sessions: Iterable[Session], tz: ZoneInfo) -> None:
        self.tz = tz
        self.sessions: tuple[Session, ...] = tuple(sorted(sessions, key=lambda s: s.start))
        self._starts = [s.start for s in self.sessions]

    @classmethod
    def from_details(cls, details: _HasHours, *, liquid: bool = False) -> TradingSessions:
        """Build from an ``ib_async.ContractDetails`` (or anything with the same fields)."""
        tz = exchange_zone(details.timeZoneId)
        text = details.liquidHours if liquid else details.tradingHours
        return cls(parse_sessions(text or "", tz), tz)

    @classmethod
    def parse(cls, text: str, time_zone_id: str) -> TradingSessions:
        """Build from IB's text and ``timeZoneId`` directly."""
        tz = exchange_zone(time_zone_id)
        return cls(parse_sessions(text, tz), tz)

    def __iter__(self) -> Iterator[Session]:
        return iter(self.sessions)

    def __len__(self) -> int:
        return len(self.sessions)

    def __repr__(self) -> str:
        return f"TradingSessions({len(self.sessions)} sessions, tz={self.tz.key!r})"

    def _index_before(self, at: datetime) -> int:
        """Index of the last session that starts at or before ``at`` (-1 if none)."""
        return bisect.bisect_right(self._starts, at) - 1

    def current(self, at: datetime) -> Session | None:
        """The session open at ``at``, if any."""
        _aware(at, "at")
        i = self._index_before(at)
        # Sessions do not overlap in IB's data, but look one further back to be safe.
        for j in (i, i - 1):
            if 0 <= j < len(self.sessions) and self.sessions[j].contains(at):
                return self.sessions[j]
        return None

    def is_open(self, at: datetime) -> bool:
        """True when ``at`` falls within a session."""
        return self.current(at) is not None

    def next_open(self, after: datetime) -> datetime | None:
        """Start of the first session that begins strictly after ``after`` (in exchange
        time), or ``None`` when none is listed. While a session is open this is the
        *next* one's start, not the current one's."""
        _aware(after, "after")
        i = bisect.bisect_right(self._starts, after)
        return self.sessions[i].start if i < len(self.sessions) else None

    def next_close(self, after: datetime) -> datetime | None:
        """End of the session open at ``after``, else of the next one; ``None`` if unlisted."""
        current = self.current(after)
        if current is not None:
            return current.end
        i = bisect.bisect_right(self._starts, after)
        return self.sessions[i].end if i < len(self.sessions) else None

    def sessions_on(self, day: date) -> Sequence[Session]:
        """The sessions that start on ``day`` in exchange time."""
        return [s for s in self.sessions if s.start.astimezone(self.tz).date() == day]
