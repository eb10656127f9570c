"""Fuzzing the whole OpenAPI document with schemathesis against the real API app (ASGI, SQLite) and
an admin's token: no request may get a 5xx, and every answer must fit the document.

Bounded so the suite stays fast and repeatable: a few examples per operation, derandomized (the
same examples every run), no shrinking. The rate limit is lifted for the fuzzer's token only by
building the app with a large budget; everything else (gate, body limits, idempotency) is as served.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from bot.api.app import build_api
from bot.api.config import ApiConfig
from bot.bootstrap import build_app
from bot.settings import Settings
from crm_core.models import Role
from crm_core.services import customers
from tests.conftest import fresh_database
from tests.support import TEST_SECRET_KEY, Chat

MAX_EXAMPLES = 5
# No 5xx; every answer's status, media type and body as the document declares them.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, sqlite_template) -> Iterator[tuple[schemathesis.BaseSchema, str]]:
    url = next(fresh_database("sqlite", tmp_path_factory.mktemp("fuzz"), sqlite_template, None))
    app = build_app(Settings(database_url=url, secret_key=TEST_SECRET_KEY))
    try:
        chat = Chat(app)
        secret = chat.say(chat.user("Fuzz Admin", Role.ADMIN), "/token new fuzz").reply.text
        assert secret.startswith("crm_")
        with app.uow() as uow:
            # Something for the ids the fuzzer tries to find.
            for n in range(3):
                customers.create_customer(uow, f"Fuzz Customer {n}", {"country": "DE"})
        api = build_api(app, ApiConfig(rate=1e9, burst=1e9))
        yield schemathesis.openapi.from_asgi("/openapi.json", api), secret
    finally:
        app.close()


def test_every_operation_survives_fuzzing(fuzzed):
    schema, token = fuzzed
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    for operation, mode in itertools.product(operations, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):

        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case):
            response = case.call(headers={"Authorization": f"Bearer {token}"})
            case.validate_response(response, checks=CHECKS)

        try:
            fuzz()
        except Exception as exc:  # every operation's failure, not only the first
            failures[f"{operation.label} ({mode.value})"] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{label}: {detail}" for label, detail in failures.items())
