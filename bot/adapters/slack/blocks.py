"""Replies as Block Kit: messages (paginated at Slack's 50 blocks) and the App Home view.

Every piece of user data is escaped for mrkdwn (``mrkdwn.escape``) or put into ``plain_text``,
and every text is cut to Slack's limits, so no reply can ping a channel or be refused by Slack.

Buttons carry their command line as the action value; the action id says what a press does:
``chatcrm.run.N`` runs it, ``chatcrm.form.N`` asks for its arguments in a modal, and
``chatcrm.more`` shows the next page of a long reply (its value is ``{"c": command, "p": page}``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.adapters.slack.mrkdwn import FIELD_TEXT_LIMIT, PLAIN_TEXT_LIMIT, SECTION_TEXT_LIMIT, chunks, clip, escape
from bot.messages import Button, Field, Form, Reply, Section, Style, Tone
from bot.paging import MORE as MORE_LABEL
from crm_core import i18n
from crm_core.i18n import _

log = logging.getLogger("chatcrm.slack")

Block = dict[str, Any]

MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100
FIELDS_PER_SECTION = 10
BUTTONS_PER_ACTIONS = 25
BUTTON_TEXT_LIMIT = 75
ACTION_VALUE_LIMIT = 2000
# Notification text (what a phone shows); Slack truncates far later, nobody reads further.
FALLBACK_TEXT_LIMIT = 3000

RUN, FORM, MORE = "chatcrm.run", "chatcrm.form", "chatcrm.more"
ACTION_ID = re.compile(r"^chatcrm\.(run|form|more)(\.\d+)?$")

_TONE_EMOJI = {Tone.ERROR: ":x: ", Tone.WARNING: ":warning: ", Tone.SUCCESS: ":white_check_mark: ", Tone.INFO: ""}


def plain(text: str, limit: int = PLAIN_TEXT_LIMIT) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit) or " ", "emoji": True}


def mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def section(text: str) -> Block:
    return {"type": "section", "text": mrkdwn(clip(text, SECTION_TEXT_LIMIT))}


def context(text: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(clip(text, FIELD_TEXT_LIMIT))]}


@dataclass(frozen=True)
class Pressed:
    """What a button press asks for, decoded from its action."""

    command: str
    wants_form: bool = False
    # For "more": the page to show.
    page: int | None = None


def decode_action(action_id: str, value: str) -> Pressed | None:
    match = ACTION_ID.match(action_id or "")
    if not match or not value:
        return None
    if match.group(1) == "more":
        try:
            data = json.loads(value)
            return Pressed(command=str(data["c"]), page=max(2, int(data["p"])))
        except (ValueError, KeyError, TypeError):
            return None
    return Pressed(command=value, wants_form=match.group(1) == "form")


def more_button(command: str, page: int) -> Block | None:
    value = json.dumps({"c": command, "p": page}, separators=(",", ":"), ensure_ascii=False)
    if len(value) > ACTION_VALUE_LIMIT:
        return None
    element = {"type": "button", "text": plain(_(MORE_LABEL), BUTTON_TEXT_LIMIT), "action_id": MORE, "value": value}
    return {"type": "actions", "elements": [element]}


class BlockBuilder:
    """Collects blocks for one reply; numbers the buttons so action ids are unique in the message."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self._buttons = 0

    def button(self, button: Button) -> Block | None:
        if len(button.command) > ACTION_VALUE_LIMIT:
            log.warning("button %r dropped: its command is longer than Slack allows", button.label)
            return None
        self._buttons += 1
        element: Block = {
            "type": "button",
            "text": plain(button.label, BUTTON_TEXT_LIMIT),
            "action_id": f"{FORM if button.opens_form else RUN}.{self._buttons}",
            "value": button.command,
        }
        if button.style is not Style.DEFAULT:
            element["style"] = button.style.value
        return element

    def text(self, escaped: str) -> None:
        self.blocks.extend(section(piece) for piece in chunks(escaped, SECTION_TEXT_LIMIT))

    def fields(self, fields: Iterable[Field]) -> None:
        short: list[dict[str, str]] = []

        def flush() -> None:
            for start in range(0, len(short), FIELDS_PER_SECTION):
                self.blocks.append({"type": "section", "fields": short[start : start + FIELDS_PER_SECTION]})
            short.clear()

        for field in fields:
            text = f"*{escape(field.label)}*\n{escape(field.value)}"
            if field.short:
                short.append(mrkdwn(clip(text, FIELD_TEXT_LIMIT)))
            else:
                flush()
                self.text(text)
        flush()

    def section(self, part: Section) -> None:
        # Lines without buttons share one section block (Slack counts blocks, not lines).
        lines: list[str] = []
        if part.title:
            lines.append(f"*{escape(part.title)}*")
        if part.text:
            lines.append(escape(part.text))
        if part.fields:
            self._lines(lines)
            lines = []
            self.fields(part.fields)
        for item in part.items:
            detail = f" — {escape(item.detail)}" if item.detail else ""
            element = self.button(item.button) if item.button else None
            if element is None:
                lines.append(f"• {escape(item.text)}{detail}")
                continue
            self._lines(lines)
            lines = []
            text = f"*{escape(item.text)}*" + (f"\n{escape(item.detail)}" if item.detail else "")
            self.blocks.append(
                {"type": "section", "text": mrkdwn(clip(text, SECTION_TEXT_LIMIT)), "accessory": element}
            )
        if part.empty and not (part.items or part.fields or part.text):
            lines.append(f"_{escape(part.empty)}_")
        self._lines(lines)

    def _lines(self, lines: list[str]) -> None:
        if lines:
            self.text("\n".join(lines))

    def actions(self, buttons: Iterable[Button]) -> None:
        elements = [e for e in (self.button(b) for b in buttons) if e is not None]
        for start in range(0, len(elements), BUTTONS_PER_ACTIONS):
            self.blocks.append({"type": "actions", "elements": elements[start : start + BUTTONS_PER_ACTIONS]})


def form_as_text(form: Form) -> str:
    """A form shown as a message, where no modal can open (no trigger): the arguments to type."""
    names = ", ".join(i.label if i.required else _("{label} (optional)", label=i.label) for i in form.inputs)
    return _(
        "{title}: this needs {names}. Type the command with them, e.g. {command} …",
        title=form.title,
        names=names,
        command=form.command,
    )


def reply_blocks(reply: Reply) -> list[Block]:
    """Every block of a reply, before any page limit, with our own words in the reply's language."""
    with i18n.use_language(reply.language or i18n.current_language()):
        return _reply_blocks(reply)


def _reply_blocks(reply: Reply) -> list[Block]:
    builder = BlockBuilder()
    mark = _TONE_EMOJI[reply.tone]
    if reply.title:
        builder.blocks.append({"type": "header", "text": plain(mark + reply.title)})
        mark = ""
    if reply.text:
        builder.text(mark + escape(reply.text))
        mark = ""
    builder.fields(reply.fields)
    for part in reply.sections:
        if builder.blocks and part.title:
            builder.blocks.append({"type": "divider"})
        builder.section(part)
    if reply.form:
        builder.text(mark + escape(form_as_text(reply.form)))
    if reply.image:
        builder.blocks.append(context(f":bar_chart: {escape(reply.image.title)}"))
    builder.actions(reply.buttons)
    if reply.footer:
        builder.blocks.append(context(escape(reply.footer)))
    if not builder.blocks:
        builder.blocks.append(section(mark + _("Done.")))
    return builder.blocks


def fallback_text(reply: Reply) -> str:
    """The message's ``text``: what notifications show. Escaped too: Slack parses it for mentions."""
    parts = [p for p in (reply.title, reply.text) if p] or [reply.footer or "chatcrm"]
    return clip(escape(" — ".join(parts)), FALLBACK_TEXT_LIMIT)


@dataclass(frozen=True)
class Page:
    blocks: list[Block]
    number: int
    # True when the page ends with a "More" button.
    has_more: bool


def message_page(
    reply: Reply, page: int = 1, *, more_command: str | None = None, limit: int = MESSAGE_BLOCK_LIMIT
) -> Page:
    """Page ``page`` of a reply as a message of at most ``limit`` blocks.

    With ``more_command`` (a command that can safely run again), a long reply ends in a "More"
    button that re-runs it for the next page; without, the rest is left out with a note saying so.
    Page 1 holds ``limit - 1`` blocks, later pages ``limit - 2`` (one goes to the "page N" line).
    """
    with i18n.use_language(reply.language or i18n.current_language()):
        return _message_page(reply, page, more_command, limit)


def _message_page(reply: Reply, page: int, more_command: str | None, limit: int) -> Page:
    blocks = reply_blocks(reply)
    if page <= 1 and len(blocks) <= limit:
        return Page(blocks, 1, False)
    start, size = 0, limit - 1
    for _page in range(2, page + 1):
        start, size = start + size, limit - 2
    rest = blocks[start:]
    title = escape(reply.title) if reply.title else _("the list")
    head = [context(_("Page {number} of {title}", number=page, title=title))] if page > 1 else []
    if not rest:
        gone = _("Nothing more to show: the list got shorter. Run the command again.")
        return Page(head + [context(gone)], page, False)
    if len(head) + len(rest) <= limit:
        return Page(head + rest, page, False)
    more = more_button(more_command, page + 1) if more_command else None
    if more is None:
        note = context(_("The rest does not fit in one Slack message and is not shown."))
        return Page(head + rest[:size] + [note], page, False)
    return Page(head + rest[:size] + [more], page, True)


def home_view(reply: Reply) -> dict[str, Any]:
    """The App Home tab for a reply (at most 100 blocks; Home has no pages)."""
    with i18n.use_language(reply.language or i18n.current_language()):
        blocks = reply_blocks(reply)
        if len(blocks) > VIEW_BLOCK_LIMIT:
            cut = context(_("More is not shown here; use the commands for full lists."))
            blocks = blocks[: VIEW_BLOCK_LIMIT - 1] + [cut]
    return {"type": "home", "blocks": blocks}
