"""Scheduling: the job registry (what runs when), triggers, and the leader lock.

APScheduler only fires the worker's ticks (bot.scheduler); everything that is scheduled lives
in the ``scheduled_jobs`` table through this package. To add a recurring job, write a
module-level function taking a ``JobRun`` and register it, e.g.::

    schedule(uow, "mining:nightly", "crm_core.mining.jobs:nightly", Calendar(time(2, 0)),
             misfire_grace_seconds=6 * 3600)
"""

from crm_core.scheduling.registry import JobRun, RunOutcome, next_due_time, resolve_task, run_due, schedule, unschedule
from crm_core.scheduling.triggers import Calendar, Interval, Once, Trigger, from_spec, parse_hhmm

__all__ = [
    "JobRun",
    "RunOutcome",
    "next_due_time",
    "resolve_task",
    "run_due",
    "schedule",
    "unschedule",
    "Calendar",
    "Interval",
    "Once",
    "Trigger",
    "from_spec",
    "parse_hhmm",
]
