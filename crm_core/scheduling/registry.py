"""The scheduled-job registry: register what should run when, and run what is due.

A job is a row naming a task by its stable name (``"digests.send"``) with JSON arguments and a
trigger. Tasks are contributed by plugins (the ``register_jobs`` hook; the built-in features are
plugins too) and handed to ``run_due`` as a name -> function mapping, so a stored schedule never
names a Python module and survives code moving around. ``schedule`` upserts by id, so registering a job on every
start (or re-subscribing a channel) leaves one row per schedule. ``run_due`` is what the
scheduler's tick calls; it runs each due job once for its time:

- the job is claimed with a lease (a conditional UPDATE): two runners cannot both run it, and a
  runner that dies mid-run leaves a lease that expires, after which the run is retried. The lease
  is the task's own (about its expected run time; ``DEFAULT_LEASE`` unless the task declares one)
  and a heartbeat renews it every third of it while the task runs (crm_core.scheduling.heartbeat),
  so a slow run keeps its job and a crashed one is retried within about a lease;
- a run later than ``misfire_grace_seconds`` is skipped ("missed"); None means however late,
  so a one-off that came due while the worker was down runs once after restart;
- missed recurring runs coalesce: after a run, the next time is the first one after *now*;
- a failing run is retried a few times with backoff, then waits for its next regular time.

Tasks take one ``JobRun`` argument and open their own units of work; what they send goes
through the outbox with idempotency keys, so a retried run does not send twice.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from crm_core.actor import Actor
from crm_core.clock import as_utc, utcnow
from crm_core.errors import ValidationError
from crm_core.models import ScheduledJob
from crm_core.scheduling.heartbeat import LeaseHeartbeat
from crm_core.scheduling.triggers import Once, Trigger, from_spec
from crm_core.uow import UnitOfWork

log = logging.getLogger("chatcrm.scheduler")

SCHEDULER_ACTOR = Actor(user_id=None, name="scheduler", platform="system")
# How long a claimed run is its runner's before another may retry it, unless renewed.
DEFAULT_LEASE = timedelta(seconds=60)
MAX_RETRIES = 3
RETRY_DELAY = timedelta(minutes=1)


@dataclass(frozen=True)
class JobRun:
    """What a task function gets: its arguments, the time it was due, and units of work."""

    job_id: str
    fire_time: datetime
    args: dict[str, Any]
    session_factory: sessionmaker[Session]
    # The CHATCRM_* settings of the process (media directory, currency, ...).
    config: Mapping[str, str] = field(default_factory=dict)

    def uow(self, actor: Actor = SCHEDULER_ACTOR) -> UnitOfWork:
        return UnitOfWork(self.session_factory, actor)


Task = Callable[[JobRun], None]


# A task's stable name: dotted lowercase words ("digests.send", "quotes.expire").
TASK_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def check_task_name(task: str) -> str:
    """The name if it has a task name's form; ValueError otherwise."""
    if not TASK_NAME.match(task or ""):
        raise ValueError(f"{task!r} is not a task name (dotted lowercase words, e.g. digests.send)")
    return task


class UnknownTask(LookupError):
    """A stored job names a task no installed plugin registers (a plugin was removed or renamed it)."""


def schedule(
    uow: UnitOfWork,
    job_id: str,
    task: str,
    trigger: Trigger,
    *,
    args: dict[str, Any] | None = None,
    misfire_grace_seconds: int | None = None,
    enabled: bool = True,
) -> ScheduledJob:
    """Create or update the job ``job_id`` in the caller's transaction.

    Registering the same trigger again keeps the job's next run time, so a run that was missed
    while the worker was down is not lost by re-registering at start; a changed trigger is
    scheduled afresh from now. A one-off in the past is due at once.
    """
    if not job_id or len(job_id) > 100:
        raise ValidationError("a job id is 1 to 100 characters")
    check_task_name(task)
    spec = trigger.to_spec()
    now = utcnow()
    first = as_utc(trigger.at) if isinstance(trigger, Once) else trigger.next_after(now)
    job = uow.session.get(ScheduledJob, job_id)
    if job is None:
        job = ScheduledJob(
            id=job_id, task=task, trigger=spec, args=args or {}, next_run_at=first, run_count=0, failures=0
        )
        uow.session.add(job)
    elif job.trigger != spec or job.next_run_at is None:
        job.trigger = spec
        job.next_run_at = first
        job.failures = 0
    job.task = task
    job.args = args or {}
    job.misfire_grace_seconds = misfire_grace_seconds
    job.enabled = enabled
    uow.session.flush()
    return job


def unschedule(uow: UnitOfWork, job_id: str) -> bool:
    """Remove a job; True if there was one."""
    job = uow.session.get(ScheduledJob, job_id)
    if job is None:
        return False
    uow.session.delete(job)
    uow.session.flush()
    return True


def next_due_time(session_factory: sessionmaker[Session]) -> datetime | None:
    """When the earliest enabled job can run (for the scheduler to wake up exactly then): its due
    time, or the end of its lease while another runner holds it."""
    job = ScheduledJob
    runnable_at = sa.case(
        (sa.and_(job.lease_until.is_not(None), job.lease_until > job.next_run_at), job.lease_until),
        else_=job.next_run_at,
    )
    with session_factory() as session:
        return session.scalar(sa.select(sa.func.min(runnable_at)).where(job.enabled.is_(True)))


@dataclass(frozen=True)
class RunOutcome:
    job_id: str
    fire_time: datetime
    # ok | failed | missed
    status: str
    error: str | None = None


def run_due(
    session_factory: sessionmaker[Session],
    *,
    tasks: Mapping[str, Task],
    now: datetime | None = None,
    limit: int = 100,
    lease: timedelta = DEFAULT_LEASE,
    config: Mapping[str, str] | None = None,
    leases: Mapping[str, timedelta] | None = None,
) -> list[RunOutcome]:
    """Run every job due at ``now`` (default: the clock), each once; returns what happened.

    Each run is leased for ``leases[task]`` (the task's expected run time), else ``lease``."""
    now = now or utcnow()
    with session_factory() as session:
        due = session.execute(
            sa.select(ScheduledJob.id, ScheduledJob.next_run_at)
            .where(
                ScheduledJob.enabled.is_(True),
                ScheduledJob.next_run_at <= now,
                sa.or_(ScheduledJob.lease_until.is_(None), ScheduledJob.lease_until < now),
            )
            .order_by(ScheduledJob.next_run_at, ScheduledJob.id)
            .limit(limit)
        ).all()
    outcomes = []
    for job_id, fire_time in due:
        assert fire_time is not None, "due jobs were selected by next_run_at <= now"
        outcome = _run_one(session_factory, tasks, job_id, fire_time, now, lease, leases or {}, config or {})
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def _claim(
    session_factory: sessionmaker[Session],
    job_id: str,
    fire_time: datetime,
    now: datetime,
    lease: timedelta,
    leases: Mapping[str, timedelta],
) -> tuple[ScheduledJob, datetime] | None:
    """The job and the end of our lease on it, or None when another runner has it."""
    with UnitOfWork(session_factory, SCHEDULER_ACTOR) as uow:
        task = uow.session.scalar(sa.select(ScheduledJob.task).where(ScheduledJob.id == job_id))
        until = now + leases.get(task or "", lease)
        claimed = uow.session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
            sa.update(ScheduledJob)
            .where(
                ScheduledJob.id == job_id,
                ScheduledJob.enabled.is_(True),
                ScheduledJob.next_run_at == fire_time,
                sa.or_(ScheduledJob.lease_until.is_(None), ScheduledJob.lease_until < now),
            )
            .values(lease_until=until)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            return None
        job = uow.session.get(ScheduledJob, job_id)
        return (job, until) if job is not None else None


def _run_one(
    session_factory: sessionmaker[Session],
    tasks: Mapping[str, Task],
    job_id: str,
    fire_time: datetime,
    now: datetime,
    lease: timedelta,
    leases: Mapping[str, timedelta],
    config: Mapping[str, str],
) -> RunOutcome | None:
    claim = _claim(session_factory, job_id, fire_time, now, lease, leases)
    if claim is None:
        return None  # someone else has it, or it changed since we looked
    job, until = claim
    # Missed runs coalesce into one, for the latest time that came due; lateness is judged by it.
    latest = from_spec(job.trigger).latest_due(fire_time, now)
    late = (now - latest).total_seconds()
    error = None
    if job.misfire_grace_seconds is not None and late > job.misfire_grace_seconds:
        status = "missed"
        log.warning(
            "job %s due at %s is %.0fs late (grace %ss): skipped",
            job_id,
            latest.isoformat(),
            late,
            job.misfire_grace_seconds,
        )
    else:
        try:
            task = tasks.get(job.task)
            if task is None:
                raise UnknownTask(f"no installed plugin registers the task {job.task!r}")
            run = JobRun(
                job_id=job_id,
                fire_time=latest,
                args=dict(job.args or {}),
                session_factory=session_factory,
                config=config,
            )
            # Stopped before the run is recorded (and on a BaseException: a dying runner's lease
            # must run out, not be kept alive by a leftover thread).
            with LeaseHeartbeat(session_factory, job_id, until, leases.get(job.task, lease)):
                task(run)
            status = "ok"
        except Exception as exc:  # noqa: BLE001 - a failing job must not stop the scheduler
            ref = secrets.token_hex(4).upper()
            log.exception("job %s (%s) failed ref=%s", job_id, job.task, ref)
            status, error = "failed", f"ref {ref}: {type(exc).__name__}: {exc}"[:500]
    _complete(session_factory, job, fire_time, latest, status, error)
    return RunOutcome(job_id, latest, status, error)


def _complete(
    session_factory: sessionmaker[Session],
    job: ScheduledJob,
    fire_time: datetime,
    latest: datetime,
    status: str,
    error: str | None,
) -> None:
    finished = max(utcnow(), latest)
    trigger = from_spec(job.trigger)
    regular = trigger.next_after(finished)
    failures = job.failures + 1 if status == "failed" else 0
    next_run = regular
    if status == "failed" and failures <= MAX_RETRIES:
        retry = finished + RETRY_DELAY * (2 ** (failures - 1))
        next_run = retry if regular is None else min(retry, regular)
    with UnitOfWork(session_factory, SCHEDULER_ACTOR) as uow:
        # Only if nobody rescheduled the job while it ran (a snoozed follow-up, a changed digest).
        unchanged = (ScheduledJob.id == job.id) & (ScheduledJob.next_run_at == fire_time)
        ran = status != "missed"
        if next_run is None and status != "failed":
            done = uow.session.execute(sa.delete(ScheduledJob).where(unchanged)).rowcount  # type: ignore[attr-defined]  # DML returns a CursorResult
        else:
            done = uow.session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
                sa.update(ScheduledJob)
                .where(unchanged)
                .values(
                    next_run_at=next_run,
                    lease_until=None,
                    last_run_at=finished,
                    last_status=status,
                    last_error=error,
                    failures=failures,
                    run_count=ScheduledJob.run_count + int(ran),
                )
                .execution_options(synchronize_session=False)
            ).rowcount
        if not done:
            uow.session.execute(
                sa.update(ScheduledJob)
                .where(ScheduledJob.id == job.id)
                .values(
                    lease_until=None,
                    last_run_at=finished,
                    last_status=status,
                    last_error=error,
                    run_count=ScheduledJob.run_count + int(ran),
                )
                .execution_options(synchronize_session=False)
            )
