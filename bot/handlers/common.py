"""Formatting shared by handlers: dates in the caller's timezone, money, short entity lines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from bot.args import Param
from bot.forms import form_input
from bot.messages import Button, Field, Form, FormInput, InputKind, Item, Request, Section
from crm_core import clock, i18n
from crm_core.models import Deal, FieldEntity, FieldType, FollowUp, Ticket
from crm_core.money import format_money
from crm_core.services import custom_fields, deals, tickets
from crm_core.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.context import Context
    from bot.router import FormBuilder


def fmt_date(value: date | datetime | None, tz: str = "UTC") -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = value.astimezone(clock.zone(tz)).date()
    return value.isoformat()


def fmt_datetime(value: datetime | None, tz: str = "UTC") -> str:
    if value is None:
        return "—"
    return value.astimezone(clock.zone(tz)).strftime("%Y-%m-%d %H:%M")


def money(cents: int, currency: str = "EUR") -> str:
    return format_money(cents, currency)


def clip(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def deal_close_text(deal: Deal, tz: str) -> str:
    """ "2027-01-31", or with a warning when the deal is still open past that day (in ``tz``)."""
    if deal.expected_close_on is None:
        return "—"
    if deals.is_overdue(deal, clock.today_in(tz)):
        return f"⚠ OVERDUE: was to close {fmt_date(deal.expected_close_on)}"
    return fmt_date(deal.expected_close_on)


def deal_item(deal: Deal, tz: str, with_customer: bool = False) -> Item:
    who = f" · {deal.customer.name}" if with_customer else ""
    close = ""
    if deal.expected_close_on:
        late = deals.is_overdue(deal, clock.today_in(tz))
        close = f" · {deal_close_text(deal, tz)}" if late else f" · closes {fmt_date(deal.expected_close_on)}"
    owner = f" · {deal.owner.name}" if deal.owner else ""
    return Item(
        text=f"#{deal.id} {deal.title}{who}",
        detail=f"{deal.stage} · {money(deal.amount_cents, deal.currency)} · {deal.probability}%{close}{owner}",
        button=Button("Change stage", f"/deal stage {deal.id}", opens_form=True) if deal.stage.is_open else None,
    )


def fmt_duration(value: timedelta) -> str:
    """A short, rounded-down duration: "45m", "3h 20m", "2d 4h"."""
    minutes = max(0, int(value.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


def overdue_text(ticket: Ticket, now: datetime | None = None) -> str | None:
    late = tickets.overdue(ticket, now)
    return f"⚠ OVERDUE: {late.what} {fmt_duration(late.by)} late" if late else None


def rating_text(rating: int) -> str:
    return f"{'★' * rating}{'☆' * (5 - rating)} {rating}/5"


def ticket_item(ticket: Ticket, tz: str, with_customer: bool = False) -> Item:
    who = f" · {ticket.customer.name}" if with_customer else ""
    parts = [
        str(ticket.status),
        str(ticket.priority),
        ticket.assignee.name if ticket.assignee else "unassigned",
        f"opened {fmt_date(ticket.created_at, tz)}",
    ]
    if late := overdue_text(ticket):
        parts.append(late)
    if ticket.rating:
        parts.append(f"rated {ticket.rating}/5")
    return Item(
        text=f"#{ticket.id} {ticket.subject}{who}",
        detail=" · ".join(parts),
        button=Button("Open", f"/ticket {ticket.id}"),
    )


def followup_item(followup: FollowUp, tz: str, with_customer: bool = False) -> Item:
    late = " · overdue" if followup.due_at < clock.utcnow() else ""
    who = f" · {followup.customer.name}" if with_customer else ""
    return Item(
        text=f"#{followup.id} {clip(followup.text, 100)}{who}",
        detail=f"due {fmt_datetime(followup.due_at, tz)} · {followup.user.name} · {followup.status}{late}",
        button=Button("Done", f"/followup done {followup.id}"),
    )


def followups_section(followups: list[FollowUp], tz: str, title: str, with_customer: bool = False) -> Section:
    return Section(
        title=title, items=tuple(followup_item(f, tz, with_customer) for f in followups), empty="No open follow-ups."
    )


_FIELD_INPUTS = {FieldType.NUMBER: InputKind.NUMBER, FieldType.DATE: InputKind.DATE, FieldType.CHOICE: InputKind.CHOICE}


def custom_field_inputs(
    uow: UnitOfWork, entity: FieldEntity, current: Mapping[str, str] | None = None
) -> tuple[FormInput, ...]:
    """A form input per custom field of ``entity`` (required ones required), with current values."""
    return tuple(
        FormInput(
            name=d.key,
            label=d.label,
            kind=_FIELD_INPUTS.get(d.type, InputKind.TEXT),
            required=d.required,
            choices=tuple(d.choices or ()),
            initial=(current or {}).get(d.key),
        )
        for d in custom_fields.definitions(uow, entity)
    )


def edited_inputs(form: Form, submitted: Mapping[str, str | None]) -> dict[str, str | None]:
    """A submitted edit form sends every input: only what differs from its initial value is an edit."""
    initial = {i.name: i.initial or "" for i in form.inputs}
    return {k: v for k, v in submitted.items() if (v or "").strip() != initial.get(k, "")}


def custom_field_rows(uow: UnitOfWork, entity: FieldEntity, entity_id: int) -> tuple[Field, ...]:
    """The record's custom field values, for its card."""
    return tuple(Field(v.definition.label, v.display) for v in custom_fields.values_for(uow, entity, entity_id))


def form_with_fields(entity: FieldEntity, title: str, command: str, params: Iterable[Param]) -> FormBuilder:
    """The form of a create command: its own parameters, then the custom fields of ``entity``."""

    def build(req: Request, ctx: Context, fixed: dict[str, str]) -> Form:
        inputs = [form_input(p) for p in params if p.name not in fixed]
        inputs += custom_field_inputs(ctx.uow, entity)
        # The title is marked with N_ by the caller and translated for the person asking.
        return Form(title=i18n._(title), command=command, inputs=tuple(inputs), fixed=fixed)

    return build
