"""core.timeutils: IB trading hours in the exchange's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from ib_async import ContractDetails

from core.contracts import TradingSessions
from core.timeutils import exchange_zone, parse_sessions

NY = ZoneInfo("America/New_York")

# US daylight saving started on Sunday 8 March 2026: 09:30 New York is 14:30 UTC on
# Friday 6 March and 13:30 UTC on Monday 9 March.
ACROSS_DST = (
    "20260306:0930-20260306:1600;20260307:CLOSED;20260308:CLOSED;"
    "20260309:0930-20260309:1600;20260310:0930-20260310:1600"
)


def details(trading: str, liquid: str = "", tz: str = "US/Eastern") -> ContractDetails:
    return ContractDetails(timeZoneId=tz, tradingHours=trading, liquidHours=liquid)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_from_details_when_current_format_then_sessions_in_exchange_time() -> None:
    sessions = TradingSessions.from_details(details(ACROSS_DST))

    assert len(sessions) == 3
    first = sessions.sessions[0]
    assert first.start == datetime(2026, 3, 6, 9, 30, tzinfo=NY)
    assert first.end == datetime(2026, 3, 6, 16, 0, tzinfo=NY)
    assert sessions.tz.key == "America/New_York"


def test_is_open_when_dst_starts_then_utc_open_moves_an_hour() -> None:
    sessions = TradingSessions.from_details(details(ACROSS_DST))

    # Friday (EST, UTC-5): open at 14:30 UTC, not at 13:45.
    assert not sessions.is_open(utc(2026, 3, 6, 13, 45))
    assert sessions.is_open(utc(2026, 3, 6, 14, 30))
    # Monday (EDT, UTC-4): open at 13:30 UTC already.
    assert sessions.is_open(utc(2026, 3, 9, 13, 45))
    assert not sessions.is_open(utc(2026, 3, 9, 20, 0))  # 16:00 EDT: closed (end exclusive)
    assert sessions.is_open(utc(2026, 3, 9, 19, 59))


def test_is_open_when_weekend_then_closed() -> None:
    sessions = TradingSessions.from_details(details(ACROSS_DST))

    assert not sessions.is_open(datetime(2026, 3, 7, 12, 0, tzinfo=NY))
    assert not sessions.is_open(datetime(2026, 3, 8, 12, 0, tzinfo=NY))


def test_next_open_when_friday_evening_then_monday_open_across_dst() -> None:
    sessions = TradingSessions.from_details(details(ACROSS_DST))

    nxt = sessions.next_open(datetime(2026, 3, 6, 17, 0, tzinfo=NY))

    assert nxt == datetime(2026, 3, 9, 9, 30, tzinfo=NY)
    assert nxt is not None and nxt.astimezone(UTC) == utc(2026, 3, 9, 13, 30)


def test_next_open_when_session_open_then_next_session_start() -> None:
    sessions = TradingSessions.from_details(details(ACROSS_DST))

    nxt = sessions.next_open(datetime(2026, 3, 9, 10, 0, tzinfo=NY))

    assert nxt == datetime(2026, 3, 10, 9, 30, tzinfo=NY)


def test_next_open_when_after_last_listed_session_then_none() -> None:
    sessions = TradingSessions.from_details(details(ACROSS_DST))

    assert sessions.next_open(datetime(2026, 3, 10, 12, 0, tzinfo=NY)) is None


def test_next_close_when_open_then_end_of_current_session() -> None:
    sessions = TradingSessions.from_details(details(ACROSS_DST))

    assert sessions.next_close(datetime(2026, 3, 9, 10, 0, tzinfo=NY)) == datetime(
        2026, 3, 9, 16, 0, tzinfo=NY
    )
    assert sessions.next_close(datetime(2026, 3, 7, 10, 0, tzinfo=NY)) == datetime(
        2026, 3, 9, 16, 0, tzinfo=NY
    )


def test_from_details_when_older_format_then_same_day_sessions() -> None:
    sessions = TradingSessions.from_details(
        details("20261125:0930-1600;20261126:CLOSED;20261127:0930-1300")
    )

    assert [(s.start.day, s.start.hour, s.end.hour) for s in sessions] == [
        (25, 9, 16),
        (27, 9, 13),
    ]
    assert not sessions.is_open(datetime(2026, 11, 26, 12, 0, tzinfo=NY))  # Thanksgiving


def test_from_details_when_older_format_with_several_ranges_and_overnight_then_parsed() -> None:
    sessions = TradingSessions.parse("20261124:0400-0930,0930-2000;20261125:1700-1600", "EST")

    assert [(s.start.hour, s.start.minute, s.end.hour) for s in sessions] == [
        (4, 0, 9),
        (9, 30, 20),
        (17, 0, 16),
    ]
    assert sessions.sessions[2].end == datetime(2026, 11, 26, 16, 0, tzinfo=NY)


def test_from_details_when_futures_overnight_session_then_open_across_midnight() -> None:
    chicago = ZoneInfo("America/Chicago")
    sessions = TradingSessions.from_details(
        details(
            "20261123:1700-20261124:1600;20261124:1700-20261125:1600",
            tz="US/Central",
        )
    )

    assert sessions.is_open(datetime(2026, 11, 23, 23, 30, tzinfo=chicago))
    assert not sessions.is_open(datetime(2026, 11, 24, 16, 30, tzinfo=chicago))
    assert sessions.next_open(datetime(2026, 11, 24, 16, 30, tzinfo=chicago)) == datetime(
        2026, 11, 24, 17, 0, tzinfo=chicago
    )


def test_from_details_when_liquid_then_regular_hours_used() -> None:
    d = details(
        trading="20261125:0400-20261125:2000",
        liquid="20261125:0930-20261125:1600",
    )

    extended = TradingSessions.from_details(d)
    regular = TradingSessions.from_details(d, liquid=True)

    at = datetime(2026, 11, 25, 8, 0, tzinfo=NY)
    assert extended.is_open(at)
    assert not regular.is_open(at)


def test_sessions_on_when_day_then_that_days_sessions() -> None:
    sessions = TradingSessions.from_details(details(ACROSS_DST))

    assert len(sessions.sessions_on(datetime(2026, 3, 9).date())) == 1
    assert sessions.sessions_on(datetime(2026, 3, 7).date()) == []


def test_is_open_when_naive_datetime_then_value_error() -> None:
    sessions = TradingSessions.from_details(details(ACROSS_DST))

    with pytest.raises(ValueError, match="at must be timezone-aware"):
        sessions.is_open(datetime(2026, 3, 9, 10, 0))


def test_from_details_when_empty_hours_then_never_open() -> None:
    sessions = TradingSessions.from_details(details(""))

    assert len(sessions) == 0
    assert not sessions.is_open(utc(2026, 3, 9, 15, 0))
    assert sessions.next_open(utc(2026, 3, 9, 15, 0)) is None


@pytest.mark.parametrize(
    "text",
    ["20261125:0930-20261125", "2026112:0930-1600", "20261125:9930-1600", "20261125:0930"],
)
def test_parse_sessions_when_malformed_then_value_error_quotes_text(text: str) -> None:
    with pytest.raises(ValueError, match=r"trading hours|session"):
        parse_sessions(text, NY)


@pytest.mark.parametrize(
    ("ib_name", "iana"),
    [
        ("US/Eastern", "America/New_York"),
        ("EST", "America/New_York"),
        ("US/Central", "America/Chicago"),
        ("MET", "Europe/Berlin"),
        ("JST", "Asia/Tokyo"),
        ("GMT", "Europe/London"),
        ("Europe/Zurich", "Europe/Zurich"),
    ],
)
def test_exchange_zone_when_ib_names_then_iana_zone(ib_name: str, iana: str) -> None:
    assert exchange_zone(ib_name).key == iana


def test_exchange_zone_when_ib_est_then_observes_daylight_saving() -> None:
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=exchange_zone("EST"))

    assert summer.utcoffset() is not None and summer.utcoffset().total_seconds() == -4 * 3600  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["", "Mars/Olympus"])
def test_exchange_zone_when_unknown_then_value_error(name: str) -> None:
    with pytest.raises(ValueError, match="timeZoneId"):
        exchange_zone(name)
