"""The customer filter language of segments and campaigns: parsed to an AST, compiled to SQL.

A filter is a line of terms separated by spaces; a customer matches when every term holds::

    country=DE,AT tag=vip ltv>=1000 last_order<90d

Each term is ``key``, an operator (``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``) and a value.
Spaces around the operator are allowed (``ltv >= 1000``). A value with spaces or commas is quoted:
``owner="Maria Schmidt"`` (straight or typographic quotes). Keys are case-insensitive.

Combining
    Different terms are AND-ed. Repeating a key with ``=`` OR-s the repeats: ``country=DE
    country=AT`` is the same as ``country=DE,AT`` (a comma list, allowed after ``=`` and ``!=``).
    With other operators repeats are AND-ed, which makes ranges: ``orders>=2 orders<=5``.
    ``!=`` with a list excludes all of them: ``country!=DE,AT``. The empty filter or ``all`` (alone)
    means every customer.

Keys
    ``tag=vip``                 has the tag (``!=``: does not have it).
    ``country=DE``              ISO 3166 two-letter code, any case; ``country=none``: not recorded.
    ``language=en``             language code; ``en`` also matches regional codes such as ``en-gb``;
                                ``language=none``: not recorded.
    ``owner=<user>``            the owning user: their name (any case, quoted if it has spaces), ``#12``
                                (a user id), ``me`` (whoever runs the filter; a saved segment stores the
                                saver's name instead) or ``none`` (no owner). An unknown or ambiguous
                                name is an error.
    ``field.<key>=value``       a customer custom field. Text and choice fields take ``=`` and ``!=``
                                (text compares case-insensitively); number and date fields
                                (``2026-12-01``) also ``<``, ``<=``, ``>``, ``>=``. ``!=`` also matches
                                customers without a value; the comparisons never do. An unknown key is
                                an error naming the known ones.
    ``last_order<90d``          the last purchase is less than 90 days old (within the last 90 days);
                                ``last_order<=90d`` includes the 90-day mark. ``last_order>90d``: the
                                last purchase is more than 90 days old. Ages are in days (``90d``) or
                                weeks (``12w``), counted from the moment the filter is compiled.
    ``last_order>=2026-01-01``  dates are whole UTC days: ``>=D`` from the start of D, ``>D`` from
                                the next day, ``<D`` before D, ``<=D`` up to the end of D, ``=D`` on D.
    ``last_order=never``        never purchased; ``last_order!=never``: purchased at least once.
                                Every other ``last_order`` term excludes customers who never ordered.
    ``orders>=3``               number of purchases; ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``.
    ``ltv>=1000``               lifetime value (purchases minus cancellations) in major currency units,
                                decimals allowed (``ltv<250.50``, ``ltv>=12.5k``); all operators. No
                                currency: the figure is compared as stored.
    ``open_ticket=yes``         has a ticket that is open or pending; ``open_ticket=no``: has none.
    ``rfm=champions``           the customer's RFM segment (``champions``, ``loyal``, ``new``,
                                ``promising``, ``at_risk``, ``cannot_lose``, ``hibernating``,
                                ``needs_attention``; ``_``, ``-`` or a quoted space all work).
                                ``!=`` also matches customers not scored yet.
    ``churn>=0.5``              churn risk from the nightly model, 0–1 or a percentage (``churn>=50%``),
                                with ``<``, ``<=``, ``>``, ``>=``; or a band: ``churn=high`` (≥ 0.6),
                                ``churn=medium`` (0.3 to 0.6), ``churn=low`` (< 0.3). Customers without
                                a churn score match no ``churn`` term (``!=`` bands excepted).

Errors
    A malformed filter raises ``FilterError`` (a ``ValidationError``) naming the bad term and its
    position, saying what is wrong and what is allowed::

        "ltv>=abc" (character 12): ltv takes an amount, e.g. ltv>=1000 or ltv<250.50

    ``parse`` checks the syntax and the values it can check alone; ``compile_filter`` checks what
    needs the database (owner names, custom field keys and their values).

SQL
    ``compile_filter`` returns a WHERE clause over ``customers``: plain comparisons on the
    customer row's own (indexed) columns and figures (order count, lifetime value, last order are
    kept on the row by the order services) and correlated ``EXISTS`` subqueries on indexed
    columns for tags, custom field values, tickets and scores. Nothing is filtered in Python, so
    it works unchanged inside ``INSERT ... SELECT`` for 100,000-customer campaigns.
"""

from __future__ import annotations

import difflib
import itertools
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.errors import ValidationError
from crm_core.i18n import N_, _
from crm_core.models import (
    Customer,
    CustomerScore,
    CustomerTag,
    CustomFieldDefinition,
    CustomFieldValue,
    FieldEntity,
    FieldType,
    Ticket,
    TicketStatus,
    User,
)
from crm_core.money import parse_amount
from crm_core.predictions import rfm
from crm_core.services import custom_fields

SYNTAX_HELP = N_(
    'Terms separated by spaces, all must hold: tag=vip country=DE,AT language=en owner=me|none|"Name" '
    "field.<key>=value last_order<90d last_order>=2026-01-01 last_order=never orders>=3 ltv>=1000 "
    "open_ticket=yes rfm=champions churn>=0.5 churn=high. Operators = != < <= > >=; "
    "repeat a key with = (or use a comma list) for either; quote values with spaces; empty or all = everyone."
)
MAX_LENGTH = 1000

OPERATORS = ("!=", "<=", ">=", "=", "<", ">")
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_EQUALITY = ("=", "!=")
_ORDERING = ("<", "<=", ">", ">=")
_ALL_OPS = ("=", "!=", *_ORDERING)

_QUOTES = {'"': '"', "'": "'", "“": "”", "”": "”", "„": "“", "‘": "’", "’": "’", "«": "»"}
_KEY_CHARS = re.compile(r"[A-Za-z0-9_.\-]")
_TAG = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,49}$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z]{2})?$")
_AGE = re.compile(r"^(\d{1,5})\s*([dw])$")
_FIELD_KEY = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
_NONE = "none"
NEVER = "never"

# The RFM segment names, straight from the function that assigns them.
RFM_SEGMENTS = tuple(sorted({rfm.segment(r, f, m) for r, f, m in itertools.product(range(1, 6), repeat=3)}))
# Churn risk bands, as the customer card shows them: [low, high) per band.
CHURN_BANDS = {"low": (0.0, 0.3), "medium": (0.3, 0.6), "high": (0.6, None)}
_OPEN_STATUSES = tuple(s for s in TicketStatus if s.is_open)


class FilterError(ValidationError):
    """A filter that cannot be parsed or compiled; ``term`` and ``position`` (1-based) point at it."""

    def __init__(self, term: str, position: int | None, problem: str):
        if position:
            message = _('"{term}" (character {position}): {problem}', term=term, position=position, problem=problem)
        else:
            message = _('"{term}": {problem}', term=term, problem=problem)
        super().__init__(message, field="filter")
        self.term = term
        self.position = position
        self.problem = problem


@dataclass(frozen=True)
class Term:
    """One ``key op value[,value…]`` of a filter, with its values already typed.

    ``values`` holds: tag, country, language, rfm: canonical strings (country/language may be
    None for ``none``); owner: ``"me"``, None (``none``) or the reference as typed; field.*: the
    text as typed (typed against the field's definition when compiled); last_order: ``"never"``,
    a ``timedelta`` (an age) or a ``date``; orders: int; ltv: int cents; open_ticket: bool;
    churn: float or a band name.
    """

    key: str
    op: str
    values: tuple[Any, ...]
    # The term as typed and where it starts in the filter (1-based), for error messages.
    text: str
    position: int

    @property
    def field_key(self) -> str | None:
        return self.key.split(".", 1)[1] if self.key.startswith("field.") else None


@dataclass(frozen=True)
class Filter:
    """A parsed filter: the terms in the order typed. No terms means every customer."""

    terms: tuple[Term, ...] = ()

    def replace_me(self, reference: str) -> Filter:
        """The same filter with ``owner=me`` written as ``owner=<reference>`` (a name or ``#id``),
        so a saved segment means the same customers whoever later runs it."""
        terms = tuple(
            replace(t, values=tuple(reference if v == "me" else v for v in t.values)) if t.key == "owner" else t
            for t in self.terms
        )
        return Filter(terms)


# Parsing


@dataclass(frozen=True)
class _Raw:
    """A value as typed: its text and whether it was quoted."""

    text: str
    quoted: bool


def _quote_end(text: str, start: int) -> int:
    """The index of the quote closing the one at ``start``, or -1."""
    closing = _QUOTES[text[start]]
    candidates = [text.find(closing, start + 1)]
    # A typographic opener closed by a straight quote happens on phones.
    if text[start] not in ('"', "'"):
        candidates.append(text.find('"', start + 1))
    found = [c for c in candidates if c != -1]
    return min(found) if found else -1


def _read_values(text: str, i: int, term_start: int, lists: bool) -> tuple[list[_Raw], int]:
    """The value(s) starting at ``i``: comma-separated (when ``lists``), each maybe quoted."""
    values: list[_Raw] = []
    n = len(text)
    while True:
        if i < n and text[i] in _QUOTES:
            end = _quote_end(text, i)
            if end == -1:
                raise FilterError(
                    text[term_start:].split()[0],
                    term_start + 1,
                    _("the quote at character {position} is never closed", position=i + 1),
                )
            values.append(_Raw(text[i + 1 : end], True))
            i = end + 1
            if i < n and not text[i].isspace() and not (lists and text[i] == ","):
                stop = i
                while stop < n and not text[stop].isspace():
                    stop += 1
                raise FilterError(
                    text[term_start:stop],
                    term_start + 1,
                    _("put a space after the closing quote before the next term"),
                )
        else:
            start = i
            while i < n and not text[i].isspace() and not (lists and text[i] == ","):
                i += 1
            values.append(_Raw(text[start:i], False))
        if lists and i < n and text[i] == ",":
            i += 1
            continue
        return values, i


def _tokens(text: str) -> Iterable[tuple[str, str, list[_Raw], str, int]]:
    """(key, op, values, term text, 1-based position) for each term of ``text``."""
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        while i < n and _KEY_CHARS.match(text[i]):
            i += 1
        key = text[start:i].lower()
        j = i
        while j < n and text[j].isspace():
            j += 1
        op = next((o for o in OPERATORS if text.startswith(o, j)), None)
        if not key or op is None:
            stop = i if key else start
            while stop < n and not text[stop].isspace():
                stop += 1
            word = text[start:stop]
            if word.lower() == "all":
                raise FilterError(
                    word, start + 1, _("all means every customer and stands alone; leave it out to combine terms")
                )
            if key and key not in _KEYS and not key.startswith("field."):
                raise _unknown_key(word, start + 1, key)
            raise FilterError(
                word,
                start + 1,
                _(
                    "a term is key, operator and value, e.g. country=DE or ltv>=1000 (operators: {operators})",
                    operators=" ".join(_ALL_OPS),
                ),
            )
        spaced = j > i
        j += len(op)
        # "ltv >= 1000" is one term; "tag= country=DE" is an empty tag, not tag "country=DE".
        while spaced and j < n and text[j].isspace():
            j += 1
        lists = key in _LIST_KEYS or key.startswith("field.")
        values, i = _read_values(text, j, start, lists)
        yield key, op, values, text[start:i], start + 1


def _unknown_key(term: str, position: int, key: str) -> FilterError:
    keys = [*_KEYS, "field.<key>"]
    close = difflib.get_close_matches(key, list(_KEYS), n=1)
    if close:
        problem = _(
            "unknown key {key} (did you mean {close}? keys: {keys})", key=key, close=close[0], keys=", ".join(keys)
        )
    else:
        problem = _("unknown key {key} (keys: {keys})", key=key, keys=", ".join(keys))
    return FilterError(term, position, problem)


def parse(text: str | None) -> Filter:
    """The filter ``text`` as terms; raises ``FilterError`` (a ``ValidationError``) at the first bad term."""
    text = (text or "").strip()
    if len(text) > MAX_LENGTH:
        raise ValidationError(too_long(), field="filter")
    if not text or text.lower() == "all":
        return Filter()
    terms = []
    for key, op, raw_values, term, position in _tokens(text):
        if key.startswith("field."):
            spec = _FIELD
            if not _FIELD_KEY.match(key[6:]):
                raise FilterError(
                    term, position, _("field. is followed by a custom field key, e.g. field.industry=retail")
                )
        elif key in _KEYS:
            spec = _KEYS[key]
        else:
            raise _unknown_key(term, position, key)
        if op not in spec.ops:
            if len(spec.ops) == 1:
                problem = _("{key} takes {op}, e.g. {example}", key=key, op=spec.ops[0], example=_(spec.example))
            else:
                problem = _(
                    "{key} takes {ops} or {last}, e.g. {example}",
                    key=key,
                    ops=", ".join(spec.ops[:-1]),
                    last=spec.ops[-1],
                    example=_(spec.example),
                )
            raise FilterError(term, position, problem)
        if len(raw_values) > 1 and op not in _EQUALITY:
            raise FilterError(
                term,
                position,
                _("a list of values needs = or !=; {op} takes one, e.g. {example}", op=op, example=_(spec.example)),
            )
        values = []
        for raw in raw_values:
            if not raw.text.strip():
                raise FilterError(
                    term, position, _("{key} needs a value, e.g. {example}", key=key, example=_(spec.example))
                )
            try:
                values.append(spec.parse(raw.text.strip(), op))
            except ValueError as exc:
                raise FilterError(
                    term, position, _("{problem}, e.g. {example}", problem=exc, example=_(spec.example))
                ) from None
        terms.append(Term(key, op, tuple(values), term, position))
    return Filter(tuple(terms))


def too_long() -> str:
    return _("the filter is longer than {limit} characters", limit=MAX_LENGTH)


def _parse_tag(value: str, _op: str) -> str:
    tag = value.lower().lstrip("#")
    if not _TAG.match(tag):
        raise ValueError(_("a tag is letters, digits, - and _"))
    return tag


def _parse_country(value: str, _op: str) -> str | None:
    if value.lower() == _NONE:
        return None
    if not _COUNTRY.match(value):
        raise ValueError(_("country takes a two-letter ISO code or none"))
    return value.upper()


def _parse_language(value: str, _op: str) -> str | None:
    lowered = value.lower()
    if lowered == _NONE:
        return None
    if not _LANGUAGE.match(lowered):
        raise ValueError(_("language takes a code such as en, de, zh or en-gb, or none"))
    return lowered


def _parse_owner(value: str, _op: str) -> str | None:
    lowered = value.lower()
    if lowered == _NONE:
        return None
    return "me" if lowered == "me" else value


def _parse_last_order(value: str, op: str) -> str | timedelta | date:
    lowered = value.lower()
    if lowered == NEVER:
        if op not in _EQUALITY:
            raise ValueError(_("never goes with = or !="))
        return NEVER
    if age := _AGE.match(lowered):
        if op in _EQUALITY:
            raise ValueError(_("an age goes with < or > (less or more than that long ago)"))
        number, unit = int(age.group(1)), age.group(2)
        return timedelta(days=number * (7 if unit == "w" else 1))
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValueError(
            _("last_order takes an age in days or weeks (90d, 12w), a date (2026-01-31) or never")
        ) from None
    if op == "!=":
        raise ValueError(_("a date goes with = < <= > >="))
    return day


def _parse_orders(value: str, _op: str) -> int:
    if not re.fullmatch(r"\d{1,9}", value):
        raise ValueError(_("orders takes a whole number"))
    return int(value)


def _parse_ltv(value: str, _op: str) -> int:
    negative = value.startswith("-")
    try:
        cents, currency = parse_amount(value[1:] if negative else value, field="filter")
    except ValidationError:
        raise ValueError(_("ltv takes an amount")) from None
    if currency:
        raise ValueError(_("ltv takes an amount without a currency"))
    return -cents if negative else cents


def _parse_yes_no(value: str, _op: str) -> bool:
    lowered = value.lower()
    if lowered in ("yes", "true", "1"):
        return True
    if lowered in ("no", "false", "0"):
        return False
    raise ValueError(_("open_ticket takes yes or no"))


def _parse_rfm(value: str, _op: str) -> str:
    name = re.sub(r"[\s_\-]+", " ", value.lower()).strip()
    if name not in RFM_SEGMENTS:
        raise ValueError(
            _(
                "unknown RFM segment {value} (segments: {segments})",
                value=value,
                segments=", ".join(_rfm_word(s) for s in RFM_SEGMENTS),
            )
        )
    return name


def _parse_churn(value: str, op: str) -> float | str:
    lowered = value.lower()
    if lowered in CHURN_BANDS:
        if op not in _EQUALITY:
            raise ValueError(_("a churn band goes with = or !="))
        return lowered
    if op in _EQUALITY:
        raise ValueError(
            _("churn takes < <= > >= with a risk, or = with a band ({bands})", bands=", ".join(CHURN_BANDS))
        )
    percent = lowered.endswith("%")
    try:
        number = float(Decimal(lowered.rstrip("%")))
    except ArithmeticError:
        raise ValueError(_("churn takes a risk from 0 to 1 or a percentage")) from None
    number = number / 100 if percent else number
    if not 0 <= number <= 1:
        raise ValueError(_("churn risk is between 0 and 1 (or 0% and 100%)"))
    return number


def _parse_field(value: str, _op: str) -> str:
    return value


@dataclass(frozen=True)
class _Key:
    ops: tuple[str, ...]
    parse: Callable[[str, str], Any]
    example: str


_KEYS: dict[str, _Key] = {
    "tag": _Key(_EQUALITY, _parse_tag, "tag=vip"),
    "country": _Key(_EQUALITY, _parse_country, "country=DE"),
    "language": _Key(_EQUALITY, _parse_language, "language=en"),
    "owner": _Key(_EQUALITY, _parse_owner, N_('owner=me or owner="Maria Schmidt"')),
    "last_order": _Key(_ALL_OPS, _parse_last_order, N_("last_order<90d, last_order>=2026-01-01 or last_order=never")),
    "orders": _Key(_ALL_OPS, _parse_orders, "orders>=3"),
    "ltv": _Key(_ALL_OPS, _parse_ltv, N_("ltv>=1000 or ltv<250.50")),
    "open_ticket": _Key(("=",), _parse_yes_no, "open_ticket=yes"),
    "rfm": _Key(_EQUALITY, _parse_rfm, "rfm=champions"),
    "churn": _Key(_ALL_OPS, _parse_churn, N_("churn>=0.5 or churn=high")),
}
_FIELD = _Key(_ALL_OPS, _parse_field, N_("field.industry=retail or field.employees>=50"))
# Keys whose values may be a comma list; ltv is not (1,000.50 is one amount).
_LIST_KEYS = {"tag", "country", "language", "owner", "last_order", "orders", "rfm", "churn"}
# Keys whose "=" repeats compile to one clause over all their values (one EXISTS ... IN, one IN);
# owner and field.* are compiled per term so a bad name or value is reported in its own term.
_MERGED_KEYS = _LIST_KEYS - {"owner"}


# Describing


def _rfm_word(name: str) -> str:
    return name.replace(" ", "_")


def _quote(value: str) -> str:
    if value and not re.search(r"[\s,\"'“”„‘’«»]", value):
        return value
    return f"'{value}'" if '"' in value else f'"{value}"'


def _format_value(key: str, value: Any) -> str:
    if value is None:
        return _NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, timedelta):
        return f"{value.days}d"
    if isinstance(value, date):
        return value.isoformat()
    if key == "ltv":
        sign, cents = ("-" if value < 0 else ""), abs(value)
        return f"{sign}{cents // 100}" + (f".{cents % 100:02d}" if cents % 100 else "")
    if key == "rfm":
        return _rfm_word(value)
    if isinstance(value, float):
        return f"{value:g}"
    return _quote(str(value))


def describe(parsed: Filter) -> str:
    """The filter as normalised text (keys lower-case, values canonical); parses back to itself."""
    if not parsed.terms:
        return "all"
    return " ".join(f"{t.key}{t.op}{','.join(_format_value(t.key, v) for v in t.values)}" for t in parsed.terms)


# Compiling


def _column_in(column: sa.SQLColumnExpression[Any], values: Iterable[Any]) -> sa.ColumnElement[bool]:
    """``column`` is one of ``values``, where None means NULL."""
    values = list(values)
    known = [v for v in values if v is not None]
    clauses = []
    if known:
        clauses.append(column == known[0] if len(known) == 1 else column.in_(known))
    if len(known) < len(values):
        clauses.append(column.is_(None))
    return sa.or_(*clauses)


def _not_in(column: sa.SQLColumnExpression[Any], values: Iterable[Any]) -> sa.ColumnElement[bool]:
    """``column`` is none of ``values``; NULL counts as "not any of them" unless None is listed."""
    values = list(values)
    known = [v for v in values if v is not None]
    clause = sa.not_(column.in_(known)) if known else sa.true()
    if None in values:
        return sa.and_(column.is_not(None), clause)
    return sa.or_(column.is_(None), clause)


def _exists(*where: sa.ColumnElement[bool]) -> sa.Exists:
    return sa.exists().where(*where)


def _compare(column: sa.SQLColumnExpression[Any], op: str, values: tuple[Any, ...]) -> sa.ColumnElement[bool]:
    if op == "=":
        return _column_in(column, values)
    if op == "!=":
        return _not_in(column, values)
    return _COMPARE[op](column, values[0])


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _last_order(term_op: str, value: Any, now: datetime) -> sa.ColumnElement[bool]:
    column = Customer.last_order_at
    if value == NEVER:
        return column.is_(None) if term_op == "=" else column.is_not(None)
    if isinstance(value, timedelta):
        # An age: "<90d" (less than 90 days ago) is a last order after now - 90 days.
        mirrored = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[term_op]
        return _COMPARE[mirrored](column, now - value)
    start, end = _day_start(value), _day_start(value + timedelta(days=1))
    return {
        "=": sa.and_(column >= start, column < end),
        ">=": column >= start,
        ">": column >= end,
        "<": column < start,
        "<=": column < end,
    }[term_op]


def _churn_band(band: str) -> sa.ColumnElement[bool]:
    low, high = CHURN_BANDS[band]
    clause = CustomerScore.churn_risk >= low
    return clause if high is None else sa.and_(clause, CustomerScore.churn_risk < high)


class _Compiler:
    def __init__(self, session: Session, caller_user_id: int | None, now: datetime):
        self.session = session
        self.caller_user_id = caller_user_id
        self.now = now
        self._users: list[tuple[int, str]] | None = None
        self._fields: dict[str, CustomFieldDefinition] | None = None

    def term(self, term: Term, values: tuple[Any, ...]) -> sa.ColumnElement[bool]:
        """The clause of ``term`` over ``values`` (the values of every ``=`` repeat of its key)."""
        key, op = term.key, term.op
        if key == "tag":
            found = _exists(CustomerTag.customer_id == Customer.id, _column_in(CustomerTag.tag, values))
            return found if op == "=" else ~found
        if key == "country":
            return _compare(Customer.country, op, values)
        if key == "language":
            return self._language(op, values)
        if key == "owner":
            return _compare(Customer.owner_id, op, tuple(self._owner_id(term, v) for v in values))
        if key == "last_order":
            return (
                sa.or_(*(_last_order(op, v, self.now) for v in values))
                if op == "="
                else sa.and_(*(_last_order(op, v, self.now) for v in values))
            )
        if key == "orders":
            return _compare(Customer.order_count, op, values)
        if key == "ltv":
            return _compare(Customer.lifetime_value_cents, op, values)
        if key == "open_ticket":
            found = _exists(Ticket.customer_id == Customer.id, Ticket.status.in_(_OPEN_STATUSES))
            wanted = set(values)
            return sa.true() if len(wanted) == 2 else found if True in wanted else ~found
        if key == "rfm":
            found = _exists(CustomerScore.customer_id == Customer.id, _column_in(CustomerScore.rfm_segment, values))
            return found if op == "=" else ~found
        if key == "churn":
            return self._churn(op, values)
        return self._field(term, values)

    def _language(self, op: str, values: tuple[Any, ...]) -> sa.ColumnElement[bool]:
        column = Customer.language
        clauses = [column.is_(None) if v is None else sa.or_(column == v, column.like(f"{v}-%")) for v in values]
        matched = sa.or_(*clauses)
        if op == "=":
            return matched
        return sa.not_(matched) if None in values else sa.or_(column.is_(None), sa.not_(matched))

    def _churn(self, op: str, values: tuple[Any, ...]) -> sa.ColumnElement[bool]:
        if op in _EQUALITY:
            found = _exists(CustomerScore.customer_id == Customer.id, sa.or_(*(_churn_band(b) for b in values)))
            return found if op == "=" else ~found
        return _exists(CustomerScore.customer_id == Customer.id, _COMPARE[op](CustomerScore.churn_risk, values[0]))

    def _owner_id(self, term: Term, reference: str | None) -> int | None:
        if reference is None:
            return None
        if reference == "me":
            if self.caller_user_id is None:
                raise FilterError(term.text, term.position, _("me needs to know who you are; name the owner instead"))
            return self.caller_user_id
        if self._users is None:
            # Staff are few: matched in Python, so names compare case-insensitively in any alphabet.
            self._users = [(uid, name) for uid, name in self.session.execute(sa.select(User.id, User.name))]
        if match := re.fullmatch(r"#(\d+)", reference):
            if any(uid == int(match.group(1)) for uid, _name in self._users):
                return int(match.group(1))
            raise FilterError(term.text, term.position, _("there is no user #{id}", id=match.group(1)))
        wanted = reference.casefold()
        exact = [uid for uid, name in self._users if name.casefold() == wanted]
        if len(exact) == 1:
            return exact[0]
        if exact:
            raise FilterError(
                term.text,
                term.position,
                _(
                    "several users are called {name}; use owner=#id ({ids})",
                    name=reference,
                    ids=", ".join(f"#{u}" for u in exact),
                ),
            )
        similar = [
            name
            for _uid, name in self._users
            if name.casefold().startswith(wanted) or any(word.startswith(wanted) for word in name.casefold().split())
        ]
        similar = similar or difflib.get_close_matches(reference, [name for _uid, name in self._users], n=3)
        if similar:
            problem = _(
                "no user is called {name}; did you mean {names}? (or use owner=me / owner=none)",
                name=reference,
                names=_(" or ").join(_quote(n) for n in similar[:3]),
            )
        else:
            problem = _("no user is called {name} (or use owner=me / owner=none)", name=reference)
        raise FilterError(term.text, term.position, problem)

    def _definition(self, term: Term) -> CustomFieldDefinition:
        if self._fields is None:
            self._fields = {
                d.key: d
                for d in self.session.scalars(
                    sa.select(CustomFieldDefinition)
                    .where(CustomFieldDefinition.entity == FieldEntity.CUSTOMER)
                    .order_by(CustomFieldDefinition.key)
                )
            }
        key = term.field_key or ""
        if key not in self._fields:
            known = ", ".join(f"field.{k}" for k in self._fields) or _("none defined")
            raise FilterError(
                term.text,
                term.position,
                _("customers have no custom field {key} (fields: {known})", key=key, known=known),
            )
        return self._fields[key]

    def _field(self, term: Term, raw_values: tuple[Any, ...]) -> sa.ColumnElement[bool]:
        definition = self._definition(term)
        op = term.op
        if definition.personal:
            raise FilterError(
                term.text,
                term.position,
                _("field.{key} is personal: it is stored encrypted and cannot be filtered on", key=definition.key),
            )
        if op in _ORDERING and definition.type not in (FieldType.NUMBER, FieldType.DATE):
            raise FilterError(
                term.text,
                term.position,
                _("field.{key} is a {type} field: use = or !=", key=definition.key, type=definition.type),
            )
        try:
            values = [custom_fields.parse_value(definition, str(v)) for v in raw_values]
        except ValidationError as exc:
            raise FilterError(term.text, term.position, exc.message) from None
        if definition.type is FieldType.NUMBER:
            column: sa.SQLColumnExpression[Any] = CustomFieldValue.value_number
        elif definition.type is FieldType.DATE:
            column = CustomFieldValue.value_date
        elif definition.type is FieldType.TEXT:
            column, values = sa.func.lower(CustomFieldValue.value_text), [str(v).lower() for v in values]
        else:
            column = CustomFieldValue.value_text
        condition = _column_in(column, values) if op in _EQUALITY else _COMPARE[op](column, values[0])
        found = _exists(
            CustomFieldValue.definition_id == definition.id, CustomFieldValue.entity_id == Customer.id, condition
        )
        return ~found if op == "!=" else found


def compile_filter(
    session: Session, parsed: Filter, *, caller_user_id: int | None = None, now: datetime | None = None
) -> sa.ColumnElement[bool]:
    """A WHERE clause over ``Customer`` for ``parsed``.

    Checks what needs the database (owner names, custom field keys and values) and raises
    ``FilterError`` for a bad reference. ``owner=me`` is ``caller_user_id``; relative ages count
    back from ``now`` (default: ``clock.utcnow()``).
    """
    compiler = _Compiler(session, caller_user_id, now or clock.utcnow())
    clauses: list[sa.ColumnElement[bool]] = []
    # Repeats of a key with "=" are OR-ed: their values go into one clause, at the first one's place.
    equal_groups: dict[str, list[Any]] = {}
    order: list[Term | str] = []
    for term in parsed.terms:
        if term.op == "=":
            if term.key not in equal_groups:
                equal_groups[term.key] = []
                order.append(term.key)
            equal_groups[term.key].append(term)
        else:
            order.append(term)
    for entry in order:
        if isinstance(entry, Term):
            clauses.append(compiler.term(entry, entry.values))
        else:
            group = equal_groups[entry]
            if entry in _MERGED_KEYS:
                clauses.append(compiler.term(group[0], tuple(v for t in group for v in t.values)))
            else:
                clauses.append(sa.or_(*(compiler.term(t, t.values) for t in group)))
    return sa.and_(sa.true(), *clauses)
