"""The Spark mining engine gives the local engine's rules, count for count, from files and the database.

Needs pyspark (``pip install 'chatcrm[spark]'``) and Java 17+; skipped without them. One Spark
session serves the whole module (starting one costs 10-40 s here), and the module's tests run on
one xdist worker (``xdist_group``), so ``make test`` starts one JVM for them, not one per worker.
"""

from __future__ import annotations

import os
import shutil

import pytest
import sqlalchemy as sa

from crm_core.mining import AssociationRules, read_baskets
from crm_core.models import MinedRule, MiningRun
from tests.shared_data import shared_file
from tests.test_recommendations import NOW, _nightly, _outbox, shop  # noqa: F401  (shop is a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.xdist_group("spark")]


def _java_missing() -> bool:
    home = os.environ.get("JAVA_HOME")
    return shutil.which("java") is None and not (home and os.path.exists(os.path.join(home, "bin", "java")))


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark", reason="the Spark engine needs pyspark: pip install 'chatcrm[spark]'")
    if _java_missing():
        pytest.skip("the Spark engine needs Java 17 or newer (no java on PATH or in JAVA_HOME)")
    from crm_core.mining.spark_engine import start_session

    # Two local threads: the machine has 2 cores and xdist's other workers run meanwhile.
    session, started = start_session("local[2]", "chatcrm-tests", {"spark.sql.shuffle.partitions": "4"})
    yield session
    if started:
        session.stop()


def _both(baskets, *args, **kwargs):
    from crm_core.mining.spark_engine import SparkAssociationRules

    return AssociationRules(*args, **kwargs).fit(baskets), SparkAssociationRules(*args, **kwargs).fit(baskets)


def test_groceries_gives_the_same_410_rules_with_the_same_counts(spark):
    baskets = read_baskets(shared_file("groceries.csv"))
    local, on_spark = _both(baskets, 0.001, 0.8)
    assert len(on_spark.rules_) == 410
    # Rule records compare every field: antecedent, consequent, support, confidence, lift, count.
    assert on_spark.rules_ == local.rules_
    assert on_spark.itemsets_ == local.itemsets_
    assert (on_spark.n_baskets_, on_spark.min_count_) == (9835, 10)


def test_thresholds_are_our_integer_counts_not_mllibs_float_product(spark):
    # 0.3 * 10 is 3.0000000000000004 in floating point: MLlib's own ceil(minSupport * n) would ask
    # for 4 baskets; we ask for 3, as arules does. The confidence of a -> b is exactly 0.6 (3/5),
    # which a float comparison can also get wrong; the empty baskets count in the denominator.
    baskets = [["a", "b"]] * 3 + [["a"]] * 2 + [["c", "b"]] * 3 + [[], []]
    local, on_spark = _both(baskets, 0.3, 0.6)
    assert on_spark.min_count_ == local.min_count_ == 3
    assert on_spark.rules_ == local.rules_
    assert [(r.antecedent, r.consequent, r.count) for r in on_spark.rules_] == [(("a",), "b", 3), (("c",), "b", 3)]
    assert on_spark.itemsets_ == local.itemsets_


def test_integer_items_lift_and_length_limits(spark):
    baskets = [[1, 2, 3, 4], [1, 2, 3], [1, 2, 4], [2, 3, 4], [1, 2, 3, 4], [5], [1, 5, 5]]
    for kwargs in ({}, {"max_len": 2}, {"min_lift": 1.05}, {"max_len": 3, "min_lift": 0.5}):
        local, on_spark = _both(baskets, 2, 0.5, **kwargs)
        assert on_spark.rules_ == local.rules_, kwargs
        assert on_spark.itemsets_ == local.itemsets_, kwargs
    local, on_spark = _both(baskets, 0.99, 0.5)
    assert local.rules_ == on_spark.rules_ == [] and on_spark.itemsets_ == []


def test_parquet_and_dataframe_inputs(spark, tmp_path):
    from crm_core.mining.parquet_baskets import write_baskets
    from crm_core.mining.spark_engine import SparkAssociationRules

    baskets = read_baskets(shared_file("groceries.csv"))[:3000]
    local = AssociationRules(0.005, 0.5).fit(baskets)
    source = write_baskets(baskets, tmp_path / "groceries.parquet", chunk_baskets=700)
    assert source.n_baskets == 3000
    from_file = SparkAssociationRules(0.005, 0.5).fit(source)
    from_frame = SparkAssociationRules(0.005, 0.5).fit(spark.read.parquet(source.path))
    assert from_file.rules_ == from_frame.rules_ == local.rules_
    assert spark.sparkContext._jsc is not None  # the module's session is still running


def test_mixed_item_types_are_refused_with_a_clear_message(spark, tmp_path):
    from crm_core.mining.spark_engine import SparkAssociationRules

    with pytest.raises(TypeError, match="one type, all integers or all strings"):
        SparkAssociationRules(1, 0.5, staging_dir=str(tmp_path)).fit([[1, 2], ["x"]])
    assert list(tmp_path.iterdir()) == []  # the staging folder is cleaned up


@pytest.mark.usefixtures("spark")
def test_nightly_job_on_spark_stores_the_local_engines_rules(app, shop):  # noqa: F811
    _nightly(app, NOW)
    with app.uow() as uow:
        local = sorted(
            (tuple(r.antecedent), r.consequent_id, r.count) for r in uow.session.scalars(sa.select(MinedRule))
        )
    import time_machine

    from crm_core.scheduling import JobRun
    from crm_core.services.recommendation_digest import nightly_task

    with time_machine.travel(NOW, tick=False):
        nightly_task(JobRun("mining:nightly", NOW, {"CHATCRM_MINING_ENGINE": "spark"}, app.session_factory, {}))
    with app.uow() as uow:
        runs = uow.session.scalars(sa.select(MiningRun).order_by(MiningRun.id)).all()
        on_spark = sorted(
            (tuple(r.antecedent), r.consequent_id, r.count) for r in uow.session.scalars(sa.select(MinedRule))
        )
        assert {r.run_id for r in uow.session.scalars(sa.select(MinedRule))} == {runs[-1].id}
    assert len(runs) == 2 and runs[1].n_baskets == runs[0].n_baskets == 41
    assert runs[1].n_rules == runs[0].n_rules and runs[1].n_itemsets == runs[0].n_itemsets
    assert on_spark == local and local
    assert _outbox(app) == []  # no rep owns a customer here: nothing to post either way
