"""``/customers``: list (search, segment filter, cursor pages), get, create, PATCH, and the customer's
notes and interactions. Every change goes through ``crm_core.services.customers`` exactly as
``/customer new`` and ``/customer edit`` do, with the same validation and events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import selectinload

from bot.api import etags
from bot.api.auth import Principal, need, unit_of_work
from bot.api.etags import check_if_match, with_etag
from bot.api.paging import Page, PageParams, page_params, paginate
from bot.api.problems import Problem
from bot.api.types import Id
from bot.roles import Permission
from crm_core import search
from crm_core.errors import ValidationError
from crm_core.models import Customer, CustomerTag, FieldEntity, Interaction, InteractionKind
from crm_core.services import custom_fields, customers, interactions, segments
from crm_core.uow import UnitOfWork

router = APIRouter(prefix="/customers", tags=["customers"])

CustomValue = str | float | date | None


class CustomerOut(BaseModel):
    id: int
    name: str
    kind: Literal["person", "account"]
    email: str | None
    phone: str | None
    company: str | None
    country: str | None
    language: str | None
    timezone: str | None
    owner_id: int | None
    owner: str | None
    tags: list[str]
    custom_fields: dict[str, CustomValue]
    lifetime_value_cents: int
    order_count: int
    last_order_at: datetime | None
    created_at: datetime
    updated_at: datetime


class _CustomerFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["person", "account"] | None = None
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=40)
    company: str | None = Field(None, max_length=200)
    country: str | None = Field(None, max_length=2, description="ISO 3166 code: DE, GB, US")
    language: str | None = Field(None, max_length=8)
    timezone: str | None = Field(None, max_length=64)
    owner_id: Id | None = Field(None, description="The owning user's id")
    tags: list[Annotated[str, Field(max_length=50)]] | None = Field(None, max_length=100)
    custom_fields: dict[str, CustomValue] | None = Field(
        None, description="Values of the custom fields defined with /field (null clears one)"
    )


class CustomerIn(_CustomerFields):
    name: str = Field(min_length=1, max_length=200)


class CustomerPatch(_CustomerFields):
    """JSON merge patch (RFC 7396): only the fields given change; null clears a field."""

    name: str | None = Field(None, min_length=1, max_length=200)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)
    kind: Literal["note", "call", "email", "meeting"] = "note"


class InteractionOut(BaseModel):
    id: int
    customer_id: int
    kind: str
    direction: str
    channel: str
    # For a chat message with a photo, a file, a voice message...: its caption (maybe empty).
    text: str
    # What such a message carried (photo, file, sticker, voice, video, audio, location), else null.
    attachment: str | None = None
    attachment_name: str | None = None
    user_id: int | None
    ticket_id: int | None
    occurred_at: datetime


def render(customer: Customer, values: list[custom_fields.FieldValue]) -> CustomerOut:
    # The editable fields as every reader of a customer takes them (company and owner by name).
    core = vars(customers.Snapshot.of(customer))
    return CustomerOut(
        **{**core, "kind": customer.kind.value, "tags": list(customer.tags)},
        custom_fields={v.definition.key: v.value for v in values},
        lifetime_value_cents=customer.lifetime_value_cents,
        order_count=customer.order_count,
        last_order_at=customer.last_order_at,
        created_at=customer.created_at,
        updated_at=customer.updated_at,
    )


def render_many(uow: UnitOfWork, rows: Sequence[Customer]) -> list[CustomerOut]:
    values = custom_fields.values_for_many(uow, FieldEntity.CUSTOMER, [c.id for c in rows])
    return [render(c, values.get(c.id, [])) for c in rows]


def _one(uow: UnitOfWork, customer_id: int, *, lock: bool = False) -> CustomerOut:
    if lock:
        etags.lock(uow.session, Customer, customer_id)
    customer = customers.get_customer(uow, customer_id)
    return render(customer, custom_fields.values_for(uow, FieldEntity.CUSTOMER, customer.id))


def _as_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}" if value == int(value) else repr(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _changes(body: _CustomerFields) -> dict[str, str | None]:
    """The body as the field=value changes the customer service takes (the same as chat's)."""
    changes: dict[str, str | None] = {}
    for key in body.model_fields_set:
        value = getattr(body, key)
        if key == "custom_fields":
            for field_key, field_value in (value or {}).items():
                if field_key.strip().lower() in customers.CORE_FIELDS:
                    raise ValidationError(
                        f"{field_key!r} is a core field, not a custom one", field=f"custom_fields.{field_key}"
                    )
                changes[field_key] = None if field_value is None else _as_text(field_value)
        elif key == "owner_id":
            changes["owner"] = None if value is None else f"#{value}"
        elif key == "tags":
            changes["tags"] = None if value is None else ",".join(value)
        else:
            changes[key] = None if value is None else str(value)
    return changes


def _prefix_custom_errors(uow: UnitOfWork, exc: ValidationError) -> ValidationError:
    """Name failing custom fields as the body does (``custom_fields.tier``)."""
    core = set(customers.CORE_FIELDS)
    renamed = {
        (name if name in core or name == "owner" else f"custom_fields.{name}"): message
        for name, message in exc.errors.items()
    }
    renamed = {("owner_id" if name == "owner" else name): message for name, message in renamed.items()}
    return ValidationError(exc.message, field=next(iter(renamed), None), errors=renamed)


@router.get("", response_model=Page[CustomerOut], summary="List or search customers")
def list_customers(
    request: Request,
    response: Response,
    page: PageParams = Depends(page_params),
    q: str | None = Query(
        None,
        max_length=200,
        description="Fuzzy search, as /customer: name, company, email, @domain, phone (or its last 6+ digits) or #id",
    ),
    filter: str | None = Query(
        None, max_length=2000, description="Segment filter language: `country=DE ltv>=1000 last_order<90d`"
    ),
    tag: str | None = Query(None, max_length=50),
    who: Principal = Depends(need(Permission.CUSTOMERS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Page[CustomerOut]:
    session = uow.session
    if q is not None:
        if filter is not None or tag is not None or page.after:
            raise Problem(400, "q gives the best matches in one page: it does not combine with filter, tag or cursor")
        hits = search.search_customers(session, q, limit=page.limit)
        found = {
            c.id: c for c in session.scalars(sa.select(Customer).where(Customer.id.in_([h.customer_id for h in hits])))
        }
        ranked = [found[h.customer_id] for h in hits if h.customer_id in found]
        items = render_many(uow, ranked)
        return Page[CustomerOut](items=items, next=None, total=len(items) if page.count else None)
    statement = sa.select(Customer).options(selectinload(Customer.tag_rows))
    if filter is not None:
        try:
            statement = statement.where(Customer.id.in_(segments.customers_query(session, filter, who.user_id)))
        except ValidationError as exc:
            raise ValidationError(exc.message, field="filter") from None
    if tag is not None:
        statement = statement.where(
            Customer.id.in_(sa.select(CustomerTag.customer_id).where(CustomerTag.tag == tag.strip().lower()))
        )
    return paginate(session, statement, Customer.id, page, request, response, lambda rows: render_many(uow, rows))


@router.get("/{customer_id}", response_model=CustomerOut, summary="One customer (with an ETag)")
def get_customer(
    customer_id: Id,
    response: Response,
    _who: Principal = Depends(need(Permission.CUSTOMERS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    return with_etag(response, _one(uow, customer_id))


@router.post("", response_model=CustomerOut, status_code=201, summary="Create a customer")
def create_customer(
    body: CustomerIn,
    response: Response,
    request: Request,
    _who: Principal = Depends(need(Permission.CUSTOMERS_WRITE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    changes = _changes(body)
    changes.pop("name", None)
    try:
        customer = customers.create_customer(uow, body.name, {k: v for k, v in changes.items() if v is not None})
    except ValidationError as exc:
        raise _prefix_custom_errors(uow, exc) from None
    response.headers["Location"] = str(request.url_for("get_customer", customer_id=customer.id))
    return with_etag(response, _one(uow, customer.id))


@router.patch("/{customer_id}", response_model=CustomerOut, summary="Change a customer (JSON merge patch)")
def patch_customer(
    customer_id: Id,
    body: CustomerPatch,
    response: Response,
    if_match: str | None = Header(None, description="The ETag you read: 412 if the customer changed since"),
    _who: Principal = Depends(need(Permission.CUSTOMERS_WRITE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    check_if_match(if_match, _one(uow, customer_id, lock=True))
    if "name" in body.model_fields_set and body.name is None:
        raise ValidationError("a customer needs a name", field="name")
    changes = _changes(body)
    if changes:
        try:
            customers.update_customer(uow, customer_id, changes)
        except ValidationError as exc:
            raise _prefix_custom_errors(uow, exc) from None
    return with_etag(response, _one(uow, customer_id))


@router.delete(
    "/{customer_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a customer with their deals, tickets, notes and follow-ups (orders stay, anonymous)",
)
def delete_customer(
    customer_id: Id,
    if_match: str | None = Header(None, description="The ETag you read: 412 if the customer changed since"),
    _who: Principal = Depends(need(Permission.CUSTOMERS_WRITE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Response:
    check_if_match(if_match, _one(uow, customer_id, lock=True))
    customers.delete_customer(uow, customer_id)
    return Response(status_code=204)


@router.get(
    "/{customer_id}/interactions", response_model=Page[InteractionOut], summary="A customer's notes and interactions"
)
def list_interactions(
    customer_id: Id,
    request: Request,
    response: Response,
    page: PageParams = Depends(page_params),
    _who: Principal = Depends(need(Permission.CUSTOMERS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    customers.get_customer(uow, customer_id)
    statement = sa.select(Interaction).where(Interaction.customer_id == customer_id)
    return paginate(
        uow.session,
        statement,
        Interaction.id,
        page,
        request,
        response,
        lambda rows: [render_interaction(i) for i in rows],
    )


@router.post(
    "/{customer_id}/notes", response_model=InteractionOut, status_code=201, summary="Log a note, call, email or meeting"
)
def add_note(
    customer_id: Id,
    body: NoteIn,
    _who: Principal = Depends(need(Permission.NOTES_WRITE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    interaction = interactions.log_interaction(uow, customer_id, body.text, kind=InteractionKind(body.kind))
    return render_interaction(interaction)


def render_interaction(interaction: Interaction) -> InteractionOut:
    return InteractionOut(
        id=interaction.id,
        customer_id=interaction.customer_id,
        kind=str(interaction.kind),
        direction=str(interaction.direction),
        channel=interaction.channel,
        text=interaction.text,
        attachment=interaction.attachment_kind,
        attachment_name=interaction.attachment_name,
        user_id=interaction.user_id,
        ticket_id=interaction.ticket_id,
        occurred_at=interaction.occurred_at,
    )
