"""Slack ack latency under load: signed slash commands against ``chatcrm web`` on loopback.

Runs, per database (SQLite file and PostgreSQL): the fake Slack Web API (``tests.fakes.slack_api``)
and ``chatcrm web`` as subprocesses, on the demo data set; then sends ``--rate`` signed
``/customer acme`` commands per second for ``--duration`` seconds (open loop: on schedule, whether
or not earlier ones were answered) and measures each ack (HTTP 200 from ``POST /slack/events``).
It also counts the cards arriving at the fake's response_url, to show that the work behind the
acks keeps up. Target: p99 ack under 300 ms, no 5xx.

    .venv/bin/python -m benchmarks slack_ack                      # 200/s for 60 s on both databases
    .venv/bin/python -m benchmarks slack_ack -- --duration 10 --databases sqlite
    .venv/bin/python -m benchmarks slack_ack -- --runs 3           # repeat, report best and spread

PostgreSQL comes from ``BENCH_DATABASE_URL`` / ``TEST_DATABASE_URL`` or 127.0.0.1:5432 (a
database is created for the run and dropped after).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import sqlalchemy as sa
from slack_sdk.signature import SignatureVerifier
from sqlalchemy.engine import make_url

from benchmarks import BENCH_SECRET_KEY, keyed_engine
from crm_core import db, demo
from crm_core.uow import UnitOfWork

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-signing-secret-0123456789"
USER = "UBENCH"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass
class Result:
    database: str
    sent: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    max_send_lag_ms: float = 0.0
    load_seconds: float = 0.0
    delivered: int = 0
    drain_seconds: float = 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith("5"))

    @property
    def failures(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "200")

    def report(self) -> str:
        rate = self.sent / self.load_seconds if self.load_seconds else 0
        return (
            f"{self.database:<10} sent {self.sent} in {self.load_seconds:.1f}s ({rate:.0f}/s)  "
            f"ack p50 {self.percentile(50):.1f} ms  p90 {self.percentile(90):.1f} ms  "
            f"p99 {self.percentile(99):.1f} ms  max {max(self.latencies_ms, default=0):.1f} ms  "
            f"non-200 {self.failures} (5xx {self.server_errors})  statuses {self.statuses}\n"
            f"{'':<10} cards delivered {self.delivered}/{self.sent}, last one {self.drain_seconds:.1f}s after "
            f"the load ended; client send lag max {self.max_send_lag_ms:.0f} ms"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare_database(kind: str, workdir: Path, customers: int) -> tuple[str, str | None]:
    """A migrated database with the demo data; returns its URL and, for PostgreSQL, the name to drop."""
    if kind == "sqlite":
        url, name = f"sqlite:///{workdir / 'bench.db'}", None
    else:
        admin_url = db.normalize_url(
            os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or DEFAULT_PG
        )
        name = f"chatcrm_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = keyed_engine(url)
    db.upgrade(engine)
    with UnitOfWork(db.session_factory(engine), demo.DEMO_ACTOR) as uow:
        demo.seed(uow, customers=customers)
    # A database in service has statistics (autovacuum) and its GIN indexes' pending entries merged;
    # a freshly seeded one has neither, so its plans are not production's (EXPLAIN ANALYZE of the typo
    # stage on 400 customers: 1.6 ms before, 0.7 ms after; card_cost did not change beyond its spread).
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE" if kind != "sqlite" else "ANALYZE")
    engine.dispose()
    return url, name


def _drop_database(name: str) -> None:
    admin_url = db.normalize_url(
        os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL") or DEFAULT_PG
    )
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up")
        time.sleep(0.1)


def _delivered(fake_url: str) -> int:
    with urllib.request.urlopen(f"{fake_url}/_fake/stats", timeout=5) as response:
        return json.load(response)["counts"].get("response_url", 0)


def _body(command: str, response_url: str) -> bytes:
    name, _, text = command.partition(" ")
    return urlencode(
        {
            "token": "x",
            "team_id": "T1",
            "team_domain": "bench",
            "channel_id": "C1",
            "channel_name": "sales",
            "user_id": USER,
            "user_name": "bench",
            "command": name,
            "text": text,
            "api_app_id": "A1",
            "response_url": response_url,
            "trigger_id": f"{uuid.uuid4().int}.{uuid.uuid4().hex}",
        }
    ).encode()


async def _load(url: str, command: str, response_url: str, rate: float, duration: float, result: Result) -> None:
    verifier = SignatureVerifier(SECRET)
    total = int(rate * duration)
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)

    async def one(session: aiohttp.ClientSession) -> None:
        body = _body(command, response_url)
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body),
        }
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                status = str(response.status)
        except (TimeoutError, aiohttp.ClientError) as exc:
            status = type(exc).__name__
        result.latencies_ms.append((time.perf_counter() - started) * 1000)
        result.statuses[status] = result.statuses.get(status, 0) + 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        loop = asyncio.get_running_loop()
        tasks = []
        start = loop.time()
        for i in range(total):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                result.max_send_lag_ms = max(result.max_send_lag_ms, -delay * 1000)
            tasks.append(asyncio.create_task(one(session)))
        await asyncio.gather(*tasks)
        result.load_seconds = loop.time() - start
    result.sent = total


def run_once(kind: str, args: argparse.Namespace) -> Result:
    result = Result(kind)
    with tempfile.TemporaryDirectory(prefix="bench-slack-") as tmp:
        workdir = Path(tmp)
        url, pg_name = _prepare_database(kind, workdir, args.customers)
        fake = web = None
        try:
            fake = subprocess.Popen(
                [sys.executable, "-m", "tests.fakes.slack_api"], cwd=ROOT, text=True, stdout=subprocess.PIPE
            )
            api_url = fake.stdout.readline().strip()
            fake_root = api_url.removesuffix("/api/")
            port = _free_port()
            env = {
                **os.environ,
                "CHATCRM_SECRET_KEY": BENCH_SECRET_KEY,
                "DATABASE_URL": url,
                "SLACK_BOT_TOKEN": "xoxb-bench",
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": api_url,
                "CHATCRM_ADMINS": f"slack:{USER}",
                "CHATCRM_LOG_LEVEL": "WARNING",
                "CHATCRM_LOG_FILE": str(workdir / "web.log"),
            }
            env.pop("SLACK_APP_TOKEN", None)
            web = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "web", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env
            )
            _wait_http(f"http://127.0.0.1:{port}/healthz")
            events = f"http://127.0.0.1:{port}/slack/events"
            response_url = f"{fake_root}/response/bench"
            # Warm up (connections, caches, bolt's auth.test) and check the path works end to end.
            warm = Result(kind)
            asyncio.run(_load(events, args.command, response_url, 20, 1, warm))
            deadline = time.monotonic() + 30
            while _delivered(fake_root) < warm.sent and time.monotonic() < deadline:
                time.sleep(0.1)
            if warm.failures or _delivered(fake_root) < warm.sent:
                raise RuntimeError(
                    f"warm-up failed: {warm.statuses}, delivered {_delivered(fake_root)}/{warm.sent}"
                    f"; see {workdir / 'web.log'}"
                )
            before = _delivered(fake_root)
            asyncio.run(_load(events, args.command, response_url, args.rate, args.duration, result))
            ended = time.monotonic()
            while _delivered(fake_root) - before < result.sent and time.monotonic() - ended < args.drain_timeout:
                time.sleep(0.1)
            result.delivered = _delivered(fake_root) - before
            result.drain_seconds = time.monotonic() - ended
        finally:
            for process in (web, fake):
                if process is not None:
                    process.terminate()
                    try:
                        process.wait(30)
                    except subprocess.TimeoutExpired:
                        process.kill()
            if pg_name:
                _drop_database(pg_name)
    return result


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench_slack_ack", description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200, help="requests per second (default 200)")
    parser.add_argument("--duration", type=float, default=60, help="seconds of load (default 60)")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--command", default="/customer acme", help="the slash command sent")
    parser.add_argument("--customers", type=int, default=400, help="demo customers in the database")
    parser.add_argument("--runs", type=int, default=1, help="repeat each database this often")
    parser.add_argument("--drain-timeout", type=float, default=120, help="seconds to wait for the cards after the load")
    args = parser.parse_args(argv)
    print(
        f"{args.command!r} at {args.rate:g}/s for {args.duration:g}s, {args.customers} demo customers, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
        results = []
        for run in range(args.runs):
            result = run_once(kind, args)
            results.append(result)
            print(f"run {run + 1}: {result.report()}", flush=True)
        if len(results) > 1:
            p99s = [r.percentile(99) for r in results]
            p50s = [r.percentile(50) for r in results]
            print(
                f"{kind}: p99 best {min(p99s):.1f} ms, worst {max(p99s):.1f} ms (median {statistics.median(p99s):.1f}); "
                f"p50 best {min(p50s):.1f} ms, worst {max(p50s):.1f} ms; "
                f"5xx total {sum(r.server_errors for r in results)}",
                flush=True,
            )
