"""Domain events on both databases: each type emitted by the real command path with its documented
payload, in the transaction of the change (a rolled-back change emits nothing), and delivered by
the real dispatcher: in order, at least once, retried with backoff without blocking other
listeners, dead-lettered after the last attempt, across a crash, and never twice at once by two
workers. Also ``chatcrm events tail`` and the worker service."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

# Imported before any test replaces sys.stderr: ProgressBar binds sys.stderr as a default argument
# when its module is first imported, and the CLI import below would otherwise bind a test's capture.
import bot.progress  # noqa: F401
from crm_core import events, scheduling
from crm_core.actor import Actor
from crm_core.campaigns import delivery
from crm_core.event_delivery import EventDispatcher, dead_letters, prune
from crm_core.events import EVENT_TYPES, Event
from crm_core.models import (
    CustomerChat,
    DomainEvent,
    EventCursor,
    EventDeadLetter,
    Role,
    TicketMessage,
    TicketStatus,
)
from crm_core.services import consent, customers, deals, segments, tickets
from tests.support import TEST_SECRET_KEY, count, rows

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def stream(app, type_prefix: str | None = None) -> list[Event]:
    with app.uow() as uow:
        return events.recent(uow.session, 10_000, type_prefix)


def payloads(app, type_: str) -> list[dict]:
    return [dict(e.payload) for e in stream(app) if e.type == type_]


def only(app, type_: str) -> Event:
    [event] = [e for e in stream(app) if e.type == type_]
    return event


@pytest.fixture
def rep(chat):
    return chat.user("Rita Rep", Role.SALES)


@pytest.fixture
def acme(app) -> int:
    with app.uow() as uow:
        return customers.create_customer(uow, "Acme Corp").id


# -- emitted by the real command paths --------------------------------------------------------------


def test_customer_created_and_updated_by_commands(chat, app, rep):
    chat.say(rep, '/customer new "Anna Alpha" email=anna@example.com country=DE tags=vip owner="Rita Rep"')
    created = only(app, "customer.created")
    assert (created.entity_type, created.entity_id) == ("customer", "1")
    assert created.actor.name == "Rita Rep" and created.actor.platform == "console"
    assert created.actor.user_id is not None
    assert dict(created.payload) == {
        "customer_id": 1,
        "name": "Anna Alpha",
        "kind": "person",
        "email": "anna@example.com",
        "phone": None,
        "company": None,
        "country": "DE",
        "language": None,
        "owner_id": created.actor.user_id,
        "owner": "Rita Rep",
        "tags": ["vip"],
    }
    chat.say(rep, "/customer edit anna country=AT tags=+gold company=Alpha-Werke")
    assert payloads(app, "customer.updated") == [
        {
            "customer_id": 1,
            "name": "Anna Alpha",
            "changes": {
                "company": {"old": None, "new": "Alpha-Werke"},
                "country": {"old": "DE", "new": "AT"},
                "tags": {"old": "vip", "new": "gold,vip"},
            },
        }
    ]
    # Nothing actually changes: no event.
    chat.say(rep, "/customer edit anna country=AT")
    assert len(payloads(app, "customer.updated")) == 1


def test_deal_created_stage_changed_won_and_lost(chat, app, rep, acme):
    chat.say(rep, "/deal new acme Printers amount=12.5k close=2027-01-31")
    chat.say(rep, "/deal stage 1 neg")
    chat.say(rep, "/deal stage 1 won")
    chat.say(rep, '/deal new acme Coffee amount="9,500.50 USD"')
    chat.say(rep, "/deal stage 2 lost went with a cheaper vendor")
    deal_events = stream(app, "deal.")
    assert [(e.type, e.entity_id) for e in deal_events] == [
        ("deal.created", "1"),
        ("deal.stage_changed", "1"),
        ("deal.stage_changed", "1"),
        ("deal.won", "1"),
        ("deal.created", "2"),
        ("deal.stage_changed", "2"),
        ("deal.lost", "2"),
    ]
    owner_id = deal_events[0].actor.user_id
    common = {
        "deal_id": 1,
        "customer_id": acme,
        "customer": "Acme Corp",
        "title": "Printers",
        "amount": "12500.00",
        "currency": "EUR",
        "owner_id": owner_id,
        "owner": "Rita Rep",
    }
    assert dict(deal_events[0].payload) == {
        **common,
        "stage": "lead",
        "probability": 10,
        "expected_close_on": "2027-01-31",
    }
    assert dict(deal_events[1].payload) == {
        **common,
        "from_stage": "lead",
        "to_stage": "negotiation",
        "probability": 75,
    }
    assert dict(deal_events[3].payload) == {**common, "from_stage": "negotiation"}
    lost = dict(deal_events[6].payload)
    assert (lost["amount"], lost["currency"], lost["from_stage"], lost["reason"]) == (
        "9500.50",
        "USD",
        "lead",
        "went with a cheaper vendor",
    )
    # A refused change emits nothing.
    chat.say(rep, "/deal stage 1 won")
    assert len(stream(app, "deal.")) == 7


def test_ticket_created_assigned_status_changed_rated_and_notes(chat, app, acme):
    agent = chat.user("Sam Support", Role.SUPPORT)
    with app.uow() as uow:
        uow.session.add(CustomerChat(customer_id=acme, platform="telegram", external_id="555", conversation="555"))
    chat.say(agent, '/ticket new acme "printer jams" high')
    chat.say(agent, "/ticket assign 1 me")
    chat.say(agent, "/ticket assign 1 me")  # no change, no event
    chat.say(agent, "/ticket note 1 checked the toner")
    chat.say(agent, "/ticket status 1 resolved")
    customer = chat.stranger("555", platform="telegram")
    chat.say(customer, "/rate 1 4")
    chat.say(customer, "/rate 1 1")  # only the first rating counts
    agent_id = only(app, "ticket.created").actor.user_id
    facts = {"ticket_id": 1, "customer_id": acme, "customer": "Acme Corp", "subject": "printer jams"}
    [noted_id] = [m.id for m in rows(app, TicketMessage) if m.text == "checked the toner"]
    assert [(e.type, dict(e.payload)) for e in stream(app, "ticket.")] == [
        ("ticket.created", {**facts, "priority": "high", "channel": "console"}),
        (
            "ticket.assigned",
            {**facts, "previous_assignee_id": None, "assignee_id": agent_id, "assignee": "Sam Support"},
        ),
        # The note's own event (its ticket thread shows it): which message, by whom; not its text.
        ("ticket.noted", {**facts, "message_id": noted_id, "user_id": agent_id}),
        ("ticket.status_changed", {**facts, "from_status": "open", "to_status": "resolved"}),
        ("ticket.rated", {**facts, "rating": 4, "assignee_id": agent_id}),
    ]
    [note] = payloads(app, "note.created")
    assert note == {
        "interaction_id": note["interaction_id"],
        "customer_id": acme,
        "customer": "Acme Corp",
        "kind": "note",
        "direction": "internal",
        "channel": "console",
        "text": "checked the toner",
        "attachment": None,
        "user_id": agent_id,
        "ticket_id": 1,
    }


def test_a_customer_answering_a_pending_ticket_reopens_it_with_an_event(app, acme):
    with app.uow() as uow:
        first = tickets.customer_wrote(uow, acme, "Hello", channel="telegram")
        tickets.set_status(uow, first.ticket.id, TicketStatus.PENDING)
        tickets.customer_wrote(uow, acme, "any news?", channel="telegram")
    assert [(e.payload["from_status"], e.payload["to_status"]) for e in stream(app, "ticket.status_changed")] == [
        ("open", "pending"),
        ("pending", "open"),
    ]
    assert [(e.payload["direction"], e.payload["kind"]) for e in stream(app, "note.")] == [
        ("inbound", "chat"),
        ("inbound", "chat"),
    ]


def test_note_command_emits_note_created(chat, app, rep, acme):
    chat.say(rep, "/note acme Called them about the renewal kind=call")
    [note] = payloads(app, "note.created")
    assert (note["kind"], note["direction"], note["text"], note["ticket_id"]) == (
        "call",
        "internal",
        "Called them about the renewal",
        None,
    )


def test_followup_due_when_the_reminder_fires(chat, app, rep, acme):
    with time_machine.travel(NOW, tick=False):
        chat.say(rep, "/followup acme in 1h call back")
    assert payloads(app, "followup.due") == []
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        scheduling.run_due(app.session_factory, tasks=app.plugins.tasks)
        scheduling.run_due(app.session_factory, tasks=app.plugins.tasks)  # fired once
    event = only(app, "followup.due")
    assert (event.entity_type, event.actor.name) == ("followup", "scheduler")
    assert dict(event.payload) == {
        "followup_id": 1,
        "customer_id": acme,
        "customer": "Acme Corp",
        "user_id": event.payload["user_id"],
        "user": "Rita Rep",
        "due_at": (NOW + timedelta(hours=1)).isoformat(),
        "text": "call back",
        "snoozed": 0,
    }


RETAIL = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "536365,85123A,WHITE HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n"
    "536365,71053,WHITE LANTERN,6,2010-12-01 08:26:00,3.39,17850,United Kingdom\n"
    "536366,22633,HAND WARMER,6,2010-12-02 09:00:00,1.85,13047,United Kingdom\n"
    "C536379,22633,HAND WARMER,-1,2010-12-03 09:41:00,1.85,13047,United Kingdom\n"
    "536380,22633,BAD ROW,six,2010-12-03 09:41:00,1.85,13047,United Kingdom\n"
)


def _cli(monkeypatch, database_url, capsys, *argv: str) -> tuple[int, str]:
    """Run ``chatcrm`` in-process; the CLI configures logging, which is put back afterwards."""
    from bot.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    # The key of the test's app, which encrypted what the command reads.
    monkeypatch.setenv("CHATCRM_SECRET_KEY", TEST_SECRET_KEY)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        code = main(list(argv))
    finally:
        root.handlers[:], root.level = handlers, level
    return code, capsys.readouterr().out


def test_an_order_import_emits_one_event_with_counts(app, database_url, monkeypatch, capsys, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text(RETAIL)
    assert _cli(monkeypatch, database_url, capsys, "import", "orders", str(path))[0] == 0
    assert _cli(monkeypatch, database_url, capsys, "import", "orders", str(path))[0] == 0
    first, again = stream(app, "order.imported")
    assert (first.entity_type, first.entity_id, first.actor.name, first.actor.platform) == (
        "order_import",
        "orders.csv",
        "import orders",
        "cli",
    )
    assert dict(first.payload) == {
        "source": "orders.csv",
        "currency": "EUR",
        "rows": 5,
        "orders": 2,
        "cancellations": 1,
        "order_lines": 4,
        "customers": 2,
        "products": 3,
        "already_there": 0,
        "skipped_rows": 1,
        "first_ordered_at": "2010-12-01T08:26:00+00:00",
        "last_ordered_at": "2010-12-03T09:41:00+00:00",
    }
    assert (again.payload["orders"], again.payload["already_there"], again.payload["first_ordered_at"]) == (
        0,
        3,
        None,
    )
    # The customers the import created in bulk are counted, not announced one by one.
    assert payloads(app, "customer.created") == []


def test_a_campaign_run_emits_started_and_finished(app, chat):
    manager = chat.user("Mia Manager", Role.MANAGER)
    with time_machine.travel(NOW, tick=False):
        for name, telegram in (("Anna Alpha", "1001"), ("Bruno Beta", "1002")):
            with app.uow() as uow:
                customer = customers.create_customer(uow, name, {"country": "DE"})
                consent.opt_in(uow, customer.id, "telegram", telegram, "started the bot")
        with app.uow() as uow:
            segments.create(uow, "germany", "country=DE", None)
        chat.say(manager, "/campaign new autumn segment=germany template=campaign_announcement at=now")
        assert "started" in chat.say(manager, "/campaign start autumn").text
        assert payloads(app, "campaign.started") == []  # scheduled, not run yet
    with time_machine.travel(NOW + timedelta(seconds=1), tick=False):
        scheduling.run_due(app.session_factory, tasks=app.plugins.tasks)
    started = only(app, "campaign.started")
    facts = {"campaign_id": 1, "campaign": "autumn", "run_id": 1, "run_number": 1, "recipients": 2}
    assert dict(started.payload) == {
        **facts,
        "scheduled_for": NOW.isoformat(),  # the time the run was due
        "trigger": None,
    }
    from tests.test_campaigns import deliver

    deliver(app)
    with app.uow() as uow:
        delivery.settle(uow)
    finished = only(app, "campaign.finished")
    assert dict(finished.payload) == {
        **facts,
        "status": "done",
        "sent": 2,
        "failed": 0,
        "blocked": 0,
        "opted_out": 0,
        "cancelled": 0,
    }
    assert (finished.entity_type, finished.entity_id) == ("campaign", "1")


# -- the catalogue --------------------------------------------------------------------------------


def test_the_catalogue_lists_the_documented_types():
    assert {
        "customer.created",
        "customer.updated",
        "customer.erased",
        "deal.created",
        "deal.stage_changed",
        "deal.won",
        "deal.lost",
        "ticket.created",
        "ticket.assigned",
        "ticket.status_changed",
        "ticket.rated",
        "note.created",
        "order.imported",
        "campaign.started",
        "campaign.finished",
        "followup.due",
    } <= set(EVENT_TYPES)
    assert all(t.description and t.payload and t.builtin for t in EVENT_TYPES.values() if t.builtin)


def test_unknown_types_and_wrong_payloads_are_refused_and_plugins_add_types(app, acme):
    with app.uow() as uow:
        with pytest.raises(ValueError, match="unknown event type 'quotes.sent'"):
            events.emit(uow, "quotes.sent", entity_type="quote", entity_id=1, payload={})
        with pytest.raises(ValueError, match=r"missing \[.*'rating'"):
            events.emit(uow, "ticket.rated", entity_type="ticket", entity_id=1, payload={"ticket_id": 1})
        with pytest.raises(ValueError, match="not JSON"):
            events.emit(uow, "customer.erased", entity_type="customer", entity_id=1, payload={"customer_id": object()})
    for bad in ("quotes", "Quotes.Sent", "quotes."):
        with pytest.raises(ValueError, match="not an event type name"):
            events.register_event_type(bad, "a quote was sent")
    with pytest.raises(ValueError, match="built-in"):
        events.register_event_type("deal.won", "mine now")
    declared = events.register_event_type("testplugin.quote_sent", "a quote was sent", {"quote_id": "the quote"})
    assert events.register_event_type("testplugin.quote_sent", "a quote was sent") is declared
    with pytest.raises(ValueError, match="another description"):
        events.register_event_type("testplugin.quote_sent", "something else")
    with app.uow() as uow:
        events.emit(
            uow, "testplugin.quote_sent", entity_type="quote", entity_id=7, payload={"quote_id": 7, "total": "1.00"}
        )
    assert only(app, "testplugin.quote_sent").payload == {"quote_id": 7, "total": "1.00"}


# -- the same transaction -------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_a_rolled_back_change_emits_nothing(app, chat, rep, acme):
    before = len(stream(app))
    with pytest.raises(Boom), app.uow() as uow:
        deals.create_deal(uow, acme, "Never happened", amount_cents=100)
        raise Boom
    # A command refused after parsing (unknown stage) writes nothing either.
    chat.say(rep, "/deal stage 1 won")
    assert len(stream(app)) == before
    # A savepoint rolled back takes its own events and nothing else.
    with app.uow() as uow:
        customers.update_customer(uow, acme, {"country": "DE"})
        with pytest.raises(Boom), uow.session.begin_nested():
            customers.update_customer(uow, acme, {"country": "FR"})
            with uow.session.begin_nested():
                customers.update_customer(uow, acme, {"country": "IT"})
            raise Boom
        with uow.session.begin_nested():
            customers.update_customer(uow, acme, {"country": "AT"})
    assert [e.payload["changes"]["country"] for e in stream(app, "customer.updated")] == [
        {"old": None, "new": "DE"},
        {"old": "DE", "new": "AT"},
    ]


def test_ids_follow_commit_order_not_insert_order(app, acme):
    """T1 emits first but commits last: its event must still come after T2's, or a reader that
    already moved past T2's id would never see it."""
    if app.engine.dialect.name == "sqlite":
        pytest.skip("SQLite writers take turns (BEGIN IMMEDIATE): a second writer cannot start meanwhile")
    delivered: list[int] = []
    dispatcher = EventDispatcher(app.session_factory, lambda: {"log": lambda e: delivered.append(e.id)})
    dispatcher.run_once()
    slow = app.uow().__enter__()
    customers.update_customer(slow, acme, {"country": "DE"})
    with app.uow() as fast:
        customers.create_customer(fast, "Beta GmbH")
    assert dispatcher.run_once() == 1
    slow.__exit__(None, None, None)
    assert dispatcher.run_once() == 1
    assert [e.type for e in stream(app)][-2:] == ["customer.created", "customer.updated"]
    assert delivered == [e.id for e in stream(app)][-2:]


# -- delivery -------------------------------------------------------------------------------------


def _emit(app, n: int, entity: str = "1", start: int = 0) -> None:
    """``n`` events of one entity, each in its own transaction."""
    for i in range(start, start + n):
        with app.uow(Actor(user_id=None, name="test", platform="test")) as uow:
            events.emit(uow, "customer.erased", entity_type="customer", entity_id=entity, payload={"customer_id": i})


def _ids(app) -> list[int]:
    return [e.id for e in stream(app)]


def _cursor(app, name: str) -> EventCursor:
    with app.uow() as uow:
        return uow.session.get(EventCursor, name)


def test_listeners_get_events_in_order_and_a_new_one_starts_after_history(app):
    _emit(app, 3)  # before any listener: history
    got: dict[str, list[Event]] = {"a": [], "b": []}
    dispatcher = EventDispatcher(app.session_factory, lambda: {name: got[name].append for name in got}, batch=2)
    assert dispatcher.run_once(NOW) == 0
    _emit(app, 2, entity="1", start=3)
    _emit(app, 1, entity="2", start=5)
    _emit(app, 1, entity="1", start=6)
    new_ids = _ids(app)[3:]
    # batch=2: each pass hands each listener two events.
    assert dispatcher.run_once(NOW) == 4
    assert dispatcher.run_once(NOW) == 4
    assert dispatcher.run_once(NOW) == 0
    for name in got:
        assert [e.id for e in got[name]] == new_ids
        assert [e.payload["customer_id"] for e in got[name] if e.entity_id == "1"] == [3, 4, 6]
    assert got["a"][0] is not got["b"][0]  # each listener its own copy
    assert _cursor(app, "a").last_event_id == new_ids[-1] and _cursor(app, "a").claimed_by is None


def test_a_failing_listener_is_retried_with_backoff_and_blocks_nobody(app, caplog):
    good: list[int] = []
    flaky: list[int] = []
    failures = {"left": 3}

    def flaky_listener(event: Event) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("webhook answered 503")
        flaky.append(event.id)

    dispatcher = EventDispatcher(
        app.session_factory, lambda: {"good": lambda e: good.append(e.id), "flaky": flaky_listener}
    )
    dispatcher.run_once(NOW)
    _emit(app, 3)
    ids = _ids(app)
    with caplog.at_level(logging.WARNING, "chatcrm.events"):
        assert dispatcher.run_once(NOW) == 3  # good got all three; flaky failed on the first
    assert good == ids and flaky == []
    cursor = _cursor(app, "flaky")
    assert (cursor.attempts, cursor.next_attempt_at, cursor.last_error) == (
        1,
        NOW + timedelta(seconds=1),
        "RuntimeError: webhook answered 503",
    )
    [record] = [r for r in caplog.records if "flaky" in r.getMessage()]
    assert record.levelno == logging.WARNING and "(ref " in record.getMessage() and record.exc_info
    assert dispatcher.run_once(NOW + timedelta(milliseconds=999)) == 0  # still backing off
    assert failures["left"] == 3 - 1
    assert dispatcher.run_once(NOW + timedelta(seconds=1)) == 0  # second failure: 2 s now
    assert _cursor(app, "flaky").next_attempt_at == NOW + timedelta(seconds=3)
    assert dispatcher.run_once(NOW + timedelta(seconds=3)) == 0  # third failure: 4 s
    assert _cursor(app, "flaky").next_attempt_at == NOW + timedelta(seconds=7)
    assert dispatcher.run_once(NOW + timedelta(seconds=6)) == 0
    assert dispatcher.run_once(NOW + timedelta(seconds=7)) == 3
    assert flaky == ids
    assert _cursor(app, "flaky").attempts == 0 and _cursor(app, "flaky").last_error is None
    assert dispatcher.retry_delay(30) == timedelta(hours=1)  # capped


def test_after_the_last_attempt_the_event_is_dead_lettered_and_the_listener_moves_on(app, caplog):
    seen: list[int] = []

    def picky(event: Event) -> None:
        if event.payload["customer_id"] == 1:
            raise ValueError("cannot handle customer 1")
        seen.append(event.id)

    dispatcher = EventDispatcher(app.session_factory, lambda: {"picky": picky}, max_attempts=3)
    dispatcher.run_once(NOW)
    _emit(app, 3)
    ids = _ids(app)
    at = NOW
    with caplog.at_level(logging.WARNING, "chatcrm.events"):
        for _ in range(3):
            dispatcher.run_once(at)
            at += timedelta(hours=1)
        assert seen == [ids[0]]
        assert dispatcher.run_once(at) == 1
    assert seen == [ids[0], ids[2]]
    with app.uow() as uow:
        [letter] = dead_letters(uow.session)
        assert (letter.listener, letter.event_id, letter.attempts, letter.last_error) == (
            "picky",
            ids[1],
            3,
            "ValueError: cannot handle customer 1",
        )
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert f"(ref {letter.reference})" in error.getMessage() and "dead-lettered" in error.getMessage()


class Crash(BaseException):
    """The process dies (kill -9, power cut) while a listener runs."""


@pytest.mark.parametrize("side_effect_before_crash", [False, True])
def test_a_crash_mid_batch_redelivers_only_what_was_not_confirmed(app, side_effect_before_crash):
    received: list[int] = []
    crash_at = {"n": 3}

    def listener(event: Event) -> None:
        if len(received) == crash_at["n"] - 1 and crash_at["n"]:
            crash_at["n"] = 0
            if side_effect_before_crash:
                received.append(event.id)
            raise Crash
        received.append(event.id)

    lease = timedelta(minutes=5)
    EventDispatcher(app.session_factory, lambda: {"hook": listener}).run_once(NOW)
    _emit(app, 6)
    ids = _ids(app)
    with pytest.raises(Crash):
        EventDispatcher(app.session_factory, lambda: {"hook": listener}, lease=lease).run_once(NOW)
    assert received == ids[: 2 + side_effect_before_crash]
    restarted = EventDispatcher(app.session_factory, lambda: {"hook": listener}, lease=lease)
    # The dead worker's lease still holds: nobody delivers to the listener until it runs out.
    assert restarted.run_once(NOW + lease - timedelta(seconds=1)) == 0
    assert restarted.run_once(NOW + lease + timedelta(seconds=1)) == 4
    expected = ids[:3] + ids[2:] if side_effect_before_crash else ids
    assert received == expected
    assert restarted.run_once(NOW + lease + timedelta(seconds=2)) == 0


def test_two_dispatchers_at_once_never_hand_an_event_twice_to_one_listener(app):
    _emit(app, 0)
    delivered: Counter[tuple[str, int]] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(2)

    def listener_for(name: str):
        def listener(event: Event) -> None:
            with lock:
                delivered[(name, event.id)] += 1

        return listener

    listeners = {"one": listener_for("one"), "two": listener_for("two")}
    dispatchers = [EventDispatcher(app.session_factory, lambda: listeners, batch=7) for _ in range(2)]
    dispatchers[0].run_once()
    _emit(app, 60)
    ids = _ids(app)
    errors: list[BaseException] = []

    def work(dispatcher: EventDispatcher) -> None:
        try:
            barrier.wait()
            while dispatcher.run_once():
                pass
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(d,)) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    # Whatever one worker left (it saw the other holding a lease), a last pass picks up.
    dispatchers[0].run_once()
    assert {key: n for key, n in delivered.items() if n != 1} == {}
    assert sorted(i for name, i in delivered if name == "one") == ids
    assert sorted(i for name, i in delivered if name == "two") == ids


def test_prune_keeps_what_a_listener_still_needs_and_dead_letters(app):
    failing: set[int] = set()

    def slow(event: Event) -> None:
        if event.id in failing:
            raise RuntimeError("no")

    dispatcher = EventDispatcher(app.session_factory, lambda: {"slow": slow}, max_attempts=1, batch=1)
    with time_machine.travel(NOW - timedelta(days=40), tick=False):
        EventDispatcher(app.session_factory, lambda: {"gone": lambda e: None}).run_once()
        dispatcher.run_once()  # first seen before the events: it will get them
    with time_machine.travel(NOW - timedelta(days=20), tick=False):
        _emit(app, 4)
    ids = _ids(app)
    failing.add(ids[1])
    with time_machine.travel(NOW, tick=False):
        dispatcher.run_once()  # ids[0] delivered
        dispatcher.run_once()  # ids[1] dead-lettered
    assert _cursor(app, "slow").last_event_id == ids[1]
    # "gone" has not been served for 40 days: it holds nothing back; "slow" has not had ids[2:].
    assert prune(app.session_factory, keep_days=10, now=NOW) == 1
    assert _ids(app) == ids[1:]
    assert count(app, EventDeadLetter) == 1
    assert prune(app.session_factory, keep_days=30, now=NOW) == 0


def test_the_worker_service_delivers_after_a_wake(app):
    from bot.event_worker import EventWorkerService

    got: list[int] = []
    service = EventWorkerService(app.session_factory, lambda: {"hook": lambda e: got.append(e.id)}, poll_seconds=3600)

    async def scenario() -> None:
        await service.start()
        try:
            while service.passes < 1:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(_emit, app, 2)
            # From another thread, as a request handler would.
            await asyncio.to_thread(service.wake)
            for _ in range(1000):
                if len(got) == 2:
                    break
                await asyncio.sleep(0.01)
        finally:
            await service.stop()

    asyncio.run(scenario())
    assert got == _ids(app)


# -- chatcrm events tail --------------------------------------------------------------------------


def test_events_tail_prints_the_latest_events(app, chat, rep, acme, database_url, monkeypatch, capsys):
    with time_machine.travel(NOW, tick=False):
        chat.say(rep, "/deal new acme Printers amount=100")
        chat.say(rep, "/deal stage 1 won")
    code, out = _cli(monkeypatch, database_url, capsys, "events", "tail", "--limit", "2", "--type", "deal.")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    ids = [e.id for e in stream(app, "deal.")][-2:]
    assert lines[0].startswith(f"{ids[0]} 2026-11-02T10:00:00Z deal.stage_changed deal:1 Rita Rep@console {{")
    assert lines[1].startswith(f"{ids[1]} 2026-11-02T10:00:00Z deal.won deal:1 Rita Rep@console {{")
    assert '"amount":"100.00"' in lines[1] and '"from_stage":"lead"' in lines[1]
    code, out = _cli(monkeypatch, database_url, capsys, "events", "tail", "--type", "nothing.")
    assert (code, out) == (0, "")


def test_events_tail_follow_prints_new_events_until_interrupted(app, acme, database_url, monkeypatch, capsys):
    import threading
    import time

    sleeps = {"n": 0}
    real_sleep = time.sleep

    def fake_sleep(seconds: float) -> None:
        # time.sleep is patched for the whole process: threads left by other tests in this worker
        # (a Spark gateway, a server) must not use up the CLI's turns.
        if threading.current_thread() is not threading.main_thread():
            real_sleep(seconds)
            return
        sleeps["n"] += 1
        if sleeps["n"] == 1:
            with app.uow() as uow:
                customers.update_customer(uow, acme, {"country": "DE"})
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", fake_sleep)
    code, out = _cli(monkeypatch, database_url, capsys, "events", "tail", "--limit", "1", "--follow")
    assert code == 130
    lines = out.splitlines()
    assert [line.split()[2] for line in lines] == ["customer.created", "customer.updated"]


def test_events_table_is_not_audited(app, acme):
    from crm_core.models import AuditEntry

    assert count(app, DomainEvent) == 1
    assert count(app, AuditEntry, AuditEntry.entity_type == "events") == 0
    assert rows(app, DomainEvent)[0].type == "customer.created"
