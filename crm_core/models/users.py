"""CRM users, their roles, and the chat identities (one per platform account) that map to them."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.clock import utcnow
from crm_core.models.base import Base, Timestamped, enum_column


class Role(enum.StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    SALES = "sales"
    SUPPORT = "support"
    VIEWER = "viewer"
    # Someone outside the company writing to us (a customer's chat), never a user's stored role:
    # the dispatcher gives it to a caller who is not staff on a platform customers write to.
    CUSTOMER = "customer"


# The roles a user can be granted (/role, CHATCRM_UNKNOWN_ROLE).
STAFF_ROLES = (Role.ADMIN, Role.MANAGER, Role.SALES, Role.SUPPORT, Role.VIEWER)


class User(Timestamped, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(320), unique=True)
    # None: known to the CRM (e.g. seen in chat) but granted nothing yet.
    role: Mapped[Role | None] = mapped_column(enum_column(Role))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    # The language the user chose with /lang; None: follow the platform's hint (crm_core.i18n).
    language: Mapped[str | None] = mapped_column(sa.String(8))
    active: Mapped[bool] = mapped_column(default=True)

    identities: Mapped[list[Identity]] = relationship(back_populates="user", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"<User {self.id} {self.name!r} {self.role}>"


class Identity(Base):
    """One account on one chat platform, belonging to a CRM user."""

    __tablename__ = "identities"
    __table_args__ = (sa.UniqueConstraint("platform", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # A registered platform's name (crm_core.platforms); VARCHAR(20) as when it was a closed enum.
    platform: Mapped[str] = mapped_column(sa.String(20))
    external_id: Mapped[str] = mapped_column(sa.String(64))
    display_name: Mapped[str | None] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="identities")
