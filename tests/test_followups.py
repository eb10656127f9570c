"""/followup and /tz through the real dispatcher, and the reminder delivered by the real worker
(scheduler + outbox sender) to a fake platform over HTTP, with the clock moved by time-machine:
once at its time, across a restart, across DST; on both databases."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from bot.adapters.console.sender import ConsoleSender
from bot.messages import Tone
from crm_core.models import FollowUp, FollowUpStatus, OutboxMessage, Role, ScheduledJob, User
from crm_core.services import customers, users
from crm_core.services import followups as followups_service
from tests.fakes.chat_api import FakeChatApi
from tests.fakes.http_sender import HttpSender
from tests.fakes.worker import chat_worker, scheduler_of, wait_until

BERLIN = "Europe/Berlin"
# Friday 27 March 2026, 10:00 in Berlin (CET, UTC+1); DST starts on Sunday the 29th at 02:00.
FRIDAY_10_BERLIN = datetime(2026, 3, 27, 9, 0, tzinfo=UTC)


@pytest.fixture
def api():
    fake = FakeChatApi().start()
    yield fake
    fake.close()


@pytest.fixture
def rep(chat, app):
    origin = chat.user("Rita Rep", Role.SALES, platform="telegram")
    with app.uow() as uow:
        user = users.user_for_identity(uow, users.PlatformId("telegram", origin.user_external_id))
        users.set_timezone(uow, user, BERLIN)
    return origin


@pytest.fixture
def acme(app):
    with app.uow() as uow:
        return customers.create_customer(uow, "Acme <Corp> & Co", {"email": "buy@acme.example"}).id


def followups(app) -> list[FollowUp]:
    with app.uow() as uow:
        return list(uow.session.scalars(sa.select(FollowUp).order_by(FollowUp.id)))


def reminders(app) -> list[OutboxMessage]:
    with app.uow() as uow:
        return list(uow.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "reminder")))


def wait_ticks(worker, count: int = 3, timeout: float = 30.0) -> None:
    """Wait (real time) until the leading scheduler has looked at the registry ``count`` more times.

    Generous: a tick right after the clock jumped a day runs that day's jobs, which on a busy
    machine (another pytest-xdist worker beside it) took longer than 10 s."""
    service = scheduler_of(worker)
    deadline = time.monotonic() + timeout
    while not service.is_leader and time.monotonic() < deadline:
        time.sleep(0.01)
    start = service.ticks
    while service.ticks < start + count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert service.ticks >= start + count, "the scheduler is not ticking"


def telegram(api) -> dict:
    return {"telegram": HttpSender("telegram", api.url)}


# The command


@pytest.mark.parametrize(
    "when, due",
    [
        ("in 3d", datetime(2026, 3, 30, 8, 0, tzinfo=UTC)),  # 10:00 CEST, three calendar days on
        ("in 2h", datetime(2026, 3, 27, 11, 0, tzinfo=UTC)),
        ("tomorrow 9:00", datetime(2026, 3, 28, 8, 0, tzinfo=UTC)),  # still CET
        ("friday", datetime(2026, 4, 3, 7, 0, tzinfo=UTC)),  # next week's Friday, 09:00 CEST
        ("2026-12-01 10:00", datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        ("monday 8am", datetime(2026, 3, 30, 6, 0, tzinfo=UTC)),
    ],
)
def test_followup_reads_when_in_the_users_timezone(chat, app, rep, acme, when, due):
    with time_machine.travel(FRIDAY_10_BERLIN, tick=False):
        reply = chat.say(rep, f"/followup acme {when} call about the renewal").reply
    assert reply.tone is Tone.SUCCESS, reply.text
    [followup] = followups(app)
    assert followup.due_at == due
    assert followup.text == "call about the renewal"
    assert followup.timezone == BERLIN
    with app.uow() as uow:
        job = uow.session.get(ScheduledJob, f"followup:{followup.id}")
        assert job.next_run_at == due and job.misfire_grace_seconds is None
    local = due.astimezone(__import__("zoneinfo").ZoneInfo(BERLIN)).strftime("%Y-%m-%d %H:%M")
    assert reply.text.startswith(f"Follow-up #{followup.id} set for {local} {BERLIN}")


def test_a_multi_word_customer_needs_no_quotes(chat, app, rep, acme):
    with app.uow() as uow:
        other = customers.create_customer(uow, "Friday Foods Ltd").id
    with time_machine.travel(FRIDAY_10_BERLIN, tick=False):
        chat.say(rep, "/followup friday foods friday 14:00 bring samples")
    [followup] = followups(app)
    assert followup.customer_id == other
    assert followup.due_at == datetime(2026, 4, 3, 12, 0, tzinfo=UTC)
    assert followup.text == "bring samples"


@pytest.mark.parametrize(
    "line",
    ['/followup acme "tomorrow 9:00" call about the renewal', "/followup acme “tomorrow 9:00” call about the renewal"],
)
def test_a_quoted_time_is_read(chat, app, rep, acme, line):
    with time_machine.travel(FRIDAY_10_BERLIN, tick=False):
        reply = chat.say(rep, line).reply
    assert reply.tone is Tone.SUCCESS, reply.text
    [followup] = followups(app)
    assert (followup.due_at, followup.text) == (datetime(2026, 3, 28, 8, 0, tzinfo=UTC), "call about the renewal")


@pytest.mark.parametrize(
    "line, message",
    [
        ("/followup acme 2026-02-30 10:00 x", "There is no 2026-02-30: February 2026 has 28 days"),
        ('/followup acme "tomorrow at noon" x', "'tomorrow at noon' is not a time I understand"),
        ("/followup acme call about the renewal", "I could not find when: write it as in 3d, in 2h, tomorrow 9:00"),
        ("/followup acme 2020-01-01 10:00 too late", "That time has already passed"),
        ("/followup zebra tomorrow 9:00 call", "No customer matches 'zebra'"),
        ("/followup acme tomorrow 9:00", "Say what to follow up on after the time"),
        ("/followup acme", "Missing <details>"),
    ],
)
def test_bad_followups_are_refused_and_write_nothing(chat, app, rep, acme, line, message):
    with time_machine.travel(FRIDAY_10_BERLIN, tick=False):
        reply = chat.say(rep, line).reply
    assert reply.tone is Tone.ERROR
    assert reply.text.startswith(message), reply.text
    assert followups(app) == []
    with app.uow() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(ScheduledJob)) == 0


def test_viewers_cannot_set_followups(chat, acme):
    viewer = chat.user("Vic Viewer", Role.VIEWER)
    assert (
        chat.say(viewer, "/followup acme tomorrow call").reply.text
        == "Your role (viewer) can't use /followup. Ask an admin if you need it."
    )


def test_list_done_cancel_and_snooze(chat, app, rep, acme):
    other_rep = chat.user("Sam Sales", Role.SALES)
    manager = chat.user("Mia Manager", Role.MANAGER)
    with time_machine.travel(FRIDAY_10_BERLIN, tick=False):
        for when in ("in 1h", "tomorrow 9:00", "monday 9:00"):
            chat.say(rep, f"/followup acme {when} call #{when}")
        listed = chat.say(rep, "/followup list").reply
        assert [i.text for i in listed.sections[0].items] == [
            "#1 call #in 1h · Acme <Corp> & Co",
            "#2 call #tomorrow 9:00 · Acme <Corp> & Co",
            "#3 call #monday 9:00 · Acme <Corp> & Co",
        ]
        assert listed.sections[0].items[1].detail == "due 2026-03-28 09:00 · Rita Rep · pending"
        assert chat.say(other_rep, "/followup list").reply.sections[0].items == ()
        # Someone else's follow-up: refused; a manager may.
        refused = chat.say(other_rep, "/followup done 1").reply
        assert refused.text == "Follow-up #1 is Rita Rep's; only they or a manager can change it."
        assert chat.say(manager, "/followup list all").reply.title == "All open follow-ups"
        assert chat.say(rep, "/followup done 1").reply.text == "Follow-up #1 is done: call #in 1h — Acme <Corp> & Co."
        again = chat.say(rep, "/followup done 1").reply
        # Its state stands in the way, not how the command was typed: no usage line under it.
        assert (again.text, again.footer, again.tone) == ("Follow-up #1 is already done.", None, Tone.ERROR)
        assert chat.say(manager, "/followup cancel 2").reply.tone is Tone.SUCCESS
        snoozed = chat.say(rep, "/followup snooze 3 2d").reply
        assert (
            snoozed.text
            == "Follow-up #3 snoozed until 2026-04-01 09:00 Europe/Berlin: call #monday 9:00 — Acme <Corp> & Co."
        )
        assert chat.say(rep, "/followup snooze 3 soon").reply.text.startswith("'soon' is not a number of days")
    statuses = [(f.id, f.status, f.snooze_count) for f in followups(app)]
    assert statuses == [(1, FollowUpStatus.DONE, 0), (2, FollowUpStatus.CANCELLED, 0), (3, FollowUpStatus.PENDING, 1)]
    with app.uow() as uow:
        jobs = {j.id: j.next_run_at for j in uow.session.scalars(sa.select(ScheduledJob))}
    assert jobs == {"followup:3": datetime(2026, 4, 1, 7, 0, tzinfo=UTC)}


def test_the_card_shows_followups_due_today(chat, app, rep, acme):
    with time_machine.travel(FRIDAY_10_BERLIN, tick=False):
        chat.say(rep, "/followup acme in 2h send the quote")
        chat.say(rep, "/followup acme tomorrow 9:00 not today")
        card = chat.say(rep, "/customer acme").reply
        with app.uow() as uow:
            rita = uow.session.scalars(sa.select(User).where(User.name == "Rita Rep")).one()
            # What a rep's overview (Slack App Home) lists.
            assert [f.text for f in followups_service.due_today(uow, rita.id, BERLIN)] == ["send the quote"]
        home = chat.say(rep, "/home").reply
    section = card.sections[0]
    assert section.title == "Follow-ups due today (1)"
    assert [i.text for i in section.items] == ["#1 send the quote"]
    assert section.items[0].button.command == "/followup done 1"
    # The home screen (Slack App Home) lists them between deals and tickets.
    assert [s.title for s in home.sections] == ["Your open deals", "Follow-ups due today", "Tickets assigned to you"]
    assert [i.text for i in home.sections[1].items] == ["#1 send the quote · Acme <Corp> & Co"]


def test_tz_shows_sets_and_suggests(chat, app, rep):
    assert chat.say(rep, "/tz").reply.text.startswith("Your timezone is Europe/Berlin")
    assert chat.say(rep, "/tz Asia/Shanghai").reply.tone is Tone.SUCCESS
    wrong = chat.say(rep, "/tz Europe/Berlni").reply
    assert wrong.tone is Tone.ERROR
    assert wrong.text.startswith("'Europe/Berlni' is not a timezone. Did you mean Europe/Berlin")
    with app.uow() as uow:
        assert uow.session.scalars(sa.select(User.timezone).where(User.name == "Rita Rep")).one() == "Asia/Shanghai"


# The reminder, delivered by the worker


def test_a_followup_fires_once_at_its_time(chat, app, rep, acme, api):
    with time_machine.travel(FRIDAY_10_BERLIN, tick=True) as traveller:
        chat.say(rep, "/followup acme tomorrow 9:00 call about the renewal")
        due = datetime(2026, 3, 28, 8, 0, tzinfo=UTC)
        with chat_worker(app, telegram(api)) as worker:
            traveller.move_to(due - timedelta(seconds=30))
            wait_ticks(worker)
            assert api.delivered == [] and reminders(app) == []
            traveller.move_to(due)
            assert api.wait_for(1)
            traveller.move_to(due + timedelta(days=1))
            wait_ticks(worker)
            time.sleep(0.2)
        [message] = api.delivered
        [row] = reminders(app)
        assert row.status == "sent" and row.sent_at >= due and row.platform_message_id == str(1)
        [followup] = followups(app)
        assert followup.status is FollowUpStatus.REMINDED and followup.reminded_at >= due
    # What the rep got: Telegram HTML with the customer's name escaped, and two buttons.
    body = message.body
    assert message.conversation == "rita.rep"
    assert body["format"] == "html"
    assert body["text"].startswith(
        "⏰ <b>Reminder:</b> call about the renewal\n<b>Customer:</b> Acme &lt;Corp&gt; &amp; Co"
    )
    assert "<b>Contact:</b> buy@acme.example" in body["text"]
    assert body["buttons"] == [
        {"label": "Done", "command": "/followup done 1"},
        {"label": "Snooze 1 day", "command": "/followup snooze 1 1d"},
    ]
    # Pressing Done runs the command like a typed one.
    assert chat.say(rep, "/followup done 1", from_button=True).reply.tone is Tone.SUCCESS


def test_a_followup_due_while_the_worker_was_down_fires_once_after_restart(chat, app, rep, acme, api):
    with time_machine.travel(FRIDAY_10_BERLIN, tick=True) as traveller:
        chat.say(rep, "/followup acme in 1h call back")
        with chat_worker(app, telegram(api)) as worker:
            wait_ticks(worker)
        # The worker is down while the follow-up comes due, and for a good while after.
        traveller.move_to(FRIDAY_10_BERLIN + timedelta(hours=5))
        assert api.delivered == []
        with chat_worker(app, telegram(api)):
            assert api.wait_for(1)
        with chat_worker(app, telegram(api)) as worker:
            wait_ticks(worker)
            time.sleep(0.2)
    assert len(api.delivered) == 1
    assert [f.status for f in followups(app)] == [FollowUpStatus.REMINDED]


def test_a_followup_honours_dst(chat, app, rep, acme, api):
    # Saturday 28 March, 10:00 CET: "tomorrow 9:00" is Sunday 09:00 CEST = 07:00 UTC, not 08:00.
    saturday = datetime(2026, 3, 28, 9, 0, tzinfo=UTC)
    with time_machine.travel(saturday, tick=True) as traveller:
        chat.say(rep, "/followup acme tomorrow 9:00 call after the clocks change")
        chat.say(rep, "/followup acme in 1d same time tomorrow")
        assert [f.due_at for f in followups(app)] == [
            datetime(2026, 3, 29, 7, 0, tzinfo=UTC),
            datetime(2026, 3, 29, 8, 0, tzinfo=UTC),
        ]
        with chat_worker(app, telegram(api)) as worker:
            traveller.move_to(datetime(2026, 3, 29, 6, 59, 30, tzinfo=UTC))
            wait_ticks(worker)
            assert api.delivered == []
            traveller.move_to(datetime(2026, 3, 29, 7, 0, tzinfo=UTC))
            assert api.wait_for(1)
            wait_ticks(worker)
            assert len(api.delivered) == 1
            traveller.move_to(datetime(2026, 3, 29, 8, 0, tzinfo=UTC))
            assert api.wait_for(2)
    first, second = api.delivered
    assert "call after the clocks change" in first.body["text"]
    assert "<b>Due:</b> 2026-03-29 09:00 (Europe/Berlin)" in first.body["text"]
    assert "<b>Due:</b> 2026-03-29 10:00 (Europe/Berlin)" in second.body["text"]


def test_a_chinese_speaking_rep_gets_the_chinese_reminder(chat, app, rep, acme, api):
    with app.uow() as uow:
        uow.session.execute(sa.update(User).where(User.name == "Rita Rep").values(language="zh"))
    with time_machine.travel(FRIDAY_10_BERLIN, tick=True) as traveller:
        chat.say(rep, "/followup acme in 1h 回电话")
        with chat_worker(app, telegram(api)):
            traveller.move_to(FRIDAY_10_BERLIN + timedelta(hours=1))
            assert api.wait_for(1)
    [message] = api.delivered
    assert message.body["text"].startswith("⏰ <b>提醒：</b>回电话")
    assert [b["label"] for b in message.body["buttons"]] == ["完成", "推迟一天"]


def test_a_console_user_sees_the_reminder_printed(chat, app, acme):
    admin = chat.user("Console Carl", Role.ADMIN)
    printed = io.StringIO()
    with time_machine.travel(FRIDAY_10_BERLIN, tick=True) as traveller:
        chat.say(admin, "/followup acme in 10m check the invoice")
        with chat_worker(app, {"console": ConsoleSender(printed)}):
            traveller.move_to(FRIDAY_10_BERLIN + timedelta(minutes=10))
            wait_until(lambda: "check the invoice" in printed.getvalue())
    out = printed.getvalue()
    assert "──── reminder for console.carl ────\nReminder: check the invoice\nCustomer: Acme <Corp> & Co" in out
    assert "Actions: [Done: /followup done 1] [Snooze 1 day: /followup snooze 1 1d]" in out
