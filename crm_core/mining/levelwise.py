"""The search for frequent itemsets: a level-wise Eclat run on whole arrays at once.

Classic Eclat walks a prefix tree one node at a time, intersecting the basket (transaction
id) sets of an itemset and of each of its right siblings. In Python the per-node overhead
dominates, so this module processes a whole level of the tree per step with a handful of
numpy calls. Candidates for level k+1 are the pairs (a, b), a < b, of level-k itemsets that
share their first k-1 items (siblings); their union is the candidate.

The basket sets of a level are held in one of two forms, chosen level by level from an
estimate of the work (``prefer_bitsets``):

*Occurrence lists* (sparse data: Groceries, T10I4D100K, shop orders). One entry per
(frequent itemset, basket) pair, grouped into *rows*: all entries of a row share the basket
and the itemsets' (k-1)-prefix, sorted by last item. (At level 1 a row is a basket's frequent
items.) Two entries of one row witness a basket holding their union. A step emits every
pair of entries inside each row, maps it to a candidate id (numbered densely class by
class), counts the ids with ``bincount``; the pairs of frequent candidates, grouped by their
first entry, are the next occurrence list. Work is proportional to the co-occurrences
present in the data, memory to the occurrence lists plus 4 bytes per pair of the level.

*Bitsets* (dense data: baskets holding a large share of the items). One row of
ceil(baskets / 64) machine words per itemset; a candidate's count is the popcount of its
parents' AND. Work is words x candidates, whatever the basket lengths, where pairs would
grow with the square of the basket length. Once a run switches to bitsets it stays there.

Item order only affects speed, not results; codes in label order were about as fast as
frequency order on Groceries and T10I4D100K, and keep every level in the lexicographic
label order we report in. Arrays are int32 where sizes allow: on these data sets that was
10-20 % faster than int64 (less memory traffic), and boolean-mask indexing is replaced by
``np.compress``, several times faster on irregular masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crm_core.mining import lean
from crm_core.mining.baskets import EncodedBaskets

COUNTING_CHOICES = ("auto", "dense", "sparse")


@dataclass(frozen=True)
class SearchOptions:
    """How the search runs (never what it finds): the estimators' tuning parameters.

    ``pair_chunk``: pairs handled per numpy batch. It bounds the temporaries (about 24 bytes
    per pair) whatever the basket lengths, and keeps a batch's arrays in the CPU cache, which
    made the whole search 10-30 % faster than batches of a million pairs.
    ``count_span``: pairs counted per ``bincount`` call (at least; see _emit_candidates).
    ``bitset_chunk_words``: bitset words ANDed per numpy batch (2 MB per temporary).
    ``counting``: ``"dense"`` counts candidates with a ``bincount`` array, ``"sparse"`` by
    sorting the pairs, ``"auto"`` picks per level (``use_dense_counts``).
    ``bitsets``: ``"auto"`` switches from occurrence lists to bitsets when that is estimated
    cheaper (``prefer_bitsets``), ``"never"`` stays on lists, and an int k counts every level
    after the k-th on bitsets.

    The options above tune this module's numpy engine; the next three choose and tune the C
    engine (``crm_core.mining.accelerator``):
    ``engine``: ``"auto"`` (C when built), ``"c"`` or ``"numpy"``.
    ``item_order``: the C search extends itemsets by ``"frequency"`` (rarest items first, as
    FP-growth orders them; a little faster on Groceries and T10I4D100K) or in ``"label"`` order.
    ``projection_items``: most items of projected baskets the C search writes at once per depth
    (4 bytes each; bigger projections are made in several passes), and the largest pair-count
    matrix it uses at the root.
    """

    pair_chunk: int = 1 << 16
    count_span: int = 1 << 20
    bitset_chunk_words: int = 1 << 18
    counting: str = "auto"
    bitsets: str | int = "auto"
    engine: str = "auto"
    item_order: str = lean.ITEM_ORDER
    projection_items: int = lean.PROJECTION_ITEMS

    def __post_init__(self) -> None:
        # (Names rather than an import: accelerator imports this module.)
        if self.engine not in ("auto", "c", "numpy"):
            raise ValueError(f"engine must be one of auto, c, numpy; got {self.engine!r}")
        if self.item_order not in ("frequency", "label"):
            raise ValueError(f"item_order must be one of frequency, label; got {self.item_order!r}")
        for name in ("pair_chunk", "count_span", "bitset_chunk_words", "projection_items"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1; got {value!r}")
        if self.counting not in COUNTING_CHOICES:
            raise ValueError(f"counting must be one of {', '.join(COUNTING_CHOICES)}; got {self.counting!r}")
        bitsets = self.bitsets
        if bitsets not in ("auto", "never") and (
            not isinstance(bitsets, int) or isinstance(bitsets, bool) or bitsets < 1
        ):
            raise ValueError(f"bitsets must be 'auto', 'never' or a level >= 1; got {bitsets!r}")


DEFAULT_SEARCH = SearchOptions()

# Below this many pairs per entry, stop carrying basket ids (needed only to build bitsets).
CARRY_MIN_PAIRS_PER_ENTRY = 2

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


@dataclass(frozen=True, eq=False)
class _Occurrences:
    """A level's occurrence list: itemset ids row after row, each row's length and basket.

    ``row_baskets`` is only kept while a switch to bitsets is plausible (see _pair_step);
    carrying it costs about 10 % of a step.
    """

    columns: np.ndarray
    row_sizes: np.ndarray
    row_baskets: np.ndarray | None


def use_dense_counts(n_candidates: int, n_pairs: int) -> bool:
    """Count with a dense ``bincount`` unless its array would be mostly zeros or huge.

    With many frequent items and few co-occurrences (a big catalogue at a low support)
    the candidate space dwarfs the pairs actually seen; sorting the pairs is then cheaper
    than allocating a counter per candidate. The absolute cap (16M candidates, 128 MB of
    counters) keeps memory tied to the pairs seen rather than to items squared.
    """
    return n_candidates <= min(4 * n_pairs + (1 << 16), 1 << 24)


def prefer_bitsets(n_candidates: int, n_pairs: int, n_entries: int, n_words: int) -> bool:
    """Whether the next step is cheaper on bitsets than on the occurrence list.

    Measured costs: about 15 ns per emitted pair; about 1 ns per word ANDed and counted plus
    30 ns per candidate; about 30 ns per entry to build the bitsets from the list. Sparse
    data stays on pairs by orders of magnitude (T10I4D100K level 1: 5M pairs against 317k
    candidates x 1,563 words); dense data switches at level 1.
    """
    return n_candidates * (n_words + 30) + 30 * n_entries < 15 * n_pairs


def _switch_to_bitsets(bitsets: str | int, k: int, n_candidates: int, n_pairs: int, n_entries: int, n_words: int):
    if bitsets == "auto":
        return prefer_bitsets(n_candidates, n_pairs, n_entries, n_words)
    return bitsets != "never" and k >= int(bitsets)


def _int_type(largest: int) -> type[np.signedinteger]:
    return np.int32 if largest < _INT32_MAX else np.int64


def frequent_levels(
    encoded: EncodedBaskets, min_count: int, max_len: int | None = None, options: SearchOptions = DEFAULT_SEARCH
) -> list[Level]:
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

    n_frequent = frequent.size
    state: _Occurrences | np.ndarray = _first_occurrences(encoded, frequent)
    n_words = (encoded.n_baskets + 63) // 64
    # All level-1 columns are siblings (children of the empty prefix).
    class_end = np.full(n_frequent, n_frequent, dtype=np.int64)

    while max_len is None or len(levels) < max_len:
        level = levels[-1]
        # Candidates are numbered class by class so that candidate ids run in the
        # lexicographic order of the (k+1)-itemsets they stand for:
        # candidate(a, b) = cand_offset[a] + (b - a - 1).
        set_ids = np.arange(len(level), dtype=np.int64)
        cand_offset = np.zeros(len(level) + 1, dtype=np.int64)
        np.cumsum(class_end - set_ids - 1, out=cand_offset[1:])
        n_candidates = int(cand_offset[-1])
        if n_candidates == 0:
            break
        if isinstance(state, _Occurrences):
            # Pairs this step would emit: the sum of r (r - 1) / 2 over the rows.
            sizes = state.row_sizes.astype(np.int64)
            n_pairs = (int(np.dot(sizes, sizes)) - state.columns.size) // 2
            if n_pairs == 0:
                break
            if state.row_baskets is not None and _switch_to_bitsets(
                options.bitsets, len(levels), n_candidates, n_pairs, state.columns.size, n_words
            ):
                state = _bitsets_from(state, len(level), n_words)
        if isinstance(state, _Occurrences):
            step = _pair_step(level, state, cand_offset, n_candidates, n_pairs, min_count, options)
        else:
            step = _bitset_step(level, state, cand_offset, n_candidates, min_count, options.bitset_chunk_words)
        if step is None:
            break
        frequent_ids, frequent_counts, state = step
        # The new itemsets: parent a plus the last item of sibling b; siblings at the next
        # level are the itemsets sharing a parent.
        parent = np.searchsorted(cand_offset, frequent_ids, side="right") - 1
        sibling = parent + 1 + (frequent_ids - cand_offset[parent])
        items = np.concatenate([level.items[parent], level.items[sibling, -1:]], axis=1)
        levels.append(Level(items=items, counts=frequent_counts))
        boundaries = np.flatnonzero(parent[1:] != parent[:-1]) + 1
        run_ends = np.append(boundaries, parent.size)
        class_end = np.repeat(run_ends, np.diff(run_ends, prepend=0))
    return levels


def _first_occurrences(encoded: EncodedBaskets, frequent: np.ndarray) -> _Occurrences:
    """Level-1 occurrence list: each basket's frequent items, as column ids 0..m-1.

    The recode preserves order, so rows stay sorted. Baskets without frequent items make no
    row. (A function of its own so that its temporaries, as large as the baskets, are freed
    before the search.)
    """
    column_of_code = np.full(encoded.n_items, -1, dtype=np.int32)
    column_of_code[frequent] = np.arange(frequent.size, dtype=np.int32)
    columns = column_of_code[encoded.codes]
    kept = columns >= 0
    kept_before = np.zeros(kept.size + 1, dtype=_int_type(kept.size))
    np.cumsum(kept, out=kept_before[1:])
    row_sizes = np.diff(kept_before[encoded.indptr])
    del kept_before
    nonempty = row_sizes > 0
    return _Occurrences(
        columns=np.compress(kept, columns),
        row_sizes=np.compress(nonempty, row_sizes),
        row_baskets=np.flatnonzero(nonempty),
    )


# --- occurrence lists ------------------------------------------------------------------------


def _pair_step(
    level: Level,
    occurrences: _Occurrences,
    cand_offset: np.ndarray,
    n_candidates: int,
    n_pairs: int,
    min_count: int,
    options: SearchOptions,
):
    """Count the candidates by pairing entries; returns (frequent ids, counts, next list) or None."""
    columns, row_sizes = occurrences.columns, occurrences.row_sizes
    n_sets = len(level)
    n_entries = columns.size
    cand_base = (cand_offset[:-1] - np.arange(1, n_sets + 1, dtype=np.int64)).astype(_int_type(n_candidates))
    # Bitsets cost 30 ns per entry to build against 15 ns per pair saved, so once rows average
    # under two pairs per entry a later switch is implausible: stop carrying the baskets.
    # (When told to switch at a given level, carry them until then.)
    carry_baskets = occurrences.row_baskets is not None and (
        n_pairs > CARRY_MIN_PAIRS_PER_ENTRY * n_entries or isinstance(options.bitsets, int)
    )

    # Each entry pairs with the entries after it in its row: give every entry its row's end
    # (and basket, in the same repeat call).
    if carry_baskets:
        assert occurrences.row_baskets is not None  # carry_baskets checked it
        entry_type = _int_type(max(n_entries, int(occurrences.row_baskets.max()) + 1))
        per_row = np.empty((row_sizes.size, 2), dtype=entry_type)
        np.cumsum(row_sizes, out=per_row[:, 0])
        per_row[:, 1] = occurrences.row_baskets
        per_entry = np.repeat(per_row, row_sizes, axis=0)
        pairs_per_entry = per_entry[:, 0] - np.arange(1, n_entries + 1, dtype=entry_type)
        entry_baskets = per_entry[:, 1].copy()  # contiguous: compressed below
        del per_entry
    else:
        entry_type = _int_type(n_entries)
        pairs_per_entry = np.repeat(np.cumsum(row_sizes, dtype=entry_type), row_sizes)
        pairs_per_entry -= np.arange(1, n_entries + 1, dtype=entry_type)
    pair_end = np.cumsum(pairs_per_entry, dtype=_int_type(n_pairs))
    chunks = _chunks(pair_end, n_pairs, options.pair_chunk)
    dense = use_dense_counts(n_candidates, n_pairs) if options.counting == "auto" else options.counting == "dense"
    candidates, counts = _emit_candidates(
        columns, pairs_per_entry, pair_end, cand_base, chunks, n_candidates, options.count_span if dense else None
    )
    frequent_ids, frequent_counts, new_column = _frequent(candidates, counts, n_candidates, min_count)
    if frequent_ids.size == 0:
        return None

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
    del candidates, pair_end, pairs_per_entry  # free before building the next list

    # Entries that paired with nothing start no row; dropping the empty rows makes the next
    # level's np.repeat over rows cheaper (its cost is per row, empty or not).
    nonempty = next_row_sizes > 0
    next_occurrences = _Occurrences(
        columns=next_columns,
        row_sizes=np.compress(nonempty, next_row_sizes),
        row_baskets=np.compress(nonempty, entry_baskets) if carry_baskets else None,
    )
    return frequent_ids, frequent_counts, next_occurrences


def _chunks(pair_end: np.ndarray, n_pairs: int, pair_chunk: int) -> list[tuple[int, int, int, int]]:
    """Split the entries into runs of about ``pair_chunk`` pairs: (entry lo, entry hi, pair lo, pair hi)."""
    if n_pairs <= pair_chunk:
        return [(0, pair_end.size, 0, n_pairs)]
    # (Same dtype on both sides: searchsorted would otherwise copy pair_end to a wider type.)
    cuts = np.searchsorted(pair_end, np.arange(pair_chunk, n_pairs, pair_chunk, dtype=pair_end.dtype), side="left") + 1
    bounds = sorted({0, *cuts.tolist(), pair_end.size})
    return [
        (lo, hi, int(pair_end[lo - 1]) if lo else 0, int(pair_end[hi - 1])) for lo, hi in zip(bounds[:-1], bounds[1:])
    ]


def _emit_candidates(columns, pairs_per_entry, pair_end, cand_base, chunks, n_candidates, count_span):
    """Candidate id of every (entry, later entry in the same row) pair, row by row.

    Returns the ids and, when counting densely (``count_span`` given), their counts, else
    None. There is at least one pair, so a dense count is never left at None.
    """
    n_pairs = int(pair_end[-1])
    cand_type = _int_type(n_candidates)
    candidates = np.empty(n_pairs, dtype=cand_type)
    dense = count_span is not None
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
        per_entry[:, 0] = cand_base[columns[lo:hi]]
        per_entry[:, 1] = np.arange(lo + 1, hi + 1, dtype=np.int64) - (pair_end[lo:hi] - run_lengths)
        per_pair = np.repeat(per_entry, run_lengths, axis=0)
        partner = np.arange(p_lo, p_hi, dtype=work_type)
        partner += per_pair[:, 1]
        np.add(per_pair[:, 0], columns[partner], out=candidates[p_lo:p_hi], casting="unsafe")
        # Count in spans of at least count_span pairs (and of the number of candidates), so
        # that bincount's per-call cost, proportional to the candidates, stays small.
        if dense and (p_hi - counted >= max(count_span, n_candidates) or p_hi == n_pairs):
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

    def searched_column(ids: np.ndarray) -> np.ndarray:
        # Only called when some candidate is frequent, so frequent_ids is not empty.
        position = np.searchsorted(frequent_ids, ids)
        position[position == frequent_ids.size] = 0
        return np.where(frequent_ids[position] == ids, position, -1)

    return frequent_ids, seen_counts[is_frequent].astype(np.int64), searched_column


# --- bitsets ---------------------------------------------------------------------------------


def _bitsets_from(occurrences: _Occurrences, n_sets: int, n_words: int) -> np.ndarray:
    """The (n_sets, n_words) uint64 bitsets of the itemsets in an occurrence list."""
    assert occurrences.row_baskets is not None, "called only while the occurrence list carries its baskets"
    baskets = np.repeat(occurrences.row_baskets.astype(np.int64), occurrences.row_sizes)
    bits = np.zeros(n_sets * n_words, dtype=np.uint64)
    # Each (itemset, basket) bit is set once, so OR-ing them in is exact.
    np.bitwise_or.at(
        bits,
        occurrences.columns.astype(np.int64) * n_words + (baskets >> 6),
        np.left_shift(np.uint64(1), (baskets & 63).astype(np.uint64)),
    )
    return bits.reshape(n_sets, n_words)


def _bitset_step(
    level: Level, bits: np.ndarray, cand_offset: np.ndarray, n_candidates: int, min_count: int, chunk_words: int
):
    """Count the candidates by AND + popcount; returns (frequent ids, counts, next bitsets) or None."""
    n_words = bits.shape[1]
    batch = max(1, chunk_words // n_words)
    found_ids, found_counts, found_bits = [], [], []
    for c_lo in range(0, n_candidates, batch):
        ids = np.arange(c_lo, min(n_candidates, c_lo + batch), dtype=np.int64)
        first = np.searchsorted(cand_offset, ids, side="right") - 1
        second = first + 1 + (ids - cand_offset[first])
        both = np.take(bits, first, axis=0)
        both &= np.take(bits, second, axis=0)
        counts = _row_popcounts(both)
        keep = np.flatnonzero(counts >= min_count)
        if keep.size:
            found_ids.append(ids[keep])
            found_counts.append(counts[keep])
            found_bits.append(np.take(both, keep, axis=0))
    if not found_ids:
        return None
    return np.concatenate(found_ids), np.concatenate(found_counts), np.concatenate(found_bits)


# Bits set in each byte value, for numpy < 2.0 (no np.bitwise_count).
_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")


def _row_popcounts(words: np.ndarray, bitwise_count: bool = _HAS_BITWISE_COUNT) -> np.ndarray:
    """Number of set bits in each row of a 2-D uint64 array (int64)."""
    per_cell = np.bitwise_count(words) if bitwise_count else _BYTE_POPCOUNT[words.view(np.uint8)]
    if per_cell.shape[1] <= 8:
        total = per_cell[:, 0].astype(np.int64)
        for column in range(1, per_cell.shape[1]):
            total += per_cell[:, column]
        return total
    # A matrix-vector product sums the rows fastest; float32 adds integers exactly while the
    # total stays below 2**24 (at most 64 bits per word).
    dtype = np.float32 if words.shape[1] * 64 < 1 << 24 else np.float64
    return (per_cell.astype(dtype) @ np.ones(per_cell.shape[1], dtype=dtype)).astype(np.int64)
