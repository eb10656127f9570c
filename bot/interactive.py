"""Interactive messages through the outbox: answers, relays and notices as rows of the fast lane.

What a request makes the bot say (``bot.messages.Outgoing``) is queued with ``OutboxQueue.add`` in
the transaction of the request's effect, as ``crm_core.outbox.INTERACTIVE`` rows keyed by the
message's own stable key: a request processed again (a redelivery, a recovery after a crash)
queues nothing twice and repairs what is missing. The process then sends exactly the rows it
queued right after the commit (``OutboxSender.send_now``); whatever it could not send (a crash,
a 429, a 5xx) stays in the outbox for the worker's sender, which claims this lane before bulk.

An ``AfterSend`` travels with its row (``OutboxMessage.after``). ``AfterSendRecorder`` runs the
handler module's recorder when the row was sent (in the transaction that marks it sent, so the
relay's message id is written down exactly when the row is ``sent``) or finally failed, and
queues what the recorder asks to send in turn ("Sent to …", "Not delivered …").

An ``Outgoing`` with ``deferred`` is queued as a row of that outbox kind, written by the kind's
preparer right before it is sent (a post into a ticket's thread learns then which thread it goes to).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.messages import AfterSend, Destination, Outgoing, Reply
from bot.router import Recorder
from crm_core import outbox
from crm_core.outbox import Claimed
from crm_core.outbox_payload import MessagePayload
from crm_core.uow import UnitOfWork

log = logging.getLogger("chatcrm.interactive")

KIND = "interactive"


def after_to_json(after: AfterSend) -> dict[str, Any]:
    data: dict[str, Any] = {"kind": after.kind, "ref": after.ref}
    if after.notify is not None:
        n = after.notify
        data["notify"] = {
            "platform": n.platform,
            "conversation": n.conversation,
            "thread": n.thread,
            "reply_to": n.reply_to,
        }
    return data


def after_from_json(data: dict[str, Any]) -> AfterSend:
    notify = data.get("notify")
    return AfterSend(str(data["kind"]), int(data["ref"]), Destination(**notify) if notify else None)


def payload_of(send: Outgoing) -> MessagePayload:
    return MessagePayload(
        reply=send.reply.to_dict(), thread=send.to.thread, reply_to=send.to.reply_to, answer_to=send.answer_to
    )


def outgoing_of(row: Claimed) -> Outgoing:
    """The neutral message an interactive row was queued from (for its recorder)."""
    payload = MessagePayload.from_json(row.payload)
    reply = Reply.from_dict(payload.reply) if payload.reply is not None else Reply(text=payload.formatted_text)
    to = Destination(row.platform, row.conversation, payload.thread, payload.reply_to)
    after = after_from_json(row.after) if row.after else None
    answer_to = dict(payload.answer_to) if payload.answer_to is not None else None
    return Outgoing(to, reply, row.idempotency_key, after, answer_to=answer_to)


def enqueue(uow: UnitOfWork, sends: Iterable[Outgoing], send_now: outbox.SendNow | None = None) -> list[int]:
    """Queue ``sends`` as interactive rows in the caller's transaction; the ids, in order, of the
    rows not taken by ``send_now`` (those are in ``send_now.claimed``)."""
    ids = []
    sends = list(sends)
    # A deferred row is prepared by the sender's loop (it may wait for its thread), so it is never
    # taken; nor are the other rows of its conversation, which must not go out ahead of it.
    deferred_to = {(s.to.platform, s.to.conversation) for s in sends if s.deferred is not None}
    for send in sends:
        if send.deferred is None and send.reply.is_empty:
            continue
        taking = send_now if (send.to.platform, send.to.conversation) not in deferred_to else None
        row = outbox.enqueue(
            uow,
            idempotency_key=send.key,
            kind=send.deferred or KIND,
            platform=send.to.platform,
            conversation=send.to.conversation,
            # A deferred row carries nothing until its kind's preparer writes it at send time.
            payload=MessagePayload(deferred=send.deferred) if send.deferred else payload_of(send),
            priority=outbox.INTERACTIVE,
            after=after_to_json(send.after) if send.after is not None else None,
            send_now=taking,
        )
        if taking is None or not any(c.id == row.id for c in taking.claimed):
            ids.append(row.id)
    return ids


class OutboxQueue:
    """What one request queued, to send right after its transaction commits: the rows the sender
    took in that transaction (``claimed``, with ``send_now``: see crm_core.outbox.SendNow) and the
    ids of the others, which it claims first."""

    def __init__(self, send_now: outbox.SendNow | None = None) -> None:
        self.ids: list[int] = []
        self.send_now = send_now
        # Whether the request's transaction marked its delivery done (nothing left to mark).
        self.done = False

    @property
    def claimed(self) -> list[Claimed]:
        return self.send_now.claimed if self.send_now is not None else []

    def add(self, uow: UnitOfWork, sends: Iterable[Outgoing]) -> None:
        """Queue ``sends`` in the transaction that marks the request done."""
        self.ids.extend(enqueue(uow, sends, self.send_now))
        self.done = True

    def reset(self) -> None:
        """The transaction rolled back: its rows are gone."""
        self.ids.clear()
        if self.send_now is not None:
            self.send_now.reset()
        self.done = False

    @property
    def pending(self) -> bool:
        """Whether there is anything to send."""
        return bool(self.ids or self.claimed)


class AfterSendRecorder:
    """Runs the recorders of rows that carry an ``after`` (``router.recorder`` finds them by kind)."""

    def __init__(self, session_factory: sessionmaker[Session], recorder_for: Callable[[str], Recorder | None]):
        self.session_factory = session_factory
        self.recorder_for = recorder_for

    def sent(self, row: Claimed, owner: str, message_id: str | None) -> tuple[bool, list[int]]:
        """Mark ``row`` sent and record it in one transaction: (still ours, rows queued in turn)."""
        if row.after is None:
            return outbox.mark_sent(self.session_factory, row.id, owner, message_id), []
        try:
            with UnitOfWork(self.session_factory) as uow:
                if not outbox.mark_sent_in(uow.session, row.id, owner, message_id):
                    return False, []
                return True, self._record(uow, row, message_id, None)
        except Exception:  # noqa: BLE001 - a recorder's bug must not make us send the row again
            log.exception("recording outbox row %s as sent failed; marking it sent without", row.id)
            return outbox.mark_sent(self.session_factory, row.id, owner, message_id), []

    def failed(self, row: Claimed, error: str) -> list[int]:
        """``row`` will never be sent (its outcome is recorded already): tell its recorder why."""
        if row.after is None:
            return []
        try:
            with UnitOfWork(self.session_factory) as uow:
                return self._record(uow, row, None, error)
        except Exception:  # noqa: BLE001
            log.exception("recording the failure of outbox row %s failed", row.id)
            return []

    def _record(self, uow: UnitOfWork, row: Claimed, message_id: str | None, error: str | None) -> list[int]:
        sent = outgoing_of(row)
        assert sent.after is not None
        recorder = self.recorder_for(sent.after.kind)
        if recorder is None:
            log.warning("nothing records %r sends (outbox row %s)", sent.after.kind, row.id)
            return []
        follow: Sequence[Outgoing] = recorder(uow, sent, message_id, error)
        return enqueue(uow, follow)
