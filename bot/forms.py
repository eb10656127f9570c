"""Forms that ask for a command's missing arguments (Slack modals, Telegram step-by-step questions)."""

from __future__ import annotations

from typing import Any

from bot.args import Kind, Param
from bot.context import Context
from bot.messages import Form, FormInput, InputKind, Request
from bot.router import Command
from crm_core.i18n import _

_INPUT_KINDS = {
    Kind.TEXT: InputKind.TEXT,
    Kind.MULTILINE: InputKind.MULTILINE,
    Kind.INT: InputKind.NUMBER,
    Kind.CHOICE: InputKind.CHOICE,
    Kind.DATE: InputKind.DATE,
    Kind.MONEY: InputKind.TEXT,
}


def form_input(param: Param, initial: str | None = None) -> FormInput:
    """The input asking for ``param``, its label and hint in the current language (both are marked with
    N_ where the parameter is declared)."""
    return FormInput(
        name=param.name,
        label=param.display,
        kind=_INPUT_KINDS[param.kind],
        required=param.required,
        choices=param.choices,
        initial=initial,
        hint=_(param.hint) if param.hint else None,
    )


def form_for(command: Command, request: Request, ctx: Context, known: dict[str, Any]) -> Form:
    fixed = {name: str(value) for name, value in known.items()}
    if command.form_builder is not None:
        return command.form_builder(request, ctx, fixed)
    return Form(
        title=_(command.form_title) if command.form_title else command.description[:24],
        command=f"/{command.name}",
        inputs=tuple(form_input(p) for p in command.params if p.name not in fixed),
        fixed=fixed,
    )
