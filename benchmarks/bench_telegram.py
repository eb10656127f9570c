"""Telegram: how fast updates go through POST /telegram/webhook, end to end.

Each round starts chatcrm web (uvicorn, the real python-telegram-bot Application) against the fake
Bot API on a fresh database, then posts updates one after another over HTTP, as Telegram does
(it sends a bot's updates one at a time): customers' messages (ticket + relay to the staff chat +
acknowledgement), staff commands (``/ticket list open`` rendered with inline buttons), and measures
the latency of each request until its 200 (i.e. committed and sent). Also times the pure renderer
on a 20,000-character reply.

    python -m benchmarks telegram                      # SQLite, 3 rounds of 300 updates
    python -m benchmarks telegram -- --updates 500 --rounds 5 --database-url postgresql://...
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from benchmarks import BENCH_SECRET_KEY, keyed_engine
from bot.adapters.telegram.render import render_reply
from bot.bootstrap import build_app
from bot.messages import Item, Reply, Section
from bot.platforms import web_mounts
from bot.settings import Settings
from bot.web import build_web_app
from crm_core.models import Role
from crm_core.services import users
from tests.fakes.servers import serve_asgi
from tests.fakes.telegram_api import FakeTelegram

SECRET = "bench-secret"
SUPPORT_CHAT = -100777


def _fresh_database(base_url: str | None, round_no: int, tmp: Path) -> tuple[str, callable]:
    if base_url is None:
        return f"sqlite:///{tmp / f'bench{round_no}.db'}", lambda: None
    admin = sa.create_engine(
        base_url.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
    )
    name = f"chatcrm_bench_tg_{round_no}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = admin.url.set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return url, drop


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _round(database_url: str, updates: int, customers: int) -> dict[str, list[float]]:
    from crm_core import db

    if not database_url.startswith("sqlite"):
        db.upgrade(keyed_engine(database_url))
    timings: dict[str, list[float]] = {"customer message": [], "/ticket list open": []}
    with FakeTelegram() as fake:
        env = {
            "DATABASE_URL": database_url,
            "CHATCRM_SECRET_KEY": BENCH_SECRET_KEY,
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_URL": fake.api_url,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_SUPPORT_CHAT_ID": str(SUPPORT_CHAT),
        }
        app = build_app(Settings.from_env(env))
        try:
            with app.uow() as uow:
                users.ensure_user(uow, users.PlatformId("telegram", "900"), display_name="Sam", role=Role.SUPPORT)
            staff = fake.user(900, "Sam")
            people = [fake.user(10_000 + n, f"Customer{n}") for n in range(customers)]
            with (
                serve_asgi(build_web_app(app, web_mounts(app), freeze_heap=True)) as base,
                httpx.Client(base_url=base) as client,
            ):
                headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
                for n in range(updates):
                    if n % 10 == 9:
                        kind, update = "/ticket list open", fake.group_text(SUPPORT_CHAT, staff, "/ticket list open")
                    else:
                        kind, update = "customer message", fake.private_text(people[n % customers], f"message {n}")
                    started = time.perf_counter()
                    response = client.post("/telegram/webhook", json=update, headers=headers, timeout=60)
                    timings[kind].append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
        finally:
            app.close()
    return timings


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks telegram")
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help="a PostgreSQL server URL (default: SQLite files)")
    args = parser.parse_args(argv)

    reply = Reply(
        title="Big list", sections=(Section(items=tuple(Item(f"item {n} " + "x" * 60, "detail") for n in range(250))),)
    )
    render_times = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(100):
            rendered = render_reply(reply)
        render_times.append((time.perf_counter() - started) / 100)
    print(
        f"render a {sum(len(t) for t in rendered.texts):,}-char reply into {len(rendered.texts)} messages: "
        f"best {min(render_times) * 1000:.2f} ms, spread {(max(render_times) - min(render_times)) * 1000:.2f} ms"
    )

    per_round: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_no in range(args.rounds):
            url, drop = _fresh_database(args.database_url, round_no, Path(tmp))
            try:
                started = time.perf_counter()
                timings = _round(url, args.updates, args.customers)
                elapsed = time.perf_counter() - started
            finally:
                drop()
            total = sum(len(v) for v in timings.values())
            print(f"round {round_no + 1}: {total} updates in {elapsed:.1f} s (incl. start-up)")
            for kind, values in timings.items():
                per_round.setdefault(kind, []).append(
                    {
                        "per_s": len(values) / sum(values),
                        "p50": statistics.median(values) * 1000,
                        "p95": _percentile(values, 0.95) * 1000,
                    }
                )
    database = "PostgreSQL" if args.database_url else "SQLite"
    print(f"\nwebhook, one update at a time, {database}, {args.rounds} rounds (best / spread over rounds):")
    for kind, rounds in per_round.items():
        best = max(rounds, key=lambda r: r["per_s"])
        rates = [r["per_s"] for r in rounds]
        print(
            f"  {kind:<18} {best['per_s']:7.1f} updates/s (spread {max(rates) - min(rates):.1f})  "
            f"p50 {best['p50']:.1f} ms  p95 {best['p95']:.1f} ms"
        )
