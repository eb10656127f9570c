"""Taking in platform events exactly once: ``first_time`` records an event key in the caller's
transaction and says whether it is new.

Insert-first: the row goes in before the event's effect, in the same transaction, with a
unique (platform, key) constraint. A re-delivered event finds the row and is skipped; two
deliveries racing each other serialise on the constraint (PostgreSQL waits for the first
transaction, SQLite's writer lock does the same), so exactly one takes effect. If the effect
rolls back, so does the row, and a later re-delivery is processed afresh.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from crm_core import db
from crm_core.clock import utcnow
from crm_core.models.inbox import InboundEvent
from crm_core.scheduling import JobRun
from crm_core.uow import UnitOfWork


def first_time(uow: UnitOfWork, platform: str, key: str) -> bool:
    """Record the event (platform, key) in this transaction; False when it was recorded before."""
    if len(key) > 200:
        # Truncating could make two different events collide; a key that long is a bug.
        raise ValueError(f"inbox keys are at most 200 characters, got {len(key)}")
    values = {"platform": platform, "key": key, "received_at": utcnow()}
    return db.insert_or_ignore(uow.session, InboundEvent, values)


def seen(uow: UnitOfWork, platform: str, key: str) -> bool:
    """Whether the event was taken in already (a read; ``first_time`` is what claims an event)."""
    statement = sa.select(InboundEvent.id).where(InboundEvent.platform == platform, InboundEvent.key == key)
    return uow.session.scalar(statement) is not None


def prune(uow: UnitOfWork, older_than: datetime) -> int:
    """Forget events received before ``older_than`` (platforms stop re-delivering after a day or so)."""
    result = uow.session.execute(sa.delete(InboundEvent).where(InboundEvent.received_at < older_than))
    return result.rowcount  # type: ignore[attr-defined]  # DML returns a CursorResult


# Slack retries an event for about an hour and Telegram re-sends an update for a day at most.
RETENTION = timedelta(days=2)


def prune_task(run: JobRun) -> None:
    """Scheduled task (hourly): forget keys older than any platform's retry window."""
    with run.uow() as uow:
        prune(uow, utcnow() - timedelta(seconds=int(run.args.get("keep_seconds", RETENTION.total_seconds()))))
