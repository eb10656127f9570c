"""Reading the audit log: newest first, filtered by customer, acting user, time and action,
a page at a time by id (keyset paging: stable while new entries keep arriving).

Personal values about a customer are stored encrypted (crm_core.customer_keys); every reader gets
them decrypted through ``readable``, or ``[erased]`` once that customer's key was destroyed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core import customer_keys
from crm_core.models import AuditEntry
from crm_core.uow import UnitOfWork

ACTIONS = ("create", "update", "delete", "import", "export", "erase")


@dataclass(frozen=True)
class Entry:
    """One audit entry as a reader sees it: personal values decrypted (or ``[erased]``)."""

    id: int
    at: datetime
    actor_user_id: int | None
    actor_name: str | None
    platform: str | None
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def readable(session: Session, entry: AuditEntry) -> Entry:
    return Entry(
        entry.id,
        entry.at,
        entry.actor_user_id,
        entry.actor_name,
        entry.platform,
        entry.action,
        entry.entity_type,
        entry.entity_id,
        customer_keys.reveal(session, entry.before),
        customer_keys.reveal(session, entry.after),
    )


@dataclass(frozen=True)
class AuditFilter:
    customer_id: int | None = None
    user_id: int | None = None
    since: datetime | None = None
    action: str | None = None


def matching(where: AuditFilter) -> sa.Select[AuditEntry]:
    """The entries that pass the filter, unordered (the REST API pages it its own way)."""
    query = sa.select(AuditEntry)
    if where.customer_id is not None:
        query = query.where(AuditEntry.entity_type == "customers", AuditEntry.entity_id == str(where.customer_id))
    if where.user_id is not None:
        query = query.where(AuditEntry.actor_user_id == where.user_id)
    if where.since is not None:
        query = query.where(AuditEntry.at >= where.since)
    if where.action is not None:
        query = query.where(AuditEntry.action == where.action)
    return query


def page(uow: UnitOfWork, where: AuditFilter, *, before_id: int | None = None, limit: int = 20) -> list[Entry]:
    """Up to ``limit`` entries older than ``before_id`` (the newest when None), newest first."""
    query = matching(where).order_by(AuditEntry.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return [readable(uow.session, entry) for entry in uow.session.scalars(query)]
