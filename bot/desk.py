"""A support desk: what an adapter says about a platform where customers write to us.

Given with a request (``Dispatcher.handle(request, desk=...)``), it means: someone here who is not
staff is a customer (role "customer"), their plain messages become tickets, and copies go to
``staff_room``, where staff answer by replying. The adapter builds it from its own settings
(Telegram: ``TELEGRAM_SUPPORT_CHAT_ID`` and the bot's name); the handlers never name a platform.

Besides the staff room, a platform with threads may offer ``TicketThreads``: a staff conversation
where every ticket gets a thread of its own (Slack: ``CHATCRM_SLACK_SUPPORT_CHANNEL``). Its plugin
declares it (``PlatformSpec.ticket_threads``) and ``ticket_threads`` collects them, so a customer
writing on any platform is posted there, whichever platform the desk belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.messages import Destination

if TYPE_CHECKING:
    from bot.plugins import Plugins
    from bot.settings import Settings


@dataclass(frozen=True)
class SupportDesk:
    # Where customers' messages are relayed, and where a staff reply to such a copy answers the
    # customer; None when nobody set one up (messages are still kept in their tickets).
    staff_room: Destination | None = None
    # How the bot introduces itself to customers.
    bot_name: str = "chatcrm"

    def is_staff_room(self, platform: str, conversation: str) -> bool:
        room = self.staff_room
        return room is not None and room.platform == platform and room.conversation == conversation


@dataclass(frozen=True)
class TicketThreads:
    """A staff conversation where every ticket has a thread of its own: each customer message of the
    ticket is posted into it, and a linked staff member's reply there is about that ticket."""

    platform: str
    conversation: str
    # True ("replies" mode): a reply in a thread answers the customer. False ("alerts" mode, the
    # default): replies stay internal notes; only one starting with an answer prefix reaches them.
    replies: bool = False

    @property
    def destination(self) -> Destination:
        return Destination(self.platform, self.conversation)

    def holds(self, platform: str, conversation: str) -> bool:
        return self.platform == platform and self.conversation == conversation


def ticket_threads(plugins: Plugins, settings: Settings) -> tuple[TicketThreads, ...]:
    """The ticket-thread conversations of every configured platform, in platform order."""
    found = []
    for spec in plugins.platforms.values():
        if spec.configured(settings):
            threads = spec.ticket_threads(settings)
            if threads is not None:
                found.append(threads)
    return tuple(found)
