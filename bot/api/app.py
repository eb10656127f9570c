"""Builds the API's FastAPI app: the gate in front, problem+json errors, and the resource routers."""

from __future__ import annotations

from fastapi import FastAPI

from bot.api import customers, deals, problems, tickets, webhooks
from bot.api.config import ApiConfig
from bot.api.gate import Gate
from bot.bootstrap import App

PREFIX = "/api/v1"
DESCRIPTION = """\
The chatcrm REST API: what a rep does in chat, over HTTP, within the same permissions.

Authenticate with a personal access token from chat (`/token new <name> [scopes]`), sent as
`Authorization: Bearer crm_…`. Errors are `application/problem+json` (RFC 9457). Lists are paged
with an opaque cursor (`next`, and a `Link` header). Single resources carry an `ETag`; send it as
`If-Match` on PATCH to get 412 instead of overwriting someone else's change. A POST with an
`Idempotency-Key` header may be retried safely.
"""


def build_api(app: App, config: ApiConfig | None = None) -> FastAPI:
    config = config or ApiConfig.from_settings(app.settings)
    api = FastAPI(
        title="chatcrm API",
        version="1",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    api.state.chatcrm = app
    problems.install(api)
    for router in (customers.router, deals.router, tickets.router, webhooks.router):
        api.include_router(router)
    api.add_middleware(Gate, app=app, config=config)
    return api
