"""Frequent itemsets: the ``Itemset`` record and the ``FrequentItemsets`` estimator.

The estimator follows scikit-learn conventions: parameters go to the constructor, ``fit``
checks them, mines and returns ``self``, and results are attributes with a trailing
underscore. Mined itemsets are held as arrays of item codes; the list of ``Itemset``
records is built on first access of ``itemsets_`` (and then kept), because on large
data creating tens of thousands of Python objects costs as much as the mining itself
and ``AssociationRules`` often needs only the rules.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from crm_core.mining import accelerator
from crm_core.mining.baskets import EncodedBaskets, encode_baskets
from crm_core.mining.errors import NoBaskets, NotFittedError
from crm_core.mining.gcpause import paused_gc
from crm_core.mining.levelwise import DEFAULT_SEARCH, Level, SearchOptions, frequent_levels
from crm_core.mining.memory import check_encoding_fits, check_search_fits
from crm_core.mining.records import Itemset
from crm_core.mining.thresholds import check_max_len, check_min_support, min_count


@dataclass(frozen=True, eq=False)
class MinedItemsets:
    """What mining leaves behind, before any record is built (shared with the rule miner)."""

    labels: tuple[Hashable, ...]
    n_baskets: int
    min_count: int
    levels: list[Level]  # levels[k - 1]: the frequent k-itemsets, as item codes
    use_c: bool = False  # whether the records and rules are built by the C accelerator too

    def label_array(self) -> np.ndarray:
        """Labels as an object array, for turning code arrays into labels in one step."""
        # Filled element by element: np.array(labels) would unpack tuple labels into columns.
        array = np.empty(len(self.labels), dtype=object)
        array[:] = self.labels
        return array


def mine_itemsets(
    baskets: Iterable[Iterable[Hashable]] | EncodedBaskets,
    min_support: float | int,
    max_len: int | None,
    options: SearchOptions = DEFAULT_SEARCH,
    max_memory_bytes: int | None = None,
) -> MinedItemsets:
    """Check the parameters, encode ``baskets`` (unless they already are) and mine all frequent itemsets.

    Refuses with a MiningMemoryError, before encoding and again before the search, when the
    estimated memory exceeds ``max_memory_bytes`` (None: what the machine has available).
    """
    check_min_support(min_support)
    check_max_len(max_len)
    use_c = accelerator.uses_c(options.engine)
    if isinstance(baskets, list):
        check_encoding_fits(baskets, max_memory_bytes)
    encoded = baskets if isinstance(baskets, EncodedBaskets) else None
    if encoded is None and use_c:
        encoded = accelerator.encode(baskets)
    if encoded is None:
        encoded = encode_baskets(baskets)  # type: ignore[arg-type]  # not EncodedBaskets: checked above
    if encoded.n_baskets == 0:
        raise NoBaskets
    threshold = min_count(min_support, encoded.n_baskets)
    # (The numpy engine's estimate; the C engine needs less, so the check stays on the safe side.)
    check_search_fits(encoded.indptr, encoded.codes, encoded.item_counts(), threshold, max_memory_bytes)
    if use_c:
        levels = accelerator.frequent_levels(encoded, threshold, max_len, options.item_order, options.projection_items)
    else:
        levels = frequent_levels(encoded, threshold, max_len, options)
    return MinedItemsets(
        labels=encoded.labels, n_baskets=encoded.n_baskets, min_count=threshold, levels=levels, use_c=use_c
    )


def search_options(estimator: Any) -> SearchOptions:
    """An estimator's tuning parameters (``FrequentItemsets`` or ``AssociationRules``), checked (raises ValueError)."""
    # The estimators keep each option under its own name (scikit-learn style).
    return SearchOptions(**{option.name: getattr(estimator, option.name) for option in fields(SearchOptions)})


def itemset_records(mined: MinedItemsets) -> list[Itemset]:
    """All itemsets as records: shortest first, then in label order."""
    if mined.use_c:
        with paused_gc():
            return accelerator.itemset_records(mined.levels, mined.labels, mined.n_baskets, Itemset)
    labels = mined.label_array()
    records: list[Itemset] = []
    with paused_gc():
        for level in mined.levels:
            items = map(tuple, labels[level.items].tolist())
            supports = (level.counts / mined.n_baskets).tolist()
            records.extend(map(Itemset._make, zip(items, level.counts.tolist(), supports)))
    return records


class FrequentItemsets:
    """Find all itemsets contained in at least ``min_support`` of the baskets.

    Parameters
    ----------
    min_support : float in (0, 1] or int >= 1
        A float is a fraction of the baskets, an int an absolute number of baskets
        (so ``1`` means "in at least one basket" and ``1.0`` "in every basket").
    max_len : int >= 1 or None
        Longest itemset to look for; None (default) for no limit.
    pair_chunk, count_span, bitset_chunk_words : int, keyword-only
        Batch sizes of the search: pairs per numpy batch (bounds the temporaries), pairs per
        counting call, bitset words per batch. Defaults measured on Groceries and T10I4D100K.
    counting : "auto", "dense" or "sparse", keyword-only
        Count candidates in a dense array or by sorting the pairs; "auto" picks per level.
    bitsets : "auto", "never" or int k, keyword-only
        Count on basket bitsets when estimated cheaper ("auto"), never, or from level k on.
    engine : "auto", "c" or "numpy", keyword-only
        The compiled C engine when it is built ("auto", the default), always ("c": ImportError
        without it) or never ("numpy"); see ``crm_core.mining.accelerator``.
    item_order : "frequency" or "label", keyword-only
        The order in which the C engine extends itemsets (rarest first by default).
    projection_items : int, keyword-only
        Most items of projected baskets the C engine builds at once per depth (4 bytes each).
    These change how the search runs, never what it finds.
    max_memory_bytes : int or None, keyword-only
        Refuse (``crm_core.mining.memory.MiningMemoryError``, a MemoryError) instead of starting
        when mining is estimated to need more; None (default): the memory available when ``fit``
        runs.

    Learned attributes (after ``fit``)
    ----------------------------------
    itemsets_ : list[Itemset]
        Shortest itemsets first, each length in label order; items inside an itemset are
        in label order too (strings alphabetically, numbers numerically).
    n_baskets_ : int
        Number of baskets seen, empty ones included (the denominator of support).
    min_count_ : int
        ``min_support`` as a basket count.

    Example
    -------
    >>> model = FrequentItemsets(min_support=2).fit([["tea", "milk"], ["tea"], ["milk", "tea"]])
    >>> [(s.items, s.count) for s in model.itemsets_]
    [(('milk',), 2), (('tea',), 3), (('milk', 'tea'), 2)]
    """

    def __init__(
        self,
        min_support: float | int,
        max_len: int | None = None,
        *,
        pair_chunk: int = DEFAULT_SEARCH.pair_chunk,
        count_span: int = DEFAULT_SEARCH.count_span,
        bitset_chunk_words: int = DEFAULT_SEARCH.bitset_chunk_words,
        counting: str = DEFAULT_SEARCH.counting,
        bitsets: str | int = DEFAULT_SEARCH.bitsets,
        engine: str = DEFAULT_SEARCH.engine,
        item_order: str = DEFAULT_SEARCH.item_order,
        projection_items: int = DEFAULT_SEARCH.projection_items,
        max_memory_bytes: int | None = None,
    ):
        self.min_support = min_support
        self.max_len = max_len
        self.pair_chunk = pair_chunk
        self.count_span = count_span
        self.bitset_chunk_words = bitset_chunk_words
        self.counting = counting
        self.bitsets = bitsets
        self.engine = engine
        self.item_order = item_order
        self.projection_items = projection_items
        self.max_memory_bytes = max_memory_bytes

    def fit(self, baskets: Iterable[Iterable[Hashable]] | EncodedBaskets) -> FrequentItemsets:
        """Mine ``baskets``, an iterable of iterables of hashable item labels (or ``EncodedBaskets``
        from ``read_encoded_baskets``); returns self."""
        mined = mine_itemsets(baskets, self.min_support, self.max_len, search_options(self), self.max_memory_bytes)
        self._mined = mined
        self._itemsets: list[Itemset] | None = None
        self.n_baskets_ = mined.n_baskets
        self.min_count_ = mined.min_count
        return self

    @property
    def itemsets_(self) -> list[Itemset]:
        mined = getattr(self, "_mined", None)
        if mined is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(baskets) first")
        if self._itemsets is None:
            self._itemsets = itemset_records(mined)
        return self._itemsets

    def __repr__(self) -> str:
        return f"{type(self).__name__}(min_support={self.min_support!r}, max_len={self.max_len!r})"
