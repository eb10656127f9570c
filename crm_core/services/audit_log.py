"""Reading the audit log: newest first, filtered by customer, acting user, time and action,
a page at a time by id (keyset paging: stable while new entries keep arriving).

The log stores raw names (action ``update``, entity type ``customers``: a table or an import's
kind); ``summary`` says what happened in the reader's language ("changed customer #12" / "修改了客户
#12"). Filters and exports keep the raw names.

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
from crm_core.i18n import N_, _, pgettext
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


def entity_label(entity_type: str) -> str:
    """What a logged row is, in the reader's language (entity types are table names and import or
    export kinds); a plugin's own table is shown by its name."""
    names = {
        "api_tokens": pgettext("audit entity", "API token"),
        "audit": pgettext("audit entity", "audit log"),
        "campaigns": pgettext("audit entity", "campaign"),
        "companies": pgettext("audit entity", "company"),
        "custom_field_definitions": pgettext("audit entity", "custom field"),
        "custom_field_values": pgettext("audit entity", "custom field value"),
        "customer_chats": pgettext("audit entity", "customer chat"),
        "customer_consents": pgettext("audit entity", "consent"),
        "customer_relationships": pgettext("audit entity", "relationship"),
        "customer_tags": pgettext("audit entity", "tag"),
        "customers": pgettext("audit entity", "customer"),
        "deal_stage_changes": pgettext("audit entity", "deal stage change"),
        "deals": pgettext("audit entity", "deal"),
        "digest_subscriptions": pgettext("audit entity", "digest subscription"),
        "followups": pgettext("audit entity", "follow-up"),
        "identities": pgettext("audit entity", "chat account"),
        "interactions": pgettext("audit entity", "interaction"),
        "link_codes": pgettext("audit entity", "link code"),
        "order_lines": pgettext("audit entity", "order line"),
        "orders": pgettext("audit entity", "order"),
        "products": pgettext("audit entity", "product"),
        "recommendations": pgettext("audit entity", "recommendation"),
        "segments": pgettext("audit entity", "segment"),
        "template_overrides": pgettext("audit entity", "template"),
        "ticket_messages": pgettext("audit entity", "ticket message"),
        "tickets": pgettext("audit entity", "ticket"),
        "users": pgettext("audit entity", "user"),
        "webhook_endpoints": pgettext("audit entity", "webhook"),
    }
    return names.get(entity_type, entity_type)


# What each action did, by name; {entity} is entity_label's word, and {id} (also named {source} and
# {target}, for an import's source and an export's file) the row's "#12" or the file.
_PHRASES = {
    "create": N_("created {entity} {id}"),
    "update": N_("changed {entity} {id}"),
    "delete": N_("deleted {entity} {id}"),
    "import": N_("imported {entity} records from {source}"),
    "export": N_("exported {entity} records to {target}"),
    "erase": N_("erased the personal data of {entity} {id}"),
}


def summary(entry: Entry) -> str:
    """What the entry says happened, in the reader's language: "changed customer #12"."""
    entity = entity_label(entry.entity_type)
    # A row's key (a number, or numbers joined by "/"); an import's source or an export's file otherwise.
    ref = f"#{entry.entity_id}" if entry.entity_id.replace("/", "").isdigit() else entry.entity_id
    phrase = _PHRASES.get(entry.action)
    if phrase is None:
        return f"{entry.action} {entity} {ref}"
    return _(phrase, entity=entity, id=ref, source=ref, target=ref)


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
