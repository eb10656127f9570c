"""/ticket: open, list, show, assign, move, annotate and answer support tickets; /rate for customers.

``/ticket reply`` answers the customer in their chat with us exactly as a reply in the support desk's
staff room does (``bot.handlers.support``): the same ticket message, outbox key and delivery notice.

Two things leave the system on their own, as outbox rows in the same transaction: a new high or
urgent ticket notifies the customer's owner where that owner works, and a resolved ticket asks
the customer (in their chat with us) for a 1–5 rating.

Each is written in its reader's language: the owner's notice in the owner's, the rating request in
the customer's (``crm_core.i18n``). Priorities and statuses may be typed in Chinese (``高``,
``已解决``): the parameters accept those names, the forms offer the English values.
"""

from __future__ import annotations

from dataclasses import replace

from bot.args import Kind, Param, arg, opt, rest
from bot.context import Context
from bot.forms import form_input
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
from bot.router import CommandGroup, FormBuilder
from crm_core import attachments, i18n, outbox
from crm_core.errors import Forbidden, NotFound, ValidationError
from crm_core.i18n import N_, _
from crm_core.models import Direction, FieldEntity, Ticket, TicketMessage, TicketPriority, TicketStatus
from crm_core.outbox_payload import MessagePayload
from crm_core.services import custom_fields, customer_chats, customers, sla, tickets, users

group = CommandGroup()
PRIORITIES = tuple(p.value for p in TicketPriority)
STATUSES = tuple(s.value for s in TicketStatus)
# Typed: the English values or their Chinese names; offered in forms: the values.
PRIORITY_WORDS = PRIORITIES + tuple(tickets.PRIORITY_ALIASES)
STATUS_WORDS = STATUSES + tuple(tickets.STATUS_ALIASES)
THREAD_LENGTH = 20
# What /ticket list and /ticket assign take besides names, in either language.
_MINE, _OPEN, _OVERDUE, _ALL = ("mine", "我的"), ("open", "未解决"), ("overdue", "逾期", "已逾期"), ("all", "全部")
_ME, _NOBODY = ("me", "我"), ("nobody", "none", "-", "无", "无人")


_TICKET_NO = N_("Ticket #")
_STATUS_PARAMS = [
    arg("id", Kind.INT, label=_TICKET_NO),
    arg("status", Kind.CHOICE, choices=STATUS_WORDS, label=N_("Status")),
]
_PRIORITY_PARAMS = [
    arg("id", Kind.INT, label=_TICKET_NO),
    arg("level", Kind.CHOICE, choices=PRIORITY_WORDS, label=N_("Priority")),
]


def _offered(params: list[Param]) -> list[Param]:
    """The parameters as a form shows them: choices are the English values (also typed in Chinese)."""
    values = {PRIORITY_WORDS: PRIORITIES, STATUS_WORDS: STATUSES}
    return [replace(p, choices=values.get(p.choices, p.choices)) for p in params]


def _form_of(command: str, title: str, params: list[Param]) -> FormBuilder:
    """The form asking for a command's missing arguments, offering the English values as choices."""
    offered = _offered(params)

    def build(req: Request, ctx: Context, fixed: dict[str, str]) -> Form:
        inputs = tuple(form_input(p) for p in offered if p.name not in fixed)
        return Form(title=_(title), command=command, inputs=inputs, fixed=fixed)

    return build


def _targets(ctx: Context) -> dict[TicketPriority, sla.Target]:
    # Validated at start (bot.settings), so this cannot fail here.
    return sla.targets_from_env(ctx.settings.extra)


def _due_text(due, done, tz: str) -> str:
    if done is not None:
        return _("done {when}", when=fmt_datetime(done, tz))
    return _("due {when}", when=fmt_datetime(due, tz)) if due else "—"


def _message_item(message: TicketMessage, tz: str) -> Item:
    who = message.author.name if message.author else _("customer")
    label = {
        Direction.INBOUND: _("customer"),
        Direction.OUTBOUND: _("{who} (answer)", who=who),
        Direction.INTERNAL: _("{who} (internal note)", who=who),
    }[message.direction]
    detail = f"{label} · {fmt_datetime(message.created_at, tz)} · {message.channel}"
    if message.delivery_error:
        error = tickets.delivery_error_text(message.delivery_error, message.channel)
        detail += " · " + _("NOT DELIVERED: {error}", error=error)
    text = attachments.shown(message.text, message.attachment_kind, message.attachment_name)
    return Item(text=clip(text, 500), detail=detail)


def ticket_reply(ticket: Ticket, ctx: Context, note: str | None = None, tone: Tone = Tone.INFO) -> Reply:
    tz = ctx.caller.timezone
    fields = [
        Field(_("Customer"), f"{ticket.customer.name} (#{ticket.customer_id})"),
        Field(_("Status"), tickets.status_label(ticket.status)),
        Field(_("Priority"), tickets.priority_label(ticket.priority)),
        Field(_("Assignee"), ticket.assignee.name if ticket.assignee else _("unassigned")),
        Field(_("Opened"), f"{fmt_datetime(ticket.created_at, tz)} · {ticket.channel}"),
        Field(_("First response"), _due_text(ticket.first_response_due_at, ticket.first_responded_at, tz)),
        Field(_("Resolution"), _due_text(ticket.resolve_due_at, ticket.resolved_at, tz)),
    ]
    if late := overdue_text(ticket):
        fields.append(Field(_("SLA"), late, short=False))
    if ticket.rating:
        fields.append(Field(_("Rating"), rating_text(ticket.rating)))
    fields.extend(custom_field_rows(ctx.uow, FieldEntity.TICKET, ticket.id))
    messages, total = tickets.thread(ctx.uow, ticket.id, THREAD_LENGTH)
    buttons: list[Button] = []
    if ctx.caller.user_id is not None and ticket.assignee_id != ctx.caller.user_id:
        buttons.append(Button(_("Assign to me"), f"/ticket assign {ticket.id} me"))
    if ticket.status.is_open:
        buttons.append(Button(_("Resolve"), f"/ticket status {ticket.id} resolved", Style.PRIMARY))
    else:
        buttons.append(Button(_("Reopen"), f"/ticket status {ticket.id} open"))
    buttons.append(Button(_("Add note"), f"/ticket note {ticket.id}", opens_form=True))
    buttons.append(Button(_("Open customer"), f"/customer #{ticket.customer_id}"))
    shown = len(messages)
    return Reply(
        title=_("Ticket #{ticket_id}: {subject}", ticket_id=ticket.id, subject=ticket.subject),
        text=note,
        fields=tuple(fields),
        sections=(
            Section(
                title=_("Conversation ({total})", total=total),
                items=tuple(_message_item(m, tz) for m in messages),
                empty=_("No messages yet."),
            ),
        ),
        buttons=tuple(buttons),
        footer=_("Showing the last {shown} of {total} messages.", shown=shown, total=total) if total > shown else None,
        tone=tone,
    )


@group.command(
    "ticket",
    read_only=True,
    summary=N_("Show a ticket and its conversation"),
    permission=Permission.TICKETS_READ,
    params=[arg("id", Kind.INT, label=_TICKET_NO)],
)
def show_ticket(req: Request, ctx: Context) -> Reply:
    return ticket_reply(tickets.get_ticket(ctx.uow, req.args["id"]), ctx)


def _subject_and_priority(req: Request) -> tuple[str, TicketPriority]:
    """``printer jams high`` ends with a priority: the parser reads it as the trailing priority option."""
    return req.args["subject"], tickets.parse_priority(req.args.get("priority") or TicketPriority.NORMAL)


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
    # In the owner's language, not the language of whoever opened the ticket.
    with i18n.use_language(i18n.resolve_language(owner.language)) as language:
        reply = Reply(
            title=_(
                "New {priority} ticket #{ticket_id} for {customer}",
                priority=tickets.priority_label(ticket.priority),
                ticket_id=ticket.id,
                customer=ticket.customer.name,
            ),
            text=ticket.subject,
            fields=(
                Field(_("Opened by"), ctx.caller.name),
                Field(_("First response due"), fmt_datetime(ticket.first_response_due_at, owner.timezone)),
            ),
            buttons=(
                Button(_("Open ticket"), f"/ticket {ticket.id}"),
                Button(_("Assign to me"), f"/ticket assign {ticket.id} me"),
            ),
            tone=Tone.WARNING,
            language=language,
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
    arg("customer", label=N_("Customer"), hint=N_("name, email, phone or #id")),
    # No parser limit: the service says how long a subject may be, in its own words.
    rest("subject", Kind.TEXT, label=N_("Subject")),
    opt("priority", Kind.CHOICE, choices=PRIORITY_WORDS, label=N_("Priority"), trailing=True),
]


@group.command(
    "ticket new",
    summary=N_("Open a support ticket for a customer (custom ticket fields as field=value)"),
    permission=Permission.TICKETS_WRITE,
    params=_NEW_TICKET,
    # Custom ticket fields come as key=value; the service refuses keys that are not fields.
    extra_options=True,
    usage=N_("<customer> <subject> [low|normal|high|urgent] [field=value …]"),
    form=form_with_fields(FieldEntity.TICKET, N_("New ticket"), "/ticket new", _offered(_NEW_TICKET)),
)
def new_ticket(req: Request, ctx: Context) -> Reply:
    customer = _resolve_customer(ctx, req.args["customer"])
    subject, priority = _subject_and_priority(req)
    ticket = tickets.create_ticket(
        ctx.uow, customer.id, subject, priority, channel=ctx.platform, targets=_targets(ctx), fields=req.extra
    )
    if priority in (TicketPriority.HIGH, TicketPriority.URGENT):
        _notify_owner(ctx, ticket)
    note = _("Ticket #{ticket_id} opened for {customer}.", ticket_id=ticket.id, customer=customer.name)
    return ticket_reply(ticket, ctx, note=note, tone=Tone.SUCCESS)


def _edit_form(req: Request, ctx: Context, fixed: dict[str, str]) -> Form:
    ticket = tickets.get_ticket(ctx.uow, int(fixed["id"].lstrip("#")))
    current = custom_fields.current_text(ctx.uow, FieldEntity.TICKET, ticket.id)
    return Form(
        title=_("Edit ticket"),
        command="/ticket edit",
        inputs=(
            FormInput(name="subject", label=_("Subject"), initial=ticket.subject),
            *custom_field_inputs(ctx.uow, FieldEntity.TICKET, current),
        ),
        fixed={"id": str(ticket.id)},
    )


@group.command(
    "ticket edit",
    summary=N_("Change a ticket's subject or custom fields; field= (empty) clears one"),
    permission=Permission.TICKETS_WRITE,
    params=[arg("id", Kind.INT, label=_TICKET_NO)],
    extra_options=True,
    usage=N_("<id> [subject=…] [field=value …]"),
    form=_edit_form,
)
def edit_ticket(req: Request, ctx: Context) -> Reply:
    ticket = tickets.get_ticket(ctx.uow, req.args["id"])
    changes: dict[str, str | None] = dict(req.extra)
    if req.form_values is not None:
        changes = edited_inputs(_edit_form(req, ctx, {"id": str(ticket.id)}), changes)
        if not changes:
            return ticket_reply(ticket, ctx, note=_("Nothing changed."))
    changed = tickets.update_ticket(ctx.uow, ticket.id, changes)
    note = _("Updated {fields}.", fields=", ".join(changed)) if changed else _("Nothing changed.")
    return ticket_reply(ticket, ctx, note=note, tone=Tone.SUCCESS)


@group.command(
    "ticket list",
    read_only=True,
    summary=N_("List tickets: yours (default), all open, overdue, everything, or a customer's"),
    permission=Permission.TICKETS_READ,
    params=[
        rest("scope", Kind.TEXT, required=False, label=N_("mine | open | overdue | all | <customer>"), max_length=200),
        PAGE_OPTION,
    ],
    usage=N_("[mine|open|overdue|all|<customer>] [page=…]"),
)
def list_tickets(req: Request, ctx: Context) -> Reply:
    scope = (req.args.get("scope") or "mine").strip()
    key = scope.lower()
    number = page_number(req)
    if key in _MINE:
        if ctx.caller.user_id is None:
            return Reply(
                text=_("You have no CRM user, so no tickets of your own. Try /ticket list open."), tone=Tone.WARNING
            )
        found, title = tickets.ticket_page(ctx.uow, number, assignee_id=ctx.caller.user_id), _("Your open tickets")
    elif key in _OPEN:
        found, title = tickets.ticket_page(ctx.uow, number), _("Open tickets")
    elif key in _OVERDUE:
        found, title = tickets.ticket_page(ctx.uow, number, overdue_only=True), _("Overdue tickets")
    elif key in _ALL:
        found, title = tickets.ticket_page(ctx.uow, number, open_only=False), _("All tickets")
    else:
        customer = customers.resolve_customer(ctx.uow, scope)
        found, title = (
            tickets.ticket_page(ctx.uow, number, customer_id=customer.id, open_only=False),
            _("Tickets of {customer}", customer=customer.name),
        )
    page = found.page
    counted = position(page, _("ticket(s)"))
    return Reply(
        title=title,
        sections=(
            Section(
                items=tuple(ticket_item(t, ctx.caller.timezone, with_customer=True) for t in page.items),
                empty=_("No tickets."),
            ),
        ),
        buttons=more_button(req, page),
        footer=_("{position} · {overdue} overdue", position=counted, overdue=found.overdue) if page.total else None,
    )


@group.command(
    "ticket assign",
    summary=N_("Give a ticket to someone (me, a user, or nobody)"),
    permission=Permission.TICKETS_WRITE,
    params=[
        arg("id", Kind.INT, label=_TICKET_NO),
        rest("user", Kind.TEXT, label=N_("User"), hint=N_("me, a name, email or #id"), max_length=200),
    ],
)
def assign_ticket(req: Request, ctx: Context) -> Reply:
    reference = req.args["user"].strip()
    if reference.lower() in _ME:
        if ctx.caller.user_id is None:
            raise ValidationError(_("you have no CRM user to assign tickets to"), field="user")
        user = users.find_user(ctx.uow, f"#{ctx.caller.user_id}")
    elif reference.lower() in _NOBODY:
        user = None
    else:
        user = users.find_user(ctx.uow, reference)
    ticket = tickets.assign(ctx.uow, req.args["id"], user)
    note = _("Assigned to {name}.", name=user.name) if user else _("Unassigned.")
    return ticket_reply(ticket, ctx, note=note, tone=Tone.SUCCESS)


def _ask_for_rating(ctx: Context, ticket: Ticket) -> None:
    chat = customer_chats.chat_of_customer(ctx.uow, ticket.customer_id)
    if chat is None or ticket.rating is not None:
        return
    # In the customer's language (theirs, or their chat app's as last seen), not the agent's.
    with i18n.use_language(i18n.resolve_language(ticket.customer.language)) as language:
        reply = Reply(
            title=_("How did we do?"),
            text=_(
                "Your request #{ticket_id} “{subject}” is resolved. "
                "How happy are you with our help, from 1 (not at all) to 5 (very)?",
                ticket_id=ticket.id,
                subject=ticket.subject,
            ),
            buttons=tuple(Button(f"{n} ★", f"/rate {ticket.id} {n}") for n in range(1, 6)),
            language=language,
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
    summary=N_("Move a ticket to open, pending, resolved or closed (resolving asks the customer for a rating)"),
    permission=Permission.TICKETS_WRITE,
    params=_STATUS_PARAMS,
    usage=N_("<id> <open|pending|resolved|closed>"),
    form=_form_of("/ticket status", N_("Ticket status"), _STATUS_PARAMS),
)
def change_status(req: Request, ctx: Context) -> Reply:
    before = tickets.get_ticket(ctx.uow, req.args["id"]).status
    ticket = tickets.set_status(ctx.uow, req.args["id"], tickets.parse_status(req.args["status"]))
    changed = {"before": tickets.status_label(before), "after": tickets.status_label(ticket.status)}
    note = _("Status: {before} → {after}.", **changed)
    if ticket.status is TicketStatus.RESOLVED:
        _ask_for_rating(ctx, ticket)
        if ticket.first_responded_at is None:
            note = _("Status: {before} → {after}. Nobody answered the customer before it was resolved.", **changed)
    return ticket_reply(ticket, ctx, note=note, tone=Tone.SUCCESS)


@group.command(
    "ticket priority",
    summary=N_("Change a ticket's priority; its SLA due times move with it"),
    permission=Permission.TICKETS_WRITE,
    params=_PRIORITY_PARAMS,
    usage=N_("<id> <low|normal|high|urgent>"),
    form=_form_of("/ticket priority", N_("Ticket priority"), _PRIORITY_PARAMS),
)
def change_priority(req: Request, ctx: Context) -> Reply:
    before = tickets.get_ticket(ctx.uow, req.args["id"]).priority
    ticket = tickets.set_priority(ctx.uow, req.args["id"], tickets.parse_priority(req.args["level"]), _targets(ctx))
    tz = ctx.caller.timezone
    note = _(
        "Priority: {before} → {after}. First response due {first_due}, resolution due {resolve_due}.",
        before=tickets.priority_label(before),
        after=tickets.priority_label(ticket.priority),
        first_due=fmt_datetime(ticket.first_response_due_at, tz),
        resolve_due=fmt_datetime(ticket.resolve_due_at, tz),
    )
    return ticket_reply(ticket, ctx, note=note, tone=Tone.SUCCESS)


@group.command(
    "ticket note",
    summary=N_("Add an internal note to a ticket (the customer does not see it)"),
    permission=Permission.TICKETS_WRITE,
    params=[arg("id", Kind.INT, label=_TICKET_NO), rest("text", label=N_("Note"))],
    form_title=N_("Internal note"),
)
def note_ticket(req: Request, ctx: Context) -> Reply:
    ticket = tickets.get_ticket(ctx.uow, req.args["id"])
    tickets.add_note(ctx.uow, ticket.id, req.args["text"])
    return Reply(
        text=_(
            "Internal note added to ticket #{ticket_id} ({customer} does not see it).",
            ticket_id=ticket.id,
            customer=ticket.customer.name,
        ),
        buttons=(Button(_("Open ticket"), f"/ticket {ticket.id}"),),
        tone=Tone.SUCCESS,
    )


@group.command(
    "ticket reply",
    summary=N_("Answer a ticket's customer in their chat with us; you are told whether it arrived"),
    permission=Permission.TICKETS_WRITE,
    # The service refuses a too long answer in its own words (tickets.MAX_MESSAGE), as elsewhere.
    params=[
        arg("id", Kind.INT, label=_TICKET_NO),
        rest("text", label=N_("Answer"), max_length=2 * tickets.MAX_MESSAGE),
    ],
    form_title=N_("Answer the customer"),
)
def reply_ticket(req: Request, ctx: Context) -> Reply:
    # Not restricted by ownership: support agents answer any ticket's customer.
    origin = req.origin
    # Queued in this command's transaction; "Sent to …" or "Not delivered …" follows here.
    confirm_to = Destination(origin.platform, origin.conversation, origin.thread)
    answered, answer = queue_answer(ctx.uow, req.args["id"], req.args["text"], confirm_to)
    return Reply(
        text=_(
            "Sent to {customer} on {platform} (queued; you will be told when it arrives). "
            "The answer is kept in ticket #{ticket_id}.",
            customer=answered.customer_name,
            platform=answer.to.platform.capitalize(),
            ticket_id=answered.ticket_id,
        ),
        buttons=(Button(_("Open ticket"), f"/ticket {answered.ticket_id}"),),
        tone=Tone.SUCCESS,
    )


@group.command(
    "rate",
    summary=N_("Rate how we handled your request (1–5)"),
    permission=Permission.HELP,
    params=[arg("ticket", Kind.INT, label=N_("Request #")), arg("rating", Kind.INT, label=N_("Rating"))],
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
        raise Forbidden(_("you can only rate your own requests"))
    stored = tickets.rate(ctx.uow, ticket.id, req.args["rating"])
    # rate() refreshes the ticket: it now has this rating, or the one given before.
    assert ticket.rating is not None
    rated = {"ticket_id": ticket.id, "rating": rating_text(ticket.rating)}
    if stored:
        return Reply(text=_("Thank you! You rated request #{ticket_id} {rating}.", **rated), tone=Tone.SUCCESS)
    return Reply(text=_("You already rated request #{ticket_id} ({rating}). Thank you!", **rated))


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]
