"""Outbox benchmark: bulk enqueue speed, and whether the sender holds the configured send rate.

    .venv/bin/python -m benchmarks outbox [-- --databases sqlite,postgresql --rows 100000
        --messages 600 --rate 50 --chat-rate 5 --chats 40 --repeat 2]

For each database (a fresh SQLite file; a scratch PostgreSQL database on ``TEST_DATABASE_URL`` or
127.0.0.1:5432):

1. enqueue ``--rows`` outbox rows in one transaction with ``crm_core.outbox.enqueue_many``
   (target: under 10 s), ``--repeat`` times on an emptied table;
2. send ``--messages`` messages to ``--chats`` conversations through the real ``OutboxSender``
   and an HTTP sender against the fake chat API (tests/fakes, run in its own process as a real
   platform would be), with the platform's limits lowered
   to ``--rate``/s overall and ``--chat-rate``/s per chat (the overall limit binds); then a few
   chats with many messages each (the per-chat limit binds). Measured at the fake server on
   arrival: the most requests in any 1-second window (must not exceed the limit) and the mean
   per full second of the run (target: 95–100 % of the limit).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from benchmarks import keyed_engine
from crm_core import db, outbox
from crm_core.models import OutboxMessage, OutboxStatus
from crm_core.uow import UnitOfWork

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def scratch_database(kind: str) -> Iterator[str | None]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'bench.db'}"
        return
    admin_url = db.normalize_url(os.environ.get("TEST_DATABASE_URL") or DEFAULT_PG)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    name = f"chatcrm_bench_{os.getpid()}"
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        print(f"  PostgreSQL not reachable at {db.mask_url(admin_url)}: {str(exc.orig).splitlines()[0]}; skipped")
        yield None
        return
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def enqueue_rows(session_factory, rows: int) -> float:
    with session_factory() as session, session.begin():
        session.execute(sa.delete(OutboxMessage))
    messages = (
        outbox.NewMessage(
            f"bench-{i}",
            "campaign",
            "telegram",
            str(100_000 + i),
            {"formatted_text": f"Hello <b>customer {i}</b>", "format": "html"},
        )
        for i in range(rows)
    )
    started = time.perf_counter()
    with UnitOfWork(session_factory) as uow:
        added = outbox.enqueue_many(uow, messages)
    elapsed = time.perf_counter() - started
    assert added == rows, (added, rows)
    return elapsed


def _max_in_window(times: list[float], span: float = 1.0) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + span) - i for i, t in enumerate(times)), default=0)


def _per_second(times: list[float]) -> list[int]:
    """Arrivals in each full second from the first arrival."""
    times = sorted(times)
    full = int(times[-1] - times[0])
    return [bisect.bisect_left(times, times[0] + k + 1) - bisect.bisect_left(times, times[0] + k) for k in range(full)]


async def _drain(sender, session_factory, messages: int) -> None:
    await sender.start()
    try:
        while True:
            with session_factory() as session:
                sent = session.scalar(sa.select(sa.func.count()).where(OutboxMessage.status == OutboxStatus.SENT))
            if sent >= messages:
                return
            await asyncio.sleep(0.05)
    finally:
        await sender.stop()


@contextlib.contextmanager
def fake_api_process() -> Iterator[str]:
    """The fake chat API in its own process, as a real platform would be: it does not compete with
    the sender for this interpreter's GIL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.chat_api"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        yield process.stdout.readline().strip()
    finally:
        process.kill()
        process.wait()


def _arrivals(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/requests") as response:
        return [r for r in json.load(response) if r["status"] == 200]


def send_run(engine, session_factory, messages: int, chats: int, rate: int, chat_rate: int) -> dict[str, float]:
    from bot.outbox_sender import OutboxSender, SenderSettings
    from bot.rate_limit import PlatformLimits, Rate
    from tests.fakes.http_sender import HttpSender

    with session_factory() as session, session.begin():
        session.execute(sa.delete(OutboxMessage))
    with UnitOfWork(session_factory) as uow:
        outbox.enqueue_many(
            uow,
            (
                outbox.NewMessage(f"send-{i}", "campaign", "telegram", str(7000 + i % chats), {"formatted_text": "hi"})
                for i in range(messages)
            ),
        )
    limits = PlatformLimits(overall=Rate(rate, 1), per_chat=Rate(chat_rate, 1))
    with fake_api_process() as url:
        sender = OutboxSender(
            engine,
            session_factory,
            {"telegram": HttpSender("telegram", url)},
            SenderSettings(limits={"telegram": limits}, poll_seconds=0.05, lease_seconds=60),
        )
        asyncio.run(_drain(sender, session_factory, messages))
        delivered = _arrivals(url)
    arrivals = [r["at"] for r in delivered]
    seconds = _per_second(arrivals)
    chat_arrivals = [[r["at"] for r in delivered if r["conversation"] == str(7000 + c)] for c in range(chats)]
    assert len(arrivals) == messages and len({r["key"] for r in delivered}) == messages
    return {
        "duration": max(arrivals) - min(arrivals),
        "mean_per_second": statistics.mean(seconds),
        "min_per_second": min(seconds),
        "max_in_any_window": _max_in_window(arrivals),
        "max_per_chat_window": max(_max_in_window(times) for times in chat_arrivals),
        "chat_mean_per_second": statistics.mean(statistics.mean(_per_second(t)) for t in chat_arrivals),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks outbox")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--chat-rate", type=int, default=5)
    parser.add_argument("--chats", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    for kind in args.databases.split(","):
        print(f"\n--- {kind} ---", flush=True)
        with scratch_database(kind) as url:
            if url is None:
                continue
            engine = keyed_engine(url)
            try:
                db.upgrade(engine)
                factory = db.session_factory(engine)
                times = [enqueue_rows(factory, args.rows) for _ in range(args.repeat)]
                print(
                    f"enqueue {args.rows:,} rows (enqueue_many, one transaction): best {min(times):.2f} s, "
                    f"runs {', '.join(f'{t:.2f}' for t in times)} s (target < 10 s)",
                    flush=True,
                )
                for run in range(args.repeat):
                    r = send_run(engine, factory, args.messages, args.chats, args.rate, args.chat_rate)
                    print(
                        f"send run {run + 1} (overall limit binds): {args.messages} messages to {args.chats} chats in "
                        f"{r['duration']:.2f} s; limit {args.rate}/s overall, {args.chat_rate}/s per chat; "
                        f"per full second: mean {r['mean_per_second']:.1f} "
                        f"({r['mean_per_second'] / args.rate:.1%} of the limit), min {r['min_per_second']}; "
                        f"most in any 1 s window: {r['max_in_any_window']} (limit {args.rate}); "
                        f"per chat: {r['max_per_chat_window']} (limit {args.chat_rate})",
                        flush=True,
                    )
                for run in range(args.repeat):
                    chats = 3
                    r = send_run(engine, factory, chats * args.chat_rate * 6, chats, args.rate, args.chat_rate)
                    print(
                        f"send run {run + 1} (per-chat limit binds): {chats * args.chat_rate * 6} messages to {chats} "
                        f"chats in {r['duration']:.2f} s; per chat per full second: mean "
                        f"{r['chat_mean_per_second']:.2f} ({r['chat_mean_per_second'] / args.chat_rate:.1%} of "
                        f"{args.chat_rate}/s); most in any 1 s window per chat: {r['max_per_chat_window']} "
                        f"(limit {args.chat_rate})",
                        flush=True,
                    )
            finally:
                engine.dispose()
