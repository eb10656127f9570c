"""/stop (anyone: no more campaign messages here) and /consent (admins: record or withdraw a
customer's consent given outside the chat, e.g. a Slack channel shared with the customer)."""

from __future__ import annotations

import re

from bot.args import arg
from bot.context import Context
from bot.handlers.common import fmt_datetime
from bot.hookspecs import hookimpl
from bot.messages import Field, Reply, Request, Tone
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import platforms
from crm_core.services import consent, customers

group = CommandGroup()


@group.command(
    "stop",
    summary="Stop marketing messages to you in this chat (campaigns; not your tickets)",
    permission=Permission.OPT_OUT,
)
def stop(req: Request, ctx: Context) -> Reply:
    source = "unsubscribe button" if req.from_button else "/stop"
    # In a private chat the person is the customer; in a shared channel, the channel's customers.
    stopped = consent.opt_out_address(
        ctx.uow,
        req.origin.platform,
        req.origin.conversation,
        source,
        user_external_id=req.origin.user_external_id if req.origin.is_private else None,
    )
    if stopped.customers == 0:
        return Reply(text="You get no marketing messages from us here.")
    return Reply(
        text="Done: you will get no more marketing messages from us here. Your support requests "
        "are not affected. To hear from us again, send /start.",
        tone=Tone.SUCCESS,
    )


@group.command(
    "consent add",
    summary="Record a customer's consent to messages in a channel shared with them (admins)",
    permission=Permission.CONSENT_MANAGE,
    params=[
        arg("customer", label="Customer"),
        arg("channel", label="Shared channel id", hint="C0123ABC"),
        arg("platform", required=False, label="Platform"),
    ],
    usage="<customer> <shared channel id> [platform]",
)
def add(req: Request, ctx: Context) -> Reply:
    customer = customers.resolve_customer(ctx.uow, req.args["customer"])
    offered = platforms.shared_conversation_platforms()
    if "platform" in req.args:
        platform = platforms.validate(req.args["platform"])
        if platform not in offered:
            return Reply(text=f"Consent for shared channels is not recorded on {platform}.", tone=Tone.ERROR)
    elif len(offered) == 1:
        platform = offered[0]
    else:
        return Reply(text=f"Name the platform: {' or '.join(offered) or 'none is installed'}.", tone=Tone.ERROR)
    traits = platforms.traits(platform)
    channel = req.args["channel"].strip().lstrip("#").upper()
    if not re.match(traits.shared_conversation_pattern or "", channel):
        return Reply(
            text=f"{channel!r} is not a {traits.display} channel id (it looks like "
            f"{traits.shared_conversation_example}; find it under the channel's name → About).",
            tone=Tone.ERROR,
        )
    consent.opt_in(ctx.uow, customer.id, platform, channel, f"admin {ctx.caller.name}")
    return Reply(
        text=f"{customer.name} may now get campaign messages in the shared channel {channel}.",
        tone=Tone.SUCCESS,
    )


@group.command(
    "consent remove",
    summary="Record that a customer opted out (e.g. by phone or email), on one or every platform",
    permission=Permission.CONSENT_MANAGE,
    params=[
        arg("customer", label="Customer"),
        arg("platform", required=False, label="Platform"),
    ],
    usage="<customer> [platform]",
)
def remove(req: Request, ctx: Context) -> Reply:
    customer = customers.resolve_customer(ctx.uow, req.args["customer"])
    chosen = [platforms.validate(req.args["platform"])] if "platform" in req.args else platforms.consent_platforms()
    cancelled = sum(
        consent.opt_out_customer(ctx.uow, customer.id, platform, f"staff {ctx.caller.name}").cancelled
        for platform in chosen
    )
    return Reply(
        text=f"{customer.name} opted out on {' and '.join(chosen)}; {cancelled} waiting messages cancelled.",
        tone=Tone.SUCCESS,
    )


@group.command(
    "consent show",
    summary="Where a customer may get campaign messages, and their opt-outs",
    permission=Permission.CUSTOMERS_READ,
    params=[arg("customer", label="Customer")],
    usage="<customer>",
)
def show(req: Request, ctx: Context) -> Reply:
    customer = customers.resolve_customer(ctx.uow, req.args["customer"])
    tz = ctx.caller.timezone or "UTC"
    fields = []
    for row in consent.consents_of(ctx.uow, customer.id):
        if row.status == "opted_in":
            value = f"opted in {fmt_datetime(row.opted_in_at, tz)} ({row.opted_in_source})"
        else:
            value = f"opted out {fmt_datetime(row.opted_out_at, tz)} ({row.opted_out_source})"
        fields.append(Field(row.platform.capitalize(), value, short=False))
    return Reply(
        title=f"Consent of {customer.name}",
        fields=tuple(fields),
        text=None if fields else "No consent recorded: campaigns do not reach this customer.",
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
