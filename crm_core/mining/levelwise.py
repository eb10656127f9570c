"""The search for frequent itemsets: a level-wise Eclat run on whole arrays at once.

Classic Eclat walks a prefix tree one node at a time, intersecting the transaction-id list
of an itemset with those of its right siblings. In Python the per-node overhead dominates,
so this module processes a whole level of the tree per step with a handful of numpy calls.

State carried from level k to level k+1 is an *occurrence list*: one entry per (frequent
k-itemset, basket) pair, grouped into *rows*. All entries of a row share the basket and the
itemset's (k-1)-prefix, and are sorted by the itemset's last item. (At level 1 a row is
simply a basket's frequent items.) Two entries of the same row witness one basket that
contains the union of their itemsets, a (k+1)-itemset. So one step is:

1. emit every pair of entries inside each row and map it to a candidate id
   (candidates are numbered densely, per equivalence class of siblings);
2. count the candidates with ``bincount`` and keep the frequent ones;
3. the surviving pairs, grouped by their first entry, are the next occurrence list.

The work is proportional to the number of pairs, i.e. to the co-occurrences actually present
in the data (what FP-growth and Eclat pay too), and the memory to the occurrence lists plus
one chunk of pairs. There is no baskets x items matrix. Item order only affects speed, not
results; codes in label order were as fast as frequency order on Groceries and T10I4D100K,
and keep every level in the lexicographic label order we report in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crm_core.mining.baskets import EncodedBaskets

# Pairs emitted per numpy batch. Bounds the temporaries to a few tens of MB whatever the
# basket lengths are; the candidate ids themselves are kept for the whole level.
PAIR_CHUNK = 1 << 22


def use_dense_counts(n_candidates: int, n_pairs: int) -> bool:
    """Count with a dense ``bincount`` unless its array would be mostly zeros.

    With many frequent items and few co-occurrences (a big catalogue at a low support)
    the candidate space dwarfs the pairs actually seen; sorting the pairs is then cheaper
    than allocating a counter per candidate.
    """
    return n_candidates <= 4 * n_pairs + (1 << 16)


@dataclass(frozen=True, eq=False)
class Level:
    """The frequent itemsets of one length ``k``.

    ``items`` is an (n, k) array of item codes, each row increasing and the rows in
    lexicographic order; ``counts`` the number of baskets containing each itemset.
    """

    items: np.ndarray
    counts: np.ndarray

    def __len__(self) -> int:
        return len(self.counts)


def _index_dtype(largest: int) -> type[np.signedinteger]:
    return np.int32 if largest < np.iinfo(np.int32).max else np.int64


def frequent_levels(encoded: EncodedBaskets, min_count: int, max_len: int | None = None) -> list[Level]:
    """All itemsets contained in at least ``min_count`` baskets, one ``Level`` per length.

    ``levels[k - 1]`` holds the k-itemsets; lengths above ``max_len`` are not searched.
    """
    item_counts = encoded.item_counts()
    frequent = np.flatnonzero(item_counts >= min_count)
    if frequent.size == 0:
        return []
    levels = [Level(items=frequent.astype(np.int32)[:, None], counts=item_counts[frequent])]
    if max_len == 1 or frequent.size == 1:
        return levels

    # Level-1 occurrence list: each basket's frequent items, as column ids 0..m-1. The recode
    # preserves order, so rows stay sorted.
    n_frequent = frequent.size
    column_of_code = np.full(encoded.n_items, -1, dtype=np.int32)
    column_of_code[frequent] = np.arange(n_frequent, dtype=np.int32)
    columns = column_of_code[encoded.codes]
    kept = columns >= 0
    kept_before = np.zeros(kept.size + 1, dtype=np.int64)
    np.cumsum(kept, out=kept_before[1:])
    row_sizes = np.diff(kept_before[encoded.indptr])
    columns = columns[kept]
    # All level-1 columns are siblings (children of the empty prefix).
    class_end = np.full(n_frequent, n_frequent, dtype=np.int64)

    k = 1
    while max_len is None or k < max_len:
        step = _next_level(levels[-1], columns, row_sizes, class_end, min_count)
        if step is None:
            break
        level, columns, row_sizes, class_end = step
        levels.append(level)
        k += 1
    return levels


def _next_level(level: Level, columns: np.ndarray, row_sizes: np.ndarray, class_end: np.ndarray, min_count: int):
    """One level-wise step; returns (next level, its occurrence list, class ends) or None."""
    n_sets = len(level)
    set_ids = np.arange(n_sets, dtype=np.int64)
    # Candidates are the pairs (a, b), a < b, of siblings; number them class by class so that
    # candidate ids run in the lexicographic order of the (k+1)-itemsets they stand for.
    n_ext = class_end - set_ids - 1
    cand_offset = np.zeros(n_sets + 1, dtype=np.int64)
    np.cumsum(n_ext, out=cand_offset[1:])
    n_candidates = int(cand_offset[-1])
    if n_candidates == 0 or columns.size == 0:
        return None
    cand_dtype = _index_dtype(n_candidates)
    # candidate(a, b) = cand_offset[a] + (b - a - 1) = cand_base[a] + b
    cand_base = (cand_offset[:-1] - set_ids - 1).astype(cand_dtype)

    # Each entry pairs with the entries after it in its row.
    n_entries = columns.size
    row_end = np.repeat(np.cumsum(row_sizes), row_sizes)
    pairs_per_entry = row_end - np.arange(n_entries, dtype=np.int64) - 1
    pair_end = np.cumsum(pairs_per_entry)
    n_pairs = int(pair_end[-1]) if n_entries else 0
    if n_pairs == 0:
        return None
    candidates = _emit_candidates(columns, pairs_per_entry, pair_end, cand_base, cand_dtype, n_pairs)

    frequent_ids, frequent_counts, new_column = _count(candidates, n_candidates, min_count)
    if frequent_ids.size == 0:
        return None

    # The new itemsets: parent a plus the last item of sibling b.
    parent = np.searchsorted(cand_offset, frequent_ids, side="right") - 1
    sibling = parent + 1 + (frequent_ids - cand_offset[parent])
    items = np.concatenate([level.items[parent], level.items[sibling, -1:]], axis=1)
    next_level = Level(items=items, counts=frequent_counts)

    # Next occurrence list: surviving pairs, grouped by their first entry (already so ordered).
    new_columns = new_column(candidates)
    survives = new_columns >= 0
    survived_before = np.zeros(n_pairs + 1, dtype=np.int64)
    np.cumsum(survives, out=survived_before[1:])
    next_row_sizes = survived_before[pair_end] - survived_before[pair_end - pairs_per_entry]
    next_columns = new_columns[survives]

    # Siblings at the next level are the itemsets sharing a parent.
    boundaries = np.flatnonzero(parent[1:] != parent[:-1]) + 1
    run_ends = np.append(boundaries, parent.size)
    next_class_end = np.repeat(run_ends, np.diff(run_ends, prepend=0))
    return next_level, next_columns, next_row_sizes, next_class_end


def _emit_candidates(columns, pairs_per_entry, pair_end, cand_base, cand_dtype, n_pairs) -> np.ndarray:
    """Candidate id of every (entry, later entry in the same row) pair, row by row."""
    pair_dtype = _index_dtype(n_pairs + columns.size)
    candidates = np.empty(n_pairs, dtype=cand_dtype)
    pair_start = pair_end - pairs_per_entry
    base_of_entry = cand_base[columns]
    n_entries = columns.size
    # Split the entries into chunks of about PAIR_CHUNK pairs (one chunk on small data).
    cuts = np.searchsorted(pair_end, np.arange(PAIR_CHUNK, n_pairs, PAIR_CHUNK), side="left") + 1
    bounds = [0, *cuts.tolist(), n_entries]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        if lo >= hi:
            continue
        p_lo, p_hi = int(pair_start[lo]), int(pair_end[hi - 1])
        if p_lo == p_hi:
            continue
        counts = pairs_per_entry[lo:hi]
        # Partner of pair p emitted by entry e is entry e + 1 + (p - pair_start[e]).
        shift = (np.arange(lo, hi, dtype=np.int64) + 1 - pair_start[lo:hi]).astype(pair_dtype)
        partner = np.arange(p_lo, p_hi, dtype=pair_dtype)
        partner += np.repeat(shift, counts)
        np.add(np.repeat(base_of_entry[lo:hi], counts), columns[partner], out=candidates[p_lo:p_hi])
    return candidates


def _count(candidates: np.ndarray, n_candidates: int, min_count: int):
    """Count candidate ids; return (frequent ids, their counts, id -> new column mapper)."""
    if use_dense_counts(n_candidates, candidates.size):
        counts = np.bincount(candidates, minlength=n_candidates)
        is_frequent = counts >= min_count
        frequent_ids = np.flatnonzero(is_frequent)
        column = np.full(n_candidates, -1, dtype=np.int32 if frequent_ids.size < 2**31 else np.int64)
        column[frequent_ids] = np.arange(frequent_ids.size, dtype=column.dtype)

        def new_column(ids: np.ndarray) -> np.ndarray:
            return column[ids]

        return frequent_ids, counts[frequent_ids].astype(np.int64), new_column

    seen, counts = np.unique(candidates, return_counts=True)
    is_frequent = counts >= min_count
    frequent_ids = seen[is_frequent].astype(np.int64)

    def new_column(ids: np.ndarray) -> np.ndarray:
        # Only called when some candidate is frequent, so frequent_ids is not empty.
        position = np.searchsorted(frequent_ids, ids)
        position[position == frequent_ids.size] = 0
        return np.where(frequent_ids[position] == ids, position, -1)

    return frequent_ids, counts[is_frequent].astype(np.int64), new_column
