"""What every API request passes before an endpoint runs (an ASGI middleware, in this order):

1. the body size: over ``max_body`` (bulk endpoints: ``max_bulk_body``) → 413, checked against
   ``Content-Length`` and again while reading, for bodies sent in chunks;
2. the bearer token: missing, unknown, revoked or expired → 401 (``WWW-Authenticate: Bearer``). A
   missing one is refused before the body is read; the token itself is looked up after it, in the
   transaction the endpoint then goes on with (``auth.unit_of_work``): one transaction, one
   connection and one commit per request, where a transaction of its own cost two more round trips
   to the database and a pool checkout (with its ping) per request. Reading the body first keeps a
   slow upload from holding a database connection;
3. the token's rate: a token bucket per token (``rate`` per second, ``burst`` at once) → 429 with
   ``Retry-After``. Per process: with several web processes each has its own buckets;
4. ``Idempotency-Key`` on POST: a retry with the same key and request replays the first answer
   (``Idempotent-Replayed: true``); the same key with another request → 422. These requests check
   the token in a transaction of its own (the key is claimed in another before the endpoint runs).

The OpenAPI document is public; everything else needs a token.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.api.auth import PendingWork, Principal
from bot.api.config import ApiConfig
from bot.api.problems import problem_response
from bot.bootstrap import App
from crm_core.services import api_idempotency, api_tokens
from crm_core.services.api_idempotency import Outcome

PUBLIC_PATHS = frozenset({"/openapi.json"})
# Response headers worth replaying with a stored answer.
_REPLAYED_HEADERS = ("content-type", "location", "etag")
MAX_KEY = 255


class TooLarge(Exception):
    pass


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per API token: ``take`` returns 0 if the request may go, else seconds to wait."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[int, _Bucket] = {}

    def take(self, key: int) -> float:
        now = self.clock()
        bucket = self._buckets.setdefault(key, _Bucket(self.burst, now))
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


def route_path(scope: Scope) -> str:
    """The path inside the mount (``/customers``), whatever prefix the API is mounted under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _bearer(headers: Headers) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class Gate:
    def __init__(self, inner: ASGIApp, app: App, config: ApiConfig, bulk_paths: frozenset[str] = frozenset()):
        self.inner = inner
        self.app = app
        self.config = config
        self.bulk_paths = bulk_paths
        self.limiter = RateLimiter(config.rate, config.burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or route_path(scope) in PUBLIC_PATHS:
            await self.inner(scope, receive, send)
            return
        path = route_path(scope)
        headers = Headers(scope=scope)
        limit = self.config.max_bulk_body if path in self.bulk_paths else self.config.max_body
        too_large = problem_response(413, f"the body is larger than {limit} bytes")
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await too_large(scope, receive, send)
            return
        secret = _bearer(headers)
        if secret is None:
            await self._unauthorized("a bearer token is required")(scope, receive, send)
            return
        try:
            body = await _read_body(receive, limit)
        except TooLarge:
            await too_large(scope, receive, send)
            return
        work = PendingWork(self.app.uow())
        try:
            await self._admit(scope, body, receive, send, work, secret)
        except BaseException:
            await run_in_threadpool(functools.partial(work.finish, commit=False))
            raise
        # Committed here only if no endpoint took it over (a 401, 429 or 422 before the endpoint):
        # the token's "last used" is kept all the same.
        await run_in_threadpool(work.finish)

    async def _admit(
        self, scope: Scope, body: bytes, receive: Receive, send: Send, work: PendingWork, secret: str
    ) -> None:
        """Steps 2 (the token itself) to 4, then the endpoint, in the request's transaction ``work``."""
        send = _finishing_first(send, work)
        who = await run_in_threadpool(self._authenticate, work, secret)
        if who is None:
            await self._unauthorized("the token is not valid (unknown, revoked or expired)")(scope, receive, send)
            return
        wait = self.limiter.take(who.token_id)
        if wait > 0:
            retry = max(1, math.ceil(wait))
            response = problem_response(
                429, f"too many requests for this token: try again in {retry} s", headers={"Retry-After": str(retry)}
            )
            await response(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["principal"] = who
        replay = _replaying(body, receive)
        key = Headers(scope=scope).get("idempotency-key")
        if scope["method"] == "POST" and key is not None:
            # The key is claimed in a transaction of its own: the token's is finished first.
            await run_in_threadpool(work.finish)
            await self._idempotent(scope, replay, send, who, key, body)
        else:
            state["work"] = work
            await self.inner(scope, replay, send)

    @staticmethod
    def _unauthorized(detail: str) -> Response:
        return problem_response(401, detail, headers={"WWW-Authenticate": "Bearer"})

    @staticmethod
    def _authenticate(work: PendingWork, secret: str) -> Principal | None:
        token = api_tokens.authenticate(work.begin(), secret)
        if token is None:
            return None
        user = token.user
        return Principal(
            token_id=token.id,
            token_name=token.name,
            user_id=user.id,
            user_name=user.name,
            role=user.role.value if user.role else None,
            scopes=tuple(token.scopes or ()),
            timezone=user.timezone or "UTC",
        )

    async def _idempotent(
        self, scope: Scope, receive: Receive, send: Send, who: Principal, key: str, body: bytes
    ) -> None:
        if not 1 <= len(key) <= MAX_KEY or not key.isprintable():
            await problem_response(400, f"Idempotency-Key must be 1 to {MAX_KEY} printable characters")(
                scope, receive, send
            )
            return
        query = scope.get("query_string", b"").decode("latin-1")
        fingerprint = hashlib.sha256(f"POST {route_path(scope)}?{query}\n".encode() + body).hexdigest()
        factory = self.app.session_factory
        claim = await run_in_threadpool(api_idempotency.begin, factory, who.token_id, key, fingerprint)
        if claim.outcome is Outcome.MISMATCH:
            detail = "this Idempotency-Key was already used for a different request; use a new key for a new request"
            await problem_response(422, detail)(scope, receive, send)
            return
        if claim.outcome is Outcome.IN_PROGRESS:
            detail = "a request with this Idempotency-Key is still being served; retry in a moment"
            await problem_response(409, detail, headers={"Retry-After": "1"})(scope, receive, send)
            return
        if claim.outcome is Outcome.REPLAY:
            await _send_stored(send, claim.status_code or 200, claim.headers or {}, claim.body or b"")
            return
        assert claim.row_id is not None
        status = 0
        kept: dict[str, str] = {}
        chunks: list[bytes] = []
        # The answer is held back until it is stored: a client retrying the moment it reads the
        # first answer must get the replay, not "still being served".
        held: list[Message] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.decode("latin-1").lower() in _REPLAYED_HEADERS:
                        kept[name.decode("latin-1").lower()] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            held.append(message)

        try:
            await self.inner(scope, receive, capture)
        except BaseException:
            await run_in_threadpool(api_idempotency.abandon, factory, claim.row_id)
            raise
        if status >= 500 or status in (401, 403, 429) or status == 0:
            # Our failure or a refusal before the work: the client may retry with the same key.
            await run_in_threadpool(api_idempotency.abandon, factory, claim.row_id)
        else:
            await run_in_threadpool(api_idempotency.finish, factory, claim.row_id, status, kept, b"".join(chunks))
        for message in held:
            await send(message)


def _finishing_first(send: Send, work: PendingWork) -> Send:
    """``send``, ending the request's transaction (if no endpoint took it) before the answer starts:
    a client never reads an answer before what the request wrote is committed."""

    async def finishing(message: Message) -> None:
        if message["type"] == "http.response.start":
            await run_in_threadpool(work.finish)
        await send(message)

    return finishing


def _replaying(body: bytes, original: Receive) -> Receive:
    """The body already read, then the connection's own messages (a disconnect, when it comes)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive


async def _send_stored(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    raw += [(b"idempotent-replayed", b"true"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
