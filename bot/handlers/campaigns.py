"""/campaign: draft, preview, test, start (managers and admins), pause, resume, cancel, status, list.

Everyone with the sales role or above may draft, preview, test and watch campaigns; starting,
confirming a large one, pausing, resuming and cancelling are for managers and admins.
"""

from __future__ import annotations

import functools
from datetime import datetime

from bot.args import Kind, arg, rest
from bot.context import Context
from bot.hookspecs import hookimpl
from bot.messages import Button, Field, Item, Reply, Request, Section, Style, Tone
from bot.plugin_types import JobDefinition, OutboxKind
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import clock, i18n
from crm_core.campaigns import delivery as campaign_delivery
from crm_core.campaigns import reporting, service, watch
from crm_core.campaigns import triggers as campaign_triggers
from crm_core.campaigns.reporting import ATTRIBUTION_WINDOW
from crm_core.i18n import N_, _, ngettext
from crm_core.models import CampaignStatus, User
from crm_core.money import format_totals
from crm_core.scheduling import Interval

group = CommandGroup()
NAME = arg("name", Kind.TEXT, label=N_("Campaign"), max_length=60)
NEW_USAGE = N_(
    "<name> segment=<segment|all> template=<template> at=<when|now> [repeat=weekly|monthly] [lang=auto|en|zh] "
    "— or trigger=first_order+3d | trigger=ticket_resolved+1d instead of at="
)


def _currency(ctx: Context) -> str:
    return ctx.settings.currency


def _confirm_over(ctx: Context) -> int:
    raw = ctx.settings.extra.get("CHATCRM_CAMPAIGN_CONFIRM_OVER", str(service.DEFAULT_CONFIRM_OVER))
    try:
        return max(int(raw), 0)
    except ValueError:
        return service.DEFAULT_CONFIRM_OVER


def _when(value: datetime, tz: str) -> str:
    """A moment in the reader's timezone and language, with the zone named."""
    return f"{i18n.format_datetime(value, clock.zone(tz))} {tz}"


def _number(n: int) -> str:
    return i18n.format_number(n)


@group.command(
    "campaign new",
    summary=N_("Draft a campaign: a template sent to a segment at a time (or after an event)"),
    permission=Permission.CAMPAIGNS_DRAFT,
    params=[
        NAME,
        rest(
            "options",
            Kind.TEXT,
            verbatim=True,
            label=N_("Options"),
            hint="segment=vip template=campaign_announcement at=now",
            max_length=500,
        ),
    ],
    usage=NEW_USAGE,
)
def new(req: Request, ctx: Context) -> Reply:
    campaign = service.create(
        ctx.uow, req.args["name"], req.args["options"], ctx.caller.user_id, ctx.caller.timezone or "UTC"
    )
    if campaign.starts_at:
        text = _(
            "{description}; first send {when}.",
            description=service.describe(campaign),
            when=_when(campaign.starts_at, campaign.timezone),
        )
    else:
        text = _("{description}; sends after each event once started.", description=service.describe(campaign))
    return Reply(
        title=_("Campaign {name} drafted", name=campaign.name),
        text=text,
        buttons=(
            Button(_("Preview"), f"/campaign preview {campaign.name}"),
            Button(_("Send me a test"), f"/campaign test {campaign.name}"),
            Button(_("Start"), f"/campaign start {campaign.name}"),
        ),
        footer=_("Nothing is sent until a manager starts it."),
        tone=Tone.SUCCESS,
    )


@group.command(
    "campaign preview",
    summary=N_("Show exactly what 3 real recipients would receive"),
    permission=Permission.CAMPAIGNS_DRAFT,
    params=[NAME],
    usage="<name>",
)
def preview(req: Request, ctx: Context) -> Reply:
    campaign = service.get(ctx.uow, req.args["name"])
    shown = service.preview(ctx.uow, campaign, 3, _currency(ctx))
    size = service.eligible_count(ctx.uow.session, campaign)
    if not shown:
        return Reply(
            text=_(
                "Campaign {name} reaches nobody yet: no customer of segment {segment} has opted in on Telegram "
                "or Slack.",
                name=campaign.name,
                segment=service.segment_name(campaign),
            ),
            tone=Tone.WARNING,
        )
    sections = tuple(
        Section(
            title=f"{p.customer_name} (#{p.customer_id}) · {p.platform} · {p.language}",
            text=p.text if p.error is None else _("⚠ the template fails for this recipient: {error}", error=p.error),
        )
        for p in shown
    )
    failed = any(p.error for p in shown)
    return Reply(
        title=_("Preview of {name}", name=campaign.name),
        sections=sections,
        footer=ngettext(
            "{count} recipient can be reached now. Every message carries an Unsubscribe button.",
            "{count} recipients can be reached now. Every message carries an Unsubscribe button.",
            size,
            count=_number(size),
        ),
        tone=Tone.WARNING if failed else Tone.INFO,
    )


@group.command(
    "campaign test",
    summary=N_("Send yourself the message the first recipient would get"),
    permission=Permission.CAMPAIGNS_DRAFT,
    params=[NAME],
    usage="<name>",
)
def test(req: Request, ctx: Context) -> Reply:
    campaign = service.get(ctx.uow, req.args["name"])
    author = ctx.uow.session.get(User, ctx.caller.user_id)
    assert author is not None, "only a known CRM user holds the campaign permission"
    shown, queued = service.test_send(ctx.uow, campaign, author, _currency(ctx))
    if queued:
        return Reply(
            text=_(
                "Sent you a test of {name} as {customer} would get it.",
                name=campaign.name,
                customer=shown.customer_name,
            ),
            tone=Tone.SUCCESS,
        )
    return Reply(
        title=_("Test of {name} (as {customer} would get it)", name=campaign.name, customer=shown.customer_name),
        text=shown.text,
        footer=_("You have no Slack or Telegram account linked, so here it is."),
    )


def _start_reply(campaign, outcome: service.StartOutcome, ctx: Context) -> Reply:
    if outcome.state == "nobody":
        return Reply(
            text=_(
                "Not started: nobody in segment {segment} has opted in to messages on Telegram or Slack.",
                segment=service.segment_name(campaign),
            ),
            tone=Tone.WARNING,
        )
    if outcome.state == "template_failed":
        failure = outcome.failure
        assert failure is not None, "a template_failed outcome names the failure"
        return Reply(
            text=_(
                "Not started: the template {template} fails for {customer} (#{id}): {reason}",
                template=campaign.template,
                customer=failure.customer_name,
                id=failure.customer_id,
                reason=failure.reason,
            ),
            footer=ngettext(
                "{failures} of {count} recipient fails. Fix the template with /template set, then start again.",
                "{failures} of {count} recipients fail. Fix the template with /template set, then start again.",
                outcome.recipients,
                failures=_number(failure.failures),
                count=_number(outcome.recipients),
            ),
            tone=Tone.ERROR,
        )
    if outcome.state == "needs_confirmation":
        return Reply(
            text=_(
                "Campaign {name} goes to {count} customers, more than {limit}: a manager must confirm.",
                name=campaign.name,
                count=_number(outcome.recipients),
                limit=_number(_confirm_over(ctx)),
            ),
            buttons=(
                Button(
                    _("Confirm: send to {count}", count=_number(outcome.recipients)),
                    f"/campaign confirm {campaign.name}",
                    style=Style.DANGER,
                ),
            ),
            footer=_(
                "Or type /campaign confirm {name}. Preview it first with /campaign preview {name}.",
                name=campaign.name,
            ),
            tone=Tone.WARNING,
        )
    if campaign.trigger_event:
        text = _("Campaign {name} started: listening for events.", name=campaign.name)
    else:
        tz = ctx.caller.timezone or "UTC"
        text = ngettext(
            "Campaign {name} started: first run {when}, {count} recipient now.",
            "Campaign {name} started: first run {when}, {count} recipients now.",
            outcome.recipients,
            name=campaign.name,
            when=_when(outcome.next_run, tz) if outcome.next_run else _("now"),
            count=_number(outcome.recipients),
        )
    return Reply(
        text=text,
        buttons=(
            Button(_("Status"), f"/campaign status {campaign.name}"),
            Button(_("Pause"), f"/campaign pause {campaign.name}"),
        ),
        tone=Tone.SUCCESS,
    )


@group.command(
    "campaign start",
    summary=N_("Start a drafted campaign (managers and admins)"),
    permission=Permission.CAMPAIGNS_RUN,
    params=[NAME],
    usage="<name>",
)
def start(req: Request, ctx: Context) -> Reply:
    return _start(req, ctx, confirmed=False)


def _start(req: Request, ctx: Context, *, confirmed: bool) -> Reply:
    campaign = service.get(ctx.uow, req.args["name"])
    outcome = service.start(
        ctx.uow,
        campaign,
        ctx.caller.user_id,
        confirmed=confirmed,
        confirm_over=_confirm_over(ctx),
        currency=_currency(ctx),
    )
    return _start_reply(campaign, outcome, ctx)


@group.command(
    "campaign confirm",
    summary=N_("Confirm and start a campaign to more customers than the confirmation limit"),
    permission=Permission.CAMPAIGNS_RUN,
    params=[NAME],
    usage="<name>",
)
def confirm(req: Request, ctx: Context) -> Reply:
    return _start(req, ctx, confirmed=True)


@group.command(
    "campaign pause",
    summary=N_("Stop sending at once; resume later"),
    permission=Permission.CAMPAIGNS_RUN,
    params=[NAME],
    usage="<name>",
)
def pause(req: Request, ctx: Context) -> Reply:
    campaign = service.get(ctx.uow, req.args["name"])
    held = service.pause(ctx.uow, campaign)
    return Reply(
        text=ngettext(
            "Campaign {name} paused; {count} message waits.",
            "Campaign {name} paused; {count} messages wait.",
            held,
            name=campaign.name,
            count=_number(held),
        ),
        buttons=(Button(_("Resume"), f"/campaign resume {campaign.name}"),),
        tone=Tone.SUCCESS,
    )


@group.command(
    "campaign resume",
    summary=N_("Go on sending a paused campaign"),
    permission=Permission.CAMPAIGNS_RUN,
    params=[NAME],
    usage="<name>",
)
def resume(req: Request, ctx: Context) -> Reply:
    campaign = service.get(ctx.uow, req.args["name"])
    released = service.resume(ctx.uow, campaign)
    return Reply(
        text=ngettext(
            "Campaign {name} resumed; {count} message goes out again.",
            "Campaign {name} resumed; {count} messages go out again.",
            released,
            name=campaign.name,
            count=_number(released),
        ),
        tone=Tone.SUCCESS,
    )


@group.command(
    "campaign cancel",
    summary=N_("Stop a campaign for good"),
    permission=Permission.CAMPAIGNS_RUN,
    params=[NAME],
    usage="<name>",
)
def cancel(req: Request, ctx: Context) -> Reply:
    campaign = service.get(ctx.uow, req.args["name"])
    dropped = service.cancel(ctx.uow, campaign)
    return Reply(
        text=ngettext(
            "Campaign {name} cancelled; {count} message will not be sent.",
            "Campaign {name} cancelled; {count} messages will not be sent.",
            dropped,
            name=campaign.name,
            count=_number(dropped),
        ),
        tone=Tone.SUCCESS,
    )


def _counts_fields(counts: reporting.Counts, currency: str) -> tuple[Field, ...]:
    return (
        Field(_("Recipients"), _number(counts.recipients)),
        Field(_("Pending"), _number(counts.pending)),
        Field(_("Sent"), _number(counts.sent)),
        Field(_("Failed"), _number(counts.failed)),
        Field(_("Blocked"), _number(counts.blocked)),
        Field(_("Opted out"), _number(counts.opted_out)),
        Field(_("Opted out after receiving"), _number(counts.opted_out_after)),
        Field(
            ngettext("Orders within {n} day", "Orders within {n} days", ATTRIBUTION_WINDOW.days),
            f"{_number(counts.orders)} · {format_totals(counts.revenue, currency)}",
        ),
    )


def _run_item(run: reporting.RunReport, tz: str, currency: str) -> Item:
    counts = run.counts
    return Item(
        text=_(
            "Run {number} · {when} · {status}",
            number=run.number,
            when=i18n.format_datetime(run.scheduled_for, clock.zone(tz)),
            status=reporting.run_status_label(run.status),
        ),
        detail=_(
            "{recipients} recipients · {sent} sent · {failed} failed · {blocked} blocked · {opted_out} opted out · "
            "{orders} orders, {revenue}",
            recipients=_number(counts.recipients),
            sent=_number(counts.sent),
            failed=_number(counts.failed),
            blocked=_number(counts.blocked),
            opted_out=_number(counts.opted_out),
            orders=_number(counts.orders),
            revenue=format_totals(counts.revenue, currency),
        ),
    )


@group.command(
    "campaign status",
    summary=N_("Recipients, pending, sent, failed, blocked, opted out, and what it earned"),
    permission=Permission.CAMPAIGNS_DRAFT,
    params=[NAME],
    usage="<name>",
)
def status(req: Request, ctx: Context) -> Reply:
    campaign = service.get(ctx.uow, req.args["name"])
    report = reporting.campaign_report(ctx.uow.session, campaign)
    currency = _currency(ctx)
    latest = report.runs[-1] if report.runs else None
    runs = tuple(_run_item(run, ctx.caller.timezone or "UTC", currency) for run in report.runs)
    text = service.describe(campaign)
    if latest is not None:
        bar = reporting.progress_bar(latest.counts.finished, latest.counts.recipients)
        text += "\n" + _("Run {number}: {bar}", number=latest.number, bar=bar)
    footer = None
    if campaign.status in (CampaignStatus.SENDING, CampaignStatus.PAUSED) and watch.in_flight(ctx.uow, campaign):
        live = watch.watch(
            ctx.uow, campaign, req.origin.platform, req.origin.conversation, ctx.caller.language, currency
        )
        if live is not None:
            footer = _("A live card below updates every few seconds until the run finishes.")
    buttons: tuple[Button, ...] = ()
    if campaign.status in (CampaignStatus.SENDING, CampaignStatus.SCHEDULED):
        buttons = (Button(_("Pause"), f"/campaign pause {campaign.name}"),)
    elif campaign.status is CampaignStatus.PAUSED:
        buttons = (Button(_("Resume"), f"/campaign resume {campaign.name}"),)
    return Reply(
        title=_("Campaign {name} · {status}", name=campaign.name, status=reporting.status_label(campaign.status)),
        text=text,
        fields=_counts_fields(report.total, currency),
        sections=(Section(title=_("Runs"), items=runs, empty=_("No run yet.")),) if report.runs else (),
        buttons=buttons,
        footer=footer,
    )


@group.command("campaign list", summary=N_("Every campaign with its state"), permission=Permission.CAMPAIGNS_DRAFT)
def list_campaigns(req: Request, ctx: Context) -> Reply:
    items = tuple(
        Item(
            text=f"{c.name} · {reporting.status_label(c.status)}",
            detail=service.describe(c),
            button=Button(_("Status"), f"/campaign status {c.name}"),
        )
        for c in service.list_all(ctx.uow)
    )
    return Reply(
        title=_("Campaigns"),
        sections=(Section(items=items, empty=_("None yet.")),),
        footer=_("Draft one: /campaign new {usage}", usage=_(NEW_USAGE)),
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]


@hookimpl
def register_jobs(settings) -> list[JobDefinition]:
    tick = max(int(float(settings.extra.get("CHATCRM_CAMPAIGN_TICK", "5"))), 1)
    return [
        JobDefinition("campaigns.run", campaign_delivery.run_task, "freeze a campaign run's recipients and queue them"),
        JobDefinition("campaigns.scan_triggers", campaign_triggers.scan_task, "send trigger campaigns for new events"),
        JobDefinition(
            "campaigns.tick",
            campaign_delivery.tick_task,
            "settle campaign runs and refresh live status cards",
            trigger=Interval(tick),
            misfire_grace_seconds=60,
        ),
    ]


@hookimpl
def register_outbox_kinds(settings) -> list[OutboxKind]:
    return [
        OutboxKind(
            campaign_delivery.KIND,
            # Amounts keep their own currency; CHATCRM_CURRENCY only labels a zero (crm_core.money).
            functools.partial(campaign_delivery.prepare_message, currency=settings.currency),
            "campaign messages, rendered right before sending after pause, cancel and consent are checked",
        )
    ]
