"""Running worker services (scheduler, outbox sender) from synchronous tests: in a thread with its
own event loop, stopped the way SIGTERM stops ``chatcrm worker``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from bot.worker import WorkerService, run_services

T = TypeVar("T")


def wait_until(predicate, timeout: float = 15.0, longest_pause: float = 0.1) -> bool:
    """Poll ``predicate`` (real time) until it holds or ``timeout`` seconds pass; its last answer.

    The pauses between polls grow from 10 ms to ``longest_pause``: a quick condition is seen at
    once, and a long wait does not compete with the code under test many times a second (most
    predicates query the database, and on SQLite every transaction takes the one write lock)."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(pause)
        pause = min(pause * 1.5, longest_pause)
    return bool(predicate())


class WorkerThread:
    def __init__(self, services: Sequence[WorkerService]):
        self.services = list(services)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="test-worker", daemon=True)

    def _serve(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await run_services(self.services, self._stop)

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self._error = exc
            self._ready.set()

    def start(self) -> WorkerThread:
        self._thread.start()
        self._ready.wait(10)
        return self

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self, timeout: float = 20.0) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the worker did not stop"
        if self._error is not None:
            raise self._error

    def __enter__(self) -> WorkerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# A spawned `chatcrm web`/`worker` on PostgreSQL does not start without a secret key, and it must be the
# key of the test's own app, which encrypted the data (tests.support.TEST_SECRET_KEY).
SERVER_SECRET = {"CHATCRM_SECRET_KEY": "a-test-secret-key-for-spawned-servers"}

# Settings for a worker in tests: quick polls, short leases and locks, generous rate limits.
FAST_WORKER_ENV = {
    "CHATCRM_SCHEDULER_POLL": "0.1",
    "CHATCRM_SCHEDULER_LOCK_TTL": "1",
    "CHATCRM_SCHEDULER_STANDBY": "0.1",
    "CHATCRM_OUTBOX_POLL": "0.05",
    "CHATCRM_OUTBOX_LEASE": "5",
    "CHATCRM_OUTBOX_BACKOFF": "0.05",
    "CHATCRM_OUTBOX_STANDBY": "0.1",
    "CHATCRM_OUTBOX_LOCK_TTL": "1",
    "CHATCRM_RATE_TELEGRAM": "overall=1000/s chat=100/s group=100/s",
    "CHATCRM_RATE_SLACK": "overall=1000/s chat=100/s",
}


def chat_worker(app, senders, **env: str) -> WorkerThread:
    """``chatcrm worker``'s services (bot.platforms.worker_services) for ``app`` with the given
    platform senders and FAST_WORKER_ENV (plus ``env``) as its settings."""
    from dataclasses import replace

    from bot.platforms import worker_services

    fast = replace(app, settings=replace(app.settings, extra={**app.settings.extra, **FAST_WORKER_ENV, **env}))
    return WorkerThread(worker_services(fast, senders))


def scheduler_of(worker: WorkerThread):
    from bot.scheduler import SchedulerService

    return next(s for s in worker.services if isinstance(s, SchedulerService))
