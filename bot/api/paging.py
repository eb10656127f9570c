"""Cursor pagination for list endpoints: keyset on the id, so a page never repeats or skips a row when
rows are added while a client pages (new rows have higher ids and come at the end).

The cursor is opaque to clients (base64 of a small JSON); ``next`` is in the body and in a
``Link: <…>; rel="next"`` header. ``?count=true`` adds ``total`` (one more query, so only on request).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from fastapi import Query, Request, Response
from pydantic import BaseModel

from bot.api.problems import Problem

T = TypeVar("T")
MAX_LIMIT = 500
DEFAULT_LIMIT = 50


class Page(BaseModel, Generic[T]):
    items: list[T]
    # The cursor of the next page; null on the last page.
    next: str | None = None
    # Only with ?count=true.
    total: int | None = None


@dataclass(frozen=True)
class PageParams:
    limit: int
    after: int
    count: bool


def _decode(cursor: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = data["after"]
        if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after < 2**63:
            raise ValueError
        return after
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise Problem(400, "the cursor is not valid: use the 'next' value of a previous page as it is") from None


def _encode(after: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode().rstrip("=")


async def page_params(  # a coroutine: no worker thread for it (see bot.api.auth.principal)
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Items per page (at most 500)"),
    cursor: str | None = Query(None, max_length=200, description="The `next` value of the previous page"),
    count: bool = Query(False, description="Also report `total`, the number of matching items"),
) -> PageParams:
    return PageParams(limit=limit, after=_decode(cursor) if cursor else 0, count=count)


def paginate(
    session: sa.orm.Session,
    statement: sa.Select[Any],
    id_column: Any,
    params: PageParams,
    request: Request,
    response: Response,
    render: Callable[[Sequence[Any]], list[T]],
) -> Page[T]:
    """One page of ``statement`` (a select of ORM objects) in id order, after the cursor; ``render`` turns
    the page's rows into items (all at once, so it can load what they need in one query)."""
    rows: Sequence[Any] = session.scalars(
        statement.where(id_column > params.after).order_by(id_column).limit(params.limit + 1)
    ).all()
    more = len(rows) > params.limit
    rows = rows[: params.limit]
    total = None
    if params.count:
        total = session.scalar(sa.select(sa.func.count()).select_from(statement.order_by(None).subquery())) or 0
    next_cursor = _encode(sa.inspect(rows[-1]).identity[0]) if more and rows else None
    if next_cursor:
        url = request.url.include_query_params(cursor=next_cursor, limit=params.limit)
        response.headers["Link"] = f'<{url}>; rel="next"'
    return Page[T](items=render(rows), next=next_cursor, total=total)
