"""What a handler gets besides its request: the unit of work, the caller, settings, the router and plugins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.messages import Caller
from crm_core.actor import Actor
from crm_core.uow import UnitOfWork

if TYPE_CHECKING:
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

    def can(self, permission: str) -> bool:
        """Whether the caller's role has this permission (bot.roles.Permission or a plugin's)."""
        return self.router.permissions.allows(self.caller.role, permission)

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.caller.user_id, name=self.caller.name, platform=self.platform)
