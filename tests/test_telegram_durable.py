"""Telegram updates are kept in the inbox before they are confirmed, and what they make the bot say
goes through the outbox: long polling confirms an update only once it is recorded; an update that
fails on every attempt is poisoned, its sender told once and each admin reported to once; the
interactive lane is claimed before older bulk rows; a relay's message id is recorded when it is
marked sent."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa
import time_machine

from bot.platforms import inbox_runner
from crm_core import inbox, outbox
from crm_core.clock import utcnow
from crm_core.models import InboundEvent, InboxStatus, OutboxMessage, OutboxStatus, Role, Ticket, TicketMessage
from crm_core.models.chat_ids import is_chat
from crm_core.services import users
from tests.support import count, rows
from tests.telegram_rig import SUPPORT_CHAT


def test_polling_confirms_an_update_only_once_it_is_recorded(polling_rig):
    rig, tg = polling_rig, polling_rig.fake
    carla = rig.customer(555, "Carla")
    # The inbox cannot be written: the update must not be confirmed (it comes again).
    with rig.app.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE inbound_events RENAME TO inbound_events_away")
    try:
        tg.queue_update(tg.private_text(carla, "Hello?"))
        assert tg.wait_for(lambda: len(tg.calls_of("getUpdates")) >= 2, timeout=20), "not asked again"
    finally:
        with rig.app.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE inbound_events_away RENAME TO inbound_events")
    assert tg.wait_for(lambda: tg.sent(SUPPORT_CHAT), timeout=20), "the update was lost"
    assert count(rig.app, Ticket) == 1 and len(tg.sent(SUPPORT_CHAT)) == 1
    assert {e.status for e in rows(rig.app, InboundEvent)} == {InboxStatus.DONE}


def test_an_update_failing_every_time_is_poisoned_and_reported_once(webhook_rig, caplog):
    rig, tg = webhook_rig, webhook_rig.fake
    with rig.app.uow() as uow:
        users.ensure_user(uow, users.PlatformId("telegram", "42"), display_name="Ada Admin", role=Role.ADMIN)
    update = tg.private_text(rig.customer(555, "Carla"), "Are you there?")
    with rig.app.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE ticket_messages RENAME TO ticket_messages_away")
    try:
        assert rig.post(update).status_code == 200
        runner = inbox_runner(rig.app)
        later = utcnow()
        for _ in range(inbox.DEFAULT_MAX_ATTEMPTS + 2):
            later += timedelta(minutes=5)
            with time_machine.travel(later, tick=False):
                asyncio.run(runner.recover())
                assert rig.post(update).status_code == 200
    finally:
        with rig.app.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE ticket_messages_away RENAME TO ticket_messages")
    [event] = rows(rig.app, InboundEvent)
    assert (event.status, event.attempts) == (InboxStatus.POISONED, inbox.DEFAULT_MAX_ATTEMPTS)
    ref = event.last_error.split("ref ")[1].split(":")[0]
    assert any("poisoned" in r.getMessage() and f"ref={ref}" in r.getMessage() for r in caplog.records)
    told = rows(rig.app, OutboxMessage)
    assert sorted((m.conversation, m.priority) for m in told) == [("42", outbox.INTERACTIVE), ("555", 0)]
    [customer] = [m for m in told if m.conversation == "555"]
    assert f"(ref {ref})" in customer.payload["reply"]["text"]
    [admin] = [m for m in told if m.conversation == "42"]
    assert f"ref {ref}" in admin.payload["reply"]["text"]
    # Never processed again.
    assert count(rig.app, Ticket) == 0


def test_interactive_rows_are_claimed_before_older_bulk_rows(app):
    with app.uow() as uow:
        for i in range(3):
            outbox.enqueue(
                uow,
                idempotency_key=f"bulk-{i}",
                kind="campaign",
                platform="telegram",
                conversation=str(100 + i),
                payload={"formatted_text": "news", "format": "html"},
            )
    with app.uow() as uow:
        outbox.enqueue(
            uow,
            idempotency_key="answer",
            kind="interactive",
            platform="telegram",
            conversation="555",
            payload={"formatted_text": "answer", "format": "html"},
            priority=outbox.INTERACTIVE,
        )
    lease = timedelta(seconds=30)
    first = outbox.claim_due(
        app.session_factory, owner="a", platforms=["telegram"], limit=1, lease=lease, priority=outbox.INTERACTIVE
    )
    assert [r.idempotency_key for r in first] == ["answer"]
    assert (
        outbox.claim_due(
            app.session_factory, owner="a", platforms=["telegram"], limit=5, lease=lease, priority=outbox.INTERACTIVE
        )
        == []
    )


def test_the_relay_id_is_recorded_with_the_relay_marked_sent(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    rig.send(tg.private_text(rig.customer(555, "Carla"), "Help"))
    relay = tg.last_sent(SUPPORT_CHAT)
    [message] = rows(rig.app, TicketMessage)
    assert message.relay_message_id == str(tg.message(relay)["message_id"])
    sent = rows(rig.app, OutboxMessage, is_chat(rig.app.engine, OutboxMessage.conversation_index, str(SUPPORT_CHAT)))
    assert [(m.status, m.priority, m.platform_message_id) for m in sent] == [
        (OutboxStatus.SENT, outbox.INTERACTIVE, message.relay_message_id)
    ]
    with rig.app.uow() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 2
