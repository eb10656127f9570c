"""Slack end to end over HTTP: signed requests to ``POST /slack/events`` of the running ASGI app, the real
bolt app and dispatcher on both databases, and Slack's side played by the local fake Web API.

Each test types a command, presses a button or submits a modal the way Slack sends it, and looks at
what arrives at the fake (response_url posts, views.open, chat.postMessage) and in the database.
"""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from crm_core import clock
from crm_core.models import (
    Customer,
    CustomFieldValue,
    Deal,
    DealStage,
    FieldEntity,
    FieldType,
    InboundEvent,
    InboxStatus,
    Interaction,
    Role,
    Ticket,
    TicketPriority,
)
from crm_core.services import custom_fields, customers, deals, users
from tests.fakes.slack_api import RESPONSE_URL
from tests.slack_support import (  # noqa: F401 - fixtures
    ADMIN,
    SlackServer,
    block_action,
    block_texts,
    buttons,
    event_callback,
    new_trigger,
    sign,
    slack,
    slack_api,
    text_objects,
    view_submission,
)

EVIL = "<!channel> & <https://evil|x>"


@pytest.fixture
def acme(slack: SlackServer) -> int:
    with slack.app.uow() as uow:
        customer = customers.create_customer(uow, "Acme Corp", {"email": "buy@acme.example", "country": "us"})
        return customer.id


def admin_id(slack: SlackServer) -> int:
    with slack.app.uow() as uow:
        return users.user_for_identity(uow, users.PlatformId("slack", ADMIN)).id


def press(slack: SlackServer, message: dict, label: str, **kwargs) -> tuple[str, str]:
    """Press a button of a message; returns the trigger_id and the name of the press's response_url."""
    button = buttons(message)[label]
    name, url = slack.new_response_url()
    trigger = new_trigger()
    ack = slack.post(
        block_action(
            {"action_id": button["action_id"], "value": button["value"], "text": button["text"]},
            response_url=url,
            trigger_id=trigger,
            **kwargs,
        )
    )
    assert ack.status_code == 200, ack.text
    return trigger, name


def opened_view(slack: SlackServer, trigger: str) -> dict:
    call = slack.api.wait_for("views.open", trigger_id=trigger)[0]
    return call.json_arg("view")


def submit(slack: SlackServer, view: dict, values: dict, **kwargs):
    return slack.post(view_submission(view, values, **kwargs))


def test_customer_command_is_acked_then_the_card_arrives_at_the_response_url(slack, acme):
    ack, name = slack.command("/customer acme")
    # The ack carries nothing: the card comes afterwards, through the response_url.
    assert ack.status_code == 200 and ack.text == ""
    card = slack.answer(name)
    assert card["response_type"] == "in_channel" and card["replace_original"] is False
    assert card["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": "Acme Corp", "emoji": True}}
    shown = block_texts(card)
    assert "buy@acme.example" in shown and f"Customer #{acme}" in shown
    assert set(buttons(card)) == {"Log note", "New deal", "New ticket", "Edit"}
    assert card["text"] == "Acme Corp"
    # Also as /crm <command>.
    assert slack.ask("/crm customer acme")["blocks"][0]["text"]["text"] == "Acme Corp"


def test_a_customer_named_like_a_mention_shows_literally_and_pings_no_one(slack):
    # What Slack sends for: /customer new <!channel> & <https://evil|x>  (typed text is escaped by Slack)
    created = slack.ask('/customer new "&lt;!channel&gt; &amp; &lt;https://evil|x&gt;"')
    with slack.app.uow() as uow:
        assert uow.session.scalar(sa.select(Customer.name)) == EVIL
    card = slack.ask("/customer #1")
    for message in (created, card):
        # Slack reads mrkdwn and the notification text for mentions and links: there it is escaped.
        parsed_by_slack = text_objects(message["blocks"], kinds=("mrkdwn",)) + [message["text"]]
        assert not any("<" in text or ">" in text for text in parsed_by_slack)
        assert "&lt;!channel&gt; &amp; &lt;https://evil|x&gt;" in message["text"]
    assert "Created &lt;!channel&gt; &amp; &lt;https://evil|x&gt;." in text_objects(created["blocks"], ("mrkdwn",))
    # plain_text is never parsed, so the header shows the name as it is.
    assert card["blocks"][0]["text"] == {"type": "plain_text", "text": EVIL, "emoji": True}


def test_log_note_button_opens_a_modal_and_the_submission_writes_the_note(slack, acme):
    card = slack.ask("/customer acme")
    trigger, press_url = press(slack, card, "Log note")
    view = opened_view(slack, trigger)
    assert view["title"]["text"] == "Log a note" and view["callback_id"] == "chatcrm.form"
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == ["text", "kind"]
    ack = submit(slack, view, {"text": "Called: they want 40 seats & a quote", "kind": "call"})
    # An empty 200 closes the modal; the note is written before Slack gets it.
    assert ack.status_code == 200 and ack.text == ""
    with slack.app.uow() as uow:
        note = uow.session.scalars(sa.select(Interaction)).one()
        assert (note.customer_id, note.text, note.kind) == (acme, "Called: they want 40 seats & a quote", "call")
    answer = slack.answer(press_url)
    assert "Call logged on Acme Corp" in block_texts(answer)


def test_new_deal_modal_shows_errors_inline_and_writes_nothing_until_valid(slack, acme):
    card = slack.ask("/customer acme")
    trigger, press_url = press(slack, card, "New deal")
    view = opened_view(slack, trigger)
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == ["title", "amount", "close", "stage"]
    rejected = submit(slack, view, {"title": "Printer fleet", "amount": "lots"})
    assert rejected.status_code == 200
    assert rejected.json() == {
        "response_action": "errors",
        "errors": {"amount": "'lots' is not an amount (try 5000, 5,000.50 or 12.5k)"},
    }
    assert slack.rows(Deal) == 0
    accepted = submit(
        slack, view, {"title": "Printer fleet", "amount": "12.5k", "close": "2027-03-31", "stage": "proposal"}
    )
    assert accepted.status_code == 200 and accepted.text == ""
    with slack.app.uow() as uow:
        deal = uow.session.scalars(sa.select(Deal)).one()
        assert (deal.customer_id, deal.title, deal.amount_cents, deal.stage, deal.expected_close_on.isoformat()) == (
            acme,
            "Printer fleet",
            1_250_000,
            DealStage.PROPOSAL,
            "2027-03-31",
        )
    assert f"Deal #{deal.id}: Printer fleet" in block_texts(slack.answer(press_url))


def test_change_stage_from_a_deal_card(slack, acme):
    with slack.app.uow() as uow:
        deal_id = deals.create_deal(uow, acme, "Support plan", amount_cents=50_000).id
    card = slack.ask(f"/deal {deal_id}")
    trigger, press_url = press(slack, card, "Change stage")
    view = opened_view(slack, trigger)
    stage_input = next(b for b in view["blocks"] if b.get("block_id") == "stage")
    assert stage_input["element"]["type"] == "static_select"
    assert submit(slack, view, {"stage": "lost", "reason": "went with a competitor"}).text == ""
    with slack.app.uow() as uow:
        deal = uow.session.get(Deal, deal_id)
        assert (deal.stage, deal.lost_reason) == (DealStage.LOST, "went with a competitor")
    assert "Moved from lead to lost" in block_texts(slack.answer(press_url))


def test_edit_modal_covers_custom_fields(slack, acme):
    with slack.app.uow() as uow:
        custom_fields.define_field(
            uow, FieldEntity.CUSTOMER, "tier", FieldType.CHOICE, label="Tier", choices=["gold", "silver"]
        )
        custom_fields.define_field(uow, FieldEntity.CUSTOMER, "renewal", FieldType.DATE, label="Renewal")
    trigger, press_url = press(slack, slack.ask("/customer acme"), "Edit")
    view = opened_view(slack, trigger)
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert inputs["name"]["element"]["initial_value"] == "Acme Corp"
    assert inputs["tier"]["element"]["type"] == "static_select"
    assert inputs["renewal"]["element"]["type"] == "datepicker"
    values = {name: (block["element"].get("initial_value") or "") for name, block in inputs.items()}
    values.update({"phone": "+1 555 0100", "tier": "gold", "renewal": "2027-06-30"})
    assert submit(slack, view, values).text == ""
    with slack.app.uow() as uow:
        assert uow.session.get(Customer, acme).phone == "+1 555 0100"
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(CustomFieldValue)) == 2
    assert "Updated phone, renewal, tier." in block_texts(slack.answer(press_url))


def test_a_slash_command_missing_its_arguments_asks_in_a_modal(slack, acme):
    trigger = new_trigger()
    ack, name = slack.command("/note", trigger_id=trigger)
    assert ack.status_code == 200
    view = opened_view(slack, trigger)
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == ["customer", "text", "kind"]
    assert submit(slack, view, {"customer": "acme", "text": "Met at the fair"}).text == ""
    assert slack.rows(Interaction) == 1
    # The answer goes to the slash command's response_url, kept in the modal's private_metadata.
    assert "Note logged on Acme Corp" in block_texts(slack.answer(name))


def test_a_modal_that_cannot_open_in_time_says_so(slack, acme):
    slack.api.fail("views.open", "expired_trigger_id")
    trigger, press_url = press(slack, slack.ask("/customer acme"), "Log note")
    answer = slack.answer(press_url)
    assert answer["response_type"] == "ephemeral"
    assert "could not open in time" in block_texts(answer)


def test_unknown_user_gets_only_help_and_is_told_to_ask_an_admin(slack, acme):
    denied = slack.ask("/customer acme", user="UNOBODY")
    assert denied["response_type"] == "ephemeral"
    assert "You can't use /customer yet: ask a chatcrm admin to give you a role (/role)." in block_texts(denied)
    help_text = block_texts(slack.ask("/help", user="UNOBODY"))
    assert "/help [command]" in help_text and "/whoami" in help_text
    assert "/customer" not in help_text and "/note" not in help_text
    assert "Ask a chatcrm admin" in help_text
    assert slack.rows(Interaction) == 0 and "Acme" not in json.dumps(denied)


def test_role_by_mention_makes_a_slack_user_a_sales_rep(slack, acme):
    # /role @bob sales, as Slack sends it with escaping on.
    granted = slack.ask("/role <@UBOB42|bob> sales")
    assert "is now sales" in block_texts(granted)
    with slack.app.uow() as uow:
        bob = users.user_for_identity(uow, users.PlatformId("slack", "UBOB42"))
        assert bob.role == Role.SALES
    assert slack.ask("/customer acme", user="UBOB42")["blocks"][0]["text"]["text"] == "Acme Corp"


def test_a_long_list_pages_with_a_more_button(slack, acme):
    with slack.app.uow() as uow:
        for i in range(50):
            deals.create_deal(uow, acme, f"Deal number {i + 1}", amount_cents=100 * (i + 1))
    first = slack.ask("/deal list all")
    # The More button runs the list command for the next page, read when it is pressed.
    more = buttons(first)["More"]
    assert more["action_id"].startswith("chatcrm.run.") and more["value"] == "/deal list all page=2"
    _trigger, page_url = press(slack, first, "More")
    second = slack.answer(page_url)
    _trigger, page_url = press(slack, second, "More")
    third = slack.answer(page_url)
    assert "More" not in buttons(third)
    listed = block_texts(first) + block_texts(second) + block_texts(third)
    assert all(f"Deal number {i + 1} · Acme Corp*" in listed for i in range(50))
    assert "41–50 of 50 deals · €1,275.00 in total" in block_texts(third)


def test_app_home_shows_the_users_open_deals_and_assigned_tickets(slack, acme):
    me = admin_id(slack)
    with slack.app.uow() as uow:
        deals.create_deal(uow, acme, "Mine, open", owner_id=me)
        won = deals.create_deal(uow, acme, "Mine, won", owner_id=me)
        deals.change_stage(uow, won.id, DealStage.WON)
        deals.create_deal(uow, acme, "Someone else's", owner_id=None)
        uow.session.add(Ticket(customer_id=acme, subject="Printer jams", assignee_id=me, priority=TicketPriority.HIGH))
        uow.session.add(Ticket(customer_id=acme, subject="Not mine", assignee_id=None))
    ack = slack.post(
        event_callback(
            {"type": "app_home_opened", "user": ADMIN, "channel": "DHOME", "tab": "home", "event_ts": "1700000000.1"}
        ),
        content_type="application/json",
    )
    assert ack.status_code == 200
    publish = slack.api.wait_for("views.publish")[0]
    assert publish.args["user_id"] == ADMIN
    view = publish.json_arg("view")
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    shown = block_texts(view)
    assert "Your open deals" in shown and "Mine, open" in shown
    assert "Mine, won" not in shown and "Someone else's" not in shown
    assert "Tickets assigned to you" in shown and "Printer jams" in shown and "Not mine" not in shown
    assert "Change stage" in buttons(view)


def test_app_home_for_someone_without_a_role(slack):
    slack.post(
        event_callback({"type": "app_home_opened", "user": "UNOBODY", "tab": "home"}), content_type="application/json"
    )
    view = slack.api.wait_for("views.publish")[0].json_arg("view")
    assert "Ask a chatcrm admin" in block_texts(view)


def test_a_direct_message_is_a_command(slack, acme):
    ack = slack.post(
        event_callback(
            {
                "type": "message",
                "channel_type": "im",
                "channel": "D42",
                "user": ADMIN,
                "text": "customer acme",
                "ts": "1700000100.000200",
            }
        ),
        content_type="application/json",
    )
    assert ack.status_code == 200
    post = slack.api.wait_for("chat.postMessage")[0]
    assert post.args["channel"] == "D42" and post.args.get("thread_ts") is None
    assert "Acme Corp" in block_texts({"blocks": post.json_arg("blocks")})


def mention(text: str, ts: str = "1700000200.000300") -> dict:
    return {"type": "app_mention", "user": ADMIN, "text": f"<@UBOT> {text}", "ts": ts, "channel": "C9", "event_ts": ts}


def test_a_mention_is_answered_in_a_thread_and_private_answers_are_ephemeral(slack, acme):
    slack.post(event_callback(mention("customer acme")), content_type="application/json")
    post = slack.api.wait_for("chat.postMessage")[0]
    assert (post.args["channel"], post.args["thread_ts"]) == ("C9", "1700000200.000300")
    slack.post(event_callback(mention("help", ts="1700000201.000300")), content_type="application/json")
    ephemeral = slack.api.wait_for("chat.postEphemeral")[0]
    assert (ephemeral.args["channel"], ephemeral.args["user"]) == ("C9", ADMIN)


def test_a_retried_event_takes_effect_once_even_minutes_later(slack, acme):
    body = event_callback(mention(f"note #{acme} Renewal call booked"), event_id="EvRETRY1")
    assert slack.post(body, content_type="application/json").status_code == 200
    slack.api.wait_for("chat.postMessage")
    retry = slack.post(
        body,
        content_type="application/json",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert retry.status_code == 200
    with time_machine.travel(clock.utcnow() + timedelta(minutes=4), tick=True):
        # Slack signs every retry afresh; the inbox, not the timestamp, recognises it.
        late = slack.post(
            body,
            content_type="application/json",
            headers={**sign(body), "X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"},
        )
        assert late.status_code == 200
    # A later, different command is the barrier: once it is answered, the retries were handled too.
    slack.post(event_callback(mention("customer acme", ts="1700000300.000400")), content_type="application/json")
    slack.api.wait_for("chat.postMessage", count=2)
    assert slack.rows(Interaction) == 1
    assert len(slack.api.calls("chat.postMessage")) == 2
    with slack.app.uow() as uow:
        keys = uow.session.scalars(sa.select(InboundEvent.key).where(InboundEvent.key.like("msg:%"))).all()
        assert sorted(keys) == ["msg:T1:C9:1700000200.000300", "msg:T1:C9:1700000300.000400"]


def test_concurrent_copies_of_an_event_take_effect_once(slack, acme):
    body = event_callback(mention(f"note #{acme} Sent the contract"), event_id="EvCONCURRENT")
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(
            pool.map(
                lambda n: (
                    slack.post(body, content_type="application/json", headers={"X-Slack-Retry-Num": str(n)}).status_code
                ),
                range(8),
            )
        )
    assert statuses == [200] * 8
    slack.api.wait_for("chat.postMessage")
    slack.post(event_callback(mention("customer acme", ts="1700000400.000500")), content_type="application/json")
    slack.api.wait_for("chat.postMessage", count=2)
    assert slack.rows(Interaction) == 1
    assert len(slack.api.calls("chat.postMessage")) == 2


def test_a_replayed_slash_command_takes_effect_once(slack, acme):
    trigger = new_trigger()
    first, name = slack.command(f"/note #{acme} Quote sent", trigger_id=trigger)
    slack.answer(name)
    # The same body again (a replay within Slack's five minutes, or a proxy repeating it).
    replay, replay_name = slack.command(f"/note #{acme} Quote sent", trigger_id=trigger)
    assert (first.status_code, replay.status_code) == (200, 200)
    slack.ask("/help")  # barrier
    assert slack.rows(Interaction) == 1
    assert [c.name for c in slack.api.calls(RESPONSE_URL) if c.name in (name, replay_name)] == [name]


@contextlib.contextmanager
def database_blocked(slack: SlackServer):
    """Hold a lock that every command's transaction needs (the inbox), as a slow database would."""
    engine = slack.app.engine
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("SELECT 1")  # BEGIN IMMEDIATE: the write lock
        else:
            connection.exec_driver_sql("LOCK TABLE inbound_events IN ACCESS EXCLUSIVE MODE")
        yield
        connection.rollback()


def test_the_ack_waits_for_the_delivery_to_be_kept_not_for_the_work(slack, acme):
    # The work begins by asking Slack for the person's locale; that answer is held back.
    slack.api.slow("users.info", 30)
    ack, name = slack.command("/customer acme")
    assert ack.status_code == 200
    slack.api.wait_for("users.info")
    # Acknowledged while the work waits: the delivery is kept, the card not written yet.
    with slack.app.uow() as uow:
        [kept] = uow.session.scalars(sa.select(InboundEvent)).all()
        assert kept.status == InboxStatus.PENDING and '"/customer"' in (kept.payload or "")
    assert slack.api.calls(RESPONSE_URL) == []
    slack.api.release()
    assert "Acme Corp" in block_texts(slack.answer(name))


def test_a_slow_form_submission_closes_the_modal_in_time_and_answers_later(slack, acme):
    trigger, press_url = press(slack, slack.ask("/customer acme"), "Log note")
    view = opened_view(slack, trigger)
    with database_blocked(slack):
        # Slack waits 3 s for this answer; the adapter gives the work 2.5 s, then closes the modal.
        ack = submit(slack, view, {"text": "Written once the database is back"})
        assert ack.status_code == 200 and ack.text == ""
        # Closed before the work could even begin: the answer comes once the database is back.
        assert [c for c in slack.api.calls(RESPONSE_URL) if c.name == press_url] == []
    assert "Note logged on Acme Corp" in block_texts(slack.answer(press_url))
    assert slack.rows(Interaction) == 1


def test_buttons_on_the_app_home_answer_in_the_apps_dm(slack):
    slack.post(
        event_callback({"type": "app_home_opened", "user": ADMIN, "tab": "home"}), content_type="application/json"
    )
    home = slack.api.wait_for("views.publish")[0].json_arg("view")
    assert {"New customer", "Help"} <= set(buttons(home))
    help_button = buttons(home)["Help"]
    slack.post(
        block_action(
            {"action_id": help_button["action_id"], "value": help_button["value"]}, channel=None, container_type="view"
        )
    )
    post = slack.api.wait_for("chat.postMessage")[0]
    assert post.args["channel"] == ADMIN and "chatcrm commands" in block_texts({"blocks": post.json_arg("blocks")})
    # "New customer" opens a modal; the new card goes to the DM too.
    new = buttons(home)["New customer"]
    trigger = new_trigger()
    slack.post(
        block_action(
            {"action_id": new["action_id"], "value": new["value"]},
            channel=None,
            container_type="view",
            trigger_id=trigger,
        )
    )
    view = opened_view(slack, trigger)
    assert submit(slack, view, {"name": "Globex"}).text == ""
    card = slack.api.wait_for("chat.postMessage", count=2)[1]
    assert card.args["channel"] == ADMIN and "Created Globex." in block_texts({"blocks": card.json_arg("blocks")})


def test_an_expired_response_url_falls_back_to_the_channel(slack, acme):
    slack.api.fail(RESPONSE_URL, status=404, body="expired_url")
    ack, _name = slack.command("/help", channel="C42")
    assert ack.status_code == 200
    ephemeral = slack.api.wait_for("chat.postEphemeral")[0]
    assert (ephemeral.args["channel"], ephemeral.args["user"]) == ("C42", ADMIN)
    assert "chatcrm commands" in block_texts({"blocks": ephemeral.json_arg("blocks")})


def test_slack_can_verify_the_events_url(slack):
    body = json.dumps(
        {"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}
    ).encode()
    response = slack.post(body, content_type="application/json")
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert slack.post(body, content_type="application/json", signed=False).status_code == 401
