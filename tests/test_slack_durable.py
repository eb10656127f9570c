"""Slack's deliveries kept in the inbox and answered through the outbox, in one ``chatcrm web``
(in-process, over real HTTP, on both databases; the kills are in ``test_slack_crash``).

A command is in the inbox before its 200; its answer is an interactive outbox row of the command's
transaction, keyed by the delivery, sent right after the commit. A refused command (no role) is
recorded with its answer, so a redelivery is not answered again.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

from bot.adapters.slack.inbound import COMMAND, delivery_key
from crm_core import outbox
from crm_core.models import InboundEvent, InboxStatus, Interaction, OutboxMessage, OutboxStatus
from crm_core.services import customers
from tests.fakes.slack_api import RESPONSE_URL
from tests.fakes.worker import wait_until
from tests.slack_support import (  # noqa: F401 - fixtures
    ADMIN,
    SlackServer,
    block_texts,
    new_trigger,
    slack,
    slack_api,
    slash_command,
)


def _inbox(slack: SlackServer, key: str) -> InboundEvent:
    with slack.app.uow() as uow:
        return uow.session.scalars(sa.select(InboundEvent).where(InboundEvent.key == key)).one()


def _status(slack: SlackServer) -> OutboxStatus | None:
    with slack.app.uow() as uow:
        return uow.session.scalar(sa.select(OutboxMessage.status))


def _answers(slack: SlackServer, name: str) -> int:
    return len([c for c in slack.api.calls(RESPONSE_URL) if c.name == name])


def test_a_refused_command_is_recorded_so_a_redelivery_is_not_answered_again(slack):
    name, url = slack.new_response_url()
    trigger = new_trigger()
    body = slash_command("/note", "acme Called them", user="UNOBODY", response_url=url, trigger_id=trigger)
    assert slack.post(body).status_code == 200
    refused = slack.answer(name)
    assert "You can't use /note yet" in block_texts(refused) and refused["response_type"] == "ephemeral"
    assert _inbox(slack, f"trigger:{trigger}").status == InboxStatus.DONE
    # The same delivery again: kept already and done, so it is not even processed.
    assert slack.post(body).status_code == 200
    slack.ask("/help")  # a barrier: answered after anything the redelivery could have started
    assert _answers(slack, name) == 1
    assert slack.rows(Interaction) == 0


def test_a_commands_answer_is_an_outbox_row_of_its_transaction_sent_at_once(slack):
    with slack.app.uow() as uow:
        customers.create_customer(uow, "Acme Corp")
    name, url = slack.new_response_url()
    trigger = new_trigger()
    body = slash_command("/note", "acme Quote sent", response_url=url, trigger_id=trigger)
    assert slack.post(body).status_code == 200
    assert "Note logged on Acme Corp" in block_texts(slack.answer(name))
    with slack.app.uow() as uow:
        [row] = uow.session.scalars(sa.select(OutboxMessage)).all()
        # Keyed by the delivery, not the chat (a conversation id is kept encrypted).
        assert row.idempotency_key == f"slack:inbox:trigger:{trigger}:reply"
        assert row.priority == outbox.INTERACTIVE and row.conversation == "C1"
        assert row.payload["answer_to"]["response_url"] == url and row.payload["answer_to"]["user"] == ADMIN
    # Marked sent by the web process (sent right after the commit; there is no worker here).
    assert wait_until(lambda: _status(slack) == OutboxStatus.SENT)
    kept = _inbox(slack, f"trigger:{trigger}")
    assert kept.status == InboxStatus.DONE and kept.payload is None


def test_a_command_delivered_again_after_it_was_done_changes_nothing(slack):
    with slack.app.uow() as uow:
        customers.create_customer(uow, "Acme Corp")
    name, url = slack.new_response_url()
    body = slash_command("/note", "acme Quote sent", response_url=url, trigger_id=new_trigger())
    for _ in range(3):
        assert slack.post(body).status_code == 200
    slack.answer(name)
    slack.ask("/help")  # barrier
    assert slack.rows(Interaction) == 1 and _answers(slack, name) == 1
    assert slack.rows(OutboxMessage) == 2  # the note's answer and /help's


def test_a_delivery_is_kept_under_the_key_the_dispatcher_completes():
    body = {"command": "/help", "user_id": "U1", "channel_id": "C1", "trigger_id": "1.2.abc"}
    assert delivery_key(COMMAND, body) == "trigger:1.2.abc"
    # Without a trigger_id (not from Slack, but possible), the body itself is the key.
    bare = {k: v for k, v in body.items() if k != "trigger_id"}
    assert delivery_key(COMMAND, bare) == delivery_key(COMMAND, json.loads(json.dumps(bare)))
    assert delivery_key(COMMAND, bare).startswith("body:")


def test_answers_to_people_in_one_channel_do_not_wait_for_each_other(slack):
    # The first answer is held in flight at Slack (its outbox row is "sending" in channel C1)...
    slack.api.slow(RESPONSE_URL, 30)
    first, first_name = slack.command("/help")
    assert first.status_code == 200
    slack.api.wait_for(RESPONSE_URL, name=first_name)
    # ...and the next command in the same channel is answered meanwhile, by the web process alone.
    assert slack.ask("/whoami")["text"]
    assert slack.api.count(RESPONSE_URL) == 2
    slack.api.release()
    assert wait_until(lambda: _status_counts(slack) == {OutboxStatus.SENT: 2})


def _status_counts(slack: SlackServer) -> dict[OutboxStatus, int]:
    with slack.app.uow() as uow:
        found = uow.session.execute(sa.select(OutboxMessage.status, sa.func.count()).group_by(OutboxMessage.status))
        return {status: count for status, count in found}
