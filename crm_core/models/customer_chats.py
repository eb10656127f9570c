"""A customer's own chat with us on a messaging platform (a Telegram private chat, say).

It tells where a customer's messages come from (so they land in the right customer's tickets)
and where our answers and rating requests go.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.clock import utcnow
from crm_core.field_crypto import Encrypted
from crm_core.models import chat_ids
from crm_core.models.base import Base
from crm_core.models.customers import Customer


class CustomerChat(Base):
    __tablename__ = "customer_chats"
    # The ids are encrypted (crm_core.models.chat_ids): unique, and looked up, by their blind indexes.
    __table_args__ = (sa.UniqueConstraint("platform", "external_id_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(sa.String(20))
    # The platform's id of the person (Telegram user id).
    external_id: Mapped[str] = mapped_column(chat_ids.chat_id_type(sqlite_length=64))
    external_id_index: Mapped[str | None] = mapped_column(chat_ids.index_type())
    # Where to write to them (for a Telegram private chat, the same number as the user id).
    conversation: Mapped[str] = mapped_column(chat_ids.chat_id_type(sqlite_length=64))
    conversation_index: Mapped[str | None] = mapped_column(chat_ids.index_type(), index=True)
    # Their profile name on the platform, encrypted at rest (crm_core.field_crypto).
    display_name: Mapped[str | None] = mapped_column(Encrypted("customer_chats.display_name", sqlite_length=200))
    # True while the customer record is the placeholder made from their first message; sharing a
    # phone number that matches an existing customer then moves their tickets over to that one.
    placeholder: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    customer: Mapped[Customer] = relationship(lazy="joined")


chat_ids.keep_indexed(CustomerChat, "external_id", "conversation")
