"""The outbox payload contract (crm_core.outbox_payload): typed, versioned, checked when queued."""

from __future__ import annotations

import pytest

from crm_core import outbox
from crm_core.outbox_payload import MessagePayload, PayloadButton, PayloadError, PayloadImage


def test_a_payload_round_trips_through_its_stored_form():
    payload = MessagePayload(
        formatted_text="*Hi*",
        format="mrkdwn",
        buttons=(PayloadButton("Done", "/followup done 3", "primary"),),
        image=PayloadImage("/tmp/c.png", "Chart", "A chart"),
        replace="1700000000.1",
    )
    stored = payload.to_json()
    assert stored["v"] == 1
    assert MessagePayload.from_json(stored) == payload


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ({"v": 1}, "neither a reply nor text"),
        ({"v": 2, "formatted_text": "x"}, "version 2 is not supported"),
        ({"formatted_text": "x", "colour": "red"}, "unknown payload keys: colour"),
        ({"formatted_text": "x", "format": "markdown"}, "format 'markdown'"),
        ({"formatted_text": "x", "buttons": [{"label": "Go"}]}, "unreadable button"),
        ({"formatted_text": "x", "buttons": [{"label": "Go", "command": "rm -rf"}]}, "needs a label and a /command"),
        ({"formatted_text": "x", "replace": True}, "replace must be a platform message id"),
        ([1, 2], "a payload is a JSON object"),
    ],
)
def test_a_payload_off_contract_is_refused_with_what_is_wrong(stored, message):
    with pytest.raises(PayloadError, match=message):
        MessagePayload.from_json(stored)


def test_rows_from_before_versioning_are_read_as_version_one():
    legacy = {"formatted_text": "Hello", "format": "text", "buttons": [{"label": "Stop", "command": "/stop"}]}
    assert MessagePayload.from_json(legacy).buttons == (PayloadButton("Stop", "/stop"),)


def test_enqueue_checks_the_payload_and_writes_nothing_off_contract(app):
    with pytest.raises(PayloadError, match="neither a reply nor text"):
        with app.uow() as uow:
            outbox.enqueue(uow, idempotency_key="bad", kind="test", platform="console", conversation="c", payload={})
    with app.uow() as uow:
        row = outbox.enqueue(
            uow,
            idempotency_key="good",
            kind="test",
            platform="console",
            conversation="c",
            payload=MessagePayload(formatted_text="Hello"),
        )
        assert row.payload == {"v": 1, "formatted_text": "Hello"}
        assert uow.session.query(type(row)).count() == 1
