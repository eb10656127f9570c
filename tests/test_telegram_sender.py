"""TelegramSender, the outbox's way to Telegram, against the fake Bot API: what it sends, and how
Bot API failures become the delivery errors the outbox sender acts on."""

from __future__ import annotations

import asyncio
import html
import re

import pytest

from bot.adapters.telegram import callbacks
from bot.adapters.telegram.sender import TelegramSender
from bot.adapters.telegram.settings import TelegramSettings
from bot.delivery import OutboundMessage, PermanentFailure, RateLimited, RecipientUnreachable, TemporaryFailure
from bot.messages import Button, Image, Reply, Section
from tests.fakes.telegram_api import Failure


def _send(app, fake, *messages: OutboundMessage) -> list[str]:
    sender = TelegramSender(TelegramSettings(token=fake.token, api_url=fake.api_url), app.session_factory)

    async def run() -> list[str]:
        try:
            return [await sender.send(m) for m in messages]
        finally:
            await sender.close()

    return asyncio.run(run())


def test_a_reply_goes_out_as_html_with_an_inline_keyboard(app, fake_telegram):
    long_command = "/customer edit #1 company=" + "Very Long Company Name Group " * 3
    reply = Reply(
        title="Reminder: call <Acme>",
        text="Due today & overdue",
        buttons=(Button("Open", "/customer #1"), Button("Edit", long_command, opens_form=True)),
    )
    [message_id] = _send(app, fake_telegram, OutboundMessage("4242", reply=reply))
    call = fake_telegram.last_sent(4242)
    assert message_id == str(fake_telegram.message(call)["message_id"])
    assert call.text == "<b>Reminder: call &lt;Acme&gt;</b>\nDue today &amp; overdue"
    assert call["parse_mode"] == "HTML"
    open_button, edit_button = call.buttons
    assert open_button == {"text": "Open", "callback_data": "c/customer #1"}
    # The long command was stored; its token resolves back to it.
    with app.uow() as uow:
        assert callbacks.decode(uow, edit_button["callback_data"]) == callbacks.Press(long_command, True)


def test_pictures_go_with_send_photo_and_templates_as_they_are(app, fake_telegram, tmp_path):
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"\x89PNG\r\n\x1a\nnot really a chart")
    _send(
        app,
        fake_telegram,
        OutboundMessage("-100200", reply=Reply(title="Digest", image=Image(str(chart), "Pipeline <today>", "bars"))),
        OutboundMessage("-100200", formatted_text="<b>Hi</b> from a template", buttons=(Button("Go", "/help"),)),
    )
    photo, digest, template = fake_telegram.sent(-100200)
    assert photo.method == "sendPhoto" and photo.files["photo"] == chart.read_bytes()
    assert photo["caption"] == "Pipeline &lt;today&gt;"
    assert digest.text == "<b>Digest</b>"
    assert template.text == "<b>Hi</b> from a template" and template.buttons == [
        {"text": "Go", "callback_data": "c/help"}
    ]


@pytest.mark.parametrize(
    "failure, expected",
    [
        (Failure.rate_limited(7), RateLimited),
        (Failure.blocked(), RecipientUnreachable),
        (Failure(403, "Forbidden: user is deactivated"), RecipientUnreachable),
        (Failure.chat_not_found(), RecipientUnreachable),
        (Failure(400, "Bad Request: can't parse entities"), TemporaryFailure),
        (Failure.server_error(), TemporaryFailure),
    ],
)
def test_bot_api_failures_become_delivery_errors(app, fake_telegram, failure, expected):
    fake_telegram.fail_next("sendMessage", failure)
    with pytest.raises(expected) as raised:
        _send(app, fake_telegram, OutboundMessage("4242", reply=Reply(text="hello")))
    if expected is RateLimited:
        assert raised.value.retry_after == 7
    assert fake_telegram.sent(4242) == []
    # The next attempt goes through: nothing about the sender is stuck.
    assert _send(app, fake_telegram, OutboundMessage("4242", reply=Reply(text="hello")))


def test_blocked_and_unknown_chats_are_unreachable(app, fake_telegram):
    fake_telegram.blocked_chats.add(1)
    fake_telegram.unknown_chats.add(2)
    for conversation in ("1", "2"):
        with pytest.raises(RecipientUnreachable):
            _send(app, fake_telegram, OutboundMessage(conversation, reply=Reply(text="hello")))


def test_an_edit_too_long_for_one_message_is_cut_not_split(app, fake_telegram):
    [message_id] = _send(app, fake_telegram, OutboundMessage("4242", formatted_text="<b>Card</b>"))
    long_reply = Reply(
        title="Campaign",
        sections=(Section(title="Recipients", text="\n".join(f"recipient number {i} <sent>" for i in range(400))),),
        buttons=(Button("Pause", "/campaign pause 1"),),
    )
    [again] = _send(app, fake_telegram, OutboundMessage("4242", reply=long_reply, replace=message_id))
    assert again == message_id
    [edit] = fake_telegram.calls_of("editMessageText")
    # One message, as full as Telegram allows (counted after the markup is parsed), ending in "…".
    visible = html.unescape(re.sub(r"<[^>]*>", "", edit.text))
    assert edit.text.endswith("…") and 4000 < len(visible) <= 4096
    assert edit.text.startswith("<b>Campaign</b>") and "&lt;sent&gt;" in edit.text
    assert [b["text"] for b in edit.buttons] == ["Pause"]
    assert len(fake_telegram.sent(4242)) == 1  # nothing new was sent
    assert fake_telegram.text_of(4242, message_id) == edit.text


@pytest.mark.parametrize(
    "failure", [Failure.message_to_edit_not_found(), Failure(400, "Bad Request: message can't be edited")]
)
def test_a_message_that_cannot_be_edited_is_a_permanent_failure(app, fake_telegram, failure):
    fake_telegram.fail_next("editMessageText", failure)
    with pytest.raises(PermanentFailure):
        _send(app, fake_telegram, OutboundMessage("4242", formatted_text="x", replace="1000"))


def test_an_id_that_is_not_a_telegram_message_id_cannot_be_edited(app, fake_telegram):
    with pytest.raises(PermanentFailure, match="not a Telegram message id"):
        _send(app, fake_telegram, OutboundMessage("4242", formatted_text="x", replace="1700000000.000100"))
    assert fake_telegram.calls_of("editMessageText") == []
