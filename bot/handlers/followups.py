"""/followup: set a follow-up on a customer (a reminder in your DM at the time), list, done,
cancel, snooze; and /tz, the timezone your times are read in."""

from __future__ import annotations

import difflib
import re
from zoneinfo import available_timezones

from bot.args import Kind, arg, rest, tokenize
from bot.context import Context
from bot.handlers.common import counted_position, fmt_datetime, followups_section
from bot.handlers.home import HOME_LIST_LIMIT, home_section
from bot.hookspecs import hookimpl
from bot.messages import Button, Reply, Request, Section, Style, Tone
from bot.paging import PAGE_OPTION, more_button, page_number
from bot.plugin_types import JobDefinition
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import clock, i18n
from crm_core.errors import ValidationError
from crm_core.i18n import N_, _, ngettext
from crm_core.models import User
from crm_core.services import customers, followups, users
from crm_core.services import followups as followup_service
from crm_core.when import EXAMPLES, parse_when_text, split_reference_when_text

group = CommandGroup()


def _me(ctx: Context) -> User:
    user = ctx.uow.session.get(User, ctx.caller.user_id) if ctx.caller.user_id else None
    if user is None:
        raise ValidationError(
            _("the CRM does not know you yet, so you cannot have follow-ups; ask an admin for a role")
        )
    return user


def _timezone_hint(ctx: Context) -> str | None:
    if ctx.caller.timezone in ("", "UTC"):
        return _("Times are read in UTC. Set your timezone with /tz Europe/Berlin (or your city).")
    return None


def _in_words(seconds: float) -> str:
    minutes = max(int(seconds // 60), 1)
    if minutes < 90:
        return ngettext("in {n} minute", "in {n} minutes", minutes)
    hours = round(minutes / 60)
    if hours < 36:
        return ngettext("in {n} hour", "in {n} hours", hours)
    days = round(hours / 24)
    return ngettext("in {n} day", "in {n} days", days)


def _local_now(timezone: str) -> str:
    return fmt_datetime(clock.utcnow(), timezone)


@group.command(
    "followup",
    summary=N_("Set a follow-up on a customer: you get a reminder in your DM at that time"),
    permission=Permission.FOLLOWUPS,
    params=[
        arg("customer", label=N_("Customer"), hint=N_("name, email or #id"), max_length=200),
        rest(
            "details",
            Kind.TEXT,
            verbatim=True,
            label=N_("When and what"),
            hint=N_("tomorrow 9:00 call about the renewal"),
            max_length=1200,
        ),
    ],
    usage="<customer> <when> <text>",
    form_title=N_("New follow-up"),
)
def set_followup(req: Request, ctx: Context) -> Reply:
    me = _me(ctx)
    tz = ctx.caller.timezone or "UTC"
    details = req.args["details"]
    tokens = tokenize(details)
    if tokens and tokens[0].quoted:
        # "tomorrow 9:00" call …: the quoted words are the whole time.
        reference, text = req.args["customer"], details[tokens[0].end :].strip()
        when = parse_when_text(tokens[0].value, tz)
        if when is None:
            raise ValidationError(
                _(
                    "{value} is not a time I understand: write it as {examples}",
                    value=repr(tokens[0].value),
                    examples=_(EXAMPLES),
                )
            )
        rest_tokens = tokenize(text)
        if len(rest_tokens) == 1 and rest_tokens[0].quoted:
            text = rest_tokens[0].value
    else:
        words = [req.args["customer"], *details.split()]
        reference, when, text = split_reference_when_text(words, tz)
    customer = customers.resolve_customer(ctx.uow, reference)
    followup = followups.create_followup(ctx.uow, customer.id, me.id, when.at, text, timezone=tz)
    due = fmt_datetime(followup.due_at, tz)
    return Reply(
        text=_(
            "Follow-up #{id} set for {due} {tz} ({in_words}): {text} — {customer}.",
            id=followup.id,
            due=due,
            tz=tz,
            in_words=_in_words((followup.due_at - clock.utcnow()).total_seconds()),
            text=followup.text,
            customer=customer.name,
        ),
        buttons=(
            Button(_("Cancel it"), f"/followup cancel {followup.id}", Style.DANGER),
            Button(_("My follow-ups"), "/followup list"),
        ),
        footer=_timezone_hint(ctx) or _("You will get a reminder in your DM at {due}.", due=due),
        tone=Tone.SUCCESS,
    )


@group.command(
    "followup list",
    read_only=True,
    summary=N_('Your open follow-ups (managers: all with "all"; "overdue" for late ones)'),
    permission=Permission.FOLLOWUPS,
    params=[
        arg("scope", Kind.CHOICE, choices=("mine", "overdue", "all"), required=False, label=N_("Which")),
        PAGE_OPTION,
    ],
    usage="[mine|overdue|all] [page=…]",
)
def list_followups(req: Request, ctx: Context) -> Reply:
    scope = req.args.get("scope", "mine")
    tz = ctx.caller.timezone or "UTC"
    number = page_number(req)
    if scope == "all":
        if not ctx.can(Permission.DIGESTS_MANAGE):
            return Reply(
                text=_("Only managers and admins can see everyone's follow-ups."), tone=Tone.ERROR, private=True
            )
        page = followups.open_page(ctx.uow, number)
        title = _("All open follow-ups")
    else:
        me = _me(ctx)
        due_before = clock.utcnow() if scope == "overdue" else None
        page = followups.open_page(ctx.uow, number, user_id=me.id, due_before=due_before)
        title = _("Your overdue follow-ups") if scope == "overdue" else _("Your open follow-ups")
    counted = ngettext("{count} open", "{count} open", page.total, count=i18n.format_number(page.total))
    return Reply(
        title=title,
        sections=(followups_section(page.items, tz, title="", with_customer=True),),
        buttons=more_button(req, page),
        footer=_("{position} · times in {tz}", position=counted_position(page, counted), tz=tz)
        if page.total
        else _("Set one with /followup <customer> <when> <text>."),
    )


def _changed(text: str) -> Reply:
    return Reply(text=text, tone=Tone.SUCCESS)


@group.command(
    "followup done",
    summary=N_("Mark a follow-up as done"),
    permission=Permission.FOLLOWUPS,
    params=[arg("id", Kind.INT, label=N_("Follow-up #"))],
)
def done_followup(req: Request, ctx: Context) -> Reply:
    followup = followups.complete(ctx.uow, req.args["id"], _me(ctx))
    return _changed(
        _(
            "Follow-up #{id} is done: {text} — {customer}.",
            id=followup.id,
            text=followup.text,
            customer=followup.customer.name,
        )
    )


@group.command(
    "followup cancel",
    summary=N_("Cancel a follow-up (no reminder will come)"),
    permission=Permission.FOLLOWUPS,
    params=[arg("id", Kind.INT, label=N_("Follow-up #"))],
)
def cancel_followup(req: Request, ctx: Context) -> Reply:
    followup = followups.cancel(ctx.uow, req.args["id"], _me(ctx))
    return _changed(
        _(
            "Follow-up #{id} is cancelled: {text} — {customer}.",
            id=followup.id,
            text=followup.text,
            customer=followup.customer.name,
        )
    )


@group.command(
    "followup snooze",
    summary=N_("Remind me again later (default: in 1 day)"),
    permission=Permission.FOLLOWUPS,
    params=[
        arg("id", Kind.INT, label=N_("Follow-up #")),
        arg("days", required=False, label=N_("Days"), hint="1d, 2d, …"),
    ],
    usage="<id> [1d|2d|…]",
)
def snooze_followup(req: Request, ctx: Context) -> Reply:
    days = re.fullmatch(r"(\d{1,3})\s*(?:d|days?)?", (req.args.get("days") or "1d").strip().lower())
    if days is None:
        raise ValidationError(
            _("{value} is not a number of days (write 1d, 2d, …)", value=repr(req.args["days"])), field="days"
        )
    followup = followups.snooze(ctx.uow, req.args["id"], _me(ctx), days=int(days.group(1)))
    tz = ctx.caller.timezone or "UTC"
    return _changed(
        _(
            "Follow-up #{id} snoozed until {due} {tz}: {text} — {customer}.",
            id=followup.id,
            due=fmt_datetime(followup.due_at, tz),
            tz=tz,
            text=followup.text,
            customer=followup.customer.name,
        )
    )


@group.command(
    "tz",
    summary=N_("Show or set your timezone (follow-up times and dates use it)"),
    permission=Permission.PROFILE,
    params=[rest("timezone", Kind.TEXT, required=False, label=N_("Timezone"), hint="Europe/Berlin", max_length=64)],
    usage="[Area/City]",
)
def set_timezone(req: Request, ctx: Context) -> Reply:
    me = _me(ctx)
    wanted = (req.args.get("timezone") or "").strip()
    if not wanted:
        return Reply(
            text=_("Your timezone is {tz} (it is {local} there).", tz=me.timezone, local=_local_now(me.timezone)),
            footer=_("Change it with /tz Area/City, e.g. /tz Asia/Shanghai."),
            private=True,
        )
    try:
        users.set_timezone(ctx.uow, me, wanted)
    except ValidationError:
        close = difflib.get_close_matches(wanted, sorted(available_timezones()), n=3, cutoff=0.6)
        if close:
            message = _("{value} is not a timezone. Did you mean {close}?", value=repr(wanted), close=", ".join(close))
        else:
            message = _("{value} is not a timezone. Use an IANA name such as Europe/Berlin.", value=repr(wanted))
        raise ValidationError(message, field="timezone") from None
    return Reply(
        text=_("Your timezone is now {tz} (it is {local} there).", tz=me.timezone, local=_local_now(me.timezone)),
        tone=Tone.SUCCESS,
        private=True,
    )


@home_section(order=20)
def followups_due_home(ctx: Context) -> Section | None:
    """The App Home's "Follow-ups due": the caller's open follow-ups due by the end of their today."""
    if not ctx.can(Permission.FOLLOWUPS) or ctx.caller.user_id is None:
        return None
    found = followups.due_today(ctx.uow, ctx.caller.user_id, ctx.caller.timezone)
    return followups_section(
        found[:HOME_LIST_LIMIT], ctx.caller.timezone, title=_("Follow-ups due today"), with_customer=True
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]


@hookimpl
def register_jobs() -> list[JobDefinition]:
    return [
        JobDefinition(
            followup_service.FIRE_TASK, followup_service.fire_followup, "remind a rep of a follow-up when it is due"
        )
    ]
