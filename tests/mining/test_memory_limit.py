"""The local engine refuses, before it starts, a mining run estimated not to fit in memory."""

from __future__ import annotations

import pytest

from crm_core.mining import AssociationRules, FrequentItemsets
from crm_core.mining.memory import MiningMemoryError, estimate_search_bytes

BASKETS = [["bread", "butter", "jam"], ["bread", "butter"], ["bread", "jam"], ["butter", "jam"]] * 50


def test_refuses_over_the_budget_and_recommends_spark():
    with pytest.raises(MiningMemoryError, match="use the Spark engine") as refused:
        AssociationRules(2, 0.5, max_memory_bytes=1000).fit(BASKETS)
    assert isinstance(refused.value, MemoryError)
    assert "CHATCRM_MINING_ENGINE=spark" in str(refused.value) and "GiB" in str(refused.value)
    with pytest.raises(MiningMemoryError):
        FrequentItemsets(2, max_memory_bytes=1000).fit(BASKETS)


def test_the_search_estimate_is_checked_after_encoding():
    # Wide baskets: enough for encoding (56 bytes per item occurrence), not for the 190 pairs of
    # items in each basket that the search's first step goes through.
    wide = [list(range(20))] * 100
    with pytest.raises(MiningMemoryError, match="at a minimum of 2 baskets per itemset"):
        FrequentItemsets(2, max_len=2, max_memory_bytes=56 * 20 * 100 + 100).fit(wide)


def test_mines_within_the_budget_and_by_default():
    expected = AssociationRules(2, 0.5).fit(BASKETS).rules_
    assert AssociationRules(2, 0.5, max_memory_bytes=10**8).fit(BASKETS).rules_ == expected
    assert expected


def test_estimate_grows_with_the_pairs_and_ignores_infrequent_items():
    from crm_core.mining.baskets import encode_baskets

    encoded = encode_baskets(BASKETS)
    counts = encoded.item_counts()
    assert estimate_search_bytes(encoded.indptr, encoded.codes, counts, 1) > 0
    # Above every item's count nothing is frequent: no search, nothing to hold.
    assert estimate_search_bytes(encoded.indptr, encoded.codes, counts, 10**6) == 0
