"""A support desk: what an adapter says about a platform where customers write to us.

Given with a request (``Dispatcher.handle(request, desk=...)``), it means: someone here who is not
staff is a customer (role "customer"), their plain messages become tickets, and copies go to
``staff_room``, where staff answer by replying. The adapter builds it from its own settings
(Telegram: ``TELEGRAM_SUPPORT_CHAT_ID`` and the bot's name); the handlers never name a platform.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.messages import Destination


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
