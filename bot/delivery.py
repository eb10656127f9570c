"""Sending messages the system starts on its own (reminders, digests, campaigns) to a platform.

The outbox sender (bot layer) hands each due message to the ``PlatformSender`` of its platform.
Adapters implement the protocol and translate platform failures into the exceptions below, so
the outbox can decide uniformly: pause on a rate limit, stop for an unreachable recipient, retry
a temporary failure, give up on one message that can never go out as it is.

A message with ``replace`` set edits a message the bot sent earlier (a live status card) instead
of posting a new one; ``send`` then returns the id of the edited message.
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


class ChatMoved(DeliveryError):
    """The chat has a new id (a Telegram group upgraded to a supergroup): nothing was sent; send
    it to ``conversation`` instead, and write to that id from now on."""

    def __init__(self, conversation: str, detail: str = ""):
        super().__init__(f"chat moved to {conversation} {detail}".strip())
        self.conversation = conversation


class TemporaryFailure(DeliveryError):
    """A failure worth retrying later (network error, 5xx)."""


class PermanentFailure(DeliveryError):
    """This one message can never be delivered as it is (e.g. the message it should edit is gone):
    fail it without retrying; the recipient stays reachable for other messages."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a platform's temporary failures are retried when its spec asks for other than the
    outbox's defaults (webhooks retry for about a day): wait ``backoff_seconds``, doubling up to
    ``max_backoff_seconds``; the row fails after ``max_attempts``."""

    max_attempts: int
    backoff_seconds: float
    max_backoff_seconds: float

    def total_seconds(self) -> float:
        """The longest a row is retried: the sum of the waits between its attempts."""
        waits = (
            min(self.backoff_seconds * 2 ** (n - 1), self.max_backoff_seconds) for n in range(1, self.max_attempts)
        )
        return sum(waits)


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
    # Edit this earlier message (its platform message id, as ``send`` returned it) in the same
    # conversation instead of posting a new one. Images are not edited: an edit leaves them out.
    replace: str | None = None
    # Show it as an answer to this earlier message (its platform id), where the platform can.
    reply_to: str | None = None
    # How the platform takes an answer to the request behind this message (Slack: response_url,
    # the person an ephemeral answer is for); only that platform's sender reads it.
    answer_to: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class PlatformSender(Protocol):
    platform: str

    async def send(self, message: OutboundMessage) -> str:
        """Deliver the message (or edit ``message.replace``); return the platform's message id.
        Raises a DeliveryError subclass."""
        ...
