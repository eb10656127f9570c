"""``python -m tests.fakes.outbox_worker DATABASE_URL API_URL``: the real ``chatcrm worker``
services (bot.platforms.worker_services: scheduler and outbox sender) with the Telegram sender
pointed at a fake chat API, for tests that kill the process. Settings come from CHATCRM_* variables."""

from __future__ import annotations

import asyncio
import os
import sys

from bot.bootstrap import build_app
from bot.platforms import worker_services
from bot.settings import Settings
from bot.worker import run_services
from tests.fakes.http_sender import HttpSender


def main(argv: list[str]) -> int:
    database_url, api_url = argv
    app = build_app(Settings.from_env({**os.environ, "DATABASE_URL": database_url}))
    try:
        services = worker_services(app, {"telegram": HttpSender("telegram", api_url)})
        print("worker started", flush=True)
        asyncio.run(run_services(services))
    finally:
        app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
