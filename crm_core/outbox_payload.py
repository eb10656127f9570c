"""The outbox payload: the typed, versioned contract between whoever queues a message and the senders.

Every outbox row's ``payload`` column holds ``MessagePayload.to_json()``: ``{"v": 1, ...}``. Core
owns the contract; the bot layer's sender reads rows back with ``MessagePayload.from_json`` and the
platform adapters render them. A row is one of:

- a neutral reply (``reply``: a ``bot.messages.Reply`` as ``Reply.to_dict()``), rendered by the
  adapter for its platform, with its buttons inside;
- text already in the platform's format (``formatted_text`` in ``format``: text, mrkdwn or html),
  from a template, with optional Slack ``blocks``, ``buttons`` below it and an ``image`` (a chart);
- a deferred row (``deferred``: the outbox kind whose preparer makes the payload right before
  sending; campaigns), which carries nothing else until then.

``thread`` posts into a thread; ``reply_to`` (a platform message id) shows it as an answer to
that message where the platform can (Telegram); ``replace`` edits an earlier message (its platform message id)
instead of posting a new one. ``answer_to`` is how the platform takes an answer to the request that
caused the message (Slack: its response_url while valid, the person an ephemeral answer is for, the
page of a long list): a JSON object core stores and never reads, for that platform's sender. Unknown keys, a missing body or a wrong type are refused when the
row is queued, not discovered by the sender days later. Rows written before versioning (no
``v``) are read as version 1: the shape was the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

VERSION = 1
STYLES = ("default", "primary", "danger")
FORMATS = ("text", "mrkdwn", "html")


class PayloadError(ValueError):
    """A payload that does not follow the contract; the message says what is wrong."""


@dataclass(frozen=True)
class PayloadButton:
    label: str
    # The command line the button runs ("/followup done 12").
    command: str
    style: str = "default"
    opens_form: bool = False

    def __post_init__(self) -> None:
        if not self.label or not self.command.startswith("/"):
            raise PayloadError(f"a button needs a label and a /command, not {self.label!r} → {self.command!r}")
        if self.style not in STYLES:
            raise PayloadError(f"button style {self.style!r} is not one of {', '.join(STYLES)}")

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "command": self.command, "style": self.style, "opens_form": self.opens_form}


@dataclass(frozen=True)
class PayloadImage:
    """A picture to attach: a PNG file on disk (charts)."""

    path: str
    title: str
    alt_text: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "title": self.title, "alt_text": self.alt_text}


@dataclass(frozen=True)
class MessagePayload:
    reply: Mapping[str, Any] | None = None
    formatted_text: str | None = None
    format: str | None = None
    blocks: list[dict[str, Any]] | None = None
    buttons: tuple[PayloadButton, ...] = ()
    image: PayloadImage | None = None
    thread: str | None = None
    replace: str | None = None
    deferred: str | None = None
    reply_to: str | None = None
    answer_to: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.deferred is not None:
            if not isinstance(self.deferred, str) or not self.deferred:
                raise PayloadError("deferred must name an outbox kind")
            return
        if self.reply is None and not self.formatted_text and not self.blocks:
            raise PayloadError("the payload has neither a reply nor text")
        if self.reply is not None and not isinstance(self.reply, Mapping):
            raise PayloadError("reply must be a Reply as a mapping (Reply.to_dict())")
        if self.format is not None and self.format not in FORMATS:
            raise PayloadError(f"format {self.format!r} is not one of {', '.join(FORMATS)}")
        if self.replace is not None and (not isinstance(self.replace, str) or not self.replace):
            raise PayloadError(f"replace must be a platform message id, not {self.replace!r}")
        if self.answer_to is not None and not isinstance(self.answer_to, Mapping):
            raise PayloadError("answer_to must be a JSON object")

    # -- the stored form -------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"v": VERSION}
        if self.deferred is not None:
            data["deferred"] = self.deferred
            return data
        if self.reply is not None:
            data["reply"] = dict(self.reply)
        if self.formatted_text is not None:
            data["formatted_text"] = self.formatted_text
        if self.format is not None:
            data["format"] = self.format
        if self.blocks is not None:
            data["blocks"] = self.blocks
        if self.buttons:
            data["buttons"] = [button.to_json() for button in self.buttons]
        if self.image is not None:
            data["image"] = self.image.to_json()
        if self.thread is not None:
            data["thread"] = self.thread
        if self.replace is not None:
            data["replace"] = self.replace
        if self.reply_to is not None:
            data["reply_to"] = self.reply_to
        if self.answer_to is not None:
            data["answer_to"] = dict(self.answer_to)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MessagePayload:
        """Read a stored payload; PayloadError when it does not follow the contract."""
        if not isinstance(data, Mapping):
            raise PayloadError("a payload is a JSON object")
        version = data.get("v", VERSION)
        if version != VERSION:
            raise PayloadError(f"payload version {version!r} is not supported (this chatcrm reads {VERSION})")
        unknown = set(data) - _KEYS
        if unknown:
            raise PayloadError(f"unknown payload keys: {', '.join(sorted(unknown))}")
        try:
            buttons = tuple(
                PayloadButton(
                    str(b["label"]), str(b["command"]), str(b.get("style", "default")), bool(b.get("opens_form"))
                )
                for b in data.get("buttons") or ()
            )
            raw_image = data.get("image")
            image = PayloadImage(**raw_image) if raw_image else None
        except (KeyError, TypeError) as exc:
            raise PayloadError(f"unreadable button or image: {type(exc).__name__}: {exc}") from None
        replace = data.get("replace")
        if replace is not None:
            # A Telegram message id is a number; ids are kept as strings.
            if isinstance(replace, bool) or not isinstance(replace, str | int) or replace == "":
                raise PayloadError(f"replace must be a platform message id, not {replace!r}")
            replace = str(replace)
        return cls(
            reply=data.get("reply"),
            formatted_text=data.get("formatted_text"),
            format=data.get("format"),
            blocks=data.get("blocks"),
            buttons=buttons,
            image=image,
            thread=data.get("thread"),
            replace=replace,
            deferred=data.get("deferred"),
            reply_to=str(data["reply_to"]) if data.get("reply_to") is not None else None,
            answer_to=data.get("answer_to"),
        )

    @classmethod
    def coerce(cls, payload: MessagePayload | Mapping[str, Any]) -> MessagePayload:
        """A payload given either way (typed, or a stored-form mapping), checked."""
        return payload if isinstance(payload, MessagePayload) else cls.from_json(payload)


_KEYS = {
    "v",
    "reply",
    "formatted_text",
    "format",
    "blocks",
    "buttons",
    "image",
    "thread",
    "replace",
    "deferred",
    "reply_to",
    "answer_to",
}
