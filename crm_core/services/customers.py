"""Customers: create, edit (core and custom fields, tags), resolve a reference, and the card."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload, lazyload

from crm_core import clock, contacts, events, search, text
from crm_core.errors import Conflict, CrmError, NotFound, ValidationError
from crm_core.i18n import _
from crm_core.iso_countries import is_country_code
from crm_core.models import (
    Customer,
    CustomerKind,
    CustomerScore,
    CustomerTag,
    Deal,
    FieldEntity,
    FollowUp,
    FollowUpStatus,
    Interaction,
    Order,
    OrderKind,
    Ticket,
    TicketStatus,
    User,
)
from crm_core.services import companies, custom_fields, ownership, relationships, users
from crm_core.services.custom_fields import FieldValue
from crm_core.uow import UnitOfWork

MAX_NAME = 200
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z]{2})?$")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,49}$")
# Values that mean "clear this field".
_EMPTY = {"", "-", "none"}

# Core fields a user may set with field=value, in the order forms and help show them.
CORE_FIELDS = ("name", "email", "phone", "company", "country", "language", "timezone", "owner", "tags", "kind")


def get_customer(uow: UnitOfWork, customer_id: int) -> Customer:
    customer = uow.session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(_("there is no customer #{id}", id=customer_id))
    return customer


def resolve_customer(uow: UnitOfWork, reference: str) -> Customer:
    """The one customer a reference (#id, email, phone or name) points at, or a clear error."""
    hits = search.search_customers(uow.session, reference, limit=6)
    if not hits:
        raise NotFound(_("no customer matches {query}", query=repr(reference.strip())))
    best = hits[0]
    # An exact hit (id, email, phone, exact name) wins only if no other hit is equally good.
    if len(hits) == 1 or (best.match > hits[1].match and best.match >= search.MatchKind.EXACT_NAME):
        return get_customer(uow, best.customer_id)
    names = ", ".join(f"{h.name} (#{h.customer_id})" for h in hits[:5])
    raise ValidationError(
        _("{query} matches several customers: {names}. Use the #id.", query=repr(reference.strip()), names=names)
    )


@dataclass
class ParsedChanges:
    # Column values as parsed: text, an owner id, a CustomerKind, or None to clear.
    core: dict[str, Any] = field(default_factory=dict)
    tags_set: list[str] | None = None
    tags_add: list[str] = field(default_factory=list)
    tags_remove: list[str] = field(default_factory=list)
    custom: dict[int, tuple[custom_fields.CustomFieldDefinition, str | float | date | None]] = field(
        default_factory=dict
    )

    def tags_after(self, current: Iterable[str]) -> set[str]:
        """The tags a customer with ``current`` tags has once these changes are applied."""
        wanted = set(self.tags_set) if self.tags_set is not None else set(current)
        return (wanted | set(self.tags_add)) - set(self.tags_remove)


@dataclass
class Rules:
    """What checking a customer's fields reads from the database: the custom field definitions, and
    the users an owner= names. An edit reads them afresh; an import reads them once for all its rows
    (a name given as owner on 100,000 rows is looked up once, and so is a name no user has)."""

    definitions: dict[str, custom_fields.CustomFieldDefinition]
    # Owner reference as typed -> the user, or the error finding one gave.
    _owners: dict[str, User | CrmError] = field(default_factory=dict)

    @classmethod
    def load(cls, uow: UnitOfWork) -> Rules:
        return cls({d.key: d for d in custom_fields.definitions(uow, FieldEntity.CUSTOMER)})

    def owner(self, uow: UnitOfWork, reference: str) -> User:
        found = self._owners.get(reference)
        if found is None:
            try:
                found = users.find_user(uow, reference)
            except (NotFound, ValidationError) as exc:
                found = exc
            self._owners[reference] = found
        if isinstance(found, CrmError):
            raise found
        return found

    def owner_name(self, user_id: int) -> str:
        """The name of a user ``owner`` found."""
        return next(u.name for u in self._owners.values() if isinstance(u, User) and u.id == user_id)

    def check_required(self, uow: UnitOfWork, parsed: ParsedChanges, *, creating: bool) -> None:
        custom_fields.check_required(
            uow, FieldEntity.CUSTOMER, parsed.custom, creating=creating, known=list(self.definitions.values())
        )


def _parse_tags(raw: str) -> list[str]:
    tags = []
    for tag in (t.strip().lower().lstrip("#") for t in raw.split(",")):
        if not tag:
            continue
        if not _TAG.match(tag):
            raise ValidationError(_("{tag} is not a tag: use letters, digits, - and _", tag=repr(tag)), field="tags")
        tags.append(tag)
    return tags


def parse_changes(uow: UnitOfWork, changes: Mapping[str, str | None], rules: Rules | None = None) -> ParsedChanges:
    """Validate every change before anything is written; report all problems at once."""
    parsed = ParsedChanges()
    errors: dict[str, str] = {}
    rules = rules or Rules.load(uow)
    definitions = rules.definitions
    for raw_key, raw_value in changes.items():
        key = raw_key.strip().lower()
        value = (raw_value or "").strip()
        empty = value.lower() in _EMPTY
        try:
            text.check_text(value, key, field=key)
            if key == "name":
                if empty:
                    raise ValidationError(_("a customer needs a name"), field="name")
                if len(value) > MAX_NAME:
                    raise ValidationError(_("the name is longer than {limit} characters", limit=MAX_NAME), field="name")
                parsed.core["name"] = value
            elif key == "email":
                if not empty and not _EMAIL.match(value):
                    raise ValidationError(_("{value} is not an email address", value=repr(value)), field="email")
                parsed.core["email"] = None if empty else value
            elif key == "phone":
                if not empty and len(text.phone_digits(value)) < 6:
                    raise ValidationError(_("{value} is not a phone number", value=repr(value)), field="phone")
                parsed.core["phone"] = None if empty else value
            elif key == "company":
                parsed.core["company"] = None if empty else value[:MAX_NAME]
            elif key == "country":
                if not empty and not is_country_code(value):
                    raise ValidationError(
                        _("{value} is not an ISO 3166 country code (e.g. DE, GB, US)", value=repr(value)),
                        field="country",
                    )
                parsed.core["country"] = None if empty else value.upper()
            elif key == "language":
                if not empty and not _LANGUAGE.match(value):
                    raise ValidationError(_("language is a code such as en, de or zh"), field="language")
                parsed.core["language"] = None if empty else value.lower()
            elif key == "timezone":
                if not empty:
                    try:
                        clock.zone(value)
                    except ValueError:
                        raise ValidationError(
                            _("unknown timezone {value} (use an IANA name such as Europe/Berlin)", value=repr(value)),
                            field="timezone",
                        ) from None
                parsed.core["timezone"] = None if empty else value
            elif key == "owner":
                parsed.core["owner_id"] = None if empty else rules.owner(uow, value).id
            elif key == "kind":
                try:
                    parsed.core["kind"] = CustomerKind(value.lower())
                except ValueError:
                    raise ValidationError(_("kind is person or account"), field="kind") from None
            elif key == "tags":
                if value.startswith("+"):
                    parsed.tags_add = _parse_tags(value[1:])
                elif value.startswith("-") and len(value) > 1:
                    parsed.tags_remove = _parse_tags(value[1:])
                else:
                    parsed.tags_set = [] if empty else _parse_tags(value)
            elif key in definitions:
                definition = definitions[key]
                parsed.custom[definition.id] = (
                    definition,
                    None if empty else custom_fields.parse_value(definition, value),
                )
            else:
                known = ", ".join([*CORE_FIELDS, *definitions])
                raise ValidationError(
                    _("unknown field {key} (fields: {known})", key=repr(raw_key), known=known), field=key
                )
        except ValidationError as exc:
            errors[exc.field or key] = exc.message
        except NotFound as exc:
            errors[key] = exc.message
    if errors:
        message = "; ".join(errors.values())
        raise ValidationError(message, field=next(iter(errors)), errors=errors)
    return parsed


def with_email(session: Session, emails: Sequence[str | None]) -> sa.ColumnElement[bool]:
    """Customers whose email is one of ``emails`` (as typed: compared normalised). The one place an exact
    lookup by email is written, for an edit's uniqueness check and an import's matching alike."""
    return contacts.email_among(session, emails)


def email_taken(holder_name: str, holder_id: int, email: str) -> Conflict:
    """The error for an email another customer has already."""
    return Conflict(_("{name} (#{id}) already has the email {email}", name=holder_name, id=holder_id, email=email))


def _check_unique_email(uow: UnitOfWork, email: str | None, customer_id: int | None) -> None:
    if not email:
        return
    clash = uow.session.scalars(
        sa.select(Customer).where(with_email(uow.session, [email]), Customer.id != (customer_id or -1))
    ).first()
    if clash:
        raise email_taken(clash.name, clash.id, email)


@dataclass(frozen=True)
class LookAlike:
    """Another customer that may be the same one: same name (as search normalises it) or phone."""

    customer_id: int
    name: str
    # "same name", "same phone" or "same name and phone"
    why: str


def look_alikes(uow: UnitOfWork, customer: Customer, limit: int = 3) -> list[LookAlike]:
    """Other customers with this customer's normalised name or phone number, oldest first.

    Unlike a duplicate email these are allowed (two "Anna Schmidt"s, a switchboard number), so
    creating one is not refused; the chat warns and links to them instead.
    """
    same_name = Customer.search_name == customer.search_name
    same_phone = contacts.phone_is(uow.session, customer.phone)
    rows = uow.session.execute(
        sa.select(Customer.id, Customer.name, same_name.label("by_name"), same_phone.label("by_phone"))
        .where(Customer.id != customer.id, sa.or_(same_name, same_phone))
        .order_by(Customer.id)
        .limit(limit)
    ).all()
    return [
        LookAlike(
            row.id, row.name, " and ".join(w for w, hit in (("name", row.by_name), ("phone", row.by_phone)) if hit)
        )
        for row in rows
    ]


def _apply(uow: UnitOfWork, customer: Customer, parsed: ParsedChanges) -> None:
    _check_unique_email(uow, parsed.core.get("email"), customer.id)
    for key, value in parsed.core.items():
        if key == "company":
            customer.company_id = companies.find_or_create(uow, value).id if value else None
        else:
            setattr(customer, key, value)
    if customer.id is None:
        uow.session.add(customer)
        uow.session.flush()
    current = set(customer.tags)
    wanted = parsed.tags_after(current)
    for row in list(customer.tag_rows):
        if row.tag not in wanted:
            customer.tag_rows.remove(row)
    for tag in sorted(wanted - current):
        customer.tag_rows.append(CustomerTag(tag=tag))
    custom_fields.apply_changes(uow, parsed.custom, customer.id)
    uow.session.flush()
    if "company" in parsed.core:
        uow.session.refresh(customer, ["company"])


def create_customer(uow: UnitOfWork, name: str, fields: Mapping[str, str | None] | None = None) -> Customer:
    given = {key.strip().lower(): value for key, value in (fields or {}).items()}
    if "name" in given:
        # Otherwise name=foo would silently replace the name given first.
        raise ValidationError(
            _("the name is given twice: {first} and {second}", first=repr(name), second=repr(given["name"])),
            field="name",
        )
    changes = {"name": name, **(fields or {})}
    rules = Rules.load(uow)
    parsed = parse_changes(uow, changes, rules)
    rules.check_required(uow, parsed, creating=True)
    customer = Customer(name=parsed.core.pop("name"))
    _apply(uow, customer, parsed)
    _reload_references(uow, customer)
    emit_created(uow, Snapshot.of(customer))
    return customer


def update_customer(uow: UnitOfWork, customer_id: int, changes: Mapping[str, str | None]) -> Customer:
    if not changes:
        raise ValidationError(_("nothing to change: give field=value pairs"))
    customer = get_customer(uow, customer_id)
    ownership.check_customer(uow, customer)
    rules = Rules.load(uow)
    parsed = parse_changes(uow, changes, rules)
    rules.check_required(uow, parsed, creating=False)
    before = current_values(uow, customer)
    _apply(uow, customer, parsed)
    _reload_references(uow, customer)
    emit_updated(uow, customer.id, customer.name, before, current_values(uow, customer))
    return customer


def emit_created(uow: UnitOfWork, customer: Snapshot) -> None:
    assert customer.id is not None, "a created customer has its id"
    events.emit(
        uow, "customer.created", entity_type="customer", entity_id=customer.id, payload=customer.created_payload()
    )


def emit_updated(
    uow: UnitOfWork, customer_id: int, name: str, before: Mapping[str, str], after: Mapping[str, str]
) -> bool:
    """customer.updated with what differs between two ``current_values``-style texts; False (and no event)
    when nothing does."""
    diff = custom_fields.changed(before, after)
    if diff:
        events.emit(
            uow,
            "customer.updated",
            entity_type="customer",
            entity_id=customer_id,
            payload={"customer_id": customer_id, "name": name, "changes": diff},
        )
    return bool(diff)


def delete_customer(uow: UnitOfWork, customer_id: int) -> None:
    """Delete a customer with what belongs to them (tags, custom field values, deals, tickets, notes,
    follow-ups: the database cascades, each row audited). Their orders stay, as anonymous orders,
    so sales figures do not change."""
    customer = get_customer(uow, customer_id)
    ownership.check_customer(uow, customer)
    name = customer.name
    custom_fields.clear_values(uow, FieldEntity.CUSTOMER, customer_id)
    uow.session.delete(customer)
    uow.session.flush()
    events.emit(
        uow,
        "customer.deleted",
        entity_type="customer",
        entity_id=customer_id,
        payload={"customer_id": customer_id, "name": name},
    )


def _reload_references(uow: UnitOfWork, customer: Customer) -> None:
    # Setting owner_id / company_id does not update the loaded relationships, and new tags sit at the
    # end of the list until it is read again in order: read them afresh.
    uow.session.expire(customer, ["owner", "company", "tag_rows"])


@dataclass(frozen=True)
class Snapshot:
    """A customer's editable fields as plain values, its company and owner by name: what a change is
    compared with, what a form shows and what customer.created carries. An edit takes one of the
    Customer it loaded; an import builds them from the rows it read for a whole chunk at once."""

    id: int | None
    name: str
    kind: CustomerKind = CustomerKind.PERSON
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    country: str | None = None
    language: str | None = None
    timezone: str | None = None
    owner_id: int | None = None
    owner: str | None = None
    tags: tuple[str, ...] = ()  # sorted, as Customer.tags

    @classmethod
    def of(cls, customer: Customer) -> Snapshot:
        return cls(
            id=customer.id,
            name=customer.name,
            kind=customer.kind,
            email=customer.email,
            phone=customer.phone,
            company=customer.company.name if customer.company else None,
            country=customer.country,
            language=customer.language,
            timezone=customer.timezone,
            owner_id=customer.owner_id,
            owner=customer.owner.name if customer.owner else None,
            tags=tuple(customer.tags),
        )

    def text(self) -> dict[str, str]:
        """Every core field as text, as a form shows it (custom fields: ``custom_fields.current_text``)."""
        return {
            "name": self.name,
            "email": self.email or "",
            "phone": self.phone or "",
            "company": self.company or "",
            "country": self.country or "",
            "language": self.language or "",
            "timezone": self.timezone or "",
            "owner": self.owner or "",
            "tags": ",".join(self.tags),
            "kind": self.kind.value,
        }

    def created_payload(self) -> dict[str, object]:
        """The customer.created payload (crm_core.events.EVENT_TYPES)."""
        return {
            "customer_id": self.id,
            "name": self.name,
            "kind": self.kind.value,
            "email": self.email,
            "phone": self.phone,
            "company": self.company,
            "country": self.country,
            "language": self.language,
            "owner_id": self.owner_id,
            "owner": self.owner,
            "tags": list(self.tags),
        }


# Relationships live in crm_core.services.relationships; these names stay for callers that know them here.
add_relationship = relationships.add_relationship
end_relationship = relationships.end_relationship


def current_values(uow: UnitOfWork, customer: Customer) -> dict[str, str]:
    """Every editable field as text, as a form shows it: to tell which submitted values changed."""
    return Snapshot.of(customer).text() | custom_fields.current_text(uow, FieldEntity.CUSTOMER, customer.id)


def changed_fields(uow: UnitOfWork, customer: Customer, submitted: Mapping[str, str | None]) -> dict[str, str | None]:
    """The submitted values that differ from what the customer has now."""
    return differing(current_values(uow, customer), submitted)


def differing(current: Mapping[str, str], submitted: Mapping[str, str | None]) -> dict[str, str | None]:
    """The submitted values that differ from ``current`` (a ``current_values`` text)."""
    return {k: v for k, v in submitted.items() if (v or "").strip() != current.get(k.strip().lower(), "")}


@dataclass
class CustomerCard:
    """Everything the card shows, gathered in a handful of indexed queries."""

    customer: Customer
    custom_fields: list[FieldValue]
    open_deals: list[Deal]
    open_tickets: list[Ticket]
    recent_interactions: list[Interaction]
    recent_orders: list[Order]
    # Current relationships from both sides, each as this customer reads it.
    relationships: list[relationships.Seen]
    # Churn risk and RFM segment from the nightly scoring (None until it has run).
    score: CustomerScore | None = None
    # Open follow-ups due by the end of today (in the timezone the card was asked for), overdue included.
    followups_due: list[FollowUp] = field(default_factory=list)
    # Lifetime value per currency, as ``orders.lifetime_values`` counts it.
    lifetime_values: dict[str, int] = field(default_factory=dict)
    # The average rating over the customer's rated tickets and how many there are; None and 0
    # when none is rated.
    rating_average: float | None = None
    rating_count: int = 0


def same_customer(attribute: Any) -> Any:
    """A loader option for a card's rows that all belong to the customer the card has loaded already:
    their ``customer`` comes from the session's identity map, not a JOIN that would also load the
    customer's tags again (one more SELECT per section of the card)."""
    return lazyload(attribute)


def get_card(uow: UnitOfWork, customer_id: int, recent: int = 3, timezone: str = "UTC") -> CustomerCard:
    session = uow.session
    statements = _card_statements()
    found = session.execute(statements.customer, {"customer_id": customer_id}).unique().one_or_none()
    if found is None:
        raise NotFound(_("there is no customer #{id}", id=customer_id))
    customer, score = found
    by_customer = {"customer_id": customer_id}
    open_deals = list(session.scalars(statements.open_deals, by_customer))
    open_tickets = list(session.scalars(statements.open_tickets, by_customer))
    interactions = list(session.scalars(statements.interactions, {**by_customer, "recent": recent}))
    orders = list(session.scalars(statements.orders, {**by_customer, "recent": recent}))
    values, average, rated = _values_and_ratings(session, statements, customer_id)
    end_of_today = clock.end_of_today(timezone)
    followups_due = list(session.scalars(statements.followups_due, {**by_customer, "end": end_of_today}))
    return CustomerCard(
        customer=customer,
        custom_fields=custom_fields.values_for(uow, FieldEntity.CUSTOMER, customer_id),
        open_deals=open_deals,
        open_tickets=open_tickets,
        recent_interactions=interactions,
        recent_orders=orders,
        relationships=relationships.current(uow, customer_id),
        score=score,
        followups_due=followups_due,
        lifetime_values=values,
        rating_average=average,
        rating_count=rated,
    )


@dataclass(frozen=True)
class _CardStatements:
    """The card's statements, built once with their parameters bound at execution: building a
    SELECT and computing its cache key cost about as much Python time as running it (the card is
    read on every ``/customer``)."""

    customer: sa.Select[Customer, CustomerScore]
    open_deals: sa.Select[Any]
    open_tickets: sa.Select[Any]
    interactions: sa.Select[Any]
    orders: sa.Select[Any]
    followups_due: sa.Select[Any]
    values_and_ratings: sa.CompoundSelect


@functools.cache
def _card_statements() -> _CardStatements:
    customer = sa.bindparam("customer_id", type_=sa.Integer)
    recent = sa.bindparam("recent", type_=sa.Integer)
    # The customer's lifetime value per currency and their tickets' average rating and count, in one
    # round trip (each statement is one).
    values = (
        sa.select(sa.literal(0), Order.currency, sa.func.sum(Order.total_cents), sa.cast(sa.null(), sa.Float))
        .where(Order.customer_id == customer)
        .group_by(Order.currency)
    )
    ratings = sa.select(
        sa.literal(1),
        sa.cast(sa.null(), sa.String),
        sa.func.count(Ticket.rating),
        sa.cast(sa.func.avg(Ticket.rating), sa.Float),
    ).where(Ticket.customer_id == customer, Ticket.rating.is_not(None))
    return _CardStatements(
        # The customer with their tags (the relationship's default is a second SELECT) and their
        # score (none until the nightly scoring ran) in one round trip.
        customer=sa.select(Customer, CustomerScore)
        .outerjoin(CustomerScore, CustomerScore.customer_id == Customer.id)
        .options(joinedload(Customer.tag_rows))
        .where(Customer.id == customer),
        open_deals=sa.select(Deal)
        .options(same_customer(Deal.customer))
        .where(Deal.customer_id == customer, Deal.stage.not_in(["won", "lost"]))
        .order_by(Deal.expected_close_on.is_(None), Deal.expected_close_on, Deal.id),
        open_tickets=sa.select(Ticket)
        .options(same_customer(Ticket.customer))
        .where(Ticket.customer_id == customer, Ticket.status.in_([TicketStatus.OPEN, TicketStatus.PENDING]))
        .order_by(Ticket.created_at.desc()),
        interactions=sa.select(Interaction)
        .where(Interaction.customer_id == customer)
        .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
        .limit(recent),
        orders=sa.select(Order)
        .where(Order.customer_id == customer, Order.kind == OrderKind.PURCHASE)
        .order_by(Order.ordered_at.desc(), Order.id.desc())
        .limit(recent),
        followups_due=sa.select(FollowUp)
        .options(same_customer(FollowUp.customer))
        .where(
            FollowUp.customer_id == customer,
            FollowUp.status.in_([FollowUpStatus.PENDING, FollowUpStatus.REMINDED]),
            FollowUp.due_at < sa.bindparam("end", type_=FollowUp.due_at.type),
        )
        .order_by(FollowUp.due_at, FollowUp.id),
        values_and_ratings=sa.union_all(values, ratings),
    )


def _values_and_ratings(
    session: Session, statements: _CardStatements, customer_id: int
) -> tuple[dict[str, int], float | None, int]:
    """The customer's lifetime value per currency, and their tickets' average rating and count."""
    totals: dict[str, int] = {}
    average, rated = None, 0
    for kind, currency, amount, mean in session.execute(statements.values_and_ratings, {"customer_id": customer_id}):
        if kind == 0:
            totals[currency] = int(amount or 0)
        elif amount:
            average, rated = float(mean), int(amount)
    return totals, average, rated
