"""Unreachable and moved chats, on SQLite and PostgreSQL: a 403 blocks the recipient and opts the
customer out in one transaction, from the outbox sender and from a reply sent straight from the
webhook; later campaigns skip them; writing to the bot again lifts the block but not the opt-out;
a group upgraded to a supergroup is followed to its new id everywhere; "chat not found" blocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from bot.adapters.telegram.sender import TelegramSender
from bot.adapters.telegram.settings import TelegramSettings
from bot.outbox_sender import OutboxSender, SenderSettings
from bot.rate_limit import PlatformLimits, Rate
from crm_core import outbox, scheduling
from crm_core.models import (
    AuditEntry,
    BlockedRecipient,
    CampaignRecipient,
    Consent,
    DigestFrequency,
    DigestSubscription,
    OutboxMessage,
    OutboxStatus,
    Role,
    TicketMessage,
)
from crm_core.services import consent, customers, reachability, segments
from tests.fakes.chat_api import FakeChatApi
from tests.fakes.http_sender import HttpSender
from tests.fakes.worker import WorkerThread, wait_until
from tests.support import rows
from tests.telegram_rig import SUPPORT_CHAT

FAST = PlatformLimits(overall=Rate(1000, 1), per_chat=Rate(200, 1))
BLOCKED = "Forbidden: bot was blocked by the user"


def blocked(app) -> list[BlockedRecipient]:
    with app.uow() as uow:
        # (Ordered here: the conversation is encrypted, so the database cannot sort by it.)
        return sorted(uow.session.scalars(sa.select(BlockedRecipient)), key=lambda b: b.conversation)


def _customer(app, name: str, telegram: str) -> int:
    with app.uow() as uow:
        customer = customers.create_customer(uow, name, {"country": "DE"})
        consent.opt_in(uow, customer.id, "telegram", telegram, "started the bot")
        return customer.id


def _deliver(app) -> list[str]:
    """What the worker's sender does with campaign rows (claim, prepare, mark sent): the chats sent to."""
    sent = []
    while claimed := outbox.claim_due(
        app.session_factory,
        owner="t",
        platforms=["telegram"],
        limit=500,
        lease=timedelta(minutes=1),
        # The runs were made a second ahead (see _start_campaign).
        now=datetime.now(UTC) + timedelta(seconds=5),
    ):
        for row in claimed:
            prepared = outbox.prepare(app.session_factory, row, "t", app.plugins.preparers)
            if prepared is not None:
                outbox.mark_sent(app.session_factory, prepared.id, "t", "m")
                sent.append(prepared.conversation)
    return sent


def _start_campaign(app, chat, manager, name: str) -> None:
    said = chat.say(manager, f"/campaign new {name} segment=everyone template=campaign_announcement at=now")
    assert "drafted" in said.text, said.text
    assert "started" in chat.say(manager, f"/campaign start {name}").text
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=1), tick=False):
        scheduling.run_due(app.session_factory, tasks=app.plugins.tasks)


def test_a_block_opts_out_cancels_waiting_campaign_messages_and_later_campaigns_skip_them(app, chat):
    manager = chat.user("Mia Manager", Role.MANAGER)
    carla, dan = _customer(app, "Carla", "1001"), _customer(app, "Dan", "1002")
    with app.uow() as uow:
        segments.create(uow, "everyone", "all", None)
    _start_campaign(app, chat, manager, "first")
    assert {r.customer_id for r in rows(app, CampaignRecipient)} == {carla, dan}

    with app.uow() as uow:
        assert reachability.recipient_unreachable(uow, "telegram", "1001", BLOCKED) == 1
    with app.uow() as uow:
        assert outbox.blocked_recipient(uow.session, "telegram", "1001").reason == BLOCKED
        row = uow.session.scalars(sa.select(Consent).where(Consent.customer_id == carla)).one()
        assert (row.status, row.opted_out_source) == ("opted_out", f"blocked ({BLOCKED})")
        # Her waiting campaign message is cancelled as by /stop.
        carlas = uow.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.customer_id == carla)).one()
        assert (carlas.status, carlas.last_error) == (OutboxStatus.CANCELLED, consent.OPTED_OUT_ERROR)
        audited = uow.session.scalars(
            sa.select(AuditEntry).where(AuditEntry.entity_type == "customer_consents", AuditEntry.action == "update")
        ).all()
        assert any((a.after or {}).get("opted_out_source") == f"blocked ({BLOCKED})" for a in audited)
    assert _deliver(app) == ["1002"]

    # A campaign started after the block does not even queue her.
    _start_campaign(app, chat, manager, "second")
    second_run = [r for r in rows(app, CampaignRecipient) if r.run_id != rows(app, CampaignRecipient)[0].run_id]
    assert {r.customer_id for r in second_run} == {dan}
    assert _deliver(app) == ["1002"]


@pytest.fixture
def api():
    fake = FakeChatApi().start()
    yield fake
    fake.close()


def test_a_403_in_the_outbox_sender_blocks_and_opts_out_in_one_go(app, api):
    carla = _customer(app, "Carla", "666")
    api.block("666")
    with app.uow() as uow:
        outbox.enqueue(
            uow,
            idempotency_key="rating-request",
            kind="test",
            platform="telegram",
            conversation="666",
            payload={"formatted_text": "How did we do?"},
            customer_id=carla,
        )
    sender = OutboxSender(
        app.engine,
        app.session_factory,
        {"telegram": HttpSender("telegram", api.url)},
        SenderSettings(limits={"telegram": FAST}, poll_seconds=0.05),
    )
    with WorkerThread([sender]):
        assert wait_until(lambda: [r.status for r in rows(app, OutboxMessage)] == [OutboxStatus.BLOCKED])
    [row] = rows(app, Consent)
    assert row.status == "opted_out" and row.opted_out_source.startswith("blocked (")
    assert [b.conversation for b in blocked(app)] == ["666"]


def test_a_staff_reply_refused_by_a_blocker_blocks_them_and_writing_again_lifts_only_the_block(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    sam = rig.staff(900, "Sam Support")
    carla = rig.customer(555, "Carla Customer")
    rig.send(tg.private_text(carla, "/start"))
    rig.send(tg.private_text(carla, "Where is my parcel?"))
    relay = tg.last_sent(SUPPORT_CHAT)

    tg.blocked_chats.add(555)
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "It ships today", reply_to=tg.message(relay)))
    assert "Not delivered to Carla Customer" in tg.last_sent(SUPPORT_CHAT).text
    assert [b.conversation for b in blocked(rig.app)] == ["555"]
    [row] = rows(rig.app, Consent)
    assert (row.status, row.opted_out_source) == ("opted_out", f"blocked ({BLOCKED})")

    # She unblocks the bot and writes: support answers reach her again, marketing does not.
    tg.blocked_chats.discard(555)
    rig.send(tg.private_text(carla, "Hello again"))
    assert blocked(rig.app) == []
    assert rows(rig.app, Consent)[0].status == "opted_out"
    rig.send(tg.private_text(carla, "/start"))
    assert rows(rig.app, Consent)[0].status == "opted_in"


def test_a_support_group_upgraded_to_a_supergroup_is_followed_to_its_new_id(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    supergroup = -1009009009
    sam = rig.staff(900, "Sam Support")
    carla = rig.customer(555, "Carla Customer")
    tg.migrated_chats[SUPPORT_CHAT] = supergroup
    rig.send(tg.private_text(carla, "Where is my parcel?"))
    # The relay is sent again to the supergroup and recorded there.
    relay = tg.last_sent(supergroup)
    assert "Where is my parcel?" in relay.text
    [inbound] = rows(rig.app, TicketMessage)
    assert inbound.relay_conversation == str(supergroup)
    # Staff answer from the supergroup, which is now the support chat.
    rig.send(tg.group_text(supergroup, sam, "It ships today", reply_to=tg.message(relay)))
    assert tg.last_sent(555).text == "It ships today"


def test_the_outbox_sender_follows_a_moved_group_and_moves_what_waits_for_it(app, fake_telegram):
    old, new = "-100200", "-100300"
    fake_telegram.migrated_chats[int(old)] = int(new)
    with app.uow() as uow:
        uow.session.add(DigestSubscription(platform="telegram", conversation=old, frequency=DigestFrequency.DAILY))
        for i in range(3):
            outbox.enqueue(
                uow,
                idempotency_key=f"digest-{i}",
                kind="test",
                platform="telegram",
                conversation=old,
                payload={"formatted_text": f"digest {i}", "format": "html"},
            )
    telegram = TelegramSender(
        TelegramSettings(token=fake_telegram.token, api_url=fake_telegram.api_url), app.session_factory
    )
    sender = OutboxSender(
        app.engine,
        app.session_factory,
        {"telegram": telegram},
        SenderSettings(limits={"telegram": FAST}, poll_seconds=0.05),
    )
    with WorkerThread([sender]):
        assert wait_until(lambda: {r.status for r in rows(app, OutboxMessage)} == {OutboxStatus.SENT})
    assert sorted(c.text for c in fake_telegram.sent(int(new))) == ["digest 0", "digest 1", "digest 2"]
    assert {r.conversation for r in rows(app, OutboxMessage)} == {new}
    assert max(r.attempts for r in rows(app, OutboxMessage)) == 1, "a move is not a failed attempt"
    assert [d.conversation for d in rows(app, DigestSubscription)] == [new]
    assert blocked(app) == []


def test_chat_not_found_blocks_the_chat_with_its_reason(app, fake_telegram):
    fake_telegram.unknown_chats.add(4242)
    with app.uow() as uow:
        outbox.enqueue(
            uow,
            idempotency_key="lost",
            kind="test",
            platform="telegram",
            conversation="4242",
            payload={"formatted_text": "hello", "format": "html"},
        )
    telegram = TelegramSender(
        TelegramSettings(token=fake_telegram.token, api_url=fake_telegram.api_url), app.session_factory
    )
    sender = OutboxSender(
        app.engine,
        app.session_factory,
        {"telegram": telegram},
        SenderSettings(limits={"telegram": FAST}, poll_seconds=0.05),
    )
    with WorkerThread([sender]):
        assert wait_until(lambda: [r.status for r in rows(app, OutboxMessage)] == [OutboxStatus.BLOCKED])
    [gone] = blocked(app)
    assert gone.conversation == "4242" and "chat not found" in gone.reason.lower()
