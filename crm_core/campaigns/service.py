"""Managing campaigns: create a draft, preview it, test it, start it (with the safety checks),
pause, resume, cancel, list.

Starting checks, in order: the segment has reachable recipients; the template renders for every
one of them (the first failure is named: recipient and reason, nothing is scheduled); a
campaign to more than ``confirm_over`` recipients needs a second, explicit confirmation by a
manager or admin. A started campaign is a scheduler job (crm_core.campaigns.delivery.run_task
for scheduled ones, crm_core.campaigns.triggers.scan_task for trigger campaigns).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core import clock, outbox, scheduling
from crm_core.campaigns.audience import eligible, eligible_count
from crm_core.campaigns.delivery import CAMPAIGN_CANCELLED, KIND
from crm_core.campaigns.rendering import CampaignRenderer, Recipient, contexts, readable, template_exists
from crm_core.campaigns.reporting import status_label
from crm_core.errors import Conflict, NotFound, ValidationError
from crm_core.i18n import _, pgettext
from crm_core.models import (
    Campaign,
    CampaignRecipient,
    CampaignRun,
    CampaignStatus,
    OutboxMessage,
    OutboxStatus,
    RunStatus,
    User,
)
from crm_core.scheduling import Calendar, Interval, Once
from crm_core.services import segments, users
from crm_core.templating import TemplateRefused, kinds, languages
from crm_core.templating.catalog import CUSTOM_PREFIX
from crm_core.text import unquote
from crm_core.uow import UnitOfWork
from crm_core.when import EXAMPLES, parse_when_text

DEFAULT_CONFIRM_OVER = 1000
REPEATS = ("weekly", "monthly")
TRIGGERS = ("first_order", "ticket_resolved")
TRIGGER_SCAN_SECONDS = 600
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
OPTION_KEYS = ("segment", "template", "at", "repeat", "lang", "trigger")
_DELAY = re.compile(r"^(\d{1,3})([dh])$")


@dataclass(frozen=True)
class Options:
    segment: str
    template: str
    at: datetime | None
    repeat: str | None
    language: str
    trigger: str | None
    delay: timedelta | None


def split_options(text: str) -> dict[str, str]:
    """``segment=vip at=tomorrow 9:00 repeat=weekly`` -> {"segment": "vip", "at": "tomorrow 9:00", ...}:
    words without ``key=`` belong to the option before them."""
    found: dict[str, str] = {}
    current: str | None = None
    for word in text.split():
        key, sep, value = word.partition("=")
        if sep and key.lower() in OPTION_KEYS:
            current = key.lower()
            if current in found:
                raise ValidationError(_("{key}= is given twice", key=current))
            found[current] = value
        elif current is None:
            raise ValidationError(
                _(
                    "{word} is not an option: write key=value with keys {keys}",
                    word=repr(word),
                    keys=", ".join(OPTION_KEYS),
                )
            )
        elif sep and not key.isalpha():
            found[current] = f"{found[current]} {word}".strip()
        elif sep:
            raise ValidationError(
                _("{key} is not an option (options: {keys})", key=repr(key), keys=", ".join(OPTION_KEYS))
            )
        else:
            found[current] = f"{found[current]} {word}".strip()
    # at="tomorrow 10:00": quotes group the words of a value and are not part of it.
    return {key: unquote(value) for key, value in found.items()}


def _trigger(raw: str) -> tuple[str, timedelta]:
    event, _plus, delay = raw.partition("+")
    if event not in TRIGGERS:
        raise ValidationError(
            _(
                "trigger={raw}: the event is one of {events}, e.g. trigger=first_order+3d",
                raw=repr(raw),
                events=", ".join(TRIGGERS),
            )
        )
    match = _DELAY.match(delay or "0d")
    if not match:
        raise ValidationError(_("trigger={raw}: the delay is days or hours, e.g. +3d or +12h", raw=repr(raw)))
    amount = int(match.group(1))
    return event, timedelta(days=amount) if match.group(2) == "d" else timedelta(hours=amount)


def parse_options(uow: UnitOfWork, text: str, tz: str, now: datetime | None = None) -> Options:
    raw = split_options(text)
    missing = [k for k in ("segment", "template") if not raw.get(k)]
    if missing:
        options = _("segment= and template=") if len(missing) == 2 else f"{missing[0]}="
        raise ValidationError(
            _(
                "missing {options}; e.g. /campaign new autumn segment=vip template=campaign_announcement "
                "at=tomorrow 10:00",
                options=options,
            )
        )
    segment = raw["segment"].lower()
    if segment != "all":
        segments.get(uow, segment)
    template = raw["template"].lower()
    campaign_templates = ", ".join(k for k in kinds(uow.session) if k.startswith(CUSTOM_PREFIX))
    if not template_exists(uow.session, template):
        raise ValidationError(
            _(
                "template={template} does not exist (campaign templates: {templates})",
                template=repr(template),
                templates=campaign_templates,
            )
        )
    if not template.startswith(CUSTOM_PREFIX):
        raise ValidationError(
            _(
                "{template} is not a campaign template (campaign templates: {templates})",
                template=repr(template),
                templates=campaign_templates,
            )
        )
    language = (raw.get("lang") or "auto").lower()
    if language != "auto" and not re.match(r"^[a-z]{2}(-[a-z]{2,4})?$", language):
        raise ValidationError(
            _(
                "lang={language}: write auto (each customer's language) or a code such as en or zh",
                language=repr(language),
            )
        )
    available = languages(uow.session, template)
    if language != "auto" and language not in available and language.split("-")[0] not in available:
        raise ValidationError(
            _(
                "there is no {template} template in {language} (languages: auto, {languages})",
                template=template,
                language=repr(language),
                languages=", ".join(available),
            )
        )
    repeat = (raw.get("repeat") or "").lower() or None
    if repeat is not None and repeat not in REPEATS:
        raise ValidationError(_("repeat={repeat}: write repeat=weekly or repeat=monthly", repeat=repr(repeat)))
    trigger = delay = None
    if raw.get("trigger"):
        if raw.get("at") or repeat:
            raise ValidationError(_("a trigger campaign sends after each event: give trigger= without at= or repeat="))
        trigger, delay = _trigger(raw["trigger"].lower())
    at = None
    if trigger is None:
        if not raw.get("at"):
            raise ValidationError(_("missing at= (when to send: now, {examples}) or trigger=", examples=EXAMPLES))
        if raw["at"].lower() == "now":
            at = now or clock.utcnow()
        else:
            parsed = parse_when_text(raw["at"], tz, now)
            if parsed is None:
                raise ValidationError(
                    _(
                        "at={at} is not a time I understand (e.g. now, {examples})",
                        at=repr(raw["at"]),
                        examples=EXAMPLES,
                    )
                )
            at = parsed.at
            # A one-off time in the past would send at once, which is what at=now is for.
            if at < (now or clock.utcnow()):
                raise ValidationError(_("at={at} is in the past: give a time from now on, or at=now", at=raw["at"]))
    return Options(segment, template, at, repeat, language, trigger, delay)


def create(uow: UnitOfWork, name: str, options_text: str, user_id: int | None, tz: str) -> Campaign:
    name = name.strip().lower()
    if not NAME.match(name):
        raise ValidationError(
            _(
                "{name} is not a campaign name: 1-60 letters, digits, - or _ (e.g. autumn-sale)",
                name=repr(name),
            )
        )
    if uow.session.scalar(sa.select(Campaign.id).where(Campaign.name == name)) is not None:
        raise Conflict(
            _(
                "there is already a campaign {quoted}; see it with /campaign status {name}",
                quoted=repr(name),
                name=name,
            )
        )
    options = parse_options(uow, options_text, tz)
    segment = None if options.segment == "all" else segments.get(uow, options.segment)
    campaign = Campaign(
        name=name,
        segment_id=segment.id if segment else None,
        template=options.template,
        language=options.language,
        starts_at=options.at,
        repeat=options.repeat,
        timezone=tz,
        trigger_event=options.trigger,
        trigger_delay_minutes=int(options.delay.total_seconds() // 60) if options.delay is not None else None,
        status=CampaignStatus.DRAFT,
        created_by_id=user_id,
    )
    uow.session.add(campaign)
    uow.session.flush()
    return campaign


def get(uow: UnitOfWork, name: str) -> Campaign:
    campaign = uow.session.scalars(sa.select(Campaign).where(Campaign.name == name.strip().lower())).one_or_none()
    if campaign is None:
        raise NotFound(_("there is no campaign {name}; see them with /campaign list", name=repr(name)))
    return campaign


def list_all(uow: UnitOfWork) -> list[Campaign]:
    return list(uow.session.scalars(sa.select(Campaign).order_by(Campaign.created_at.desc(), Campaign.id.desc())))


def describe(campaign: Campaign) -> str:
    """``segment vip · template campaign_announcement · weekly · lang auto``, in the current language."""
    if campaign.trigger_event:
        hours = (campaign.trigger_delay_minutes or 0) // 60
        delay = _("{days}d", days=hours // 24) if hours % 24 == 0 else _("{hours}h", hours=hours)
        if campaign.trigger_event == "first_order":
            when = _("{delay} after each first order", delay=delay)
        elif campaign.trigger_event == "ticket_resolved":
            when = _("{delay} after each resolved ticket", delay=delay)
        else:
            when = _("{delay} after each {event}", delay=delay, event=campaign.trigger_event.replace("_", " "))
    else:
        when = _repeat_label(campaign.repeat)
    return _(
        "segment {segment} · template {template} · {when} · lang {language}",
        segment=segment_name(campaign),
        template=campaign.template,
        when=when,
        language=pgettext("campaign language", "auto") if campaign.language == "auto" else campaign.language,
    )


def _repeat_label(repeat: str | None) -> str:
    if repeat == "weekly":
        return pgettext("campaign repeat", "weekly")
    if repeat == "monthly":
        return pgettext("campaign repeat", "monthly")
    return repeat or pgettext("campaign repeat", "once")


# -- who it reaches -------------------------------------------------------------------------------


def _recipients(session: Session, campaign: Campaign, limit: int | None = None) -> list[Recipient]:
    query = eligible(session, campaign).subquery()
    statement = sa.select(query).order_by(query.c.customer_id)
    if limit is not None:
        statement = statement.limit(limit)
    return [
        Recipient(cid, platform, conversation, language)
        for cid, platform, conversation, _index, language in session.execute(statement)
    ]


# -- preview, check, test -------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    customer_id: int
    customer_name: str
    platform: str
    language: str
    text: str | None
    error: str | None


def preview(uow: UnitOfWork, campaign: Campaign, n: int = 3, currency: str = "EUR") -> list[Preview]:
    """What the first ``n`` recipients would receive, exactly (or why their message fails)."""
    found = _recipients(uow.session, campaign, n)
    context = contexts(uow.session, campaign, [r.customer_id for r in found], currency)
    renderer = CampaignRenderer(uow.session, campaign)
    shown = []
    for recipient in found:
        name = context[recipient.customer_id]["customer"]["name"]
        try:
            text, error = readable(renderer.render(recipient, context[recipient.customer_id])), None
        except TemplateRefused as exc:
            text, error = None, str(exc)
        shown.append(Preview(recipient.customer_id, name, recipient.platform, recipient.language, text, error))
    return shown


@dataclass(frozen=True)
class RenderFailure:
    customer_id: int
    customer_name: str
    reason: str
    failures: int


def check_renders(
    uow: UnitOfWork, campaign: Campaign, currency: str = "EUR", chunk: int = 1000
) -> RenderFailure | None:
    """Render the message of every recipient; the first failure (and how many failed), or None."""
    renderer = CampaignRenderer(uow.session, campaign)
    everyone = _recipients(uow.session, campaign)
    first: tuple[int, str, str] | None = None
    failures = 0
    for start in range(0, len(everyone), chunk):
        batch = everyone[start : start + chunk]
        context = contexts(uow.session, campaign, [r.customer_id for r in batch], currency)
        for recipient in batch:
            try:
                renderer.render(recipient, context[recipient.customer_id])
            except TemplateRefused as exc:
                failures += 1
                if first is None:
                    first = (recipient.customer_id, context[recipient.customer_id]["customer"]["name"], str(exc))
    return None if first is None else RenderFailure(*first, failures)


def test_send(uow: UnitOfWork, campaign: Campaign, author: User, currency: str = "EUR") -> tuple[Preview, bool]:
    """Send the author the message the first recipient would get (rendered for the author's
    platform). Returns the preview and whether it was queued (False: the author has no chat to
    send to, e.g. on the console; the caller shows it instead)."""
    shown = preview(uow, campaign, 1, currency)
    if not shown:
        raise ValidationError(
            _(
                "campaign {name} reaches nobody yet: nobody in its segment has opted in",
                name=repr(campaign.name),
            )
        )
    first = shown[0]
    if first.error is not None:
        raise ValidationError(
            _(
                "the template fails for {customer} (#{id}): {error}",
                customer=first.customer_name,
                id=first.customer_id,
                error=first.error,
            )
        )
    address = users.dm_address(author)
    if address is None:
        return first, False
    recipient = Recipient(first.customer_id, address.platform, address.external_id, first.language)
    context = contexts(uow.session, campaign, [first.customer_id], currency)[first.customer_id]
    payload = CampaignRenderer(uow.session, campaign).payload(recipient, context, unsubscribe=False)
    outbox.enqueue(
        uow,
        idempotency_key=f"campaign-test:{campaign.id}:{author.id}:{clock.utcnow().isoformat()}",
        kind="campaign_test",
        platform=address.platform,
        conversation=address.external_id,
        payload=payload,
        user_id=author.id,
    )
    return first, True


# -- start, pause, resume, cancel -----------------------------------------------------------------


@dataclass(frozen=True)
class StartOutcome:
    # "started", "needs_confirmation", "template_failed", "nobody"
    state: str
    recipients: int = 0
    next_run: datetime | None = None
    failure: RenderFailure | None = None


def job_id(campaign: Campaign) -> str:
    return f"campaign:{campaign.id}"


def start(
    uow: UnitOfWork,
    campaign: Campaign,
    user_id: int | None,
    *,
    confirmed: bool = False,
    confirm_over: int = DEFAULT_CONFIRM_OVER,
    currency: str = "EUR",
) -> StartOutcome:
    if campaign.status not in (CampaignStatus.DRAFT,):
        raise Conflict(
            _(
                "campaign {name} is {status}; only a draft can be started "
                "(a paused one is resumed with /campaign resume)",
                name=repr(campaign.name),
                status=status_label(campaign.status),
            )
        )
    size = eligible_count(uow.session, campaign)
    if size == 0 and campaign.trigger_event is None:
        return StartOutcome("nobody")
    failure = check_renders(uow, campaign, currency)
    if failure is not None:
        return StartOutcome("template_failed", size, failure=failure)
    if size > confirm_over and not confirmed:
        return StartOutcome("needs_confirmation", size)
    now = clock.utcnow()
    campaign.status, campaign.started_by_id, campaign.started_at = CampaignStatus.SCHEDULED, user_id, now
    if size > confirm_over:
        campaign.confirmed_by_id, campaign.confirmed_size = user_id, size
    next_run = _schedule(uow, campaign, now)
    return StartOutcome("started", size, next_run)


def _schedule(uow: UnitOfWork, campaign: Campaign, now: datetime) -> datetime | None:
    args: dict[str, Any] = {"campaign_id": campaign.id}
    if campaign.trigger_event is not None:
        job = scheduling.schedule(
            uow,
            job_id(campaign),
            "campaigns.scan_triggers",
            Interval(TRIGGER_SCAN_SECONDS),
            args=args,
            misfire_grace_seconds=None,
        )
        job.next_run_at = now
        return now
    at = clock.as_utc(campaign.starts_at) if campaign.starts_at else now
    if campaign.repeat is None:
        # However late the worker comes back, a one-off campaign is sent (once).
        job = scheduling.schedule(
            uow,
            job_id(campaign),
            "campaigns.run",
            Once(at),
            args=args,
            misfire_grace_seconds=None,
        )
    else:
        local = at.astimezone(clock.zone(campaign.timezone))
        trigger = (
            Calendar(local.time().replace(second=0, microsecond=0), campaign.timezone, weekdays=(local.weekday(),))
            if campaign.repeat == "weekly"
            else Calendar(local.time().replace(second=0, microsecond=0), campaign.timezone, day_of_month=local.day)
        )
        # Missed runs coalesce into one; a run more than a day late is skipped rather than sent at night.
        job = scheduling.schedule(
            uow,
            job_id(campaign),
            "campaigns.run",
            trigger,
            args=args,
            misfire_grace_seconds=24 * 3600,
        )
    job.next_run_at = max(at, now)
    return job.next_run_at


def _outbox_rows(campaign: Campaign) -> sa.ColumnElement[bool]:
    o = OutboxMessage
    ids = sa.select(CampaignRecipient.id).where(CampaignRecipient.campaign_id == campaign.id)
    return sa.and_(o.kind == KIND, o.ref_id.in_(ids))


def _move(
    uow: UnitOfWork,
    campaign: Campaign,
    from_: tuple[OutboxStatus, ...],
    to: OutboxStatus,
    error: str | None,
    **values: Any,
) -> int:
    """Move the campaign's outbox rows in ``from_`` to ``to``; returns how many."""
    return uow.session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
        sa.update(OutboxMessage)
        .where(_outbox_rows(campaign), OutboxMessage.status.in_(from_))
        .values(status=to, last_error=error, **values)
        .execution_options(synchronize_session=False)
    ).rowcount


def pause(uow: UnitOfWork, campaign: Campaign) -> int:
    """Stop at once: waiting messages are held (the sender also re-checks before each send). Returns how many."""
    if campaign.status not in (CampaignStatus.SCHEDULED, CampaignStatus.SENDING):
        raise Conflict(
            _(
                "campaign {name} is {status}; only a started campaign can be paused",
                name=repr(campaign.name),
                status=status_label(campaign.status),
            )
        )
    campaign.status = CampaignStatus.PAUSED
    return _move(uow, campaign, (OutboxStatus.PENDING,), OutboxStatus.HELD, "campaign paused")


def resume(uow: UnitOfWork, campaign: Campaign) -> int:
    if campaign.status is not CampaignStatus.PAUSED:
        raise Conflict(
            _(
                "campaign {name} is {status}, not paused",
                name=repr(campaign.name),
                status=status_label(campaign.status),
            )
        )
    in_flight = uow.session.scalar(
        sa.select(sa.func.count()).where(
            CampaignRun.campaign_id == campaign.id, CampaignRun.status == RunStatus.SENDING
        )
    )
    campaign.status = CampaignStatus.SENDING if in_flight else CampaignStatus.SCHEDULED
    ran = uow.session.scalar(sa.select(sa.func.count()).where(CampaignRun.campaign_id == campaign.id))
    if not ran and campaign.repeat is None and campaign.trigger_event is None:
        # A one-off whose time came while it was paused was skipped: it goes now instead.
        _schedule(uow, campaign, clock.utcnow())
    return _move(uow, campaign, (OutboxStatus.HELD,), OutboxStatus.PENDING, None, not_before=clock.utcnow())


def cancel(uow: UnitOfWork, campaign: Campaign) -> int:
    """Stop for good: nothing more is sent and the schedule is removed. Returns how many messages were dropped."""
    if campaign.status in (CampaignStatus.CANCELLED, CampaignStatus.DONE):
        raise Conflict(
            _("campaign {name} is already {status}", name=repr(campaign.name), status=status_label(campaign.status))
        )
    campaign.status = CampaignStatus.CANCELLED
    scheduling.unschedule(uow, job_id(campaign))
    return _move(uow, campaign, (OutboxStatus.PENDING, OutboxStatus.HELD), OutboxStatus.CANCELLED, CAMPAIGN_CANCELLED)


def segment_name(campaign: Campaign) -> str:
    return campaign.segment.name if campaign.segment else "all"
