"""Who is calling the API and what they may do.

The gate (``bot.api.gate``) recognises the bearer token and puts a ``Principal`` on the request; the
endpoints ask for it with ``Depends(need(permission))``, which answers 403 unless the user's role
(from ``bot.roles``, the table chat uses) has the permission *and* the token's scopes include it. A
token with no scopes has all of its user's permissions; a ``…write`` scope includes its ``…read``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from bot.api.problems import Problem
from bot.bootstrap import App
from crm_core import db
from crm_core.actor import Actor
from crm_core.uow import UnitOfWork

# Declares the scheme in the OpenAPI document (the gate does the checking, before any endpoint runs).
bearer = HTTPBearer(auto_error=False, description="A personal access token from /token new (crm_…)")


@dataclass(frozen=True)
class Principal:
    token_id: int
    token_name: str
    user_id: int
    user_name: str
    role: str | None
    # Permission names; empty: everything the role allows.
    scopes: tuple[str, ...]
    timezone: str = "UTC"

    @property
    def actor(self) -> Actor:
        # The token's name is the channel: the audit log and interactions show "api:erp-sync".
        return Actor(user_id=self.user_id, name=self.user_name, platform=f"api:{self.token_name}", role=self.role)


def scopes_allow(scopes: tuple[str, ...], permission: str) -> bool:
    if not scopes or permission in scopes:
        return True
    area, _, kind = permission.rpartition(".")
    return kind == "read" and f"{area}.write" in scopes


def app_of(request: Request) -> App:
    app: App = request.app.state.chatcrm
    return app


# The dependencies that do no I/O are coroutines: FastAPI runs a plain function in a worker thread,
# a hop (and, on a busy machine, a wait for the scheduler) per dependency per request.
async def principal(request: Request, _credentials: object = Depends(bearer)) -> Principal:
    found = getattr(request.state, "principal", None)
    if not isinstance(found, Principal):  # the gate lets no request without one through; belt and braces
        raise Problem(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    return found


def allowed(app: App, who: Principal, permission: str) -> bool:
    return app.plugins.permissions.allows(who.role, permission) and scopes_allow(who.scopes, permission)


@functools.cache
def need(permission: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, if their role and token allow ``permission``; 403 otherwise."""

    async def check(request: Request, who: Principal = Depends(principal)) -> Principal:
        if not allowed(app_of(request), who, permission):
            raise Problem(403, f"this token may not do that (it needs {permission.replace('.', ':')})")
        return who

    check.__name__ = f"need_{permission.replace('.', '_')}"
    return check


class PendingWork:
    """The request's unit of work, begun by the gate to check the token and handed to the endpoint
    (``unit_of_work``), which finishes it; whatever no endpoint took, the gate finishes (commits)."""

    def __init__(self, uow: UnitOfWork):
        self.uow = uow
        self._lock = threading.Lock()
        self._begun = self._taken = self._finished = False

    def begin(self) -> UnitOfWork:
        if not self._begun:
            self.uow.__enter__()
            self._begun = True
        # Each step may run in another worker thread than the last (SQLite's write turn follows).
        db.carry_write_turn(self.uow.session)
        return self.uow

    def take(self) -> UnitOfWork | None:
        """The unit of work for the endpoint to finish, or None if it is finished already."""
        with self._lock:
            if self._taken or self._finished:
                return None
            self._taken = True
        return self.begin()

    def finish(self, *, commit: bool = True) -> None:
        with self._lock:
            if self._taken or self._finished:
                return
            self._finished = True
        if self._begun:
            db.carry_write_turn(self.uow.session)
            if commit:
                self.uow.__exit__(None, None, None)
            else:
                failed = RuntimeError("the request failed before an endpoint took its transaction")
                self.uow.__exit__(RuntimeError, failed, None)


def unit_of_work(request: Request, who: Principal = Depends(principal)) -> Iterator[UnitOfWork]:
    """One transaction per request, acting as the token's user: commits when the endpoint returns.

    It is the transaction the gate checked the token in (``PendingWork``), so a request costs one
    transaction. Endpoints take it with ``Depends(unit_of_work, scope="function")``: the commit then
    happens before the answer is sent (FastAPI's default scope would send it first), so a client
    never reads a 201 for a write that is not committed yet, or that fails to commit."""
    app = app_of(request)
    # The same ownership rule as in chat (crm_core.services.ownership), under the same setting.
    actor = replace(who.actor, edit_scope=app.settings.edit_scope)
    work = getattr(request.state, "work", None)
    uow = work.take() if isinstance(work, PendingWork) else None
    if uow is None:  # an Idempotency-Key request: the token was checked in a transaction of its own
        uow = app.uow(actor).__enter__()
    uow.act_as(actor)
    try:
        yield uow
    except BaseException as exc:
        db.carry_write_turn(uow.session)
        uow.__exit__(type(exc), exc, exc.__traceback__)
        raise
    db.carry_write_turn(uow.session)
    uow.__exit__(None, None, None)
