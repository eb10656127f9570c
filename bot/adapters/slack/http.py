"""Slack over HTTP: ``POST /slack/events`` in ``chatcrm web`` (slash commands, interactivity and events on
one URL, as the app manifest sets them).

Every request's signature is checked before anything else, bolt's own check included: a missing,
non-numeric or more than five minutes old timestamp, or a body that does not match the signature,
gets 401 without touching the database or calling Slack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.adapters.slack.bolt_app import build_bolt_app
from bot.adapters.slack.runtime import SlackRuntime
from bot.adapters.slack.settings import SlackSettings
from bot.bootstrap import App

EVENTS_PATH = "/slack/events"
# Slack's payloads are a few kilobytes; anything far larger is not from Slack.
MAX_BODY_BYTES = 1_000_000


def signature_ok(verifier: SignatureVerifier, body: bytes, headers: Mapping[str, str]) -> bool:
    """Slack's v0 signature over ``v0:<timestamp>:<body>``, with a timestamp within five minutes of now."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    # slack_sdk would raise on a timestamp that is not a number; that is simply not Slack.
    if not timestamp.isdigit() or not signature:
        return False
    return verifier.is_valid(body, timestamp, signature)


class SlackWebMount:
    """The ``WebMount`` for Slack: its route, and the runtime started and stopped with the web app."""

    name = "slack"

    def __init__(self, app: App, settings: SlackSettings):
        self.signing_secret = settings.require_signing_secret()
        # Rejects timestamps more than five minutes off (Slack's rule against replays).
        self.verifier = SignatureVerifier(self.signing_secret)
        self.runtime = SlackRuntime(app, settings)
        self._handler: AsyncSlackRequestHandler | None = None

    @property
    def routes(self) -> Sequence[BaseRoute]:
        return [Route(EVENTS_PATH, self.events, methods=["POST"])]

    async def startup(self) -> None:
        await self.runtime.start()
        self._handler = AsyncSlackRequestHandler(build_bolt_app(self.runtime, signing_secret=self.signing_secret))

    async def shutdown(self) -> None:
        await self.runtime.close()

    async def events(self, request: Request) -> Response:
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            return JSONResponse({"error": "request too large"}, status_code=413)
        body = await request.body()
        if not signature_ok(self.verifier, body, request.headers):
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        if self._handler is None:
            return JSONResponse({"error": "starting"}, status_code=503)
        return await self._handler.handle(request)
