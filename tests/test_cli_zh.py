"""Every ``chatcrm`` subcommand in Chinese (CHATCRM_LANGUAGE=zh), run as an admin runs it.

The help texts, mining a basket file, the refusals of bad settings and arguments, ``web`` and ``worker`` run as
real processes, the language chosen before anything is imported. The admin session's database commands run
in this process (``bot.cli.main``, the ``in_chinese`` fixture), all but its first (``db status``, a real
process on each database): a process start imports the app again, 0.7 s of CPU each, and ``main`` reads
CHATCRM_LANGUAGE the same way in both.

Its ``--help``, argparse's own words, progress and summary lines and one-line errors must hold no English
word but what is not English UI: command and option names (and the values one types for them), setting
names, product names (tests/test_i18n_pseudo.NAMES), units, and data (file names, table and column names,
plugin names, the items of a basket file). The check is the pseudo-locale test's (``leftovers``): the
failure lists, per command line, the words left over.

Machine-readable output stays as it is and is not checked: ``--format json``, CSV (``mine --format csv``,
``export``), and ``events tail`` (one event record per line: its type and JSON payload). ``worker`` and
``run`` keep running, so only their help and ``web``'s refusal (the same message's kind) are run here.
"""

from __future__ import annotations

import argparse
import contextvars
import io
import os
import re
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.cli import build_parser, main
from bot.progress import ProgressBar
from crm_core import i18n
from crm_core.models import Base
from tests.test_cli import ROOT, SECRET_KEY, chatcrm
from tests.test_i18n_pseudo import NAMES, leftovers

ZH = {"CHATCRM_LANGUAGE": "zh"}
# Units, abbreviations and terms an admin reads in Chinese text too (CRM 系统, ROC AUC).
UNITS = {"GiB", "ROC", "AUC", "CRM"}
# Products, formats and keys named in help texts, as they are in any language.
PRODUCTS = {"PostgreSQL", "SQLite", "SQLAlchemy", "Apache", "Spark", "Socket", "Mode", "TOML", "YAML", "SELECT", "Ctrl"}
# The database a backup came from (its manifest's source) and the README a message points to.
PRODUCTS |= {"sqlite", "postgresql", "README"}
# What a mapping file looks like (import --help): its syntax, not words.
SYNTAX = {"columns", "Column"}
_DEST = re.compile(r"[A-Za-z]+")


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and every (sub)parser under it."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _parsers(sub)
    return found


def _parser_words() -> set[str]:
    """Command names, option names, their placeholders and the values they take: typed as they are."""
    words: set[str] = set()
    for parser in _parsers(build_parser()):
        words.update(_DEST.findall(parser.prog))
        for action in parser._actions:
            for text in [*action.option_strings, action.dest, action.metavar or "", *(action.choices or ())]:
                words.update(_DEST.findall(str(text)))
    return words


def _data_words() -> set[str]:
    """Table and column names (``keys status`` lists the encrypted columns), and the plugins' names and hooks."""
    words = {table.name for table in Base.metadata.sorted_tables}
    words |= {column.name for table in Base.metadata.sorted_tables for column in table.columns}
    return {w for name in words for w in _DEST.findall(name)}


def _event_words() -> set[str]:
    """Event types (``events --type deal.won``): typed as they are."""
    from crm_core.events import EVENT_TYPES

    return {w for name in EVENT_TYPES for w in _DEST.findall(name)}


ALLOWED = NAMES | UNITS | PRODUCTS | SYNTAX | _parser_words() | _data_words() | _event_words()


def _help_lines() -> list[list[str]]:
    lines = [["--help"]]
    for parser in _parsers(build_parser())[1:]:
        lines.append([*parser.prog.split()[1:], "--help"])
    return lines


def _english(result, allowed: set[str], *hide: str) -> set[str]:
    """The English words left in what ``result`` printed; the ``hide`` texts (database URLs, the test's
    folder with the file names under it) are data."""
    text = result.stdout + result.stderr
    for part in hide:
        text = re.sub(re.escape(part) + r"[\w./-]*", " ", text)
    assert "Traceback" not in text, text
    return leftovers(text, allowed)


@pytest.mark.parametrize("line", _help_lines(), ids=lambda line: "-".join(line[:-1]) or "chatcrm")
def test_every_help_is_chinese(line):
    result = chatcrm(*line, env=ZH)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("用法：chatcrm")
    found = _english(result, ALLOWED)
    assert not found, f"chatcrm {' '.join(line)} left English words: {', '.join(sorted(found))}\n{result.stdout}"


def test_mining_a_basket_file_argparse_errors_and_bad_settings_are_chinese(tmp_path):
    baskets = tmp_path / "baskets.txt"
    baskets.write_text("milk,bread\nmilk,eggs\nbread,eggs,milk\nmilk,bread\n", encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    database = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    runs = [
        (["mine", "--baskets", str(baskets), "--min-support", "0.5", "--min-confidence", "0.6"], {}),
        (["mine", "--baskets", str(baskets), "--min-support", "0.99", "--min-confidence", "0.99"], {}),
        (["mine", "--baskets", str(empty), "--min-support", "0.5", "--min-confidence", "0.6"], {}),
        (["mine", "--baskets", str(tmp_path / "nope.txt"), "--min-support", "1", "--min-confidence", "0.5"], {}),
        (["mine", "--baskets", str(baskets)], {}),
        (["mine", "--baskets", str(baskets), "--as-of", "2011-12-09"], {}),
        (["mine", "--baskets", str(baskets), "--min-support", "lots", "--min-confidence", "2"], {}),
        (["mine", "--max-len", "0"], {}),
        (["db", "bogus"], {}),
        (["db"], {}),
        ([], {}),
        (["demo", "--unknown"], {}),
        (["db", "status"], {"DATABASE_URL": "mysql://x"}),
        (["db", "status"], {"DATABASE_URL": "not a url"}),
        (["db", "status"], {**database, "CHATCRM_CURRENCY": "EURO"}),
        (["db", "status"], {**database, "CHATCRM_EDIT_SCOPE": "mine"}),
        (["console"], {**database, "CHATCRM_ADMINS": "slack"}),
        (["web"], database),
    ]
    found = {}
    for args, env in runs:
        result = chatcrm(*args, env={**ZH, **env})
        # The items of the basket file and what was typed (a bad value is quoted back) are data.
        allowed = ALLOWED | {"milk", "bread", "eggs", "lots", "bogus", "unknown", "mysql", "url", "EURO", "mine"}
        # What a setting may be set to, listed back when it is set to something else.
        allowed |= {"slack", "own", "all"}
        words = _english(result, allowed, str(tmp_path))
        if words:
            found[" ".join(args)] = (words, result.stdout + result.stderr)
    assert not found, "\n".join(f"chatcrm {line}: {', '.join(sorted(w))}\n{out}" for line, (w, out) in found.items())


Chatcrm = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def in_chinese(monkeypatch, capfd) -> Iterator[Chatcrm]:
    """``chatcrm`` run in this process as ``tests.test_cli.chatcrm`` runs it in a new one: the same environment
    (no SLACK_/TELEGRAM_/CHATCRM_ settings but the secret key and CHATCRM_LANGUAGE=zh), an empty stdin, argparse's
    exit as the exit code, everything written to the two file descriptors as its output, and the warnings
    Python would print there (its default filters: no deprecations) added to stderr. Context variables (the
    language of the moment) are each command's own; the CLI's language and argparse's words are English again
    afterwards, for the tests after this one in this process."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "TELEGRAM_", "CHATCRM_")):
            monkeypatch.delenv(name)
    for name, value in {**SECRET_KEY, **ZH}.items():
        monkeypatch.setenv(name, value)
    # What a command would read (none of these does: ``console --as ghost`` refuses first); run_console's
    # default stdin is the sys.stdin of its import, so a command that did read would need it passed.
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capfd.readouterr()
        with warnings.catch_warnings(record=True) as caught:
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)
            try:
                code = contextvars.copy_context().run(main, list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        out, err = capfd.readouterr()
        err += "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno, w.line) for w in caught)
        return subprocess.CompletedProcess(["chatcrm", *args], code, out, err)

    try:
        yield run
    finally:
        from bot.cli_language import speak

        speak("en")


def test_an_admin_session_in_chinese(database_url, tmp_path, in_chinese):
    """The database commands one after another, as an admin would: status, demo data, import and export,
    mining and the churn model, plugins, backup and restore, the keys; and what they refuse. The first runs
    as a real process (start-up in Chinese on this database), the others in this process (``in_chinese``)."""
    env = {**ZH, "DATABASE_URL": database_url}
    restored = f"sqlite:///{tmp_path / 'restored.db'}"
    people = tmp_path / "people.csv"
    people.write_text("name,email\n王小明,wang@example.cn\n李华,li@example.cn\n", encoding="utf-8")
    damaged = tmp_path / "damaged.backup"
    backup_file = tmp_path / "crm.backup"
    runs: list[tuple[list[str], dict[str, str]]] = [
        (["db", "status"], {}),
        (["db", "upgrade"], {}),
        (["demo", "--customers", "30", "--lang", "zh"], {}),
        (["demo", "--lang", "zh"], {}),
        (["import", "customers", str(people)], {}),
        (["import", "customers", str(people), "--dry-run"], {}),
        (["import", "customers", str(tmp_path / "missing.csv")], {}),
        (["export", "customers", "--out", str(tmp_path / "customers.csv")], {}),
        (["export", "customers", "--format", "xlsx"], {}),
        (["mine"], {}),
        (["mine", "--window", "forever"], {}),
        (["model", "train"], {}),
        (["plugins"], {}),
        (["keys", "status"], {}),
        (["keys", "rotate"], {}),
        (["backup", "--out", str(backup_file)], {}),
        (["restore", "--check", str(backup_file)], {}),
        (["restore", str(backup_file)], {}),
        (["db", "status"], {"DATABASE_URL": restored}),
        (["restore", str(backup_file)], {"DATABASE_URL": restored}),
        (["restore", str(tmp_path / "missing.backup")], {}),
        (["restore", "--check", str(damaged)], {}),
        (["console", "--as", "ghost"], {}),
    ]
    found = {}
    for i, (args, extra) in enumerate(runs):
        if args[:2] == ["restore", "--check"] and args[2] == str(damaged):
            damaged.write_bytes(backup_file.read_bytes()[:-40])
        result = (chatcrm if i == 0 else in_chinese)(*args, env={**env, **extra})
        plugins = {w for line in result.stdout.splitlines() for w in _DEST.findall(line.split(" ")[0])}
        allowed = ALLOWED | ({"ghost"} if "ghost" in args else set()) | ({"forever"} if "forever" in args else set())
        if args == ["plugins"]:
            allowed |= plugins
        words = _english(result, allowed, database_url, restored, _masked(database_url), str(tmp_path))
        if words:
            found[" ".join(args)] = (words, result.stdout + result.stderr)
    assert not found, "\n".join(f"chatcrm {line}: {', '.join(sorted(w))}\n{out}" for line, (w, out) in found.items())
    assert Path(tmp_path / "customers.csv").exists() and backup_file.exists()


def _masked(url: str) -> str:
    return sa.make_url(url.replace("postgresql://", "postgresql+psycopg://", 1)).render_as_string(hide_password=True)


def test_the_worker_without_a_platform_says_so_in_chinese(tmp_path):
    """``chatcrm worker`` keeps running: its first line is read, then it is stopped as a service manager does."""

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TELEGRAM_", "CHATCRM_"))},
        **ZH,
        **SECRET_KEY,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "worker"], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        first = worker.stderr.readline()
        assert first.startswith("chatcrm worker: 未配置任何聊天平台"), first
        assert not leftovers(first, ALLOWED), first
        while "started outbox sender" not in (line := worker.stderr.readline()):
            assert line, "the worker ended before starting its services"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.stderr.close()


def test_the_progress_bar_counts_rows_in_chinese():

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    with i18n.use_language("zh"):
        bar = ProgressBar("正在备份", stream=screen)
        bar(1200, 5000)
        bar.per_table("customers", 3)
        bar.close()
    shown = screen.getvalue()
    assert "1,200/5,000 行" in shown and "3 行" in shown
    assert not leftovers(shown.replace("customers", ""), ALLOWED), shown
