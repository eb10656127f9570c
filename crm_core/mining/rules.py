"""Association rules: the ``Rule`` record and the ``AssociationRules`` estimator.

A rule ``A -> c`` has an antecedent ``A`` (a tuple of items) and one consequent item ``c``,
as R's arules produces by default. With N baskets:

    support(A -> c)    = count(A + c) / N
    confidence(A -> c) = count(A + c) / count(A)
    lift(A -> c)       = confidence(A -> c) / (count(c) / N)

Every frequent itemset S of length >= 2 yields the candidate rules ``S - {c} -> c``; their
antecedents are frequent too (every subset of a frequent itemset is), so their counts are
looked up in the mined levels rather than recounted. The lookups and threshold checks run
on whole levels at once.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Self

import numpy as np

from crm_core.mining import accelerator
from crm_core.mining.baskets import EncodedBaskets
from crm_core.mining.errors import NotFittedError
from crm_core.mining.gcpause import paused_gc
from crm_core.mining.itemsets import MinedItemsets, itemset_records, mine_itemsets, search_options
from crm_core.mining.levelwise import DEFAULT_SEARCH, Level
from crm_core.mining.records import Itemset, Rule
from crm_core.mining.thresholds import (
    REL_TOL,
    check_max_len,
    check_min_lift,
    check_min_support,
    check_unit_interval,
    ratio_at_least,
)


@dataclass(frozen=True, eq=False)
class RuleBlock:
    """The rules whose antecedents have one given length, as parallel arrays of codes/counts."""

    antecedents: np.ndarray  # (n, length) item codes, each row increasing
    consequents: np.ndarray  # (n,) item codes
    counts: np.ndarray  # baskets holding antecedent and consequent
    antecedent_counts: np.ndarray
    consequent_counts: np.ndarray

    def __len__(self) -> int:
        return len(self.counts)


# Bits available for packing an itemset into one int64 search key (the sign bit stays clear).
PACKED_KEY_BITS = 63


def _row_keys(items: np.ndarray, n_labels: int, packed_keys: bool = True) -> np.ndarray:
    """One key per row, ordered like the rows' lexicographic order, for binary search.

    Short rows are packed into one integer (a fixed number of bits per item, first item
    most significant). Longer ones are viewed as a single void scalar of big-endian
    unsigned ints: raw bytes compare in the same order as the numbers they encode.
    """
    n_rows, length = items.shape
    bits = max(1, (n_labels - 1).bit_length())
    if packed_keys and bits * length <= PACKED_KEY_BITS:
        keys = np.zeros(n_rows, dtype=np.int64)
        for column in range(length):
            keys <<= bits
            keys |= items[:, column]
        return keys
    rows = np.ascontiguousarray(items, dtype=">u4")
    return rows.view(np.dtype((np.void, 4 * length))).ravel()


def find_rules(
    mined: MinedItemsets,
    min_confidence: float,
    min_lift: float | None = None,
    allow_empty_antecedent: bool = False,
    packed_keys: bool = True,
) -> list[RuleBlock]:
    """Rules meeting the thresholds, one block per antecedent length (shortest first)."""
    levels = mined.levels
    n = mined.n_baskets
    if not levels:
        return []
    if mined.use_c:
        return _find_rules_c(mined, min_confidence, min_lift, allow_empty_antecedent)
    item_count = _item_counts(mined)

    blocks: list[RuleBlock] = []
    if allow_empty_antecedent:
        # {} -> c: confidence is the support of c, lift is 1.
        singles = levels[0]
        empty_counts = np.full(len(singles), n, dtype=np.int64)
        blocks.append(
            _select(
                singles.items[:, :0],
                singles.items[:, 0],
                singles.counts,
                empty_counts,
                item_count,
                n,
                min_confidence,
                min_lift,
            )
        )

    for length in range(2, len(levels) + 1):
        level: Level = levels[length - 1]
        parent_level = levels[length - 2]
        parent_keys = _row_keys(parent_level.items, len(mined.labels), packed_keys)
        parts = []
        for position in range(length):
            antecedents = np.delete(level.items, position, axis=1)
            # Present by downward closure: every subset of a frequent itemset is frequent.
            antecedent_counts = parent_level.counts[
                np.searchsorted(parent_keys, _row_keys(antecedents, len(mined.labels), packed_keys))
            ]
            parts.append(
                _select(
                    antecedents,
                    level.items[:, position],
                    level.counts,
                    antecedent_counts,
                    item_count,
                    n,
                    min_confidence,
                    min_lift,
                )
            )
        blocks.append(_sorted_block(parts))
    return [block for block in blocks if len(block)]


def _find_rules_c(
    mined: MinedItemsets, min_confidence: float, min_lift: float | None, allow_empty_antecedent: bool
) -> list[RuleBlock]:
    """find_rules by the C accelerator: the same blocks, thresholds lowered by the same tolerance."""
    slack = 1.0 - REL_TOL
    blocks = []
    if allow_empty_antecedent:
        singles = mined.levels[0]
        blocks.append(
            _select(
                singles.items[:, :0],
                singles.items[:, 0],
                singles.counts,
                np.full(len(singles), mined.n_baskets, dtype=np.int64),
                _item_counts(mined),
                mined.n_baskets,
                min_confidence,
                min_lift,
            )
        )
    lift = None if min_lift is None else float(min_lift) * slack
    for arrays in accelerator.rule_arrays(mined.levels, mined.n_baskets, float(min_confidence) * slack, lift):
        blocks.append(RuleBlock(*arrays))
    return [block for block in blocks if len(block)]


def _item_counts(mined: MinedItemsets) -> np.ndarray:
    item_count = np.zeros(len(mined.labels), dtype=np.int64)
    item_count[mined.levels[0].items[:, 0]] = mined.levels[0].counts
    return item_count


def _select(antecedents, consequents, counts, antecedent_counts, item_count, n, min_confidence, min_lift) -> RuleBlock:
    consequent_counts = item_count[consequents]
    keep = ratio_at_least(counts, antecedent_counts, min_confidence)
    if min_lift is not None:
        # lift >= t  <=>  count(A+c) * N >= t * count(A) * count(c)
        keep &= ratio_at_least(counts * float(n), antecedent_counts * consequent_counts.astype(np.float64), min_lift)
    return RuleBlock(
        antecedents=antecedents[keep],
        consequents=consequents[keep],
        counts=counts[keep],
        antecedent_counts=antecedent_counts[keep],
        consequent_counts=consequent_counts[keep],
    )


def _sorted_block(parts: list[RuleBlock]) -> RuleBlock:
    """Merge blocks of equal antecedent length, ordered by antecedent then consequent."""
    antecedents = np.concatenate([p.antecedents for p in parts])
    consequents = np.concatenate([p.consequents for p in parts])
    # np.lexsort sorts by the last key first: consequent is the least significant key.
    order = np.lexsort((consequents, *antecedents.T[::-1]))
    return RuleBlock(
        antecedents=antecedents[order],
        consequents=consequents[order],
        counts=np.concatenate([p.counts for p in parts])[order],
        antecedent_counts=np.concatenate([p.antecedent_counts for p in parts])[order],
        consequent_counts=np.concatenate([p.consequent_counts for p in parts])[order],
    )


def rule_records(mined: MinedItemsets, blocks: list[RuleBlock]) -> list[Rule]:
    """Rules as records: shorter antecedents first, then antecedent and consequent in label order."""
    if mined.use_c:
        arrays = [
            (
                block.antecedents.shape[1],
                (block.antecedents, block.consequents, block.counts, block.antecedent_counts, block.consequent_counts),
            )
            for block in blocks
        ]
        with paused_gc():
            return accelerator.rule_records(arrays, mined.labels, mined.n_baskets, Rule)
    labels = mined.label_array()
    n = mined.n_baskets
    records: list[Rule] = []
    with paused_gc():
        for block in blocks:
            confidence = block.counts / block.antecedent_counts
            lift = confidence / (block.consequent_counts / n)
            columns = zip(
                map(tuple, labels[block.antecedents].tolist()),
                labels[block.consequents].tolist(),
                (block.counts / n).tolist(),
                confidence.tolist(),
                lift.tolist(),
                block.counts.tolist(),
            )
            records.extend(map(Rule._make, columns))
    return records


class AssociationRules:
    """Mine association rules ``antecedent -> consequent`` (one consequent item) from baskets.

    Parameters
    ----------
    min_support : float in (0, 1] or int >= 1
        Minimum support of the whole rule (antecedent and consequent together), as a
        fraction of baskets (float) or a number of baskets (int), as in arules.
    min_confidence : float in [0, 1]
    min_lift : float >= 0 or None
        Optional extra filter on lift.
    max_len : int >= 1 or None
        Most items in a rule, antecedent and consequent together (arules' ``maxlen``);
        None (default) for no limit.
    allow_empty_antecedent : bool, keyword-only, default False
        Also report ``() -> c`` when the support of c alone reaches ``min_confidence``
        (arules does; with min_confidence 0.8 on Groceries there are none either way).
    pair_chunk, count_span, bitset_chunk_words, counting, bitsets : keyword-only
    engine, item_order, projection_items : keyword-only
        How the search runs, never what it finds (see ``FrequentItemsets``); with the C engine the
        rules and records are built in C too.
    packed_keys : bool, keyword-only, default True
        Look antecedents up by itemsets packed into one integer when they fit (False: always
        by byte-string keys; the result is the same).
    max_memory_bytes : int or None, keyword-only
        Refuse (``crm_core.mining.memory.MiningMemoryError``, a MemoryError, recommending the
        Spark engine) instead of starting when mining is estimated to need more; None (default):
        the memory available when ``fit`` runs.

    Learned attributes (after ``fit``)
    ----------------------------------
    rules_ : list[Rule]
        Shorter antecedents first, then by antecedent and consequent in label order.
    itemsets_ : list[Itemset]
        The frequent itemsets the rules came from (see ``FrequentItemsets``).
    n_baskets_ : int
    min_count_ : int
        ``min_support`` as a basket count.

    Example
    -------
    >>> baskets = [["bread", "butter"], ["bread", "butter", "jam"], ["bread"], ["butter", "jam"]]
    >>> model = AssociationRules(min_support=2, min_confidence=0.7).fit(baskets)
    >>> model.rules_
    [Rule(antecedent=('jam',), consequent='butter', support=0.5, confidence=1.0, lift=1.3333333333333333, count=2)]
    """

    def __init__(
        self,
        min_support: float | int,
        min_confidence: float,
        min_lift: float | None = None,
        max_len: int | None = None,
        *,
        allow_empty_antecedent: bool = False,
        pair_chunk: int = DEFAULT_SEARCH.pair_chunk,
        count_span: int = DEFAULT_SEARCH.count_span,
        bitset_chunk_words: int = DEFAULT_SEARCH.bitset_chunk_words,
        counting: str = DEFAULT_SEARCH.counting,
        bitsets: str | int = DEFAULT_SEARCH.bitsets,
        engine: str = DEFAULT_SEARCH.engine,
        item_order: str = DEFAULT_SEARCH.item_order,
        projection_items: int = DEFAULT_SEARCH.projection_items,
        packed_keys: bool = True,
        max_memory_bytes: int | None = None,
    ):
        self.min_support = min_support
        self.min_confidence = min_confidence
        self.min_lift = min_lift
        self.max_len = max_len
        self.allow_empty_antecedent = allow_empty_antecedent
        self.pair_chunk = pair_chunk
        self.count_span = count_span
        self.bitset_chunk_words = bitset_chunk_words
        self.counting = counting
        self.bitsets = bitsets
        self.engine = engine
        self.item_order = item_order
        self.projection_items = projection_items
        self.packed_keys = packed_keys
        self.max_memory_bytes = max_memory_bytes

    def fit(self, baskets: Iterable[Iterable[Hashable]] | EncodedBaskets) -> AssociationRules:
        """Mine ``baskets``, an iterable of iterables of hashable item labels (or ``EncodedBaskets``
        from ``read_encoded_baskets``); returns self."""
        # Check everything before the (possibly long) mining starts.
        check_min_support(self.min_support)
        check_unit_interval("min_confidence", self.min_confidence)
        check_min_lift(self.min_lift)
        check_max_len(self.max_len)
        return self._fitted_from(
            mine_itemsets(baskets, self.min_support, self.max_len, search_options(self), self.max_memory_bytes)
        )

    def _fitted_from(self, mined: MinedItemsets) -> Self:
        """Derive the rules from mined itemsets and keep both; shared with the Spark engine."""
        self._mined = mined
        self._blocks = find_rules(
            mined, float(self.min_confidence), self.min_lift, bool(self.allow_empty_antecedent), bool(self.packed_keys)
        )
        self._rules: list[Rule] | None = None
        self._itemsets: list[Itemset] | None = None
        self.n_baskets_ = mined.n_baskets
        self.min_count_ = mined.min_count
        return self

    def _fitted(self) -> MinedItemsets:
        mined = getattr(self, "_mined", None)
        if mined is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(baskets) first")
        return mined

    @property
    def rules_(self) -> list[Rule]:
        mined = self._fitted()
        if self._rules is None:
            self._rules = rule_records(mined, self._blocks)
        return self._rules

    @property
    def itemsets_(self) -> list[Itemset]:
        mined = self._fitted()
        if self._itemsets is None:
            self._itemsets = itemset_records(mined)
        return self._itemsets

    def __repr__(self) -> str:
        extra = ", allow_empty_antecedent=True" if self.allow_empty_antecedent else ""
        return (
            f"{type(self).__name__}(min_support={self.min_support!r}, min_confidence={self.min_confidence!r}, "
            f"min_lift={self.min_lift!r}, max_len={self.max_len!r}{extra})"
        )
