"""/customer latency at scale: 100,000 customers and 1,000,000 order lines, on SQLite and PostgreSQL.

Generates the data with bulk inserts (once; reused on later runs), then times the whole
``/customer <query>`` path through the real dispatcher (identity, role check, search, card) for
exact, prefix and typo queries on names, the first two words of a company's name (its people),
an email domain (``@helixweberdental.example``) and the last 7 digits of a phone number stored in
one of several formats, and prints p50/p95/p99. Target: p95 under 20 ms on both.

One customer in five has a Chinese name (people such as 张伟明, registered company names such as
深圳市华创科技有限公司; a fifth of the companies too), and the same is timed for Chinese queries:
the whole name (zh-exact), its first three characters (zh-prefix), a trade name and trade from the
middle of a company name (zh-piece: "华创科技"), the name with one character replaced (zh-typo), and
a company's trade name and trade (zh-company: its people).

    python -m benchmarks search                      # both databases, default sizes
    python -m benchmarks search -- --customers 20000 --lines 200000 --queries 100
    python -m benchmarks search -- --only sqlite --fresh
    python -m benchmarks search -- --tag _mine        # own data copies (a shared machine)
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from benchmarks import BENCH_SECRET_KEY, keyed_engine
from crm_core import db, demo_zh, field_crypto, text
from crm_core.demo import COMPANY_KINDS, COMPANY_WORDS, COUNTRIES, PRODUCTS
from crm_core.models import Company, Customer, Order, OrderLine, Product, Role
from crm_core.models.customers import contact_indexes
from crm_core.services import orders, users

CACHE = Path(os.environ.get("CHATCRM_BENCH_DIR", "/tmp/chatcrm-bench"))
PG_ADMIN = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


# The share of Chinese names among customers and companies.
ZH_SHARE = 0.2


def _zh_company(rng: random.Random) -> str:
    return demo_zh.company_name(rng, demo_zh.brand(rng))


def _names(rng: random.Random, count: int) -> list[str]:
    firsts = sorted({n for c in COUNTRIES for n in c[4] if n.isascii()} | {"Alex", "Sam", "Robin", "Kim", "Noor"})
    lasts = sorted({n for c in COUNTRIES for n in c[5]})
    names: set[str] = {"Acme Corp"}
    while len(names) < count:
        roll = rng.random()
        if roll < ZH_SHARE:
            # Chinese names repeat (张伟 is common): a number keeps these apart, as a CRM would.
            person = rng.random() < 0.5
            name = demo_zh.person_name(rng) if person else _zh_company(rng)
            names.add(name if name not in names else f"{name}{rng.randint(2, 999)}")
        elif rng.random() < 0.5:
            name = f"{rng.choice(firsts)} {rng.choice(lasts)} {rng.randint(1, 999)}"
        else:
            name = f"{rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_KINDS)} {rng.randint(1, 9999)}"
        names.add(name)
    return sorted(names)


# One number, written the ways people write it; the search must not care.
_PHONE_FORMATS = ("+49 30 {n}", "+49 (30) {a}-{b}", "030 {n}", "0049-30-{a} {b}")


def _companies(rng: random.Random, count: int) -> list[str]:
    lasts = sorted({n for c in COUNTRIES for n in c[5]})
    names: set[str] = set()
    while len(names) < count:
        if rng.random() < ZH_SHARE:
            names.add(_zh_company(rng))
        else:
            names.add(f"{rng.choice(COMPANY_WORDS)} {rng.choice(lasts)} {rng.choice(COMPANY_KINDS)}")
    return sorted(names)


def _slug(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def generate(url: str, customers: int, lines: int, seed: int = 7) -> None:
    engine = keyed_engine(url)
    keys = field_crypto.keys_for(engine)
    db.upgrade(engine)
    rng = random.Random(seed)
    now = datetime(2026, 11, 1, tzinfo=UTC)
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(
            sa.insert(Product),
            [
                {
                    "sku": sku,
                    "name": name,
                    "category": cat,
                    "price_cents": price,
                    "currency": "EUR",
                    "active": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for sku, name, cat, price in PRODUCTS
            ],
        )
        product_ids = [row.id for row in connection.execute(sa.select(Product.id))]
        # About seven people per company; three in ten customers have none (and a free-mail address).
        company_names = _companies(rng, max(1, customers // 10))
        connection.execute(
            sa.insert(Company),
            [
                {"name": name, "name_key": name.casefold(), "search_name": text.normalize(name)}
                for name in company_names
            ],
        )
        company_ids = dict(connection.execute(sa.select(Company.name, Company.id)).all())
        rows = []
        for index, name in enumerate(_names(rng, customers)):
            number = str(1000000 + index)
            phone = rng.choice(_PHONE_FORMATS).format(n=number, a=number[:3], b=number[3:])
            company = rng.choice(company_names) if rng.random() < 0.7 else None
            email = f"customer{index}@{_slug(company) + '.example' if company else f'mail{index % 20}.example'}"
            rows.append(
                {
                    "kind": "person",
                    "name": name,
                    **text.search_columns(name),
                    "company_id": company_ids[company] if company else None,
                    "email": email,
                    "phone": phone,
                    "email_domain": text.email_domain(email),
                    **contact_indexes(keys, email, phone),
                    "country": rng.choice(COUNTRIES)[0],
                    "created_at": now,
                    "updated_at": now,
                    "lifetime_value_cents": 0,
                    "order_count": 0,
                }
            )
            if len(rows) == 5000:
                connection.execute(sa.insert(Customer), rows)
                rows = []
        if rows:
            connection.execute(sa.insert(Customer), rows)
    print(f"  {customers:,} customers in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    order_id = 0
    written = 0
    with engine.begin() as connection:
        while written < lines:
            order_rows, line_rows = [], []
            for _ in range(2000):
                order_id += 1
                n_lines = rng.randint(1, 9)
                picked = rng.sample(product_ids, n_lines)
                total = 0
                for product_id in picked:
                    quantity = rng.randint(1, 5)
                    line_rows.append(
                        {
                            "order_id": order_id,
                            "product_id": product_id,
                            "quantity": quantity,
                            "unit_price_cents": 1000,
                            "line_total_cents": 1000 * quantity,
                        }
                    )
                    total += 1000 * quantity
                order_rows.append(
                    {
                        "id": order_id,
                        "number": f"B-{order_id:07d}",
                        "customer_id": rng.randint(1, customers),
                        "kind": "purchase",
                        "ordered_at": now - timedelta(days=rng.randint(0, 730)),
                        "currency": "EUR",
                        "total_cents": total,
                        "source": "bench",
                    }
                )
                written += n_lines
            connection.execute(sa.insert(Order), order_rows)
            connection.execute(sa.insert(OrderLine), line_rows)
    print(f"  {written:,} order lines in {order_id:,} orders in {time.perf_counter() - started:.1f} s", flush=True)
    sync_order_ids(engine)
    started = time.perf_counter()
    factory = db.session_factory(engine)
    from crm_core.uow import UnitOfWork

    with UnitOfWork(factory) as uow:
        orders.refresh_customer_stats(uow)
        users.ensure_user(uow, users.PlatformId("console", "bench"), display_name="Bench", role=Role.ADMIN)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
    print(f"  customer figures and statistics in {time.perf_counter() - started:.1f} s", flush=True)
    engine.dispose()


def sync_order_ids(engine: sa.Engine) -> None:
    """Orders were inserted with explicit ids: move PostgreSQL's id sequence past them, so orders made
    later (the API benchmark's) get new ids. (SQLite takes the next id from the table itself.)"""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('orders', 'id'), (SELECT coalesce(max(id), 1) FROM orders))"
            )


def _typo(rng: random.Random, name: str) -> str:
    words = name.split()
    candidates = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not candidates:
        return name
    i = rng.choice(candidates)
    word = words[i]
    pos = rng.randint(1, len(word) - 2)
    words[i] = word[:pos] + ("x" if word[pos] != "x" else "y") + word[pos + 1 :]
    return " ".join(words)


def _zh_typo(rng: random.Random, name: str) -> str:
    """One character of a Chinese name replaced by another (not the first: people know that one)."""
    pos = rng.randint(1, len(name) - 1)
    others = [ch for ch in demo_zh.BRAND_CHARACTERS + "伟芳明华" if ch != name[pos]]
    return name[:pos] + rng.choice(others) + name[pos + 1 :]


def _zh_piece(name: str) -> str:
    """The trade name and trade of a registered company name: "深圳市华创科技有限公司" -> "华创科技"."""
    core = name
    for _city, registered, _code in demo_zh.CITIES:
        core = core.removeprefix(registered)
    for form in sorted(set(demo_zh.FORMS), key=len, reverse=True):
        if form in core:
            return core[: core.index(form)]
    return core[:4]


def _zh_queries(rng: random.Random, rows: list, count: int) -> dict[str, list[str]]:
    """Chinese queries of each kind, from the Chinese names of ``rows`` (id, name, company)."""
    zh = [row for row in rows if text.has_cjk(row.name)]
    picked = rng.sample(zh, min(count, len(zh)))
    companies = [row for row in zh if row.name.endswith("公司") and not row.name[-1].isdigit()]
    zh_company = [row for row in rows if row.company and text.has_cjk(row.company)]
    return {
        "zh-exact": [row.name for row in picked],
        "zh-prefix": [row.name[:3] for row in picked],
        "zh-piece": [_zh_piece(row.name) for row in rng.sample(companies, min(count, len(companies)))],
        # Names of three characters or more, without a number: a typo in two characters is another name.
        "zh-typo": [
            _zh_typo(rng, row.name) for row in picked if len(row.name) >= 3 and text.cjk_runs(row.name) == [row.name]
        ],
        "zh-company": [_zh_piece(row.company) for row in rng.sample(zh_company, min(count, len(zh_company)))],
    }


def measure(url: str, queries: int, seed: int = 11, clock=time.perf_counter) -> dict[str, list[float]]:
    """Each query's time by ``clock``: wall time, or this thread's CPU time (``--cpu``, for a shared
    machine: SQLite runs in this thread, so its work is counted and other processes' is not)."""
    from bot.bootstrap import build_app
    from bot.messages import Origin, Request
    from bot.settings import Settings

    app = build_app(Settings(database_url=url, secret_key=BENCH_SECRET_KEY))
    rng = random.Random(seed)
    with app.engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(Customer)).scalar_one()
        sample_ids = rng.sample(range(1, count + 1), queries)
        picked = {
            row.id: row
            for row in connection.execute(
                sa.select(Customer.id, Customer.name, Customer.email, Customer.phone, Company.name.label("company"))
                .outerjoin(Company, Company.id == Customer.company_id)
                .where(Customer.id.in_(sample_ids))
            )
        }
        with_company = [picked[i] for i in sample_ids if picked[i].company]
        everyone = connection.execute(
            sa.select(Customer.id, Customer.name, Company.name.label("company")).outerjoin(
                Company, Company.id == Customer.company_id
            )
        ).all()
    origin = Origin(platform="console", user_external_id="bench", conversation="bench")
    names = {i: picked[i].name for i in sample_ids}
    kinds = {
        "exact": [names[i] for i in sample_ids],
        "prefix": [names[i].split()[0][:4] for i in sample_ids],
        "typo": [_typo(rng, names[i]) for i in sample_ids],
        "company": [" ".join(row.company.split()[:2]) for row in with_company],
        "domain": ["@" + row.email.split("@")[1] for row in with_company],
        "phone": [text.phone_digits(picked[i].phone)[-7:] for i in sample_ids],
        **_zh_queries(rng, everyone, queries),
    }
    timings: dict[str, list[float]] = {}
    for kind, texts in kinds.items():
        for query in texts[:20]:  # warm caches
            app.dispatcher.handle(Request(origin=origin, text=f"/customer {query}"))
        samples = []
        for query in texts:
            started = clock()
            reply = app.dispatcher.handle(Request(origin=origin, text=f"/customer {query}"))
            samples.append((clock() - started) * 1000)
            assert reply.tone.value != "error", (query, reply)
        timings[kind] = samples
    app.close()
    return timings


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _database_urls(only: str | None, fresh: bool, customers: int, lines: int, suffix: str = "") -> dict[str, str]:
    urls = {}
    tag = f"{customers}_{lines}{suffix}"
    if only in (None, "sqlite"):
        CACHE.mkdir(parents=True, exist_ok=True)
        path = CACHE / f"search_{tag}.db"
        if fresh and path.exists():
            path.unlink()
        urls["sqlite"] = f"sqlite:///{path}"
    if only in (None, "postgresql"):
        name = f"chatcrm_bench_{tag}"
        admin = sa.create_engine(db.normalize_url(PG_ADMIN), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                exists = connection.exec_driver_sql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").first()
                if exists and fresh:
                    connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
                    exists = None
                if not exists:
                    connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
            urls["postgresql"] = (
                sa.engine.make_url(db.normalize_url(PG_ADMIN)).set(database=name).render_as_string(hide_password=False)
            )
        except sa.exc.OperationalError as exc:
            print(f"PostgreSQL skipped: {exc.orig}")
        finally:
            admin.dispose()
    return urls


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench search")
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--fresh", action="store_true", help="regenerate the data even if a copy exists")
    parser.add_argument("--tag", default="", help="suffix of the data copies' names (e.g. _mine), to keep your own")
    parser.add_argument("--cpu", action="store_true", help="time queries in CPU time of the thread, not wall time")
    args = parser.parse_args(argv)
    if args.tag and not args.tag.replace("_", "").isalnum():
        parser.error("--tag takes letters, digits and _")
    results = {}
    for name, url in _database_urls(args.only, args.fresh, args.customers, args.lines, args.tag).items():
        engine = keyed_engine(url)
        populated = False
        try:
            status = db.schema_status(engine)
            if status.current is not None and not status.up_to_date:
                # As a deployment would: migrate the copy (--fresh makes a new one instead).
                print(f"{name}: migrating the data copy from {status.current} …", flush=True)
                db.upgrade(engine)
                status = db.schema_status(engine)
            if status.up_to_date:
                with engine.connect() as connection:
                    populated = connection.execute(sa.select(sa.func.count()).select_from(Customer)).scalar_one() > 0
        finally:
            engine.dispose()
        if not populated:
            print(f"{name}: generating data …", flush=True)
            generate(url, args.customers, args.lines)
        results[name] = measure(url, args.queries, clock=time.thread_time if args.cpu else time.perf_counter)
    print(
        f"\n/customer handler latency, {args.customers:,} customers, {args.lines:,} order lines, "
        f"{args.queries} queries per kind ({'thread CPU ' if args.cpu else ''}ms)"
    )
    print(f"{'database':<11} {'query':<10} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}")
    for name, timings in results.items():
        for kind, samples in timings.items():
            print(
                f"{name:<11} {kind:<10} {statistics.median(samples):7.2f} {_percentile(samples, 95):7.2f} "
                f"{_percentile(samples, 99):7.2f} {max(samples):7.2f}"
            )
