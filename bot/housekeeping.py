"""Housekeeping as a built-in plugin: the recurring jobs that keep the outbox and the inbox small."""

from __future__ import annotations

from datetime import time

from bot.hookspecs import hookimpl
from bot.plugin_types import JobDefinition
from crm_core import event_delivery, inbox, outbox
from crm_core.scheduling import Calendar, Interval


@hookimpl
def register_jobs(settings) -> list[JobDefinition]:
    keep_days = int(settings.extra.get("CHATCRM_OUTBOX_KEEP_DAYS", "30"))
    return [
        JobDefinition(
            "outbox.purge",
            outbox.purge_task,
            "delete sent and failed outbox rows older than CHATCRM_OUTBOX_KEEP_DAYS",
            trigger=Calendar(time(3, 30)),
            args={"keep_days": keep_days},
            misfire_grace_seconds=24 * 3600,
        ),
        JobDefinition(
            "events.prune",
            event_delivery.prune_task,
            "delete domain events every active listener has had, older than CHATCRM_EVENTS_KEEP_DAYS",
            trigger=Calendar(time(3, 45)),
            args={"keep_days": int(settings.extra.get("CHATCRM_EVENTS_KEEP_DAYS", "30"))},
            misfire_grace_seconds=24 * 3600,
        ),
        JobDefinition(
            "inbox.prune",
            inbox.prune_task,
            "forget old inbound delivery keys",
            trigger=Interval(3600),
            misfire_grace_seconds=3600,
        ),
    ]
