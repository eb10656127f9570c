"""Segments: saved, named customer filters (syntax: crm_core.campaigns.filters) for campaigns.

A segment stores its filter as normalised text and is compiled again whenever it is used, so
its customers are always the current ones. ``owner=me`` is stored as the saver's name, so a
segment means the same customers whoever later counts it or sends a campaign to it.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core.campaigns import filters
from crm_core.errors import Conflict, NotFound, ValidationError
from crm_core.i18n import N_, _
from crm_core.models import Campaign, Customer, Segment, User
from crm_core.uow import UnitOfWork

MAX_NAME = 60
# Lower-case letters (any alphabet), digits, - and _; starting with a letter or digit.
_NAME = re.compile(r"[^\W_][\w\-]*")
SEGMENTS_HINT = N_("see them with /segment list")


def _check_name(name: str) -> str:
    name = (name or "").strip().lower()
    if not name or len(name) > MAX_NAME or not _NAME.fullmatch(name):
        raise ValidationError(
            _(
                "{name} is not a segment name: use 1–{limit} letters, digits, - and _ (e.g. vip-de)",
                name=repr(name),
                limit=MAX_NAME,
            ),
            field="name",
        )
    return name


def _find(uow: UnitOfWork, name: str) -> Segment | None:
    return uow.session.scalars(sa.select(Segment).where(Segment.name == name.strip().lower())).one_or_none()


def _user_reference(session: Session, user_id: int) -> str:
    """How a filter names the user: their name when it names only them, otherwise ``#id``."""
    user = session.get(User, user_id)
    if user is None:
        return f"#{user_id}"
    folded = user.name.casefold()
    namesakes = sum(1 for name in session.scalars(sa.select(User.name)) if name.casefold() == folded)
    plain = namesakes == 1 and folded not in ("me", "none") and not folded.startswith("#")
    return user.name if plain else f"#{user.id}"


def _checked_filter(session: Session, filter_text: str, user_id: int | None) -> str:
    """The normalised filter text, after checking its syntax and its references in the database."""
    parsed = filters.parse(filter_text)
    filters.compile_filter(session, parsed, caller_user_id=user_id)
    if user_id is not None:
        parsed = parsed.replace_me(_user_reference(session, user_id))
    text = filters.describe(parsed)
    if len(text) > filters.MAX_LENGTH:
        raise ValidationError(filters.too_long(), field="filter")
    return text


def create(uow: UnitOfWork, name: str, filter_text: str, user_id: int | None) -> Segment:
    """Save a new segment; a bad name or filter raises ValidationError before anything is written."""
    name = _check_name(name)
    if _find(uow, name) is not None:
        raise ValidationError(
            _(
                "a segment called {name} already exists: see it with /segment show {name}, "
                "or change its filter with /segment set {name} <filter>",
                name=name,
            ),
            field="name",
        )
    text = _checked_filter(uow.session, filter_text, user_id)
    segment = Segment(name=name, filter=text, created_by_id=user_id)
    uow.session.add(segment)
    uow.session.flush()
    return segment


def get(uow: UnitOfWork, name: str) -> Segment:
    segment = _find(uow, name)
    if segment is None:
        raise NotFound(
            _(
                "there is no segment called {name}; {hint}",
                name=repr(name.strip().lower()),
                hint=_(SEGMENTS_HINT),
            )
        )
    return segment


def list_all(uow: UnitOfWork) -> list[Segment]:
    return list(uow.session.scalars(sa.select(Segment).order_by(Segment.name)))


def update(uow: UnitOfWork, name: str, filter_text: str, user_id: int | None = None) -> Segment:
    """Replace a segment's filter (``owner=me`` is the updating user)."""
    segment = get(uow, name)
    segment.filter = _checked_filter(uow.session, filter_text, user_id)
    uow.session.flush()
    return segment


def delete(uow: UnitOfWork, name: str) -> None:
    """Delete a segment no campaign uses."""
    segment = get(uow, name)
    used_by = uow.session.scalars(
        sa.select(Campaign.name).where(Campaign.segment_id == segment.id).order_by(Campaign.name)
    ).all()
    if used_by:
        raise Conflict(
            _(
                "segment {segment} is used by campaign(s) {campaigns}; change or cancel those first",
                segment=segment.name,
                campaigns=", ".join(used_by),
            )
        )
    uow.session.delete(segment)
    uow.session.flush()


def _where(session: Session, segment: Segment | str, caller_user_id: int | None) -> sa.ColumnElement[bool]:
    text = segment.filter if isinstance(segment, Segment) else segment
    return filters.compile_filter(session, filters.parse(text), caller_user_id=caller_user_id)


def customers_query(
    session: Session, segment_or_filter_text: Segment | str, caller_user_id: int | None = None
) -> sa.Select[int]:
    """``SELECT customers.id WHERE <filter>``: usable as a subquery or in ``INSERT ... SELECT``."""
    return sa.select(Customer.id).where(_where(session, segment_or_filter_text, caller_user_id))


def count(uow: UnitOfWork, segment: Segment | str, caller_user_id: int | None = None) -> int:
    """How many customers the segment (or filter text) matches now."""
    where = _where(uow.session, segment, caller_user_id)
    return uow.session.scalar(sa.select(sa.func.count()).select_from(Customer).where(where)) or 0


def sample(uow: UnitOfWork, segment: Segment | str, n: int = 5, caller_user_id: int | None = None) -> list[Customer]:
    """The first ``n`` matching customers by name."""
    where = _where(uow.session, segment, caller_user_id)
    return list(uow.session.scalars(sa.select(Customer).where(where).order_by(Customer.name, Customer.id).limit(n)))
