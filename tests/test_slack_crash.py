"""Slack under real ``chatcrm web`` and ``chatcrm worker`` processes, on SQLite and PostgreSQL: a
signed ``/note acme …`` gets its 200, then the web process is SIGKILLed before the work behind the
ack is done. The work is caught at a known point: the fake Slack holds back its answer to
users.info, the first thing the work asks Slack (the person's locale), so the kill lands after the
200 and before the note is written, every run.

Slack does not send a command again after a 200: only the inbox row written before the ack can
bring it back. After a restart of the web process (its start-up recovery) or by the worker's
recovery, the note exists exactly once and the answer reaches the fake Slack's response_url at
least once; the same body delivered again afterwards changes nothing and is not answered again.
"""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from bot.bootstrap import build_app
from crm_core.clock import utcnow
from crm_core.models import InboundEvent, InboxStatus, Interaction
from crm_core.services import customers
from tests.fakes.slack_api import RESPONSE_URL, FakeSlackApi
from tests.fakes.worker import FAST_WORKER_ENV, SERVER_SECRET, wait_until
from tests.processes import Process, free_port
from tests.slack_support import ADMIN, FORM, new_trigger, sign, slack_env, slash_command
from tests.support import rows

# How long the fake holds back users.info: longer than any test waits for the kill.
HOLD_SECONDS = 60


class SlackStack:
    """``chatcrm web`` (and ``chatcrm worker``) with Slack over HTTP against the fake Slack API."""

    def __init__(self, database_url: str, api: FakeSlackApi, tmp: Path):
        env = {
            **os.environ,
            **SERVER_SECRET,
            **FAST_WORKER_ENV,
            **slack_env(api),
            "DATABASE_URL": database_url,
            "CHATCRM_ADMINS": f"slack:{ADMIN}",
            # A dead process's delivery is taken over a second after it was kept.
            "CHATCRM_INBOX_LEASE": "1",
            "CHATCRM_INBOX_POLL": "0.2",
            "CHATCRM_OUTBOX_LEASE": "2",
            "CHATCRM_LOG_LEVEL": "WARNING",
        }
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.web = Process(["web", "--host", "127.0.0.1", "--port", str(port)], env, tmp / "web.log")
        self.worker = Process(["worker"], env, tmp / "worker.log")

    def __enter__(self) -> SlackStack:
        return self

    def __exit__(self, *_exc: object) -> None:
        for process in (self.web, self.worker):
            process.ensure_dead()

    def start_web(self) -> None:
        self.web.start()

        def healthy() -> bool:
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(healthy, timeout=30), self.web.log()

    def post(self, body: bytes) -> int:
        # Signed now: a redelivery is signed again, as Slack would.
        headers = {"Content-Type": FORM, **sign(body)}
        return httpx.post(f"{self.url}/slack/events", content=body, headers=headers, timeout=15).status_code

    def logs(self) -> str:
        return self.web.log() + self.worker.log()


def _notes(app) -> list[str]:
    return [i.text for i in rows(app, Interaction)]


def _acme(app) -> None:
    """The customer, written with the servers' secret key (which wraps its data key), so they can use it."""
    servers = build_app(replace(app.settings, secret_key=SERVER_SECRET["CHATCRM_SECRET_KEY"]))
    try:
        with servers.uow() as uow:
            customers.create_customer(uow, "Acme GmbH")
    finally:
        servers.close()


def _lease_over(app) -> bool:
    with app.uow() as uow:
        leases = uow.session.scalars(sa.select(InboundEvent.lease_until)).all()
    return bool(leases) and all(lease is not None and lease <= utcnow() for lease in leases)


def _kill_after_the_ack(stack: SlackStack, api: FakeSlackApi, app, body: bytes) -> None:
    """Deliver ``body``; once it has its 200 and its work waits for users.info, SIGKILL the web."""
    api.slow("users.info", HOLD_SECONDS)
    assert stack.post(body) == 200
    api.wait_for("users.info", timeout=15)
    stack.web.kill()
    api.release()  # the held answer has no one to go to now
    # Killed after the 200 and before the work: no note, and the delivery is kept, pending.
    assert _notes(app) == []
    [kept] = rows(app, InboundEvent)
    assert kept.status == InboxStatus.PENDING and "/note" in (kept.payload or "")
    assert api.count(RESPONSE_URL) == 0


def _answered_once(stack: SlackStack, api: FakeSlackApi, app) -> None:
    assert wait_until(lambda: api.count(RESPONSE_URL) >= 1, timeout=30), stack.logs()
    [answer] = api.calls(RESPONSE_URL)
    assert "Acme GmbH" in answer.args["text"], answer.args
    assert _notes(app) == ["Printer jams again"]
    assert wait_until(lambda: {e.status for e in rows(app, InboundEvent)} == {InboxStatus.DONE}, timeout=10)


def _redelivery_does_nothing(stack: SlackStack, api: FakeSlackApi, app, body: bytes) -> None:
    # Delivered again (a replayed body): kept already and done, so nothing happens, not even an answer.
    assert stack.post(body) == 200
    assert _notes(app) == ["Printer jams again"]
    assert api.count(RESPONSE_URL) == 1


@pytest.mark.slow
@pytest.mark.parametrize("recovered_by", ["web restart", "worker"])
def test_a_note_acknowledged_then_killed_is_done_once_and_answered(app, database_url, tmp_path, recovered_by):
    _acme(app)
    with FakeSlackApi() as api, SlackStack(database_url, api, tmp_path) as stack:
        body = slash_command("/note", "acme Printer jams again", response_url=api.response_url("r1"))
        stack.start_web()
        _kill_after_the_ack(stack, api, app, body)
        if recovered_by == "worker":
            stack.worker.start()
            _answered_once(stack, api, app)
            # The web, started again, finds nothing left to do.
            stack.start_web()
        else:
            # Started again once the dead process's lease ran out: its start-up pass takes it up.
            assert wait_until(lambda: _lease_over(app), timeout=10)
            stack.start_web()
            _answered_once(stack, api, app)
        _redelivery_does_nothing(stack, api, app, body)


@pytest.mark.slow
def test_a_command_delivered_twice_at_once_takes_effect_once(app, database_url, tmp_path):
    """Two copies of one command (same trigger) at the same moment: one note, one answer."""
    _acme(app)
    with FakeSlackApi() as api, SlackStack(database_url, api, tmp_path) as stack:
        body = slash_command(
            "/note", "acme Printer jams again", response_url=api.response_url("r1"), trigger_id=new_trigger()
        )
        stack.start_web()
        statuses: list[int] = []
        posts = [threading.Thread(target=lambda: statuses.append(stack.post(body))) for _ in range(2)]
        for post in posts:
            post.start()
        for post in posts:
            post.join(20)
        assert statuses == [200, 200]
        assert wait_until(lambda: api.count(RESPONSE_URL) >= 1, timeout=30), stack.logs()
        assert wait_until(lambda: {e.status for e in rows(app, InboundEvent)} == {InboxStatus.DONE}, timeout=10)
        stack.web.stop()
        assert _notes(app) == ["Printer jams again"]
        assert api.count(RESPONSE_URL) == 1
