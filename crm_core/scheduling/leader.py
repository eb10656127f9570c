"""Leader election: exactly one process per database runs the scheduler (or the SQLite sender).

PostgreSQL: a session-level advisory lock on a connection kept open for as long as we lead.
When the process dies, its connection closes and the server releases the lock at once, so a
standby's next ``try_acquire`` succeeds.

SQLite: a row in ``scheduler_locks`` with an expiry that the leader renews (``renew``) well
before it runs out. A leader that stops renewing (killed, hung) loses the row when it expires;
a standby then takes it over. The holder id is random per process, so a restarted process is a
new holder and never mistakes an old lease for its own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from crm_core.clock import utcnow
from crm_core.models import SchedulerLock

log = logging.getLogger("chatcrm.leader")

DEFAULT_TTL = timedelta(seconds=30)


def holder_id() -> str:
    """This process, for humans (host and pid) and unique (a random suffix)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def _reason(exc: sa.exc.SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).strip().splitlines()[0]


def advisory_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` from a lock name."""
    return int.from_bytes(hashlib.sha256(f"chatcrm:{name}".encode()).digest()[:8], "big", signed=True)


class LeaderLock:
    """``try_acquire`` until it returns True, then ``renew`` periodically; ``release`` when done."""

    def __init__(self, engine: Engine, name: str, *, ttl: timedelta = DEFAULT_TTL, holder: str | None = None):
        self.engine = engine
        self.name = name
        self.ttl = ttl
        self.holder = holder or holder_id()
        self.held = False
        self._connection: Connection | None = None

    @property
    def uses_advisory_lock(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def try_acquire(self) -> bool:
        if self.held:
            return self.renew()
        try:
            self.held = self._acquire_advisory() if self.uses_advisory_lock else self._acquire_row()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("could not try the %s lock: %s", self.name, _reason(exc))
            self._drop_connection()
            self.held = False
        return self.held

    def renew(self) -> bool:
        """Still the leader? (SQLite: extends the lease.) False means leadership is lost."""
        if not self.held:
            return False
        try:
            self.held = self._check_advisory() if self.uses_advisory_lock else self._renew_row()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("lost the %s lock: %s", self.name, _reason(exc))
            self._drop_connection()
            self.held = False
        return self.held

    def release(self) -> None:
        if not self.held:
            self._drop_connection()
            return
        self.held = False
        try:
            if self.uses_advisory_lock:
                assert self._connection is not None
                self._connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": advisory_key(self.name)})
            else:
                with self.engine.begin() as connection:
                    connection.execute(
                        sa.delete(SchedulerLock).where(
                            SchedulerLock.name == self.name, SchedulerLock.holder == self.holder
                        )
                    )
        except sa.exc.SQLAlchemyError as exc:
            log.warning(
                "releasing the %s lock failed (it goes with its connection or expires): %s", self.name, _reason(exc)
            )
        finally:
            self._drop_connection()

    # PostgreSQL

    def _acquire_advisory(self) -> bool:
        if self._connection is None:
            self._connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        got = self._connection.execute(
            sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": advisory_key(self.name)}
        ).scalar()
        if not got:
            self._drop_connection()
        return bool(got)

    def _check_advisory(self) -> bool:
        assert self._connection is not None
        # pg_locks shows a bigint key as two unsigned 32-bit halves.
        key = advisory_key(self.name) & 0xFFFFFFFFFFFFFFFF
        return bool(
            self._connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                    "AND granted AND objsubid = 1 AND classid = CAST(:high AS oid) AND objid = CAST(:low AS oid)"
                ),
                {"high": key >> 32, "low": key & 0xFFFFFFFF},
            ).scalar()
        )

    def _drop_connection(self) -> None:
        if self._connection is not None:
            try:
                # Invalidate rather than return it to the pool: closing the session is what
                # guarantees the server forgets a session-level advisory lock.
                self._connection.invalidate()
                self._connection.close()
            except sa.exc.SQLAlchemyError:
                pass
            self._connection = None

    # SQLite (and any database without advisory locks)

    def _acquire_row(self) -> bool:
        now = utcnow()
        with self.engine.begin() as connection:
            row = connection.execute(
                sa.select(SchedulerLock.holder, SchedulerLock.expires_at).where(SchedulerLock.name == self.name)
            ).first()
            if row is None:
                connection.execute(
                    sa.insert(SchedulerLock).values(
                        name=self.name, holder=self.holder, acquired_at=now, heartbeat_at=now, expires_at=now + self.ttl
                    )
                )
                return True
            holder, expires_at = row
            if holder != self.holder and expires_at > now:
                return False
            if holder != self.holder:
                log.warning("taking over the %s lock from %s (expired %s)", self.name, holder, expires_at.isoformat())
            connection.execute(
                sa.update(SchedulerLock)
                .where(SchedulerLock.name == self.name)
                .values(holder=self.holder, acquired_at=now, heartbeat_at=now, expires_at=now + self.ttl)
            )
            return True

    def _renew_row(self) -> bool:
        now = utcnow()
        with self.engine.begin() as connection:
            renewed = connection.execute(
                sa.update(SchedulerLock)
                .where(SchedulerLock.name == self.name, SchedulerLock.holder == self.holder)
                .values(heartbeat_at=now, expires_at=now + self.ttl)
            ).rowcount
        return renewed == 1
