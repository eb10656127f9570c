"""Managers' digests: the numbers against a hand-computed fixture, the chart, the /digest commands,
and the scheduled digest delivered by the worker at its local time; on both databases."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import time_machine

from bot.messages import Tone
from crm_core import i18n
from crm_core.models import (
    Customer,
    CustomerScore,
    Deal,
    DealStage,
    DealStageChange,
    DigestFrequency,
    FollowUp,
    FollowUpStatus,
    Order,
    OrderKind,
    OutboxMessage,
    Role,
    ScheduledJob,
    Ticket,
    User,
)
from crm_core.reports.digest_numbers import FunnelStep, RepCount, StageValue
from crm_core.services import digests
from crm_core.templating import render_message
from tests.fakes.chat_api import FakeChatApi
from tests.fakes.http_sender import HttpSender
from tests.fakes.worker import chat_worker

BERLIN = "Europe/Berlin"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def media(tmp_path, monkeypatch):
    folder = tmp_path / "media"
    monkeypatch.setenv("CHATCRM_MEDIA_DIR", str(folder))
    return folder


def utc(day: int, hour: int, minute: int = 0, month: int = 6) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def fixture_data(app):
    """A small CRM whose digest numbers are worked out by hand below.

    The digest is the daily one for Tuesday 9 June 2026 in Berlin (CEST, UTC+2): the period is
    [8 June 22:00 UTC, 9 June 22:00 UTC), the previous one the 24 hours before.
    """
    with app.uow() as uow:
        s = uow.session
        rita, sam = User(name="Rita Rep", role=Role.SALES), User(name="Sam Sales", role=Role.SALES)
        s.add_all([rita, sam])
        c1 = Customer(name="Old Customer", created_at=utc(1, 12))
        c2 = Customer(name="Early Tuesday", created_at=utc(8, 23))  # 01:00 Tuesday local: current
        c3 = Customer(name="Late Tuesday", created_at=utc(9, 21, 59))  # 23:59 local: current
        c4 = Customer(name="Wednesday", created_at=utc(9, 22))  # 00:00 Wednesday: next period
        c5 = Customer(name="Monday", created_at=utc(8, 12))  # previous period
        s.add_all([c1, c2, c3, c4, c5])
        s.flush()
        s.add_all(
            [
                Order(number="O1", customer_id=c1.id, ordered_at=utc(9, 8), total_cents=10000),
                Order(number="O2", customer_id=c2.id, ordered_at=utc(9, 9), total_cents=25050),
                Order(
                    number="O3",
                    customer_id=c1.id,
                    kind=OrderKind.CANCELLATION,
                    ordered_at=utc(9, 10),
                    total_cents=-5000,
                ),
                Order(number="O4", customer_id=c1.id, ordered_at=utc(9, 11), total_cents=99900, currency="USD"),
                Order(number="O5", customer_id=c5.id, ordered_at=utc(8, 12), total_cents=8000),
            ]
        )

        def deal(title, amount, stage, probability, created, history, currency="EUR"):
            d = Deal(
                title=title,
                customer_id=c1.id,
                amount_cents=amount,
                stage=stage,
                probability=probability,
                currency=currency,
                created_at=created,
            )
            s.add(d)
            s.flush()
            previous = None
            for to_stage, at in history:
                s.add(DealStageChange(deal_id=d.id, from_stage=previous, to_stage=to_stage, changed_at=at))
                previous = to_stage
            return d

        L, Q, P, N, W, X = (
            DealStage.LEAD,
            DealStage.QUALIFIED,
            DealStage.PROPOSAL,
            DealStage.NEGOTIATION,
            DealStage.WON,
            DealStage.LOST,
        )
        deal("D1", 1_000_000, P, 60, utc(1, 9), [(L, utc(1, 9)), (Q, utc(9, 10)), (P, utc(9, 12))])
        deal("D2", 500_000, W, 100, utc(8, 10), [(L, utc(8, 10)), (Q, utc(8, 15)), (W, utc(9, 9))])
        deal("D3", 200_000, X, 0, utc(9, 8), [(L, utc(9, 8)), (X, utc(9, 16))])
        deal("D4", 800_000, N, 80, utc(2, 9), [(L, utc(2, 9)), (N, utc(5, 9))])
        deal("D5", 300_000, L, 10, utc(9, 20), [(L, utc(9, 20))])
        deal("D6", 100_000, L, 10, utc(9, 13), [(L, utc(9, 13))], currency="USD")
        deal("D7", 700_000, L, 10, utc(10, 9), [(L, utc(10, 9))])

        s.add_all(
            [
                Ticket(
                    customer_id=c1.id,
                    subject="T1",
                    created_at=utc(9, 8),
                    first_responded_at=utc(9, 9),
                    resolved_at=utc(9, 12),
                    resolve_due_at=utc(10, 8),
                    rating=5,
                    rated_at=utc(9, 13),
                ),
                Ticket(
                    customer_id=c1.id,
                    subject="T2",
                    created_at=utc(9, 10),
                    first_responded_at=utc(9, 10, 30),
                    resolve_due_at=utc(9, 20),
                ),
                Ticket(
                    customer_id=c1.id,
                    subject="T3",
                    created_at=utc(8, 9),
                    first_responded_at=utc(8, 11),
                    resolved_at=utc(9, 9),
                    resolve_due_at=utc(8, 17),
                    rating=3,
                    rated_at=utc(9, 9, 30),
                ),
                Ticket(
                    customer_id=c1.id,
                    subject="T4",
                    created_at=utc(9, 11),
                    first_responded_at=utc(9, 14),
                    resolve_due_at=utc(12, 8),
                ),
                Ticket(
                    customer_id=c1.id,
                    subject="T5",
                    created_at=utc(5, 9),
                    resolve_due_at=utc(6, 9),
                    closed_at=utc(8, 20),
                ),
            ]
        )
        s.flush()

        def followup(user, due, status, done_at=None):
            s.add(
                FollowUp(
                    customer_id=c1.id,
                    user_id=user.id,
                    due_at=due,
                    text="call",
                    status=status,
                    done_at=done_at,
                    created_at=utc(1, 9),
                )
            )

        followup(rita, utc(9, 15), FollowUpStatus.REMINDED)
        followup(rita, utc(9, 9), FollowUpStatus.DONE, done_at=utc(9, 23))  # done after the period: overdue at its end
        followup(sam, utc(8, 10), FollowUpStatus.PENDING)
        followup(sam, utc(9, 10), FollowUpStatus.DONE, done_at=utc(9, 11))
        followup(sam, utc(10, 9), FollowUpStatus.PENDING)  # not yet due
        followup(rita, utc(9, 8), FollowUpStatus.CANCELLED)

        # Churn risk from the nightly model: at or above 60% is listed per owner, riskiest first.
        c1.owner_id, c2.owner_id, c3.owner_id, c5.owner_id = rita.id, rita.id, sam.id, sam.id
        s.add_all(
            [
                CustomerScore(customer_id=c1.id, churn_risk=0.65),
                CustomerScore(customer_id=c2.id, churn_risk=0.82),
                CustomerScore(customer_id=c3.id, churn_risk=0.7),
                CustomerScore(customer_id=c5.id, churn_risk=0.4),
            ]
        )


def test_digest_numbers_equal_the_hand_computed_fixture(app, fixture_data):
    with app.uow() as uow:
        digest = digests.build_digest(uow.session, DigestFrequency.DAILY, date(2026, 6, 10), BERLIN, "EUR")
    cur, prev = digest.current, digest.previous
    assert (cur.period.start, cur.period.end, cur.period.label) == (utc(8, 22), utc(9, 22), "2026-06-09")
    assert (prev.period.start, prev.period.end) == (utc(7, 22), utc(8, 22))

    assert (cur.new_customers, prev.new_customers) == (2, 1)
    # O1 + O2 + O4 (USD) are purchases; revenue in EUR: 100.00 + 250.50 − 50.00 (cancellation), and $999.00 apart.
    assert (cur.orders, cur.revenue_cents, cur.revenue_other) == (3, 30050, {"USD": 99900})
    assert cur.revenue == {"EUR": 30050, "USD": 99900}
    assert (prev.orders, prev.revenue_cents) == (1, 8000)
    assert (cur.deals_won, cur.won_cents, cur.deals_lost) == (1, 500_000, 1)
    assert (prev.deals_won, prev.deals_lost) == (0, 0)

    assert cur.pipeline == (
        # D5 (10 %) and D6 (USD: counted, its value kept apart, not added to the euros)
        StageValue("lead", 2, 300_000, 30_000, (("USD", 100_000, 10_000),)),
        StageValue("qualified", 0, 0, 0),
        StageValue("proposal", 1, 1_000_000, 600_000),  # D1 at its own 60 %
        StageValue("negotiation", 1, 800_000, 640_000),  # D4 at its own 80 %
    )
    assert (cur.pipeline_cents, cur.weighted_cents) == (2_100_000, 1_270_000)
    assert cur.pipeline_totals == {"EUR": 2_100_000, "USD": 100_000}
    assert prev.pipeline == (
        StageValue("lead", 1, 1_000_000, 100_000),  # D1 was a lead then: the lead default 10 %
        StageValue("qualified", 1, 500_000, 125_000),  # D2 was qualified: 25 %
        StageValue("proposal", 0, 0, 0),
        StageValue("negotiation", 1, 800_000, 640_000),
    )
    assert (prev.pipeline_cents, prev.weighted_cents) == (2_300_000, 865_000)

    assert cur.funnel == (
        FunnelStep("lead", "qualified", 3, 0),  # D3 (lost), D5, D6 entered; none went on
        FunnelStep("qualified", "proposal", 1, 1),  # D1
        FunnelStep("proposal", "negotiation", 1, 0),  # D1
        FunnelStep("negotiation", "won", 0, 0),
    )
    assert prev.funnel[:2] == (FunnelStep("lead", "qualified", 1, 1), FunnelStep("qualified", "proposal", 1, 0))
    assert cur.funnel[0].rate == 0 and cur.funnel[1].rate == 1 and cur.funnel[3].rate is None

    assert (cur.tickets_opened, cur.tickets_resolved, cur.tickets_overdue) == (3, 2, 1)
    assert (prev.tickets_opened, prev.tickets_resolved, prev.tickets_overdue) == (1, 0, 1)
    assert cur.median_first_response_seconds == 3600  # 30, 60 and 180 minutes
    assert prev.median_first_response_seconds == 7200
    assert (cur.satisfaction, cur.ratings) == (4.0, 2)
    assert (prev.satisfaction, prev.ratings) == (None, 0)

    assert cur.followups_overdue == (RepCount("Rita Rep", 2), RepCount("Sam Sales", 1))
    # The chart's revenue trend: 14 local days ending with the period.
    assert [cents for _, cents in digest.trend] == [0] * 12 + [8000, 30050]
    assert [label for label, _ in digest.trend][-2:] == ["06-08", "06-09"]


def test_the_digest_renders_those_numbers(app, fixture_data):
    with app.uow() as uow:
        digest = digests.build_digest(uow.session, DigestFrequency.DAILY, date(2026, 6, 10), BERLIN, "EUR")
        text = render_message(uow.session, "digest", "console", "en", digests.digest_context(digest)).text
        # The recipient's language writes the context's days, amounts and words.
        with i18n.use_language("zh"):
            blocks = render_message(uow.session, "digest", "slack", "zh", digests.digest_context(digest)).blocks
    assert text.splitlines()[:5] == [
        "Daily digest · Jun 9, 2026 (compared with Jun 8, 2026)",
        "New customers: 2 (+1)",
        # Each currency as stored: the dollars are shown beside the euros, never added to them.
        "Orders: 3 (+2) · revenue €300.50 + $999.00 (EUR +276%, USD new; before €80.00)",
        "Deals: 1 won (+1, €5,000.00) · 1 lost (+1)",
        "Pipeline: €21,000.00 + $1,000.00 open · weighted forecast €12,700.00 + $100.00 "
        "(EUR +47%, USD new; before €8,650.00)",
    ]
    assert "Funnel: lead→qualified 0% (0/3) · qualified→proposal 100% (1/1)" in text
    assert "Tickets: 3 opened (+2) · 2 resolved (+2) · 1 overdue" in text
    assert "First response (median): 1h 00m (before 2h 00m) · satisfaction 4.0/5 from 2 ratings (before —)" in text
    assert text.splitlines()[-3:] == [
        "Follow-ups overdue: Rita Rep 2, Sam Sales 1",
        "At risk of churning: Rita Rep: Early Tuesday (82%), Old Customer (65%); Sam Sales: Late Tuesday (70%)",
        "Campaigns: none",
    ]
    assert blocks[-1]["text"]["text"] == "*营销活动*\n无"
    assert (
        blocks[-2]["text"]["text"]
        == "*流失风险客户*\n• Rita Rep: Early Tuesday (82%), Old Customer (65%)\n• Sam Sales: Late Tuesday (70%)\n"
    )
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "日报 · 2026年6月9日"}}
    assert blocks[4]["text"]["text"].startswith("*转化漏斗*\n线索→")


def test_the_chart_is_a_png_and_the_cli_does_not_load_matplotlib(app, fixture_data, media):
    with app.uow() as uow:
        digest = digests.build_digest(uow.session, DigestFrequency.WEEKLY, date(2026, 6, 10), BERLIN, "EUR")
    path = digests.draw_chart(digest, {"CHATCRM_MEDIA_DIR": str(media)}, "weekly test")
    assert path == media / "digests" / "weekly-test.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code = "import sys, bot.cli, bot.platforms, bot.handlers; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


# The commands


@pytest.fixture
def manager(chat, app):
    origin = chat.user("Mia Manager", Role.MANAGER)
    with app.uow() as uow:
        uow.session.execute(sa.update(User).where(User.name == "Mia Manager").values(timezone=BERLIN))
    return origin


def test_subscribe_list_unsubscribe(chat, app, manager):
    with time_machine.travel(utc(9, 12), tick=False):
        reply = chat.say(manager, "/digest subscribe daily 07:30").reply
        assert reply.tone is Tone.SUCCESS
        assert reply.text == (
            "This conversation gets the daily at 07:30 Europe/Berlin digest; "
            "the next one comes Jun 10, 2026, 7:30:00\u202fAM Europe/Berlin."
        )
        weekly = chat.say(manager, "/digest subscribe weekly 09:00 America/New_York friday").reply
        assert "weekly on friday at 09:00 America/New_York" in weekly.text
        assert "Jun 12, 2026, 9:00:00\u202fAM America/New_York" in weekly.text
        # Subscribing again changes the subscription rather than adding one.
        chat.say(manager, "/digest subscribe daily 08:00")
    listed = chat.say(manager, "/digest list").reply
    assert [(i.text, i.detail) for i in listed.sections[0].items] == [
        ("console:dm-mia.manager (here)", "daily at 08:00 Europe/Berlin · en"),
        ("console:dm-mia.manager (here)", "weekly on friday at 09:00 America/New_York · en"),
    ]
    with app.uow() as uow:
        jobs = {j.id: j.trigger for j in uow.session.scalars(sa.select(ScheduledJob))}
    assert jobs == {
        "digest:1": {"type": "calendar", "at": "08:00", "timezone": BERLIN},
        "digest:2": {"type": "calendar", "at": "09:00", "timezone": "America/New_York", "weekdays": [4]},
    }
    assert (
        chat.say(manager, "/digest unsubscribe weekly").reply.text
        == "This conversation no longer gets the weekly digest."
    )
    assert chat.say(manager, "/digest unsubscribe weekly").reply.tone is Tone.WARNING
    assert chat.say(manager, "/digest unsubscribe").reply.text == "This conversation no longer gets the daily digest."
    with app.uow() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(ScheduledJob)) == 0


@pytest.mark.parametrize(
    "line, message",
    [
        ("/digest subscribe hourly", "How often must be one of daily, weekly, not 'hourly'."),
        (
            "/digest subscribe daily 25:00",
            "'25:00' is neither a time (HH:MM), a timezone (Europe/Berlin) nor a weekday.",
        ),
        ("/digest subscribe daily 08:00 Mars/Base", "'Mars/Base' is neither a time"),
    ],
)
def test_bad_subscriptions_are_refused(chat, app, manager, line, message):
    reply = chat.say(manager, line).reply
    assert reply.tone is Tone.ERROR and reply.text.startswith(message), reply.text
    assert reply.footer == "Usage: /digest subscribe daily|weekly [HH:MM] [timezone] [weekday]"
    with app.uow() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(ScheduledJob)) == 0


def test_only_managers_and_admins_manage_digests(chat):
    rep = chat.user("Rita Rep", Role.SALES)
    assert (
        chat.say(rep, "/digest subscribe daily").reply.text
        == "Your role (sales) can't use /digest subscribe. Ask an admin if you need it."
    )


def test_digest_now_replies_with_the_numbers_and_the_chart(chat, app, manager, fixture_data):
    with time_machine.travel(utc(10, 7), tick=False):
        reply = chat.say(manager, "/digest now").reply
    assert reply.text.startswith("Daily digest · Jun 9, 2026 (compared with Jun 8, 2026)\nNew customers: 2 (+1)")
    assert reply.image is not None and Path(reply.image.path).read_bytes()[:4] == b"\x89PNG"
    assert reply.image.alt_text == "Revenue trend and open pipeline by stage, Jun 9, 2026"


def test_the_scheduled_digest_arrives_once_at_its_local_time(chat, app, manager, fixture_data, media):
    api = FakeChatApi().start()
    group = chat.user("Mia Manager", Role.MANAGER, platform="telegram")
    try:
        with time_machine.travel(utc(9, 12), tick=True) as traveller:
            reply = chat.say(
                replace(group, conversation="-100200"), "/digest subscribe daily 08:00 Europe/Berlin"
            ).reply
            assert reply.tone is Tone.SUCCESS
            with chat_worker(app, {"telegram": HttpSender("telegram", api.url)}, CHATCRM_MEDIA_DIR=str(media)):
                traveller.move_to(utc(10, 5, 59) + timedelta(seconds=50))
                assert not api.wait_for(1, timeout=0.5)
                traveller.move_to(utc(10, 6))  # 08:00 in Berlin
                assert api.wait_for(1)
                traveller.move_to(utc(10, 12))
                assert not api.wait_for(2, timeout=0.5)
    finally:
        api.close()
    [message] = api.delivered
    assert message.conversation == "-100200"
    assert message.body["text"].startswith("<b>Daily digest · Jun 9, 2026</b> <i>(compared with Jun 8, 2026)</i>")
    assert Path(message.body["image"]).read_bytes()[:4] == b"\x89PNG"
    with app.uow() as uow:
        row = uow.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "digest")).one()
    assert row.idempotency_key == f"digest:1:{utc(8, 22).isoformat()}"
    assert json.loads(json.dumps(row.payload))["image"]["title"] == "Digest Jun 9, 2026"
