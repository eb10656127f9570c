"""`chatcrm export orders` at 100,000 and 1,000,000 order lines (CSV and xlsx): time, and peak memory of the
process doing it (memory must stay flat in the rows). The customer import has its own benchmark
(`python -m benchmarks import -- --customers 100000`).

Each export runs in a child process of its own, so its peak resident size (ru_maxrss) is its own.

    python -m benchmarks export                         # SQLite: 100k and 1M lines
    python -m benchmarks export -- --sizes 100000 --formats xlsx
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from benchmarks import keyed_engine
from crm_core import db
from crm_core.actor import Actor
from crm_core.uow import UnitOfWork

LINES_PER_ORDER = 5


def seed_orders(url: str, lines: int) -> None:
    """``lines`` order lines over lines/5 orders, 2,000 customers and 500 products, inserted in bulk."""
    from crm_core.models import Customer, Order, OrderLine, Product

    engine = keyed_engine(url)
    db.upgrade(engine)
    start = datetime(2010, 12, 1, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(Customer),
            [{"name": f"Customer {i}", "external_ref": f"bench:{i}", "kind": "person", "search_name": f"customer {i}",
              "search_keys": "", "lifetime_value_cents": 0, "order_count": 0, "created_at": start, "updated_at": start}
             for i in range(1, 2001)],
        )  # fmt: skip
        connection.execute(
            sa.insert(Product),
            [{"sku": f"SKU{i:05d}", "name": f"Product {i}", "price_cents": 100 + i, "currency": "GBP", "active": True,
              "created_at": start, "updated_at": start} for i in range(1, 501)],
        )  # fmt: skip
        orders = lines // LINES_PER_ORDER
        for first in range(0, orders, 20000):
            chunk = range(first, min(first + 20000, orders))
            connection.execute(
                sa.insert(Order),
                [{"id": n + 1, "number": f"{500000 + n}", "customer_id": n % 2000 + 1, "kind": "purchase",
                  "ordered_at": start + timedelta(minutes=n), "currency": "GBP", "total_cents": 0, "country": "GB",
                  "source": "import"} for n in chunk],
            )  # fmt: skip
            connection.execute(
                sa.insert(OrderLine),
                [{"order_id": n + 1, "product_id": (n * 7 + k) % 500 + 1, "quantity": k + 1, "unit_price_cents": 250,
                  "line_total_cents": 250 * (k + 1)} for n in chunk for k in range(LINES_PER_ORDER)],
            )  # fmt: skip
    engine.dispose()


def child(url: str, kind: str, fmt: str, out: str) -> None:
    """Run in its own process: one export; prints rows, seconds and peak RSS in MiB."""
    from crm_core.exporting.run import export

    engine = keyed_engine(url)
    factory = db.session_factory(engine)
    started = time.perf_counter()
    with UnitOfWork(factory, Actor(user_id=None, name="bench", platform="cli")) as uow:
        count = export(uow, kind, fmt=fmt, out=out)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{count}\t{elapsed:.1f}\t{peak:.0f}", flush=True)


def _run_child(url: str, kind: str, fmt: str, out: Path) -> tuple[int, float, float]:
    args = [sys.executable, "-m", "benchmarks.bench_export", "--child", url, kind, fmt, str(out)]
    result = subprocess.run(args, capture_output=True, text=True, check=True)
    count, seconds, peak = result.stdout.strip().splitlines()[-1].split("\t")
    return int(count), float(seconds), float(peak)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        child(*argv[1:5])
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks export")
    parser.add_argument("--sizes", default="100000,1000000", help="order line counts, comma-separated")
    parser.add_argument("--formats", default="csv,xlsx", help="export formats, comma-separated")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("lines       format  seconds  peak MiB  file MiB")
        for size in (int(s) for s in options.sizes.split(",")):
            url = f"sqlite:///{folder / f'orders-{size}.db'}"
            seed_orders(url, size)
            for fmt in options.formats.split(","):
                out = folder / f"orders-{size}.{fmt}"
                count, seconds, peak = _run_child(url, "orders", fmt, out)
                print(
                    f"{count:>10,}  {fmt:<6}  {seconds:7.1f}  {peak:8.0f}  {out.stat().st_size / 2**20:8.1f}",
                    flush=True,
                )
                out.unlink()


if __name__ == "__main__":
    main(sys.argv[1:])
