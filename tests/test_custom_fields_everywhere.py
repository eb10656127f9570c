"""Custom fields of deals and tickets (set on create and edit, shown on their cards) and required
fields of every entity (refused when missing, asked for by forms), on both databases; a Slack
deal card and a Telegram ticket card show them too."""

from __future__ import annotations

import pytest

from bot.dispatch import FormRejected
from bot.messages import Tone
from crm_core.models import Deal, Role, Ticket
from crm_core.services import customers, tickets
from tests.slack_support import ADMIN, SlackServer, block_texts, slack, slack_api  # noqa: F401 - fixtures
from tests.support import count
from tests.telegram_rig import SUPPORT_CHAT


def _fields(reply) -> dict[str, str]:
    return {f.label: f.value for f in reply.fields}


@pytest.fixture
def admin(chat):
    return chat.user("Ada Admin", Role.ADMIN)


@pytest.fixture
def rep(chat, app, admin):
    with app.uow() as uow:
        customers.create_customer(uow, "Acme Corp")
    for line in (
        "/field new deal region choice choices=EMEA|APAC required=yes",
        "/field new deal budget_code text",
        "/field new ticket severity choice choices=s1|s2|s3 required=yes",
        "/field new ticket rma date",
    ):
        assert chat.say(admin, line).reply.tone is Tone.SUCCESS
    return chat.user("Rita Rep", Role.SALES)


def test_field_hint_names_the_commands_of_its_entity(chat, admin):
    text = chat.say(admin, "/field new deal source text").reply.text
    assert text == (
        "Deal field 'source' (text) added. Set it with /deal new <customer> <title> source=… or /deal edit <id> source=…."
    )
    assert "/ticket edit <id> sev=…" in chat.say(admin, "/field new ticket sev text required=yes").reply.text


def test_deal_custom_fields_are_set_on_create_and_shown(chat, rep, app):
    reply = chat.say(rep, "/deal new acme Printers amount=1000 region=emea budget_code=BC-7").reply
    assert reply.tone is Tone.SUCCESS, reply.text
    fields = _fields(reply)
    assert fields["Region"] == "EMEA" and fields["Budget code"] == "BC-7"
    assert _fields(chat.say(rep, "/deal 1").reply)["Region"] == "EMEA"


@pytest.mark.parametrize(
    "line, message",
    [
        ("/deal new acme Printers", "Required field missing: Region (region=…)."),
        ("/deal new acme Printers region=mars", "Region must be one of: EMEA, APAC."),
        (
            "/deal new acme Printers region=emea colour=red",
            "Unknown option colour= (options: amount=, close=, stage=, budget_code=, region=).",
        ),
    ],
)
def test_deal_required_and_bad_fields_are_refused_and_write_nothing(chat, rep, app, line, message):
    reply = chat.say(rep, line).reply
    assert (reply.tone, reply.text) == (Tone.ERROR, message)
    assert count(app, Deal) == 0


def test_new_deal_form_asks_for_custom_fields_and_insists_on_required_ones(chat, rep, app):
    form = chat.say(rep, "/deal new #1", from_button=True, wants_form=True).reply.form
    inputs = {i.name: i for i in form.inputs}
    assert form.fixed == {"customer": "#1"}
    assert {"title", "amount", "region", "budget_code"} <= set(inputs)
    assert inputs["region"].required and inputs["region"].choices == ("EMEA", "APAC")
    assert not inputs["budget_code"].required
    values = {
        "customer": "#1",
        "title": "Chairs",
        "amount": "",
        "close": "",
        "stage": "",
        "region": "",
        "budget_code": "",
    }
    with pytest.raises(FormRejected) as rejected:
        chat.say(rep, "/deal new", form_values=values)
    assert rejected.value.errors == {"region": "Region is required (region=…)"}
    reply = chat.say(rep, "/deal new", form_values={**values, "region": "APAC"}).reply
    assert reply.tone is Tone.SUCCESS and _fields(reply)["Region"] == "APAC"
    assert "Budget code" not in _fields(reply)


def test_ticket_custom_fields_on_create_and_edit(chat, rep, app):
    agent = chat.user("Sam Support", Role.SUPPORT)
    missing = chat.say(agent, "/ticket new acme Printer jams high").reply
    assert missing.text == "Required field missing: Severity (severity=…)."
    assert count(app, Ticket) == 0
    reply = chat.say(agent, "/ticket new acme Printer jams high severity=s1 rma=2026-03-01").reply
    assert reply.tone is Tone.SUCCESS, reply.text
    fields = _fields(reply)
    assert (fields["Priority"], fields["Severity"], fields["Rma"]) == ("high", "s1", "2026-03-01")
    edited = chat.say(agent, '/ticket edit 1 severity=s3 subject="Printer on fire" rma=').reply
    assert edited.text == "Updated rma, severity, subject."
    assert edited.title == "Ticket #1: Printer on fire"
    assert _fields(edited)["Severity"] == "s3" and "Rma" not in _fields(edited)
    cleared = chat.say(agent, "/ticket edit 1 severity=").reply
    assert (cleared.tone, cleared.text) == (Tone.ERROR, "Severity is required and cannot be cleared.")
    assert chat.say(agent, "/ticket edit 1 colour=red").reply.text == (
        "Unknown option colour= (options: subject=, rma=, severity=)."
    )
    form = chat.say(agent, "/ticket edit 1", from_button=True, wants_form=True).reply.form
    assert {i.name: i.initial for i in form.inputs} == {"subject": "Printer on fire", "rma": None, "severity": "s3"}
    # A customer's own message still opens a ticket: required fields are asked of staff only.
    assert chat.say(agent, "/ticket status 1 closed").reply.tone is Tone.SUCCESS
    with app.uow() as uow:
        opened = tickets.customer_wrote(uow, 1, "Hello, my printer", channel="telegram")
    assert opened.opened


def test_a_required_customer_field_is_named_when_missing(chat, admin, app):
    chat.say(admin, "/field new customer industry text required=yes")
    reply = chat.say(admin, "/customer new Initech").reply
    assert (reply.tone, reply.text) == (Tone.ERROR, "Required field missing: Industry (industry=…).")
    form = chat.say(admin, "/customer new", from_button=True, wants_form=True).reply.form
    assert [(i.name, i.required) for i in form.inputs] == [("name", True), ("industry", True)]
    assert chat.say(admin, "/customer new Initech industry=software").reply.tone is Tone.SUCCESS


def test_slack_deal_card_shows_custom_fields(slack: SlackServer):
    slack.ask("/field new deal region choice choices=EMEA|APAC required=yes")
    slack.ask("/customer new Acme")
    card = slack.ask("/deal new acme Printers region=apac")
    assert "*Region*\nAPAC" in block_texts(card)


def test_telegram_ticket_card_shows_custom_fields(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    agent = rig.staff(901, "Sam Support", Role.ADMIN)
    rig.send(tg.group_text(SUPPORT_CHAT, agent, "/field new ticket severity choice choices=s1|s2"))
    rig.send(tg.group_text(SUPPORT_CHAT, agent, "/customer new Acme"))
    rig.send(tg.group_text(SUPPORT_CHAT, agent, "/ticket new acme Printer jams severity=s2"))
    assert "Severity" in tg.last_sent(SUPPORT_CHAT).text and "s2" in tg.last_sent(SUPPORT_CHAT).text
