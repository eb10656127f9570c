"""Rows a request's transaction takes for its own sender (crm_core.outbox.SendNow), on SQLite and
PostgreSQL: taken only when ``claim_due`` would have let that sender have them, and a taken row
that its process never sent comes back to another sender when its short lease ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine

from crm_core import outbox
from crm_core.models import OutboxMessage, OutboxStatus
from crm_core.outbox_payload import MessagePayload
from crm_core.uow import UnitOfWork

LEASE = timedelta(seconds=20)
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _offer(*, parallel: bool = False, platforms=("telegram", "slack")) -> outbox.SendNow:
    chosen = frozenset(platforms)
    return outbox.SendNow(owner="web-1", lease=LEASE, platforms=chosen, parallel=chosen if parallel else frozenset())


def _queue(app, key: str, offer: outbox.SendNow | None, *, platform="telegram", conversation="42") -> OutboxMessage:
    with UnitOfWork(app.session_factory) as uow:
        row = outbox.enqueue(
            uow,
            idempotency_key=key,
            kind="interactive",
            platform=platform,
            conversation=conversation,
            payload=MessagePayload(formatted_text=f"answer {key}"),
            priority=outbox.INTERACTIVE,
            send_now=offer,
        )
        uow.session.expunge(row)
    return row


def test_an_idle_conversation_is_taken_at_once_with_a_short_lease(app):
    offer = _offer()
    with time_machine.travel(NOW, tick=False):
        row = _queue(app, "a", offer)
    assert (row.status, row.claimed_by, row.attempts) == (OutboxStatus.SENDING, "web-1", 1)
    assert row.lease_until.replace(tzinfo=UTC) == NOW + LEASE
    assert [c.id for c in offer.claimed] == [row.id]
    assert offer.claimed[0].payload["formatted_text"] == "answer a"


def test_a_conversation_with_a_row_in_flight_elsewhere_is_left_to_claim_due(app):
    with time_machine.travel(NOW, tick=False):
        _queue(app, "first", _offer())
        second = _offer()
        row = _queue(app, "second", second)
    assert row.status == OutboxStatus.PENDING and row.claimed_by is None
    assert second.claimed == []


def test_a_parallel_sender_takes_rows_next_to_rows_in_flight(app):
    with time_machine.travel(NOW, tick=False):
        _queue(app, "first", _offer(parallel=True), platform="slack", conversation="C1")
        row = _queue(app, "second", _offer(parallel=True), platform="slack", conversation="C1")
    assert row.status == OutboxStatus.SENDING


def test_one_transaction_takes_all_its_rows_of_one_conversation(app):
    offer = _offer()
    with time_machine.travel(NOW, tick=False), UnitOfWork(app.session_factory) as uow:
        for key in ("x", "y"):
            outbox.enqueue(
                uow,
                idempotency_key=key,
                kind="interactive",
                platform="telegram",
                conversation="42",
                payload=MessagePayload(formatted_text=key),
                send_now=offer,
            )
    assert [c.idempotency_key for c in offer.claimed] == ["x", "y"]


def test_blocked_paused_and_foreign_platforms_and_ordered_ones_are_not_taken(app):
    from crm_core.services import reachability

    with UnitOfWork(app.session_factory) as uow:
        reachability.recipient_unreachable(uow, "telegram", "99", "bot was blocked")
    offer = _offer(platforms=("telegram",))
    with time_machine.travel(NOW, tick=False):
        blocked = _queue(app, "b", offer, conversation="99")
        foreign = _queue(app, "f", offer, platform="slack", conversation="C1")
        ordered = _queue(app, "w", _offer(platforms=("webhook",)), platform="webhook", conversation="hook-1")
        later = _queue(app, "l", offer, conversation="43")
    assert later.status == OutboxStatus.SENDING
    assert blocked.status == OutboxStatus.BLOCKED
    assert (foreign.status, ordered.status) == (OutboxStatus.PENDING, OutboxStatus.PENDING)
    assert [c.idempotency_key for c in offer.claimed] == ["l"]


def test_a_rolled_back_transaction_forgets_what_it_took(app):
    offer = _offer()
    try:
        with time_machine.travel(NOW, tick=False), UnitOfWork(app.session_factory) as uow:
            outbox.enqueue(
                uow,
                idempotency_key="gone",
                kind="interactive",
                platform="telegram",
                conversation="42",
                payload=MessagePayload(formatted_text="never"),
                send_now=offer,
            )
            raise RuntimeError("the request failed")
    except RuntimeError:
        offer.reset()
    assert offer.claimed == []
    with time_machine.travel(NOW, tick=False):
        # Nothing of it is left in flight: the conversation is free for the next request.
        assert _queue(app, "next", _offer()).status == OutboxStatus.SENDING


def test_a_taken_row_never_sent_goes_to_another_sender_after_its_lease(app):
    with time_machine.travel(NOW, tick=False):
        row = _queue(app, "lost", _offer())

    def claim(at: datetime) -> list[int]:
        found = outbox.claim_due(
            app.session_factory, owner="worker", platforms=["telegram"], limit=10, lease=LEASE, now=at
        )
        return [c.id for c in found]

    assert claim(NOW + LEASE - timedelta(seconds=1)) == []
    assert claim(NOW + LEASE + timedelta(seconds=1)) == [row.id]
