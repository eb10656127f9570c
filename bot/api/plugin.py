"""The REST API as a built-in plugin: it contributes its routes through ``register_routes``, the hook
any plugin uses, so ``chatcrm web`` serves it beside the platforms' webhooks.

- ``/api/v1/…``: the API (``bot.api.app``), its OpenAPI 3.1 document at ``/api/v1/openapi.json``;
- ``/api/docs``: Swagger UI from files shipped inside the ``fastapi-offline`` wheel (no CDN: the
  server may have no internet, and the docs page must not call out to one).

FastAPI, pydantic and the API's models are imported when the routes are built, not when the plugin
is loaded: every process that builds the app loads this plugin (``chatcrm worker``, ``console``,
``import``, ``demo`` …), and only ``chatcrm web`` serves routes. Importing them cost about half a
second of CPU at each start of those commands.
"""

from __future__ import annotations

import importlib.resources
from typing import TYPE_CHECKING

from bot.hookspecs import hookimpl

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import HTMLResponse
    from starlette.routing import BaseRoute

    from bot.bootstrap import App

DOCS = "/api/docs"


def _assets() -> str:
    return str(importlib.resources.files("fastapi_offline") / "static")


async def docs_page(_request: Request) -> HTMLResponse:
    from fastapi.openapi.docs import get_swagger_ui_html

    from bot.api.app import PREFIX

    return get_swagger_ui_html(
        openapi_url=f"{PREFIX}/openapi.json",
        title="chatcrm API",
        swagger_js_url=f"{DOCS}/static/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS}/static/swagger-ui.css",
        swagger_favicon_url=f"{DOCS}/static/favicon.png",
    )


@hookimpl
def register_routes(app: App) -> list[BaseRoute]:
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from bot.api.app import PREFIX, build_api

    return [
        Mount(PREFIX, app=build_api(app)),
        Route(DOCS, docs_page, methods=["GET"]),
        Mount(f"{DOCS}/static", app=StaticFiles(directory=_assets()), name="api-docs-static"),
    ]
