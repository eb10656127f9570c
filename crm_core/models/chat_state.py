"""State a chat front door keeps between two messages of the same person.

``ButtonCommand`` holds button commands too long for a platform's button payload (Telegram's
callback_data is 64 bytes) under a short token; ``FormSession`` is a form being filled in one
question at a time. Both live in the database so they survive webhook requests, restarts and
several web processes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.clock import utcnow
from crm_core.models.base import Base


class ButtonCommand(Base):
    __tablename__ = "button_commands"
    __audited__ = False

    # A hash of the command, so rendering the same button twice stores one row.
    token: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    command: Mapped[str] = mapped_column(sa.Text)
    opens_form: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FormSession(Base):
    __tablename__ = "form_sessions"
    __audited__ = False
    __table_args__ = (sa.UniqueConstraint("platform", "conversation", "user_external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(sa.String(20))
    conversation: Mapped[str] = mapped_column(sa.String(64))
    user_external_id: Mapped[str] = mapped_column(sa.String(64))
    # The form, in the shape of bot.messages.Form (as Reply.to_dict() writes it).
    form: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    # Answers so far, by input name.
    answers: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    # Names of the inputs still to ask, in order; the first is the current question.
    queue: Mapped[list[str]] = mapped_column(sa.JSON)
    # Counts questions asked, so a button under an old question is recognised as stale.
    asked: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
