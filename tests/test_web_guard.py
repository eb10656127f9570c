"""The guard around every route of ``chatcrm web``, plugin routes included: an error a route lets
escape is logged with a reference and answered with a 500 that shows the reference and no
traceback. And what routes share to read hostile input: ``read_body`` (a size limit, declared or
streamed) and ``ascii_int``."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.bootstrap import build_app
from bot.settings import Settings
from bot.web import build_web_app
from bot.web_guard import MAX_BODY_BYTES, ascii_int, read_body
from tests.fakes.servers import serve_asgi
from tests.support import TEST_SECRET_KEY


async def _broken(_request: Request) -> JSONResponse:
    raise RuntimeError("a bug in a plugin: secret=hunter2")


async def _echo_size(request: Request) -> JSONResponse:
    body = await read_body(request)
    if body is None:
        return JSONResponse({"error": "too large"}, status_code=413)
    return JSONResponse({"size": len(body)})


@pytest.fixture
def plugin_web(database_url):
    app = build_app(Settings(database_url=database_url, secret_key=TEST_SECRET_KEY))
    routes = [
        Route("/plugins/x/broken", _broken, methods=["GET"]),
        Route("/plugins/x/echo", _echo_size, methods=["POST"]),
    ]
    try:
        with serve_asgi(build_web_app(app, [], routes)) as base_url, httpx.Client(base_url=base_url) as client:
            yield client
    finally:
        app.close()


def test_an_error_escaping_a_route_is_a_500_with_a_reference_and_no_traceback(plugin_web, caplog):
    response = plugin_web.get("/plugins/x/broken")
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "internal error" and len(body["ref"]) == 8
    assert "hunter2" not in response.text and "Traceback" not in response.text
    [logged] = [r for r in caplog.records if r.name == "chatcrm.web"]
    assert f"ref={body['ref']}" in logged.getMessage() and "/plugins/x/broken" in logged.getMessage()
    assert logged.exc_info is not None
    # The app keeps serving.
    assert plugin_web.post("/plugins/x/echo", content=b"abc").json() == {"size": 3}


def test_read_body_refuses_bodies_over_the_limit_declared_or_streamed(plugin_web):
    assert plugin_web.post("/plugins/x/echo", content=b"x" * MAX_BODY_BYTES).json() == {"size": MAX_BODY_BYTES}
    assert plugin_web.post("/plugins/x/echo", content=b"x" * (MAX_BODY_BYTES + 1)).status_code == 413

    def chunks():
        for _ in range(3):
            yield b"x" * (MAX_BODY_BYTES // 2)

    assert plugin_web.post("/plugins/x/echo", content=chunks()).status_code == 413


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("0", 0),
        ("1700000000", 1700000000),
        ("²", None),
        ("١٢", None),
        ("+1", None),
        ("1_0", None),
        (" 1", None),
        ("9" * 309, None),
        ("", None),
        (None, None),
    ],
)
def test_ascii_int_reads_only_plain_ascii_digits(text, number):
    assert ascii_int(text) == number
