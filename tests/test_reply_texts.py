"""A reply's texts rewritten (``Reply.with_texts``) and a reply turned into a dict for the outbox
(``Reply.to_dict``): every text a reader sees is reached, nothing else is, and the stored form is
``dataclasses.asdict``'s."""

from __future__ import annotations

import dataclasses
import json

from bot.messages import Button, Field, Form, FormInput, Image, Item, Reply, Section, Style, Tone


def full_reply() -> Reply:
    """A reply with every part a reader sees, and a form, an image and flags besides."""
    return Reply(
        title="Acme Corp",
        text="body",
        fields=(Field("Owner", "Mia", short=False),),
        sections=(
            Section(
                title="Deals",
                text="open ones",
                fields=(Field("Stage", "proposal"),),
                items=(
                    Item("Renewal", "due Friday", Button("Open", "/deal 7", Style.PRIMARY)),
                    Item("Upsell"),
                ),
                empty="no deals",
            ),
            Section(items=(Item("plain"),)),
        ),
        buttons=(Button("Add note", "/note #12", opens_form=True),),
        footer="Customer #12",
        image=Image("/tmp/chart.png", "Chart", "Orders by month"),
        form=Form("Note", "/note", (FormInput("text", "Note"),), fixed={"customer": "12"}),
        tone=Tone.SUCCESS,
        private=True,
        language="en",
    )


def test_a_change_that_changes_nothing_returns_the_reply_itself():
    reply = full_reply()
    assert reply.with_texts(lambda text: text) is reply


def test_every_text_a_reader_sees_is_changed_and_nothing_else():
    reply = full_reply()
    loud = reply.with_texts(str.upper)
    assert loud.title == "ACME CORP" and loud.text == "BODY" and loud.footer == "CUSTOMER #12"
    assert loud.fields == (Field("OWNER", "MIA", short=False),)
    deals, plain = loud.sections
    assert (deals.title, deals.text, deals.empty) == ("DEALS", "OPEN ONES", "NO DEALS")
    assert deals.fields == (Field("STAGE", "PROPOSAL"),)
    assert deals.items == (
        Item("RENEWAL", "DUE FRIDAY", Button("OPEN", "/deal 7", Style.PRIMARY)),
        Item("UPSELL"),
    )
    assert plain.items == (Item("PLAIN"),)
    # Commands, the form, the image and the flags are not texts a reader sees.
    assert loud.buttons == (Button("ADD NOTE", "/note #12", opens_form=True),)
    assert (loud.form, loud.image, loud.tone, loud.private, loud.language) == (
        reply.form,
        reply.image,
        reply.tone,
        reply.private,
        reply.language,
    )


def test_one_changed_text_deep_inside_changes_only_its_own_parts():
    reply = full_reply()
    changed = reply.with_texts(lambda text: "due Monday" if text == "due Friday" else text)
    assert changed is not reply
    deals, plain = changed.sections
    assert deals.items[0] == Item("Renewal", "due Monday", Button("Open", "/deal 7", Style.PRIMARY))
    # The rest stays as it was, the very same objects.
    assert deals.items[1] is reply.sections[0].items[1] and plain is reply.sections[1]
    assert deals.fields is reply.sections[0].fields and changed.fields is reply.fields
    assert changed.buttons is reply.buttons
    assert dataclasses.replace(changed, sections=reply.sections) == reply


def test_to_dict_is_asdict_without_the_file_and_survives_json():
    reply = full_reply()
    expected = dataclasses.asdict(reply)
    del expected["file"]
    stored = reply.to_dict()
    assert stored == expected
    assert Reply.from_dict(json.loads(json.dumps(stored))) == reply
