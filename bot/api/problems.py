"""Errors as ``application/problem+json`` (RFC 9457): ``type``, ``title``, ``status``, ``detail``, and for
invalid input the failing fields in ``errors`` (``[{"field": "email", "detail": "…"}]``).

A CRM error (``crm_core.errors``) becomes the status it means; anything unexpected is a 500 whose
detail names a reference that is also logged with the traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from bot.dispatch import new_reference
from crm_core.errors import Conflict, CrmError, Forbidden, NotFound, ValidationError

log = logging.getLogger("chatcrm.api")

MEDIA_TYPE = "application/problem+json"
_CRM_STATUS: dict[type[CrmError], int] = {NotFound: 404, ValidationError: 422, Conflict: 409, Forbidden: 403}


class FailingField(BaseModel):
    # "email", "custom_fields.tier", "orders[3].lines[0].sku"
    field: str
    detail: str


class ProblemDocument(BaseModel):
    """An error (RFC 9457), as every error status is answered: what the OpenAPI document declares."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    # Only for invalid input: every failing field.
    errors: list[FailingField] | None = None


# The statuses any operation may answer with a problem document (the gate's 401, 413, 429 included).
ERROR_STATUSES: dict[int, str] = {
    400: "Bad request (a cursor or parameters that do not go together)",
    401: "No token, or a token that is unknown, revoked or expired",
    403: "The token's user or scopes do not allow this",
    404: "No such resource",
    409: "The change clashes with the current data",
    412: "If-Match does not match the current ETag",
    413: "The body is too large",
    422: "Invalid input: the failing fields are in errors",
    429: "Too many requests for this token (see Retry-After)",
}


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """Declare the problem answers on every operation of an OpenAPI document, in place of FastAPI's
    own 422 schema (which is not what the API sends)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    definition = ProblemDocument.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(definition.pop("$defs", {}))
    schemas["Problem"] = definition
    content = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses[str(status)] = {"description": description, "content": content}
    return document


class Problem(Exception):
    """Raised anywhere in the API to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Sequence[Mapping[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})


def problem_response(
    status: int,
    detail: str,
    *,
    errors: Sequence[Mapping[str, str]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    title = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        # No page per problem type: "about:blank" says the status title is the whole story (RFC 9457 §4.2.1).
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=MEDIA_TYPE)


def _field_path(location: Sequence[Any]) -> str:
    # ("body", "custom_fields", "tier") -> "custom_fields.tier"; ("query", "limit") -> "limit".
    parts = [str(p) for p in location[1:]] if location and location[0] in ("body", "query", "path", "header") else []
    return ".".join(parts) or ".".join(str(p) for p in location)


def _validation_message(error: Mapping[str, Any]) -> str:
    if error.get("type") == "extra_forbidden":
        return "unknown field"
    if error.get("type") == "missing":
        return "required"
    return str(error.get("msg", "invalid"))


async def _on_problem(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.detail, errors=exc.errors, headers=exc.headers)


async def _on_crm_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CrmError)
    status = next((code for kind, code in _CRM_STATUS.items() if isinstance(exc, kind)), 400)
    errors: list[dict[str, str]] = []
    if isinstance(exc, ValidationError):
        errors = [{"field": name, "detail": message} for name, message in exc.errors.items()]
    return problem_response(status, exc.message, errors=errors)


async def _on_request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field_path(e.get("loc", ())), "detail": _validation_message(e)} for e in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['detail']}" for e in errors) or "the request is not valid"
    return problem_response(422, detail, errors=errors)


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = "there is no such endpoint (see /api/v1/openapi.json)"
    return problem_response(exc.status_code, detail, headers=exc.headers)


async def _on_integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    # A unique or foreign-key rule the services did not see coming (two requests at once).
    log.info("API request refused by a database constraint: %s", exc)
    return problem_response(409, "the change clashes with the current data (another change was made at the same time?)")


async def _on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    reference = new_reference()
    log.error("API request failed (ref %s)", reference, exc_info=exc)
    return problem_response(500, f"something went wrong (ref {reference})")


def install(api: FastAPI) -> None:
    api.add_exception_handler(Problem, _on_problem)
    api.add_exception_handler(CrmError, _on_crm_error)
    api.add_exception_handler(RequestValidationError, _on_request_validation)
    api.add_exception_handler(StarletteHTTPException, _on_http_error)
    api.add_exception_handler(sa.exc.IntegrityError, _on_integrity_error)
    api.add_exception_handler(Exception, _on_unexpected)
