"""The outbox sender: the worker service that delivers outbox rows through each platform's sender.

Loop: claim due rows (crm_core.outbox.claim_due) for the platforms it has a ``PlatformSender``
for and that are not paused; queue them per conversation; one task per conversation sends its
rows in order, each after taking a slot from the platform's rate limiter; the outcome is
written right after each send (so at a crash at most the rows in ``sending`` are in doubt):

- sent: ``sent`` with the platform's message id;
- ``RateLimited``: the whole platform pauses for ``retry_after`` and the row goes back to
  pending for after the pause (not counted as an attempt); nothing is dropped;
- ``RecipientUnreachable``: the row and every other row to that recipient are ``blocked``, and
  the customers there are opted out of campaigns (crm_core.services.reachability);
- ``ChatMoved`` (a Telegram group became a supergroup): the new chat id replaces the old one
  everywhere it is kept, and the row (with the others held for that chat) is sent there;
- ``PermanentFailure`` (this one message can never go out, e.g. the message it should edit is
  gone): ``failed`` at once, without retries; the conversation is not blocked;
- ``TemporaryFailure`` or anything unexpected: retried with exponential backoff, ``failed``
  after the last attempt; a payload that cannot be read fails at once.

Interactive rows (crm_core.outbox.INTERACTIVE: answers, relays, notices) are claimed before bulk
ones. A row carrying an ``after`` has its recorder run when it was sent (in the transaction that
marks it sent) or finally failed (bot.interactive); what that queues in turn is sent next.
``send_now`` sends given rows at once, without the loop: the web process sends what a request
queued right after its commit this way, and leaves what it could not send to the worker. Those
rows carry a short lease that nothing renews in the background: one that waited for the
platform's overall budget past a quarter of its lease is renewed right before it is sent, and is
not sent when another sender took it over meanwhile (under load, the worker's sender takes rows
whose lease ran out: sent by both, they would arrive twice).

While rows are held, their leases are renewed, so a slow queue never looks like a crash. On
SQLite one sender runs per database (a leader lock; others wait as standbys); on PostgreSQL any
number may run side by side (``CHATCRM_OUTBOX_SENDERS`` tells each to take its share of the
overall rate; a conversation is served by one sender at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.delivery import (
    ChatMoved,
    OutboundMessage,
    PermanentFailure,
    PlatformSender,
    RateLimited,
    RecipientUnreachable,
    RetryPolicy,
    TemporaryFailure,
)
from bot.interactive import AfterSendRecorder
from bot.messages import Button, Image, Reply, Style
from bot.rate_limit import PlatformLimiter, PlatformLimits, Rate, limits_from_env
from bot.settings import env_number
from crm_core import outbox
from crm_core.clock import utcnow
from crm_core.models.outbox import OutboxStatus
from crm_core.outbox import Claimed
from crm_core.outbox_payload import MessagePayload, PayloadError
from crm_core.scheduling.leader import LeaderLock, holder_id
from crm_core.services import reachability

log = logging.getLogger("chatcrm.outbox")
# A deferred (campaign) row is rendered and re-checked (pause, cancel, consent) before it waits its
# turn under the platform's overall rate; at most this many seconds' worth of such rows wait
# ready (Telegram's 30/s: 7), so a pause or an opt-out holds within about that long, not the
# `concurrency` rows' worth (a second and more) it would otherwise be.
READY_AHEAD_SECONDS = 0.25
# The lease of rows ``send_now`` claims: a few sends' worth, so a crash delays them this long at most.
SEND_NOW_LEASE_SECONDS = 20.0
# A row ``send_now`` has held longer than this share of its lease (waiting for the platform's
# overall budget, under load) is renewed, if it is still ours, right before it is sent: once its
# lease ran out another sender may have taken it over and sent it, and sending it too would
# deliver it twice.
SEND_NOW_RECHECK_SHARE = 0.25


class _NoSlotInTime(Exception):
    """``send_now`` found no slot in the platform's overall budget within ``send_now_wait_seconds``."""


@dataclass(frozen=True)
class SenderSettings:
    lease_seconds: float = 120.0
    # How often to look for new rows when there is nothing to do.
    poll_seconds: float = 1.0
    max_attempts: int = outbox.DEFAULT_MAX_ATTEMPTS
    backoff_seconds: float = outbox.DEFAULT_BACKOFF.total_seconds()
    # Rows held in memory at most (claimed, not yet sent).
    max_held: int = 200
    # Conversations sent to at the same time.
    concurrency: int = 32
    # SQLite: how often a standby sender tries to take over, and how long the sender lock lives
    # without being renewed (a killed sender's successor waits at most this long).
    standby_seconds: float = 5.0
    lock_ttl_seconds: float = 15.0
    # PostgreSQL: how many sender processes run; each takes this share of the overall limits.
    senders: int = 1
    # How long ``send_now`` waits for the platform's overall budget before it leaves an answer to
    # the worker's sender: the request that sends it (a Telegram update's 200) waits no longer.
    send_now_wait_seconds: float = 2.0
    limits: Mapping[str, PlatformLimits] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str], defaults: Mapping[str, PlatformLimits] | None = None) -> SenderSettings:
        """The settings from ``CHATCRM_OUTBOX_*``; ``defaults`` are the platforms' declared rate limits."""

        def number(name: str, default: float) -> float:
            return env_number(env, name, default)

        return cls(
            lease_seconds=number("CHATCRM_OUTBOX_LEASE", cls.lease_seconds),
            poll_seconds=number("CHATCRM_OUTBOX_POLL", cls.poll_seconds),
            max_attempts=int(number("CHATCRM_OUTBOX_MAX_ATTEMPTS", cls.max_attempts)),
            backoff_seconds=number("CHATCRM_OUTBOX_BACKOFF", cls.backoff_seconds),
            max_held=int(number("CHATCRM_OUTBOX_BATCH", cls.max_held)),
            concurrency=int(number("CHATCRM_OUTBOX_CONCURRENCY", cls.concurrency)),
            standby_seconds=number("CHATCRM_OUTBOX_STANDBY", cls.standby_seconds),
            lock_ttl_seconds=number("CHATCRM_OUTBOX_LOCK_TTL", cls.lock_ttl_seconds),
            senders=max(int(number("CHATCRM_OUTBOX_SENDERS", cls.senders)), 1),
            send_now_wait_seconds=number("CHATCRM_OUTBOX_SEND_NOW_WAIT", cls.send_now_wait_seconds),
            limits=limits_from_env(env, defaults),
        )

    def limits_for(self, platform: str, exclusive: bool) -> PlatformLimits:
        """This sender's limits: the platform's, with the overall one shared among ``senders``
        processes (PostgreSQL; on SQLite only one sender runs)."""
        limits = self.limits.get(platform, PlatformLimits())
        if exclusive or self.senders == 1 or limits.overall is None:
            return limits
        overall = limits.overall
        share = (
            Rate(overall.count // self.senders, overall.per_seconds)
            if overall.count >= self.senders
            else Rate(1, overall.per_seconds * self.senders / overall.count)
        )
        return replace(limits, overall=share)


def _reason(exc: Exception) -> str:
    """Why a send failed, for people: the platform's words, not our exception's name."""
    text = str(exc)
    return text if isinstance(exc, TemporaryFailure) and text else f"{type(exc).__name__}: {text}"


class UnreadablePayload(Exception):
    """An outbox payload the sender cannot turn into a message; retrying will not help."""


def outbound_message(row: Claimed) -> OutboundMessage:
    """The ``OutboundMessage`` an outbox row describes (the contract: crm_core.outbox_payload)."""
    try:
        payload = MessagePayload.from_json(row.payload)
        reply = Reply.from_dict(payload.reply) if payload.reply is not None else None
        buttons = tuple(Button(b.label, b.command, Style(b.style), b.opens_form) for b in payload.buttons)
    except (PayloadError, KeyError, TypeError, ValueError) as exc:
        raise UnreadablePayload(f"unreadable payload: {type(exc).__name__}: {exc}") from None
    if payload.deferred is not None:
        raise UnreadablePayload(f"a deferred {payload.deferred!r} row was not prepared")
    image = payload.image
    return OutboundMessage(
        conversation=row.conversation,
        reply=reply,
        formatted_text=payload.formatted_text,
        blocks=payload.blocks,
        buttons=buttons,
        image=Image(image.path, image.title, image.alt_text) if image is not None else None,
        thread=payload.thread,
        replace=payload.replace,
        reply_to=payload.reply_to,
        answer_to=dict(payload.answer_to) if payload.answer_to is not None else None,
        metadata={
            "outbox_id": row.id,
            "idempotency_key": row.idempotency_key,
            "kind": row.kind,
            "format": payload.format,
            "attempt": row.attempts,
        },
    )


class OutboxSender:
    """A ``WorkerService``: ``start`` begins delivering, ``stop`` finishes the sends in progress and
    hands the rest back."""

    name = "outbox sender"

    def __init__(
        self,
        engine: Engine,
        session_factory: sessionmaker[Session],
        senders: Mapping[str, PlatformSender],
        settings: SenderSettings | None = None,
        *,
        owner: str | None = None,
        preparers: Mapping[str, outbox.Preparer] | None = None,
        after: AfterSendRecorder | None = None,
        on_moved: Callable[[str, str, str], None] | None = None,
        retries: Mapping[str, RetryPolicy] | None = None,
        owns_senders: bool = False,
    ):
        self.engine = engine
        self.session_factory = session_factory
        self.senders = dict(senders)
        # The worker's sender made its platform senders for itself: it closes them when it stops (their
        # HTTP sessions; left open, each logged "Unclosed client session" at exit). A web process's
        # interactive lane shares its adapter's, which the adapter closes.
        self.owns_senders = owns_senders
        # Deferred outbox kinds (register_outbox_kinds): rows prepared right before they are sent.
        self.preparers = dict(preparers or {})
        # Records what sent (or finally failed) rows with an ``after`` mean (bot.interactive).
        self.after = after
        # Told (platform, old id, new id) when a chat moved, e.g. to follow a configured support chat.
        self.on_moved = on_moved
        self.settings = settings or SenderSettings()
        # Platforms that retry otherwise than the settings say (PlatformSpec.retry: webhooks).
        self.retries = dict(retries or {})
        self.owner = owner or holder_id()
        self.limiters = {
            platform: PlatformLimiter(self.settings.limits_for(platform, self.exclusive)) for platform in self.senders
        }
        self.sent = 0
        self._queues: dict[tuple[str, str], deque[Claimed]] = {}
        self._workers: dict[tuple[str, str], asyncio.Task] = {}
        self._held: set[int] = set()
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._slots: asyncio.Semaphore | None = None
        self._ready_ahead: dict[str, asyncio.Semaphore] = {}
        self._lock: LeaderLock | None = None
        self._standing_by = False

    # WorkerService

    async def start(self) -> None:
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self._ready_ahead = {
            platform: asyncio.Semaphore(max(1, math.floor(limiter.limits.overall.per_second * READY_AHEAD_SECONDS)))
            for platform, limiter in self.limiters.items()
            if limiter.limits.overall is not None
        }
        self._task = asyncio.create_task(self._run(), name="outbox-sender")
        for platform, limiter in self.limiters.items():
            log.info("outbox: sending to %s (%s)", platform, limiter.limits.describe())

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.owns_senders:
            for platform, sender in self.senders.items():
                closing = getattr(sender, "close", None)
                if closing is None:
                    continue
                try:
                    await closing()
                except Exception:  # noqa: BLE001 - stopping anyway; the others still get closed
                    log.warning("outbox: closing the %s sender failed", platform, exc_info=True)

    @property
    def send_now_lease_seconds(self) -> float:
        """The lease of the rows ``send_now`` sends (and a request takes for it, ``offer``)."""
        return min(self.settings.lease_seconds, SEND_NOW_LEASE_SECONDS)

    def wake(self) -> None:
        """Look for due rows now (called when something was just enqueued in this process)."""
        self._wake.set()

    # The loop

    @property
    def exclusive(self) -> bool:
        """SQLite: one sender per database."""
        return self.engine.dialect.name == "sqlite"

    async def _run(self) -> None:
        try:
            await asyncio.to_thread(self._warn_about_unserved_platforms)
        except sa.exc.SQLAlchemyError:
            pass  # only a hint; the loop below reports database trouble
        try:
            while not self._stopping.is_set():
                if self.exclusive and not await self._lead():
                    await self._wait(self.settings.standby_seconds)
                    continue
                await self._deliver_while_leading()
        except Exception:
            log.exception("the outbox sender stopped on an unexpected error")
            raise
        finally:
            await self._drain()
            if self._lock is not None:
                await asyncio.to_thread(self._lock.release)

    def _warn_about_unserved_platforms(self) -> None:
        with self.session_factory() as session:
            waiting = outbox.pending_by_platform(session)
        for platform, count in sorted(waiting.items()):
            if platform not in self.senders:
                log.warning(
                    "outbox: %d messages wait for %s, which this worker has no sender for "
                    "(configure the platform to deliver them)",
                    count,
                    platform,
                )

    async def _lead(self) -> bool:
        if self._lock is None:
            ttl = timedelta(seconds=max(self.settings.lock_ttl_seconds, 3 * self.settings.poll_seconds))
            self._lock = LeaderLock(self.engine, "outbox-sender", ttl=ttl, holder=self.owner)
        if await asyncio.to_thread(self._lock.try_acquire):
            self._standing_by = False
            return True
        if not self._standing_by:
            log.info("outbox: another sender is active on this database; waiting as a standby")
            self._standing_by = True
        return False

    async def _deliver_while_leading(self) -> None:
        renew_every = max(min(self.settings.lease_seconds, self.settings.lock_ttl_seconds) / 3, 0.05)
        renewed_at = asyncio.get_running_loop().time()
        while not self._stopping.is_set():
            try:
                now = asyncio.get_running_loop().time()
                if now - renewed_at >= renew_every:
                    if not await self._renew():
                        return  # lost the SQLite sender lock: back to standby
                    renewed_at = now
                claimed = await self._claim()
            except sa.exc.SQLAlchemyError as exc:
                # The database is away (restart, network): keep what we hold, try again shortly.
                log.warning(
                    "outbox: database error, retrying in %ss: %s", self.settings.poll_seconds, str(exc).splitlines()[0]
                )
                await self._wait(max(self.settings.poll_seconds, 1.0))
                continue
            if claimed:
                self._dispatch(claimed)
            full = len(self._held) >= self.settings.max_held
            if not claimed or full:
                await self._wait(min(self.settings.poll_seconds, renew_every))

    async def _claim(self) -> list[Claimed]:
        room = self.settings.max_held - len(self._held)
        platforms = [p for p, limiter in self.limiters.items() if limiter.paused_for() <= 0]
        if room <= 0 or not platforms:
            return []
        # The interactive lane first: someone is waiting for those.
        claimed = await self._claim_rows(platforms, room, priority=outbox.INTERACTIVE)
        if len(claimed) < room:
            claimed += await self._claim_rows(platforms, room - len(claimed))
        return claimed

    async def _claim_rows(
        self,
        platforms: list[str],
        limit: int,
        *,
        priority: int | None = None,
        ids: list[int] | None = None,
        parallel: Collection[str] = (),
    ) -> list[Claimed]:
        caps, group_caps = self._caps()
        # send_now's rows (``ids``) are sent at once and not renewed: if this process dies, the worker
        # takes them over soon.
        lease = self.send_now_lease_seconds if ids is not None else self.settings.lease_seconds
        return await asyncio.to_thread(
            outbox.claim_due,
            self.session_factory,
            owner=self.owner,
            platforms=platforms,
            limit=limit,
            lease=timedelta(seconds=lease),
            caps=caps,
            group_caps=group_caps,
            priority=priority,
            ids=ids,
            parallel=parallel,
        )

    def offer(self, *, parallel: Collection[str] = ()) -> outbox.SendNow:
        """What a request's transaction may claim for this sender as it queues (``OutboxQueue``):
        rows of its platforms that are not paused now, under ``send_now``'s short lease; ``parallel``
        as for ``send_now``."""
        return outbox.SendNow(
            owner=self.owner,
            lease=timedelta(seconds=self.send_now_lease_seconds),
            platforms=frozenset(p for p, limiter in self.limiters.items() if limiter.paused_for() <= 0),
            parallel=frozenset(parallel),
        )

    async def send_now(
        self, ids: list[int], claimed: Sequence[Claimed] = (), *, parallel: Collection[str] = ()
    ) -> None:
        """Send these rows now if they are due and not in flight elsewhere (what this process just
        queued; ``claimed``: rows it already took, see ``offer``), then what their recorders queue
        in turn. Anything not sent here (a 429, a failure, a conversation busy elsewhere) stays in
        the outbox for the worker's sender.

        ``parallel``: platforms whose rows go even while their conversation has other rows in
        flight: answers to separate requests, which need no order among them (many people asking
        in one Slack channel, each answered at their own response_url; crm_core.outbox.claim_due).
        Rows to other platforms (a reply to a Telegram customer a Slack command sent) wait their
        conversation's turn."""
        platforms = [p for p, limiter in self.limiters.items() if limiter.paused_for() <= 0]
        taken = list(claimed)
        while (ids and platforms) or taken:
            rows = taken + (
                await self._claim_rows(platforms, len(ids), ids=ids, parallel=parallel) if ids and platforms else []
            )
            taken = []
            by_conversation: dict[tuple[str, str], deque[Claimed]] = {}
            for row in sorted(rows, key=lambda r: r.id):  # taken or claimed, in the order queued
                by_conversation.setdefault((row.platform, row.conversation), deque()).append(row)
            # Claimed here just now; a row a request's transaction took says when (``taken_at``): under
            # load the process may start sending it long after, and its short lease ran from then.
            claimed_at = time.monotonic()
            followed = await asyncio.gather(
                *(self._send_queue(queue, claimed_at) for queue in by_conversation.values())
            )
            ids = [i for more in followed for i in more]

    async def _send_queue(self, queue: deque[Claimed], claimed_at: float) -> list[int]:
        more: list[int] = []
        while queue:
            if self.limiters[queue[0].platform].paused_for() > 0:
                # Rate limited meanwhile: the worker sends the rest after the pause.
                await self._record(outbox.release, [r.id for r in queue], self.owner)
                break
            row = queue.popleft()
            try:
                held_since = row.taken_at if row.taken_at is not None else claimed_at
                more += await self._deliver(row, queue, paced=False, held_since=held_since)
            except _NoSlotInTime:
                # The platform's budget is taken for longer than a person should wait (every process
                # sends its share, and this one has more than its share to send): the worker's
                # sender, or whichever has budget left, sends these, in their order.
                handed = [row.id, *(r.id for r in queue)]
                queue.clear()
                await self._record(outbox.release, handed, self.owner)
                log.debug("outbox: %d rows found no %s budget in time; left to the worker", len(handed), row.platform)
            except Exception:  # noqa: BLE001 - its lease brings it back to the worker
                log.exception("outbox row %s: recording the outcome failed; its lease will bring it back", row.id)
        return more

    def _caps(self) -> tuple[dict[str, int], dict[str, int]]:
        """Rows per conversation per claim: what its own rate lets out within half a lease."""
        horizon = self.settings.lease_seconds / 2

        def cap(rate) -> int:
            return (
                self.settings.max_held
                if rate is None
                else max(1, min(self.settings.max_held, math.floor(rate.per_second * horizon)))
            )

        caps = {p: cap(limiter.limits.per_chat) for p, limiter in self.limiters.items()}
        group_caps = {
            p: cap(limiter.limits.per_group)
            for p, limiter in self.limiters.items()
            if limiter.limits.per_group is not None
        }
        return caps, group_caps

    async def _renew(self) -> bool:
        if self.exclusive and self._lock is not None and not await asyncio.to_thread(self._lock.renew):
            log.warning("outbox: lost the sender lock; handing back %d rows", len(self._held))
            await self._drain()
            return False
        if self._held:
            until = utcnow() + timedelta(seconds=self.settings.lease_seconds)
            still = await asyncio.to_thread(
                outbox.renew_leases, self.session_factory, list(self._held), self.owner, until
            )
            lost = self._held - still
            if lost:
                log.warning("outbox: %d rows were taken over by another sender; not sending them", len(lost))
                self._forget(lost)
        return True

    async def _wait(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def _dispatch(self, claimed: list[Claimed]) -> None:
        for row in claimed:
            key = (row.platform, row.conversation)
            self._held.add(row.id)
            self._queues.setdefault(key, deque()).append(row)
            if key not in self._workers:
                self._workers[key] = asyncio.create_task(self._conversation(key), name=f"outbox:{key[0]}:{key[1]}")

    def _forget(self, ids: set[int]) -> None:
        for queue in self._queues.values():
            for row in [r for r in queue if r.id in ids]:
                queue.remove(row)
        self._held -= ids

    async def _conversation(self, key: tuple[str, str]) -> None:
        queue = self._queues[key]
        try:
            while queue and not self._stopping.is_set():
                row = queue.popleft()
                assert self._slots is not None
                async with self._slots:
                    try:
                        if await self._deliver(row, queue):
                            self._wake.set()
                    except Exception:  # noqa: BLE001 - one row's trouble must not strand the others
                        log.exception(
                            "outbox row %s: recording the outcome failed; its lease will bring it back", row.id
                        )
                    finally:
                        self._held.discard(row.id)
        finally:
            self._workers.pop(key, None)
            if not queue:
                self._queues.pop(key, None)
            # Room for more: look for due rows without waiting for the poll.
            self._wake.set()

    def _retry(self, platform: str) -> dict[str, Any]:
        """``retry_or_fail``'s policy arguments for a row of ``platform``."""
        policy = self.retries.get(platform)
        if policy is None:
            return {
                "max_attempts": self.settings.max_attempts,
                "base": timedelta(seconds=self.settings.backoff_seconds),
            }
        return {
            "max_attempts": policy.max_attempts,
            "base": timedelta(seconds=policy.backoff_seconds),
            "cap": timedelta(seconds=policy.max_backoff_seconds),
        }

    async def _record(self, outcome, *args, **kwargs):  # noqa: ANN001, ANN202 - any crm_core.outbox writer
        return await asyncio.to_thread(outcome, self.session_factory, *args, **kwargs)

    async def _ready(self, row: Claimed) -> tuple[Claimed, OutboundMessage] | None:
        """The row (a deferred one prepared now) and its message; None when it is not to be sent
        (what happened to it is recorded)."""
        if row.payload.get("deferred"):
            # Rendered now, after re-checking pause and consent; None: not to be sent (recorded).
            try:
                prepared = await self._record(outbox.prepare, row, self.owner, self.preparers)
            except Exception as exc:  # noqa: BLE001 - a database hiccup or a bug in a preparer
                log.exception("preparing outbox row %s failed", row.id)
                await self._record(
                    outbox.retry_or_fail,
                    row,
                    self.owner,
                    f"preparing failed: {type(exc).__name__}: {exc}",
                    **self._retry(row.platform),
                )
                return None
            if prepared is None:
                return None
            row = prepared
        try:
            return row, outbound_message(row)
        except UnreadablePayload as exc:
            await self._record(outbox.mark_failed, row.id, self.owner, str(exc))
            return None

    async def _deliver(
        self, row: Claimed, queue: deque[Claimed], *, paced: bool = True, held_since: float | None = None
    ) -> list[int]:
        """Send one row and record what happened (the caller forgets the row afterwards); the ids of
        rows its recorder queued in turn. ``paced=False`` (``send_now``): no waiting for the
        conversation's pace, as an answer given in person would not wait, but the platform's overall
        budget still holds (Telegram refuses more than 30 messages/s from a bot, answers included);
        a 429 pauses the platform. ``held_since``: when ``send_now`` took the row, whose short lease
        is not renewed in the background: it waits for its slot ``send_now_wait_seconds`` at most
        (else ``_NoSlotInTime``), and a row that waited long is renewed first, and not sent if
        another sender took it over meanwhile."""
        sender = self.senders[row.platform]
        limiter = self.limiters[row.platform]
        ahead = self._ready_ahead.get(row.platform) if row.payload.get("deferred") else None
        async with ahead or contextlib.nullcontext():
            ready = await self._ready(row)
            if ready is None:
                return []
            if paced:
                slot = await limiter.acquire(row.conversation)
            else:
                try:
                    # Cancelled while waiting, acquire has reserved nothing (it reserves as it returns).
                    slot = await asyncio.wait_for(limiter.acquire(None), self.settings.send_now_wait_seconds)
                except TimeoutError:
                    raise _NoSlotInTime from None
        if held_since is not None and not await self._still_held(row, held_since):
            limiter.cancel(slot)
            return []
        row, message = ready
        final_error: str | None = None
        more: list[int] = []
        try:
            message_id = await sender.send(message)
        except RateLimited as exc:
            limiter.pause(exc.retry_after)
            log.warning("%s rate-limited us for %ss; pausing that platform", row.platform, f"{exc.retry_after:g}")
            await self._record(
                outbox.release_rate_limited, row.id, self.owner, utcnow() + timedelta(seconds=exc.retry_after), str(exc)
            )
        except ChatMoved as exc:
            log.warning("%s:%s moved to %s; sending there", row.platform, row.conversation, exc.conversation)
            await self._record(reachability.resend_moved, row, self.owner, exc.conversation)
            # The others held for the old id were moved too: hand them back, to be claimed for the new one.
            siblings = {queue.popleft().id for _ in range(len(queue))}
            await self._record(outbox.release, siblings, self.owner)
            self._held -= siblings
            if self.on_moved is not None:
                self.on_moved(row.platform, row.conversation, exc.conversation)
            # Sent next to the new id (send_now sends them itself; the loop is woken).
            more += [row.id, *sorted(siblings)]
        except RecipientUnreachable as exc:
            log.info("%s:%s is unreachable (%s); blocking it", row.platform, row.conversation, exc)
            await self._record(reachability.mark_blocked, row, self.owner, str(exc) or "unreachable")
            final_error = outbox.failure(outbox.UNREACHABLE, str(exc))
            # Its other rows we already hold are not sent either.
            while queue:
                sibling = queue.popleft()
                await self._record(reachability.mark_blocked, sibling, self.owner, "recipient is blocked")
                self._held.discard(sibling.id)
                more += await self._failed(sibling, outbox.failure(outbox.UNREACHABLE, "the recipient is blocked"))
        except PermanentFailure as exc:
            log.warning(
                "outbox row %s to %s:%s cannot be delivered; failing it: %s",
                row.id,
                row.platform,
                row.conversation,
                exc,
            )
            await self._record(outbox.mark_failed, row.id, self.owner, str(exc) or "permanent failure")
            final_error = outbox.failure(outbox.REFUSED, str(exc))
        except Exception as exc:  # noqa: BLE001 - TemporaryFailure, network errors, adapter bugs
            if not isinstance(exc, (TemporaryFailure, OSError, TimeoutError)):
                log.exception("sending outbox row %s failed unexpectedly", row.id)
            status = await self._record(
                outbox.retry_or_fail,
                row,
                self.owner,
                f"{type(exc).__name__}: {exc}",
                **self._retry(row.platform),
            )
            log.warning("sending outbox row %s to %s failed (%s): %s", row.id, row.platform, status, exc)
            if status is OutboxStatus.FAILED:
                final_error = outbox.failure(outbox.GAVE_UP, _reason(exc))
        else:
            self.sent += 1
            if self.after is not None and row.after is not None:
                _ours, queued = await asyncio.to_thread(self.after.sent, row, self.owner, message_id)
                more += queued
            else:
                await self._record(outbox.mark_sent, row.id, self.owner, message_id)
        finally:
            if slot is not None:
                limiter.release(slot)
        if final_error is not None:
            more += await self._failed(row, final_error)
        return more

    async def _still_held(self, row: Claimed, held_since: float) -> bool:
        """A row ``send_now`` holds is still its own to send: at once while most of its lease is left,
        else renewed if no other sender took it over (then it is theirs, and not sent here)."""
        lease = self.send_now_lease_seconds
        if time.monotonic() - held_since <= lease * SEND_NOW_RECHECK_SHARE:
            return True
        until = utcnow() + timedelta(seconds=lease)
        if row.id in await self._record(outbox.renew_leases, [row.id], self.owner, until):
            return True
        log.info("outbox row %s waited past its lease and was taken over by another sender; not sent here", row.id)
        return False

    async def _failed(self, row: Claimed, error: str) -> list[int]:
        if self.after is None or row.after is None:
            return []
        return await asyncio.to_thread(self.after.failed, row, error)

    async def _drain(self) -> None:
        """Let sends in progress finish; hand back what was claimed but not tried."""
        workers = list(self._workers.values())
        if workers:
            await asyncio.wait(workers, timeout=max(self.settings.lease_seconds / 2, 5))
        untried = {row.id for queue in self._queues.values() for row in queue}
        for task in list(self._workers.values()):
            task.cancel()
        self._queues.clear()
        if untried:
            await asyncio.to_thread(outbox.release, self.session_factory, untried, self.owner)
        self._held.clear()
