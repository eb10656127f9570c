"""``SlackSender``: the outbox sender's way to Slack (``bot.delivery.PlatformSender``).

An ``OutboundMessage`` is posted with chat.postMessage: a neutral ``reply`` rendered to Block Kit
(escaped, at most 50 blocks), or a template's ``formatted_text`` (already mrkdwn) / ``blocks`` with
the message's buttons. A chart (``image``) is uploaded with the files upload v2 flow. A message with
``replace`` edits that earlier message with chat.update instead (same blocks; no chart). Slack's
failures come out as ``RateLimited`` (with Slack's Retry-After), ``RecipientUnreachable``,
``PermanentFailure`` (a message that cannot be edited) or ``TemporaryFailure``. A failed edit never
makes the recipient unreachable: the next new message finds out whether it is.

An answer to a request (a row with ``answer_to``, queued by the runtime in the request's
transaction) goes where Slack wants answers: to the request's response_url while it is valid (30
minutes; Slack also allows only 5 answers there), else, or when the response_url refuses, to the
channel with chat.postMessage, or chat.postEphemeral for the person who asked when the answer is
private. ``answer_to`` also carries the page of a long list and the command its "More" button runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack.blocks import (
    FALLBACK_TEXT_LIMIT,
    MESSAGE_BLOCK_LIMIT,
    Block,
    BlockBuilder,
    fallback_text,
    message_page,
    section,
)
from bot.adapters.slack.inbound import is_dm
from bot.adapters.slack.mrkdwn import chunks, clip
from bot.adapters.slack.outbound import (
    WEB_API_TIMEOUT,
    delivery_error,
    is_slack_failure,
    post_message,
    post_to_response_url,
    response_url_body,
    update_message,
    upload_image,
)
from bot.adapters.slack.settings import SlackSettings
from bot.delivery import OutboundMessage, PermanentFailure, RecipientUnreachable, TemporaryFailure
from bot.messages import Reply

log = logging.getLogger("chatcrm.slack")


def template_blocks(message: OutboundMessage) -> list[Block]:
    """Blocks for a message a template rendered: its own blocks, or its mrkdwn text, then its buttons."""
    builder = BlockBuilder()
    if message.blocks:
        builder.blocks.extend(message.blocks)
    elif message.formatted_text:
        # Already mrkdwn from the template (which escaped its data): split, never escape again.
        builder.blocks.extend(section(piece) for piece in chunks(message.formatted_text))
    builder.actions(message.buttons)
    return builder.blocks[:MESSAGE_BLOCK_LIMIT]


class SlackSender:
    platform = "slack"

    def __init__(self, settings: SlackSettings):
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncWebClient | None = None
        # False when the connection is borrowed (``share``): its owner closes it.
        self._owns_session = True

    def share(self, client: AsyncWebClient, session: aiohttp.ClientSession) -> None:
        """Send over an existing client and connection pool (the web process's runtime's)."""
        self._client, self._session, self._owns_session = client, session, False

    @property
    def client(self) -> AsyncWebClient:
        # Made on first use, inside the worker's event loop (aiohttp sessions belong to one loop).
        if self._client is None:
            self._session = aiohttp.ClientSession()
            self._client = AsyncWebClient(
                token=self.settings.bot_token,
                base_url=self.settings.api_url,
                session=self._session,
                timeout=WEB_API_TIMEOUT,
            )
        return self._client

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = self._client = None
        self._owns_session = True

    async def send(self, message: OutboundMessage) -> str:
        """Post the message (and upload its chart); returns the message ts, or the file id for a chart alone.
        With ``replace``: edit that message instead; returns its ts."""
        try:
            if message.replace:
                return await self._edit(message, message.replace)
            return await self._send(message)
        except Exception as exc:
            if not is_slack_failure(exc):
                raise
            error = delivery_error(exc)
            if message.replace and isinstance(error, RecipientUnreachable):
                raise PermanentFailure(f"cannot edit message {message.replace}: {error}{_dm_hint(message)}") from exc
            raise error from exc

    @staticmethod
    def _content(message: OutboundMessage) -> tuple[list[Block], str]:
        if message.reply is not None:
            return message_page(message.reply).blocks, fallback_text(message.reply)
        return template_blocks(message), clip(message.formatted_text or "", FALLBACK_TEXT_LIMIT)

    async def _edit(self, message: OutboundMessage, ts: str) -> str:
        blocks, text = self._content(message)
        if not blocks:
            raise PermanentFailure(f"nothing to edit message {ts} with: only a chart, and charts are not edited")
        await update_message(self.client, message.conversation, ts, blocks, text or " ")
        return ts

    async def _send(self, message: OutboundMessage) -> str:
        if message.answer_to is not None and message.reply is not None:
            return await self._answer(message, message.reply, message.answer_to)
        reply = message.reply
        image = message.image or (reply.image if reply else None)
        blocks, text = self._content(message)
        message_ts = ""
        if blocks:
            message_ts = await post_message(
                self.client, message.conversation, blocks, text or " ", thread_ts=message.thread
            )
        if image is not None:
            file_id = await upload_image(self.client, message.conversation, image, thread_ts=message.thread)
            message_ts = message_ts or file_id
        return message_ts

    async def _answer(self, message: OutboundMessage, reply: Reply, answer: Mapping[str, Any]) -> str:
        """An answer to a request: to its response_url while valid, else to the channel (ephemeral for
        the person who asked when it is private). Returns the message ts ("" for a response_url answer,
        which Slack does not number)."""
        client = self.client
        shown = message_page(reply, int(answer.get("page") or 1), more_command=answer.get("more_command"))
        url = answer.get("response_url")
        until = answer.get("response_url_until")
        message_ts = ""
        posted = False
        if url and (until is None or time.time() < float(until)):
            try:
                await post_to_response_url(self._session, str(url), response_url_body(reply, shown.blocks))
                posted = True
            except TemporaryFailure as exc:
                # Used up (5 answers) or expired: the channel still works.
                log.warning("slack response_url refused (%s); posting to the channel instead", exc)
        if not posted:
            user = answer.get("user")
            in_dm = message.conversation == user or is_dm(message.conversation)
            ephemeral_for = str(user) if reply.private and user and not in_dm else None
            message_ts = await post_message(
                client,
                message.conversation,
                shown.blocks,
                fallback_text(reply),
                thread_ts=message.thread,
                ephemeral_for=ephemeral_for,
            )
        if reply.image is not None:
            file_id = await upload_image(client, message.conversation, reply.image, thread_ts=message.thread)
            message_ts = message_ts or file_id
        return message_ts


def _dm_hint(message: OutboundMessage) -> str:
    # chat.update wants a direct message's channel id (D...), not the user id (U.../W...) it was posted to.
    if message.conversation[:1] in ("U", "W"):
        return " (Slack edits a direct message by its DM channel id, D..., not by the user id)"
    return ""
