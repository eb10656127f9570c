"""What a chat message carried besides text (a photo, a voice message, a file...): kept as a
language-neutral kind and written in the reader's language wherever the message is shown.

A customer's photo or voice message becomes a ticket message and an interaction whose ``text`` is
only their caption (often empty); the attachment is kept beside it as a kind (``voice``) and a
detail (a file's name, a sticker's emoji, a location's coordinates). Words for it are chosen when
someone reads it (``shown``: ``[voice message] caption`` / ``[语音消息] caption``): stored as words,
the staff would read them in whatever language the message happened to arrive in, not their own.

A ticket still needs a subject when it is opened by a photo alone: ``stand_in`` is an emoji with
the detail (``📎 invoice.pdf``), which reads the same in every language and staff may rename.
"""

from __future__ import annotations

from dataclasses import dataclass

from crm_core.i18n import _

# The kinds chat adapters report (a platform may add its own: it is then shown by its name).
KINDS = ("photo", "file", "sticker", "voice", "video", "audio", "location")
MAX_KIND = 20
MAX_DETAIL = 200

_EMOJI = {
    "photo": "🖼",
    "file": "📎",
    "sticker": "🙂",
    "voice": "🎤",
    "video": "🎬",
    "audio": "🎵",
    "location": "📍",
}


@dataclass(frozen=True)
class Attachment:
    """One thing a message carried: its ``kind`` (one of ``KINDS``) and a detail, when it has one
    (a file's name, a sticker's emoji, a location's coordinates)."""

    kind: str
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", self.kind[:MAX_KIND])
        if self.name is not None:
            object.__setattr__(self, "name", self.name[:MAX_DETAIL] or None)


def label(kind: str, detail: str | None = None) -> str:
    """The attachment in the current language, in brackets: ``[photo]``, ``[file: report.pdf]``."""
    if kind == "photo":
        return _("[photo]")
    if kind == "file":
        return _("[file: {name}]", name=detail) if detail else _("[file]")
    if kind == "sticker":
        return _("[sticker {emoji}]", emoji=detail) if detail else _("[sticker]")
    if kind == "voice":
        return _("[voice message]")
    if kind == "video":
        return _("[video]")
    if kind == "audio":
        return _("[audio]")
    if kind == "location":
        return _("[location {coordinates}]", coordinates=detail) if detail else _("[location]")
    return f"[{kind}: {detail}]" if detail else f"[{kind}]"


def shown(text: str, kind: str | None, detail: str | None = None) -> str:
    """A message's text as a reader sees it: the attachment in their words before the caption."""
    if not kind:
        return text
    return f"{label(kind, detail)} {text}".strip()


def stand_in(kind: str, detail: str | None = None) -> str:
    """Language-neutral words for an attachment without a caption (a ticket's first subject)."""
    if kind == "sticker" and detail:
        return detail  # the sticker's own emoji
    return f"{_EMOJI.get(kind, '📎')} {detail or ''}".strip()
