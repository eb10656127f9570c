"""Replies as Block Kit and forms as modals: user data escaped, Slack's limits kept, pages with "More",
and Slack's markup read back into commands."""

from __future__ import annotations

import json

import pytest

from bot.adapters.slack.blocks import (
    MESSAGE_BLOCK_LIMIT,
    decode_action,
    fallback_text,
    home_view,
    message_page,
    reply_blocks,
)
from bot.adapters.slack.modals import FormContext, MetadataTooLong, inline_errors, modal_view, submitted_values
from bot.adapters.slack.mrkdwn import chunks, command_text, escape
from bot.messages import Button, Field, Form, FormInput, Image, InputKind, Item, Reply, Section, Style, Tone
from tests.slack_support import block_texts, buttons, text_objects

EVIL = "<!channel> & <https://evil|x>"
EVIL_ESCAPED = "&lt;!channel&gt; &amp; &lt;https://evil|x&gt;"


def mrkdwn_texts(blocks: list[dict]) -> list[str]:
    return text_objects(blocks, kinds=("mrkdwn",))


def test_user_data_is_escaped_everywhere_mrkdwn_is_read():
    reply = Reply(
        title=EVIL,
        text=EVIL,
        fields=(Field(EVIL, EVIL), Field("Notes", EVIL, short=False)),
        sections=(
            Section(
                title=EVIL, text=EVIL, items=(Item(EVIL, EVIL), Item(EVIL, EVIL, Button("Open", "/x"))), empty=EVIL
            ),
        ),
        footer=EVIL,
    )
    texts = mrkdwn_texts(reply_blocks(reply))
    assert len(texts) >= 6
    for text in texts:
        # Nothing Slack would read as a mention, a link or an entity of the user's.
        assert "<" not in text and ">" not in text, text
        assert EVIL_ESCAPED in text, text
    # The notification text is parsed for mentions too.
    assert "<!channel>" not in fallback_text(reply) and EVIL_ESCAPED in fallback_text(reply)
    # plain_text (the header) is never parsed by Slack: there the name stays as it is.
    header = reply_blocks(reply)[0]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": EVIL, "emoji": True}}


def test_long_text_is_split_into_sections_of_at_most_3000_characters():
    text = "\n".join(f"line {i}: " + "word " * 20 for i in range(200))  # about 22,000 characters
    blocks = reply_blocks(Reply(text=text))
    assert len(blocks) > 7
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks)
    assert "\n".join(b["text"]["text"] for b in blocks).split() == text.split()


def test_splitting_never_cuts_an_entity_in_half():
    escaped = escape("&" * 2000)  # 10,000 characters of "&amp;", no spaces to split at
    pieces = chunks(escaped)
    assert all(len(p) <= 3000 for p in pieces)
    assert all(p.count("&") * 5 == len(p) for p in pieces)
    assert "".join(pieces) == escaped


def test_buttons_carry_their_command_with_unique_action_ids():
    reply = Reply(
        sections=(Section(items=(Item("Deal 1", button=Button("Change stage", "/deal stage 1", opens_form=True)),)),),
        buttons=(
            Button("Log note", "/note #7", Style.PRIMARY, opens_form=True),
            Button("Open", "/customer #7"),
            Button("Too long", "/note #7 " + "x" * 2000),
        ),
    )
    blocks = reply_blocks(reply)
    found = buttons({"blocks": blocks})
    assert set(found) == {"Change stage", "Log note", "Open"}  # the 2,000+ character command is dropped
    assert found["Log note"]["value"] == "/note #7" and found["Log note"]["style"] == "primary"
    ids = [b["action_id"] for b in found.values()]
    assert len(set(ids)) == 3
    assert decode_action(found["Log note"]["action_id"], found["Log note"]["value"]).wants_form
    assert decode_action(found["Open"]["action_id"], found["Open"]["value"]).command == "/customer #7"
    assert not decode_action(found["Open"]["action_id"], "/customer #7").wants_form
    assert decode_action("someone.elses", "/customer #7") is None
    assert decode_action("chatcrm.more", "not json") is None


def long_list(n: int) -> Reply:
    items = tuple(
        Item(f"Deal {i}", f"detail {i}", Button("Change stage", f"/deal stage {i}", opens_form=True))
        for i in range(1, n + 1)
    )
    return Reply(title="Open deals", sections=(Section(items=items),), footer=f"{n} deals")


def test_a_long_list_is_paginated_with_a_more_button():
    reply = long_list(120)  # header + 120 items + footer = 122 blocks
    first = message_page(reply, more_command="/deal list all")
    assert len(first.blocks) == MESSAGE_BLOCK_LIMIT and first.has_more
    more = first.blocks[-1]["elements"][0]
    assert more["action_id"] == "chatcrm.more" and json.loads(more["value"]) == {"c": "/deal list all", "p": 2}
    pressed = decode_action(more["action_id"], more["value"])
    assert (pressed.command, pressed.page) == ("/deal list all", 2)
    second = message_page(reply, 2, more_command="/deal list all")
    assert len(second.blocks) == MESSAGE_BLOCK_LIMIT and second.has_more
    assert second.blocks[0]["elements"][0]["text"] == "Page 2 of Open deals"
    third = message_page(reply, 3, more_command="/deal list all")
    assert not third.has_more and len(third.blocks) <= MESSAGE_BLOCK_LIMIT
    shown = [block_texts({"blocks": p.blocks}) for p in (first, second, third)]
    # Every deal is on exactly one page, in order.
    for i in range(1, 121):
        assert sum(f"*Deal {i}*\n" in text for text in shown) == 1, i
    assert "120 deals" in shown[2]
    # A page past the end (the list got shorter since) says so instead of failing.
    assert "Nothing more" in block_texts({"blocks": message_page(reply, 9, more_command="/x").blocks})


def test_without_a_command_to_rerun_the_rest_is_left_out_with_a_note():
    page = message_page(long_list(120), more_command=None)
    assert len(page.blocks) == MESSAGE_BLOCK_LIMIT and not page.has_more
    assert "does not fit" in page.blocks[-1]["elements"][0]["text"]


def test_a_short_reply_is_one_page_and_tones_show():
    page = message_page(Reply(text="Saved.", tone=Tone.SUCCESS))
    assert page.blocks == [{"type": "section", "text": {"type": "mrkdwn", "text": ":white_check_mark: Saved."}}]
    error = reply_blocks(Reply(title="Nope", text="x", tone=Tone.ERROR))
    assert error[0]["text"]["text"] == ":x: Nope"


def test_fields_go_ten_to_a_section_and_a_chart_is_mentioned():
    reply = Reply(
        fields=tuple(Field(f"F{i}", str(i)) for i in range(23)), image=Image("/tmp/chart.png", "Pipeline", "bar chart")
    )
    blocks = reply_blocks(reply)
    assert [len(b["fields"]) for b in blocks if "fields" in b] == [10, 10, 3]
    assert "Pipeline" in block_texts({"blocks": blocks})


def test_home_view_keeps_to_100_blocks():
    view = home_view(long_list(300))
    assert view["type"] == "home" and len(view["blocks"]) == 100
    assert "not shown" in view["blocks"][-1]["elements"][0]["text"]


def sample_form(**overrides) -> Form:
    inputs = (
        FormInput("title", "Title"),
        FormInput("text", "Note", InputKind.MULTILINE, initial="hello"),
        FormInput("amount", "Amount", InputKind.NUMBER, required=False, initial="12.5"),
        FormInput("close", "Expected close", InputKind.DATE, required=False, initial="2026-12-31"),
        FormInput("stage", "Stage", InputKind.CHOICE, choices=("lead", "won"), initial="won"),
    )
    return Form(
        **{
            "title": "Open a new deal for this customer",
            "command": "/deal new",
            "inputs": inputs,
            "fixed": {"customer": "#7"},
            **overrides,
        }
    )


def test_form_becomes_a_modal_within_slacks_limits():
    where = FormContext("/deal new", {"customer": "#7"}, response_url="https://hooks.example/r", channel="C1")
    view = modal_view(sample_form(), where)
    assert view["type"] == "modal" and view["callback_id"] == "chatcrm.form"
    assert len(view["title"]["text"]) <= 24
    assert FormContext.decode(view["private_metadata"]) == where
    inputs = {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}
    assert list(inputs) == ["title", "text", "amount", "close", "stage"]
    assert inputs["text"]["element"] == {
        "type": "plain_text_input",
        "action_id": "value",
        "max_length": 3000,
        "multiline": True,
        "initial_value": "hello",
    }
    assert inputs["amount"]["element"]["type"] == "number_input" and inputs["amount"]["optional"]
    assert inputs["close"]["element"]["initial_date"] == "2026-12-31"
    assert inputs["stage"]["element"]["initial_option"]["value"] == "won"
    # The known arguments are shown, escaped.
    assert view["blocks"][0]["type"] == "context" and "#7" in view["blocks"][0]["elements"][0]["text"]


def test_form_context_that_cannot_fit_drops_the_response_url_then_refuses():
    big = FormContext("/note", {"text": "x" * 2900}, response_url="https://hooks.example/" + "r" * 200, channel="C1")
    assert "response_url" not in json.loads(big.encode())
    with pytest.raises(MetadataTooLong):
        FormContext("/note", {"text": "x" * 3100}).encode()


def test_submitted_values_and_inline_errors():
    view = modal_view(sample_form(), FormContext("/deal new"))
    state = {
        "values": {
            "title": {"value": {"type": "plain_text_input", "value": "Renewal"}},
            "text": {"value": {"type": "plain_text_input", "value": None}},
            "close": {"value": {"type": "datepicker", "selected_date": "2027-01-15"}},
            "stage": {"value": {"type": "static_select", "selected_option": {"value": "lead"}}},
        }
    }
    assert submitted_values({**view, "state": state}) == {
        "title": "Renewal",
        "text": "",
        "close": "2027-01-15",
        "stage": "lead",
    }
    errors = inline_errors(
        view, {"amount": "'abc' is not an amount", "customer": "there is no customer #7", "": "general problem"}
    )
    assert errors == {"amount": "'abc' is not an amount", "title": "Customer: there is no customer #7 General problem"}


@pytest.mark.parametrize(
    ("typed", "command"),
    [
        ("&lt;b&gt; &amp; co", "<b> & co"),
        ("<@U123ABC|bob> sales", "slack:U123ABC sales"),
        ("<@W99> admin", "slack:W99 admin"),
        ("acme email=<mailto:bob@acme.example|bob@acme.example>", "acme email=bob@acme.example"),
        ("acme phone=<tel:+4930123|+49 30 123>", "acme phone=+49 30 123"),
        ("see <https://acme.example|acme.example> and <https://x.example>", "see acme.example and https://x.example"),
        ("in <#C123|sales> ping <!here>", "in #sales ping @here"),
        ("&lt;!channel&gt; &amp; &lt;https://evil|x&gt;", EVIL),
    ],
)
def test_slack_markup_is_read_back_as_typed(typed, command):
    assert command_text(typed) == command
