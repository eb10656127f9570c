"""CRM users and their chat identities: lookup, first contact, roles and the admin bootstrap."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from crm_core import clock, platforms, text
from crm_core.errors import Forbidden, NotFound, ValidationError
from crm_core.i18n import _
from crm_core.models import STAFF_ROLES, Identity, Role, User
from crm_core.uow import UnitOfWork


@dataclass(frozen=True)
class PlatformId:
    # A platform's name (crm_core.platforms); checked against the installed platforms by ``check``.
    platform: str
    external_id: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.external_id}"


def _examples() -> str:
    found = [f"{t.name}:{t.identity_example}" for t in map(platforms.traits, platforms.names())]
    # A list joined with "or" in the reader's language ("slack:U1 or telegram:2").
    return _(" or ").join(found) or _("<platform>:<user id>")


def parse_platform_id(raw: str, *, check: bool = True) -> PlatformId:
    """``"<platform>:<id>"`` -> PlatformId; raises ValidationError otherwise.

    With ``check`` the platform must be installed and the id must look like one of its ids; settings
    are parsed before the platforms are loaded, so they check the form only and are checked later.
    """
    platform, sep, external_id = raw.strip().partition(":")
    platform, external_id = platform.strip().lower(), external_id.strip()
    if not sep or not external_id or not platforms.NAME.match(platform):
        raise ValidationError(
            _("{value} is not a platform identity (write it as {examples})", value=repr(raw), examples=_examples())
        )
    found = PlatformId(platform, external_id)
    return check_platform_id(found, raw) if check else found


def check_platform_id(found: PlatformId, raw: str | None = None) -> PlatformId:
    """The identity if its platform is installed and the id has that platform's form; else ValidationError."""
    shown = raw or str(found)
    if found.platform not in platforms.names():
        known = ", ".join(platforms.names()) or _("none is installed")
        raise ValidationError(
            _(
                "unknown platform {platform} in {value} (known: {known})",
                platform=repr(found.platform),
                value=repr(shown),
                known=known,
            )
        )
    traits = platforms.traits(found.platform)
    if not traits.valid_identity(found.external_id):
        raise ValidationError(
            _(
                "{value} is not a {platform} id (it looks like {example})",
                value=repr(found.external_id),
                platform=traits.display,
                example=traits.identity_example,
            )
        )
    return found


def parse_admins(raw: str) -> list[PlatformId]:
    """The ``CHATCRM_ADMINS`` list: comma-separated platform identities (form only; see parse_platform_id)."""
    return [parse_platform_id(part, check=False) for part in raw.split(",") if part.strip()]


def user_for_identity(uow: UnitOfWork, platform_id: PlatformId) -> User | None:
    params = {"platform": platform_id.platform, "external_id": platform_id.external_id}
    return uow.session.scalars(_identity_statement(), params).one_or_none()


@functools.cache
def _identity_statement() -> sa.Select[Any]:
    # Built once: every request asks who its sender is.
    return (
        sa.select(User)
        .join(Identity)
        .where(
            Identity.platform == sa.bindparam("platform", type_=Identity.platform.type),
            Identity.external_id == sa.bindparam("external_id", type_=Identity.external_id.type),
        )
    )


def ensure_user(
    uow: UnitOfWork,
    platform_id: PlatformId,
    display_name: str | None = None,
    role: Role | None = None,
) -> User:
    """The user behind a platform identity, created (with no role unless given) on first contact."""
    user = user_for_identity(uow, platform_id)
    if user is None:
        user = User(name=display_name or str(platform_id), role=role)
        user.identities.append(
            Identity(platform=platform_id.platform, external_id=platform_id.external_id, display_name=display_name)
        )
        uow.session.add(user)
        uow.session.flush()
    elif role is not None and user.role != role:
        user.role = role
    return user


def bootstrap_admins(uow: UnitOfWork, admins: list[PlatformId]) -> list[User]:
    """Make each listed identity an admin (creating the user if needed). Idempotent.

    ValidationError when an identity's platform is not installed or its id has the wrong form."""
    return [ensure_user(uow, check_platform_id(platform_id), role=Role.ADMIN) for platform_id in admins]


def parse_role(raw: str) -> Role:
    """A role a user may be granted; "customer" is not one (customers are not users)."""
    try:
        role = Role(raw.strip().lower())
    except ValueError:
        role = None
    if role not in STAFF_ROLES:
        known = ", ".join(r.value for r in STAFF_ROLES)
        raise ValidationError(
            _("unknown role {value} (roles: {known})", value=repr(raw), known=known), field="role"
        ) from None
    return role


def find_user(uow: UnitOfWork, reference: str) -> User:
    """A user by ``#id``, email, platform identity (``slack:U123``) or unambiguous name (prefix)."""
    ref = reference.strip().lstrip("@")
    if not ref:
        raise ValidationError(_("name a user (by name, email, #id or slack:U123 / telegram:456)"))
    session = uow.session
    if match := re.fullmatch(r"#?(\d+)", ref):
        user = session.get(User, int(match.group(1)))
        if user:
            return user
    if ":" in ref:
        platform_id = parse_platform_id(ref)
        user = user_for_identity(uow, platform_id)
        if user:
            return user
        raise NotFound(_("no user has the identity {identity}", identity=platform_id))
    if "@" in ref:
        user = session.scalars(sa.select(User).where(sa.func.lower(User.email) == ref.lower())).one_or_none()
        if user:
            return user
    exact = session.scalars(sa.select(User).where(sa.func.lower(User.name) == ref.lower())).all()
    if len(exact) == 1:
        return exact[0]
    # Prefix of the name or of its first word: "maria" finds "Maria Schmidt".
    pattern = text.like_escape(ref.lower()) + "%"
    candidates = session.scalars(
        sa.select(User).where(sa.func.lower(User.name).like(pattern, escape="\\")).order_by(User.name).limit(6)
    ).all()
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise NotFound(_("no user called {name}", name=repr(reference)))
    names = ", ".join(f"{u.name} (#{u.id})" for u in candidates[:5])
    raise ValidationError(_("{name} matches several users: {names}; use the #id", name=repr(reference), names=names))


def grant_role(uow: UnitOfWork, user: User, role: Role | None) -> User:
    """Give ``user`` a role (``None``: take it away). The acting user cannot take admin from themselves,
    so the CRM never loses its last admin by a slip."""
    if user.id == uow.actor.user_id and user.role is Role.ADMIN and role is not Role.ADMIN:
        raise Forbidden(_("You can't take admin away from yourself; ask another admin."))
    user.role = role
    uow.session.flush()
    return user


def set_timezone(uow: UnitOfWork, user: User, tz_name: str) -> User:
    try:
        clock.zone(tz_name)
    except ValueError as exc:
        raise ValidationError(str(exc), field="timezone") from None
    user.timezone = tz_name
    uow.session.flush()
    return user


def link_identity(uow: UnitOfWork, user: User, platform_id: PlatformId, display_name: str | None = None) -> User:
    """Attach a platform identity to an existing user, moving it from a placeholder user if needed."""
    existing = uow.session.scalars(
        sa.select(Identity).where(
            Identity.platform == platform_id.platform, Identity.external_id == platform_id.external_id
        )
    ).one_or_none()
    if existing is not None:
        if existing.user_id == user.id:
            return user
        existing.user_id = user.id
        existing.display_name = display_name or existing.display_name
    else:
        user.identities.append(
            Identity(platform=platform_id.platform, external_id=platform_id.external_id, display_name=display_name)
        )
    uow.session.flush()
    return user


def dm_address(user: User, prefer: tuple[str, ...] | None = None) -> PlatformId | None:
    """The platform identity to DM a user on: where they "work", by the platforms' declared DM
    preference (a chat user id is its own DM conversation on the platforms that allow DMs)."""
    by_platform = {identity.platform: identity for identity in user.identities}
    for platform in prefer if prefer is not None else platforms.dm_platforms():
        if platform in by_platform:
            return PlatformId(platform, by_platform[platform].external_id)
    return None


def admin_identities(uow: UnitOfWork) -> list[Identity]:
    """The chat accounts of every active admin (where to report what needs an admin's eyes)."""
    return list(
        uow.session.scalars(
            sa.select(Identity)
            .join(User, User.id == Identity.user_id)
            .where(User.role == Role.ADMIN, User.active.is_(True))
            .order_by(Identity.id)
        )
    )


def set_language(uow: UnitOfWork, user_id: int, language: str | None) -> User:
    """Save the language a user chose (None: follow their chat app again). Checked by the caller
    against crm_core.i18n.LANGUAGES."""
    user = uow.session.get(User, user_id)
    if user is None:
        raise NotFound(_("no user #{id}", id=user_id))
    user.language = language
    uow.session.flush()
    return user
