"""Which template a message uses, and the admins' overrides of them.

Templates live in ``templates/<kind>/<language>.<format>.j2`` (the repository's ``templates/``
folder, or ``CHATCRM_TEMPLATES_DIR``), with ``sample.json`` beside them: example data that
overrides are test-rendered with before they are stored. Formats: ``text`` (plain),
``mrkdwn`` (Slack), ``blocks`` (Slack Block Kit JSON), ``html`` (Telegram HTML).

For a message to a platform in a language, the first that exists wins:
the recipient's language, then English; within a language, an admin override before a shipped
file; within those, the platform's richest format first (Slack: blocks, mrkdwn, text; Telegram:
html, text; console: text). A plain-text variant serves every platform, escaped for it. An
override that fails to render at send time is logged and the shipped file is used instead, so a
broken override never stops a reminder.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core import platforms
from crm_core.errors import NotFound, ValidationError
from crm_core.i18n import _
from crm_core.models import TemplateOverride
from crm_core.outbox_payload import MessagePayload, PayloadButton, PayloadImage
from crm_core.templating.sandbox import (
    FORMATS,
    TemplateRefused,
    check_source,
    convert_text,
    parse_blocks,
    render_source,
    template_path,
)

log = logging.getLogger("chatcrm.templates")

TEMPLATES_ENV = "CHATCRM_TEMPLATES_DIR"
DEFAULT_LANGUAGE = "en"


# The folder set by CHATCRM_TEMPLATES_DIR (read by bot.settings, handed over by the composition root).
_configured_dir: Path | None = None


def use_templates_dir(path: str | Path | None) -> None:
    """Use this folder instead of the built-in ``templates/`` (None: back to the built-in one)."""
    global _configured_dir
    _configured_dir = Path(path) if path else None


def templates_dir() -> Path:
    """The configured folder (``CHATCRM_TEMPLATES_DIR``), else the repository's ``templates/``, else ``./templates``."""
    configured = _configured_dir
    candidates = (
        [Path(configured)]
        if configured
        else [
            Path(__file__).resolve().parents[2] / "templates",
            Path.cwd() / "templates",
        ]
    )
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no templates folder at {', '.join(str(c) for c in candidates)}; set {TEMPLATES_ENV}")


# Template folders contributed by plugins (the register_templates hook), searched after the
# built-in one. Process-wide like the platform registry: rendering runs deep in scheduled tasks.
_extra_dirs: list[Path] = []


def add_template_dirs(paths: Iterable[str | Path]) -> None:
    """Search these folders too (after the built-in one); adding a folder twice is a no-op."""
    for raw in paths:
        path = Path(raw).resolve()
        if not path.is_dir():
            raise FileNotFoundError(f"template folder {path} does not exist")
        if path not in _extra_dirs:
            _extra_dirs.append(path)


def template_dirs() -> list[Path]:
    """Every template folder, the built-in one first."""
    return [templates_dir(), *_extra_dirs]


def kind_dir(kind: str) -> Path:
    """The folder that holds a kind's templates (the built-in one when no folder has it)."""
    for directory in template_dirs():
        if (directory / kind).is_dir():
            return directory
    return templates_dir()


# Admins may create campaign templates of their own from chat (``/template set campaign_spring …``).
CUSTOM_PREFIX = "campaign_"
_CUSTOM_KIND = re.compile(r"^campaign_[a-z0-9_]{1,50}$")
CUSTOM_SAMPLE_KIND = "campaign_announcement"


def kinds(session: Session | None = None) -> list[str]:
    """The shipped template kinds, plus (given a session) campaign templates created from chat."""
    found = {
        p.name
        for directory in template_dirs()
        for p in directory.iterdir()
        if p.is_dir() and not p.name.startswith(".")
    }
    if session is not None:
        found |= set(session.scalars(sa.select(TemplateOverride.kind).distinct()))
    return sorted(found)


def languages(session: Session | None, kind: str) -> list[str]:
    """The languages ``kind`` has a template in: shipped files and (given a session) admin overrides."""
    found = {
        path.name.split(".")[0]
        for directory in template_dirs()
        if (directory / kind).is_dir()
        for path in (directory / kind).glob("*.j2")
    }
    if session is not None:
        found |= set(session.scalars(sa.select(TemplateOverride.language).where(TemplateOverride.kind == kind)))
    return sorted(found)


def _check_kind(kind: str, session: Session | None = None, *, creating: bool = False) -> str:
    kind = kind.strip().lower()
    if kind in kinds(session) or (creating and _CUSTOM_KIND.match(kind)):
        return kind
    raise NotFound(
        _(
            "there is no template {kind} (templates: {kinds}; a new campaign template is made with "
            "/template set {prefix}<name> text en <body>)",
            kind=repr(kind),
            kinds=", ".join(kinds(session)),
            prefix=CUSTOM_PREFIX,
        )
    )


def _check_format(fmt: str) -> str:
    fmt = fmt.strip().lower()
    if fmt not in FORMATS:
        raise ValidationError(
            _("{format} is not a template format (formats: {formats})", format=repr(fmt), formats=", ".join(FORMATS)),
            field="format",
        )
    return fmt


def _check_language(language: str) -> str:
    language = (language or DEFAULT_LANGUAGE).strip().lower()
    if not (2 <= len(language) <= 8 and language.replace("-", "").isalpha()):
        raise ValidationError(
            _("{language} is not a language code (e.g. en, zh)", language=repr(language)), field="language"
        )
    return language


def language_chain(language: str | None) -> list[str]:
    """``zh-cn`` -> [zh-cn, zh, en]: the recipient's language, its base, then English."""
    chain = []
    for candidate in ((language or "").lower(), (language or "").lower().split("-")[0], DEFAULT_LANGUAGE):
        if candidate and candidate not in chain:
            chain.append(candidate)
    return chain


@lru_cache(maxsize=16)
def _sample(directory: str, kind: str) -> dict[str, Any]:
    path = Path(directory) / kind / "sample.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def sample_context(kind: str) -> dict[str, Any]:
    kind = kind.strip().lower()
    if kind not in kinds() and _CUSTOM_KIND.match(kind):
        kind = CUSTOM_SAMPLE_KIND  # a campaign template made from chat gets a campaign's data
    kind = _check_kind(kind)
    return _sample(str(kind_dir(kind)), kind)


@dataclass(frozen=True)
class Variant:
    kind: str
    language: str
    format: str
    # "override" or "file"
    origin: str
    body: str

    @property
    def label(self) -> str:
        """For logs; people read ``variant_label``."""
        return f"{self.kind} {self.language} {self.format} ({'admin override' if self.origin == 'override' else 'built in'})"


def variant_label(variant: Variant) -> str:
    """``followup_reminder en html (built in)`` in the current language."""
    if variant.origin == "override":
        return _(
            "{kind} {language} {format} (admin override)",
            kind=variant.kind,
            language=variant.language,
            format=variant.format,
        )
    return _(
        "{kind} {language} {format} (built in)", kind=variant.kind, language=variant.language, format=variant.format
    )


@dataclass(frozen=True)
class Rendered:
    """A message ready for the outbox: ``text`` in the platform's format (``format``), plus Block
    Kit ``blocks`` for Slack when the template has them (``text`` is then the notification text)."""

    format: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    source: str = ""

    def payload(
        self,
        buttons: tuple[PayloadButton, ...] = (),
        image: PayloadImage | None = None,
        replace: str | None = None,
    ) -> MessagePayload:
        """The outbox payload of this message, with buttons below it, a picture or an edit target."""
        return MessagePayload(
            formatted_text=self.text,
            format=self.format,
            blocks=self.blocks,
            buttons=buttons,
            image=image,
            replace=replace,
        )


def _file_variant(kind: str, language: str, fmt: str) -> Variant | None:
    path = template_path(kind_dir(kind), kind, language, fmt)
    if not path.exists():
        return None
    return Variant(kind, language, fmt, "file", path.read_text(encoding="utf-8"))


def has_built_in(kind: str, language: str, fmt: str) -> bool:
    """Whether a template file ships for exactly this kind, language and format."""
    return _file_variant(kind, language, fmt) is not None


def _overrides(session: Session | None, kind: str, languages: list[str]) -> dict[tuple[str, str], TemplateOverride]:
    if session is None:
        return {}
    rows = session.scalars(
        sa.select(TemplateOverride).where(TemplateOverride.kind == kind, TemplateOverride.language.in_(languages))
    )
    return {(row.language, row.format): row for row in rows}


def candidates(
    session: Session | None, kind: str, formats: tuple[str, ...], language: str | None, *, with_overrides: bool = True
) -> list[Variant]:
    """Every variant that could serve, in the order they are tried."""
    languages = language_chain(language)
    overrides = _overrides(session, kind, languages) if with_overrides else {}
    found: list[Variant] = []
    for lang in languages:
        for fmt in formats:
            row = overrides.get((lang, fmt))
            if row is not None:
                found.append(Variant(kind, lang, fmt, "override", row.body))
        for fmt in formats:
            variant = _file_variant(kind, lang, fmt)
            if variant is not None:
                found.append(variant)
    return found


def _render_variant(variant: Variant, context: dict[str, Any], target: str) -> str:
    if variant.origin == "file":
        text = render_source(
            "",
            variant.format,
            context,
            directory=str(kind_dir(variant.kind)),
            name=f"{variant.kind}/{variant.language}.{variant.format}.j2",
        )
    else:
        text = render_source(variant.body, variant.format, context)
    return convert_text(text, target) if variant.format == "text" and target != "text" else text


def _first_rendering(
    variants: list[Variant], context: dict[str, Any], target: str, strict: bool = False
) -> tuple[Variant, str] | None:
    for variant in variants:
        try:
            return variant, _render_variant(variant, context, target)
        except TemplateRefused as exc:
            if variant.origin == "file" or strict:
                raise
            log.warning("template override %s failed, using the built-in one: %s", variant.label, exc)
    return None


class MessageRenderer:
    """Renders one message kind for one platform and language, many times: the variants are looked
    up once (campaigns render the same template for thousands of recipients). ``strict``: a failing
    override is an error instead of falling back to the shipped file (a campaign must send what
    its author wrote, or nothing)."""

    def __init__(
        self, session: Session | None, kind: str, platform: str, language: str | None, *, strict: bool = False
    ):
        self.kind, self.platform, self.strict = kind, platform, strict
        # The platform declares its text format, the template variants that can give it, and any
        # richer layout (Slack's blocks) it takes besides the text.
        traits = platforms.traits(platform)
        self.target = traits.text_format
        self.layout = traits.layout_format
        self.variants = candidates(session, kind, traits.template_variants, language)
        if not self.variants:
            raise FileNotFoundError(f"no template for {kind!r} in {templates_dir()}")
        self.block_variants: dict[str, list[Variant]] = {}
        if self.layout:
            for lang in {v.language for v in self.variants}:
                self.block_variants[lang] = [
                    v for v in candidates(session, kind, (self.layout,), lang) if v.language == lang
                ]

    def __call__(self, context: dict[str, Any]) -> Rendered:
        chosen = _first_rendering(self.variants, context, self.target, self.strict)
        if chosen is None:
            raise TemplateRefused(f"every variant of the {self.kind!r} template failed")
        variant, text = chosen
        blocks = None
        if self.layout:
            rendered_blocks = _first_rendering(
                self.block_variants.get(variant.language, []), context, self.layout, self.strict
            )
            if rendered_blocks is not None:
                blocks = parse_blocks(rendered_blocks[1])
        return Rendered(format=self.target, text=text, blocks=blocks, source=variant.label)


def render_message(
    session: Session | None, kind: str, platform: str, language: str | None, context: dict[str, Any]
) -> Rendered:
    """Render message ``kind`` for ``platform`` in ``language`` (falling back as described above)."""
    return MessageRenderer(session, kind, platform, language)(context)


# Admin overrides (/template show|set|reset)


def current_variant(session: Session, kind: str, fmt: str, language: str) -> Variant:
    """What ``/template show`` shows: the override if there is one, else the shipped file."""
    kind, fmt, language = _check_kind(kind, session), _check_format(fmt), _check_language(language)
    found = [v for v in candidates(session, kind, (fmt,), language) if v.language == language]
    if not found:
        found = [v for v in candidates(session, kind, (fmt,), DEFAULT_LANGUAGE) if v.format == fmt]
    if not found:
        raise NotFound(_("there is no {format} variant of {kind}", format=fmt, kind=repr(kind)))
    return found[0]


def validate_override(kind: str, fmt: str, body: str) -> str:
    """Check and test-render an override with the kind's sample data; returns the rendering.
    Raises TemplateRefused with what is wrong."""
    check_source(body, fmt)
    rendered = render_source(body, fmt, sample_context(kind))
    if fmt == "blocks":
        parse_blocks(rendered)
    if not rendered.strip():
        raise TemplateRefused(_("the template renders as an empty message"))
    return rendered


def set_override(
    session: Session, kind: str, fmt: str, language: str, body: str, user_id: int | None
) -> tuple[TemplateOverride, str]:
    kind, fmt, language = _check_kind(kind, session, creating=True), _check_format(fmt), _check_language(language)
    preview = validate_override(kind, fmt, body)
    row = session.scalars(
        sa.select(TemplateOverride).where(
            TemplateOverride.kind == kind, TemplateOverride.format == fmt, TemplateOverride.language == language
        )
    ).one_or_none()
    if row is None:
        row = TemplateOverride(kind=kind, format=fmt, language=language, body=body, updated_by_id=user_id)
        session.add(row)
    else:
        row.body, row.updated_by_id = body, user_id
    session.flush()
    return row, preview


def reset_override(session: Session, kind: str, fmt: str, language: str) -> bool:
    kind, fmt, language = _check_kind(kind, session), _check_format(fmt), _check_language(language)
    row = session.scalars(
        sa.select(TemplateOverride).where(
            TemplateOverride.kind == kind, TemplateOverride.format == fmt, TemplateOverride.language == language
        )
    ).one_or_none()
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def list_overrides(session: Session) -> list[TemplateOverride]:
    return list(
        session.scalars(
            sa.select(TemplateOverride).order_by(
                TemplateOverride.kind, TemplateOverride.language, TemplateOverride.format
            )
        )
    )
