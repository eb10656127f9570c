"""Frequent itemsets and association rules mined from baskets of orders.

Public API::

    FrequentItemsets(min_support, max_len=None).fit(baskets)      -> .itemsets_, .n_baskets_
    AssociationRules(min_support, min_confidence, min_lift=None,
                     max_len=None).fit(baskets)                    -> .rules_, .itemsets_, .n_baskets_
    read_baskets(path_or_file, sep=None)                           -> list of baskets
    read_encoded_baskets(path_or_file, sep=None)                   -> EncodedBaskets (fit takes them too)
    format_rules(rules, fmt="table" | "csv" | "json")              -> str

Our own implementation on numpy (no mining library at run time); definitions and results
match R's arules and mlxtend. Modules: ``baskets`` (reading and integer encoding),
``levelwise`` (the itemset search), ``itemsets``, ``rules``, ``thresholds`` (parameter
checks and tolerant threshold arithmetic), ``formatting``, ``memory`` (the estimate that makes
the local engine refuse, rather than be killed, when mining would not fit in memory).

``spark_engine.SparkAssociationRules`` is the same estimator on Apache Spark (MLlib's FPGrowth,
the ``spark`` extra), fed from ``parquet_baskets``; neither is imported here, so pyspark and
pyarrow stay optional.
"""

from crm_core.mining.baskets import EncodedBaskets, read_baskets, read_encoded_baskets
from crm_core.mining.errors import NotFittedError
from crm_core.mining.formatting import format_rules
from crm_core.mining.itemsets import FrequentItemsets, Itemset
from crm_core.mining.rules import AssociationRules, Rule

__all__ = [
    "AssociationRules",
    "EncodedBaskets",
    "FrequentItemsets",
    "Itemset",
    "NotFittedError",
    "Rule",
    "format_rules",
    "read_baskets",
    "read_encoded_baskets",
]
