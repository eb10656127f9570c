"""A request body validated straight from its bytes, for the large bodies (``/orders/bulk``: 1.3 MB for
10,000 order lines).

FastAPI reads a ``body: Model`` parameter with ``json.loads`` and then validates the Python objects:
for a bulk request that is most of the CPU the request costs before the first SQL statement.
pydantic-core's ``validate_json`` parses and validates the bytes in one pass, several times faster.

``json_body(Model)`` gives an endpoint the body that way, and ``json_body_openapi(Model)`` declares it
in the OpenAPI document exactly as FastAPI would for ``body: Model`` (the schemas are added to the
components by ``add_body_schemas``). Only the successful case takes the fast road: a body it refuses
(invalid JSON, another content type, a failing field) is read again the way FastAPI reads it, so the
422 answers name the same fields with the same messages as before, and come in the same order
against other refusals: a body that is not JSON is refused before any dependency runs (declare
``json_body`` first), a failing field only after them (a token without the permission gets its 403
first), when the endpoint takes ``.value``.
"""

from __future__ import annotations

import email.message
import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pydantic
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic.json_schema import models_json_schema

M = TypeVar("M", bound=pydantic.BaseModel)

COMPONENTS = "#/components/schemas/{model}"
# Models read with json_body: their schemas go into the OpenAPI document's components.
_DECLARED: dict[str, type[pydantic.BaseModel]] = {}


def _is_json(content_type: str | None) -> bool:
    # As FastAPI decides it (fastapi.routing.get_request_handler, strict content type).
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


@dataclass(frozen=True)
class JsonBody(Generic[M]):
    """A body read by ``json_body``: ``value`` is the model, or raises the 422 of its failing fields."""

    parsed: M | None
    failed: RequestValidationError | None = None

    @property
    def value(self) -> M:
        if self.failed is not None:
            raise self.failed
        assert self.parsed is not None
        return self.parsed


def _as_fastapi_reads_it(adapter: pydantic.TypeAdapter[M], raw: bytes, content_type: str | None) -> JsonBody[M]:
    """The body read as FastAPI reads a ``body: Model`` parameter, errors included (the slow road):
    JSON that does not parse raises at once, failing fields are kept for ``value``."""
    if not raw:  # no body at all: the parameter is missing
        missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
        return JsonBody(None, RequestValidationError([missing], body=None))
    value: Any = raw
    if _is_json(content_type):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            error = {
                "type": "json_invalid",
                "loc": ("body", exc.pos),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": exc.msg},
            }
            raise RequestValidationError([error], body=exc.doc) from None
        except ValueError:
            # Bytes that are no text in any JSON encoding (UnicodeDecodeError): FastAPI's 400 for a
            # body it cannot read at all.
            raise HTTPException(status_code=400, detail="There was an error parsing the body") from None
    try:
        return JsonBody(adapter.validate_python(value, from_attributes=True))
    except pydantic.ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        return JsonBody(None, RequestValidationError(errors, body=value))


@functools.cache
def json_body(model: type[M]) -> Callable[[Request], Awaitable[JsonBody[M]]]:
    """A dependency: the request's JSON body as ``model``, validated from the bytes."""
    adapter = pydantic.TypeAdapter(model)
    _DECLARED[model.__name__] = model

    async def read(request: Request) -> JsonBody[M]:
        raw = await request.body()
        content_type = request.headers.get("content-type")
        if raw and _is_json(content_type):
            try:
                return JsonBody(adapter.validate_json(raw))
            except pydantic.ValidationError:
                pass  # answered below, with FastAPI's own errors
        return _as_fastapi_reads_it(adapter, raw, content_type)

    read.__name__ = f"{model.__name__}_body"
    return read


def json_body_openapi(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for an operation reading ``json_body(model)``: its request body, as FastAPI
    declares a required ``body: model`` parameter."""
    return {
        "requestBody": {
            "content": {"application/json": {"schema": {"$ref": COMPONENTS.format(model=model.__name__)}}},
            "required": True,
        }
    }


def add_body_schemas(document: dict[str, Any]) -> dict[str, Any]:
    """Put the schemas of the models read with ``json_body`` (and the models they use) into the
    document's components, where FastAPI would have put them."""
    if not _DECLARED:
        return document
    _keys, definitions = models_json_schema(
        [(model, "validation") for model in _DECLARED.values()], ref_template=COMPONENTS
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in definitions.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document
