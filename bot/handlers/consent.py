"""/stop (anyone: no more campaign messages here) and /consent (admins: record or withdraw a
customer's consent given outside the chat, e.g. a Slack channel shared with the customer).

The answer to /stop is in the language of whoever sent it (a customer: theirs). The sources kept in a
consent row ("/stop", "admin Ana") are data, shown as they were recorded."""

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
from crm_core.i18n import N_, _, ngettext
from crm_core.services import consent, customers

group = CommandGroup()


@group.command(
    "stop",
    summary=N_("Stop marketing messages to you in this chat (campaigns; not your tickets)"),
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
        return Reply(text=_("You get no marketing messages from us here."))
    return Reply(
        text=_(
            "Done: you will get no more marketing messages from us here. Your support requests "
            "are not affected. To hear from us again, send /start."
        ),
        tone=Tone.SUCCESS,
    )


@group.command(
    "consent add",
    summary=N_("Record a customer's consent to messages in a channel shared with them (admins)"),
    permission=Permission.CONSENT_MANAGE,
    params=[
        arg("customer", label=N_("Customer")),
        arg("channel", label=N_("Shared channel id"), hint="C0123ABC"),
        arg("platform", required=False, label=N_("Platform")),
    ],
    usage=N_("<customer> <shared channel id> [platform]"),
)
def add(req: Request, ctx: Context) -> Reply:
    customer = customers.resolve_customer(ctx.uow, req.args["customer"])
    offered = platforms.shared_conversation_platforms()
    if "platform" in req.args:
        platform = platforms.validate(req.args["platform"])
        if platform not in offered:
            return Reply(
                text=_("Consent for shared channels is not recorded on {platform}.", platform=platform),
                tone=Tone.ERROR,
            )
    elif len(offered) == 1:
        platform = offered[0]
    elif not offered:
        return Reply(text=_("Name the platform: none is installed."), tone=Tone.ERROR)
    else:
        return Reply(text=_("Name the platform: {choices}.", choices=_(" or ").join(offered)), tone=Tone.ERROR)
    traits = platforms.traits(platform)
    channel = req.args["channel"].strip().lstrip("#").upper()
    if not re.match(traits.shared_conversation_pattern or "", channel):
        return Reply(
            text=_(
                "{channel} is not a {platform} channel id (it looks like {example}; "
                "find it under the channel's name → About).",
                channel=repr(channel),
                platform=traits.display,
                example=traits.shared_conversation_example,
            ),
            tone=Tone.ERROR,
        )
    consent.opt_in(ctx.uow, customer.id, platform, channel, f"admin {ctx.caller.name}")
    return Reply(
        text=_(
            "{customer} may now get campaign messages in the shared channel {channel}.",
            customer=customer.name,
            channel=channel,
        ),
        tone=Tone.SUCCESS,
    )


@group.command(
    "consent remove",
    summary=N_("Record that a customer opted out (e.g. by phone or email), on one or every platform"),
    permission=Permission.CONSENT_MANAGE,
    params=[
        arg("customer", label=N_("Customer")),
        arg("platform", required=False, label=N_("Platform")),
    ],
    usage=N_("<customer> [platform]"),
)
def remove(req: Request, ctx: Context) -> Reply:
    customer = customers.resolve_customer(ctx.uow, req.args["customer"])
    chosen = [platforms.validate(req.args["platform"])] if "platform" in req.args else platforms.consent_platforms()
    cancelled = sum(
        consent.opt_out_customer(ctx.uow, customer.id, platform, f"staff {ctx.caller.name}").cancelled
        for platform in chosen
    )
    return Reply(
        text=ngettext(
            "{customer} opted out on {platforms}; {n} waiting message cancelled.",
            "{customer} opted out on {platforms}; {n} waiting messages cancelled.",
            cancelled,
            customer=customer.name,
            platforms=_(" and ").join(chosen),
        ),
        tone=Tone.SUCCESS,
    )


@group.command(
    "consent show",
    read_only=True,
    summary=N_("Where a customer may get campaign messages, and their opt-outs"),
    permission=Permission.CUSTOMERS_READ,
    params=[arg("customer", label=N_("Customer"))],
    usage=N_("<customer>"),
)
def show(req: Request, ctx: Context) -> Reply:
    customer = customers.resolve_customer(ctx.uow, req.args["customer"])
    tz = ctx.caller.timezone or "UTC"
    fields = []
    for row in consent.consents_of(ctx.uow, customer.id):
        if row.status == "opted_in":
            value = _("opted in {when} ({source})", when=fmt_datetime(row.opted_in_at, tz), source=row.opted_in_source)
        else:
            value = _(
                "opted out {when} ({source})", when=fmt_datetime(row.opted_out_at, tz), source=row.opted_out_source
            )
        fields.append(Field(row.platform.capitalize(), value, short=False))
    return Reply(
        title=_("Consent of {customer}", customer=customer.name),
        fields=tuple(fields),
        text=None if fields else _("No consent recorded: campaigns do not reach this customer."),
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
