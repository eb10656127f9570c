"""A local stand-in for Slack: the Web API, response_urls, file uploads and Socket Mode, recording every call.

Use it as a context manager and point the code under test at it with ``SLACK_API_URL``::

    with FakeSlackApi() as slack:
        settings = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": slack.base_url, ...}
        ...                                       # run the code under test
        post = slack.wait_for("chat.postMessage")[0]
        assert post.args["channel"] == "C1"

What it serves on 127.0.0.1 (an ephemeral port, in a thread of its own):

- ``POST /api/<method>``: every Web API method. The methods chatcrm uses answer like Slack
  (auth.test, chat.postMessage, chat.postEphemeral, chat.update, views.open, views.update,
  views.publish, files.getUploadURLExternal, files.completeUploadExternal, conversations.open,
  apps.connections.open); any other method answers ``{"ok": true}``. JSON, form and query
  arguments are all read.
- ``POST /response/<name>``: a response_url; ``response_url(name)`` makes one. Recorded as method
  ``"response_url"`` with ``name`` set.
- ``POST /upload/<file_id>``: the upload URL files.getUploadURLExternal hands out (the files upload
  v2 flow). Recorded as method ``"file_upload"`` with the bytes in ``body``.
- ``GET /socket``: a Socket Mode WebSocket; apps.connections.open returns its URL. After connecting,
  ``send_envelope(...)`` pushes a payload to the app and returns the app's ack (also recorded, as
  method ``"socket_mode.ack"``).
- ``GET /_fake/stats``: ``{"counts": {method: n}}``, for a load script in another process.
- ``GET /_fake/deliveries``: with ``--deliveries`` (standalone), every message that reached it, as
  ``[method, channel or response_url name, unix time]``: what a load script checks for duplicates,
  latency and send rates per channel. Only those three fields are kept, so a long run stays small.

Messages posted with chat.postMessage are kept, and chat.update edits them like Slack does: the
message with that ``ts`` in that channel gets the new text and blocks (``message_not_found`` for
a ts it does not hold; ``channel_not_found`` for a user id U.../W..., since Slack edits a direct
message only by its DM channel id). ``message(ts)`` is a message as it is now, ``text_of(ts)``
its text and ``history(ts)`` every version of it, the posted one first.

Failures on demand, for the next call(s) of a method::

    slack.fail("chat.postMessage", "ratelimited", status=429, retry_after=7)
    slack.fail("auth.test", "invalid_auth", times=None)        # every call from now on
    slack.fail("response_url", status=404, body="expired_url")  # a response_url refusing

Or for every message: ``slack.fail_each_message(429, 500)`` answers the first attempt of each
message (its text to one channel or response_url) with a 429 (Retry-After 1 s), the second with a
500, and takes the third. ``delivered()`` lists the messages it took (refused attempts left out).

Slowness on demand: ``slack.slow("users.info", 30)`` records the next call at once and answers it
30 s later, or as soon as ``slack.release()`` is called (a process can be killed while it waits for
that answer, or be shown to acknowledge Slack without waiting for it).

Run it alone with ``python -m tests.fakes.slack_api [--port N]``: it prints its base URL on the
first line of stdout and serves until stopped (calls are counted, not kept, in that mode).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import socket
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

RESPONSE_URL = "response_url"
FILE_UPLOAD = "file_upload"
SOCKET_ACK = "socket_mode.ack"
DEFAULT_TIMEOUT = 10.0
# What reaches someone: the calls ``/_fake/deliveries`` lists.
DELIVERY_METHODS = frozenset({RESPONSE_URL, "chat.postMessage", "chat.postEphemeral", "chat.update"})
# What ``fail_each_message`` refuses: new messages (an edit is no message of its own).
NEW_MESSAGE_METHODS = frozenset({RESPONSE_URL, "chat.postMessage", "chat.postEphemeral"})


@dataclass(frozen=True)
class Call:
    """One request the fake received."""

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    body: bytes = b""
    # The response_url name or the upload's file id.
    name: str | None = None
    received_at: float = field(default_factory=time.time)

    @property
    def where(self) -> str:
        """Where it went: the response_url's name, else the channel."""
        return self.name if self.method == RESPONSE_URL and self.name else str(self.args.get("channel") or "")

    @property
    def token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else self.args.get("token")

    def json_arg(self, name: str) -> Any:
        """An argument that slack_sdk may send JSON-encoded inside a form (blocks, view)."""
        value = self.args.get(name)
        return json.loads(value) if isinstance(value, str) else value


@dataclass
class PostedMessage:
    """A message the fake holds: every version of it (``{"text", "blocks"}``), the posted one first."""

    channel: str
    ts: str
    versions: list[dict[str, Any]]

    @property
    def text(self) -> str:
        return self.versions[-1]["text"]

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return self.versions[-1]["blocks"]

    @property
    def edits(self) -> int:
        return len(self.versions) - 1


@dataclass
class _Failure:
    error: str | None
    status: int
    retry_after: float | None
    times: int | None
    body: str | None
    extra: dict[str, Any]


class FakeSlackApi:
    def __init__(self, *, keep_calls: bool = True, keep_deliveries: bool = False):
        self.keep_calls = keep_calls
        self.keep_deliveries = keep_deliveries
        self._deliveries: list[tuple[str, str, float]] = []
        self._calls: list[Call] = []
        self._counts: Counter[str] = Counter()
        self._changed = threading.Condition()
        self._failures: dict[str, list[_Failure]] = {}
        # fail_each_message: the HTTP statuses of each message's first attempts, and the attempts so far.
        self._each_message: tuple[int, ...] = ()
        self._each_message_retry_after = 1.0
        self._attempts: Counter[tuple[str, str, str]] = Counter()
        # The calls answered with a failure (their ids), which delivered nothing.
        self._refused: set[int] = set()
        self._overrides: dict[str, dict[str, Any]] = {}
        # method -> [seconds, calls left]: answers held back that long.
        self._slow: dict[str, list[float]] = {}
        # Bumped by release(): held answers go out at once.
        self._released = 0
        # Posted messages by ts (kept only with keep_calls: a load run would pile them up).
        self._messages: dict[str, PostedMessage] = {}
        # users.info answers: Slack user id -> locale ("zh-CN"); anyone else is "en-US".
        self.locales: dict[str, str] = {}
        # Files users shared (share_file), by id: their bytes, for downloads with the bot token.
        self._shared: dict[str, bytes] = {}
        self._ts = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._socket: web.WebSocketResponse | None = None
        self.port = 0

    # ---- lifecycle --------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeSlackApi:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        self.port = sock.getsockname()[1]
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._runner = web.AppRunner(self._web_app(), access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            # Room for the connections a load test's senders open at once (aiohttp's default backlog
            # is 128; the real Slack has no such limit to speak of).
            self._loop.run_until_complete(web.SockSite(self._runner, sock, backlog=1024).start())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="fake-slack-api", daemon=True)
        self._thread.start()
        if not ready.wait(DEFAULT_TIMEOUT):
            raise RuntimeError("the fake Slack API did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            if self._socket is not None:
                asyncio.run_coroutine_threadsafe(self._socket.close(), self._loop).result(DEFAULT_TIMEOUT)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(DEFAULT_TIMEOUT)
            self._thread = None

    def __enter__(self) -> FakeSlackApi:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # ---- addresses --------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What SLACK_API_URL (slack_sdk's base_url) should be."""
        return f"{self.url}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.url}/response/{name}"

    # ---- what was received ------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        """Every recorded call (of one method), oldest first."""
        with self._changed:
            return [c for c in self._calls if method is None or c.method == method]

    def count(self, method: str | None = None) -> int:
        with self._changed:
            return sum(self._counts.values()) if method is None else self._counts[method]

    def wait_for(self, method: str, count: int = 1, timeout: float = DEFAULT_TIMEOUT, **match: Any) -> list[Call]:
        """Wait until ``count`` calls of ``method`` (with ``match``-ing args or name) arrived; returns them."""

        def matching() -> list[Call]:
            return [
                c
                for c in self._calls
                if c.method == method and all((c.name if k == "name" else c.args.get(k)) == v for k, v in match.items())
            ]

        with self._changed:
            if not self._changed.wait_for(lambda: len(matching()) >= count, timeout):
                seen = [c.method + (f"/{c.name}" if c.name else "") for c in self._calls]
                raise AssertionError(f"expected {count} x {method} {match or ''} within {timeout}s; got {seen}")
            return matching()

    def delivered(self, method: str | None = None) -> list[Call]:
        """The messages (response_url answers, posts, ephemerals, edits) the fake took, oldest first:
        what reached someone. A call answered with a failure is left out; one whose sender died
        waiting for the answer is not (Slack had it)."""
        with self._changed:
            return [
                c
                for c in self._calls
                if c.method in DELIVERY_METHODS
                and (method is None or c.method == method)
                and id(c) not in self._refused
            ]

    def message(self, ts: str) -> PostedMessage:
        """The message posted with this ts, as it is now."""
        with self._changed:
            found = self._messages.get(ts)
            assert found is not None, f"no message {ts}; the fake holds {sorted(self._messages)}"
            return PostedMessage(found.channel, found.ts, list(found.versions))

    def messages(self, channel: str | None = None) -> list[PostedMessage]:
        """Every message posted (to one channel), oldest first, as they are now."""
        with self._changed:
            held = [m for m in self._messages.values() if channel is None or m.channel == channel]
        return [self.message(m.ts) for m in held]

    def text_of(self, ts: str) -> str:
        """The current text of a posted message."""
        return self.message(ts).text

    def history(self, ts: str) -> list[dict[str, Any]]:
        """Every version of a posted message (``{"text", "blocks"}``), the posted one first."""
        return self.message(ts).versions

    def reset(self) -> None:
        """Forget recorded calls, pending failures and slowness (the messages posted stay, as in Slack)."""
        with self._changed:
            self._calls.clear()
            self._counts.clear()
            self._failures.clear()
            self._slow.clear()
            self._each_message = ()
            self._attempts.clear()
            self._refused.clear()

    # ---- behaviour --------------------------------------------------------------------

    def fail(
        self,
        method: str,
        error: str | None = None,
        *,
        status: int = 200,
        retry_after: float | None = None,
        times: int | None = 1,
        body: str | None = None,
        **extra: Any,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (None: all) with ``{"ok": false, "error": error}``.

        ``status`` sets the HTTP status (429 with ``retry_after`` sets Retry-After); ``body`` replaces
        the JSON body (response_urls answer plain text); ``extra`` adds fields (e.g. needed="files:write").
        """
        with self._changed:
            self._failures.setdefault(method, []).append(_Failure(error, status, retry_after, times, body, extra))

    def fail_each_message(self, *statuses: int, retry_after: float = 1) -> None:
        """Answer the first attempts of every new message (its text to one channel or response_url;
        chat.postMessage, chat.postEphemeral, response_urls) with these HTTP statuses in order, then
        take it: a 429 with Retry-After ``retry_after`` and Slack's "ratelimited", anything else with
        "fatal_error" (a response_url answers with plain text, as Slack's do)."""
        with self._changed:
            self._each_message, self._each_message_retry_after = statuses, retry_after
            self._attempts.clear()

    def _each_message_failure(self, call: Call) -> _Failure | None:
        if call.method not in NEW_MESSAGE_METHODS:
            return None
        with self._changed:
            if not self._each_message:
                return None
            key = (call.method, call.where, str(call.args.get("text") or ""))
            attempt = self._attempts[key]
            self._attempts[key] += 1
            if attempt >= len(self._each_message):
                return None
            status = self._each_message[attempt]
        limited = status == 429
        error = "ratelimited" if limited else "fatal_error"
        return _Failure(
            error,
            status,
            self._each_message_retry_after if limited else None,
            1,
            error if call.method == RESPONSE_URL else None,
            {},
        )

    def slow(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` only ``seconds`` after they arrived."""
        with self._changed:
            self._slow[method] = [seconds, times]

    def release(self) -> None:
        """Send every answer held back by ``slow`` now."""
        with self._changed:
            self._released += 1

    def _delay(self, method: str) -> float:
        with self._changed:
            slow = self._slow.get(method)
            if not slow:
                return 0.0
            slow[1] -= 1
            if slow[1] <= 0:
                del self._slow[method]
            return slow[0]

    async def _hold(self, method: str) -> None:
        delay = self._delay(method)
        if delay:
            released, until = self._released, time.monotonic() + delay
            while time.monotonic() < until and self._released == released:
                await asyncio.sleep(0.01)

    def answer(self, method: str, **fields: Any) -> None:
        """Add or override fields of the successful answer of ``method`` (e.g. auth.test's user_id)."""
        with self._changed:
            self._overrides.setdefault(method, {}).update(fields)

    # ---- Socket Mode ------------------------------------------------------------------

    def wait_for_socket(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self._socket is not None, timeout):
                raise AssertionError("no Socket Mode connection arrived")

    def send_envelope(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool = True,
        retry_attempt: int = 0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Call:
        """Push an envelope (``slash_commands``, ``interactive``, ``events_api``) to the connected app;
        returns the app's ack."""
        self.wait_for_socket(timeout)
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        assert self._loop is not None and self._socket is not None
        asyncio.run_coroutine_threadsafe(self._socket.send_json(envelope), self._loop).result(timeout)
        return self.wait_for(SOCKET_ACK, timeout=timeout, envelope_id=envelope_id)[0]

    # ---- the server -------------------------------------------------------------------

    def _web_app(self) -> web.Application:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/response/{name}", self._response_url)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_get("/files-pri/{file_id}/{name}", self._download)
        app.router.add_get("/socket", self._socket_mode)
        app.router.add_get("/_fake/stats", self._stats)
        app.router.add_get("/_fake/deliveries", self._deliveries_json)
        return app

    def _record(self, call: Call) -> None:
        with self._changed:
            self._counts[call.method] += 1
            if self.keep_calls:
                self._calls.append(call)
            if self.keep_deliveries and call.method in DELIVERY_METHODS:
                where = call.name if call.method == RESPONSE_URL else str(call.args.get("channel", ""))
                self._deliveries.append((call.method, where, call.received_at))
            self._changed.notify_all()

    def _take_failure(self, method: str) -> _Failure | None:
        with self._changed:
            queue = self._failures.get(method)
            if not queue:
                return None
            failure = queue[0]
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    queue.pop(0)
            return failure

    def _refuse(self, call: Call, failure: _Failure) -> web.Response:
        with self._changed:
            self._refused.add(id(call))
        return self._failure_response(failure)

    @staticmethod
    def _failure_response(failure: _Failure) -> web.Response:
        headers = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else {}
        if failure.body is not None:
            return web.Response(status=failure.status, text=failure.body, headers=headers)
        return web.json_response(
            {"ok": False, "error": failure.error, **failure.extra}, status=failure.status, headers=headers
        )

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        raw = await request.read()
        args: dict[str, Any] = dict(request.query)
        if raw:
            if request.content_type == "application/json":
                args.update(json.loads(raw))
            else:
                args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        call = Call(method, args, dict(request.headers), raw)
        self._record(call)
        await self._hold(method)
        failure = self._take_failure(method) or self._each_message_failure(call)
        if failure is None and method == "chat.update":
            failure = self._update(args)
        if failure is not None:
            return self._refuse(call, failure)
        data = {"ok": True, **self._success(method, args), **self._overrides.get(method, {})}
        return web.json_response(data)

    @staticmethod
    def _version(args: dict[str, Any]) -> dict[str, Any]:
        blocks = args.get("blocks")
        return {
            "text": args.get("text") or "",
            "blocks": json.loads(blocks) if isinstance(blocks, str) else blocks or [],
        }

    def _update(self, args: dict[str, Any]) -> _Failure | None:
        """chat.update on a held message: a new version of it, or the error Slack would answer."""
        if not self.keep_calls:
            return None
        channel, ts = str(args.get("channel") or ""), str(args.get("ts") or "")
        with self._changed:
            if channel[:1] in ("U", "W"):
                return _Failure("channel_not_found", 200, None, 1, None, {})
            message = self._messages.get(ts)
            if message is None or message.channel != channel:
                return _Failure("message_not_found", 200, None, 1, None, {})
            message.versions.append(self._version(args))
            self._changed.notify_all()
        return None

    def _success(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        ts = f"{1700000000 + next(self._ts)}.000100"
        if method == "auth.test":
            return {
                "url": "https://chatcrm-test.slack.com/",
                "team": "Test",
                "user": "chatcrm",
                "team_id": "T1",
                "user_id": "UBOT",
                "bot_id": "BBOT",
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            if self.keep_calls:
                channel = str(args.get("channel") or "")
                with self._changed:
                    self._messages[ts] = PostedMessage(channel, ts, [self._version(args)])
            return {"channel": args.get("channel"), "ts": ts, "message": {"text": args.get("text"), "ts": ts}}
        if method == "chat.postEphemeral":
            return {"message_ts": ts}
        if method == "chat.update":
            return {"channel": args.get("channel"), "ts": args.get("ts"), "text": args.get("text")}
        if method in ("views.open", "views.update", "views.publish", "views.push"):
            view = args.get("view")
            view = json.loads(view) if isinstance(view, str) else dict(view or {})
            return {"view": {**view, "id": f"V{next(self._ts)}", "hash": uuid.uuid4().hex[:12]}}
        if method == "files.getUploadURLExternal":
            file_id = f"F{next(self._ts)}"
            return {"upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = args.get("files")
            files = json.loads(files) if isinstance(files, str) else (files or [])
            return {"files": [{"id": f.get("id"), "title": f.get("title")} for f in files]}
        if method == "users.info":
            user = str(args.get("user") or "")
            answer: dict[str, Any] = {"id": user, "name": user.lower()}
            if str(args.get("include_locale", "")).lower() in ("true", "1"):
                answer["locale"] = self.locales.get(user, "en-US")
            return {"user": answer}
        if method == "conversations.open":
            return {"channel": {"id": "D" + str(args.get("users", "U")).split(",")[0].lstrip("UW")}}
        if method == "apps.connections.open":
            return {"url": f"ws://127.0.0.1:{self.port}/socket"}
        return {}

    async def _response_url(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        raw = await request.read()
        args = json.loads(raw) if raw else {}
        call = Call(RESPONSE_URL, args, dict(request.headers), raw, name=name)
        self._record(call)
        await self._hold(RESPONSE_URL)
        failure = self._take_failure(RESPONSE_URL) or self._each_message_failure(call)
        if failure is not None:
            return self._refuse(call, failure)
        return web.Response(text="ok")

    def share_file(self, name: str, content: bytes, mimetype: str = "text/csv") -> dict[str, Any]:
        """A file a user shared, as a message event's ``files`` entry; its url_private_download is served
        here (``GET /files-pri/<id>/<name>``, recorded as method ``"file_download"`` with its headers)."""
        file_id = f"F{next(self._ts):08d}"
        self._shared[file_id] = content
        return {
            "id": file_id,
            "name": name,
            "mimetype": mimetype,
            "size": len(content),
            "url_private": f"{self.url}/files-pri/{file_id}/{name}",
            "url_private_download": f"{self.url}/files-pri/{file_id}/{name}",
        }

    async def _download(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        self._record(Call("file_download", {}, dict(request.headers), b"", name=file_id))
        if file_id not in self._shared:
            return web.Response(status=404)
        if not request.headers.get("Authorization", "").startswith("Bearer xoxb-"):
            # Slack answers a download without the bot token with its login page, not the file.
            return web.Response(status=403)
        return web.Response(body=self._shared[file_id], content_type="application/octet-stream")

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        raw = await request.read()
        self._record(Call(FILE_UPLOAD, {}, dict(request.headers), raw, name=file_id))
        failure = self._take_failure(FILE_UPLOAD)
        if failure is not None:
            return self._failure_response(failure)
        return web.Response(text=f"OK - {len(raw)}")

    async def _socket_mode(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "connection_info": {"app_id": "A1"},
                "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
            }
        )
        with self._changed:
            self._socket = ws
            self._changed.notify_all()
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                data = json.loads(message.data)
                self._record(Call(SOCKET_ACK, data, {}, message.data.encode()))
        with self._changed:
            if self._socket is ws:
                self._socket = None
        return ws

    async def _stats(self, _request: web.Request) -> web.Response:
        with self._changed:
            return web.json_response({"counts": dict(self._counts)})

    async def _deliveries_json(self, _request: web.Request) -> web.Response:
        with self._changed:
            return web.json_response(list(self._deliveries))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Slack Web API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--deliveries", action="store_true", help="keep GET /_fake/deliveries")
    args = parser.parse_args(argv)
    fake = FakeSlackApi(keep_calls=False, keep_deliveries=args.deliveries).start(args.port)
    print(fake.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
