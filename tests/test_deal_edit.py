"""/deal edit (title, amount, expected close, owner, custom fields; by line and by form) and deals
past their close date flagged as overdue on the card, in lists, with /deal list overdue, and in
the digest; on both databases, and over Slack and Telegram."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.messages import Tone
from crm_core import clock, events
from crm_core.models import Deal, DigestFrequency, Role
from crm_core.services import customers, deals, digests
from crm_core.templating import render_message
from tests.slack_support import SlackServer, block_texts, slack, slack_api  # noqa: F401 - fixtures
from tests.support import rows
from tests.telegram_rig import SUPPORT_CHAT


def _fields(reply) -> dict[str, str]:
    return {f.label: f.value for f in reply.fields}


@pytest.fixture
def rep(chat, app):
    admin = chat.user("Ada Admin", Role.ADMIN)
    chat.say(admin, "/field new deal region choice choices=EMEA|APAC")
    chat.user("Sam Sales", Role.SALES)
    with app.uow() as uow:
        customers.create_customer(uow, "Acme Corp")
    origin = chat.user("Rita Rep", Role.SALES)
    assert chat.say(origin, "/deal new acme Printers amount=1000 close=2027-01-31").reply.tone is Tone.SUCCESS
    return origin


def test_edit_changes_every_field_at_once_and_tells_the_world(chat, rep, app):
    reply = chat.say(rep, '/deal edit 1 amount="20k USD" close=2027-03-01 title="Fleet v2" owner=sam region=apac').reply
    assert (reply.tone, reply.text) == (Tone.SUCCESS, "Updated amount, close, owner, region, title.")
    assert reply.title == "Deal #1: Fleet v2"
    fields = _fields(reply)
    assert (fields["Amount"], fields["Expected close"], fields["Owner"], fields["Region"]) == (
        "$20,000.00",
        "2027-03-01",
        "Sam Sales",
        "APAC",
    )
    with app.uow() as uow:
        [event] = events.recent(uow.session, 10, "deal.updated")
    assert event.payload["changes"] == {
        "amount": {"old": "1000.00 EUR", "new": "20000.00 USD"},
        "close": {"old": "2027-01-31", "new": "2027-03-01"},
        "owner": {"old": "Rita Rep", "new": "Sam Sales"},
        "region": {"old": None, "new": "APAC"},
        "title": {"old": "Printers", "new": "Fleet v2"},
    }
    # close= clears the date, owner=nobody unassigns; unchanged values are no change.
    sam = chat.user("Sam Sales", Role.SALES)  # the owner now
    cleared = chat.say(sam, '/deal edit 1 close= owner=nobody title="Fleet v2"').reply
    assert cleared.text == "Updated close, owner."
    assert (_fields(cleared)["Expected close"], _fields(cleared)["Owner"]) == ("—", "unassigned")


@pytest.mark.parametrize(
    "line, message",
    [
        (
            "/deal edit 1 amount=lots close=soon owner=ghost",
            "'lots' is not an amount (try 5000, 5,000.50 or 12.5k); 'soon' is not a date (write 2026-12-31); "
            "no user called 'ghost'.",
        ),
        ("/deal edit 1 title=", "A deal needs a title."),
        ("/deal edit 1 stage=won", "Unknown option stage= (options: title=, amount=, close=, owner=, region=)."),
        ("/deal edit 1", "Nothing to change: give field=value pairs, e.g. amount=12k close=2027-01-31."),
        ("/deal edit 99 amount=5", "There is no deal #99."),
    ],
)
def test_bad_edits_change_nothing(chat, rep, app, line, message):
    reply = chat.say(rep, line).reply
    assert (reply.tone, reply.text) == (Tone.ERROR, message)
    [deal] = rows(app, Deal)
    assert (deal.title, deal.amount_cents, str(deal.expected_close_on)) == ("Printers", 100_000, "2027-01-31")


def test_the_edit_button_opens_a_form_that_saves_only_what_changed(chat, rep):
    card = chat.say(rep, "/deal 1").reply
    edit = next(b for b in card.buttons if b.label == "Edit")
    form = chat.say(rep, edit.command, from_button=True, wants_form=True).reply.form
    values = {i.name: i.initial or "" for i in form.inputs}
    assert values == {
        "title": "Printers",
        "amount": "1000.00 EUR",
        "close": "2027-01-31",
        "owner": "Rita Rep",
        "region": "",
    }
    reply = chat.say(rep, "/deal edit", form_values={**form.fixed, **values, "amount": "1500"}).reply
    assert (reply.text, _fields(reply)["Amount"]) == ("Updated amount.", "€1,500.00")


def test_open_deals_past_their_close_date_are_flagged(chat, rep, app):
    yesterday = clock.utcnow().date() - timedelta(days=1)
    chat.say(rep, f"/deal new acme Late one amount=500 close={yesterday}")
    chat.say(rep, f"/deal new acme Won late amount=700 close={yesterday}")
    chat.say(rep, "/deal stage 3 won")
    late = f"⚠ OVERDUE: was to close {yesterday}"
    assert _fields(chat.say(rep, "/deal 2").reply)["Expected close"] == late
    assert _fields(chat.say(rep, "/deal 3").reply)["Expected close"] == str(yesterday)
    assert _fields(chat.say(rep, "/deal 1").reply)["Expected close"] == "2027-01-31"
    listed = chat.say(rep, "/deal list open").reply
    assert [i.detail.split(" · ")[-2] for i in listed.sections[0].items] == [late, "closes 2027-01-31"]
    assert listed.footer == "2 deals · €1,500.00 in total · 1 overdue"
    overdue = chat.say(rep, "/deal list overdue").reply
    assert overdue.title == "Overdue deals (open past their close date)"
    assert [i.text for i in overdue.sections[0].items] == ["#2 Late one · Acme Corp"]
    card = chat.say(rep, "/customer acme").reply
    assert late in next(s for s in card.sections if s.title.startswith("Open deals")).items[0].detail


def test_the_digest_counts_overdue_deals_per_owner(chat, rep, app):
    today = clock.utcnow().date()
    chat.say(rep, f"/deal new acme Late one amount=500 close={today - timedelta(days=3)}")
    chat.say(rep, f"/deal new acme Late two amount=250 close={today - timedelta(days=1)}")
    chat.say(rep, f"/deal new acme Nobody's amount=100 close={today - timedelta(days=1)} ")
    chat.say(rep, "/deal edit 4 owner=nobody")
    with app.uow() as uow:
        digest = digests.build_digest(uow.session, DigestFrequency.DAILY, today, "UTC", "EUR")
        context = digests.digest_context(digest)
        text = render_message(uow.session, "digest", "console", "en", context).text
        html = render_message(uow.session, "digest", "telegram", "zh", context).text
    assert "Deals overdue: Rita Rep 2 (€750.00), unassigned 1 (€100.00)" in text
    assert "逾期商机：</b>Rita Rep 2（€750.00），" in html


def test_slack_deal_edit(slack: SlackServer):
    slack.ask("/customer new Acme")
    slack.ask("/deal new acme Printers amount=1000")
    card = slack.ask("/deal edit 1 amount=2.5k close=2020-01-01")
    texts = block_texts(card)
    assert "Updated amount, close." in texts and "€2,500.00" in texts and "OVERDUE" in texts


def test_telegram_deal_list_overdue(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    sam = rig.staff(900, "Sam Sales", Role.SALES)
    with rig.app.uow() as uow:
        acme = customers.create_customer(uow, "Acme Corp").id
        deals.create_deal(uow, acme, "Late one", expected_close_on=clock.utcnow().date() - timedelta(days=2))
        deals.create_deal(uow, acme, "On time", expected_close_on=clock.utcnow().date() + timedelta(days=2))
    rig.send(tg.group_text(SUPPORT_CHAT, sam, "/deal list overdue"))
    sent = tg.last_sent(SUPPORT_CHAT).text
    assert "Late one" in sent and "On time" not in sent and "OVERDUE" in sent
