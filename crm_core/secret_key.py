"""The secret key (CHATCRM_SECRET_KEY) that personal data (crm_core.field_crypto) and backups are
encrypted with.

Several keys may be given, separated by commas, so a key can be rotated: the first seals new
backups, every one is tried when reading. The embedded SQLite demo needs no setup: without a
configured key one is generated into a file next to the database (``chatcrm.db.key``), readable
by its owner only, and the caller is told once, when it is created. PostgreSQL is production:
there a missing key is a configuration error.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from crm_core.errors import SetupError
from crm_core.i18n import _

MIN_LENGTH = 16


class SecretKeyError(SetupError):
    """No usable secret key; the message says what to set."""


@dataclass(frozen=True)
class SecretKeys:
    keys: tuple[bytes, ...]
    # Set when this call generated the key file: say so to the operator, once.
    notice: str | None = None

    @property
    def current(self) -> bytes:
        return self.keys[0]


# How to make a key, in every language (a command, not words).
_MAKE_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def key_file_for(database_url: str) -> Path | None:
    """Where the embedded database's generated key lives, or None for a server database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    database = Path(url.database)
    return database.with_name(database.name + ".key")


def secret_keys(configured: str | None, database_url: str, *, create: bool) -> SecretKeys:
    """The keys to use: CHATCRM_SECRET_KEY, else the SQLite database's key file (generated when
    ``create``). Raises SecretKeyError with the one line to show."""
    if configured and configured.strip():
        keys = tuple(part.strip() for part in configured.split(",") if part.strip())
        short = [key for key in keys if len(key) < MIN_LENGTH]
        if short:
            raise SecretKeyError(
                _(
                    "CHATCRM_SECRET_KEY: a key of {length} characters is too short; use at least {minimum} random "
                    "characters (e.g. {command})",
                    length=len(short[0]),
                    minimum=MIN_LENGTH,
                    command=_MAKE_KEY,
                )
            )
        return SecretKeys(tuple(key.encode() for key in keys))
    path = key_file_for(database_url)
    if path is None:
        raise SecretKeyError(
            _(
                "CHATCRM_SECRET_KEY is not set: with PostgreSQL chatcrm does not start without it (it encrypts "
                "customers' personal data and the backups); set it to a long random string ({command}) and keep "
                "a copy apart from the database and the backups",
                command=_MAKE_KEY,
            )
        )
    if path.exists():
        return SecretKeys((path.read_text(encoding="utf-8").strip().encode(),))
    if not create:
        raise SecretKeyError(
            _(
                "CHATCRM_SECRET_KEY is not set and there is no key file {path}: set it to the key the backup was "
                "made with",
                path=path,
            )
        )
    key = secrets.token_urlsafe(32)
    try:
        # O_EXCL: two processes generating at once must not both write; the loser reads the winner's.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return SecretKeys((path.read_text(encoding="utf-8").strip().encode(),))
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    notice = _(
        "CHATCRM_SECRET_KEY is not set: generated a secret key into {path} (readable by you only). "
        "Customers' personal data and the backups are encrypted with it: keep a copy apart from them, "
        "or they cannot be read or restored.",
        path=path,
    )
    return SecretKeys((key.encode(),), notice)
