"""The platform-neutral message model: what a handler receives (``Request``) and returns (``Reply``).

Handlers write plain text only; every adapter escapes user data for its own format (Slack
mrkdwn, Telegram HTML, plain text) when it renders a Reply. Buttons carry a command line, so a
button press comes back to the router exactly like a typed command.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Style(enum.StrEnum):
    DEFAULT = "default"
    PRIMARY = "primary"
    DANGER = "danger"


class Tone(enum.StrEnum):
    """How a reply should look: adapters may colour or prefix it."""

    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Button:
    label: str
    # The command line this button runs, e.g. "/customer #12" or "/deal stage 7 won".
    command: str
    style: Style = Style.DEFAULT
    # True: ask for the command's remaining arguments in a form (Slack modal, Telegram
    # step-by-step questions) instead of running it directly.
    opens_form: bool = False


@dataclass(frozen=True)
class Field:
    label: str
    value: str
    # Short fields may sit side by side (Slack fields); long ones get their own line.
    short: bool = True


@dataclass(frozen=True)
class Item:
    """One entry of a list: a search result, a deal, a ticket."""

    text: str
    detail: str | None = None
    button: Button | None = None


@dataclass(frozen=True)
class Section:
    title: str | None = None
    text: str | None = None
    fields: tuple[Field, ...] = ()
    items: tuple[Item, ...] = ()
    # Shown when ``items`` is empty, e.g. "no open deals".
    empty: str | None = None


@dataclass(frozen=True)
class Image:
    """A picture to attach (a chart). ``path`` is a PNG file on disk."""

    path: str
    title: str
    alt_text: str


class InputKind(enum.StrEnum):
    TEXT = "text"
    MULTILINE = "multiline"
    NUMBER = "number"
    DATE = "date"
    CHOICE = "choice"


@dataclass(frozen=True)
class FormInput:
    name: str
    label: str
    kind: InputKind = InputKind.TEXT
    required: bool = True
    choices: tuple[str, ...] = ()
    initial: str | None = None
    hint: str | None = None


@dataclass(frozen=True)
class Form:
    """Ask the user for a command's arguments; submitting runs ``command`` with them."""

    title: str
    command: str
    inputs: tuple[FormInput, ...]
    submit_label: str = "Save"
    # Arguments already known (e.g. the customer id of the card the button was on).
    fixed: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reply:
    title: str | None = None
    text: str | None = None
    fields: tuple[Field, ...] = ()
    sections: tuple[Section, ...] = ()
    buttons: tuple[Button, ...] = ()
    # A line of small print under the reply (usage hints, counts, references).
    footer: str | None = None
    image: Image | None = None
    form: Form | None = None
    tone: Tone = Tone.INFO
    # Only the person who asked sees it (Slack ephemeral); platforms without that ignore it.
    private: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form, for storing a reply in the outbox."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reply:
        def button(d: dict | None) -> Button | None:
            return None if d is None else Button(**{**d, "style": Style(d.get("style", "default"))})

        def section(d: dict) -> Section:
            return Section(
                title=d.get("title"),
                text=d.get("text"),
                fields=tuple(Field(**f) for f in d.get("fields", ())),
                items=tuple(Item(i["text"], i.get("detail"), button(i.get("button"))) for i in d.get("items", ())),
                empty=d.get("empty"),
            )

        form = data.get("form")
        return cls(
            title=data.get("title"),
            text=data.get("text"),
            fields=tuple(Field(**f) for f in data.get("fields", ())),
            sections=tuple(section(s) for s in data.get("sections", ())),
            buttons=tuple(button(b) for b in data.get("buttons", ())),
            footer=data.get("footer"),
            image=Image(**data["image"]) if data.get("image") else None,
            form=Form(
                title=form["title"],
                command=form["command"],
                inputs=tuple(
                    FormInput(**{**i, "kind": InputKind(i["kind"]), "choices": tuple(i.get("choices", ()))})
                    for i in form["inputs"]
                ),
                submit_label=form.get("submit_label", "Save"),
                fixed=dict(form.get("fixed", {})),
            )
            if form
            else None,
            tone=Tone(data.get("tone", "info")),
            private=bool(data.get("private", False)),
        )


@dataclass(frozen=True)
class Caller:
    """The CRM user behind a request; ``user_id`` is None for someone the CRM does not know yet."""

    user_id: int | None
    name: str
    role: str | None
    timezone: str = "UTC"
    language: str = "en"


@dataclass(frozen=True)
class Origin:
    """Where a request came from and where its reply goes."""

    platform: str
    # The platform's id of the person (Slack user id, Telegram user id, console user name).
    user_external_id: str
    # Channel / chat id; for a direct message the platform's DM conversation.
    conversation: str
    thread: str | None = None
    is_private: bool = False
    display_name: str | None = None


@dataclass
class Request:
    """One command, typed or from a button or form, ready for the router."""

    origin: Origin
    # The command line as typed or as carried by a button: "/customer acme".
    text: str
    # Values from a submitted form, by input name; None for a typed command.
    form_values: dict[str, str] | None = None
    # True when the request came from a button press rather than typing.
    from_button: bool = False
    # True when the button asks for a form (Button.opens_form) rather than running the command.
    wants_form: bool = False
    # True when the adapter can show a form here (Slack modal, Telegram questions, a terminal):
    # a command with missing arguments then asks for them instead of answering with its usage.
    can_ask: bool = False
    # Filled by the dispatcher: the resolved caller, and the command's typed arguments.
    caller: Caller | None = None
    args: dict[str, Any] = field(default_factory=dict)
    # key=value pairs a command accepts without declaring them (field edits).
    extra: dict[str, str] = field(default_factory=dict)
    # The platform's name for this delivery when a repeat of it must not take effect again
    # (Slack event_id or trigger_id, Telegram update_id): the dispatcher records it in the inbox
    # in the request's own transaction and raises AlreadyHandled for a repeat.
    inbox_key: str | None = None
