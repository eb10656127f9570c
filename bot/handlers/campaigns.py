"""/campaign: draft, preview, test, start (managers and admins), pause, resume, cancel, status, list.

Everyone with the sales role or above may draft, preview, test and watch campaigns; starting,
confirming a large one, pausing, resuming and cancelling are for managers and admins.
"""

from __future__ import annotations

import functools

from bot.args import Kind, arg, rest
from bot.context import Context
from bot.handlers.common import fmt_datetime
from bot.hookspecs import hookimpl
from bot.messages import Button, Field, Item, Reply, Request, Section, Style, Tone
from bot.plugin_types import JobDefinition, OutboxKind
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core.campaigns import delivery as campaign_delivery
from crm_core.campaigns import reporting, service, watch
from crm_core.campaigns import triggers as campaign_triggers
from crm_core.campaigns.reporting import ATTRIBUTION_WINDOW
from crm_core.models import CampaignStatus, User
from crm_core.money import format_totals
from crm_core.scheduling import Interval

group = CommandGroup()
NAME = arg("name", Kind.TEXT, label="Campaign", max_length=60)
NEW_USAGE = (
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


@group.command(
    "campaign new",
    summary="Draft a campaign: a template sent to a segment at a time (or after an event)",
    permission=Permission.CAMPAIGNS_DRAFT,
    params=[
        NAME,
        rest(
            "options",
            Kind.TEXT,
            verbatim=True,
            label="Options",
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
    when = (
        f"first send {fmt_datetime(campaign.starts_at, campaign.timezone)} {campaign.timezone}"
        if campaign.starts_at
        else "sends after each event once started"
    )
    return Reply(
        title=f"Campaign {campaign.name} drafted",
        text=f"{service.describe(campaign)}; {when}.",
        buttons=(
            Button("Preview", f"/campaign preview {campaign.name}"),
            Button("Send me a test", f"/campaign test {campaign.name}"),
            Button("Start", f"/campaign start {campaign.name}"),
        ),
        footer="Nothing is sent until a manager starts it.",
        tone=Tone.SUCCESS,
    )


@group.command(
    "campaign preview",
    summary="Show exactly what 3 real recipients would receive",
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
            text=f"Campaign {campaign.name} reaches nobody yet: no customer of segment "
            f"{service.segment_name(campaign)} has opted in on Telegram or Slack.",
            tone=Tone.WARNING,
        )
    sections = tuple(
        Section(
            title=f"{p.customer_name} (#{p.customer_id}) · {p.platform} · {p.language}",
            text=p.text if p.error is None else f"⚠ the template fails for this recipient: {p.error}",
        )
        for p in shown
    )
    failed = any(p.error for p in shown)
    return Reply(
        title=f"Preview of {campaign.name}",
        sections=sections,
        footer=f"{size:,} recipients can be reached now. Every message carries an Unsubscribe button.",
        tone=Tone.WARNING if failed else Tone.INFO,
    )


@group.command(
    "campaign test",
    summary="Send yourself the message the first recipient would get",
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
            text=f"Sent you a test of {campaign.name} as {shown.customer_name} would get it.", tone=Tone.SUCCESS
        )
    return Reply(
        title=f"Test of {campaign.name} (as {shown.customer_name} would get it)",
        text=shown.text,
        footer="You have no Slack or Telegram account linked, so here it is.",
    )


def _start_reply(campaign, outcome: service.StartOutcome, ctx: Context) -> Reply:
    if outcome.state == "nobody":
        return Reply(
            text=f"Not started: nobody in segment {service.segment_name(campaign)} has opted in to "
            "messages on Telegram or Slack.",
            tone=Tone.WARNING,
        )
    if outcome.state == "template_failed":
        failure = outcome.failure
        assert failure is not None, "a template_failed outcome names the failure"
        return Reply(
            text=f"Not started: the template {campaign.template} fails for {failure.customer_name} "
            f"(#{failure.customer_id}): {failure.reason}",
            footer=f"{failure.failures:,} of {outcome.recipients:,} recipients fail. "
            f"Fix the template with /template set, then start again.",
            tone=Tone.ERROR,
        )
    if outcome.state == "needs_confirmation":
        return Reply(
            text=f"Campaign {campaign.name} goes to {outcome.recipients:,} customers, more than "
            f"{_confirm_over(ctx):,}: a manager must confirm.",
            buttons=(
                Button(
                    f"Confirm: send to {outcome.recipients:,}", f"/campaign confirm {campaign.name}", style=Style.DANGER
                ),
            ),
            footer=f"Or type /campaign confirm {campaign.name}. Preview it first with /campaign preview {campaign.name}.",
            tone=Tone.WARNING,
        )
    when = fmt_datetime(outcome.next_run, ctx.caller.timezone or "UTC") if outcome.next_run else "now"
    what = (
        "listening for events"
        if campaign.trigger_event
        else f"first run {when} {ctx.caller.timezone or 'UTC'}, {outcome.recipients:,} recipients now"
    )
    return Reply(
        text=f"Campaign {campaign.name} started: {what}.",
        buttons=(
            Button("Status", f"/campaign status {campaign.name}"),
            Button("Pause", f"/campaign pause {campaign.name}"),
        ),
        tone=Tone.SUCCESS,
    )


@group.command(
    "campaign start",
    summary="Start a drafted campaign (managers and admins)",
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
    summary="Confirm and start a campaign to more customers than the confirmation limit",
    permission=Permission.CAMPAIGNS_RUN,
    params=[NAME],
    usage="<name>",
)
def confirm(req: Request, ctx: Context) -> Reply:
    return _start(req, ctx, confirmed=True)


@group.command(
    "campaign pause",
    summary="Stop sending at once; resume later",
    permission=Permission.CAMPAIGNS_RUN,
    params=[NAME],
    usage="<name>",
)
def pause(req: Request, ctx: Context) -> Reply:
    campaign = service.get(ctx.uow, req.args["name"])
    held = service.pause(ctx.uow, campaign)
    return Reply(
        text=f"Campaign {campaign.name} paused; {held:,} messages wait.",
        buttons=(Button("Resume", f"/campaign resume {campaign.name}"),),
        tone=Tone.SUCCESS,
    )


@group.command(
    "campaign resume",
    summary="Go on sending a paused campaign",
    permission=Permission.CAMPAIGNS_RUN,
    params=[NAME],
    usage="<name>",
)
def resume(req: Request, ctx: Context) -> Reply:
    campaign = service.get(ctx.uow, req.args["name"])
    released = service.resume(ctx.uow, campaign)
    return Reply(text=f"Campaign {campaign.name} resumed; {released:,} messages go out again.", tone=Tone.SUCCESS)


@group.command(
    "campaign cancel",
    summary="Stop a campaign for good",
    permission=Permission.CAMPAIGNS_RUN,
    params=[NAME],
    usage="<name>",
)
def cancel(req: Request, ctx: Context) -> Reply:
    campaign = service.get(ctx.uow, req.args["name"])
    dropped = service.cancel(ctx.uow, campaign)
    return Reply(text=f"Campaign {campaign.name} cancelled; {dropped:,} messages will not be sent.", tone=Tone.SUCCESS)


def _counts_fields(counts: reporting.Counts, currency: str) -> tuple[Field, ...]:
    return (
        Field("Recipients", f"{counts.recipients:,}"),
        Field("Pending", f"{counts.pending:,}"),
        Field("Sent", f"{counts.sent:,}"),
        Field("Failed", f"{counts.failed:,}"),
        Field("Blocked", f"{counts.blocked:,}"),
        Field("Opted out", f"{counts.opted_out:,}"),
        Field("Opted out after receiving", f"{counts.opted_out_after:,}"),
        Field(
            f"Orders within {ATTRIBUTION_WINDOW.days} days",
            f"{counts.orders:,} · {format_totals(counts.revenue, currency)}",
        ),
    )


@group.command(
    "campaign status",
    summary="Recipients, pending, sent, failed, blocked, opted out, and what it earned",
    permission=Permission.CAMPAIGNS_DRAFT,
    params=[NAME],
    usage="<name>",
)
def status(req: Request, ctx: Context) -> Reply:
    campaign = service.get(ctx.uow, req.args["name"])
    report = reporting.campaign_report(ctx.uow.session, campaign)
    currency = _currency(ctx)
    latest = report.runs[-1] if report.runs else None
    runs = tuple(
        Item(
            text=f"Run {run.number} · {fmt_datetime(run.scheduled_for, ctx.caller.timezone or 'UTC')} · {run.status}",
            detail=f"{run.counts.recipients:,} recipients · {run.counts.sent:,} sent · {run.counts.failed:,} failed · "
            f"{run.counts.blocked:,} blocked · {run.counts.opted_out:,} opted out · "
            f"{run.counts.orders:,} orders, {format_totals(run.counts.revenue, currency)}",
        )
        for run in report.runs
    )
    text = service.describe(campaign)
    if latest is not None:
        text += f"\nRun {latest.number}: {reporting.progress_bar(latest.counts.finished, latest.counts.recipients)}"
    footer = None
    if campaign.status in (CampaignStatus.SENDING, CampaignStatus.PAUSED) and watch.in_flight(ctx.uow, campaign):
        live = watch.watch(
            ctx.uow, campaign, req.origin.platform, req.origin.conversation, ctx.caller.language, currency
        )
        if live is not None:
            footer = "A live card below updates every few seconds until the run finishes."
    buttons: tuple[Button, ...] = ()
    if campaign.status in (CampaignStatus.SENDING, CampaignStatus.SCHEDULED):
        buttons = (Button("Pause", f"/campaign pause {campaign.name}"),)
    elif campaign.status is CampaignStatus.PAUSED:
        buttons = (Button("Resume", f"/campaign resume {campaign.name}"),)
    return Reply(
        title=f"Campaign {campaign.name} · {campaign.status}",
        text=text,
        fields=_counts_fields(report.total, currency),
        sections=(Section(title="Runs", items=runs, empty="No run yet."),) if report.runs else (),
        buttons=buttons,
        footer=footer,
    )


@group.command("campaign list", summary="Every campaign with its state", permission=Permission.CAMPAIGNS_DRAFT)
def list_campaigns(req: Request, ctx: Context) -> Reply:
    items = tuple(
        Item(
            text=f"{c.name} · {c.status}",
            detail=service.describe(c),
            button=Button("Status", f"/campaign status {c.name}"),
        )
        for c in service.list_all(ctx.uow)
    )
    return Reply(
        title="Campaigns",
        sections=(Section(items=items, empty="None yet."),),
        footer=f"Draft one: /campaign new {NEW_USAGE}",
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
