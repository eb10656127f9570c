"""Money in integer minor units (cents): parsing what people type and formatting for display.

Every stored amount has its own currency and is shown in it. Amounts of different currencies are
never added into one number under one symbol: a total is a mapping currency -> cents, shown as
``£1,200.00 + €300.00`` (``format_totals``). The company currency (CHATCRM_CURRENCY) is the
default for new amounts, and only labels a zero that has no currency of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from crm_core.errors import ValidationError
from crm_core.i18n import _, format_currency

_AMOUNT = re.compile(r"^(?P<number>\d+(?:[.,]\d+)*)(?P<suffix>[kKmM]?)$")
_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "CNY"}


def parse_amount(raw: str, field: str = "amount") -> tuple[int, str | None]:
    """``"5000"``, ``"5,000.50"``, ``"12.5k"``, ``"€1200"`` or ``"1200 USD"`` -> (cents, currency or None)."""
    value = raw.strip().replace(" ", "")
    currency = None
    if value[:1] in _SYMBOLS:
        currency, value = _SYMBOLS[value[0]], value[1:]
    match = re.match(r"^(.*?)([A-Za-z]{3})$", value)
    if match and not _AMOUNT.match(value):
        value, currency = match.group(1), match.group(2).upper()
    parsed = _AMOUNT.match(value)
    if not parsed:
        raise ValidationError(_("{value} is not an amount (try 5000, 5,000.50 or 12.5k)", value=repr(raw)), field=field)
    number = parsed.group("number")
    # "5,000.50" and "5.000,50" both occur; the last separator followed by 1-2 digits is the decimal one.
    last = max(number.rfind("."), number.rfind(","))
    if last != -1 and len(number) - last - 1 in (1, 2):
        number = number[:last].replace(",", "").replace(".", "") + "." + number[last + 1 :]
    else:
        number = number.replace(",", "").replace(".", "")
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise ValidationError(_("{value} is not an amount", value=repr(raw)), field=field) from None
    amount *= {"k": 1_000, "m": 1_000_000}.get(parsed.group("suffix").lower(), 1)
    cents = int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if cents > 10**15:
        raise ValidationError(_("{value} is too large", value=repr(raw)), field=field)
    return cents, currency


def format_money(cents: int, currency: str = "EUR") -> str:
    """``€1,234.50`` / ``¥1,234.50``: the amount in its own currency, in the current language's style."""
    return format_currency(cents, currency)


def totals(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    """(currency, cents) pairs -> cents per currency."""
    found: dict[str, int] = {}
    for currency, cents in pairs:
        found[currency] = found.get(currency, 0) + int(cents or 0)
    return found


def format_totals(amounts: Mapping[str, int], zero_currency: str = "EUR") -> str:
    """``£1,200.00 + €300.00``: one amount per currency, never converted or added across currencies.

    Currencies whose total is zero are left out; nothing at all is a zero in ``zero_currency``."""
    shown = [format_money(cents, currency) for currency, cents in sorted(amounts.items()) if cents]
    return " + ".join(shown) if shown else format_money(0, zero_currency)
