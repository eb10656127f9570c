"""Follow-ups: set, list, complete, cancel and snooze them; send the reminder when one is due.

Each open follow-up has a one-off job ``followup:<id>`` in the scheduled-job registry, written
in the same transaction, so the scheduler wakes at its time even if it was set from another
process. The reminder is rendered from the ``followup_reminder`` template in the rep's
language and goes to their DM through the outbox, keyed by follow-up and due time: firing twice
cannot send twice, and a snoozed follow-up (new due time) reminds again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from crm_core import clock, events, i18n, outbox, paging
from crm_core.errors import Conflict, Forbidden, NotFound, ValidationError
from crm_core.i18n import _
from crm_core.models import FollowUp, FollowUpStatus, Role, User
from crm_core.money import format_totals
from crm_core.outbox_payload import PayloadButton
from crm_core.scheduling import JobRun, Once, schedule, unschedule
from crm_core.services import customers, interactions, orders, users
from crm_core.templating import render_message
from crm_core.text import check_text
from crm_core.uow import UnitOfWork

log = logging.getLogger("chatcrm.followups")

MAX_TEXT = 1000
REMINDER_TEMPLATE = "followup_reminder"
FIRE_TASK = "followups.fire"
# The reminder's buttons, in the rep's language when it is sent.
DONE_LABEL = i18n.N_("Done")
SNOOZE_LABEL = i18n.N_("Snooze 1 day")
OPEN = (FollowUpStatus.PENDING, FollowUpStatus.REMINDED)


def job_id(followup_id: int) -> str:
    return f"followup:{followup_id}"


def create_followup(
    uow: UnitOfWork, customer_id: int, user_id: int, due_at: datetime, text: str, timezone: str = "UTC"
) -> FollowUp:
    body = check_text(" ".join((text or "").split()), "follow-up text", field="text")
    if not body:
        raise ValidationError(_('say what to follow up on after the time, e.g. "call about renewal"'), field="text")
    if len(body) > MAX_TEXT:
        raise ValidationError(_("the follow-up text is longer than {limit} characters", limit=MAX_TEXT), field="text")
    if due_at <= clock.utcnow():
        raise ValidationError(_("that time has already passed; pick a time in the future"), field="when")
    customers.get_customer(uow, customer_id)
    followup = FollowUp(
        customer_id=customer_id,
        user_id=user_id,
        created_by_id=uow.actor.user_id,
        due_at=due_at,
        text=body,
        timezone=timezone,
        status=FollowUpStatus.PENDING,
        snooze_count=0,
    )
    uow.session.add(followup)
    uow.session.flush()
    _schedule_reminder(uow, followup)
    return followup


def _schedule_reminder(uow: UnitOfWork, followup: FollowUp) -> None:
    # No misfire grace: a reminder that came due while the worker was down is still sent, once.
    schedule(
        uow,
        job_id(followup.id),
        FIRE_TASK,
        Once(followup.due_at),
        args={"followup_id": followup.id},
        misfire_grace_seconds=None,
    )


def get_followup(uow: UnitOfWork, followup_id: int) -> FollowUp:
    followup = uow.session.get(FollowUp, followup_id)
    if followup is None:
        raise NotFound(_("there is no follow-up #{id}", id=followup_id))
    return followup


def _check_may_change(followup: FollowUp, actor: User | None) -> None:
    if actor is None:
        raise Forbidden(_("the CRM does not know you, so you have no follow-ups"))
    if followup.user_id != actor.id and actor.role not in (Role.MANAGER, Role.ADMIN):
        raise Forbidden(
            _(
                "follow-up #{id} is {name}'s; only they or a manager can change it",
                id=followup.id,
                name=followup.user.name,
            )
        )


def _open(followup: FollowUp) -> None:
    # A Conflict, not a ValidationError: the command was typed right (chat shows no usage line under
    # it) and the follow-up's state is what stands in the way (the API answers 409).
    if not followup.status.is_open:
        if followup.status is FollowUpStatus.DONE:
            raise Conflict(_("follow-up #{id} is already done", id=followup.id))
        raise Conflict(_("follow-up #{id} is already cancelled", id=followup.id))


def complete(uow: UnitOfWork, followup_id: int, actor: User | None) -> FollowUp:
    followup = get_followup(uow, followup_id)
    _check_may_change(followup, actor)
    _open(followup)
    followup.status = FollowUpStatus.DONE
    followup.done_at = clock.utcnow()
    unschedule(uow, job_id(followup.id))
    uow.session.flush()
    return followup


def cancel(uow: UnitOfWork, followup_id: int, actor: User | None) -> FollowUp:
    followup = get_followup(uow, followup_id)
    _check_may_change(followup, actor)
    _open(followup)
    followup.status = FollowUpStatus.CANCELLED
    unschedule(uow, job_id(followup.id))
    uow.session.flush()
    return followup


def snooze(uow: UnitOfWork, followup_id: int, actor: User | None, days: int = 1) -> FollowUp:
    """Due again ``days`` later on the rep's calendar, counted from now (or from the due time, if
    that is still ahead)."""
    if not 1 <= days <= 365:
        raise ValidationError(_("snooze for 1 to 365 days"), field="days")
    followup = get_followup(uow, followup_id)
    _check_may_change(followup, actor)
    _open(followup)
    start = max(clock.utcnow(), followup.due_at).astimezone(clock.zone(followup.timezone))
    local = start.replace(tzinfo=None) + timedelta(days=days)
    followup.due_at = clock.local_instant(local.date(), local.time(), followup.timezone)
    followup.status = FollowUpStatus.PENDING
    followup.snooze_count += 1
    uow.session.flush()
    _schedule_reminder(uow, followup)
    return followup


def open_matching(
    *, user_id: int | None = None, customer_id: int | None = None, due_before: datetime | None = None
) -> sa.Select[FollowUp]:
    statement = sa.select(FollowUp).where(FollowUp.status.in_(OPEN))
    if user_id is not None:
        statement = statement.where(FollowUp.user_id == user_id)
    if customer_id is not None:
        statement = statement.where(FollowUp.customer_id == customer_id)
    if due_before is not None:
        statement = statement.where(FollowUp.due_at < due_before)
    return statement.order_by(FollowUp.due_at, FollowUp.id)


def list_open(
    uow: UnitOfWork,
    *,
    user_id: int | None = None,
    customer_id: int | None = None,
    due_before: datetime | None = None,
    limit: int = 50,
) -> list[FollowUp]:
    """Open follow-ups (pending or reminded, not done), earliest first."""
    statement = open_matching(user_id=user_id, customer_id=customer_id, due_before=due_before)
    return list(uow.session.scalars(statement.limit(limit)))


def open_page(
    uow: UnitOfWork,
    number: int = 1,
    *,
    user_id: int | None = None,
    due_before: datetime | None = None,
    size: int = paging.PAGE_SIZE,
) -> paging.Page[FollowUp]:
    """One page of ``list_open``, and how many open follow-ups match in all."""
    return paging.fetch(uow.session, open_matching(user_id=user_id, due_before=due_before), number, size)


def due_today(uow: UnitOfWork, user_id: int, tz_name: str) -> list[FollowUp]:
    """A rep's open follow-ups due by the end of their today, overdue ones included (Slack App
    Home, daily overviews); the customer card has its own in ``customers.get_card``."""
    return list_open(uow, user_id=user_id, due_before=clock.end_of_today(tz_name))


# The reminder


def reminder_context(uow: UnitOfWork, followup: FollowUp, currency: str = "EUR") -> dict[str, Any]:
    """The data the ``followup_reminder`` template gets (plain values only; see templates/.../sample.json)."""
    card = customers.get_card(uow, followup.customer_id)
    c = card.customer
    tz = followup.user.timezone or followup.timezone
    open_value: dict[str, int] = {}
    for deal in card.open_deals:
        open_value[deal.currency] = open_value.get(deal.currency, 0) + deal.amount_cents
    last = card.recent_interactions[0] if card.recent_interactions else None
    return {
        "rep": {"name": followup.user.name},
        "followup": {
            "id": followup.id,
            "text": followup.text,
            # Dates as the bot writes them in the current (the rep's) language: 2026-12-02 09:00 in
            # English, 2026年12月2日 09:00 in Chinese.
            "due": i18n.display_datetime(followup.due_at, tz),
            "timezone": tz,
            "snoozed": followup.snooze_count,
        },
        "customer": {
            "id": c.id,
            "name": c.name,
            "company": c.company.name if c.company else "",
            "email": c.email or "",
            "phone": c.phone or "",
            "owner": c.owner.name if c.owner else "",
            "lifetime_value": format_totals(orders.lifetime_values(uow.session, [c.id]).get(c.id, {}), currency),
            "open_deals": len(card.open_deals),
            "open_deals_value": format_totals(open_value, currency),
            "open_tickets": len(card.open_tickets),
            "last_interaction": (
                " · ".join(
                    (
                        i18n.display_date(last.occurred_at, tz),
                        interactions.kind_label(last.kind),
                        " ".join(interactions.shown_text(last).split())[:120],
                    )
                )
                if last
                else ""
            ),
        },
    }


def _buttons(followup: FollowUp, language: str) -> tuple[PayloadButton, ...]:
    with i18n.use_language(language):
        return (
            PayloadButton(i18n._(DONE_LABEL), f"/followup done {followup.id}", "primary"),
            PayloadButton(i18n._(SNOOZE_LABEL), f"/followup snooze {followup.id} 1d"),
        )


def fire_followup(run: JobRun) -> None:
    """Scheduled task: send the reminder of one follow-up (once per due time)."""
    with run.uow() as uow:
        followup = uow.session.get(FollowUp, run.args["followup_id"])
        if followup is None or followup.status is not FollowUpStatus.PENDING:
            return  # done, cancelled or already reminded meanwhile
        rep = followup.user
        address = users.dm_address(rep)
        followup.status = FollowUpStatus.REMINDED
        followup.reminded_at = clock.utcnow()
        events.emit(
            uow,
            "followup.due",
            entity_type="followup",
            entity_id=followup.id,
            payload={
                "followup_id": followup.id,
                "customer_id": followup.customer_id,
                "customer": followup.customer.name,
                "user_id": rep.id,
                "user": rep.name,
                "due_at": followup.due_at.isoformat(),
                "text": followup.text,
                "snoozed": followup.snooze_count,
            },
        )
        if address is None or not rep.active:
            log.warning("follow-up #%s: %s has no chat account to remind them on", followup.id, rep.name)
            return
        language = rep.language or i18n.default_language()
        # In the rep's language: the amounts in the reminder's data and the template's own words.
        with i18n.use_language(language):
            rendered = render_message(
                uow.session,
                REMINDER_TEMPLATE,
                address.platform,
                language,
                reminder_context(uow, followup, run.config.get("CHATCRM_CURRENCY", "EUR")),
            )
        outbox.enqueue(
            uow,
            idempotency_key=f"followup:{followup.id}:{followup.due_at.isoformat()}",
            kind="reminder",
            platform=address.platform,
            conversation=address.external_id,
            payload=rendered.payload(buttons=_buttons(followup, language)),
            user_id=rep.id,
            customer_id=followup.customer_id,
        )
