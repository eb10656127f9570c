"""One-time codes that pair a chat account with a CRM user: issue, recognise, redeem, withdraw.

A code is eight characters from an alphabet without vowels or look-alikes (``BCDF-3H7K``), so it
is quick to type on a phone, never spells a word, and is never mistaken for a person's name.
Codes live for ``CODE_TTL``, work once, and only their hash is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

import sqlalchemy as sa

from crm_core import clock
from crm_core.errors import ValidationError
from crm_core.i18n import _, ngettext
from crm_core.models import LinkCode, User
from crm_core.services import users
from crm_core.uow import UnitOfWork

ALPHABET = "BCDFGHJKLMNPQRSTVWXZ23456789"
CODE_TTL = timedelta(minutes=10)
_CODE = re.compile(rf"^[{ALPHABET}]{{4}}-?[{ALPHABET}]{{4}}$")


def looks_like_code(text: str) -> bool:
    return bool(_CODE.match(text.strip().upper()))


def _normalize(code: str) -> str:
    return code.strip().upper().replace("-", "")


def _hash(code: str) -> str:
    return hashlib.sha256(_normalize(code).encode()).hexdigest()


def issue(uow: UnitOfWork, user: User, ttl: timedelta = CODE_TTL) -> str:
    """A fresh code for ``user``; earlier unused codes of that user stop working."""
    now = clock.utcnow()
    uow.session.execute(
        sa.update(LinkCode)
        .where(LinkCode.user_id == user.id, LinkCode.used_at.is_(None), LinkCode.expires_at > now)
        .values(used_at=now, used_by="replaced by a newer code")
    )
    raw = "".join(secrets.choice(ALPHABET) for _ in range(8))
    uow.session.add(
        LinkCode(
            code_hash=_hash(raw), user_id=user.id, created_by_id=uow.actor.user_id, created_at=now, expires_at=now + ttl
        )
    )
    uow.session.flush()
    return f"{raw[:4]}-{raw[4:]}"


def _usable(uow: UnitOfWork, code: str) -> LinkCode:
    row = uow.session.scalars(sa.select(LinkCode).where(LinkCode.code_hash == _hash(code))).one_or_none()
    if row is None:
        raise ValidationError(_("that code is not valid; check it, or ask for a new one with /link"))
    if row.used_at is not None:
        raise ValidationError(_("that code has already been used; ask for a new one with /link"))
    if row.expires_at <= clock.utcnow():
        minutes = int(CODE_TTL.total_seconds() // 60)
        raise ValidationError(
            ngettext(
                "that code has expired (codes last {n} minute); ask for a new one with /link",
                "that code has expired (codes last {n} minutes); ask for a new one with /link",
                minutes,
            )
        )
    return row


def redeem(uow: UnitOfWork, code: str, platform_id: users.PlatformId, display_name: str | None = None) -> User:
    """Pair ``platform_id`` with the code's user and use the code up; ValidationError when it is
    unknown, used or expired. The update is conditional, so two redemptions cannot both win."""
    row = _usable(uow, code)
    claimed = uow.session.execute(
        sa.update(LinkCode)
        .where(LinkCode.id == row.id, LinkCode.used_at.is_(None))
        .values(used_at=clock.utcnow(), used_by=str(platform_id))
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]  # DML returns a CursorResult
        raise ValidationError(_("that code has already been used; ask for a new one with /link"))
    user = row.user
    if not user.active:
        raise ValidationError(_("{name} is no longer an active user", name=user.name))
    return users.link_identity(uow, user, platform_id, display_name)


def withdraw(uow: UnitOfWork, code: str, reason: str) -> bool:
    """Make a still-usable code unusable (it was shown where others could read it)."""
    try:
        row = _usable(uow, code)
    except ValidationError:
        return False
    row.used_at = clock.utcnow()
    row.used_by = reason[:100]
    uow.session.flush()
    return True
