"""The event worker service: runs the event dispatcher (crm_core.event_delivery) in the worker.

Every ``poll_seconds`` (or at once after ``wake()``) it runs one dispatcher pass in a thread, and
runs another straight away while passes still deliver something. A pass that fails (database
away) is logged with a reference and tried again at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from crm_core.event_delivery import EventDispatcher, ListenerProvider, new_reference

log = logging.getLogger("chatcrm.events")


class EventWorkerService:
    """A ``WorkerService`` (bot.worker) delivering domain events to the listeners ``listeners_provider`` returns."""

    name = "event dispatcher"

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        listeners_provider: ListenerProvider,
        poll_seconds: float = 1.0,
        **dispatcher_options: Any,
    ):
        self.dispatcher = EventDispatcher(session_factory, listeners_provider, **dispatcher_options)
        self.poll_seconds = poll_seconds
        # Passes run so far (tests wait for these rather than for wall-clock time).
        self.passes = 0
        self.delivered = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="event-dispatcher")

    async def stop(self) -> None:
        if self._stopping is None or self._wake is None:
            return
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            # A pass in progress finishes its current listener call; the thread is not interrupted.
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        """Run a pass now (e.g. right after a request committed events); safe from any thread."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    async def _run(self) -> None:
        assert self._stopping is not None and self._wake is not None
        while not self._stopping.is_set():
            self._wake.clear()
            delivered = 0
            try:
                delivered = await asyncio.to_thread(self.dispatcher.run_once)
            except Exception:
                log.exception("events: a delivery pass failed; trying again shortly (ref %s)", new_reference())
            self.passes += 1
            self.delivered += delivered
            if delivered:
                continue  # there may be more waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
