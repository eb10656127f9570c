"""/deal new, /deal stage, /deal list and /deal <id>, with their bad input, on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bot.messages import Tone
from crm_core.models import Deal, DealStage, DealStageChange, Role
from crm_core.services import customers


@pytest.fixture
def rep(chat, app):
    origin = chat.user("Rita Rep", Role.SALES)
    with app.uow() as uow:
        customers.create_customer(uow, "Acme Corp")
        customers.create_customer(uow, "Beta GmbH")
    return origin


def _deal(app, deal_id) -> Deal:
    with app.uow() as uow:
        return uow.session.get(Deal, deal_id)


def test_new_deal_with_amount_close_and_stage(chat, rep, app):
    reply = chat.say(rep, "/deal new acme Printer fleet for HQ amount=12.5k close=2027-01-31 stage=qualified").reply
    assert reply.tone is Tone.SUCCESS
    assert reply.title == "Deal #1: Printer fleet for HQ"
    fields = {f.label: f.value for f in reply.fields}
    assert fields == {
        "Customer": "Acme Corp (#1)",
        "Stage": "qualified",
        "Amount": "€12,500.00",
        "Probability": "25%",
        "Expected close": "2027-01-31",
        "Owner": "Rita Rep",
    }
    other = chat.say(rep, '/deal new beta "Coffee" amount="9,500.50 USD"').reply
    assert {f.label: f.value for f in other.fields}["Amount"] == "$9,500.50"


@pytest.mark.parametrize(
    "line, message",
    [
        ("/deal new acme Big amount=lots", "'lots' is not an amount (try 5000, 5,000.50 or 12.5k)."),
        ("/deal new acme Big close=next-week", "'next-week' is not a date (write 2026-12-31)."),
        ("/deal new acme Big stage=won", "Stage must be one of lead, qualified, proposal, negotiation, not 'won'."),
        ("/deal new nobody Big", "No customer matches 'nobody'."),
        ("/deal new acme", "Missing <title>."),
        (
            '/deal new acme "With field" win_reason=price',
            "Unknown option win_reason= (options: amount=, close=, stage=).",
        ),
        ('/deal new acme "With field" extra words', "Unexpected 'extra words' after the quoted title."),
    ],
)
def test_new_deal_bad_input_writes_nothing(chat, rep, app, line, message):
    reply = chat.say(rep, line).reply
    assert reply.tone is Tone.ERROR
    assert reply.text == message
    with app.uow() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(Deal)) == 0


def test_stage_changes_are_recorded_and_lost_keeps_reason(chat, rep, app):
    chat.say(rep, "/deal new acme Printers")
    assert chat.say(rep, "/deal stage 1 neg").reply.text == "Moved from lead to negotiation."
    reply = chat.say(rep, "/deal stage 1 lost went with a cheaper vendor").reply
    assert {f.label: f.value for f in reply.fields}["Lost because"] == "went with a cheaper vendor"
    deal = _deal(app, 1)
    assert deal.stage is DealStage.LOST and deal.probability == 0 and deal.closed_at is not None
    with app.uow() as uow:
        path = [
            (c.from_stage, c.to_stage)
            for c in uow.session.scalars(sa.select(DealStageChange).order_by(DealStageChange.id))
        ]
    assert path == [
        (None, DealStage.LEAD),
        (DealStage.LEAD, DealStage.NEGOTIATION),
        (DealStage.NEGOTIATION, DealStage.LOST),
    ]
    assert chat.say(rep, "/deal stage 1 lost").reply.text == "Deal #1 is already in lost."
    assert chat.say(rep, "/deal stage 99 won").reply.text == "There is no deal #99."
    assert chat.say(rep, "/deal stage x won").reply.text == "Deal # must be a number, not 'x'."


def test_a_deal_that_leaves_lost_drops_its_lost_reason(chat, rep, app):
    chat.say(rep, "/deal new acme Printers")
    assert chat.say(rep, '/deal stage 1 lost "Budget cut"').reply.tone is Tone.SUCCESS
    won = chat.say(rep, "/deal stage 1 won").reply
    assert "Lost because" not in {f.label for f in won.fields}
    assert "Budget cut" not in chat.say(rep, "/deal 1").text
    assert _deal(app, 1).lost_reason is None


def test_stage_button_opens_a_form_with_stage_choices(chat, rep):
    chat.say(rep, "/deal new acme Printers")
    form = chat.say(rep, "/deal stage 1", from_button=True, wants_form=True).reply.form
    assert form.fixed == {"id": "1"}
    stage_input = next(i for i in form.inputs if i.name == "stage")
    assert stage_input.choices == ("lead", "qualified", "proposal", "negotiation", "won", "lost")
    reply = chat.say(rep, "/deal stage", form_values={"id": "1", "stage": "won", "reason": ""}).reply
    assert reply.text == "Moved from lead to won."


def test_deal_list_scopes(chat, rep, app):
    other = chat.user("Sam Sales", Role.SALES)
    chat.say(rep, "/deal new acme Printers amount=1000")
    chat.say(rep, "/deal new beta Coffee amount=500")
    chat.say(other, "/deal new beta Chairs amount=250")
    chat.say(rep, "/deal stage 2 won")
    mine = chat.say(rep, "/deal list").reply
    assert mine.title == "Your open deals"
    assert [i.text for i in mine.sections[0].items] == ["#1 Printers · Acme Corp"]
    assert [i.text for i in chat.say(rep, "/deal list open").reply.sections[0].items] == [
        "#1 Printers · Acme Corp",
        "#3 Chairs · Beta GmbH",
    ]
    beta = chat.say(rep, "/deal list beta").reply
    assert beta.title == "Deals of Beta GmbH"
    assert beta.footer == "2 deals · €7.50 in total".replace("€7.50", "€750.00")
    assert chat.say(rep, "/deal list all stage=won").reply.title == "All deals in won"
    assert chat.say(rep, "/deal 2").reply.title == "Deal #2: Coffee"
