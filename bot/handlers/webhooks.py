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
from crm_core.models import WebhookEndpoint
from crm_core.services import users

group = CommandGroup()


def endpoint_line(endpoint: WebhookEndpoint) -> str:
    state = "enabled" if endpoint.enabled else f"disabled: {endpoint.disabled_reason or 'by an admin'}"
    return f"{', '.join(endpoint.events)} · {state}"


@group.command(
    "webhook add",
    summary="Send events to a URL, signed (Standard Webhooks); the secret is shown once, privately",
    permission=Permission.WEBHOOKS_MANAGE,
    params=[
        arg("url", label="Endpoint URL (https://…)", max_length=2000),
        opt("events", label="Events (e.g. deal.won,ticket.*)", required=True, max_length=1000),
    ],
    usage="<https://url> events=deal.won,ticket.*",
)
def add_webhook(req: Request, ctx: Context) -> Reply:
    if not (req.origin.is_private or platforms.traits(req.origin.platform).ephemeral):
        return Reply(
            text="Add webhooks in a private chat with the bot: its signing secret is shown once, and anyone "
            "reading it here could forge deliveries.",
            tone=Tone.WARNING,
            private=True,
        )
    owner = users.find_user(ctx.uow, f"#{ctx.caller.user_id}") if ctx.caller.user_id is not None else None
    made = webhooks.create(
        ctx.uow, owner, req.args["url"], req.args["events"], allow_private=ctx.settings.webhook_allow_private
    )
    return Reply(
        title=f"Webhook #{made.endpoint.id} added",
        text=made.secret,
        fields=(Field("URL", made.endpoint.url, short=False), Field("Events", ", ".join(made.endpoint.events))),
        footer="That is the signing secret: copy it now, it is not shown again. Check deliveries with "
        f"/webhook test {made.endpoint.id} and /webhook deliveries {made.endpoint.id}.",
        tone=Tone.SUCCESS,
        private=True,
    )


@group.command("webhook list", summary="List the webhook endpoints", permission=Permission.WEBHOOKS_MANAGE)
def list_webhooks(req: Request, ctx: Context) -> Reply:
    items = tuple(
        Item(text=f"#{e.id} {clip(e.url, 100)}", detail=endpoint_line(e)) for e in webhooks.endpoints(ctx.uow)
    )
    return Reply(
        title="Webhooks",
        sections=(Section(items=items, empty="No webhooks yet: /webhook add <https://url> events=deal.won"),),
        private=True,
    )


@group.command(
    "webhook remove",
    summary="Remove a webhook endpoint (what still waits for it is dropped)",
    permission=Permission.WEBHOOKS_MANAGE,
    params=[arg("id", Kind.INT, label="Webhook #")],
)
def remove_webhook(req: Request, ctx: Context) -> Reply:
    endpoint = webhooks.remove(ctx.uow, req.args["id"])
    return Reply(text=f"Removed webhook #{endpoint.id} ({endpoint.url}).", tone=Tone.SUCCESS, private=True)


@group.command(
    "webhook test",
    summary="Send a webhook.test event to an endpoint now",
    permission=Permission.WEBHOOKS_MANAGE,
    params=[arg("id", Kind.INT, label="Webhook #")],
)
def test_webhook(req: Request, ctx: Context) -> Reply:
    message_id = webhooks.enqueue_test(ctx.uow, req.args["id"])
    return Reply(
        text=f"Queued a webhook.test event ({message_id}) for webhook #{req.args['id']}. "
        f"See how it went with /webhook deliveries {req.args['id']}.",
        tone=Tone.SUCCESS,
        private=True,
    )


@group.command(
    "webhook deliveries",
    summary="The last delivery attempts to a webhook (status and latency)",
    permission=Permission.WEBHOOKS_MANAGE,
    params=[arg("id", Kind.INT, label="Webhook #")],
)
def webhook_deliveries(req: Request, ctx: Context) -> Reply:
    endpoint = webhooks.get(ctx.uow, req.args["id"])
    tz = ctx.caller.timezone
    items = tuple(
        Item(
            text=f"{a.event_type} {a.message_id} · {a.status_code if a.status_code is not None else 'no answer'} "
            f"· {a.latency_ms} ms",
            detail=f"{fmt_datetime(a.attempted_at, tz)} · attempt {a.attempt}" + (f" · {a.error}" if a.error else ""),
        )
        for a in webhooks.recent_attempts(ctx.uow, endpoint.id)
    )
    return Reply(
        title=f"Deliveries to webhook #{endpoint.id}",
        text=f"{endpoint.url} · {endpoint_line(endpoint)}",
        sections=(Section(items=items, empty="No attempts yet."),),
        private=True,
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
