"""Relationships between customers: a typed, dated link read from either side.

A row says "customer <type> related" ("Beta GmbH is a subsidiary of Acme", "Bob reports to
Alice"). Each type has a phrase for each side, so the other customer's card shows the inverse
("Acme: parent of Beta GmbH", "Alice: manages Bob"). Symmetric types read the same both ways.
Ending a relationship keeps the row (with its end date) for the record; cards show the current ones.
Adding or ending one is a change to the first customer's record, so the ownership rule
(crm_core.services.ownership) applies to that customer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, lazyload, load_only

from crm_core import clock, i18n, text
from crm_core.errors import Conflict, NotFound, ValidationError
from crm_core.i18n import N_, _
from crm_core.models import Customer, CustomerRelationship, RelationshipType
from crm_core.services import ownership
from crm_core.uow import UnitOfWork

# type -> (how the customer relates to the other, how the other relates back)
PHRASES: dict[RelationshipType, tuple[str, str]] = {
    RelationshipType.PARENT: ("parent of", "subsidiary of"),
    RelationshipType.SUBSIDIARY: ("subsidiary of", "parent of"),
    RelationshipType.PARTNER: ("partner of", "partner of"),
    RelationshipType.RESELLER: ("reseller of", "resold by"),
    RelationshipType.COMPETITOR: ("competitor of", "competitor of"),
    RelationshipType.REFERRED_BY: ("referred by", "referred"),
    RelationshipType.REPORTS_TO: ("reports to", "manages"),
    RelationshipType.COLLEAGUE: ("colleague of", "colleague of"),
    RelationshipType.FAMILY: ("family of", "family of"),
}
# Each phrase as a whole phrase around the other customer: word order differs between languages
# ("parent of Acme", zh "Acme的母公司").
_DESCRIBED = {
    "parent of": N_("parent of {other}"),
    "subsidiary of": N_("subsidiary of {other}"),
    "partner of": N_("partner of {other}"),
    "reseller of": N_("reseller of {other}"),
    "resold by": N_("resold by {other}"),
    "competitor of": N_("competitor of {other}"),
    "referred by": N_("referred by {other}"),
    "referred": N_("referred {other}"),
    "reports to": N_("reports to {other}"),
    "manages": N_("manages {other}"),
    "colleague of": N_("colleague of {other}"),
    "family of": N_("family of {other}"),
}
# A type whose inverse is another type: "A parent of B" is the fact "B subsidiary of A".
_INVERSE = {RelationshipType.PARENT: RelationshipType.SUBSIDIARY, RelationshipType.SUBSIDIARY: RelationshipType.PARENT}
_SYMMETRIC = frozenset(t for t, (forward, back) in PHRASES.items() if forward == back)
TYPES = tuple(t.value for t in RelationshipType)
MAX_NOTE = 500


@dataclass(frozen=True)
class Seen:
    """A relationship as one of its two customers sees it."""

    relationship: CustomerRelationship
    phrase: str
    other: Customer


def _customer(uow: UnitOfWork, customer_id: int) -> Customer:
    # Not services.customers.get_customer: the customer card reads relationships from here.
    customer = uow.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(_("there is no customer #{id}", id=customer_id))
    return customer


def parse_type(value: str) -> RelationshipType:
    word = value.strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return RelationshipType(word)
    except ValueError:
        raise ValidationError(
            _("the type must be one of {types}, not {value}", types=", ".join(TYPES), value=repr(value)), field="type"
        ) from None


def parse_since(value: str) -> date:
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(
            _("since takes a date such as 2024-03-01, not {value}", value=repr(value)), field="since"
        ) from None
    if day > clock.utcnow().date():
        raise ValidationError(
            _("since is a start date and {day} is in the future", day=i18n.display_date(day)), field="since"
        )
    return day


def _same_fact(customer_id: int, other_id: int, type_: RelationshipType) -> sa.ColumnElement[bool]:
    """Current rows that state this fact, however it was worded (parent/subsidiary, either order)."""
    rel = CustomerRelationship
    forward = sa.and_(rel.customer_id == customer_id, rel.related_customer_id == other_id, rel.type == type_)
    ways = [forward]
    if type_ in _SYMMETRIC:
        ways.append(sa.and_(rel.customer_id == other_id, rel.related_customer_id == customer_id, rel.type == type_))
    if inverse := _INVERSE.get(type_):
        ways.append(sa.and_(rel.customer_id == other_id, rel.related_customer_id == customer_id, rel.type == inverse))
    return sa.and_(sa.or_(*ways), rel.ended_on.is_(None))


def add_relationship(
    uow: UnitOfWork,
    customer_id: int,
    related_customer_id: int,
    type_: RelationshipType,
    started_on: date | None = None,
    note: str | None = None,
) -> CustomerRelationship:
    """Record that the customer is ``type_`` of the other (audited); the same current fact twice is refused."""
    if customer_id == related_customer_id:
        raise ValidationError(_("a customer cannot be related to themselves"))
    customer = _customer(uow, customer_id)
    other = _customer(uow, related_customer_id)
    ownership.check_customer(uow, customer)
    if note is not None:
        note = text.check_text(note.strip(), "note", field="note")[:MAX_NOTE] or None
    existing = uow.session.scalars(
        sa.select(CustomerRelationship).where(_same_fact(customer_id, related_customer_id, type_))
    ).first()
    if existing is not None:
        raise Conflict(
            _(
                "{customer} is already {relation} (relationship #{id}, since {day})",
                customer=customer.name,
                relation=describe(PHRASES[type_][0], other.name),
                id=existing.id,
                day=existing.started_on,
            )
        )
    relationship = CustomerRelationship(
        customer_id=customer_id,
        related_customer_id=related_customer_id,
        type=type_,
        started_on=started_on or clock.utcnow().date(),
        note=note,
    )
    uow.session.add(relationship)
    uow.session.flush()
    return relationship


def end_relationship(uow: UnitOfWork, relationship_id: int, ended_on: date | None = None) -> CustomerRelationship:
    """End a current relationship today (audited); the row stays, with its end date."""
    relationship = uow.session.get(CustomerRelationship, relationship_id)
    if relationship is None:
        raise NotFound(_("there is no relationship #{id}", id=relationship_id))
    ownership.check_customer(uow, relationship.customer)
    if relationship.ended_on is not None:
        raise Conflict(
            _(
                "relationship #{id} already ended on {day}",
                id=relationship_id,
                day=i18n.display_date(relationship.ended_on),
            )
        )
    relationship.ended_on = ended_on or clock.utcnow().date()
    uow.session.flush()
    return relationship


def current(uow: UnitOfWork, customer_id: int) -> list[Seen]:
    """The customer's current relationships, from both sides, oldest first, each as this customer reads it."""
    rows = uow.session.scalars(_current_statement(), {"customer_id": customer_id}).unique()
    return [seen_from(row, customer_id) for row in rows]


@functools.cache
def _current_statement() -> sa.Select[Any]:
    """``current``'s SELECT, built once (every customer card reads it; its loader options make building
    it cost more Python time than running it)."""
    rel = CustomerRelationship
    customer_id = sa.bindparam("customer_id", type_=sa.Integer)
    return (
        sa.select(rel)
        .options(_by_name(rel.customer), _by_name(rel.related))
        .where(sa.or_(rel.customer_id == customer_id, rel.related_customer_id == customer_id), rel.ended_on.is_(None))
        .order_by(rel.started_on, rel.id)
    )


def _by_name(side: Any) -> Any:
    """A loader option for one side of a relationship row, which is shown by id and name. Without it
    each row would carry both customers whole, each with its company and owner joined (about 270
    columns a row, the email and phone decrypted) and their tags selected; anything else read of
    the other customer is loaded when read."""
    return joinedload(side).options(load_only(Customer.id, Customer.name), lazyload("*"))


def seen_from(relationship: CustomerRelationship, customer_id: int) -> Seen:
    forward, back = PHRASES[relationship.type]
    if relationship.customer_id == customer_id:
        return Seen(relationship, forward, relationship.related)
    return Seen(relationship, back, relationship.customer)


def describe(phrase: str, other: str) -> str:
    """``phrase`` (a ``Seen.phrase``) about ``other``, in the reader's language: "parent of Acme"."""
    template = _DESCRIBED.get(phrase)
    return _(template, other=other) if template else f"{phrase} {other}"
