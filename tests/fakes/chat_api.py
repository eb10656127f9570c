"""A fake chat platform API on 127.0.0.1 for outbox tests and benchmarks.

``POST /send`` with JSON ``{"conversation", "text", "key", ...}`` delivers a message and answers
``{"ok": true, "message_id": n}``. Like Telegram's Bot API it can answer 429 with
``parameters.retry_after`` (and a ``Retry-After`` header), keeps answering 429 until that time
has passed (and counts requests that came too early), answers 403 "bot was blocked by the user"
for blocked conversations, and 500 on request. Every request is recorded with its arrival time
(``time.monotonic``, which time-machine does not move) for rate measurements, with the time the
sender says it started the request (``X-Sent-At``, the same system-wide monotonic clock).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    # When it arrived, and when the sender says it started it (X-Sent-At; same monotonic clock).
    at: float
    status: int
    conversation: str
    key: str
    body: dict[str, Any]
    sent_at: float | None = None


@dataclass
class _Behaviour:
    rate_limit_at: dict[int, float] = field(default_factory=dict)
    paused_until: float = 0.0
    blocked: set[str] = field(default_factory=set)
    fail_next: int = 0


class _Server(ThreadingHTTPServer):
    # Many concurrent senders connect at once; the default backlog of 5 would reset connections.
    request_queue_size = 256
    daemon_threads = True


class FakeChatApi:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.behaviour = _Behaviour()
        self.early_requests = 0
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-chat-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeChatApi:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # Behaviour

    def rate_limit_request(self, number: int, retry_after: float) -> None:
        """The ``number``-th request (1-based) gets 429 with this retry_after."""
        self.behaviour.rate_limit_at[number] = retry_after

    def block(self, conversation: str) -> None:
        self.behaviour.blocked.add(conversation)

    def fail_next(self, count: int) -> None:
        self.behaviour.fail_next = count

    # What arrived

    @property
    def delivered(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.status == 200]

    def delivered_keys(self) -> Counter[str]:
        return Counter(r.key for r in self.delivered)

    def requests_to(self, conversation: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.conversation == conversation]

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait (real time) until ``count`` messages were delivered."""
        from tests.fakes.worker import wait_until

        return wait_until(lambda: len(self.delivered) >= count, timeout)

    def _answer(self, body: dict[str, Any], sent_at: float | None) -> tuple[int, dict[str, Any], dict[str, str]]:
        now = time.monotonic()
        b = self.behaviour
        with self._lock:
            number = len(self.requests) + 1
            conversation = str(body.get("conversation", ""))
            if now < b.paused_until:
                self.early_requests += 1
                retry = max(int(b.paused_until - now + 0.999), 1)
                status, answer = 429, {"ok": False, "error_code": 429, "parameters": {"retry_after": retry}}
            elif number in b.rate_limit_at:
                retry = b.rate_limit_at[number]
                b.paused_until = now + retry
                status, answer = (
                    429,
                    {
                        "ok": False,
                        "error_code": 429,
                        "description": "Too Many Requests",
                        "parameters": {"retry_after": retry},
                    },
                )
            elif conversation in b.blocked:
                status, answer = (
                    403,
                    {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"},
                )
            elif b.fail_next > 0:
                b.fail_next -= 1
                status, answer = 500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
            else:
                status, answer = 200, {"ok": True, "message_id": number}
            self.requests.append(Received(now, status, conversation, str(body.get("key", "")), body, sent_at))
        headers = {"Retry-After": str(answer["parameters"]["retry_after"])} if status == 429 else {}
        return status, answer, headers

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length))
                except (json.JSONDecodeError, UnicodeDecodeError, OSError):
                    body = None  # a sender killed halfway through its request
                if self.path != "/send" or not isinstance(body, dict):
                    status, answer, headers = 400, {"ok": False, "error_code": 400}, {}
                else:
                    sent_at = self.headers.get("X-Sent-At")
                    status, answer, headers = api._answer(body, float(sent_at) if sent_at else None)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                # What arrived, for a client in another process (the benchmark runs the fake
                # apart, so it does not compete with the sender for the GIL).
                with api._lock:
                    data = json.dumps(
                        [
                            {"at": r.at, "status": r.status, "conversation": r.conversation, "key": r.key}
                            for r in api.requests
                        ]
                    ).encode()
                self.send_response(200 if self.path == "/requests" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def main() -> None:
    """``python -m tests.fakes.chat_api``: serve until killed; the first line printed is the URL."""
    api = FakeChatApi().start()
    print(api.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
