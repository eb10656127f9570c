"""Builds the API's FastAPI app: the gate in front, problem+json errors, and the resource routers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from bot.api import (
    admin,
    campaigns,
    companies,
    customers,
    deals,
    followups,
    insights,
    orders,
    problems,
    products,
    segments,
    tickets,
    webhook_events,
    webhooks,
)
from bot.api.config import ApiConfig
from bot.api.gate import Gate
from bot.api.json_body import add_body_schemas
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
    for router in (
        customers.router,
        companies.router,
        deals.router,
        tickets.router,
        followups.router,
        products.router,
        orders.router,
        segments.router,
        campaigns.router,
        insights.router,
        admin.router,
        webhooks.router,
    ):
        api.include_router(router)
    webhook_events.document(api)
    _document_problems(api)
    api.add_middleware(Gate, app=app, config=config, bulk_paths=frozenset({orders.BULK_PATH}))
    return api


def _document_problems(api: FastAPI) -> None:
    """The OpenAPI document declares the problem answers (built once, on first request)."""
    plain = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = problems.document_problems(add_body_schemas(plain()))
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
