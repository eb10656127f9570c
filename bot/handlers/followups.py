"""/followup: set a follow-up on a customer (a reminder in your DM at the time), list, done,
cancel, snooze; and /tz, the timezone your times are read in."""

from __future__ import annotations

import difflib
import re
from zoneinfo import available_timezones

from bot.args import Kind, arg, rest, tokenize
from bot.context import Context
from bot.handlers.common import fmt_datetime, followups_section
from bot.handlers.home import HOME_LIST_LIMIT, home_section
from bot.hookspecs import hookimpl
from bot.messages import Button, Reply, Request, Section, Style, Tone
from bot.paging import PAGE_OPTION, more_button, page_number, position
from bot.plugin_types import JobDefinition
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import clock
from crm_core.errors import ValidationError
from crm_core.models import User
from crm_core.services import customers, followups, users
from crm_core.services import followups as followup_service
from crm_core.when import EXAMPLES, parse_when_text, split_reference_when_text

group = CommandGroup()


def _me(ctx: Context) -> User:
    user = ctx.uow.session.get(User, ctx.caller.user_id) if ctx.caller.user_id else None
    if user is None:
        raise ValidationError("the CRM does not know you yet, so you cannot have follow-ups; ask an admin for a role")
    return user


def _timezone_hint(ctx: Context) -> str | None:
    if ctx.caller.timezone in ("", "UTC"):
        return "Times are read in UTC. Set your timezone with /tz Europe/Berlin (or your city)."
    return None


def _in_words(seconds: float) -> str:
    minutes = max(int(seconds // 60), 1)
    if minutes < 90:
        return f"in {minutes} minute{'s' if minutes != 1 else ''}"
    hours = round(minutes / 60)
    if hours < 36:
        return f"in {hours} hours"
    return f"in {round(hours / 24)} days"


@group.command(
    "followup",
    summary="Set a follow-up on a customer: you get a reminder in your DM at that time",
    permission=Permission.FOLLOWUPS,
    params=[
        arg("customer", label="Customer", hint="name, email or #id", max_length=200),
        rest(
            "details",
            Kind.TEXT,
            verbatim=True,
            label="When and what",
            hint="tomorrow 9:00 call about the renewal",
            max_length=1200,
        ),
    ],
    usage="<customer> <when> <text>",
    form_title="New follow-up",
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
            raise ValidationError(f"{tokens[0].value!r} is not a time I understand: write it as {EXAMPLES}")
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
        text=f"Follow-up #{followup.id} set for {due} {tz} ({_in_words((followup.due_at - clock.utcnow()).total_seconds())}): "
        f"{followup.text} — {customer.name}.",
        buttons=(
            Button("Cancel it", f"/followup cancel {followup.id}", Style.DANGER),
            Button("My follow-ups", "/followup list"),
        ),
        footer=_timezone_hint(ctx) or f"You will get a reminder in your DM at {due}.",
        tone=Tone.SUCCESS,
    )


@group.command(
    "followup list",
    summary='Your open follow-ups (managers: all with "all"; "overdue" for late ones)',
    permission=Permission.FOLLOWUPS,
    params=[
        arg("scope", Kind.CHOICE, choices=("mine", "overdue", "all"), required=False, label="Which"),
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
            return Reply(text="Only managers and admins can see everyone's follow-ups.", tone=Tone.ERROR, private=True)
        page = followups.open_page(ctx.uow, number)
        title = "All open follow-ups"
    else:
        me = _me(ctx)
        due_before = clock.utcnow() if scope == "overdue" else None
        page = followups.open_page(ctx.uow, number, user_id=me.id, due_before=due_before)
        title = "Your overdue follow-ups" if scope == "overdue" else "Your open follow-ups"
    return Reply(
        title=title,
        sections=(followups_section(page.items, tz, title="", with_customer=True),),
        buttons=more_button(req, page),
        footer=f"{position(page, 'open')} · times in {tz}"
        if page.total
        else "Set one with /followup <customer> <when> <text>.",
    )


def _changed(text: str) -> Reply:
    return Reply(text=text, tone=Tone.SUCCESS)


@group.command(
    "followup done",
    summary="Mark a follow-up as done",
    permission=Permission.FOLLOWUPS,
    params=[arg("id", Kind.INT, label="Follow-up #")],
)
def done_followup(req: Request, ctx: Context) -> Reply:
    followup = followups.complete(ctx.uow, req.args["id"], _me(ctx))
    return _changed(f"Follow-up #{followup.id} is done: {followup.text} — {followup.customer.name}.")


@group.command(
    "followup cancel",
    summary="Cancel a follow-up (no reminder will come)",
    permission=Permission.FOLLOWUPS,
    params=[arg("id", Kind.INT, label="Follow-up #")],
)
def cancel_followup(req: Request, ctx: Context) -> Reply:
    followup = followups.cancel(ctx.uow, req.args["id"], _me(ctx))
    return _changed(f"Follow-up #{followup.id} is cancelled: {followup.text} — {followup.customer.name}.")


@group.command(
    "followup snooze",
    summary="Remind me again later (default: in 1 day)",
    permission=Permission.FOLLOWUPS,
    params=[arg("id", Kind.INT, label="Follow-up #"), arg("days", required=False, label="Days", hint="1d, 2d, …")],
    usage="<id> [1d|2d|…]",
)
def snooze_followup(req: Request, ctx: Context) -> Reply:
    days = re.fullmatch(r"(\d{1,3})\s*(?:d|days?)?", (req.args.get("days") or "1d").strip().lower())
    if days is None:
        raise ValidationError(f"{req.args['days']!r} is not a number of days (write 1d, 2d, …)", field="days")
    followup = followups.snooze(ctx.uow, req.args["id"], _me(ctx), days=int(days.group(1)))
    tz = ctx.caller.timezone or "UTC"
    return _changed(
        f"Follow-up #{followup.id} snoozed until {fmt_datetime(followup.due_at, tz)} {tz}: "
        f"{followup.text} — {followup.customer.name}."
    )


@group.command(
    "tz",
    summary="Show or set your timezone (follow-up times and dates use it)",
    permission=Permission.PROFILE,
    params=[rest("timezone", Kind.TEXT, required=False, label="Timezone", hint="Europe/Berlin", max_length=64)],
    usage="[Area/City]",
)
def set_timezone(req: Request, ctx: Context) -> Reply:
    me = _me(ctx)
    wanted = (req.args.get("timezone") or "").strip()
    if not wanted:
        local = clock.utcnow().astimezone(clock.zone(me.timezone)).strftime("%Y-%m-%d %H:%M")
        return Reply(
            text=f"Your timezone is {me.timezone} (it is {local} there).",
            footer="Change it with /tz Area/City, e.g. /tz Asia/Shanghai.",
            private=True,
        )
    try:
        users.set_timezone(ctx.uow, me, wanted)
    except ValidationError:
        close = difflib.get_close_matches(wanted, sorted(available_timezones()), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else " Use an IANA name such as Europe/Berlin."
        raise ValidationError(f"{wanted!r} is not a timezone.{hint}", field="timezone") from None
    local = clock.utcnow().astimezone(clock.zone(me.timezone)).strftime("%Y-%m-%d %H:%M")
    return Reply(text=f"Your timezone is now {me.timezone} (it is {local} there).", tone=Tone.SUCCESS, private=True)


@home_section(order=20)
def followups_due_home(ctx: Context) -> Section | None:
    """The App Home's "Follow-ups due": the caller's open follow-ups due by the end of their today."""
    if not ctx.can(Permission.FOLLOWUPS) or ctx.caller.user_id is None:
        return None
    found = followups.due_today(ctx.uow, ctx.caller.user_id, ctx.caller.timezone)
    return followups_section(
        found[:HOME_LIST_LIMIT], ctx.caller.timezone, title="Follow-ups due today", with_customer=True
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
