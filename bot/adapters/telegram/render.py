"""Translate out: a neutral ``Reply`` as Telegram HTML messages and the buttons of an inline keyboard.

Every string that comes from a Reply is HTML-escaped here (handlers write plain text). Telegram
allows 4,096 characters per message, counted in UTF-16 code units after the markup is parsed;
a longer reply is split into several messages at line boundaries, and a single line longer
than that is cut at a space. Each line carries its own markup, so no cut lands inside a tag.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from bot.messages import Button, Field, FormInput, InputKind, Reply, Section, Tone
from crm_core import i18n
from crm_core.i18n import _
from crm_core.markup import escape_html

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
# A keyboard of dozens of "Open" buttons helps nobody; lists longer than this keep their text only.
MAX_ITEM_BUTTONS = 30
BUTTONS_PER_ROW = 2
_TONE_MARK = {Tone.SUCCESS: "✅ ", Tone.WARNING: "⚠️ ", Tone.ERROR: "❌ ", Tone.INFO: ""}


@dataclass(frozen=True)
class Span:
    text: str
    # b, i or code; None for plain text.
    tag: str | None = None


Line = tuple[Span, ...]


@dataclass(frozen=True)
class RenderedReply:
    # One or more HTML messages, each within TEXT_LIMIT.
    texts: tuple[str, ...]
    # Inline keyboard rows (they go under the last message).
    rows: tuple[tuple[Button, ...], ...]


# The one HTML escaping rule, shared with the templates (crm_core.markup).
escape = escape_html


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def line_html(line: Line) -> str:
    return "".join(f"<{s.tag}>{escape(s.text)}</{s.tag}>" if s.tag else escape(s.text) for s in line if s.text)


def line_length(line: Line) -> int:
    return sum(utf16_len(s.text) for s in line)


def _text_lines(text: str, tag: str | None = None) -> list[Line]:
    return [(Span(part, tag),) for part in text.splitlines() or [""]]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _clip(text: str, limit: int) -> str:
    text = _one_line(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _field_lines(field: Field) -> list[Line]:
    first, *more = field.value.splitlines() or [""]
    return [(Span(f"{_one_line(field.label)}:", "b"), Span(f" {first}")), *((Span(m),) for m in more)]


def _section_lines(section: Section) -> list[Line]:
    lines: list[Line] = []
    if section.title:
        lines.append((Span(_one_line(section.title), "b"),))
    if section.text:
        lines.extend(_text_lines(section.text))
    for field in section.fields:
        lines.extend(_field_lines(field))
    for item in section.items:
        first, *more = item.text.splitlines() or [""]
        line: list[Span] = [Span(f"• {first}")]
        if item.detail and not more:
            line.append(Span(f" — {_one_line(item.detail)}", "i"))
        lines.append(tuple(line))
        lines.extend((Span(f"  {m}"),) for m in more)
        if item.detail and more:
            lines.append((Span(f"  {_one_line(item.detail)}", "i"),))
    if not section.items and not section.fields and not section.text and section.empty:
        lines.append((Span(section.empty, "i"),))
    return lines


def reply_lines(reply: Reply) -> list[Line]:
    lines: list[Line] = []
    mark = _TONE_MARK[reply.tone]
    if reply.title:
        lines.append((Span(mark + _one_line(reply.title), "b"),))
        mark = ""
    if reply.text:
        text_lines = _text_lines(reply.text)
        text_lines[0] = (Span(mark + text_lines[0][0].text),)
        lines.extend(text_lines)
    for field in reply.fields:
        lines.extend(_field_lines(field))
    for section in reply.sections:
        if lines:
            lines.append(())
        lines.extend(_section_lines(section))
    if reply.footer:
        lines.append(())
        lines.extend(_text_lines(reply.footer, "i"))
    return lines


def _cut(text: str, room: int) -> int:
    """How many characters of ``text`` fit in ``room`` UTF-16 units, ending at a space when one is near."""
    used = fit = 0
    for fit, char in enumerate(text):  # noqa: B007 - fit is used after the loop
        used += 2 if ord(char) > 0xFFFF else 1
        if used > room:
            break
    else:
        return len(text)
    space = text.rfind(" ", 0, fit)
    return space + 1 if space > fit // 2 else fit


def wrap_line(line: Line, limit: int = TEXT_LIMIT) -> list[Line]:
    """A line split into pieces of at most ``limit`` visible characters, each with its own markup."""
    if line_length(line) <= limit:
        return [line]
    pieces: list[Line] = []
    current: list[Span] = []
    used = 0
    for span in line:
        text = span.text
        while text:
            size = utf16_len(text)
            if used + size <= limit:
                current.append(Span(text, span.tag))
                used += size
                break
            cut = _cut(text, limit - used)
            if cut:
                current.append(Span(text[:cut], span.tag))
                text = text[cut:]
            pieces.append(tuple(current))
            current, used = [], 0
    if current:
        pieces.append(tuple(current))
    return pieces


def split_messages(lines: list[Line], limit: int = TEXT_LIMIT) -> list[str]:
    """HTML messages of whole lines, each at most ``limit`` visible characters."""
    messages: list[list[Line]] = [[]]
    used = 0
    for line in (piece for whole in lines for piece in wrap_line(whole, limit)):
        size = line_length(line)
        needed = size + (1 if messages[-1] else 0)
        if messages[-1] and used + needed > limit:
            messages.append([])
            used, needed = 0, size
        if not messages[-1] and not size:
            continue  # no message starts with a blank line
        messages[-1].append(line)
        used += needed
    texts = ["\n".join(line_html(line) for line in chunk).strip() for chunk in messages]
    return [text for text in texts if text] or [_("OK")]


def keyboard_rows(reply: Reply) -> tuple[tuple[Button, ...], ...]:
    """Item buttons first, one a row and named after their item; then the reply's own buttons."""
    rows: list[tuple[Button, ...]] = []
    item_buttons = [(item, item.button) for section in reply.sections for item in section.items if item.button]
    for item, button in item_buttons[:MAX_ITEM_BUTTONS]:
        rows.append(
            (Button(f"{button.label}: {_clip(item.text, 40)}", button.command, button.style, button.opens_form),)
        )
    own = list(reply.buttons)
    for start in range(0, len(own), BUTTONS_PER_ROW):
        rows.append(tuple(own[start : start + BUTTONS_PER_ROW]))
    return tuple(rows)


def render_reply(reply: Reply, limit: int = TEXT_LIMIT) -> RenderedReply:
    """The reply as HTML messages and keyboard rows; our own words in the reply's language."""
    with i18n.use_language(reply.language or i18n.current_language()):
        return RenderedReply(tuple(split_messages(reply_lines(reply), limit)), keyboard_rows(reply))


def caption(text: str) -> str:
    return escape(_clip(text, CAPTION_LIMIT))


def render_question(
    form_title: str, number: int, total: int, field: FormInput, *, error: str | None, in_group: bool
) -> str:
    """One question of a step-by-step form, as HTML, in the current language (the caller sets the form's)."""
    lines: list[Line] = [
        (Span(_one_line(form_title), "b"), Span(_(" · question {number} of {total}", number=number, total=total)))
    ]
    if error:
        # Form errors come as clauses ("no customer matches 'x'"): show them as a sentence.
        sentence = _one_line(error)
        ended = sentence.endswith((".", "!", "?", "。", "！", "？"))
        sentence = sentence[:1].upper() + sentence[1:] + ("" if ended else _("."))
        lines.append((Span(f"❌ {sentence}"),))
    lines.append((Span(_one_line(field.label), "b"), Span("" if field.required else _(" (optional)"))))
    if field.hint:
        lines.append((Span(_one_line(field.hint), "i"),))
    if field.initial:
        lines.append((Span(_("Now: ")), Span(_clip(field.initial, 200), "code")))
    skip = not field.required and in_group and field.kind is not InputKind.CHOICE
    if field.kind is InputKind.CHOICE and field.choices:
        how = _("Pick one below, or type it. /cancel stops.")
    elif field.kind is InputKind.DATE:
        how = _("Type a date like 2026-12-01. /cancel stops.")
    elif in_group and skip:
        how = _("Reply to this message with your answer. Send - to skip. /cancel stops.")
    elif in_group:
        how = _("Reply to this message with your answer. /cancel stops.")
    else:
        how = _("Type your answer. /cancel stops.")
    if skip and field.kind is InputKind.DATE:
        how = _("Type a date like 2026-12-01. Send - to skip. /cancel stops.")
    lines.append((Span(how, "i"),))
    return "\n".join(line_html(line) for line in lines)


_TAG = re.compile(r"<[^>]*>")


def split_html(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Already formatted HTML (from a template) in messages of whole lines, each within ``limit``
    visible characters. Templates keep their tags within a line; a longer line is cut as it stands."""
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for line in text.splitlines():
        size = utf16_len(html.unescape(_TAG.sub("", line)))
        while size > limit:
            chunks.extend(["\n".join(current)] if current else [])
            current, used = [], 0
            chunks.append(line[:limit])
            line = line[limit:]
            size = utf16_len(html.unescape(_TAG.sub("", line)))
        if current and used + size + 1 > limit:
            chunks.append("\n".join(current))
            current, used = [], 0
        current.append(line)
        used += size + (1 if len(current) > 1 else 0)
    if current:
        chunks.append("\n".join(current))
    return [chunk for chunk in (c.strip() for c in chunks) if chunk] or ["OK"]
