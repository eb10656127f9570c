"""`chatcrm import orders` at the size of the full public Online Retail data set (541,909 rows).

The full file is not shipped, so the benchmark builds one of the same size and shape from the
2,000-row sample: invoices renumbered, customers spread over ~4,300 ids, dates spread over a
year, the sample's cancellations and anonymous rows kept in proportion. Target: under 60 s on SQLite.

    python -m benchmarks import                  # SQLite, 541,909 rows
    python -m benchmarks import -- --rows 100000 --postgresql
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from benchmarks import keyed_engine
from crm_core import db
from crm_core.importing.retail_orders import import_retail_orders
from crm_core.uow import UnitOfWork

SAMPLE = (
    Path(os.environ.get("CHATCRM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    / "online_retail_sample.csv"
)
PG_ADMIN = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def build_file(rows: int, path: Path, seed: int = 3) -> None:
    rng = random.Random(seed)
    with SAMPLE.open(encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        sample = list(reader)
    invoices: dict[str, list[list[str]]] = {}
    for row in sample:
        invoices.setdefault(row[0], []).append(row)
    groups = list(invoices.values())
    written = 0
    serial = 600000
    start = datetime(2010, 12, 1, 8, 0)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        while written < rows:
            group = rng.choice(groups)
            serial += 1
            number = ("C" if group[0][0].startswith("C") else "") + str(serial)
            customer = "" if not group[0][6] else str(12346 + rng.randrange(4300))
            moment = (start + timedelta(minutes=serial % 525600)).strftime("%Y-%m-%d %H:%M:%S")
            for row in group[: rows - written]:
                writer.writerow([number, row[1], row[2], row[3], moment, row[5], customer, row[7]])
                written += 1


def run(url: str, path: Path) -> tuple[float, str]:
    engine = keyed_engine(url)
    db.upgrade(engine)
    factory = db.session_factory(engine)
    started = time.perf_counter()
    with UnitOfWork(factory) as uow:
        report = import_retail_orders(uow, path, currency="GBP")
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, report.summary()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench import")
    parser.add_argument("--rows", type=int, default=541_909)
    parser.add_argument("--postgresql", action="store_true", help="also import into a fresh PostgreSQL database")
    args = parser.parse_args(argv)
    if not SAMPLE.exists():
        print(f"skipped: {SAMPLE} is not available (set CHATCRM_SHARED_DATA)")
        return
    workdir = Path(tempfile.mkdtemp(prefix="chatcrm-import-"))
    path = workdir / "retail.csv"
    build_file(args.rows, path)
    print(f"file: {args.rows:,} rows, {path.stat().st_size / 1e6:.1f} MB")
    elapsed, summary = run(f"sqlite:///{workdir / 'import.db'}", path)
    print(
        f"SQLite: {elapsed:.1f} s ({args.rows / elapsed:,.0f} rows/s), "
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    print(summary)
    if args.postgresql:
        name = f"chatcrm_import_bench_{os.getpid()}"
        admin = sa.create_engine(db.normalize_url(PG_ADMIN), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            url = (
                sa.engine.make_url(db.normalize_url(PG_ADMIN)).set(database=name).render_as_string(hide_password=False)
            )
            elapsed, _ = run(url, path)
            print(f"PostgreSQL: {elapsed:.1f} s ({args.rows / elapsed:,.0f} rows/s)")
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
