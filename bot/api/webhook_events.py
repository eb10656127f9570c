"""The OpenAPI document's ``webhooks`` section: what an endpoint added with ``/webhook add`` receives.

One entry per domain event type (``crm_core.events.EVENT_TYPES``, plugins' types included, as
registered when the API is built) plus ``webhook.test``, each with the envelope exactly as
``crm_core.webhooks`` builds it (``Event.to_dict``) and the type's payload fields, which ``emit``
guarantees for built-in types. These are documentation only: no route of the API receives them.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, create_model

from crm_core import events, webhooks

HEADERS = """\
Sent as a POST with a JSON body, signed per [Standard Webhooks](https://www.standardwebhooks.com/):
`webhook-id` (the message id, the same on every retry: `evt_<event id>`, or `test_…`),
`webhook-timestamp` (seconds since the epoch) and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the endpoint's `whsec_` secret).
Answer with any 2xx within 10 s; anything else (a 3xx included: redirects are not followed) is
retried with exponential backoff for about 24 hours, in order per entity."""


class ActorOut(BaseModel):
    user_id: int | None = Field(description="The acting user's id; null for the system")
    name: str
    platform: str = Field(description='Where it was done: "slack", "telegram", "console", "api:<token name>", "system"')


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace(".", "_").split("_"))


def envelope(name: str, description: str, fields: dict[str, str], *, test: bool = False) -> type[BaseModel]:
    """The body delivered for events of type ``name``."""
    camel = _camel(name)
    payload_fields: dict[str, Any] = {key: (Any, Field(description=text)) for key, text in fields.items()}
    # A plugin type that declares no fields may carry any; a declared one carries exactly these.
    extra: Literal["allow", "forbid"] = "allow" if not fields else "forbid"
    payload = create_model(f"{camel}Payload", __config__=ConfigDict(extra=extra), **payload_fields)
    model: type[BaseModel] = create_model(
        f"{camel}Event",
        __doc__=f"{name}: {description}",
        id=(str if test else int, Field(description="The event's id; it grows in commit order")),
        type=(Literal[name], ...),  # type: ignore[valid-type, arg-type]
        entity_type=(str, Field(description="What the event is about, e.g. customer, deal, ticket")),
        entity_id=(str, Field(description="Its id, as text")),
        occurred_at=(datetime, Field(description="When it happened (ISO 8601, UTC)")),
        actor=(ActorOut, ...),
        payload=(payload, ...),
    )
    return model


@functools.cache
def _envelope(name: str, description: str, fields: tuple[tuple[str, str], ...], test: bool) -> type[BaseModel]:
    # Made once per process: every API built (a test process builds hundreds) documents the same
    # types, and making their models was half the cost of building the API (16 of 31 ms).
    return envelope(name, description, dict(fields), test=test)


def _receiver(model: type[BaseModel]) -> Any:
    def receive(body: Any) -> None:
        """Documentation only."""

    # The model as the body's annotation, set here because it is made at run time.
    receive.__annotations__ = {"body": model, "return": None}
    return receive


def document(api: FastAPI) -> None:
    """Add one ``webhooks`` entry per event type to ``api``'s OpenAPI document."""
    kinds = [(t.name, t.description, dict(t.payload), False) for t in events.EVENT_TYPES.values()]
    kinds.append(
        (
            webhooks.TEST_EVENT,
            "a test message sent by /webhook test (or POST /webhooks/{id}/test)",
            {"endpoint_id": "the endpoint's id", "url": "the endpoint's URL", "message": "a fixed text"},
            True,
        )
    )
    for name, description, fields, test in sorted(kinds):
        model = _envelope(name, description, tuple(fields.items()), test)
        api.webhooks.add_api_route(
            name,
            _receiver(model),
            methods=["POST"],
            summary=description[:1].upper() + description[1:],
            description=HEADERS,
            tags=[name.split(".", 1)[0]],
            status_code=200,
            response_description="Any 2xx: delivered",
        )
