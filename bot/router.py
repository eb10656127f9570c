"""Commands and how a command line finds its handler.

Handler modules declare their commands on a ``CommandGroup`` and contribute it through the
``register_commands`` hook; the router collects the groups from every plugin, finds the command
for a line (``/customer new ...`` before ``/customer ...``), and knows the usage line and
permission of each. A group may also listen for what is not a command (a plain message, a shared
contact: ``RequestKind``) and record how sending a message it asked for went (``after_send``, by
the ``AfterSend.kind`` it put on the message).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.args import Param, Token, UsageError, tokenize
from bot.messages import Form, Outcome, Outgoing, Reply, RequestKind
from bot.roles import Permission, PermissionTable
from crm_core.i18n import _

if TYPE_CHECKING:
    from bot.context import Context
    from bot.messages import Request
    from crm_core.uow import UnitOfWork

Handler = Callable[["Request", "Context"], Reply]
FormBuilder = Callable[["Request", "Context", dict[str, str]], Form]
# Handles a request that is not a command; None leaves it to the next listener.
Listener = Callable[["Request", "Context"], Outcome | None]
# Writes down how sending a message went (the platform's message id, or why it failed) and
# returns what to send about it in turn.
Recorder = Callable[["UnitOfWork", Outgoing, str | None, str | None], Sequence[Outgoing]]

# Commands may be written "/crm customer acme" (one Slack command for everything) or "/customer acme".
UMBRELLA = "crm"


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    handler: Handler
    summary: str
    # A bot.roles.Permission or a permission a plugin registered ("quotes.create").
    permission: Permission | str
    params: tuple[Param, ...] = ()
    # Accept key=value pairs it does not declare (e.g. field=value edits).
    extra_options: bool = False
    # Custom usage text; derived from params when None.
    usage_text: str | None = None
    # Builds the form for missing arguments when the generic one from params is not enough.
    form_builder: FormBuilder | None = None
    # Reached only by buttons, never listed in help.
    hidden: bool = False
    # The title of the form asking for this command's arguments.
    form_title: str | None = None
    # The handler only reads (finding, showing, listing): the dispatcher may run it in a reading
    # transaction of its own (see Dispatcher._handle), where a write fails.
    read_only: bool = False

    @property
    def name(self) -> str:
        return " ".join(self.path)

    @property
    def description(self) -> str:
        """The summary in the current language (summaries are marked with N_ where they are declared)."""
        return _(self.summary)

    @property
    def usage(self) -> str:
        """The usage line in the current language: ``/name`` as typed, then the (translated) arguments."""
        if self.usage_text:
            return f"/{self.name} {_(self.usage_text)}".rstrip()
        parts = [p.usage() for p in self.params]
        if self.extra_options:
            parts.append("field=value …")
        return " ".join([f"/{self.name}", *parts])


class CommandGroup:
    """The commands of one handler module."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.listeners: list[tuple[RequestKind, Listener]] = []
        self.recorders: dict[str, Recorder] = {}

    def listen(self, kind: RequestKind) -> Callable[[Listener], Listener]:
        """Register a handler for requests of ``kind`` that are not commands (plain messages, contacts)."""

        def register(listener: Listener) -> Listener:
            self.listeners.append((kind, listener))
            return listener

        return register

    def after_send(self, kind: str) -> Callable[[Recorder], Recorder]:
        """Register what to write down when a message carrying ``AfterSend(kind, …)`` was sent or failed."""

        def register(recorder: Recorder) -> Recorder:
            self.recorders[kind] = recorder
            return recorder

        return register

    def command(
        self,
        path: str,
        *,
        summary: str,
        permission: Permission | str,
        params: Iterable[Param] = (),
        extra_options: bool = False,
        usage: str | None = None,
        form: FormBuilder | None = None,
        form_title: str | None = None,
        hidden: bool = False,
        read_only: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.commands.append(
                Command(
                    path=tuple(path.split()),
                    handler=handler,
                    summary=summary,
                    permission=permission,
                    params=tuple(params),
                    extra_options=extra_options,
                    usage_text=usage,
                    form_builder=form,
                    form_title=form_title,
                    hidden=hidden,
                    read_only=read_only,
                )
            )
            return handler

        return register


@dataclass(frozen=True)
class Route:
    command: Command
    # The argument text after the command words, as typed.
    arg_text: str


class Router:
    def __init__(self, groups: Iterable[CommandGroup], permissions: PermissionTable):
        self.permissions = permissions
        self._commands: dict[tuple[str, ...], Command] = {}
        self._listeners: dict[RequestKind, list[Listener]] = {}
        self._recorders: dict[str, Recorder] = {}
        for group in groups:
            for command in group.commands:
                if command.path in self._commands:
                    raise ValueError(f"command /{command.name} is registered twice")
                self._commands[command.path] = command
            for kind, listener in group.listeners:
                self._listeners.setdefault(kind, []).append(listener)
            for name, recorder in group.recorders.items():
                if name in self._recorders:
                    raise ValueError(f"after-send recorder {name!r} is registered twice")
                self._recorders[name] = recorder

    def listeners(self, kind: RequestKind) -> list[Listener]:
        """The handlers of ``kind`` requests, in the order their groups were given."""
        return self._listeners.get(kind, [])

    def recorder(self, kind: str) -> Recorder | None:
        return self._recorders.get(kind)

    @property
    def commands(self) -> list[Command]:
        return sorted(self._commands.values(), key=lambda c: c.path)

    def top_level_names(self) -> list[str]:
        """Every first word of a command: what Slack and Telegram register as commands."""
        return sorted({c.path[0] for c in self._commands.values() if not c.hidden})

    def get(self, name: str) -> Command | None:
        return self._commands.get(tuple(name.split()))

    def route(self, line: str) -> Route | None:
        """The command a line asks for, or None for an unknown command. Raises UsageError on bad quoting."""
        text = line.strip()
        tokens = tokenize(text)
        if not tokens:
            return None
        words, offset = _command_words(tokens)
        if offset == len(tokens):  # "/crm" alone
            return Route(self._commands[("help",)], "") if ("help",) in self._commands else None
        best: Command | None = None
        best_len = 0
        for length in range(1, 4):
            if offset + length > len(tokens):
                break
            key = tuple(w for w in words[offset : offset + length] if w is not None)
            if len(key) < length:  # a quoted word ends the command path
                break
            command = self._commands.get(key)
            if command:
                best, best_len = command, length
        if best is None:
            return None
        return Route(best, _after(text, tokens, offset + best_len))

    def visible_to(self, role: str | None) -> list[Command]:
        return [c for c in self.commands if not c.hidden and self.permissions.allows(role, c.permission)]

    def group_of(self, line: str) -> tuple[str, str | None] | None:
        """For a line that names no command but starts with the first word of some listed ones
        (``/digest``, or ``/export customers`` when only ``/export segment`` exists): that word, and
        the word after it (None when there is none). None when the first word starts no listed
        command either. Raises UsageError on bad quoting."""
        tokens = tokenize(line.strip())
        words, offset = _command_words(tokens) if tokens else ([], 0)
        first = words[offset] if offset < len(words) else None
        if not first or not any(c.path[0] == first and not c.hidden for c in self._commands.values()):
            return None
        after = tokens[offset + 1].value if offset + 1 < len(tokens) else None
        return first, after


def _command_words(tokens: list[Token]) -> tuple[list[str | None], int]:
    """The tokens as command words (lower case, without the slash and a Telegram @mention; None for a
    quoted one, which ends a command path) and where the command starts: 1 after the ``/crm`` umbrella."""
    words = [t.value.lower().lstrip("/") if not t.quoted else None for t in tokens]
    # The bot's @mention in Telegram groups: "/customer@chatcrm_bot acme".
    if words[0] and "@" in words[0]:
        words[0] = words[0].split("@", 1)[0]
    return words, 1 if words[0] == UMBRELLA else 0


def _after(text: str, tokens: list[Token], count: int) -> str:
    return text[tokens[count].start :] if count < len(tokens) else ""


__all__ = ["Command", "CommandGroup", "Route", "Router", "UsageError", "UMBRELLA"]
