"""Taking in platform events exactly once: ``first_time`` records an event key in the caller's
transaction and says whether it is new.

Insert-first: the row goes in before the event's effect, in the same transaction, with a
unique (platform, key) constraint. A re-delivered event finds the row and is skipped; two
deliveries racing each other serialise on the constraint (PostgreSQL waits for the first
transaction, SQLite's writer lock does the same), so exactly one takes effect. If the effect
rolls back, so does the row, and a later re-delivery is processed afresh.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from crm_core.clock import utcnow
from crm_core.models.inbox import InboundEvent
from crm_core.uow import UnitOfWork


def first_time(uow: UnitOfWork, platform: str, key: str) -> bool:
    """Record the event (platform, key) in this transaction; False when it was recorded before."""
    session = uow.session
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}.get(dialect)
    values = {"platform": platform, "key": str(key)[:200], "received_at": utcnow()}
    if insert is None:  # pragma: no cover - only the two supported databases exist
        raise RuntimeError(f"the inbox does not support {dialect}")
    result = session.execute(insert(InboundEvent).values(**values).on_conflict_do_nothing())
    return result.rowcount == 1


def prune(uow: UnitOfWork, older_than: datetime) -> int:
    """Forget events received before ``older_than`` (platforms stop re-delivering after a day or so)."""
    result = uow.session.execute(sa.delete(InboundEvent).where(InboundEvent.received_at < older_than))
    return result.rowcount
