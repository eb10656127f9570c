"""Scheduling: the job registry (what runs when), triggers, and the leader lock.

APScheduler only fires the worker's ticks (bot.scheduler); everything that is scheduled lives
in the ``scheduled_jobs`` table through this package. A task is a function taking a ``JobRun``,
contributed under a stable name by a plugin's ``register_jobs`` hook; code then schedules it by
that name, e.g.::

    schedule(uow, "followup:12", "followups.fire", Once(when), args={"followup_id": 12})
"""

from crm_core.scheduling.registry import (
    JobRun,
    RunOutcome,
    Task,
    UnknownTask,
    check_task_name,
    next_due_time,
    run_due,
    schedule,
    unschedule,
)
from crm_core.scheduling.triggers import Calendar, Interval, Once, Trigger, from_spec, parse_hhmm

__all__ = [
    "JobRun",
    "RunOutcome",
    "next_due_time",
    "Task",
    "UnknownTask",
    "check_task_name",
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
