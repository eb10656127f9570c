"""Admins' overrides of the message templates in ``templates/``, one per kind, format and language."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models.base import Base, Timestamped


class TemplateOverride(Timestamped, Base):
    __tablename__ = "template_overrides"
    __table_args__ = (sa.UniqueConstraint("kind", "format", "language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # followup_reminder, digest, ... (a folder of templates/)
    kind: Mapped[str] = mapped_column(sa.String(64))
    # text | mrkdwn | blocks | html
    format: Mapped[str] = mapped_column(sa.String(20))
    language: Mapped[str] = mapped_column(sa.String(8))
    body: Mapped[str] = mapped_column(sa.Text)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
