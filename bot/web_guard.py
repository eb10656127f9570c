"""The guard around every HTTP route of ``chatcrm web``, and what routes share to read hostile input.

- ``WebGuard``: any exception a route lets escape is logged with a reference and answered with a
  500 that carries the reference and no traceback. Hostile input must never get here: each route
  turns bad headers and bodies into a 4xx itself (the tests of hostile input check that this net
  stays unused); the net is for our own bugs.
- ``read_body``: a request body up to a limit, or None when it is larger, whether declared
  (Content-Length) or arriving without one; the route answers 413. Limits are per route (the HTTP
  API has its own, and a larger one for bulk endpoints).
- The language: every HTTP request starts in English, whatever CHATCRM_LANGUAGE says: the REST API's
  problem+json is read by machines. Chat webhooks are unaffected (the dispatcher sets each caller's).
- ``ascii_int``: the one way routes read a number from a header: ``str.isdigit`` accepts "²"
  and "٣", which ``int`` then refuses, and 400 digits overflow a float comparison.
"""

from __future__ import annotations

import logging
import re

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.dispatch import new_reference
from crm_core import i18n

log = logging.getLogger("chatcrm.web")

# Slack's payloads are a few kilobytes and a Telegram update is far below this.
MAX_BODY_BYTES = 1024 * 1024
_DIGITS = re.compile(r"[0-9]{1,18}")


def ascii_int(text: str | None, max_digits: int = 18) -> int | None:
    """``text`` as a non-negative integer if it is 1 to ``max_digits`` ASCII digits, else None."""
    if text is None or len(text) > max_digits or not _DIGITS.fullmatch(text):
        return None
    return int(text)


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes | None:
    """The body, or None if it is (or is declared) larger than ``limit`` bytes: then nothing more is read."""
    declared = request.headers.get("content-length")
    if declared is not None and (ascii_int(declared) or 0) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


class WebGuard:
    """ASGI middleware: a logged, referenced 500 for any error a route lets escape."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            with i18n.use_language(i18n.DEFAULT_LANGUAGE):
                await self.app(scope, receive, tracking_send)
        except Exception:
            ref = new_reference()
            log.exception("unhandled error ref=%s in %s %s", ref, scope.get("method"), scope.get("path"))
            if not started:
                await JSONResponse({"error": "internal error", "ref": ref}, status_code=500)(scope, receive, send)
