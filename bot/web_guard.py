"""The guard around every HTTP route of ``chatcrm web``: a body size limit and a safety net.

- No request body may exceed ``MAX_BODY_BYTES``: a larger declared Content-Length gets 413 before
  anything is read, and a body that grows past the limit while it arrives (no Content-Length, or a
  chunked one) stops being read and gets 413 too. This holds for plugin routes as well.
- Any exception a route lets escape is logged with a reference and answered with a 500 that
  carries the reference and no traceback. Hostile input must never get here: each route turns bad
  headers and bodies into a 4xx itself (the tests of hostile input check that this net stays
  unused); the net is for our own bugs.

``ascii_int`` is the one way routes read a number from a header: ``str.isdigit`` accepts "²"
and "٣", which ``int`` then refuses, and 400 digits overflow a float comparison.
"""

from __future__ import annotations

import logging
import re

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.dispatch import new_reference

log = logging.getLogger("chatcrm.web")

# Slack's payloads are a few kilobytes and a Telegram update is far below this.
MAX_BODY_BYTES = 1024 * 1024
_DIGITS = re.compile(r"[0-9]{1,18}")


def ascii_int(text: str | None, max_digits: int = 18) -> int | None:
    """``text`` as a non-negative integer if it is 1 to ``max_digits`` ASCII digits, else None."""
    if text is None or len(text) > max_digits or not _DIGITS.fullmatch(text):
        return None
    return int(text)


class BodyTooLarge(Exception):
    """The request body grew past MAX_BODY_BYTES while it was being read."""


class WebGuard:
    """ASGI middleware: 413 for bodies over the limit, and a logged, referenced 500 for any escaped error."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            size = ascii_int(declared)
            if size is None:
                await _answer(scope, receive, send, 400, {"error": "bad Content-Length"})
                return
            if size > self.max_body_bytes:
                await _answer(scope, receive, send, 413, {"error": "request too large"})
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _answer(scope, receive, send, 413, {"error": "request too large"})
        except Exception:
            ref = new_reference()
            log.exception("unhandled error ref=%s in %s %s", ref, scope.get("method"), scope.get("path"))
            if not started:
                await _answer(scope, receive, send, 500, {"error": "internal error", "ref": ref})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _answer(scope: Scope, receive: Receive, send: Send, status: int, body: dict[str, str]) -> None:
    await JSONResponse(body, status_code=status)(scope, receive, send)
