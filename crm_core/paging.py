"""One page of a list, fetched on demand (LIMIT/OFFSET), with the size of the whole match.

Lists in chat show a page at a time and say how many match in all; the next page is read when
someone asks for it, never cut from a longer list read up front.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

T = TypeVar("T")

# Items per page in chat lists (a Slack message holds 50 blocks; an item is one or two).
PAGE_SIZE = 20


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    # 1-based page number, and how many rows match across every page.
    number: int
    size: int
    total: int

    @property
    def first(self) -> int:
        """1-based position of the first item on this page."""
        return (self.number - 1) * self.size + 1

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1

    @property
    def has_more(self) -> bool:
        return self.last < self.total


def offset(number: int, size: int) -> int:
    return (max(1, number) - 1) * size


def fetch(session: Session, statement: sa.Select[Any], number: int, size: int = PAGE_SIZE) -> Page[Any]:
    """Page ``number`` of an ordered ORM select, and the count of every row it matches."""
    number = max(1, number)
    total = session.scalar(sa.select(sa.func.count()).select_from(statement.order_by(None).subquery())) or 0
    items = list(session.scalars(statement.offset(offset(number, size)).limit(size))) if total else []
    return Page(items, number, size, total)
