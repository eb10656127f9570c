"""Escaping user data for the markups messages are written in: the one place each rule lives.

Templates (crm_core.templating) and the adapters' renderers both escape through these, so a value
is made literal the same way whether it reaches Slack through a template or a card.
"""

from __future__ import annotations

import html


def escape_mrkdwn(text: str) -> str:
    """Slack mrkdwn: user data made literal (no links, mentions or entities)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape_mrkdwn(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def escape_html(text: str) -> str:
    """Telegram's HTML subset (and any HTML text node): &, < and > made literal."""
    return html.escape(text, quote=False)
