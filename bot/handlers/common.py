"""Formatting shared by handlers: dates in the caller's timezone, money, short entity lines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from bot.args import Param
from bot.forms import form_input
from bot.messages import Button, Field, Form, FormInput, InputKind, Item, Request, Section
from crm_core import clock, i18n
from crm_core.i18n import _, pgettext
from crm_core.models import (
    Deal,
    DealStage,
    FieldEntity,
    FieldType,
    FollowUp,
    FollowUpStatus,
    Ticket,
    TicketPriority,
    TicketStatus,
)
from crm_core.money import format_money
from crm_core.paging import Page
from crm_core.services import custom_fields, deals, interactions, tickets
from crm_core.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.context import Context
    from bot.router import FormBuilder


def fmt_date(value: date | datetime | None, tz: str = "UTC") -> str:
    return i18n.display_date(value, tz)


def fmt_datetime(value: datetime | None, tz: str = "UTC") -> str:
    return i18n.display_datetime(value, tz)


def money(cents: int, currency: str = "EUR") -> str:
    return format_money(cents, currency)


def clip(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def counted_position(page: Page, counted: str) -> str:
    """Where a page sits in a list, around ``counted`` (the whole count in words, an ``ngettext``
    such as "159 deals"): "159 deals" when the list fits one page, "21–40 of 159 deals" otherwise."""
    if page.number == 1 and not page.has_more:
        return counted
    if not page.items:
        return _("page {number} is past the end: {counted}", number=page.number, counted=counted)
    return _(
        "{first}–{last} of {counted}",
        first=i18n.format_number(page.first),
        last=i18n.format_number(page.last),
        counted=counted,
    )


def stage_label(stage: DealStage) -> str:
    """A deal stage as shown to the reader ("won" / "赢单"); commands still take the English word."""
    return deals.stage_label(stage)


def deal_close_text(deal: Deal, tz: str) -> str:
    """ "2027-01-31", or with a warning when the deal is still open past that day (in ``tz``)."""
    if deal.expected_close_on is None:
        return "—"
    if deals.is_overdue(deal, clock.today_in(tz)):
        return _("⚠ OVERDUE: was to close {date}", date=fmt_date(deal.expected_close_on))
    return fmt_date(deal.expected_close_on)


def deal_item(deal: Deal, tz: str, with_customer: bool = False) -> Item:
    who = f" · {deal.customer.name}" if with_customer else ""
    parts = [
        stage_label(deal.stage),
        money(deal.amount_cents, deal.currency),
        i18n.format_percent(deal.probability / 100),
    ]
    if deal.expected_close_on:
        late = deals.is_overdue(deal, clock.today_in(tz))
        parts.append(deal_close_text(deal, tz) if late else _("closes {date}", date=fmt_date(deal.expected_close_on)))
    if deal.owner:
        parts.append(deal.owner.name)
    return Item(
        text=f"#{deal.id} {deal.title}{who}",
        detail=" · ".join(parts),
        button=Button(_("Change stage"), f"/deal stage {deal.id}", opens_form=True) if deal.stage.is_open else None,
    )


def fmt_duration(value: timedelta) -> str:
    """A short, rounded-down duration: "45m", "3h 20m", "2d 4h" (zh: "2天4小时")."""
    minutes = max(0, int(value.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return _("{days}d {hours}h", days=days, hours=hours) if hours else _("{days}d", days=days)
    if hours:
        return _("{hours}h {minutes}m", hours=hours, minutes=minutes) if minutes else _("{hours}h", hours=hours)
    return _("{minutes}m", minutes=minutes)


def overdue_text(ticket: Ticket, now: datetime | None = None) -> str | None:
    late = tickets.overdue(ticket, now)
    if not late:
        return None
    if late.what == "first response":
        return _("⚠ OVERDUE: first response {duration} late", duration=fmt_duration(late.by))
    return _("⚠ OVERDUE: resolution {duration} late", duration=fmt_duration(late.by))


def rating_text(rating: int) -> str:
    return f"{'★' * rating}{'☆' * (5 - rating)} {rating}/5"


def ticket_status_label(status: TicketStatus) -> str:
    return tickets.status_label(status)


def ticket_priority_label(priority: TicketPriority) -> str:
    return tickets.priority_label(priority)


def ticket_item(ticket: Ticket, tz: str, with_customer: bool = False) -> Item:
    who = f" · {ticket.customer.name}" if with_customer else ""
    parts = [
        ticket_status_label(ticket.status),
        ticket_priority_label(ticket.priority),
        ticket.assignee.name if ticket.assignee else _("unassigned"),
        _("opened {date}", date=fmt_date(ticket.created_at, tz)),
    ]
    if late := overdue_text(ticket):
        parts.append(late)
    if ticket.rating:
        parts.append(_("rated {rating}/5", rating=ticket.rating))
    return Item(
        text=f"#{ticket.id} {ticket.subject}{who}",
        detail=" · ".join(parts),
        button=Button(pgettext("button", "Open"), f"/ticket {ticket.id}"),
    )


def interaction_kind_label(kind: str) -> str:
    """An interaction kind as the reader sees it ("call" / "电话")."""
    return interactions.kind_label(kind)


def followup_status_label(status: FollowUpStatus) -> str:
    return {
        FollowUpStatus.PENDING: pgettext("follow-up status", "pending"),
        FollowUpStatus.REMINDED: pgettext("follow-up status", "reminded"),
        FollowUpStatus.DONE: pgettext("follow-up status", "done"),
        FollowUpStatus.CANCELLED: pgettext("follow-up status", "cancelled"),
    }.get(status, str(status))


def followup_item(followup: FollowUp, tz: str, with_customer: bool = False) -> Item:
    parts = [
        _("due {time}", time=fmt_datetime(followup.due_at, tz)),
        followup.user.name,
        followup_status_label(followup.status),
    ]
    if followup.due_at < clock.utcnow():
        parts.append(_("overdue"))
    who = f" · {followup.customer.name}" if with_customer else ""
    return Item(
        text=f"#{followup.id} {clip(followup.text, 100)}{who}",
        detail=" · ".join(parts),
        button=Button(pgettext("button", "Done"), f"/followup done {followup.id}"),
    )


def followups_section(followups: list[FollowUp], tz: str, title: str, with_customer: bool = False) -> Section:
    return Section(
        title=title,
        items=tuple(followup_item(f, tz, with_customer) for f in followups),
        empty=_("No open follow-ups."),
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
    return tuple(Field(v.definition.label, v.shown) for v in custom_fields.values_for(uow, entity, entity_id))


def form_with_fields(entity: FieldEntity, title: str, command: str, params: Iterable[Param]) -> FormBuilder:
    """The form of a create command: its own parameters, then the custom fields of ``entity``."""

    def build(req: Request, ctx: Context, fixed: dict[str, str]) -> Form:
        inputs = [form_input(p) for p in params if p.name not in fixed]
        inputs += custom_field_inputs(ctx.uow, entity)
        # The title is marked with N_ by the caller and translated for the person asking.
        return Form(title=i18n._(title), command=command, inputs=tuple(inputs), fixed=fixed)

    return build
