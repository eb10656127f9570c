"""Outbox rows that edit a message the bot sent earlier (``"replace"`` in the payload), as a live
status card does: through the real outbox sender and the real Slack and Telegram senders against
the fake APIs, on SQLite and PostgreSQL. The message changes in place; an edit of a message that
is gone fails that row at once and leaves the conversation open; Telegram's "message is not
modified" counts as sent."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from bot.adapters.console.sender import ConsoleSender
from bot.adapters.slack.sender import SlackSender
from bot.adapters.slack.settings import SlackSettings
from bot.adapters.telegram.sender import TelegramSender
from bot.adapters.telegram.settings import TelegramSettings
from bot.delivery import OutboundMessage
from bot.messages import Image, Reply
from bot.outbox_sender import UnreadablePayload, outbound_message
from crm_core import outbox
from crm_core.models import BlockedRecipient, OutboxMessage, OutboxStatus
from crm_core.outbox import Claimed
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.worker import chat_worker, wait_until
from tests.slack_support import BOT_TOKEN, block_texts, slack_api  # noqa: F401

DONE = {OutboxStatus.SENT, OutboxStatus.FAILED, OutboxStatus.BLOCKED}


def enqueue(app, key: str, platform: str, conversation: str, payload: dict) -> None:
    with app.uow() as uow:
        outbox.enqueue(
            uow,
            idempotency_key=key,
            kind="campaign_status",
            platform=platform,
            conversation=conversation,
            payload=payload,
        )


def row(app, key: str) -> OutboxMessage:
    with app.uow() as uow:
        return uow.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.idempotency_key == key)).one()


def delivered(app, key: str) -> OutboxMessage:
    """The row once the sender is done with it."""
    assert wait_until(lambda: row(app, key).status in DONE), row(app, key).status
    return row(app, key)


def blocked_recipients(app) -> list[BlockedRecipient]:
    with app.uow() as uow:
        return list(uow.session.scalars(sa.select(BlockedRecipient)))


@contextmanager
def worker_with(app, platform: str, sender) -> Iterator[None]:
    with chat_worker(app, {platform: sender}) as worker:
        try:
            yield
        finally:
            worker.call(sender.close())


# Slack


@pytest.fixture
def slack_worker(app, slack_api: FakeSlackApi):  # noqa: F811 - the fixture imported above
    with worker_with(app, "slack", SlackSender(SlackSettings(bot_token=BOT_TOKEN, api_url=slack_api.base_url))):
        yield slack_api


def test_slack_edit_changes_the_posted_message_in_place(app, slack_worker):
    slack = slack_worker
    enqueue(
        app,
        "card-0",
        "slack",
        "C42",
        {
            "formatted_text": "*Spring sale*: 0 of 10 sent",
            "buttons": [{"label": "Pause", "command": "/campaign pause 1"}],
        },
    )
    ts = delivered(app, "card-0").platform_message_id
    assert ts and slack.text_of(ts) == "*Spring sale*: 0 of 10 sent"
    enqueue(app, "card-5", "slack", "C42", {"formatted_text": "*Spring sale*: 5 of 10 sent", "replace": ts})
    edit = delivered(app, "card-5")
    assert (edit.status, edit.platform_message_id, edit.attempts) == (OutboxStatus.SENT, ts, 1)
    # A neutral reply edits it too (rendered to Block Kit like a new message would be).
    enqueue(
        app,
        "card-10",
        "slack",
        "C42",
        {"reply": Reply(title="Spring sale", text="10 of 10 sent").to_dict(), "replace": ts},
    )
    assert delivered(app, "card-10").platform_message_id == ts
    [message] = slack.messages("C42")
    assert message.ts == ts and message.edits == 2
    assert [v["text"] for v in slack.history(ts)] == [
        "*Spring sale*: 0 of 10 sent",
        "*Spring sale*: 5 of 10 sent",
        "Spring sale — 10 of 10 sent",
    ]
    assert "10 of 10 sent" in block_texts({"blocks": message.blocks})
    # The first edit dropped the Pause button (it had none); one post, two updates of that ts.
    assert [b["type"] for b in slack.history(ts)[1]["blocks"]] == ["section"]
    assert slack.count("chat.postMessage") == 1
    assert [(c.args["channel"], c.args["ts"]) for c in slack.calls("chat.update")] == [("C42", ts), ("C42", ts)]


def test_slack_edit_of_an_unknown_message_fails_that_row_only(app, slack_worker):
    slack = slack_worker
    enqueue(app, "gone", "slack", "C42", {"formatted_text": "progress", "replace": "1600000000.000100"})
    failed = delivered(app, "gone")
    assert failed.status is OutboxStatus.FAILED and failed.attempts == 1
    assert "message_not_found" in failed.last_error
    assert len(slack.calls("chat.update")) == 1  # not retried
    # The conversation is not blocked: the next message goes out.
    enqueue(app, "next", "slack", "C42", {"formatted_text": "hello again"})
    assert delivered(app, "next").status is OutboxStatus.SENT
    assert blocked_recipients(app) == []


def test_slack_edit_in_a_dm_posted_to_a_user_id_fails_without_blocking_the_user(app, slack_worker):
    # Slack's chat.update wants the DM's channel id (D...): a user id is refused as channel_not_found,
    # which must not make the user unreachable.
    enqueue(app, "dm-0", "slack", "U77", {"formatted_text": "0 of 10"})
    ts = delivered(app, "dm-0").platform_message_id
    enqueue(app, "dm-5", "slack", "U77", {"formatted_text": "5 of 10", "replace": ts})
    failed = delivered(app, "dm-5")
    assert failed.status is OutboxStatus.FAILED and failed.attempts == 1
    assert "channel_not_found" in failed.last_error and "DM channel id" in failed.last_error
    assert blocked_recipients(app) == []
    enqueue(app, "dm-next", "slack", "U77", {"formatted_text": "still reachable"})
    assert delivered(app, "dm-next").status is OutboxStatus.SENT


# Telegram


@pytest.fixture
def telegram_worker(app, fake_telegram: FakeTelegram):
    sender = TelegramSender(
        TelegramSettings(token=fake_telegram.token, api_url=fake_telegram.api_url), app.session_factory
    )
    with worker_with(app, "telegram", sender):
        yield fake_telegram


def test_telegram_edit_changes_the_sent_message_in_place(app, telegram_worker):
    tg = telegram_worker
    enqueue(
        app,
        "card-0",
        "telegram",
        "4242",
        {
            "formatted_text": "<b>Spring sale</b>: 0 of 10 sent",
            "buttons": [{"label": "Pause", "command": "/campaign pause 1"}],
        },
    )
    message_id = delivered(app, "card-0").platform_message_id
    enqueue(
        app,
        "card-5",
        "telegram",
        "4242",
        {
            "formatted_text": "<b>Spring sale</b>: 5 of 10 sent",
            "buttons": [{"label": "Pause", "command": "/campaign pause 1"}],
            "replace": message_id,
        },
    )
    edit = delivered(app, "card-5")
    assert (edit.status, edit.platform_message_id, edit.attempts) == (OutboxStatus.SENT, message_id, 1)
    enqueue(
        app,
        "card-10",
        "telegram",
        "4242",
        {"reply": Reply(title="Spring sale", text="10 of 10 sent").to_dict(), "replace": message_id},
    )
    assert delivered(app, "card-10").platform_message_id == message_id
    [sent] = tg.sent(4242)
    assert str(tg.message(sent)["message_id"]) == message_id
    versions = tg.history(4242, message_id)
    assert [v["text"] for v in versions] == [
        "<b>Spring sale</b>: 0 of 10 sent",
        "<b>Spring sale</b>: 5 of 10 sent",
        "<b>Spring sale</b>\n10 of 10 sent",
    ]
    assert tg.text_of(4242, message_id) == "<b>Spring sale</b>\n10 of 10 sent"
    # The keyboard stayed while the edit had it, and went with the edit that had none.
    assert versions[1]["reply_markup"]["inline_keyboard"][0][0]["text"] == "Pause"
    assert "reply_markup" not in versions[2]
    edits = tg.calls_of("editMessageText")
    assert [(e["chat_id"], e["message_id"], e["parse_mode"]) for e in edits] == [(4242, int(message_id), "HTML")] * 2


def test_telegram_edit_of_an_unknown_message_fails_that_row_only(app, telegram_worker):
    tg = telegram_worker
    enqueue(app, "gone", "telegram", "4242", {"formatted_text": "progress", "replace": "999999"})
    failed = delivered(app, "gone")
    assert failed.status is OutboxStatus.FAILED and failed.attempts == 1
    assert "message to edit not found" in failed.last_error.lower()
    assert len(tg.calls_of("editMessageText")) == 1  # not retried
    enqueue(app, "next", "telegram", "4242", {"formatted_text": "hello again"})
    assert delivered(app, "next").status is OutboxStatus.SENT
    assert blocked_recipients(app) == []


def test_telegram_not_modified_counts_as_sent(app, telegram_worker):
    tg = telegram_worker
    enqueue(app, "card-0", "telegram", "4242", {"formatted_text": "3 of 10 sent"})
    message_id = delivered(app, "card-0").platform_message_id
    enqueue(app, "card-3", "telegram", "4242", {"formatted_text": "3 of 10 sent", "replace": message_id})
    same = delivered(app, "card-3")
    assert (same.status, same.platform_message_id, same.attempts) == (OutboxStatus.SENT, message_id, 1)
    [refused] = tg.calls_of("editMessageText")
    assert refused.failure is not None and "not modified" in refused.failure.description
    assert [v["text"] for v in tg.history(4242, message_id)] == ["3 of 10 sent"]


# The payload and the console


def claimed(payload: dict) -> Claimed:
    return Claimed(1, "k", "campaign_status", "slack", "C1", payload, 1)


def test_the_payload_names_the_message_to_replace():
    assert (
        outbound_message(claimed({"formatted_text": "x", "replace": "1700000000.000100"})).replace
        == "1700000000.000100"
    )
    assert outbound_message(claimed({"formatted_text": "x", "replace": 1042})).replace == "1042"
    assert outbound_message(claimed({"formatted_text": "x"})).replace is None
    for wrong in ({"ts": "1"}, ["1"], True, ""):
        with pytest.raises(UnreadablePayload, match="replace"):
            outbound_message(claimed({"formatted_text": "x", "replace": wrong}))


def test_the_console_prints_an_edit_as_an_updated_message(tmp_path):
    printed = io.StringIO()
    sender = ConsoleSender(printed)
    chart = tmp_path / "c.png"
    chart.write_bytes(b"png")

    async def run() -> tuple[str, str]:
        first = await sender.send(OutboundMessage("carl", formatted_text="0 of 10", metadata={"kind": "campaign"}))
        # An edit leaves the chart out, as Slack's and Telegram's edits do.
        again = await sender.send(
            OutboundMessage(
                "carl",
                formatted_text="5 of 10",
                replace=first,
                image=Image(str(chart), "Chart", "alt"),
                metadata={"kind": "campaign"},
            )
        )
        return first, again

    first, again = asyncio.run(run())
    assert again == first
    assert printed.getvalue() == (
        "──── campaign for carl ────\n0 of 10\n\n(updated) ──── campaign for carl ────\n5 of 10\n\n"
    )
