"""What a handler gets besides its request: the unit of work, the caller, settings, the router and,
where customers write to us, the support desk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.messages import Caller
from crm_core.actor import Actor
from crm_core.uow import UnitOfWork

if TYPE_CHECKING:
    from bot.desk import SupportDesk
    from bot.router import Router
    from bot.settings import Settings


@dataclass
class Context:
    uow: UnitOfWork
    caller: Caller
    settings: Settings
    router: Router
    platform: str
    # Set when the request comes from a platform where customers write to us (see bot.desk).
    desk: SupportDesk | None = None

    @property
    def actor(self) -> Actor:
        return Actor(user_id=self.caller.user_id, name=self.caller.name, platform=self.platform)
