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


def test_declared_options_anywhere_and_undeclared_stay_text():
    params = (
        arg("customer"),
        rest("title", Kind.TEXT),
        opt("amount"),
        opt("stage", Kind.CHOICE, choices=("lead", "won")),
    )
    parsed = parse_line(params, "acme amount=5k Big deal x=1 stage=w")
    assert parsed.args == {"customer": "acme", "title": "Big deal x=1", "amount": "5k", "stage": "won"}


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
