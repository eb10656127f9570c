"""One argument parser for every platform: tokenising command lines and typing their arguments.

A command declares its parameters (positional, ``key=value`` options, a greedy rest); the same
declaration parses a typed line, a button's command line and a submitted form, and builds the
form that asks for missing arguments.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from crm_core import i18n
from crm_core.i18n import _

# Straight and typographic quotes: phones and Slack love turning "x" into “x”.
_QUOTES = {'"': '"', "'": "'", "“": "”", "”": "”", "„": "“", "‘": "’", "’": "’", "«": "»"}
_OPTION = re.compile(r"^([A-Za-z][\w\-]*)=(.*)$", re.DOTALL)


class UsageError(Exception):
    """The command line does not fit the command; ``field`` names the parameter at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Token:
    value: str
    start: int
    end: int
    quoted: bool


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        if text[i] in _QUOTES:
            closing = _QUOTES[text[i]]
            end = text.find(closing, i + 1)
            # Accept the straight quote as a closer too: “text" happens.
            alt = text.find('"', i + 1) if closing != '"' and text[i] != "'" else -1
            candidates = [pos for pos in (end, alt) if pos != -1]
            if not candidates:
                raise UsageError(_("a quote opened at character {at} is never closed", at=i + 1))
            end = min(candidates)
            tokens.append(Token(text[i + 1 : end], start, end + 1, True))
            i = end + 1
            continue
        while i < n and not text[i].isspace():
            # key="quoted value" stays one token.
            if text[i] in _QUOTES and i > start and text[i - 1] == "=":
                closing = _QUOTES[text[i]]
                end = text.find(closing, i + 1)
                if end == -1:
                    raise UsageError(_("a quote opened at character {at} is never closed", at=i + 1))
                tokens.append(Token(text[start:i] + text[i + 1 : end], start, end + 1, False))
                i = end + 1
                break
            i += 1
        else:
            tokens.append(Token(text[start:i], start, i, False))
            continue
    return tokens


class Kind(enum.StrEnum):
    TEXT = "text"
    MULTILINE = "multiline"
    INT = "int"
    CHOICE = "choice"
    DATE = "date"
    MONEY = "money"


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind = Kind.TEXT
    required: bool = True
    # False: given as name=value anywhere on the line.
    positional: bool = True
    # Takes the rest of the line (only the last positional parameter).
    greedy: bool = False
    # A greedy parameter read by its handler as typed (a filter, "when and what"): quotes and
    # key=value words stay in it. Free text (MULTILINE) is always verbatim.
    verbatim: bool = False
    # An option that may also be the last bare word after the greedy text: "printer jams high".
    trailing: bool = False
    choices: tuple[str, ...] = ()
    label: str | None = None
    hint: str | None = None
    max_length: int = 1000

    @property
    def keeps_text(self) -> bool:
        return self.verbatim or self.kind is Kind.MULTILINE

    @property
    def display(self) -> str:
        """The parameter's name for people, in the current language (labels are marked with N_)."""
        return _(self.label) if self.label else self.name.replace("_", " ").capitalize()

    @property
    def placeholder(self) -> str:
        """What stands for a positional value in a usage line: its name in English (``customer``), its
        translated label in other languages; the values one types (choices) stay as they are."""
        if self.kind is Kind.CHOICE and self.choices:
            return "|".join(self.choices)
        if i18n.current_language() == i18n.DEFAULT_LANGUAGE or not self.label:
            return self.name
        return self.display

    def usage(self) -> str:
        if self.positional:
            inner = self.placeholder
            return f"<{inner}>" if self.required else f"[{inner}]"
        return f"{self.name}=…" if self.required else f"[{self.name}=…]"


def arg(name: str, kind: Kind = Kind.TEXT, **kwargs: Any) -> Param:
    return Param(name, kind, **kwargs)


def rest(name: str, kind: Kind = Kind.MULTILINE, **kwargs: Any) -> Param:
    return Param(name, kind, greedy=True, max_length=kwargs.pop("max_length", 4000), **kwargs)


def opt(name: str, kind: Kind = Kind.TEXT, **kwargs: Any) -> Param:
    return Param(name, kind, required=kwargs.pop("required", False), positional=False, **kwargs)


@dataclass
class Parsed:
    args: dict[str, Any]
    # key=value pairs not declared by the command (only for commands that accept them).
    extra: dict[str, str]
    missing: list[Param]


def convert(param: Param, raw: str) -> Any:
    value = raw.strip()
    if len(value) > param.max_length:
        raise UsageError(
            _(
                "{name} is longer than {limit} characters",
                name=param.display,
                limit=i18n.format_number(param.max_length),
            ),
            param.name,
        )
    if param.kind is Kind.INT:
        match = re.fullmatch(r"#?(\d{1,12})", value)
        if not match:
            raise UsageError(_("{name} must be a number, not {value}", name=param.display, value=repr(raw)), param.name)
        return int(match.group(1))
    if param.kind is Kind.CHOICE:
        lowered = value.lower()
        exact = [c for c in param.choices if c == lowered]
        prefixed = [c for c in param.choices if c.startswith(lowered)] if lowered else []
        if exact or len(prefixed) == 1:
            return (exact or prefixed)[0]
        raise UsageError(
            _(
                "{name} must be one of {choices}, not {value}",
                name=param.display,
                choices=", ".join(param.choices),
                value=repr(raw),
            ),
            param.name,
        )
    return value


def parse_line(params: tuple[Param, ...], text: str, *, extra_options: bool = False) -> Parsed:
    tokens = tokenize(text)
    options = {p.name: p for p in params if not p.positional}
    positional = [p for p in params if p.positional]
    args: dict[str, Any] = {}
    extra: dict[str, str] = {}
    remaining: list[Token] = []
    # Undeclared key=value words: an error, unless they fall in text read as typed.
    unknown: list[tuple[Token, str]] = []
    for token in tokens:
        match = None if token.quoted else _OPTION.match(token.value)
        if match and (match.group(1) in options or extra_options):
            key = match.group(1)
            if key in options:
                args[key] = convert(options[key], match.group(2))
            else:
                extra[key.lower()] = match.group(2)
            continue
        if match:
            unknown.append((token, match.group(1)))
        remaining.append(token)
    greedy = next((i for i, p in enumerate(positional) if p.greedy and p.keeps_text), None)
    for token, key in unknown:
        if greedy is not None and remaining.index(token) >= greedy:
            continue
        if options:
            allowed = ", ".join(f"{name}=" for name in options)
            raise UsageError(_("unknown option {key}= (options: {allowed})", key=key, allowed=allowed), key)
        raise UsageError(_("unknown option {key}= (options: none)", key=key), key)
    index = 0
    for param in positional:
        if index >= len(remaining):
            break
        if param.greedy:
            args[param.name] = convert(param, _greedy_text(param, remaining[index:], tokens, text, options, args))
            index = len(remaining)
            break
        args[param.name] = convert(param, remaining[index].value)
        index += 1
    if index < len(remaining):
        unexpected = " ".join(t.value for t in remaining[index:])
        raise UsageError(_("unexpected {words}", words=repr(unexpected)))
    missing = [p for p in params if p.required and p.name not in args]
    return Parsed(args, extra, missing)


def _greedy_text(
    param: Param, chunk: list[Token], tokens: list[Token], text: str, options: dict[str, Param], args: dict[str, Any]
) -> str:
    """The value of a greedy parameter; may also fill a trailing option (``args``) from its last word."""
    first = chunk[0]
    trailing = next((p for p in options.values() if p.trailing and p.name not in args), None)
    if not param.keeps_text and first.quoted and len(chunk) > 1:
        # Quotes delimit: "Bad prio" critical is the subject "Bad prio" and then one more word.
        after = chunk[1:]
        if trailing is not None and len(after) == 1 and not after[0].quoted:
            args[trailing.name] = convert(trailing, after[0].value)
            return first.value
        words = " ".join(t.value for t in after)
        raise UsageError(
            _("unexpected {words} after the quoted {name}", words=repr(words), name=param.display.lower()), param.name
        )
    if (
        trailing is not None
        and not param.keeps_text
        and len(chunk) >= 2
        and not chunk[-1].quoted
        and chunk[-1].value.lower() in trailing.choices
    ):
        args[trailing.name] = chunk[-1].value.lower()
        chunk = chunk[:-1]
        if len(chunk) == 1 and chunk[0].quoted:
            return chunk[0].value
    first, last = chunk[0], chunk[-1]
    if len(chunk) == 1 and first.quoted:
        return first.value
    if any(first.start < t.start < last.end and t not in chunk for t in tokens):
        # Options were typed inside the text: join the words around them.
        return " ".join(t.value for t in chunk)
    # The text as typed: keeps the user's spacing, quotes and line breaks.
    return text[first.start : last.end]


def parse_form(params: tuple[Param, ...], values: dict[str, str], *, extra_options: bool = False) -> Parsed:
    """Arguments from a submitted form; blank optional inputs are simply absent."""
    args: dict[str, Any] = {}
    extra: dict[str, str] = {}
    by_name = {p.name: p for p in params}
    errors: dict[str, str] = {}
    for name, raw in values.items():
        if raw is None:
            continue
        param = by_name.get(name)
        if param is None:
            if extra_options:
                extra[name] = raw
            continue
        if not raw.strip():
            continue
        try:
            args[name] = convert(param, raw)
        except UsageError as exc:
            errors[name] = exc.message
    if errors:
        raise FormErrors(errors)
    missing = [p for p in params if p.required and p.name not in args]
    return Parsed(args, extra, missing)


class FormErrors(UsageError):
    """Several inputs of a form are wrong at once; ``errors`` maps input name to message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()), next(iter(errors), None))
        self.errors = errors
