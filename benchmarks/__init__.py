"""Benchmarks for chatcrm: each ``bench_<name>.py`` module prints measured figures.

Run all with ``make bench`` or a selection with ``make bench BENCH_ARGS="mining search"``.
Benchmarks never run as part of the test suite; tests never assert wall-clock times.
"""

# The data copies' CHATCRM_SECRET_KEY: personal columns are encrypted as in production
# (crm_core.field_crypto), and PostgreSQL does not start without a key.
BENCH_SECRET_KEY = "chatcrm-benchmark-secret-key-not-for-production"


def keyed_engine(url: str, **kwargs):
    """``crm_core.db.create_engine`` with the benchmarks' key for the encrypted columns."""
    from crm_core import db, field_crypto

    engine = db.create_engine(url, **kwargs)
    field_crypto.use_keys(engine, field_crypto.FieldKeys([BENCH_SECRET_KEY.encode()]))
    return engine
