"""Webhook fan-out: events per second delivered, signed, to 3 local endpoints.

``python -m benchmarks webhooks [-- --events 1000 --database-url URL]``: N deal.created events are
committed (one transaction each, on distinct deals), then the real worker services (event listener
-> outbox -> WebhookSender) deliver them to three loopback receivers that answer 204. Reported:
events per second from the first commit until every endpoint has every event (so 3×N POSTs).
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchmarks import BENCH_SECRET_KEY
from bot.bootstrap import build_app
from bot.platforms import senders, worker_services
from bot.settings import Settings
from bot.worker import run_services
from crm_core import webhooks
from crm_core.event_delivery import EventDispatcher
from crm_core.services import customers, deals


def _receiver(counter: list[int], lock: threading.Lock) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                counter[0] += 1
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench_webhooks")
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    env = {"CHATCRM_EVENTS_POLL": "0.05", "CHATCRM_OUTBOX_POLL": "0.05", "CHATCRM_LOG_LEVEL": "WARNING"}
    app = build_app(
        Settings(database_url=url, secret_key=BENCH_SECRET_KEY, webhook_allow_private=True, extra=env), migrate=True
    )
    EventDispatcher(app.session_factory, lambda: app.plugins.event_listeners(app)).run_once()
    counter, lock = [0], threading.Lock()
    servers = [_receiver(counter, lock) for _ in range(3)]
    with app.uow() as uow:
        customer_id = customers.create_customer(uow, "Bench GmbH").id
        for server in servers:
            port = server.server_address[1]
            webhooks.create(uow, None, f"http://127.0.0.1:{port}/hook", "deal.created", allow_private=True)
    import asyncio

    stop: asyncio.Event | None = None
    loop = asyncio.new_event_loop()

    def run() -> None:
        nonlocal stop
        asyncio.set_event_loop(loop)
        stop = asyncio.Event()
        loop.run_until_complete(run_services(worker_services(app, senders(app)), stop))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    started = time.perf_counter()
    for i in range(args.events):
        with app.uow() as uow:
            deals.create_deal(uow, customer_id, f"Deal {i}", 100)
    committed = time.perf_counter() - started
    expected = 3 * args.events
    while counter[0] < expected and time.perf_counter() - started < 600:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    loop.call_soon_threadsafe(lambda: stop.set() if stop else None)
    worker.join(30)
    for server in servers:
        server.shutdown()
    app.close()
    kind = url.split(":", 1)[0]
    print(
        f"webhooks ({kind}): {args.events} events x 3 endpoints: {counter[0]} POSTs in {elapsed:.1f} s "
        f"= {args.events / elapsed:.0f} events/s ({counter[0] / elapsed:.0f} deliveries/s); "
        f"committing the events alone took {committed:.1f} s"
    )
