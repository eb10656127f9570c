"""The inbox lets one copy of a delivery through, also under concurrency, forgets a key whose
transaction rolled back, and prunes old keys; the dispatcher uses it for ``Request.inbox_key``."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
import time_machine

from bot.dispatch import AlreadyHandled
from crm_core import clock, inbox
from crm_core.models import InboundEvent, Interaction, Role
from crm_core.services import customers


def _keys(app) -> list[tuple[str, str]]:
    with app.uow() as uow:
        rows = uow.session.execute(sa.select(InboundEvent.platform, InboundEvent.key).order_by(InboundEvent.id))
        return [(platform, key) for platform, key in rows]


def test_first_time_once_per_platform_and_key(app):
    with app.uow() as uow:
        assert inbox.first_time(uow, "slack", "event:Ev1") is True
        assert inbox.first_time(uow, "slack", "event:Ev1") is False
        assert inbox.first_time(uow, "telegram", "event:Ev1") is True
    with app.uow() as uow:
        assert inbox.first_time(uow, "slack", "event:Ev1") is False
    assert _keys(app) == [("slack", "event:Ev1"), ("telegram", "event:Ev1")]


def test_a_rolled_back_delivery_leaves_no_key(app):
    with pytest.raises(RuntimeError), app.uow() as uow:
        assert inbox.first_time(uow, "slack", "event:Ev2")
        raise RuntimeError("the handler failed")
    with app.uow() as uow:
        assert inbox.first_time(uow, "slack", "event:Ev2") is True


def test_concurrent_copies_let_exactly_one_through(app):
    copies = 8
    start = threading.Barrier(copies)
    results: list[bool] = []
    lock = threading.Lock()

    def deliver() -> None:
        start.wait()
        with app.uow() as uow:
            first = inbox.first_time(uow, "slack", "event:EvRace")
            # Do some work in the same transaction, as a handler would, before committing.
            uow.session.execute(sa.select(sa.func.count()).select_from(InboundEvent))
        with lock:
            results.append(first)

    threads = [threading.Thread(target=deliver) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results) == [False] * (copies - 1) + [True]
    assert _keys(app) == [("slack", "event:EvRace")]


def test_prune_forgets_keys_older_than_the_cutoff(app):
    with time_machine.travel(clock.utcnow() - timedelta(days=2), tick=False), app.uow() as uow:
        inbox.first_time(uow, "slack", "old")
    with app.uow() as uow:
        inbox.first_time(uow, "slack", "new")
    with app.uow() as uow:
        assert inbox.prune(uow, clock.utcnow() - timedelta(days=1)) == 1
    assert _keys(app) == [("slack", "new")]


def test_keys_are_bounded(app):
    with app.uow() as uow, pytest.raises(ValueError, match="200"):
        inbox.first_time(uow, "slack", "x" * 201)


def test_the_dispatcher_runs_a_delivery_once(chat, app):
    rep = chat.user("Rita Rep", Role.SALES)
    with app.uow() as uow:
        customer_id = customers.create_customer(uow, "Acme Corp").id
    said = chat.say(rep, f"/note #{customer_id} Called", inbox_key="trigger:1")
    assert "logged on Acme Corp" in said.text
    with pytest.raises(AlreadyHandled):
        chat.say(rep, f"/note #{customer_id} Called", inbox_key="trigger:1")
    with app.uow() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(Interaction)) == 1


def test_answers_without_a_command_use_up_the_key_too(chat):
    rep = chat.user("Rita Rep", Role.SALES)
    assert "never closed" in chat.say(rep, '/note "unclosed', inbox_key="trigger:2").text
    with pytest.raises(AlreadyHandled):
        chat.say(rep, '/note "unclosed', inbox_key="trigger:2")


def test_a_refused_command_is_answered_once_and_changes_nothing(chat, app):
    rep = chat.user("Rita Rep", Role.SALES)
    assert "no customer" in chat.say(rep, "/note #999 Called", inbox_key="trigger:3").text.lower()
    # The refusal was its answer: a redelivery is not answered again (issue 12).
    with pytest.raises(AlreadyHandled):
        chat.say(rep, "/note #999 Called", inbox_key="trigger:3")
    assert _keys(app) == [("console", "trigger:3")]
    with app.uow() as uow:
        assert uow.session.scalar(sa.select(sa.func.count()).select_from(Interaction)) == 0


def test_deliveries_kept_in_one_batch_are_claimed_once_each(app):
    inbox.receive(app.session_factory, "slack", "trigger:done", "{}")
    with app.uow() as uow:
        inbox.complete(uow, "slack", "trigger:done")
    claims = inbox.receive_many(
        app.session_factory,
        "slack",
        [("trigger:a", '{"n": 1}'), ("trigger:done", "{}"), ("trigger:b", "{}"), ("trigger:a", '{"n": 2}')],
    )
    assert [c.key if c else None for c in claims] == ["trigger:a", None, "trigger:b", None]
    assert claims[0].payload == '{"n": 1}' and claims[0].attempts == 1
    # A batch with a delivery someone holds (a live lease): not claimed again.
    assert inbox.receive_many(app.session_factory, "slack", [("trigger:b", "{}")]) == [None]


def test_a_delivery_held_past_its_lease_is_renewed_and_not_recovered_elsewhere(app):
    """Under load a kept delivery waits for a dispatch thread longer than its lease. Its process
    renews the lease while it holds it, so another process's recovery does not take it over (before,
    the worker's recovery ran it too, and one of the two did the work in vain); once the holder is
    gone, nothing renews it and the recovery does take it over."""
    import asyncio

    from bot.inbox_runner import InboxRunner, InboxSettings

    settings = InboxSettings(lease_seconds=30)
    released = asyncio.Event()
    processed: list[str] = []

    class Waiting:
        platform = "telegram"

        async def process(self, claim):
            await released.wait()
            processed.append(claim.key)
            await asyncio.to_thread(inbox.finish, app.session_factory, claim.platform, claim.key)

        def poisoned(self, uow, claim, ref):
            raise AssertionError("not poisoned")

    holder = InboxRunner(app.session_factory, settings, {"telegram": Waiting()})
    start = clock.utcnow()

    async def scenario() -> list:
        with time_machine.travel(start, tick=False) as traveller:
            claim = holder.receive("telegram", "42", "{}")
            running = asyncio.create_task(holder.run(claim))
            await asyncio.sleep(0)  # it is queued, waiting for its turn
            traveller.shift(timedelta(seconds=20))
            assert await holder.renew_leases() == 1
            traveller.shift(timedelta(seconds=20))  # 40 s after it was kept: past the first lease
            elsewhere = inbox.claim_expired(app.session_factory, ["telegram"], lease=settings.lease)
            released.set()
            assert await running
            assert await holder.renew_leases() == 0, "a finished delivery is no longer held"
            return elsewhere.claims

    assert asyncio.run(scenario()) == []
    assert processed == ["42"]

    # A holder that died: nothing renews its lease, and the recovery takes the delivery over.
    with time_machine.travel(start, tick=False) as traveller:
        dead = InboxRunner(app.session_factory, settings, {}).receive("telegram", "43", "{}")
        traveller.shift(timedelta(seconds=31))
        taken = inbox.claim_expired(app.session_factory, ["telegram"], lease=settings.lease).claims
    assert [(c.key, c.attempts) for c in taken] == [("43", dead.attempts + 1)]
    # And the dead holder's claim can no longer be renewed: the delivery is someone else's now.
    assert inbox.renew(app.session_factory, [dead], lease=settings.lease) == set()


def test_a_recovery_cut_short_lets_go_of_the_deliveries_it_did_not_run(app):
    """The recovery holds (and renews) every delivery it claimed while it runs them one by one. Cut
    short (here cancelled while running the first, as when the worker stops), it lets go of the
    rest too: nothing renews them, so their leases run out and they are recovered again."""
    import asyncio

    from bot.inbox_runner import InboxRunner, InboxSettings

    settings = InboxSettings(lease_seconds=30)
    started = asyncio.Event()

    class Stuck:
        platform = "telegram"

        async def process(self, claim):
            started.set()
            await asyncio.Event().wait()

        def poisoned(self, uow, claim, ref):
            raise AssertionError("not poisoned")

    start = clock.utcnow()
    with time_machine.travel(start, tick=False) as traveller:
        for key in ("1", "2"):
            inbox.receive(app.session_factory, "telegram", key, "{}", lease=settings.lease)
        traveller.shift(timedelta(seconds=31))
        runner = InboxRunner(app.session_factory, settings, {"telegram": Stuck()})

        async def scenario() -> int:
            recovering = asyncio.create_task(runner.recover())
            await started.wait()
            traveller.shift(timedelta(seconds=20))  # due for renewal: both are held
            held = await runner.renew_leases()
            recovering.cancel()
            with pytest.raises(asyncio.CancelledError):
                await recovering
            return held

        assert asyncio.run(scenario()) == 2
        traveller.shift(timedelta(seconds=15))  # due for renewal again, if they were still held
        assert asyncio.run(runner.renew_leases()) == 0, "nothing is held once the recovery stopped"
        traveller.shift(timedelta(seconds=16))
        again = inbox.claim_expired(app.session_factory, ["telegram"], lease=settings.lease).claims
    assert sorted(c.key for c in again) == ["1", "2"]
