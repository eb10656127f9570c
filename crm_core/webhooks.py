"""Outgoing webhooks: endpoints (add, list, remove), turning events into outbox rows, signing, and the
bookkeeping of each delivery attempt (and disabling an endpoint that fails for a day).

How a domain event reaches an endpoint (the design, and why):

1. The webhook plugin's ``on_event`` listener (its own cursor in the event worker, like any plugin)
   calls ``enqueue_event``: one outbox row per enabled endpoint whose patterns match, on the
   ``webhook`` pseudo-platform. The row's idempotency key is ``webhook:<endpoint>:evt_<event id>``,
   so a listener retried after a crash adds nothing twice; its text is the JSON body, fixed once,
   so every retry sends the same bytes.
2. The conversation is ``<endpoint>:<entity type>:<entity id>`` and the platform is declared
   ``ordered``: the outbox sends the rows of one conversation strictly one after another, a row
   backing off holding back the later ones. That is "in order per entity", while one slow entity
   (or a receiver refusing one payload) does not hold up the others.
3. The sender (bot.adapters.webhook.sender) signs and POSTs; only 2xx counts. The outbox retries
   with the webhook platform's own policy (about 24 hours of exponential backoff), durable across
   restarts: the retry state is the outbox row.
4. Every attempt is recorded (``record_attempt``). An endpoint whose deliveries have failed
   without a single success for ``RETRY_WINDOW`` is disabled, its waiting rows are cancelled, and
   its owner gets a chat message (an outbox row in the same transaction).

Why the outbox rather than a webhook table of its own: the outbox already has leases, crash
recovery, per-conversation serialisation, backoff and purging, and the sender runs in every worker.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from crm_core import i18n, outbox
from crm_core.clock import utcnow
from crm_core.errors import NotFound, ValidationError
from crm_core.events import EVENT_TYPES, Event
from crm_core.i18n import _, ngettext
from crm_core.models import OutboxMessage, OutboxStatus, User, WebhookAttempt, WebhookEndpoint
from crm_core.outbox_payload import MessagePayload
from crm_core.services import users
from crm_core.uow import UnitOfWork
from crm_core.webhook_guard import Resolver, check_url, resolve

PLATFORM = "webhook"
KIND = "webhook"
SECRET_PREFIX = "whsec_"
TEST_EVENT = "webhook.test"
# Failing this long without one success disables an endpoint.
RETRY_WINDOW = timedelta(hours=24)
MAX_ENDPOINTS = 50
_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.([a-z][a-z0-9_]*|\*))*)$")


@dataclass(frozen=True)
class NewEndpoint:
    endpoint: WebhookEndpoint
    # Shown to the admin once (it is also stored: it must be read to sign).
    secret: str


# -- secrets and signatures ----------------------------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of
    ``id.timestamp.body``, keyed with the secret's base64 part decoded."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# -- patterns ------------------------------------------------------------------------------------


def parse_patterns(raw: str | Iterable[str]) -> list[str]:
    """``"deal.won,ticket.*"`` (or a list) -> patterns, each matching at least one known event type."""
    pieces = (
        re.split(r"[\s,]+", raw) if isinstance(raw, str) else [p for item in raw for p in re.split(r"[\s,]+", item)]
    )
    patterns: list[str] = []
    for piece in pieces:
        pattern = piece.strip().lower()
        if not pattern:
            continue
        if not _PATTERN.match(pattern):
            raise ValidationError(
                _("{value} is not an event pattern (e.g. deal.won or ticket.*)", value=repr(piece)), field="events"
            )
        if not any(fnmatch.fnmatchcase(name, pattern) for name in EVENT_TYPES):
            known = ", ".join(sorted(EVENT_TYPES))
            raise ValidationError(
                _("{value} matches no event type (known: {known})", value=repr(piece), known=known), field="events"
            )
        if pattern not in patterns:
            patterns.append(pattern)
    if not patterns:
        raise ValidationError(_("name the events to send, e.g. events=deal.won,ticket.*"), field="events")
    return patterns


def matches(patterns: Iterable[str], event_type: str) -> bool:
    return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in patterns)


# -- endpoints -----------------------------------------------------------------------------------


def create(
    uow: UnitOfWork,
    owner: User | None,
    url: str,
    events: str | Iterable[str],
    *,
    allow_private: bool = False,
    resolver: Resolver = resolve,
) -> NewEndpoint:
    """A new enabled endpoint; ValidationError for an unsafe URL or unknown events (nothing written)."""
    target = check_url(url, allow_private=allow_private, resolver=resolver)
    patterns = parse_patterns(events)
    count = uow.session.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint)) or 0
    if count >= MAX_ENDPOINTS:
        raise ValidationError(
            _(
                "there are {count} webhook endpoints already (at most {limit}): remove one",
                count=count,
                limit=MAX_ENDPOINTS,
            )
        )
    secret = new_secret()
    endpoint = WebhookEndpoint(
        url=target.url,
        events=patterns,
        secret=secret,
        owner_id=owner.id if owner is not None else None,
        enabled=True,
        created_at=utcnow(),
    )
    uow.session.add(endpoint)
    uow.session.flush()
    return NewEndpoint(endpoint, secret)


def endpoints(uow: UnitOfWork) -> list[WebhookEndpoint]:
    return list(uow.session.scalars(sa.select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def get(uow: UnitOfWork, endpoint_id: int) -> WebhookEndpoint:
    endpoint = uow.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(_("there is no webhook #{id} (see /webhook list)", id=endpoint_id))
    return endpoint


def remove(uow: UnitOfWork, endpoint_id: int) -> WebhookEndpoint:
    """Delete an endpoint; what still waits for it in the outbox is cancelled."""
    endpoint = get(uow, endpoint_id)
    _cancel_waiting(uow.session, endpoint.id, "the webhook was removed")
    uow.session.delete(endpoint)
    uow.session.flush()
    return endpoint


def recent_attempts(uow: UnitOfWork, endpoint_id: int, limit: int = 10) -> list[WebhookAttempt]:
    get(uow, endpoint_id)
    return list(
        uow.session.scalars(
            sa.select(WebhookAttempt)
            .where(WebhookAttempt.endpoint_id == endpoint_id)
            .order_by(WebhookAttempt.id.desc())
            .limit(limit)
        )
    )


def _cancel_waiting(session: Session, endpoint_id: int, reason: str) -> int:
    o = OutboxMessage
    return session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
        sa.update(o)
        .where(
            o.platform == PLATFORM,
            # The conversation is encrypted (crm_core.models.chat_ids); the key names the endpoint too.
            o.idempotency_key.startswith(f"webhook:{endpoint_id}:"),
            o.status.in_([OutboxStatus.PENDING, OutboxStatus.HELD]),
        )
        .values(status=OutboxStatus.CANCELLED, last_error=reason)
        .execution_options(synchronize_session=False)
    ).rowcount


# -- events into the outbox ----------------------------------------------------------------------


def conversation(endpoint_id: int, entity_type: str, entity_id: str) -> str:
    """The outbox conversation of an endpoint's messages about one entity (the unit of ordering)."""
    return f"{endpoint_id}:{entity_type}:{entity_id}"[:100]


def endpoint_of(conversation: str) -> int:
    return int(conversation.split(":", 1)[0])


def message_id_of(idempotency_key: str) -> str:
    """The ``webhook-id`` of an outbox row: the last part of its key (``evt_42``, ``test_…``)."""
    return idempotency_key.rsplit(":", 1)[-1]


def body(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _enqueue(uow: UnitOfWork, endpoint: WebhookEndpoint, message_id: str, entity: tuple[str, str], text: str) -> None:
    outbox.enqueue(
        uow,
        idempotency_key=f"webhook:{endpoint.id}:{message_id}",
        kind=KIND,
        platform=PLATFORM,
        conversation=conversation(endpoint.id, *entity),
        payload=MessagePayload(formatted_text=text, format="text"),
    )


def enqueue_event(uow: UnitOfWork, event: Event) -> int:
    """One outbox row per enabled endpoint subscribed to the event's type; returns how many."""
    wanted = [
        e
        for e in uow.session.scalars(sa.select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True)))
        if matches(e.events, event.type)
    ]
    if not wanted:
        return 0
    text = body(event.to_dict())
    for endpoint in wanted:
        _enqueue(uow, endpoint, f"evt_{event.id}", (event.entity_type, event.entity_id), text)
    return len(wanted)


def enqueue_test(uow: UnitOfWork, endpoint_id: int) -> str:
    """Queue a ``webhook.test`` message to the endpoint now (even a disabled one); returns its webhook-id."""
    endpoint = get(uow, endpoint_id)
    message_id = f"test_{secrets.token_hex(8)}"
    actor = uow.actor
    data = {
        "id": message_id,
        "type": TEST_EVENT,
        "entity_type": "webhook",
        "entity_id": str(endpoint.id),
        "occurred_at": utcnow().isoformat(),
        "actor": {"user_id": actor.user_id, "name": actor.name, "platform": actor.platform},
        "payload": {"endpoint_id": endpoint.id, "url": endpoint.url, "message": "a test from chatcrm"},
    }
    _enqueue(uow, endpoint, message_id, ("webhook", str(endpoint.id)), body(data))
    return message_id


# -- what the sender reads and records -----------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    endpoint_id: int
    url: str
    secret: str
    enabled: bool


def destination(session_factory: sessionmaker[Session], endpoint_id: int) -> Destination | None:
    with session_factory() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        if endpoint is None:
            return None
        return Destination(endpoint.id, endpoint.url, endpoint.secret, endpoint.enabled)


@dataclass(frozen=True)
class Attempt:
    endpoint_id: int
    message_id: str
    event_type: str
    attempt: int
    status_code: int | None
    latency_ms: int
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def record_attempt(
    session_factory: sessionmaker[Session],
    attempt: Attempt,
    *,
    window: timedelta = RETRY_WINDOW,
    now: datetime | None = None,
) -> bool:
    """Keep the attempt; returns True when the attempt failed and the endpoint is disabled (by this
    failure, ``window`` after the first one without a success, or meanwhile): not to be retried. A
    test message's failure never disables an endpoint."""
    now = now or utcnow()
    with UnitOfWork(session_factory) as uow:
        session = uow.session
        endpoint = session.get(WebhookEndpoint, attempt.endpoint_id, with_for_update=True)
        if endpoint is None:
            return False
        session.add(
            WebhookAttempt(
                endpoint_id=attempt.endpoint_id,
                message_id=attempt.message_id[:64],
                event_type=attempt.event_type[:100],
                attempt=attempt.attempt,
                status_code=attempt.status_code,
                latency_ms=attempt.latency_ms,
                error=(attempt.error or "")[:500] or None,
                attempted_at=now,
            )
        )
        if attempt.delivered:
            endpoint.failing_since = None
            return False
        if not endpoint.enabled:
            return True
        if attempt.event_type == TEST_EVENT:
            return False
        if endpoint.failing_since is None:
            endpoint.failing_since = now
        if now - endpoint.failing_since < window:
            return False
        _disable(uow, endpoint, now, attempt)
        return True


# How an endpoint disabled for failing says why (``disabled_reason``, an API field: kept in English);
# ``disabled_text`` reads it back in the reader's language.
_FAILED_REASON = "every delivery failed for {hours} hours (last: {last})"
_FAILED = re.compile(r"\Aevery delivery failed for (?P<hours>\d+) hours \(last: (?P<last>.*)\)\Z", re.DOTALL)


def disabled_text(endpoint: WebhookEndpoint) -> str:
    """Why the endpoint is disabled, in the reader's language (its stored reason is English)."""
    reason = endpoint.disabled_reason or ""
    failed = _FAILED.match(reason)
    if failed is None:
        return reason
    last = failed["last"]
    return ngettext(
        "every delivery failed for {hours} hour (last: {last})",
        "every delivery failed for {hours} hours (last: {last})",
        int(failed["hours"]),
        hours=failed["hours"],
        last=_("no answer") if last == "no answer" else last,
    )


def _disable(uow: UnitOfWork, endpoint: WebhookEndpoint, now: datetime, attempt: Attempt) -> None:
    hours = round((now - (endpoint.failing_since or now)).total_seconds() / 3600)
    last = f"HTTP {attempt.status_code}" if attempt.status_code is not None else (attempt.error or "no answer")
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = _FAILED_REASON.format(hours=hours, last=last)[:500]
    _cancel_waiting(uow.session, endpoint.id, "the webhook was disabled")
    owner = endpoint.owner
    address = users.dm_address(owner) if owner is not None else None
    if address is None:
        return
    with i18n.use_language(owner.language if owner is not None else None):
        text = _(
            "Webhook #{id} ({url}) is disabled: {reason}. The events waiting for it were dropped. Fix the "
            "receiver, then add it again with /webhook add.",
            id=endpoint.id,
            url=endpoint.url,
            reason=disabled_text(endpoint),
        )
    outbox.enqueue(
        uow,
        idempotency_key=f"webhook-disabled:{endpoint.id}:{now.isoformat()}",
        kind="notification",
        platform=address.platform,
        conversation=address.external_id,
        payload=MessagePayload(formatted_text=text, format="text"),
        user_id=owner.id if owner is not None else None,
    )


def prune_attempts(session_factory: sessionmaker[Session], keep_days: int, now: datetime | None = None) -> int:
    """Forget attempts older than ``keep_days``; returns how many."""
    cutoff = (now or utcnow()) - timedelta(days=keep_days)
    with session_factory() as session, session.begin():
        return session.execute(  # type: ignore[attr-defined]  # DML returns a CursorResult
            sa.delete(WebhookAttempt).where(WebhookAttempt.attempted_at < cutoff)
        ).rowcount
