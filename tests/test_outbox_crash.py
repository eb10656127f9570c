"""A worker killed with SIGKILL while sending 1,000 queued messages, then restarted: every message
is delivered, and the only ones delivered twice are rows that were in ``sending`` at the kill
(the test reports how many). On SQLite and PostgreSQL, with a real subprocess and a real clock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm_core import outbox
from crm_core.models import OutboxMessage, OutboxStatus
from tests.fakes.chat_api import FakeChatApi
from tests.fakes.worker import FAST_WORKER_ENV, SERVER_SECRET, wait_until

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = 1000


def _spawn(database_url: str, api_url: str) -> subprocess.Popen:
    env = {
        **os.environ,
        **SERVER_SECRET,
        **FAST_WORKER_ENV,
        # Leases short enough that the restart picks up the dead worker's rows in two seconds.
        "CHATCRM_OUTBOX_LEASE": "2",
        "CHATCRM_RATE_TELEGRAM": "overall=300/s chat=50/s",
        "CHATCRM_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.outbox_worker", database_url, api_url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _count(app, status: OutboxStatus) -> int:
    with app.uow() as uow:
        return uow.session.scalar(sa.select(sa.func.count()).where(OutboxMessage.status == status))


@pytest.mark.slow
def test_a_killed_worker_delivers_everything_after_restart(app, database_url, report):
    api = FakeChatApi().start()
    messages = [
        outbox.NewMessage(
            f"crash-{i}", "test", "telegram", str(5000 + i % 50), {"formatted_text": f"message {i}", "format": "html"}
        )
        for i in range(MESSAGES)
    ]
    with app.uow() as uow:
        assert outbox.enqueue_many(uow, messages) == MESSAGES
    first = second = None
    try:
        first = _spawn(database_url, api.url)
        assert wait_until(lambda: len(api.delivered) >= 300, timeout=60), first.stderr.read1().decode()
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        time.sleep(0.1)  # requests already on the wire land
        in_sending = _count(app, OutboxStatus.SENDING)
        delivered_at_kill = len(api.delivered)
        assert delivered_at_kill < MESSAGES, "killed too late to test anything"

        second = _spawn(database_url, api.url)
        assert wait_until(lambda: _count(app, OutboxStatus.SENT) == MESSAGES, timeout=90), (
            second.stderr.read1().decode()
        )
        second.send_signal(signal.SIGTERM)
        assert second.wait(20) == 0
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        api.close()
    received = api.delivered_keys()
    sent_twice = sum(count - 1 for count in received.values())
    report(
        f"[crash test, {app.engine.dialect.name}] killed after {delivered_at_kill} deliveries with "
        f"{in_sending} rows in sending; after the restart all {len(received)} delivered, "
        f"{sent_twice} sent twice"
    )
    assert set(received) == {m.idempotency_key for m in messages}
    assert sent_twice <= in_sending
    assert max(received.values()) <= 2
