"""The Chinese catalog is complete and current: every string marked in bot/ and crm_core/ is in it,
translated, with the same {placeholders}; a compiled .mo says what its .po says."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from crm_core import i18n

ROOT = Path(__file__).resolve().parent.parent
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)(?:[^{}]*)\}")


def _extracted() -> dict[str, tuple[str, ...]]:
    """msgid (or the singular of a plural) -> (where it was found, …), from the source as it is now."""
    found: dict[str, list[str]] = {}
    for folder in ("bot", "crm_core"):
        method_map = [("**.py", "python")]
        for filename, lineno, message, _comments, context in extract_from_dir(ROOT / folder, method_map):
            msgid = message[0] if isinstance(message, tuple) else message
            key = f"{context}\x04{msgid}" if context else msgid
            found.setdefault(key, []).append(f"{folder}/{filename}:{lineno}")
    return {k: tuple(v) for k, v in found.items()}


def _catalog(language: str):
    return i18n.load_catalog(language)


@pytest.fixture(scope="module")
def extracted() -> dict[str, tuple[str, ...]]:
    return _extracted()


def _key(message) -> str:
    msgid = message.id[0] if isinstance(message.id, tuple | list) else message.id
    return f"{message.context}\x04{msgid}" if message.context else msgid


@pytest.mark.parametrize("language", [lang for lang in i18n.LANGUAGES if lang != i18n.DEFAULT_LANGUAGE])
def test_every_marked_string_is_translated(extracted, language):
    catalog = _catalog(language)
    translated = {_key(m): m for m in catalog if m.id and not m.fuzzy and all(_strings(m))}
    missing = sorted(k for k in extracted if k not in translated)
    assert not missing, (
        f"{len(missing)} string(s) not translated in {i18n.catalog_path(language)} (run `make catalogs` and "
        f"translate them): " + "; ".join(f"{m!r} ({extracted[m][0]})" for m in missing[:20])
    )


@pytest.mark.parametrize("language", [lang for lang in i18n.LANGUAGES if lang != i18n.DEFAULT_LANGUAGE])
def test_translations_keep_the_placeholders(language):
    wrong = []
    for message in _catalog(language):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        wanted = set().union(*(set(_PLACEHOLDER.findall(i)) for i in ids))
        for string in _strings(message):
            # A plural form may leave out {n} ("一个"), never use a name the English does not give.
            extra = set(_PLACEHOLDER.findall(string)) - wanted
            lost = wanted - set(_PLACEHOLDER.findall(string)) - {"n"}
            if extra or lost:
                wrong.append(f"{ids[0]!r}: {string!r}")
    assert not wrong, "translations whose {placeholders} differ from the English: " + "; ".join(wrong[:20])


def test_a_compiled_catalog_says_what_its_source_says():
    for language in i18n.LANGUAGES:
        mo = i18n.catalog_path(language, ".mo")
        if language == i18n.DEFAULT_LANGUAGE or not mo.exists():
            continue
        with i18n.catalog_path(language).open("rb") as handle:
            source = {_key(m): tuple(_strings(m)) for m in read_po(handle, locale=language) if m.id and not m.fuzzy}
        with mo.open("rb") as handle:
            compiled = {_key(m): tuple(_strings(m)) for m in read_mo(io.BytesIO(handle.read())) if m.id}
        assert compiled == source, f"{mo} is older than its .po: run `make catalogs`"


def _strings(message) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple | list) else [message.string]
