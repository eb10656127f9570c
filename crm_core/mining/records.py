"""The result records: ``Itemset`` and ``Rule`` (named tuples; no numpy, so the lean path can build them).

They are made with ``collections.namedtuple`` rather than a ``typing.NamedTuple`` class body: importing
``typing`` and evaluating the string annotations of such a body (one ``compile`` each) were about a
tenth of ``chatcrm mine``'s whole run on Groceries. The result is the same kind of class, fields,
docstring and annotations included; type checkers read the ``NamedTuple`` declarations below.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Hashable

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (type checkers take any such name as True)

if TYPE_CHECKING:
    from typing import NamedTuple

    class Itemset(NamedTuple):
        items: tuple[Hashable, ...]
        count: int  # type: ignore[assignment]  # public field name; shadowing tuple.count is intended
        support: float

    class Rule(NamedTuple):
        antecedent: tuple[Hashable, ...]
        consequent: Hashable
        support: float
        confidence: float
        lift: float
        count: int  # type: ignore[assignment]  # public field name; shadowing tuple.count is intended

else:

    def _record(name: str, doc: str, fields: dict[str, object]) -> type:
        """What ``typing.NamedTuple`` makes of a class body: a namedtuple with the docstring and annotations."""
        cls = namedtuple(name, list(fields), module=__name__)
        cls.__doc__ = doc
        cls.__annotations__ = cls.__new__.__annotations__ = dict(fields)
        return cls

    Itemset = _record(
        "Itemset",
        "A frequent itemset: its items (in label order), basket count and support (count / baskets).",
        {"items": tuple[Hashable, ...], "count": int, "support": float},
    )
    Rule = _record(
        "Rule",
        "``antecedent -> consequent``; ``count`` is the number of baskets holding both.",
        {
            "antecedent": tuple[Hashable, ...],
            "consequent": Hashable,
            "support": float,
            "confidence": float,
            "lift": float,
            "count": int,
        },
    )
