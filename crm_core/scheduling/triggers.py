"""When a scheduled job is due next: one-off, fixed interval, or a local time of day (DST-safe).

Triggers are stored as JSON on the job row (``to_spec``/``from_spec``), never pickled.

Calendar triggers are computed on the local wall clock with ``zoneinfo``: "every day at 08:00
Europe/Berlin" fires at 07:00 UTC in winter and 06:00 UTC in summer, once per local day. On the
autumn night a local time occurs twice, it fires once (the first); on the spring night a local
time does not exist, it fires at the same instant shifted by the gap (02:30 becomes 03:30).
APScheduler 3's CronTrigger fires twice on that autumn night, which is why this is our own code.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from crm_core.clock import as_utc, local_instant, zone
from crm_core.i18n import _

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(raw: str) -> time:
    """``"8:00"`` or ``"08:00"`` -> time(8, 0); ValueError otherwise."""
    match = _HHMM.match(raw.strip())
    if not match:
        raise ValueError(_("{time} is not a time of day (write it as HH:MM, e.g. 08:00)", time=repr(raw)))
    return time(int(match.group(1)), int(match.group(2)))


class Trigger:
    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after ``after`` (aware), or None when there is none."""
        raise NotImplementedError

    def latest_due(self, first: datetime, now: datetime) -> datetime:
        """Of the fire times from ``first`` (due) up to ``now``, the last: what a coalesced run is for."""
        latest = first
        for _step in range(100_000):
            following = self.next_after(latest)
            if following is None or following > now:
                break
            latest = following
        return latest

    def to_spec(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Once(Trigger):
    at: datetime

    def next_after(self, after: datetime) -> datetime | None:
        at = as_utc(self.at)
        return at if at > after else None

    def to_spec(self) -> dict[str, Any]:
        return {"type": "once", "at": as_utc(self.at).isoformat()}


@dataclass(frozen=True)
class Interval(Trigger):
    seconds: int

    def __post_init__(self) -> None:
        if self.seconds < 1:
            raise ValueError("an interval is at least one second")

    def next_after(self, after: datetime) -> datetime | None:
        return after + timedelta(seconds=self.seconds)

    def latest_due(self, first: datetime, now: datetime) -> datetime:
        if now <= first:
            return first
        return first + timedelta(seconds=self.seconds) * int((now - first).total_seconds() // self.seconds)

    def to_spec(self) -> dict[str, Any]:
        return {"type": "interval", "seconds": self.seconds}


@dataclass(frozen=True)
class Calendar(Trigger):
    """At a local time of day, every day, on some weekdays (0 = Monday) or on a day of the month."""

    at: time
    timezone: str = "UTC"
    weekdays: tuple[int, ...] | None = None
    # 1..31; a month without that day uses its last day.
    day_of_month: int | None = None

    def __post_init__(self) -> None:
        zone(self.timezone)  # raises ValueError for an unknown zone
        if self.weekdays is not None and (not self.weekdays or any(not 0 <= d <= 6 for d in self.weekdays)):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        if self.day_of_month is not None and not 1 <= self.day_of_month <= 31:
            raise ValueError("the day of the month is 1 to 31")

    def _matches(self, day: date) -> bool:
        if self.weekdays is not None and day.weekday() not in self.weekdays:
            return False
        if self.day_of_month is not None:
            last = calendar.monthrange(day.year, day.month)[1]
            return day.day == min(self.day_of_month, last)
        return True

    def next_after(self, after: datetime) -> datetime | None:
        day = as_utc(after).astimezone(zone(self.timezone)).date() - timedelta(days=1)
        # A monthly trigger finds its day within 62 days; anything else within 8.
        for _day in range(64):
            if self._matches(day):
                instant = local_instant(day, self.at, self.timezone)
                if instant > after:
                    return instant
            day += timedelta(days=1)
        return None

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"type": "calendar", "at": self.at.strftime("%H:%M"), "timezone": self.timezone}
        if self.weekdays is not None:
            spec["weekdays"] = list(self.weekdays)
        if self.day_of_month is not None:
            spec["day"] = self.day_of_month
        return spec


def from_spec(spec: dict[str, Any]) -> Trigger:
    kind = spec.get("type")
    if kind == "once":
        return Once(datetime.fromisoformat(spec["at"]))
    if kind == "interval":
        return Interval(int(spec["seconds"]))
    if kind == "calendar":
        weekdays = spec.get("weekdays")
        return Calendar(
            at=parse_hhmm(spec["at"]),
            timezone=spec.get("timezone", "UTC"),
            weekdays=tuple(weekdays) if weekdays is not None else None,
            day_of_month=spec.get("day"),
        )
    raise ValueError(f"unknown trigger {spec!r}")
