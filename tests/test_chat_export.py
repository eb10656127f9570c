"""/export segment from chat: a segment's customers as xlsx or csv, with the columns of `chatcrm export
customers`, sent privately to whoever asked (console file, Slack upload, Telegram document), audited, and
refused to roles that may not carry a list away. Bad input writes nothing. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import tempfile

import openpyxl
import pytest
import sqlalchemy as sa

from bot.settings import Settings
from crm_core.models import AuditEntry, Role
from crm_core.services import customers
from tests.slack_support import slack, slack_api  # noqa: F401 - fixtures
from tests.support import TEST_SECRET_KEY, Chat

PEOPLE = [
    ("Zoë Müller", "zoe@example.de", "DE", "vip"),
    ("Dieter Dorn", "dieter@example.de", "DE", "vip"),
    ("Bo Berg", "bo@example.se", "SE", "vip"),
    ("Anna Alt", "anna@example.de", "DE", ""),
]


@pytest.fixture
def settings(database_url):
    return Settings(database_url=database_url, secret_key=TEST_SECRET_KEY, chat_export_max_rows=3)


def _seed(app) -> None:
    with app.uow() as uow:
        for name, email, country, tags in PEOPLE:
            fields = {"email": email, "country": country} | ({"tags": tags} if tags else {})
            customers.create_customer(uow, name, fields)


def _segment(chat: Chat, name: str, filter_text: str) -> None:
    admin = chat.user("Ada Admin", Role.ADMIN)
    said = chat.say(admin, f"/segment new {name} {filter_text}")
    assert "saved" in said.text, said.text


def _exports(app) -> list[AuditEntry]:
    with app.uow() as uow:
        entries = list(uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "export")))
        uow.session.expunge_all()
        return entries


def test_a_sales_rep_gets_the_segment_as_xlsx_and_the_export_is_audited(app, chat):
    _seed(app)
    _segment(chat, "vip-de", "country=DE tag=vip")
    sam = chat.user("Sam Sales", Role.SALES)
    said = chat.say(sam, "/export segment vip-de")
    reply = said.reply
    assert reply.private and reply.file is not None, said.text
    assert reply.file.name.startswith("segment-vip-de-") and reply.file.name.endswith(".xlsx")
    assert "2 customers" in said.text
    sheet = openpyxl.load_workbook(io.BytesIO(reply.file.data()), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    # The columns of `chatcrm export customers`, then the segment's members only.
    assert rows[0][:5] == ("external_ref", "name", "kind", "email", "phone")
    assert sorted(r[1] for r in rows[1:]) == ["Dieter Dorn", "Zoë Müller"]
    [entry] = _exports(app)
    assert (entry.actor_name, entry.entity_type, entry.entity_id) == ("Sam Sales", "customers", "segment vip-de")
    assert entry.after == {"rows": 2, "format": "xlsx", "segment": "vip-de", "filter": "country=DE tag=vip"}


def test_csv_on_request(app, chat):
    _seed(app)
    _segment(chat, "vip", "tag=vip")
    said = chat.say(chat.user("Mia Manager", Role.MANAGER), "/export segment vip csv")
    assert said.reply.file is not None and said.reply.file.mime == "text/csv", said.text
    rows = list(csv.DictReader(io.StringIO(said.reply.file.data().decode())))
    assert sorted(r["email"] for r in rows) == ["bo@example.se", "dieter@example.de", "zoe@example.de"]
    assert _exports(app)[0].after["format"] == "csv"


def test_viewers_and_support_may_not_export(app, chat):
    _seed(app)
    _segment(chat, "vip", "tag=vip")
    for role in (Role.VIEWER, Role.SUPPORT):
        refused = chat.say(chat.user(f"Some {role.value}", role), "/export segment vip")
        assert refused.reply.file is None and "can't use" in refused.text, refused.text
    assert _exports(app) == []


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("/export segment nosuch", "There is no segment called 'nosuch'"),
        ("/export segment vip pdf", "must be one of xlsx, csv, not 'pdf'"),
        ("/export segment nobody", "has no customers now"),
        ("/export segment everyone", "more than the 3 a chat export carries"),
    ],
)
def test_bad_input_writes_and_audits_nothing(app, chat, line, says, tmp_path, monkeypatch):
    _seed(app)
    _segment(chat, "vip", "tag=vip")
    _segment(chat, "nobody", "country=JP")
    _segment(chat, "everyone", "country=DE,SE")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    said = chat.say(chat.user("Ada Admin", Role.ADMIN), line)
    assert said.reply.file is None and says in said.text, said.text
    assert _exports(app) == []
    assert list(scratch.rglob("*")) == []  # no temporary file left behind


def test_the_console_writes_the_file(app, tmp_path, monkeypatch):
    from bot.adapters.console.adapter import run_console

    _seed(app)
    _segment(Chat(app), "se", "country=SE")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    run_console(app, stdin=io.StringIO("/export segment se csv\n"), stdout=out)
    [saved] = tmp_path.glob("segment-se-*.csv")
    assert f"saved to {saved}" in out.getvalue(), out.getvalue()
    [row] = csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8")))
    assert (row["name"], row["email"], row["country"]) == ("Bo Berg", "bo@example.se", "SE")


def test_slack_uploads_the_segment_into_the_direct_messages(slack):
    from tests.fakes.slack_api import FILE_UPLOAD
    from tests.slack_support import ADMIN

    _seed(slack.app)
    _segment(Chat(slack.app), "se", "country=SE")
    answer = slack.ask("/export segment se csv", channel="C1")
    assert answer["response_type"] == "ephemeral"
    assert slack.api.wait_for("conversations.open")[0].args["users"] == ADMIN
    upload = slack.api.wait_for(FILE_UPLOAD)[0]
    assert "bo@example.se" in upload.body.decode()
    complete = slack.api.wait_for("files.completeUploadExternal")[0]
    assert complete.args["channel_id"] == "D" + ADMIN.lstrip("UW")
    assert complete.json_arg("files")[0]["title"] == "Segment se"


def test_telegram_sends_the_segment_as_a_document(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    admin = rig.staff(4242, "Ada Admin", Role.ADMIN)
    _seed(rig.app)
    _segment(Chat(rig.app), "se", "country=SE")
    rig.send(tg.private_text(admin, "/export segment se"))
    assert tg.wait_for(lambda: tg.calls_of("sendDocument"))
    [document] = tg.calls_of("sendDocument")
    assert str(document["chat_id"]) == "4242" and document["document:filename"].endswith(".xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(document.files["document"]), read_only=True).active
    assert [r[1] for r in sheet.iter_rows(min_row=2, values_only=True)] == ["Bo Berg"]
    assert json.dumps(_exports(rig.app)[0].after["rows"]) == "1"
