"""Driving the Slack adapter as Slack does: signed requests over real HTTP to ``chatcrm web``'s ASGI app
(uvicorn on an ephemeral port, in a thread), with the Web API pointed at ``tests.fakes.slack_api``.

Fixtures (import them into a test module): ``slack_api`` (a running FakeSlackApi) and ``slack``
(a ``SlackServer``: the chatcrm app with Slack configured, served over HTTP, on each database).
Payload builders make the bodies Slack sends; ``sign`` signs them as Slack does.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from bot.bootstrap import App, build_app
from bot.platforms import web_mounts
from bot.settings import Settings
from bot.web import build_web_app
from crm_core.models import Base
from crm_core.services.users import PlatformId
from tests.fakes.servers import PromptServer
from tests.fakes.slack_api import RESPONSE_URL, FakeSlackApi
from tests.support import TEST_SECRET_KEY

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-17-test-token"
ADMIN = "UADMIN1"
FORM = "application/x-www-form-urlencoded"
_ids = itertools.count(1)


def slack_env(api: FakeSlackApi, **overrides: str) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": api.base_url,
        **overrides,
    }


def sign(body: bytes, timestamp: int | str | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """The headers Slack adds: a timestamp and the v0 signature of ``v0:<timestamp>:<body>``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    # Over the raw bytes, as Slack signs (slack_sdk's helper wants a body that is UTF-8).
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def new_trigger() -> str:
    return f"{next(_ids)}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:16]}"


# ---- bodies Slack sends ------------------------------------------------------------------


def slash_command(
    command: str,
    text: str = "",
    *,
    user: str = ADMIN,
    channel: str = "C1",
    response_url: str,
    trigger_id: str | None = None,
    user_name: str = "ada",
) -> bytes:
    fields = {
        "token": "deprecated",
        "team_id": "T1",
        "team_domain": "test",
        "channel_id": channel,
        "channel_name": "directmessage" if channel.startswith("D") else "sales",
        "user_id": user,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": "A1",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id or new_trigger(),
    }
    return urlencode(fields).encode()


def block_action(
    action: dict[str, Any],
    *,
    user: str = ADMIN,
    channel: str | None = "C1",
    response_url: str | None = None,
    trigger_id: str | None = None,
    container_type: str = "message",
) -> bytes:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": "T1", "domain": "test"},
        "user": {"id": user, "username": "ada", "name": "ada", "team_id": "T1"},
        "api_app_id": "A1",
        "token": "deprecated",
        "trigger_id": trigger_id or new_trigger(),
        "container": {"type": container_type, "message_ts": "1700000000.000100", "channel_id": channel}
        if container_type == "message"
        else {"type": "view", "view_id": "VHOME"},
        "actions": [{**action, "block_id": "b1", "type": "button", "action_ts": f"{time.time():.6f}"}],
    }
    if channel:
        payload["channel"] = {"id": channel, "name": "sales"}
    if response_url:
        payload["response_url"] = response_url
    return urlencode({"payload": json.dumps(payload)}).encode()


def view_submission(
    view: dict[str, Any], values: dict[str, Any], *, user: str = ADMIN, trigger_id: str | None = None
) -> bytes:
    """Submitting ``view`` (as the app opened it) with ``values``: {input name: value}; a dict value is
    sent as is (e.g. {"type": "static_select", "selected_option": {...}})."""
    state: dict[str, Any] = {}
    for block in view["blocks"]:
        if block.get("type") != "input":
            continue
        element = block["element"]
        raw = values.get(block["block_id"])
        if isinstance(raw, dict):
            state[block["block_id"]] = {"value": raw}
        elif element["type"] == "static_select":
            chosen = [o for o in element["options"] if o["value"] == raw]
            state[block["block_id"]] = {
                "value": {"type": "static_select", "selected_option": chosen[0] if chosen else None}
            }
        elif element["type"] == "datepicker":
            state[block["block_id"]] = {"value": {"type": "datepicker", "selected_date": raw}}
        else:
            state[block["block_id"]] = {"value": {"type": element["type"], "value": raw}}
    payload = {
        "type": "view_submission",
        "team": {"id": "T1", "domain": "test"},
        "user": {"id": user, "username": "ada", "name": "ada", "team_id": "T1"},
        "api_app_id": "A1",
        "token": "deprecated",
        "trigger_id": trigger_id or new_trigger(),
        "view": {**view, "id": view.get("id", "V1"), "hash": view.get("hash", "h1"), "state": {"values": state}},
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def event_callback(event: dict[str, Any], *, event_id: str | None = None) -> bytes:
    body = {
        "token": "deprecated",
        "team_id": "T1",
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_ids):08d}",
        "event_time": int(time.time()),
        "event": event,
        "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}],
    }
    return json.dumps(body).encode()


# ---- the running app -----------------------------------------------------------------------


class AsgiServer:
    """An ASGI app served by uvicorn on 127.0.0.1 (ephemeral port) in a background thread."""

    def __init__(self, asgi_app: Any):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: without it every response waited ~40 ms for a delayed ACK
        # (uvicorn sets it itself only on sockets it binds; production binds its own).
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(asgi_app, log_config=None, access_log=False, lifespan="on")
        self.server = PromptServer(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name="chatcrm-web", daemon=True
        )

    def start(self) -> AsgiServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the web app did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


class SlackServer:
    """``chatcrm web`` with Slack configured, talking to the fake Slack API."""

    def __init__(self, app: App, api: FakeSlackApi):
        self.app = app
        self.api = api
        self.http = AsgiServer(build_web_app(app, web_mounts(app)))
        self.client = httpx.Client(base_url=self.http.url, timeout=10)
        self._responses = itertools.count(1)

    def start(self) -> SlackServer:
        self.http.start()
        return self

    def stop(self) -> None:
        self.client.close()
        self.http.stop()

    def post(
        self, body: bytes, *, content_type: str = FORM, headers: dict[str, str] | None = None, signed: bool = True
    ) -> httpx.Response:
        sent = {"Content-Type": content_type, **(sign(body) if signed else {}), **(headers or {})}
        return self.client.post("/slack/events", content=body, headers=sent)

    def new_response_url(self) -> tuple[str, str]:
        name = f"r{next(self._responses)}"
        return name, self.api.response_url(name)

    def command(
        self, line: str, *, user: str = ADMIN, channel: str = "C1", trigger_id: str | None = None
    ) -> tuple[httpx.Response, str]:
        """Type a slash command (``/customer acme``); returns the HTTP ack and the response_url's name."""
        command, _, text = line.partition(" ")
        name, url = self.new_response_url()
        ack = self.post(
            slash_command(command, text, user=user, channel=channel, response_url=url, trigger_id=trigger_id)
        )
        return ack, name

    def answer(self, name: str, count: int = 1) -> dict[str, Any]:
        """The (``count``-th) message posted to the response_url ``name``."""
        return self.api.wait_for(RESPONSE_URL, count, name=name)[count - 1].args

    def ask(self, line: str, **kwargs: Any) -> dict[str, Any]:
        """Type a command and wait for its answer at the response_url."""
        ack, name = self.command(line, **kwargs)
        assert ack.status_code == 200, ack.text
        return self.answer(name)

    def rows(self, model: type[Base]) -> int:
        with self.app.uow() as uow:
            return uow.session.scalar(sa.select(sa.func.count()).select_from(model))


def text_objects(blocks: Any, kinds: tuple[str, ...] = ("mrkdwn", "plain_text")) -> list[str]:
    """The texts of every text object (of the given kinds) in blocks, in order."""
    texts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in kinds and "text" in node:
                texts.append(node["text"])
            for value in node.values():
                if isinstance(value, dict | list):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return texts


def block_texts(message: dict[str, Any]) -> str:
    """Every text in a message's blocks, joined: what a reader sees (mrkdwn as sent)."""
    return "\n".join(text_objects(message.get("blocks", [])))


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The buttons of a message's blocks by label."""
    found: dict[str, dict[str, Any]] = {}
    for block in message.get("blocks", []):
        elements = block.get("elements", []) if block.get("type") == "actions" else [block.get("accessory") or {}]
        for element in elements:
            if element.get("type") == "button":
                found.setdefault(element["text"]["text"], element)
    return found


@pytest.fixture
def slack_api() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as api:
        yield api


@pytest.fixture
def slack(database_url: str, slack_api: FakeSlackApi) -> Iterator[SlackServer]:
    settings = Settings(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        admins=(PlatformId("slack", ADMIN),),
        extra=slack_env(slack_api),
    )
    app = build_app(settings)
    server = SlackServer(app, slack_api).start()
    try:
        yield server
    finally:
        server.stop()
        app.close()
