"""``/webhooks``: outgoing webhook endpoints for admins (list, create, delete, send a test), through
``crm_core.webhooks`` as ``/webhook`` in chat does. The signing secret is in the answer to
the POST that creates an endpoint, and nowhere else afterwards."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from bot.api.auth import Principal, app_of, need, unit_of_work
from bot.roles import Permission
from crm_core import webhooks
from crm_core.models import WebhookAttempt, WebhookEndpoint
from crm_core.services import users
from crm_core.uow import UnitOfWork

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    owner_id: int | None
    enabled: bool
    disabled_reason: str | None
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="whsec_… — the signing secret, shown in this answer only")


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="https:// and a public address")
    events: list[str] = Field(min_length=1, max_length=50, description='Event-type patterns: "deal.won", "ticket.*"')


class AttemptOut(BaseModel):
    message_id: str
    event_type: str
    attempt: int
    status_code: int | None
    latency_ms: int
    error: str | None
    attempted_at: datetime


class Queued(BaseModel):
    message_id: str


def render(endpoint: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events),
        owner_id=endpoint.owner_id,
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        created_at=endpoint.created_at,
    )


def _attempt(a: WebhookAttempt) -> AttemptOut:
    return AttemptOut(
        message_id=a.message_id,
        event_type=a.event_type,
        attempt=a.attempt,
        status_code=a.status_code,
        latency_ms=a.latency_ms,
        error=a.error,
        attempted_at=a.attempted_at,
    )


@router.get("", response_model=list[WebhookOut], summary="List webhook endpoints (admins)")
def list_webhooks(
    _who: Principal = Depends(need(Permission.WEBHOOKS_MANAGE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    # At most webhooks.MAX_ENDPOINTS: one page.
    return [render(e) for e in webhooks.endpoints(uow)]


@router.post("", response_model=WebhookCreated, status_code=201, summary="Add a webhook endpoint (admins)")
def create_webhook(
    body: WebhookIn,
    request: Request,
    response: Response,
    who: Principal = Depends(need(Permission.WEBHOOKS_MANAGE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    owner = users.find_user(uow, f"#{who.user_id}")
    made = webhooks.create(
        uow, owner, body.url, body.events, allow_private=app_of(request).settings.webhook_allow_private
    )
    response.headers["Cache-Control"] = "no-store"
    return WebhookCreated(**render(made.endpoint).model_dump(), secret=made.secret)


@router.delete("/{webhook_id}", status_code=204, summary="Remove a webhook endpoint (admins)")
def delete_webhook(
    webhook_id: int,
    _who: Principal = Depends(need(Permission.WEBHOOKS_MANAGE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Response:
    webhooks.remove(uow, webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/test", response_model=Queued, status_code=202, summary="Send a webhook.test event")
def test_webhook(
    webhook_id: int,
    _who: Principal = Depends(need(Permission.WEBHOOKS_MANAGE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    return Queued(message_id=webhooks.enqueue_test(uow, webhook_id))


@router.get(
    "/{webhook_id}/deliveries", response_model=list[AttemptOut], summary="The last delivery attempts (newest first)"
)
def webhook_deliveries(
    webhook_id: int,
    _who: Principal = Depends(need(Permission.WEBHOOKS_MANAGE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    return [_attempt(a) for a in webhooks.recent_attempts(uow, webhook_id, limit=50)]
