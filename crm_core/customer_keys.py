"""Crypto-shredding for the audit log: personal values about a customer are stored encrypted with
that customer's own data key, and erasing the customer destroys the key.

The audit log is append-only (triggers refuse UPDATE and DELETE), yet an erasure must reach the
names, emails and message texts in its before/after values. So those values never reach the log
in the clear: ``protect`` (called by crm_core.audit for every entry) replaces each personal value
with a token ``enc:1:<customer id>:<base64 nonce+ciphertext>``, AES-256-GCM under the customer's
data key, bound to the customer and the field by the associated data. The data key lives in
``customer_keys``, wrapped (AES-GCM again) with a key derived by HKDF from CHATCRM_SECRET_KEY, so
a copy of the database alone opens nothing. ``shred`` deletes the row: every token about the
customer becomes unreadable at once, and the reader shows ``[erased]``.

Which values are personal is the table ``PERSONAL_FIELDS`` below: the columns that hold who the
person is or what they wrote (name, email, phone, external id, chat ids, message and note texts,
ticket subjects, deal titles, values of custom fields marked personal). Ids, amounts, statuses,
dates and tags stay readable: the log still tells what happened, only not to whom.

The wrapping key reaches a session through its factory's ``info`` (crm_core.db.session_factory
``keyring=``). Without one (a factory built without it; chatcrm's own always have one, as PostgreSQL
does not start without CHATCRM_SECRET_KEY) data keys are stored unwrapped: erasure still shreds
them, and ``chatcrm keys rotate`` wraps them (``rewrap_all``).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crm_core.clock import utcnow
from crm_core.errors import SetupError
from crm_core.models.customers import CustomerKey

TOKEN_PREFIX = "enc:1:"
ERASED = "[erased]"
# A wrapped key this process cannot open (another CHATCRM_SECRET_KEY): shown, never guessed at.
LOCKED = "[encrypted]"

# Session.info keys: the wrapping keyring (set by the session factory) and this session's data keys.
KEYRING = "customer_keyring"
_CACHE = "customer_data_keys"

_PLAIN, _WRAPPED = b"\x00", b"\x01"

_customers_key = cast(sa.Table, CustomerKey.__table__)


class KeyUnavailable(SetupError):
    """A customer's data key is wrapped with a secret key this process does not have."""


class Keyring:
    """Key-encryption keys derived from the secret keys: the first wraps new data keys, every one is
    tried when unwrapping (so CHATCRM_SECRET_KEY can be rotated like the backups' key)."""

    def __init__(self, secrets: Sequence[bytes]):
        if not secrets:
            raise ValueError("a keyring needs at least one secret key")
        self._keys = [
            AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"chatcrm customer keys v1").derive(s))
            for s in secrets
        ]

    def wrap(self, customer_id: int, data_key: bytes) -> bytes:
        nonce = os.urandom(12)
        return _WRAPPED + nonce + self._keys[0].encrypt(nonce, data_key, _aad(customer_id))

    def rewrapped(self, customer_id: int, stored: bytes) -> bytes | None:
        """``stored`` (as in the table) wrapped with the current key, or None when it already is."""
        if stored[:1] == _WRAPPED:
            nonce, body = stored[1:13], stored[13:]
            try:
                self._keys[0].decrypt(nonce, body, _aad(customer_id))
                return None
            except InvalidTag:
                pass
        return self.wrap(customer_id, _unwrap({KEYRING: self}, customer_id, stored))

    def unwrap(self, customer_id: int, sealed: bytes) -> bytes:
        nonce, body = sealed[:12], sealed[12:]
        for key in self._keys:
            try:
                return key.decrypt(nonce, body, _aad(customer_id))
            except InvalidTag:
                continue
        raise KeyUnavailable(
            f"the data key of customer #{customer_id} was wrapped with another CHATCRM_SECRET_KEY; "
            "set the key this database was used with"
        )


def _aad(customer_id: int, field: str = "") -> bytes:
    return f"chatcrm customer {customer_id} {field}".encode()


def _unwrap(info: Mapping[str, Any], customer_id: int, stored: bytes) -> bytes:
    if stored[:1] == _PLAIN:
        return stored[1:]
    keyring: Keyring | None = info.get(KEYRING)
    if keyring is None:
        raise KeyUnavailable(
            f"the data key of customer #{customer_id} is wrapped with CHATCRM_SECRET_KEY, which this process lacks"
        )
    return keyring.unwrap(customer_id, stored[1:])


def rewrap_all(engine: sa.Engine, keyring: Keyring, batch: int = 1000) -> int:
    """Wrap every customer's data key with the keyring's current key (``chatcrm keys rotate``), one
    transaction per batch; returns how many changed. Keys stored unwrapped get wrapped too."""
    changed = 0
    last = -1
    key = _customers_key.c
    while True:
        with engine.begin() as connection:
            rows = connection.execute(
                sa.select(key.customer_id, key.wrapped_key)
                .where(key.customer_id > last)
                .order_by(key.customer_id)
                .limit(batch)
            ).all()
            if not rows:
                return changed
            updates = [
                {"row_id": row.customer_id, "sealed": sealed}
                for row in rows
                if (sealed := keyring.rewrapped(row.customer_id, bytes(row.wrapped_key))) is not None
            ]
            if updates:
                connection.execute(
                    _customers_key.update()
                    .where(key.customer_id == sa.bindparam("row_id"))
                    .values(wrapped_key=sa.bindparam("sealed")),
                    updates,
                )
        changed += len(updates)
        last = rows[-1].customer_id


def _insert_or_ignore(connection: sa.Connection, values: dict[str, Any]) -> None:
    dialect = connection.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    connection.execute(insert(_customers_key).values(**values).on_conflict_do_nothing())


def data_key(connection: sa.Connection, info: dict[str, Any], customer_id: int, *, create: bool) -> bytes | None:
    """The customer's data key (made when ``create`` and there is none), or None: erased or never made."""
    cache: dict[int, bytes | None] = info.setdefault(_CACHE, {})
    if cache.get(customer_id) is not None:
        return cache[customer_id]
    stored = connection.execute(
        sa.select(_customers_key.c.wrapped_key).where(_customers_key.c.customer_id == customer_id)
    ).scalar()
    if stored is None and create:
        fresh = AESGCM.generate_key(bit_length=256)
        keyring: Keyring | None = info.get(KEYRING)
        wrapped = keyring.wrap(customer_id, fresh) if keyring else _PLAIN + fresh
        # Two transactions may make the first key of a customer at once: one wins, both use it.
        _insert_or_ignore(connection, {"customer_id": customer_id, "wrapped_key": wrapped, "created_at": utcnow()})
        stored = connection.execute(
            sa.select(_customers_key.c.wrapped_key).where(_customers_key.c.customer_id == customer_id)
        ).scalar()
    key = None if stored is None else _unwrap(info, customer_id, bytes(stored))
    cache[customer_id] = key
    return key


def seal(data_key_: bytes, customer_id: int, field: str, value: Any) -> str:
    nonce = os.urandom(12)
    plain = json.dumps(value, ensure_ascii=False).encode()
    sealed = AESGCM(data_key_).encrypt(nonce, plain, _aad(customer_id, field))
    return f"{TOKEN_PREFIX}{customer_id}:{base64.b64encode(nonce + sealed).decode()}"


def _parse(token: str) -> tuple[int, bytes] | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    customer, _, body = token[len(TOKEN_PREFIX) :].partition(":")
    try:
        return int(customer), base64.b64decode(body)
    except ValueError:
        return None


# -- which audit values are personal --------------------------------------------------------

# table -> (personal columns, how to find the customer the row is about). ``get`` reads a column
# of the row; lookups that need another table use the flush's connection.
Resolver = Callable[[sa.Connection, Callable[[str], Any], str], int | None]


def _own_id(_connection: sa.Connection, _get: Callable[[str], Any], entity_id: str) -> int | None:
    return int(entity_id) if entity_id.isdigit() else None


def _column(name: str) -> Resolver:
    def resolve(_connection: sa.Connection, get: Callable[[str], Any], _entity_id: str) -> int | None:
        value = get(name)
        return int(value) if value is not None else None

    return resolve


def _ticket_customer(connection: sa.Connection, get: Callable[[str], Any], _entity_id: str) -> int | None:
    from crm_core.models.tickets import Ticket

    ticket_id = get("ticket_id")
    if ticket_id is None:
        return None
    return connection.execute(sa.select(Ticket.customer_id).where(Ticket.id == ticket_id)).scalar()


def _personal_field_customer(connection: sa.Connection, get: Callable[[str], Any], _entity_id: str) -> int | None:
    from crm_core.models.custom_fields import CustomFieldDefinition, FieldEntity

    definition = connection.execute(
        sa.select(CustomFieldDefinition.entity, CustomFieldDefinition.personal).where(
            CustomFieldDefinition.id == get("definition_id")
        )
    ).first()
    if definition is None or not definition.personal or definition.entity != FieldEntity.CUSTOMER:
        return None
    return get("entity_id")


PERSONAL_FIELDS: dict[str, tuple[frozenset[str], Resolver]] = {
    "customers": (frozenset({"name", "email", "phone", "external_ref"}), _own_id),
    "customer_chats": (frozenset({"external_id", "conversation", "display_name"}), _column("customer_id")),
    "customer_consents": (frozenset({"conversation"}), _column("customer_id")),
    "interactions": (frozenset({"text"}), _column("customer_id")),
    "tickets": (frozenset({"subject"}), _column("customer_id")),
    "ticket_messages": (frozenset({"text"}), _ticket_customer),
    "followups": (frozenset({"text"}), _column("customer_id")),
    "customer_relationships": (frozenset({"note"}), _column("customer_id")),
    "deals": (frozenset({"title", "lost_reason"}), _column("customer_id")),
    "custom_field_values": (
        frozenset({"value_text", "value_number", "value_date", "value_sealed"}),
        _personal_field_customer,
    ),
}


def protect(
    connection: sa.Connection,
    info: dict[str, Any],
    entry: dict[str, Any],
    get: Callable[[str], Any],
) -> None:
    """Encrypt the personal values of one audit entry (in place) with its customer's data key."""
    rule = PERSONAL_FIELDS.get(entry["entity_type"])
    if rule is None:
        return
    fields, resolve = rule
    present = [
        (side, key)
        for side in ("before", "after")
        for key, value in (entry[side] or {}).items()
        if key in fields and value is not None
    ]
    if not present:
        return
    customer_id = resolve(connection, get, entry["entity_id"])
    if customer_id is None:
        return
    key = data_key(connection, info, customer_id, create=True)
    assert key is not None
    for side, field in present:
        entry[side][field] = seal(key, customer_id, field, entry[side][field])


def reveal(session: Session, values: dict[str, Any] | None) -> dict[str, Any] | None:
    """An audit entry's before/after with personal values decrypted, ``[erased]`` where the key is gone."""
    if not values:
        return values
    shown = {}
    for field, value in values.items():
        parsed = _parse(value) if isinstance(value, str) else None
        if parsed is None:
            shown[field] = value
            continue
        customer_id, body = parsed
        try:
            key = data_key(session.connection(), session.info, customer_id, create=False)
        except KeyUnavailable:
            shown[field] = LOCKED
            continue
        if key is None:
            shown[field] = ERASED
            continue
        try:
            shown[field] = json.loads(AESGCM(key).decrypt(body[:12], body[12:], _aad(customer_id, field)))
        except InvalidTag:
            shown[field] = LOCKED
    return shown


def shred(session: Session, customer_id: int) -> None:
    """Destroy the customer's data key: what the audit log holds about them becomes unreadable."""
    session.flush()
    session.execute(sa.delete(CustomerKey).where(CustomerKey.customer_id == customer_id))
    session.info.setdefault(_CACHE, {}).pop(customer_id, None)


def forget(info: dict[str, Any]) -> None:
    """Drop the data keys a session remembered (after a rollback: a key it made may be gone)."""
    info.pop(_CACHE, None)
