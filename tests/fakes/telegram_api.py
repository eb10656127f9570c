"""A local fake of the Telegram Bot API, for tests that run the real python-telegram-bot.

Start it (``with FakeTelegram() as tg:``) and point the bot at ``tg.api_url`` (python-telegram-bot's
``base_url``, i.e. ``TELEGRAM_API_URL``). It serves ``/bot<token>/<method>`` on 127.0.0.1 with an
ephemeral port, in a thread, so sync and async tests can both use it.

What it does:
- answers getMe, sendMessage, sendPhoto, sendDocument, editMessageText, answerCallbackQuery, setMyCommands,
  setWebhook, deleteWebhook and getUpdates (long polling over ``queue_update``'d updates, with
  offsets confirming them as Telegram does);
- records every call (``calls``, ``sent(chat_id)``) with its parameters decoded from the form,
  multipart or JSON body that a client sent;
- fails on request like Telegram does: ``fail_next(method, Failure.rate_limited(7))`` (429 with
  ``retry_after``), ``blocked_chats`` (403 "bot was blocked by the user"), ``unknown_chats``
  (400 "chat not found"), ``migrated_chats`` (a group upgraded to a supergroup: 400 with
  ``migrate_to_chat_id``), or any status with ``Failure(status, description)``;
- edits the bot's messages with editMessageText like Telegram: 400 "message to edit not found"
  for an id it does not hold, "message is not modified" when the text and inline keyboard are
  already what they would become; ``text_of(chat, id)`` is a message's text now and
  ``history(chat, id)`` every version of it, the first one first;
- serves documents users sent (``private_document``): getFile and the download under ``/file/bot<token>/``;
- builds realistic updates (``private_text``, ``group_text``, ``contact``, ``callback``) whose
  messages can be replied to, including messages the bot sent.

Everything it holds is per instance: tests never share a fake.

Run it alone with ``python -m tests.fakes.telegram_api [--port N]`` (a load script's platform in a
process of its own): it prints its ``api_url`` on the first line of stdout and serves until stopped;
``GET /_fake/deliveries`` lists every successful send as ``[method, chat_id, unix time]``.
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote

DEFAULT_TOKEN = "123456:TEST-token"
# Parameters that are text even when they look like JSON ("42", "true").
_TEXT_PARAMS = {"text", "caption", "secret_token", "url", "callback_query_id", "parse_mode", "inline_message_id"}
_SENDING_METHODS = {"sendMessage", "sendPhoto", "sendDocument", "editMessageText"}


@dataclass(frozen=True)
class Failure:
    """A canned Bot API error: the HTTP status, Telegram's description and optional parameters."""

    status: int
    description: str
    parameters: dict[str, Any] | None = None

    @classmethod
    def rate_limited(cls, retry_after: int) -> Failure:
        return cls(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})

    @classmethod
    def blocked(cls) -> Failure:
        return cls(403, "Forbidden: bot was blocked by the user")

    @classmethod
    def chat_not_found(cls) -> Failure:
        return cls(400, "Bad Request: chat not found")

    @classmethod
    def migrated(cls, new_chat_id: int) -> Failure:
        return cls(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            {"migrate_to_chat_id": new_chat_id},
        )

    @classmethod
    def server_error(cls) -> Failure:
        return cls(500, "Internal Server Error")

    @classmethod
    def message_to_edit_not_found(cls) -> Failure:
        return cls(400, "Bad Request: message to edit not found")

    @classmethod
    def not_modified(cls) -> Failure:
        return cls(
            400,
            "Bad Request: message is not modified: specified new message content and reply markup "
            "are exactly the same as a current content and reply markup of the message",
        )

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    # What the fake answered: the result, or the failure.
    result: Any = None
    failure: Failure | None = None
    received_at: float = field(default_factory=time.time)

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.params.get(key, default)

    @property
    def text(self) -> str:
        return self.params.get("text") or self.params.get("caption") or ""

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """Every inline keyboard button of the call, row after row."""
        markup = self.params.get("reply_markup") or {}
        return [button for row in markup.get("inline_keyboard", []) for button in row]


class _Server(ThreadingHTTPServer):
    # Room for the connections a load test's senders open at once (socketserver's default backlog
    # is 5; the real Telegram has no such limit to speak of).
    request_queue_size = 1024


class FakeTelegram:
    def __init__(self, token: str = DEFAULT_TOKEN, bot_id: int | None = None, username: str = "chatcrm_test_bot"):
        self.token = token
        self.bot_id = bot_id if bot_id is not None else int(token.split(":")[0])
        self.username = username
        self.calls: list[Call] = []
        self.blocked_chats: set[int] = set()
        self.unknown_chats: set[int] = set()
        # Old group id -> the supergroup it became.
        self.migrated_chats: dict[int, int] = {}
        self.webhook: dict[str, Any] = {}
        # The default command menu, and every menu by its language_code (None: the default).
        self.commands: list[dict[str, Any]] = []
        self.menus: dict[str | None, list[dict[str, Any]]] = {}
        self._failures: dict[str, list[Failure]] = {}
        self._updates: list[dict[str, Any]] = []
        # Messages by (chat id, message id): what the bot sent and what users sent, for replies.
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        # Earlier versions of edited messages, by the same key, oldest first.
        self._edited: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self._ids = itertools.count(1000)
        self._update_ids = itertools.count(1)
        self._clock = itertools.count(1_760_000_000)
        self._changed = threading.Condition()
        self._closing = False
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Documents users sent, by file_id: served by getFile and GET /file/bot<token>/<file_path>.
        self.documents: dict[str, tuple[str, bytes]] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeTelegram:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = _Server(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        # Keep-alive connections of a finished client must not hold up stop().
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-telegram", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def base(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        """What python-telegram-bot takes as ``base_url`` (the token is appended to it)."""
        return f"{self.base}/bot"

    # -- scripting ---------------------------------------------------------------------------

    def fail_next(self, method: str, failure: Failure, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer with ``failure``."""
        with self._changed:
            self._failures.setdefault(method, []).extend([failure] * times)

    def queue_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Make an update available to getUpdates (long polling)."""
        with self._changed:
            self._updates.append(update)
            self._changed.notify_all()
        return update

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until ``predicate()`` holds after some call, or ``timeout`` seconds; returns whether it held."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    # -- inspection --------------------------------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        with self._changed:
            return [c for c in self.calls if c.method == method]

    def sent(self, chat_id: int | str | None = None) -> list[Call]:
        """Successful sendMessage / sendPhoto calls, to one chat or to all."""
        with self._changed:
            return [
                c
                for c in self.calls
                if c.method in ("sendMessage", "sendPhoto")
                and c.failure is None
                and (chat_id is None or str(c.params.get("chat_id")) == str(chat_id))
            ]

    def deliveries(self) -> list[tuple[str, Any, float]]:
        """Every successful send: (method, chat id, when it arrived), for a load script."""
        with self._changed:
            return [
                (c.method, c.params.get("chat_id"), c.received_at)
                for c in self.calls
                if c.method in _SENDING_METHODS and c.failure is None
            ]

    def last_sent(self, chat_id: int | str) -> Call:
        sent = self.sent(chat_id)
        assert sent, f"nothing was sent to chat {chat_id}; calls: {[c.method for c in self.calls]}"
        return sent[-1]

    def text_of(self, chat_id: int | str, message_id: int | str) -> str:
        """The text of a message as it is now (after any edits)."""
        return self.history(chat_id, message_id)[-1].get("text", "")

    def history(self, chat_id: int | str, message_id: int | str) -> list[dict[str, Any]]:
        """Every version of a message (Message objects), the one first sent first, the current one last."""
        key = (_as_int(chat_id), _as_int(message_id))
        with self._changed:
            assert key in self.messages, f"no message {key}; the fake holds {sorted(self.messages)}"
            return [*self._edited.get(key, []), self.messages[key]]

    def message(self, call: Call) -> dict[str, Any]:
        """The Message object the fake returned for a send, e.g. to reply to it or press its buttons."""
        assert isinstance(call.result, dict), f"{call.method} returned no message"
        return call.result

    # -- building updates --------------------------------------------------------------------

    @staticmethod
    def user(
        user_id: int,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> dict:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        return user

    def _update(self, **content: Any) -> dict[str, Any]:
        return {"update_id": next(self._update_ids), **content}

    def _user_message(self, chat: dict, user: dict, **content: Any) -> dict[str, Any]:
        message = {"message_id": next(self._ids), "date": next(self._clock), "chat": chat, "from": user, **content}
        with self._changed:
            self.messages[(chat["id"], message["message_id"])] = message
        return message

    @staticmethod
    def _with_command_entity(text: str) -> dict[str, Any]:
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            length = len(text.split()[0])
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return content

    def private_text(self, user: dict, text: str) -> dict[str, Any]:
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        return self._update(message=self._user_message(chat, user, **self._with_command_entity(text)))

    def group_text(
        self, chat_id: int, user: dict, text: str, reply_to: dict | None = None, title: str = "Support"
    ) -> dict[str, Any]:
        chat = {"id": chat_id, "type": "supergroup", "title": title}
        content = self._with_command_entity(text)
        if reply_to is not None:
            content["reply_to_message"] = reply_to
        return self._update(message=self._user_message(chat, user, **content))

    def private_photo(self, user: dict, caption: str | None = None) -> dict[str, Any]:
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        photo = [{"file_id": f"photo-{next(self._ids)}", "file_unique_id": "u1", "width": 90, "height": 90}]
        content: dict[str, Any] = {"photo": photo}
        if caption:
            content["caption"] = caption
        return self._update(message=self._user_message(chat, user, **content))

    def private_attachment(self, user: dict, kind: str, caption: str | None = None, **detail: Any) -> dict[str, Any]:
        """A private message carrying a ``voice``, ``document`` (``file_name=``), ``sticker`` (``emoji=``)
        or ``location`` (``latitude=``, ``longitude=``), with an optional caption."""
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        file = {"file_id": f"{kind}-{next(self._ids)}", "file_unique_id": f"u-{kind}"}
        shapes: dict[str, dict[str, Any]] = {
            "voice": {**file, "duration": 3},
            "document": {**file, **detail},
            "sticker": {**file, "type": "regular", "width": 512, "height": 512, "is_animated": False,
                        "is_video": False, **detail},
            "location": {"latitude": 52.52, "longitude": 13.405, **detail},
        }  # fmt: skip
        content: dict[str, Any] = {kind: shapes[kind]}
        if caption:
            content["caption"] = caption
        return self._update(message=self._user_message(chat, user, **content))

    def private_document(
        self,
        user: dict,
        name: str,
        content: bytes,
        caption: str | None = None,
        mime: str = "text/csv",
        size: int | None = None,
    ) -> dict[str, Any]:
        """A document the user sends the bot (``caption`` may hold a command, e.g. /import customers);
        ``size`` is the file_size the update claims (default: the content's)."""
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        file_id = f"doc-{next(self._ids)}"
        self.documents[file_id] = (name, content)
        document = {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_name": name,
            "mime_type": mime,
            "file_size": len(content) if size is None else size,
        }
        extra: dict[str, Any] = {"document": document}
        if caption:
            extra["caption"] = caption
            if caption.startswith("/"):
                extra["caption_entities"] = [{"type": "bot_command", "offset": 0, "length": len(caption.split()[0])}]
        return self._update(message=self._user_message(chat, user, **extra))

    def contact(self, user: dict, phone: str, contact_user_id: int | None = None) -> dict[str, Any]:
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        contact = {
            "phone_number": phone,
            "first_name": user["first_name"],
            "user_id": user["id"] if contact_user_id is None else contact_user_id,
        }
        return self._update(message=self._user_message(chat, user, contact=contact))

    def callback(self, user: dict, message: dict[str, Any], data: str) -> dict[str, Any]:
        """A press of an inline button with ``data`` under ``message`` (one the bot sent)."""
        query = {"id": str(next(self._ids)), "from": user, "chat_instance": "ci-1", "data": data, "message": message}
        return self._update(callback_query=query)

    def press(self, user: dict, call: Call, label: str) -> dict[str, Any]:
        """A press of the button labelled ``label`` (exactly, or as a prefix) under the message a call sent."""
        buttons = call.buttons
        chosen = [b for b in buttons if b["text"] == label] or [b for b in buttons if b["text"].startswith(label)]
        assert chosen, f"no button {label!r}; the message has {[b['text'] for b in buttons]}"
        return self.callback(user, self.message(call), chosen[0]["callback_data"])

    # -- the API -----------------------------------------------------------------------------

    def _handle(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> tuple[int, dict[str, Any]]:
        call = Call(method, params, files)
        if method != "getUpdates":
            with self._changed:
                failure = self._pop_failure(method) or self._chat_failure(method, params)
        else:
            failure = None
        if failure is None:
            try:
                call.result = self._result(method, params, files)
            except _Unknown:
                failure = Failure(404, "Not Found")
            except _Refused as refused:
                failure = refused.failure
        call.failure = failure
        if method != "getUpdates" or call.result:
            with self._changed:
                self.calls.append(call)
                self._changed.notify_all()
        if failure is not None:
            return failure.status, failure.body()
        return 200, {"ok": True, "result": call.result}

    def _pop_failure(self, method: str) -> Failure | None:
        queued = self._failures.get(method)
        return queued.pop(0) if queued else None

    def _chat_failure(self, method: str, params: dict[str, Any]) -> Failure | None:
        if method not in _SENDING_METHODS:
            return None
        chat_id = _as_int(params.get("chat_id"))
        if chat_id in self.blocked_chats:
            return Failure.blocked()
        if chat_id in self.unknown_chats:
            return Failure.chat_not_found()
        if chat_id in self.migrated_chats:
            return Failure.migrated(self.migrated_chats[chat_id])
        return None

    def _bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "chatcrm", "username": self.username}

    def _sent_message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = _as_int(params["chat_id"])
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        message = {
            "message_id": next(self._ids),
            "date": next(self._clock),
            "chat": chat,
            "from": self._bot_user(),
            **content,
        }
        if params.get("reply_markup") and "inline_keyboard" in params["reply_markup"]:
            message["reply_markup"] = params["reply_markup"]
        self.messages[(chat_id, message["message_id"])] = message
        return message

    def _result(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if method == "getMe":
            return {
                **self._bot_user(),
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        if method == "sendMessage":
            with self._changed:
                return self._sent_message(params, text=params["text"])
        if method == "sendPhoto":
            photo = [{"file_id": f"sent-photo-{next(self._ids)}", "file_unique_id": "p", "width": 800, "height": 600}]
            with self._changed:
                return self._sent_message(
                    params, photo=photo, **({"caption": params["caption"]} if "caption" in params else {})
                )
        if method == "sendDocument":
            # The document itself arrives as a multipart file under "document" (or as a file_id / URL).
            name = params.get("document:filename") or "file"
            document = {"file_id": f"sent-doc-{next(self._ids)}", "file_unique_id": "d", "file_name": name}
            document["file_size"] = len(files.get("document", b""))
            with self._changed:
                return self._sent_message(
                    params, document=document, **({"caption": params["caption"]} if "caption" in params else {})
                )
        if method == "editMessageText":
            return self._edit(params)
        if method == "answerCallbackQuery":
            return True
        if method == "setMyCommands":
            commands = params.get("commands") or []
            commands = json.loads(commands) if isinstance(commands, str) else list(commands)
            language = params.get("language_code") or None
            if language is not None and not re.fullmatch(r"[a-z]{2}", str(language)):
                raise _Refused(Failure(400, "Bad Request: invalid language code specified"))
            self.menus[language] = commands
            if language is None:
                self.commands = commands
            return True
        if method == "setWebhook":
            self.webhook = dict(params)
            return True
        if method == "deleteWebhook":
            self.webhook = {}
            return True
        if method == "getFile":
            file_id = params.get("file_id")
            if file_id not in self.documents:
                raise _Refused(Failure(400, "Bad Request: invalid file_id"))
            name, content = self.documents[file_id]
            return {
                "file_id": file_id,
                "file_unique_id": f"u-{file_id}",
                "file_size": len(content),
                "file_path": f"documents/{file_id}",
            }
        if method == "getWebhookInfo":
            return {"url": self.webhook.get("url", ""), "has_custom_certificate": False, "pending_update_count": 0}
        if method == "getUpdates":
            return self._get_updates(params)
        raise _Unknown

    def _edit(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (_as_int(params["chat_id"]), _as_int(params["message_id"]))
        markup = params.get("reply_markup") or None
        with self._changed:
            old = self.messages.get(key)
            if old is None:
                raise _Refused(Failure.message_to_edit_not_found())
            if old["from"]["id"] != self.bot_id:
                raise _Refused(Failure(400, "Bad Request: message can't be edited"))
            if "text" not in old:
                raise _Refused(Failure(400, "Bad Request: there is no text in the message to edit"))
            if old["text"] == params["text"] and old.get("reply_markup") == markup:
                raise _Refused(Failure.not_modified())
            message = {**old, "text": params["text"], "edit_date": next(self._clock)}
            message.pop("reply_markup", None)
            if markup:
                message["reply_markup"] = markup
            self._edited.setdefault(key, []).append(old)
            self.messages[key] = message
            return message

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = _as_int(params.get("offset") or 0)
        limit = _as_int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if offset:
                    # Telegram forgets updates below the offset: they are confirmed.
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                ready = self._updates[:limit]
                remaining = deadline - time.monotonic()
                if ready or remaining <= 0 or self._closing:
                    return ready
                self._changed.wait(remaining)


class _Unknown(Exception):
    pass


class _Refused(Exception):
    """The Bot API's answer to a call it refuses (e.g. an edit of a message it does not know)."""

    def __init__(self, failure: Failure):
        super().__init__(failure.description)
        self.failure = failure


def _as_int(value: Any) -> int:
    return int(value) if value is not None and str(value).lstrip("-").isdigit() else value


def _decode(key: str, value: str) -> Any:
    if key in _TEXT_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _parse_body(content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    kind = content_type.split(";")[0].strip().lower()
    if not body:
        return {}, {}
    if kind == "application/json":
        return json.loads(body), {}
    if kind == "multipart/form-data":
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_filename() is not None:
                files[name] = payload
                # The name the client gave the file (sendDocument's file name), beside the bytes.
                params[f"{name}:filename"] = part.get_filename()
            else:
                params[name] = _decode(name, payload.decode())
        return params, files
    fields = parse_qs(body.decode(), keep_blank_values=True)
    return {key: _decode(key, values[-1]) for key, values in fields.items()}, {}


class _Handler(BaseHTTPRequestHandler):
    owner: FakeTelegram
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm and the client's
    # delayed ACK hold the body back ~40 ms on every call.
    disable_nagle_algorithm = True

    def log_message(self, *_args: Iterable[Any]) -> None:  # keep test output quiet
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/_fake/deliveries":
            self._reply(200, {"ok": True, "result": self.owner.deliveries()})
            return
        parts = self.path.split("?")[0].strip("/").split("/")
        # httpx escapes the token's ":" in a download URL.
        if parts[0] == "file" and len(parts) == 4 and unquote(parts[1]) == f"bot{self.owner.token}":
            # A file download, as getFile's file_path names it.
            found = self.owner.documents.get(parts[3])
            data = found[1] if found else b""
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if len(parts) != 2 or not parts[0].startswith("bot"):
            self._reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        if parts[0][3:] != self.owner.token:
            self._reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        try:
            params, files = _parse_body(self.headers.get("Content-Type", ""), body)
        except ValueError as exc:
            self._reply(400, {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"})
            return
        status, answer = self.owner._handle(parts[1], params, files)
        self._reply(status, answer)

    do_POST = _serve
    do_GET = _serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Telegram Bot API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    args = parser.parse_args(argv)
    fake = FakeTelegram(args.token).start(args.port)
    print(fake.api_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


__all__ = ["DEFAULT_TOKEN", "Call", "Failure", "FakeTelegram"]

if __name__ == "__main__":
    main()
