"""The unit of work: one transaction per inbound request or job.

``with UnitOfWork(factory, actor) as uow:`` commits when the block ends normally and rolls back
when it raises, so a failed command never leaves half-written data.
"""

from __future__ import annotations

import contextlib
from types import TracebackType

from sqlalchemy.orm import Session, sessionmaker

from crm_core import db
from crm_core.actor import SYSTEM, Actor


class UnitOfWork:
    session: Session

    def __init__(self, session_factory: sessionmaker[Session], actor: Actor = SYSTEM, *, read_only: bool = False):
        """``read_only``: the block only reads (``crm_core.db.reading``: on SQLite it neither takes nor
        waits for the write lock, and a write in it fails)."""
        self._session_factory = session_factory
        self.actor = actor
        self.read_only = read_only
        self._reading: contextlib.AbstractContextManager[None] | None = None

    def __enter__(self) -> UnitOfWork:
        # Every unit of work says which it is, so a writing one inside a reading one writes.
        self._reading = db.reading(self.read_only)
        self._reading.__enter__()
        self.session = self._session_factory()
        # Read by the audit listener (crm_core.audit) for every flush in this session.
        self.session.info["actor"] = self.actor
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None:
                self.session.commit()
            else:
                self.session.rollback()
        finally:
            self.session.close()
            if self._reading is not None:
                self._reading.__exit__(None, None, None)
                self._reading = None

    def act_as(self, actor: Actor) -> None:
        """Name the actor once it is known (the dispatcher resolves it inside the transaction)."""
        self.actor = actor
        self.session.info["actor"] = actor

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

    def flush(self) -> None:
        self.session.flush()
