"""Campaigns through the real dispatcher and database: drafting, preview, the start checks, runs
frozen once, consent honoured at send time, pause/resume/cancel, recurring runs, triggers and
reporting with attribution. The outbox is worked by ``deliver`` below, which does what the
worker's sender does with each row (claim, prepare, mark sent); the real sender and platforms
are exercised in test_campaign_delivery.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from crm_core import outbox, scheduling
from crm_core.campaigns import delivery, reporting, triggers
from crm_core.models import (
    Campaign,
    CampaignRecipient,
    CampaignRun,
    CampaignStatus,
    Consent,
    OutboxMessage,
    OutboxStatus,
    Product,
    Role,
    ScheduledJob,
    TicketStatus,
)
from crm_core.services import consent, customers, orders, segments, tickets
from tests.support import count, rows

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # a Monday


def _customer(
    app,
    name: str,
    *,
    country: str = "DE",
    language: str | None = None,
    telegram: str | None = None,
    slack: str | None = None,
    tags: str | None = None,
) -> int:
    fields = {"country": country}
    if language:
        fields["language"] = language
    if tags:
        fields["tags"] = tags
    with app.uow() as uow:
        customer = customers.create_customer(uow, name, fields)
        if telegram:
            consent.opt_in(uow, customer.id, "telegram", telegram, "started the bot")
        if slack:
            consent.opt_in(uow, customer.id, "slack", slack, "admin test")
        return customer.id


def _segment(app, name: str, filter_text: str) -> None:
    with app.uow() as uow:
        segments.create(uow, name, filter_text, None)


def deliver(app, owner: str = "test-sender") -> list[outbox.Claimed]:
    """Send every due row the way the worker's sender does: claim, prepare (campaign rows are rendered
    and re-checked here), then record it as sent. Returns what was "sent"."""
    sent = []
    while True:
        claimed = outbox.claim_due(
            app.session_factory,
            owner=owner,
            platforms=["telegram", "slack", "console"],
            limit=500,
            lease=timedelta(minutes=1),
            default_cap=500,
        )
        if not claimed:
            return sent
        for row in claimed:
            prepared = outbox.prepare(app.session_factory, row, owner, app.plugins.preparers)
            if prepared is None:
                continue
            outbox.mark_sent(app.session_factory, prepared.id, owner, f"m{prepared.id}")
            sent.append(prepared)


def _run_due(app, when: datetime) -> None:
    with time_machine.travel(when, tick=False):
        scheduling.run_due(app.session_factory, tasks=app.plugins.tasks)


def _settle(app) -> None:
    with app.uow() as uow:
        delivery.settle(uow)


@pytest.fixture
def people(app, chat):
    return {
        "manager": chat.user("Mia Manager", Role.MANAGER),
        "rep": chat.user("Sam Sales", Role.SALES),
        "viewer": chat.user("Vic Viewer", Role.VIEWER),
    }


def test_a_manager_drafts_previews_starts_and_sees_it_sent(app, chat, people):
    with time_machine.travel(NOW, tick=False):
        anna = _customer(app, "Anna Alpha", telegram="1001", language="en")
        _customer(app, "Bruno Beta", telegram="1002", language="zh")
        _customer(app, "Carla Gamma", slack="C0SHARED")
        _customer(app, "Dora Delta", country="FR", telegram="1004")  # not in the segment
        _customer(app, "Emil Eps")  # no consent anywhere
        _segment(app, "germany", "country=DE")
        said = chat.say(people["rep"], "/campaign new autumn segment=germany template=campaign_announcement at=now")
        assert "drafted" in said.text, said.text

        preview = chat.say(people["rep"], "/campaign preview autumn").text
        assert "Anna Alpha" in preview and "Hello Anna" in preview
        assert "秋季" in preview  # Bruno's language is Chinese
        assert "3 recipients can be reached" in preview

        refused = chat.say(people["rep"], "/campaign start autumn").text
        assert "can't use /campaign start" in refused, refused
        started = chat.say(people["manager"], "/campaign start autumn").text
        assert "started" in started and "3 recipients" in started, started
    _run_due(app, NOW + timedelta(seconds=1))
    run = rows(app, CampaignRun)[0]
    assert run.recipients == 3 and run.number == 1
    assert {r.platform for r in rows(app, CampaignRecipient)} == {"telegram", "slack"}

    sent = deliver(app)
    assert len(sent) == 3
    anna_message = next(m for m in sent if m.conversation == "1001")
    assert "Hello <b>Anna</b>" in anna_message.payload["formatted_text"]
    assert anna_message.payload["buttons"][0]["command"] == "/stop"
    _settle(app)
    assert rows(app, CampaignRun)[0].status == "done"
    assert rows(app, Campaign)[0].status is CampaignStatus.DONE
    status = chat.say(people["rep"], "/campaign status autumn").text
    assert "Sent" in status and "3" in status and "100%" in status
    # A second scheduler pass for the same time sends nothing again.
    with app.uow() as uow:
        assert delivery.start_run(uow, uow.session.get(Campaign, 1), run.scheduled_for) is None
    assert count(app, OutboxMessage, OutboxMessage.kind == "campaign") == 3
    assert anna in {r.customer_id for r in rows(app, CampaignRecipient)}


def test_opted_out_customers_get_nothing_even_after_queueing(app, chat, people):
    with time_machine.travel(NOW, tick=False):
        stays = _customer(app, "Stays", telegram="2001")
        leaves_early = _customer(app, "Leaves Early", telegram="2002")
        leaves_late = _customer(app, "Leaves Late", telegram="2003")
        with app.uow() as uow:
            consent.opt_out_customer(uow, leaves_early, "telegram", "/stop")
        _segment(app, "everyone", "all")
        chat.say(people["manager"], "/campaign new promo segment=everyone template=campaign_announcement at=now")
        chat.say(people["manager"], "/campaign start promo")
    _run_due(app, NOW + timedelta(seconds=1))
    assert {r.customer_id for r in rows(app, CampaignRecipient)} == {stays, leaves_late}
    # Opting out after the messages were queued still stops theirs.
    with app.uow() as uow:
        consent.opt_out_address(uow, "telegram", "2003", "unsubscribe button")
    sent = deliver(app)
    assert [m.conversation for m in sent] == ["2001"]
    _settle(app)
    with app.uow() as uow:
        report = reporting.campaign_report(uow.session, uow.session.get(Campaign, 1))
    assert (report.total.sent, report.total.opted_out) == (1, 1)


def test_stop_from_a_customer_chat_opts_out_and_is_recorded(app, chat):
    customer = _customer(app, "Telly", telegram="3001")
    with app.uow() as uow:
        from crm_core.models import CustomerChat

        uow.session.add(
            CustomerChat(customer_id=customer, platform="telegram", external_id="3001", conversation="3001")
        )
    from bot.messages import Origin

    origin = Origin(platform="telegram", user_external_id="3001", conversation="3001", is_private=True)
    with time_machine.travel(NOW, tick=False):
        said = chat.say(origin, "/stop", from_button=True)
    assert "no more marketing messages" in said.text
    row = rows(app, Consent)[0]
    assert (row.status, row.opted_out_source, row.opted_out_at) == ("opted_out", "unsubscribe button", NOW)


def test_a_template_failing_for_one_recipient_blocks_the_start(app, chat, people, tmp_path, monkeypatch):
    _customer(app, "Good Name", telegram="4001")
    bad = _customer(app, "X", telegram="4002")
    with app.uow() as uow:
        from crm_core.templating import set_override

        # Fails for customers without a last order date (everyone here): division by a missing value.
        set_override(
            uow.session,
            "campaign_announcement",
            "text",
            "en",
            "Hi {{ customer.first_name }}{% if customer.name == 'X' %}{{ 1 // 0 }}{% endif %}",
            None,
        )
    _segment(app, "all-of-them", "all")
    chat.say(people["manager"], "/campaign new risky segment=all-of-them template=campaign_announcement at=now lang=en")
    said = chat.say(people["manager"], "/campaign start risky").text
    assert "Not started" in said and f"#{bad}" in said and "1 of 2" in said, said
    assert rows(app, Campaign)[0].status is CampaignStatus.DRAFT
    assert count(app, ScheduledJob, ScheduledJob.id.like("campaign:%")) == 0


def test_a_large_campaign_needs_a_second_confirmation(app, chat, people):
    for i in range(4):
        _customer(app, f"Big {i}", telegram=str(5000 + i))
    _segment(app, "big", "all")
    app.settings.extra["CHATCRM_CAMPAIGN_CONFIRM_OVER"] = "3"
    chat.say(people["manager"], "/campaign new mass segment=big template=campaign_announcement at=now")
    asked = chat.say(people["manager"], "/campaign start mass")
    assert "must confirm" in asked.text and asked.reply.buttons[0].command == "/campaign confirm mass"
    assert rows(app, Campaign)[0].status is CampaignStatus.DRAFT
    refused = chat.say(people["rep"], "/campaign confirm mass").text
    assert rows(app, Campaign)[0].status is CampaignStatus.DRAFT, refused
    done = chat.say(people["manager"], "/campaign confirm mass").text
    assert "started" in done
    campaign = rows(app, Campaign)[0]
    assert campaign.confirmed_size == 4 and campaign.confirmed_by_id is not None


def test_pause_holds_waiting_messages_and_resume_sends_them(app, chat, people):
    with time_machine.travel(NOW, tick=False):
        for i in range(5):
            _customer(app, f"P{i}", telegram=str(6000 + i))
        _segment(app, "p", "all")
        chat.say(people["manager"], "/campaign new paused segment=p template=campaign_announcement at=now")
        chat.say(people["manager"], "/campaign start paused")
    _run_due(app, NOW + timedelta(seconds=1))
    # The sender holds two rows in memory when the pause comes.
    claimed = outbox.claim_due(
        app.session_factory, owner="s", platforms=["telegram"], limit=2, lease=timedelta(minutes=1)
    )
    assert "paused" in chat.say(people["manager"], "/campaign pause paused").text
    assert [outbox.prepare(app.session_factory, row, "s", app.plugins.preparers) for row in claimed] == [None, None]
    assert deliver(app) == []
    assert count(app, OutboxMessage, OutboxMessage.status == OutboxStatus.HELD) == 5
    chat.say(people["manager"], "/campaign resume paused")
    assert len(deliver(app)) == 5
    chat.say(people["manager"], "/campaign status paused")
    _settle(app)
    assert rows(app, Campaign)[0].status is CampaignStatus.DONE


def test_cancel_drops_waiting_messages(app, chat, people):
    for i in range(3):
        _customer(app, f"C{i}", telegram=str(7000 + i))
    _segment(app, "c", "all")
    with time_machine.travel(NOW, tick=False):
        chat.say(people["manager"], "/campaign new gone segment=c template=campaign_announcement at=now")
        chat.say(people["manager"], "/campaign start gone")
    _run_due(app, NOW + timedelta(seconds=1))
    assert "3 messages will not be sent" in chat.say(people["manager"], "/campaign cancel gone").text
    assert deliver(app) == []
    _settle(app)
    with app.uow() as uow:
        report = reporting.campaign_report(uow.session, uow.session.get(Campaign, 1))
    assert (report.total.cancelled, report.total.sent, report.runs[0].status) == (3, 0, "cancelled")


def test_a_weekly_campaign_sends_each_run_once(app, chat, people):
    for i in range(2):
        _customer(app, f"W{i}", telegram=str(8000 + i))
    _segment(app, "w", "all")
    with time_machine.travel(NOW, tick=False):
        chat.say(
            people["manager"],
            "/campaign new weekly segment=w template=campaign_announcement at=2026-11-02 11:00 repeat=weekly",
        )
        chat.say(people["manager"], "/campaign start weekly")
    first = datetime(2026, 11, 2, 11, 0, tzinfo=UTC)
    for week in range(3):
        due = first + timedelta(weeks=week)
        _run_due(app, due + timedelta(seconds=5))
        _run_due(app, due + timedelta(seconds=30))  # a second pass in the same week sends nothing
        deliver(app)
        _settle(app)
    runs = rows(app, CampaignRun)
    assert [r.number for r in runs] == [1, 2, 3]
    assert count(app, OutboxMessage, OutboxMessage.kind == "campaign", OutboxMessage.status == OutboxStatus.SENT) == 6
    assert rows(app, Campaign)[0].status is CampaignStatus.SCHEDULED


def test_attributed_revenue_matches_a_hand_computed_fixture(app, chat, people):
    """Messages go out on Nov 2 (run 1) and Nov 9 (run 2). Orders: A on Nov 5 (40.00, run 1), A on
    Nov 12 (10.00, run 2: last touch), B on Nov 1 (before any message: not counted), B on Nov 20
    (25.00, run 2: 11 days after Nov 9), C on Nov 30 (21 days after Nov 9: not counted).
    Expected: run 1 = 1 order / 40.00; run 2 = 2 orders / 35.00; total 3 orders / 75.00."""
    a = _customer(app, "A", telegram="9001")
    b = _customer(app, "B", telegram="9002")
    c = _customer(app, "C", telegram="9003")
    with app.uow() as uow:
        product = Product(sku="P1", name="Widget", price_cents=100)
        uow.session.add(product)
        uow.session.flush()
        product_id = product.id
    _segment(app, "abc", "all")
    with time_machine.travel(NOW - timedelta(hours=1), tick=False):
        chat.say(
            people["manager"],
            "/campaign new attr segment=abc template=campaign_announcement at=2026-11-02 10:00 repeat=weekly",
        )
        chat.say(people["manager"], "/campaign start attr")

    def order(customer_id: int, day: int, cents: int) -> None:
        with app.uow() as uow:
            orders.create_order(
                uow,
                customer_id,
                [orders.LineInput(product_id, 1, cents)],
                ordered_at=datetime(2026, 11, day, 15, 0, tzinfo=UTC),
            )

    for week in range(2):
        when = NOW + timedelta(weeks=week)
        _run_due(app, when + timedelta(seconds=1))
        with time_machine.travel(when + timedelta(minutes=1), tick=False):
            deliver(app)
    order(b, 1, 9900)
    order(a, 5, 4000)
    order(a, 12, 1000)
    order(b, 20, 2500)
    order(c, 30, 7700)
    _settle(app)
    with app.uow() as uow:
        report = reporting.campaign_report(uow.session, uow.session.get(Campaign, 1))
    assert [(r.counts.orders, r.counts.revenue) for r in report.runs] == [(1, {"EUR": 4000}), (2, {"EUR": 3500})]
    assert (report.total.orders, report.total.revenue) == (3, {"EUR": 7500})
    assert "€75.00" in chat.say(people["rep"], "/campaign status attr").text
    # The managers' weekly digest of the last week of November carries the campaign's line.
    from crm_core.models import DigestFrequency
    from crm_core.services import digests

    with app.uow() as uow:
        digest = digests.build_digest(uow.session, DigestFrequency.WEEKLY, datetime(2026, 11, 16).date(), "UTC", "EUR")
        line = digests.digest_context(digest)["campaigns"]
    assert line == [
        {"name": "attr", "sent": 6, "failed": 0, "pending": 0, "opted_out": 0, "orders": 3, "revenue": "€75.00"}
    ]


def test_trigger_campaign_after_a_resolved_ticket(app, chat, people):
    customer = _customer(app, "Ticketed", telegram="9101")
    _segment(app, "t", "all")
    with time_machine.travel(NOW, tick=False):
        chat.say(
            people["manager"],
            "/campaign new aftercare segment=t template=campaign_ticket_resolved trigger=ticket_resolved+1d",
        )
        assert "started" in chat.say(people["manager"], "/campaign start aftercare").text
    with time_machine.travel(NOW + timedelta(hours=2), tick=False), app.uow() as uow:
        ticket = tickets.create_ticket(uow, customer, "Printer jams")
        tickets.set_status(uow, ticket.id, TicketStatus.RESOLVED)
    with app.uow() as uow:
        campaign = uow.session.get(Campaign, 1)
        assert triggers.scan(uow, campaign, NOW + timedelta(hours=12)) is None  # not a day yet
        assert triggers.scan(uow, campaign, NOW + timedelta(days=1, hours=3)) is not None
        assert triggers.scan(uow, campaign, NOW + timedelta(days=1, hours=4)) is None  # answered once
    sent = deliver(app)
    assert len(sent) == 1 and "Printer jams" in sent[0].payload["formatted_text"]


def test_bad_input_gets_a_clear_message_and_writes_nothing(app, chat, people):
    _segment(app, "s", "all")
    cases = {
        "/campaign new x segment=nope template=campaign_announcement at=now": "nope",
        "/campaign new x segment=s template=nosuch at=now": "template='nosuch' does not exist",
        "/campaign new x segment=s template=campaign_announcement at=someday": "not a time",
        "/campaign new x segment=s template=campaign_announcement at=now repeat=daily": "repeat=",
        "/campaign new x segment=s template=campaign_announcement trigger=birthday+1d": "trigger=",
        "/campaign new x segment=s template=campaign_announcement colour=red": "not an option",
        "/campaign new BAD! segment=s template=campaign_announcement at=now": "not a campaign name",
        "/campaign start nosuch": "no campaign",
        "/campaign new x segment=s template=campaign_announcement at=2026-02-30 10:00": "there is no 2026-02-30",
    }
    for line, expected in cases.items():
        said = chat.say(people["manager"], line).text
        assert expected.lower() in said.lower(), (line, said)
    assert count(app, Campaign) == 0


@pytest.mark.parametrize("at", ['at="tomorrow 10:00"', "at='tomorrow 10:00'", "at=“tomorrow 10:00”"])
def test_a_quoted_time_is_read(app, chat, people, at):
    _segment(app, "s", "all")
    with time_machine.travel(NOW, tick=False):
        said = chat.say(people["manager"], f"/campaign new q segment=s template=campaign_announcement {at}")
    assert "drafted" in said.text, said.text
    [campaign] = rows(app, Campaign)
    assert campaign.starts_at == datetime(2026, 11, 3, 10, 0, tzinfo=UTC)


def test_an_admin_makes_a_campaign_template_from_chat_and_a_campaign_uses_it(app, chat, people):
    admin = chat.user("Ada Admin", Role.ADMIN)
    _customer(app, "Zoe Zeta", telegram="9201")
    _segment(app, "z", "all")
    made = chat.say(admin, "/template set campaign_spring text en Spring is here, {{ customer.first_name }}!").text
    assert "campaign_spring" in made and "Spring is here, Zoë!" in made, made
    assert "campaign_spring" in chat.say(admin, "/template list").text
    chat.say(people["manager"], "/campaign new spring segment=z template=campaign_spring at=now")
    assert "Spring is here, Zoe!" in chat.say(people["manager"], "/campaign preview spring").text
    # Only campaign_* names can be made from chat.
    assert "There is no template 'anything'" in chat.say(admin, "/template set anything text en Hi").text


def test_a_one_off_paused_past_its_time_goes_out_when_resumed(app, chat, people):
    _customer(app, "Late", telegram="9301")
    _segment(app, "late", "all")
    with time_machine.travel(NOW, tick=False):
        chat.say(people["manager"], "/campaign new later segment=late template=campaign_announcement at=in 1h")
        chat.say(people["manager"], "/campaign start later")
        chat.say(people["manager"], "/campaign pause later")
    _run_due(app, NOW + timedelta(hours=2))  # its time comes while paused: skipped, nothing frozen
    assert count(app, CampaignRun) == 0
    with time_machine.travel(NOW + timedelta(hours=3), tick=False):
        chat.say(people["manager"], "/campaign resume later")
    _run_due(app, NOW + timedelta(hours=3, seconds=1))
    assert len(deliver(app)) == 1
