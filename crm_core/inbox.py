"""Taking in platform deliveries exactly once, and losing none.

Two ways in, one guard:

- Durable (Telegram, Slack): ``receive`` writes the raw delivery (``pending``, claimed by the caller for
  a lease) and commits before the platform is answered; the caller then processes it, and the
  transaction of its effect calls ``complete``, which marks it ``done`` only if it is not done
  already. A repeat of a done delivery is answered and ignored; a process that died mid-way
  leaves the row pending, and once its lease expired ``claim_expired`` hands it to whoever
  recovers (web start-up, the worker's loop). A delivery whose processing failed is released
  with a backoff (``fail``); after ``max_attempts`` it is ``poisoned``: kept, never run again.
- In one go (console, and a Slack modal submission answered within its ack): ``complete`` in the
  effect's transaction inserts a ``done`` row.

Either way the unique (platform, key) and the conditional ``done`` let exactly one of any number
of copies take effect, even concurrent ones (PostgreSQL makes the second UPDATE wait for the
first transaction and then finds the row done; SQLite's writer lock serialises them). If the
effect rolls back, the row stays pending (or, inserted in one go, is not there).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from crm_core import db
from crm_core.clock import utcnow
from crm_core.models.inbox import InboundEvent, InboxStatus
from crm_core.scheduling import JobRun
from crm_core.uow import UnitOfWork

DEFAULT_LEASE = timedelta(seconds=30)
DEFAULT_MAX_ATTEMPTS = 5
MAX_BACKOFF = timedelta(minutes=2)


@dataclass(frozen=True)
class Claim:
    """A pending delivery the caller now processes (until ``lease_until``)."""

    platform: str
    key: str
    payload: str
    attempts: int


def _check(key: str) -> None:
    if len(key) > 200:
        # Truncating could make two different events collide; a key that long is a bug.
        raise ValueError(f"inbox keys are at most 200 characters, got {len(key)}")


def _row(platform: str, key: str) -> sa.ColumnElement[bool]:
    return sa.and_(InboundEvent.platform == platform, InboundEvent.key == key)


def receive(
    session_factory: sessionmaker[Session],
    platform: str,
    key: str,
    payload: str,
    *,
    lease: timedelta = DEFAULT_LEASE,
    now: datetime | None = None,
) -> Claim | None:
    """Record a delivery and commit. Returns the claim to process it, or None when there is
    nothing to do now: it is done (or poisoned), or someone else holds a live lease on it."""
    _check(key)
    now = now or utcnow()
    values = _pending_row(platform, key, payload, now, lease)
    # Urgent: the platform is waiting for its answer until this is committed (SQLite: goes first).
    with db.urgent(), session_factory() as session, session.begin():
        if db.insert_or_ignore(session, InboundEvent, values):
            return Claim(platform, key, payload, 1)
        # A repeat: take it over only if whoever had it is gone (the lease expired).
        return _take(session, _row(platform, key), now, lease)


def _pending_row(platform: str, key: str, payload: str, now: datetime, lease: timedelta) -> dict[str, object]:
    """A new delivery, claimed by whoever recorded it until ``lease`` runs out."""
    return {
        "platform": platform,
        "key": key,
        "received_at": now,
        "payload": payload,
        "status": InboxStatus.PENDING,
        "attempts": 1,
        "lease_until": now + lease,
    }


def receive_many(
    session_factory: sessionmaker[Session],
    platform: str,
    deliveries: list[tuple[str, str]],
    *,
    lease: timedelta = DEFAULT_LEASE,
    now: datetime | None = None,
) -> list[Claim | None]:
    """``receive`` for several (key, payload) deliveries in one transaction and one INSERT (the
    deliveries that arrived while the previous batch was written: under load an ack waits for one
    round trip, not for a queue of them); a result for each, in order. A key given twice is claimed
    once (the later copy gets None, as a repeat in hand)."""
    for key, _payload in deliveries:
        _check(key)
    if not deliveries:
        return []
    now = now or utcnow()
    first: dict[str, str] = {}
    for key, payload in deliveries:
        first.setdefault(key, payload)
    rows = [_pending_row(platform, key, payload, now, lease) for key, payload in first.items()]
    with db.urgent(), session_factory() as session, session.begin():
        statement = _receive_statement(session.get_bind().dialect.name)
        inserted = set(session.execute(statement, rows).scalars())
        # Repeats of deliveries kept before: taken over only if whoever had them is gone.
        taken = {key: _take(session, _row(platform, key), now, lease) for key in first if key not in inserted}
    results: list[Claim | None] = []
    for key, payload in deliveries:
        if first.pop(key, None) is None:
            results.append(None)  # a second copy in this batch
        elif key in inserted:
            results.append(Claim(platform, key, payload, 1))
        else:
            results.append(taken[key])
    return results


@functools.cache
def _receive_statement(dialect: str) -> sa.Insert:
    """``receive_many``'s INSERT, built once per dialect on the table and run with a list of rows:
    SQLAlchemy sends them as one multi-row INSERT ("insertmanyvalues") and returns the keys that
    went in. Built with the rows as literal values it was compiled again on every batch, which cost
    a web process about 3 % of its CPU under load (py-spy, issue 17)."""
    table = cast(sa.Table, InboundEvent.__table__)
    return db.insert_ignoring(dialect, table).returning(table.c.key)


def _take(session: Session, where: sa.ColumnElement[bool], now: datetime, lease: timedelta) -> Claim | None:
    e = InboundEvent
    row = session.execute(
        sa.update(e)
        .where(where, e.status == InboxStatus.PENDING, sa.or_(e.lease_until.is_(None), e.lease_until <= now))
        .values(attempts=e.attempts + 1, lease_until=now + lease)
        .returning(e.platform, e.key, e.payload, e.attempts)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None or row.payload is None:
        return None
    return Claim(row.platform, row.key, row.payload, row.attempts)


def renew(
    session_factory: sessionmaker[Session],
    claims: list[Claim],
    *,
    lease: timedelta = DEFAULT_LEASE,
    now: datetime | None = None,
) -> set[tuple[str, str]]:
    """Extend the leases of deliveries still being worked on under these claims: pending, with the
    lease not run out (so nobody can have taken them over) but ending within two thirds of a lease,
    and the claim's attempt count. Returns the (platform, key) of those renewed; the others were
    not due yet, are being finished right now, or were finished, failed or taken over."""
    now = now or utcnow()
    e = InboundEvent
    attempts = {(c.platform, c.key): c.attempts for c in claims}
    by_platform: dict[str, list[str]] = {}
    for platform, key in attempts:
        by_platform.setdefault(platform, []).append(key)
    renewed: set[tuple[str, str]] = set()
    with session_factory() as session, session.begin():
        for platform, keys in by_platform.items():
            # Keys by platform, in chunks: each an index seek (a row-value IN over thousands of
            # (platform, key, attempts) was a scan: seconds a call under load, holding row locks).
            for start in range(0, len(keys), 1000):
                due = (
                    sa.select(e.id)
                    .where(
                        e.platform == platform,
                        e.key.in_(keys[start : start + 1000]),
                        e.status == InboxStatus.PENDING,
                        e.lease_until > now,
                        # Renewed a third of a lease before it ends (the runner renews every third).
                        e.lease_until < now + lease * 2 / 3,
                    )
                    # A row locked now is being finished by its transaction: nothing to renew, and
                    # waiting for it would hold up the other rows' transactions (PostgreSQL).
                    .with_for_update(skip_locked=True)
                )
                rows = session.execute(
                    sa.update(e)
                    .where(e.id.in_(due.scalar_subquery()))
                    .values(lease_until=now + lease)
                    .returning(e.platform, e.key, e.attempts)
                    .execution_options(synchronize_session=False)
                ).all()
                renewed |= {(r.platform, r.key) for r in rows if attempts[(r.platform, r.key)] == r.attempts}
    return renewed


def complete(uow: UnitOfWork, platform: str, key: str) -> bool:
    """Mark the delivery done in the caller's transaction (the one carrying out its effect); False
    when it was done before (or poisoned): the caller must then do nothing."""
    _check(key)
    statement = _complete_statement(uow.session.get_bind().dialect.name)
    values = {"platform": platform, "key": key, "received_at": utcnow()}
    return uow.session.execute(statement, values).first() is not None


@functools.cache
def _complete_statement(dialect: str) -> sa.Insert:
    """``complete``'s one statement: insert the delivery done (the one-go path), or mark a pending row
    done; a row already done (or poisoned) is left alone and returns nothing. It used to be an
    UPDATE and then an INSERT: one round trip more for every Slack command. Built once per dialect
    on the table (not the ORM entity, whose bulk-insert path adds nothing here), its values bound
    at execution: every command marks its delivery done with it."""
    table = cast(sa.Table, InboundEvent.__table__)
    c = table.c
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(table)
        .values(
            platform=sa.bindparam("platform", type_=c.platform.type),
            key=sa.bindparam("key", type_=c.key.type),
            received_at=sa.bindparam("received_at", type_=c.received_at.type),
            status=InboxStatus.DONE,
            attempts=0,
        )
        .on_conflict_do_update(
            index_elements=[c.platform, c.key],
            set_={"status": InboxStatus.DONE, "lease_until": None, "payload": None, "last_error": None},
            where=c.status == InboxStatus.PENDING,
        )
        .returning(c.id)
    )


# The name of the one-go path before deliveries were kept: the same guard.
first_time = complete


def finish(session_factory: sessionmaker[Session], platform: str, key: str) -> bool:
    """Mark a delivery done that was processed without an effect of its own (ignored, or answered
    straight away); False when it was done already."""
    with UnitOfWork(session_factory) as uow:
        return complete(uow, platform, key)


def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt: 1 s, 2 s, 4 s, … at most MAX_BACKOFF."""
    return min(timedelta(seconds=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def fail(
    session_factory: sessionmaker[Session],
    claim: Claim,
    error: str,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    now: datetime | None = None,
) -> InboxStatus | None:
    """An attempt failed: pending again after a backoff, or ``poisoned`` after the last attempt.
    Returns the new status (None when the row is no longer pending: someone finished it)."""
    now = now or utcnow()
    e = InboundEvent
    poisoned = claim.attempts >= max_attempts
    values: dict = {"last_error": error[:500]}
    if poisoned:
        values.update(status=InboxStatus.POISONED, lease_until=None)
    else:
        values.update(lease_until=now + backoff(claim.attempts))
    with session_factory() as session, session.begin():
        changed = session.execute(
            sa.update(e)
            .where(_row(claim.platform, claim.key), e.status == InboxStatus.PENDING)
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]  # DML returns a CursorResult
    if not changed:
        return None
    return InboxStatus.POISONED if poisoned else InboxStatus.PENDING


@dataclass(frozen=True)
class Expired:
    """What ``claim_expired`` found: deliveries to process again, and ones that used up their attempts."""

    claims: list[Claim]
    poisoned: list[Claim]


def claim_expired(
    session_factory: sessionmaker[Session],
    platforms: list[str],
    *,
    lease: timedelta = DEFAULT_LEASE,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    limit: int = 50,
    now: datetime | None = None,
) -> Expired:
    """Claim pending deliveries of ``platforms`` whose lease expired (their process died or their
    last attempt failed), oldest first. One that had ``max_attempts`` already (it may be what
    kills the process) is poisoned instead."""
    now = now or utcnow()
    e = InboundEvent
    found = Expired([], [])
    if not platforms:
        return found
    with session_factory() as session, session.begin():
        candidates = session.execute(
            sa.select(e.id, e.attempts)
            .where(e.platform.in_(platforms), e.status == InboxStatus.PENDING, e.lease_until <= now)
            .order_by(e.id)
            .limit(limit)
        ).all()
        for row_id, attempts in candidates:
            if attempts >= max_attempts:
                row = session.execute(
                    sa.update(e)
                    .where(e.id == row_id, e.status == InboxStatus.PENDING, e.lease_until <= now)
                    .values(status=InboxStatus.POISONED, lease_until=None)
                    .returning(e.platform, e.key, e.payload, e.attempts)
                    .execution_options(synchronize_session=False)
                ).first()
                if row is not None:
                    found.poisoned.append(Claim(row.platform, row.key, row.payload or "", row.attempts))
                continue
            claim = _take(session, e.id == row_id, now, lease)
            if claim is not None:
                found.claims.append(claim)
    return found


def seen(uow: UnitOfWork, platform: str, key: str) -> bool:
    """Whether the event was taken in already (a read; ``complete`` is what claims an event)."""
    statement = sa.select(InboundEvent.id).where(_row(platform, key))
    return uow.session.scalar(statement) is not None


def prune(uow: UnitOfWork, older_than: datetime) -> int:
    """Forget finished deliveries received before ``older_than`` (platforms stop re-delivering after
    a day or so); pending ones stay until they are processed, poisoned ones for inspection."""
    result = uow.session.execute(
        sa.delete(InboundEvent).where(InboundEvent.received_at < older_than, InboundEvent.status == InboxStatus.DONE)
    )
    return result.rowcount  # type: ignore[attr-defined]  # DML returns a CursorResult


# Slack retries an event for about an hour and Telegram re-sends an update for a day at most.
RETENTION = timedelta(days=2)


def prune_task(run: JobRun) -> None:
    """Scheduled task (hourly): forget keys older than any platform's retry window."""
    with run.uow() as uow:
        prune(uow, utcnow() - timedelta(seconds=int(run.args.get("keep_seconds", RETENTION.total_seconds()))))
