"""``/tickets``: list (cursor pages), get with the conversation thread, and post a staff reply that
reaches the customer's chat through the outbox, exactly as ``/ticket reply`` does (the same helper,
``bot.handlers.support.queue_answer``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from bot.api.auth import Principal, need, unit_of_work
from bot.api.etags import with_etag
from bot.api.paging import Page, PageParams, page_params, paginate
from bot.api.types import Id
from bot.handlers.support import queue_answer
from bot.roles import Permission
from crm_core.models import Ticket, TicketMessage, TicketStatus
from crm_core.services import tickets
from crm_core.uow import UnitOfWork

router = APIRouter(prefix="/tickets", tags=["tickets"])

Status = Literal["open", "pending", "resolved", "closed"]
THREAD_LIMIT = 200


class TicketOut(BaseModel):
    id: int
    customer_id: int
    customer: str
    subject: str
    status: Status
    priority: str
    assignee_id: int | None
    channel: str
    first_response_due_at: datetime | None
    resolve_due_at: datetime | None
    first_responded_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    rating: int | None
    created_at: datetime
    updated_at: datetime


class MessageOut(BaseModel):
    id: int
    # inbound: from the customer; outbound: our answer; internal: a staff note the customer never sees.
    direction: str
    author_id: int | None
    channel: str
    # For a photo, a file, a voice message...: its caption (maybe empty), and what it was.
    text: str
    # photo, file, sticker, voice, video, audio, location; null for a text message.
    attachment: str | None = None
    # The file's name, the sticker's emoji or the location's coordinates, when there is one.
    attachment_name: str | None = None
    created_at: datetime


class TicketWithThread(TicketOut):
    # The last 200 messages, oldest first; message_count says how many there are in all.
    messages: list[MessageOut]
    message_count: int


def render(ticket: Ticket) -> TicketOut:
    return TicketOut(
        id=ticket.id,
        customer_id=ticket.customer_id,
        customer=ticket.customer.name,
        subject=ticket.subject,
        status=ticket.status.value,  # type: ignore[arg-type]
        priority=ticket.priority.value,
        assignee_id=ticket.assignee_id,
        channel=ticket.channel,
        first_response_due_at=ticket.first_response_due_at,
        resolve_due_at=ticket.resolve_due_at,
        first_responded_at=ticket.first_responded_at,
        resolved_at=ticket.resolved_at,
        closed_at=ticket.closed_at,
        rating=ticket.rating,
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
    )


def _message(message: TicketMessage) -> MessageOut:
    return MessageOut(
        id=message.id,
        direction=str(message.direction),
        author_id=message.author_id,
        channel=message.channel,
        text=message.text,
        attachment=message.attachment_kind,
        attachment_name=message.attachment_name,
        created_at=message.created_at,
    )


@router.get("", response_model=Page[TicketOut], summary="List tickets")
def list_tickets(
    request: Request,
    response: Response,
    page: PageParams = Depends(page_params),
    status: Status | None = Query(None),
    customer_id: Id | None = Query(None),
    assignee_id: Id | None = Query(None),
    _who: Principal = Depends(need(Permission.TICKETS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    statement = sa.select(Ticket)
    if status is not None:
        statement = statement.where(Ticket.status == TicketStatus(status))
    if customer_id is not None:
        statement = statement.where(Ticket.customer_id == customer_id)
    if assignee_id is not None:
        statement = statement.where(Ticket.assignee_id == assignee_id)
    return paginate(uow.session, statement, Ticket.id, page, request, response, lambda rows: [render(t) for t in rows])


@router.get("/{ticket_id}", response_model=TicketWithThread, summary="One ticket with its thread")
def get_ticket(
    ticket_id: Id,
    response: Response,
    _who: Principal = Depends(need(Permission.TICKETS_READ)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    ticket = tickets.get_ticket(uow, ticket_id)
    messages, total = tickets.thread(uow, ticket_id, limit=THREAD_LIMIT)
    found = TicketWithThread(
        **render(ticket).model_dump(), messages=[_message(m) for m in messages], message_count=total
    )
    return with_etag(response, found)


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The service refuses an answer over tickets.MAX_MESSAGE in its own words (a 422 with the field).
    text: str = Field(min_length=1, max_length=2 * tickets.MAX_MESSAGE, description="The answer the customer gets")


class ReplyOut(BaseModel):
    id: int
    ticket_id: int
    author_id: int | None
    author: str | None
    channel: str
    text: str
    created_at: datetime


@router.post(
    "/{ticket_id}/replies",
    response_model=ReplyOut,
    status_code=201,
    summary="Answer the ticket's customer in their chat with us (queued through the outbox)",
    description="As `/ticket reply`: the answer is kept on the ticket and sent to the customer's chat on its "
    "own platform. 409 with nothing written when the customer has no chat with us or has blocked the bot.",
)
def post_reply(
    ticket_id: Id,
    body: ReplyIn,
    _who: Principal = Depends(need(Permission.TICKETS_WRITE)),
    uow: UnitOfWork = Depends(unit_of_work, scope="function"),
) -> Any:
    # Not restricted by ownership, as in chat; nobody's chat is told when it arrives (no chat asked).
    answered, _answer = queue_answer(uow, ticket_id, body.text, None)
    message = uow.session.get(TicketMessage, answered.message_id)
    assert message is not None
    return ReplyOut(
        id=message.id,
        ticket_id=message.ticket_id,
        author_id=message.author_id,
        author=message.author.name if message.author is not None else None,
        channel=message.channel,
        text=message.text,
        created_at=message.created_at,
    )
