"""CSV files with any delimiter (sniffed, or given) in UTF-8 (with or without a BOM), else cp1252/Latin-1.

Why not just ``open(encoding="utf-8")``: spreadsheets on Windows still save "CSV" in cp1252, and an
old retail export is Latin-1; both fail on the first "é". The file is decoded once in full to pick
the encoding (and count its lines for the progress bar) before it is read.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from crm_core.i18n import _
from crm_core.importing.table import ImportFailed, Table

SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")


def detect_encoding(path: Path) -> tuple[str, int]:
    """The first of UTF-8, cp1252 and Latin-1 that decodes the whole file, and its line count."""
    for encoding in _ENCODINGS:
        decoder = codecs.getincrementaldecoder(encoding)()
        lines = 0
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    lines += decoder.decode(chunk).count("\n")
                decoder.decode(b"", final=True)
            return encoding, lines
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def _dialect(sample: str, sep: str | None) -> tuple[str, str | None]:
    """The delimiter: the one given, else sniffed from the first lines (comma when unsure); and, when the
    given one finds a single column that has another delimiter in it, that other delimiter."""
    first = sample.split("\n", 1)[0]
    if sep:
        if sep not in first:
            others = [d for d in DELIMITERS if d != sep and d in first]
            return sep, (others[0] if others else None)
        return sep, None
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter, None
    except csv.Error:
        counts = {d: first.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return (best if counts[best] else ","), None


def csv_table(source: Path | TextIO, *, sep: str | None = None) -> Table:
    notes: list[str] = []
    total = None
    if isinstance(source, Path):
        encoding, lines = detect_encoding(source)
        total = max(lines - 1, 0)
        if encoding != "utf-8-sig":
            notes.append(_("{file} is not UTF-8; read it as {encoding}", file=source.name, encoding=encoding))
        handle: TextIO = source.open(encoding=encoding, newline="")
        name = source.name
    else:
        handle, name = source, getattr(source, "name", "stream")
    sample = handle.read(SNIFF_BYTES)
    handle.seek(0)
    delimiter, suspect = _dialect(sample, sep)
    if delimiter != "," and not sep:
        notes.append(_("columns separated by '{separator}'", separator=delimiter))
    reader = csv.reader(handle, delimiter=delimiter)
    try:
        header = [h.strip().lstrip("\ufeff") for h in next(reader)]
    except StopIteration:
        handle.close()
        raise ImportFailed(_("the file is empty")) from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for row in reader:
                # csv.reader's line_num counts physical lines, so a quoted multi-line cell keeps numbers true.
                yield reader.line_num, row
        finally:
            if isinstance(source, Path):
                handle.close()

    return Table(name, header, rows(), total, notes, strict_width=True, suspect_separator=suspect)
