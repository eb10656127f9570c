"""Campaign benchmark: a 100,000-recipient campaign, from the start-time checks to the send rate.

    .venv/bin/python -m benchmarks campaigns [-- --databases postgresql,sqlite --recipients 100000
        --send-seconds 20 --rate 30]

For each database (a fresh SQLite file; a scratch PostgreSQL database on ``TEST_DATABASE_URL`` or
127.0.0.1:5432), ``--recipients`` customers opted in on Telegram are inserted in bulk, then:

1. the start-time template check (``crm_core.campaigns.service.check_renders``: every
   recipient's message rendered once, as ``/campaign start`` does);
2. freezing the recipient list and queueing the run (``crm_core.campaigns.delivery.start_run``:
   two INSERT … SELECT statements in one transaction; target: under 10 s on PostgreSQL); then one
   claim of the outbox sender against the full queue;
3. the send rate: the real ``OutboxSender`` works the queue (each campaign row rendered and
   re-checked right before it goes) for ``--send-seconds`` against the fake chat API in its own
   process (tests/fakes, as bench_outbox does), at Telegram's default limits (``--rate``/s
   overall, 1/s per chat). Measured at the fake on arrival: messages per full second (target:
   at the limit) and the most in any 1-second window (must not exceed it); then one settling
   pass of the campaign tick (``delivery.settle``) over the run;
4. the pause: after those seconds the campaign is paused as ``/campaign pause`` does (its own
   transaction, committed) while the sender goes on; measured at the fake: how many messages
   arrived after the commit and how long after it the last one arrived (target: under a second;
   the sender re-checks each row right before it waits its turn, READY_AHEAD_SECONDS ahead).
   A timing, so it is measured here and not asserted in tests/test_campaign_crash.py, which
   checks what the pause holds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from dataclasses import replace
from datetime import timedelta

import sqlalchemy as sa

from benchmarks import keyed_engine
from benchmarks.bench_outbox import _arrivals, _max_in_window, _per_second, fake_api_process, scratch_database
from bot.bootstrap import load_plugins
from bot.settings import Settings
from crm_core import db, field_crypto, outbox
from crm_core.campaigns import delivery, service
from crm_core.clock import utcnow
from crm_core.models import Campaign, CampaignStatus, Consent, ConsentStatus, Customer, chat_ids
from crm_core.services import segments
from crm_core.uow import UnitOfWork

FIRST_CHAT = 100_000


def populate(session_factory, count: int, chunk: int = 10_000) -> float:
    """``count`` customers in Germany, opted in on Telegram, in bulk; returns the seconds it took."""
    started = time.perf_counter()
    now = utcnow()
    # Chat ids scattered over the customers, as real Telegram ids are: ids rising with the customer
    # id would put every conversation lookup of a claim on neighbouring index pages.
    chat_of = list(range(FIRST_CHAT, FIRST_CHAT + count))
    random.Random(count).shuffle(chat_of)
    with UnitOfWork(session_factory) as uow:
        session = uow.session
        keys = field_crypto.keys_for(session)
        for offset in range(0, count, chunk):
            numbers = range(offset, min(offset + chunk, count))
            ids = list(
                session.scalars(
                    sa.insert(Customer).returning(Customer.id, sort_by_parameter_order=True),
                    [
                        {
                            "name": f"Kunde {FIRST_CHAT + i} Test",
                            "country": "DE",
                            "language": "en",
                            "search_name": "",
                            "search_keys": "",
                            "created_at": now,
                            "updated_at": now,
                        }
                        for i in numbers
                    ],
                )
            )
            session.execute(
                sa.insert(Consent),
                [
                    {
                        "customer_id": cid,
                        "platform": "telegram",
                        "conversation": str(chat_of[i]),
                        # A Core INSERT: the blind index is ours to set (crm_core.models.chat_ids).
                        "conversation_index": chat_ids.blind(keys, str(chat_of[i])),
                        "status": ConsentStatus.OPTED_IN,
                        "opted_in_at": now,
                        "opted_in_source": "started the bot",
                    }
                    for cid, i in zip(ids, numbers, strict=True)
                ],
            )
        segments.create(uow, "germany", "country=DE", None)
    return time.perf_counter() - started


def draft(session_factory) -> int:
    with UnitOfWork(session_factory) as uow:
        campaign = service.create(uow, "bench", "segment=germany template=campaign_announcement at=now", None, "UTC")
        return campaign.id


def check_renders(session_factory, campaign_id: int) -> tuple[float, int]:
    with UnitOfWork(session_factory) as uow:
        campaign = uow.session.get(Campaign, campaign_id)
        started = time.perf_counter()
        size = service.eligible_count(uow.session, campaign)
        failure = service.check_renders(uow, campaign)
        elapsed = time.perf_counter() - started
    assert failure is None, failure
    return elapsed, size


def start_run(session_factory, campaign_id: int) -> tuple[float, int]:
    """Freeze and queue the run, committed; returns the seconds and the recipients."""
    started = time.perf_counter()
    with UnitOfWork(session_factory) as uow:
        campaign = uow.session.get(Campaign, campaign_id)
        campaign.status = CampaignStatus.SCHEDULED
        run = delivery.start_run(uow, campaign, utcnow())
        recipients = run.recipients
    return time.perf_counter() - started, recipients


def claim_once(session_factory) -> float:
    """One claim of 200 rows with the whole run queued, handed back afterwards."""
    started = time.perf_counter()
    claimed = outbox.claim_due(
        session_factory,
        owner="bench-claim",
        platforms=["telegram"],
        limit=200,
        lease=timedelta(minutes=1),
        caps={"telegram": 1},
    )
    elapsed = time.perf_counter() - started
    outbox.release(session_factory, [row.id for row in claimed], "bench-claim")
    return elapsed


def settle(session_factory) -> float:
    """One campaign tick's settling (``delivery.settle``) with the run in flight."""
    started = time.perf_counter()
    with UnitOfWork(session_factory) as uow:
        delivery.settle(uow)
    return time.perf_counter() - started


def pause(session_factory, campaign_id: int) -> tuple[float, float]:
    """``/campaign pause``'s change, committed; the monotonic times it began and committed."""
    began = time.monotonic()
    with UnitOfWork(session_factory) as uow:
        service.pause(uow, uow.session.get(Campaign, campaign_id))
    return began, time.monotonic()


async def _send_for(sender, seconds: float, paused) -> tuple[float, float]:
    """Send for ``seconds``, pause (``paused()`` commits it, in a thread while the sender goes on),
    then let the sender run a little longer; when the pause began and committed."""
    await sender.start()
    try:
        await asyncio.sleep(seconds)
        paused_at = await asyncio.to_thread(paused)
        await asyncio.sleep(PAUSE_WATCH_SECONDS)
        return paused_at
    finally:
        await sender.stop()


# How long the sender goes on after the pause, for anything it still sends to arrive.
PAUSE_WATCH_SECONDS = 3.0


def send_rate(engine, session_factory, campaign_id: int, seconds: float, rate: int) -> dict[str, float]:
    from bot.adapters.telegram.plugin import LIMITS
    from bot.outbox_sender import OutboxSender, SenderSettings
    from bot.rate_limit import Rate
    from crm_core.campaigns.delivery import KIND, prepare_message
    from tests.fakes.http_sender import HttpSender

    limits = replace(LIMITS, overall=Rate(rate, 1))
    with fake_api_process() as url:
        sender = OutboxSender(
            engine,
            session_factory,
            {"telegram": HttpSender("telegram", url)},
            SenderSettings(limits={"telegram": limits}, poll_seconds=0.05),
            preparers={KIND: prepare_message},
        )
        pausing, paused_at = asyncio.run(_send_for(sender, seconds, lambda: pause(session_factory, campaign_id)))
        everything = [r["at"] for r in _arrivals(url)]
    arrivals = [at for at in everything if at <= paused_at]
    after_pause = [at for at in everything if at > paused_at]
    seconds_counts = _per_second(arrivals)
    return {
        # Holding every waiting row is one UPDATE: with a big run queued it takes a while, and the
        # sender goes on meanwhile (its re-checks see the campaign paused only after the commit).
        "pause_commit": paused_at - pausing,
        "after_pause": len(after_pause),
        "pause_lag": max(after_pause, default=paused_at) - paused_at,
        "messages": len(arrivals),
        "mean": statistics.mean(seconds_counts),
        "min": min(seconds_counts),
        "max_window": _max_in_window(arrivals),
        "seconds": len(seconds_counts),
    }


def run(kind: str, args: argparse.Namespace) -> dict[str, float] | None:
    with scratch_database(kind) as url:
        if url is None:
            return None
        engine = keyed_engine(url)
        try:
            db.upgrade(engine)
            factory = db.session_factory(engine)
            result: dict[str, float] = {"populate": populate(factory, args.recipients)}
            campaign_id = draft(factory)
            result["check"], size = check_renders(factory, campaign_id)
            result["start_run"], result["recipients"] = start_run(factory, campaign_id)
            assert result["recipients"] == size == args.recipients, (result, size)
            result["claim"] = claim_once(factory)
            print(
                f"  {kind}: {args.recipients:,} customers inserted in {result['populate']:.1f} s; render check "
                f"{result['check']:.1f} s; start_run {result['start_run']:.2f} s; "
                f"a claim {result['claim'] * 1000:.0f} ms",
                flush=True,
            )
            if kind in args.send_on.split(","):
                sent = send_rate(engine, factory, campaign_id, args.send_seconds, args.rate)
                result.update({f"send_{key}": value for key, value in sent.items()})
                result["settle"] = settle(factory)
            return result
        finally:
            engine.dispose()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="benchmarks campaigns")
    parser.add_argument("--databases", default="postgresql,sqlite")
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--send-seconds", type=float, default=20.0)
    parser.add_argument("--send-on", default="postgresql,sqlite", help="databases to measure the send rate on")
    parser.add_argument("--rate", type=int, default=30, help="overall messages per second (Telegram's default: 30)")
    args = parser.parse_args(argv)
    # Campaigns reach customers on the platforms registered by the plugins (Telegram among them).
    load_plugins(Settings(database_url="sqlite://", secret_key="benchmark-only-key-0123456789"))
    loadavg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s), load average {loadavg} (other work on the "
        f"machine inflates all times); {args.recipients:,} recipients",
        flush=True,
    )
    results = {kind: run(kind, args) for kind in args.databases.split(",")}
    rows = [("", *results)]
    rows.append(("render check, all recipients (s)", *(_fmt(r, "check", "{:.1f}") for r in results.values())))
    rows.append(
        (
            "freeze + queue: start_run (s; target < 10 on PostgreSQL)",
            *(_fmt(r, "start_run", "{:.2f}") for r in results.values()),
        )
    )
    rows.append(
        ("a sender claim with the run queued (ms)", *(_fmt(r, "claim", "{:.0f}", 1000) for r in results.values()))
    )
    rows.append(
        (
            f"send rate, mean per full second (limit {args.rate}/s)",
            *(_fmt(r, "send_mean", "{:.1f}") for r in results.values()),
        )
    )
    rows.append(
        (
            "  as % of the limit (target: 100 %)",
            *(_fmt(r, "send_mean", "{:.1%}", 1 / args.rate) for r in results.values()),
        )
    )
    rows.append(("  slowest full second", *(_fmt(r, "send_min", "{:.0f}") for r in results.values())))
    rows.append(
        (
            f"  most in any 1 s window (must be <= {args.rate})",
            *(_fmt(r, "send_max_window", "{:.0f}") for r in results.values()),
        )
    )
    rows.append(
        (
            f"  messages / seconds measured (until the pause, after {args.send_seconds:g} s)",
            *(f"{_fmt(r, 'send_messages', '{:.0f}')} / {_fmt(r, 'send_seconds', '{:.0f}')}" for r in results.values()),
        )
    )
    rows.append(
        (
            "pause: its transaction, holding the waiting rows (s)",
            *(_fmt(r, "send_pause_commit", "{:.2f}") for r in results.values()),
        )
    )
    rows.append(
        (
            "  messages arriving after it committed",
            *(_fmt(r, "send_after_pause", "{:.0f}") for r in results.values()),
        )
    )
    rows.append(
        (
            "  the last of them, after the commit (s; target < 1)",
            *(_fmt(r, "send_pause_lag", "{:.2f}") for r in results.values()),
        )
    )
    rows.append(
        (
            "settling the sent ones (the campaign tick, ms)",
            *(_fmt(r, "settle", "{:.0f}", 1000) for r in results.values()),
        )
    )
    width = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    print("\nresults")
    for row in rows:
        print(
            "  "
            + "  ".join(
                str(cell).ljust(width[i]) if i == 0 else str(cell).rjust(width[i]) for i, cell in enumerate(row)
            )
        )


def _fmt(result: dict[str, float] | None, key: str, spec: str, scale: float = 1.0) -> str:
    if result is None:
        return "skipped"
    if key not in result:
        return "-"
    return spec.format(result[key] * scale)
