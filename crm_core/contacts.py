"""Finding customers by email and phone number through their blind indexes.

Emails and phone numbers are encrypted at rest (crm_core.field_crypto), so the database cannot
compare them; it compares their blind indexes instead (``customers.email_index``, ``phone_index``,
``phone_tail``). Each condition asks for the index under every configured key, so a lookup keeps
finding the rows ``chatcrm keys rotate`` has not reached yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core import db, field_crypto, text
from crm_core.models.customers import EMAIL, PHONE, PHONE_TAIL, Customer


def email_among(session: Session, emails: Sequence[str | None]) -> sa.ColumnElement[bool]:
    """Customers whose email is one of ``emails`` (as typed: compared normalised), for a chunk of an
    import: the blind indexes of all of them, under every key, in one condition."""
    keys = field_crypto.keys_for(session)
    wanted = sorted(
        {index for email in map(text.normalize_email, emails) if email for index in keys.blind_any(EMAIL, email)}
    )
    return db.one_of(session, Customer.email_index, wanted) if wanted else sa.false()


def email_is(bind: Any, email: str | None) -> sa.ColumnElement[bool]:
    """Customers whose email is ``email`` (case and surrounding spaces aside)."""
    normalized = text.normalize_email(email)
    if normalized is None:
        return sa.false()
    return Customer.email_index.in_(field_crypto.keys_for(bind).blind_any(EMAIL, normalized))


def phone_is(bind: Any, phone: str | None) -> sa.ColumnElement[bool]:
    """Customers whose number has the same last 9 digits (whatever the format or country prefix)."""
    key = text.phone_key(phone)
    if key is None:
        return sa.false()
    return Customer.phone_index.in_(field_crypto.keys_for(bind).blind_any(PHONE, key))


def phone_tail_is(bind: Any, digits: str) -> sa.ColumnElement[bool]:
    """Candidates for numbers ending in ``digits`` (6 or more): the same last 6 digits. The caller
    checks the digits before those on the decrypted numbers (``ends_with``)."""
    tail = text.phone_tail(digits)
    if tail is None:
        return sa.false()
    return Customer.phone_tail.in_(field_crypto.keys_for(bind).blind_any(PHONE_TAIL, tail))


def ends_with(phone: str | None, digits: str) -> bool:
    return bool(phone) and text.phone_digits(phone or "").endswith(text.phone_digits(digits))
