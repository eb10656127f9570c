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
pyarrow stay optional. ``accelerator`` holds the optional C engine (``_fastmine.c``), and ``lean``
mines a basket file with it without importing numpy (``chatcrm mine``'s start-up).
"""

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (see crm_core.mining.records)

if TYPE_CHECKING:
    from crm_core.mining.basket_files import read_baskets
    from crm_core.mining.baskets import EncodedBaskets, read_encoded_baskets
    from crm_core.mining.errors import NotFittedError
    from crm_core.mining.formatting import format_rules
    from crm_core.mining.itemsets import FrequentItemsets
    from crm_core.mining.records import Itemset, Rule
    from crm_core.mining.rules import AssociationRules

# Where each public name lives. They are imported on first use (PEP 562), so that importing a
# numpy-free submodule (``lean``, ``records``, ``basket_files``) does not import numpy with the package.
_EXPORTS = {
    "AssociationRules": "crm_core.mining.rules",
    "EncodedBaskets": "crm_core.mining.baskets",
    "FrequentItemsets": "crm_core.mining.itemsets",
    "Itemset": "crm_core.mining.records",
    "NotFittedError": "crm_core.mining.errors",
    "Rule": "crm_core.mining.records",
    "format_rules": "crm_core.mining.formatting",
    "read_baskets": "crm_core.mining.basket_files",
    "read_encoded_baskets": "crm_core.mining.baskets",
}


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


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
