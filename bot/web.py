"""The HTTP side of chatcrm (``chatcrm web``): one ASGI app serving every configured platform.

Each configured platform contributes a ``WebMount`` (its routes plus start/stop hooks), and any
plugin may add routes through the ``register_routes`` hook; this module adds ``GET /healthz``.
Every route runs inside ``bot.web_guard.WebGuard`` (a logged 500 with a reference for an error a
route lets escape).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from bot.bootstrap import App
from bot.web_guard import WebGuard


class WebMount(Protocol):
    name: str

    @property
    def routes(self) -> Sequence[BaseRoute]: ...

    async def startup(self) -> None: ...

    async def shutdown(self) -> None: ...


def build_web_app(
    app: App,
    mounts: Sequence[WebMount],
    extra_routes: Sequence[BaseRoute] | None = None,
    *,
    freeze_heap: bool = False,
) -> Starlette:
    """The ASGI app: /healthz, the platforms' mounts, and the plugins' routes (``register_routes``).

    ``freeze_heap`` (``chatcrm web``, which serves until it stops): once started, what exists is kept
    out of the garbage collector's full passes. Not for an app among others in a long-lived process
    (the tests start hundreds): its full collection at each start walks that whole process (0.1 s).
    """

    async def healthz(_request: Request) -> JSONResponse:
        try:
            with app.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.DBAPIError:
            return JSONResponse({"status": "error", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "platforms": [m.name for m in mounts]})

    @contextlib.asynccontextmanager
    async def lifespan(_starlette: Starlette) -> AsyncIterator[None]:
        started: list[WebMount] = []
        try:
            for mount in mounts:
                await mount.startup()
                started.append(mount)
            # What exists now (modules, the app, SQLAlchemy's and FastAPI's machinery) lives as long as
            # the server: kept out of the garbage collector's full passes, which a request allocating
            # many objects (a bulk order request: 10,000 lines) set off and which walked all of it
            # (about 60 ms of the 140 ms of CPU such a request cost).
            if freeze_heap:
                gc.collect()
                gc.freeze()
            yield
        finally:
            if freeze_heap:
                gc.unfreeze()
            for mount in reversed(started):
                await mount.shutdown()

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
    for mount in mounts:
        routes.extend(mount.routes)
    routes.extend(app.plugins.routes(app) if extra_routes is None else extra_routes)
    web = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(WebGuard)])
    # Plugin routes reach the composition root (units of work, settings) through the request.
    web.state.chatcrm = app
    return web
