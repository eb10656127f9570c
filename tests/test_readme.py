"""The README says what the code does: its tables render, and its examples give the answers it
shows when run through the real dispatcher (on both databases)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crm_core.models import Role, TemplateOverride
from tests.support import rows

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
_SEPARATOR = re.compile(r"^\|(\s*:?-{3,}:?\s*\|)+$")


def _table_blocks() -> list[list[tuple[int, str]]]:
    """Runs of consecutive lines starting with ``|`` outside code fences, with their line numbers."""
    blocks: list[list[tuple[int, str]]] = []
    current: list[tuple[int, str]] = []
    fenced = False
    for number, line in enumerate(README.splitlines(), start=1):
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("|"):
            current.append((number, line))
            continue
        if current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def test_every_table_has_a_header_and_no_stray_blank_line():
    # A blank line inside a table ends it: the rows after it show as raw text.
    for block in _table_blocks():
        first_line = block[0][0]
        assert len(block) >= 2 and _SEPARATOR.match(block[1][1].strip()), f"README line {first_line}: not a table"


@pytest.fixture
def admin(chat):
    return chat.user("Ada Admin", Role.ADMIN)


def test_the_campaign_template_example_saves_an_html_template(chat, app, admin):
    example = re.search(r"`(/template set campaign_spring[^`]*)`", README).group(1)
    reply = chat.say(admin, example.replace("…", "")).reply
    assert reply.title == "Template campaign_spring (en, html) saved", reply
    [override] = rows(app, TemplateOverride)
    assert override.body.startswith("Hello {{ customer.first_name }}")


def test_the_filter_error_example_is_the_real_message(chat, admin):
    found = re.search(r"`(/segment new [^`]*abc[^`]*)` answers\s+`([^`]*)`", README, re.DOTALL)
    assert found, "the README shows a bad filter and its answer"
    command, answer = found.group(1), " ".join(found.group(2).split())
    assert chat.say(admin, command).reply.text == answer


def test_help_shows_every_field_of_customer_new(chat, admin):
    usage = chat.say(admin, "/help customer").reply.sections
    [new] = [s for s in usage if s.title.startswith("customer new") or "new <name>" in s.title]
    for key in ("email", "phone", "company", "country", "language", "timezone", "owner", "tags"):
        assert f"[{key}=" in new.title, new.title
