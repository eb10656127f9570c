"""`chatcrm --help`, `chatcrm mine --help` and `chatcrm mine` on a file start without the heavy libraries.

Start-up time is checked through what gets imported, which is deterministic, never through a clock:
each command runs as a real process under ``python -X importtime -m bot.cli``, and the modules it
imported are read from that report. benchmarks/bench_startup.py measures the time itself.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The database, the chat SDKs, the template engine and the analytics stack: none is needed to print help
# or to mine a basket file.
HEAVY = ("sqlalchemy", "alembic", "sklearn", "scipy", "matplotlib", "slack_sdk", "slack_bolt", "telegram", "jinja2")


def imported_by(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``python -m bot.cli ARGS`` as a user would and return it with every module it imported."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TELEGRAM_", "CHATCRM_"))},
        **(env or {}),
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    # Lines look like "import time:       123 |        456 |     package.module".
    modules = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    return result, modules


def heavy(modules: set[str], packages: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in packages)


@pytest.mark.parametrize("args", [["--help"], ["mine", "--help"]], ids=["help", "mine-help"])
def test_help_imports_no_heavy_library(args):
    result, modules = imported_by(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: chatcrm")
    # Help needs not even numpy.
    assert heavy(modules, (*HEAVY, "numpy")) == []


def test_mining_a_basket_file_imports_neither_the_database_nor_the_sdks(tmp_path):
    baskets = tmp_path / "baskets.txt"
    baskets.write_text("milk,bread\nmilk,eggs\nbread,eggs,milk\nmilk,bread\n", encoding="utf-8")
    result, modules = imported_by(
        "mine", "--baskets", str(baskets), "--min-support", "0.5", "--min-confidence", "0.6", "--format", "csv"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "antecedent,consequent,support,confidence,lift,count"
    assert "bread,milk,0.75,1.0,1.0,3" in result.stdout.splitlines()
    assert heavy(modules) == []
    # With the C accelerator built, mining a file needs not even numpy (crm_core.mining.lean); without
    # it, numpy is the miner's one dependency.
    from crm_core.mining import accelerator

    assert ("numpy" in modules) == (not accelerator.available())
    if accelerator.available():
        # Nor typing (12M instructions of a 220M run on Groceries) or numbers: the records are made with
        # collections.namedtuple, and the annotations are only read by type checkers.
        assert {"typing", "numbers"} & modules == set()


def test_rules_as_json_from_a_basket_file_need_not_the_json_module(tmp_path):
    from crm_core.mining import accelerator

    if not accelerator.available():
        pytest.skip("the C accelerator is not built: the numpy engine and json do the work")
    baskets = tmp_path / "baskets.txt"
    baskets.write_text("milk,bread\nmilk,eggs\nbread,eggs,milk\nmilk,bread\n", encoding="utf-8")
    result, modules = imported_by(
        "mine", "--baskets", str(baskets), "--min-support", "0.5", "--min-confidence", "0.6", "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('[{"antecedent": ["bread"], "consequent": "milk", "support": 0.75')
    # The C accelerator writes the JSON text (json.dumps' very bytes; tests/mining compares them).
    assert {"json", "typing", "numbers", "csv"} & modules == set()


def test_a_command_that_uses_the_database_is_seen_importing_it(tmp_path):
    # The probe above would miss nothing: the same report lists SQLAlchemy for `db status`.
    result, modules = imported_by("db", "status", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert "revision" in result.stdout, result.stderr
    assert {"sqlalchemy", "alembic"} <= modules


def test_a_command_that_builds_the_app_imports_neither_the_api_nor_numpy(tmp_path):
    # Every process that builds the app loads every plugin (the API's too), though only `chatcrm web`
    # serves routes and only model training and mining compute with arrays: FastAPI with pydantic's
    # models, and numpy, are imported where they are used. `chatcrm worker`, `console`, `import` and
    # `demo` start that much sooner (half a second of CPU at each start).
    result, modules = imported_by(
        "console",
        stdin="/customer new Probe\n",
        env={
            "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
            "CHATCRM_SECRET_KEY": "a-test-secret-key-of-enough-length",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "Probe" in result.stdout, result.stdout
    assert "sqlalchemy" in modules
    assert heavy(modules, ("fastapi", "pydantic", "numpy")) == []


def test_the_cli_module_imports_only_argparse_os_and_sys_at_the_top():
    tree = ast.parse((ROOT / "bot" / "cli.py").read_text(encoding="utf-8"))
    top = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            top.add(node.module or "")
    # collections.abc only names the annotation of main()'s argv; it is an alias of a module Python always loads.
    assert top <= {"__future__", "argparse", "os", "sys", "collections.abc"}


def test_a_command_line_builds_only_its_own_subcommands_parser(tmp_path, monkeypatch, capsys):
    # Each parser argparse builds looks its strings up in gettext's catalogs (a locale lookup and stat calls
    # each): building every subcommand's parser was 5 % of mining Groceries from a file.
    import gettext

    from bot import cli

    lookups = []
    real_dgettext = gettext.dgettext
    monkeypatch.setattr(
        gettext, "dgettext", lambda domain, message: lookups.append(message) or real_dgettext(domain, message)
    )
    baskets = tmp_path / "baskets.txt"
    baskets.write_text("milk,bread\nmilk,eggs\nbread,eggs,milk\n", encoding="utf-8")
    args = ["mine", "--baskets", str(baskets), "--min-support", "0.5", "--min-confidence", "0.6", "--format", "csv"]
    assert cli.main(args) == 0
    assert len(lookups) <= 8, lookups
    assert "bread,milk" in capsys.readouterr().out

    # An error's usage line still names every subcommand, and an unknown one is told apart from them.
    with pytest.raises(SystemExit):
        cli.main(["mine", "--bogus"])
    assert "{run,console,web,worker,db," in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["bogus"])
    assert "invalid choice: 'bogus' (choose from 'run', 'console'" in capsys.readouterr().err
