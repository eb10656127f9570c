"""Results against references: arules' published Groceries figures, mlxtend, direct counting."""

from __future__ import annotations

import numpy as np
import pytest
from mining_reference import ENGINES, mlxtend_itemsets, mlxtend_rules

from crm_core.mining import AssociationRules, FrequentItemsets


def as_dict(itemsets):
    return {frozenset(s.items): s for s in itemsets}


def rules_by_key(rules):
    return {(frozenset(r.antecedent), r.consequent): r for r in rules}


def count_containing(baskets, items) -> int:
    wanted = set(items)
    return sum(1 for b in baskets if wanted <= set(b))


# --- Groceries: the arules reference run (support 0.001, confidence 0.8, maxlen 10) ---------


@pytest.fixture(scope="module", params=ENGINES)
def groceries_rules(request, groceries):
    return AssociationRules(min_support=0.001, min_confidence=0.8, max_len=10, engine=request.param).fit(groceries)


def test_groceries_gives_the_410_rules_arules_reports(groceries, groceries_rules):
    assert len(groceries) == 9835
    assert groceries_rules.n_baskets_ == 9835
    assert groceries_rules.min_count_ == 10  # ceil(0.001 * 9835) = ceil(9.835)
    assert len(groceries_rules.rules_) == 410
    assert len(groceries_rules.itemsets_) == 13492
    assert all(len(r.antecedent) >= 1 for r in groceries_rules.rules_)


@pytest.mark.parametrize(
    ("antecedent", "consequent", "support", "confidence", "lift", "count"),
    [
        # Published by arules (inspect(rules) in its Groceries examples).
        (("rice", "sugar"), "whole milk", 0.001220132, 1.0, 3.913649, 12),
        (("canned fish", "hygiene articles"), "whole milk", 0.001118454, 1.0, 3.913649, 11),
        (("butter", "rice", "root vegetables"), "whole milk", 0.001016777, 1.0, 3.913649, 10),
        (("liquor", "red/blush wine"), "bottled beer", 0.001931876, 0.9047619, 11.235269, 19),
    ],
)
def test_groceries_rules_match_arules_figures(
    groceries_rules, antecedent, consequent, support, confidence, lift, count
):
    rule = rules_by_key(groceries_rules.rules_)[(frozenset(antecedent), consequent)]
    assert rule.antecedent == antecedent  # sorted alphabetically
    assert rule.count == count
    assert rule.support == pytest.approx(support, abs=5e-10)
    assert rule.confidence == pytest.approx(confidence, abs=5e-8)
    assert rule.lift == pytest.approx(lift, abs=5e-7)


def test_groceries_spot_values_by_direct_counting(groceries, groceries_rules):
    n = len(groceries)
    rules = groceries_rules.rules_
    # The first, the last and the highest-lift rule, recounted from the raw baskets.
    for rule in (rules[0], rules[-1], max(rules, key=lambda r: r.lift)):
        both = count_containing(groceries, (*rule.antecedent, rule.consequent))
        ante = count_containing(groceries, rule.antecedent)
        cons = count_containing(groceries, (rule.consequent,))
        assert rule.count == both
        assert rule.support == both / n
        assert rule.confidence == both / ante
        assert rule.lift == pytest.approx(both * n / (ante * cons), rel=1e-12)
        assert both / ante >= 0.8 and both >= 10


@pytest.mark.parametrize(("min_support", "min_confidence"), [(0.001, 0.8), (0.005, 0.5), (0.02, 0.3), (0.05, 0.1)])
def test_groceries_matches_mlxtend(groceries, min_support, min_confidence, engine):
    expected_sets, frame = mlxtend_itemsets(groceries, min_support)
    model = AssociationRules(min_support, min_confidence, engine=engine).fit(groceries)
    got_sets = as_dict(model.itemsets_)
    assert got_sets.keys() == expected_sets.keys()
    for key, itemset in got_sets.items():
        assert itemset.support == pytest.approx(expected_sets[key], rel=1e-12)
    expected_rules = mlxtend_rules(frame, len(groceries), min_confidence)
    got_rules = rules_by_key(model.rules_)
    assert got_rules.keys() == expected_rules.keys()
    for key, rule in got_rules.items():
        assert (rule.support, rule.confidence, rule.lift) == pytest.approx(expected_rules[key], rel=1e-9)


# --- T10I4D100K (first 5,000 baskets) -------------------------------------------------------


@pytest.mark.parametrize(
    ("min_support", "min_confidence", "max_len"), [(0.01, 0.5, None), (0.004, 0.7, None), (0.004, 0.6, 2)]
)
def test_t10_sample_matches_mlxtend(t10_sample, min_support, min_confidence, max_len, engine):
    expected_sets, frame = mlxtend_itemsets(t10_sample, min_support, max_len)
    model = AssociationRules(min_support, min_confidence, max_len=max_len, engine=engine).fit(t10_sample)
    got_sets = as_dict(model.itemsets_)
    assert got_sets.keys() == expected_sets.keys()
    assert max(map(len, got_sets)) > 1
    for key, itemset in got_sets.items():
        assert itemset.support == pytest.approx(expected_sets[key], rel=1e-12)
    expected_rules = mlxtend_rules(frame, len(t10_sample), min_confidence)
    got_rules = rules_by_key(model.rules_)
    assert got_rules.keys() == expected_rules.keys()
    assert got_rules
    for key, rule in got_rules.items():
        assert (rule.support, rule.confidence, rule.lift) == pytest.approx(expected_rules[key], rel=1e-9)


# --- Generated baskets ----------------------------------------------------------------------


def generated_baskets(seed: int, n_baskets: int, n_items: int, mean_len: float, labels: str):
    """Skewed item popularity plus a few planted co-occurring groups, so rules exist."""
    rng = np.random.default_rng(seed)
    popularity = rng.zipf(1.6, n_items).astype(float)
    popularity /= popularity.sum()
    groups = [rng.choice(n_items, size=rng.integers(2, 5), replace=False) for _ in range(6)]
    baskets = []
    for _ in range(n_baskets):
        size = rng.poisson(mean_len)
        basket = list(rng.choice(n_items, size=size, p=popularity))  # may repeat items
        if rng.random() < 0.3:
            basket.extend(groups[rng.integers(len(groups))])
        baskets.append([f"item{int(i):03d}" if labels == "str" else int(i) for i in basket])
    return baskets


@pytest.mark.parametrize(
    ("seed", "labels", "min_support", "min_confidence"),
    [(1, "str", 0.02, 0.5), (2, "int", 0.01, 0.6), (3, "str", 0.05, 0.2), (4, "int", 0.005, 0.9)],
)
def test_generated_baskets_match_mlxtend(seed, labels, min_support, min_confidence, engine):
    baskets = generated_baskets(seed, n_baskets=1500, n_items=40, mean_len=4, labels=labels)
    expected_sets, frame = mlxtend_itemsets(baskets, min_support)
    model = AssociationRules(min_support, min_confidence, engine=engine).fit(baskets)
    got_sets = as_dict(model.itemsets_)
    assert got_sets.keys() == expected_sets.keys()
    for key, itemset in got_sets.items():
        assert itemset.support == pytest.approx(expected_sets[key], rel=1e-12)
    expected_rules = mlxtend_rules(frame, len(baskets), min_confidence)
    got_rules = rules_by_key(model.rules_)
    assert got_rules.keys() == expected_rules.keys()
    for key, rule in got_rules.items():
        assert (rule.support, rule.confidence, rule.lift) == pytest.approx(expected_rules[key], rel=1e-9)


def test_itemsets_estimator_agrees_with_rules_estimator(groceries, engine):
    alone = FrequentItemsets(0.003, max_len=3, engine=engine).fit(groceries).itemsets_
    inside = AssociationRules(0.003, 0.5, max_len=3, engine=engine).fit(groceries).itemsets_
    assert alone == inside
    assert max(len(s.items) for s in alone) == 3


def test_groceries_empty_antecedent_rules_change_nothing_at_confidence_08(groceries, groceries_rules):
    # arules also emits {} -> c when support(c) >= min_confidence; no Groceries item is in
    # 80 % of the baskets (whole milk, the most common, is in 25.6 %), so it is 410 either way.
    engine = groceries_rules.engine
    with_empty = AssociationRules(0.001, 0.8, max_len=10, allow_empty_antecedent=True, engine=engine).fit(groceries)
    assert with_empty.rules_ == groceries_rules.rules_
    assert max(s.support for s in groceries_rules.itemsets_ if len(s.items) == 1) == pytest.approx(0.2555160)


def test_dense_baskets_match_mlxtend_and_use_bitsets():
    # Baskets holding about half of 30 items: the search switches to bitsets at level 1.
    from unittest.mock import patch

    from crm_core.mining import levelwise

    rng = np.random.default_rng(11)
    baskets = [[f"p{i:02d}" for i in range(30) if rng.random() < (0.8 if i < 6 else 0.4)] for _ in range(400)]
    expected_sets, frame = mlxtend_itemsets(baskets, 0.2)
    with patch.object(levelwise, "_bitset_step", wraps=levelwise._bitset_step) as bitset_step:
        model = AssociationRules(0.2, 0.7, engine="numpy").fit(baskets)
    assert bitset_step.called
    got_sets = as_dict(model.itemsets_)
    assert got_sets.keys() == expected_sets.keys()
    assert max(map(len, got_sets)) >= 4
    for key, itemset in got_sets.items():
        assert itemset.support == pytest.approx(expected_sets[key], rel=1e-12)
    expected_rules = mlxtend_rules(frame, len(baskets), 0.7)
    got_rules = rules_by_key(model.rules_)
    assert got_rules.keys() == expected_rules.keys() and got_rules
    for key, rule in got_rules.items():
        assert (rule.support, rule.confidence, rule.lift) == pytest.approx(expected_rules[key], rel=1e-9)
