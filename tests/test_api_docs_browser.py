"""The API docs page (``/api/docs``) in a real headless Chromium, served by chatcrm web's ASGI app
under uvicorn on loopback: the page runs its JavaScript, loads the OpenAPI document and lists the
endpoints, and no request leaves loopback.

Every host name but 127.0.0.1 resolves to nothing (``--host-resolver-rules``), so a fetch from a CDN
would fail visibly; Chromium's network log records every URL the page asked for, and the test checks
that each one is on loopback.
Skipped where Debian's ``chromium`` package is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bot.bootstrap import build_app
from bot.settings import Settings
from bot.web import build_web_app
from tests.conftest import fresh_database
from tests.fakes.servers import serve_asgi
from tests.support import TEST_SECRET_KEY

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium; .ci/run installs it)"
)
# Virtual time Chromium lets pass for the page's scripts and fetches before it dumps or shoots.
BUDGET_MS = "5000"


def _chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return _run_chromium(url, profile, *args)
    except subprocess.TimeoutExpired:
        # Once in a few dozen runs on a busy machine Chromium hung at start and never loaded the page;
        # a second launch is the cure (a page that really hangs hangs again and fails).
        shutil.rmtree(profile, ignore_errors=True)
        return _run_chromium(url, profile, *args)


def _run_chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            # Root in a container has no user namespace for the sandbox.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--metrics-recording-only",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--virtual-time-budget={BUDGET_MS}",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _page_requests(net_log: Path) -> set[str]:
    """Every URL the page asked for (its scripts, styles, fetches): requests with an initiator. Chromium's
    own background calls (clock check, component updates) say "not an origin" and are left out; they
    are not the page's, and they fail anyway, as every host but loopback resolves to nothing."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = set()
    for event in log["events"]:
        params = event.get("params", {})
        if event["type"] == start and "url" in params and params.get("initiator") != "not an origin":
            urls.add(params["url"])
    return urls


def test_docs_page_lists_the_endpoints_in_chromium_without_leaving_loopback(tmp_path, sqlite_template):
    url = next(fresh_database("sqlite", tmp_path, sqlite_template, None))
    app = build_app(Settings(database_url=url, secret_key=TEST_SECRET_KEY))
    try:
        with serve_asgi(build_web_app(app, [])) as base_url:
            page = f"{base_url}/api/docs"
            net_log, screenshot = tmp_path / "net-log.json", tmp_path / "docs.png"
            # One run: the DOM after the scripts ran on stdout, and the screenshot of the same page.
            dumped = _chromium(
                page,
                tmp_path / "profile",
                "--dump-dom",
                f"--screenshot={screenshot}",
                "--window-size=1280,2400",
                f"--log-net-log={net_log}",
            )
    finally:
        app.close()
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    # Swagger UI rendered the document: the customer endpoints, and the server they live under.
    assert 'class="swagger-ui' in dom and "chatcrm API" in dom
    for path in ("/customers", "/customers/{customer_id}", "/orders/bulk"):
        assert f'data-path="{path}"' in dom, path
    assert "/api/v1" in dom
    requested = _page_requests(net_log)
    assert f"{base_url}/api/v1/openapi.json" in requested
    assert f"{base_url}/api/docs/static/swagger-ui-bundle.js" in requested
    outside = sorted(u for u in requested if urlsplit(u).hostname != "127.0.0.1")
    assert outside == [], outside
    png = screenshot.read_bytes()
    # A PNG, and not a blank page (a white 1280x2400 PNG is a few kB; the rendered docs are far more).
    assert png.startswith(b"\x89PNG") and len(png) > 50_000, len(png)
