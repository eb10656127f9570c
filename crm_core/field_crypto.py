"""Field encryption at rest: personal columns are stored as AES-256-GCM tokens, exact lookups go
through keyed blind indexes (HMAC-SHA256), and the keys come from CHATCRM_SECRET_KEY.

- A column typed ``Encrypted("table.column")`` holds ``fe1$<key id>$<base64 nonce+ciphertext>``.
  The key is derived by HKDF from one secret of CHATCRM_SECRET_KEY (purpose-separated from the
  backups' and the audit log's keys), the key id is derived from the secret too (it names, never
  reveals it), and the associated data is the column's name, so a value copied into another column
  does not open. A value without the prefix is plaintext written before encryption existed: it is
  read as it is, and the next ``chatcrm keys rotate`` (or the migration) encrypts it.
- Encryption is randomised, so the database cannot compare encrypted values. What is looked up
  exactly (a customer's email, their phone number, the last digits of it) has a blind index
  beside it: the HMAC of the normalised value under a derived key (``blind``). A lookup asks for
  the index of every configured key (``blind_any``), so lookups keep working while ``keys rotate``
  moves rows from the old key to the new one.
- The keys reach the column types through the engine: ``use_keys(engine, keys)`` registers them
  for the engine's dialect object, which SQLAlchemy hands to every bind and result processor.
  Two apps in one process (tests) with different keys therefore never see each other's. An engine
  without keys refuses to write or read an encrypted value (``FieldKeyError``), so no path can
  store personal data in the clear by forgetting the key.
- ``encryption_keys`` records the id of every key data were written with. At start-up
  crm_core.key_rotation.check_keys compares it with the configured keys and stops with one line
  when a key that data are still under is missing (a wrong CHATCRM_SECRET_KEY), instead of an
  error on every row later. ``keys rotate`` forgets the ids it moved every value away from.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import weakref
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.sql import operators

from crm_core.errors import SetupError
from crm_core.i18n import _

PREFIX = "fe1$"
KEY_ID_LENGTH = 8
# Blind index values: 16 bytes of the HMAC in hex. Collisions are out of reach; shorter would do.
BLIND_LENGTH = 32


class FieldKeyError(SetupError, sa.exc.DontWrapMixin):
    """The configured keys cannot open (or are missing for) the stored personal data; the message
    says what to set. DontWrapMixin: raised inside a statement, it reaches the caller as itself."""


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


class FieldKey:
    """One secret's derived keys: AES-GCM for values, HMAC for blind indexes, and its public id."""

    def __init__(self, secret: bytes):
        self.key_id = _derive(secret, b"chatcrm field key id v1").hex()[:KEY_ID_LENGTH]
        self.aead = AESGCM(_derive(secret, b"chatcrm field encryption v1"))
        self.blind_key = _derive(secret, b"chatcrm blind index v1")
        self.prefix = f"{PREFIX}{self.key_id}$"


class FieldKeys:
    """The keys of CHATCRM_SECRET_KEY in order: the first encrypts, every one decrypts."""

    def __init__(self, secrets: Sequence[bytes]):
        if not secrets:
            raise ValueError("field encryption needs at least one secret key")
        self.keys = [FieldKey(secret) for secret in secrets]
        self.by_id = {key.key_id: key for key in self.keys}

    @property
    def current(self) -> FieldKey:
        return self.keys[0]

    @property
    def ids(self) -> list[str]:
        return [key.key_id for key in self.keys]

    def encrypt(self, purpose: str, value: str) -> str:
        key = self.current
        nonce = os.urandom(12)
        sealed = key.aead.encrypt(nonce, value.encode(), purpose.encode())
        return key.prefix + base64.b64encode(nonce + sealed).decode()

    def decrypt(self, purpose: str, stored: str) -> str:
        """The plaintext of a stored value (a value without the prefix is legacy plaintext)."""
        if not stored.startswith(PREFIX):
            return stored
        key_id, _dollar, body = stored[len(PREFIX) :].partition("$")
        key = self.by_id.get(key_id)
        if key is None:
            raise FieldKeyError(missing_key_message([key_id]))
        try:
            raw = base64.b64decode(body)
            return key.aead.decrypt(raw[:12], raw[12:], purpose.encode()).decode()
        except (InvalidTag, ValueError):
            raise FieldKeyError(
                _(
                    "a stored value of {purpose} under key id {key_id} does not decrypt: the data is damaged",
                    purpose=purpose,
                    key_id=key_id,
                )
            ) from None

    def is_current(self, stored: str | None) -> bool:
        return stored is None or stored.startswith(self.current.prefix)

    def blind(self, purpose: str, value: str | None, key: FieldKey | None = None) -> str | None:
        """The blind index of an already normalised value under ``key`` (the current one by default)."""
        if value is None:
            return None
        mac = hmac.new((key or self.current).blind_key, f"{purpose}\0{value}".encode(), hashlib.sha256)
        return mac.hexdigest()[:BLIND_LENGTH]

    def blind_any(self, purpose: str, value: str) -> list[str]:
        """The blind index of ``value`` under every key: what a lookup asks for during a rotation."""
        return [self.blind(purpose, value, key) or "" for key in self.keys]


def missing_key_message(key_ids: Sequence[str]) -> str:
    named = ", ".join(sorted(key_ids))
    return _(
        "CHATCRM_SECRET_KEY does not open the stored personal data (written under key id {key_ids}): set the key "
        "they were written with; to change keys, put the new key first and the old one after it "
        "(CHATCRM_SECRET_KEY=new,old) and run `chatcrm keys rotate`",
        key_ids=named,
    )


# -- keys per engine ------------------------------------------------------------------------------

# Each engine has a dialect object of its own, which SQLAlchemy passes to the column types.
_keys_of_dialect: weakref.WeakKeyDictionary[Dialect, FieldKeys] = weakref.WeakKeyDictionary()


def use_keys(engine: Engine, keys: FieldKeys) -> None:
    """Encrypt and decrypt the personal columns of ``engine``'s statements with ``keys``."""
    _keys_of_dialect[engine.dialect] = keys


def keys_for(bind: Dialect | Engine | sa.Connection | Any) -> FieldKeys:
    """The keys registered for an engine, a connection, a session or a dialect; FieldKeyError if none."""
    dialect = _dialect(bind)
    keys = _keys_of_dialect.get(dialect)
    if keys is None:
        raise FieldKeyError(
            "this database connection has no CHATCRM_SECRET_KEY to encrypt personal data with "
            "(crm_core.field_crypto.use_keys was not called for its engine)"
        )
    return keys


def has_keys(bind: Dialect | Engine | sa.Connection | Any) -> bool:
    return _dialect(bind) in _keys_of_dialect


def _dialect(bind: Any) -> Dialect:
    if isinstance(bind, Dialect):
        return bind
    if hasattr(bind, "get_bind"):  # a Session
        bind = bind.get_bind()
    return bind.dialect


# -- the column type --------------------------------------------------------------------------------

# Comparing an encrypted column with a value can never match (every encryption differs): a query
# written that way is a bug, so it fails where it is built. IS NULL and IS NOT NULL still work, and
# so do comparisons with other SQL expressions.
_NO_VALUE_COMPARISONS = {
    operators.eq,
    operators.ne,
    operators.in_op,
    operators.not_in_op,
    operators.like_op,
    operators.not_like_op,
    operators.ilike_op,
    operators.not_ilike_op,
    operators.lt,
    operators.le,
    operators.gt,
    operators.ge,
    operators.startswith_op,
    operators.endswith_op,
    operators.contains_op,
}


def _is_value(other: Any) -> bool:
    # SQLAlchemy itself compares columns with columns (adapting a RETURNING clause): let those be.
    return not (other is None or isinstance(other, sa.sql.ClauseElement) or hasattr(other, "__clause_element__"))


class Encrypted(sa.types.TypeDecorator[str]):
    """A text column stored encrypted (see the module docstring). ``purpose`` ("table.column") binds
    each value to its column. ``sqlite_length`` keeps the VARCHAR length an existing SQLite column
    was declared with: SQLite ignores it, and changing it would rebuild the table (and drop its
    search triggers); PostgreSQL gets TEXT, as a token is longer than the plaintext."""

    impl = sa.Text
    cache_ok = True

    class Comparator(sa.types.TypeDecorator.Comparator[str]):
        def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
            if op in _NO_VALUE_COMPARISONS and other and _is_value(other[0]):
                raise TypeError(
                    f"{op.__name__} on an encrypted column can never match: compare its blind index "
                    "(crm_core.field_crypto.blind_any) instead"
                )
            return super().operate(op, *other, **kwargs)

    comparator_factory = Comparator

    def __init__(self, purpose: str, sqlite_length: int | None = None):
        super().__init__()
        self.purpose = purpose
        self.sqlite_length = sqlite_length

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite" and self.sqlite_length:
            return sa.String(self.sqlite_length)
        return sa.Text()

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keys_for(dialect).encrypt(self.purpose, value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or not value.startswith(PREFIX):
            return value
        return keys_for(dialect).decrypt(self.purpose, value)

    def copy(self, **kw: Any) -> Encrypted:
        return Encrypted(self.purpose, self.sqlite_length)


class EncryptedJSON(sa.types.TypeDecorator[Any]):
    """A JSON column stored encrypted: the document's text sealed like ``Encrypted``, kept as a JSON
    string (the column stays JSON, so nothing is rebuilt). A document that is not such a string is
    legacy plaintext and is read as it is. Nothing may be queried inside it."""

    impl = sa.JSON
    cache_ok = True

    def __init__(self, purpose: str):
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        plain = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return keys_for(dialect).encrypt(self.purpose, plain)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, str) and value.startswith(PREFIX):
            return json.loads(keys_for(dialect).decrypt(self.purpose, value))
        return value

    def copy(self, **kw: Any) -> EncryptedJSON:
        return EncryptedJSON(self.purpose)
