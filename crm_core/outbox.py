"""The outbox: putting messages in (every feature) and moving them through delivery (the sender).

Features call ``enqueue`` (or ``enqueue_many`` for thousands) in the transaction of the change
that causes the message. The worker's outbox sender (bot.outbox_sender) then:

1. ``claim_due``: takes due rows (pending and ``not_before`` passed, or ``sending`` with an
   expired lease left by a crashed sender), marks them ``sending`` with a lease and its owner id.
   PostgreSQL locks candidates ``FOR UPDATE SKIP LOCKED`` so several senders never take the same
   row; claims are serialised by a transaction-level advisory lock so two senders do not start
   on the same conversation at once. A conversation gets a few rows per claim and no more while
   it has rows in flight, so a long backlog for one chat neither starves the others nor waits
   in memory past its lease.
2. after each send exactly one of: ``mark_sent`` (platform message id kept), ``release_rate_limited``
   (back to pending after the platform's retry_after; not counted as an attempt),
   ``retry_or_fail`` (exponential backoff, ``failed`` after the last attempt) or, for an
   unreachable recipient, crm_core.services.reachability.mark_blocked (``block_held`` and
   ``block_recipient``: the recipient is remembered, its other pending rows are blocked too and
   later ones are blocked on enqueue; its customers are opted out of campaigns).

Every completion is conditional on the row still being ``sending`` under the caller's claim.

Some kinds are rendered at the last moment (deferred kinds, contributed by plugins through the
``register_outbox_kinds`` hook: campaigns, whose rows are queued by the hundred thousand and must
honour an opt-out or a pause that happens after queueing): the sender calls ``prepare`` with the
preparers by kind right before sending.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased, make_transient_to_detached, sessionmaker

from crm_core import db, field_crypto
from crm_core import platforms as crm_platforms
from crm_core.clock import utcnow
from crm_core.models import chat_ids
from crm_core.models.outbox import BlockedRecipient, OutboxMessage, OutboxStatus
from crm_core.outbox_payload import MessagePayload
from crm_core.uow import UnitOfWork

if TYPE_CHECKING:
    from crm_core.scheduling import JobRun

DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_BACKOFF = timedelta(seconds=10)
MAX_BACKOFF = timedelta(minutes=15)
# How many due rows a claim looks at before choosing per conversation.
CLAIM_CANDIDATES = 2000
# Conversations whose id starts with this are group chats (Telegram's negative chat ids); their
# blind indexes say so (crm_core.models.chat_ids), which is how a claim tells them apart.
GROUP_PREFIX = chat_ids.GROUP_PREFIX
# Lanes (``priority``): answers to someone waiting go before bulk sends (reminders, campaigns).
INTERACTIVE = 0
BULK = 1


# Why a message was finally not delivered, as the first word of the reason its after-send recorder
# gets ("unreachable: Forbidden: bot was blocked by the user"): people are told the reason in their
# own language from the code (``failure_code``), the platform's own words kept for the record.
UNREACHABLE = "unreachable"  # the recipient blocked us, left, or the chat is gone
REFUSED = "refused"  # the platform refused this message for good (too long, bad markup, ...)
GAVE_UP = "gave-up"  # failed every attempt (the platform's errors, the network)
FAILURE_CODES = (UNREACHABLE, REFUSED, GAVE_UP)


def failure(code: str, detail: str) -> str:
    """``code: detail``, the reason handed to an after-send recorder."""
    return f"{code}: {detail}" if detail else code


def failure_code(reason: str) -> tuple[str | None, str]:
    """(code, the platform's words) of a reason ``failure`` wrote; (None, reason) for any other text."""
    code, _sep, detail = reason.partition(": ")
    return (code, detail) if code in FAILURE_CODES else (None, reason)


def enqueue(
    uow: UnitOfWork,
    *,
    idempotency_key: str,
    kind: str,
    platform: str,
    conversation: str,
    payload: MessagePayload | Mapping[str, Any],
    not_before: datetime | None = None,
    user_id: int | None = None,
    customer_id: int | None = None,
    priority: int = BULK,
    after: Mapping[str, Any] | None = None,
    send_now: SendNow | None = None,
) -> OutboxMessage:
    """Add a message in the caller's transaction. Enqueuing the same key twice returns the first row.
    ``priority``: INTERACTIVE rows are claimed before BULK ones; ``after``: what the sender's
    recorder writes down once the row was sent or finally failed (see bot.interactive);
    ``send_now``: the row is claimed for that sender at once when it may be (``SendNow.take``), so
    the process sends it right after the commit without a claim transaction of its own.

    ``payload`` follows the contract of crm_core.outbox_payload (typed, or its stored form, which is
    checked here: a malformed payload raises PayloadError instead of failing at send time). A
    message to a recipient known to be unreachable is stored as ``blocked`` and never sent.
    """
    stored = MessagePayload.coerce(payload).to_json()
    # The row already queued under this key, and whether the recipient is blocked, in one round trip.
    keys = field_crypto.keys_for(uow.session)
    indexes = chat_ids.blind_any(keys, conversation)
    existing_id, blocked = uow.session.execute(
        _enqueue_lookup(), {"key": idempotency_key, "platform": platform, "indexes": indexes}
    ).one()
    if existing_id is not None:
        existing = uow.session.get(OutboxMessage, existing_id)
        assert existing is not None  # read in this transaction
        return existing
    # ``clock``: the same moment on the monotonic clock, when a row taken for send_now began its lease.
    now, clock = utcnow(), time.monotonic()
    values: dict[str, Any] = {
        "idempotency_key": idempotency_key,
        "kind": kind,
        "platform": platform,
        "conversation": conversation,
        # What chat_ids.keep_indexed sets when the ORM inserts a row (this INSERT is not the ORM's).
        "conversation_index": chat_ids.blind(keys, conversation),
        "payload": stored,
        "status": OutboxStatus.BLOCKED if blocked else OutboxStatus.PENDING,
        "last_error": "recipient is blocked" if blocked else None,
        "not_before": not_before or now,
        "user_id": user_id,
        "customer_id": customer_id,
        "priority": priority,
        "after": dict(after) if after is not None else None,
        "attempts": 0,
        "claimed_by": None,
        "lease_until": None,
        "created_at": now,
    }
    if (
        send_now is not None
        and not blocked
        and values["not_before"] <= now
        and send_now.take(uow.session, platform, conversation, now)
    ):
        values.update(
            status=OutboxStatus.SENDING, claimed_by=send_now.owner, lease_until=now + send_now.lease, attempts=1
        )
    # A Core INSERT built once, not the ORM's unit of work: every answer to a command is queued
    # here, and the flush cost a web process about 4 % of its CPU under load (py-spy, issue 17).
    values["id"] = uow.session.execute(_enqueue_insert(), values).scalar_one()
    message = OutboxMessage(**values)
    # The row is in the database: the session holds it as if it had loaded it (no second SELECT).
    make_transient_to_detached(message)
    uow.session.add(message)
    if values["status"] == OutboxStatus.SENDING:
        assert send_now is not None  # only a send_now offer takes a row
        send_now.claimed.append(replace(claimed_row(message), taken_at=clock))
    return message


@functools.cache
def _enqueue_insert() -> sa.Insert:
    """``enqueue``'s INSERT of every column it sets, returning the new id."""
    table = cast(sa.Table, OutboxMessage.__table__)
    return sa.insert(table).returning(table.c.id)


@functools.cache
def _enqueue_lookup() -> sa.Select[Any]:
    """``enqueue``'s look before it writes: the id of the row under the key (or NULL) and whether the
    recipient is blocked (``is_blocked``), built once: every answer to a command is queued."""
    existing = sa.select(OutboxMessage.id).where(
        OutboxMessage.idempotency_key == sa.bindparam("key", type_=OutboxMessage.idempotency_key.type)
    )
    blocked = sa.exists().where(
        BlockedRecipient.platform == sa.bindparam("platform", type_=BlockedRecipient.platform.type),
        BlockedRecipient.conversation_index.in_(sa.bindparam("indexes", expanding=True)),
    )
    return sa.select(existing.scalar_subquery(), blocked)


def claimed_row(row: OutboxMessage) -> Claimed:
    """The detached ``Claimed`` of a row its caller holds now."""
    return Claimed(
        row.id,
        row.idempotency_key,
        row.kind,
        row.platform,
        row.conversation,
        dict(row.payload),
        row.attempts,
        dict(row.after) if row.after else None,
        row.priority,
    )


# Any fixed class id: the per-conversation advisory locks of ``SendNow.take`` (PostgreSQL).
_SEND_NOW_LOCK_CLASS = 0x63686E  # "chn"


@dataclass
class SendNow:
    """A sender's offer to claim the rows a request queues in the request's own transaction.

    The web process sends what a request queued right after its commit. Claiming those rows there
    and then saves a claim transaction per answer (an advisory lock, the ranking query, a locking
    SELECT and an UPDATE: about a fifth of a Slack card's cost on PostgreSQL). A row is taken only
    when ``claim_due`` would have let this sender have it: its platform is one the sender sends
    (and is not paused), and, unless the platform is one of ``parallel``, its conversation has no row in flight
    elsewhere. What is not taken stays pending, for ``claim_due``. A taken row carries a short
    lease: if the process dies before sending it, another sender takes it over as from any claim.
    Ordered platforms (webhooks) are never taken: only ``claim_due`` keeps their order.
    """

    owner: str
    lease: timedelta
    platforms: frozenset[str]
    # Platforms whose rows go even while their conversation has rows in flight (claim_due's ``parallel``).
    parallel: frozenset[str] = frozenset()
    # The rows taken so far (in the caller's transaction: forgotten by ``reset`` when it rolls back).
    claimed: list[Claimed] = field(default_factory=list)
    # Conversations this transaction took rows of: its own rows in flight do not hold back its next.
    _taken: set[tuple[str, str]] = field(default_factory=set)

    def take(self, session: Session, platform: str, conversation: str, now: datetime) -> bool:
        if platform not in self.platforms or platform in crm_platforms.ordered_platforms():
            return False
        if platform in self.parallel or (platform, conversation) in self._taken:
            self._taken.add((platform, conversation))
            return True
        params = {
            "platform": platform,
            "lock_key": f"{platform}:{conversation}",
            "indexes": chat_ids.blind_any(field_crypto.keys_for(session), conversation),
            "now": now,
        }
        if not session.scalar(_take_statement(session.get_bind().dialect.name), params):
            return False
        self._taken.add((platform, conversation))
        return True

    def reset(self) -> None:
        """The transaction rolled back: nothing it took exists."""
        self.claimed.clear()
        self._taken.clear()


@functools.cache
def _take_statement(dialect: str) -> sa.Select[Any]:
    """``SendNow.take``'s one round trip, built once per dialect: true when the conversation is idle
    (no row of it in flight) and, on PostgreSQL, this transaction got its advisory lock. Two
    requests of one chat deciding at once would both find it idle: the first to lock decides; the
    other does not wait (no lock order to deadlock on) and leaves its row pending."""
    o = OutboxMessage
    idle = ~sa.exists().where(
        o.platform == sa.bindparam("platform", type_=o.platform.type),
        o.conversation_index.in_(sa.bindparam("indexes", expanding=True)),
        o.status == OutboxStatus.SENDING,
        o.lease_until > sa.bindparam("now", type_=o.lease_until.type),
    )
    if dialect != "postgresql":
        return sa.select(idle)
    key = sa.func.hashtext(sa.bindparam("lock_key", type_=sa.Text))
    return sa.select(sa.and_(sa.func.pg_try_advisory_xact_lock(_SEND_NOW_LOCK_CLASS, key), idle))


@dataclass(frozen=True)
class NewMessage:
    """One row for ``enqueue_many``; the fields mean what ``enqueue``'s arguments mean."""

    idempotency_key: str
    kind: str
    platform: str
    conversation: str
    payload: MessagePayload | Mapping[str, Any]
    not_before: datetime | None = None
    user_id: int | None = None
    customer_id: int | None = None


def enqueue_many(uow: UnitOfWork, messages: Iterable[NewMessage], *, chunk: int = 2000) -> int:
    """Bulk ``enqueue`` (campaigns): a multi-row INSERT per chunk; keys already present are
    skipped (and ``ON CONFLICT DO NOTHING`` covers a concurrent writer). Returns how many rows
    were new (a key a concurrent writer inserted in the same instant may be counted as new)."""
    session = uow.session
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    keys = field_crypto.keys_for(session)
    now = utcnow()
    added = 0
    batch: list[dict[str, Any]] = []

    def flush() -> int:
        if not batch:
            return 0
        # Declarative models map a Table; SQLAlchemy types __table__ as the wider FromClause.
        table = cast(sa.Table, OutboxMessage.__table__)
        wanted = [row["idempotency_key"] for row in batch]
        known = set(session.scalars(sa.select(table.c.idempotency_key).where(table.c.idempotency_key.in_(wanted))))
        fresh = [row for row in batch if row["idempotency_key"] not in known]
        batch.clear()
        # The chunk's blocked recipients, by blind index (under any key): no scan of the whole table.
        blocked = _blocked_indexes(session, keys, [(row["platform"], row["conversation"]) for row in fresh])
        for row in fresh:
            if blocked & {(row["platform"], index) for index in chat_ids.blind_any(keys, row["conversation"])}:
                row["status"], row["last_error"] = OutboxStatus.BLOCKED, "recipient is blocked"
        if fresh:
            # ON CONFLICT still guards against a concurrent writer adding the same key meanwhile.
            statement = insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"])
            session.connection().execute(statement, fresh)
        return len(fresh)

    for m in messages:
        batch.append(
            {
                "idempotency_key": m.idempotency_key,
                "kind": m.kind,
                "platform": m.platform,
                # A Core INSERT: the ORM hook does not run, so the blind index is set here.
                "conversation": m.conversation,
                "conversation_index": chat_ids.blind(keys, m.conversation),
                "payload": MessagePayload.coerce(m.payload).to_json(),
                "status": OutboxStatus.PENDING,
                "last_error": None,
                "attempts": 0,
                "not_before": m.not_before or now,
                "created_at": now,
                "user_id": m.user_id,
                "customer_id": m.customer_id,
            }
        )
        if len(batch) >= chunk:
            added += flush()
    added += flush()
    return added


def blocked_recipient(session: Session, platform: str, conversation: str) -> BlockedRecipient | None:
    """The block of this recipient, found by the blind index of its (encrypted) conversation."""
    return session.scalars(
        sa.select(BlockedRecipient).where(
            BlockedRecipient.platform == platform,
            chat_ids.is_chat(session, BlockedRecipient.conversation_index, conversation),
        )
    ).first()


def is_blocked(session: Session, platform: str, conversation: str) -> bool:
    return blocked_recipient(session, platform, conversation) is not None


def _blocked_indexes(
    session: Session, keys: field_crypto.FieldKeys, recipients: Collection[tuple[str, str]]
) -> set[tuple[str, str]]:
    """(platform, blind index) of the blocked ones among ``recipients`` (platform, conversation)."""
    wanted = sorted(
        {index for _platform, conversation in recipients for index in chat_ids.blind_any(keys, conversation)}
    )
    if not wanted:
        return set()
    b = BlockedRecipient
    found = session.execute(
        sa.select(b.platform, b.conversation_index).where(db.one_of(session, b.conversation_index, wanted))
    )
    return {(platform, index) for platform, index in found if index is not None}


@dataclass(frozen=True)
class Claimed:
    """A row a sender now holds: everything it needs to send, detached from any session."""

    id: int
    idempotency_key: str
    kind: str
    platform: str
    conversation: str
    payload: dict[str, Any]
    attempts: int
    # What to record once it was sent (OutboxMessage.after); None for most rows.
    after: dict[str, Any] | None = None
    priority: int = BULK
    # When a request's transaction took it for ``send_now`` (``SendNow``; ``time.monotonic``): its
    # short lease runs from then, however long the process takes to start sending it.
    taken_at: float | None = None


def _due(now: Any, owner: Any) -> sa.ColumnElement[bool]:
    """Rows a sender may claim at ``now`` (values or bind parameters)."""
    o = OutboxMessage
    return sa.or_(
        sa.and_(o.status == OutboxStatus.PENDING, o.not_before <= now),
        # A crashed sender's rows; never our own (we still hold them in memory).
        sa.and_(
            o.status == OutboxStatus.SENDING,
            o.lease_until <= now,
            sa.or_(o.claimed_by.is_(None), o.claimed_by != owner),
        ),
    )


def _per_conversation_cap(caps: Mapping[str, int], group_caps: Mapping[str, int], default: int) -> sa.ColumnElement:
    o = OutboxMessage
    whens = []
    for platform, cap in group_caps.items():
        whens.append((sa.and_(o.platform == platform, chat_ids.is_group(o.conversation_index)), cap))
    for platform, cap in caps.items():
        whens.append((o.platform == platform, cap))
    return sa.case(*whens, else_=default) if whens else sa.literal(default)


def claim_due(
    session_factory: sessionmaker[Session],
    *,
    owner: str,
    platforms: Sequence[str],
    limit: int,
    lease: timedelta,
    caps: Mapping[str, int] | None = None,
    group_caps: Mapping[str, int] | None = None,
    default_cap: int = 50,
    now: datetime | None = None,
    priority: int | None = None,
    ids: Sequence[int] | None = None,
    parallel: Collection[str] = (),
) -> list[Claimed]:
    """Claim up to ``limit`` due rows of ``platforms`` for ``owner``: at most ``caps[platform]``
    rows per conversation (``group_caps`` for group chats), none of a conversation that already
    has rows in flight. Rows to blocked recipients found on the way are marked blocked.
    ``priority``: only rows of that lane; ``ids``: only those rows (a process sending what it just
    queued); ``parallel``: platforms whose rows are claimed even while their conversation has rows
    in flight (answers to separate requests, which need no order among them: many people in one
    Slack channel)."""
    if not platforms or limit <= 0 or (ids is not None and not ids):
        return []
    now = now or utcnow()
    choose = _claim_statement(
        tuple(platforms),
        tuple(p for p in platforms if p in crm_platforms.ordered_platforms()),
        tuple(p for p in platforms if p not in parallel),
        priority is not None,
        ids is not None,
        tuple((caps or {}).items()),
        tuple((group_caps or {}).items()),
        default_cap,
    )
    params: dict[str, Any] = {"now": now, "owner": owner, "platforms": list(platforms), "limit": limit}
    if priority is not None:
        params["priority"] = priority
    if ids is not None:
        params["ids"] = list(ids)
    with session_factory() as session, session.begin():
        if session.get_bind().dialect.name == "postgresql":
            session.execute(sa.select(sa.func.pg_advisory_xact_lock(_CLAIM_LOCK_KEY)))
        chosen = list(session.scalars(choose, params))
        if not chosen:
            return []
        rows = list(session.scalars(_lock_statement(), {"ids": chosen, "now": now, "owner": owner}))
        blocked = _blocked_among(session, rows)
        claimed = []
        for row in rows:
            if (row.platform, row.conversation) in blocked:
                row.status, row.last_error, row.lease_until = OutboxStatus.BLOCKED, "recipient is blocked", None
                continue
            row.status = OutboxStatus.SENDING
            row.lease_until = now + lease
            row.claimed_by = owner
            row.attempts += 1
            claimed.append(claimed_row(row))
    return claimed


def _claim_params() -> tuple[sa.BindParameter[Any], sa.BindParameter[Any]]:
    return (
        sa.bindparam("now", type_=OutboxMessage.not_before.type),
        sa.bindparam("owner", type_=OutboxMessage.claimed_by.type),
    )


@functools.lru_cache(maxsize=64)
def _claim_statement(
    platforms: tuple[str, ...],
    ordered: tuple[str, ...],
    one_at_a_time: tuple[str, ...],
    by_priority: bool,
    by_ids: bool,
    caps: tuple[tuple[str, int], ...],
    group_caps: tuple[tuple[str, int], ...],
    default_cap: int,
) -> sa.Select[Any]:
    """``claim_due``'s ranking query for one shape of claim (a sender asks the same one on every
    turn), its values bound at execution: building it (two aliases, a window, a CASE) and its cache
    key took a sender's process more time than PostgreSQL took to run it."""
    o = OutboxMessage
    now, owner = _claim_params()
    in_flight = aliased(OutboxMessage)
    busy = (
        sa.select(in_flight.id)
        .where(
            in_flight.platform == o.platform,
            in_flight.conversation_index == o.conversation_index,
            in_flight.status == OutboxStatus.SENDING,
            in_flight.lease_until > now,
        )
        .exists()
    )
    only: list[sa.ColumnElement[bool]] = [o.platform.in_(sa.bindparam("platforms", expanding=True))]
    if by_priority:
        only.append(o.priority == sa.bindparam("priority", type_=o.priority.type))
    if by_ids:
        only.append(o.id.in_(sa.bindparam("ids", expanding=True)))
    eligible = [_due(now, owner), *only]
    # The platforms whose rows wait while their conversation has rows in flight; when none do (an
    # answer sender's claim), the check is left out of the query altogether.
    if one_at_a_time and len(one_at_a_time) < len(platforms):
        eligible.append(sa.or_(o.platform.not_in(one_at_a_time), ~busy))
    elif one_at_a_time:
        eligible.append(~busy)
    if ordered:
        # Strict order (PlatformTraits.ordered): only the head of a conversation may go; a row
        # backing off (pending, not yet due) holds back every later row of its conversation.
        earlier = aliased(OutboxMessage)
        waiting = (
            sa.select(earlier.id)
            .where(
                earlier.platform == o.platform,
                earlier.conversation_index == o.conversation_index,
                earlier.id < o.id,
                earlier.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.HELD]),
            )
            .exists()
        )
        eligible.append(sa.or_(o.platform.not_in(ordered), ~waiting))
    candidates = (
        sa.select(
            o.id,
            o.platform,
            o.conversation_index,
            o.not_before,
            _per_conversation_cap(dict(caps), dict(group_caps), default_cap).label("cap"),
        )
        .where(*eligible)
        .order_by(o.not_before, o.id)
        .limit(CLAIM_CANDIDATES)
        .subquery()
    )
    ranked = sa.select(
        candidates.c.id,
        candidates.c.not_before,
        candidates.c.cap,
        sa.func.row_number()
        .over(
            partition_by=(candidates.c.platform, candidates.c.conversation_index),
            order_by=(candidates.c.not_before, candidates.c.id),
        )
        .label("rn"),
    ).subquery()
    return (
        sa.select(ranked.c.id)
        .where(ranked.c.rn <= ranked.c.cap)
        .order_by(ranked.c.not_before, ranked.c.id)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


@functools.cache
def _lock_statement() -> sa.Select[Any]:
    """The chosen rows, locked (skipping rows another sender locked meanwhile), still due."""
    o = OutboxMessage
    now, owner = _claim_params()
    return (
        sa.select(o)
        .where(o.id.in_(sa.bindparam("ids", expanding=True)), _due(now, owner))
        .order_by(o.not_before, o.id)
        .with_for_update(skip_locked=True)
    )


# Any fixed key: serialises claim transactions across sender processes on PostgreSQL.
_CLAIM_LOCK_KEY = 0x63686174_6F757462  # "chatoutb"


def _blocked_among(session: Session, rows: Sequence[OutboxMessage]) -> set[tuple[str, str]]:
    """(platform, conversation) of the rows' recipients that are blocked: one query on the blind
    indexes of the rows' (decrypted) conversations, an HMAC per key and row."""
    keys = field_crypto.keys_for(session)
    recipients = {(r.platform, r.conversation) for r in rows}
    blocked = _blocked_indexes(session, keys, recipients)
    return {
        (platform, conversation)
        for platform, conversation in recipients
        if blocked & {(platform, index) for index in chat_ids.blind_any(keys, conversation)}
    }


# A deferred kind's preparer: (session, Claimed) -> the payload, or a ``Withheld`` saying why the
# row is not to be sent now.
Preparer = Callable[[Session, "Claimed"], "dict[str, Any] | Withheld"]


@dataclass(frozen=True)
class Withheld:
    """A deferred row that is not to be sent: it moves to ``status`` (held, cancelled, failed)."""

    status: OutboxStatus
    reason: str


def prepare(
    session_factory: sessionmaker[Session], row: Claimed, owner: str, preparers: Mapping[str, Preparer]
) -> Claimed | None:
    """For a deferred row: its payload as of now, or None when it is not to be sent (its new status
    is written here, or it is no longer ours). Other rows come back unchanged."""
    if not row.payload.get("deferred"):
        return row
    with session_factory() as session, session.begin():
        still_ours = session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage).where(_held(row.id, owner)))
        if not still_ours:
            return None
        preparer = preparers.get(row.kind)
        if preparer is None:
            outcome: dict[str, Any] | Withheld = Withheld(OutboxStatus.FAILED, f"no preparer for kind {row.kind!r}")
        else:
            outcome = preparer(session, row)
        if isinstance(outcome, Withheld):
            values: dict[str, Any] = {"status": outcome.status, "lease_until": None, "last_error": outcome.reason[:500]}
            if outcome.status is OutboxStatus.HELD:
                # Not an attempt: it goes out when the campaign resumes.
                values.update(claimed_by=None, attempts=OutboxMessage.attempts - 1)
            session.execute(
                sa.update(OutboxMessage)
                .where(_held(row.id, owner))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return None
    return replace(row, payload=outcome)


def _held(message_id: int, owner: str) -> sa.ColumnElement[bool]:
    o = OutboxMessage
    return sa.and_(o.id == message_id, o.status == OutboxStatus.SENDING, o.claimed_by == owner)


def _update_held(session_factory: sessionmaker[Session], message_id: int, owner: str, **values: Any) -> bool:
    with session_factory() as session, session.begin():
        return _update_held_in(session, message_id, owner, **values)


def _update_held_in(session: Session, message_id: int, owner: str, **values: Any) -> bool:
    return (
        session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
            sa.update(OutboxMessage)
            .where(_held(message_id, owner))
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


def mark_sent(
    session_factory: sessionmaker[Session],
    message_id: int,
    owner: str,
    platform_message_id: str | None,
    now: datetime | None = None,
) -> bool:
    """False if the claim was lost meanwhile (the lease expired and another sender took the row)."""
    with session_factory() as session, session.begin():
        return mark_sent_in(session, message_id, owner, platform_message_id, now)


def mark_sent_in(
    session: Session, message_id: int, owner: str, platform_message_id: str | None, now: datetime | None = None
) -> bool:
    """``mark_sent`` in the caller's transaction (which records what the send means in the same commit)."""
    values = {
        "message_id": message_id,
        "owner": owner,
        "sent_at": now or utcnow(),
        "platform_message_id": (platform_message_id or "")[:100] or None,
    }
    return session.execute(_mark_sent_statement(), values).rowcount == 1  # type: ignore[attr-defined]  # DML returns a CursorResult


@functools.cache
def _mark_sent_statement() -> sa.Update:
    """``mark_sent``'s UPDATE of a row still held by ``owner`` (``_held``), built once with its values
    bound at execution: every message sent is marked with it, and building an UPDATE and its cache
    key costs about as much Python time as running it."""
    o = OutboxMessage
    return (
        sa.update(o)
        .where(
            o.id == sa.bindparam("message_id", type_=o.id.type),
            o.status == OutboxStatus.SENDING,
            o.claimed_by == sa.bindparam("owner", type_=o.claimed_by.type),
        )
        .values(
            status=OutboxStatus.SENT,
            lease_until=None,
            sent_at=sa.bindparam("sent_at", type_=o.sent_at.type),
            platform_message_id=sa.bindparam("platform_message_id", type_=o.platform_message_id.type),
            last_error=None,
        )
        .execution_options(synchronize_session=False)
    )


def release_rate_limited(
    session_factory: sessionmaker[Session], message_id: int, owner: str, not_before: datetime, detail: str
) -> bool:
    """Back to pending after a 429: nothing was sent, so the attempt does not count."""
    return _update_held(
        session_factory,
        message_id,
        owner,
        status=OutboxStatus.PENDING,
        lease_until=None,
        claimed_by=None,
        not_before=not_before,
        attempts=OutboxMessage.attempts - 1,
        last_error=detail[:500],
    )


def release(session_factory: sessionmaker[Session], message_ids: Iterable[int], owner: str) -> int:
    """Hand back rows a stopping sender claimed but did not try (not counted as attempts)."""
    ids = list(message_ids)
    if not ids:
        return 0
    o = OutboxMessage
    with session_factory() as session, session.begin():
        return session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
            sa.update(o)
            .where(o.id.in_(ids), o.status == OutboxStatus.SENDING, o.claimed_by == owner)
            .values(status=OutboxStatus.PENDING, lease_until=None, claimed_by=None, attempts=o.attempts - 1)
            .execution_options(synchronize_session=False)
        ).rowcount


def renew_leases(
    session_factory: sessionmaker[Session], message_ids: Iterable[int], owner: str, until: datetime
) -> set[int]:
    """Extend the leases of rows a sender still holds; returns the ids it does still hold."""
    ids = list(message_ids)
    if not ids:
        return set()
    o = OutboxMessage
    held = sa.and_(o.id.in_(ids), o.status == OutboxStatus.SENDING, o.claimed_by == owner)
    with session_factory() as session, session.begin():
        session.execute(sa.update(o).where(held).values(lease_until=until).execution_options(synchronize_session=False))
        return set(session.scalars(sa.select(o.id).where(held)))


def backoff(attempts: int, base: timedelta = DEFAULT_BACKOFF, cap: timedelta = MAX_BACKOFF) -> timedelta:
    """Wait before attempt ``attempts + 1``: base, 2×base, 4×base, … at most ``cap``."""
    return min(base * (2 ** max(attempts - 1, 0)), cap)


def retry_or_fail(
    session_factory: sessionmaker[Session],
    message: Claimed,
    owner: str,
    error: str,
    *,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    base: timedelta = DEFAULT_BACKOFF,
    cap: timedelta = MAX_BACKOFF,
    now: datetime | None = None,
) -> OutboxStatus:
    """After a temporary failure: pending again after the backoff, or failed after the last attempt."""
    now = now or utcnow()
    if message.attempts >= max_attempts:
        _update_held(
            session_factory,
            message.id,
            owner,
            status=OutboxStatus.FAILED,
            lease_until=None,
            last_error=f"gave up after {message.attempts} attempts: {error}"[:500],
        )
        return OutboxStatus.FAILED
    _update_held(
        session_factory,
        message.id,
        owner,
        status=OutboxStatus.PENDING,
        lease_until=None,
        claimed_by=None,
        not_before=now + backoff(message.attempts, base, cap),
        last_error=error[:500],
    )
    return OutboxStatus.PENDING


def mark_failed(session_factory: sessionmaker[Session], message_id: int, owner: str, error: str) -> bool:
    """A message that can never be sent as it is (e.g. an unreadable payload): no retries."""
    return _update_held(
        session_factory, message_id, owner, status=OutboxStatus.FAILED, lease_until=None, last_error=error[:500]
    )


def block_held(session: Session, message_id: int, owner: str, reason: str) -> bool:
    """Block a row the caller holds (in the caller's transaction). The recipient itself is blocked
    by ``block_recipient``; crm_core.services.reachability.mark_blocked does both, and opts out."""
    return (
        session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
            sa.update(OutboxMessage)
            .where(_held(message_id, owner))
            .values(status=OutboxStatus.BLOCKED, lease_until=None, last_error=reason[:500])
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


def requeue_held(session: Session, message_id: int, owner: str, *, conversation: str, note: str) -> bool:
    """Put a held row back to pending for another conversation (its chat moved): not an attempt."""
    return (
        session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
            sa.update(OutboxMessage)
            .where(_held(message_id, owner))
            .values(
                status=OutboxStatus.PENDING,
                conversation=conversation,
                conversation_index=chat_ids.blind(field_crypto.keys_for(session), conversation),
                lease_until=None,
                claimed_by=None,
                attempts=OutboxMessage.attempts - 1,
                last_error=note[:500],
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        == 1
    )


def block_recipient(session: Session, platform: str, conversation: str, reason: str) -> int:
    """Remember an unreachable recipient and block its pending rows (in the caller's transaction)."""
    if blocked_recipient(session, platform, conversation) is None:
        session.add(BlockedRecipient(platform=platform, conversation=conversation, reason=reason[:500]))
        session.flush()
    o = OutboxMessage
    return session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
        sa.update(o)
        .where(
            o.platform == platform,
            chat_ids.is_chat(session, o.conversation_index, conversation),
            o.status == OutboxStatus.PENDING,
        )
        .values(status=OutboxStatus.BLOCKED, last_error="recipient is blocked")
        .execution_options(synchronize_session=False)
    ).rowcount


def unblock_recipient(session: Session, platform: str, conversation: str) -> bool:
    """Forget a block (the user started the bot again). Rows already blocked stay blocked."""
    row = blocked_recipient(session, platform, conversation)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def pending_by_platform(session: Session) -> dict[str, int]:
    rows = session.execute(
        sa.select(OutboxMessage.platform, sa.func.count())
        .where(OutboxMessage.status == OutboxStatus.PENDING)
        .group_by(OutboxMessage.platform)
    )
    return {platform: count for platform, count in rows}


def status_counts(session: Session, kind: str | None = None) -> dict[str, int]:
    """How many rows are in each status (optionally of one kind)."""
    statement = sa.select(OutboxMessage.status, sa.func.count()).group_by(OutboxMessage.status)
    if kind is not None:
        statement = statement.where(OutboxMessage.kind == kind)
    return {str(status): count for status, count in session.execute(statement)}


def purge_task(run: JobRun) -> None:
    """Scheduled task: delete sent and cancelled rows older than ``keep_days`` (the outbox is a
    delivery queue, not an archive; failed and blocked rows stay for inspection)."""
    cutoff = utcnow() - timedelta(days=int(run.args.get("keep_days", 30)))
    with run.uow() as uow:
        uow.session.execute(
            sa.delete(OutboxMessage).where(
                OutboxMessage.status.in_([OutboxStatus.SENT, OutboxStatus.CANCELLED]), OutboxMessage.created_at < cutoff
            )
        )
