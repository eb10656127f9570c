"""Companies, customers (people or accounts), their tags and their relationships to each other."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from crm_core import text
from crm_core.clock import utcnow
from crm_core.models.base import Base, Timestamped, enum_column
from crm_core.models.users import User


class Company(Timestamped, Base):
    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    # Lower-cased name, unique, so "ACME corp" and "Acme Corp" are one company.
    name_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    domain: Mapped[str | None] = mapped_column(sa.String(200))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    # Its id in the system it was imported from, so re-running an import updates it (chatcrm import).
    external_ref: Mapped[str | None] = mapped_column(sa.String(100), unique=True)
    # The name as search normalises it, so /customer finds people by their company's name
    # (prefix, on a hand-made index: see crm_core.search and migration 0016).
    search_name: Mapped[str] = mapped_column(sa.String(200), default="", server_default="")

    @validates("name")
    def _derive_search_name(self, _key: str, name: str) -> str:
        self.search_name = text.normalize(name)
        return name


class CustomerKind(enum.StrEnum):
    PERSON = "person"
    ACCOUNT = "account"


class Customer(Timestamped, Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[CustomerKind] = mapped_column(enum_column(CustomerKind), default=CustomerKind.PERSON)
    name: Mapped[str] = mapped_column(sa.String(200))
    company_id: Mapped[int | None] = mapped_column(sa.ForeignKey("companies.id", ondelete="SET NULL"), index=True)
    email: Mapped[str | None] = mapped_column(sa.String(320), index=True)
    phone: Mapped[str | None] = mapped_column(sa.String(40))
    # The last 9 digits of the phone number: matches "+49 30 1234567" and "030 1234567" alike.
    phone_key: Mapped[str | None] = mapped_column(sa.String(9), index=True)
    # Every digit, last first: the last 6+ digits of a number are a prefix of it (crm_core.search).
    phone_rev: Mapped[str | None] = mapped_column(sa.String(40))
    # The part of the email after the @, lower-cased: /customer @acme.com.
    email_domain: Mapped[str | None] = mapped_column(sa.String(255))
    country: Mapped[str | None] = mapped_column(sa.String(2), index=True)
    language: Mapped[str | None] = mapped_column(sa.String(8))
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    # Identifier in a system we imported from (e.g. "retail:17850"); unique so re-imports match.
    external_ref: Mapped[str | None] = mapped_column(sa.String(100), unique=True)
    # Set when the person's data was erased on request (crm_core.services.erasure): the record
    # stays under a pseudonym so orders and figures still add up.
    erased_at: Mapped[datetime | None]

    # Search columns, derived from the name on every write (see crm_core.search).
    search_name: Mapped[str] = mapped_column(sa.String(200), default="")
    search_keys: Mapped[str] = mapped_column(sa.Text, default="")

    # Figures derived from orders, maintained by crm_core.services.orders in the same transaction
    # as every order write, so segments and lists can filter on them without aggregating.
    lifetime_value_cents: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    order_count: Mapped[int] = mapped_column(default=0)
    first_order_at: Mapped[datetime | None]
    last_order_at: Mapped[datetime | None] = mapped_column(index=True)

    company: Mapped[Company | None] = relationship(lazy="joined")
    owner: Mapped[User | None] = relationship(lazy="joined")
    tag_rows: Mapped[list[CustomerTag]] = relationship(
        cascade="all, delete-orphan", order_by="CustomerTag.tag", lazy="selectin"
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]

    @validates("name")
    def _derive_search_columns(self, _key: str, name: str) -> str:
        # Kept in step with the name on every write path that goes through the ORM; the
        # database triggers (SQLite FTS5) and indexes (PostgreSQL) pick them up from here.
        for column, value in text.search_columns(name).items():
            setattr(self, column, value)
        return name

    @validates("email")
    def _normalize_email(self, _key: str, email: str | None) -> str | None:
        self.email_domain = text.email_domain(email)
        return text.normalize_email(email)

    @validates("phone")
    def _derive_phone_key(self, _key: str, phone: str | None) -> str | None:
        self.phone_key = text.phone_key(phone)
        self.phone_rev = text.phone_reversed(phone)
        return phone.strip() if phone else None

    def __repr__(self) -> str:
        return f"<Customer {self.id} {self.name!r}>"


class CustomerKey(Base):
    """A customer's data key: personal values in the audit log about them are encrypted with it
    (crm_core.customer_keys). Erasing the customer deletes the row, and those values with it."""

    __tablename__ = "customer_keys"
    # Never audited: a copy of the key in the append-only log would outlive its erasure.
    __audited__ = False

    # No foreign key: a merged or deleted customer's history stays readable; only erasure shreds.
    customer_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    # The data key sealed with a key derived from CHATCRM_SECRET_KEY (crm_core.customer_keys).
    wrapped_key: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomerTag(Base):
    __tablename__ = "customer_tags"

    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(sa.String(50), primary_key=True, index=True)


class RelationshipType(enum.StrEnum):
    # How the customer relates to the other; crm_core.services.relationships has the phrase for
    # each side ("subsidiary of" / "parent of").
    PARENT = "parent"
    SUBSIDIARY = "subsidiary"
    PARTNER = "partner"
    RESELLER = "reseller"
    COMPETITOR = "competitor"
    REFERRED_BY = "referred_by"
    REPORTS_TO = "reports_to"
    COLLEAGUE = "colleague"
    FAMILY = "family"


class CustomerRelationship(Timestamped, Base):
    """A typed, dated link between two customers ("Bob reports to Alice since 2024-03-01")."""

    __tablename__ = "customer_relationships"
    __table_args__ = (sa.CheckConstraint("customer_id <> related_customer_id", name="not_self"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    related_customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    type: Mapped[RelationshipType] = mapped_column(enum_column(RelationshipType))
    started_on: Mapped[date | None]
    ended_on: Mapped[date | None]
    note: Mapped[str | None] = mapped_column(sa.String(500))

    customer: Mapped[Customer] = relationship(foreign_keys=[customer_id], lazy="joined")
    related: Mapped[Customer] = relationship(foreign_keys=[related_customer_id], lazy="joined")
