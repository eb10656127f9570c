"""The nightly backup as a built-in plugin: a job registered like any plugin's.

It is scheduled only when CHATCRM_BACKUP_DIR is set; the task is always registered, so a job stored
while the folder was set still finds its task (and says why it did nothing) after it is unset.
"""

from __future__ import annotations

import logging
from datetime import time

from bot.hookspecs import hookimpl
from bot.plugin_types import JobDefinition
from bot.settings import Settings
from crm_core.scheduling import Calendar, JobRun

log = logging.getLogger("chatcrm.backup")

TASK = "backup.nightly"


@hookimpl
def register_jobs(settings: Settings) -> list[JobDefinition]:
    return [
        JobDefinition(
            TASK,
            nightly_backup,
            "an encrypted backup into CHATCRM_BACKUP_DIR, keeping the newest CHATCRM_BACKUP_KEEP",
            trigger=Calendar(time(3, 0)) if settings.backup_dir else None,
            misfire_grace_seconds=24 * 3600,
            # A backup of a big database takes minutes; the lease is renewed while it runs anyway.
            lease_seconds=300,
        )
    ]


def nightly_backup(run: JobRun) -> None:
    """Scheduled task. The folder, count and key are read from the process's settings at run time,
    never stored with the job (the key must not end up in the database it protects)."""
    from crm_core.backup.retention import take_backup
    from crm_core.secret_key import secret_keys

    settings = Settings.from_env(run.config)
    if not settings.backup_dir:
        log.warning("%s: CHATCRM_BACKUP_DIR is not set; no backup taken", TASK)
        return
    engine = run.session_factory.kw["bind"]
    keys = secret_keys(settings.secret_key, engine.url.render_as_string(hide_password=False), create=True)
    if keys.notice:
        log.warning("%s", keys.notice)
    result = take_backup(engine, settings.backup_dir, settings.backup_keep, keys.current)
    log.info("%s: %s", TASK, result.describe())
