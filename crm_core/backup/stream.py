"""The records inside a backup: JSON lines, compressed with zlib, sealed by ``sealed``.

    {"kind": "header", "format": "chatcrm-backup", "revision": …, "tables": [specs…], …}
    {"kind": "table", "name": "users"}
    [row values…]                      one line per row (rows.encode)
    {"kind": "end", "name": "users", "rows": 3, "sha256": "…"}
    … every table, parents before children …
    {"kind": "manifest", "revision": …, "tables": {"users": {"rows": 3, "sha256": "…"}, …}, …}

The header comes first so a restore can refuse an unknown schema revision before it writes
anything; the manifest, with the counts and checksums, can only be complete at the end.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

from crm_core.backup.sealed import CHUNK_SIZE, DamagedBackup, SealedWriter, open_sealed
from crm_core.i18n import _

FORMAT = "chatcrm-backup"


class RecordWriter:
    """Lines in, compressed and sealed bytes out."""

    def __init__(self, out: BinaryIO, secret: bytes, level: int = 6, chunk_size: int = CHUNK_SIZE) -> None:
        self._sealed = SealedWriter(out, secret, chunk_size)
        self._compressor = zlib.compressobj(level)
        self._pending: list[bytes] = []
        self._pending_size = 0

    def record(self, data: dict[str, Any]) -> None:
        self.line(json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    def line(self, text: str) -> None:
        data = text.encode() + b"\n"
        self._pending.append(data)
        self._pending_size += len(data)
        # Compressing many small lines at once is much cheaper than one call per row.
        if self._pending_size >= 256 * 1024:
            self._flush_pending()

    def _flush_pending(self) -> None:
        self._sealed.write(self._compressor.compress(b"".join(self._pending)))
        self._pending.clear()
        self._pending_size = 0

    def close(self) -> int:
        """Seal the end; returns the file's size in bytes."""
        self._flush_pending()
        self._sealed.write(self._compressor.flush())
        self._sealed.close()
        return self._sealed.bytes_written


def read_lines(source: BinaryIO, secrets: Sequence[bytes]) -> Iterator[bytes]:
    """Every line of a backup, authenticated; raises WrongKey / DamagedBackup."""
    chunks = open_sealed(source, secrets)
    decompressor = zlib.decompressobj()
    tail = b""
    for chunk in chunks:
        try:
            data = tail + decompressor.decompress(chunk)
        except zlib.error:
            raise DamagedBackup(_("the backup file is damaged (its contents do not decompress)")) from None
        lines = data.split(b"\n")
        tail = lines.pop()
        yield from lines
    if tail or not decompressor.eof:
        raise DamagedBackup(_("the backup file is incomplete (its contents end mid-record)"))


def parse_record(line: bytes) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError:
        raise DamagedBackup(_("the backup file is damaged (a record is not JSON)")) from None
    if not isinstance(record, dict) or "kind" not in record:
        raise DamagedBackup(_("the backup file is damaged (a record is not where it should be)"))
    return record
