"""Replies as plain text, for the console (and any place without markup)."""

from __future__ import annotations

from bot.messages import Button, Form, Reply, Section, Tone
from crm_core import i18n
from crm_core.i18n import _

_TONE_MARK = {Tone.ERROR: "✗ ", Tone.WARNING: "! ", Tone.SUCCESS: "✓ ", Tone.INFO: ""}


# Typed in the console for the "More" button of the last list (see adapter.py).
MORE_COMMAND = "/more"


def button_hint(button: Button) -> str:
    if button.next_page:
        return f"[{button.label}: {MORE_COMMAND}]"
    return f"[{button.label}: {button.command}{' …' if button.opens_form else ''}]"


def _section(section: Section) -> list[str]:
    lines: list[str] = []
    if section.title:
        lines.append(section.title)
    if section.text:
        lines.append(f"  {section.text}")
    for field in section.fields:
        lines.append(f"  {field.label}: {field.value}")
    for item in section.items:
        line = f"  • {item.text}"
        if item.detail:
            line += f" — {item.detail}"
        if item.button:
            line += f"  {button_hint(item.button)}"
        lines.append(line)
    if not section.items and not section.fields and not section.text and section.empty:
        lines.append(f"  {section.empty}")
    return lines


def render_form(form: Form) -> str:
    lines = [f"{form.title} ({form.command}):"]
    for given, value in form.fixed.items():
        lines.append(f"  {given}: {value}")
    for field in form.inputs:
        extra = f" ({' | '.join(field.choices)})" if field.choices else (f" ({field.hint})" if field.hint else "")
        optional = "" if field.required else _(" [optional]")
        lines.append(f"  {field.label}{optional}{extra}")
    return "\n".join(lines)


def render_text(reply: Reply) -> str:
    """The reply as plain text; our own words ("Actions") in the reply's language."""
    with i18n.use_language(reply.language or i18n.current_language()):
        return _render_text(reply)


def _render_text(reply: Reply) -> str:
    lines: list[str] = []
    mark = _TONE_MARK[reply.tone]
    if reply.title:
        lines.append(f"{mark}{reply.title}")
        mark = ""
    if reply.text:
        lines.append(f"{mark}{reply.text}")
    if reply.fields:
        width = max(len(f.label) for f in reply.fields)
        lines.extend(f"  {f.label.ljust(width)}  {f.value}" for f in reply.fields)
    for section in reply.sections:
        if lines:
            lines.append("")
        lines.extend(_section(section))
    if reply.form:
        lines.append(render_form(reply.form))
    if reply.image:
        lines.append(f"{reply.image.title}: {reply.image.path}")
    if reply.buttons:
        lines.append("")
        lines.append(_("Actions: {buttons}", buttons=" ".join(button_hint(b) for b in reply.buttons)))
    if reply.footer:
        lines.append(reply.footer)
    return "\n".join(lines)
