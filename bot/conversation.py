"""Step-by-step forms: a ``Form`` asked one input at a time in a chat, ``/cancel`` to leave.

For any platform without modals (Telegram, a terminal, a future WhatsApp): the state (the form,
answers so far, what is left to ask) is a ``FormSession`` row per person and chat, so it survives
webhook requests, restarts and several processes. Nothing here knows a platform: an adapter renders
the ``Question`` (buttons for choices, a free-text prompt otherwise) and hands answers back as text or
as a choice token; the dispatcher submits the ``Filled`` form (``Dispatcher.advance``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bot.messages import Form, FormInput, InputKind, Origin, Reply
from crm_core import i18n
from crm_core.clock import utcnow
from crm_core.i18n import N_, _
from crm_core.models import FormSession
from crm_core.uow import UnitOfWork

# A form left alone this long is forgotten; the next message is an ordinary message again.
SESSION_TTL = timedelta(hours=1)
REQUIRED = N_("This one is required.")
# Choice tokens besides a choice's index: skip an optional input, keep the current value.
SKIP = "s"
KEEP = "k"


@dataclass(frozen=True)
class Question:
    session_id: int
    # Which question this is in the session, so a button under an older question is stale.
    asked: int
    form: Form
    field: FormInput
    number: int
    total: int
    error: str | None = None


@dataclass(frozen=True)
class Filled:
    form: Form
    values: dict[str, str]


@dataclass(frozen=True)
class Chosen:
    """A choice taken for the open question: what comes next, and the answer in words (to show it)."""

    step: Question | Filled
    label: str
    shown: str


@dataclass(frozen=True)
class Stale:
    """A choice for a question that is no longer the open one (an old button)."""


def _dump(form: Form, errors: dict[str, str] | None = None) -> dict[str, Any]:
    return {**Reply(form=form).to_dict()["form"], "errors": dict(errors or {})}


def _load(row: FormSession) -> Form:
    form = Reply.from_dict({"form": row.form}).form
    assert form is not None
    return form


def _where(origin: Origin) -> sa.ColumnElement[bool]:
    return sa.and_(
        FormSession.platform == origin.platform,
        FormSession.conversation == origin.conversation,
        FormSession.user_external_id == origin.user_external_id,
    )


def current(uow: UnitOfWork, origin: Origin) -> FormSession | None:
    """The person's form in progress in this chat, if any (an expired one is dropped)."""
    row = uow.session.scalars(sa.select(FormSession).where(_where(origin))).one_or_none()
    if row is not None and row.expires_at <= utcnow():
        uow.session.delete(row)
        uow.session.flush()
        return None
    return row


def cancel(uow: UnitOfWork, origin: Origin) -> bool:
    """Forget the person's form in progress in this chat; False when there was none."""
    values = {"platform": origin.platform, "conversation": origin.conversation, "user": origin.user_external_id}
    return uow.session.execute(_cancel_statement(), values).rowcount > 0  # type: ignore[attr-defined]  # DML returns a CursorResult


@functools.cache
def _cancel_statement() -> sa.Delete:
    """``cancel``'s DELETE, built once with its values bound at execution: every typed command runs it.
    The session learns which form sessions it removed from the rows the DELETE returns ("fetch"):
    its default ("evaluate": the WHERE run in Python on the objects the session holds) sees only
    values bound into the statement, and would leave a form session read earlier in the same
    transaction in the session as if its row still existed."""
    f = FormSession
    return (
        sa.delete(f)
        .where(
            f.platform == sa.bindparam("platform", type_=f.platform.type),
            f.conversation == sa.bindparam("conversation", type_=f.conversation.type),
            f.user_external_id == sa.bindparam("user", type_=f.user_external_id.type),
        )
        .execution_options(synchronize_session="fetch")
    )


def start(
    uow: UnitOfWork,
    origin: Origin,
    form: Form,
    *,
    answers: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Question | Filled:
    """Begin asking ``form`` (replacing any form in progress); with ``errors``, ask only those inputs again."""
    cancel(uow, origin)
    names = [i.name for i in form.inputs]
    queue = [name for name in names if name in errors] if errors else names
    if not queue:
        return Filled(form, {**form.fixed, **(answers or {})})
    row = FormSession(
        platform=origin.platform,
        conversation=origin.conversation,
        user_external_id=origin.user_external_id,
        form=_dump(form, errors),
        answers=dict(answers or {}),
        queue=queue,
        asked=1,
        expires_at=utcnow() + SESSION_TTL,
    )
    uow.session.add(row)
    uow.session.flush()
    return _question(row, form)


def restart_with_errors(uow: UnitOfWork, origin: Origin, filled: Filled, errors: dict[str, str]) -> Question | None:
    """Ask again the inputs a submitted form got wrong; None when none of them is an input (a fixed value)."""
    askable = {name: message for name, message in errors.items() if any(i.name == name for i in filled.form.inputs)}
    if not askable:
        return None
    kept = {k: v for k, v in filled.values.items() if k not in askable and k not in filled.form.fixed}
    question = start(uow, origin, filled.form, answers=kept, errors=askable)
    assert isinstance(question, Question)
    return question


def _question(row: FormSession, form: Form, error: str | None = None) -> Question:
    name = row.queue[0]
    index = next(i for i, field in enumerate(form.inputs) if field.name == name)
    error = error or (row.form.get("errors") or {}).get(name)
    return Question(row.id, row.asked, form, form.inputs[index], index + 1, len(form.inputs), error)


def question_of(row: FormSession) -> Question:
    return _question(row, _load(row))


def choose(uow: UnitOfWork, origin: Origin, session_id: int, asked: int, choice: str) -> Chosen | Stale:
    """A choice (an index, SKIP or KEEP) for question number ``asked`` of form session ``session_id``."""
    row = current(uow, origin)
    if row is None or row.id != session_id or row.asked != asked:
        return Stale()
    question = question_of(row)
    field = question.field
    if choice == SKIP:
        with i18n.use_language(question.form.language or i18n.current_language()):
            shown = _("(skipped)")
    elif choice == KEEP:
        shown = field.initial or ""
    else:
        index = int(choice)
        shown = field.choices[index] if 0 <= index < len(field.choices) else "?"
    return Chosen(answer(uow, row, choice=choice), field.label, shown)


def _interpret(field: FormInput, text: str | None, choice: str | None) -> tuple[str | None, str | None]:
    """(value, None) for a usable answer, or (None, why not)."""
    if choice == KEEP:
        return field.initial or "", None
    if choice == SKIP or (text is not None and text.strip() == "-"):
        if field.required and not field.initial:
            return None, _(REQUIRED)
        # Skipping an input that has a current value keeps that value.
        return field.initial or "", None
    if choice is not None:
        index = int(choice)
        if not 0 <= index < len(field.choices):
            return None, _("That choice is not on the list.")
        return field.choices[index], None
    value = (text or "").strip() if field.kind is not InputKind.MULTILINE else (text or "").strip("\n")
    if not value.strip():
        return (None, _(REQUIRED)) if field.required else ("", None)
    if field.kind is InputKind.CHOICE and field.choices:
        lowered = value.lower()
        exact = [c for c in field.choices if c.lower() == lowered]
        prefixed = [c for c in field.choices if c.lower().startswith(lowered)]
        if exact or len(prefixed) == 1:
            return (exact or prefixed)[0], None
        return None, _("Pick one of: {choices}.", choices=", ".join(field.choices))
    return value, None


def answer(
    uow: UnitOfWork, row: FormSession, *, text: str | None = None, choice: str | None = None
) -> Question | Filled:
    """Take the answer to the current question; the next question, the same one with an error, or the filled form."""
    form = _load(row)
    field = _question(row, form).field
    # Errors in the language the form was asked in (a plain message comes before its sender is known).
    with i18n.use_language(form.language or i18n.current_language()):
        value, error = _interpret(field, text, choice)
    row.asked += 1
    row.expires_at = utcnow() + SESSION_TTL
    if error is not None:
        uow.session.flush()
        return _question(row, form, error)
    row.answers = {**row.answers, field.name: value}
    row.queue = row.queue[1:]
    # Answered: its error from an earlier submission no longer applies.
    row.form = {**row.form, "errors": {k: v for k, v in (row.form.get("errors") or {}).items() if k != field.name}}
    if row.queue:
        uow.session.flush()
        return _question(row, form)
    values = {**form.fixed, **row.answers}
    uow.session.delete(row)
    uow.session.flush()
    return Filled(form, values)
