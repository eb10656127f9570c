"""The chatcrm command as a user runs it: piped console, demo seeding, clear one-line failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.shared_data import shared_file

ROOT = Path(__file__).resolve().parents[1]


# As a server deployment has one: without it the first start of an embedded database prints where it
# generated one, and PostgreSQL warns at every start (tests/test_backup.py covers both).
SECRET_KEY = {"CHATCRM_SECRET_KEY": "a-test-secret-key-of-enough-length"}


def chatcrm(*args: str, env: dict[str, str], stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TELEGRAM_", "CHATCRM_"))},
        **SECRET_KEY,
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=120,
    )


def test_piped_console_prints_the_acme_card(database_url):
    env = {"DATABASE_URL": database_url}
    seeded = chatcrm("demo", "--customers", "60", env=env)
    assert seeded.returncode == 0, seeded.stderr
    assert seeded.stdout.startswith("Demo data added: 8 users, 60 customers")
    result = chatcrm("console", env=env, stdin="/customer acme\n/customer zzzqqq\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Acme Corp · account\n")
    assert "  Owner " in out and "Open deals (" in out and "Recent interactions" in out
    assert "No customer matches 'zzzqqq'." in out
    again = chatcrm("demo", env=env)
    assert again.stdout.strip() == "The demo data is already there; nothing added."


def test_console_as_a_user_has_that_users_role(database_url):
    env = {"DATABASE_URL": database_url}
    chatcrm("demo", "--customers", "20", env=env)
    result = chatcrm("console", "--as", "Victor Hale", env=env, stdin="/whoami\n/customer new Sneaky\n")
    assert any(line.split() == ["Role", "viewer"] for line in result.stdout.splitlines())
    assert "Accounts  console:victor\n" in result.stdout
    assert "Your role (viewer) can't use /customer new." in result.stdout


def test_run_seeds_the_embedded_default_once(tmp_path):
    # No DATABASE_URL: the SQLite file chatcrm.db in the working directory.
    first = chatcrm("run", env={}, stdin="/customer acme\n", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "chatcrm.db").exists()
    assert "Seeding the demo data set" in first.stderr
    assert first.stdout.startswith("Acme Corp · account")
    second = chatcrm("run", env={}, stdin="/customer acme\n", cwd=tmp_path)
    assert "Seeding" not in second.stderr
    assert second.stdout == first.stdout


def test_unreachable_database_is_one_line_with_masked_password():
    result = chatcrm("console", env={"DATABASE_URL": "postgresql://crm:s3cret@127.0.0.1:1/crm"})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("chatcrm: cannot reach the database at postgresql+psycopg://crm:***@127.0.0.1:1/crm")
    assert "s3cret" not in result.stderr and "Traceback" not in result.stderr


def test_bad_database_url_and_bad_setting_are_one_line():
    result = chatcrm("console", env={"DATABASE_URL": "not a url"})
    assert result.returncode == 1
    assert result.stderr.startswith("chatcrm: DATABASE_URL is not a valid database URL")
    result = chatcrm("console", env={"CHATCRM_ADMINS": "slack"})
    assert result.returncode == 1
    assert result.stderr.strip() == (
        # Settings are read before the platform plugins load, so the form is described, not examples.
        "chatcrm: CHATCRM_ADMINS: 'slack' is not a platform identity (write it as <platform>:<user id>)"
    )


@pytest.mark.parametrize("empty_database_url", ["postgresql"], indirect=True)
def test_postgres_behind_refuses_then_db_upgrade_fixes_it(empty_database_url):
    env = {"DATABASE_URL": empty_database_url}
    refused = chatcrm("console", env=env, stdin="/help\n")
    assert refused.returncode == 1
    assert "run `chatcrm db upgrade` first" in refused.stderr
    assert "Traceback" not in refused.stderr
    status = chatcrm("db", "status", env=env)
    assert status.returncode == 1 and "behind" in status.stdout
    upgraded = chatcrm("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert chatcrm("db", "status", env=env).returncode == 0
    assert chatcrm("console", env=env, stdin="/help\n").returncode == 0


def test_web_says_what_is_not_configured(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    web = chatcrm("web", env=env)
    assert web.returncode == 2 and "no platform is configured" in web.stderr


def test_worker_without_a_platform_delivers_to_the_console_and_stops_on_sigterm(tmp_path):
    import signal

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "TELEGRAM_", "CHATCRM_"))},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        **SECRET_KEY,
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "worker"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = worker.stderr.readline()
        assert "no chat platform is configured" in first and "console delivery" in first
        # SIGTERM is handled once the services run.
        while "started outbox sender" not in (line := worker.stderr.readline()):
            assert line, "the worker ended before starting its services"
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        worker.kill()


def test_import_orders_prints_a_report(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    path = tmp_path / "orders.csv"
    path.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536365,85123A,WHITE HEART,6,2010-12-01 08:26:00,2.55,17850,United Kingdom\n"
        "536366,22633,HAND WARMER,x,2010-12-01 08:28:00,1.85,17850,United Kingdom\n",
        encoding="utf-8",
    )
    result = chatcrm("import", "orders", str(path), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Read 2 rows.",
        "Created: 1 customer, 1 product, 1 order, 1 order line.",
        "Skipped 1 malformed row:",
        "  row 3: Quantity 'x' is not a number",
        f"Every problem is listed in {tmp_path / 'orders.errors.csv'}.",
    ]
    assert (tmp_path / "orders.errors.csv").read_text(encoding="utf-8").splitlines() == [
        "row,column,value,reason",
        "3,Quantity,x,Quantity 'x' is not a number",
    ]
    missing = chatcrm("import", "orders", str(tmp_path / "nope.csv"), env=env)
    assert missing.returncode == 1 and missing.stderr.strip().endswith("no such file: " + str(tmp_path / "nope.csv"))
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("a,b\n", encoding="utf-8")
    failed = chatcrm("import", "orders", str(wrong), env=env)
    assert failed.returncode == 1 and "nothing was imported" in failed.stderr


def test_mine_a_basket_file_as_json():
    import json

    result = chatcrm(
        "mine",
        "--baskets",
        str(shared_file("groceries.csv")),
        "--min-support",
        "0.001",
        "--min-confidence",
        "0.8",
        "--max-len",
        "10",
        "--format",
        "json",
        env={},
    )
    assert result.returncode == 0, result.stderr
    rules = json.loads(result.stdout)
    assert len(rules) == 410
    assert set(rules[0]) == {"antecedent", "consequent", "support", "confidence", "lift", "count"}


def test_mine_reports_bad_input(tmp_path):
    baskets = tmp_path / "b.txt"
    baskets.write_text("a b\nb c\n", encoding="utf-8")
    bad = chatcrm("mine", "--baskets", str(baskets), "--min-support", "2.5", "--min-confidence", "0.5", env={})
    # Checked as the argument is read (a usage error, exit 2), so argparse says it in the CLI's language.
    assert bad.returncode == 2
    assert bad.stderr.splitlines()[-1] == (
        "chatcrm mine: error: argument --min-support: '2.5' is not a support (a fraction like 0.001 or a count like 10)"
    )
    missing = chatcrm("mine", "--baskets", str(tmp_path / "x"), "--min-support", "1", "--min-confidence", "0.5", env={})
    assert missing.returncode == 1 and "no such file" in missing.stderr
    ok = chatcrm(
        "mine", "--baskets", str(baskets), "--min-support", "1", "--min-confidence", "0.5", "--format", "csv", env={}
    )
    assert ok.returncode == 0 and ok.stdout.splitlines()[0].startswith("antecedent")


def test_console_as_an_unknown_user_is_one_line(database_url):
    result = chatcrm("console", "--as", "ghost", env={"DATABASE_URL": database_url})
    assert result.returncode == 1
    assert result.stderr == "chatcrm: no user called 'ghost'\n"


@pytest.mark.parametrize("url", ["mysql://x", "oracle://scott:tiger@db/x"])
def test_an_unsupported_database_is_one_line(url):
    result = chatcrm("db", "status", env={"DATABASE_URL": url})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "is not supported; use sqlite:///path/to/file.db or postgresql://user@host/dbname" in lines[0]
    assert "tiger" not in result.stderr


def test_import_and_export_commands(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    people = tmp_path / "people.csv"
    people.write_text("Full Name;Mail\nAda;ada@example.com\nBad;not-an-email\n", encoding="utf-8")
    wrong = chatcrm("import", "customers", str(people), "--sep", ",", env=env)
    assert wrong.returncode == 1
    assert (
        "no column matches 'name'; the columns are: 'Full Name;Mail'; the file seems to be separated by ';'"
        in wrong.stderr
    )
    mapping = tmp_path / "people.toml"
    mapping.write_text('[columns]\nname = "Full Name"\nemail = "Mail"\n', encoding="utf-8")
    dry = chatcrm("import", "customers", str(people), "--mapping", str(mapping), "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "Dry run: checked everything, wrote nothing." in dry.stdout and "Would create: 1 customer." in dry.stdout
    assert (tmp_path / "people.errors.csv").read_text(encoding="utf-8").splitlines()[1] == (
        "3,Mail,not-an-email,'not-an-email' is not an email address"
    )
    out = tmp_path / "customers.xlsx"
    exported = chatcrm("export", "customers", "--out", str(out), env=env)
    assert exported.returncode == 0 and "Exported 0 customers rows" in exported.stderr
    done = chatcrm("import", "customers", str(people), "--map", "name=Full Name", "--map", "email=Mail", env=env)
    assert "Created: 1 customer." in done.stdout


@pytest.mark.parametrize("command", ["web", "worker", "run"])
def test_servers_on_postgresql_refuse_to_start_without_a_secret_key(command):
    # No database is touched: the check comes before connecting, so any PostgreSQL URL will do.
    refused = chatcrm(command, env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "CHATCRM_SECRET_KEY": ""})
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chatcrm: CHATCRM_SECRET_KEY is not set: with PostgreSQL")
