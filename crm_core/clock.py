"""The one place the CRM core asks what time it is.

Everything uses ``utcnow()`` so tests can move the clock with time-machine and the database
always holds timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def utcnow() -> datetime:
    """The current time as an aware UTC datetime, truncated to microseconds (what databases keep)."""
    return datetime.now(UTC)


def today_in(tz_name: str | None) -> date:
    return utcnow().astimezone(zone(tz_name)).date()


def zone(tz_name: str | None) -> ZoneInfo:
    """The named IANA zone, or UTC for an empty name. Raises ValueError for an unknown one."""
    if not tz_name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {tz_name!r} (use an IANA name such as Europe/Berlin)") from exc


def as_utc(value: datetime) -> datetime:
    """An aware datetime in UTC; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def end_of_today(tz_name: str | None) -> datetime:
    """The UTC instant today ends in ``tz_name`` (the next local midnight)."""
    return local_instant(today_in(tz_name) + timedelta(days=1), time(0), tz_name)


def local_instant(day: date, at: time, tz_name: str | None) -> datetime:
    """The UTC instant of a local wall-clock time in ``tz_name``: the first one if it occurs twice
    (autumn), shifted forward by the gap if it does not exist (spring), zoneinfo's fold=0 rule."""
    return as_utc(datetime.combine(day, at, tzinfo=zone(tz_name)))
