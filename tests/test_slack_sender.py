"""``SlackSender``, the outbox's way to Slack: what it posts (against the fake Web API) and how Slack's
failures come out (rate limited with Retry-After, recipient unreachable, retry later)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.adapters.slack.sender import SlackSender
from bot.adapters.slack.settings import SlackSettings
from bot.delivery import OutboundMessage, PermanentFailure, RateLimited, RecipientUnreachable, TemporaryFailure
from bot.messages import Button, Field, Image, Reply, Style
from tests.fakes.slack_api import FILE_UPLOAD, RESPONSE_URL, FakeSlackApi
from tests.slack_support import BOT_TOKEN, block_texts, buttons, slack_api  # noqa: F401

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def send(api: FakeSlackApi, message: OutboundMessage) -> str:
    async def run() -> str:
        sender = SlackSender(SlackSettings(bot_token=BOT_TOKEN, api_url=api.base_url))
        try:
            return await sender.send(message)
        finally:
            await sender.close()

    return asyncio.run(run())


def test_a_neutral_reply_is_posted_as_escaped_block_kit(slack_api):
    reply = Reply(
        title="Digest",
        text="3 deals for <@U1> & co",
        fields=(Field("Won", "€12,000.00"),),
        buttons=(Button("Open pipeline", "/deal list open", Style.PRIMARY),),
    )
    ts = send(slack_api, OutboundMessage(conversation="C77", reply=reply, thread="1700000000.000100"))
    post = slack_api.wait_for("chat.postMessage")[0]
    assert post.args["channel"] == "C77" and post.args["thread_ts"] == "1700000000.000100"
    assert ts.endswith(".000100") and ts != "1700000000.000100"  # the new message's ts, from Slack
    assert post.token == BOT_TOKEN
    message = {"blocks": post.json_arg("blocks")}
    assert "3 deals for &lt;@U1&gt; &amp; co" in block_texts(message)
    assert buttons(message)["Open pipeline"]["value"] == "/deal list open"
    assert post.args["text"] == "Digest — 3 deals for &lt;@U1&gt; &amp; co"


def test_template_text_is_sent_as_mrkdwn_with_its_buttons(slack_api):
    text = "*Follow up* with <@U123> about Acme: " + "word " * 800  # already mrkdwn, over 3,000 characters
    send(
        slack_api,
        OutboundMessage(
            conversation="U123", formatted_text=text, buttons=(Button("Log note", "/note #1", opens_form=True),)
        ),
    )
    post = slack_api.wait_for("chat.postMessage")[0]
    blocks = post.json_arg("blocks")
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert sections[0].startswith("*Follow up* with <@U123>")  # the template's markup is kept
    assert len(sections) == 2 and all(len(s) <= 3000 for s in sections)
    assert blocks[-1]["type"] == "actions" and blocks[-1]["elements"][0]["action_id"] == "chatcrm.form.1"


def test_template_blocks_are_sent_as_they_are(slack_api):
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Weekly digest*"}}]
    send(slack_api, OutboundMessage(conversation="C1", blocks=blocks, formatted_text="Weekly digest"))
    post = slack_api.wait_for("chat.postMessage")[0]
    assert post.json_arg("blocks") == blocks and post.args["text"] == "Weekly digest"


def test_a_chart_is_uploaded_with_files_upload_v2_to_the_fake(slack_api, tmp_path: Path):
    chart = tmp_path / "pipeline.png"
    chart.write_bytes(PNG)
    image = Image(str(chart), "Pipeline by stage", "bar chart of open deals by stage")
    result = send(slack_api, OutboundMessage(conversation="C5", image=image))
    get_url = slack_api.wait_for("files.getUploadURLExternal")[0]
    assert get_url.args["filename"] == "pipeline.png" and int(get_url.args["length"]) == len(PNG)
    assert get_url.args["alt_txt"] == "bar chart of open deals by stage"
    upload = slack_api.wait_for(FILE_UPLOAD)[0]
    assert upload.body == PNG
    complete = slack_api.wait_for("files.completeUploadExternal")[0]
    assert complete.args["channel_id"] == "C5"
    assert complete.json_arg("files") == [{"id": upload.name, "title": "Pipeline by stage"}]
    assert result == upload.name  # a chart alone: the file id
    assert slack_api.calls("chat.postMessage") == []
    # Every call went to the fake: the Web API at SLACK_API_URL, the bytes to the URL it handed out.
    assert [c.method for c in slack_api.calls()] == [
        "files.getUploadURLExternal",
        FILE_UPLOAD,
        "files.completeUploadExternal",
    ]


def test_a_reply_with_a_chart_posts_the_message_then_the_chart(slack_api, tmp_path: Path):
    chart = tmp_path / "c.png"
    chart.write_bytes(PNG)
    ts = send(
        slack_api,
        OutboundMessage(conversation="C5", reply=Reply(text="Morning digest", image=Image(str(chart), "Chart", "alt"))),
    )
    post = slack_api.wait_for("chat.postMessage")[0]
    slack_api.wait_for("files.completeUploadExternal")
    assert ts.endswith(".000100") and post.args["channel"] == "C5"


def test_an_edit_updates_the_message_with_chat_update_and_leaves_the_chart_out(slack_api, tmp_path: Path):
    ts = send(slack_api, OutboundMessage(conversation="C9", formatted_text="*Sale*: 0 of 4 sent"))
    chart = tmp_path / "c.png"
    chart.write_bytes(PNG)
    again = send(
        slack_api,
        OutboundMessage(
            conversation="C9",
            formatted_text="*Sale*: 2 of 4 sent",
            replace=ts,
            buttons=(Button("Pause", "/campaign pause 1"),),
            image=Image(str(chart), "Chart", "alt"),
        ),
    )
    assert again == ts
    update = slack_api.wait_for("chat.update")[0]
    assert (update.args["channel"], update.args["ts"], update.args["text"]) == ("C9", ts, "*Sale*: 2 of 4 sent")
    assert buttons({"blocks": update.json_arg("blocks")})["Pause"]["value"] == "/campaign pause 1"
    assert slack_api.count("chat.postMessage") == 1 and slack_api.count("files.getUploadURLExternal") == 0
    [message] = slack_api.messages("C9")
    assert message.text == "*Sale*: 2 of 4 sent" and message.edits == 1


@pytest.mark.parametrize("error", ["message_not_found", "cant_update_message", "edit_window_closed"])
def test_a_message_that_cannot_be_edited_is_a_permanent_failure(slack_api, error):
    slack_api.fail("chat.update", error)
    with pytest.raises(PermanentFailure, match=error):
        send(slack_api, OutboundMessage(conversation="C1", formatted_text="hi", replace="1700000001.000100"))


def test_an_edit_is_rate_limited_like_a_post(slack_api):
    slack_api.fail("chat.update", "ratelimited", status=429, retry_after=3)
    with pytest.raises(RateLimited) as limited:
        send(slack_api, OutboundMessage(conversation="C1", formatted_text="hi", replace="1700000001.000100"))
    assert limited.value.retry_after == 3


def test_rate_limit_comes_out_with_slacks_retry_after(slack_api):
    slack_api.fail("chat.postMessage", "ratelimited", status=429, retry_after=7)
    with pytest.raises(RateLimited) as limited:
        send(slack_api, OutboundMessage(conversation="C1", formatted_text="hi"))
    assert limited.value.retry_after == 7


@pytest.mark.parametrize(
    "error", ["channel_not_found", "account_inactive", "is_archived", "user_not_found", "not_in_channel"]
)
def test_recipients_that_cannot_get_messages_are_unreachable(slack_api, error):
    slack_api.fail("chat.postMessage", error)
    with pytest.raises(RecipientUnreachable, match=error):
        send(slack_api, OutboundMessage(conversation="C1", formatted_text="hi"))


def test_a_bad_token_is_a_clear_temporary_failure(slack_api):
    slack_api.fail("chat.postMessage", "invalid_auth")
    with pytest.raises(TemporaryFailure, match="invalid_auth.*SLACK_BOT_TOKEN"):
        send(slack_api, OutboundMessage(conversation="C1", formatted_text="hi"))


def test_a_missing_scope_names_the_scope(slack_api):
    slack_api.fail("files.getUploadURLExternal", "missing_scope", needed="files:write")
    with pytest.raises(TemporaryFailure, match="files:write"):
        send(slack_api, OutboundMessage(conversation="C1", image=Image(__file__, "x", "x")))


@pytest.mark.parametrize(("status", "body"), [(500, "oops"), (503, None)])
def test_slack_server_errors_are_temporary(slack_api, status, body):
    slack_api.fail("chat.postMessage", "fatal_error", status=status, body=body)
    with pytest.raises(TemporaryFailure):
        send(slack_api, OutboundMessage(conversation="C1", formatted_text="hi"))


def test_an_unreachable_slack_is_temporary(slack_api):
    url = slack_api.base_url
    slack_api.stop()

    async def run() -> None:
        sender = SlackSender(SlackSettings(bot_token=BOT_TOKEN, api_url=url))
        try:
            await sender.send(OutboundMessage(conversation="C1", formatted_text="hi"))
        finally:
            await sender.close()

    with pytest.raises(TemporaryFailure, match="cannot reach Slack"):
        asyncio.run(run())


def test_an_answer_goes_to_its_response_url_while_valid(slack_api):
    url = slack_api.response_url("r1")
    answer = {"user": "U1", "response_url": url, "response_url_until": time.time() + 60}
    reply = Reply(text="Note logged", private=True)
    assert send(slack_api, OutboundMessage(conversation="C1", reply=reply, answer_to=answer)) == ""
    [posted] = slack_api.calls(RESPONSE_URL)
    assert posted.name == "r1" and posted.args["response_type"] == "ephemeral"
    assert posted.args["text"] == "Note logged" and slack_api.count("chat.postMessage") == 0


def test_an_answer_after_its_response_url_expired_is_posted_to_the_person_in_the_channel(slack_api):
    # Slack's response_url takes answers for 30 minutes: after that it is not even tried.
    answer = {"user": "U1", "response_url": slack_api.response_url("r1"), "response_url_until": time.time() - 1}
    send(slack_api, OutboundMessage(conversation="C1", reply=Reply(text="Late", private=True), answer_to=answer))
    ephemeral = slack_api.wait_for("chat.postEphemeral")[0]
    assert (ephemeral.args["channel"], ephemeral.args["user"]) == ("C1", "U1")
    assert slack_api.count(RESPONSE_URL) == 0
    # A public answer, or one in a DM, is a plain message.
    send(slack_api, OutboundMessage(conversation="C1", reply=Reply(text="Card"), answer_to={"user": "U1"}))
    send(
        slack_api, OutboundMessage(conversation="D1", reply=Reply(text="Mine", private=True), answer_to={"user": "U1"})
    )
    assert [c.args["channel"] for c in slack_api.calls("chat.postMessage")] == ["C1", "D1"]


def test_an_answer_the_response_url_refuses_goes_to_the_channel(slack_api):
    slack_api.fail(RESPONSE_URL, status=404, body="used_url")
    answer = {"user": "U1", "response_url": slack_api.response_url("r1"), "response_url_until": time.time() + 60}
    ts = send(slack_api, OutboundMessage(conversation="C1", reply=Reply(text="Card"), answer_to=answer))
    post = slack_api.wait_for("chat.postMessage")[0]
    assert post.args["channel"] == "C1" and ts


def test_the_workers_sender_closes_its_slack_connection_when_it_stops(database_url, slack_api):
    """``chatcrm worker``'s outbox sender makes its own Slack sender, with an HTTP session of its own:
    it closes that session when the worker stops (before, every worker that had sent to Slack
    logged "Unclosed client session" at exit)."""
    from bot.bootstrap import build_app
    from bot.outbox_sender import OutboxSender
    from bot.platforms import worker_services
    from bot.settings import Settings
    from crm_core import outbox
    from tests.fakes.servers import run_worker
    from tests.slack_support import slack_env
    from tests.support import TEST_SECRET_KEY

    app = build_app(Settings(database_url=database_url, secret_key=TEST_SECRET_KEY, extra=slack_env(slack_api)))
    try:
        services = worker_services(app)
        sender = next(s for s in services if isinstance(s, OutboxSender))
        with app.uow() as uow:
            outbox.enqueue(
                uow,
                idempotency_key="reminder-1",
                kind="test",
                platform="slack",
                conversation="C9",
                payload={"formatted_text": "Call Acme back"},
            )
        with run_worker(services):
            slack_api.wait_for("chat.postMessage")
            session = sender.senders["slack"].client.session
            assert session is not None and not session.closed
        assert session.closed
    finally:
        app.close()


def test_the_workers_inbox_recovery_closes_its_slack_connection_when_it_stops(database_url, slack_api):
    """The worker's inbox recovery runs a Slack delivery a web process kept but did not finish, through
    a Slack runtime of its own that connects on first use: it closes that connection (and the
    runtime's threads) when the worker stops. Before, a worker that had recovered a Slack delivery
    logged "Unclosed client session" at exit, as the multi-process benchmark's logs showed."""
    import json
    from datetime import timedelta
    from urllib.parse import parse_qsl

    from bot.adapters.slack.inbound import delivery_key
    from bot.bootstrap import build_app
    from bot.inbox_runner import InboxRecovery
    from bot.platforms import worker_services
    from bot.settings import Settings
    from crm_core import inbox
    from tests.fakes.servers import run_worker
    from tests.slack_support import ADMIN, slack_env, slash_command
    from tests.support import TEST_SECRET_KEY

    env = {**slack_env(slack_api), "CHATCRM_ADMINS": f"slack:{ADMIN}", "CHATCRM_INBOX_POLL": "0.05"}
    app = build_app(Settings(database_url=database_url, secret_key=TEST_SECRET_KEY, extra=env))
    try:
        body = dict(parse_qsl(slash_command("/help", response_url=slack_api.response_url("kept")).decode()))
        payload = json.dumps({"kind": "command", "received": time.time(), "body": body})
        # Kept by a web process that died at once: its lease has run out already.
        key = delivery_key("command", body)
        assert key is not None
        inbox.receive_many(app.session_factory, "slack", [(key, payload)], lease=timedelta(0))
        services = worker_services(app)
        recovery = next(s for s in services if isinstance(s, InboxRecovery))
        runtime = recovery.runner.processors["slack"]
        with run_worker(services):
            slack_api.wait_for(RESPONSE_URL, name="kept")
            session = runtime.session
            assert session is not None and not session.closed
        assert session.closed
    finally:
        app.close()
