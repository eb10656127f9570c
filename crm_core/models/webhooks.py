"""Outgoing webhooks: the endpoints admins subscribe, and every delivery attempt made to them.

- ``webhook_endpoints``: a URL, the event-type patterns it wants (``deal.won``, ``ticket.*``), the
  signing secret (``whsec_`` + base64, Standard Webhooks), its owner (told in chat when it is
  disabled) and whether it is enabled. The secret must be read to sign, so it is stored encrypted
  (crm_core.field_crypto), not hashed; it is left out of the audit log.
- ``webhook_attempts``: one row per HTTP attempt (status code, latency, error) for
  ``/webhook deliveries``; the messages themselves are outbox rows (platform ``webhook``).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.clock import utcnow
from crm_core.field_crypto import Encrypted
from crm_core.models.base import Base
from crm_core.models.users import User

BigId = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    # The audit log records every column it sees; never the signing secret.
    __audit_redacted__ = frozenset({"secret"})

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(2000))
    # Event-type patterns: "deal.won", "ticket.*", "*".
    events: Mapped[list[str]] = mapped_column(sa.JSON)
    # "whsec_" + base64 of 24 random bytes; the base64 part is the HMAC key.
    secret: Mapped[str] = mapped_column(Encrypted("webhook_endpoints.secret", sqlite_length=100))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(sa.String(500))
    disabled_at: Mapped[datetime | None]
    # The first failure since the last success: deliveries failing for longer than the retry
    # window disable the endpoint.
    failing_since: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[User | None] = relationship()


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"
    # Bookkeeping of deliveries, not a change to the CRM.
    __audited__ = False
    __table_args__ = (sa.Index("ix_webhook_attempts_endpoint", "endpoint_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    # The webhook-id header ("evt_42", "test_…"): the same for every attempt of one message.
    message_id: Mapped[str] = mapped_column(sa.String(64))
    event_type: Mapped[str] = mapped_column(sa.String(100))
    attempt: Mapped[int]
    # The HTTP status, or None when no answer came (timeout, refused, blocked address).
    status_code: Mapped[int | None]
    latency_ms: Mapped[int]
    error: Mapped[str | None] = mapped_column(sa.String(500))
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
