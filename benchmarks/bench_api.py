"""The REST API at scale, over real HTTP (chatcrm web's ASGI app under uvicorn on loopback), on SQLite
and PostgreSQL with 100,000 customers (the data of ``bench_search``, generated once and reused):

- ``GET /api/v1/customers?q=…``: p50/p95/p99 of exact, prefix and typo searches. Target: p95 < 25 ms;
- ``GET /api/v1/customers?filter=country=DE&limit=500``, following ``next`` through every page: rows/s;
- ``POST /api/v1/orders/bulk``: requests of 10,000 order lines (1,000 orders of 10 lines), lines/s.
  Target: at least 20,000 lines/s on PostgreSQL.

The client is one keep-alive connection in the same process; the rate limit is lifted for the run.

    python -m benchmarks api                        # both databases
    python -m benchmarks api -- --only postgresql --queries 100 --bulk-requests 3
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid

import httpx
import sqlalchemy as sa

from benchmarks import BENCH_SECRET_KEY, keyed_engine
from benchmarks.bench_search import _database_urls, _percentile, _typo, generate, sync_order_ids
from crm_core import db
from crm_core.models import Customer, Product, User
from crm_core.services import api_tokens

BULK_ORDERS, BULK_LINES_PER_ORDER = 1000, 10


def _token(app) -> str:
    with app.uow() as uow:
        user = uow.session.scalars(sa.select(User).where(User.name == "Bench")).one()
        # A fresh name each run: no clash with the tokens of earlier runs.
        return api_tokens.create(uow, user, f"bench-{uuid.uuid4().hex[:8]}", [], None).secret


def _search(http: httpx.Client, app, queries: int, seed: int = 11) -> dict[str, list[float]]:
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
    for kind, texts in kinds.items():
        for query in texts[:20]:  # warm caches
            http.get("/customers", params={"q": query})
        samples = []
        for query in texts:
            started = time.perf_counter()
            response = http.get("/customers", params={"q": query})
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.text
        timings[kind] = samples
    return timings


def _page_through(http: httpx.Client) -> tuple[int, int, float]:
    rows = pages = 0
    params: dict[str, str | int] = {"filter": "country=DE", "limit": 500}
    started = time.perf_counter()
    while True:
        body = http.get("/customers", params=params).raise_for_status().json()
        rows += len(body["items"])
        pages += 1
        if body["next"] is None:
            return rows, pages, time.perf_counter() - started
        params = {"filter": "country=DE", "limit": 500, "cursor": body["next"]}


def _bulk(http: httpx.Client, app, requests: int, seed: int = 5) -> tuple[int, float]:
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
    for body in bodies:
        response = http.post("/orders/bulk", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 200, response.text[:500]
        lines += response.json()["lines_created"]
    return lines, time.perf_counter() - started


def measure(url: str, queries: int, bulk_requests: int) -> dict[str, object]:
    from bot.bootstrap import build_app
    from bot.settings import Settings
    from bot.web import build_web_app
    from tests.fakes.servers import serve_asgi

    unlimited = {"CHATCRM_API_RATE": "1000000", "CHATCRM_API_BURST": "1000000"}
    app = build_app(Settings(database_url=url, secret_key=BENCH_SECRET_KEY, extra=unlimited))
    try:
        headers = {"Authorization": f"Bearer {_token(app)}"}
        with serve_asgi(build_web_app(app, [])) as base_url:
            with httpx.Client(base_url=f"{base_url}/api/v1", headers=headers, timeout=120) as http:
                search = _search(http, app, queries)
                paged = _page_through(http)
                bulk = _bulk(http, app, bulk_requests)
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
    args = parser.parse_args(argv)
    results = {}
    for name, url in _database_urls(args.only, args.fresh, args.customers, args.lines).items():
        engine = keyed_engine(url)
        try:
            # A copy made by an older chatcrm is brought up to date rather than generated again.
            db.upgrade(engine)
            with engine.connect() as connection:
                populated = bool(connection.execute(sa.select(sa.func.count()).select_from(Customer)).scalar_one())
            if populated:
                # A copy made before bench_search moved the id sequence (see sync_order_ids).
                sync_order_ids(engine)
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
        for kind, samples in result["search"].items():  # type: ignore[attr-defined]
            print(
                f"{name:<11} {kind:<7} {statistics.median(samples):7.2f} {_percentile(samples, 95):7.2f} "
                f"{_percentile(samples, 99):7.2f} {max(samples):7.2f}"
            )
    print("\nGET /api/v1/customers?filter=country=DE&limit=500, every page")
    for name, result in results.items():
        rows, pages, seconds = result["paged"]  # type: ignore[misc]
        print(f"{name:<11} {rows:,} rows in {pages} pages, {seconds:.2f} s: {rows / seconds:,.0f} rows/s")
    print(f"\nPOST /api/v1/orders/bulk, {BULK_ORDERS:,} orders x {BULK_LINES_PER_ORDER} lines a request")
    for name, result in results.items():
        lines, seconds = result["bulk"]  # type: ignore[misc]
        print(f"{name:<11} {lines:,} lines in {seconds:.2f} s: {lines / seconds:,.0f} lines/s")
