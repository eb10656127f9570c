"""Association rules on Apache Spark: MLlib's FPGrowth finds the itemsets, our code the rules.

``SparkAssociationRules`` has the API of ``crm_core.mining.AssociationRules`` (same parameters,
``fit`` returning self, ``rules_`` / ``itemsets_`` / ``n_baskets_`` / ``min_count_``) and gives
the same ``Rule`` and ``Itemset`` records, rule for rule and count for count:

- **Support as our integer count.** We turn ``min_support`` into a basket count with the local
  engine's tolerant arithmetic (``thresholds.min_count``). MLlib takes a fraction and computes
  ``ceil(minSupport * n)`` itself, so we hand it ``(count - 0.5) / n``: its product lands half a
  basket below our count, far from any rounding error, and the ceiling is exactly our count.
- **Rules from integer counts.** Spark returns the frequent itemsets with their integer
  frequencies; the driver turns them into the local engine's level arrays and derives the
  rules with the very code the local engine uses (``rules.find_rules``), so confidence and lift
  are checked on counts with the same tolerance, and the order of the rules is the same.
  (MLlib's own ``associationRules`` compares floating-point ratios, and drops rules whose
  confidence is exactly the threshold when the division rounds down.)

Baskets reach Spark as Parquet (``parquet_baskets``): a file we wrote, a path the caller names
(``ParquetBaskets``), or a Spark DataFrame with an ``items`` array column. An iterable of baskets
is first written to a Parquet file in ``staging_dir``. Empty baskets count towards the number
of baskets, as in the local engine. MLlib's FPGrowth has no length limit, so ``max_len`` drops
longer itemsets after the search.

pyspark is imported on first use: it comes with the ``spark`` extra (``pip install
'chatcrm[spark]'``) and needs Java 17 or newer.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np

from crm_core.mining.baskets import label_order
from crm_core.mining.errors import NoBaskets
from crm_core.mining.itemsets import MinedItemsets
from crm_core.mining.levelwise import Level
from crm_core.mining.parquet_baskets import ITEMS_COLUMN, ParquetBaskets, require_pyarrow, write_baskets
from crm_core.mining.rules import AssociationRules
from crm_core.mining.thresholds import (
    check_max_len,
    check_min_lift,
    check_min_support,
    check_unit_interval,
    min_count,
)

log = logging.getLogger(__name__)

DEFAULT_APP_NAME = "chatcrm-mining"
INSTALL_HINT = "pip install 'chatcrm[spark]' (it also needs Java 17 or newer)"


class SparkUnavailableError(ImportError):
    """pyspark (the ``spark`` extra) is not installed."""


def require_pyspark() -> Any:
    """The pyspark module, or a SparkUnavailableError saying how to install it."""
    try:
        import pyspark
        import pyspark.ml.fpm  # noqa: F401
        import pyspark.sql  # noqa: F401
    except ImportError:
        raise SparkUnavailableError(
            f"the Spark mining engine needs pyspark, which is not installed: {INSTALL_HINT}"
        ) from None
    return pyspark


def start_session(master: str | None = None, app_name: str = DEFAULT_APP_NAME, conf: Mapping[str, str] | None = None):
    """A new (or the process's active) SparkSession, and whether we started it (then stop it after use)."""
    require_pyspark()
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    # No console progress bars: the nightly job's log and `chatcrm mine`'s output stay readable.
    builder = SparkSession.builder.appName(app_name).config("spark.ui.showConsoleProgress", "false")
    # Without a master here, Spark's own launcher decides: spark-submit's --master, then
    # spark-defaults.conf, then local[*].
    if master:
        builder = builder.master(master)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session, True


def spark_min_support(count: int, n_transactions: int) -> float:
    """The fraction for which MLlib's ``ceil(fraction * n_transactions)`` is exactly ``count``.

    ``count`` is at least 1 and at most ``n_transactions``; the product then lies half a basket
    below ``count``, so floating-point error (relative 1e-16) cannot move the ceiling.
    """
    return (count - 0.5) / n_transactions


def levels_from_itemsets(
    items: list[list[Hashable]], counts: np.ndarray, max_len: int | None
) -> tuple[tuple[Hashable, ...], list[Level]]:
    """Frequent itemsets (any item order, any row order) as the local engine's labels and levels.

    Labels are the frequent items in the local engine's label order; each level's rows are item
    codes, increasing within a row, rows in lexicographic order.
    """
    lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    singles = [row[0] for row, length in zip(items, lengths) if length == 1]
    labels = [singles[i] for i in label_order(singles)]
    code_of = {label: code for code, label in enumerate(labels)}
    flat = np.fromiter((code_of[item] for row in items for item in row), dtype=np.int32, count=int(lengths.sum()))
    starts = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    levels: list[Level] = []
    longest = int(lengths.max()) if len(items) else 0
    if max_len is not None:
        longest = min(longest, max_len)
    for length in range(1, longest + 1):
        rows = np.flatnonzero(lengths == length)
        if rows.size == 0:
            break  # downward closure: no longer itemsets either
        codes = flat[starts[rows][:, None] + np.arange(length)]
        codes.sort(axis=1)
        order = np.lexsort(codes.T[::-1])
        levels.append(Level(items=np.ascontiguousarray(codes[order]), counts=counts[rows][order].astype(np.int64)))
    return tuple(labels), levels


class SparkAssociationRules(AssociationRules):
    """``AssociationRules`` mined on Apache Spark (MLlib FPGrowth); identical rules and counts.

    Parameters
    ----------
    min_support, min_confidence, min_lift, max_len, allow_empty_antecedent
        As for ``AssociationRules``.
    master : str or None
        Spark master URL (``local[*]``, ``spark://host:7077``, ``yarn``, ``k8s://…``); None: what
        Spark's launcher says (spark-submit's ``--master``, spark-defaults.conf), else ``local[*]``.
        The nightly job passes ``$SPARK_MASTER``.
    app_name : str
        Application name shown in the Spark UI.
    spark_conf : mapping of str to str, optional
        Extra Spark settings for a session this estimator starts (e.g. ``spark.driver.memory``).
    num_partitions : int or None
        FPGrowth's ``numPartitions`` (None: Spark's default parallelism, all the cores it has).
    staging_dir : str or None
        Where an iterable of baskets is written as Parquet for Spark to read; on a cluster a
        directory every executor sees. None: the temp directory. (The nightly job passes
        ``$CHATCRM_SPARK_STAGING``.)

    A SparkSession already active in the process is used and left running; otherwise one is
    started for ``fit`` and stopped after it.
    """

    def __init__(
        self,
        min_support: float | int,
        min_confidence: float,
        min_lift: float | None = None,
        max_len: int | None = None,
        *,
        allow_empty_antecedent: bool = False,
        master: str | None = None,
        app_name: str = DEFAULT_APP_NAME,
        spark_conf: Mapping[str, str] | None = None,
        num_partitions: int | None = None,
        staging_dir: str | None = None,
    ):
        super().__init__(min_support, min_confidence, min_lift, max_len, allow_empty_antecedent=allow_empty_antecedent)
        self.master = master
        self.app_name = app_name
        self.spark_conf = spark_conf
        self.num_partitions = num_partitions
        self.staging_dir = staging_dir

    def fit(self, baskets: Any) -> SparkAssociationRules:
        """Mine ``baskets``: an iterable of baskets (of ints or of strings), a ``ParquetBaskets``,
        or a Spark DataFrame with an ``items`` array column; returns self."""
        check_min_support(self.min_support)
        check_unit_interval("min_confidence", self.min_confidence)
        check_min_lift(self.min_lift)
        check_max_len(self.max_len)
        require_pyspark()
        session, started = start_session(self.master, self.app_name, self.spark_conf)
        try:
            if _is_dataframe(baskets) or isinstance(baskets, ParquetBaskets):
                mined = self._mine(session, baskets)
            else:
                require_pyarrow()
                with tempfile.TemporaryDirectory(prefix="chatcrm-baskets-", dir=self.staging_dir) as folder:
                    mined = self._mine(session, write_baskets(baskets, os.path.join(folder, "baskets.parquet")))
        finally:
            if started:
                session.stop()
        return self._fitted_from(mined)

    def _mine(self, session, source: Any) -> MinedItemsets:
        from pyspark.ml.fpm import FPGrowth
        from pyspark.sql import functions as F

        frame = source if _is_dataframe(source) else session.read.parquet(source.path)
        # FPGrowth refuses a basket holding an item twice; nulls are not items.
        frame = frame.select(F.array_distinct(F.filter(F.col(ITEMS_COLUMN), lambda x: x.isNotNull())).alias("items"))
        totals = frame.agg(
            F.count(F.lit(1)).alias("baskets"), F.sum((F.size("items") > 0).cast("long")).alias("nonempty")
        ).first()
        n_baskets, nonempty = int(totals["baskets"]), int(totals["nonempty"] or 0)
        if n_baskets == 0:
            raise NoBaskets
        threshold = min_count(self.min_support, n_baskets)
        if nonempty == 0 or threshold > nonempty:
            return MinedItemsets(labels=(), n_baskets=n_baskets, min_count=threshold, levels=[])
        growth = FPGrowth(itemsCol="items", minSupport=spark_min_support(threshold, nonempty), minConfidence=1.0)
        # FPGrowth's default is the input's partitions: one per 128 MB of Parquet, so a file of
        # millions of baskets would mine on one or two cores of the whole cluster.
        growth.setNumPartitions(self.num_partitions or session.sparkContext.defaultParallelism)
        # Empty baskets only add to the denominator, which we keep ourselves (n_baskets).
        model = growth.fit(frame.where(F.size("items") > 0))
        found = model.freqItemsets
        if self.max_len is not None:
            found = found.where(F.size("items") <= self.max_len)
        items, counts = _collect(found)
        log.info(
            "spark mining: %s baskets (%s not empty), min count %s, %s frequent itemsets",
            n_baskets,
            nonempty,
            threshold,
            len(items),
        )
        labels, levels = levels_from_itemsets(items, counts, self.max_len)
        return MinedItemsets(labels=labels, n_baskets=n_baskets, min_count=threshold, levels=levels)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", master={self.master!r})"


def _is_dataframe(value: Any) -> bool:
    return type(value).__module__.startswith("pyspark.sql") and hasattr(value, "sparkSession")


def _collect(frame) -> tuple[list[list[Hashable]], np.ndarray]:
    """The itemsets and their counts, through Arrow when pyspark has it (one columnar transfer)."""
    if hasattr(frame, "toArrow"):
        table = frame.select("items", "freq").toArrow()
        return table.column("items").to_pylist(), table.column("freq").to_numpy()
    rows = frame.select("items", "freq").collect()
    return [list(row["items"]) for row in rows], np.array([row["freq"] for row in rows], dtype=np.int64)


__all__ = ["SparkAssociationRules", "SparkUnavailableError", "spark_min_support", "start_session"]
