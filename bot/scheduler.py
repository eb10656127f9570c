"""The scheduler service of ``chatcrm worker``: APScheduler fires ticks; our tables say what is due.

Exactly one scheduler runs per database. Each worker tries the leader lock
(crm_core.scheduling.leader: a PostgreSQL advisory lock, a lock row on SQLite); the one that
gets it starts an APScheduler 3 ``AsyncIOScheduler`` with a fixed set of jobs:

- ``chatcrm:tick`` every ``poll`` seconds: run the due rows of the scheduled-job registry
  (crm_core.scheduling.run_due: follow-up reminders, digests, and whatever others register), each
  under its task's own lease (``JobDefinition.lease_seconds``), renewed while it runs;
- ``chatcrm:wake``, a one-off re-set after every tick to the earliest ``next_run_at``, so a
  reminder due at 09:00:00 runs then rather than at the next poll;
- ``chatcrm:leader`` renews (SQLite) or checks (PostgreSQL) the lock; on losing it the
  scheduler stops and the worker goes back to standby.

The others wait as standbys and retry the lock every few seconds, taking over when the leader
dies. APScheduler's jobs reference module-level functions by text (``bot.scheduler:tick``)
with the service's id as their only argument, have stable ids (``replace_existing``), and an
explicit ``misfire_grace_time`` of None with ``coalesce``: a late or missed tick runs once. The
registry itself applies each schedule's own grace and coalescing (see crm_core.scheduling).
Because the jobs live in memory and the schedules in our tables, restarting leaves exactly one
APScheduler job per id and one registry row per schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.plugin_types import JobDefinition
from bot.settings import env_number
from crm_core.clock import utcnow
from crm_core.scheduling import next_due_time, run_due, schedule
from crm_core.scheduling.leader import LeaderLock, holder_id
from crm_core.uow import UnitOfWork

log = logging.getLogger("chatcrm.scheduler")

TICK_JOB = "chatcrm:tick"
WAKE_JOB = "chatcrm:wake"
LEADER_JOB = "chatcrm:leader"
LOCK_NAME = "scheduler"


@dataclass(frozen=True)
class SchedulerSettings:
    # How often the registry is checked for rows added or changed by other processes.
    poll_seconds: float = 5.0
    # SQLite lock: expiry, renewed every third of it.
    lock_ttl_seconds: float = 30.0
    # How often a standby tries to take over.
    standby_seconds: float = 5.0
    # A job run's lease unless its task declares one (JobDefinition.lease_seconds); renewed while
    # the run lasts, so it bounds how long a run killed with its worker waits to be retried.
    job_lease_seconds: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SchedulerSettings:
        def number(name: str, default: float) -> float:
            return env_number(env, name, default)

        return cls(
            poll_seconds=number("CHATCRM_SCHEDULER_POLL", cls.poll_seconds),
            lock_ttl_seconds=number("CHATCRM_SCHEDULER_LOCK_TTL", cls.lock_ttl_seconds),
            standby_seconds=number("CHATCRM_SCHEDULER_STANDBY", cls.standby_seconds),
            job_lease_seconds=number("CHATCRM_SCHEDULER_JOB_LEASE", cls.job_lease_seconds),
        )


# APScheduler job functions find their service through this registry: the jobs carry only a
# string id, as they would in a persistent job store.
_SERVICES: dict[str, SchedulerService] = {}


def tick(service_id: str) -> None:
    """APScheduler job: run what is due (in APScheduler's executor thread)."""
    service = _SERVICES.get(service_id)
    if service is not None:
        service.run_due_jobs()


def check_leadership(service_id: str) -> None:
    """APScheduler job: keep (SQLite) or confirm (PostgreSQL) the leader lock."""
    service = _SERVICES.get(service_id)
    if service is not None:
        service.check_leadership()


class SchedulerService:
    """A ``WorkerService``: leads or stands by; while leading, runs APScheduler."""

    name = "scheduler"

    def __init__(
        self,
        engine: Engine,
        session_factory: sessionmaker[Session],
        settings: SchedulerSettings | None = None,
        *,
        config: Mapping[str, str] | None = None,
        jobs: Sequence[JobDefinition] = (),
        on_ran: Callable[[], None] | None = None,
        holder: str | None = None,
    ):
        self.engine = engine
        self.session_factory = session_factory
        self.settings = settings or SchedulerSettings()
        self.config = dict(config or {})
        # Every task the plugins registered, by name; those with a trigger are also recurring jobs
        # this scheduler keeps registered while it leads (id = the task's name).
        self.jobs = list(jobs)
        self.tasks = {job.name: job.function for job in self.jobs}
        self.leases = {
            job.name: timedelta(seconds=job.lease_seconds) for job in self.jobs if job.lease_seconds is not None
        }
        self.on_ran = on_ran
        self.id = f"scheduler-{secrets.token_hex(4)}"
        self.lock = LeaderLock(
            engine, LOCK_NAME, ttl=timedelta(seconds=self.settings.lock_ttl_seconds), holder=holder or holder_id()
        )
        self.apscheduler: AsyncIOScheduler | None = None
        # Ticks done and registry jobs run while leading (for logs and tests).
        self.ticks = 0
        self.runs = 0
        self._run_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()
        self._lost = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def is_leader(self) -> bool:
        return self.apscheduler is not None and self.lock.held

    # WorkerService

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        _SERVICES[self.id] = self
        self._task = asyncio.create_task(self._run(), name="scheduler")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        _SERVICES.pop(self.id, None)

    async def wait_until_leading(self, timeout: float) -> bool:
        """For tests and tools: True once this service leads (within ``timeout`` seconds)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.is_leader:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    # Leading and standing by

    async def _run(self) -> None:
        announced = False
        try:
            while not self._stopping.is_set():
                if not await asyncio.to_thread(self.lock.try_acquire):
                    if not announced:
                        log.info("scheduler: another worker leads on this database; standing by")
                        announced = True
                    await self._sleep(self.settings.standby_seconds)
                    continue
                announced = False
                log.info("scheduler: leading (%s)", self.lock.holder)
                try:
                    await self._lead()
                except Exception:  # noqa: BLE001 - e.g. the database went away; lead again later
                    log.exception("scheduler: stopped leading on an error; retrying")
                    await asyncio.to_thread(self.lock.release)
                    await self._sleep(self.settings.standby_seconds)
        finally:
            await asyncio.to_thread(self.lock.release)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _lead(self) -> None:
        self._lost = asyncio.Event()
        await asyncio.to_thread(self._register_jobs)
        scheduler = AsyncIOScheduler(timezone=UTC)
        common = {
            "args": [self.id],
            "replace_existing": True,
            "coalesce": True,
            "max_instances": 1,
            # A late tick still runs (once): lateness of the real schedules is judged by the registry.
            "misfire_grace_time": None,
        }
        scheduler.add_job(
            "bot.scheduler:tick",
            "interval",
            seconds=self.settings.poll_seconds,
            id=TICK_JOB,
            next_run_time=datetime.now(UTC),
            **common,
        )
        scheduler.add_job(
            "bot.scheduler:check_leadership",
            "interval",
            seconds=max(self.settings.lock_ttl_seconds / 3, 0.05),
            id=LEADER_JOB,
            **common,
        )
        self.apscheduler = scheduler
        scheduler.start()
        try:
            stopping = asyncio.create_task(self._stopping.wait())
            lost = asyncio.create_task(self._lost.wait())
            await asyncio.wait({stopping, lost}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in (stopping, lost):
                waiter.cancel()
            if self._lost.is_set():
                log.warning("scheduler: lost the leader lock; standing by")
        finally:
            self.apscheduler = None
            scheduler.shutdown(wait=False)
            # Let a tick in progress finish before the lock is given up.
            await asyncio.to_thread(self._run_lock.acquire)
            self._run_lock.release()

    def _register_jobs(self) -> None:
        with UnitOfWork(self.session_factory) as uow:
            for job in self.jobs:
                if job.trigger is None:
                    continue
                schedule(
                    uow,
                    job.name,
                    job.name,
                    job.trigger,
                    args=job.args,
                    misfire_grace_seconds=job.misfire_grace_seconds,
                )

    # Called from APScheduler's executor threads

    def run_due_jobs(self) -> int:
        """Run every due registry job once; then set the wake-up for the next one. Returns runs."""
        with self._run_lock:
            if not self.lock.held:
                return 0
            outcomes = run_due(
                self.session_factory,
                tasks=self.tasks,
                lease=timedelta(seconds=self.settings.job_lease_seconds),
                leases=self.leases,
                config=self.config,
            )
            self.ticks += 1
            self.runs += len(outcomes)
            for outcome in outcomes:
                log.info(
                    "job %s (due %s): %s%s",
                    outcome.job_id,
                    outcome.fire_time.isoformat(),
                    outcome.status,
                    f" — {outcome.error}" if outcome.error else "",
                )
            self._set_wake()
        if outcomes and self.on_ran is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self.on_ran)
        return len(outcomes)

    def _set_wake(self) -> None:
        scheduler = self.apscheduler
        due = next_due_time(self.session_factory)
        if scheduler is None or due is None:
            return
        if due - utcnow() < timedelta(seconds=self.settings.poll_seconds):
            scheduler.add_job(
                "bot.scheduler:tick",
                "date",
                run_date=max(due, utcnow()),
                args=[self.id],
                id=WAKE_JOB,
                replace_existing=True,
                misfire_grace_time=None,
                coalesce=True,
                max_instances=1,
            )

    def check_leadership(self) -> None:
        if not self.lock.renew() and self._loop is not None:
            self._loop.call_soon_threadsafe(self._lost.set)

    def job_ids(self) -> list[str]:
        scheduler = self.apscheduler
        return sorted(job.id for job in scheduler.get_jobs()) if scheduler else []
