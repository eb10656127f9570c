"""`chatcrm import orders` at the size of the full public Online Retail data set (541,909 rows), or
`chatcrm import customers` of a 100,000-row customer list from .xlsx and from CSV (``--customers``).

Orders: the full file is not shipped, so the benchmark builds one of the same size and shape from the
2,000-row sample: invoices renumbered, customers spread over ~4,300 ids, dates spread over a
year, the sample's cancellations and anonymous rows kept in proportion. Target: under 60 s on SQLite.

Customers (benchmarks.customer_list builds the file): each file is imported into a fresh database, then
a second file with a changed value in every row is imported (every row an update), then that file once
more (every row already there). Each import runs in a process of its own, so the peak resident size
reported is that import's.

    python -m benchmarks import                  # SQLite, 541,909 rows
    python -m benchmarks import -- --rows 100000 --postgresql
    python -m benchmarks import -- --customers 100000 --postgresql
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def scratch_postgresql() -> Iterator[str]:
    """A URL of a fresh PostgreSQL database on the server of TEST_DATABASE_URL, dropped afterwards."""
    name = f"chatcrm_import_bench_{os.getpid()}_{time.monotonic_ns()}"
    admin = sa.create_engine(db.normalize_url(PG_ADMIN), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(db.normalize_url(PG_ADMIN)).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def customers_child(url: str, path: str, chunk_size: str) -> None:
    """In a process of its own: one `chatcrm import customers` of ``path``; prints what it did as JSON."""
    import json

    from crm_core.actor import Actor
    from crm_core.importing.run import error_report_path, import_table
    from crm_core.importing.sources import open_table

    engine = db.create_engine(url)
    factory = db.session_factory(engine)
    started = time.perf_counter()
    with UnitOfWork(factory, Actor(user_id=None, name="import customers", platform="cli")) as uow:
        options = {"chunk_size": int(chunk_size)} if int(chunk_size) else {}
        report = import_table(uow, "customers", open_table(path), options=options)
    if report.problems:
        report.write_errors(error_report_path(path, "customers"))
    elapsed = time.perf_counter() - started
    engine.dispose()
    print(
        json.dumps(
            {
                "rows": report.rows,
                "created": sum(report.created.values()),
                "updated": sum(report.updated.values()),
                "unchanged": sum(report.unchanged.values()),
                "skipped": report.skipped_rows,
                "seconds": elapsed,
                "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def _import_customers(url: str, path: Path, chunk_size: int) -> dict[str, float]:
    import json

    command = [sys.executable, "-m", "benchmarks.bench_import", "--child", url, str(path), str(chunk_size)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"the import failed:\n{result.stderr}")
    outcome: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome


def bench_customers(rows: int, postgresql: bool, chunk_size: int, formats: list[str]) -> None:
    from benchmarks import customer_list

    workdir = Path(tempfile.mkdtemp(prefix="chatcrm-import-customers-"))
    started = time.perf_counter()
    files = {}
    for fmt in formats:
        for version in (1, 2):
            path = workdir / f"customers-v{version}.{fmt}"
            customer_list.write(path, rows, version=version)
            files[fmt, version] = path
    print(f"files: {rows:,} customers each, built in {time.perf_counter() - started:.0f} s ({workdir})")
    print("database    file  run                     seconds   rows/s  peak MiB  created  updated  unchanged  skipped")

    def runs(label: str, url: str, fmt: str) -> None:
        customer_list.prepare(url)
        for what, version in (("first import", 1), ("re-import, all changed", 2), ("re-import, unchanged", 2)):
            got = _import_customers(url, files[fmt, version], chunk_size)
            print(
                f"{label:<10}  {fmt:<4}  {what:<22}  {got['seconds']:7.1f}  {got['rows'] / got['seconds']:7,.0f}"
                f"  {got['peak_mib']:8.0f}  {got['created']:7,.0f}  {got['updated']:7,.0f}  {got['unchanged']:9,.0f}"
                f"  {got['skipped']:7,.0f}",
                flush=True,
            )

    for fmt in formats:
        runs("SQLite", f"sqlite:///{workdir / f'import-{fmt}.db'}", fmt)
        if postgresql:
            with scratch_postgresql() as url:
                runs("PostgreSQL", url, fmt)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        customers_child(*argv[1:4])
        return
    parser = argparse.ArgumentParser(prog="bench import")
    parser.add_argument("--rows", type=int, default=541_909)
    parser.add_argument("--postgresql", action="store_true", help="also import into a fresh PostgreSQL database")
    parser.add_argument(
        "--customers", type=int, default=0, help="import a customer list of this many rows instead of orders"
    )
    parser.add_argument("--chunk-size", type=int, default=0, help="rows a chunk of the customer import takes")
    parser.add_argument("--formats", default="xlsx,csv", help="the customer list's file formats, comma-separated")
    args = parser.parse_args(argv)
    if args.customers:
        bench_customers(args.customers, args.postgresql, args.chunk_size, args.formats.split(","))
        return
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
        with scratch_postgresql() as url:
            elapsed, _ = run(url, path)
        print(f"PostgreSQL: {elapsed:.1f} s ({args.rows / elapsed:,.0f} rows/s)")


if __name__ == "__main__":
    main(sys.argv[1:])
