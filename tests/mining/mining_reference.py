"""Reference results for the mining tests: mlxtend (test-only) and brute-force counting."""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations
from math import ceil

import pytest

from crm_core.mining import accelerator

# The engines the result tests run on: the C accelerator where it is built (test_mining_accelerator
# fails when it should have been), and the numpy engine that an install without a compiler uses.
ENGINES = [
    pytest.param(
        "c",
        marks=pytest.mark.skipif(
            not accelerator.available(), reason="the C accelerator is not built (pip install -e . with a C compiler)"
        ),
    ),
    "numpy",
]


def mlxtend_itemsets(baskets, min_support: float, max_len=None):
    """{frozenset(items): support} from mlxtend's fpgrowth, plus the itemsets DataFrame."""
    import pandas as pd
    from mlxtend.frequent_patterns import fpgrowth
    from mlxtend.preprocessing import TransactionEncoder

    encoder = TransactionEncoder()
    onehot = encoder.fit(baskets).transform(baskets)
    frame = pd.DataFrame(onehot, columns=encoder.columns_)
    found = fpgrowth(frame, min_support=min_support, use_colnames=True, max_len=max_len)
    return {frozenset(s): sup for s, sup in zip(found["itemsets"], found["support"])}, found


def mlxtend_rules(itemsets_frame, n_baskets: int, min_confidence: float):
    """{(frozenset(antecedent), consequent): (support, confidence, lift)}, one-item consequents only."""
    from mlxtend.frequent_patterns import association_rules

    if itemsets_frame.empty:
        return {}
    # mlxtend divides float supports (54/1500) / (60/1500) = 0.8999999999999999 and so drops
    # a rule whose confidence is exactly the threshold; arules (and pyfim, same C core) keep
    # it, as we do. The slack makes mlxtend keep it too; no count ratio falls inside it.
    threshold = min_confidence * (1 - 1e-9)
    rules = association_rules(itemsets_frame, num_itemsets=n_baskets, metric="confidence", min_threshold=threshold)
    out = {}
    for ante, cons, sup, conf, lift in zip(
        rules["antecedents"], rules["consequents"], rules["support"], rules["confidence"], rules["lift"]
    ):
        if len(cons) == 1:
            out[(frozenset(ante), next(iter(cons)))] = (sup, conf, lift)
    return out


def decimal(x) -> Fraction:
    """The threshold as the decimal the user typed (0.8 means exactly 4/5)."""
    return Fraction(repr(x)) if isinstance(x, float) else Fraction(x)


def brute_force_counts(baskets, max_len=None):
    """Count of every non-empty itemset over the items present (small data only)."""
    sets = [frozenset(b) for b in baskets]
    items = sorted(set().union(*sets), key=repr)
    top = len(items) if max_len is None else min(max_len, len(items))
    counts = {}
    for k in range(1, top + 1):
        for combo in combinations(items, k):
            c = frozenset(combo)
            counts[c] = sum(1 for s in sets if c <= s)
    return counts


def brute_force_min_count(min_support, n_baskets: int) -> int:
    if isinstance(min_support, int):
        return min_support
    return max(1, ceil(decimal(min_support) * n_baskets))


def brute_force_rules(counts, n_baskets, min_count, min_confidence, min_lift=None):
    """{(antecedent, consequent): (count, antecedent count, consequent count)} with exact arithmetic."""
    conf_t = decimal(min_confidence)
    lift_t = None if min_lift is None else decimal(min_lift)
    out = {}
    for itemset, count in counts.items():
        if count < min_count or len(itemset) < 2:
            continue
        for consequent in itemset:
            antecedent = itemset - {consequent}
            a_count = counts[antecedent]
            c_count = counts[frozenset([consequent])]
            if Fraction(count, a_count) < conf_t:
                continue
            if lift_t is not None and Fraction(count * n_baskets, a_count * c_count) < lift_t:
                continue
            out[(antecedent, consequent)] = (count, a_count, c_count)
    return out
