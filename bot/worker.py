"""The long-running side of chatcrm (``chatcrm worker``): Socket Mode, polling, scheduler, sender.

Each part is a ``WorkerService`` with async start/stop; the worker starts them all, waits for
SIGINT/SIGTERM, and stops them in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Protocol

log = logging.getLogger("chatcrm.worker")


class WorkerService(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def run_services(services: Sequence[WorkerService], stop_event: asyncio.Event | None = None) -> None:
    stop_event = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop_event.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass
    started: list[WorkerService] = []
    try:
        for service in services:
            await service.start()
            started.append(service)
            log.info("started %s", service.name)
        await stop_event.wait()
    finally:
        for service in reversed(started):
            try:
                await service.stop()
                log.info("stopped %s", service.name)
            except Exception:
                log.exception("stopping %s failed", service.name)
