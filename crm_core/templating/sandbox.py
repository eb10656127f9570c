"""Rendering message templates safely: a Jinja2 ImmutableSandboxedEnvironment per output format.

Templates may come from admins in chat, so rendering assumes hostile input:

- ``ImmutableSandboxedEnvironment``: no underscore attributes (``''.__class__.__mro__``), no
  ``str.format`` tricks, no mutating lists or dicts; with ``StrictUndefined`` an unsafe access
  raises instead of quietly rendering as empty, so the author is told, and nothing runs;
- autoescaping for the target format: HTML escaping for Telegram HTML (Jinja's autoescape);
  ``&``, ``<``, ``>`` for Slack mrkdwn (so a customer named ``<!channel>`` pings nobody); JSON
  string escaping on top of that for Block Kit; none for plain text;
- limits: output size, ``*``/``**`` that would build huge values, and a step budget that stops
  loops that spin without output (a trace function counting the template's own lines).

Contexts are plain data (dicts, lists, strings, numbers), never ORM objects.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import markupsafe
from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from crm_core.i18n import _, format_number
from crm_core.markup import escape_mrkdwn
from crm_core.money import format_money

FORMATS = ("text", "mrkdwn", "blocks", "html")
MAX_OUTPUT_CHARS = 20_000
MAX_SOURCE_CHARS = 10_000
# Lines of template code a render may execute (a few thousand are plenty for any message).
STEP_BUDGET = 200_000
_TEMPLATE_CODE = ("<template>",)


class TemplateRefused(Exception):
    """A template that must not be stored or rendered; ``str()`` is a sentence for its author."""


def escape_blocks(text: str) -> str:
    """For a value inside a JSON string of Block Kit mrkdwn text."""
    return json.dumps(escape_mrkdwn(text), ensure_ascii=False)[1:-1]


def _as_text(value: Any) -> str:
    return "" if value is None else str(value)


_FINALIZERS: dict[str, Callable[[Any], str] | None] = {
    "text": _as_text,
    "mrkdwn": lambda value: escape_mrkdwn(_as_text(value)),
    "blocks": lambda value: escape_blocks(_as_text(value)),
    # Jinja's autoescape does HTML; finalize only turns None into "".
    "html": lambda value: "" if value is None else value,
}


def convert_text(text: str, target: str) -> str:
    """A plain-text rendering made fit for another format (used when only a text variant exists)."""
    if target == "html":
        return str(markupsafe.escape(text))
    if target in ("mrkdwn", "blocks"):
        return escape_mrkdwn(text)
    return text


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):  # noqa: ANN001 - Jinja's signature
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError(_("exponents above 64 are not allowed in templates"))
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and isinstance(times, int)
                    and len(sequence) * times > MAX_OUTPUT_CHARS
                ):
                    raise SecurityError(_("that repetition would build a value larger than a message may be"))
        return super().call_binop(context, operator, left, right)


def _money(cents: Any, currency: str = "EUR") -> str:
    return format_money(int(cents), str(currency))


@lru_cache(maxsize=32)
def environment(fmt: str, directory: str | None) -> _Sandbox:
    """The sandbox for one format; with a directory it loads the shipped template files from it,
    without one (admin overrides) it cannot include or extend anything."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown template format {fmt!r} (formats: {', '.join(FORMATS)})")
    env = _Sandbox(
        loader=FileSystemLoader(directory) if directory else None,
        autoescape=fmt == "html",
        finalize=_FINALIZERS[fmt],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["money"] = _money
    return env


def check_source(source: str, fmt: str) -> None:
    """Refuse a template before it is stored: too long, not parseable, or reaching for internals."""
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateRefused(
            _(
                "the template is {size} characters; the limit is {limit}",
                size=format_number(len(source)),
                limit=format_number(MAX_SOURCE_CHARS),
            )
        )
    env = environment(fmt, None)
    try:
        tree = env.parse(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        if line:
            problem = _("the template does not parse (line {line}): {error}", line=line, error=exc.message)
        else:
            problem = _("the template does not parse: {error}", error=exc.message)
        raise TemplateRefused(problem) from None
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter, nodes.Name)):
        name = _reached_name(node)
        if name is not None and name.startswith("_"):
            raise TemplateRefused(
                _("refused: templates may not use {name} (names starting with _ are internal)", name=repr(name))
            )
        if isinstance(node, nodes.Filter) and node.name == "attr":
            raise TemplateRefused(_("refused: the attr filter is not allowed in templates; use name.field"))


def _reached_name(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    if isinstance(node, nodes.Name):
        return node.name
    return None


class _StepBudget:
    """Counts executed lines of template code in this thread and stops the render past the limit."""

    def __init__(self, limit: int, filenames: tuple[str, ...]):
        self.left = limit
        self.filenames = filenames

    def on_call(self, frame, event, arg):  # noqa: ANN001 - sys.settrace's signature
        if event == "call" and frame.f_code.co_filename in self.filenames:
            return self.on_line
        return None

    def on_line(self, frame, event, arg):  # noqa: ANN001
        if event == "line":
            self.left -= 1
            if self.left < 0:
                raise TemplateRefused(_("the template runs too long (a loop that never ends?)"))
        return self.on_line


@lru_cache(maxsize=256)
def _compiled(fmt: str, source: str) -> Template:
    # Overrides are stored as text; compiling one costs far more than rendering it.
    return environment(fmt, None).from_string(source)


def render_source(
    source: str,
    fmt: str,
    context: Mapping[str, Any],
    *,
    directory: str | None = None,
    name: str | None = None,
    max_chars: int = MAX_OUTPUT_CHARS,
) -> str:
    """Render a template (``name`` from ``directory``, or ``source``) for format ``fmt``.

    Raises TemplateRefused with a sentence for the author on any problem.
    """
    env = environment(fmt, directory)
    try:
        template = env.get_template(name) if name else _compiled(fmt, source)
    except TemplateError as exc:
        raise TemplateRefused(_("the template does not parse: {error}", error=exc)) from None
    filenames = _TEMPLATE_CODE + ((template.filename,) if template.filename else ())
    budget = _StepBudget(STEP_BUDGET, filenames)
    previous = sys.gettrace()
    sys.settrace(budget.on_call)
    try:
        return _collect(template.generate(dict(context)), max_chars)
    except TemplateRefused:
        raise
    except SecurityError as exc:
        raise TemplateRefused(_("refused: {error}", error=exc)) from None
    except TemplateError as exc:
        raise TemplateRefused(_("the template failed: {error}", error=exc)) from None
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise TemplateRefused(_("the template failed: {error}", error=error)) from None
    finally:
        sys.settrace(previous)


def _collect(chunks: Iterator[str], max_chars: int) -> str:
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_chars:
            raise TemplateRefused(
                _("the message would be longer than {limit} characters", limit=format_number(max_chars))
            )
        out.append(chunk)
    return "".join(out).strip()


def parse_blocks(rendered: str) -> list[dict[str, Any]]:
    """A Block Kit template's output: a JSON list of blocks (or {"blocks": [...]})."""
    try:
        value = json.loads(rendered)
    except json.JSONDecodeError as exc:
        raise TemplateRefused(
            _("the Block Kit template does not give JSON: {error} at line {line}", error=exc.msg, line=exc.lineno)
        ) from None
    if isinstance(value, dict):
        value = value.get("blocks")
    if not isinstance(value, list) or not all(isinstance(b, dict) and "type" in b for b in value):
        raise TemplateRefused(_('the Block Kit template must give a list of blocks, each with a "type"'))
    if len(value) > 50:
        raise TemplateRefused(_("Slack allows at most 50 blocks in a message"))
    return value


def template_path(directory: Path, kind: str, language: str, fmt: str) -> Path:
    return directory / kind / f"{language}.{fmt}.j2"
