"""Forms as Slack modals, and modal submissions back as form values.

A ``Form`` becomes a modal (``views.open`` with the press's trigger_id). What the submission needs
later travels in the view's ``private_metadata`` (``FormContext``): the command to run, the
arguments already known (``Form.fixed``) and where the result goes. Each input is a block whose
``block_id`` is the input's name, so ``FormRejected.errors`` map straight onto inline errors.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.adapters.slack.blocks import Block, context, plain
from bot.adapters.slack.mrkdwn import FIELD_TEXT_LIMIT, clip, escape
from bot.messages import Form, FormInput, InputKind
from crm_core import i18n
from crm_core.i18n import _

CALLBACK_ID = "chatcrm.form"
VALUE = "value"
METADATA_LIMIT = 3000
MODAL_TITLE_LIMIT = 24
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
OPTIONS_LIMIT = 100
INPUT_TEXT_LIMIT = 3000
ERROR_TEXT_LIMIT = 300
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


class MetadataTooLong(ValueError):
    """The form's fixed arguments do not fit into Slack's 3,000 characters of private_metadata."""


@dataclass(frozen=True)
class FormContext:
    """What a modal submission needs that the submission itself does not carry."""

    command: str
    fixed: dict[str, str] = field(default_factory=dict)
    # Where the result goes: the response_url of the slash command or button, else the channel.
    response_url: str | None = None
    channel: str | None = None
    thread_ts: str | None = None

    def encode(self) -> str:
        data = {k: v for k, v in asdict(self).items() if v}
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if len(text) > METADATA_LIMIT and self.response_url:
            # The channel is enough to answer; the response_url is only the nicer way.
            return FormContext(self.command, self.fixed, None, self.channel, self.thread_ts).encode()
        if len(text) > METADATA_LIMIT:
            raise MetadataTooLong(f"form context is {len(text)} characters")
        return text

    @classmethod
    def decode(cls, text: str) -> FormContext:
        data = json.loads(text or "{}")
        return cls(
            command=str(data["command"]),
            fixed={str(k): str(v) for k, v in (data.get("fixed") or {}).items()},
            response_url=data.get("response_url"),
            channel=data.get("channel"),
            thread_ts=data.get("thread_ts"),
        )


def _element(form_input: FormInput) -> Block:
    initial = form_input.initial
    if form_input.kind is InputKind.CHOICE and 0 < len(form_input.choices) <= OPTIONS_LIMIT:
        options = [{"text": plain(c, OPTION_TEXT_LIMIT), "value": c[:OPTION_VALUE_LIMIT]} for c in form_input.choices]
        element: Block = {"type": "static_select", "action_id": VALUE, "options": options}
        chosen = [o for o, c in zip(options, form_input.choices, strict=True) if c == initial]
        if chosen:
            element["initial_option"] = chosen[0]
        return element
    if form_input.kind is InputKind.DATE:
        element = {"type": "datepicker", "action_id": VALUE}
        if initial and _DATE.match(initial):
            element["initial_date"] = initial
        return element
    if form_input.kind is InputKind.NUMBER:
        # Decimals allowed: the command's own parser says precisely what it accepts.
        element = {"type": "number_input", "action_id": VALUE, "is_decimal_allowed": True}
        if initial and _NUMBER.match(initial):
            element["initial_value"] = initial
        return element
    element = {"type": "plain_text_input", "action_id": VALUE, "max_length": INPUT_TEXT_LIMIT}
    if form_input.kind is InputKind.MULTILINE:
        element["multiline"] = True
    if initial:
        element["initial_value"] = initial[:INPUT_TEXT_LIMIT]
    return element


def input_block(form_input: FormInput) -> Block:
    block: Block = {
        "type": "input",
        "block_id": form_input.name,
        "label": plain(form_input.label, FIELD_TEXT_LIMIT),
        "element": _element(form_input),
        "optional": not form_input.required,
    }
    hint = form_input.hint
    if form_input.kind is InputKind.CHOICE and len(form_input.choices) > OPTIONS_LIMIT:
        hint = _("One of: {choices}", choices=", ".join(form_input.choices))
    if hint:
        block["hint"] = plain(hint, FIELD_TEXT_LIMIT)
    return block


def modal_view(form: Form, where: FormContext) -> dict[str, Any]:
    """The modal asking for ``form``, its buttons in the form's language."""
    with i18n.use_language(form.language or i18n.current_language()):
        return _modal_view(form, where)


def _modal_view(form: Form, where: FormContext) -> dict[str, Any]:
    blocks: list[Block] = []
    if form.fixed:
        known = ", ".join(f"{name}: {value}" for name, value in form.fixed.items())
        blocks.append(context(escape(known)))
    blocks.extend(input_block(i) for i in form.inputs[: 100 - len(blocks)])
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": plain(form.title, MODAL_TITLE_LIMIT),
        "submit": plain(_(form.submit_label), MODAL_TITLE_LIMIT),
        "close": plain(_("Cancel"), MODAL_TITLE_LIMIT),
        "private_metadata": where.encode(),
        "blocks": blocks,
    }


def submitted_values(view: dict[str, Any]) -> dict[str, str]:
    """Each input's value by name; an empty input is "" (it may mean "clear this field")."""
    values: dict[str, str] = {}
    for name, actions in (view.get("state") or {}).get("values", {}).items():
        element = actions.get(VALUE) or {}
        kind = element.get("type")
        if kind == "datepicker":
            raw = element.get("selected_date")
        elif kind == "static_select":
            raw = (element.get("selected_option") or {}).get("value")
        else:
            raw = element.get("value")
        values[name] = raw or ""
    return values


def inline_errors(view: dict[str, Any], errors: dict[str, str]) -> dict[str, str]:
    """``response_action: errors`` for the view: each message under its input, the rest under the first
    (prefixed with their name; a message for the whole form has the name "")."""
    inputs = [b["block_id"] for b in view.get("blocks", ()) if b.get("type") == "input" and b.get("block_id")]
    shown: dict[str, str] = {}
    for name, message in errors.items():
        target = name if name in inputs else (inputs[0] if inputs else None)
        if target is None:
            continue
        text = message if target == name or not name else f"{name}: {message}"
        text = text[:1].upper() + text[1:]
        shown[target] = clip(f"{shown[target]} {text}" if target in shown else text, ERROR_TEXT_LIMIT)
    return shown
