"""Deals: open one, move it through the pipeline (recording every stage change), list them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core import clock, events, paging, text
from crm_core.errors import CrmError, NotFound, ValidationError
from crm_core.i18n import _, pgettext
from crm_core.models import DEFAULT_PROBABILITY, Deal, DealStage, DealStageChange, FieldEntity, User
from crm_core.money import parse_amount
from crm_core.services import custom_fields, ownership, users
from crm_core.services.customers import get_customer
from crm_core.uow import UnitOfWork

MAX_TITLE = 200
# What /deal new takes as key=value besides custom fields (named in the unknown-option message).
CREATE_OPTIONS = ("amount", "close", "stage")


# What a Chinese-speaking rep types for a stage (the English words and their prefixes work too).
STAGE_ALIASES: dict[str, DealStage] = {
    "线索": DealStage.LEAD,
    "潜在": DealStage.LEAD,
    "已确认": DealStage.QUALIFIED,
    "合格": DealStage.QUALIFIED,
    "方案": DealStage.PROPOSAL,
    "报价": DealStage.PROPOSAL,
    "方案报价": DealStage.PROPOSAL,
    "谈判": DealStage.NEGOTIATION,
    "商务谈判": DealStage.NEGOTIATION,
    "赢单": DealStage.WON,
    "成交": DealStage.WON,
    "输单": DealStage.LOST,
    "丢单": DealStage.LOST,
}


def stage_label(stage: DealStage | str) -> str:
    """A stage as the reader sees it ("won", zh "赢单"); commands take the English word or an alias.
    An unknown value (a stage name from elsewhere) is shown as it is."""
    if not isinstance(stage, DealStage):
        if stage not in DealStage._value2member_map_:
            return str(stage)
        stage = DealStage(stage)
    return {
        DealStage.LEAD: pgettext("deal stage", "lead"),
        DealStage.QUALIFIED: pgettext("deal stage", "qualified"),
        DealStage.PROPOSAL: pgettext("deal stage", "proposal"),
        DealStage.NEGOTIATION: pgettext("deal stage", "negotiation"),
        DealStage.WON: pgettext("deal stage", "won"),
        DealStage.LOST: pgettext("deal stage", "lost"),
    }.get(stage, stage.value)


def match_stage(raw: str, allowed: tuple[DealStage, ...] = tuple(DealStage)) -> DealStage | None:
    """The stage ``raw`` names among ``allowed``: its English word, an unambiguous prefix ("neg") or a
    Chinese alias ("赢单"); None when it names none of them."""
    value = raw.strip().lower()
    if not value:
        return None
    alias = STAGE_ALIASES.get(value)
    if alias is not None:
        return alias if alias in allowed else None
    exact = [stage for stage in allowed if stage.value == value]
    matches = exact or [stage for stage in allowed if stage.value.startswith(value)]
    return matches[0] if len(matches) == 1 else None


def parse_stage(raw: str) -> DealStage:
    """A stage by name, unambiguous prefix ("neg" -> negotiation) or Chinese alias ("赢单" -> won)."""
    stage = match_stage(raw)
    if stage is not None:
        return stage
    stages = ", ".join(s.value for s in DealStage)
    raise ValidationError(_("{value} is not a stage (stages: {stages})", value=repr(raw), stages=stages), field="stage")


def parse_probability(raw: str) -> int:
    try:
        value = int(raw.strip().rstrip("%"))
    except ValueError:
        value = -1
    if not 0 <= value <= 100:
        raise ValidationError(_("probability is a whole number from 0 to 100"), field="probability")
    return value


def parse_close_date(raw: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationError(_("{value} is not a date (write 2026-12-31)", value=repr(raw)), field="close") from None


def is_overdue(deal: Deal, today: date) -> bool:
    """An open deal whose expected close date has passed (``today`` in the reader's timezone)."""
    return deal.stage.is_open and deal.expected_close_on is not None and deal.expected_close_on < today


def _overdue_clause(today: date) -> sa.ColumnElement[bool]:
    return sa.and_(Deal.stage.not_in([DealStage.WON, DealStage.LOST]), Deal.expected_close_on < today)


def get_deal(uow: UnitOfWork, deal_id: int) -> Deal:
    deal = uow.session.get(Deal, deal_id)
    if deal is None:
        raise NotFound(_("there is no deal #{id}", id=deal_id))
    return deal


def create_deal(
    uow: UnitOfWork,
    customer_id: int,
    title: str,
    amount_cents: int = 0,
    currency: str = "EUR",
    stage: DealStage = DealStage.LEAD,
    expected_close_on: date | None = None,
    probability: int | None = None,
    owner_id: int | None = None,
    fields: Mapping[str, str | None] | None = None,
) -> Deal:
    """Open a deal. ``fields``: custom field values as typed (key -> text); required ones must be among
    them. Callers that take no custom fields (imports, demo data) leave it None and skip that check."""
    custom = custom_fields.parse_changes(uow, FieldEntity.DEAL, fields or {}, options=CREATE_OPTIONS)
    if fields is not None:
        custom_fields.check_required(uow, FieldEntity.DEAL, custom, creating=True)
    title = _title(title)
    if amount_cents < 0:
        raise ValidationError(_("the amount cannot be negative"), field="amount")
    customer = get_customer(uow, customer_id)
    deal = Deal(
        customer_id=customer.id,
        title=title,
        amount_cents=amount_cents,
        currency=currency.upper(),
        stage=stage,
        expected_close_on=expected_close_on,
        probability=DEFAULT_PROBABILITY[stage] if probability is None else probability,
        owner_id=owner_id if owner_id is not None else (customer.owner_id or uow.actor.user_id),
        closed_at=None if stage.is_open else clock.utcnow(),
    )
    uow.session.add(deal)
    uow.session.flush()
    custom_fields.apply_changes(uow, custom, deal.id)
    uow.session.add(DealStageChange(deal_id=deal.id, from_stage=None, to_stage=stage, changed_by_id=uow.actor.user_id))
    uow.session.flush()
    uow.session.expire(deal, ["owner", "customer"])  # loaded afresh for the event
    events.emit(
        uow,
        "deal.created",
        entity_type="deal",
        entity_id=deal.id,
        payload={
            **_facts(deal),
            "stage": stage.value,
            "probability": deal.probability,
            "expected_close_on": deal.expected_close_on.isoformat() if deal.expected_close_on else None,
        },
    )
    if not stage.is_open:
        _emit_outcome(uow, deal, None)
    return deal


def change_stage(uow: UnitOfWork, deal_id: int, stage: DealStage, reason: str | None = None) -> Deal:
    deal = get_deal(uow, deal_id)
    ownership.check_deal(uow, deal)
    if deal.stage == stage:
        raise ValidationError(
            _("deal #{id} is already in {stage}", id=deal.id, stage=stage_label(stage)), field="stage"
        )
    previous = deal.stage
    uow.session.add(
        DealStageChange(deal_id=deal.id, from_stage=previous, to_stage=stage, changed_by_id=uow.actor.user_id)
    )
    deal.stage = stage
    deal.probability = DEFAULT_PROBABILITY[stage]
    deal.closed_at = None if stage.is_open else clock.utcnow()
    # A lost reason belongs to the lost stage: a deal that leaves it (won again, reopened) drops it.
    text.check_text(reason or "", "reason", field="reason")
    deal.lost_reason = ((reason or "").strip()[:500] or None) if stage is DealStage.LOST else None
    uow.session.flush()
    events.emit(
        uow,
        "deal.stage_changed",
        entity_type="deal",
        entity_id=deal.id,
        payload={
            **_facts(deal),
            "from_stage": previous.value,
            "to_stage": stage.value,
            "probability": deal.probability,
        },
    )
    if not stage.is_open:
        _emit_outcome(uow, deal, previous)
    return deal


# What /deal edit changes besides custom fields (the stage has /deal stage, with its history).
EDIT_FIELDS = ("title", "amount", "close", "owner")
_CLEAR = custom_fields.EMPTY_VALUES | {"nobody"}


def _title(raw: str) -> str:
    title = text.check_text((raw or "").strip(), "title", field="title")
    if not title:
        raise ValidationError(_("a deal needs a title"), field="title")
    if len(title) > MAX_TITLE:
        raise ValidationError(_("the title is longer than {limit} characters", limit=MAX_TITLE), field="title")
    return title


def _owner(uow: UnitOfWork, raw: str) -> User | None:
    value = raw.strip()
    if value.lower() in _CLEAR:
        return None
    if value.lower() == "me":
        if uow.actor.user_id is None:
            raise ValidationError(_("you have no CRM user to own deals"), field="owner")
        value = f"#{uow.actor.user_id}"
    try:
        user = users.find_user(uow, value)
    except CrmError as exc:
        raise ValidationError(exc.message, field="owner") from None
    if not user.active:
        raise ValidationError(_("{name} is not an active user", name=user.name), field="owner")
    return user


def _editable(uow: UnitOfWork, deal: Deal) -> dict[str, str]:
    """Every field /deal edit changes, as text: for the deal.updated diff."""
    return {
        "title": deal.title,
        "amount": f"{events.decimal_amount(deal.amount_cents)} {deal.currency}",
        "close": deal.expected_close_on.isoformat() if deal.expected_close_on else "",
        "owner": deal.owner.name if deal.owner else "",
        **custom_fields.current_text(uow, FieldEntity.DEAL, deal.id),
    }


def update_deal(uow: UnitOfWork, deal_id: int, changes: Mapping[str, str | None]) -> dict[str, object]:
    """Change a deal's title, amount (and currency), expected close, owner and custom fields, from
    key -> text as typed (``close=`` clears the date, ``owner=`` or ``owner=nobody`` unassigns).
    Every bad value is reported at once and nothing changes. Returns field -> {old, new} for what
    changed, also the ``deal.updated`` event's ``changes``."""
    if not changes:
        raise ValidationError(_("nothing to change: give field=value pairs, e.g. amount=12k close=2027-01-31"))
    deal = get_deal(uow, deal_id)
    ownership.check_deal(uow, deal)
    given = {key.strip().lower(): (value or "").strip() for key, value in changes.items()}
    core = {key: given.pop(key) for key in EDIT_FIELDS if key in given}
    errors: dict[str, str] = {}
    title: str | None = None
    amount: tuple[int, str | None] | None = None
    close: date | None = None
    owner: User | None = None
    for key, value in core.items():
        try:
            if key == "title":
                title = _title(value)
            elif key == "amount":
                if not value:
                    raise ValidationError(_("give an amount (amount=0 for none)"), field="amount")
                amount = parse_amount(value)
            elif key == "close":
                close = None if value.lower() in _CLEAR else parse_close_date(value)
            else:
                owner = _owner(uow, value)
        except ValidationError as exc:
            errors[key] = exc.message
    custom: custom_fields.Parsed = {}
    try:
        custom = custom_fields.parse_changes(uow, FieldEntity.DEAL, given, options=EDIT_FIELDS)
        custom_fields.check_required(uow, FieldEntity.DEAL, custom, creating=False)
    except ValidationError as exc:
        errors.update(exc.errors or {exc.field or "fields": exc.message})
    if errors:
        raise ValidationError("; ".join(errors.values()), field=next(iter(errors)), errors=errors)
    before = _editable(uow, deal)
    if title is not None:
        deal.title = title
    if amount is not None:
        deal.amount_cents, deal.currency = amount[0], (amount[1] or deal.currency)
    if "close" in core:
        deal.expected_close_on = close
    if "owner" in core:
        deal.owner_id = owner.id if owner else None
    custom_fields.apply_changes(uow, custom, deal.id)
    uow.session.flush()
    uow.session.expire(deal, ["owner"])
    diff = custom_fields.changed(before, _editable(uow, deal))
    if diff:
        events.emit(
            uow, "deal.updated", entity_type="deal", entity_id=deal.id, payload={**_facts(deal), "changes": diff}
        )
    return dict(diff)


def _facts(deal: Deal) -> dict[str, object]:
    """What every deal event says about the deal (crm_core.events.EVENT_TYPES)."""
    return {
        "deal_id": deal.id,
        "customer_id": deal.customer_id,
        "customer": deal.customer.name,
        "title": deal.title,
        "amount": events.decimal_amount(deal.amount_cents),
        "currency": deal.currency,
        "owner_id": deal.owner_id,
        "owner": deal.owner.name if deal.owner else None,
    }


def _emit_outcome(uow: UnitOfWork, deal: Deal, previous: DealStage | None) -> None:
    """deal.won / deal.lost for a deal that has just closed."""
    payload: dict[str, object] = {**_facts(deal), "from_stage": previous.value if previous else None}
    if deal.stage is DealStage.LOST:
        payload["reason"] = deal.lost_reason
    events.emit(uow, f"deal.{deal.stage.value}", entity_type="deal", entity_id=deal.id, payload=payload)


def _deals_matching(
    *,
    owner_id: int | None = None,
    customer_id: int | None = None,
    stage: DealStage | None = None,
    open_only: bool = True,
    overdue_on: date | None = None,
) -> sa.Select[Deal]:
    statement = sa.select(Deal)
    if overdue_on is not None:
        statement = statement.where(_overdue_clause(overdue_on))
    if owner_id is not None:
        statement = statement.where(Deal.owner_id == owner_id)
    if customer_id is not None:
        statement = statement.where(Deal.customer_id == customer_id)
    if stage is not None:
        statement = statement.where(Deal.stage == stage)
    elif open_only:
        statement = statement.where(Deal.stage.not_in([DealStage.WON, DealStage.LOST]))
    return statement.order_by(Deal.expected_close_on.is_(None), Deal.expected_close_on, Deal.id)


def list_deals(
    uow: UnitOfWork,
    *,
    owner_id: int | None = None,
    customer_id: int | None = None,
    stage: DealStage | None = None,
    open_only: bool = True,
    limit: int = 50,
) -> list[Deal]:
    statement = _deals_matching(owner_id=owner_id, customer_id=customer_id, stage=stage, open_only=open_only)
    return list(uow.session.scalars(statement.limit(limit)))


@dataclass(frozen=True)
class DealPage:
    page: paging.Page[Deal]
    # Amount of every matching deal (all pages), in cents per currency.
    totals: dict[str, int]
    # Matching deals (all pages) that are open and past their expected close date.
    overdue: int = 0


def deal_page(
    uow: UnitOfWork,
    number: int = 1,
    *,
    owner_id: int | None = None,
    customer_id: int | None = None,
    stage: DealStage | None = None,
    open_only: bool = True,
    overdue_only: bool = False,
    today: date | None = None,
    size: int = paging.PAGE_SIZE,
) -> DealPage:
    """One page of matching deals, and the count, amounts and overdue count of all of them (SQL
    aggregates). ``today`` (the reader's date) decides what is overdue."""
    today = today or clock.utcnow().date()
    statement = _deals_matching(
        owner_id=owner_id,
        customer_id=customer_id,
        stage=stage,
        open_only=open_only,
        overdue_on=today if overdue_only else None,
    )
    matching = statement.order_by(None).subquery()
    sums = uow.session.execute(
        sa.select(matching.c.currency, sa.func.sum(matching.c.amount_cents)).group_by(matching.c.currency)
    ).all()
    late = uow.session.scalar(
        sa.select(sa.func.count()).select_from(statement.where(_overdue_clause(today)).order_by(None).subquery())
    )
    return DealPage(
        paging.fetch(uow.session, statement, number, size),
        {cur: int(cents or 0) for cur, cents in sums},
        int(late or 0),
    )


@dataclass
class OverdueDeals:
    owner: str | None
    count: int
    # Their amounts per currency, as stored (never added up across currencies).
    amounts: dict[str, int]


def overdue_by_owner(session: Session, today: date) -> list[OverdueDeals]:
    """Open deals past their expected close date per owner (most first; unassigned ones too)."""
    rows = session.execute(
        sa.select(Deal.owner_id, User.name, Deal.currency, sa.func.count(Deal.id), sa.func.sum(Deal.amount_cents))
        .select_from(Deal)
        .outerjoin(User, User.id == Deal.owner_id)
        .where(_overdue_clause(today))
        .group_by(Deal.owner_id, User.name, Deal.currency)
    ).all()
    owners: dict[int | None, OverdueDeals] = {}
    for owner_id, name, currency, count, cents in rows:
        found = owners.setdefault(owner_id, OverdueDeals(name, 0, {}))
        found.count += int(count)
        if cents:
            found.amounts[currency] = found.amounts.get(currency, 0) + int(cents)
    return sorted(owners.values(), key=lambda o: (-o.count, o.owner or ""))
