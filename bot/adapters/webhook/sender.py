"""The outbox's ``PlatformSender`` for webhooks: POSTs a row's JSON body, signed per Standard Webhooks.

Headers: ``webhook-id`` (the message id, the same on every retry), ``webhook-timestamp`` (seconds
since the epoch, now) and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``.
Only a 2xx answer counts; the timeout is 10 s for the whole exchange; redirects are not followed
(a 3xx is a failure). The response body is never read.

Before every POST the URL goes through the SSRF guard again (DNS may have changed since the URL
was added) and the request is sent to the address the guard checked, with the host name kept for
the Host header and TLS (SNI and certificate check): a name that resolves elsewhere a moment later
gains nothing. Every attempt is recorded (crm_core.webhooks.record_attempt); a failure is
a ``TemporaryFailure`` for the outbox to retry, or a ``PermanentFailure`` once the endpoint is gone
or disabled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

import httpx
from sqlalchemy.orm import Session, sessionmaker

from bot.delivery import OutboundMessage, PermanentFailure, TemporaryFailure
from crm_core import webhooks
from crm_core.clock import utcnow
from crm_core.webhook_guard import Resolver, Target, UnsafeUrl, check_url, resolve

log = logging.getLogger("chatcrm.webhooks")

TIMEOUT_SECONDS = 10.0
USER_AGENT = "chatcrm-webhooks/1"


class WebhookSender:
    platform = webhooks.PLATFORM

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        allow_private: bool = False,
        timeout: float = TIMEOUT_SECONDS,
        resolver: Resolver = resolve,
        clock: Callable[[], float] = time.time,
    ):
        self.session_factory = session_factory
        self.allow_private = allow_private
        self.timeout = timeout
        self.resolver = resolver
        self.clock = clock
        # One client per host name: connections are pooled by the (pinned) address, and two names
        # on one address must not share a TLS connection made for the other's name.
        self._clients: dict[str, httpx.AsyncClient] = {}

    def _client(self, host: str) -> httpx.AsyncClient:
        client = self._clients.get(host)
        if client is None:
            client = httpx.AsyncClient(
                follow_redirects=False, timeout=self.timeout, trust_env=False, headers={"user-agent": USER_AGENT}
            )
            self._clients[host] = client
        return client

    async def send(self, message: OutboundMessage) -> str:
        endpoint_id = webhooks.endpoint_of(message.conversation)
        message_id = webhooks.message_id_of(str(message.metadata.get("idempotency_key", "")))
        body = (message.formatted_text or "").encode()
        try:
            event_type = str(json.loads(body).get("type", "?"))
        except ValueError:
            event_type = "?"
        destination = await asyncio.to_thread(webhooks.destination, self.session_factory, endpoint_id)
        if destination is None:
            raise PermanentFailure(f"webhook #{endpoint_id} was removed")
        if not destination.enabled and event_type != webhooks.TEST_EVENT:
            raise PermanentFailure(f"webhook #{endpoint_id} is disabled")
        started = time.perf_counter()
        status, error = await self._post(destination, message_id, body)
        attempt = webhooks.Attempt(
            endpoint_id=endpoint_id,
            message_id=message_id,
            event_type=event_type,
            attempt=int(message.metadata.get("attempt") or 1),
            status_code=status,
            latency_ms=round((time.perf_counter() - started) * 1000),
            error=error,
        )
        disabled = await asyncio.to_thread(webhooks.record_attempt, self.session_factory, attempt, now=utcnow())
        if attempt.delivered:
            return message_id
        if disabled:
            log.warning("webhook #%s is disabled (failing for too long); not retrying %s", endpoint_id, message_id)
            raise PermanentFailure(f"webhook #{endpoint_id} is disabled: {error}")
        raise TemporaryFailure(error or "not delivered")

    async def _post(
        self, destination: webhooks.Destination, message_id: str, body: bytes
    ) -> tuple[int | None, str | None]:
        """(status code, error): the status when an answer came, an error when it is not a 2xx."""
        try:
            target = await asyncio.to_thread(
                check_url, destination.url, allow_private=self.allow_private, resolver=self.resolver
            )
        except UnsafeUrl as exc:
            return None, f"refused: {exc.message}"
        timestamp = int(self.clock())
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": webhooks.sign(destination.secret, message_id, timestamp, body),
        }
        url, extensions = _pinned(target, headers)
        try:
            async with asyncio.timeout(self.timeout):
                client = self._client(target.host)
                async with client.stream("POST", url, content=body, headers=headers, extensions=extensions) as answer:
                    status = answer.status_code
        except TimeoutError:
            return None, f"no answer within {self.timeout:g} s"
        except httpx.TimeoutException:
            return None, f"no answer within {self.timeout:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= status < 300:
            return status, None
        if 300 <= status < 400:
            return status, f"HTTP {status}: redirects are not followed (give the final URL)"
        return status, f"HTTP {status}"


def _pinned(target: Target, headers: dict[str, str]) -> tuple[httpx.URL | str, dict]:
    """The URL to request: the checked address in place of the name (Host header and SNI keep the name)."""
    if not target.addresses:
        return target.url, {}
    original = httpx.URL(target.url)
    headers["host"] = original.netloc.decode("ascii")
    return original.copy_with(host=target.addresses[0]), {"sni_hostname": target.host}
