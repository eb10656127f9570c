"""The "as of" date of an analysis of the order history (mining, churn, RFM, recommendations).

An analysis looks at a window of days that ends at its as-of moment. That is now, unless the
history stops earlier: a company that migrated its 2010–2011 orders has nothing in "the last
365 days", so when the newest purchase is older than the window, the analysis ends at the end
of the newest purchase's day instead, and says so. An admin can also name the day
(``as_of=2011-12-09``); the analysis then ends at the end of that day (UTC), so the day's own
orders count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core import i18n
from crm_core.clock import as_utc
from crm_core.errors import ValidationError
from crm_core.i18n import _, ngettext, pgettext
from crm_core.models import Order, OrderKind

NOW, GIVEN, NEWEST_ORDER = "now", "given", "newest order"
_WINDOW = re.compile(r"^(\d{1,5})\s*([dw]?)$")


@dataclass(frozen=True)
class AsOf:
    """Where an analysis ends (exclusive) and why: ``now``, ``given`` by an admin, or the ``newest order``."""

    end: datetime
    source: str
    window_days: int

    @property
    def day(self) -> date:
        """The last day the analysis includes."""
        return day_of(self.end)

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.window_days)

    def describe(self) -> str:
        """``the last 365 days`` or ``the 365 days to 2011-12-09, the newest order's day (…)``."""
        return describe(self.end, self.source, self.window_days)


def describe(end: datetime | None, source: str | None, window_days: int) -> str:
    """The window in words, in the reader's language, for a run stored with its as-of end and source
    (older runs have none)."""
    days = i18n.format_number(window_days)
    if end is None or source in (None, NOW):
        return ngettext("the last {days} day", "the last {days} days", window_days, days=days)
    day = i18n.display_date(day_of(end))
    if source == NEWEST_ORDER:
        return ngettext(
            "the {days} day to {day}, the newest order's day (no orders in the last {days} day)",
            "the {days} days to {day}, the newest order's day (no orders in the last {days} days)",
            window_days,
            days=days,
            day=day,
        )
    return ngettext("the {days} day to {day}", "the {days} days to {day}", window_days, days=days, day=day)


def source_label(source: str | None) -> str:
    """Why an analysis ends when it does, in the reader's language (``source`` is stored raw)."""
    if source == NEWEST_ORDER:
        return _("the newest order's day")
    if source == GIVEN:
        return _("the day asked for")
    if source == NOW:
        return pgettext("as of", "now")
    return source or "—"


def day_of(end: datetime) -> date:
    """The last day (UTC) a window ending at ``end`` (exclusive) includes."""
    return (as_utc(end) - timedelta(microseconds=1)).date()


def end_of_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


def newest_purchase(session: Session) -> datetime | None:
    newest = session.scalar(sa.select(sa.func.max(Order.ordered_at)).where(Order.kind == OrderKind.PURCHASE))
    if isinstance(newest, str):  # SQLite returns aggregated timestamps as text
        newest = datetime.fromisoformat(newest)
    return as_utc(newest) if newest is not None else None


def resolve(session: Session, window_days: int, now: datetime, given: date | None = None) -> AsOf:
    """The as-of end for a ``window_days`` analysis run at ``now``: ``given``, else now, else the newest order's day."""
    if given is not None:
        return AsOf(end_of_day(given), GIVEN, window_days)
    newest = newest_purchase(session)
    if newest is None or newest >= now - timedelta(days=window_days):
        return AsOf(now, NOW, window_days)
    return AsOf(end_of_day(newest.date()), NEWEST_ORDER, window_days)


def parse_day(raw: str, field: str = "as_of") -> date:
    """``2011-12-09`` -> a date, or a ValidationError saying how to write one."""
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationError(
            _("{value} is not a day: write it like 2011-12-09", value=repr(raw)), field=field
        ) from None


def parse_window(raw: str, field: str = "window") -> int:
    """``365d``, ``52w`` or ``365`` -> days."""
    match = _WINDOW.match(raw.strip().lower())
    days = int(match.group(1)) * (7 if match.group(2) == "w" else 1) if match else 0
    if not 1 <= days <= 36_500:
        raise ValidationError(
            _("{value} is not a window: write a number of days like 365d (or weeks: 52w)", value=repr(raw)), field=field
        )
    return days
