"""Delivering committed domain events to listeners: at least once, in order, with retries.

A listener is a name and a callable taking an ``Event`` (crm_core.events); the dispatcher gets
them from a function called on every pass, so listeners installed later (plugins) are picked up.
Each listener has a cursor row (``event_listeners``) and is served on its own:

- Order. A listener receives events in id order, which is commit order (crm_core.events), so
  the events of one entity arrive in the order they happened. A listener that fails on an event
  gets nothing newer until that event succeeds or is given up on: strict order per listener.
- At least once. The cursor is advanced and committed after each successful call, so a crash
  delivers again at most the event that was in flight. Listeners must be idempotent (the
  event id is a good key).
- Retries. A listener that raises is logged with a short reference and tried again after 1 s,
  2 s, 4 s, ... (capped at 1 h); the other listeners carry on meanwhile. After ``max_attempts``
  failures the event is dead-lettered for that listener (an ``event_dead_letters`` row, an
  ERROR log line) and its cursor moves past it.
- New listeners. A listener seen for the first time starts after the newest event at that
  moment: installing a plugin does not replay the whole history to it.
- Several workers. A listener is served by one worker at a time: a worker claims its cursor with
  a conditional UPDATE (a lease with the worker's id and an expiry), and every advance is
  conditional on still holding it. A worker that dies loses the lease when it expires and
  another takes over from the cursor. No transaction is open while a listener runs, so a slow
  listener holds no database lock (on SQLite that would stop every writer) and may itself write.

``prune`` deletes old events every active listener has passed.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from crm_core.clock import utcnow
from crm_core.db import insert_or_ignore
from crm_core.events import Event
from crm_core.models.events import DomainEvent, EventCursor, EventDeadLetter

if TYPE_CHECKING:
    from crm_core.scheduling import JobRun

log = logging.getLogger("chatcrm.events")

Listener = Callable[[Event], None]
ListenerProvider = Callable[[], Mapping[str, Listener]]

DEFAULT_MAX_ATTEMPTS = 12  # 1 s doubling: the 12th failure comes about 34 minutes after the first
DEFAULT_BACKOFF = timedelta(seconds=1)
MAX_BACKOFF = timedelta(hours=1)
# Longer than any listener call should take; a worker that died is replaced after this long.
DEFAULT_LEASE = timedelta(minutes=5)
PRUNE_CHUNK = 5000


def new_reference() -> str:
    """A short reference to find a failure in the log (like the dispatcher's)."""
    return secrets.token_hex(4).upper()


def worker_id() -> str:
    return f"{os.getpid()}:{secrets.token_hex(6)}@{socket.gethostname()}"[:64]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]


class EventDispatcher:
    """``run_once`` hands every installed listener the events after its cursor (up to ``batch``)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        listeners: ListenerProvider,
        *,
        batch: int = 100,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        backoff: timedelta = DEFAULT_BACKOFF,
        max_backoff: timedelta = MAX_BACKOFF,
        lease: timedelta = DEFAULT_LEASE,
        owner: str | None = None,
    ):
        if batch < 1 or max_attempts < 1:
            raise ValueError("batch and max_attempts must be at least 1")
        self.session_factory = session_factory
        self.listeners = listeners
        self.batch = batch
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.lease = lease
        self.owner = (owner or worker_id())[:64]

    def run_once(self, now: datetime | None = None) -> int:
        """One pass over every listener; returns how many events were handed over successfully.

        ``now`` fixes the time the pass runs at (tests); by default the clock is read as it goes.
        """
        delivered = 0
        for name, listener in sorted(self.listeners().items()):
            delivered += self._serve(name, listener, now)
        return delivered

    def retry_delay(self, attempts: int) -> timedelta:
        """How long to wait after the ``attempts``-th failure: backoff doubling, capped."""
        return min(self.backoff * (2 ** min(attempts - 1, 40)), self.max_backoff)

    # One listener

    def _serve(self, name: str, listener: Listener, now: datetime | None) -> int:
        claimed = self._claim(name, now or utcnow())
        if claimed is None:
            return 0
        last_id, attempts = claimed
        delivered = 0
        for event in self._events_after(last_id):
            try:
                listener(event)
            except Exception as exc:  # noqa: BLE001 - a listener's failure is recorded, never spread
                self._failed(name, event, attempts + 1, exc, now or utcnow())
                return delivered
            if not self._advance(name, event.id, now or utcnow()):
                log.warning("events: listener %s was taken over by another worker; leaving it", name)
                return delivered
            delivered += 1
            attempts = 0
        self._release(name)
        return delivered

    def _claim(self, name: str, at: datetime) -> tuple[int, int] | None:
        """Take the listener's lease if it is free (or ours, or expired) and not backing off;
        returns (last delivered event id, failed attempts on the next one), or None."""
        with self.session_factory() as session, session.begin():
            cursor = session.get(EventCursor, name)
            if cursor is None:
                newest = session.scalar(sa.select(sa.func.max(DomainEvent.id))) or 0
                insert_or_ignore(
                    session,
                    EventCursor,
                    {
                        "name": name,
                        "last_event_id": newest,
                        "attempts": 0,
                        "created_at": at,
                        "seen_at": at,
                    },
                )
                log.info("events: new listener %s starts after event %s", name, newest)
            elif cursor.next_attempt_at is not None and cursor.next_attempt_at > at:
                return None
            else:
                newest = session.scalar(sa.select(sa.func.max(DomainEvent.id))) or 0
                if newest <= cursor.last_event_id:
                    return None  # nothing new: no write
            row = session.execute(
                sa.update(EventCursor)
                .execution_options(synchronize_session=False)
                .where(
                    EventCursor.name == name,
                    sa.or_(
                        EventCursor.claimed_by.is_(None),
                        EventCursor.claimed_by == self.owner,
                        EventCursor.lease_until < at,
                    ),
                    sa.or_(EventCursor.next_attempt_at.is_(None), EventCursor.next_attempt_at <= at),
                )
                .values(claimed_by=self.owner, lease_until=at + self.lease, seen_at=at)
                .returning(EventCursor.last_event_id, EventCursor.attempts)
            ).first()
        return None if row is None else (int(row.last_event_id), int(row.attempts))

    def _events_after(self, last_id: int) -> list[Event]:
        with self.session_factory() as session, session.begin():
            rows = session.scalars(
                sa.select(DomainEvent).where(DomainEvent.id > last_id).order_by(DomainEvent.id).limit(self.batch)
            )
            return [Event.from_row(row) for row in rows]

    def _mine(self) -> sa.ColumnElement[bool]:
        return EventCursor.claimed_by == self.owner

    def _advance(self, name: str, event_id: int, at: datetime) -> bool:
        with self.session_factory() as session, session.begin():
            moved = session.execute(
                sa.update(EventCursor)
                .execution_options(synchronize_session=False)
                .where(EventCursor.name == name, self._mine(), EventCursor.last_event_id < event_id)
                .values(
                    last_event_id=event_id,
                    attempts=0,
                    next_attempt_at=None,
                    last_error=None,
                    lease_until=at + self.lease,
                )
                .returning(EventCursor.name)
            ).first()
        return moved is not None

    def _release(self, name: str) -> None:
        with self.session_factory() as session, session.begin():
            session.execute(
                sa.update(EventCursor)
                .execution_options(synchronize_session=False)
                .where(EventCursor.name == name, self._mine())
                .values(claimed_by=None, lease_until=None)
            )

    def _failed(self, name: str, event: Event, attempts: int, exc: Exception, at: datetime) -> None:
        reference = new_reference()
        error = _describe(exc)
        with self.session_factory() as session, session.begin():
            if attempts >= self.max_attempts:
                insert_or_ignore(
                    session,
                    EventDeadLetter,
                    {
                        "listener": name,
                        "event_id": event.id,
                        "attempts": attempts,
                        "last_error": error,
                        "reference": reference,
                        "failed_at": at,
                    },
                )
                values: dict[str, Any] = {"last_event_id": event.id, "attempts": 0, "next_attempt_at": None}
            else:
                values = {"attempts": attempts, "next_attempt_at": at + self.retry_delay(attempts)}
            session.execute(
                sa.update(EventCursor)
                .execution_options(synchronize_session=False)
                .where(EventCursor.name == name, self._mine(), EventCursor.last_event_id < event.id)
                .values(**values, last_error=error, claimed_by=None, lease_until=None)
            )
        if attempts >= self.max_attempts:
            log.error(
                "events: listener %s gave up on event %s (%s) after %d attempts; dead-lettered (ref %s)",
                name,
                event.id,
                event.type,
                attempts,
                reference,
                exc_info=exc,
            )
        else:
            log.warning(
                "events: listener %s failed on event %s (%s), attempt %d of %d; retrying in %s (ref %s)",
                name,
                event.id,
                event.type,
                attempts,
                self.max_attempts,
                self.retry_delay(attempts),
                reference,
                exc_info=exc,
            )


def dead_letters(session: Session, listener: str | None = None) -> list[EventDeadLetter]:
    """The events listeners gave up on, oldest first."""
    statement = sa.select(EventDeadLetter).order_by(EventDeadLetter.id)
    if listener is not None:
        statement = statement.where(EventDeadLetter.listener == listener)
    return list(session.scalars(statement))


def prune(session_factory: sessionmaker[Session], keep_days: int, now: datetime | None = None) -> int:
    """Delete events older than ``keep_days`` that every active listener has passed; returns how many.

    Active: a listener a dispatcher served within ``keep_days`` (an uninstalled plugin's cursor
    must not keep every event forever). Dead-lettered events are kept until their dead letter is
    deleted, so they can still be inspected and replayed.
    """
    cutoff = (now or utcnow()) - timedelta(days=keep_days)
    with session_factory() as session, session.begin():
        horizon = session.scalar(sa.select(sa.func.min(EventCursor.last_event_id)).where(EventCursor.seen_at >= cutoff))
    deleted = 0
    while True:
        with session_factory() as session, session.begin():
            chosen = (
                sa.select(DomainEvent.id)
                .where(
                    DomainEvent.occurred_at < cutoff,
                    DomainEvent.id.not_in(sa.select(EventDeadLetter.event_id)),
                )
                .order_by(DomainEvent.id)
                .limit(PRUNE_CHUNK)
            )
            if horizon is not None:
                chosen = chosen.where(DomainEvent.id <= horizon)
            ids = list(session.scalars(chosen))
            if ids:
                session.execute(sa.delete(DomainEvent).where(DomainEvent.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < PRUNE_CHUNK:
            return deleted


def prune_task(run: JobRun) -> None:
    """Scheduled task: ``prune`` with ``keep_days`` from the job's arguments (default 30)."""
    deleted = prune(run.session_factory, int(run.args.get("keep_days", 30)))
    if deleted:
        log.info("events: pruned %d delivered events", deleted)
