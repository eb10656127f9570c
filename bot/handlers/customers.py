"""Customer commands: find (/customer), the customer card, create and edit."""

from __future__ import annotations

from dataclasses import replace

from bot.args import Kind, arg, rest
from bot.context import Context
from bot.handlers.common import (
    clip,
    custom_field_inputs,
    deal_item,
    fmt_date,
    followups_section,
    form_with_fields,
    money,
    ticket_item,
)
from bot.hookspecs import hookimpl
from bot.messages import Button, Field, Form, FormInput, Item, Reply, Request, Section, Style, Tone
from bot.paging import PAGE_OPTION, more_button, page_number, position
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import search
from crm_core.errors import ValidationError
from crm_core.models import Customer, FieldEntity, ModelRun, Role
from crm_core.money import format_totals
from crm_core.services import customer_merge, customers, orders, tickets
from crm_core.services.customers import CORE_FIELDS, CustomerCard

group = CommandGroup()


@group.command(
    "customer",
    summary="Find a customer by name, company, email (or @domain), phone (or its last 6+ digits) or #id",
    permission=Permission.CUSTOMERS_READ,
    params=[rest("query", Kind.TEXT, label="Name, company, email, @domain, phone or #id", max_length=200), PAGE_OPTION],
)
def find_customer(req: Request, ctx: Context) -> Reply:
    query = req.args["query"]
    number = page_number(req)
    page = search.search_page(ctx.uow.session, query, number)
    hits = page.items
    if not page.total:
        return Reply(
            text=f"No customer matches {query!r}.",
            footer="Try part of the name, an email, a phone number or #id, or create one: /customer new <name>",
            tone=Tone.WARNING,
        )
    if number == 1:
        top = hits[0]
        decisive = top.match >= search.MatchKind.EXACT_NAME and (len(hits) == 1 or hits[1].match < top.match)
        if len(hits) == 1 or decisive:
            return card_reply(customers.get_card(ctx.uow, top.customer_id, timezone=ctx.caller.timezone), ctx)
    items = tuple(
        Item(
            text=f"{hit.name} (#{hit.customer_id})",
            detail=_match_label(hit),
            button=Button("Open", f"/customer #{hit.customer_id}"),
        )
        for hit in hits
    )
    return Reply(
        title=f"{page.total:,} customers match {query!r}",
        sections=(Section(items=items, empty="No more matches."),),
        buttons=more_button(req, page),
        footer=f"{position(page, 'matches')}. Open one, or narrow the search."
        if page.has_more or number > 1
        else "Open one, or narrow the search.",
    )


def risk_level(risk: float) -> str:
    return "high" if risk >= 0.6 else "medium" if risk >= 0.3 else "low"


def _match_label(hit: search.SearchHit) -> str:
    return {
        search.MatchKind.TYPO: "similar spelling",
        search.MatchKind.COMPANY: "company",
        search.MatchKind.WORD_PREFIX: "word match",
        search.MatchKind.NAME_PREFIX: "name starts with it",
        search.MatchKind.EXACT_NAME: "exact name",
        search.MatchKind.EMAIL_DOMAIN: "email domain",
        search.MatchKind.PHONE_SUFFIX: "phone ends with it",
        search.MatchKind.PHONE: "phone",
        search.MatchKind.EMAIL: "email",
        search.MatchKind.ID: "id",
    }[hit.match]


def _overdue_count(card: CustomerCard) -> str:
    late = sum(1 for t in card.open_tickets if tickets.overdue(t))
    return f", {late} overdue" if late else ""


def card_reply(card: CustomerCard, ctx: Context, note: str | None = None, tone: Tone = Tone.INFO) -> Reply:
    c = card.customer
    tz = ctx.caller.timezone
    fields = [
        Field("Company", c.company.name if c.company else "—"),
        Field("Owner", c.owner.name if c.owner else "unassigned"),
        Field("Email", c.email or "—"),
        Field("Phone", c.phone or "—"),
        Field("Country", c.country or "—"),
        Field("Language / timezone", f"{c.language or '—'} / {c.timezone or '—'}"),
        # One amount per currency the orders were in; the company currency only labels a zero.
        Field(
            "Lifetime value",
            format_totals(orders.lifetime_values(ctx.uow.session, [c.id]).get(c.id, {}), ctx.settings.currency),
        ),
        Field("Orders", f"{c.order_count} · last {fmt_date(c.last_order_at, tz)}"),
    ]
    if c.tags:
        fields.append(Field("Tags", ", ".join(c.tags)))
    if rated := tickets.satisfaction(ctx.uow, c.id):
        fields.append(Field("Satisfaction", f"{rated.average:.1f}/5 from {rated.count} rating(s)"))
    fields.extend(Field(v.definition.label, v.display) for v in card.custom_fields)
    footer = f"Customer #{c.id} · in the CRM since {fmt_date(c.created_at, tz)}"
    score = card.score
    if score is not None:
        if score.churn_risk is not None:
            fields.append(Field("Churn risk", f"{score.churn_risk:.0%} ({risk_level(score.churn_risk)})"))
            run = ctx.uow.session.get(ModelRun, score.churn_run_id) if score.churn_run_id else None
            if run is not None and ctx.caller.role == Role.ADMIN:
                footer += f" · churn model: ROC AUC {run.roc_auc:.2f} on a time-based holdout (run #{run.id})"
        if score.rfm_segment:
            fields.append(
                Field(
                    "Segment",
                    f"{score.rfm_segment} (R{score.recency_score} F{score.frequency_score} M{score.monetary_score})",
                )
            )
    sections = [
        Section(
            title=f"Open deals ({len(card.open_deals)})",
            items=tuple(deal_item(d, tz) for d in card.open_deals[:10]),
            empty="No open deals.",
        ),
        Section(
            title=f"Open tickets ({len(card.open_tickets)}{_overdue_count(card)})",
            items=tuple(ticket_item(t, tz) for t in card.open_tickets[:10]),
            empty="No open tickets.",
        ),
        Section(
            title="Recent interactions",
            items=tuple(
                Item(
                    text=clip(i.text),
                    detail=f"{i.kind} · {i.user.name if i.user else 'customer'} · {fmt_date(i.occurred_at, tz)} · {i.channel}",
                )
                for i in card.recent_interactions
            ),
            empty="Nothing logged yet.",
        ),
    ]
    if card.followups_due:
        sections.insert(
            0, followups_section(card.followups_due, tz, title=f"Follow-ups due today ({len(card.followups_due)})")
        )
    if card.recent_orders:
        sections.append(
            Section(
                title="Recent orders",
                items=tuple(
                    Item(text=f"{o.number} · {money(o.total_cents, o.currency)}", detail=fmt_date(o.ordered_at, tz))
                    for o in card.recent_orders
                ),
            )
        )
    if card.relationships:
        sections.append(
            Section(
                title=f"Relationships ({len(card.relationships)})",
                items=tuple(
                    Item(
                        text=f"{seen.phrase} {seen.other.name} (#{seen.other.id})",
                        detail=f"since {fmt_date(seen.relationship.started_on)} · #{seen.relationship.id}",
                        button=Button("Open", f"/customer #{seen.other.id}"),
                    )
                    for seen in card.relationships[:10]
                ),
            )
        )
    # Sections plugins add through the card_sections hook (a failing plugin is logged and left out).
    sections.extend(ctx.plugins.card_sections(c, ctx))
    ref = f"#{c.id}"
    return Reply(
        title=f"{c.name}" + (" · account" if c.kind == "account" else ""),
        text=note,
        fields=tuple(fields),
        sections=tuple(sections),
        buttons=(
            Button("Log note", f"/note {ref}", Style.PRIMARY, opens_form=True),
            Button("New deal", f"/deal new {ref}", opens_form=True),
            Button("Edit", f"/customer edit {ref}", opens_form=True),
            Button("New ticket", f"/ticket new {ref}", opens_form=True),
        ),
        footer=footer,
        tone=tone,
    )


_NEW_CUSTOMER = [arg("name", label="Name", max_length=200)]


@group.command(
    "customer new",
    summary="Create a customer",
    permission=Permission.CUSTOMERS_WRITE,
    params=_NEW_CUSTOMER,
    extra_options=True,
    usage="<name> [email=…] [phone=…] [company=…] [country=DE] [language=de] [timezone=…] [owner=…] [tags=a,b] "
    "[field=value …]",
    form=form_with_fields(FieldEntity.CUSTOMER, "New customer", "/customer new", _NEW_CUSTOMER),
)
def new_customer(req: Request, ctx: Context) -> Reply:
    customer = customers.create_customer(ctx.uow, req.args["name"], req.extra)
    return _with_look_alikes(
        ctx,
        customer,
        card_reply(
            customers.get_card(ctx.uow, customer.id, timezone=ctx.caller.timezone),
            ctx,
            note=f"Created {customer.name}.",
            tone=Tone.SUCCESS,
        ),
    )


def _with_look_alikes(ctx: Context, customer: Customer, reply: Reply) -> Reply:
    """Warn when another customer has the same name or phone, with a button to open each."""
    similar = customers.look_alikes(ctx.uow, customer)
    if not similar:
        return reply
    listed = "; ".join(f"{s.name} (#{s.customer_id}, same {s.why})" for s in similar)
    return replace(
        reply,
        text=f"{reply.text} Possible duplicate of {listed}: open it to check, or merge them.",
        tone=Tone.WARNING,
        buttons=tuple(Button(f"Open #{s.customer_id}", f"/customer #{s.customer_id}") for s in similar) + reply.buttons,
    )


def _edit_form(req: Request, ctx: Context, fixed: dict[str, str]) -> Form:
    customer = customers.resolve_customer(ctx.uow, fixed["customer"])
    current = customers.current_values(ctx.uow, customer)
    inputs = [
        FormInput(name=key, label=key.capitalize(), required=key == "name", initial=current.get(key) or None)
        for key in CORE_FIELDS
        if key != "kind"
    ]
    inputs.extend(custom_field_inputs(ctx.uow, FieldEntity.CUSTOMER, current))
    return Form(
        title="Edit customer", command="/customer edit", inputs=tuple(inputs), fixed={"customer": f"#{customer.id}"}
    )


@group.command(
    "customer edit",
    summary="Change a customer's fields (core and custom); field= (empty) clears one",
    permission=Permission.CUSTOMERS_WRITE,
    params=[arg("customer", label="Customer")],
    extra_options=True,
    form=_edit_form,
)
def edit_customer(req: Request, ctx: Context) -> Reply:
    customer = customers.resolve_customer(ctx.uow, req.args["customer"])
    changes: dict[str, str | None] = dict(req.extra)
    if req.form_values is not None:
        # A form sends every input; only what actually changed is an edit (and is audited).
        changes = customers.changed_fields(ctx.uow, customer, changes)
        if not changes:
            return card_reply(
                customers.get_card(ctx.uow, customer.id, timezone=ctx.caller.timezone), ctx, note="Nothing changed."
            )
    customers.update_customer(ctx.uow, customer.id, changes)
    names = ", ".join(sorted(changes))
    reply = card_reply(
        customers.get_card(ctx.uow, customer.id, timezone=ctx.caller.timezone),
        ctx,
        note=f"Updated {names}.",
        tone=Tone.SUCCESS,
    )
    # A new name or phone may be another customer's: say so, as on creation.
    return _with_look_alikes(ctx, customer, reply) if {"name", "phone"} & set(changes) else reply


def _listing(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {table.replace('_', ' ')}" for table, n in sorted(counts.items())) or "nothing"


@group.command(
    "customer merge",
    summary="Merge a duplicate customer into another (asks to confirm): everything moves, the duplicate goes",
    permission=Permission.CUSTOMERS_MERGE,
    params=[arg("keep", label="Customer to keep"), arg("other", label="Duplicate to merge into it")],
    usage="<keep> <other>",
)
def merge_customers(req: Request, ctx: Context) -> Reply:
    keep = customers.resolve_customer(ctx.uow, req.args["keep"])
    other = customers.resolve_customer(ctx.uow, req.args["other"])
    if keep.id == other.id:
        raise ValidationError(f"both name {keep.name} (#{keep.id}): give two different customers")
    moves = customer_merge.what_moves(ctx.uow, other.id)
    return Reply(
        title=f"Merge {other.name} (#{other.id}) into {keep.name} (#{keep.id})?",
        text=f"{keep.name} gets everything of {other.name}: {_listing(moves)}, with their consents, tags and "
        f"custom fields (where {keep.name} has none). {other.name} (#{other.id}) is then deleted. "
        "This cannot be undone.",
        buttons=(
            Button("Merge", f"/customer merge confirm {keep.id} {other.id}", Style.DANGER),
            Button(f"Open #{other.id}", f"/customer #{other.id}"),
        ),
        footer=f"Or type /customer merge confirm {keep.id} {other.id}",
        tone=Tone.WARNING,
    )


@group.command(
    "customer merge confirm",
    summary="Merge now (the button under /customer merge)",
    permission=Permission.CUSTOMERS_MERGE,
    params=[arg("keep", Kind.INT, label="Customer # to keep"), arg("other", Kind.INT, label="Customer # to merge")],
    hidden=True,
)
def confirm_merge(req: Request, ctx: Context) -> Reply:
    other = customers.get_customer(ctx.uow, req.args["other"])
    other_name = other.name
    moved = customer_merge.merge(ctx.uow, req.args["keep"], other.id)
    return card_reply(
        customers.get_card(ctx.uow, req.args["keep"], timezone=ctx.caller.timezone),
        ctx,
        note=f"Merged {other_name} (#{req.args['other']}) into this customer: moved {_listing(moved)}.",
        tone=Tone.SUCCESS,
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    from bot.handlers import data_requests, relations

    # Registered with the customer commands, each in a module of its own: /customer export and
    # /customer erase (data subject requests), and /relation (the card shows relationships).
    return [group, data_requests.group, relations.group]
