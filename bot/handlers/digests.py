"""/digest: subscribe a channel or chat to the managers' daily or weekly digest, list, unsubscribe,
or see one now (managers and admins)."""

from __future__ import annotations

from bot.args import Kind, arg, rest
from bot.context import Context
from bot.hookspecs import hookimpl
from bot.messages import Button, Image, Item, Reply, Request, Section, Tone
from bot.plugin_types import JobDefinition
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import clock, i18n, platforms
from crm_core.errors import ValidationError
from crm_core.i18n import N_, _
from crm_core.models import DigestFrequency
from crm_core.scheduling import Calendar, parse_hhmm
from crm_core.services import digests
from crm_core.services import digests as digest_service
from crm_core.templating import render_message

group = CommandGroup()
FREQUENCIES = tuple(f.value for f in DigestFrequency)
# Weekdays typed in Chinese (周五, 星期五; Sunday also 周日/星期天), besides the English names.
_CHINESE_WEEKDAYS = {
    **{f"{prefix}{day}": index for prefix in ("周", "星期") for index, day in enumerate("一二三四五六日")},
    "星期天": 6,
    "周天": 6,
}


def _options(raw: str, default_tz: str) -> tuple[str, str, int]:
    """``[HH:MM] [timezone] [weekday]`` in any order -> (at, timezone, weekday)."""
    at, tz, weekday = "08:00", default_tz, 0
    for word in raw.split():
        lowered = word.lower()
        if word in _CHINESE_WEEKDAYS:
            weekday = _CHINESE_WEEKDAYS[word]
            continue
        if lowered in digests.WEEKDAY_NAMES or lowered[:3] in [d[:3] for d in digests.WEEKDAY_NAMES]:
            weekday = [d[:3] for d in digests.WEEKDAY_NAMES].index(lowered[:3])
            continue
        try:
            at = parse_hhmm(word).strftime("%H:%M")
            continue
        except ValueError:
            pass
        try:
            clock.zone(word)
        except ValueError:
            raise ValidationError(
                _("{word} is neither a time (HH:MM), a timezone (Europe/Berlin) nor a weekday", word=repr(word))
            ) from None
        tz = word
    return at, tz, weekday


@group.command(
    "digest subscribe",
    summary=N_("Send this channel the daily or weekly digest (managers and admins)"),
    permission=Permission.DIGESTS_MANAGE,
    params=[
        arg("frequency", Kind.CHOICE, choices=FREQUENCIES, label=N_("How often")),
        rest(
            "options",
            Kind.TEXT,
            verbatim=True,
            required=False,
            label=N_("Time, timezone, weekday"),
            hint="08:00 Europe/Berlin",
            max_length=100,
        ),
    ],
    usage="daily|weekly [HH:MM] [timezone] [weekday]",
)
def subscribe(req: Request, ctx: Context) -> Reply:
    frequency = DigestFrequency(req.args["frequency"])
    at, tz, weekday = _options(req.args.get("options") or "", ctx.caller.timezone or "UTC")
    subscription = digests.subscribe(
        ctx.uow,
        platform=req.origin.platform,
        conversation=req.origin.conversation,
        frequency=frequency,
        at=at,
        timezone=tz,
        language=ctx.caller.language,
        weekday=weekday,
        user_id=ctx.caller.user_id,
    )
    trigger = Calendar(
        parse_hhmm(subscription.at_time), tz, weekdays=(weekday,) if frequency is DigestFrequency.WEEKLY else None
    )
    upcoming = trigger.next_after(clock.utcnow())
    assert upcoming is not None, "a daily or weekly calendar always comes round again"
    return Reply(
        text=_(
            "This conversation gets the {subscription} digest; the next one comes {when} {timezone}.",
            subscription=digests.describe(subscription),
            when=i18n.format_datetime(upcoming, clock.zone(tz)),
            timezone=tz,
        ),
        buttons=(Button(_("Show one now"), f"/digest now {frequency.value}"),),
        footer=_("Stop it with /digest unsubscribe."),
        tone=Tone.SUCCESS,
    )


@group.command(
    "digest unsubscribe",
    summary=N_("Stop this channel's digests (both, or only daily / weekly)"),
    permission=Permission.DIGESTS_MANAGE,
    params=[arg("frequency", Kind.CHOICE, choices=FREQUENCIES, required=False, label=N_("Which digest"))],
    usage="[daily|weekly]",
)
def unsubscribe(req: Request, ctx: Context) -> Reply:
    frequency = DigestFrequency(req.args["frequency"]) if "frequency" in req.args else None
    removed = digests.unsubscribe(ctx.uow, req.origin.platform, req.origin.conversation, frequency)
    if not removed:
        return Reply(
            text=_("This conversation has no such digest subscription."),
            tone=Tone.WARNING,
            footer=_("See them with /digest list."),
        )
    if len(removed) > 1:
        text = _("This conversation no longer gets the daily and weekly digests.")
    elif removed[0].frequency is DigestFrequency.WEEKLY:
        text = _("This conversation no longer gets the weekly digest.")
    else:
        text = _("This conversation no longer gets the daily digest.")
    return Reply(text=text, tone=Tone.SUCCESS)


@group.command(
    "digest list",
    read_only=True,
    summary=N_("Every digest subscription"),
    permission=Permission.DIGESTS_MANAGE,
)
def list_subscriptions(req: Request, ctx: Context) -> Reply:
    found = digests.list_subscriptions(ctx.uow)
    here = (req.origin.platform, req.origin.conversation)
    items = tuple(
        Item(
            text=_("{platform}:{conversation} (here)", platform=s.platform, conversation=s.conversation)
            if (s.platform, s.conversation) == here
            else f"{s.platform}:{s.conversation}",
            detail=f"{digests.describe(s)} · {s.language}",
        )
        for s in found
    )
    return Reply(
        title=_("Digest subscriptions"),
        sections=(Section(items=items, empty=_("None yet.")),),
        footer=_("Subscribe a channel with /digest subscribe daily|weekly [HH:MM] [timezone]."),
    )


@group.command(
    "digest now",
    summary=N_("Show the digest of yesterday (or the last 7 days) here, now"),
    permission=Permission.DIGESTS_MANAGE,
    params=[arg("frequency", Kind.CHOICE, choices=FREQUENCIES, required=False, label=N_("Which digest"))],
    usage="[daily|weekly]",
)
def digest_now(req: Request, ctx: Context) -> Reply:
    frequency = DigestFrequency(req.args.get("frequency", "daily"))
    tz = ctx.caller.timezone or "UTC"
    today = clock.today_in(tz)
    digest = digests.build_digest(ctx.uow.session, frequency, today, tz, ctx.settings.currency)
    name = f"digest-now-{req.origin.platform}-{req.origin.conversation}-{frequency}-{today}"
    chart = digests.draw_chart(digest, dict(ctx.settings.extra), name)
    # The plain-text variant: the adapter escapes and renders it like any reply text.
    rendered = render_message(
        ctx.uow.session,
        digests.DIGEST_TEMPLATE,
        platforms.PLAIN,
        ctx.caller.language,
        digests.digest_context(digest, has_chart=chart is not None),
    )
    image = None
    if chart is not None:
        payload = digests.image_payload(chart, digest)
        image = Image(path=payload.path, title=payload.title, alt_text=payload.alt_text)
    return Reply(text=rendered.text, image=image)


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]


@hookimpl
def register_jobs() -> list[JobDefinition]:
    return [
        JobDefinition(
            digest_service.SEND_TASK, digest_service.send_digest, "send a subscribed channel its daily or weekly digest"
        )
    ]
