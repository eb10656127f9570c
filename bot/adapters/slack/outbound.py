"""Posting to Slack: messages, ephemeral messages, message edits, response_url answers, chart uploads;
and what Slack's errors mean for delivery (rate limited, recipient unreachable, this message can
never go out, retry later).

Used by the interactive side (``runtime``) and by the outbox's ``SlackSender`` alike. Every Web API
call goes through one ``AsyncWebClient`` whose ``base_url`` is ``SLACK_API_URL``; the chart upload
uses the files upload v2 flow (files.getUploadURLExternal, upload, files.completeUploadExternal).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.adapters.slack.blocks import Block, fallback_text
from bot.delivery import DeliveryError, PermanentFailure, RateLimited, RecipientUnreachable, TemporaryFailure
from bot.messages import File, Image, Reply

log = logging.getLogger("chatcrm.slack")

# The recipient will never get this message: do not retry.
UNREACHABLE_ERRORS = frozenset(
    {
        "channel_not_found",
        "account_inactive",
        "is_archived",
        "user_not_found",
        "not_in_channel",
        "user_disabled",
        "cannot_dm_bot",
        "messages_tab_disabled",
    }
)
# chat.update: this message cannot be edited (gone, not the bot's, too old). Only this message
# fails; the recipient stays reachable.
UNEDITABLE_ERRORS = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
# The bot's token is wrong or lacks rights: nothing goes out until an admin fixes the installation.
AUTH_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "no_permission",
        "not_allowed_token_type",
    }
)
DEFAULT_RETRY_AFTER = 30.0
# Seconds a Web API call or a response_url answer may take.
WEB_API_TIMEOUT = 10


def delivery_error(exc: Exception) -> DeliveryError:
    """A Slack failure as the outbox understands it."""
    if isinstance(exc, SlackApiError):
        response = exc.response
        error = response.get("error") if isinstance(response.data, dict) else None
        status = response.status_code
        if status == 429 or error == "ratelimited":
            try:
                retry_after = float(response.headers.get("Retry-After", DEFAULT_RETRY_AFTER))
            except (TypeError, ValueError):
                retry_after = DEFAULT_RETRY_AFTER
            return RateLimited(retry_after, "by Slack")
        if error in UNREACHABLE_ERRORS:
            return RecipientUnreachable(f"Slack: {error}")
        if error in UNEDITABLE_ERRORS:
            return PermanentFailure(f"Slack: {error}")
        if error in AUTH_ERRORS:
            needed = response.get("needed") if error == "missing_scope" else None
            detail = f" (needs scope {needed})" if needed else ""
            return TemporaryFailure(
                f"Slack refused the bot token: {error}{detail}. Check SLACK_BOT_TOKEN and "
                "reinstall the app from slack-manifest.yml; messages wait until then."
            )
        if status >= 500:
            return TemporaryFailure(f"Slack answered HTTP {status}")
        return TemporaryFailure(f"Slack error: {error or f'HTTP {status}'}")
    if isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError | SlackClientError | OSError):
        return TemporaryFailure(f"cannot reach Slack: {type(exc).__name__}: {exc}")
    raise TypeError(f"not a Slack failure: {exc!r}")


def is_slack_failure(exc: BaseException) -> bool:
    return isinstance(exc, SlackApiError | aiohttp.ClientError | asyncio.TimeoutError | SlackClientError | OSError)


@dataclass(frozen=True)
class Destination:
    """Where an answer goes: the response_url Slack gave (preferred), else the channel."""

    channel: str | None
    # The person who asked: ephemeral answers are shown to them only.
    user: str | None = None
    response_url: str | None = None
    thread_ts: str | None = None


async def post_message(
    client: AsyncWebClient,
    channel: str,
    blocks: list[Block],
    text: str,
    *,
    thread_ts: str | None = None,
    ephemeral_for: str | None = None,
) -> str:
    """chat.postMessage (or chat.postEphemeral for one user); returns the message ts."""
    if ephemeral_for:
        response = await client.chat_postEphemeral(
            channel=channel, user=ephemeral_for, blocks=blocks, text=text, thread_ts=thread_ts
        )
        return str(response.get("message_ts") or "")
    response = await client.chat_postMessage(
        channel=channel, blocks=blocks, text=text, thread_ts=thread_ts, unfurl_links=False, unfurl_media=False
    )
    return str(response.get("ts") or "")


async def update_message(client: AsyncWebClient, channel: str, ts: str, blocks: list[Block], text: str) -> str:
    """chat.update: replace the text and blocks of the message ``ts`` in ``channel``; returns its ts."""
    response = await client.chat_update(channel=channel, ts=ts, blocks=blocks, text=text)
    return str(response.get("ts") or ts)


async def post_to_response_url(session: aiohttp.ClientSession | None, url: str, body: dict[str, Any]) -> None:
    """Answer through a response_url (valid 30 minutes, 5 times); raises TemporaryFailure when refused."""
    response = await AsyncWebhookClient(url, session=session, timeout=WEB_API_TIMEOUT).send_dict(body)
    if response.status_code != 200:
        raise TemporaryFailure(f"response_url answered HTTP {response.status_code}: {str(response.body)[:200]}")


async def upload_image(client: AsyncWebClient, channel: str, image: Image, *, thread_ts: str | None = None) -> str:
    """Upload a PNG with files upload v2 and share it in the channel; returns the file id."""
    response = await client.files_upload_v2(
        channel=channel,
        file=image.path,
        filename=image.path.rsplit("/", 1)[-1],
        title=image.title,
        alt_txt=image.alt_text,
        thread_ts=thread_ts,
    )
    files = response.get("files") or [response.get("file") or {}]
    return str(files[0].get("id") or "")


async def upload_file(client: AsyncWebClient, channel: str, file: File, *, thread_ts: str | None = None) -> str:
    """Upload a document (an export) with files upload v2 and share it in ``channel``; returns the file id."""
    response = await client.files_upload_v2(
        channel=channel, content=file.data(), filename=file.name, title=file.title or file.name, thread_ts=thread_ts
    )
    files = response.get("files") or [response.get("file") or {}]
    return str(files[0].get("id") or "")


async def direct_channel(client: AsyncWebClient, user: str) -> str:
    """The direct-message channel with ``user`` (conversations.open)."""
    response = await client.conversations_open(users=user)
    return str((response.get("channel") or {}).get("id") or user)


def response_url_body(reply: Reply, blocks: list[Block], *, replace_original: bool = False) -> dict[str, Any]:
    return {
        "response_type": "ephemeral" if reply.private else "in_channel",
        "replace_original": replace_original,
        "text": fallback_text(reply),
        "blocks": blocks,
    }
