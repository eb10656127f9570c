"""The REST API at scale, over real HTTP (chatcrm web's ASGI app under uvicorn on loopback), on SQLite
and PostgreSQL with 100,000 customers (the data of ``bench_search``, generated once and reused):

- ``GET /api/v1/customers?q=…``: p50/p95/p99 of exact, prefix and typo searches. Target: p95 < 25 ms;
- ``GET /api/v1/customers?filter=country=DE&limit=500``, following ``next`` through every page: rows/s;
- ``POST /api/v1/orders/bulk``: requests of 10,000 order lines (1,000 orders of 10 lines), lines/s.
  Target: at least 20,000 lines/s on PostgreSQL.

The client is one keep-alive connection in the same process; the rate limit is lifted for the run.
Beside the wall times it reports, per request, the SQL statements, transactions (commits) and pool
checkouts, the process's CPU time (server and client, which share the process) and, for a PostgreSQL
on this machine, the CPU time of its backends serving the app (read from /proc): on a shared machine
these say more than the wall times, which other people's work inflates.

    python -m benchmarks api                        # both databases
    python -m benchmarks api -- --only postgresql --queries 100 --bulk-requests 3
    python -m benchmarks api -- --lines 1000000 --tag _mine   # own copies of the data (the bulk part writes)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import sqlalchemy as sa

from benchmarks import BENCH_SECRET_KEY, keyed_engine
from benchmarks.bench_search import _database_urls, _percentile, _typo, generate, sync_order_ids
from crm_core import db
from crm_core.models import Customer, Product, User
from crm_core.services import api_tokens

BULK_ORDERS, BULK_LINES_PER_ORDER = 1000, 10


@dataclass
class Cost:
    """What a batch of requests cost the process: per request, via ``per``."""

    requests: int
    # Sent through SQLAlchemy: "statements", "commits" (transactions), "checkouts" (pool connections).
    sql: dict[str, int] = field(default_factory=dict)
    # Seconds: this process (server and client), and PostgreSQL's backends (None: not measurable here,
    # e.g. SQLite or a server on another machine).
    cpu: float = 0.0
    database_cpu: float | None = None

    def per(self) -> str:
        n = max(1, self.requests)
        database = "" if self.database_cpu is None else f", {self.database_cpu / n * 1000:6.2f} ms PostgreSQL CPU"
        counts = ", ".join(
            f"{self.sql.get(name, 0) / n:5.1f} {name}" for name in ("statements", "commits", "checkouts")
        )
        return f"{counts}, {self.cpu / n * 1000:6.2f} ms CPU{database}"


class Counter:
    """Counts the statements, commits and connection checkouts of an engine while ``measuring``."""

    def __init__(self, engine: sa.Engine):
        self.statements = self.commits = self.checkouts = 0
        self.backends: set[int] = set()
        sa.event.listen(engine, "before_cursor_execute", self._statement)
        sa.event.listen(engine, "commit", self._commit)
        sa.event.listen(engine.pool, "checkout", self._checkout)
        if engine.dialect.name == "postgresql" and engine.url.host in ("127.0.0.1", "localhost", None):
            sa.event.listen(engine.pool, "connect", self._connect)
            engine.dispose()  # connections made from now on are the ones whose backends we know

    def _connect(self, dbapi_connection: object, _record: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("SELECT pg_backend_pid()")
        self.backends.add(cursor.fetchone()[0])
        cursor.close()
        dbapi_connection.commit()  # type: ignore[attr-defined]

    def _backend_cpu(self) -> float | None:
        """CPU seconds (user + system) the app's PostgreSQL backends have used, or None if unreadable."""
        if not self.backends:
            return None
        total = 0
        for pid in self.backends:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rpartition(")")[2].split()
            except OSError:
                return None
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")

    def _statement(self, *_args: object) -> None:
        self.statements += 1

    def _commit(self, *_args: object) -> None:
        self.commits += 1

    def _checkout(self, *_args: object) -> None:
        self.checkouts += 1

    @contextmanager
    def measuring(self, requests: int) -> Iterator[Cost]:
        cost = Cost(requests)
        before = (self.statements, self.commits, self.checkouts, time.process_time())
        backends, database_before = set(self.backends), self._backend_cpu()
        yield cost
        cost.sql = {
            "statements": self.statements - before[0],
            "commits": self.commits - before[1],
            "checkouts": self.checkouts - before[2],
        }
        cost.cpu = time.process_time() - before[3]
        database_after = self._backend_cpu()
        if database_before is not None and database_after is not None and backends == self.backends:
            cost.database_cpu = database_after - database_before


def _token(app) -> str:
    with app.uow() as uow:
        user = uow.session.scalars(sa.select(User).where(User.name == "Bench")).one()
        # A fresh name each run: no clash with the tokens of earlier runs.
        return api_tokens.create(uow, user, f"bench-{uuid.uuid4().hex[:8]}", [], None).secret


def _search(
    http: httpx.Client, app, counter: Counter, queries: int, seed: int = 11
) -> tuple[dict[str, list[float]], dict[str, Cost]]:
    rng = random.Random(seed)
    with app.engine.connect() as connection:
        total = connection.execute(sa.select(sa.func.count()).select_from(Customer)).scalar_one()
        ids = rng.sample(range(1, total + 1), queries)
        names = dict(connection.execute(sa.select(Customer.id, Customer.name).where(Customer.id.in_(ids))).all())
    kinds = {
        "exact": [names[i] for i in ids],
        "prefix": [names[i].split()[0][:4] for i in ids],
        "typo": [_typo(rng, names[i]) for i in ids],
    }
    timings: dict[str, list[float]] = {}
    costs: dict[str, Cost] = {}
    for kind, texts in kinds.items():
        for query in texts[:20]:  # warm caches
            http.get("/customers", params={"q": query})
        samples = []
        with counter.measuring(len(texts)) as costs[kind]:
            for query in texts:
                started = time.perf_counter()
                response = http.get("/customers", params={"q": query})
                samples.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.text
        timings[kind] = samples
    return timings, costs


def _page_through(http: httpx.Client, counter: Counter) -> tuple[int, int, float, Cost]:
    rows = pages = 0
    params: dict[str, str | int] = {"filter": "country=DE", "limit": 500}
    started = time.perf_counter()
    with counter.measuring(0) as cost:
        while True:
            body = http.get("/customers", params=params).raise_for_status().json()
            rows += len(body["items"])
            pages += 1
            if body["next"] is None:
                break
            params = {"filter": "country=DE", "limit": 500, "cursor": body["next"]}
    cost.requests = pages
    return rows, pages, time.perf_counter() - started, cost


def _bulk(http: httpx.Client, app, counter: Counter, requests: int, seed: int = 5) -> tuple[int, float, Cost]:
    rng = random.Random(seed)
    with app.engine.connect() as connection:
        skus = list(connection.execute(sa.select(Product.sku)).scalars())
        customers = connection.execute(sa.select(sa.func.count()).select_from(Customer)).scalar_one()
    run = uuid.uuid4().hex[:8]
    bodies = [
        json.dumps(
            {
                "orders": [
                    {
                        "number": f"API-{run}-{r}-{n}",
                        "customer_id": rng.randint(1, customers),
                        "ordered_at": "2026-10-01T12:00:00+00:00",
                        "lines": [
                            {"sku": sku, "quantity": rng.randint(1, 5)}
                            for sku in rng.sample(skus, min(BULK_LINES_PER_ORDER, len(skus)))
                        ],
                    }
                    for n in range(BULK_ORDERS)
                ]
            }
        ).encode()
        for r in range(requests)
    ]
    lines = 0
    started = time.perf_counter()
    with counter.measuring(requests) as cost:
        for body in bodies:
            response = http.post("/orders/bulk", content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 200, response.text[:500]
            lines += response.json()["lines_created"]
    return lines, time.perf_counter() - started, cost


def measure(url: str, queries: int, bulk_requests: int) -> dict[str, object]:
    from bot.bootstrap import build_app
    from bot.settings import Settings
    from bot.web import build_web_app
    from tests.fakes.servers import serve_asgi

    unlimited = {"CHATCRM_API_RATE": "1000000", "CHATCRM_API_BURST": "1000000"}
    app = build_app(Settings(database_url=url, secret_key=BENCH_SECRET_KEY, extra=unlimited))
    try:
        headers = {"Authorization": f"Bearer {_token(app)}"}
        counter = Counter(app.engine)
        with serve_asgi(build_web_app(app, [], freeze_heap=True)) as base_url:
            with httpx.Client(base_url=f"{base_url}/api/v1", headers=headers, timeout=120) as http:
                search = _search(http, app, counter, queries)
                paged = _page_through(http, counter)
                bulk = _bulk(http, app, counter, bulk_requests) if bulk_requests else None
    finally:
        app.close()
    return {"search": search, "paged": paged, "bulk": bulk}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench api")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=200_000, help="order lines of the generated data")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--bulk-requests", type=int, default=5)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--fresh", action="store_true", help="regenerate the data even if a copy exists")
    parser.add_argument("--tag", default="", help="suffix of the data copies' names (e.g. _mine), to keep your own")
    args = parser.parse_args(argv)
    if args.tag and not args.tag.replace("_", "").isalnum():
        parser.error("--tag takes letters, digits and _")
    results = {}
    for name, url in _database_urls(args.only, args.fresh, args.customers, args.lines, args.tag).items():
        engine = keyed_engine(url)
        try:
            # A copy made by an older chatcrm is brought up to date rather than generated again.
            db.upgrade(engine)
            with engine.connect() as connection:
                populated = bool(connection.execute(sa.select(sa.func.count()).select_from(Customer)).scalar_one())
            if populated:
                # A copy made before bench_search moved the id sequence (see sync_order_ids).
                sync_order_ids(engine)
                if engine.dialect.name == "postgresql":
                    # Earlier runs' bulk orders change the tables: fresh statistics, as autovacuum would
                    # keep them (it may be off on a test server; stale ones made the typo search
                    # 20 times slower and the bulk request's statements JIT-compiled).
                    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                        connection.exec_driver_sql("ANALYZE")
        finally:
            engine.dispose()
        if not populated:
            print(f"{name}: generating data …", flush=True)
            generate(url, args.customers, args.lines)
        print(f"{name}: measuring …", flush=True)
        results[name] = measure(url, args.queries, args.bulk_requests)
    print(f"\nGET /api/v1/customers?q=… over HTTP, {args.customers:,} customers, {args.queries} queries per kind (ms)")
    print(f"{'database':<11} {'query':<7} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}")
    for name, result in results.items():
        timings, costs = result["search"]  # type: ignore[misc]
        for kind, samples in timings.items():
            print(
                f"{name:<11} {kind:<7} {statistics.median(samples):7.2f} {_percentile(samples, 95):7.2f} "
                f"{_percentile(samples, 99):7.2f} {max(samples):7.2f}   a request: {costs[kind].per()}"
            )
    print("\nGET /api/v1/customers?filter=country=DE&limit=500, every page")
    for name, result in results.items():
        rows, pages, seconds, cost = result["paged"]  # type: ignore[misc]
        print(f"{name:<11} {rows:,} rows in {pages} pages, {seconds:.2f} s: {rows / seconds:,.0f} rows/s")
        print(f"{'':<11} a page: {cost.per()}")
    print(f"\nPOST /api/v1/orders/bulk, {BULK_ORDERS:,} orders x {BULK_LINES_PER_ORDER} lines a request")
    for name, result in results.items():
        if result["bulk"] is None:
            continue
        lines, seconds, cost = result["bulk"]  # type: ignore[misc]
        print(f"{name:<11} {lines:,} lines in {seconds:.2f} s: {lines / seconds:,.0f} lines/s")
        print(f"{'':<11} a request: {cost.per()}")
