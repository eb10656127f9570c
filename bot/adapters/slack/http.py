"""Slack over HTTP: ``POST /slack/events`` in ``chatcrm web`` (slash commands, interactivity and events on
one URL, as the app manifest sets them).

Every request's signature is checked before anything else, bolt's own check included: a missing,
malformed (not 1-12 ASCII digits) or more than five minutes old timestamp, a signature that is not
ASCII, or a body that does not match the signature, gets 401 without touching the database or
calling Slack. The signature is computed over the raw bytes, so a body that is not UTF-8 is simply
not Slack's. A correctly signed body that is not UTF-8, not a form or not a JSON object gets 400
before bolt sees it. One bolt cannot read (``"event": "type"``, ``"actions": 5``: bolt's matchers,
and even its error handler, index into the payload) fails inside bolt, whose answer would be a
500: here bolt's errors are raised out of it, and the kinds of error a payload of the wrong shape
raises get 400, logged with a reference and the traceback (so a bug of ours raising the same kinds
is still seen). Anything else (the network, the database) is left to ``bot.web_guard``'s 500.
A body over 1 MiB gets 413, declared or not.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Mapping, Sequence

from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request, to_starlette_response
from slack_bolt.async_app import AsyncApp
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.adapters.slack.bolt_app import build_bolt_app
from bot.adapters.slack.runtime import SlackRuntime
from bot.adapters.slack.settings import SlackSettings
from bot.bootstrap import App
from bot.dispatch import new_reference
from bot.web_guard import ascii_int, read_body

log = logging.getLogger("chatcrm.slack")

EVENTS_PATH = "/slack/events"
# Slack's rule against replays: a request more than five minutes old (or ahead) is refused.
MAX_CLOCK_SKEW = 5 * 60
# A Unix time in seconds has 10 digits until the year 2286.
TIMESTAMP_DIGITS = 12
# What reading a body that is not what Slack sends raises (in bolt's parsing, matchers and listeners).
MALFORMED = (ValueError, RecursionError, TypeError, AttributeError, KeyError, IndexError)


def signature_ok(secret: bytes, body: bytes, headers: Mapping[str, str], now: float | None = None) -> bool:
    """Slack's v0 signature over ``v0:<timestamp>:<body>``, with a timestamp within five minutes of now."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    seconds = ascii_int(timestamp, TIMESTAMP_DIGITS)
    if seconds is None or not signature or not signature.isascii():
        return False
    if abs((time.time() if now is None else now) - seconds) > MAX_CLOCK_SKEW:
        return False
    expected = "v0=" + hmac.new(secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())


class SlackWebMount:
    """The ``WebMount`` for Slack: its route, and the runtime started and stopped with the web app."""

    name = "slack"

    def __init__(self, app: App, settings: SlackSettings):
        self.signing_secret = settings.require_signing_secret()
        self.runtime = SlackRuntime(app, settings)
        self._bolt: AsyncApp | None = None

    @property
    def routes(self) -> Sequence[BaseRoute]:
        return [Route(EVENTS_PATH, self.events, methods=["POST"])]

    async def startup(self) -> None:
        await self.runtime.start()
        bolt = build_bolt_app(self.runtime, signing_secret=self.signing_secret)
        bolt.error(_raise)
        self._bolt = bolt
        # Deliveries a dead process kept but did not finish are taken up now (their lease ran out).
        self.runtime.recover_soon()

    async def shutdown(self) -> None:
        await self.runtime.close()

    async def events(self, request: Request) -> Response:
        body = await read_body(request)
        if body is None:
            return JSONResponse({"error": "request too large"}, status_code=413)
        if not signature_ok(self.signing_secret.encode(), body, request.headers):
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        if self._bolt is None:
            return JSONResponse({"error": "starting"}, status_code=503)
        try:
            bolt_request = to_async_bolt_request(request, body)
            if not isinstance(bolt_request.body, dict):
                raise TypeError(f"a {type(bolt_request.body).__name__}, not an object")
            return to_starlette_response(await self._bolt.async_dispatch(bolt_request))
        except MALFORMED as exc:
            ref = new_reference()
            log.warning("signed Slack request that could not be read, answered 400 (ref %s)", ref, exc_info=exc)
            return JSONResponse({"error": "malformed request", "ref": ref}, status_code=400)


async def _raise(error: Exception) -> None:
    """bolt's error handler for HTTP: out of bolt, to ``events`` (and the guard), instead of bolt's 500."""
    raise error
