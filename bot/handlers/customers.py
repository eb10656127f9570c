"""Customer commands: find (/customer), the customer card, create and edit."""

from __future__ import annotations

from dataclasses import replace

from bot.args import Kind, arg, rest
from bot.context import Context
from bot.handlers.common import (
    clip,
    counted_position,
    custom_field_inputs,
    deal_item,
    fmt_date,
    followups_section,
    form_with_fields,
    interaction_kind_label,
    money,
    ticket_item,
)
from bot.hookspecs import hookimpl
from bot.messages import Button, Field, Form, FormInput, Item, Reply, Request, Section, Style, Tone
from bot.paging import PAGE_OPTION, more_button, page_number
from bot.roles import Permission
from bot.router import CommandGroup
from crm_core import i18n, search
from crm_core.errors import ValidationError
from crm_core.i18n import N_, _, ngettext, pgettext
from crm_core.models import Customer, FieldEntity, ModelRun, Role
from crm_core.money import format_totals
from crm_core.predictions.rfm import segment_label
from crm_core.services import customer_merge, customers, interactions, relationships, tickets
from crm_core.services.customers import CORE_FIELDS, CustomerCard

group = CommandGroup()


@group.command(
    "customer",
    read_only=True,
    summary=N_("Find a customer by name, company, email (or @domain), phone (or its last 6+ digits) or #id"),
    permission=Permission.CUSTOMERS_READ,
    params=[
        rest("query", Kind.TEXT, label=N_("Name, company, email, @domain, phone or #id"), max_length=200),
        PAGE_OPTION,
    ],
)
def find_customer(req: Request, ctx: Context) -> Reply:
    query = req.args["query"]
    number = page_number(req)
    page = search.search_page(ctx.uow.session, query, number)
    hits = page.items
    if not page.total:
        return Reply(
            text=_("No customer matches {query}.", query=repr(query)),
            footer=_("Try part of the name, an email, a phone number or #id, or create one: /customer new <name>"),
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
            button=Button(pgettext("button", "Open"), f"/customer #{hit.customer_id}"),
        )
        for hit in hits
    )
    total = i18n.format_number(page.total)
    matches = ngettext("{count} match", "{count} matches", page.total, count=total)
    return Reply(
        title=ngettext(
            "{count} customer matches {query}",
            "{count} customers match {query}",
            page.total,
            count=total,
            query=repr(query),
        ),
        sections=(Section(items=items, empty=_("No more matches.")),),
        buttons=more_button(req, page),
        footer=_("{position}. Open one, or narrow the search.", position=counted_position(page, matches))
        if page.has_more or number > 1
        else _("Open one, or narrow the search."),
    )


def risk_level(risk: float) -> str:
    return "high" if risk >= 0.6 else "medium" if risk >= 0.3 else "low"


def risk_label(risk: float) -> str:
    """The churn-risk band as the reader sees it ("high" / "高")."""
    return {
        "high": pgettext("churn risk", "high"),
        "medium": pgettext("churn risk", "medium"),
        "low": pgettext("churn risk", "low"),
    }[risk_level(risk)]


def _match_label(hit: search.SearchHit) -> str:
    return {
        search.MatchKind.TYPO: _("similar spelling"),
        search.MatchKind.COMPANY: pgettext("search match", "company"),
        search.MatchKind.WORD_PREFIX: _("word match"),
        search.MatchKind.NAME_PREFIX: _("name starts with it"),
        search.MatchKind.EXACT_NAME: _("exact name"),
        search.MatchKind.EMAIL_DOMAIN: _("email domain"),
        search.MatchKind.PHONE_SUFFIX: _("phone ends with it"),
        search.MatchKind.PHONE: pgettext("search match", "phone"),
        search.MatchKind.EMAIL: pgettext("search match", "email"),
        search.MatchKind.ID: pgettext("search match", "id"),
    }[hit.match]


def _open_tickets_title(card: CustomerCard) -> str:
    count = len(card.open_tickets)
    late = sum(1 for t in card.open_tickets if tickets.overdue(t))
    if late:
        return _("Open tickets ({count}, {late} overdue)", count=count, late=late)
    return _("Open tickets ({count})", count=count)


def card_reply(card: CustomerCard, ctx: Context, note: str | None = None, tone: Tone = Tone.INFO) -> Reply:
    c = card.customer
    tz = ctx.caller.timezone
    fields = [
        Field(_("Company"), c.company.name if c.company else "—"),
        Field(_("Owner"), c.owner.name if c.owner else _("unassigned")),
        Field(_("Email"), c.email or "—"),
        Field(_("Phone"), c.phone or "—"),
        Field(_("Country"), c.country or "—"),
        Field(_("Language / timezone"), f"{c.language or '—'} / {c.timezone or '—'}"),
        # One amount per currency the orders were in; the company currency only labels a zero.
        Field(
            _("Lifetime value"),
            format_totals(card.lifetime_values, ctx.settings.currency),
        ),
        Field(
            _("Orders"),
            _("{count} · last {date}", count=i18n.format_number(c.order_count), date=fmt_date(c.last_order_at, tz)),
        ),
    ]
    if c.tags:
        fields.append(Field(_("Tags"), ", ".join(c.tags)))
    if card.rating_count and card.rating_average is not None:
        fields.append(
            Field(
                _("Satisfaction"),
                ngettext(
                    "{average}/5 from {count} rating",
                    "{average}/5 from {count} ratings",
                    card.rating_count,
                    average=i18n.format_number(card.rating_average, digits=1),
                    count=i18n.format_number(card.rating_count),
                ),
            )
        )
    fields.extend(Field(v.definition.label, v.shown) for v in card.custom_fields)
    footer = _("Customer #{id} · in the CRM since {date}", id=c.id, date=fmt_date(c.created_at, tz))
    score = card.score
    if score is not None:
        if score.churn_risk is not None:
            fields.append(
                Field(
                    _("Churn risk"),
                    f"{i18n.format_percent(score.churn_risk)} ({risk_label(score.churn_risk)})",
                )
            )
            run = ctx.uow.session.get(ModelRun, score.churn_run_id) if score.churn_run_id else None
            if run is not None and run.roc_auc is not None and ctx.caller.role == Role.ADMIN:
                footer += " · " + _(
                    "churn model: ROC AUC {auc} on a time-based holdout (run #{id})",
                    auc=i18n.format_number(run.roc_auc, digits=2),
                    id=run.id,
                )
        if score.rfm_segment:
            fields.append(
                Field(
                    _("Segment"),
                    f"{segment_label(score.rfm_segment)} "
                    f"(R{score.recency_score} F{score.frequency_score} M{score.monetary_score})",
                )
            )
    sections = [
        Section(
            title=_("Open deals ({count})", count=len(card.open_deals)),
            items=tuple(deal_item(d, tz) for d in card.open_deals[:10]),
            empty=_("No open deals."),
        ),
        Section(
            title=_open_tickets_title(card),
            items=tuple(ticket_item(t, tz) for t in card.open_tickets[:10]),
            empty=_("No open tickets."),
        ),
        Section(
            title=_("Recent interactions"),
            items=tuple(
                Item(
                    text=clip(interactions.shown_text(i)),
                    detail=" · ".join(
                        (
                            interaction_kind_label(i.kind),
                            i.user.name if i.user else pgettext("interaction by", "customer"),
                            fmt_date(i.occurred_at, tz),
                            i.channel,
                        )
                    ),
                )
                for i in card.recent_interactions
            ),
            empty=_("Nothing logged yet."),
        ),
    ]
    if card.followups_due:
        sections.insert(
            0,
            followups_section(
                card.followups_due, tz, title=_("Follow-ups due today ({count})", count=len(card.followups_due))
            ),
        )
    if card.recent_orders:
        sections.append(
            Section(
                title=_("Recent orders"),
                items=tuple(
                    Item(text=f"{o.number} · {money(o.total_cents, o.currency)}", detail=fmt_date(o.ordered_at, tz))
                    for o in card.recent_orders
                ),
            )
        )
    if card.relationships:
        sections.append(
            Section(
                title=_("Relationships ({count})", count=len(card.relationships)),
                items=tuple(
                    Item(
                        text=relationships.describe(seen.phrase, f"{seen.other.name} (#{seen.other.id})"),
                        detail=_("since {date}", date=fmt_date(seen.relationship.started_on))
                        + f" · #{seen.relationship.id}",
                        button=Button(pgettext("button", "Open"), f"/customer #{seen.other.id}"),
                    )
                    for seen in card.relationships[:10]
                ),
            )
        )
    # Sections plugins add through the card_sections hook (a failing plugin is logged and left out).
    sections.extend(ctx.plugins.card_sections(c, ctx))
    ref = f"#{c.id}"
    return Reply(
        title=_("{name} · account", name=c.name) if c.kind == "account" else c.name,
        text=note,
        fields=tuple(fields),
        sections=tuple(sections),
        buttons=(
            Button(_("Log note"), f"/note {ref}", Style.PRIMARY, opens_form=True),
            Button(_("New deal"), f"/deal new {ref}", opens_form=True),
            Button(_("Edit"), f"/customer edit {ref}", opens_form=True),
            Button(_("New ticket"), f"/ticket new {ref}", opens_form=True),
        ),
        footer=footer,
        tone=tone,
    )


_NEW_CUSTOMER = [arg("name", label=N_("Name"), max_length=200)]


@group.command(
    "customer new",
    summary=N_("Create a customer"),
    permission=Permission.CUSTOMERS_WRITE,
    params=_NEW_CUSTOMER,
    extra_options=True,
    usage="<name> [email=…] [phone=…] [company=…] [country=DE] [language=de] [timezone=…] [owner=…] [tags=a,b] "
    "[field=value …]",
    form=form_with_fields(FieldEntity.CUSTOMER, N_("New customer"), "/customer new", _NEW_CUSTOMER),
)
def new_customer(req: Request, ctx: Context) -> Reply:
    customer = customers.create_customer(ctx.uow, req.args["name"], req.extra)
    return _with_look_alikes(
        ctx,
        customer,
        card_reply(
            customers.get_card(ctx.uow, customer.id, timezone=ctx.caller.timezone),
            ctx,
            note=_("Created {name}.", name=customer.name),
            tone=Tone.SUCCESS,
        ),
    )


def _with_look_alikes(ctx: Context, customer: Customer, reply: Reply) -> Reply:
    """Warn when another customer has the same name or phone, with a button to open each."""
    similar = customers.look_alikes(ctx.uow, customer)
    if not similar:
        return reply
    listed = "; ".join(
        _("{name} (#{id}, same {why})", name=s.name, id=s.customer_id, why=_look_alike_why(s.why)) for s in similar
    )
    return replace(
        reply,
        text=_(
            "{note} Possible duplicate of {listed}: open it to check, or merge them.", note=reply.text, listed=listed
        ),
        tone=Tone.WARNING,
        buttons=tuple(Button(_("Open #{id}", id=s.customer_id), f"/customer #{s.customer_id}") for s in similar)
        + reply.buttons,
    )


def _look_alike_why(why: str) -> str:
    return {
        "name": pgettext("look-alike", "name"),
        "phone": pgettext("look-alike", "phone"),
        "name and phone": pgettext("look-alike", "name and phone"),
    }.get(why, why)


# The edit form's labels of the core fields (custom fields bring their own).
_FIELD_LABELS = {
    "name": N_("Name"),
    "email": N_("Email"),
    "phone": N_("Phone"),
    "company": N_("Company"),
    "country": N_("Country"),
    "language": N_("Language"),
    "timezone": N_("Timezone"),
    "owner": N_("Owner"),
    "tags": N_("Tags"),
}


def _edit_form(req: Request, ctx: Context, fixed: dict[str, str]) -> Form:
    customer = customers.resolve_customer(ctx.uow, fixed["customer"])
    current = customers.current_values(ctx.uow, customer)
    inputs = [
        FormInput(
            name=key,
            label=_(_FIELD_LABELS[key]) if key in _FIELD_LABELS else key.capitalize(),
            required=key == "name",
            initial=current.get(key) or None,
        )
        for key in CORE_FIELDS
        if key != "kind"
    ]
    inputs.extend(custom_field_inputs(ctx.uow, FieldEntity.CUSTOMER, current))
    return Form(
        title=_("Edit customer"), command="/customer edit", inputs=tuple(inputs), fixed={"customer": f"#{customer.id}"}
    )


@group.command(
    "customer edit",
    summary=N_("Change a customer's fields (core and custom); field= (empty) clears one"),
    permission=Permission.CUSTOMERS_WRITE,
    params=[arg("customer", label=N_("Customer"))],
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
                customers.get_card(ctx.uow, customer.id, timezone=ctx.caller.timezone), ctx, note=_("Nothing changed.")
            )
    customers.update_customer(ctx.uow, customer.id, changes)
    names = ", ".join(sorted(changes))
    reply = card_reply(
        customers.get_card(ctx.uow, customer.id, timezone=ctx.caller.timezone),
        ctx,
        note=_("Updated {fields}.", fields=names),
        tone=Tone.SUCCESS,
    )
    # A new name or phone may be another customer's: say so, as on creation.
    return _with_look_alikes(ctx, customer, reply) if {"name", "phone"} & set(changes) else reply


def _rows(table: str, n: int) -> str:
    """ "3 deals" of a table a merge moves (a plugin's table: its name)."""
    count = i18n.format_number(n)
    plurals = {
        "campaign_recipients": ngettext("{count} campaign recipient", "{count} campaign recipients", n, count=count),
        "custom_field_values": ngettext("{count} custom field value", "{count} custom field values", n, count=count),
        "customer_chats": ngettext("{count} customer chat", "{count} customer chats", n, count=count),
        "customer_consents": ngettext("{count} customer consent", "{count} customer consents", n, count=count),
        "customer_relationships": ngettext("{count} relationship", "{count} relationships", n, count=count),
        "customer_scores": ngettext("{count} customer score", "{count} customer scores", n, count=count),
        "customer_tags": ngettext("{count} tag", "{count} tags", n, count=count),
        "deals": ngettext("{count} deal", "{count} deals", n, count=count),
        "followups": ngettext("{count} follow-up", "{count} follow-ups", n, count=count),
        "interactions": ngettext("{count} interaction", "{count} interactions", n, count=count),
        "orders": ngettext("{count} order", "{count} orders", n, count=count),
        "recommendations": ngettext("{count} recommendation", "{count} recommendations", n, count=count),
        "tickets": ngettext("{count} ticket", "{count} tickets", n, count=count),
    }
    return plurals.get(table) or f"{count} {table.replace('_', ' ')}"


def _listing(counts: dict[str, int]) -> str:
    return ", ".join(_rows(table, n) for table, n in sorted(counts.items())) or _("nothing")


@group.command(
    "customer merge",
    summary=N_("Merge a duplicate customer into another (asks to confirm): everything moves, the duplicate goes"),
    permission=Permission.CUSTOMERS_MERGE,
    params=[arg("keep", label=N_("Customer to keep")), arg("other", label=N_("Duplicate to merge into it"))],
    usage="<keep> <other>",
)
def merge_customers(req: Request, ctx: Context) -> Reply:
    keep = customers.resolve_customer(ctx.uow, req.args["keep"])
    other = customers.resolve_customer(ctx.uow, req.args["other"])
    if keep.id == other.id:
        raise ValidationError(_("both name {name} (#{id}): give two different customers", name=keep.name, id=keep.id))
    moves = customer_merge.what_moves(ctx.uow, other.id)
    confirm = f"/customer merge confirm {keep.id} {other.id}"
    # Both by id as well: a duplicate usually has the same name as the customer it is merged into.
    names = {"keep": keep.name, "keep_id": keep.id, "other": other.name, "other_id": other.id}
    return Reply(
        title=_("Merge {other} (#{other_id}) into {keep} (#{keep_id})?", **names),
        text=_(
            "{keep} (#{keep_id}) gets everything of {other} (#{other_id}): {listing}. Consents, tags and "
            "custom fields move only where #{keep_id} has none. #{other_id} is then deleted. This cannot be undone.",
            listing=_listing(moves),
            **names,
        )
        if moves
        else _(
            "{keep} (#{keep_id}) gets nothing from {other} (#{other_id}): it has no orders, deals, tickets, "
            "notes or other records. #{other_id} is then deleted. This cannot be undone.",
            **names,
        ),
        buttons=(
            Button(_("Merge"), confirm, Style.DANGER),
            Button(_("Open #{id}", id=other.id), f"/customer #{other.id}"),
        ),
        footer=_("Or type {command}", command=confirm),
        tone=Tone.WARNING,
    )


@group.command(
    "customer merge confirm",
    summary=N_("Merge now (the button under /customer merge)"),
    permission=Permission.CUSTOMERS_MERGE,
    params=[
        arg("keep", Kind.INT, label=N_("Customer # to keep")),
        arg("other", Kind.INT, label=N_("Customer # to merge")),
    ],
    hidden=True,
)
def confirm_merge(req: Request, ctx: Context) -> Reply:
    other = customers.get_customer(ctx.uow, req.args["other"])
    other_name = other.name
    moved = customer_merge.merge(ctx.uow, req.args["keep"], other.id)
    return card_reply(
        customers.get_card(ctx.uow, req.args["keep"], timezone=ctx.caller.timezone),
        ctx,
        note=_(
            "Merged {name} (#{id}) into this customer: moved {listing}.",
            name=other_name,
            id=req.args["other"],
            listing=_listing(moved),
        ),
        tone=Tone.SUCCESS,
    )


@hookimpl
def register_commands() -> list[CommandGroup]:
    from bot.handlers import data_requests, relations

    # Registered with the customer commands, each in a module of its own: /customer export and
    # /customer erase (data subject requests), and /relation (the card shows relationships).
    return [group, data_requests.group, relations.group]
