"""``Idempotency-Key`` for the REST API: the first answer to a POST is kept, and a retry with the same key
gets it again instead of creating a second customer or order.

``begin`` claims a key in a transaction of its own, before the request is served: the unique
(token, key) row decides which of two simultaneous requests runs; the other learns that one is in
progress. ``finish`` stores the answer; ``abandon`` frees the key when the request failed on our side,
so the client may retry it. Keys live for ``KEEP``; an older key may be used again. A claim left
unanswered for ``STALE`` (its process died) is freed too.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from crm_core import clock
from crm_core.models import IdempotentRequest

KEEP = timedelta(hours=24)
# A claim with no answer after this long was left by a process that died mid-request: free it.
STALE = timedelta(minutes=2)


class Outcome(enum.Enum):
    STARTED = "started"
    REPLAY = "replay"
    # The key was used for another request (another body, path or method).
    MISMATCH = "mismatch"
    IN_PROGRESS = "in_progress"


@dataclass(frozen=True)
class Claim:
    outcome: Outcome
    row_id: int | None = None
    status_code: int | None = None
    headers: dict[str, Any] | None = None
    body: bytes | None = None


def begin(factory: sessionmaker[Session], token_id: int, key: str, request_hash: str) -> Claim:
    now = clock.utcnow()
    for _attempt in range(2):
        with factory() as session:
            row = session.scalars(
                sa.select(IdempotentRequest).where(IdempotentRequest.token_id == token_id, IdempotentRequest.key == key)
            ).one_or_none()
            if row is not None and (
                row.created_at < now - KEEP or (row.status_code is None and row.created_at < now - STALE)
            ):
                session.delete(row)
                session.commit()
                row = None
            if row is not None:
                if row.request_hash != request_hash:
                    return Claim(Outcome.MISMATCH)
                if row.status_code is None:
                    return Claim(Outcome.IN_PROGRESS)
                return Claim(
                    Outcome.REPLAY, row.id, row.status_code, dict(row.response_headers or {}), row.response_body
                )
            fresh = IdempotentRequest(token_id=token_id, key=key, request_hash=request_hash, created_at=now)
            session.add(fresh)
            try:
                session.commit()
            except sa.exc.IntegrityError:
                # Another request claimed the key between our look and our insert: look again.
                session.rollback()
                continue
            return Claim(Outcome.STARTED, fresh.id)
    return Claim(Outcome.IN_PROGRESS)


def finish(factory: sessionmaker[Session], row_id: int, status_code: int, headers: dict[str, str], body: bytes) -> None:
    with factory.begin() as session:
        session.execute(
            sa.update(IdempotentRequest)
            .where(IdempotentRequest.id == row_id)
            .values(status_code=status_code, response_headers=headers, response_body=body)
        )


def abandon(factory: sessionmaker[Session], row_id: int) -> None:
    with factory.begin() as session:
        session.execute(sa.delete(IdempotentRequest).where(IdempotentRequest.id == row_id))
