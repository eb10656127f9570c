"""Taking an inbound platform event once: ``first_time(uow, platform, key)`` and pruning old keys.

Call ``first_time`` first thing in the transaction that carries the event out. It inserts the
key (insert-first, no read-then-write race): True means this is the first delivery and the
caller goes ahead; False means an earlier delivery committed it already (or is committing it
right now: on PostgreSQL the insert waits for that transaction, on SQLite the write lock
serialises them), and the caller does nothing. If the caller's transaction rolls back, the key
goes with it, so a later retry is handled again.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from crm_core.clock import utcnow
from crm_core.models.inbox import InboundEvent
from crm_core.uow import UnitOfWork

_ON_CONFLICT_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def first_time(uow: UnitOfWork, platform: str, key: str) -> bool:
    """Record (platform, key) in the caller's transaction; False if it was recorded before."""
    if len(key) > 200:
        raise ValueError(f"inbox keys are at most 200 characters, got {len(key)}")
    values = {"platform": platform, "key": key, "received_at": utcnow()}
    dialect = uow.session.get_bind().dialect.name
    insert = _ON_CONFLICT_INSERTS.get(dialect)
    if insert is not None:
        statement = (
            insert(InboundEvent.__table__)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["platform", "key"])
            # rowcount is not reliable across drivers here; a returned id is.
            .returning(InboundEvent.id)
        )
        return uow.session.execute(statement).scalar() is not None
    # Other databases: a savepoint keeps the caller's transaction usable after the conflict.
    try:
        with uow.session.begin_nested():
            uow.session.execute(sa.insert(InboundEvent).values(**values))
    except sa.exc.IntegrityError:
        return False
    return True


def prune(uow: UnitOfWork, received_before: datetime) -> int:
    """Forget keys received before the given time (older than any platform's retry window)."""
    result = uow.session.execute(sa.delete(InboundEvent).where(InboundEvent.received_at < received_before))
    return result.rowcount or 0
