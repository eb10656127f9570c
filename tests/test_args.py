"""The one command-line parser: quoting, options, greedy text, typed values and their errors."""

from __future__ import annotations

import pytest

from bot.args import FormErrors, Kind, UsageError, arg, opt, parse_form, parse_line, rest, tokenize

NOTE = (arg("customer"), rest("text"))


def test_greedy_text_keeps_what_was_typed():
    parsed = parse_line(NOTE, 'acme  said "call me"  at 5pm\nthanks')
    assert parsed.args == {"customer": "acme", "text": 'said "call me"  at 5pm\nthanks'}


@pytest.mark.parametrize("quoted", ['"Acme Corp"', "'Acme Corp'", "“Acme Corp”", "„Acme Corp“", "«Acme Corp»"])
def test_straight_and_typographic_quotes(quoted):
    assert parse_line(NOTE, f"{quoted} hi").args["customer"] == "Acme Corp"


DEAL = (
    arg("customer"),
    rest("title", Kind.TEXT),
    opt("amount"),
    opt("stage", Kind.CHOICE, choices=("lead", "won")),
)


def test_declared_options_anywhere():
    parsed = parse_line(DEAL, "acme amount=5k Big deal stage=w")
    assert parsed.args == {"customer": "acme", "title": "Big deal", "amount": "5k", "stage": "won"}


@pytest.mark.parametrize("line", ["acme Big deal x=1", 'acme "Big deal" x=1', "x=1 acme Big"])
def test_an_unknown_option_is_named_with_the_allowed_ones(line):
    with pytest.raises(UsageError) as error:
        parse_line(DEAL, line)
    assert error.value.message == "unknown option x= (options: amount=, stage=)"


def test_quotes_keep_an_equals_sign_as_text():
    assert parse_line(DEAL, 'acme "Big deal x=1"').args["title"] == "Big deal x=1"


def test_free_text_keeps_equals_signs():
    assert parse_line((arg("customer"), rest("text")), "acme price=100 agreed").args["text"] == "price=100 agreed"
    verbatim = (arg("name"), rest("filter", Kind.TEXT, verbatim=True))
    assert parse_line(verbatim, 'vip country=DE name="A B"').args["filter"] == 'country=DE name="A B"'


TICKET = (
    arg("customer"),
    rest("subject", Kind.TEXT),
    opt("priority", Kind.CHOICE, choices=("low", "high"), trailing=True),
)


@pytest.mark.parametrize(
    "line, args",
    [
        ('acme "Bad prio" high', {"customer": "acme", "subject": "Bad prio", "priority": "high"}),
        ("acme printer jams high", {"customer": "acme", "subject": "printer jams", "priority": "high"}),
        ('acme "printer high"', {"customer": "acme", "subject": "printer high"}),
        ("acme low", {"customer": "acme", "subject": "low"}),
        ("acme printer jams priority=low", {"customer": "acme", "subject": "printer jams", "priority": "low"}),
    ],
)
def test_a_quoted_greedy_value_ends_at_its_quote(line, args):
    assert parse_line(TICKET, line).args == args


@pytest.mark.parametrize(
    "line, message",
    [
        ('acme "Bad prio" critical', "Priority must be one of low, high, not 'critical'"),
        ('acme "Bad prio" very high', "unexpected 'very high' after the quoted subject"),
        ('acme "Big deal" more words', "unexpected 'more words' after the quoted title"),
    ],
)
def test_words_after_a_quoted_greedy_value(line, message):
    params = TICKET if "prio" in line else DEAL
    with pytest.raises(UsageError) as error:
        parse_line(params, line)
    assert error.value.message == message


def test_extra_options_and_quoted_values():
    parsed = parse_line((arg("id", Kind.INT),), '#12 name="Acme  Corp" tags=a,b email=', extra_options=True)
    assert parsed.args == {"id": 12}
    assert parsed.extra == {"name": "Acme  Corp", "tags": "a,b", "email": ""}


@pytest.mark.parametrize(
    "params, line, message",
    [
        ((arg("id", Kind.INT),), "abc", "Id must be a number, not 'abc'"),
        ((arg("stage", Kind.CHOICE, choices=("lead", "lost")),), "l", "Stage must be one of lead, lost, not 'l'"),
        ((arg("a"),), "one two", "unexpected 'two'"),
        ((arg("a"),), '"open', "a quote opened at character 1 is never closed"),
        ((rest("text", max_length=5),), "123456", "Text is longer than 5 characters"),
    ],
)
def test_bad_input_messages(params, line, message):
    with pytest.raises(UsageError) as error:
        parse_line(params, line)
    assert error.value.message == message


def test_missing_required_are_reported_not_raised():
    parsed = parse_line(NOTE, "acme")
    assert [p.name for p in parsed.missing] == ["text"]


def test_form_values_collect_every_error():
    params = (arg("id", Kind.INT), arg("stage", Kind.CHOICE, choices=("lead", "won")))
    with pytest.raises(FormErrors) as errors:
        parse_form(params, {"id": "x", "stage": "zzz"})
    assert errors.value.errors == {
        "id": "Id must be a number, not 'x'",
        "stage": "Stage must be one of lead, won, not 'zzz'",
    }


def test_tokenize_spans():
    assert [(t.value, t.quoted) for t in tokenize('a "b c" d=e')] == [("a", False), ("b c", True), ("d=e", False)]
