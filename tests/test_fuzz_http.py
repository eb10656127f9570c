"""Fuzzing ``POST /slack/events`` and ``POST /telegram/webhook`` over real HTTP to the real ASGI app
(uvicorn, the real bolt app and python-telegram-bot, the fake platforms), with hypothesis.

Random headers (timestamps, signatures, secrets, content types), bodies (bytes, JSON, forms, real
payloads with one field replaced by anything, deep nesting), encodings and sizes. Properties:
- never a 5xx, and the web guard's safety net is never reached;
- without a valid Slack signature or Telegram secret: no row of any table changes and the
  platform is never called.

Derandomized (the same examples every run, so a failure reproduces) and bounded, so each test
stays within a few seconds. One server serves every example of a test: that is the point (state
left by one example must not break the next), hence the function-scoped-fixture health check.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_core.models import Role
from tests.slack_support import (  # noqa: F401 - fixtures
    ADMIN,
    SlackServer,
    event_callback,
    new_trigger,
    sign,
    slack,
    slack_api,
)
from tests.support import safety_net_records, table_counts
from tests.telegram_rig import SECRET, SUPPORT_CHAT

FUZZ = settings(
    print_blob=False,
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
FORM = "application/x-www-form-urlencoded"
OVER_LIMIT = 1024 * 1024 + 1

# ---- strategies ----------------------------------------------------------------------------------

# Bytes a header value may hold (h11 refuses control characters and surrounding spaces): Latin-1.
header_values = st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_categories=("Cc",)), max_size=80)
numbers_as_text = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.integers(1, 400).map(lambda n: "9" * n),
    st.sampled_from(["²", "١٧٠٠٠٠٠٠٠٠", "+1700000000", "1_700_000_000", "1e9", "0x10", "", "-0", "½"]),
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
deep_nesting = st.integers(1, 100_000).map(lambda depth: b"[" * depth + b"]" * depth)
big_bodies = st.sampled_from([OVER_LIMIT, 3 * OVER_LIMIT]).map(lambda size: b"x" * size)
raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda t: t.encode("utf-8")),
    st.text(max_size=100).map(lambda t: t.encode("utf-16")),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.text(max_size=12), st.text(max_size=40), max_size=6).map(lambda d: urlencode(d).encode()),
    deep_nesting,
    big_bodies,
)
content_types = st.sampled_from([FORM, "application/json", "text/plain", "multipart/form-data; boundary=x", None])


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a JSON document (except response URLs: answers must stay local)."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "response_url":
                found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


@st.composite
def spoiled(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with one value (anywhere in it) replaced by any JSON value, or removed."""
    document = json.loads(json.dumps(document))
    paths = _paths(document)
    path = draw(st.sampled_from(paths))
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    if draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    return document


# ---- Slack -----------------------------------------------------------------------------------------


def _slack_templates(slack: SlackServer) -> list[tuple[str, Any]]:
    """Real payloads, as (content type, document); a form of fields for commands, JSON for the rest."""
    url = slack.api.response_url("fuzz")
    command = {
        "team_id": "T1",
        "channel_id": "C1",
        "user_id": ADMIN,
        "command": "/help",
        "text": "",
        "response_url": url,
        "trigger_id": new_trigger(),
    }
    button = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": ADMIN, "name": "ada"},
        "trigger_id": new_trigger(),
        "container": {"type": "message", "message_ts": "1700000000.000100", "channel_id": "C1"},
        "channel": {"id": "C1"},
        "response_url": url,
        "actions": [{"action_id": "chatcrm.run.1", "value": "/help", "block_id": "b1", "type": "button"}],
    }
    submission = {
        "type": "view_submission",
        "team": {"id": "T1"},
        "user": {"id": ADMIN},
        "trigger_id": new_trigger(),
        "view": {
            "id": "V1",
            "hash": "h",
            "callback_id": "chatcrm.form",
            "private_metadata": "{}",
            "state": {"values": {}},
        },
    }
    event = json.loads(
        event_callback({"type": "app_mention", "user": ADMIN, "text": "<@UBOT> help", "ts": "1.2", "channel": "C1"})
    )
    return [("command", command), ("interaction", button), ("interaction", submission), ("event", event)]


def _encode(kind: str, document: Any) -> tuple[str, bytes]:
    if kind == "command":
        fields = document if isinstance(document, dict) else {"x": document}
        return FORM, urlencode({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}).encode()
    if kind == "interaction":
        return FORM, urlencode({"payload": json.dumps(document)}).encode()
    return "application/json", json.dumps(document).encode()


def _post(client: httpx.Client, path: str, body: bytes, headers: dict[str, Any], content_type: str | None):
    sent = {**({"Content-Type": content_type} if content_type else {}), **headers}
    return client.post(path, content=body, headers=sent)


def test_fuzz_slack_without_a_valid_signature_changes_nothing_and_never_5xx(slack, caplog):
    before = table_counts(slack.app)

    @FUZZ
    @given(
        body=raw_bodies,
        content_type=content_types,
        timestamp=st.none() | numbers_as_text | header_values | st.just("now"),
        signature=st.none() | header_values | st.text("0123456789abcdef", min_size=64, max_size=64).map("v0=".__add__),
        resign_other_body=st.booleans(),
    )
    def check(body, content_type, timestamp, signature, resign_other_body):
        headers: dict[str, Any] = {}
        if timestamp is not None:
            headers["X-Slack-Request-Timestamp"] = str(int(time.time())) if timestamp == "now" else timestamp
        if resign_other_body:
            # A real signature, of another body: what a replay with a changed body looks like.
            headers.update(sign(body + b"&x=1"))
        elif signature is not None:
            headers["X-Slack-Signature"] = signature
        headers = {k: v.encode("latin-1") for k, v in headers.items()}
        response = _post(slack.client, "/slack/events", body, headers, content_type)
        assert response.status_code in (400, 401, 413), (response.status_code, response.text)

    check()
    assert table_counts(slack.app) == before
    assert slack.api.calls() == []
    assert safety_net_records(caplog.records) == []


def test_fuzz_slack_signed_bodies_never_5xx(slack, caplog):
    templates = _slack_templates(slack)
    payloads = st.sampled_from(templates).flatmap(
        lambda template: spoiled(template[1]).map(lambda document: _encode(template[0], document))
    )

    @FUZZ
    @given(payload=payloads | st.tuples(content_types, raw_bodies))
    def check(payload):
        content_type, body = payload
        response = _post(slack.client, "/slack/events", body, sign(body), content_type)
        assert response.status_code < 500, (response.status_code, response.text, body[:300])

    check()
    assert safety_net_records(caplog.records) == []


# ---- Telegram --------------------------------------------------------------------------------------


def _telegram_templates(rig) -> list[dict[str, Any]]:
    tg = rig.fake
    sam = rig.staff(900, "Sam Support", Role.SUPPORT)
    carla = rig.customer(555, "Carla")
    relay = {"message_id": 77, "date": 1, "chat": {"id": SUPPORT_CHAT, "type": "supergroup"}, "text": "Ticket #1"}
    return [
        tg.private_text(carla, "My printer is on fire"),
        tg.private_text(sam, "/ticket list open"),
        tg.group_text(SUPPORT_CHAT, sam, "On our way", reply_to=relay),
        tg.contact(carla, "+1 555 0100"),
        tg.callback(carla, relay, "x:1"),
        tg.private_photo(carla, "see"),
    ]


def test_fuzz_telegram_without_the_secret_changes_nothing_and_never_5xx(webhook_rig, caplog):
    rig = webhook_rig
    before, calls = table_counts(rig.app), len(rig.fake.calls)
    update = rig.fake.private_text(rig.customer(555, "Carla"), "hello")

    with httpx.Client(base_url=rig.base_url, timeout=30) as client:

        @FUZZ
        @given(
            body=raw_bodies | st.just(json.dumps(update).encode()),
            content_type=content_types,
            secret=st.none()
            | header_values.filter(lambda s: s != SECRET)
            | st.sampled_from([SECRET[:-1], SECRET + "x"]),
        )
        def check(body, content_type, secret):
            headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret.encode("latin-1")}
            response = _post(client, "/telegram/webhook", body, headers, content_type)
            assert response.status_code in (403, 413), (response.status_code, response.text)

        check()
    assert table_counts(rig.app) == before
    assert len(rig.fake.calls) == calls
    assert safety_net_records(caplog.records) == []


def test_fuzz_telegram_with_the_secret_never_5xx(webhook_rig, caplog):
    rig = webhook_rig
    templates = _telegram_templates(rig)
    updates = st.sampled_from(templates).flatmap(spoiled).map(lambda update: json.dumps(update).encode())

    with httpx.Client(base_url=rig.base_url, timeout=30) as client:

        @FUZZ
        @given(body=updates | raw_bodies, content_type=content_types)
        def check(body, content_type):
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            response = _post(client, "/telegram/webhook", body, headers, content_type)
            assert response.status_code < 500, (response.status_code, response.text, body[:300])

        check()
    assert safety_net_records(caplog.records) == []
