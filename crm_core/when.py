"""Reading "when" as people type it: ``in 3d``, ``in 2h``, ``tomorrow 9:00``, ``friday``,
``2026-12-01 10:00``, in the user's timezone.

Times are kept to the minute. Days and weeks count on the local calendar ("in 1d" at 10:00 is 10:00 the next day, also
across a DST change); hours and minutes are elapsed time ("in 2h" is 120 minutes from now).
A local time that does not exist (the spring-forward hour) moves forward by the gap; one that
occurs twice (autumn) means the first. A day without a time means 09:00.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from crm_core import i18n
from crm_core.clock import local_instant, utcnow, zone
from crm_core.errors import ValidationError
from crm_core.i18n import N_, _

DEFAULT_TIME = time(9, 0)
EXAMPLES = N_("in 3d, in 2h, tomorrow 9:00, friday, friday 14:30 or 2026-12-01 10:00")
WEEKDAYS = {
    name: index
    for index, names in enumerate(
        (
            ("mon", "monday"),
            ("tue", "tues", "tuesday"),
            ("wed", "wednesday"),
            ("thu", "thur", "thurs", "thursday"),
            ("fri", "friday"),
            ("sat", "saturday"),
            ("sun", "sunday"),
        )
    )
    for name in names
}
_UNITS = {
    "m": "minutes",
    "min": "minutes",
    "mins": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
    "h": "hours",
    "hr": "hours",
    "hrs": "hours",
    "hour": "hours",
    "hours": "hours",
    "d": "days",
    "day": "days",
    "days": "days",
    "w": "weeks",
    "wk": "weeks",
    "wks": "weeks",
    "week": "weeks",
    "weeks": "weeks",
}
_DURATION_PART = re.compile(r"(\d{1,4})\s*([a-z]+)")
_ISO_DAY = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$")
# The most a follow-up may lie ahead.
HORIZON = timedelta(days=5 * 366)


@dataclass(frozen=True)
class ParsedWhen:
    at: datetime
    # How many words of the input the expression used.
    words: int


def parse_time_of_day(raw: str) -> time | None:
    match = _TIME.match(raw.strip().lower())
    if not match:
        return None
    hour, minute, meridiem = int(match.group(1)), int(match.group(2) or 0), match.group(3)
    if match.group(2) is None and meridiem is None:
        return None  # a bare number is not a time ("friday 3" is too vague; "friday 3pm" is fine)
    if meridiem:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if meridiem == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _duration(words: list[str]) -> tuple[timedelta, int, bool] | None:
    """``3d`` / ``3 days`` / ``1h30m`` -> (amount, words used, counts on the calendar)."""
    for used in (1, 2):
        text = "".join(words[:used]).lower()
        if len(words) < used or not text:
            continue
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text.replace(" ", ""):
            continue
        total = timedelta()
        calendar_days = 0
        for number, unit in parts:
            name = _UNITS.get(unit)
            if name is None:
                break
            if name in ("days", "weeks"):
                calendar_days += int(number) * (7 if name == "weeks" else 1)
            else:
                total += timedelta(**{name: int(number)})
        else:
            if calendar_days:
                return timedelta(days=calendar_days) + total, used, True
            return total, used, False
    return None


def _with_time(words: list[str], start: int) -> tuple[time, int]:
    if len(words) > start:
        parsed = parse_time_of_day(words[start])
        if parsed is not None:
            return parsed, start + 1
    return DEFAULT_TIME, start


def _iso_day(word: str) -> date | None:
    """``2026-12-01`` -> that day; a day that does not exist (2026-02-30) is an error, not "no date here"."""
    match = _ISO_DAY.match(word)
    if not match:
        return None
    year, month, day = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        if 1 <= month <= 12 and day >= 1:
            days = calendar.monthrange(year, month)[1]
            # Imported here: Babel's date formatting is only needed for this rare message.
            from babel.dates import format_skeleton

            month_name = format_skeleton("yMMMM", date(year, month, 1), locale=i18n.babel_locale())
            raise ValidationError(
                _("there is no {day}: {month} has {days} days", day=word, month=month_name, days=days)
            ) from None
        raise ValidationError(_("there is no {day}: write a date as YYYY-MM-DD", day=word)) from None


def parse_when(words: list[str], tz_name: str, now: datetime | None = None) -> ParsedWhen | None:
    """Read a when-expression from the start of ``words``; None if they do not start with one."""
    if not words:
        return None
    now = now or utcnow()
    tz = zone(tz_name)
    local_now = now.astimezone(tz)
    first = words[0].lower()
    if first == "in" and len(words) > 1:
        parsed = _duration(words[1:])
        if parsed is None:
            return None
        amount, used, on_calendar = parsed
        if on_calendar:
            days = timedelta(days=amount.days)
            local = local_now.replace(tzinfo=None) + days
            at = local_instant(local.date(), local.time(), tz_name) + (amount - days)
        else:
            at = now + amount
        # Reminders are kept to the minute, like the times people write.
        return ParsedWhen(at.replace(second=0, microsecond=0), used + 1)
    day: date | None = None
    start = 1
    if first in ("today", "tonight"):
        day = local_now.date()
    elif first == "tomorrow":
        day = local_now.date() + timedelta(days=1)
    elif first == "next" and len(words) > 1 and words[1].lower() in WEEKDAYS:
        first, start = words[1].lower(), 2
    if day is None and first in WEEKDAYS:
        ahead = (WEEKDAYS[first] - local_now.weekday()) % 7 or 7
        day = local_now.date() + timedelta(days=ahead)
    if day is None:
        day = _iso_day(first)
    if day is not None:
        at_time, used = _with_time(words, start)
        return ParsedWhen(local_instant(day, at_time, tz_name), used)
    time_only = parse_time_of_day(first)
    if time_only is not None:
        today = local_instant(local_now.date(), time_only, tz_name)
        return ParsedWhen(
            today if today > now else local_instant(local_now.date() + timedelta(days=1), time_only, tz_name), 1
        )
    return None


def parse_when_text(text: str, tz_name: str, now: datetime | None = None) -> ParsedWhen | None:
    """The whole of ``text`` as a when-expression ("tomorrow 9:00"); None if it is not exactly one."""
    words = text.split()
    parsed = parse_when(words, tz_name, now)
    return parsed if parsed is not None and parsed.words == len(words) else None


def split_reference_when_text(
    words: list[str], tz_name: str, now: datetime | None = None
) -> tuple[str, ParsedWhen, str]:
    """``acme corp tomorrow 9:00 call about renewal`` -> ("acme corp", when, "call about renewal").

    The when-expression is the first one after at least one word of customer reference.
    """
    for index in range(1, len(words)):
        parsed = parse_when(words[index:], tz_name, now)
        if parsed is not None:
            reference = " ".join(words[:index])
            text = " ".join(words[index + parsed.words :])
            return reference, parsed, text
    raise ValidationError(_("I could not find when: write it as {examples}", examples=_(EXAMPLES)), field="details")


def check_future(at: datetime, now: datetime | None = None) -> datetime:
    now = now or utcnow()
    if at <= now:
        raise ValidationError(_("that time has already passed; pick a time in the future"), field="when")
    if at - now > HORIZON:
        raise ValidationError(_("that is more than five years ahead"), field="when")
    return at
