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
in the data (what FP-growth and Eclat pay too). Pairs are handled in chunks of
``PAIR_CHUNK``, so memory is the occurrence lists plus 4 bytes per pair of the current
level plus one chunk of temporaries; there is no baskets x items matrix.

Item order only affects speed, not results; codes in label order were about as fast as
frequency order on Groceries and T10I4D100K, and keep every level in the lexicographic
label order we report in. Arrays are int32 where sizes allow: on these data sets that was
10-20 % faster than int64 (less memory traffic), and boolean-mask indexing is replaced by
``np.compress``, several times faster on irregular masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crm_core.mining.baskets import EncodedBaskets

# Pairs handled per numpy batch: bounds the temporaries (about 24 bytes per pair) whatever
# the basket lengths, and keeps a batch's arrays in the CPU cache, which made the whole
# search 10-30 % faster than batches of a million pairs.
PAIR_CHUNK = 1 << 16
# Pairs counted per bincount call (at least; see _emit_candidates).
COUNT_SPAN = 1 << 20

_INT32_MAX = np.iinfo(np.int32).max


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


def use_dense_counts(n_candidates: int, n_pairs: int) -> bool:
    """Count with a dense ``bincount`` unless its array would be mostly zeros or huge.

    With many frequent items and few co-occurrences (a big catalogue at a low support)
    the candidate space dwarfs the pairs actually seen; sorting the pairs is then cheaper
    than allocating a counter per candidate. The absolute cap (16M candidates, 128 MB of
    counters) keeps memory tied to the pairs seen rather than to items squared.
    """
    return n_candidates <= min(4 * n_pairs + (1 << 16), 1 << 24)


def _int_type(largest: int) -> type[np.signedinteger]:
    return np.int32 if largest < _INT32_MAX else np.int64


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
    columns = np.compress(kept, columns)
    # All level-1 columns are siblings (children of the empty prefix).
    class_end = np.full(n_frequent, n_frequent, dtype=np.int64)

    while max_len is None or len(levels) < max_len:
        step = _next_level(levels[-1], columns, row_sizes, class_end, min_count)
        if step is None:
            break
        level, columns, row_sizes, class_end = step
        levels.append(level)
    return levels


def _next_level(level: Level, columns: np.ndarray, row_sizes: np.ndarray, class_end: np.ndarray, min_count: int):
    """One level-wise step; returns (next level, its occurrence list, class ends) or None.

    ``columns`` holds the entries' itemset ids row after row, ``row_sizes`` the row lengths.
    """
    n_sets = len(level)
    set_ids = np.arange(n_sets, dtype=np.int64)
    # Candidates are the pairs (a, b), a < b, of siblings; number them class by class so that
    # candidate ids run in the lexicographic order of the (k+1)-itemsets they stand for.
    cand_offset = np.zeros(n_sets + 1, dtype=np.int64)
    np.cumsum(class_end - set_ids - 1, out=cand_offset[1:])
    n_candidates = int(cand_offset[-1])
    n_entries = columns.size
    if n_candidates == 0 or n_entries == 0:
        return None
    # candidate(a, b) = cand_offset[a] + (b - a - 1) = cand_base[a] + b
    cand_base = (cand_offset[:-1] - set_ids - 1).astype(_int_type(n_candidates))

    # Each entry pairs with the entries after it in its row.
    entry_type = _int_type(n_entries)
    pairs_per_entry = np.repeat(np.cumsum(row_sizes, dtype=entry_type), row_sizes)  # row ends
    pairs_per_entry -= np.arange(1, n_entries + 1, dtype=entry_type)
    pair_end = np.cumsum(pairs_per_entry, dtype=np.int64)
    n_pairs = int(pair_end[-1])
    if n_pairs == 0:
        return None
    if n_pairs < _INT32_MAX:
        pair_end = pair_end.astype(np.int32)
    chunks = _chunks(pair_end, n_pairs)

    candidates, counts = _emit_candidates(columns, pairs_per_entry, pair_end, cand_base[columns], chunks, n_candidates)
    frequent_ids, frequent_counts, new_column = _frequent(candidates, counts, n_candidates, min_count)
    if frequent_ids.size == 0:
        return None

    # The new itemsets: parent a plus the last item of sibling b.
    parent = np.searchsorted(cand_offset, frequent_ids, side="right") - 1
    sibling = parent + 1 + (frequent_ids - cand_offset[parent])
    items = np.concatenate([level.items[parent], level.items[sibling, -1:]], axis=1)
    next_level = Level(items=items, counts=frequent_counts)

    # Next occurrence list: the surviving pairs, grouped by their first entry (they were
    # emitted in that order), one row per first entry. There are exactly as many as the
    # frequent candidates' counts add up to.
    next_columns = np.empty(int(frequent_counts.sum()), dtype=_int_type(len(frequent_ids)))
    next_row_sizes = np.empty(n_entries, dtype=entry_type)
    written = 0
    for lo, hi, p_lo, p_hi in chunks:
        new_columns = new_column(candidates[p_lo:p_hi])
        survives = new_columns >= 0
        survived_before = np.zeros(p_hi - p_lo + 1, dtype=np.int32)
        np.cumsum(survives, out=survived_before[1:])
        local_end = pair_end[lo:hi] - p_lo
        next_row_sizes[lo:hi] = survived_before[local_end] - survived_before[local_end - pairs_per_entry[lo:hi]]
        n_survivors = int(survived_before[-1])
        # np.compress: boolean-mask indexing is several times slower on irregular masks.
        np.compress(survives, new_columns, out=next_columns[written : written + n_survivors])
        written += n_survivors

    # Entries that paired with nothing start no row; dropping the empty rows here makes the
    # next level's np.repeat over rows cheaper (its cost is per row, empty or not).
    next_row_sizes = np.compress(next_row_sizes > 0, next_row_sizes)

    # Siblings at the next level are the itemsets sharing a parent.
    boundaries = np.flatnonzero(parent[1:] != parent[:-1]) + 1
    run_ends = np.append(boundaries, parent.size)
    next_class_end = np.repeat(run_ends, np.diff(run_ends, prepend=0))
    return next_level, next_columns, next_row_sizes, next_class_end


def _chunks(pair_end: np.ndarray, n_pairs: int) -> list[tuple[int, int, int, int]]:
    """Split the entries into runs of about PAIR_CHUNK pairs: (entry lo, entry hi, pair lo, pair hi)."""
    if n_pairs <= PAIR_CHUNK:
        return [(0, pair_end.size, 0, n_pairs)]
    cuts = np.searchsorted(pair_end, np.arange(PAIR_CHUNK, n_pairs, PAIR_CHUNK), side="left") + 1
    bounds = sorted({0, *cuts.tolist(), pair_end.size})
    return [(lo, hi, int(pair_end[lo - 1]) if lo else 0, int(pair_end[hi - 1])) for lo, hi in zip(bounds[:-1], bounds[1:])]


def _emit_candidates(columns, pairs_per_entry, pair_end, base_of_entry, chunks, n_candidates):
    """Candidate id of every (entry, later entry in the same row) pair, row by row.

    Returns the ids and, when dense counting applies, their counts, else None. There is at
    least one pair, so a dense count is never left at None.
    """
    n_pairs = int(pair_end[-1])
    cand_type = _int_type(n_candidates)
    candidates = np.empty(n_pairs, dtype=cand_type)
    dense = use_dense_counts(n_candidates, n_pairs)
    counts = None
    work_type = np.promote_types(_int_type(columns.size + 1), cand_type)
    counted = 0
    for lo, hi, p_lo, p_hi in chunks:
        if p_lo == p_hi:
            continue
        # Entry e pairs with partners e + 1, e + 2, ... up to the end of its row; its run of
        # pairs starts at pair_end[e] - pairs_per_entry[e], so the partner of pair p is
        # p + (e + 1 - run start). The candidate is cand_base[column of e] + partner's column.
        # Both per-entry values are repeated in one call: a two-column repeat costs about
        # the same as a one-column one.
        run_lengths = pairs_per_entry[lo:hi]
        per_entry = np.empty((hi - lo, 2), dtype=work_type)
        per_entry[:, 0] = base_of_entry[lo:hi]
        per_entry[:, 1] = np.arange(lo + 1, hi + 1, dtype=np.int64) - (pair_end[lo:hi] - run_lengths)
        per_pair = np.repeat(per_entry, run_lengths, axis=0)
        partner = np.arange(p_lo, p_hi, dtype=work_type)
        partner += per_pair[:, 1]
        np.add(per_pair[:, 0], columns[partner], out=candidates[p_lo:p_hi], casting="unsafe")
        # Count in spans of at least COUNT_SPAN pairs (and of the number of candidates), so
        # that bincount's per-call cost, proportional to the candidates, stays small.
        if dense and (p_hi - counted >= max(COUNT_SPAN, n_candidates) or p_hi == n_pairs):
            span_counts = np.bincount(candidates[counted:p_hi], minlength=n_candidates)
            counts = span_counts if counts is None else counts + span_counts
            counted = p_hi
    return candidates, counts


def _frequent(candidates: np.ndarray, counts: np.ndarray | None, n_candidates: int, min_count: int):
    """Frequent candidate ids, their counts, and a mapper from candidate id to new column (-1: none)."""
    if counts is not None:
        frequent_ids = np.flatnonzero(counts >= min_count)
        column = np.full(n_candidates, -1, dtype=_int_type(frequent_ids.size))
        column[frequent_ids] = np.arange(frequent_ids.size, dtype=column.dtype)

        def new_column(ids: np.ndarray) -> np.ndarray:
            return column[ids]

        return frequent_ids, counts[frequent_ids], new_column

    seen, seen_counts = np.unique(candidates, return_counts=True)
    is_frequent = seen_counts >= min_count
    frequent_ids = seen[is_frequent].astype(np.int64)

    def new_column(ids: np.ndarray) -> np.ndarray:
        # Only called when some candidate is frequent, so frequent_ids is not empty.
        position = np.searchsorted(frequent_ids, ids)
        position[position == frequent_ids.size] = 0
        return np.where(frequent_ids[position] == ids, position, -1)

    return frequent_ids, seen_counts[is_frequent].astype(np.int64), new_column
