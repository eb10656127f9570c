"""CRM users and their chat identities: lookup, first contact, roles and the admin bootstrap."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

from crm_core import clock, text
from crm_core.errors import NotFound, ValidationError
from crm_core.models import STAFF_ROLES, Identity, Platform, Role, User
from crm_core.uow import UnitOfWork


@dataclass(frozen=True)
class PlatformId:
    platform: Platform
    external_id: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.external_id}"


def parse_platform_id(raw: str) -> PlatformId:
    """``"slack:U123"`` or ``"telegram:456"`` -> PlatformId; raises ValidationError otherwise."""
    platform, sep, external_id = raw.strip().partition(":")
    if not sep or not external_id.strip():
        raise ValidationError(f"{raw!r} is not a platform identity (write it as slack:U123 or telegram:456)")
    try:
        return PlatformId(Platform(platform.strip().lower()), external_id.strip())
    except ValueError:
        known = ", ".join(p.value for p in Platform)
        raise ValidationError(f"unknown platform {platform!r} in {raw!r} (known: {known})") from None


def parse_admins(raw: str) -> list[PlatformId]:
    """The ``CHATCRM_ADMINS`` list: comma-separated platform identities."""
    return [parse_platform_id(part) for part in raw.split(",") if part.strip()]


def user_for_identity(uow: UnitOfWork, platform_id: PlatformId) -> User | None:
    statement = (
        sa.select(User)
        .join(Identity)
        .where(Identity.platform == platform_id.platform, Identity.external_id == platform_id.external_id)
    )
    return uow.session.scalars(statement).one_or_none()


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
    """Make each listed identity an admin (creating the user if needed). Idempotent."""
    return [ensure_user(uow, platform_id, role=Role.ADMIN) for platform_id in admins]


def parse_role(raw: str) -> Role:
    """A role a user may be granted; "customer" is not one (customers are not users)."""
    try:
        role = Role(raw.strip().lower())
    except ValueError:
        role = None
    if role not in STAFF_ROLES:
        known = ", ".join(r.value for r in STAFF_ROLES)
        raise ValidationError(f"unknown role {raw!r} (roles: {known})", field="role") from None
    return role


def find_user(uow: UnitOfWork, reference: str) -> User:
    """A user by ``#id``, email, platform identity (``slack:U123``) or unambiguous name (prefix)."""
    ref = reference.strip().lstrip("@")
    if not ref:
        raise ValidationError("name a user (by name, email, #id or slack:U123 / telegram:456)")
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
        raise NotFound(f"no user has the identity {platform_id}")
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
        raise NotFound(f"no user called {reference!r}")
    names = ", ".join(f"{u.name} (#{u.id})" for u in candidates[:5])
    raise ValidationError(f"{reference!r} matches several users: {names}; use the #id")


def grant_role(uow: UnitOfWork, user: User, role: Role) -> User:
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


# Where a user "works", for direct messages: Slack first, then Telegram, then the console.
DM_PREFERENCE = (Platform.SLACK, Platform.TELEGRAM, Platform.CONSOLE)


def dm_address(user: User, prefer: tuple[Platform, ...] = DM_PREFERENCE) -> PlatformId | None:
    """The platform identity to DM a user on (a Slack user id or Telegram chat id is its own DM)."""
    by_platform = {identity.platform: identity for identity in user.identities}
    for platform in prefer:
        if platform in by_platform:
            return PlatformId(platform, by_platform[platform].external_id)
    return None
