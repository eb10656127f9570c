"""Customer search: by id, email, phone or name, ranked, on each database's own text index.

Emails and phone numbers are encrypted at rest, so they are found through their blind indexes
(crm_core.contacts): the whole email, the whole number (its last 9 digits), and the last 6+ digits
of a number whatever its stored format (the blind index of its last 6 digits finds the candidates,
the digits before those are checked on the decrypted numbers). Also by email domain (``@acme.com``:
``customers.email_domain``, kept in the clear, a prefix of it too) and by company name (a prefix of
``companies.search_name``), each on a B-tree.

Name search is case- and accent-insensitive, matches prefixes of the name or of any word in it,
and tolerates one typo per word. It runs in stages, best kind of match first, and stops as soon
as it has enough results, so a common prefix never scans the table:

1. exact normalised name          (B-tree index on ``customers.search_name``)
2. the name starts with the query (SQLite FTS5 ``^"..."*``; PostgreSQL ``LIKE 'q%'`` on a pattern index)
3. a word in the name starts with the query (FTS5 phrase prefix; PostgreSQL pg_trgm GIN index)
4. the company's name starts with the query (its people, after the names that match)
5. one typo per word (FTS5 / a GIN array index over the SymSpell deletion keys of crm_core.text),
   verified with an edit distance before it is reported.

On PostgreSQL stages 1 and 2 are one query (an exact name is the shortest name with the prefix,
so it comes first in the prefix's order): a round trip less for every name looked up.

Chinese (and Japanese) names have no spaces: "阿克米科技有限公司" is one word to the stages above, so
"阿克米" finds it as a prefix but "科技" would not. For queries with CJK characters two more stages
use the character pairs crm_core.text.cjk_grams puts into ``search_keys`` (the same FTS5 / GIN
index as the typo keys): after the word prefixes, names holding the query anywhere (the AND of its
pairs, then a LIKE on those rows only; reported as a word match, since any character may start a
word); and after the typos, one wrong, missing or extra character (an OR over the character that
may be wrong of the AND of the pairs not touching it, verified with an edit distance). People are
also found by a piece of their company's name ("科技" finds the staff of 阿克米科技有限公司).
"""

from __future__ import annotations

import enum
import functools
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from crm_core import contacts, paging, text
from crm_core.models import Company, Customer

MAX_RESULTS = 10
CJK_TYPO_KEY_LENGTH = 8


class MatchKind(enum.IntEnum):
    # Higher is better; the value orders results across stages.
    TYPO = 1
    COMPANY = 2
    WORD_PREFIX = 3
    NAME_PREFIX = 4
    EXACT_NAME = 5
    EMAIL_DOMAIN = 6
    PHONE_SUFFIX = 7
    PHONE = 8
    EMAIL = 9
    ID = 10


@dataclass(frozen=True)
class SearchHit:
    customer_id: int
    name: str
    match: MatchKind
    # Edit distance for typo matches, 0 otherwise; ranks closer spellings first.
    distance: int = 0


def search_customers(session: Session, query: str, limit: int = MAX_RESULTS) -> list[SearchHit]:
    """Customers matching ``query``, best first, at most ``limit``."""
    query = query.strip()
    if not query:
        return []
    hits: dict[int, SearchHit] = {}

    def collect(found: list[SearchHit]) -> bool:
        for hit in found:
            hits.setdefault(hit.customer_id, hit)
        return len(hits) >= limit

    id_match = re.fullmatch(r"(#?)(\d{1,9})", query)
    if id_match:
        collect(_by_id(session, int(id_match.group(2))))
        # "#12" means the id; a bare "12" may also be part of a name ("12 Monkeys").
        if id_match.group(1) and hits:
            return _ranked(hits, limit)
    if query.startswith("@"):
        # "@acme.com" (or "@acme"): everyone whose email is at that domain, and nothing else.
        collect(_by_email_domain(session, query, limit))
        return _ranked(hits, limit)
    if "@" in query:
        collect(_by_email(session, query, limit))
    elif text.looks_like_phone(query):
        collect(_by_phone(session, query, limit))
    normalized = text.normalize(query)
    if normalized:
        stages = _sqlite_stages if _is_sqlite(session) else _postgres_stages
        for stage in stages:
            exact_found = any(hit.match >= MatchKind.EXACT_NAME for hit in hits.values())
            # An exact match (email, phone, full name) outranks anything a looser stage could add.
            if exact_found or collect(stage(session, normalized, limit, exclude=set(hits))):
                break
    return _ranked(hits, limit)


def search_page(session: Session, query: str, number: int = 1, size: int = MAX_RESULTS) -> paging.Page[SearchHit]:
    """Page ``number`` of ``search_customers``, and how many customers match in all.

    The staged search reads only as far as this page (and one more hit, to know there is more).
    The total is counted only when there is more than this page: the matches of the best kind
    found (id, email, email domain or phone; else the exact name; else a word of the name starting
    with the query; else the people of companies whose name starts with it), which is what the
    search pages through; looser matches come after those, and are counted once the last page
    shows them.
    """
    number = max(1, number)
    start = paging.offset(number, size)
    hits = search_customers(session, query, limit=start + size + 1)
    items = hits[start : start + size]
    if len(hits) <= start + size:
        return paging.Page(items, number, size, len(hits))
    return paging.Page(items, number, size, max(_count_matches(session, query), start + size + 1))


def _count_matches(session: Session, query: str) -> int:
    def count(where: sa.ColumnElement[bool], params: dict[str, Any] | None = None) -> int:
        # ``params``: the values of a stage's condition (``_stage_where``), bound at execution.
        return session.scalar(sa.select(sa.func.count()).select_from(Customer).where(where), params) or 0

    query = query.strip()
    sqlite = _is_sqlite(session)
    if query.startswith("@"):
        return count(_email_domain_where(query, sqlite))
    exact: list[sa.ColumnElement[bool]] = []
    if id_match := re.fullmatch(r"#?(\d{1,9})", query):
        exact.append(Customer.id == int(id_match.group(1)))
    if "@" in query:
        exact.append(contacts.email_is(session, query))
    elif text.looks_like_phone(query) and text.phone_key(query):
        # The numbers ending in the digits are checked on their decrypted values: counted by id.
        ids = [row.id for row in _phone_suffix_rows(session, query, None, set())]
        exact.append(sa.or_(contacts.phone_is(session, query), Customer.id.in_(ids)))
    normalized = text.normalize(query)
    if normalized:
        exact.append(Customer.search_name == normalized)
    found = count(sa.or_(*exact)) if exact else 0
    if found or not normalized:
        return found
    if _cjk_substring_runs(normalized):
        # A CJK piece anywhere in the name: this includes the names that start with it.
        found = count(_cjk_substring_where(normalized, sqlite))
    elif sqlite:
        found = count(_sqlite_word_prefix_where(normalized))
    else:
        found = count(_stage_where("pg_word_prefix"), _pg_word_prefix_params(normalized))
    stage, params = _company_stage(normalized, sqlite)
    return found or count(_stage_where(stage, sqlite), params)


def _ranked(hits: dict[int, SearchHit], limit: int) -> list[SearchHit]:
    ordered = sorted(hits.values(), key=lambda h: (-h.match, h.distance, len(h.name), h.name.casefold(), h.customer_id))
    return ordered[:limit]


def _rows_to_hits(rows, match: MatchKind) -> list[SearchHit]:
    return [SearchHit(row.id, row.name, match) for row in rows]


def _by_id(session: Session, customer_id: int) -> list[SearchHit]:
    rows = session.execute(sa.select(Customer.id, Customer.name).where(Customer.id == customer_id)).all()
    return _rows_to_hits(rows, MatchKind.ID)


def _by_email(session: Session, query: str, limit: int) -> list[SearchHit]:
    where = contacts.email_is(session, query)
    rows = session.execute(sa.select(Customer.id, Customer.name).where(where).limit(limit)).all()
    return _rows_to_hits(rows, MatchKind.EMAIL)


def _by_phone(session: Session, query: str, limit: int) -> list[SearchHit]:
    """The whole number (its last 9 digits), then numbers ending in the digits typed (6 or more)."""
    where = contacts.phone_is(session, query)
    rows = session.execute(sa.select(Customer.id, Customer.name).where(where).limit(limit)).all()
    hits = _rows_to_hits(rows, MatchKind.PHONE)
    if len(hits) < limit:
        found = {hit.customer_id for hit in hits}
        suffix = _phone_suffix_rows(session, query, limit - len(hits), found)
        hits += _rows_to_hits(suffix, MatchKind.PHONE_SUFFIX)
    return hits


def _phone_suffix_rows(session: Session, query: str, limit: int | None, exclude: set[int]) -> list[Any]:
    """Customers whose number ends in the digits of ``query`` (6 or more), in the order of
    ``_candidates``: the blind index of the last 6 digits finds them, the decrypted numbers are
    checked for the digits before those (numbers sharing 6 last digits are few)."""
    statement = (
        sa.select(Customer.id, Customer.name, Customer.search_name, Customer.phone)
        .where(contacts.phone_tail_is(session, query))
        .order_by(sa.func.length(Customer.search_name), Customer.search_name, Customer.id)
    )
    rows = [row for row in session.execute(statement) if row.id not in exclude and contacts.ends_with(row.phone, query)]
    return rows if limit is None else rows[:limit]


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _starts_with(column: sa.SQLColumnExpression[Any], prefix: str, sqlite: bool) -> sa.ColumnElement[bool]:
    """``column`` starts with ``prefix``, as a range a B-tree index can seek on either database.

    SQLite compares with BINARY collation, so [prefix, prefix with its last character raised) is
    exactly the strings starting with it; PostgreSQL seeks LIKE 'prefix%' on its text_pattern_ops
    index (a plain range would follow the database's collation).
    """
    if sqlite:
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return sa.and_(column >= prefix, column < upper)
    return column.like(text.like_escape(prefix) + "%", escape="\\")


def _email_domain_where(query: str, sqlite: bool) -> sa.ColumnElement[bool]:
    domain = query.strip().lstrip("@").strip().lower()
    if not domain:
        return sa.false()
    # "@acme.com" is that domain; "@acme" any domain starting with it (acme.com, acme.de).
    return Customer.email_domain == domain if "." in domain else _starts_with(Customer.email_domain, domain, sqlite)


def _by_email_domain(session: Session, query: str, limit: int) -> list[SearchHit]:
    where = _email_domain_where(query, _is_sqlite(session))
    return _rows_to_hits(_candidates(session, where, limit, set()), MatchKind.EMAIL_DOMAIN)


def _company_stage(normalized: str, sqlite: bool) -> tuple[str, dict[str, Any]]:
    """The company stage's shape and values: a prefix of the company's name, or, for a CJK query, a
    piece of it ("科技": a scan of the companies, a tenth of the customers, measured in
    benchmarks/bench_search.py; Latin queries keep the prefix seek)."""
    if _cjk_substring_runs(normalized):
        return "company_anywhere", {"pattern": "%" + text.like_escape(normalized) + "%"}
    if sqlite:
        return "company", {"lower": normalized, "upper": normalized[:-1] + chr(ord(normalized[-1]) + 1)}
    return "company", {"pattern": text.like_escape(normalized) + "%"}


def _company(session: Session, normalized: str, limit: int, exclude: set[int]) -> list[SearchHit]:
    """People whose company's name starts with the query (after those whose own name matches)."""
    sqlite = _is_sqlite(session)
    stage, params = _company_stage(normalized, sqlite)
    rows = _run_candidates(session, _stage_statement(stage, sqlite), params, limit, exclude)
    return _rows_to_hits(rows, MatchKind.COMPANY)


def _candidates(session: Session, where, limit: int, exclude: set[int]):
    statement = (
        sa.select(Customer.id, Customer.name, Customer.search_name)
        .where(where)
        .order_by(sa.func.length(Customer.search_name), Customer.search_name, Customer.id)
        .limit(limit + len(exclude))
    )
    return [row for row in session.execute(statement) if row.id not in exclude]


def _candidates_of(where: sa.ColumnElement[bool]) -> sa.Select[int, str, str]:
    """``_candidates``'s SELECT for a ``where`` of bind parameters, its limit one too (``:limit``)."""
    return (
        sa.select(Customer.id, Customer.name, Customer.search_name)
        .where(where)
        .order_by(sa.func.length(Customer.search_name), Customer.search_name, Customer.id)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


def _run_candidates(
    session: Session, statement: sa.Select[int, str, str], params: dict[str, Any], limit: int, exclude: set[int]
):
    """``_candidates`` with a statement built once (``_stage_statement``): building a SELECT and its
    cache key costs about as much Python time as running it, and every ``/customer`` runs up to five."""
    rows = session.execute(statement, {**params, "limit": limit + len(exclude)})
    return [row for row in rows if row.id not in exclude]


@functools.cache
def _stage_statement(stage: str, sqlite: bool = False, words: int = 0) -> sa.Select[int, str, str]:
    """The SELECT of a name stage, with its values as bind parameters (see ``_run_candidates``)."""
    return _candidates_of(_stage_where(stage, sqlite, words))


@functools.cache
def _stage_where(stage: str, sqlite: bool = False, words: int = 0) -> sa.ColumnElement[bool]:
    """The condition of a name stage, its values as bind parameters given at execution: the stage's
    SELECT, and what ``_count_matches`` counts. ``words``: how many words the typo stage looks up
    (one array of deletion keys each)."""
    name = Customer.search_name
    if stage == "exact":
        where = name == sa.bindparam("name", type_=sa.String)
    elif stage == "company":
        # A prefix: a range on SQLite's B-tree, LIKE 'q%' on PostgreSQL's pattern index.
        if sqlite:
            company = sa.and_(
                Company.search_name >= sa.bindparam("lower", type_=sa.String),
                Company.search_name < sa.bindparam("upper", type_=sa.String),
            )
        else:
            company = Company.search_name.like(sa.bindparam("pattern", type_=sa.String), escape="\\")
        where = Customer.company_id.in_(sa.select(Company.id).where(company).scalar_subquery())
    elif stage == "company_anywhere":
        pattern = sa.bindparam("pattern", type_=sa.String)
        where = Customer.company_id.in_(
            sa.select(Company.id).where(Company.search_name.like(pattern, escape="\\")).scalar_subquery()
        )
    elif stage == "fts":
        where = _fts_where_param()
    elif stage == "pg_name_prefix":
        where = name.like(sa.bindparam("pattern", type_=sa.String), escape="\\")
    elif stage == "pg_word_prefix":
        where = sa.and_(
            name.like(sa.bindparam("anywhere", type_=sa.String), escape="\\"),
            (sa.literal(" ") + name).like(sa.bindparam("word_start", type_=sa.String), escape="\\"),
        )
    elif stage == "pg_typo":
        key_array = sa.func.string_to_array(Customer.search_keys, " ")
        keys = postgresql.ARRAY(sa.Text)
        where = sa.and_(
            *(key_array.op("&&")(sa.cast(sa.bindparam(f"keys{n}", type_=keys), keys)) for n in range(words))
        )
    else:
        raise ValueError(f"no search stage {stage!r}")
    return where


def _exact(session: Session, normalized: str, limit: int, exclude: set[int]) -> list[SearchHit]:
    rows = _run_candidates(session, _stage_statement("exact"), {"name": normalized}, limit, exclude)
    return _rows_to_hits(rows, MatchKind.EXACT_NAME)


def _verify_typos(rows, normalized: str) -> list[SearchHit]:
    """Keep candidates where every query word is within one edit of (or a prefix of) a name word."""
    query_words = normalized.split()
    hits = []
    for row in rows:
        name_words = row.search_name.split()
        total = 0
        for word in query_words:
            best = (
                min(
                    (0 if name_word.startswith(word) else text.edit_distance(word, name_word, limit=1))
                    for name_word in name_words
                )
                if name_words
                else 2
            )
            if best > 1:
                break
            total += best
        else:
            hits.append(SearchHit(row.id, row.name, MatchKind.TYPO, distance=total))
    return hits


def _typo_words(normalized: str) -> list[str]:
    # Words with CJK characters are left to the CJK typo stage, which finds them anywhere in a name.
    return [w for w in normalized.split() if len(w) >= text.TYPO_MIN_LENGTH and not text.has_cjk(w)]


# --- CJK: character pairs among the search keys, on either database ---------------------------


def _cjk_substring_runs(normalized: str) -> list[str]:
    # One CJK character is too common to look up anywhere in a name; it still matches as a prefix.
    return [run for run in text.cjk_runs(normalized) if len(run) >= 2]


def _keys_where(alternatives: list[set[str]], sqlite: bool) -> sa.ColumnElement[bool]:
    """Names whose search keys hold every key of at least one of ``alternatives``."""
    if sqlite:
        # Keys are CJK characters only (no quotes, no FTS5 syntax), so quoting them is safe.
        match = " OR ".join("(" + " AND ".join(f'"{key}"' for key in sorted(keys)) + ")" for keys in alternatives)
        return _fts_where(f"search_keys : ({match})")
    key_array = sa.func.string_to_array(Customer.search_keys, " ")
    return sa.or_(*(key_array.op("@>")(sa.cast(sorted(keys), postgresql.ARRAY(sa.Text))) for keys in alternatives))


def _cjk_substring_where(normalized: str, sqlite: bool) -> sa.ColumnElement[bool]:
    keys = set().union(*(text.cjk_grams(run) for run in _cjk_substring_runs(normalized)))
    conditions = [_keys_where([keys], sqlite)]
    # The keys find the candidates; the pieces of the query, in order, must be in the name.
    for token in normalized.split():
        escaped = text.like_escape(token)
        if text.has_cjk(token):
            conditions.append(Customer.search_name.like("%" + escaped + "%", escape="\\"))
        else:
            conditions.append((sa.literal(" ") + Customer.search_name).like("% " + escaped + "%", escape="\\"))
    return sa.and_(*conditions)


def _cjk_substring(session: Session, normalized: str, limit: int, exclude: set[int]) -> list[SearchHit]:
    if not _cjk_substring_runs(normalized):
        return []
    where = _cjk_substring_where(normalized, _is_sqlite(session))
    return _rows_to_hits(_candidates(session, where, limit, exclude), MatchKind.WORD_PREFIX)


def _cjk_typo(session: Session, normalized: str, limit: int, exclude: set[int]) -> list[SearchHit]:
    """One wrong, missing or extra character in the CJK part of the query (three characters or more)."""
    runs = [run for run in text.cjk_runs(normalized) if len(run) >= text.CJK_TYPO_MIN_LENGTH]
    if not runs:
        return []
    # The longest run finds the candidates (its first characters: a name holding the run with one
    # edit holds them with at most one too, and eight are selective enough while the index query
    # stays small); every piece of the query is checked on the candidates.
    alternatives = text.cjk_typo_alternatives(max(runs, key=len)[:CJK_TYPO_KEY_LENGTH])
    rows = _candidates(session, _keys_where(alternatives, _is_sqlite(session)), limit * 5, exclude)
    hits = []
    for row in rows:
        total = 0
        for token in normalized.split():
            if text.has_cjk(token):
                distance = text.cjk_substring_distance(token, row.search_name)
            else:
                distance = 0 if any(word.startswith(token) for word in row.search_name.split()) else 2
            if distance > 1:
                break
            total += distance
        else:
            if total <= 1:
                hits.append(SearchHit(row.id, row.name, MatchKind.TYPO, distance=total))
    return hits


# --- SQLite: FTS5 ---------------------------------------------------------------------------


def _fts_phrase(normalized: str) -> str:
    # Normalised text holds only letters, digits and spaces, so quoting it is always safe.
    return '"' + normalized + '"'


def _fts_where(match: str) -> sa.ColumnElement[bool]:
    fts = sa.table("customer_fts", sa.column("rowid"))
    matched = sa.select(fts.c.rowid).where(sa.text("customer_fts MATCH :match").bindparams(match=match))
    return Customer.id.in_(matched.scalar_subquery())


def _fts_where_param() -> sa.ColumnElement[bool]:
    """``_fts_where`` with the match expression left to bind at execution (``:match``)."""
    fts = sa.table("customer_fts", sa.column("rowid"))
    matched = sa.select(fts.c.rowid).where(
        sa.text("customer_fts MATCH :match").bindparams(sa.bindparam("match", type_=sa.String))
    )
    return Customer.id.in_(matched.scalar_subquery())


def _fts_candidates(session: Session, match: str, limit: int, exclude: set[int]):
    return _run_candidates(session, _stage_statement("fts", sqlite=True), {"match": match}, limit, exclude)


def _sqlite_word_prefix_where(normalized: str) -> sa.ColumnElement[bool]:
    return _fts_where(f"search_name : {_fts_phrase(normalized)} *")


def _sqlite_name_prefix(session: Session, normalized: str, limit: int, exclude: set[int]) -> list[SearchHit]:
    rows = _fts_candidates(session, f"search_name : ^ {_fts_phrase(normalized)} *", limit, exclude)
    return _rows_to_hits(rows, MatchKind.NAME_PREFIX)


def _sqlite_word_prefix(session: Session, normalized: str, limit: int, exclude: set[int]) -> list[SearchHit]:
    rows = _fts_candidates(session, f"search_name : {_fts_phrase(normalized)} *", limit, exclude)
    return _rows_to_hits(rows, MatchKind.WORD_PREFIX)


def _sqlite_typo(session: Session, normalized: str, limit: int, exclude: set[int]) -> list[SearchHit]:
    words = _typo_words(normalized)
    if not words:
        return []
    clauses = []
    for word in words:
        keys = " OR ".join(f'"{key}"' for key in sorted(text.deletions(word)))
        clauses.append(f"search_keys : ({keys})")
    rows = _fts_candidates(session, " AND ".join(clauses), limit * 5, exclude)
    return _verify_typos(rows, normalized)


_sqlite_stages = (_exact, _sqlite_name_prefix, _sqlite_word_prefix, _cjk_substring, _company, _sqlite_typo, _cjk_typo)


# --- PostgreSQL: pattern index, pg_trgm and a GIN array index -----------------------------------


def _pg_exact_or_name_prefix(session: Session, normalized: str, limit: int, exclude: set[int]) -> list[SearchHit]:
    """The exact stage and the name-prefix stage in one round trip: the exact names, when there are
    any, else the names starting with the query. An exact name is the shortest name starting with
    the query, so the exact names come first in the prefix stage's order (length, name, id): its
    first rows are what the exact stage would have read, under the same limit."""
    params = {"pattern": text.like_escape(normalized) + "%"}
    rows = _run_candidates(session, _stage_statement("pg_name_prefix"), params, limit, exclude)
    exact = [row for row in rows if row.search_name == normalized]
    if exact:
        return _rows_to_hits(exact, MatchKind.EXACT_NAME)
    return _rows_to_hits(rows, MatchKind.NAME_PREFIX)


def _pg_word_prefix_params(normalized: str) -> dict[str, str]:
    # The first condition is what the trigram index answers; the second keeps word starts only.
    escaped = text.like_escape(normalized)
    return {"anywhere": "%" + escaped + "%", "word_start": "% " + escaped + "%"}


def _pg_word_prefix(session: Session, normalized: str, limit: int, exclude: set[int]) -> list[SearchHit]:
    params = _pg_word_prefix_params(normalized)
    rows = _run_candidates(session, _stage_statement("pg_word_prefix"), params, limit, exclude)
    return _rows_to_hits(rows, MatchKind.WORD_PREFIX)


def _pg_typo(session: Session, normalized: str, limit: int, exclude: set[int]) -> list[SearchHit]:
    words = _typo_words(normalized)
    if not words:
        return []
    # Each word's deletion keys overlap the name's keys (a GIN index answers each &&).
    params = {f"keys{n}": sorted(text.deletions(word)) for n, word in enumerate(words)}
    rows = _run_candidates(session, _stage_statement("pg_typo", words=len(words)), params, limit * 5, exclude)
    return _verify_typos(rows, normalized)


_postgres_stages = (_pg_exact_or_name_prefix, _pg_word_prefix, _cjk_substring, _company, _pg_typo, _cjk_typo)
