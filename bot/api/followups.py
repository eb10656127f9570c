"""``/followups``: the caller's open follow-ups (managers: everyone's, as ``/followup list all``),
set one, and PATCH one done, cancelled or snoozed, through ``crm_core.services.followups`` (which
decides who may change whose)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from bot.api.auth import Principal, allowed, app_of, need, unit_of_work
from bot.api.paging import Page, PageParams, page_params, paginate
from bot.api.problems import Problem
from bot.api.types import Id
from bot.roles import Permission
from crm_core import clock
from crm_core.errors import ValidationError
from crm_core.models import FollowUp, User
from crm_core.services import followups
from crm_core.uow import UnitOfWork

router = APIRouter(prefix="/followups", tags=["follow-ups"])


class FollowUpOut(BaseModel):
    id: int
    customer_id: int
    customer: str
    user_id: int
    user: str
    due_at: datetime
    text: str
    timezone: str
    status: Literal["pending", "reminded", "done", "cancelled"]
    reminded_at: datetime | None
    done_at: datetime | None
    snooze_count: int
    created_at: datetime


class FollowUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Id
    due_at: AwareDatetime = Field(description="When to remind you (with a UTC offset); in the future")
    text: str = Field(min_length=1, max_length=followups.MAX_TEXT)


class FollowUpPatch(BaseModel):
    """Either a new status (done or cancelled) or a snooze; the reminder follows."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["done", "cancelled"] | None = None
    snooze_days: int | None = Field(None, ge=1, le=365, description="Remind again this many days later")


def render(followup: FollowUp) -> FollowUpOut:
    return FollowUpOut(
        id=followup.id,
        customer_id=followup.customer_id,
        customer=followup.customer.name,
        user_id=followup.user_id,
        user=followup.user.name,
        due_at=followup.due_at,
        text=followup.text,
        timezone=followup.timezone,
        status=followup.status.value,  # type: ignore[arg-type]
        reminded_at=followup.reminded_at,
        done_at=followup.done_at,
        snooze_count=followup.snooze_count,
        created_at=followup.created_at,
    )


def _me(session: Session, who: Principal) -> User:
    user = session.get(User, who.user_id)
    assert user is not None, "a token's user is never deleted while the token works"
    return user


@router.get("", response_model=Page[FollowUpOut], summary="Open follow-ups (yours, overdue, or everyone's)")
def list_followups(
    request: Request,
    response: Response,
    page: PageParams = Depends(page_params),
    scope: Literal["mine", "overdue", "all"] = Query("mine", description="all: managers and admins only"),
    customer_id: Id | None = Query(None),
    who: Principal = Depends(need(Permission.FOLLOWUPS)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    if scope == "all" and not allowed(app_of(request), who, Permission.DIGESTS_MANAGE):
        raise Problem(403, "only managers and admins can see everyone's follow-ups")
    user_id = None if scope == "all" else who.user_id
    due_before = clock.utcnow() if scope == "overdue" else None
    # Keyset pages go by id, not by due time.
    statement = followups.open_matching(user_id=user_id, customer_id=customer_id, due_before=due_before).order_by(None)
    return paginate(
        uow.session, statement, FollowUp.id, page, request, response, lambda rows: [render(f) for f in rows]
    )


@router.post("", response_model=FollowUpOut, status_code=201, summary="Set a follow-up (you get the reminder)")
def create_followup(
    body: FollowUpIn,
    who: Principal = Depends(need(Permission.FOLLOWUPS)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    followup = followups.create_followup(
        uow, body.customer_id, who.user_id, body.due_at, body.text, timezone=who.timezone
    )
    return render(followup)


@router.patch("/{followup_id}", response_model=FollowUpOut, summary="Mark a follow-up done, cancel or snooze it")
def patch_followup(
    followup_id: Id,
    body: FollowUpPatch,
    who: Principal = Depends(need(Permission.FOLLOWUPS)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    if (body.status is None) == (body.snooze_days is None):
        raise ValidationError("give either status (done or cancelled) or snooze_days", field="status")
    me = _me(uow.session, who)
    if body.status == "done":
        followup = followups.complete(uow, followup_id, me)
    elif body.status == "cancelled":
        followup = followups.cancel(uow, followup_id, me)
    else:
        followup = followups.snooze(uow, followup_id, me, days=body.snooze_days or 1)
    return render(followup)
