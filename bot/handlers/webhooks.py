"""/webhook: outgoing webhooks for admins (add, list, test, deliveries, remove).

A new endpoint's signing secret is shown once, and only where no one else can read it (a private
chat, or an ephemeral reply); asked in a shared chat elsewhere, the command refuses and adds nothing.
"""

from __future__ import annotations

from bot.args import Kind, arg, opt
from bot.context import Context
from bot.handlers.common import clip, fmt_datetime
from bot.hookspecs import hookimpl
from bot.messages import Field, Item, Reply, Request, Section, Tone
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import platforms, webhooks
from crm_core.i18n import N_, _
from crm_core.models import WebhookEndpoint
from crm_core.services import users

group = CommandGroup()


def endpoint_line(endpoint: WebhookEndpoint) -> str:
    if endpoint.enabled:
        state = _("enabled")
    elif endpoint.disabled_reason:
        state = _("disabled: {reason}", reason=webhooks.disabled_text(endpoint))
    else:
        state = _("disabled: by an admin")
    return f"{', '.join(endpoint.events)} · {state}"


@group.command(
    "webhook add",
    summary=N_("Send events to a URL, signed (Standard Webhooks); the secret is shown once, privately"),
    permission=Permission.WEBHOOKS_MANAGE,
    params=[
        arg("url", label=N_("Endpoint URL (https://…)"), max_length=2000),
        opt("events", label=N_("Events (e.g. deal.won,ticket.*)"), required=True, max_length=1000),
    ],
    usage=N_("<https://url> events=deal.won,ticket.*"),
)
def add_webhook(req: Request, ctx: Context) -> Reply:
    if not (req.origin.is_private or platforms.traits(req.origin.platform).ephemeral):
        return Reply(
            text=_(
                "Add webhooks in a private chat with the bot: its signing secret is shown once, and anyone "
                "reading it here could forge deliveries."
            ),
            tone=Tone.WARNING,
            private=True,
        )
    owner = users.find_user(ctx.uow, f"#{ctx.caller.user_id}") if ctx.caller.user_id is not None else None
    made = webhooks.create(
        ctx.uow, owner, req.args["url"], req.args["events"], allow_private=ctx.settings.webhook_allow_private
    )
    return Reply(
        title=_("Webhook #{id} added", id=made.endpoint.id),
        text=made.secret,
        fields=(
            Field(_("URL"), made.endpoint.url, short=False),
            Field(_("Events"), ", ".join(made.endpoint.events)),
        ),
        footer=_(
            "That is the signing secret: copy it now, it is not shown again. Check deliveries with "
            "/webhook test {id} and /webhook deliveries {id}.",
            id=made.endpoint.id,
        ),
        tone=Tone.SUCCESS,
        private=True,
    )


@group.command("webhook list", summary=N_("List the webhook endpoints"), permission=Permission.WEBHOOKS_MANAGE)
def list_webhooks(req: Request, ctx: Context) -> Reply:
    items = tuple(
        Item(text=f"#{e.id} {clip(e.url, 100)}", detail=endpoint_line(e)) for e in webhooks.endpoints(ctx.uow)
    )
    return Reply(
        title=_("Webhooks"),
        sections=(Section(items=items, empty=_("No webhooks yet: /webhook add <https://url> events=deal.won")),),
        private=True,
    )


@group.command(
    "webhook remove",
    summary=N_("Remove a webhook endpoint (what still waits for it is dropped)"),
    permission=Permission.WEBHOOKS_MANAGE,
    params=[arg("id", Kind.INT, label=N_("Webhook #"))],
)
def remove_webhook(req: Request, ctx: Context) -> Reply:
    endpoint = webhooks.remove(ctx.uow, req.args["id"])
    return Reply(
        text=_("Removed webhook #{id} ({url}).", id=endpoint.id, url=endpoint.url), tone=Tone.SUCCESS, private=True
    )


@group.command(
    "webhook test",
    summary=N_("Send a webhook.test event to an endpoint now"),
    permission=Permission.WEBHOOKS_MANAGE,
    params=[arg("id", Kind.INT, label=N_("Webhook #"))],
)
def test_webhook(req: Request, ctx: Context) -> Reply:
    message_id = webhooks.enqueue_test(ctx.uow, req.args["id"])
    return Reply(
        text=_(
            "Queued a webhook.test event ({event}) for webhook #{id}. See how it went with /webhook deliveries {id}.",
            event=message_id,
            id=req.args["id"],
        ),
        tone=Tone.SUCCESS,
        private=True,
    )


@group.command(
    "webhook deliveries",
    read_only=True,
    summary=N_("The last delivery attempts to a webhook (status and latency)"),
    permission=Permission.WEBHOOKS_MANAGE,
    params=[arg("id", Kind.INT, label=N_("Webhook #"))],
)
def webhook_deliveries(req: Request, ctx: Context) -> Reply:
    endpoint = webhooks.get(ctx.uow, req.args["id"])
    tz = ctx.caller.timezone
    items = tuple(
        Item(
            text=f"{a.event_type} {a.message_id} · "
            + (str(a.status_code) if a.status_code is not None else _("no answer"))
            + " · "
            + _("{ms} ms", ms=a.latency_ms),
            detail=fmt_datetime(a.attempted_at, tz)
            + " · "
            + _("attempt {number}", number=a.attempt)
            + (f" · {a.error}" if a.error else ""),
        )
        for a in webhooks.recent_attempts(ctx.uow, endpoint.id)
    )
    return Reply(
        title=_("Deliveries to webhook #{id}", id=endpoint.id),
        text=f"{endpoint.url} · {endpoint_line(endpoint)}",
        sections=(Section(items=items, empty=_("No attempts yet.")),),
        private=True,
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
