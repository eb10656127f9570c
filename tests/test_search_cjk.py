"""Chinese names in /customer search, on both databases, among a few thousand realistic names.

The benchmark (benchmarks/bench_search.py) times the same kinds of query at 100,000 customers;
here the data set is smaller but shaped the same way (Chinese people and registered company
names sharing brands, trades and "有限公司", next to Latin names), so a loose index condition
or a wrong ranking shows up as a wrong answer, not just as a slow one.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from crm_core import demo_zh, search, text
from crm_core.models import Company, Customer
from crm_core.search import MatchKind
from crm_core.services import customers
from tests.support import TEST_SECRET_KEY

ACME_ZH = "阿克米科技有限公司"


def _bulk_insert(app, rng: random.Random, count: int) -> None:
    """``count`` customers the way the benchmark writes them: bulk rows with text.search_columns."""
    now = datetime(2026, 11, 1, tzinfo=UTC)
    brands = [b for b in demo_zh.BRANDS if b != "阿克米"]
    with app.engine.begin() as connection:
        company_names = sorted({demo_zh.company_name(rng, rng.choice(brands)) for _ in range(count // 10)})
        connection.execute(
            sa.insert(Company),
            [{"name": n, "name_key": n.casefold(), "search_name": text.normalize(n)} for n in company_names],
        )
        company_ids = dict(connection.execute(sa.select(Company.name, Company.id)).all())
        names: set[str] = set()
        while len(names) < count:
            roll = rng.random()
            if roll < 0.4:
                names.add(demo_zh.person_name(rng) + ("" if rng.random() < 0.5 else str(rng.randint(1, 99))))
            elif roll < 0.7:
                names.add(demo_zh.company_name(rng, rng.choice(brands)))
            else:
                names.add(
                    f"{rng.choice(['Anna', 'Ben', 'Chloe', 'Wang', 'Li'])} {rng.choice(['Smith', 'Zhang', 'Müller'])} {rng.randint(1, 999)}"
                )
        rows = [
            {
                "kind": "person",
                "name": name,
                **text.search_columns(name),
                "company_id": company_ids[rng.choice(company_names)] if rng.random() < 0.6 else None,
                "created_at": now,
                "updated_at": now,
                "lifetime_value_cents": 0,
                "order_count": 0,
            }
            for name in sorted(names)
        ]
        connection.execute(sa.insert(Customer), rows)


def _seed(app) -> None:
    _bulk_insert(app, random.Random(16), 3000)
    with app.uow() as uow:
        for name in (ACME_ZH, "上海阿克米贸易有限公司", "张伟明", "欧阳晓明", "Acme Corp"):
            customers.create_customer(uow, name)
        acme_staff = Company(name=ACME_ZH, name_key=ACME_ZH, search_name=text.normalize(ACME_ZH))
        uow.session.add(acme_staff)
        uow.session.flush()
        for name in ("李娜", "赵子涵"):
            customers.create_customer(uow, name).company_id = acme_staff.id


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def app(request, tmp_path_factory, sqlite_template, pg_admin) -> Iterator:
    """One seeded database per kind for the whole module: the tests only read it."""
    from bot.bootstrap import build_app
    from bot.settings import Settings
    from tests.conftest import _temporary_pg_database

    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("cjk") / "chatcrm.db"
        shutil.copyfile(sqlite_template, path)
        urls: Iterator[str] = iter([f"sqlite:///{path}"])
    else:
        urls = _temporary_pg_database(pg_admin, "chatcrm_cjk")
    url = next(urls)
    application = build_app(Settings(database_url=url, secret_key=TEST_SECRET_KEY), migrate=True)
    try:
        _seed(application)
        yield application
    finally:
        application.close()
        next(urls, None)


def _hits(app, query, limit=10):
    with app.uow() as uow:
        return search.search_customers(uow.session, query, limit)


def _names(app, query, limit=10):
    return [hit.name for hit in _hits(app, query, limit)]


def test_the_brand_finds_the_company_first(app):
    hits = _hits(app, "阿克米")
    assert hits[0].name == ACME_ZH
    assert hits[0].match is MatchKind.NAME_PREFIX
    assert "上海阿克米贸易有限公司" in [hit.name for hit in hits]


@pytest.mark.parametrize("query", ["阿克米科技", "阿克米科技有限公司", " 阿克米科技 "])
def test_a_longer_beginning_finds_only_that_company(app, query):
    assert _names(app, query)[0] == ACME_ZH


def test_a_piece_from_the_middle_of_a_name_is_found(app):
    # "米科技" starts no word: Chinese writes none. The character pairs find it.
    hits = _hits(app, "米科技", limit=50)
    assert hits[0].name == ACME_ZH
    assert [hit.name for hit in hits if hit.match is MatchKind.WORD_PREFIX] == [ACME_ZH]
    # Then its staff (by their company's name), then names one character away ("达科技").
    assert {hit.name for hit in hits if hit.match is MatchKind.COMPANY} >= {"李娜", "赵子涵"}
    assert "欧阳晓明" in _names(app, "晓明", limit=200)


def test_the_piece_must_be_in_the_name_in_order(app):
    # Every pair of "技科" is nowhere in a name in that order; the index candidates are checked.
    assert ACME_ZH not in _names(app, "技科米")


@pytest.mark.parametrize(
    "query",
    [
        "阿克密",  # a homophone typed for the last character
        "阿可米",  # … for the middle one
        "阿克密科技",
        "阿米科技",  # a missing character
        "阿克克米科技",  # an extra one
        "阿克米科技有限公式",  # the ninth character: past the ones the index is asked for
    ],
)
def test_one_wrong_character_is_tolerated(app, query):
    hits = _hits(app, query, limit=50)
    found = {hit.name: hit for hit in hits}
    assert ACME_ZH in found
    assert found[ACME_ZH].match is MatchKind.TYPO
    assert found[ACME_ZH].distance == 1


def test_two_wrong_characters_are_not_a_match(app):
    assert ACME_ZH not in _names(app, "阿可密科技", limit=50)


def test_a_short_query_with_a_wrong_character_is_another_name(app):
    # Two characters are a whole given name: "张伟" is not a typo of "张明".
    assert all(hit.match is not MatchKind.TYPO for hit in _hits(app, "张魏", limit=50))


def test_the_surname_alone_finds_people_by_prefix(app):
    hits = _hits(app, "欧阳", limit=200)
    assert "欧阳晓明" in [hit.name for hit in hits]
    assert all(hit.name.startswith("欧阳") or hit.match is MatchKind.COMPANY for hit in hits)


def test_people_are_found_by_their_companys_name(app):
    by_brand = {hit.name: hit.match for hit in _hits(app, "阿克米", limit=50)}
    assert by_brand["李娜"] is MatchKind.COMPANY and by_brand["赵子涵"] is MatchKind.COMPANY
    # And by a piece of it that is no prefix.
    by_piece = {hit.name: hit.match for hit in _hits(app, "阿克米科技有限", limit=50)}
    assert by_piece[ACME_ZH] is MatchKind.NAME_PREFIX
    assert by_piece["李娜"] is MatchKind.COMPANY


def test_a_page_counts_the_pieces_found_anywhere(app):
    with app.uow() as uow:
        first = search.search_page(uow.session, "有限公司", 1, size=5)
        everywhere = uow.session.scalar(
            sa.select(sa.func.count()).select_from(Customer).where(Customer.search_name.like("%有限公司%"))
        )
    assert len(first.items) == 5
    assert first.total == everywhere


def test_latin_names_keep_exactly_their_typo_keys():
    for name in ("Acme Corporation Holdings", "Zoë Müller", "O'Neill & Sons", "Li Wei 12"):
        normalized = text.normalize(name)
        expected = set().union(*(text.deletions(word) for word in normalized.split()))
        assert text.search_columns(name)["search_keys"] == " ".join(sorted(expected))


def test_latin_search_is_unchanged_among_chinese_names(app):
    assert _names(app, "acme")[0] == "Acme Corp"
    assert _names(app, "acne")[0] == "Acme Corp"


def test_cjk_keys_are_pairs_and_skip_pairs():
    assert text.cjk_grams("阿克米") == {"阿克", "克米", "阿米"}
    assert text.cjk_grams("张") == {"张"}
    assert text.cjk_substring_distance("阿克密", ACME_ZH) == 1
    assert text.cjk_substring_distance("米科技", ACME_ZH) == 0
    assert text.cjk_substring_distance("阿可密", ACME_ZH) == 2
