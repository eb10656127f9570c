"""Commands with missing arguments (and buttons that open forms) become a step-by-step conversation
in Telegram, kept in the database between webhook requests; /cancel leaves it."""

from __future__ import annotations

from crm_core.models import FormSession, Interaction, OutboxMessage, Role, Ticket, TicketPriority
from crm_core.services import customers, users
from tests.support import rows
from tests.telegram_rig import SUPPORT_CHAT


def _acme_with_owner_on_slack(app) -> int:
    with app.uow() as uow:
        owner = users.ensure_user(
            uow, users.PlatformId("slack", "UOWNER"), display_name="Olga Owner", role=Role.SALES
        )
        return customers.create_customer(uow, "Acme Corp", {"owner": f"#{owner.id}"}).id


def test_ticket_new_asks_for_each_missing_input_in_turn(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    acme = _acme_with_owner_on_slack(rig.app)
    sam = rig.staff(900, "Sam Support")

    command = rig.send(tg.private_text(sam, "/ticket new"))
    first = tg.last_sent(900)
    # Telegram sending the command again neither asks again nor drops the form just started.
    rig.send(command)
    assert tg.last_sent(900) is first
    assert "<b>New ticket</b> · question 1 of 3" in first.text and "<b>Customer</b>" in first.text
    rig.send(tg.private_text(sam, "zebra"))  # no such customer: noticed when the form is submitted
    assert "question 2 of 3" in tg.last_sent(900).text and "<b>Subject</b>" in tg.last_sent(900).text
    rig.send(tg.private_text(sam, "Printer <jams> & smokes"))
    priority = tg.last_sent(900)
    assert "<b>Priority</b> (optional)" in priority.text
    assert [b["text"] for b in priority.buttons] == ["low", "normal", "high", "urgent", "Skip"]
    assert all(len(b["callback_data"].encode()) <= 64 for b in priority.buttons)
    rig.send(tg.press(sam, priority, "urgent"))
    # The question keeps its answer instead of its buttons.
    [edit] = tg.calls_of("editMessageText")
    assert edit["text"] == "<b>Priority</b>: urgent" and edit["message_id"] == tg.message(priority)["message_id"]
    # Submitting found no customer "zebra": only that question is asked again, with the reason.
    again = tg.last_sent(900)
    assert "No customer matches 'zebra'" in again.text and "<b>Customer</b>" in again.text
    assert rows(rig.app, Ticket) == []
    rig.send(tg.private_text(sam, "acme"))
    created = tg.last_sent(900)
    assert "Ticket #1 opened for Acme Corp." in created.text
    [ticket] = rows(rig.app, Ticket)
    assert (ticket.customer_id, ticket.subject, ticket.priority) == (
        acme,
        "Printer <jams> & smokes",
        TicketPriority.URGENT,
    )
    assert "Printer &lt;jams&gt; &amp; smokes" in created.text
    assert rows(rig.app, FormSession) == []
    # An urgent ticket tells the customer's owner, where she works (Slack), through the outbox.
    [notice] = rows(rig.app, OutboxMessage)
    assert (notice.kind, notice.platform, notice.conversation) == ("notification", "slack", "UOWNER")
    assert notice.payload["reply"]["title"] == "New urgent ticket #1 for Acme Corp"


def test_cancel_leaves_the_conversation_and_a_new_command_replaces_it(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    _acme_with_owner_on_slack(rig.app)
    sam = rig.staff(900, "Sam Support")
    rig.send(tg.private_text(sam, "/ticket new acme"))
    assert "<b>Subject</b>" in tg.last_sent(900).text
    rig.send(tg.private_text(sam, "/cancel"))
    assert tg.last_sent(900).text == "Cancelled."
    # The next message is an ordinary one again, not a subject.
    rig.send(tg.private_text(sam, "hello"))
    assert "Type /help" in tg.last_sent(900).text
    rig.send(tg.private_text(sam, "/cancel"))
    assert tg.last_sent(900).text == "There is nothing to cancel."
    rig.send(tg.private_text(sam, "/ticket new acme"))
    rig.send(tg.private_text(sam, "/customer acme"))
    assert "<b>Acme Corp</b>" in tg.last_sent(900).text
    assert rows(rig.app, FormSession) == []
    assert rows(rig.app, Ticket) == []


def test_a_card_button_opens_a_form_and_old_buttons_go_stale(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    acme = _acme_with_owner_on_slack(rig.app)
    sam = rig.staff(900, "Sam Support", Role.SALES)
    rig.send(tg.private_text(sam, "/customer acme"))
    card = tg.last_sent(900)
    assert {"Log note", "New deal", "Edit", "New ticket"} <= {b["text"] for b in card.buttons}
    rig.send(tg.press(sam, card, "Log note"))
    question = tg.last_sent(900)
    assert "<b>Log a note</b> · question 1 of 2" in question.text and "<b>Note</b>" in question.text
    rig.send(tg.private_text(sam, "Called them about the renewal"))
    kind = tg.last_sent(900)
    assert [b["text"] for b in kind.buttons] == ["note", "call", "email", "meeting", "Skip"]
    rig.send(tg.press(sam, kind, "call"))
    assert f"Call logged on Acme Corp (#{acme})." in tg.last_sent(900).text
    [note] = rows(rig.app, Interaction)
    assert (note.text, note.kind, note.channel) == ("Called them about the renewal", "call", "telegram")
    # Pressing an answer under the finished question does nothing but say so.
    rig.send(tg.press(sam, kind, "email"))
    assert tg.calls_of("answerCallbackQuery")[-1]["text"] == "That question is no longer open."
    assert len(rows(rig.app, Interaction)) == 1


def test_in_a_group_questions_ask_for_a_reply(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    _acme_with_owner_on_slack(rig.app)
    sam = rig.staff(900, "Sam Support")
    ask = tg.group_text(SUPPORT_CHAT, sam, "/ticket note 1")
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "/ticket new acme Toner low"))
    rig.send(ask)
    question = tg.last_sent(SUPPORT_CHAT)
    assert question["reply_markup"] == {"force_reply": True, "selective": True, "input_field_placeholder": "Note"}
    assert question["reply_parameters"]["message_id"] == ask["message"]["message_id"]
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "waiting for the courier", reply_to=tg.message(question)))
    assert "Internal note added to ticket #1" in tg.last_sent(SUPPORT_CHAT).text
    # Someone else's message in the group is not Sam's answer.
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "/ticket note 1"))
    rig.send(tg.group_text(SUPPORT_CHAT, rig.staff(901, "Ola Other"), "not my form"))
    assert len(rows(rig.app, FormSession)) == 1
