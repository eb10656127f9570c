"""Inline-button payloads (callback_data, at most 64 bytes) and what they mean.

- ``c<command>``: run a button's command, e.g. ``c/customer #12``;
- ``f<command>``: the same, asking for the command's arguments (``Button.opens_form``);
- ``t<token>``: a button whose command does not fit; the command is stored in the database
  under a token derived from it, so rendering the same button again reuses the row;
- ``a<session>.<question>.<choice>``: an answer button of a step-by-step form question
  (``s`` skips an optional input, ``k`` keeps the current value).

A payload is no more trusted than a typed command: whatever a button runs goes through the
dispatcher's role checks like any typed line.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from bot.conversation import KEEP, SKIP
from bot.messages import Button
from crm_core import db
from crm_core.clock import utcnow
from crm_core.models import ButtonCommand
from crm_core.uow import UnitOfWork

LIMIT = 64
__all__ = ["KEEP", "SKIP", "Answer", "Press", "answer_data", "decode", "encode", "store"]
_ANSWER = re.compile(r"^a(\d{1,18})\.(\d{1,9})\.(\d{1,3}|s|k)$")


@dataclass(frozen=True)
class Press:
    command: str
    opens_form: bool


@dataclass(frozen=True)
class Answer:
    session_id: int
    asked: int
    # A choice index, SKIP or KEEP.
    choice: str


def _token(data: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data.encode()).digest()).decode()[:22]


def encode(button: Button) -> tuple[str, ButtonCommand | None]:
    """The callback_data of a button, and the row to store when its command is too long to carry."""
    data = ("f" if button.opens_form else "c") + button.command
    if len(data.encode()) <= LIMIT:
        return data, None
    token = _token(data)
    return "t" + token, ButtonCommand(token=token, command=button.command, opens_form=button.opens_form)


def answer_data(session_id: int, asked: int, choice: int | str) -> str:
    return f"a{session_id}.{asked}.{choice}"


def store(uow: UnitOfWork, rows: list[ButtonCommand]) -> None:
    # One statement for a message's buttons; a button rendered twice is one row (its token).
    now = utcnow()
    unique = {row.token: row for row in rows}.values()
    db.insert_all_or_ignore(
        uow.session,
        ButtonCommand,
        [{"token": r.token, "command": r.command, "opens_form": r.opens_form, "created_at": now} for r in unique],
    )


def decode(uow: UnitOfWork, data: str) -> Press | Answer | None:
    """What a payload asks for; None for one we never made (or a token that is gone)."""
    if data.startswith(("c/", "f/")):
        return Press(data[1:], data[0] == "f")
    if data.startswith("t"):
        row = uow.session.get(ButtonCommand, data[1:])
        return Press(row.command, row.opens_form) if row else None
    if match := _ANSWER.match(data):
        return Answer(int(match.group(1)), int(match.group(2)), match.group(3))
    return None
