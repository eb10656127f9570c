"""One-time codes that pair a chat account (say, Telegram) with an existing CRM user."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.clock import utcnow
from crm_core.models.base import Base
from crm_core.models.users import User


class LinkCode(Base):
    __tablename__ = "link_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 of the code: whoever reads the table cannot use a code that is still valid.
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # The user the code links an account to.
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # The platform identity that used it ("telegram:123"), or why it was withdrawn.
    used_by: Mapped[str | None] = mapped_column(sa.String(100))

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")
