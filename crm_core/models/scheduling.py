"""What the scheduler runs, and who runs it: the scheduled-job registry and the leader lock rows.

Every schedule (a follow-up's reminder, a channel's digest, the nightly mining, a campaign) is a
row in ``scheduled_jobs`` naming a module-level task function by its textual reference
(``package.module:function``) with JSON arguments: nothing is pickled, and a restart reads the
same rows. ``scheduler_locks`` holds the leader lease on SQLite (PostgreSQL uses an advisory lock).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.clock import utcnow
from crm_core.models.base import Base, Timestamped


class ScheduledJob(Timestamped, Base):
    __tablename__ = "scheduled_jobs"
    __audited__ = False
    __table_args__ = (sa.Index("ix_scheduled_jobs_due", "enabled", "next_run_at"),)

    # Stable, meaningful ids ("digest:12", "followup:7", "mining:nightly"): registering the same
    # id again updates the row, so restarts never add a second job for one schedule.
    id: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    task: Mapped[str] = mapped_column(sa.String(200))
    args: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    # {"type": "once", "at": ...} | {"type": "interval", "seconds": ...} |
    # {"type": "calendar", "at": "08:00", "timezone": ..., "weekdays": [...], "day": ...}
    trigger: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    # How late a run may still start; None: however late (a one-off that came due while the
    # worker was down still runs once). Missed recurring runs are always coalesced into one.
    misfire_grace_seconds: Mapped[int | None]
    enabled: Mapped[bool] = mapped_column(default=True)
    # When it is due next; None once a one-off has run.
    next_run_at: Mapped[datetime | None]
    # While a run is in progress: it belongs to its runner until then (a crashed run is retried).
    lease_until: Mapped[datetime | None]
    last_run_at: Mapped[datetime | None]
    # ok | failed | missed
    last_status: Mapped[str | None] = mapped_column(sa.String(20))
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    run_count: Mapped[int] = mapped_column(default=0)
    # Failed runs in a row: retried a few times with backoff before waiting for the next time.
    failures: Mapped[int] = mapped_column(default=0)


class SchedulerLock(Base):
    """A named leader lease (SQLite): held by ``holder`` until ``expires_at`` unless renewed."""

    __tablename__ = "scheduler_locks"
    __audited__ = False

    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(200))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
