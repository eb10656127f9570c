"""The public API: parameters, bad input, basket files, formatting and small behaviours."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys

import pytest

from crm_core.mining import (
    AssociationRules,
    FrequentItemsets,
    Itemset,
    NotFittedError,
    Rule,
    format_rules,
    read_baskets,
)

BASKETS = [
    ["bread", "butter"],
    ["bread", "butter", "jam"],
    ["bread"],
    ["butter", "jam"],
    ["bread", "butter", "milk"],
]


# --- fitting --------------------------------------------------------------------------------


def test_fit_returns_self_and_learns_attributes():
    model = AssociationRules(min_support=2, min_confidence=0.6)
    assert model.fit(BASKETS) is model
    assert model.n_baskets_ == 5
    assert model.min_count_ == 2
    assert Itemset(("bread", "butter"), 3, 0.6) in model.itemsets_
    assert model.rules_[0] == Rule(("bread",), "butter", 0.6, 0.75, 0.9375, 3)


def test_reading_results_before_fit_raises_not_fitted():
    model = FrequentItemsets(0.5)
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        _ = model.itemsets_
    assert not hasattr(AssociationRules(0.5, 0.5), "rules_")


def test_int_min_support_is_a_count_and_float_a_fraction():
    assert FrequentItemsets(1).fit(BASKETS).min_count_ == 1
    assert FrequentItemsets(1.0).fit(BASKETS).min_count_ == 5
    assert FrequentItemsets(0.5).fit(BASKETS).min_count_ == 3  # ceil(2.5)


@pytest.mark.parametrize(
    ("fraction", "n", "count"),
    [(0.07, 100, 7), (0.14, 100, 14), (0.28, 100, 28), (0.001, 9835, 10), (0.001, 100000, 100)],
)
def test_fractional_support_uses_the_decimal_value(fraction, n, count):
    # 0.07 * 100 is 7.000000000000001 in floating point; a bare ceil would ask for 8 baskets.
    assert FrequentItemsets(fraction).fit([["a"]] * n).min_count_ == count


def test_confidence_exactly_at_the_threshold_is_kept():
    # confidence(a -> b) = 4/5 exactly; arules and pyfim keep the rule at min_confidence 0.8.
    baskets = [["a", "b"]] * 4 + [["a"]] + [["c"]] * 5
    rules = AssociationRules(1, 0.8).fit(baskets).rules_
    assert [(r.antecedent, r.consequent, r.confidence) for r in rules] == [(("a",), "b", 0.8), (("b",), "a", 1.0)]


def test_duplicates_in_a_basket_count_once_and_empty_baskets_count_as_baskets():
    model = FrequentItemsets(1).fit([["a", "a", "b"], [], ("b", "b")])
    assert model.n_baskets_ == 3
    assert {s.items: (s.count, s.support) for s in model.itemsets_} == {
        ("a",): (1, 1 / 3),
        ("b",): (2, 2 / 3),
        ("a", "b"): (1, 1 / 3),
    }


def test_accepts_any_iterables_of_hashables():
    baskets = (iter(b) for b in [("a", 1), {"a", 1}, frozenset({1}), range(1, 3)])
    model = FrequentItemsets(2).fit(baskets)
    # Ints and strings do not compare; they are grouped by type, deterministically.
    assert [s.items for s in model.itemsets_] == [(1,), ("a",), (1, "a")]


def test_max_len_limits_itemsets_and_rule_length():
    model = AssociationRules(1, 0.0, max_len=2).fit(BASKETS)
    assert max(len(s.items) for s in model.itemsets_) == 2
    assert max(len(r.antecedent) for r in model.rules_) == 1
    assert AssociationRules(1, 0.0, max_len=1).fit(BASKETS).rules_ == []


def test_min_lift_filters_rules():
    all_rules = AssociationRules(1, 0.0).fit(BASKETS).rules_
    lifted = AssociationRules(1, 0.0, min_lift=1.1).fit(BASKETS).rules_
    assert lifted == [r for r in all_rules if r.lift >= 1.1]
    assert 0 < len(lifted) < len(all_rules)


def test_empty_antecedent_rules_only_on_request():
    baskets = [["milk", "bread"], ["milk"], ["milk", "eggs"], ["milk"], ["bread"]]
    assert all(r.antecedent for r in AssociationRules(1, 0.8).fit(baskets).rules_)
    rules = AssociationRules(1, 0.8, allow_empty_antecedent=True).fit(baskets).rules_
    assert rules[0] == Rule((), "milk", 0.8, 0.8, 1.0, 4)


def test_nothing_frequent_gives_empty_results():
    model = AssociationRules(0.9, 0.5).fit(BASKETS)
    assert model.itemsets_ == [] and model.rules_ == []
    assert FrequentItemsets(1).fit([[], []]).itemsets_ == []


def test_repeated_fits_give_identical_results():
    first = AssociationRules(1, 0.3).fit(BASKETS)
    second = AssociationRules(1, 0.3).fit(list(reversed(BASKETS)))
    assert first.rules_ == second.rules_ and first.itemsets_ == second.itemsets_


# --- bad input ------------------------------------------------------------------------------


def test_no_baskets_is_a_value_error():
    with pytest.raises(ValueError, match="no baskets"):
        FrequentItemsets(0.1).fit([])
    with pytest.raises(ValueError, match="no baskets"):
        AssociationRules(0.1, 0.5).fit(iter([]))


@pytest.mark.parametrize("value", [0.0, -0.1, 1.5, 2.0, math.nan, 0, -3])
def test_min_support_out_of_range_is_a_value_error(value):
    with pytest.raises(ValueError, match="min_support"):
        FrequentItemsets(value).fit(BASKETS)


@pytest.mark.parametrize("value", ["0.1", None, True, [0.1]])
def test_min_support_of_the_wrong_type_is_a_type_error(value):
    with pytest.raises(TypeError, match="min_support"):
        AssociationRules(value, 0.5).fit(BASKETS)


@pytest.mark.parametrize("value", [-0.01, 1.01, math.nan, math.inf])
def test_min_confidence_outside_0_1_is_a_value_error(value):
    with pytest.raises(ValueError, match=r"min_confidence must be in \[0, 1\]"):
        AssociationRules(0.1, value).fit(BASKETS)


def test_min_confidence_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="min_confidence"):
        AssociationRules(0.1, "high").fit(BASKETS)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"min_lift": -1}, ValueError),
        ({"min_lift": math.inf}, ValueError),
        ({"min_lift": "2"}, TypeError),
        ({"max_len": 0}, ValueError),
        ({"max_len": 2.5}, TypeError),
    ],
)
def test_bad_min_lift_or_max_len(kwargs, error):
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        AssociationRules(0.1, 0.5, **kwargs).fit(BASKETS)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pair_chunk": 0},
        {"count_span": 1.5},
        {"bitset_chunk_words": True},
        {"counting": "fast"},
        {"bitsets": 0},
        {"engine": "fortran"},
        {"item_order": "random"},
        {"projection_items": 0},
    ],
)
def test_bad_tuning_parameter_is_a_value_error_naming_it(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        FrequentItemsets(0.1, **kwargs).fit(BASKETS)
    with pytest.raises(ValueError, match=name):
        AssociationRules(0.1, 0.5, **kwargs).fit(BASKETS)


def test_tuning_parameters_change_nothing_found():
    expected = AssociationRules(1, 0.3).fit(BASKETS)
    tuned = AssociationRules(1, 0.3, pair_chunk=1, count_span=1, counting="sparse", bitsets=1, packed_keys=False)
    tuned.fit(BASKETS)
    assert tuned.rules_ == expected.rules_ and tuned.itemsets_ == expected.itemsets_


def test_parameters_are_checked_before_the_baskets_are_read():
    def never():
        raise AssertionError("baskets were consumed")
        yield

    with pytest.raises(ValueError, match="min_confidence"):
        AssociationRules(0.1, 2).fit(never())


def test_unhashable_item_is_a_type_error_naming_the_basket():
    with pytest.raises(TypeError, match=r"hashable.*basket #1 holds an unhashable list"):
        FrequentItemsets(1).fit([["a"], ["b", ["c"]]])


def test_a_string_basket_is_a_type_error():
    with pytest.raises(TypeError, match=r"basket #1 is a string \('milk'\)"):
        FrequentItemsets(1).fit([["bread"], "milk"])
    with pytest.raises(TypeError, match="not a single string"):
        FrequentItemsets(1).fit("milk")


def test_non_iterable_baskets_are_a_type_error():
    with pytest.raises(TypeError, match=r"basket #1 is not iterable \(int 5\)"):
        FrequentItemsets(1).fit([["a"], 5])
    with pytest.raises(TypeError, match="iterable of baskets"):
        FrequentItemsets(1).fit(42)


# --- reading basket files -------------------------------------------------------------------


def test_read_baskets_comma_file_trims_drops_empties_and_duplicates(tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text('milk, bread ,milk\n\n  eggs,,\n"tea, green",jam\n', encoding="utf-8")
    assert read_baskets(path) == [["milk", "bread"], [], ["eggs"], ["tea, green", "jam"]]
    assert read_baskets(str(path)) == read_baskets(path)


def test_read_baskets_unbalanced_quote_stays_on_its_line():
    assert read_baskets(io.StringIO('"milk,bread\neggs,jam\n')) == [["milk,bread"], ["eggs", "jam"]]
    assert read_baskets(io.StringIO('5" nails,glue\n')) == [['5" nails', "glue"]]


def test_read_baskets_whitespace_file_like_fimi_data():
    # T10I4D100K lines end with a space; no commas anywhere, so whitespace separates.
    data = "25 52 164 \n39  120\t124 \n\n"
    assert read_baskets(io.StringIO(data)) == [["25", "52", "164"], ["39", "120", "124"], []]


def test_read_baskets_binary_file_bom_crlf_and_explicit_separator():
    data = "\ufeffa;b c;a\r\nd\r\n".encode()
    assert read_baskets(io.BytesIO(data), sep=";") == [["a", "b c"], ["d"]]
    assert read_baskets(io.BytesIO(b"a b\tc d"), sep="\t") == [["a b", "c d"]]


def test_read_baskets_rejects_other_objects():
    with pytest.raises(TypeError, match="path or an open file"):
        read_baskets(42)


def test_read_groceries(groceries):
    assert len(groceries) == 9835
    labels = {item for basket in groceries for item in basket}
    assert len(labels) == 169
    assert "cream cheese" in labels and all(label == label.strip() for label in labels)


def test_read_t10_sample(t10_sample):
    assert len(t10_sample) == 5000
    assert t10_sample[0][:3] == ["25", "52", "164"] and "" not in t10_sample[0]


# --- formatting -----------------------------------------------------------------------------

RULES = [
    Rule(("bread", "jam"), "butter", 0.2, 1.0, 1.25, 1),
    Rule(("tea, green",), "milk", 0.4, 0.5, 2.0 / 3.0, 2),
]


def test_format_json_is_one_array_of_rule_objects():
    decoded = json.loads(format_rules(RULES, "json"))
    assert decoded[0] == {
        "antecedent": ["bread", "jam"],
        "consequent": "butter",
        "support": 0.2,
        "confidence": 1.0,
        "lift": 1.25,
        "count": 1,
    }
    assert decoded[1]["lift"] == 2.0 / 3.0
    assert json.loads(format_rules([], "json")) == []


def test_format_csv_has_a_header_and_one_row_per_rule():
    rows = list(csv.reader(io.StringIO(format_rules(RULES, "csv"))))
    assert rows[0] == ["antecedent", "consequent", "support", "confidence", "lift", "count"]
    assert rows[1] == ["bread;jam", "butter", "0.2", "1.0", "1.25", "1"]
    assert rows[2][0] == "tea, green" and float(rows[2][4]) == 2.0 / 3.0


def test_format_table_aligns_columns():
    lines = format_rules(RULES, "table").splitlines()
    assert lines[0].split() == ["antecedent", "consequent", "support", "confidence", "lift", "count"]
    assert lines[2].startswith("{bread, jam}") and lines[2].endswith("1")
    assert lines[2].index("butter") == lines[3].index("milk") == lines[0].index("consequent")
    assert len(lines[0]) == len(lines[2]) == len(lines[3])  # numbers right-aligned to the header
    assert format_rules([], "table") == "(no rules)\n"
    assert format_rules(RULES, "TABLE") == format_rules(RULES)


def test_format_unknown_is_a_value_error():
    with pytest.raises(ValueError, match="unknown rule format 'xml'; expected one of table, csv, json"):
        format_rules(RULES, "xml")


def test_format_rules_from_a_model(groceries):
    rules = AssociationRules(0.001, 0.8).fit(groceries).rules_
    assert len(json.loads(format_rules(rules, "json"))) == 410
    assert len(format_rules(rules, "csv").splitlines()) == 411


# --- layering -------------------------------------------------------------------------------


def test_crm_core_mining_does_not_import_bot():
    code = "import sys, crm_core.mining; print(any(m == 'bot' or m.startswith('bot.') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_docstring_examples_run():
    import doctest

    from crm_core.mining import itemsets, rules

    for module in (itemsets, rules):
        assert doctest.testmod(module).failed == 0
