"""The PostgreSQL test database that each test process reuses is, at every checkout, what a fresh
copy of the migrated template would be: no rows, sequences from the start, the template's schema."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from tests.conftest import ReusedPgDatabase

INSERT_PRODUCT = (
    "INSERT INTO products (sku, name, price_cents, currency, active, created_at, updated_at)"
    " VALUES ('sku-1', 'Widget', 100, 'EUR', true, now(), now()) RETURNING id"
)


@pytest.fixture
def reused(pg_admin, pg_template):
    if pg_admin is None:
        pytest.skip("PostgreSQL is not available")
    database = ReusedPgDatabase(pg_admin, pg_template, name=f"chatcrm_reuse_{os.getpid()}")
    yield database
    database.drop()


def _scalar(url: str, sql: str):
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            result = connection.exec_driver_sql(sql)
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def test_each_checkout_is_empty_with_sequences_restarted_and_lingering_connections_closed(reused):
    url = reused.checkout()
    assert _scalar(url, INSERT_PRODUCT) == 1
    assert _scalar(url, INSERT_PRODUCT.replace("sku-1", "sku-2")) == 2
    # A connection the test left open, inside a transaction holding a lock on the rows.
    lingering = sa.create_engine(url, poolclass=sa.pool.NullPool).connect()
    lingering.exec_driver_sql("SELECT * FROM products FOR UPDATE").all()

    again = reused.checkout()
    assert again == url
    assert _scalar(url, "SELECT count(*) FROM products") == 0
    assert _scalar(url, INSERT_PRODUCT) == 1
    with pytest.raises(sa.exc.DBAPIError):
        lingering.exec_driver_sql("SELECT 1").all()
    lingering.invalidate()
    lingering.close()
    # alembic's row stays: the database is still migrated.
    assert _scalar(url, "SELECT count(*) FROM alembic_version") == 1
    # Commits do not wait for the disk (no test crashes the server).
    assert _scalar(url, "SHOW synchronous_commit") == "off"


def test_a_changed_schema_brings_a_new_copy_of_the_template(reused):
    url = reused.checkout()
    _scalar(url, "ALTER TABLE products RENAME TO products_away")
    reused.checkout()
    assert _scalar(url, "SELECT count(*) FROM products") == 0
    assert _scalar(url, "SELECT to_regclass('products_away') IS NULL")
