"""Personal access tokens for the REST API: create (shown once), list, revoke, and recognise a token.

A token is ``crm_`` followed by 43 characters of ``secrets.token_urlsafe(32)`` (256 random bits), so
a leaked one is easy to spot in logs and secret scanners. Only its SHA-256 is stored; a plain hash is
enough because the token has full entropy (nothing to brute-force, unlike a password). A token acts
as its user, with that user's role as it is *now*, narrowed by its scopes (permission names).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from crm_core import clock
from crm_core.errors import Conflict, NotFound, ValidationError
from crm_core.i18n import _
from crm_core.models import ApiToken, User
from crm_core.uow import UnitOfWork

PREFIX = "crm_"
DEFAULT_LIFETIME = timedelta(days=90)
MAX_LIFETIME = timedelta(days=366)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,15}$")
_LIFETIME = re.compile(r"^(\d{1,4})([dhw])$")
# last_used_at is written at most this often per token: a busy integration must not write every request.
_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    # The token itself: shown to its owner once, never stored.
    secret: str


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.strip().encode()).hexdigest()


def check_name(raw: str) -> str:
    name = raw.strip().lower()
    if not _NAME.match(name):
        raise ValidationError(
            _("{value} is not a token name: 1-16 letters, digits, '.', '-' or '_' (e.g. erp-sync)", value=repr(raw)),
            field="name",
        )
    return name


def parse_lifetime(raw: str) -> timedelta | None:
    """``90d``, ``12w``, ``48h``, or ``never``; at most a year (``never`` means no expiry)."""
    value = raw.strip().lower()
    if value in ("never", "none"):
        return None
    match = _LIFETIME.match(value)
    if not match:
        raise ValidationError(
            _("expires={value}: write a number of days, weeks or hours (90d, 12w, 48h)", value=repr(raw)),
            field="expires",
        )
    amount, unit = int(match.group(1)), match.group(2)
    lifetime = {"d": timedelta(days=amount), "w": timedelta(weeks=amount), "h": timedelta(hours=amount)}[unit]
    if lifetime <= timedelta(0) or lifetime > MAX_LIFETIME:
        raise ValidationError(_("a token lives between 1 hour and 366 days (or expires=never)"), field="expires")
    return lifetime


def normalize_scopes(raw: Iterable[str], known: set[str]) -> list[str]:
    """Scopes as permission names: ``customers:read`` and ``customers.read`` alike; unknown ones refused."""
    scopes: list[str] = []
    for item in raw:
        for piece in item.split(","):
            scope = piece.strip().lower().replace(":", ".")
            if not scope:
                continue
            if scope not in known:
                shown = ", ".join(sorted(s.replace(".", ":") for s in known))
                raise ValidationError(
                    _("unknown scope {scope} (scopes: {known})", scope=repr(piece.strip()), known=shown), field="scopes"
                )
            if scope not in scopes:
                scopes.append(scope)
    return sorted(scopes)


def create(
    uow: UnitOfWork, user: User, name: str, scopes: list[str], lifetime: timedelta | None = DEFAULT_LIFETIME
) -> NewToken:
    """A new token for ``user``. A live token of the same name is a Conflict; a revoked or expired one
    of that name is replaced (the audit log keeps it)."""
    name = check_name(name)
    now = clock.utcnow()
    existing = uow.session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.name == name)
    ).one_or_none()
    if existing is not None:
        if usable(existing, now):
            raise Conflict(
                _("you already have a token named {name}: revoke it first (/token revoke {name})", name=name)
            )
        uow.session.delete(existing)
        uow.session.flush()
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name,
        token_hash=hash_token(secret),
        prefix=secret[:8],
        scopes=list(scopes),
        created_at=now,
        expires_at=now + lifetime if lifetime is not None else None,
    )
    uow.session.add(token)
    uow.session.flush()
    return NewToken(token, secret)


def list_for(uow: UnitOfWork, user: User) -> list[ApiToken]:
    return list(uow.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.name)))


def revoke(uow: UnitOfWork, user: User, name: str) -> ApiToken:
    key = name.strip().lower()
    token = uow.session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.name == key)
    ).one_or_none()
    if token is None:
        raise NotFound(_("you have no token named {name} (/token list shows yours)", name=repr(name.strip())))
    if token.revoked_at is None:
        token.revoked_at = clock.utcnow()
        uow.session.flush()
    return token


def usable(token: ApiToken, now: datetime | None = None) -> bool:
    now = now or clock.utcnow()
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


def authenticate(uow: UnitOfWork, secret: str) -> ApiToken | None:
    """The live token ``secret`` is, with an active user; None for anything else (unknown, revoked,
    expired, a deactivated user). Notes when it was last used."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    token = uow.session.scalars(sa.select(ApiToken).where(ApiToken.token_hash == hash_token(secret))).one_or_none()
    now = clock.utcnow()
    if token is None or not usable(token, now) or not token.user.active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= _TOUCH_EVERY:
        # A Core update: bookkeeping, not a change the audit log should list on every call.
        uow.session.execute(sa.update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
    return token
