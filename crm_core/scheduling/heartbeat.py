"""Keeping a running job's lease alive: a thread that renews it every third of the lease.

A job's lease is short (about its expected run time, 60 s unless its task declares otherwise), so
a runner killed mid-job leaves a lease that runs out within a minute and another runner retries
the run. A job that simply takes longer than its lease keeps it: while the task runs, this
heartbeat moves ``lease_until`` forward every ``lease / 3``. The renewal is a compare-and-set on
the lease it wrote last: once another runner has taken the job over (our lease ran out, say the
process was frozen), the heartbeat stops instead of fighting over the row.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from crm_core.clock import utcnow
from crm_core.models import ScheduledJob

log = logging.getLogger("chatcrm.scheduler")


class LeaseHeartbeat:
    """Renews the lease of ``job_id`` (claimed until ``until``) in a thread while the job runs."""

    def __init__(self, session_factory: sessionmaker[Session], job_id: str, until: datetime, lease: timedelta):
        self.session_factory = session_factory
        self.job_id = job_id
        self.until = until
        self.lease = lease
        self.beats = 0
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease:{job_id}", daemon=True)

    def __enter__(self) -> LeaseHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def renew(self) -> bool:
        """Move the lease to now + lease, if it is still ours; False once it is not."""
        until = utcnow() + self.lease
        job = ScheduledJob
        with self.session_factory() as session, session.begin():
            renewed = session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
                sa.update(job)
                .where(job.id == self.job_id, job.lease_until == self.until)
                .values(lease_until=until)
                .execution_options(synchronize_session=False)
            ).rowcount
        if renewed != 1:
            return False
        self.until = until
        self.beats += 1
        return True

    def _run(self) -> None:
        interval = self.lease.total_seconds() / 3
        while not self._stop.wait(interval):
            try:
                if not self.renew():
                    self.lost = True
                    log.warning("job %s: its lease was taken over by another runner", self.job_id)
                    return
            except sa.exc.SQLAlchemyError as exc:
                # A database hiccup: the lease has two more thirds to go; try again at the next beat.
                log.warning("job %s: renewing its lease failed: %s", self.job_id, str(exc).splitlines()[0])
