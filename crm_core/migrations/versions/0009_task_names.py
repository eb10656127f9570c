"""Scheduled jobs name their task by a stable name (register_jobs) instead of "module:function"

Revision ID: 0009_task_names
Revises: 0008_campaigns
Create Date: 2026-12-02 11:40:00

Stored one-off and per-subscription jobs keep their ids and get the task's new name. The
built-in recurring jobs had ids of their own ("system:outbox-purge"); they are deleted here and
registered again, under their task's name, the next time a scheduler leads.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_task_names"
down_revision = "0008_campaigns"
branch_labels = None
depends_on = None

RENAMED = {
    "crm_core.services.digests:send_digest": "digests.send",
    "crm_core.services.followups:fire_followup": "followups.fire",
    "crm_core.campaigns.triggers:scan_task": "campaigns.scan_triggers",
    "crm_core.campaigns.delivery:run_task": "campaigns.run",
    "crm_core.campaigns.delivery:tick_task": "campaigns.tick",
    "crm_core.outbox:purge_task": "outbox.purge",
    "crm_core.inbox:prune_task": "inbox.prune",
    "crm_core.services.recommendation_digest:nightly_task": "mining.nightly",
    "crm_core.predictions.scores:nightly_task": "predictions.nightly",
}
OLD_SYSTEM_JOBS = ("system:outbox-purge", "system:inbox-prune", "mining:nightly", "campaigns:tick", "predictions:nightly")

jobs = sa.table("scheduled_jobs", sa.column("id", sa.String), sa.column("task", sa.String))


def upgrade() -> None:
    op.execute(jobs.delete().where(jobs.c.id.in_(OLD_SYSTEM_JOBS)))
    for old, new in RENAMED.items():
        op.execute(jobs.update().where(jobs.c.task == old).values(task=new))


def downgrade() -> None:
    op.execute(jobs.delete().where(jobs.c.id.in_(list(RENAMED.values()))))
    for old, new in RENAMED.items():
        op.execute(jobs.update().where(jobs.c.task == new).values(task=old))
