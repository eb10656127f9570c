"""Reading the audit log: newest first, filtered by customer, acting user, time and action,
a page at a time by id (keyset paging: stable while new entries keep arriving)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from crm_core.models import AuditEntry
from crm_core.uow import UnitOfWork

ACTIONS = ("create", "update", "delete", "import")


@dataclass(frozen=True)
class AuditFilter:
    customer_id: int | None = None
    user_id: int | None = None
    since: datetime | None = None
    action: str | None = None


def page(uow: UnitOfWork, where: AuditFilter, *, before_id: int | None = None, limit: int = 20) -> list[AuditEntry]:
    """Up to ``limit`` entries older than ``before_id`` (the newest when None), newest first."""
    query = sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if where.customer_id is not None:
        query = query.where(AuditEntry.entity_type == "customers", AuditEntry.entity_id == str(where.customer_id))
    if where.user_id is not None:
        query = query.where(AuditEntry.actor_user_id == where.user_id)
    if where.since is not None:
        query = query.where(AuditEntry.at >= where.since)
    if where.action is not None:
        query = query.where(AuditEntry.action == where.action)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(uow.session.scalars(query))
