"""Is this JSON shaped like a Telegram update, in the parts chatcrm reads? (the webhook's 400 check)

python-telegram-bot builds an ``Update`` from almost anything (``"text": 5``, ``"chat": {"id": "abc"}``)
and the mistake surfaces later, deep in the handling, where it looks like our failure (a 500, and
Telegram delivering the update again and again). So the webhook checks the types of the fields the
adapter reads before handing the update over; a wrong one is the sender's fault, answered 400.
Fields chatcrm does not read are left to python-telegram-bot (it parses what it knows of them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# Telegram's ids fit in 52 bits; anything past 64 is not from Telegram (and not storable as BIGINT).
_MAX_ID = 2**63 - 1
# A message replying to a message: Telegram sends one level; allow a little more, never unbounded.
_MAX_REPLY_DEPTH = 3

# A rule: does this value (at this depth of replies) have the right type?
Rule = Callable[[Any, int], bool]


def _scalar(test: Callable[[Any], bool]) -> Rule:
    return lambda value, _depth: test(value)


# bool is an int in Python, not in JSON.
_int = _scalar(lambda v: type(v) is int and -_MAX_ID <= v <= _MAX_ID)
_number = _scalar(lambda v: type(v) in (int, float))
_str = _scalar(lambda v: isinstance(v, str))
_bool = _scalar(lambda v: isinstance(v, bool))


def _shape(spec: dict[str, Rule], required: tuple[str, ...] = ()) -> Rule:
    """An object whose ``required`` keys are there and whose known keys (when not null) follow their rule."""

    def check(value: Any, depth: int) -> bool:
        return (
            isinstance(value, dict)
            and all(key in value for key in required)
            and all(value.get(key) is None or rule(value[key], depth) for key, rule in spec.items())
        )

    return check


def _list_of(rule: Rule) -> Rule:
    return lambda value, depth: isinstance(value, list) and all(rule(item, depth) for item in value)


_user = _shape({"id": _int, "is_bot": _bool, "first_name": _str, "last_name": _str, "username": _str}, ("id",))
_chat = _shape({"id": _int, "type": _str, "title": _str}, ("id", "type"))
_entity = _shape({"type": _str, "offset": _int, "length": _int}, ("type", "offset", "length"))
_message_fields = _shape(
    {
        "message_id": _int,
        "date": _int,
        "chat": _chat,
        "from": _user,
        "text": _str,
        "caption": _str,
        "entities": _list_of(_entity),
        "caption_entities": _list_of(_entity),
        "message_thread_id": _int,
        "is_topic_message": _bool,
        "contact": _shape({"phone_number": _str, "user_id": _int}, ("phone_number",)),
        "document": _shape({"file_name": _str}),
        "sticker": _shape({"emoji": _str}),
        "location": _shape({"latitude": _number, "longitude": _number}, ("latitude", "longitude")),
        "photo": _list_of(_shape({})),
    },
    ("message_id", "date", "chat"),
)


def _message(value: Any, depth: int) -> bool:
    if depth > _MAX_REPLY_DEPTH or not _message_fields(value, depth):
        return False
    replied = value.get("reply_to_message")
    return replied is None or _message(replied, depth + 1)


_callback = _shape({"id": _str, "from": _user, "data": _str, "message": _message}, ("id", "from"))
_update = _shape(
    {
        "update_id": _int,
        "message": _message,
        "edited_message": _message,
        "channel_post": _message,
        "edited_channel_post": _message,
        "callback_query": _callback,
    },
    ("update_id",),
)


def looks_like_update(data: Any) -> bool:
    """True when ``data`` (parsed JSON) has an int ``update_id`` and every field chatcrm reads has its type."""
    return _update(data, 0)
