"""Processing durable deliveries from the inbox, and recovering the ones a dead process left.

An adapter that keeps its deliveries (Telegram, Slack) records each one with ``crm_core.inbox.receive``
before answering the platform and hands the claim to ``InboxRunner.run``, which calls the
platform's ``InboxProcessor``. The processor's effect marks the delivery done (the dispatcher's
``inbox.complete``). When it raises, the failure is logged under a reference and the delivery is
released with a backoff; after the last attempt it is ``poisoned``: the person who wrote is told
once ("Something went wrong (ref …)", through the outbox) and every admin gets one report.
While a process holds a delivery (queued for a dispatch thread, or being processed), the runner
renews its lease every third of a lease, so a busy process is never taken for a dead one.

``InboxRecovery`` is the worker's loop (and the web's start-up pass): every few seconds it claims
pending deliveries whose lease expired (a process died while working on them, or their retry is
due) and runs them again from their stored payload, through the same processor.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from bot.messages import Reply, Tone
from bot.settings import env_number
from crm_core import i18n, inbox, outbox
from crm_core.i18n import _
from crm_core.inbox import Claim
from crm_core.models.inbox import InboxStatus
from crm_core.outbox_payload import MessagePayload
from crm_core.services import users
from crm_core.uow import UnitOfWork

log = logging.getLogger("chatcrm.inbox")


class InboxProcessor(Protocol):
    platform: str

    async def process(self, claim: Claim) -> None:
        """Carry out the delivery (its effect marks it done); raise when that failed."""
        ...

    def poisoned(self, uow: UnitOfWork, claim: Claim, ref: str) -> None:
        """The delivery is given up: queue, in ``uow``, the one answer its sender gets."""
        ...

    async def close(self) -> None:
        """Let go of what processing connected (sessions, threads); called when its owner stops."""
        ...


@dataclass(frozen=True)
class InboxSettings:
    # How long a process may work on a delivery before someone else takes it over.
    lease_seconds: float = inbox.DEFAULT_LEASE.total_seconds()
    # How often the worker looks for deliveries to recover.
    poll_seconds: float = 5.0
    max_attempts: int = inbox.DEFAULT_MAX_ATTEMPTS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> InboxSettings:
        return cls(
            lease_seconds=env_number(env, "CHATCRM_INBOX_LEASE", cls.lease_seconds),
            poll_seconds=env_number(env, "CHATCRM_INBOX_POLL", cls.poll_seconds),
            max_attempts=int(env_number(env, "CHATCRM_INBOX_MAX_ATTEMPTS", cls.max_attempts)),
        )

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)


def _new_reference() -> str:
    from bot.dispatch import new_reference

    return new_reference()


class InboxRunner:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: InboxSettings,
        processors: Mapping[str, InboxProcessor],
    ):
        self.session_factory = session_factory
        self.settings = settings
        self.processors = dict(processors)
        # The deliveries this process has claimed and not finished (queued or being processed), by
        # (platform, key): their leases are renewed while they are held (``renew_leases``).
        self._held: dict[tuple[str, str], Claim] = {}
        self._renewing: asyncio.Task[None] | None = None
        # A thread of its own for renewing (made on first need): a busy process's shared pool may be
        # queued with dispatches for longer than a lease, and a renewal behind them would come too late.
        self._renewer: ThreadPoolExecutor | None = None

    def receive(self, platform: str, key: str, payload: str) -> Claim | None:
        """Record a delivery durably (committed on return); the claim to process it now, if any."""
        return inbox.receive(self.session_factory, platform, key, payload, lease=self.settings.lease)

    async def run(self, claim: Claim) -> bool:
        """Process a claimed delivery; False when it failed (it is then retried later or poisoned).
        Its lease is renewed until then, however long it waits for its turn."""
        processor = self.processors.get(claim.platform)
        if processor is None:
            log.warning("no processor for %s deliveries; %s waits", claim.platform, claim.key)
            return False
        self._hold([claim])
        try:
            return await self._run(processor, claim)
        finally:
            self._held.pop((claim.platform, claim.key), None)

    async def _run(self, processor: InboxProcessor, claim: Claim) -> bool:
        try:
            await processor.process(claim)
        except Exception as exc:  # noqa: BLE001 - any failure: logged, retried, poisoned at last
            ref = getattr(exc, "ref", None) or _new_reference()
            if getattr(exc, "ref", None) is None:
                log.exception("processing %s delivery %s failed ref=%s", claim.platform, claim.key, ref)
            error = f"ref {ref}: {type(exc).__name__}: {exc}"
            status = await asyncio.to_thread(
                inbox.fail, self.session_factory, claim, error, max_attempts=self.settings.max_attempts
            )
            if status is InboxStatus.POISONED:
                await asyncio.to_thread(self._poisoned, claim, ref)
            return False
        return True

    async def recover(self) -> int:
        """Process again what a dead process left or what is due for a retry; how many were run."""
        found = await asyncio.to_thread(
            inbox.claim_expired,
            self.session_factory,
            sorted(self.processors),
            lease=self.settings.lease,
            max_attempts=self.settings.max_attempts,
        )
        for claim in found.poisoned:
            await asyncio.to_thread(self._poisoned, claim, _new_reference())
        # Run one after another: the last ones keep their leases while the first ones run.
        self._hold(found.claims)
        try:
            for claim in found.claims:
                log.info("recovering %s delivery %s (attempt %d)", claim.platform, claim.key, claim.attempts)
                await self.run(claim)
        finally:
            # Cut short (the database went away while recording a failure, or the worker stops): the
            # ones not run are let go, so their leases run out and they are recovered again, here or
            # elsewhere, instead of being renewed for as long as this process lives.
            for claim in found.claims:
                self._held.pop((claim.platform, claim.key), None)
        return len(found.claims)

    def _hold(self, claims: list[Claim]) -> None:
        for claim in claims:
            self._held[(claim.platform, claim.key)] = claim
        if self._held and (self._renewing is None or self._renewing.done()):
            self._renewing = asyncio.create_task(self._keep_leases(), name="inbox-leases")

    async def _keep_leases(self) -> None:
        """While deliveries are held: renew their leases every third of a lease. Under load a delivery
        can wait longer than its lease for a dispatch thread; without this the worker's recovery
        took it over as if its process had died (waiting on the row locks of the ones being
        finished, and processing again, in vain, the ones not started yet)."""
        while self._held:
            await asyncio.sleep(self.settings.lease_seconds / 3)
            try:
                await self.renew_leases()
            except sa.exc.SQLAlchemyError as exc:
                log.warning("inbox: renewing leases failed, retrying: %s", str(exc).splitlines()[0])

    async def renew_leases(self) -> int:
        """Renew the leases of the deliveries held now that are due (``inbox.renew``); how many were.
        A delivery stays held until its ``run`` ends."""
        claims = list(self._held.values())
        if not claims:
            return 0
        if self._renewer is None:
            self._renewer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox-leases")
        renew = functools.partial(inbox.renew, self.session_factory, claims, lease=self.settings.lease)
        kept = await asyncio.get_running_loop().run_in_executor(self._renewer, renew)
        return len(kept)

    async def close(self) -> None:
        """Stop renewing leases (what is still held runs out, and is recovered elsewhere) and let go of
        the renewing thread. The processors are their owners' to close."""
        self._held.clear()
        if self._renewing is not None and not self._renewing.done():
            self._renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewing
        self._renewing = None
        if self._renewer is not None:
            self._renewer.shutdown(wait=False)
            self._renewer = None

    @staticmethod
    def _poisoned_report(claim: Claim, ref: str, language: str | None) -> Reply:
        """What an admin is told about a delivery given up on, in their language."""
        with i18n.use_language(language) as chosen:
            return Reply(
                text=_(
                    "A {platform} message ({key}) could not be processed after {attempts} attempts and was set "
                    "aside (ref {ref}). The log has the details.",
                    platform=claim.platform.capitalize(),
                    key=claim.key,
                    attempts=i18n.format_number(claim.attempts),
                    ref=ref,
                ),
                tone=Tone.ERROR,
                language=chosen,
            )

    def _poisoned(self, claim: Claim, ref: str) -> None:
        """Given up after the last attempt: log it, tell its sender once and each admin once."""
        log.error(
            "%s delivery %s poisoned after %d attempts ref=%s; kept in inbound_events",
            claim.platform,
            claim.key,
            claim.attempts,
            ref,
        )
        processor = self.processors.get(claim.platform)
        try:
            with UnitOfWork(self.session_factory) as uow:
                if processor is not None:
                    processor.poisoned(uow, claim, ref)
                for identity in users.admin_identities(uow):
                    report = self._poisoned_report(claim, ref, identity.user.language)
                    outbox.enqueue(
                        uow,
                        idempotency_key=f"inbox-poisoned:{claim.platform}:{claim.key}:{identity.platform}:{identity.external_id}"[
                            :200
                        ],
                        kind="admin-report",
                        platform=identity.platform,
                        conversation=identity.external_id,
                        payload=MessagePayload(reply=report.to_dict()),
                        user_id=identity.user_id,
                        priority=outbox.INTERACTIVE,
                    )
        except sa.exc.SQLAlchemyError:
            log.exception("reporting poisoned delivery %s failed ref=%s", claim.key, ref)


class InboxRecovery:
    """A ``WorkerService``: runs ``InboxRunner.recover`` every ``poll_seconds``."""

    name = "inbox recovery"

    def __init__(self, runner: InboxRunner):
        self.runner = runner
        self._task: asyncio.Task | None = None
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        self._stopping = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name="inbox-recovery")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.runner.close()
        # The processors are this service's own (a platform's runtime, connected on first use): their
        # connections and threads go with it.
        for processor in self.runner.processors.values():
            await processor.close()

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                while await self.runner.recover():
                    if self._stopping.is_set():
                        return
            except sa.exc.SQLAlchemyError as exc:
                log.warning("inbox recovery: database error, retrying: %s", str(exc).splitlines()[0])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.runner.settings.poll_seconds)
