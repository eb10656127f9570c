"""A ticket's whole life in its Slack thread: staff answers given anywhere else (a reply in the Telegram
staff group, ``/ticket reply`` from the console, the REST API) appear there once, an answer typed in the
thread is not echoed, and status, assignment and priority changes post a short note; an event delivered
again posts nothing new.

End to end: ``chatcrm web`` under uvicorn with the Telegram webhook and Slack's events URL (Telegram
played by the fake Bot API, Slack by the fake Web API), and ``chatcrm worker``'s services (event
dispatcher, outbox sender) running beside it, as in production; on both databases.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from bot.platforms import senders
from bot.web import build_web_app
from crm_core.models import DomainEvent, EventCursor, ExternalThread, OutboxMessage, Role, Ticket, TicketMessage
from crm_core.models.outbox import OutboxStatus
from tests.fakes.servers import serve_asgi
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.worker import WorkerThread, chat_worker, wait_until
from tests.slack_support import slack_api  # noqa: F401 - fixture
from tests.support import Chat, rows
from tests.telegram_rig import SUPPORT_CHAT, Rig, fake_telegram  # noqa: F401 - fixtures
from tests.test_slack_ticket_threads import CARLA, desk, posts, texts, thread_reply

LISTENER = "plugin:support"
ANNA = 777


@contextlib.contextmanager
def running(database_url: str, telegram, slack: FakeSlackApi, mode: str) -> Iterator[tuple[Rig, WorkerThread]]:
    """The desk of test_slack_ticket_threads, with the worker running and the support plugin's event
    listener in place (a listener starts after the events written before it was first seen)."""
    with desk(database_url, telegram, slack, mode) as rig:
        with chat_worker(rig.app, senders(rig.app), CHATCRM_EVENTS_POLL="0.05") as worker:
            assert wait_until(lambda: cursor(rig) is not None)
            yield rig, worker


@pytest.fixture
def alerts(database_url, fake_telegram, slack_api) -> Iterator[Rig]:
    with running(database_url, fake_telegram, slack_api, "alerts") as (rig, _worker):
        yield rig


@pytest.fixture
def replies(database_url, fake_telegram, slack_api) -> Iterator[Rig]:
    with running(database_url, fake_telegram, slack_api, "replies") as (rig, _worker):
        yield rig


def carla_writes(rig: Rig, slack: FakeSlackApi) -> tuple[int, str]:
    """Carla writes on Telegram: her ticket's thread starts in Slack; its id and the thread's ts."""
    carla = rig.customer(CARLA, "Carla Customer")
    rig.send(rig.fake.private_text(carla, "My printer jams"))
    assert wait_until(lambda: rows(rig.app, ExternalThread))
    [ticket] = rows(rig.app, Ticket)
    [thread] = rows(rig.app, ExternalThread)
    return ticket.id, thread.thread_id


def cursor(rig: Rig) -> int | None:
    """Where the support plugin's event listener is: the last event it was given (None: not seen yet)."""
    with rig.app.uow() as uow:
        found = uow.session.get(EventCursor, LISTENER)
        return found.last_event_id if found is not None else None


def settled(rig: Rig) -> bool:
    """The listener has seen every event and the outbox has nothing left to send."""
    with rig.app.uow() as uow:
        newest = uow.session.scalar(sa.select(sa.func.max(DomainEvent.id)))
        cursor = uow.session.get(EventCursor, LISTENER)
        waiting = uow.session.scalar(
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))
        )
    return cursor is not None and cursor.last_event_id == newest and waiting == 0


def in_thread(slack: FakeSlackApi, thread_ts: str) -> list[str]:
    """What was posted into the thread, in order."""
    return [texts(call) for call in posts(slack) if call.args.get("thread_ts") == thread_ts]


def test_a_telegram_staff_group_reply_appears_in_the_slack_thread_exactly_once_even_when_replayed(alerts, slack_api):
    rig, tg = alerts, alerts.fake
    ticket_id, thread_ts = carla_writes(rig, slack_api)
    anna = rig.staff(ANNA, "Anna Agent")
    relay = tg.last_sent(SUPPORT_CHAT)
    rig.send(tg.group_text(SUPPORT_CHAT, anna, "Open tray 2 & pull the sheet", reply_to=tg.message(relay)))
    assert tg.wait_for(lambda: "Open tray 2 &amp; pull the sheet" in [c.text for c in tg.sent(CARLA)])

    assert wait_until(lambda: len(in_thread(slack_api, thread_ts)) == 1)
    [shown] = in_thread(slack_api, thread_ts)
    # Who answered, where, and what (escaped for mrkdwn like every user text).
    assert "Anna Agent via Telegram" in shown and "Open tray 2 &amp; pull the sheet" in shown
    assert "Ticket #" not in shown  # into the thread, not a new one

    # The event is delivered again (the listener's cursor set back, as after a crash): nothing is posted twice.
    assert wait_until(lambda: settled(rig))
    with rig.app.uow() as uow:
        uow.session.get(EventCursor, LISTENER).last_event_id = 0
    assert wait_until(lambda: (cursor(rig) or 0) > 0)
    assert wait_until(lambda: settled(rig))
    assert len(in_thread(slack_api, thread_ts)) == 1
    mirrored = rows(rig.app, OutboxMessage, OutboxMessage.kind == "support.thread_mirror.alerts")
    assert [row.idempotency_key for row in mirrored] == [
        f"ticket-event:{mirrored[0].after['ref']}:thread:slack:CSUPPORT1"
    ]
    assert len(rows(rig.app, TicketMessage, TicketMessage.ticket_id == ticket_id)) == 2


def test_a_console_ticket_reply_and_status_and_assignment_changes_appear_in_the_thread(alerts, slack_api):
    rig, tg = alerts, alerts.fake
    ticket_id, thread_ts = carla_writes(rig, slack_api)
    chat = Chat(rig.app)
    olga = chat.user("Olga Owner", Role.SUPPORT)
    reply = chat.say(olga, f"/ticket reply {ticket_id} We are sending a technician.")
    assert "Sent to Carla Customer on Telegram" in reply.text
    assert tg.wait_for(lambda: "We are sending a technician." in [c.text for c in tg.sent(CARLA)])
    assert wait_until(lambda: len(in_thread(slack_api, thread_ts)) == 1)
    assert "Olga Owner via Console" in in_thread(slack_api, thread_ts)[0]

    # A status change and an assignment from the Telegram staff group: short notes, saying who did it.
    anna = rig.staff(ANNA, "Anna Agent")
    rig.send(tg.group_text(SUPPORT_CHAT, anna, f"/ticket assign {ticket_id} me"))
    rig.send(tg.group_text(SUPPORT_CHAT, anna, f"/ticket status {ticket_id} pending"))
    assert wait_until(lambda: len(in_thread(slack_api, thread_ts)) == 3)
    assigned, status = in_thread(slack_api, thread_ts)[1:]
    assert "Assigned to Anna Agent" in assigned and "Anna Agent via Telegram" in assigned
    assert "Status: open → pending" in status
    # Carla writes again: her message, and her ticket reopens by itself (a note without anyone's name).
    rig.send(tg.private_text(rig.customer(CARLA, "Carla Customer"), "Thanks!"))
    assert wait_until(lambda: len(in_thread(slack_api, thread_ts)) == 5)
    message, reopened = sorted(in_thread(slack_api, thread_ts)[3:], key=lambda text: "Status" in text)
    assert "Thanks!" in message
    assert "Status: pending → open" in reopened and "via" not in reopened


def test_a_reply_typed_in_the_thread_is_not_echoed_there(replies, slack_api):
    rig, tg = replies, replies.fake
    _ticket_id, thread_ts = carla_writes(rig, slack_api)
    thread_reply(rig, thread_ts, "Try turning it off and on")
    assert tg.wait_for(lambda: "Try turning it off and on" in [c.text for c in tg.sent(CARLA)])
    assert wait_until(lambda: settled(rig))
    # Only the delivery notice follows the answer in the thread; the answer is not posted again.
    [told] = in_thread(slack_api, thread_ts)
    assert "Sent to Carla Customer" in told and "Try turning it off and on" not in told
    # The text is encrypted at rest (crm_core.field_crypto): found by reading, not by a comparison in SQL.
    [answer] = [m for m in rows(rig.app, TicketMessage) if m.text == "Try turning it off and on"]
    assert answer.relay_conversation == "CSUPPORT1"
    assert rows(rig.app, OutboxMessage, OutboxMessage.kind.like("support.thread_mirror.%")) == []


def test_a_rest_api_reply_appears_in_the_thread_and_so_does_a_change_of_priority(alerts, slack_api):
    rig, tg = alerts, alerts.fake
    ticket_id, thread_ts = carla_writes(rig, slack_api)
    chat = Chat(rig.app)
    secret = chat.say(chat.user("Hana Helpdesk", Role.SUPPORT), "/token new helpdesk").reply.text
    assert secret and secret.startswith("crm_")
    with serve_asgi(build_web_app(rig.app, [], rig.app.plugins.routes(rig.app))) as api:
        headers = {"Authorization": f"Bearer {secret}"}
        posted = httpx.post(
            f"{api}/api/v1/tickets/{ticket_id}/replies", json={"text": "A courier is on the way"}, headers=headers
        )
        assert posted.status_code == 201, posted.text
    assert tg.wait_for(lambda: "A courier is on the way" in [c.text for c in tg.sent(CARLA)])
    anna = rig.staff(ANNA, "Anna Agent")
    rig.send(tg.group_text(SUPPORT_CHAT, anna, f"/ticket priority {ticket_id} urgent"))
    assert wait_until(lambda: len(in_thread(slack_api, thread_ts)) == 2)
    answered, raised = in_thread(slack_api, thread_ts)
    assert "Hana Helpdesk via the API" in answered and "A courier is on the way" in answered
    assert "Priority: normal → urgent" in raised and "Anna Agent via Telegram" in raised


def test_an_internal_note_appears_in_the_thread_marked_internal_and_never_reaches_the_customer(alerts, slack_api):
    rig, tg = alerts, alerts.fake
    ticket_id, thread_ts = carla_writes(rig, slack_api)
    told_carla = [call.text for call in tg.sent(CARLA)]
    chat = Chat(rig.app)
    olga = chat.user("Olga Owner", Role.SUPPORT)
    noted = chat.say(olga, f'/ticket note {ticket_id} "Carla is on the <VIP> list"')
    assert "Internal note added" in noted.text
    assert wait_until(lambda: len(in_thread(slack_api, thread_ts)) == 1)
    [shown] = in_thread(slack_api, thread_ts)
    # Marked as internal where the team reads it, with who wrote it and where; the text escaped like any.
    assert "Internal note" in shown and "Olga Owner via Console" in shown
    assert "Carla is on the &lt;VIP&gt; list" in shown
    assert "The customer does not see this note." in shown
    # A note typed in the thread itself (alerts mode: a plain reply) stands there already: not posted again.
    thread_reply(rig, thread_ts, "Checking with the warehouse first")
    assert wait_until(lambda: len(rows(rig.app, TicketMessage, TicketMessage.ticket_id == ticket_id)) == 3)
    assert wait_until(lambda: settled(rig))
    assert len(in_thread(slack_api, thread_ts)) == 1
    # Neither note reached Carla.
    assert [call.text for call in tg.sent(CARLA)] == told_carla


def test_resolving_closing_reopening_and_unassigning_appear_in_the_thread(alerts, slack_api):
    rig = alerts
    ticket_id, thread_ts = carla_writes(rig, slack_api)
    chat = Chat(rig.app)
    olga = chat.user("Olga Owner", Role.SUPPORT)
    for line in (
        "assign {id} me",
        "status {id} resolved",
        "status {id} closed",
        "status {id} open",
        "assign {id} nobody",
    ):
        chat.say(olga, "/ticket " + line.format(id=ticket_id))
    assert wait_until(lambda: len(in_thread(slack_api, thread_ts)) == 5)
    assigned, resolved, closed, reopened, unassigned = in_thread(slack_api, thread_ts)
    assert "Assigned to Olga Owner" in assigned
    assert "Status: open → resolved" in resolved
    assert "Status: resolved → closed" in closed
    assert "Status: closed → open" in reopened
    assert "No longer assigned to anyone" in unassigned and "Olga Owner via Console" in unassigned


def test_a_new_subject_appears_in_the_thread(alerts, slack_api):
    rig = alerts
    ticket_id, thread_ts = carla_writes(rig, slack_api)
    chat = Chat(rig.app)
    olga = chat.user("Olga Owner", Role.SUPPORT)
    chat.say(olga, f'/ticket edit {ticket_id} subject="Tray 2 jams"')
    assert wait_until(lambda: len(in_thread(slack_api, thread_ts)) == 1)
    [renamed] = in_thread(slack_api, thread_ts)
    assert "Subject: My printer jams → Tray 2 jams" in renamed and "Olga Owner via Console" in renamed
