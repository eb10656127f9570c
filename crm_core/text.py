"""Pure string helpers shared by models, services and search: checking text input, name normalisation,
typo keys, CJK character pairs, phone keys."""

from __future__ import annotations

import re
import unicodedata

from crm_core.errors import ValidationError
from crm_core.i18n import N_, _

# C0 control characters and DEL, except tab, line feed and carriage return. PostgreSQL refuses NUL in
# text; SQLite stores it and then truncates it in some tools; nobody types one on purpose.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
# Opening quote -> closing quote, straight and typographic (phones turn "x" into “x”).
QUOTES = {'"': '"', "'": "'", "“": "”", "”": "”", "„": "“", "‘": "’", "’": "’", "«": "»"}

# Name tokens shorter than this get no typo keys: one edit in a 3-letter word is another word.
TYPO_MIN_LENGTH = 4


# What callers name in check_text (translated there): marked here so the catalog has them.
_WHATS = (N_("reason"), N_("title"), N_("subject"), N_("note"), N_("follow-up text"), N_("name"))


def check_text(value: str, what: str, field: str | None = None) -> str:
    """``value`` unchanged, or ValidationError if it holds a control character (a NUL byte, an escape).

    The one check every service applies to text a person typed, so both databases see the same input.
    """
    found = _CONTROL.search(value)
    if found:
        code = f"U+{ord(found.group()):04X}"
        raise ValidationError(
            _("the {what} contains a control character ({code}); remove it", what=_(what), code=code), field=field
        )
    return value


def without_control(value: str) -> str:
    """``value`` with its control characters (a NUL byte, an escape) taken out: for words we must keep
    as they came, where refusing them is no option (a customer's message, their chat profile name)."""
    return _CONTROL.sub("", value)


def clip(text: str, limit: int) -> str:
    """``text`` whole if it has at most ``limit`` characters, else cut so that, with a note saying so
    at the end, it has ``limit``: for words we must keep even when they are too long (a customer's)."""
    if len(text) <= limit:
        return text
    note = f"… [message truncated: {len(text):,} characters, the limit is {limit:,}]"
    return text[: limit - len(note)].rstrip() + note


def normalize(text: str) -> str:
    """Lower-case, accent-free, punctuation-free form of a name: "Müller & Söhne" -> "muller sohne".

    Punctuation, ``%``, ``_`` and quotes become word breaks, so they can never act as wildcards.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", stripped.casefold()).strip()


def deletions(token: str) -> set[str]:
    """The token and every string one deletion away from it (the SymSpell neighbourhood).

    Two words within one edit (insert, delete, substitute, swap) share at least one key,
    which lets an index find typo candidates without scanning.
    """
    keys = {token}
    if len(token) >= TYPO_MIN_LENGTH:
        keys.update(token[:i] + token[i + 1 :] for i in range(len(token)))
    return keys


# Han ideographs (with extensions and compatibility forms), kana and Hangul syllables: scripts
# written without spaces between words, so a name is one long "word" to the Latin search.
_CJK_RUN = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]+")
# A typo in a CJK query shorter than this is another name (two characters are a whole given name).
CJK_TYPO_MIN_LENGTH = 3


def cjk_runs(text: str) -> list[str]:
    """The runs of CJK characters in ``text``: "阿克米科技 Acme 公司" -> ["阿克米科技", "公司"]."""
    return _CJK_RUN.findall(text)


def has_cjk(text: str) -> bool:
    return _CJK_RUN.search(text) is not None


def cjk_grams(run: str) -> set[str]:
    """The index keys of a CJK run: its character bigrams, and the pairs one character apart.

    Chinese writes no spaces, so "阿克米科技有限公司" is one token and a query for a piece in the
    middle of it ("科技") matches no word start. Every substring of two or more characters holds
    the bigrams of the name, so a substring query is found by the AND of its own bigrams. The
    skip pairs (character i and i+2) are what survives one wrong character in the middle of a
    three-character query ("阿X米" still has 阿米), which bigrams alone cannot find.
    A one-character run is its own key.
    """
    if len(run) == 1:
        return {run}
    keys = {run[i : i + 2] for i in range(len(run) - 1)}
    keys.update(run[i] + run[i + 2] for i in range(len(run) - 2))
    return keys


def cjk_typo_alternatives(run: str) -> list[set[str]]:
    """For a query run, one key set per character that may be the typo: the keys not touching it.

    A name holding the run with at most that one character wrong (or one extra) holds every key of
    one of these sets, so an index finds the candidates with an OR of ANDs; an edit distance
    verifies them (``cjk_substring_distance``).
    """
    alternatives = []
    for wrong in range(len(run)):
        keys = {run[i : i + 2] for i in range(len(run) - 1) if wrong not in (i, i + 1)}
        keys.update(run[i] + run[i + 2] for i in range(len(run) - 2) if wrong not in (i, i + 2))
        if keys and keys not in alternatives:
            alternatives.append(keys)
    return alternatives


def cjk_substring_distance(query: str, name: str, limit: int = 1) -> int:
    """The fewest edits turning ``query`` into some substring of ``name``, capped at ``limit + 1``.

    Sellers' variant of the Levenshtein table: the match may start and end anywhere in the name.
    """
    previous = [0] * (len(name) + 1)
    for i, cq in enumerate(query, 1):
        current = [i] + [0] * len(name)
        for j, cn in enumerate(name, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (cq != cn))
        previous = current
    return min(min(previous), limit + 1)


def search_keys(normalized_name: str) -> str:
    """Space-separated index keys of a normalised name, sorted for stable rows: the typo keys of each
    word (``deletions``) and the character pairs of its CJK runs (``cjk_grams``). A name without
    CJK gets exactly the typo keys it always had."""
    keys: set[str] = set()
    for token in normalized_name.split():
        keys |= deletions(token)
    for run in cjk_runs(normalized_name):
        keys |= cjk_grams(run)
    return " ".join(sorted(keys))


def search_columns(name: str) -> dict[str, str]:
    """The derived search columns of a customer name (for bulk writers that bypass the ORM)."""
    normalized = normalize(name)
    return {"search_name": normalized, "search_keys": search_keys(normalized)}


def edit_distance(a: str, b: str, limit: int = 2) -> int:
    """Optimal-string-alignment distance (Levenshtein plus adjacent swaps), capped at ``limit + 1``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] | None = None
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if previous2 is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return min(previous[-1], limit + 1)


def like_escape(value: str) -> str:
    """Escape LIKE wildcards (with backslash as the escape character) so user text matches literally."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def phone_digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


def phone_key(phone: str | None) -> str | None:
    """The last 9 digits: enough to tell numbers apart, and blind to country/trunk prefixes."""
    if not phone:
        return None
    digits = phone_digits(phone)
    return digits[-9:] if len(digits) >= 6 else None


def phone_reversed(phone: str | None) -> str | None:
    """Every digit of the number, last first ("+49 (30) 1234-5678" -> "876543210394"), or None for
    fewer than 6 digits. The search key of migrations 0017 to 0022 (their data steps use it); since
    0023 the last digits are found through a blind index instead (crm_core.contacts)."""
    if not phone:
        return None
    digits = phone_digits(phone)
    return digits[::-1][:40] if len(digits) >= 6 else None


def phone_tail(phone: str | None) -> str | None:
    """The last 6 digits: what ``/customer 345678`` looks a number up by (its blind index, see
    crm_core.contacts). None for fewer than 6 digits (not a number)."""
    if not phone:
        return None
    digits = phone_digits(phone)
    return digits[-6:] if len(digits) >= 6 else None


def email_domain(email: str | None) -> str | None:
    """The lower-cased part after the last @ ("Anna@ACME.com" -> "acme.com"), or None."""
    normalized = normalize_email(email)
    if not normalized or "@" not in normalized:
        return None
    return normalized.rsplit("@", 1)[1][:255] or None


def looks_like_phone(query: str) -> bool:
    return bool(re.fullmatch(r"\+?[\d\s().\-/]{6,}", query.strip())) and len(phone_digits(query)) >= 6


def normalize_email(email: str | None) -> str | None:
    return email.strip().lower() if email and email.strip() else None


def unquote(value: str) -> str:
    """``"tomorrow 10:00"`` -> ``tomorrow 10:00``: a value wrapped in a pair of quotes, without them."""
    value = value.strip()
    if len(value) >= 2 and value[0] in QUOTES and value[-1] in (QUOTES[value[0]], '"'):
        return value[1:-1].strip()
    return value
