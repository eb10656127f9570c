"""Running our own long-lived parts in tests: an ASGI app under real uvicorn on an ephemeral port,
and the worker's services on an event loop of their own, both in background threads.

Reusable by every platform's tests: ``with serve_asgi(app) as base_url:`` then talk HTTP to it;
``with run_worker(services):`` while the services poll or consume.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Sequence

import uvicorn

from bot.worker import WorkerService, run_services


class PromptServer(uvicorn.Server):
    """uvicorn's server, stopping as soon as it can: it notices ``should_exit`` within 10 ms instead
    of its 100 ms tick, and its shutdown waits for open connections only while there are any, where
    uvicorn pauses 0.1 s in any case. Hundreds of tests stop a server: 0.15 s each, before."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's Server.shutdown (as of 0.55), its fixed pause replaced by polling what it waits for.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        while (self.server_state.connections or self.server_state.tasks) and not self.force_exit:
            await asyncio.sleep(0.01)
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            # on_tick's own bookkeeping (date header, request limits) runs every 10th wake-up, as often as before.
            for _ in range(10):
                await asyncio.sleep(0.01)
                if self.should_exit:
                    return
            counter = (counter + 1) % 864000


@contextlib.contextmanager
def serve_asgi(asgi_app, startup_timeout: float = 20.0) -> Iterator[str]:
    """Serve ``asgi_app`` (lifespan included) on 127.0.0.1; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: without it every response waits ~40 ms for a delayed ACK
    # (uvicorn sets it itself only on sockets it binds; production binds its own).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(asgi_app, lifespan="on", log_config=None, log_level="warning")
    server = PromptServer(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            failure.append(exc)

    thread = threading.Thread(target=run, name="uvicorn-under-test", daemon=True)
    thread.start()
    # uvicorn offers no event for "started"; look at its flag until it is up, has died, or took too long.
    deadline = time.monotonic() + startup_timeout
    while thread.is_alive() and not server.started and time.monotonic() < deadline:
        thread.join(0.01)
    if not server.started:
        thread.join(startup_timeout)
        sock.close()
        raise RuntimeError(f"the app did not start under uvicorn: {failure or 'lifespan startup failed'}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(startup_timeout)
        sock.close()


@contextlib.contextmanager
def run_worker(services: Sequence[WorkerService], timeout: float = 20.0) -> Iterator[None]:
    """Run ``bot.worker.run_services`` in a thread until the block ends; start-up errors are raised."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started = threading.Event()
    failure: list[BaseException] = []

    class _Ready:
        name = "test readiness"

        async def start(self) -> None:
            started.set()

        async def stop(self) -> None:
            pass

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(run_services([*services, _Ready()], stop))
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            failure.append(exc)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="worker-under-test", daemon=True)
    thread.start()
    started.wait(timeout)
    if failure:
        thread.join(timeout)
        raise RuntimeError("the worker did not start") from failure[0]
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
