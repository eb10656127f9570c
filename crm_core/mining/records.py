"""The result records: ``Itemset`` and ``Rule`` (named tuples; no numpy, so the lean path can build them)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple


class Itemset(NamedTuple):
    """A frequent itemset: its items (in label order), basket count and support (count / baskets)."""

    items: tuple[Hashable, ...]
    count: int  # type: ignore[assignment]  # public field name; shadowing tuple.count is intended
    support: float


class Rule(NamedTuple):
    """``antecedent -> consequent``; ``count`` is the number of baskets holding both."""

    antecedent: tuple[Hashable, ...]
    consequent: Hashable
    support: float
    confidence: float
    lift: float
    count: int  # type: ignore[assignment]  # public field name; shadowing tuple.count is intended
