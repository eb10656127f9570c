"""The layers of design.md hold: crm_core never imports the bot layer or a chat SDK; handlers never
import an SDK or an adapter; adapters reach the CRM through the bot core, never crm_core.services;
the Telegram adapter keeps no support workflow of its own; nothing connects at import time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SDKS = ("slack_bolt", "slack_sdk", "telegram")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _offenders(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    bad = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        hits = sorted(m for m in _imports(path) if m.split(".")[0] in forbidden or m.startswith(forbidden))
        if hits:
            bad[str(path.relative_to(ROOT))] = hits
    return bad


def test_crm_core_imports_neither_bot_nor_sdks():
    assert _offenders("crm_core", ("bot", *SDKS)) == {}


def test_handlers_import_no_sdk_and_no_adapter():
    assert _offenders("bot/handlers", (*SDKS, "bot.adapters")) == {}


def test_adapters_go_through_the_core_not_the_services():
    assert _offenders("bot/adapters", ("crm_core.services",)) == {}


def test_the_telegram_adapter_holds_no_customer_allow_list_or_support_flow():
    folder = ROOT / "bot" / "adapters" / "telegram"
    assert not (folder / "support.py").exists() and not (folder / "conversation.py").exists()
    source = "\n".join(path.read_text(encoding="utf-8") for path in folder.rglob("*.py"))
    assert "CUSTOMER_COMMANDS" not in source


def test_the_neutral_support_flow_names_no_platform():
    for path in (ROOT / "bot" / "handlers" / "support.py", ROOT / "crm_core" / "services" / "support_inbox.py"):
        text = path.read_text(encoding="utf-8").lower()
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        literals = {n.value.lower() for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not any("telegram" in value or "slack" in value for value in literals), path
        assert "platform.telegram" not in code and "platform.slack" not in code, path


def test_importing_the_packages_connects_to_nothing():
    # A database URL that cannot work: importing must still succeed because nothing connects.
    code = "import bot.cli, bot.bootstrap, bot.handlers, crm_core.models, crm_core.search, crm_core.demo"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "PATH": ""},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


def _string_constants(path: Path) -> set[str]:
    """String literals in code, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    }


def test_no_core_module_names_a_platform():
    """Core asks the platforms' declarations (crm_core.platforms); only a platform's own folder names it.
    Migrations are history and are left out."""
    names = {"slack", "telegram", "console"}
    core = [
        p
        for p in sorted((ROOT / "crm_core").rglob("*.py")) + sorted((ROOT / "bot").rglob("*.py"))
        if "migrations" not in p.parts and "adapters" not in p.parts and p.name != "cli.py"
    ]
    offenders = {str(p.relative_to(ROOT)): sorted(_string_constants(p) & names) for p in core}
    assert {path: found for path, found in offenders.items() if found} == {}


def _reads_environment(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv"):
            if isinstance(node.value, ast.Name) and node.value.id == "os":
                return True
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(alias.name in ("environ", "getenv") for alias in node.names):
                return True
    return False


def test_only_settings_and_the_cli_read_the_environment():
    """Settings are read once (bot.settings, for the CLI) and passed in. Alembic's env.py is Alembic's
    own entry point (``alembic upgrade`` run by hand) and is the one exception."""
    allowed = {"bot/settings.py", "bot/cli.py", "crm_core/migrations/env.py"}
    readers = {
        str(p.relative_to(ROOT))
        for folder in ("bot", "crm_core")
        for p in (ROOT / folder).rglob("*.py")
        if _reads_environment(p)
    }
    assert readers - allowed == set()
