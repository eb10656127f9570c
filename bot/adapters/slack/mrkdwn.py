"""Slack mrkdwn both ways: escaping user data on the way out, reading Slack's markup on the way in.

Out: Slack reads ``<…>`` as links and mentions (``<!channel>`` pings everyone) and ``&`` starts an
entity, so every piece of user data goes through ``escape`` before it is put into mrkdwn. Lengths
are limited by Slack (3,000 characters per section text); ``chunks`` splits escaped text without
cutting an entity or, where possible, a line.

In: slash command text and messages arrive with ``&``, ``<``, ``>`` escaped and with mentions and
links as ``<@U123|name>``, ``<mailto:a@b.example|a@b.example>``; ``command_text`` turns them back
into what the user typed, with user mentions as ``slack:U123`` (what /role understands).
"""

from __future__ import annotations

import re

from crm_core.markup import escape_mrkdwn, unescape_mrkdwn

SECTION_TEXT_LIMIT = 3000
FIELD_TEXT_LIMIT = 2000
PLAIN_TEXT_LIMIT = 150
ELLIPSIS = "…"

_MARKUP = re.compile(r"<([^<>]*)>")
_ENTITY_TAIL = re.compile(r"&[a-z]{0,4}$")


# User data made literal in mrkdwn: the one rule in crm_core.markup, shared with the templates.
escape = escape_mrkdwn
unescape = unescape_mrkdwn


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, ending in … when cut (never in the middle of an entity)."""
    if len(text) <= limit:
        return text
    cut = _ENTITY_TAIL.sub("", text[: limit - 1])
    return cut.rstrip() + ELLIPSIS


def chunks(text: str, limit: int = SECTION_TEXT_LIMIT) -> list[str]:
    """Escaped text split into pieces of at most ``limit`` characters, at line breaks or spaces when possible."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[:limit]
        cut = max(window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = limit
            tail = _ENTITY_TAIL.search(window)
            if tail:
                cut = tail.start()
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip(" \n")
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def _markup(match: re.Match[str]) -> str:
    target, _, label = match.group(1).partition("|")
    if target.startswith("@"):
        # A user mention: the identity /role and friends understand.
        return f"slack:{target[1:]}"
    if target.startswith("#"):
        return f"#{label}" if label else target
    if target.startswith("!"):
        # @here, @channel, user groups, dates: what the user saw.
        if label:
            return label
        return "@" + target[1:].split("^", 1)[0]
    if label:
        return label
    for scheme in ("mailto:", "tel:"):
        if target.startswith(scheme):
            return target[len(scheme) :]
    return target


def command_text(slack_text: str) -> str:
    """Slack's escaped text as the user typed it; user mentions become ``slack:U123``."""
    return unescape(_MARKUP.sub(_markup, slack_text))
