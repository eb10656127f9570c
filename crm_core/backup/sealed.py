"""An encrypted, authenticated byte stream in chunks: how a backup file is laid out on disk.

    header  = MAGIC (15 bytes) | format version (1) | salt (16) | key check (16)
    chunk   = length (4, big-endian) | AES-256-GCM ciphertext with its 16-byte tag

Each file derives its own key from the secret key with HKDF-SHA256 and a random salt, so the
nonce can be the chunk counter (11 bytes) followed by a final flag (1 byte), as in the STREAM
construction: a chunk moved, dropped or duplicated fails to decrypt under its expected nonce, and
a file cut after a chunk lacks the chunk sealed as final. The header is every chunk's associated
data. The key check (a second HKDF output) tells a wrong key apart from a damaged file. A big
database is streamed: at most one chunk is held in memory on either side.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crm_core.errors import CrmError
from crm_core.i18n import _

MAGIC = b"CHATCRM-BACKUP\x00"
FORMAT_VERSION = 1
HEADER_SIZE = len(MAGIC) + 1 + 16 + 16
CHUNK_SIZE = 1 << 20
_TAG = 16
_LAST_COUNTER = (1 << 88) - 1


class BackupError(CrmError):
    """A backup cannot be written, read or restored; the message says why in one sentence."""


class WrongKey(BackupError):
    """The backup was sealed with another secret key."""


class DamagedBackup(BackupError):
    """The file is not a chatcrm backup, or was changed or cut after it was written."""


def _derive(secret: bytes, salt: bytes) -> tuple[bytes, bytes]:
    material = HKDF(algorithm=hashes.SHA256(), length=48, salt=salt, info=b"chatcrm backup v1").derive(secret)
    return material[:32], material[32:]


def _nonce(counter: int, final: bool) -> bytes:
    if counter > _LAST_COUNTER:
        raise BackupError(_("the backup is too large for one file"))
    return counter.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


class SealedWriter:
    """Write plaintext in; sealed chunks go to ``out``. ``close()`` seals the final chunk."""

    def __init__(self, out: BinaryIO, secret: bytes, chunk_size: int = CHUNK_SIZE) -> None:
        salt = os.urandom(16)
        key, check = _derive(secret, salt)
        self.header = MAGIC + bytes([FORMAT_VERSION]) + salt + check
        self._aead = AESGCM(key)
        self._out = out
        self._chunk_size = chunk_size
        self._buffer = bytearray()
        self._counter = 0
        self.bytes_written = 0
        self._emit(self.header)

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self.bytes_written += len(data)

    def _seal(self, plaintext: bytes, final: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._counter, final), plaintext, self.header)
        self._emit(len(sealed).to_bytes(4, "big"))
        self._emit(sealed)
        self._counter += 1

    def write(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) > self._chunk_size:
            # Only while more than a chunk is buffered: the tail always waits for close(), which
            # seals it (possibly empty) as the final chunk.
            self._seal(bytes(self._buffer[: self._chunk_size]), final=False)
            del self._buffer[: self._chunk_size]

    def close(self) -> None:
        self._seal(bytes(self._buffer), final=True)
        self._buffer.clear()


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    while data and len(data) < size:
        more = source.read(size - len(data))
        if not more:
            break
        data += more
    return data


def open_sealed(source: BinaryIO, secrets: Sequence[bytes]) -> Iterator[bytes]:
    """The plaintext chunks of a sealed stream, each authenticated before it is yielded.

    Raises DamagedBackup (not a backup, changed, cut short, trailing data) or WrongKey (none of
    ``secrets`` sealed it). The header is checked before the first chunk is read, so a wrong key
    fails at once."""
    header = _read_exactly(source, HEADER_SIZE)
    if len(header) < HEADER_SIZE or not header.startswith(MAGIC):
        raise DamagedBackup(_("this is not a chatcrm backup file (or its beginning is damaged)"))
    if header[len(MAGIC)] != FORMAT_VERSION:
        raise DamagedBackup(
            _("backup format {format} is not one this chatcrm reads (it reads 1)", format=header[len(MAGIC)])
        )
    salt, check = header[len(MAGIC) + 1 : len(MAGIC) + 17], header[len(MAGIC) + 17 :]
    for secret in secrets:
        key, expected = _derive(secret, salt)
        if expected == check:
            break
    else:
        raise WrongKey(
            _(
                "the backup was made with a different CHATCRM_SECRET_KEY (or its header is damaged); "
                "set the key it was made with"
            )
        )
    return _chunks(source, AESGCM(key), header)


def _chunks(source: BinaryIO, aead: AESGCM, header: bytes) -> Iterator[bytes]:
    counter = 0
    first = _read_length(source)
    if first is None:
        raise DamagedBackup(_("the backup file is truncated (it ends after its header)"))
    length: int = first
    while True:
        sealed = _read_exactly(source, length)
        if len(sealed) < length:
            raise DamagedBackup(_("the backup file is truncated (it ends inside a chunk)"))
        following = _read_length(source)
        final = following is None
        try:
            yield aead.decrypt(_nonce(counter, final), sealed, header)
        except InvalidTag:
            raise DamagedBackup(_why_not(aead, counter, final, sealed, header)) from None
        if following is None:
            return
        counter += 1
        length = following


def _read_length(source: BinaryIO) -> int | None:
    raw = _read_exactly(source, 4)
    if not raw:
        return None
    if len(raw) < 4:
        raise DamagedBackup(_("the backup file is truncated (it ends inside a chunk header)"))
    length = int.from_bytes(raw, "big")
    if not _TAG <= length <= CHUNK_SIZE + _TAG:
        raise DamagedBackup(_("the backup file is damaged (a chunk has an impossible length)"))
    return length


def _why_not(aead: AESGCM, counter: int, final: bool, sealed: bytes, header: bytes) -> str:
    """Name the likelier cause once a chunk failed: decrypting it under the other flag tells a cut
    file (the last chunk present is not the final one) from data after the end."""
    try:
        aead.decrypt(_nonce(counter, not final), sealed, header)
    except InvalidTag:
        return _("the backup file is damaged (a chunk fails its authentication check: changed after it was written)")
    if final:
        return _("the backup file is truncated (its final chunk is missing)")
    return _("the backup file is damaged (data follows its final chunk)")
