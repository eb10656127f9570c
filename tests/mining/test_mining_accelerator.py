"""The C accelerator (crm_core/mining/_fastmine.c): built where it can be, identical to the numpy engine
and to brute force, safe with bad input and in threads."""

from __future__ import annotations

import shutil
import sysconfig
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mining_reference import brute_force_counts, brute_force_min_count, brute_force_rules

from crm_core.mining import AssociationRules, FrequentItemsets, accelerator

needs_c = pytest.mark.skipif(not accelerator.available(), reason="the C accelerator is not built")


def test_the_accelerator_is_built_where_there_is_a_compiler():
    # `pip install -e .` (make venv) builds it; a silent fallback to numpy here would be a broken build.
    has_compiler = shutil.which("cc") or shutil.which("gcc")
    has_headers = (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file()
    if not (has_compiler and has_headers):
        pytest.skip("no C compiler or Python headers: the numpy engine is the expected fallback")
    assert accelerator.available(), "crm_core.mining._fastmine is missing: run `pip install -e .` (or make venv)"


# Items of both kinds the C encoder takes (strings, ints up to 2**62) and one it leaves to the
# general encoder (a float), so both encoders meet the search.
wide_items = (
    st.sampled_from(["a", "b", "c", "d", "e", "f"])
    | st.sampled_from([0, 7, 2**31, 2**62, -5])
    | st.sampled_from([1.5, ("t", 1)])
)
baskets_strategy = st.lists(
    st.lists(wide_items, max_size=8).map(lambda b: b if len(b) % 3 else tuple(b)), min_size=1, max_size=30
)


@needs_c
@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    baskets=baskets_strategy,
    min_support=st.integers(1, 4) | st.sampled_from([0.1, 0.25, 0.5, 1.0]),
    min_confidence=st.sampled_from([0.0, 0.5, 2 / 3, 0.8, 1.0]),
    min_lift=st.none() | st.sampled_from([1.0, 1.5]),
    max_len=st.none() | st.integers(1, 4),
    allow_empty_antecedent=st.booleans(),
    item_order=st.sampled_from(["frequency", "label"]),
    projection_items=st.sampled_from([1, 2, 5, 1 << 20]),
)
def test_c_engine_equals_the_numpy_engine_and_brute_force(
    baskets, min_support, min_confidence, min_lift, max_len, allow_empty_antecedent, item_order, projection_items
):
    # projection_items=1 makes the search project one child at a time and skip the pair matrix.
    common = dict(min_lift=min_lift, max_len=max_len, allow_empty_antecedent=allow_empty_antecedent)
    fast = AssociationRules(
        min_support, min_confidence, engine="c", item_order=item_order, projection_items=projection_items, **common
    ).fit(baskets)
    slow = AssociationRules(min_support, min_confidence, engine="numpy", **common).fit(baskets)
    assert fast.itemsets_ == slow.itemsets_
    assert fast.rules_ == slow.rules_

    n = len(baskets)
    threshold = brute_force_min_count(min_support, n)
    counts = brute_force_counts(baskets, max_len)
    assert {frozenset(s.items): s.count for s in fast.itemsets_} == {s: c for s, c in counts.items() if c >= threshold}
    truth = brute_force_rules(counts, n, threshold, min_confidence, min_lift)
    assert {(frozenset(r.antecedent), r.consequent) for r in fast.rules_ if r.antecedent} == truth.keys()


@needs_c
@pytest.mark.parametrize(
    ("baskets", "min_support", "max_len", "expected_itemsets"),
    [
        ([[], [], []], 1, None, 0),  # only empty baskets: nothing frequent
        ([["a", "b"], ["a", "b"]], 3, None, 0),  # a count above the number of baskets
        ([["a", "b", "c"]] * 3, 1, 1, 3),  # max_len 1: single items only, so no rules
        ([["a", "b", "c"]], 1, None, 7),  # one basket: every non-empty subset
        ([[2**62, -(2**62)], [2**62]], 1, None, 3),  # huge item ids are labels, not indexes
    ],
)
def test_edge_cases_match_the_numpy_engine(baskets, min_support, max_len, expected_itemsets):
    fast = AssociationRules(min_support, 0.0, max_len=max_len, engine="c").fit(baskets)
    slow = AssociationRules(min_support, 0.0, max_len=max_len, engine="numpy").fit(baskets)
    assert len(fast.itemsets_) == expected_itemsets
    assert fast.itemsets_ == slow.itemsets_ and fast.rules_ == slow.rules_


@needs_c
def test_fits_in_threads_give_the_same_results(groceries):
    # The search runs without the GIL (the web process may mine in a thread); concurrent fits share nothing.
    expected = AssociationRules(0.002, 0.5, engine="c").fit(groceries).rules_
    results: list = [None] * 4

    def fit(slot: int) -> None:
        results[slot] = AssociationRules(0.002, 0.5, engine="c").fit(groceries).rules_

    threads = [threading.Thread(target=fit, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result == expected for result in results) and len(expected) > 100


@needs_c
def test_frequent_itemsets_on_the_c_engine_match_numpy(groceries):
    fast = FrequentItemsets(0.001, engine="c").fit(groceries).itemsets_
    assert len(fast) == 13492  # arules' count at support 0.001
    assert fast == FrequentItemsets(0.001, engine="numpy").fit(groceries).itemsets_


@needs_c
@pytest.mark.parametrize(
    ("codes", "indptr", "n_items"),
    [
        ([0, 5], [0, 2], 3),  # a code at or above n_items
        ([-1], [0, 1], 3),  # a negative code
        ([1, 0], [0, 2], 3),  # a basket not in increasing order
        ([0, 0], [0, 2], 3),  # a repeated item
        ([0, 1], [0, 3], 3),  # indptr past the end of the codes
        ([0, 1], [1, 2], 3),  # indptr not starting at 0
        ([0, 1], [0, 2, 1], 3),  # indptr going backwards
    ],
)
def test_the_search_rejects_malformed_arrays(codes, indptr, n_items):
    from crm_core.mining import _fastmine  # type: ignore[attr-defined]

    with pytest.raises(ValueError, match="strictly increasing"):
        _fastmine.mine(np.array(codes, np.int32), np.array(indptr, np.int64), n_items, 1, 0, True, 16)


@needs_c
def test_the_c_functions_reject_wrong_types_and_codes_out_of_range():
    from crm_core.mining import _fastmine  # type: ignore[attr-defined]
    from crm_core.mining.itemsets import Itemset

    with pytest.raises(TypeError, match="4-byte signed integers"):
        _fastmine.mine(np.array([0, 1], np.int64), np.array([0, 2], np.int64), 2, 1, 0, True, 16)
    with pytest.raises(ValueError, match="min_count >= 1"):
        _fastmine.mine(np.array([0, 1], np.int32), np.array([0, 2], np.int64), 2, 0, 0, True, 16)
    with pytest.raises(IndexError, match="out of range"):
        _fastmine.itemset_records([(np.array([0, 9], np.int32), np.array([1, 1], np.int64))], ("a", "b"), 2, Itemset)
    # Levels that are not downward closed (the pair's item 2 is not a frequent single item).
    levels = [(np.array([0, 1], np.int32), np.array([2, 2], np.int64)), (np.array([0, 2], np.int32), np.array([1]))]
    with pytest.raises(ValueError, match="not the frequent itemsets"):
        _fastmine.rules(levels, 3.0, 0.5, -1.0)


@needs_c
@pytest.mark.parametrize(
    ("text", "sep", "min_support", "min_confidence", "max_len"),
    [
        ("milk,bread\nmilk,eggs\nbread,eggs,milk\nmilk,bread\n\n", None, 0.25, 0.5, None),
        ("1 2 3 \n2 3\n1 3 4\n3 4 5\n1 2 3 4\n", None, 2, 0.6, 3),
        ('"a,b",c\nc;d\n"a,b",c,d\n', ",", 1, 0.0, None),
        ("x\ty\n\nx y z\n", None, 1, 1.0, 1),
    ],
)
def test_the_lean_file_path_finds_what_the_estimator_finds(text, sep, min_support, min_confidence, max_len):
    import io

    from crm_core.mining import read_baskets
    from crm_core.mining.lean import mine_file_rules

    expected = AssociationRules(min_support, min_confidence, max_len=max_len, engine="numpy")
    expected.fit(read_baskets(io.StringIO(text), sep=sep))
    assert mine_file_rules(io.StringIO(text), min_support, min_confidence, max_len, sep=sep) == expected.rules_


@needs_c
def test_the_lean_file_path_on_groceries_gives_the_410_rules(tmp_path, groceries):
    from crm_core.mining.lean import mine_file_rules
    from tests.shared_data import shared_file

    rules = mine_file_rules(shared_file("groceries.csv"), 0.001, 0.8, 10)
    assert rules == AssociationRules(0.001, 0.8, max_len=10, engine="numpy").fit(groceries).rules_
    assert len(rules) == 410


@needs_c
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"min_support": 0, "min_confidence": 0.5}, ValueError),
        ({"min_support": 0.1, "min_confidence": 1.5}, ValueError),
        ({"min_support": 0.1, "min_confidence": 0.5, "max_len": 0}, ValueError),
    ],
)
def test_the_lean_file_path_checks_its_parameters_as_fit_does(kwargs, error):
    import io

    from crm_core.mining.lean import mine_file_rules

    with pytest.raises(error):
        mine_file_rules(io.StringIO("a b\n"), **kwargs)
    with pytest.raises(ValueError, match="no baskets"):
        mine_file_rules(io.StringIO(""), 1, 0.5)


# Bytes a basket file may hold, including the ones that send the C reader to read_baskets (a quote,
# a non-ASCII letter, a NUL) and the newlines and spaces it must treat as read_baskets does.
file_text = st.lists(
    st.sampled_from(
        ["a", "b", "tea", "7", "07", " ", ",", ";", "\n", "\n\n", "\t", "\x1f", '"', "é", "\r\n", "\r", "\x00"]
    ),
    min_size=0,
    max_size=40,
).map("".join)


@needs_c
@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=file_text, sep=st.sampled_from([None, ",", ";", "", " ", "ab"]), bom=st.booleans())
def test_the_c_file_reader_reads_what_read_baskets_reads(text, sep, bom):
    import io

    from crm_core.mining import _fastmine, read_baskets  # type: ignore[attr-defined]

    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    found = _fastmine.read_simple(data, sep)
    if found is None:
        return  # the general path: read_baskets itself
    labels, codes, indptr = found
    codes, indptr = np.frombuffer(codes, np.int32), np.frombuffer(indptr, np.int64)
    baskets = [sorted({labels[c] for c in codes[lo:hi]}) for lo, hi in zip(indptr[:-1], indptr[1:])]
    assert baskets == [sorted(basket) for basket in read_baskets(io.BytesIO(data), sep=sep)]


# Labels and numbers a rule may carry: the C writer must write what json.dumps writes (quotes, backslashes,
# control characters, non-ASCII text, every kind of float), and leave to json what it would write otherwise.
json_labels = st.text(st.characters(codec="utf-8"), max_size=6) | st.sampled_from(['a"b', "c\\d", "\x00\x1f\x7f", "é"])
json_floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1e-300, 1e300, 0.1])
json_rules = st.lists(
    st.builds(
        lambda antecedent, consequent, support, confidence, lift, count: (
            tuple(antecedent),
            consequent,
            support,
            confidence,
            lift,
            count,
        ),
        st.lists(json_labels, max_size=3),
        json_labels,
        json_floats,
        json_floats,
        json_floats,
        st.integers(min_value=-(2**70), max_value=2**70),
    ),
    max_size=5,
)


@needs_c
@settings(max_examples=300, deadline=None, derandomize=True)
@given(rows=json_rules)
def test_the_c_json_writer_writes_what_json_dumps_writes(rows):
    import json

    from crm_core.mining import Rule, _fastmine, format_rules  # type: ignore[attr-defined]

    rules = [Rule(*row) for row in rows]
    expected = json.dumps(
        [
            {
                "antecedent": list(r.antecedent),
                "consequent": r.consequent,
                "support": r.support,
                "confidence": r.confidence,
                "lift": r.lift,
                "count": r.count,
            }
            for r in rules
        ],
        ensure_ascii=False,
        default=str,
    )
    text = _fastmine.rules_json(rules)
    # Counts beyond 64 bits are left to json, as is anything the writer does not know.
    assert text == (expected if all(abs(r.count) < 2**63 for r in rules) else None)
    assert format_rules(rules, "json") == expected


@needs_c
@pytest.mark.parametrize(
    "rule",
    [
        ((1, "b"), "c", 0.5, 0.5, 1.0, 3),  # an int label: json writes 1, the writer leaves it to json
        (("a",), "\ud800", 0.5, 0.5, 1.0, 3),  # a lone surrogate has no UTF-8
        (("a",), "c", 0.5, 0.5, 1.0, True),  # json writes true
        (("a",), ("x", 2), 0.5, 0.5, 1.0, 3),  # default=str
    ],
)
def test_the_c_json_writer_leaves_other_values_to_json(rule):
    import json

    from crm_core.mining import Rule, _fastmine, format_rules  # type: ignore[attr-defined]

    rules = [Rule(*rule)]
    assert _fastmine.rules_json(rules) is None
    keys = ("antecedent", "consequent", "support", "confidence", "lift", "count")
    objects = [dict(zip(keys, (list(r[0]), *r[1:]))) for r in rules]
    assert format_rules(rules, "json") == json.dumps(objects, ensure_ascii=False, default=str)
