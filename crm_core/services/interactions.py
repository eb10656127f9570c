"""Interactions: log a note, call, email, meeting or chat message against a customer, and read a
customer's whole history a page at a time."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from crm_core import attachments, clock, events, paging
from crm_core.attachments import Attachment
from crm_core.errors import ValidationError
from crm_core.i18n import N_, _, pgettext
from crm_core.models import Direction, Interaction, InteractionKind
from crm_core.services.customers import get_customer
from crm_core.text import check_text
from crm_core.uow import UnitOfWork

MAX_TEXT = 4000


def log_interaction(
    uow: UnitOfWork,
    customer_id: int,
    text: str,
    kind: InteractionKind = InteractionKind.NOTE,
    channel: str | None = None,
    direction: Direction = Direction.INTERNAL,
    occurred_at: datetime | None = None,
    ticket_id: int | None = None,
    attachment: Attachment | None = None,
) -> Interaction:
    """Log an interaction; a chat message with an ``attachment`` (a photo, a voice message) may have
    no text."""
    body = check_text((text or "").strip(), "note", field="text")
    if not body and attachment is None:
        raise ValidationError(_("the note is empty: write some text after the customer"), field="text")
    if len(body) > MAX_TEXT:
        raise ValidationError(_("the note is longer than {limit} characters", limit=MAX_TEXT), field="text")
    customer = get_customer(uow, customer_id)
    interaction = Interaction(
        customer_id=customer_id,
        user_id=uow.actor.user_id,
        kind=kind,
        direction=direction,
        channel=channel or uow.actor.platform,
        text=body,
        attachment_kind=attachment.kind if attachment else None,
        attachment_name=attachment.name if attachment else None,
        occurred_at=occurred_at or clock.utcnow(),
        ticket_id=ticket_id,
    )
    uow.session.add(interaction)
    uow.session.flush()
    events.emit(
        uow,
        "note.created",
        entity_type="interaction",
        entity_id=interaction.id,
        payload={
            "interaction_id": interaction.id,
            "customer_id": customer.id,
            "customer": customer.name,
            "kind": str(interaction.kind),
            "direction": str(interaction.direction),
            "channel": interaction.channel,
            "text": interaction.text,
            "attachment": interaction.attachment_kind,
            "user_id": interaction.user_id,
            "ticket_id": interaction.ticket_id,
        },
    )
    return interaction


def recent_interactions(uow: UnitOfWork, customer_id: int, limit: int = 10) -> list[Interaction]:
    return list(
        uow.session.scalars(
            sa.select(Interaction)
            .where(Interaction.customer_id == customer_id)
            .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
            .limit(limit)
        )
    )


_AGE = re.compile(r"^(\d{1,4})\s*([dw])$")
SINCE_EXAMPLES = N_("a date (2026-01-31) or an age (30d, 12w)")


def parse_since(value: str, timezone: str = "UTC", now: datetime | None = None) -> datetime:
    """The instant ``since=`` means: the start of that day in ``timezone``, or that long ago."""
    raw = value.strip().lower()
    if age := _AGE.match(raw):
        number, unit = int(age.group(1)), age.group(2)
        return (now or clock.utcnow()) - timedelta(days=number * (7 if unit == "w" else 1))
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise ValidationError(
            _("since takes {examples}, not {value}", examples=_(SINCE_EXAMPLES), value=repr(value)), field="since"
        ) from None
    return clock.local_instant(day, datetime.min.time(), timezone)


def kind_label(kind: str) -> str:
    """An interaction kind as the reader says it ("call" / "电话")."""
    return {
        "note": pgettext("interaction kind", "note"),
        "call": pgettext("interaction kind", "call"),
        "email": pgettext("interaction kind", "email"),
        "meeting": pgettext("interaction kind", "meeting"),
        "chat": pgettext("interaction kind", "chat"),
    }.get(str(kind), str(kind))


def shown_text(interaction: Interaction) -> str:
    """The interaction's text as the reader sees it: a chat message's attachment named in their words."""
    return attachments.shown(interaction.text, interaction.attachment_kind, interaction.attachment_name)


def parse_kinds(value: str) -> list[InteractionKind]:
    """``call`` or ``call,note``: the interaction kinds asked for; an unknown one names the allowed ones."""
    kinds = []
    for word in (w.strip().lower() for w in value.split(",")):
        if not word:
            continue
        try:
            kinds.append(InteractionKind(word))
        except ValueError:
            allowed = ", ".join(k.value for k in InteractionKind)
            raise ValidationError(
                _("kind must be one of {allowed}, not {value}", allowed=allowed, value=repr(word)), field="kind"
            ) from None
    return kinds


def history_page(
    uow: UnitOfWork,
    customer_id: int,
    number: int = 1,
    kinds: Iterable[InteractionKind] = (),
    since: datetime | None = None,
    size: int = paging.PAGE_SIZE,
) -> paging.Page[Interaction]:
    """Page ``number`` of everything logged on the customer, newest first, and how much there is.

    Reads one page on the (customer_id, occurred_at) index; the kind and since filters narrow it.
    """
    get_customer(uow, customer_id)
    statement = sa.select(Interaction).where(Interaction.customer_id == customer_id)
    wanted = list(kinds)
    if wanted:
        statement = statement.where(Interaction.kind.in_(wanted))
    if since is not None:
        statement = statement.where(Interaction.occurred_at >= since)
    statement = statement.order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
    return paging.fetch(uow.session, statement, number, size)
