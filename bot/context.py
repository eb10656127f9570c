"""What a handler gets besides its request: the unit of work, the caller, settings, the router, the
plugins and, where customers write to us, the support desk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.messages import Caller
from crm_core.actor import Actor
from crm_core.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.desk import SupportDesk
    from bot.plugins import Plugins
    from bot.router import Router
    from bot.settings import Settings


@dataclass
class Context:
    uow: UnitOfWork
    caller: Caller
    settings: Settings
    router: Router
    platform: str
    plugins: Plugins
    # Set when the request comes from a platform where customers write to us (see bot.desk).
    desk: SupportDesk | None = None

    def can(self, permission: str) -> bool:
        """Whether the caller's role has this permission (bot.roles.Permission or a plugin's)."""
        return self.router.permissions.allows(self.caller.role, permission)

    @property
    def actor(self) -> Actor:
        return Actor(
            user_id=self.caller.user_id,
            name=self.caller.name,
            platform=self.platform,
            role=self.caller.role,
            edit_scope=self.settings.edit_scope,
        )
