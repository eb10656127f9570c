"""Outgoing webhooks as a built-in plugin, through the hooks any plugin uses:

- ``register_platforms``: the ``webhook`` delivery-only platform (no chat; strict order per
  conversation; its own retry policy of about 24 hours) and its sender;
- ``on_event``: every committed domain event becomes outbox rows for the endpoints subscribed to it
  (the event worker gives this listener its own cursor, so webhooks never hold up other plugins);
- ``register_jobs``: forgetting old delivery attempts.
"""

from __future__ import annotations

from datetime import time

from bot.delivery import RetryPolicy
from bot.hookspecs import hookimpl
from bot.platform_spec import PlatformSpec
from bot.plugin_types import JobDefinition
from crm_core import webhooks
from crm_core.events import Event
from crm_core.platforms import PlatformTraits
from crm_core.scheduling import Calendar, JobRun

TRAITS = PlatformTraits(name=webhooks.PLATFORM, label="Webhooks", text_format="text", chat=False, ordered=True)
# 30 s doubling up to 4 h: 15 attempts spread over about 24 hours (RETRY.total_seconds()).
RETRY = RetryPolicy(max_attempts=15, backoff_seconds=30, max_backoff_seconds=4 * 3600)


def _sender(app):
    from bot.adapters.webhook.sender import WebhookSender

    return WebhookSender(app.session_factory, allow_private=app.settings.webhook_allow_private)


@hookimpl
def register_platforms() -> list[PlatformSpec]:
    return [PlatformSpec(traits=TRAITS, sender=_sender, retry=RETRY)]


@hookimpl
def on_event(event: Event, app) -> None:
    with app.uow() as uow:
        webhooks.enqueue_event(uow, event)


def prune_attempts_task(run: JobRun) -> None:
    webhooks.prune_attempts(run.session_factory, int(run.args.get("keep_days", 30)))


@hookimpl
def register_jobs(settings) -> list[JobDefinition]:
    return [
        JobDefinition(
            "webhooks.prune_attempts",
            prune_attempts_task,
            "forget webhook delivery attempts older than CHATCRM_WEBHOOK_KEEP_DAYS",
            trigger=Calendar(time(3, 50)),
            args={"keep_days": int(settings.extra.get("CHATCRM_WEBHOOK_KEEP_DAYS", "30"))},
            misfire_grace_seconds=24 * 3600,
        )
    ]
