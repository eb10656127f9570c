"""Amounts as people type them, and as the CRM shows them."""

import pytest

from crm_core.errors import ValidationError
from crm_core.i18n import use_language
from crm_core.money import format_money, parse_amount


@pytest.mark.parametrize(
    "raw, cents, currency",
    [
        ("5000", 500000, None),
        ("5,000.50", 500050, None),
        ("5.000,50", 500050, None),
        ("12.5k", 1250000, None),
        ("€1200", 120000, "EUR"),
        ("1200 USD", 120000, "USD"),
        ("1.2m", 120000000, None),
        ("0.5", 50, None),
    ],
)
def test_parse_amount(raw, cents, currency):
    assert parse_amount(raw) == (cents, currency)


@pytest.mark.parametrize("raw", ["", "lots", "-5", "1e9", "12..5", "5 apples"])
def test_parse_amount_rejects(raw):
    with pytest.raises(ValidationError):
        parse_amount(raw)


def test_format_money():
    assert format_money(1234567, "EUR") == "€12,345.67"
    assert format_money(-50, "GBP") == "-£0.50"
    # CLDR's English pattern (Babel): the code stands where a currency has no symbol of its own.
    assert format_money(100, "CHF") == "CHF1.00"
    with use_language("zh"):
        assert format_money(123450, "CNY") == "¥1,234.50"
        assert format_money(123450, "EUR") == "€1,234.50"
