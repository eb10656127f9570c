"""Customer search on both databases: exact, prefix, typo, accents, ids, emails, phones, ranking."""

from __future__ import annotations

import pytest

from crm_core import search
from crm_core.services import customers


@pytest.fixture
def seeded(app):
    names = [
        "Acme Corp",
        "Acme Corporation Holdings",
        "Zoë Müller",
        "Björn Åberg",
        "Acton Ltd",
        "50% Off Shop",
        "O'Neill & Sons",
        "North_Wind Traders",
        "Peak Dental",
    ]
    ids = {}
    with app.uow() as uow:
        for name in names:
            ids[name] = customers.create_customer(uow, name).id
        customers.update_customer(uow, ids["Peak Dental"], {"email": "Hello@Peak.example", "phone": "+49 30 1234567"})
    return ids


def _names(app, query, limit=10):
    with app.uow() as uow:
        return [hit.name for hit in search.search_customers(uow.session, query, limit)]


@pytest.mark.parametrize("query", ["acme corp", "ACME CORP", "Acme Corp", "  acme   corp "])
def test_exact_name_ranks_first_whatever_the_case(app, seeded, query):
    assert _names(app, query)[0] == "Acme Corp"


def test_an_exact_name_is_the_whole_answer_and_every_customer_of_that_name_is_in_it(app, seeded):
    # "Acme Corporation Holdings" also starts with the query: an exact name stops the search before
    # looser matches (PostgreSQL reads both kinds in one query and must still tell them apart).
    with app.uow() as uow:
        twin = customers.create_customer(uow, "ACME corp").id
        hits = search.search_customers(uow.session, "acme corp")
    assert [(h.customer_id, h.match) for h in hits] == [
        (seeded["Acme Corp"], search.MatchKind.EXACT_NAME),
        (twin, search.MatchKind.EXACT_NAME),
    ]
    with app.uow() as uow:
        prefix = search.search_customers(uow.session, "acme co")
    assert [(h.name, h.match) for h in prefix] == [
        ("Acme Corp", search.MatchKind.NAME_PREFIX),
        ("ACME corp", search.MatchKind.NAME_PREFIX),
        ("Acme Corporation Holdings", search.MatchKind.NAME_PREFIX),
    ]


@pytest.mark.parametrize("query", ["acme", "ACME", "acm", "Ácme"])
def test_prefix_finds_both_acmes_shortest_first(app, seeded, query):
    assert _names(app, query) == ["Acme Corp", "Acme Corporation Holdings"]


def test_short_prefix_ranks_by_name_length(app, seeded):
    assert _names(app, "ac") == ["Acme Corp", "Acton Ltd", "Acme Corporation Holdings"]


def test_typo_finds_acme(app, seeded):
    assert _names(app, "acne")[:2] == ["Acme Corp", "Acme Corporation Holdings"]
    assert "Acme Corp" in _names(app, "acmee")  # insertion
    assert "Acme Corp" in _names(app, "amce")  # swapped letters


def test_typo_does_not_match_unrelated_names(app, seeded):
    assert _names(app, "zzzz") == []
    # "acne" is one edit from "acme" but two from "acton".
    assert "Acton Ltd" not in _names(app, "acne")


def test_accents_are_ignored_both_ways(app, seeded):
    assert _names(app, "zoe muller") == ["Zoë Müller"]
    assert _names(app, "müller") == ["Zoë Müller"]
    assert _names(app, "bjorn aberg") == ["Björn Åberg"]
    assert _names(app, "åberg") == ["Björn Åberg"]


def test_a_later_word_matches_by_prefix(app, seeded):
    assert _names(app, "corpor") == ["Acme Corporation Holdings"]
    assert _names(app, "traders") == ["North_Wind Traders"]


def test_wildcards_and_quotes_are_literal(app, seeded):
    # "%" and "_" never act as SQL wildcards; quotes never break the query.
    assert _names(app, "%") == []
    assert _names(app, "_") == []
    assert _names(app, "50%") == ["50% Off Shop"]
    assert _names(app, "o'neill") == ["O'Neill & Sons"]
    assert _names(app, '"acme')[0] == "Acme Corp"
    assert _names(app, "north_wind") == ["North_Wind Traders"]
    assert _names(app, "a%c") == _names(app, "a c")


def test_id_email_and_phone(app, seeded):
    peak = seeded["Peak Dental"]
    assert _names(app, f"#{peak}") == ["Peak Dental"]
    assert _names(app, "hello@peak.example") == ["Peak Dental"]
    assert _names(app, "HELLO@PEAK.EXAMPLE") == ["Peak Dental"]
    # The same number written locally and internationally.
    assert _names(app, "030 1234567") == ["Peak Dental"]
    assert _names(app, "+49 (30) 123-4567") == ["Peak Dental"]


def test_renamed_customer_is_found_by_the_new_name_only(app, seeded):
    with app.uow() as uow:
        customers.update_customer(uow, seeded["Acton Ltd"], {"name": "Brightside Ltd"})
    assert _names(app, "brightside") == ["Brightside Ltd"]
    assert "Acton Ltd" not in _names(app, "acton")


def test_results_are_capped(app):
    with app.uow() as uow:
        for i in range(15):
            customers.create_customer(uow, f"Widget Shop {i:02d}")
    assert len(_names(app, "widget")) == 10
    assert len(_names(app, "widget", limit=3)) == 3


def test_chinese_names(app):
    with app.uow() as uow:
        customers.create_customer(uow, "王伟")
    assert _names(app, "王伟") == ["王伟"]
    assert _names(app, "王") == ["王伟"]
