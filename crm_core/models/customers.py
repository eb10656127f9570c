"""Companies, customers (people or accounts), their tags and their relationships to each other."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from crm_core import field_crypto, text
from crm_core.clock import utcnow
from crm_core.field_crypto import Encrypted
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


# The purposes of the customers' encrypted columns and blind indexes (crm_core.field_crypto).
EMAIL = "customers.email"
PHONE = "customers.phone"
PHONE_TAIL = "customers.phone_tail"


def contact_indexes(keys: field_crypto.FieldKeys, email: str | None, phone: str | None) -> dict[str, str | None]:
    """The blind index columns of an email and a phone number under the current key."""
    return {
        "email_index": keys.blind(EMAIL, text.normalize_email(email)),
        "phone_index": keys.blind(PHONE, text.phone_key(phone)),
        "phone_tail": keys.blind(PHONE_TAIL, text.phone_tail(phone)),
    }


class CustomerKind(enum.StrEnum):
    PERSON = "person"
    ACCOUNT = "account"


class Customer(Timestamped, Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[CustomerKind] = mapped_column(enum_column(CustomerKind), default=CustomerKind.PERSON)
    name: Mapped[str] = mapped_column(sa.String(200))
    company_id: Mapped[int | None] = mapped_column(sa.ForeignKey("companies.id", ondelete="SET NULL"), index=True)
    # Encrypted at rest (crm_core.field_crypto); looked up through the blind indexes below.
    email: Mapped[str | None] = mapped_column(Encrypted(EMAIL, sqlite_length=320))
    phone: Mapped[str | None] = mapped_column(Encrypted(PHONE, sqlite_length=40))
    # Blind indexes (HMACs under a key derived from CHATCRM_SECRET_KEY), set on every write by
    # _set_blind_indexes below: of the normalised email; of the phone's last 9 digits (matches
    # "+49 30 1234567" and "030 1234567" alike); of its last 6 digits (/customer 234567). See
    # crm_core.contacts for the lookups.
    email_index: Mapped[str | None] = mapped_column(sa.String(field_crypto.BLIND_LENGTH), index=True)
    phone_index: Mapped[str | None] = mapped_column(sa.String(field_crypto.BLIND_LENGTH), index=True)
    phone_tail: Mapped[str | None] = mapped_column(sa.String(field_crypto.BLIND_LENGTH), index=True)
    # The part of the email after the @, lower-cased: /customer @acme.com. Left in the clear on
    # purpose (README, "What is encrypted"): a domain names a company or a mail provider, not a person.
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
    def _strip_phone(self, _key: str, phone: str | None) -> str | None:
        return phone.strip() if phone else None

    def __repr__(self) -> str:
        return f"<Customer {self.id} {self.name!r}>"


@sa.event.listens_for(Customer, "before_insert")
@sa.event.listens_for(Customer, "before_update")
def _set_blind_indexes(_mapper: sa.orm.Mapper[Customer], connection: sa.Connection, customer: Customer) -> None:
    # Here rather than in the validators: the key belongs to the engine, which only a flush knows.
    state = sa.inspect(customer)
    if state.persistent and not (state.attrs.email.history.has_changes() or state.attrs.phone.history.has_changes()):
        return
    keys = field_crypto.keys_for(connection)
    for column, value in contact_indexes(keys, customer.email, customer.phone).items():
        setattr(customer, column, value)


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
    # Encrypted at rest (crm_core.field_crypto): a note about two people.
    note: Mapped[str | None] = mapped_column(Encrypted("customer_relationships.note", sqlite_length=500))

    customer: Mapped[Customer] = relationship(foreign_keys=[customer_id], lazy="joined")
    related: Mapped[Customer] = relationship(foreign_keys=[related_customer_id], lazy="joined")
