"""The local operator: who the person at a terminal (the console adapter) is to the CRM.

Kept in the bot core so adapters reach CRM users only through it, never through crm_core.services.
"""

from __future__ import annotations

from bot.bootstrap import App
from crm_core.models import Role
from crm_core.services import users


def local_operator(app: App, platform: str, as_user: str | None, default_id: str, default_name: str) -> tuple[str, str]:
    """(external id, name) on ``platform`` of an existing CRM user given by ``as_user`` (linked to that
    platform on first use), or else of the operator ``default_id``, who is made an admin if they have
    no role yet."""
    with app.uow() as uow:
        if as_user:
            user = users.find_user(uow, as_user)
            existing = [i.external_id for i in user.identities if i.platform == platform]
            external_id = existing[0] if existing else f"user-{user.id}"
            if not existing:
                users.link_identity(uow, user, users.PlatformId(platform, external_id))
            return external_id, user.name
        user = users.ensure_user(uow, users.PlatformId(platform, default_id), display_name=default_name)
        if user.role is None:
            user.role = Role.ADMIN
        return default_id, default_name
