"""A ``PlatformSender`` that talks HTTP to the fake chat API (tests and benchmarks only).

It maps answers the way the real adapters do: 429 -> RateLimited(retry_after), 403 ->
RecipientUnreachable, 5xx and network errors -> TemporaryFailure.
"""

from __future__ import annotations

import time

import httpx

from bot.delivery import OutboundMessage, RateLimited, RecipientUnreachable, TemporaryFailure


class HttpSender:
    def __init__(self, platform: str, base_url: str, timeout: float = 10.0):
        self.platform = platform
        self.base_url = base_url
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def send(self, message: OutboundMessage) -> str:
        if self._client is None:
            self._client = httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout)
        body = {
            "conversation": message.conversation,
            "key": message.metadata.get("idempotency_key", ""),
            "text": message.formatted_text,
            "format": message.metadata.get("format"),
            "blocks": message.blocks,
            "buttons": [{"label": b.label, "command": b.command} for b in message.buttons],
            "image": message.image.path if message.image else None,
        }
        try:
            response = await self._client.post("/send", json=body, headers={"X-Sent-At": repr(time.monotonic())})
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"network error: {exc}") from exc
        data = response.json()
        if response.status_code == 200 and data.get("ok"):
            return str(data["message_id"])
        if response.status_code == 429:
            retry = (data.get("parameters") or {}).get("retry_after") or response.headers.get("Retry-After") or 1
            raise RateLimited(float(retry), data.get("description", ""))
        if response.status_code == 403:
            raise RecipientUnreachable(data.get("description", "forbidden"))
        raise TemporaryFailure(f"HTTP {response.status_code}: {data.get('description', '')}")
