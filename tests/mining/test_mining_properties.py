"""Property tests: on small random baskets, results equal brute-force enumeration exactly."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mining_reference import ENGINES, brute_force_counts, brute_force_min_count, brute_force_rules

from crm_core.mining import AssociationRules, FrequentItemsets

# derandomize: the same examples on every run, so CI failures reproduce.
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

items = st.sampled_from(["a", "b", "c", "d", "e", "f", "g"]) | st.integers(0, 2).map(lambda i: f"x{i}")
baskets_strategy = st.lists(st.lists(items, max_size=7), min_size=1, max_size=25)  # duplicates allowed
min_support_strategy = st.integers(1, 5) | st.sampled_from([0.05, 0.1, 0.2, 0.25, 0.3, 1 / 3, 0.5, 0.7, 1.0])
confidence_strategy = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.6, 2 / 3, 0.75, 0.8, 1.0])
max_len_strategy = st.none() | st.integers(1, 4)


@pytest.mark.parametrize("engine", ENGINES)
@PROPERTY_SETTINGS
@given(baskets=baskets_strategy, min_support=min_support_strategy, max_len=max_len_strategy)
def test_itemsets_are_exactly_the_frequent_ones(engine, baskets, min_support, max_len):
    model = FrequentItemsets(min_support, max_len=max_len, engine=engine).fit(baskets)
    n = len(baskets)
    threshold = brute_force_min_count(min_support, n)
    truth = {s: c for s, c in brute_force_counts(baskets, max_len).items() if c >= threshold}

    found = {frozenset(s.items): s for s in model.itemsets_}
    assert len(found) == len(model.itemsets_)  # no itemset reported twice
    assert found.keys() == truth.keys()  # none missing, none extra
    for key, itemset in found.items():
        assert itemset.count == truth[key]
        assert itemset.support == truth[key] / n
        assert list(itemset.items) == sorted(itemset.items)
    assert model.min_count_ == threshold
    assert model.n_baskets_ == n
    # Shortest first, then in label order.
    assert model.itemsets_ == sorted(model.itemsets_, key=lambda s: (len(s.items), s.items))


@pytest.mark.parametrize("engine", ENGINES)
@PROPERTY_SETTINGS
@given(
    baskets=baskets_strategy,
    min_support=min_support_strategy,
    min_confidence=confidence_strategy,
    min_lift=st.none() | st.sampled_from([0.5, 1.0, 1.25, 2.0]),
    max_len=max_len_strategy,
)
def test_rules_are_exactly_those_meeting_the_thresholds(
    engine, baskets, min_support, min_confidence, min_lift, max_len
):
    model = AssociationRules(min_support, min_confidence, min_lift=min_lift, max_len=max_len, engine=engine)
    model.fit(baskets)
    n = len(baskets)
    threshold = brute_force_min_count(min_support, n)
    counts = brute_force_counts(baskets, max_len)
    truth = brute_force_rules(counts, n, threshold, min_confidence, min_lift)

    found = {(frozenset(r.antecedent), r.consequent): r for r in model.rules_}
    assert len(found) == len(model.rules_)
    assert found.keys() == truth.keys()
    for key, rule in found.items():
        count, ante_count, cons_count = truth[key]
        assert rule.count == count
        assert rule.support == count / n
        assert rule.confidence == count / ante_count
        assert rule.lift == pytest.approx(float(Fraction(count * n, ante_count * cons_count)), rel=1e-12)
        assert rule.consequent not in rule.antecedent
        assert list(rule.antecedent) == sorted(rule.antecedent)
    assert model.rules_ == sorted(model.rules_, key=lambda r: (len(r.antecedent), r.antecedent, r.consequent))


@pytest.mark.parametrize("engine", ENGINES)
@PROPERTY_SETTINGS
@given(baskets=baskets_strategy, min_support=min_support_strategy, seed=st.randoms(use_true_random=False))
def test_results_do_not_depend_on_basket_or_item_order(engine, baskets, min_support, seed):
    shuffled = [list(b) for b in baskets]
    seed.shuffle(shuffled)
    for basket in shuffled:
        seed.shuffle(basket)
    first = AssociationRules(min_support, 0.5, engine=engine).fit(baskets)
    second = AssociationRules(min_support, 0.5, engine=engine).fit(shuffled)
    assert first.itemsets_ == second.itemsets_
    assert first.rules_ == second.rules_


@PROPERTY_SETTINGS
@given(baskets=baskets_strategy, min_support=st.integers(1, 3), chunk=st.integers(1, 9))
def test_chunked_emission_and_sparse_counting_give_the_same_itemsets(baskets, min_support, chunk):
    # Real data only reaches these paths when it is large; force them on small data.
    expected = FrequentItemsets(min_support, engine="numpy").fit(baskets).itemsets_
    for counting in ("sparse", "dense"):
        chunked = FrequentItemsets(min_support, pair_chunk=chunk, count_span=chunk, counting=counting, engine="numpy")
        assert chunked.fit(baskets).itemsets_ == expected
    truth = {s: c for s, c in brute_force_counts(baskets).items() if c >= min_support}
    assert {frozenset(s.items): s.count for s in expected} == truth


@PROPERTY_SETTINGS
@given(baskets=baskets_strategy, min_confidence=confidence_strategy)
def test_rules_are_the_same_with_byte_string_search_keys(baskets, min_confidence):
    # Antecedent lookups pack short itemsets into one integer; long ones (many items, many
    # labels) fall back to byte-string keys. Force the fallback on small data.
    expected = AssociationRules(1, min_confidence, engine="numpy").fit(baskets).rules_
    assert AssociationRules(1, min_confidence, packed_keys=False, engine="numpy").fit(baskets).rules_ == expected


@PROPERTY_SETTINGS
@given(baskets=baskets_strategy, min_support=st.integers(1, 3), switch_at=st.integers(1, 3))
def test_bitset_counting_gives_the_same_itemsets(baskets, min_support, switch_at):
    # Dense data is counted on bitsets, from the level where that is estimated cheaper
    # (sparse data never switches). Force the switch after level 1, 2 or 3, and forbid it.
    from unittest.mock import patch

    from crm_core.mining import levelwise

    expected = FrequentItemsets(min_support, engine="numpy").fit(baskets).itemsets_
    with patch.object(levelwise, "_bitset_step", wraps=levelwise._bitset_step) as bitset_step:
        assert FrequentItemsets(min_support, bitsets=switch_at, engine="numpy").fit(baskets).itemsets_ == expected
    # Counted on bitsets whenever the search went past level switch_at.
    assert bitset_step.called or max((len(s.items) for s in expected), default=0) <= switch_at
    assert FrequentItemsets(min_support, bitsets="never", engine="numpy").fit(baskets).itemsets_ == expected
    small_batches = FrequentItemsets(min_support, bitsets=switch_at, bitset_chunk_words=1, engine="numpy")
    assert small_batches.fit(baskets).itemsets_ == expected


def test_row_popcounts_with_and_without_np_bitwise_count():
    import numpy as np

    from crm_core.mining.levelwise import _row_popcounts

    rng = np.random.default_rng(7)
    for n_words in (1, 3, 8, 9, 40):
        words = rng.integers(0, 2**63, size=(25, n_words), dtype=np.int64).view(np.uint64)
        words[0] = np.iinfo(np.uint64).max
        expected = [sum(bin(int(w)).count("1") for w in row) for row in words]
        assert _row_popcounts(words, bitwise_count=False).tolist() == expected
        if hasattr(np, "bitwise_count"):
            assert _row_popcounts(words, bitwise_count=True).tolist() == expected


# Bytes a basket file may hold: item characters, separators, padding, blank lines, numbers
# with and without leading zeros, and the odd character that sends the reader down its
# general path (a quote, a non-ASCII letter, a carriage return).
file_text_strategy = st.lists(
    st.sampled_from(["a", "b", "tea", "7", "07", "10", "9", " ", "  ", ",", "\n", "\n\n", "\t", '"', "é", "\r\n"]),
    min_size=1,
    max_size=40,
).map("".join)


@PROPERTY_SETTINGS
@given(text=file_text_strategy, sep=st.sampled_from([None, ",", ""]), binary=st.booleans())
def test_array_reader_encodes_a_file_as_the_list_reader_does(text, sep, binary):
    import io

    import numpy as np

    from crm_core.mining.baskets import encode_baskets, read_baskets, read_encoded_baskets

    def source():
        return io.BytesIO(text.encode("utf-8")) if binary else io.StringIO(text)

    try:
        expected = encode_baskets(read_baskets(source(), sep=sep))
    except ValueError:
        with pytest.raises(ValueError):
            FrequentItemsets(1).fit(read_encoded_baskets(source(), sep=sep))
        return
    got = read_encoded_baskets(source(), sep=sep)
    assert got.labels == expected.labels
    assert np.array_equal(got.indptr, expected.indptr) and np.array_equal(got.codes, expected.codes)


string_items = st.sampled_from(["", "a", "b", "é", "中", "7", "07", "10", "9", "a\x1fb", "x\x00", "tea"])


@PROPERTY_SETTINGS
@given(baskets=st.lists(st.lists(string_items, max_size=6), min_size=1, max_size=12))
def test_string_items_are_encoded_in_string_order(baskets):
    # String items are ranked from their joined UTF-8 bytes (or one by one when an item holds
    # the joiner or a NUL); either way labels come in Python's string order.
    from crm_core.mining.baskets import encode_baskets

    encoded = encode_baskets(baskets)
    assert list(encoded.labels) == sorted({item for basket in baskets for item in basket})
    decoded = [
        [encoded.labels[code] for code in encoded.codes[lo:hi]]
        for lo, hi in zip(encoded.indptr[:-1], encoded.indptr[1:])
    ]
    assert decoded == [sorted(set(basket)) for basket in baskets]
