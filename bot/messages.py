"""The platform-neutral message model: what a handler receives (``Request``) and returns (``Reply``).

Handlers write plain text only; every adapter escapes user data for its own format (Slack
mrkdwn, Telegram HTML, plain text) when it renders a Reply. Buttons carry a command line, so a
button press comes back to the router exactly like a typed command.
"""

from __future__ import annotations

import enum
import functools
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, TypeVar

# What a plain message carried besides text: the core keeps it on ticket messages as it is.
from crm_core.attachments import Attachment
from crm_core.i18n import N_

# A form's default submit label.
SAVE = N_("Save")


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
    # True: the "More" button of a paged list; its command shows the next page (the console
    # runs it for /more).
    next_page: bool = False


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


@dataclass(frozen=True)
class File:
    """A document handed to the person who asked (an export): ``content`` in memory, or a ``path``
    on disk. Slack uploads it (files upload v2), Telegram sends it (sendDocument), the console writes
    it into the working directory. With ``Reply.private`` it goes to the person's own direct chat,
    never to a channel. Files are for answers only: an outbox row never carries one."""

    name: str
    content: bytes | None = None
    path: str | None = None
    mime: str = "application/octet-stream"
    title: str | None = None

    def data(self) -> bytes:
        if self.content is not None:
            return self.content
        if self.path is None:
            raise ValueError(f"file {self.name!r} has neither content nor a path")
        with open(self.path, "rb") as handle:
            return handle.read()


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
    # Marked for translation where it is set (N_); adapters show it translated, in the form's language.
    submit_label: str = SAVE
    # Arguments already known (e.g. the customer id of the card the button was on).
    fixed: dict[str, str] = field(default_factory=dict)
    # The language its labels were written in (set by the dispatcher with Reply.language): a form asked
    # one question at a time is shown in it on later requests too.
    language: str | None = None


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
    # Offer a button that shares the recipient's own phone number, with this label (Telegram's
    # contact-request keyboard); platforms without one ignore it.
    share_phone_button: str | None = None
    # Take such an offer away again (the number was shared).
    hide_share_phone: bool = False
    # A document to hand over with the reply (never stored: see File).
    file: File | None = None
    # The language it was written in (crm_core.i18n): adapters render their own words (buttons,
    # form labels, "More") in it, even when the outbox sends the reply later in another process.
    language: str | None = None

    @property
    def is_empty(self) -> bool:
        """Nothing to show (the dispatcher's answer to a press that is ignored): adapters send nothing."""
        return replace(self, language=None) == Reply()

    def with_texts(self, change: Callable[[str], str]) -> Reply:
        """The reply with ``change`` applied to every text a reader sees: title, text, footer, fields,
        sections, items and button labels (never a button's command, nor a form's own labels).

        Parts whose texts ``change`` leaves as they are stay the same objects, and so does the reply
        when nothing changed: the dispatcher passes every answer through here, and a card has some
        two hundred texts, nearly always unchanged."""

        def one(text: str | None) -> str | None:
            return change(text) if text else text

        def field(found: Field) -> Field:
            return _with(found, label=change(found.label), value=change(found.value))

        def button(found: Button) -> Button:
            return _with(found, label=change(found.label))

        def item(found: Item) -> Item:
            pressed = button(found.button) if found.button is not None else None
            return _with(found, text=change(found.text), detail=one(found.detail), button=pressed)

        def section(found: Section) -> Section:
            return _with(
                found,
                title=one(found.title),
                text=one(found.text),
                empty=one(found.empty),
                fields=_each(field, found.fields),
                items=_each(item, found.items),
            )

        return _with(
            self,
            title=one(self.title),
            text=one(self.text),
            footer=one(self.footer),
            fields=_each(field, self.fields),
            sections=_each(section, self.sections),
            buttons=_each(button, self.buttons),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form, for storing a reply in the outbox (without its file)."""
        data = {name: _plain(getattr(self, name)) for name in _field_names(Reply) if name != "file"}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reply:
        def button(d: dict) -> Button:
            return Button(**{**d, "style": Style(d.get("style", "default"))})

        def item_button(d: dict | None) -> Button | None:
            return None if d is None else button(d)

        def section(d: dict) -> Section:
            return Section(
                title=d.get("title"),
                text=d.get("text"),
                fields=tuple(Field(**f) for f in d.get("fields", ())),
                items=tuple(Item(i["text"], i.get("detail"), item_button(i.get("button"))) for i in d.get("items", ())),
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
                submit_label=form.get("submit_label", SAVE),
                fixed=dict(form.get("fixed", {})),
                language=form.get("language"),
            )
            if form
            else None,
            tone=Tone(data.get("tone", "info")),
            private=bool(data.get("private", False)),
            share_phone_button=data.get("share_phone_button"),
            hide_share_phone=bool(data.get("hide_share_phone", False)),
            language=data.get("language"),
        )


@dataclass(frozen=True)
class Caller:
    """The CRM user behind a request; ``user_id`` is None for someone the CRM does not know yet."""

    user_id: int | None
    name: str
    role: str | None
    timezone: str = "UTC"
    language: str = "en"
    # For a customer (role "customer") whose chat the CRM knows: their customer record.
    customer_id: int | None = None


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
    # What to call the person in a greeting ("Hello Carla!"), when the platform knows it.
    first_name: str | None = None
    # The language the platform says the person uses (Telegram's language_code, Slack's locale):
    # the answer's language when they chose none with /lang (crm_core.i18n.resolve_language).
    language_hint: str | None = None


class RequestKind(enum.StrEnum):
    """What arrived: a command for the router, or something a person did that is not a command."""

    # A command line, typed or carried by a button or a submitted form.
    COMMAND = "command"
    # A plain message (not a command): a customer writing to us, a staff reply, an answer to a question.
    MESSAGE = "message"
    # Someone shared a phone contact (``Request.contact``).
    CONTACT = "contact"


@dataclass(frozen=True)
class MessageRef:
    """The message a plain message replies to."""

    # The platform's id of that message (Telegram message_id, Slack ts).
    message_id: str
    # True when that message is one the bot sent.
    from_bot: bool = False
    text: str | None = None


@dataclass(frozen=True)
class InboundFile:
    """A file that came with a command (a CSV for /import), fetched by the platform adapter: handlers
    read ``content`` and never a platform's file API. ``content`` is None when the file is larger than
    ``UPLOAD_LIMIT`` (it was not fetched; ``size`` says how large it is)."""

    name: str
    size: int
    content: bytes | None = None
    mime: str | None = None


# The largest file an adapter fetches for a command; the command says what to do with a larger one.
UPLOAD_LIMIT = 10 * 1024 * 1024


@dataclass(frozen=True)
class Contact:
    """A shared phone contact."""

    phone: str
    # The platform's id of the person whose contact it is, when it is someone on the platform.
    user_external_id: str | None = None


@dataclass
class Request:
    """One thing that arrived for the bot: a command (typed or from a button or form), a plain
    message or a shared contact, ready for the dispatcher."""

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
    kind: RequestKind = RequestKind.COMMAND
    # The platform's id of the message that carried this request, if any.
    message_id: str | None = None
    # For a plain message: the message it replies to, and what it carried besides text (``text`` is
    # then only its caption, maybe empty).
    reply_to: MessageRef | None = None
    attachments: tuple[Attachment, ...] = ()
    # For RequestKind.CONTACT.
    contact: Contact | None = None
    # Files that came with a command, fetched by the adapter (a Telegram document captioned with the
    # command, a file shared in a Slack message whose text is the command).
    files: tuple[InboundFile, ...] = ()
    # How the platform takes an answer to this request (Slack: its response_url, the person an
    # ephemeral answer is for): carried unread onto the answer's outbox row for the platform's sender.
    answer_to: dict[str, Any] | None = None

    def key_for(self, what: str) -> str:
        """A stable key for a message sent because of this request: the same each time the same delivery
        is handled (it is built from the delivery's inbox key, or the platform's message id)."""
        if self.inbox_key is not None:
            # The inbox key is unique per platform (a Telegram update id): the conversation, a
            # customer's chat id that the outbox keeps encrypted, stays out of the key.
            return f"{self.origin.platform}:inbox:{self.inbox_key}:{what}"
        delivery = self.message_id
        if delivery is None:
            # Nothing identifies the delivery (a test, a console line): the key is only unique.
            delivery = f"once-{secrets.token_hex(8)}"
        return f"{self.origin.platform}:{self.origin.conversation}:{delivery}:{what}"


# -- what goes out ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """Where a message goes: a conversation on a platform, optionally in a thread or answering a message."""

    platform: str
    conversation: str
    thread: str | None = None
    # The platform's id of a message this one answers (shown as a reply to it).
    reply_to: str | None = None


@dataclass(frozen=True)
class AfterSend:
    """What to write down once a message was sent (or finally failed), handed back to the dispatcher's
    ``report`` with the outcome. ``kind`` names the recorder a handler module registered; ``ref`` is the
    row it is about (e.g. a ticket message); ``notify`` is where to tell someone about the outcome."""

    kind: str
    ref: int
    notify: Destination | None = None


@dataclass(frozen=True)
class Outgoing:
    """One message to send: where, what, and a key that is the same every time the same cause is
    handled again, so a repeat can be recognised (and, with an outbox, sent once)."""

    to: Destination
    reply: Reply
    key: str
    after: AfterSend | None = None
    # A deferred outbox kind (register_outbox_kinds) whose preparer writes the message right before it
    # is sent, from what it is about then (``after.ref``); ``reply`` is not used then.
    deferred: str | None = None
    # The request's ``answer_to`` when this is the answer to it.
    answer_to: dict[str, Any] | None = None


@dataclass(frozen=True)
class Outcome:
    """What handling a plain message or a shared contact produced: the messages to send, in order,
    or (``step``) a question of a form in progress to ask the sender, or the filled form to submit."""

    sends: tuple[Outgoing, ...] = ()
    # A bot.conversation.Question or Filled (typed loosely: that module builds on this one).
    step: Any = None


def _each(change: Callable[[Any], Any], parts: tuple[Any, ...]) -> tuple[Any, ...]:
    """``change`` applied to each of ``parts``; ``parts`` itself when it returned every part unchanged."""
    changed = tuple(change(part) for part in parts)
    return parts if all(new is old for new, old in zip(changed, parts, strict=True)) else changed


_Part = TypeVar("_Part")


def _with(found: _Part, **values: Any) -> _Part:
    """``found`` with ``values`` (``with_texts``'s rewrite of one part): ``found`` itself when each is
    the value it has (the same object, as ``_each`` keeps them, or an equal text), else a copy."""
    for name, value in values.items():
        old = getattr(found, name)
        if value is not old and value != old:
            return replace(found, **values)  # type: ignore[type-var]  # every part of a reply is a dataclass
    return found


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


@functools.cache
def _dataclass_fields(cls: type) -> tuple[str, ...] | None:
    """The field names of a dataclass's instances; None for any other type (a dataclass itself too)."""
    return _field_names(cls) if is_dataclass(cls) and not issubclass(cls, type) else None


# The leaves of a reply, by far its most common values: returned at once.
_LEAVES = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """``dataclasses.asdict`` for a reply's parts, without its deep copies: every leaf of a reply is
    immutable (text, numbers, enums), and every answer queued is turned into a dict (a card has some
    two hundred leaves; asdict copied each). Decided by the value's type, looked up once per type."""
    kind: type = type(value)
    if kind in _LEAVES:
        return value
    names = _dataclass_fields(kind)
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if kind is tuple or kind is list:
        return kind(_plain(v) for v in value)
    if isinstance(value, tuple | list):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
