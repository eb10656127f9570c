"""A webhook receiver for tests: a small HTTP server on loopback that verifies every delivery's signature
with the ``standardwebhooks`` reference library and answers as a test scripts it (fail twice, hang, …).

Also the plugin list that loads chatcrm's webhook plugins into a test app when the installed
entry points do not list them yet (a checkout newer than its ``pip install -e .``).
"""

from __future__ import annotations

import importlib.metadata
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

import bot.adapters.webhook.plugin
import bot.handlers.webhooks

# (delivery) -> the status to answer with.
Script = Callable[["Delivery"], int]


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    body: dict
    verified: bool
    path: str


@dataclass
class Receiver:
    """``with Receiver() as r:`` serves on 127.0.0.1; ``r.url`` to subscribe, ``r.secret`` set once known."""

    script: Script = lambda _d: 200
    secret: str | None = None
    received: list[Delivery] = field(default_factory=list)
    # Set while a request is being answered (hang tests wait for it).
    arrived: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                if len(raw) < length or not raw:
                    # The sender died mid-request (a worker killed after sending the headers): a broken
                    # request, which no real receiver would take for a delivery. Seen as {} before.
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    verified = receiver.secret is not None and Webhook(receiver.secret).verify(raw, headers) is not None
                except WebhookVerificationError:
                    verified = False
                delivery = Delivery(headers.get("webhook-id", ""), json.loads(raw or b"{}"), verified, self.path)
                receiver.arrived.set()
                status = receiver.script(delivery)
                receiver.received.append(delivery)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def delivered(self, status_ok: Callable[[Delivery], bool] = lambda _d: True) -> list[Delivery]:
        return [d for d in self.received if status_ok(d)]


def webhook_plugins() -> list[object]:
    """The webhook plugin modules a test app must be given (none once they are installed entry points)."""
    installed = {ep.value for ep in importlib.metadata.entry_points(group="chatcrm")}
    return [m for m in (bot.adapters.webhook.plugin, bot.handlers.webhooks) if m.__name__ not in installed]
