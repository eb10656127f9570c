"""/template: admins read, override and reset the message templates (reminders, digests, …).

A template is named ``<kind>`` or ``<kind>.<format>`` (format: text, mrkdwn, blocks, html;
default text, which serves every platform), optionally followed by a language code (default
en; for ``set``, a template that itself starts with a two-letter language code such as "it"
needs the language given first). An override is checked and test-rendered with the kind's sample data before it is stored;
anything the sandbox refuses (``{{ ''.__class__ }}`` and friends), a syntax error or an
over-long result is reported back and nothing is saved.
"""

from __future__ import annotations

import re

from bot.args import Kind, arg, rest
from bot.context import Context
from bot.hookspecs import hookimpl
from bot.messages import Field, Item, Reply, Request, Section, Tone
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import templating
from crm_core.errors import ValidationError
from crm_core.i18n import N_, _
from crm_core.templating import TemplateRefused

group = CommandGroup()
# A language code given before a template body: "en", "zh", "pt-br" (ISO 639-1, optional region),
# so "ok, {{ rep.name }}" is read as a body, not as language "ok".
_LANGUAGE = re.compile(r"^([a-z]{2})(-[a-z]{2,4})?$")
ISO_639_1 = frozenset(
    "aa ab af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el "
    "en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it "
    "iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt "
    "my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl "
    "sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo "
    "za zh zu".split()
)


def _is_language(word: str) -> bool:
    match = _LANGUAGE.match(word)
    return match is not None and match.group(1) in ISO_639_1


def _name(raw: str) -> tuple[str, str]:
    kind, _dot, fmt = raw.strip().lower().partition(".")
    return kind, fmt or "text"


def _split_language(text: str) -> tuple[str | None, str]:
    """``"zh 提醒…"`` -> ("zh", "提醒…"); a body not starting with a language code -> (None, body)."""
    first, _space, remainder = text.strip().partition(" ")
    head, newline, after = text.strip().partition("\n")
    if _is_language(head.strip()) and newline:
        return head.strip(), after
    if _is_language(first) and remainder.strip():
        return first, remainder
    return None, text


@group.command(
    "template list",
    read_only=True,
    summary=N_("The message templates and their admin overrides"),
    permission=Permission.TEMPLATES_MANAGE,
)
def list_templates(req: Request, ctx: Context) -> Reply:
    overrides = templating.list_overrides(ctx.uow.session)
    directory = templating.templates_dir()
    items = []
    for kind in templating.kinds(ctx.uow.session):
        variants = sorted(p.name.removesuffix(".j2") for p in (directory / kind).glob("*.j2"))
        mine = [f"{o.language}.{o.format}" for o in overrides if o.kind == kind]
        if variants and mine:
            detail = _(
                "built in: {variants} · overridden: {overrides}",
                variants=", ".join(variants),
                overrides=", ".join(mine),
            )
        elif variants:
            detail = _("built in: {variants}", variants=", ".join(variants))
        elif mine:
            detail = _("made from chat: {overrides}", overrides=", ".join(mine))
        else:
            detail = _("made from chat")
        items.append(Item(text=kind, detail=detail))
    return Reply(
        title=_("Message templates"),
        sections=(Section(items=tuple(items), empty=_("No templates found.")),),
        footer=_("/template show <name>[.<format>] [lang] · /template set … · /template reset …"),
    )


@group.command(
    "template show",
    read_only=True,
    summary=N_("Show a template's source (the override if there is one)"),
    permission=Permission.TEMPLATES_MANAGE,
    params=[
        arg("name", label=N_("Template"), hint=N_("followup_reminder or digest.html"), max_length=80),
        arg("language", required=False, label=N_("Language"), hint="en, zh", max_length=10),
    ],
    usage="<name>[.<format>] [lang]",
)
def show_template(req: Request, ctx: Context) -> Reply:
    kind, fmt = _name(req.args["name"])
    variant = templating.current_variant(ctx.uow.session, kind, fmt, req.args.get("language") or "en")
    return Reply(
        title=_("Template {label}", label=templating.variant_label(variant)),
        sections=(Section(text=variant.body),),
        fields=(Field(_("Sample data"), ", ".join(sorted(templating.sample_context(kind))) or "—", short=False),),
        footer=_("Change it with /template set; go back to the built-in one with /template reset."),
    )


@group.command(
    "template set",
    summary=N_("Override a template (admins); it is checked and test-rendered first"),
    permission=Permission.TEMPLATES_MANAGE,
    params=[
        arg("name", label=N_("Template"), hint=N_("followup_reminder or digest.html"), max_length=80),
        rest(
            "body",
            Kind.MULTILINE,
            label=N_("Language and template"),
            hint="en Reminder: {{ followup.text }}",
            max_length=templating.sandbox.MAX_SOURCE_CHARS + 20,
        ),
    ],
    usage="<name>[.<format>] [lang] <template text>",
)
def set_template(req: Request, ctx: Context) -> Reply:
    kind, fmt = _name(req.args["name"])
    language, body = _split_language(req.args["body"])
    language = language or "en"
    try:
        _row, preview = templating.set_override(ctx.uow.session, kind, fmt, language, body, ctx.caller.user_id)
    except TemplateRefused as exc:
        return Reply(
            title=_("Template {kind} ({language}, {format}) not saved", kind=kind, language=language, format=fmt),
            text=str(exc)[0].upper() + str(exc)[1:],
            footer=_(
                "Nothing was changed. Templates may use the sample data's fields, filters and "
                "{{% if %}} / {{% for %}}; names starting with _ are refused."
            ),
            tone=Tone.ERROR,
            private=True,
        )
    return Reply(
        title=_("Template {kind} ({language}, {format}) saved", kind=kind, language=language, format=fmt),
        sections=(Section(title=_("With the sample data it reads:"), text=preview),),
        footer=_("Messages from now on use it. /template reset puts the built-in one back."),
        tone=Tone.SUCCESS,
    )


@group.command(
    "template reset",
    summary=N_("Remove an override: the built-in template applies again"),
    permission=Permission.TEMPLATES_MANAGE,
    params=[
        arg("name", label=N_("Template"), max_length=80),
        arg("language", required=False, label=N_("Language"), max_length=10),
    ],
    usage="<name>[.<format>] [lang]",
)
def reset_template(req: Request, ctx: Context) -> Reply:
    kind, fmt = _name(req.args["name"])
    language = req.args.get("language") or "en"
    if not templating.reset_override(ctx.uow.session, kind, fmt, language):
        raise ValidationError(
            _(
                "{kind} ({language}, {format}) has no override; it already is the built-in one",
                kind=kind,
                language=language,
                format=fmt,
            )
        )
    if not templating.has_built_in(kind, language, fmt):
        # A template made from chat (campaign_spring) or a language no file ships: nothing to go back to.
        return Reply(
            text=_(
                "Template {kind} ({language}, {format}) deleted: {kind} now has no {format} template in {language}.",
                kind=kind,
                language=language,
                format=fmt,
            ),
            tone=Tone.SUCCESS,
        )
    return Reply(
        text=_(
            "Template {kind} ({language}, {format}) is the built-in one again.",
            kind=kind,
            language=language,
            format=fmt,
        ),
        tone=Tone.SUCCESS,
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
