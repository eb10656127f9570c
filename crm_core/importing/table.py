"""A source of rows to import, whatever it was: a header and numbered rows of text cells.

Every reader (CSV, Excel, SQL) produces a ``Table``; the entity mappers never know which it was.
``notes`` are things the user should hear about the source (an encoding guessed, a sheet picked).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time


class ImportFailed(Exception):
    """The source as a whole cannot be imported (wrong columns, unreadable); nothing is written."""


@dataclass
class Table:
    name: str  # what the user called it: a file name, or "query"
    header: list[str]
    # (row number as the user sees it: the line in a CSV file, the row in a sheet; cells as text)
    rows: Iterator[tuple[int, list[str]]]
    total: int | None = None  # rows expected, for a progress bar; None when unknown
    notes: list[str] = field(default_factory=list)
    # CSV: a row with fewer cells than the header is malformed; a sheet simply ends early.
    strict_width: bool = False
    # A single header cell holding what looks like several columns, e.g. "name;email" read with --sep ','.
    suspect_separator: str | None = None


def cell_text(value: object) -> str:
    """A cell as the text a CSV file would hold: 17850.0 -> "17850", a datetime -> "2010-12-01 08:26:00"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        # Spreadsheets store a date as a datetime at midnight: give back the date the user typed.
        if value.time() == time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value).strip()
