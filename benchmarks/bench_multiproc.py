"""Several processes on PostgreSQL: web and worker processes side by side under Slack and Telegram load.

Per layout (``--layouts 1x1,2x2``: web processes x worker processes), on a fresh PostgreSQL
database with the demo data: the fake Slack Web API and the fake Telegram Bot API each in a process
of its own (``tests.fakes``, recording every delivery with its arrival time), N ``chatcrm web``
processes on N ports (the load script round-robins over them, as a load balancer would) and M
``chatcrm worker`` processes. Then, open loop for ``--duration`` seconds: ``--slack-rate`` signed
slash commands per second (``--command``, ``/customer acme`` unless told; each with a response_url
of its own) and ``--telegram-rate`` Telegram updates per second (the same command from a private
chat of its own, posted to the webhook with its secret).

Reported and checked per layout:

- acks: p50 / p99 of the HTTP answer per platform, and every status (5xx must be 0);
- replies: the time from sending a command to its answer reaching the fake platform (p50 / p95 /
  max), how many arrived, how many arrived more than once (duplicates), and the delivery rate;
- the scheduler: leaders seen in ``pg_locks`` every second (must be exactly one every time);
- send rates as the platforms saw them: the most messages in any 1-second window overall and per
  chat, against the platform's limits (Telegram 30/s overall, 1/s per chat; Slack 1/s per channel
  for chat.* calls; response_url answers are not rate limited by Slack);
- CPU per request by group of processes (web, workers, PostgreSQL, the fakes, this load client),
  from ``/proc``, and the request rate that cost allows the machine's cores: the figure that says
  whether a rate is within reach here at all (``--command "/customer #999999"`` gives the floor:
  a request that finds nobody, so it reads no customer).

    python -m benchmarks multiproc                                  # 1x1 and 2x2, 10 s each
    python -m benchmarks multiproc -- --duration 60 --layouts 2x2   # the 60-second run of issue 17
    python -m benchmarks multiproc -- --slack-rate 50 --telegram-rate 0 --layouts 1x1

PostgreSQL comes from ``BENCH_DATABASE_URL`` / ``TEST_DATABASE_URL`` or 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from slack_sdk.signature import SignatureVerifier

from benchmarks import BENCH_SECRET_KEY
from benchmarks.bench_slack_ack import (
    ROOT,
    SECRET,
    USER,
    _body,
    _drop_database,
    _free_port,
    _prepare_database,
    _wait_http,
)
from benchmarks.proc_cpu import postgres_cpu_seconds, process_cpu_seconds
from crm_core import db
from crm_core.scheduling.leader import advisory_key
from tests.fakes.telegram_api import DEFAULT_TOKEN, FakeTelegram

TELEGRAM_SECRET = "bench-telegram-secret"
# The platforms' default limits (bot/adapters/*/plugin.py): what the deliveries are checked against.
TELEGRAM_OVERALL_PER_S = 30
TELEGRAM_CHAT_PER_S = 1
SLACK_CHANNEL_PER_S = 1
FIRST_TELEGRAM_USER = 5_000_000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def most_in_window(times: list[float], seconds: float = 1.0) -> int:
    """The most timestamps in any window of ``seconds`` (a sliding window, as the limiter counts)."""
    ordered = sorted(times)
    best = start = 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


@dataclass
class Platform:
    """One platform's load and what came of it."""

    name: str
    sent_at: dict[str, float] = field(default_factory=dict)  # reply key -> when its request went out
    ack_ms: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    arrivals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    load_seconds: float = 0.0
    max_send_lag_ms: float = 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status.startswith("5"))

    def reply_ms(self) -> list[float]:
        return [(min(self.arrivals[k]) - at) * 1000 for k, at in self.sent_at.items() if self.arrivals.get(k)]

    @property
    def delivered(self) -> int:
        return sum(1 for k in self.sent_at if self.arrivals.get(k))

    @property
    def duplicates(self) -> int:
        return sum(len(self.arrivals[k]) - 1 for k in self.sent_at if len(self.arrivals.get(k, ())) > 1)

    def delivery_rate(self) -> tuple[float, float]:
        """Replies per second from the first request to the last reply, and the last reply's delay
        after the load ended."""
        firsts = [min(self.arrivals[k]) for k in self.sent_at if self.arrivals.get(k)]
        if not firsts or not self.sent_at:
            return 0.0, 0.0
        start = min(self.sent_at.values())
        return len(firsts) / max(max(firsts) - start, 1e-9), max(firsts) - (start + self.load_seconds)

    def report(self) -> str:
        if not self.sent_at:
            return f"  {self.name}: no load"
        replies = self.reply_ms()
        rate, tail = self.delivery_rate()
        sent = len(self.sent_at)
        return (
            f"  {self.name:<8} sent {sent} in {self.load_seconds:.1f}s ({sent / max(self.load_seconds, 1e-9):.0f}/s, "
            f"client lag max {self.max_send_lag_ms:.0f} ms)  ack p50 {percentile(self.ack_ms, 50):.0f} ms "
            f"p99 {percentile(self.ack_ms, 99):.0f} ms  5xx {self.server_errors}  statuses {dict(self.statuses)}\n"
            f"  {'':<8} replies {self.delivered}/{sent}, duplicates {self.duplicates}; reply p50 "
            f"{percentile(replies, 50):.0f} ms p95 {percentile(replies, 95):.0f} ms max {max(replies, default=0):.0f} ms; "
            f"{rate:.1f} replies/s, the last {tail:.1f}s after the load ended"
        )


@dataclass
class Run:
    webs: int
    workers: int
    slack: Platform = field(default_factory=lambda: Platform("slack"))
    telegram: Platform = field(default_factory=lambda: Platform("telegram"))
    leader_samples: list[int] = field(default_factory=list)
    leading_logs: int = 0
    rates: dict[str, tuple[int, int]] = field(default_factory=dict)  # what -> (seen, limit)
    load_before: str = ""
    load_after: str = ""
    # The processes' warnings and errors, by their first line (what went wrong, if anything did).
    problems: Counter[str] = field(default_factory=Counter)
    # CPU seconds each group of processes spent from the first request to the last reply (/proc).
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.slack.server_errors == 0
            and self.telegram.server_errors == 0
            and self.slack.duplicates == 0
            and self.telegram.duplicates == 0
            and self.slack.delivered == len(self.slack.sent_at)
            and self.telegram.delivered == len(self.telegram.sent_at)
            and bool(self.leader_samples)
            and set(self.leader_samples) == {1}
            and all(seen <= limit for seen, limit in self.rates.values())
        )

    def report(self) -> str:
        leaders = Counter(self.leader_samples)
        rates = ", ".join(f"{what} {seen}/{limit}" for what, (seen, limit) in self.rates.items())
        return "\n".join(
            [
                f"{self.webs} web x {self.workers} worker  (load average before {self.load_before}; after {self.load_after})",
                self.slack.report(),
                self.telegram.report(),
                f"  scheduler leaders per 1-s sample: {dict(leaders)}; 'leading' logged {self.leading_logs} time(s)",
                f"  most sends in any 1 s (seen/limit): {rates}",
                *([self.cpu_report()] if self.cpu else []),
                *(f"  logged {n}x: {line}" for line, n in self.problems.most_common(8)),
                f"  {'PASS' if self.ok else 'FAIL'}: no 5xx, every reply once, one leader, within the limits",
            ]
        )

    def cpu_report(self) -> str:
        """CPU per request by group of processes, and the request rate that cost allows these cores."""
        requests = len(self.slack.sent_at) + len(self.telegram.sent_at)
        per = {group: seconds * 1000 / max(requests, 1) for group, seconds in self.cpu.items()}
        total = sum(per.values())
        cores = os.cpu_count() or 1
        groups = ", ".join(f"{group} {ms:.1f}" for group, ms in per.items())
        return (
            f"  CPU per request ({requests} requests, first request to last reply, /proc): {groups}; "
            f"all {total:.1f} ms, so {cores} cores serve at most {cores * 1000 / max(total, 1e-9):.0f} requests/s"
        )


def _cpu_readings(groups: dict[str, list[int]]) -> dict[str, float | None]:
    """CPU seconds so far of each group of processes, of the PostgreSQL server and of this process
    (the load client, with its leader watcher)."""
    readings = {group: process_cpu_seconds(pids) for group, pids in groups.items()}
    readings["PostgreSQL"] = postgres_cpu_seconds()
    readings["load client"] = time.process_time()
    return readings


def _shape(line: str) -> str:
    text = line.split(" WARNING ", 1)[-1].split(" ERROR ", 1)[-1]
    return re.sub(r"\d+", "N", re.sub(r"\(ref \w+\)", "(ref …)", text))[:160]


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _start_fake(module: str, *extra: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", module, *extra], cwd=ROOT, text=True, stdout=subprocess.PIPE)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _get_json(url: str):  # noqa: ANN202 - whatever the fake answers
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


class Loader:
    """The open-loop load: requests on schedule whether or not earlier ones were answered."""

    def __init__(
        self, webs: list[str], slack_root: str, run: Run, builder: FakeTelegram, first_user: int, command: str
    ):
        self.webs = webs
        self.command = command
        self.slack_root = slack_root
        self.run = run
        self.verifier = SignatureVerifier(SECRET)
        # One builder per database: Telegram's update ids are the inbox keys, so they never repeat.
        self.builder = builder
        self.next_user = first_user
        self.counter = 0

    def _web(self) -> str:
        self.counter += 1
        return self.webs[self.counter % len(self.webs)]

    async def slack_one(self, session: aiohttp.ClientSession, key: str, platform: Platform) -> None:
        body = _body(self.command, f"{self.slack_root}/response/{key}")
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": self.verifier.generate_signature(timestamp=ts, body=body),
        }
        await self._post(session, f"{self._web()}/slack/events", key, platform, data=body, headers=headers)

    async def telegram_one(self, session: aiohttp.ClientSession, platform: Platform) -> None:
        # A private chat of its own per update: its replies are told apart by chat id.
        self.next_user += 1
        user = self.builder.user(self.next_user, f"Staff{self.next_user}")
        update = self.builder.private_text(user, self.command)
        headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
        await self._post(
            session, f"{self._web()}/telegram/webhook", str(self.next_user), platform, json=update, headers=headers
        )

    @staticmethod
    async def _post(session: aiohttp.ClientSession, url: str, key: str, platform: Platform, **kwargs) -> None:  # noqa: ANN003
        platform.sent_at[key] = time.time()
        started = time.perf_counter()
        try:
            async with session.post(url, **kwargs) as response:
                await response.read()
                status = str(response.status)
        except (TimeoutError, aiohttp.ClientError) as exc:
            status = type(exc).__name__
        platform.ack_ms.append((time.perf_counter() - started) * 1000)
        platform.statuses[status] += 1

    async def load(self, slack_rate: float, telegram_rate: float, duration: float, prefix: str = "s") -> None:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            await asyncio.gather(
                self._stream(session, slack_rate, duration, self.run.slack, prefix),
                self._stream(session, telegram_rate, duration, self.run.telegram, prefix),
            )

    async def _stream(
        self, session: aiohttp.ClientSession, rate: float, duration: float, platform: Platform, prefix: str
    ) -> None:
        total = int(rate * duration)
        if not total:
            return
        loop = asyncio.get_running_loop()
        tasks = []
        start = loop.time()
        for i in range(total):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                platform.max_send_lag_ms = max(platform.max_send_lag_ms, -delay * 1000)
            if platform.name == "slack":
                tasks.append(asyncio.create_task(self.slack_one(session, f"{prefix}{i}", platform)))
            else:
                tasks.append(asyncio.create_task(self.telegram_one(session, platform)))
        await asyncio.gather(*tasks)
        platform.load_seconds = loop.time() - start


def _watch_leaders(url: str, samples: list[int], stop: threading.Event) -> None:
    """Every second: how many sessions hold the scheduler's advisory lock (bot.scheduler)."""
    key = advisory_key("scheduler") & 0xFFFFFFFFFFFFFFFF
    engine = sa.create_engine(db.normalize_url(url), poolclass=sa.pool.NullPool)
    query = sa.text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
        "AND classid = :high AND objid = :low "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    try:
        while not stop.wait(1.0):
            with engine.connect() as connection:
                samples.append(connection.execute(query, {"high": key >> 32, "low": key & 0xFFFFFFFF}).scalar_one())
    finally:
        engine.dispose()


def _collect(run: Run, slack_root: str, telegram_base: str) -> None:
    """The fakes' deliveries, onto the run's platforms, and the send rates they show."""
    slack_channels: dict[str, list[float]] = defaultdict(list)
    for method, where, at in _get_json(f"{slack_root}/_fake/deliveries"):
        if method == "response_url":
            run.slack.arrivals[where].append(at)
        else:
            slack_channels[where].append(at)
    everything: list[float] = []
    chats: dict[str, list[float]] = defaultdict(list)
    for _method, chat, at in _get_json(f"{telegram_base}/_fake/deliveries")["result"]:
        run.telegram.arrivals[str(chat)].append(at)
        chats[str(chat)].append(at)
        everything.append(at)
    run.rates["telegram overall"] = (most_in_window(everything), TELEGRAM_OVERALL_PER_S)
    run.rates["telegram per chat"] = (max((most_in_window(t) for t in chats.values()), default=0), TELEGRAM_CHAT_PER_S)
    run.rates["slack chat.* per channel"] = (
        max((most_in_window(t) for t in slack_channels.values()), default=0),
        SLACK_CHANNEL_PER_S,
    )


def _delivered_so_far(run: Run, slack_root: str, telegram_base: str) -> int:
    slack = _get_json(f"{slack_root}/_fake/stats")["counts"].get("response_url", 0)
    telegram = len(_get_json(f"{telegram_base}/_fake/deliveries")["result"])
    return slack + telegram


def run_layout(webs: int, workers: int, args: argparse.Namespace) -> Run:
    run = Run(webs, workers)
    # The fakes, and ours (web and worker processes): stopped in that order's reverse.
    fakes: list[subprocess.Popen] = []
    ours: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="bench-multiproc-") as tmp:
        workdir = Path(tmp)
        url, pg_name = _prepare_database("postgresql", workdir, args.customers)
        try:
            slack_fake, slack_api = _start_fake("tests.fakes.slack_api", "--deliveries")
            fakes.append(slack_fake)
            telegram_fake, telegram_api = _start_fake("tests.fakes.telegram_api")
            fakes.append(telegram_fake)
            slack_root = slack_api.removesuffix("/api/")
            telegram_base = telegram_api.removesuffix("/bot")
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "SLACK_BOT_TOKEN": "xoxb-bench",
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": slack_api,
                "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
                "TELEGRAM_API_URL": telegram_api,
                "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
                "CHATCRM_ADMINS": f"slack:{USER}",
                # Telegram's load comes from people the CRM does not know: let them look customers up.
                "CHATCRM_UNKNOWN_ROLE": "viewer",
                # The key the demo data were written with (_prepare_database).
                "CHATCRM_SECRET_KEY": BENCH_SECRET_KEY,
                # Every sending process (each web sends its requests' answers, each worker its
                # sender's rows) takes its share of a platform's overall rate.
                "CHATCRM_OUTBOX_SENDERS": str(webs + workers),
                "CHATCRM_LOG_LEVEL": "INFO",
            }
            for name in ("SLACK_APP_TOKEN", "TELEGRAM_SUPPORT_CHAT_ID"):
                env.pop(name, None)
            # Updates come to the webhook (registered with the fake at start-up), so workers do not poll.
            env["TELEGRAM_WEBHOOK_URL"] = "https://chatcrm.example/telegram/webhook"
            ports = [_free_port() for _ in range(webs)]
            for n, port in enumerate(ports):
                log_env = {**env, "CHATCRM_LOG_FILE": str(workdir / f"web{n}.log")}
                command = [sys.executable, "-m", "bot.cli", "web", "--host", "127.0.0.1", "--port", str(port)]
                ours.append(subprocess.Popen(command, cwd=ROOT, env=log_env))
            for n in range(workers):
                log_env = {**env, "CHATCRM_LOG_FILE": str(workdir / f"worker{n}.log")}
                ours.append(subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], cwd=ROOT, env=log_env))
            bases = [f"http://127.0.0.1:{port}" for port in ports]
            for n, base in enumerate(bases):
                try:
                    # Generous: four processes start at once on two cores, each loading every plugin.
                    _wait_http(f"{base}/healthz", timeout=240)
                except RuntimeError:
                    log = workdir / f"web{n}.log"
                    tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
                    raise RuntimeError(f"{base} did not come up; its log ends:\n{tail}") from None

            # Warm up (connections, caches, bolt's auth.test) and check the path works end to end.
            warm = Run(webs, workers)
            builder = FakeTelegram(DEFAULT_TOKEN)
            asyncio.run(
                Loader(bases, slack_root, warm, builder, FIRST_TELEGRAM_USER, args.command).load(
                    10, 5, 1, prefix="warm"
                )
            )
            expected = len(warm.slack.sent_at) + len(warm.telegram.sent_at)
            deadline = time.monotonic() + 60
            while _delivered_so_far(warm, slack_root, telegram_base) < expected and time.monotonic() < deadline:
                time.sleep(0.2)
            if _delivered_so_far(warm, slack_root, telegram_base) < expected:
                raise RuntimeError(f"warm-up failed: {warm.slack.statuses} {warm.telegram.statuses}; logs in {workdir}")

            stop = threading.Event()
            watcher = threading.Thread(target=_watch_leaders, args=(url, run.leader_samples, stop), daemon=True)
            watcher.start()
            run.load_before = _load_average()
            # Past the warm-up's chats.
            loader = Loader(bases, slack_root, run, builder, FIRST_TELEGRAM_USER + 1000, args.command)
            groups = {
                "web": [p.pid for p in ours[:webs]],
                "workers": [p.pid for p in ours[webs:]],
                "fakes": [p.pid for p in fakes],
            }
            cpu_before = _cpu_readings(groups)
            asyncio.run(loader.load(args.slack_rate, args.telegram_rate, args.duration))
            ended = time.monotonic()
            expected += len(run.slack.sent_at) + len(run.telegram.sent_at)
            while (
                _delivered_so_far(run, slack_root, telegram_base) < expected
                and time.monotonic() - ended < args.drain_timeout
            ):
                time.sleep(0.5)
            cpu_after = _cpu_readings(groups)
            run.cpu = {
                group: after - before
                for group, after in cpu_after.items()
                if after is not None and (before := cpu_before[group]) is not None
            }
            time.sleep(1.0)  # a duplicate sent right after the last reply is still counted
            run.load_after = _load_average()
            stop.set()
            watcher.join()
            _collect(run, slack_root, telegram_base)
        finally:
            # Ours first, the fakes once ours are gone: a web process still sending when its fake went
            # away logged "Cannot connect to host" for every answer it had left (a run that did not
            # drain), which read like a problem under load.
            for group in (ours, fakes):
                for process in reversed(group):
                    process.terminate()
                for process in group:
                    try:
                        process.wait(30)
                    except subprocess.TimeoutExpired:
                        process.kill()
            run.leading_logs = sum(
                log.read_text(errors="replace").count("scheduler: leading") for log in workdir.glob("worker*.log")
            )
            for log in sorted(workdir.glob("*.log")):
                for line in log.read_text(errors="replace").splitlines():
                    if " WARNING " in line or " ERROR " in line:
                        # Without the timestamp and the numbers that differ per row, the same problem counts once.
                        run.problems[f"{log.stem}: {_shape(line)}"] += 1
            if args.keep_logs:
                # The processes' whole logs, for looking into a run (the report keeps only their shape).
                kept = Path(args.keep_logs) / f"{webs}x{workers}"
                kept.mkdir(parents=True, exist_ok=True)
                for log in workdir.glob("*.log"):
                    shutil.copy(log, kept / log.name)
            _drop_database(pg_name)
    return run


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench_multiproc", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--layouts", default="1x1,2x2", help="web x worker processes, comma-separated (default 1x1,2x2)"
    )
    parser.add_argument("--slack-rate", type=float, default=200, help="Slack commands per second (default 200)")
    parser.add_argument("--telegram-rate", type=float, default=50, help="Telegram updates per second (default 50)")
    parser.add_argument("--duration", type=float, default=10, help="seconds of load (default 10; issue 17 asks 60)")
    parser.add_argument(
        "--command", default="/customer acme", help="what each Slack and Telegram request asks (default /customer acme)"
    )
    parser.add_argument("--customers", type=int, default=400, help="demo customers in the database")
    parser.add_argument("--drain-timeout", type=float, default=180, help="seconds to wait for replies after the load")
    parser.add_argument("--keep-logs", metavar="DIR", help="copy the processes' logs into DIR/<layout>/")
    args = parser.parse_args(argv)
    print(
        f"PostgreSQL; {args.command}: Slack {args.slack_rate:g}/s, Telegram {args.telegram_rate:g}/s for "
        f"{args.duration:g}s; {os.cpu_count()} CPUs",
        flush=True,
    )
    for layout in [part.strip() for part in args.layouts.split(",") if part.strip()]:
        webs, _, workers = layout.partition("x")
        run = run_layout(int(webs), int(workers), args)
        print(run.report(), flush=True)
