"""A plugin installed with pip extends chatcrm without any edit to chatcrm: the example plugin is
pip-installed into a directory of its own, and a fresh chatcrm process finds it through its
``chatcrm`` entry point alone (no CHATCRM_PLUGINS, no code naming it) and gets its command, job,
route and event listener."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugins" / "chatcrm-example"

# Run in a fresh interpreter whose only route to the plugin is the installed distribution.
PROBE = r"""
import asyncio, json, sys
import httpx
from bot.bootstrap import build_app
from bot.settings import Settings
from bot.web import build_web_app

app = build_app(Settings.from_env())
web = build_web_app(app, [])

async def get(path, token):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://test") as client:
        return (await client.get(path, headers={"Authorization": f"Bearer {token}"})).status_code

info = {i.name: i for i in app.plugins.infos}["example"]
print(json.dumps({
    "source": info.source,
    "version": info.version,
    "module": sys.modules["chatcrm_example"].__file__,
    "command": app.router.get("quote") is not None,
    "jobs": sorted(app.plugins.jobs),
    "listeners": sorted(app.plugins.event_listeners(app)),
    "route_wrong_token": asyncio.run(get("/plugins/example/quote?customer=x&product=y&qty=1", "wrong")),
    "unknown_route": asyncio.run(get("/plugins/nothing", "wrong")),
}))
app.close()
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The example plugin as `pip install` puts it in site-packages (a wheel, built here without a download)."""
    target = tmp_path_factory.mktemp("site")
    # Built from a copy: setuptools writes build/ and *.egg-info next to the sources, and an egg-info
    # in the example's folder would register the plugin a second time for tests that put it on the path.
    source = tmp_path_factory.mktemp("src") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--no-cache-dir", "--target", str(target), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def test_a_pip_installed_plugin_adds_a_command_job_route_and_listener(installed, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TELEGRAM_", "CHATCRM_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(installed), str(ROOT)]),
        DATABASE_URL=f"sqlite:///{tmp_path / 'crm.db'}",
        CHATCRM_EXAMPLE_TOKEN="right",
    )
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    # Loaded from the installed copy, as a third-party distribution, not from the source tree.
    assert found["module"].startswith(str(installed)), found["module"]
    assert found["source"] != "built-in" and found["version"] == "0.1.0"
    assert found["command"]
    assert "example.quote_followups" in found["jobs"]
    assert "plugin:example" in found["listeners"]
    # The plugin's route is mounted: it checks its own token (401), where an unknown path is 404.
    assert (found["route_wrong_token"], found["unknown_route"]) == (401, 404)

    listed = subprocess.run(
        [sys.executable, "-m", "bot.cli", "plugins"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    line = next(row for row in listed.stdout.splitlines() if row.startswith("example "))
    for hook in ("register_commands", "register_jobs", "register_routes", "on_event", "card_sections"):
        assert hook in line
