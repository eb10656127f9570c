"""Sending messages the system starts on its own (reminders, digests, campaigns) to a platform.

The outbox sender (bot layer) hands each due message to the ``PlatformSender`` of its platform.
Adapters implement the protocol and translate platform failures into the exceptions below, so
the outbox can decide uniformly: pause on a rate limit, stop for an unreachable recipient, retry
a temporary failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.messages import Button, Image, Reply


class DeliveryError(Exception):
    """Base of every delivery failure an adapter reports."""


class RateLimited(DeliveryError):
    """The platform said "slow down": nothing was sent; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: float, detail: str = ""):
        super().__init__(f"rate limited for {retry_after:g}s {detail}".strip())
        self.retry_after = retry_after


class RecipientUnreachable(DeliveryError):
    """The recipient can never get messages (blocked the bot, left, deactivated): do not retry."""


class TemporaryFailure(DeliveryError):
    """A failure worth retrying later (network error, 5xx)."""


@dataclass(frozen=True)
class OutboundMessage:
    """One message to one conversation. Either a neutral ``reply`` for the adapter to render, or
    ``formatted_text`` already in the platform's format (mrkdwn, Telegram HTML, plain) from a template."""

    conversation: str
    reply: Reply | None = None
    formatted_text: str | None = None
    # Slack only: Block Kit blocks rendered by a template (take precedence over formatted_text).
    blocks: list[dict[str, Any]] | None = None
    buttons: tuple[Button, ...] = ()
    image: Image | None = None
    thread: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class PlatformSender(Protocol):
    platform: str

    async def send(self, message: OutboundMessage) -> str:
        """Deliver the message; return the platform's message id. Raises a DeliveryError subclass."""
        ...
