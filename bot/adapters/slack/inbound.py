"""Translate in: Slack payloads (slash commands, button presses, modal submissions, events) -> ``Request``.

Every request gets an ``inbox_key`` that a repeat of the same delivery shares, so the dispatcher
lets it take effect once: the ``trigger_id`` of a command or interaction (unique per invocation,
so a replayed body is caught too), team/channel/ts for a message (the same message may come as a
``message`` and an ``app_mention`` event), and the ``event_id`` for other events.

A person's message in a thread of the support channel (``thread_message``) is no command: it is a
plain message (``RequestKind.MESSAGE``) in that thread, which the support handlers read as a staff
reply in a ticket's thread.

``delivery_key`` is that key for a raw delivery of each kind (``COMMAND``, ``ACTION``, ``EVENT``,
``VIEW``), or None for an event chatcrm does nothing with: the runtime keeps a delivery in the inbox
under it before Slack gets its ack.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from bot.adapters.slack.blocks import Pressed
from bot.adapters.slack.modals import FormContext, submitted_values
from bot.adapters.slack.mrkdwn import command_text
from bot.messages import Origin, Request, RequestKind

PLATFORM = "slack"
HOME_COMMAND = "/home"
_LEADING_MENTION = re.compile(r"^\s*<@[A-Z0-9]+(\|[^>]*)?>[\s:,]*")
# Message subtypes that are still a person writing in a thread: "also send to the channel", a file
# with a caption. Others (edits, deletions, joins, bots) are not.
_THREAD_SUBTYPES = frozenset({"thread_broadcast", "file_share"})


# The kinds of delivery kept in the inbox: each is rebuilt into a Request from its raw body.
COMMAND = "command"
ACTION = "action"
EVENT = "event"
VIEW = "view"


def _trigger_key(trigger_id: str | None) -> str | None:
    return f"trigger:{trigger_id}" if trigger_id else None


def _body_key(body: dict[str, Any]) -> str:
    """A key for a body that carries no id of its own (Slack always sends one; a hand-made test may not)."""
    return "body:" + hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def delivery_key(kind: str, body: dict[str, Any], support_channel: str | None = None) -> str | None:
    """The inbox key of a delivery of ``kind``; None for an event chatcrm does nothing with (an edit,
    a bot's message, a message in a channel that does not mention the app, unless it is in a thread
    of the ``support_channel``), which is not kept."""
    if kind == EVENT:
        event = body.get("event") or {}
        if support_channel is not None and in_thread_of(body, support_channel):
            request = thread_message(body)
            return None if request is None else request.inbox_key
        if event.get("type") == "app_home_opened":
            opened = home_opened(body)
            return None if opened is None else opened.inbox_key or _body_key(body)
        found = message_event(body)
        return None if found is None else found.request.inbox_key
    if kind == VIEW:
        view = body.get("view") or {}
        return _trigger_key(body.get("trigger_id")) or f"view:{view.get('id')}:{view.get('hash')}"
    return _trigger_key(body.get("trigger_id")) or _body_key(body)


def is_dm(channel: str | None) -> bool:
    return channel is not None and channel.startswith("D")


def slash_command(body: dict[str, Any]) -> Request:
    channel = body.get("channel_id") or body["user_id"]
    text = command_text(body.get("text") or "")
    return Request(
        origin=Origin(
            platform=PLATFORM,
            user_external_id=body["user_id"],
            conversation=channel,
            is_private=is_dm(channel) or body.get("channel_name") == "directmessage",
            display_name=body.get("user_name"),
        ),
        text=f"{body['command']} {text}".strip(),
        can_ask=bool(body.get("trigger_id")),
        inbox_key=_trigger_key(body.get("trigger_id")),
    )


def _interaction_origin(body: dict[str, Any]) -> Origin:
    user = body["user"]
    channel = (body.get("channel") or {}).get("id")
    return Origin(
        platform=PLATFORM,
        user_external_id=user["id"],
        # Buttons on the App Home have no channel: answers go to the user's DM with the app.
        conversation=channel or user["id"],
        thread=(body.get("container") or {}).get("thread_ts"),
        is_private=channel is None or is_dm(channel),
        display_name=user.get("name") or user.get("username"),
    )


def button_press(body: dict[str, Any], pressed: Pressed) -> Request:
    return Request(
        origin=_interaction_origin(body),
        text=pressed.command,
        from_button=True,
        wants_form=pressed.wants_form,
        can_ask=bool(body.get("trigger_id")),
        inbox_key=_trigger_key(body.get("trigger_id")),
    )


def form_submission(body: dict[str, Any], where: FormContext) -> Request:
    view = body["view"]
    user = body["user"]
    channel = where.channel or user["id"]
    return Request(
        origin=Origin(
            platform=PLATFORM,
            user_external_id=user["id"],
            conversation=channel,
            thread=where.thread_ts,
            is_private=is_dm(channel) or channel == user["id"],
            display_name=user.get("name") or user.get("username"),
        ),
        text=where.command,
        # The known arguments first, then what the user typed (an input may refine a fixed one).
        form_values={**where.fixed, **submitted_values(view)},
        inbox_key=_trigger_key(body.get("trigger_id")) or f"view:{view.get('id')}:{view.get('hash')}",
    )


@dataclass(frozen=True)
class EventRequest:
    request: Request
    # The thread to answer in (mentions in channels are answered in a thread).
    thread_ts: str | None
    # Slack's file objects of the files shared with the command (a CSV for "import customers"), not yet
    # downloaded: the runtime fetches their url_private_download.
    files: tuple[dict[str, Any], ...] = ()


def message_event(body: dict[str, Any]) -> EventRequest | None:
    """A DM to the app or an @mention, read as a command ("customer acme" or "/customer acme")."""
    event = body.get("event") or {}
    # A file shared with a message is a file_share; its text is the command (a slash command cannot
    # carry a file, so "import customers" goes in the message with the upload).
    if (event.get("subtype") not in (None, "file_share")) or event.get("bot_id") or not event.get("user"):
        return None  # edits, joins, bot messages (our own included) are not commands
    if event["type"] == "message" and event.get("channel_type") != "im":
        return None
    if event.get("subtype") == "file_share" and not (event.get("text") or "").strip():
        return None  # a file alone is not a command (it was ignored before files could carry one)
    text = command_text(_LEADING_MENTION.sub("", event.get("text") or "")).strip() or "help"
    channel = event["channel"]
    direct = event.get("channel_type") == "im" or is_dm(channel)
    thread_ts = event.get("thread_ts") or (None if direct else event.get("ts"))
    return EventRequest(
        Request(
            origin=Origin(
                platform=PLATFORM,
                user_external_id=event["user"],
                conversation=channel,
                thread=thread_ts,
                is_private=direct,
            ),
            text=text if text.startswith("/") else "/" + text,
            inbox_key=_message_key(body, event),
        ),
        thread_ts,
        tuple(f for f in event.get("files") or () if isinstance(f, dict) and f.get("url_private_download")),
    )


def _message_key(body: dict[str, Any], event: dict[str, Any]) -> str:
    return f"msg:{body.get('team_id') or event.get('team')}:{event.get('channel')}:{event.get('ts')}"


def in_thread_of(body: dict[str, Any], channel: str) -> bool:
    """Whether ``body`` is a message (or mention) in a thread of ``channel``, not the thread's start."""
    event = body.get("event") or {}
    thread_ts = event.get("thread_ts")
    return event.get("channel") == channel and bool(thread_ts) and thread_ts != event.get("ts")


def thread_message(body: dict[str, Any]) -> Request | None:
    """A person's message in a channel thread, as a plain message in that thread (a leading @mention of
    the app left out); None for edits, deletions and bots' messages (our own included)."""
    event = body.get("event") or {}
    if event.get("subtype") not in (None, *_THREAD_SUBTYPES) or event.get("bot_id") or not event.get("user"):
        return None
    channel = event["channel"]
    return Request(
        origin=Origin(
            platform=PLATFORM,
            user_external_id=event["user"],
            conversation=channel,
            thread=event["thread_ts"],
            is_private=False,
        ),
        text=command_text(_LEADING_MENTION.sub("", event.get("text") or "")).strip(),
        kind=RequestKind.MESSAGE,
        message_id=event.get("ts"),
        # The same key as the message's other event (message and app_mention): it takes effect once.
        inbox_key=_message_key(body, event),
    )


def home_opened(body: dict[str, Any]) -> Request | None:
    event = body.get("event") or {}
    if event.get("tab", "home") != "home":
        return None
    return Request(
        origin=Origin(
            platform=PLATFORM,
            user_external_id=event["user"],
            conversation=event.get("channel") or event["user"],
            is_private=True,
        ),
        text=HOME_COMMAND,
        inbox_key=f"event:{body['event_id']}" if body.get("event_id") else None,
    )
