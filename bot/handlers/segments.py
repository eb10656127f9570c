"""/segment: saved customer filters for campaigns: new, show (count and sample), list, set, delete.

The filter syntax is crm_core.campaigns.filters (``country=DE tag=vip ltv>=1000 last_order<90d``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import wraps

from bot.args import Kind, arg, rest
from bot.context import Context
from bot.hookspecs import hookimpl
from bot.messages import Button, Field, Item, Reply, Request, Section, Tone
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import clock, i18n
from crm_core.campaigns.filters import SYNTAX_HELP, FilterError
from crm_core.errors import ValidationError
from crm_core.i18n import N_, _, ngettext, pgettext
from crm_core.models import Segment
from crm_core.money import format_totals
from crm_core.services import orders, segments

group = CommandGroup()
SAMPLE_SIZE = 5

_NAME = arg("name", label=N_("Segment name"), hint="vip-de", max_length=60)
_FILTER = rest(
    "filter",
    Kind.TEXT,
    verbatim=True,
    label=N_("Filter"),
    hint="country=DE tag=vip ltv>=1000 last_order<90d",
    max_length=1000,
)


def _filter_errors_explained(handler: Callable[[Request, Context], Reply]) -> Callable[[Request, Context], Reply]:
    """A typed command with a bad filter gets the error and the syntax; a form shows it on the input."""

    @wraps(handler)
    def run(req: Request, ctx: Context) -> Reply:
        try:
            return handler(req, ctx)
        except FilterError as exc:
            if req.form_values is not None:
                raise
            return Reply(
                text=exc.message,
                footer=_("Filter syntax: {syntax}", syntax=_(SYNTAX_HELP)),
                tone=Tone.ERROR,
                private=True,
            )

    return run


def _segment_reply(ctx: Context, segment: Segment, title: str, tone: Tone = Tone.INFO) -> Reply:
    """The segment's filter, its count now and the first customers by name."""
    fields = [Field(_("Filter"), segment.filter, short=False)]
    try:
        total = segments.count(ctx.uow, segment, ctx.caller.user_id)
        sample = segments.sample(ctx.uow, segment, SAMPLE_SIZE, ctx.caller.user_id)
    except ValidationError as exc:
        # Saved filters can go stale (a user or custom field deleted since): say so, don't fail.
        return Reply(
            title=title,
            fields=(*fields, Field(_("Problem"), exc.message, short=False)),
            tone=Tone.WARNING,
            footer=_("Fix it with /segment set {name} <filter>.", name=segment.name),
        )
    fields.append(Field(_("Customers now"), i18n.format_number(total)))
    tz = ctx.caller.timezone
    # Each customer's LTV in their orders' own currencies (a GBP import shows £, whatever CHATCRM_CURRENCY is).
    values = orders.lifetime_values(ctx.uow.session, [c.id for c in sample])
    items = tuple(
        Item(
            text=c.name,
            detail=_(
                "{country} · LTV {ltv} · last order {last_order}",
                country=c.country or "—",
                ltv=format_totals(values.get(c.id, {}), ctx.settings.currency),
                last_order=_day(c.last_order_at, tz),
            ),
            button=Button(pgettext("button", "Open"), f"/customer #{c.id}"),
        )
        for c in sample
    )
    shown = _("First {count} by name", count=len(items)) if total > len(items) else _("Customers")
    return Reply(
        title=title,
        fields=tuple(fields),
        sections=(Section(title=shown, items=items, empty=_("No customer matches this filter now.")),),
        footer=_("Change it with /segment set {name} <filter> · all segments: /segment list", name=segment.name),
        tone=tone,
    )


def _day(value: datetime | None, tz: str | None) -> str:
    """A customer's last order day in the reader's timezone and language ("—" for never)."""
    if value is None:
        return "—"
    return i18n.format_date(value.astimezone(clock.zone(tz or "UTC")).date())


@group.command(
    "segment new",
    summary=N_("Save a customer filter as a named segment for campaigns"),
    permission=Permission.CAMPAIGNS_DRAFT,
    params=[_NAME, _FILTER],
    usage="<name> <filter…>",
    form_title=N_("New segment"),
)
@_filter_errors_explained
def new_segment(req: Request, ctx: Context) -> Reply:
    segment = segments.create(ctx.uow, req.args["name"], req.args["filter"], ctx.caller.user_id)
    return _segment_reply(ctx, segment, _("Segment {name} saved", name=segment.name), Tone.SUCCESS)


@group.command(
    "segment show",
    read_only=True,
    summary=N_("A segment's filter, how many customers it has now and the first five"),
    permission=Permission.CAMPAIGNS_DRAFT,
    params=[_NAME],
)
def show_segment(req: Request, ctx: Context) -> Reply:
    segment = segments.get(ctx.uow, req.args["name"])
    return _segment_reply(ctx, segment, _("Segment {name}", name=segment.name))


@group.command(
    "segment list",
    read_only=True,
    summary=N_("Every segment with its filter and current customer count"),
    permission=Permission.CAMPAIGNS_DRAFT,
)
def list_segments(req: Request, ctx: Context) -> Reply:
    items = []
    for segment in segments.list_all(ctx.uow):
        try:
            total = segments.count(ctx.uow, segment, ctx.caller.user_id)
            size = ngettext("{count} customer", "{count} customers", total, count=i18n.format_number(total))
        except ValidationError as exc:
            size = f"⚠ {exc.message}"
        items.append(
            Item(
                text=f"{segment.name} · {size}",
                detail=segment.filter,
                button=Button(_("Show"), f"/segment show {segment.name}"),
            )
        )
    return Reply(
        title=_("Segments"),
        sections=(Section(items=tuple(items), empty=_("No segments yet.")),),
        footer=_("Save one with /segment new <name> <filter>, e.g. /segment new vip-de country=DE tag=vip."),
    )


@group.command(
    "segment set",
    summary=N_("Change a segment's filter"),
    permission=Permission.CAMPAIGNS_DRAFT,
    params=[_NAME, _FILTER],
    usage="<name> <filter…>",
    form_title=N_("Change segment"),
)
@_filter_errors_explained
def set_segment(req: Request, ctx: Context) -> Reply:
    segment = segments.update(ctx.uow, req.args["name"], req.args["filter"], ctx.caller.user_id)
    return _segment_reply(ctx, segment, _("Segment {name} changed", name=segment.name), Tone.SUCCESS)


@group.command(
    "segment delete",
    summary=N_("Delete a segment no campaign uses"),
    permission=Permission.CAMPAIGNS_DRAFT,
    params=[_NAME],
)
def delete_segment(req: Request, ctx: Context) -> Reply:
    segment = segments.get(ctx.uow, req.args["name"])
    segments.delete(ctx.uow, segment.name)
    return Reply(
        text=_("Segment {name} deleted (its filter was: {filter}).", name=segment.name, filter=segment.filter),
        tone=Tone.SUCCESS,
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
