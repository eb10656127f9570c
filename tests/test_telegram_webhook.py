"""POST /telegram/webhook under uvicorn: the secret token, the size limit, malformed bodies, what the
bot registers at start, re-delivered updates taking effect once, and /link pairing staff accounts."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
import time_machine

from crm_core.clock import utcnow
from crm_core.models import AuditEntry, Identity, InboundEvent, InboxStatus, Role, Ticket, TicketMessage
from crm_core.services import customers, users
from tests.support import count, rows
from tests.telegram_rig import SECRET, SUPPORT_CHAT


def test_start_registers_commands_and_the_webhook_with_its_secret(webhook_rig):
    tg = webhook_rig.fake
    names = [c["command"] for c in tg.commands]
    assert names == [*webhook_rig.app.router.top_level_names(), "cancel"]
    assert {"customer", "note", "deal", "help", "ticket", "link"} <= set(names)
    assert (
        next(c for c in tg.commands if c["command"] == "ticket")["description"] == "Show a ticket and its conversation"
    )
    assert tg.webhook["url"] == "https://crm.example/telegram/webhook"
    assert tg.webhook["secret_token"] == SECRET
    assert tg.webhook["allowed_updates"] == ["message", "callback_query"]


def test_wrong_or_missing_secret_is_refused_and_nothing_is_processed(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    before = len(tg.calls)
    update = tg.private_text(rig.customer(555, "Carla"), "hello?")
    assert rig.post(update, secret="wrong-secret").status_code == 403
    assert rig.post(update, secret=SECRET[:-1]).status_code == 403
    assert rig.post(update, secret=None).status_code == 403
    assert rig.post(update, secret=SECRET + "x").status_code == 403
    assert len(tg.calls) == before
    assert (count(rig.app, InboundEvent), count(rig.app, Ticket), count(rig.app, AuditEntry)) == (0, 0, 0)
    # The same update with the right secret is taken (it was not marked as seen by the refused ones).
    assert rig.post(update).status_code == 200
    assert count(rig.app, Ticket) == 1


def test_bodies_over_one_megabyte_are_refused(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    update = tg.private_text(rig.customer(555, "Carla"), "x")
    import json

    padded = json.dumps({**update, "padding": "x" * (1024 * 1024)}).encode()
    assert rig.post(padded).status_code == 413

    def chunks():  # no Content-Length: the limit holds while reading
        yield padded[: len(padded) // 2]
        yield padded[len(padded) // 2 :]

    import httpx

    streamed = httpx.post(
        f"{rig.base_url}/telegram/webhook", content=chunks(), headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
    )
    assert streamed.status_code == 413
    # Just under the limit is fine (an unknown field is ignored).
    fits = json.dumps({**update, "padding": "x" * (1024 * 1024 - 1000)}).encode()
    assert len(fits) <= 1024 * 1024
    assert rig.post(fits).status_code == 200
    assert count(rig.app, Ticket) == 1


def test_malformed_bodies_get_400(webhook_rig):
    rig = webhook_rig
    assert rig.post(b"{not json").status_code == 400
    assert rig.post(b"[1, 2]").status_code == 400
    assert rig.post({"message": {"text": "no update id"}}).status_code == 400
    assert count(rig.app, InboundEvent) == 0


def test_a_redelivered_update_takes_effect_once(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    sam = rig.staff(900, "Sam Support")
    with rig.app.uow() as uow:
        customers.create_customer(uow, "Acme Corp")
    carla = rig.customer(555, "Carla")
    message = tg.private_text(carla, "Help!")
    for _ in range(3):
        rig.send(message)
    command = tg.group_text(SUPPORT_CHAT, sam, '/ticket new acme "Printer jams" high')
    rig.send(command)
    rig.send(command)
    assert count(rig.app, Ticket) == 2
    assert count(rig.app, TicketMessage) == 1
    # One relay and one acknowledgement for the message, one card for the command.
    assert len(tg.sent(555)) == 1
    assert len(tg.sent(SUPPORT_CHAT)) == 2
    assert count(rig.app, InboundEvent) == 2


def test_link_pairs_a_telegram_account_with_a_crm_user(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    from tests.support import Chat

    console = Chat(rig.app)
    maria = console.user("Maria Support", Role.SUPPORT)
    issued = console.say(maria, "/link")
    assert issued.reply.private and "Valid  10 minutes, once" in issued.text
    code = issued.reply.text

    telegram_maria = rig.customer(4242, "Maria S")
    # Until linked she is a customer: her words become a ticket.
    rig.send(tg.private_text(telegram_maria, "testing"))
    assert count(rig.app, Ticket) == 1
    rig.send(tg.private_text(telegram_maria, f"/link {code}"))
    assert "Linked: this telegram account now acts as Maria Support (role support)." in tg.last_sent(4242).text
    with rig.app.uow() as uow:
        user = users.user_for_identity(uow, users.PlatformId("telegram", "4242"))
        assert user.name == "Maria Support"
    # Now she is staff: commands work, and her messages are no longer tickets.
    rig.send(tg.private_text(telegram_maria, "/ticket list open"))
    assert "Open tickets" in tg.last_sent(4242).text
    rig.send(tg.private_text(telegram_maria, "just chatting"))
    assert "Type /help" in tg.last_sent(4242).text
    assert count(rig.app, TicketMessage) == 1

    # The code worked once: someone else cannot use it again.
    rig.send(tg.private_text(rig.customer(5555, "Eve"), f"/link {code}"))
    assert "That code has already been used" in tg.last_sent(5555).text
    assert count(rig.app, Identity, Identity.external_id == "5555") == 0


def test_a_code_posted_in_a_group_is_withdrawn(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    from tests.support import Chat

    console = Chat(rig.app)
    code = console.say(console.user("Maria Support", Role.SUPPORT), "/link").reply.text
    maria = rig.customer(4242, "Maria S")
    rig.send(tg.group_text(SUPPORT_CHAT, maria, f"/link {code}"))
    assert "no longer works" in tg.last_sent(SUPPORT_CHAT).text
    rig.send(tg.private_text(maria, f"/link {code}"))
    assert "That code has already been used" in tg.last_sent(4242).text
    assert count(rig.app, Identity, Identity.platform == "telegram") == 0


def test_a_failed_update_is_kept_and_processed_again_when_telegram_sends_it_again(webhook_rig, caplog):
    rig, tg = webhook_rig, webhook_rig.fake
    update = tg.private_text(rig.customer(555, "Carla"), "Are you there?")
    # The clock stands still until the retry is due: a slow machine must not make it due early.
    start = utcnow()
    with time_machine.travel(start, tick=False):
        # The database loses a table the update needs: processing fails half way.
        with rig.app.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE ticket_messages RENAME TO ticket_messages_away")
        try:
            response = rig.post(update)
        finally:
            with rig.app.engine.begin() as connection:
                connection.exec_driver_sql("ALTER TABLE ticket_messages_away RENAME TO ticket_messages")
        # It was recorded before anything else, so the 200 loses nothing; nothing else was kept.
        assert response.status_code == 200
        [row] = rows(rig.app, InboundEvent)
        assert (row.status, row.attempts) == (InboxStatus.PENDING, 1)
        ref = row.last_error.split("ref ")[1].split(":")[0]
        assert any(f"ref={ref}" in r.getMessage() for r in caplog.records)
        assert count(rig.app, Ticket) == 0 and not tg.sent(555)
        # A copy arriving while its retry is not due yet is answered and left alone.
        assert rig.post(update).status_code == 200
        assert count(rig.app, Ticket) == 0
    # Once it is due, the copy is processed in full, once.
    with time_machine.travel(start + timedelta(seconds=5), tick=True):
        assert rig.post(update).status_code == 200
        assert rig.post(update).status_code == 200
    [ticket] = rows(rig.app, Ticket)
    assert f"Ticket #{ticket.id}" in tg.last_sent(SUPPORT_CHAT).text
    assert len(tg.sent(SUPPORT_CHAT)) == len(tg.sent(555)) == 1
    [row] = rows(rig.app, InboundEvent)
    assert (row.status, row.attempts, row.payload) == (InboxStatus.DONE, 2, None)


def test_strangers_stay_customers_whatever_role_unknown_users_get(database_url, fake_telegram):
    from tests.telegram_rig import webhook_rig_with

    with webhook_rig_with(database_url, fake_telegram, CHATCRM_UNKNOWN_ROLE="viewer") as rig:
        with rig.app.uow() as uow:
            customers.create_customer(uow, "Acme Corp", {"email": "secret@acme.example"})
        stranger = rig.customer(555, "Curious")
        for line in ("/customer acme", "/ticket list open", "/deal list open"):
            rig.send(fake_telegram.private_text(stranger, line))
            assert "Just write your question here" in fake_telegram.last_sent(555).text
        assert all("acme" not in c.text.lower() for c in fake_telegram.sent(555))
