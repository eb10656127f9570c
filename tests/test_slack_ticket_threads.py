"""The Slack ticket thread: a Telegram customer's messages appear in their ticket's own thread in the Slack
support channel (CHATCRM_SLACK_SUPPORT_CHANNEL), and staff answer there: every reply in "replies" mode,
only a reply starting with !reply (or /reply) in "alerts" mode, where the others stay internal notes.

End to end over real HTTP: one ``chatcrm web`` app with the Telegram webhook and Slack's events URL,
under uvicorn, Telegram played by the fake Bot API and Slack by the fake Web API, Slack's events signed
as Slack signs them; on both databases.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.platforms import senders
from bot.settings import SettingsError
from crm_core.models import Direction, ExternalThread, InboundEvent, OutboxMessage, Role, Ticket, TicketMessage
from crm_core.models.inbox import InboxStatus
from crm_core.services import users
from tests.fakes.slack_api import Call, FakeSlackApi
from tests.fakes.worker import chat_worker, wait_until
from tests.slack_support import block_texts, event_callback, sign, slack_api, slack_env  # noqa: F401 - fixtures
from tests.support import rows
from tests.telegram_rig import SUPPORT_CHAT, Rig, fake_telegram, webhook_rig_with  # noqa: F401 - fixtures

SUPPORT = "CSUPPORT1"
SAM = "USAM1"
CARLA = 555


@contextlib.contextmanager
def desk(database_url: str, telegram, slack: FakeSlackApi, mode: str | None, **more: str) -> Iterator[Rig]:
    """chatcrm web with Telegram customers and the Slack support channel in ``mode``; Sam is Slack staff."""
    env = {**slack_env(slack), "CHATCRM_SLACK_SUPPORT_CHANNEL": SUPPORT, **more}
    if mode is not None:
        env["CHATCRM_SLACK_SUPPORT_MODE"] = mode
    with webhook_rig_with(database_url, telegram, **env) as rig:
        with rig.app.uow() as uow:
            users.ensure_user(uow, users.PlatformId("slack", SAM), display_name="Sam Support", role=Role.SUPPORT)
        yield rig


@pytest.fixture
def replies_desk(database_url, fake_telegram, slack_api) -> Iterator[Rig]:
    with desk(database_url, fake_telegram, slack_api, "replies") as rig:
        yield rig


@pytest.fixture
def alerts_desk(database_url, fake_telegram, slack_api) -> Iterator[Rig]:
    # No mode set: alerts is the default.
    with desk(database_url, fake_telegram, slack_api, None) as rig:
        yield rig


def post_event(rig: Rig, body: bytes) -> None:
    """Deliver a Slack event to /slack/events as Slack does: signed, JSON; Slack wants its 200."""
    headers = {"Content-Type": "application/json", **sign(body)}
    response = httpx.post(f"{rig.base_url}/slack/events", content=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text


_ts = iter(range(1, 10_000))


def thread_reply(rig: Rig, thread_ts: str, text: str, *, user: str = SAM, **event: Any) -> bytes:
    """Someone writes ``text`` in the thread ``thread_ts`` of the support channel; returns the body sent."""
    ts = f"1800000000.{next(_ts):06d}"
    body = event_callback(
        {
            "type": "message",
            "channel": SUPPORT,
            "channel_type": "channel",
            "user": user,
            "text": text,
            "ts": ts,
            "thread_ts": thread_ts,
            "team": "T1",
            **event,
        }
    )
    post_event(rig, body)
    return body


def handled(rig: Rig, body: bytes) -> bool:
    """Whether the Slack message in ``body`` was taken (its delivery is done in the inbox: it is kept there,
    pending, from the ack on)."""
    event = json.loads(body)["event"]
    key = f"msg:T1:{event['channel']}:{event['ts']}"
    done = (InboundEvent.platform == "slack", InboundEvent.key == key, InboundEvent.status == InboxStatus.DONE)
    return bool(rows(rig.app, InboundEvent, *done))


def posts(slack: FakeSlackApi) -> list[Call]:
    """What was posted to the support channel, in order."""
    return [call for call in slack.calls("chat.postMessage") if call.args.get("channel") == SUPPORT]


def texts(post: Call) -> str:
    """What a reader sees of a posted message (plain text as is, mrkdwn as sent: escaped)."""
    return block_texts({"blocks": post.json_arg("blocks") or []})


def customer_texts(rig: Rig) -> list[str]:
    return [call.text for call in rig.fake.sent(CARLA)]


def carla_writes_twice(rig: Rig, slack: FakeSlackApi, mode: str) -> tuple[int, str]:
    """Carla writes twice on Telegram: one ticket, one thread; returns the ticket id and the thread's ts."""
    tg = rig.fake
    carla = rig.customer(CARLA, "Carla Customer")
    rig.send(tg.private_text(carla, "My printer jams <again> & again"))
    [ticket] = rows(rig.app, Ticket)
    # The staff group still gets its copy.
    assert f"Ticket #{ticket.id}" in tg.last_sent(SUPPORT_CHAT).text
    [parent] = posts(slack)
    assert "thread_ts" not in parent.args
    shown = texts(parent)
    assert f"Ticket #{ticket.id} · Carla Customer · My printer jams <again> & again · normal" in shown
    assert "My printer jams &lt;again&gt; &amp; again" in shown
    [thread] = rows(rig.app, ExternalThread)
    assert (thread.ticket_id, thread.platform, thread.conversation) == (ticket.id, "slack", SUPPORT)
    parent_ts = thread.thread_id
    assert slack.message(parent_ts).channel == SUPPORT

    rig.send(tg.private_text(carla, "It is the tray 2"))
    assert len(rows(rig.app, Ticket)) == 1
    first, second = posts(slack)
    assert first == parent and second.args["thread_ts"] == parent_ts
    assert "It is the tray 2" in texts(second) and f"ticket #{ticket.id}" in texts(second)
    # One thread, started once; the posts were queued once each, keyed by their ticket message.
    assert len(rows(rig.app, ExternalThread)) == 1
    queued = rows(rig.app, OutboxMessage, OutboxMessage.platform == "slack")
    assert [row.kind for row in queued] == [f"support.thread.{mode}"] * 2
    return ticket.id, parent_ts


def test_a_thread_reply_answers_the_telegram_customer_once(replies_desk, slack_api, caplog):
    rig, tg = replies_desk, replies_desk.fake
    ticket_id, parent_ts = carla_writes_twice(rig, slack_api, "replies")
    assert "Reply in this thread to answer the customer." in texts(posts(slack_api)[0])

    body = thread_reply(rig, parent_ts, "Open tray 2 &amp; remove the &lt;jammed&gt; sheet")
    assert tg.wait_for(lambda: "Open tray 2 &amp; remove the &lt;jammed&gt; sheet" in customer_texts(rig))
    assert wait_until(lambda: len(posts(slack_api)) == 3)
    told = posts(slack_api)[2]
    assert told.args["thread_ts"] == parent_ts
    assert f"Sent to Carla Customer (ticket #{ticket_id})." in texts(told)
    [answer] = rows(rig.app, TicketMessage, TicketMessage.direction == Direction.OUTBOUND)
    assert (answer.text, answer.author.name, answer.channel) == (
        "Open tray 2 & remove the <jammed> sheet",
        "Sam Support",
        "telegram",
    )

    # Slack delivers the same event again (a retry): nothing more is answered or posted.
    caplog.set_level(logging.INFO, logger="chatcrm.slack")
    post_event(rig, body)
    assert wait_until(lambda: any("was kept before" in r.getMessage() for r in caplog.records))
    assert customer_texts(rig).count("Open tray 2 &amp; remove the &lt;jammed&gt; sheet") == 1
    assert len(rows(rig.app, TicketMessage, TicketMessage.direction == Direction.OUTBOUND)) == 1
    assert len(posts(slack_api)) == 3


def test_in_alerts_mode_only_a_prefixed_reply_reaches_the_customer(alerts_desk, slack_api, caplog):
    rig, tg = alerts_desk, alerts_desk.fake
    ticket_id, parent_ts = carla_writes_twice(rig, slack_api, "alerts")
    assert "start one with !reply to answer the customer" in texts(posts(slack_api)[0])
    acknowledged = customer_texts(rig)
    assert len(acknowledged) == 1  # "Thank you, we got your message…"

    # A plain reply is a note for colleagues: kept on the ticket, never sent.
    note = thread_reply(rig, parent_ts, "Checking with the warehouse first")
    assert wait_until(lambda: handled(rig, note))
    [kept] = rows(rig.app, TicketMessage, TicketMessage.direction == Direction.INTERNAL)
    assert (kept.ticket_id, kept.text, kept.author.name) == (
        ticket_id,
        "Checking with the warehouse first",
        "Sam Support",
    )
    assert customer_texts(rig) == acknowledged
    assert len(posts(slack_api)) == 2

    # !reply answers her, and the thread is told it arrived.
    thread_reply(rig, parent_ts, "!reply It ships today.")
    assert tg.wait_for(lambda: "It ships today." in customer_texts(rig))
    assert wait_until(lambda: len(posts(slack_api)) == 3)
    assert posts(slack_api)[2].args["thread_ts"] == parent_ts
    assert "Sent to Carla Customer" in texts(posts(slack_api)[2])

    # So does /reply where Slack lets it through (typed after a space: Slack refuses unknown commands).
    thread_reply(rig, parent_ts, " /reply Tomorrow at the latest.")
    assert tg.wait_for(lambda: "Tomorrow at the latest." in customer_texts(rig))
    answers = rows(rig.app, TicketMessage, TicketMessage.direction == Direction.OUTBOUND)
    assert [a.text for a in answers] == ["It ships today.", "Tomorrow at the latest."]

    # A reply that mentions the app comes twice (an app_mention and a message event, one ts): it counts once.
    caplog.set_level(logging.INFO, logger="chatcrm.slack")
    said = {"channel": SUPPORT, "user": SAM, "text": "<@UBOT> !reply See you then.", "team": "T1"}
    said |= {"ts": "1800000999.000001", "thread_ts": parent_ts}
    post_event(rig, event_callback({"type": "app_mention", **said}))
    post_event(rig, event_callback({"type": "message", "channel_type": "channel", **said}))
    assert tg.wait_for(lambda: "See you then." in customer_texts(rig))
    assert wait_until(lambda: any("was kept before" in r.getMessage() for r in caplog.records))
    assert customer_texts(rig).count("See you then.") == 1
    answers = rows(rig.app, TicketMessage, TicketMessage.direction == Direction.OUTBOUND)
    assert [a.text for a in answers] == ["It ships today.", "Tomorrow at the latest.", "See you then."]


def test_people_who_are_not_staff_and_the_bot_itself_are_ignored_in_a_thread(alerts_desk, slack_api):
    rig = alerts_desk
    _ticket_id, parent_ts = carla_writes_twice(rig, slack_api, "alerts")
    before = rows(rig.app, TicketMessage)

    intern = thread_reply(rig, parent_ts, "!reply I can answer that!", user="UINTERN1")
    bot_echo = thread_reply(rig, parent_ts, "!reply from a bot", bot_id="B42")
    edited = thread_reply(rig, parent_ts, "!reply edited", subtype="message_changed")
    assert wait_until(lambda: handled(rig, intern))
    # Bots' messages and edits never reach the dispatcher; a staff message after them still works.
    thread_reply(rig, parent_ts, "A note after all that")
    assert wait_until(lambda: len(rows(rig.app, TicketMessage)) == len(before) + 1)
    assert [m.text for m in rows(rig.app, TicketMessage)][len(before) :] == ["A note after all that"]
    assert not handled(rig, bot_echo) and not handled(rig, edited)
    assert len(customer_texts(rig)) == 1
    assert len(posts(slack_api)) == 2


def test_when_the_first_post_fails_the_next_one_starts_the_thread_and_the_first_goes_into_it(
    database_url, fake_telegram, slack_api
):
    # A failed send is due again after 50 ms (the web process leaves it to the worker).
    with desk(database_url, fake_telegram, slack_api, "alerts", CHATCRM_OUTBOX_BACKOFF="0.05") as rig:
        carla = rig.customer(CARLA, "Carla Customer")
        slack_api.fail("chat.postMessage", "fatal_error")
        rig.send(rig.fake.private_text(carla, "First: the printer jams"))
        [refused] = posts(slack_api)
        assert slack_api.messages(SUPPORT) == [] and rows(rig.app, ExternalThread) == []

        # The second message arrives before the thread exists: it is written at send time, so it starts it.
        rig.send(rig.fake.private_text(carla, "Second: tray 2"))
        _refused, parent = posts(slack_api)
        assert "thread_ts" not in parent.args and "Second: tray 2" in texts(parent)
        [thread] = rows(rig.app, ExternalThread)
        assert [m.ts for m in slack_api.messages(SUPPORT)] == [thread.thread_id]

        # The worker delivers the first one: into the thread the second one started, not a thread of its own.
        with chat_worker(rig.app, senders(rig.app)):
            assert wait_until(lambda: len(posts(slack_api)) == 3)
        late = posts(slack_api)[2]
        assert late.args["thread_ts"] == thread.thread_id and "First: the printer jams" in texts(late)
        assert "First: the printer jams" in texts(refused)
        assert len(rows(rig.app, ExternalThread)) == 1 and len(slack_api.messages(SUPPORT)) == 2


def test_without_a_support_channel_customers_are_relayed_as_before(database_url, fake_telegram, slack_api):
    with webhook_rig_with(database_url, fake_telegram, **slack_env(slack_api)) as rig:
        carla = rig.customer(CARLA, "Carla Customer")
        rig.send(rig.fake.private_text(carla, "Hello?"))
        assert "Hello?" in rig.fake.last_sent(SUPPORT_CHAT).text
        assert posts(slack_api) == [] and slack_api.calls("chat.postMessage") == []
        assert rows(rig.app, ExternalThread) == []
        assert rows(rig.app, OutboxMessage, OutboxMessage.platform == "slack") == []


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHATCRM_SLACK_SUPPORT_CHANNEL": "#support"}, "CHATCRM_SLACK_SUPPORT_CHANNEL='#support' is not a Slack"),
        ({"CHATCRM_SLACK_SUPPORT_MODE": "everything"}, "CHATCRM_SLACK_SUPPORT_MODE='everything' is not a mode"),
    ],
)
def test_bad_support_settings_are_refused_in_one_line(env, message):
    from bot.adapters.slack.settings import SlackSettings

    with pytest.raises(SettingsError) as refused:
        SlackSettings.from_env({"SLACK_BOT_TOKEN": "xoxb-1", **env})
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)
