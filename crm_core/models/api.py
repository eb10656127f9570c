"""The REST API's tables: personal access tokens and the answers kept for ``Idempotency-Key`` replays."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.clock import utcnow
from crm_core.models.base import Base
from crm_core.models.users import User


class ApiToken(Base):
    """A personal access token: acts as its user, narrowed by its scopes. Only its hash is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (sa.UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Short (16 characters at most) so that "api:<name>" fits the audit log's channel column.
    name: Mapped[str] = mapped_column(sa.String(16))
    # SHA-256 (hex) of the whole token: whoever reads the table cannot use a token.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # The first characters of the token ("crm_AbC1"), shown by /token list to tell tokens apart.
    prefix: Mapped[str] = mapped_column(sa.String(12))
    # Permission names the token is narrowed to ("customers.read"); an empty list: all of its user's.
    scopes: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(lazy="joined")


class IdempotentRequest(Base):
    """A POST made with an ``Idempotency-Key``: the request's fingerprint and the first answer.

    A row with no status is a request still being served; a second request with the same key then
    gets a 409 rather than running twice.
    """

    __tablename__ = "api_idempotency_keys"
    # Bookkeeping of the HTTP layer, not a change to the CRM.
    __audited__ = False
    __table_args__ = (sa.UniqueConstraint("token_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(sa.ForeignKey("api_tokens.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(sa.String(255))
    # SHA-256 of method, path and body: the same key with another request is refused.
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int | None]
    response_headers: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    response_body: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
