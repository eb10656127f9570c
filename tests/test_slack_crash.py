"""Slack under real ``chatcrm web`` and ``chatcrm worker`` processes (``tests.processes.Stack``) and the
fake Slack API, on SQLite and PostgreSQL.

- Seeded random kills: the web process (and now and then the worker) is SIGKILLed at a random
  moment while it handles a signed ``/note acme …`` and while it handles a note modal's submission
  (view_submission): half before the 200 would come, half after it, within how long an undisturbed
  delivery on a freshly started web took (measured first, so the kills spread over the ack, the
  work and the send whether the machine is quiet or busy). Both are started again, and a delivery
  that got no 200 is delivered again, signed anew and numbered (``X-Slack-Retry-Num``), until it
  gets one. The report says how many kills came before the 200, during the work (before the
  answer arrived) and after it. In
  the end each note exists exactly once, every delivery is done, nothing is left in the outbox, and
  every answer reached its response_url at least once; an answer that arrived twice must have been
  in flight at a kill (``Stack.repeats``), and is reported. ``CHATCRM_CRASH_POINTS`` sets the kills
  per scenario and database (1 by default, to keep ``make test`` short; ``make test-crash`` runs 10,
  so 20 per scenario over both databases).
  Slack itself retries events, not commands or modal submissions: a person whose command got no
  200 sees an error and types it again (a new trigger_id, a new command), and a modal left open
  with an error is submitted again. Delivering the same body again is the case where the delivery
  may already be kept or done, which must then not take effect twice.
- A kill at a known point: the fake holds back its answer to users.info, the first thing the work
  behind a ``/note``'s ack asks Slack, so the kill lands after the 200 and before the note is
  written, every run. Slack sends nothing again after a 200: the inbox row written before the ack
  brings it back, by the web's start-up recovery or by the worker's.
- Two copies of one command at the same moment take effect once.
- A 429 (Retry-After 1 s), then a 500, on every answer the web and the worker send (response_url
  and the chat.postEphemeral it falls back to): each answer arrives once, after the pause.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from bot.adapters.slack.sender import SlackSender
from bot.adapters.slack.settings import SlackSettings
from bot.bootstrap import build_app
from crm_core.clock import utcnow
from crm_core.models import InboundEvent, InboxStatus, Interaction, OutboxMessage, OutboxStatus
from crm_core.services import customers
from tests.fakes.loopback import LOOPBACK_TLS
from tests.fakes.slack_api import RESPONSE_URL, Call, FakeSlackApi
from tests.fakes.worker import SERVER_SECRET, chat_worker, wait_until
from tests.processes import CRASH_POINTS, Post, Stack
from tests.slack_support import (  # noqa: F401 - fixtures
    ADMIN,
    FORM,
    block_texts,
    new_trigger,
    sign,
    slack,
    slack_api,
    slack_env,
    slash_command,
    view_submission,
)
from tests.support import rows, work_left

SEED = 20261203
POINTS = CRASH_POINTS
# Half the kills land at a random moment before the 200 would come, half at a random moment after
# it, until a little after the answer would have arrived: measured first, on a freshly started web
# (the first delivery after a start is the slow one: 100 ms to the 200 on a quiet machine, ten
# times that on a busy one), so they spread over the ack, the work behind it and the send,
# whatever the machine's load.
KILL_SPREAD = 1.25
# How long the fake holds back users.info: longer than any test waits for the kill.
HOLD_SECONDS = 60


def _stack(database_url: str, api: FakeSlackApi, tmp: Path) -> Stack:
    return Stack(database_url, {**slack_env(api), "CHATCRM_ADMINS": f"slack:{ADMIN}"}, tmp)


def _poster(stack: Stack, body: bytes) -> Post:
    """Posts ``body`` to /slack/events, signed at each attempt; a redelivery is numbered as Slack
    numbers its retries."""

    def post(attempt: int) -> int | None:
        headers = {"Content-Type": FORM, **sign(body)}
        if attempt:
            headers |= {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "connection_failed"}
        try:
            return httpx.post(
                f"{stack.url}/slack/events", content=body, headers=headers, timeout=15, verify=LOOPBACK_TLS
            ).status_code
        except httpx.HTTPError:
            return None

    return post


def _notes(app) -> list[str]:
    return [i.text for i in rows(app, Interaction)]


def _acme(app) -> None:
    """The customer, written with the servers' secret key (which wraps its data key), so they can use it."""
    servers = build_app(replace(app.settings, secret_key=SERVER_SECRET["CHATCRM_SECRET_KEY"]))
    try:
        with servers.uow() as uow:
            customers.create_customer(uow, "Acme GmbH")
    finally:
        servers.close()


def _lease_over(app) -> bool:
    with app.uow() as uow:
        leases = uow.session.scalars(sa.select(InboundEvent.lease_until)).all()
    return bool(leases) and all(lease is not None and lease <= utcnow() for lease in leases)


def _answers(api: FakeSlackApi, name: str) -> list[Call]:
    return [c for c in api.delivered(RESPONSE_URL) if c.name == name]


# -- seeded random kills ----------------------------------------------------------------------------


def _open_note_forms(stack: Stack, api: FakeSlackApi, count: int) -> list[dict]:
    """``/note`` without arguments, ``count`` times: the note modals Slack shows (each answers at its
    own response_url, ``form<i>``)."""
    views = []
    for i in range(count):
        trigger = new_trigger()
        body = slash_command("/note", "", response_url=api.response_url(f"form{i}"), trigger_id=trigger)
        assert _poster(stack, body)(0) == 200
        views.append(api.wait_for("views.open", trigger_id=trigger, timeout=30)[0].json_arg("view"))
    return views


@dataclass(frozen=True)
class Timing:
    """How long an undisturbed delivery took: to its 200, and to its answer at the response_url."""

    ack: float
    answer: float

    def __str__(self) -> str:
        return f"200 in {self.ack * 1000:.0f} ms, answer in {self.answer * 1000:.0f} ms undisturbed"


def _timing(stack: Stack, api: FakeSlackApi, body: bytes, name: str) -> Timing:
    """Deliver ``body`` undisturbed; how long it took (its answer goes to the response_url ``name``)."""
    posted = time.time()
    assert _poster(stack, body)(0) == 200
    acked = time.time()
    assert wait_until(lambda: _answers(api, name), timeout=30), stack.logs()
    return Timing(acked - posted, _answers(api, name)[0].received_at - posted)


def _kill_while_handling(
    stack: Stack, rng: random.Random, bodies: list[bytes], timing: Timing
) -> list[tuple[bool, float]]:
    """Deliver each body with a kill at a random moment (seeded): before the 200 or after it, as
    ``timing`` says; for each, whether the kill came before the 200, and when it came."""
    kills = []
    for body in bodies:
        after_ack = rng.random() < 0.5
        window = max(timing.answer - timing.ack, 0.01) if after_ack else timing.ack
        before = stack.deliver_with_kill(
            _poster(stack, body),
            rng.uniform(0, KILL_SPREAD * window),
            kill_worker=rng.random() < 0.3,
            after_ack=after_ack,
        )
        kills.append((before, stack.web_killed_at))
    return kills


def _where_the_kills_came(kills: list[tuple[bool, float]], answered: list[float]) -> str:
    """ "<n> kills: <b> before the 200, <w> during the work (before the answer arrived), <a> after it"
    for kills (before the 200?, when) and when each delivery's answer first arrived."""
    before = sum(1 for early, _at in kills if early)
    during = sum(1 for (early, at), first in zip(kills, answered, strict=True) if not early and first > at)
    return (
        f"{len(kills)} kills: {before} before the 200, {during} during the work behind it, "
        f"{len(kills) - before - during} after the answer"
    )


@pytest.mark.slow
def test_kills_while_handling_notes_and_modal_submissions_lose_nothing(app, database_url, tmp_path, report):
    rng = random.Random(SEED)
    _acme(app)
    started = time.monotonic()
    with FakeSlackApi() as api, _stack(database_url, api, tmp_path).start() as stack:
        # A typed /note on the freshly started web, undisturbed: how long the handling takes.
        warm_up = slash_command("/note", "acme Typed note first", response_url=api.response_url("notefirst"))
        typing = _timing(stack, api, warm_up, "notefirst")
        *views, first_view = _open_note_forms(stack, api, POINTS + 1)
        commands = [
            slash_command("/note", f"acme Typed note {i}", response_url=api.response_url(f"note{i}"))
            for i in range(POINTS)
        ]
        typed = _kill_while_handling(stack, rng, commands, typing)
        # A submission on the web just started again, undisturbed; then the same with kills.
        first = view_submission(first_view, {"customer": "acme", "text": "Form note first"})
        submitting = _timing(stack, api, first, f"form{POINTS}")
        submissions = [
            view_submission(view, {"customer": "acme", "text": f"Form note {i}"}) for i, view in enumerate(views)
        ]
        submitted = _kill_while_handling(stack, rng, submissions, submitting)

        names = [f"note{i}" for i in range(POINTS)] + [f"form{i}" for i in range(POINTS + 1)] + ["notefirst"]
        assert wait_until(lambda: all(_answers(api, name) for name in names), timeout=60), (
            f"unanswered: {[n for n in names if not _answers(api, n)]}\n{stack.logs()}"
        )
        assert wait_until(lambda: work_left(app) is None, timeout=30), stack.logs()
        arrivals: dict[str, list[float]] = defaultdict(list)
        for name in names:
            for answer in _answers(api, name):
                arrivals[name].append(answer.received_at)
    answered = {name: min(times) for name, times in arrivals.items()}
    where_typed = _where_the_kills_came(typed, [answered[f"note{i}"] for i in range(POINTS)])
    where_submitted = _where_the_kills_came(submitted, [answered[f"form{i}"] for i in range(POINTS)])
    # Each effect exactly once; every answer arrived, and says what was done.
    expected = [f"Typed note {i}" for i in range(POINTS)] + [f"Form note {i}" for i in range(POINTS)]
    assert sorted(_notes(app)) == sorted([*expected, "Typed note first", "Form note first"])
    for name in names:
        assert "Note logged on Acme GmbH" in block_texts(_answers(api, name)[0].args), name
    in_flight, unexplained = stack.repeats(arrivals)
    report(
        f"[slack crash, {app.engine.dialect.name}] /note ({typing}): {where_typed}; "
        f"modal submission ({submitting}): {where_submitted}. Every note once, every answer arrived; {len(in_flight)} arrived twice, "
        "each in flight at a kill"
        f"{': ' if in_flight else ''}{'; '.join(in_flight)}; {time.monotonic() - started:.1f} s"
    )
    # Only answers in flight at a kill may arrive twice.
    assert unexplained == [], f"answered twice with no kill to explain it: {unexplained}"


# -- a kill at a known point: after the ack, before the work --------------------------------------


def _kill_after_the_ack(stack: Stack, api: FakeSlackApi, app, body: bytes) -> None:
    """Deliver ``body``; once it has its 200 and its work waits for users.info, SIGKILL the web."""
    api.slow("users.info", HOLD_SECONDS)
    assert _poster(stack, body)(0) == 200
    api.wait_for("users.info", timeout=15)
    stack.web.kill()
    api.release()  # the held answer has no one to go to now
    # Killed after the 200 and before the work: no note, and the delivery is kept, pending.
    assert _notes(app) == []
    [kept] = rows(app, InboundEvent)
    assert kept.status == InboxStatus.PENDING and "/note" in (kept.payload or "")
    assert api.count(RESPONSE_URL) == 0


def _answered_once(stack: Stack, api: FakeSlackApi, app) -> None:
    assert wait_until(lambda: api.count(RESPONSE_URL) >= 1, timeout=30), stack.logs()
    [answer] = api.calls(RESPONSE_URL)
    assert "Acme GmbH" in answer.args["text"], answer.args
    assert _notes(app) == ["Printer jams again"]
    assert wait_until(lambda: {e.status for e in rows(app, InboundEvent)} == {InboxStatus.DONE}, timeout=10)


def _redelivery_does_nothing(stack: Stack, api: FakeSlackApi, app, body: bytes) -> None:
    # Delivered again (a replayed body): kept already and done, so nothing happens, not even an answer.
    assert _poster(stack, body)(0) == 200
    assert _notes(app) == ["Printer jams again"]
    assert api.count(RESPONSE_URL) == 1


@pytest.mark.slow
@pytest.mark.parametrize("recovered_by", ["web restart", "worker"])
def test_a_note_acknowledged_then_killed_is_done_once_and_answered(app, database_url, tmp_path, recovered_by):
    _acme(app)
    with FakeSlackApi() as api, _stack(database_url, api, tmp_path) as stack:
        body = slash_command("/note", "acme Printer jams again", response_url=api.response_url("r1"))
        stack.start_web()
        _kill_after_the_ack(stack, api, app, body)
        if recovered_by == "worker":
            stack.worker.start()
            _answered_once(stack, api, app)
            # The web, started again, finds nothing left to do.
            stack.start_web()
        else:
            # Started again once the dead process's lease ran out: its start-up pass takes it up.
            assert wait_until(lambda: _lease_over(app), timeout=10)
            stack.start_web()
            _answered_once(stack, api, app)
        _redelivery_does_nothing(stack, api, app, body)


@pytest.mark.slow
def test_a_command_delivered_twice_at_once_takes_effect_once(app, database_url, tmp_path):
    """Two copies of one command (same trigger) at the same moment: one note, one answer."""
    _acme(app)
    with FakeSlackApi() as api, _stack(database_url, api, tmp_path) as stack:
        body = slash_command(
            "/note", "acme Printer jams again", response_url=api.response_url("r1"), trigger_id=new_trigger()
        )
        stack.start_web()
        post = _poster(stack, body)
        statuses: list[int | None] = []
        posts = [threading.Thread(target=lambda: statuses.append(post(0))) for _ in range(2)]
        for thread in posts:
            thread.start()
        for thread in posts:
            thread.join(20)
        assert statuses == [200, 200]
        assert wait_until(lambda: api.count(RESPONSE_URL) >= 1, timeout=30), stack.logs()
        assert wait_until(lambda: {e.status for e in rows(app, InboundEvent)} == {InboxStatus.DONE}, timeout=10)
        stack.web.stop()
        assert _notes(app) == ["Printer jams again"]
        assert api.count(RESPONSE_URL) == 1


# -- a 429 and a 500 on every answer ----------------------------------------------------------------


def test_a_429_and_a_500_on_every_answer_delay_but_lose_nothing(slack):
    api = slack.api
    with slack.app.uow() as uow:
        # Two customers: the two answers differ (the fake tells messages apart by their text).
        customers.create_customer(uow, "Acme GmbH")
        customers.create_customer(uow, "Globex")
    sender = SlackSender(SlackSettings.from_env(slack.app.settings.extra))
    api.fail_each_message(429, 500, retry_after=1)
    with chat_worker(slack.app, {"slack": sender}):
        ack, typed = slack.command("/note acme Typed while Slack is busy")
        assert ack.status_code == 200
        trigger = new_trigger()
        ack, formed = slack.command("/note", trigger_id=trigger)
        view = api.wait_for("views.open", trigger_id=trigger)[0].json_arg("view")
        # The modal closes at once (the note is written); its answer goes to /note's response_url.
        assert (
            slack.post(view_submission(view, {"customer": "globex", "text": "Submitted while Slack is busy"})).text
            == ""
        )
        assert wait_until(lambda: _answers(api, typed) and _answers(api, formed), timeout=30)
        assert wait_until(lambda: work_left(slack.app) is None, timeout=10)
    assert sorted(_notes(slack.app)) == ["Submitted while Slack is busy", "Typed while Slack is busy"]
    # Each answer arrived once, at its response_url (nothing in the channel), after the pause.
    delivered = Counter((c.method, c.where) for c in api.delivered())
    assert delivered == {(RESPONSE_URL, typed): 1, (RESPONSE_URL, formed): 1}
    for name, customer in ((typed, "Acme GmbH"), (formed, "Globex")):
        tries = [c for c in api.calls(RESPONSE_URL) if c.name == name]
        # 429 (and the channel tried, 429 too: Slack paused for 1 s), 500 (the channel too), taken.
        assert len(tries) == 3
        assert tries[-1].received_at - tries[0].received_at >= 1.0
        assert f"Note logged on {customer}" in block_texts(tries[-1].args)
    # The web and the worker fell back to the channel when the response_url refused (twice an answer),
    # and the channel refused the same way: nothing arrived there.
    fallbacks = [c for c in api.calls() if c.method in ("chat.postMessage", "chat.postEphemeral")]
    assert len(fallbacks) == 4
