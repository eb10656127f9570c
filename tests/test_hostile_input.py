"""Hostile and malformed input over real HTTP to ``chatcrm web``: each case gets its 4xx (never a 5xx),
changes no row of any table and calls no platform; the web guard's safety net is never reached.

Also: a customer's Telegram message over 10,000 characters is kept, cut with a note, and relayed;
a refused Slack command keeps its dedup row, so Slack's redelivery is not answered twice.
"""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest

from crm_core.models import InboundEvent, Role, Ticket, TicketMessage
from crm_core.services import tickets, users
from tests.fakes.slack_api import RESPONSE_URL
from tests.slack_support import (  # noqa: F401 - fixtures
    SIGNING_SECRET,
    SlackServer,
    event_callback,
    new_trigger,
    sign,
    slack,
    slack_api,
    slash_command,
)
from tests.support import count, rows, safety_net_records, table_counts
from tests.telegram_rig import SECRET, SUPPORT_CHAT

DEEP = 100_000
FORM = "application/x-www-form-urlencoded"


@pytest.fixture(autouse=True)
def _safety_net_stays_unused(caplog):
    yield
    assert safety_net_records(caplog.records) == []


def _slack_body(slack: SlackServer) -> bytes:
    return slash_command("/help", response_url=slack.api.response_url("evil"))


def _post_raw(slack: SlackServer, body: bytes, headers: dict[str, bytes | str], content_type: str = FORM):
    return slack.client.post("/slack/events", content=body, headers={"Content-Type": content_type, **headers})


def _slack_calls(slack: SlackServer) -> list[str]:
    # auth.test is bolt checking its own token (once, before it reads the payload), not an answer.
    return [call.method for call in slack.api.calls() if call.method != "auth.test"]


def _signature_of(body: bytes) -> str:
    return sign(body)["X-Slack-Signature"]


# name -> the headers sent with a /help body that Slack did not sign like this
SLACK_BAD_HEADERS = {
    "a timestamp of 309 nines (float overflow)": lambda body: {**sign(body), "X-Slack-Request-Timestamp": "9" * 309},
    "a timestamp of a superscript two ('²': isdigit but not int)": lambda body: {
        "X-Slack-Signature": _signature_of(body),
        "X-Slack-Request-Timestamp": "²".encode("latin-1"),
    },
    "a timestamp of Arabic-Indic digits": lambda body: {
        "X-Slack-Signature": _signature_of(body),
        "X-Slack-Request-Timestamp": "١٧٠٠٠٠٠٠٠٠".encode(),
    },
    "a timestamp with a plus sign (int() accepts it)": lambda body: {
        **sign(body, timestamp=f"+{int(time.time())}"),
    },
    "a timestamp with an underscore (int() accepts it)": lambda body: {
        **sign(body, timestamp=f"{int(time.time())}"[:5] + "_" + f"{int(time.time())}"[5:]),
    },
    "a signature 'v0=é…' in UTF-8": lambda body: {**sign(body), "X-Slack-Signature": ("v0=é" + "a" * 62).encode()},
    "a signature 'v0=é…' in Latin-1": lambda body: {
        **sign(body),
        "X-Slack-Signature": ("v0=é" + "a" * 62).encode("latin-1"),
    },
    "a signature of 10,000 characters": lambda body: {**sign(body), "X-Slack-Signature": "v0=" + "f" * 10_000},
}


def test_slack_malformed_signature_headers_get_401(slack):
    body = _slack_body(slack)
    before = table_counts(slack.app)
    answers = {case: _post_raw(slack, body, headers(body)) for case, headers in SLACK_BAD_HEADERS.items()}
    assert {case: (r.status_code, r.json()) for case, r in answers.items()} == dict.fromkeys(
        SLACK_BAD_HEADERS, (401, {"error": "invalid signature"})
    )
    assert table_counts(slack.app) == before
    assert slack.api.calls() == []


def test_slack_body_that_is_not_utf8_and_unsigned_gets_401(slack):
    response = _post_raw(slack, b"\xff\xfecommand=/help", {"X-Slack-Request-Timestamp": str(int(time.time()))})
    assert response.status_code == 401


# name -> (content type, a body signed correctly that Slack would never send)
SLACK_SIGNED_MALFORMED = {
    "not UTF-8": (FORM, b"command=%2Fhelp&text=\xff\xfe"),
    "JSON that does not parse": ("application/json", b'{"type": "event_callback", '),
    "a JSON array": ("application/json", b"[1, 2]"),
    "a JSON string": ("application/json", b'"event_callback"'),
    f"JSON nested {DEEP:,} deep": ("application/json", b"[" * DEEP + b"]" * DEEP),
    f"a form payload nested {DEEP:,} deep": (FORM, b"payload=" + b"%5B" * DEEP),
    "a form payload that is not JSON": (FORM, b"payload=%7Bnot-json"),
    "block actions that are a number": (
        FORM,
        b"payload=" + json.dumps({"type": "block_actions", "actions": 5}).encode(),
    ),
    "an event that is a string": ("application/json", json.dumps({"type": "event_callback", "event": "type"}).encode()),
    "an event whose text is a list": (
        "application/json",
        event_callback({"type": "message", "user": 1, "text": [1], "channel": {"id": 3}, "ts": None}),
    ),
    "a view submission whose view is a number": (
        FORM,
        b"payload=" + json.dumps({"type": "view_submission", "view": 7}).encode(),
    ),
}


def test_slack_signed_but_malformed_bodies_get_400(slack):
    before = table_counts(slack.app)
    answers = {
        case: _post_raw(slack, body, sign(body), content_type)
        for case, (content_type, body) in SLACK_SIGNED_MALFORMED.items()
    }
    assert {case: (r.status_code, r.json()["error"]) for case, r in answers.items()} == dict.fromkeys(
        SLACK_SIGNED_MALFORMED, (400, "malformed request")
    )
    assert table_counts(slack.app) == before
    assert _slack_calls(slack) == []


def test_slack_bodies_over_one_megabyte_get_413_declared_or_streamed(slack):
    body = slash_command("/note", "x" * (1024 * 1024), response_url=slack.api.response_url("big"))
    assert slack.post(body).status_code == 413

    def chunks():
        yield body[:1000]
        yield body[1000:]

    streamed = slack.client.post("/slack/events", content=chunks(), headers={"Content-Type": FORM, **sign(body)})
    assert streamed.status_code == 413
    assert count(slack.app, InboundEvent) == 0


def test_a_refused_slack_command_is_not_answered_again_when_slack_redelivers_it(slack, caplog):
    caplog.set_level(logging.INFO, "chatcrm.slack")
    with slack.app.uow() as uow:
        users.ensure_user(uow, users.PlatformId("slack", "UVIEWER"), display_name="Vic Viewer", role=Role.VIEWER)
    trigger = new_trigger()
    ack, name = slack.command("/note acme Called", user="UVIEWER", trigger_id=trigger)
    assert ack.status_code == 200
    assert "Your role (viewer) can't use /note" in json.dumps(slack.answer(name))
    assert count(slack.app, InboundEvent) == 1  # the refusal kept the delivery's key
    # Slack redelivers the same command (same trigger): acknowledged, and not answered again.
    redelivery = slash_command(
        "/note", "acme Called", user="UVIEWER", response_url=slack.api.response_url(name), trigger_id=trigger
    )
    assert slack.post(redelivery).status_code == 200
    # Recognised when it was kept, before its 200: it is not processed at all.
    assert any(f"trigger:{trigger} was kept before" in r.getMessage() for r in caplog.records)
    assert len(slack.api.calls(RESPONSE_URL)) == 1
    assert count(slack.app, InboundEvent) == 1


# -- Telegram ------------------------------------------------------------------------------------------


def _telegram_nothing_happened(rig, before: dict[str, int], calls_before: int) -> None:
    assert table_counts(rig.app) == before
    assert len(rig.fake.calls) == calls_before


# name -> what a valid private text update becomes
TELEGRAM_WRONG_TYPES = {
    "a text that is a number": lambda u: u["message"].update(text=5),
    "a chat id that is a string": lambda u: u["message"]["chat"].update(id="abc"),
    "a sender that is a list": lambda u: u["message"].update({"from": []}),
    "a date that is a word": lambda u: u["message"].update(date="yesterday"),
    "a date past the year 9999": lambda u: u["message"].update(date=10**15),
    "an update id that is true": lambda u: u.update(update_id=True),
    "an update id past 64 bits": lambda u: u.update(update_id=2**70),
    "a message that is a number": lambda u: u.update(message=3),
    "entities that are a string": lambda u: u["message"].update(entities="x"),
    "an entity offset that is a string": lambda u: u["message"].update(
        entities=[{"type": "bot_command", "offset": "a", "length": 3}]
    ),
    "a reply to a message without a chat": lambda u: u["message"].update(reply_to_message={"message_id": 1}),
    "replies nested 50 deep": lambda u: u["message"].update(reply_to_message=_nested_replies(u["message"], 50)),
    "a callback query whose data is a number": lambda u: u.update(
        callback_query={"id": "1", "from": u["message"]["from"], "data": 7, "chat_instance": "c"}
    ),
    "a contact without a phone number": lambda u: u["message"].update(contact={"user_id": 555}),
}


def _nested_replies(message: dict, depth: int) -> dict:
    replied = {k: v for k, v in message.items() if k != "reply_to_message"}
    for _ in range(depth):
        replied = {**message, "reply_to_message": replied}
    return replied


def test_telegram_updates_with_wrong_types_get_400(webhook_rig):
    rig = webhook_rig
    carla = rig.customer(555, "Carla")
    before, calls = table_counts(rig.app), len(rig.fake.calls)
    statuses = {}
    for case, spoil in TELEGRAM_WRONG_TYPES.items():
        update = rig.fake.private_text(carla, "hello")
        spoil(update)
        statuses[case] = rig.post(update).status_code
    assert statuses == dict.fromkeys(TELEGRAM_WRONG_TYPES, 400)
    _telegram_nothing_happened(rig, before, calls)


TELEGRAM_MALFORMED_BODIES = {
    f"JSON nested {DEEP:,} deep": b"[" * DEEP + b"]" * DEEP,
    f"an update whose message is nested {DEEP:,} deep": b'{"update_id": 1, "message": '
    + b"[" * DEEP
    + b"]" * DEEP
    + b"}",
    "invalid UTF-8": b'{"update_id": 1, "message": "\xff"}',
    "UTF-16 JSON (json.loads would accept it)": json.dumps({"update_id": 1}).encode("utf-16"),
    "a number too long to read": b'{"update_id": ' + b"9" * 5000 + b"}",
    "an empty body": b"",
}


def test_telegram_malformed_bodies_get_400(webhook_rig):
    rig = webhook_rig
    before, calls = table_counts(rig.app), len(rig.fake.calls)
    statuses = {case: rig.post(body).status_code for case, body in TELEGRAM_MALFORMED_BODIES.items()}
    assert statuses == dict.fromkeys(TELEGRAM_MALFORMED_BODIES, 400)
    _telegram_nothing_happened(rig, before, calls)


def test_telegram_secret_that_is_not_ascii_gets_403(webhook_rig):
    rig = webhook_rig
    update = rig.fake.private_text(rig.customer(555, "Carla"), "hello")
    before, calls = table_counts(rig.app), len(rig.fake.calls)
    for secret in ("é" + SECRET, SECRET + "\u00ff"):
        response = httpx.post(
            f"{rig.base_url}/telegram/webhook",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": secret.encode("latin-1")},
        )
        assert response.status_code == 403
    _telegram_nothing_happened(rig, before, calls)


def test_a_customer_message_over_10000_characters_is_kept_cut_with_a_note_and_relayed(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    long = "Help! " + "x" * 12_339
    assert len(long) == 12_345
    update = tg.private_text(rig.customer(555, "Carla"), long)
    rig.send(update)
    [message] = rows(rig.app, TicketMessage)
    note = "… [message truncated: 12,345 characters, the limit is 10,000]"
    assert len(message.text) == tickets.MAX_MESSAGE
    assert message.text.startswith("Help! xxx") and message.text.endswith(note)
    # Relayed to the staff room (Telegram splits it into messages of 4,096 characters at most).
    relayed = "".join(call.text for call in tg.sent(SUPPORT_CHAT))
    assert note in relayed and "Ticket #" in relayed
    # The customer is thanked and told their message was cut.
    told = [call.text for call in tg.sent(555)]
    assert any("we got your message" in text for text in told)
    assert any("Your message was too long for us (12,345 characters; the limit is 10,000)" in t for t in told)
    # Telegram's redelivery takes effect once.
    sent = len(tg.calls)
    rig.send(update)
    assert (count(rig.app, Ticket), count(rig.app, TicketMessage), len(tg.calls)) == (1, 1, sent)


def test_a_staff_answer_over_10000_characters_gets_a_short_refusal(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    sam = rig.staff(900, "Sam Support")
    rig.send(tg.private_text(rig.customer(555, "Carla"), "Help!"))
    relay = tg.last_sent(SUPPORT_CHAT)
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "y" * 10_001, reply_to=tg.message(relay)))
    assert (
        "That is too long (10,001 characters; the limit is 10,000); please shorten it."
        in tg.last_sent(SUPPORT_CHAT).text
    )
    assert count(rig.app, TicketMessage) == 1
    assert len(tg.sent(555)) == 1  # only the first thanks: nothing of the answer reached the customer


def test_a_staff_command_over_the_input_limit_still_gets_its_short_refusal(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    sam = rig.staff(900, "Sam Support")
    rig.send(tg.private_text(sam, "/note acme " + "z" * 5000))
    assert "That is too long (5,011 characters; the limit is 4,000). Please shorten it." in tg.last_sent(900).text


def test_control_characters_in_a_customer_message_and_name_are_dropped_not_refused(webhook_rig):
    # PostgreSQL cannot store a NUL; a customer cannot be asked to remove one from their profile name.
    rig, tg = webhook_rig, webhook_rig.fake
    rig.send(tg.private_text(tg.user(555, "Ca\x00rla", "\x1b[31m"), "My printer\x00 is\x07 on fire"))
    [message] = rows(rig.app, TicketMessage)
    assert message.text == "My printer is on fire"
    assert "we got your message" in tg.last_sent(555).text
    assert "Carla [31m" in tg.last_sent(SUPPORT_CHAT).text
