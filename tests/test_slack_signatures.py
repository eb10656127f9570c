"""Requests that Slack did not sign, or that were changed or are too old, get 401 and change nothing:
no database write, no call to Slack. A valid request afterwards is the barrier that shows nothing
was merely late."""

from __future__ import annotations

import json
import time

import pytest

from crm_core.models import AuditEntry, Customer, InboundEvent, Interaction
from crm_core.services import customers
from tests.fakes.slack_api import RESPONSE_URL
from tests.slack_support import (  # noqa: F401 - fixtures
    ADMIN,
    SIGNING_SECRET,
    SlackServer,
    block_action,
    event_callback,
    sign,
    slack,
    slack_api,
    slash_command,
)


def _now() -> int:
    return int(time.time())


# name -> (headers for the body, body actually sent) given the body Slack would have sent
CASES = {
    "no headers": lambda body: ({}, body),
    "no signature": lambda body: ({"X-Slack-Request-Timestamp": str(_now())}, body),
    "no timestamp": lambda body: ({"X-Slack-Signature": sign(body)["X-Slack-Signature"]}, body),
    "empty signature": lambda body: ({"X-Slack-Request-Timestamp": str(_now()), "X-Slack-Signature": ""}, body),
    "non-numeric timestamp": lambda body: (sign(body, timestamp="soon"), body),
    "fractional timestamp": lambda body: (sign(body, timestamp=f"{time.time():.3f}"), body),
    "negative timestamp": lambda body: (sign(body, timestamp="-1"), body),
    "timestamp 5 minutes and 1 second old": lambda body: (sign(body, timestamp=_now() - 301), body),
    "timestamp an hour old": lambda body: (sign(body, timestamp=_now() - 3600), body),
    "timestamp 6 minutes ahead": lambda body: (sign(body, timestamp=_now() + 360), body),
    "tampered body": lambda body: (sign(body), body.replace(b"Hacked", b"Hackex")),
    "body with a byte appended": lambda body: (sign(body), body + b"&x=1"),
    "wrong secret": lambda body: (sign(body, secret=SIGNING_SECRET[::-1]), body),
    "other signature version": lambda body: (
        {**sign(body), "X-Slack-Signature": "v1=" + sign(body)["X-Slack-Signature"][3:]},
        body,
    ),
    "signature of another timestamp": lambda body: (
        {**sign(body, timestamp=_now() - 10), "X-Slack-Request-Timestamp": str(_now())},
        body,
    ),
}


@pytest.fixture
def acme(slack: SlackServer) -> int:
    with slack.app.uow() as uow:
        return customers.create_customer(uow, "Acme Corp").id


def _state(slack: SlackServer) -> tuple[int, ...]:
    return tuple(slack.rows(model) for model in (Customer, Interaction, InboundEvent, AuditEntry))


def _assert_nothing_happened(slack: SlackServer, before: tuple[int, ...]) -> None:
    assert slack.api.calls() == []
    # The barrier: a valid command afterwards is answered; only its own traces exist then.
    answer = slack.ask("/help")
    assert "chatcrm commands" in json.dumps(answer)
    # users.info: the asker's locale, their language until they choose one with /lang.
    assert [c.method for c in slack.api.calls()] == ["auth.test", "users.info", RESPONSE_URL]
    customers_, interactions, inbox, audit = _state(slack)
    assert (customers_, interactions, audit) == (before[0], before[1], before[3])
    assert inbox == before[2] + 1  # the barrier's own key


@pytest.mark.parametrize("case", list(CASES))
def test_a_badly_signed_slash_command_gets_401_and_changes_nothing(slack, acme, case):
    body = slash_command("/note", f"#{acme} Hacked", user=ADMIN, response_url=slack.api.response_url("evil"))
    headers, sent = CASES[case](body)
    before = _state(slack)
    response = slack.post(sent, headers=headers, signed=False)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid signature"}
    _assert_nothing_happened(slack, before)


@pytest.mark.parametrize("case", ["tampered body", "timestamp an hour old", "no signature"])
def test_badly_signed_events_and_interactions_get_401_and_change_nothing(slack, acme, case):
    mention = event_callback(
        {
            "type": "app_mention",
            "user": ADMIN,
            "text": f"<@UBOT> note #{acme} Hacked",
            "ts": "1700000000.000100",
            "channel": "C1",
        }
    )
    button = block_action(
        {"action_id": "chatcrm.run.1", "value": f"/note #{acme} Hacked"}, response_url=slack.api.response_url("evil")
    )
    before = _state(slack)
    for body, content_type in ((mention, "application/json"), (button, "application/x-www-form-urlencoded")):
        headers, sent = CASES[case](body)
        response = slack.post(sent, headers=headers, signed=False, content_type=content_type)
        assert response.status_code == 401
    _assert_nothing_happened(slack, before)


def test_a_correctly_signed_request_is_accepted(slack, acme):
    # The counterpart of the cases above: the same command, signed properly, takes effect.
    slack.ask(f"/note #{acme} Hacked")
    assert slack.rows(Interaction) == 1
