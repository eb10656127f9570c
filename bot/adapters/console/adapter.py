"""Run chatcrm on a terminal: an interactive prompt, or one command per line when piped.

``echo "/customer acme" | chatcrm console`` prints the card as plain text. On a terminal, a
reply that asks for a form prompts for each input in turn. ``/more`` shows the next page of the
last list (what its *More* button runs on Slack and Telegram).
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import TextIO

from bot.adapters.console.plugin import TRAITS
from bot.adapters.console.render import MORE_COMMAND, render_text
from bot.bootstrap import App
from bot.dispatch import FormRejected
from bot.messages import File, Form, Origin, Reply, Request
from bot.operator import local_operator
from crm_core import i18n
from crm_core.i18n import _

PROMPT = "chatcrm> "
CONSOLE_ADMIN = "admin"


def console_identity(app: App, as_user: str | None) -> Origin:
    """The console's identity: an admin by default, or an existing CRM user with ``--as``."""
    external_id, name = local_operator(app, TRAITS.name, as_user, CONSOLE_ADMIN, f"Console admin ({getpass.getuser()})")
    return Origin(
        platform=TRAITS.name,
        user_external_id=external_id,
        conversation="console",
        is_private=True,
        display_name=name,
    )


def _ask(form: Form, stdin: TextIO, stdout: TextIO) -> dict[str, str] | None:
    with i18n.use_language(form.language):
        how = _("{title} — press Enter to skip optional inputs, Ctrl-D to cancel.", title=form.title)
    stdout.write(how + "\n")
    values = dict(form.fixed)
    for field in form.inputs:
        choices = f" [{'/'.join(field.choices)}]" if field.choices else ""
        initial = f" ({field.initial})" if field.initial else ""
        stdout.write(f"{field.label}{choices}{initial}: ")
        stdout.flush()
        line = stdin.readline()
        if not line:
            return None
        answer = line.rstrip("\n")
        values[field.name] = answer if answer or not field.initial else field.initial
    return values


def _next_page(reply: Reply) -> str | None:
    return next((b.command for b in reply.buttons if b.next_page), None)


def run_console(app: App, as_user: str | None = None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    origin = console_identity(app, as_user)
    interactive = stdin.isatty()
    # The next page of the last list shown, for /more.
    more: str | None = None
    # The language of the last answer: the console's own words follow it (the operator may use /lang).
    language = i18n.default_language()
    if interactive:
        stdout.write(_("chatcrm console as {name}. Type /help, or exit to leave.", name=origin.display_name) + "\n")
    while True:
        if interactive:
            stdout.write(PROMPT)
            stdout.flush()
        line = stdin.readline()
        if not line:
            break
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line in ("exit", "quit", "/exit", "/quit"):
            break
        text = line if line.startswith("/") else "/" + line
        if text.lower() == MORE_COMMAND:
            if more is None:
                with i18n.use_language(language):
                    nothing = _("Nothing more to show: /more continues the last list that had a More button.")
                stdout.write(nothing + "\n")
                stdout.write("" if interactive else "\n")
                continue
            text = more
        reply = app.dispatcher.handle(Request(origin=origin, text=text, can_ask=interactive))
        language = reply.language or language
        more = _next_page(reply) or (None if text == more else more)
        stdout.write(render_text(reply) + "\n")
        if reply.file is not None:
            with i18n.use_language(language):
                saved = _("{title} saved to {path}", title=reply.file.title or _("File"), path=save_file(reply.file))
            stdout.write(saved + "\n")
        if interactive and reply.form:
            _fill_form(app, origin, reply, stdin, stdout)
        if not interactive:
            stdout.write("\n")
        stdout.flush()
    return 0


def save_file(file: File, directory: str | os.PathLike[str] = ".") -> Path:
    """Write a reply's file into ``directory`` (the working directory) under its own name, readable by its
    owner only (an export is personal data); a name already taken gets a number, nothing is overwritten."""
    target = Path(directory) / Path(file.name).name
    stem, suffix, number = target.stem, target.suffix, 1
    data = file.data()
    while True:
        try:
            descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            break
        except FileExistsError:
            number += 1
            target = target.with_name(f"{stem}-{number}{suffix}")
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return target.resolve()


def _fill_form(app: App, origin: Origin, reply: Reply, stdin: TextIO, stdout: TextIO) -> None:
    form = reply.form
    assert form is not None, "called only for a reply that carries a form"
    values = _ask(form, stdin, stdout)
    while values is not None:
        try:
            result = app.dispatcher.handle(Request(origin=origin, text=form.command, form_values=values))
        except FormRejected as exc:
            for name, message in exc.errors.items():
                stdout.write(f"  {name}: {message}\n")
            values = _ask(form, stdin, stdout)
            continue
        stdout.write(render_text(result) + "\n")
        return
    with i18n.use_language(form.language):
        stdout.write(_("Cancelled.") + "\n")
