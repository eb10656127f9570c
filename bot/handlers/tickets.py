"""/ticket: open, list, show, assign, move, annotate and answer support tickets; /rate for customers.

``/ticket reply`` answers the customer in their chat with us exactly as a reply in the support desk's
staff room does (``bot.handlers.support``): the same ticket message, outbox key and delivery notice.

Two things leave the system on their own, as outbox rows in the same transaction: a new high or
urgent ticket notifies the customer's owner where that owner works, and a resolved ticket asks
the customer (in their chat with us) for a 1–5 rating.
"""

from __future__ import annotations

from bot.args import Kind, arg, opt, rest
from bot.context import Context
from bot.handlers.common import (
    clip,
    custom_field_inputs,
    custom_field_rows,
    edited_inputs,
    fmt_datetime,
    form_with_fields,
    overdue_text,
    rating_text,
    ticket_item,
)
from bot.handlers.support import queue_answer
from bot.hookspecs import hookimpl
from bot.messages import Button, Destination, Field, Form, FormInput, Item, Reply, Request, Section, Style, Tone
from bot.paging import PAGE_OPTION, more_button, page_number, position
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import outbox
from crm_core.errors import Forbidden, NotFound, ValidationError
from crm_core.models import Direction, FieldEntity, Ticket, TicketMessage, TicketPriority, TicketStatus
from crm_core.outbox_payload import MessagePayload
from crm_core.services import custom_fields, customer_chats, customers, sla, tickets, users

group = CommandGroup()
PRIORITIES = tuple(p.value for p in TicketPriority)
STATUSES = tuple(s.value for s in TicketStatus)
THREAD_LENGTH = 20


def _targets(ctx: Context) -> dict[TicketPriority, sla.Target]:
    # Validated at start (bot.settings), so this cannot fail here.
    return sla.targets_from_env(ctx.settings.extra)


def _due_text(due, done, tz: str) -> str:
    if done is not None:
        return f"done {fmt_datetime(done, tz)}"
    return f"due {fmt_datetime(due, tz)}" if due else "—"


def _message_item(message: TicketMessage, tz: str) -> Item:
    who = message.author.name if message.author else "customer"
    label = {
        Direction.INBOUND: "customer",
        Direction.OUTBOUND: f"{who} (answer)",
        Direction.INTERNAL: f"{who} (internal note)",
    }[message.direction]
    detail = f"{label} · {fmt_datetime(message.created_at, tz)} · {message.channel}"
    if message.delivery_error:
        detail += f" · NOT DELIVERED: {message.delivery_error}"
    return Item(text=clip(message.text, 500), detail=detail)


def ticket_reply(ticket: Ticket, ctx: Context, note: str | None = None, tone: Tone = Tone.INFO) -> Reply:
    tz = ctx.caller.timezone
    fields = [
        Field("Customer", f"{ticket.customer.name} (#{ticket.customer_id})"),
        Field("Status", str(ticket.status)),
        Field("Priority", str(ticket.priority)),
        Field("Assignee", ticket.assignee.name if ticket.assignee else "unassigned"),
        Field("Opened", f"{fmt_datetime(ticket.created_at, tz)} · {ticket.channel}"),
        Field("First response", _due_text(ticket.first_response_due_at, ticket.first_responded_at, tz)),
        Field("Resolution", _due_text(ticket.resolve_due_at, ticket.resolved_at, tz)),
    ]
    if late := overdue_text(ticket):
        fields.append(Field("SLA", late, short=False))
    if ticket.rating:
        fields.append(Field("Rating", rating_text(ticket.rating)))
    fields.extend(custom_field_rows(ctx.uow, FieldEntity.TICKET, ticket.id))
    messages, total = tickets.thread(ctx.uow, ticket.id, THREAD_LENGTH)
    buttons: list[Button] = []
    if ctx.caller.user_id is not None and ticket.assignee_id != ctx.caller.user_id:
        buttons.append(Button("Assign to me", f"/ticket assign {ticket.id} me"))
    if ticket.status.is_open:
        buttons.append(Button("Resolve", f"/ticket status {ticket.id} resolved", Style.PRIMARY))
    else:
        buttons.append(Button("Reopen", f"/ticket status {ticket.id} open"))
    buttons.append(Button("Add note", f"/ticket note {ticket.id}", opens_form=True))
    buttons.append(Button("Open customer", f"/customer #{ticket.customer_id}"))
    return Reply(
        title=f"Ticket #{ticket.id}: {ticket.subject}",
        text=note,
        fields=tuple(fields),
        sections=(
            Section(
                title=f"Conversation ({total})",
                items=tuple(_message_item(m, tz) for m in messages),
                empty="No messages yet.",
            ),
        ),
        buttons=tuple(buttons),
        footer=f"Showing the last {len(messages)} of {total} messages." if total > len(messages) else None,
        tone=tone,
    )


@group.command(
    "ticket",
    summary="Show a ticket and its conversation",
    permission=Permission.TICKETS_READ,
    params=[arg("id", Kind.INT, label="Ticket #")],
)
def show_ticket(req: Request, ctx: Context) -> Reply:
    return ticket_reply(tickets.get_ticket(ctx.uow, req.args["id"]), ctx)


def _subject_and_priority(req: Request) -> tuple[str, TicketPriority]:
    """``printer jams high`` ends with a priority: the parser reads it as the trailing priority option."""
    return req.args["subject"], TicketPriority(req.args.get("priority") or TicketPriority.NORMAL)


def _resolve_customer(ctx: Context, reference: str):
    # Named after the input, so a step-by-step form asks for the customer again.
    try:
        return customers.resolve_customer(ctx.uow, reference)
    except (NotFound, ValidationError) as exc:
        raise ValidationError(exc.message, field="customer") from None


def _notify_owner(ctx: Context, ticket: Ticket) -> None:
    owner = ticket.customer.owner
    if owner is None or owner.id == ctx.caller.user_id or not owner.active:
        return
    address = users.dm_address(owner)
    if address is None:
        return
    reply = Reply(
        title=f"New {ticket.priority} ticket #{ticket.id} for {ticket.customer.name}",
        text=ticket.subject,
        fields=(
            Field("Opened by", ctx.caller.name),
            Field("First response due", fmt_datetime(ticket.first_response_due_at, owner.timezone)),
        ),
        buttons=(
            Button("Open ticket", f"/ticket {ticket.id}"),
            Button("Assign to me", f"/ticket assign {ticket.id} me"),
        ),
        tone=Tone.WARNING,
    )
    outbox.enqueue(
        ctx.uow,
        idempotency_key=f"ticket:{ticket.id}:owner-notice",
        kind="notification",
        platform=address.platform,
        conversation=address.external_id,
        payload=MessagePayload(reply=reply.to_dict()),
        user_id=owner.id,
        customer_id=ticket.customer_id,
    )


_NEW_TICKET = [
    arg("customer", label="Customer", hint="name, email, phone or #id"),
    # No parser limit: the service says how long a subject may be, in its own words.
    rest("subject", Kind.TEXT, label="Subject"),
    opt("priority", Kind.CHOICE, choices=PRIORITIES, label="Priority", trailing=True),
]


@group.command(
    "ticket new",
    summary="Open a support ticket for a customer (custom ticket fields as field=value)",
    permission=Permission.TICKETS_WRITE,
    params=_NEW_TICKET,
    # Custom ticket fields come as key=value; the service refuses keys that are not fields.
    extra_options=True,
    usage="<customer> <subject> [low|normal|high|urgent] [field=value …]",
    form=form_with_fields(FieldEntity.TICKET, "New ticket", "/ticket new", _NEW_TICKET),
)
def new_ticket(req: Request, ctx: Context) -> Reply:
    customer = _resolve_customer(ctx, req.args["customer"])
    subject, priority = _subject_and_priority(req)
    ticket = tickets.create_ticket(
        ctx.uow, customer.id, subject, priority, channel=ctx.platform, targets=_targets(ctx), fields=req.extra
    )
    if priority in (TicketPriority.HIGH, TicketPriority.URGENT):
        _notify_owner(ctx, ticket)
    return ticket_reply(ticket, ctx, note=f"Ticket #{ticket.id} opened for {customer.name}.", tone=Tone.SUCCESS)


def _edit_form(req: Request, ctx: Context, fixed: dict[str, str]) -> Form:
    ticket = tickets.get_ticket(ctx.uow, int(fixed["id"].lstrip("#")))
    current = custom_fields.current_text(ctx.uow, FieldEntity.TICKET, ticket.id)
    return Form(
        title="Edit ticket",
        command="/ticket edit",
        inputs=(
            FormInput(name="subject", label="Subject", initial=ticket.subject),
            *custom_field_inputs(ctx.uow, FieldEntity.TICKET, current),
        ),
        fixed={"id": str(ticket.id)},
    )


@group.command(
    "ticket edit",
    summary="Change a ticket's subject or custom fields; field= (empty) clears one",
    permission=Permission.TICKETS_WRITE,
    params=[arg("id", Kind.INT, label="Ticket #")],
    extra_options=True,
    usage="<id> [subject=…] [field=value …]",
    form=_edit_form,
)
def edit_ticket(req: Request, ctx: Context) -> Reply:
    ticket = tickets.get_ticket(ctx.uow, req.args["id"])
    changes: dict[str, str | None] = dict(req.extra)
    if req.form_values is not None:
        changes = edited_inputs(_edit_form(req, ctx, {"id": str(ticket.id)}), changes)
        if not changes:
            return ticket_reply(ticket, ctx, note="Nothing changed.")
    changed = tickets.update_ticket(ctx.uow, ticket.id, changes)
    note = f"Updated {', '.join(changed)}." if changed else "Nothing changed."
    return ticket_reply(ticket, ctx, note=note, tone=Tone.SUCCESS)


@group.command(
    "ticket list",
    summary="List tickets: yours (default), all open, overdue, everything, or a customer's",
    permission=Permission.TICKETS_READ,
    params=[
        rest("scope", Kind.TEXT, required=False, label="mine | open | overdue | all | <customer>", max_length=200),
        PAGE_OPTION,
    ],
    usage="[mine|open|overdue|all|<customer>] [page=…]",
)
def list_tickets(req: Request, ctx: Context) -> Reply:
    scope = (req.args.get("scope") or "mine").strip()
    key = scope.lower()
    number = page_number(req)
    if key == "mine":
        if ctx.caller.user_id is None:
            return Reply(
                text="You have no CRM user, so no tickets of your own. Try /ticket list open.", tone=Tone.WARNING
            )
        found, title = tickets.ticket_page(ctx.uow, number, assignee_id=ctx.caller.user_id), "Your open tickets"
    elif key == "open":
        found, title = tickets.ticket_page(ctx.uow, number), "Open tickets"
    elif key == "overdue":
        found, title = tickets.ticket_page(ctx.uow, number, overdue_only=True), "Overdue tickets"
    elif key == "all":
        found, title = tickets.ticket_page(ctx.uow, number, open_only=False), "All tickets"
    else:
        customer = customers.resolve_customer(ctx.uow, scope)
        found, title = (
            tickets.ticket_page(ctx.uow, number, customer_id=customer.id, open_only=False),
            f"Tickets of {customer.name}",
        )
    page = found.page
    return Reply(
        title=title,
        sections=(
            Section(
                items=tuple(ticket_item(t, ctx.caller.timezone, with_customer=True) for t in page.items),
                empty="No tickets.",
            ),
        ),
        buttons=more_button(req, page),
        footer=f"{position(page, 'ticket(s)')} · {found.overdue} overdue" if page.total else None,
    )


@group.command(
    "ticket assign",
    summary="Give a ticket to someone (me, a user, or nobody)",
    permission=Permission.TICKETS_WRITE,
    params=[
        arg("id", Kind.INT, label="Ticket #"),
        rest("user", Kind.TEXT, label="User", hint="me, a name, email or #id", max_length=200),
    ],
)
def assign_ticket(req: Request, ctx: Context) -> Reply:
    reference = req.args["user"].strip()
    if reference.lower() == "me":
        if ctx.caller.user_id is None:
            raise ValidationError("you have no CRM user to assign tickets to", field="user")
        user = users.find_user(ctx.uow, f"#{ctx.caller.user_id}")
    elif reference.lower() in ("nobody", "none", "-"):
        user = None
    else:
        user = users.find_user(ctx.uow, reference)
    ticket = tickets.assign(ctx.uow, req.args["id"], user)
    note = f"Assigned to {user.name}." if user else "Unassigned."
    return ticket_reply(ticket, ctx, note=note, tone=Tone.SUCCESS)


def _ask_for_rating(ctx: Context, ticket: Ticket) -> None:
    chat = customer_chats.chat_of_customer(ctx.uow, ticket.customer_id)
    if chat is None or ticket.rating is not None:
        return
    reply = Reply(
        title="How did we do?",
        text=f"Your request #{ticket.id} “{ticket.subject}” is resolved. "
        "How happy are you with our help, from 1 (not at all) to 5 (very)?",
        buttons=tuple(Button(f"{n} ★", f"/rate {ticket.id} {n}") for n in range(1, 6)),
    )
    outbox.enqueue(
        ctx.uow,
        idempotency_key=f"ticket:{ticket.id}:rating-request",
        kind="rating_request",
        platform=chat.platform,
        conversation=chat.conversation,
        payload=MessagePayload(reply=reply.to_dict()),
        customer_id=ticket.customer_id,
    )


@group.command(
    "ticket status",
    summary="Move a ticket to open, pending, resolved or closed (resolving asks the customer for a rating)",
    permission=Permission.TICKETS_WRITE,
    params=[arg("id", Kind.INT, label="Ticket #"), arg("status", Kind.CHOICE, choices=STATUSES, label="Status")],
    form_title="Ticket status",
)
def change_status(req: Request, ctx: Context) -> Reply:
    before = tickets.get_ticket(ctx.uow, req.args["id"]).status
    ticket = tickets.set_status(ctx.uow, req.args["id"], TicketStatus(req.args["status"]))
    note = f"Status: {before} → {ticket.status}."
    if ticket.status is TicketStatus.RESOLVED:
        _ask_for_rating(ctx, ticket)
        if ticket.first_responded_at is None:
            note += " Nobody answered the customer before it was resolved."
    return ticket_reply(ticket, ctx, note=note, tone=Tone.SUCCESS)


@group.command(
    "ticket priority",
    summary="Change a ticket's priority; its SLA due times move with it",
    permission=Permission.TICKETS_WRITE,
    params=[arg("id", Kind.INT, label="Ticket #"), arg("level", Kind.CHOICE, choices=PRIORITIES, label="Priority")],
    form_title="Ticket priority",
)
def change_priority(req: Request, ctx: Context) -> Reply:
    before = tickets.get_ticket(ctx.uow, req.args["id"]).priority
    ticket = tickets.set_priority(ctx.uow, req.args["id"], TicketPriority(req.args["level"]), _targets(ctx))
    tz = ctx.caller.timezone
    note = (
        f"Priority: {before} → {ticket.priority}. First response due {fmt_datetime(ticket.first_response_due_at, tz)}, "
        f"resolution due {fmt_datetime(ticket.resolve_due_at, tz)}."
    )
    return ticket_reply(ticket, ctx, note=note, tone=Tone.SUCCESS)


@group.command(
    "ticket note",
    summary="Add an internal note to a ticket (the customer does not see it)",
    permission=Permission.TICKETS_WRITE,
    params=[arg("id", Kind.INT, label="Ticket #"), rest("text", label="Note")],
    form_title="Internal note",
)
def note_ticket(req: Request, ctx: Context) -> Reply:
    ticket = tickets.get_ticket(ctx.uow, req.args["id"])
    tickets.add_note(ctx.uow, ticket.id, req.args["text"])
    return Reply(
        text=f"Internal note added to ticket #{ticket.id} ({ticket.customer.name} does not see it).",
        buttons=(Button("Open ticket", f"/ticket {ticket.id}"),),
        tone=Tone.SUCCESS,
    )


@group.command(
    "ticket reply",
    summary="Answer a ticket's customer in their chat with us; you are told whether it arrived",
    permission=Permission.TICKETS_WRITE,
    # The service refuses a too long answer in its own words (tickets.MAX_MESSAGE), as elsewhere.
    params=[arg("id", Kind.INT, label="Ticket #"), rest("text", label="Answer", max_length=2 * tickets.MAX_MESSAGE)],
    form_title="Answer the customer",
)
def reply_ticket(req: Request, ctx: Context) -> Reply:
    # Not restricted by ownership: support agents answer any ticket's customer.
    origin = req.origin
    # Queued in this command's transaction; "Sent to …" or "Not delivered …" follows here.
    confirm_to = Destination(origin.platform, origin.conversation, origin.thread)
    answered, answer = queue_answer(ctx.uow, req.args["id"], req.args["text"], confirm_to)
    return Reply(
        text=f"Sent to {answered.customer_name} on {answer.to.platform.capitalize()} (queued; "
        f"you will be told when it arrives). The answer is kept in ticket #{answered.ticket_id}.",
        buttons=(Button("Open ticket", f"/ticket {answered.ticket_id}"),),
        tone=Tone.SUCCESS,
    )


@group.command(
    "rate",
    summary="Rate how we handled your request (1–5)",
    permission=Permission.HELP,
    params=[arg("ticket", Kind.INT, label="Request #"), arg("rating", Kind.INT, label="Rating")],
    hidden=True,
)
def rate_ticket(req: Request, ctx: Context) -> Reply:
    ticket = tickets.get_ticket(ctx.uow, req.args["ticket"])
    try:
        chat = customer_chats.chat_for(ctx.uow, users.PlatformId(req.origin.platform, req.origin.user_external_id))
    except ValueError:
        chat = None
    # The buttons went to the customer's own chat; anyone else pressing or typing this is refused.
    if chat is None or chat.customer_id != ticket.customer_id:
        raise Forbidden("you can only rate your own requests")
    stored = tickets.rate(ctx.uow, ticket.id, req.args["rating"])
    # rate() refreshes the ticket: it now has this rating, or the one given before.
    assert ticket.rating is not None
    if stored:
        return Reply(text=f"Thank you! You rated request #{ticket.id} {rating_text(ticket.rating)}.", tone=Tone.SUCCESS)
    return Reply(text=f"You already rated request #{ticket.id} ({rating_text(ticket.rating)}). Thank you!")


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
