"""ETags on single resources and ``If-Match`` on PATCH and DELETE.

The ETag is a hash of the resource as the API shows it, so any change anyone makes (in chat, by
another token) changes it. A PATCH or DELETE with an ``If-Match`` that is not the current ETag gets
412 and changes nothing: two systems never silently overwrite each other. Without ``If-Match`` the
change is made (last write wins), as most clients expect.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import sqlalchemy as sa
from fastapi import Response
from pydantic import BaseModel

from bot.api.problems import Problem


def etag_of(resource: BaseModel) -> str:
    data = json.dumps(resource.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return '"' + hashlib.sha256(data.encode()).hexdigest()[:32] + '"'


def lock(session: sa.orm.Session, model: Any, row_id: int) -> None:
    """Lock the row to the end of the transaction, so an If-Match check and the change it guards are
    one step (no-op on SQLite, whose writers take turns anyway). Only the id is selected: PostgreSQL
    refuses FOR UPDATE on a query with the models' joined (outer-joined) relationships."""
    session.execute(sa.select(model.id).where(model.id == row_id).with_for_update())


def check_if_match(if_match: str | None, current: BaseModel) -> None:
    if if_match is None:
        return
    wanted = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" in wanted or etag_of(current) in wanted:
        return
    raise Problem(412, "the resource changed since you read it (If-Match does not match its ETag): read it again")


def with_etag(response: Response, resource: BaseModel) -> BaseModel:
    response.headers["ETag"] = etag_of(resource)
    return resource
