"""The mining run on Apache Spark: the window's baskets exported to Parquet, mined by Spark.

``CHATCRM_MINING_ENGINE=spark`` (or ``chatcrm mine --engine spark``) sends ``run_mining`` here.
Our process streams the purchase lines of the window from the database (``yield_per``: a
server-side cursor on PostgreSQL), groups them into one basket per order and writes them to a
Parquet file with pyarrow, a chunk of baskets at a time; Spark reads that file in parallel and
``SparkAssociationRules`` returns the same rules the local engine would. Storing them and
recommending from them is ``market_basket``'s, unchanged.

Why a Parquet export rather than Spark's JDBC source: it works on SQLite (the embedded default)
as on PostgreSQL, with the same query and the same basket definition as the local engine; it
reads the window in one consistent transaction; the cluster needs no database driver jar and no
route or credentials to the production database, and Spark gets baskets already grouped (a
JDBC read hands it order lines to shuffle into baskets first). The file is written to
``$CHATCRM_SPARK_STAGING`` (default: the temp directory), which on a cluster must be a
directory the executors see as well, and removed after the run.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import datetime

from crm_core.mining.parquet_baskets import ParquetBaskets, write_baskets
from crm_core.mining.spark_engine import SparkAssociationRules, require_pyspark
from crm_core.services.market_basket import MiningSettings, basket_lines
from crm_core.uow import UnitOfWork

# Order lines fetched per round trip while exporting.
FETCH_ROWS = 20_000


def stream_baskets(uow: UnitOfWork, since: datetime, until: datetime | None) -> Iterator[list[int]]:
    """One list of product ids per purchase order of the window, read a batch of lines at a time."""
    rows = uow.session.execute(basket_lines(since, until).execution_options(yield_per=FETCH_ROWS))
    basket: list[int] = []
    current_order = None
    for order_id, product_id in rows:
        if order_id != current_order:
            if current_order is not None:
                yield basket
            basket, current_order = [], order_id
        basket.append(product_id)
    if current_order is not None:
        yield basket


def export_baskets(uow: UnitOfWork, since: datetime, until: datetime | None, path: str) -> ParquetBaskets:
    """Write the window's baskets to a Parquet file at ``path``."""
    return write_baskets(stream_baskets(uow, since, until), path)


def mine_on_spark(
    uow: UnitOfWork, settings: MiningSettings, since: datetime, until: datetime | None
) -> tuple[int, SparkAssociationRules | None]:
    """(number of baskets, the fitted model or None when there were none) for the window."""
    require_pyspark()  # before the export: a missing extra is said at once
    with tempfile.TemporaryDirectory(prefix="chatcrm-baskets-", dir=settings.spark_staging) as folder:
        baskets = export_baskets(uow, since, until, os.path.join(folder, "baskets.parquet"))
        if not baskets.n_baskets:
            return 0, None
        model = SparkAssociationRules(
            settings.min_support,
            settings.min_confidence,
            min_lift=settings.min_lift,
            max_len=settings.max_len,
            master=settings.spark_master,
            staging_dir=settings.spark_staging,
        ).fit(baskets)
    return baskets.n_baskets, model
