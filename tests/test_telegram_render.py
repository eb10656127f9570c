"""Translate out for Telegram: HTML with every user string escaped, messages within 4,096
characters (UTF-16, after markup) split at line boundaries, and callback_data within 64 bytes."""

from __future__ import annotations

import html
import re

import pytest

from bot.adapters.telegram import callbacks
from bot.adapters.telegram.render import (
    TEXT_LIMIT,
    render_reply,
    split_html,
    utf16_len,
)
from bot.messages import Button, Field, Item, Reply, Section, Tone


def _visible(message: str) -> int:
    """What Telegram counts: the text after its markup is parsed."""
    return utf16_len(html.unescape(re.sub(r"<[^>]+>", "", message)))


def test_every_user_string_is_escaped():
    evil = "<b>&amp;</b> <script>"
    reply = Reply(
        title=evil,
        text=evil,
        fields=(Field(evil, evil),),
        sections=(Section(title=evil, text=evil, fields=(Field(evil, evil),), items=(Item(evil, evil),)),),
        footer=evil,
        tone=Tone.SUCCESS,
    )
    [message] = render_reply(reply).texts
    escaped = "&lt;b&gt;&amp;amp;&lt;/b&gt; &lt;script&gt;"
    assert message.count(escaped) == 11
    # What remains as markup is only ours.
    assert set(re.findall(r"</?(\w+)>", message)) == {"b", "i"}
    assert message.startswith(f"<b>✅ {escaped}</b>\n{escaped}\n<b>{escaped}:</b> {escaped}")


def test_long_replies_are_split_at_line_boundaries():
    lines = [f"line {n:04d} " + "é" * 80 for n in range(200)]
    reply = Reply(title="Report", text="\n".join(lines), buttons=(Button("Open", "/customer #1"),))
    rendered = render_reply(reply)
    assert len(rendered.texts) == 5
    assert all(_visible(m) <= TEXT_LIMIT for m in rendered.texts)
    # No line is cut: joined again, the messages hold every line whole and in order.
    body = "\n".join(rendered.texts).split("\n")
    assert [line for line in body if line.startswith("line")] == lines
    assert rendered.rows == ((Button("Open", "/customer #1"),),)


def test_characters_outside_the_bmp_count_twice():
    # 2,100 emoji are 4,200 UTF-16 units: too long for one message though only 2,100 characters.
    reply = Reply(text="\n".join(["😀" * 100] * 21))
    texts = render_reply(reply).texts
    assert len(texts) == 2 and all(_visible(t) <= TEXT_LIMIT for t in texts)


def test_a_single_overlong_line_is_cut_at_spaces_and_keeps_its_markup():
    words = " ".join(f"word{n}" for n in range(2000))
    reply = Reply(title="T", sections=(Section(items=(Item("x", words),)),))
    texts = render_reply(reply).texts
    assert len(texts) >= 4 and all(_visible(t) <= TEXT_LIMIT for t in texts)
    for text in texts:
        assert text.count("<i>") == text.count("</i>")
    rejoined = " ".join(re.sub(r"<[^>]+>", "", t).replace("\n", " ") for t in texts)
    assert " ".join(rejoined.split()).endswith("word1998 word1999")
    assert "word1000" in rejoined


def test_item_buttons_are_named_after_their_item():
    reply = Reply(
        sections=(
            Section(
                items=(
                    Item("Acme Corp (#1)", button=Button("Open", "/customer #1")),
                    Item("Beta (#2)", button=Button("Open", "/customer #2")),
                )
            ),
        ),
        buttons=(Button("A", "/a"), Button("B", "/b"), Button("C", "/c")),
    )
    rows = render_reply(reply).rows
    assert [[b.label for b in row] for row in rows] == [
        ["Open: Acme Corp (#1)"],
        ["Open: Beta (#2)"],
        ["A", "B"],
        ["C"],
    ]


def test_empty_reply_still_says_something():
    assert render_reply(Reply()).texts == ("OK",)


@pytest.mark.parametrize("command, opens_form", [("/customer #12", False), ("/deal stage 7", True)])
def test_short_commands_travel_in_the_callback_data(command, opens_form):
    data, stored = callbacks.encode(Button("x", command, opens_form=opens_form))
    assert stored is None and data == ("f" if opens_form else "c") + command


def test_long_commands_are_stored_under_a_token(app):
    command = "/customer edit #12 " + "name=" + "Ünïcödé Holdings International " * 3
    data, stored = callbacks.encode(Button("Rename", command, opens_form=True))
    assert len(data.encode()) <= 64 and data.startswith("t")
    assert callbacks.encode(Button("Rename", command, opens_form=True))[0] == data  # the same button, the same token
    with app.uow() as uow:
        assert callbacks.decode(uow, data) is None  # not stored yet
        callbacks.store(uow, [stored, stored])
    with app.uow() as uow:
        callbacks.store(uow, [stored])  # storing again changes nothing
        assert callbacks.decode(uow, data) == callbacks.Press(command, True)
        assert callbacks.decode(uow, "c/help") == callbacks.Press("/help", False)
        assert callbacks.decode(uow, "a12.3.s") == callbacks.Answer(12, 3, "s")
        assert callbacks.decode(uow, "zzz") is None
        assert callbacks.decode(uow, "tnonexistenttoken") is None


def test_split_html_keeps_template_lines_whole():
    text = "\n".join(f"<b>Line {n}</b> &amp; more" for n in range(600))
    chunks = split_html(text)
    assert len(chunks) == 3 and all(_visible(c) <= TEXT_LIMIT for c in chunks)
    assert "\n".join(chunks) == text
