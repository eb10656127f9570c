"""Admins only: the audit log (``audit:read``, paged, filtered by customer, user, time and action)
and the CRM's users with their roles (``users:manage``, as ``/role``; through ``crm_core.services.users``,
which keeps an admin from taking admin away from themselves)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm import selectinload

from bot.api.auth import Principal, need, unit_of_work
from bot.api.paging import Page, PageParams, page_params, paginate
from bot.api.types import Id
from bot.roles import Permission
from crm_core.errors import NotFound
from crm_core.models import AuditEntry, Role, User
from crm_core.services import audit_log, users
from crm_core.uow import UnitOfWork

router = APIRouter(tags=["admin"])

StaffRole = Literal["admin", "manager", "sales", "support", "viewer"]


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor_user_id: int | None
    actor_name: str | None
    # Where the change came from: slack, telegram, console, api:<token name>, system.
    platform: str | None
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class UserOut(BaseModel):
    id: int
    name: str
    email: str | None
    role: StaffRole | None
    timezone: str
    language: str | None
    active: bool
    # The chat accounts that are this user, as platform:id.
    identities: list[str]


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: StaffRole | None = Field(description="The new role; null takes the role away")


def _user(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        name=user.name,
        email=user.email,
        role=user.role.value if user.role else None,  # type: ignore[arg-type]
        timezone=user.timezone,
        language=user.language,
        active=user.active,
        identities=[f"{i.platform}:{i.external_id}" for i in user.identities],
    )


@router.get("/audit", response_model=Page[AuditOut], summary="The audit log: every change, who made it and where")
def list_audit(
    request: Request,
    response: Response,
    page: PageParams = Depends(page_params),
    customer_id: Id | None = Query(None, description="Changes to this customer's record"),
    user_id: Id | None = Query(None, description="Changes made by this user"),
    since: AwareDatetime | None = Query(None, description="At or after this time (with a UTC offset)"),
    action: Literal["create", "update", "delete", "import"] | None = Query(None),
    _who: Principal = Depends(need(Permission.AUDIT_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    statement = audit_log.matching(audit_log.AuditFilter(customer_id, user_id, since, action))
    return paginate(
        uow.session,
        statement,
        AuditEntry.id,
        page,
        request,
        response,
        # Personal values are stored encrypted per customer (crypto-shredding): shown decrypted, or [erased].
        lambda rows: [AuditOut.model_validate(audit_log.readable(uow.session, e), from_attributes=True) for e in rows],
    )


@router.get("/users", response_model=Page[UserOut], summary="The CRM's users and their roles")
def list_users(
    request: Request,
    response: Response,
    page: PageParams = Depends(page_params),
    role: StaffRole | None = Query(None),
    _who: Principal = Depends(need(Permission.USERS_MANAGE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    statement = sa.select(User).options(selectinload(User.identities))
    if role is not None:
        statement = statement.where(User.role == Role(role))
    return paginate(uow.session, statement, User.id, page, request, response, lambda rows: [_user(u) for u in rows])


@router.patch("/users/{user_id}", response_model=UserOut, summary="Give a user another role (as /role)")
def patch_user(
    user_id: Id,
    body: UserPatch,
    _who: Principal = Depends(need(Permission.USERS_MANAGE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    user = uow.session.get(User, user_id)
    if user is None:
        raise NotFound(f"there is no user #{user_id}")
    users.grant_role(uow, user, Role(body.role) if body.role else None)
    return _user(user)
