"""Text laid out in columns on a terminal, where a Chinese character takes two columns.

Used by the CLI's tables (``chatcrm plugins``, ``chatcrm mine``'s rules). It imports nothing at the
top: ``chatcrm mine`` on a file starts as lean as it can (tests/test_startup.py).
"""

from __future__ import annotations


def display_width(text: str) -> int:
    """Columns ``text`` takes on a terminal: an East Asian wide or full-width character takes two."""
    if text.isascii():
        return len(text)
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, width: int, align: str = "<") -> str:
    """``text`` padded with spaces to ``width`` columns, left-aligned (``<``) or right-aligned (``>``)."""
    gap = " " * max(0, width - display_width(text))
    return text + gap if align == "<" else gap + text
