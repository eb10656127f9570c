"""`chatcrm backup` and `chatcrm restore` on the full Online Retail data set, both databases.

The data set is built as the import benchmark builds it (541,909 order lines from the shipped
sample, about 25,000 orders and 4,300 customers) and imported into SQLite. Then, each step a whole
`chatcrm` process (wall time and that process's peak RSS):

    backup SQLite → restore into an empty PostgreSQL → backup PostgreSQL → restore into a new SQLite

and the two restored databases are compared with the source table by table (the restore itself
verifies counts and checksums against the manifest).

    python -m benchmarks backup                      # 541,909 order lines
    python -m benchmarks backup -- --rows 50000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from benchmarks.bench_import import PG_ADMIN, SAMPLE, build_file, run
from crm_core import db

KEY = "benchmark key that is not a secret at all"


# The command's own peak: VmHWM of its address space. (A child's ru_maxrss also counts the pages
# it shared with this process when it was forked, which would add this process's size.)
CHILD = """
import sys
from bot.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    print(next(line for line in status if line.startswith("VmHWM")).split()[1], file=sys.stderr)
sys.exit(code)
"""


def _chatcrm(url: str, *args: str) -> tuple[float, float, str]:
    """Run `chatcrm ARGS` on ``url``: (wall seconds, peak RSS in MiB, its output)."""
    env = {**os.environ, "DATABASE_URL": url, "CHATCRM_SECRET_KEY": KEY}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"chatcrm {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    peak_kib = int(done.stderr.strip().splitlines()[-1])
    return elapsed, peak_kib / 1024, done.stdout.strip()


def _fingerprint(url: str) -> dict[str, tuple[int, str]]:
    from crm_core.backup.rows import specs_of, table_checksum
    from crm_core.models import Base

    engine = db.create_engine(url)
    try:
        with engine.connect() as connection:
            result = {}
            for spec in specs_of(Base.metadata):
                checksum = table_checksum(connection, spec)
                result[spec.name] = (checksum.rows, checksum.hexdigest)
            return result
    finally:
        engine.dispose()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench backup")
    parser.add_argument("--rows", type=int, default=541_909, help="order lines (default: the full data set)")
    args = parser.parse_args(argv)
    if not SAMPLE.exists():
        print(f"skipped: {SAMPLE} is not available (set CHATCRM_SHARED_DATA)")
        return
    workdir = Path(tempfile.mkdtemp(prefix="chatcrm-backup-"))
    csv_path, source = workdir / "retail.csv", f"sqlite:///{workdir / 'source.db'}"
    build_file(args.rows, csv_path)
    elapsed, summary = run(source, csv_path)
    print(
        f"data: {summary} (imported in {elapsed:.1f} s); SQLite file {(workdir / 'source.db').stat().st_size / 1e6:.0f} MB"
    )
    expected = _fingerprint(source)
    print(f"rows in all tables: {sum(rows for rows, _ in expected.values()):,}")

    name = f"chatcrm_backup_bench_{os.getpid()}"
    admin = sa.create_engine(db.normalize_url(PG_ADMIN), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    postgres = sa.engine.make_url(db.normalize_url(PG_ADMIN)).set(database=name).render_as_string(hide_password=False)
    steps = [
        ("backup SQLite", source, ("backup", "--out", str(workdir / "sqlite.backup"))),
        ("restore into PostgreSQL", postgres, ("restore", str(workdir / "sqlite.backup"))),
        ("backup PostgreSQL", postgres, ("backup", "--out", str(workdir / "postgresql.backup"))),
        (
            "restore into SQLite",
            f"sqlite:///{workdir / 'restored.db'}",
            ("restore", str(workdir / "postgresql.backup")),
        ),
    ]
    try:
        for label, url, command in steps:
            seconds, peak, output = _chatcrm(url, *command)
            print(f"{label:<26} {seconds:6.1f} s   peak RSS {peak:6.0f} MiB   {output.splitlines()[-1]}")
        size = (workdir / "sqlite.backup").stat().st_size
        print(f"backup file: {size / 1e6:.1f} MB")
        for label, url in (("PostgreSQL", postgres), ("SQLite", steps[-1][1])):
            same = _fingerprint(url) == expected
            print(f"restored {label} equals the source in every table: {same}")
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
