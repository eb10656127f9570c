"""Per-job leases of the scheduler: a run killed with its worker is retried after its task's own
lease (a minute by default, not ten), and a long run whose heartbeat renews the lease is not taken
by a second runner. The clock is time-machine's; only the heartbeat thread's cadence is real time
(a third of the lease), so the renewal test uses a lease of a few hundredths of a second."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from bot.plugin_types import JobDefinition
from bot.scheduler import SchedulerService, SchedulerSettings
from crm_core import outbox
from crm_core.models import OutboxMessage, ScheduledJob, chat_ids
from crm_core.scheduling import JobRun, Once, run_due, schedule
from tests.fakes.worker import wait_until

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)
# What the tasks below need from the test running them.
_state: dict = {}


def note(run: JobRun) -> None:
    with run.uow() as uow:
        outbox.enqueue(
            uow,
            idempotency_key=f"{run.job_id}|{secrets.token_hex(4)}",
            kind="test-run",
            platform="console",
            conversation=run.job_id,
            payload={"formatted_text": "ran"},
        )


def dies_the_first_time(run: JobRun) -> None:
    """The worker is killed in the middle of the first run (a BaseException: nothing records it)."""
    if not _state.get("died"):
        _state["died"] = True
        raise SystemExit("killed")
    note(run)


def runs_long(run: JobRun) -> None:
    """Runs for three of its leases; each time, once the heartbeat has renewed the lease, a second
    runner looks for due jobs and must not take this one."""
    traveller, second, session_factory = _state["traveller"], _state["second"], _state["session_factory"]
    for _ in range(3):
        traveller.shift(timedelta(seconds=10))  # far past the 0.06 s lease
        assert wait_until(lambda: lease_until(session_factory, run.job_id) > datetime.now(UTC), timeout=10)
        _state.setdefault("second_ran", []).extend(run_due(session_factory, tasks={"test.runs_long": second}))
    note(run)


def lease_until(session_factory, job_id: str) -> datetime:
    with session_factory() as session:
        value = session.scalar(sa.select(ScheduledJob.lease_until).where(ScheduledJob.id == job_id))
    assert value is not None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def runs_of(app, job_id: str) -> int:
    with app.uow() as uow:
        return uow.session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .where(chat_ids.is_chat(uow.session, OutboxMessage.conversation_index, job_id))
        )


@pytest.fixture(autouse=True)
def _fresh_state():
    _state.clear()
    yield
    _state.clear()


def _service(app, jobs) -> SchedulerService:
    return SchedulerService(app.engine, app.session_factory, SchedulerSettings(lock_ttl_seconds=600), jobs=jobs)


def test_a_job_killed_mid_run_is_retried_after_its_own_lease_not_ten_minutes(app):
    jobs = [JobDefinition("test.dies_the_first_time", dies_the_first_time, lease_seconds=45)]
    first, second = _service(app, jobs), _service(app, jobs)
    with time_machine.travel(T0, tick=False) as traveller:
        with app.uow() as uow:
            schedule(uow, "fragile", "test.dies_the_first_time", Once(T0))
        assert first.lock.try_acquire()
        with pytest.raises(SystemExit):
            first.run_due_jobs()
        # The dead worker's lock goes with it (its PostgreSQL connection; its SQLite row, by expiry).
        first.lock.release()
        assert second.lock.try_acquire()
        try:
            assert lease_until(app.session_factory, "fragile") == T0 + timedelta(seconds=45)
            traveller.move_to(T0 + timedelta(seconds=44))
            assert second.run_due_jobs() == 0  # still the dead runner's
            traveller.move_to(T0 + timedelta(seconds=46))
            assert second.run_due_jobs() == 1
        finally:
            second.lock.release()
    assert runs_of(app, "fragile") == 1


def test_a_task_without_a_declared_lease_gets_a_minute(app):
    service = _service(app, [JobDefinition("test.dies_the_first_time", dies_the_first_time)])
    with time_machine.travel(T0, tick=False):
        with app.uow() as uow:
            schedule(uow, "plain", "test.dies_the_first_time", Once(T0))
        assert service.lock.try_acquire()
        try:
            with pytest.raises(SystemExit):
                service.run_due_jobs()
            assert lease_until(app.session_factory, "plain") == T0 + timedelta(seconds=60)
        finally:
            service.lock.release()


def test_a_long_run_whose_lease_is_renewed_is_not_taken_by_a_second_runner(app):
    second_runs = []

    def second(run: JobRun) -> None:
        second_runs.append(run.job_id)

    with time_machine.travel(T0, tick=False) as traveller:
        _state.update(traveller=traveller, second=second, session_factory=app.session_factory)
        with app.uow() as uow:
            schedule(uow, "long", "test.runs_long", Once(T0))
        outcomes = run_due(
            app.session_factory,
            tasks={"test.runs_long": runs_long},
            leases={"test.runs_long": timedelta(seconds=0.06)},
        )
    assert [o.status for o in outcomes] == ["ok"]
    assert second_runs == [] and _state["second_ran"] == []
    assert runs_of(app, "long") == 1
    with app.uow() as uow:
        # Done: the lease is given up (the one-off is gone).
        assert uow.session.get(ScheduledJob, "long") is None


def test_the_heartbeat_stops_when_another_runner_took_the_job_over(app):
    """A runner frozen past its lease (not renewed) loses the job; its heartbeat does not take it back."""
    from crm_core.scheduling.heartbeat import LeaseHeartbeat

    with time_machine.travel(T0, tick=False):
        with app.uow() as uow:
            schedule(uow, "taken", "test.note", Once(T0))
            uow.session.execute(sa.update(ScheduledJob).values(lease_until=T0 + timedelta(seconds=60)))
        heartbeat = LeaseHeartbeat(app.session_factory, "taken", T0 + timedelta(seconds=60), timedelta(seconds=60))
        assert heartbeat.renew() is True
        # Another runner's claim replaced our lease.
        with app.uow() as uow:
            uow.session.execute(sa.update(ScheduledJob).values(lease_until=T0 + timedelta(seconds=500)))
        assert heartbeat.renew() is False
        assert lease_until(app.session_factory, "taken") == T0 + timedelta(seconds=500)


def test_a_job_definition_refuses_a_lease_that_is_not_positive():
    with pytest.raises(ValueError, match="lease_seconds"):
        JobDefinition("test.note", note, lease_seconds=0)
