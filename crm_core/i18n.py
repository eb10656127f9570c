"""Translation of every user-facing string: gettext catalogs (Babel) and the language of the moment.

Write user-facing text as ``_("No customer matches {query}.", query=q)``: the English text is the
message id, the translation is looked up in the current language, and the named ``{placeholders}``
are filled afterwards, so a translator may move them. Plurals: ``ngettext("{n} deal", "{n} deals",
n)`` (``n`` is filled in too). Text defined at import time (command summaries, form labels) is
marked with ``N_(...)`` so ``pybabel extract`` finds it, and translated where it is shown with
``_(text)``.

The current language lives in a context variable: the dispatcher sets it for each request
(``use_language``) from the user's saved language, the platform's hint and CHATCRM_LANGUAGE, and
the scheduler sets it for each recipient. Asyncio tasks and threads started inside copy it.

Catalogs are ``crm_core/locale/<lang>/LC_MESSAGES/chatcrm.po`` (the template is
``crm_core/locale/chatcrm.pot``; ``make catalogs`` extracts and compiles). A compiled ``.mo`` is
used when it is at least as new as its ``.po``; otherwise the ``.po`` is compiled in memory, so a
fresh checkout works before anyone ran ``pybabel compile``.

The pseudo-locale ``qps`` (as in Windows' qps-ploc) turns every translated string into accented
look-alikes in brackets, ``⟦Ńö ćüśţöɱéŕ⟧``: a test renders every reply in it, and any plain
English word left over is a string that bypassed translation.
"""

from __future__ import annotations

import contextlib
import functools
import gettext as gettext_module
import io
import logging
import re
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

log = logging.getLogger("chatcrm.i18n")

DOMAIN = "chatcrm"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DEFAULT_LANGUAGE = "en"
# The languages a user can choose with /lang; English is the source language (no catalog needed).
LANGUAGES: dict[str, str] = {"en": "English", "zh": "中文"}
PSEUDO = "qps"

_default = DEFAULT_LANGUAGE
_current: ContextVar[str | None] = ContextVar("chatcrm_language", default=None)


def set_default_language(language: str | None) -> None:
    """The process-wide fallback (CHATCRM_LANGUAGE), used where no request or recipient set one."""
    global _default
    _default = supported(language) or DEFAULT_LANGUAGE


def default_language() -> str:
    return _default


def current_language() -> str:
    return _current.get() or _default


@contextlib.contextmanager
def use_language(language: str | None) -> Iterator[str]:
    """Run the block in ``language`` (or the default when it is None or not supported)."""
    chosen = language if language == PSEUDO else (supported(language) or _default)
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)


def switch_language(language: str | None) -> str:
    """Change the language inside a ``use_language`` block (once the caller is known); that block's
    end restores what was there before it."""
    chosen = language if language == PSEUDO else (supported(language) or _default)
    _current.set(chosen)
    return chosen


def supported(language: str | None) -> str | None:
    """``"zh-Hans"``, ``"zh_CN"``, ``"ZH"`` -> ``"zh"``; ``"en-US"`` -> ``"en"``; anything else -> None."""
    if not language:
        return None
    base = re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]
    return base if base in LANGUAGES else None


def resolve_language(saved: str | None, hint: str | None = None) -> str:
    """The language to answer in: the user's saved choice, else the platform's hint, else the default."""
    if saved == PSEUDO:
        return PSEUDO
    return supported(saved) or supported(hint) or _default


# -- catalogs ----------------------------------------------------------------------------------


def catalog_path(language: str, suffix: str = ".po") -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}{suffix}"


def fragment_paths(language: str) -> list[Path]:
    """Extra ``.po`` files in ``locale/<lang>/fragments/``, merged over the main catalog (work in
    progress that has not been folded into it yet)."""
    folder = LOCALE_DIR / language / "fragments"
    return sorted(folder.glob("*.po")) if folder.is_dir() else []


def load_catalog(language: str) -> Any:
    """The Babel catalog of ``language``: its ``.po`` with any fragments' translations added."""
    # Imported here: Babel's catalog reader is only needed when no compiled catalog is current.
    from babel.messages.pofile import read_po

    with catalog_path(language).open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=DOMAIN)
    for fragment in fragment_paths(language):
        with fragment.open("rb") as handle:
            for message in read_po(handle, locale=language):
                if not message.id or not message.string:
                    continue
                known = catalog.get(message.id, message.context)
                if known is None or not known.string or known.fuzzy:
                    catalog[message.id] = message
    return catalog


@functools.cache
def _translations(language: str) -> gettext_module.NullTranslations:
    po, mo = catalog_path(language), catalog_path(language, ".mo")
    fragments = fragment_paths(language)
    if not fragments and mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as handle:
            return gettext_module.GNUTranslations(handle)
    if po.exists():
        from babel.messages.mofile import write_mo

        buffer = io.BytesIO()
        write_mo(buffer, load_catalog(language))
        buffer.seek(0)
        log.debug("compiled %s in memory (no current .mo)", po)
        return gettext_module.GNUTranslations(buffer)
    return gettext_module.NullTranslations()


def reload_catalogs() -> None:
    """Forget loaded catalogs (after ``make catalogs`` in a running test session)."""
    _translations.cache_clear()


def _fill(text: str, params: dict[str, Any]) -> str:
    return text.format(**params) if params else text


def _(message: str, **params: Any) -> str:
    """``message`` in the current language, with ``{placeholders}`` filled from ``params``."""
    language = current_language()
    if language == DEFAULT_LANGUAGE:
        return _fill(message, params)
    if language == PSEUDO:
        return _fill(pseudo(message), params)
    return _fill(_translations(language).gettext(message), params)


def ngettext(singular: str, plural: str, n: int, **params: Any) -> str:
    """The singular or plural form for ``n`` in the current language (``{n}`` is filled in)."""
    language = current_language()
    params = {"n": n, **params}
    if language == DEFAULT_LANGUAGE:
        return _fill(singular if n == 1 else plural, params)
    if language == PSEUDO:
        return _fill(pseudo(singular if n == 1 else plural), params)
    return _fill(_translations(language).ngettext(singular, plural, n), params)


def pgettext(context: str, message: str, **params: Any) -> str:
    """``message`` translated in ``context`` (the same English word meaning two things: "Open")."""
    language = current_language()
    if language == DEFAULT_LANGUAGE:
        return _fill(message, params)
    if language == PSEUDO:
        return _fill(pseudo(message), params)
    return _fill(_translations(language).pgettext(context, message), params)


def N_(message: str) -> str:
    """Marks ``message`` for extraction without translating it now (text defined at import time)."""
    return message


# -- the pseudo-locale -------------------------------------------------------------------------

_ACCENTS = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "åƀćđéƒĝĥîĵķľɱñöþǫŕśţüṽŵẋýžÅƁĆĐÉƑĜĤÎĴĶĽṀÑÖÞǪŔŚŢÜṼŴẊÝŽ",
)
# Placeholders ({name}, {amount:,}) and command words (/customer) stay as they are.
_KEEP = re.compile(r"(\{[^{}]*\}|/[a-z][a-z_-]*|https?://\S+|[a-z_]+=)")
PSEUDO_OPEN, PSEUDO_CLOSE = "⟦", "⟧"


def pseudo(message: str) -> str:
    parts = _KEEP.split(message)
    # Odd indexes are the kept pieces.
    text = "".join(part if i % 2 else part.translate(_ACCENTS) for i, part in enumerate(parts))
    return f"{PSEUDO_OPEN}{text}{PSEUDO_CLOSE}"


# -- numbers, money, dates in the current language ----------------------------------------------


def babel_locale(language: str | None = None) -> str:
    language = language or current_language()
    return DEFAULT_LANGUAGE if language == PSEUDO else language


def format_number(value: float | int, digits: int | None = None) -> str:
    from babel.numbers import format_decimal

    if digits is not None:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=babel_locale())
    return format_decimal(value, locale=babel_locale())


def format_percent(fraction: float, digits: int = 0) -> str:
    """``0.125`` -> ``12.5%`` with ``digits=1``."""
    from babel.numbers import format_percent as babel_percent

    pattern = "#,##0" + ("." + "0" * digits if digits else "") + "%"
    return babel_percent(fraction, format=pattern, locale=babel_locale())


def format_currency(cents: int, currency: str) -> str:
    """Integer minor units in ``currency``: ``¥1,234.50``, ``€1,234.50``, ``-$5.00``."""
    from decimal import Decimal

    from babel.numbers import format_currency as babel_currency

    return babel_currency(Decimal(cents) / 100, currency, locale=babel_locale())


def format_date(value: date, style: str = "medium") -> str:
    """``Dec 2, 2026`` / ``2026年12月2日``; ``style`` is a Babel width: short, medium, long, full."""
    from babel.dates import format_date as babel_date

    return babel_date(value, format=style, locale=babel_locale())


def format_datetime(value: datetime, tz: tzinfo | None = None, style: str = "medium") -> str:
    """``value`` in the reader's timezone and language: ``Dec 2, 2026, 9:00 AM`` / ``2026年12月2日 09:00``."""
    from babel.dates import format_datetime as babel_datetime

    return babel_datetime(value, format=style, tzinfo=tz, locale=babel_locale())


# -- dates as the bot shows them ------------------------------------------------------------------


def localized_dates() -> bool:
    """English (and the pseudo-locale) keep ISO dates, unambiguous for an international team and
    pinned by tests; every other language gets its CLDR date (zh: 2026年12月2日)."""
    return current_language() not in (DEFAULT_LANGUAGE, PSEUDO)


def display_date(value: date | datetime | None, tz: str | None = "UTC") -> str:
    """A day as a reader sees it: ``2026-12-02`` in English, ``2026年12月2日`` in Chinese; a datetime
    is taken as the day it is in ``tz``; None is a dash."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        from crm_core.clock import zone

        value = value.astimezone(zone(tz)).date()
    return format_date(value) if localized_dates() else value.isoformat()


def display_datetime(value: datetime | None, tz: str | None = "UTC") -> str:
    """A moment in ``tz`` as a reader sees it: ``2026-12-02 09:00`` / ``2026年12月2日 09:00``."""
    if value is None:
        return "—"
    from babel import dates as babel_dates

    from crm_core.clock import zone

    local = value.astimezone(zone(tz))
    if not localized_dates():
        return local.strftime("%Y-%m-%d %H:%M")
    # The language's own date, then hours and minutes (CLDR's medium time has seconds: noise here).
    locale = babel_locale()
    return str(babel_dates.get_datetime_format("medium", locale=locale)).format(
        babel_dates.format_time(local, "short", locale=locale), format_date(local.date())
    )
