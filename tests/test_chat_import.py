"""/import customers from chat: an admin sends a CSV or .xlsx file with the command; the adapter fetches it
(Telegram getFile and the file URL of the fake Bot API), the real worker's scheduler runs the import as a
job, and its outbox sender posts the summary; the Error report button hands over the CSV of skipped rows.
Only admins; files over the limit, without a file, or not CSV/xlsx are refused and write nothing.
SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io

import openpyxl
import sqlalchemy as sa

from bot.messages import InboundFile
from bot.platforms import senders
from crm_core import scheduling
from crm_core.importing import chat as chat_import
from crm_core.models import AuditEntry, ChatImport, Customer, Role, ScheduledJob, chat_ids
from tests.fakes.worker import chat_worker, wait_until
from tests.slack_support import slack, slack_api  # noqa: F401 - fixtures

PEOPLE = (
    "external_ref,name,email,country\n"
    "c1,Zoë Müller,zoe@example.de,DE\n"
    "c2,Bo Berg,bo@example.se,SE\n"
    "c3,Bad Mail,not-an-email,DE\n"
    "c4,Bad Land,land@example.com,Germany\n"
).encode()


def _customers(app) -> list[tuple[str | None, str]]:
    with app.uow() as uow:
        return [(c.external_ref, c.name) for c in uow.session.scalars(sa.select(Customer).order_by(Customer.id))]


def _imports(app) -> list[ChatImport]:
    with app.uow() as uow:
        rows = list(uow.session.scalars(sa.select(ChatImport).order_by(ChatImport.id)))
        uow.session.expunge_all()
        return rows


def test_telegram_upload_is_imported_by_the_worker_with_a_summary_and_an_error_report(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    admin = rig.staff(4242, "Ada Admin", Role.ADMIN)
    rig.send(tg.private_document(admin, "people.csv", PEOPLE, caption="/import customers"))
    queued = tg.last_sent(4242).text
    assert "Importing people.csv" in queued and "import #1" in queued, queued
    # Nothing is imported on the request path: a one-off job holds it.
    assert _customers(rig.app) == []
    [row] = _imports(rig.app)
    assert (row.status, row.content, row.requested_by) == ("queued", PEOPLE, "Ada Admin")

    with chat_worker(rig.app, senders(rig.app)):
        assert wait_until(lambda: "Import #1 of people.csv" in tg.last_sent(4242).text), tg.last_sent(4242).text
    summary = tg.last_sent(4242)
    assert "2 rows skipped" in summary.text and "Row 4" in summary.text, summary.text
    assert sorted(_customers(rig.app)) == [("c1", "Zoë Müller"), ("c2", "Bo Berg")]
    [row] = _imports(rig.app)
    assert row.status == "done" and row.content is None  # the upload is not kept
    assert row.summary["created"] == 2 and row.summary["skipped_rows"] == 2
    with rig.app.uow() as uow:
        [entry] = uow.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "import")).all()
        assert entry.actor_name == "Ada Admin" and entry.after["created"] == {"customers": 2}

    rig.send(tg.press(admin, summary, "Error report"))
    assert tg.wait_for(lambda: tg.calls_of("sendDocument"))
    [document] = tg.calls_of("sendDocument")
    assert document["document:filename"] == "people.errors.csv"
    problems = list(csv.DictReader(io.StringIO(document.files["document"].decode())))
    assert [(p["row"], p["value"]) for p in problems] == [("4", "not-an-email"), ("5", "Germany")]


def test_an_xlsx_upload_and_a_re_import_updates_without_duplicates(app, chat):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["external_ref", "name", "email"])
    sheet.append(["x1", "Xavier Excel", "xavier@example.com"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    admin = chat.user("Ada Admin", Role.ADMIN)
    for _ in range(2):
        upload = InboundFile("people.xlsx", len(buffer.getvalue()), buffer.getvalue())
        said = chat.say(admin, "/import customers", files=(upload,))
        assert "Importing people.xlsx" in said.text, said.text
        scheduling.run_due(app.session_factory, tasks=app.plugins.tasks, config=app.settings.extra)
    assert _customers(app) == [("x1", "Xavier Excel")]
    first, second = _imports(app)
    assert first.summary["created"] == 1 and second.summary["unchanged"] + second.summary["updated"] == 1
    assert first.report is None
    said = chat.say(admin, f"/import report {first.id}")
    assert said.reply.file is None and "no error report" in said.text
    # The one-off jobs ran and are not due again.
    with app.uow() as uow:
        assert (
            uow.session.scalar(
                sa.select(sa.func.count()).select_from(ScheduledJob).where(ScheduledJob.next_run_at.is_not(None))
            )
            == 0
        )


def test_columns_that_do_not_fit_import_nothing_and_say_why(app, chat):
    admin = chat.user("Ada Admin", Role.ADMIN)
    content = b"Mail,Phone\nzoe@example.de,+49 30 1234567\n"
    chat.say(admin, "/import customers", files=(InboundFile("people.csv", len(content), content),))
    scheduling.run_due(app.session_factory, tasks=app.plugins.tasks, config=app.settings.extra)
    [row] = _imports(app)
    assert row.status == "failed" and "no column matches 'name'" in row.error, row.error
    assert _customers(app) == [] and row.content is None
    # The summary says so where the file was sent (queued for the outbox).
    from bot.handlers.data_io import summary_reply

    assert "Nothing was imported: no column matches 'name'" in summary_reply(row).text


def test_an_admin_reading_chinese_is_told_why_in_chinese(app, chat):
    admin = chat.user("Li Admin", Role.ADMIN)
    chat.say(admin, "/lang zh")
    content = b"Mail,Phone\nzoe@example.de,+49 30 1234567\n"
    chat.say(admin, "/import customers", files=(InboundFile("people.csv", len(content), content),))
    scheduling.run_due(app.session_factory, tasks=app.plugins.tasks, config=app.settings.extra)
    [row] = _imports(app)
    # The job imports as the admin, in their language: why nothing was imported is Chinese.
    assert row.status == "failed" and row.error.startswith("没有与 'name' 对应的列"), row.error
    assert "'Mail', 'Phone'" in row.error and "no column" not in row.error


def test_only_admins_and_only_files_that_can_be_imported(app, chat):
    upload = InboundFile("people.csv", len(PEOPLE), PEOPLE)
    for role in (Role.MANAGER, Role.SALES, Role.VIEWER):
        refused = chat.say(chat.user(f"Some {role.value}", role), "/import customers", files=(upload,))
        assert "can't use" in refused.text, refused.text
    admin = chat.user("Ada Admin", Role.ADMIN)
    cases = [
        ((), "nothing was attached"),
        ((InboundFile("huge.csv", chat_import.MAX_BYTES + 1, None),), "may be at most 10 MB"),
        ((InboundFile("people.pdf", 3, b"%PD"),), "is not a CSV or .xlsx file"),
        ((InboundFile("empty.csv", 2, b"\n\n"),), "is empty"),
    ]
    for files, says in cases:
        said = chat.say(admin, "/import customers", files=files)
        assert says in said.text, said.text
    assert _imports(app) == []
    with app.uow() as uow:
        assert (
            uow.session.scalar(
                sa.select(sa.func.count()).select_from(ScheduledJob).where(ScheduledJob.task == chat_import.TASK)
            )
            == 0
        )


def test_slack_file_shared_in_the_dm_is_imported_and_summarised(slack):
    from tests.slack_support import ADMIN, BOT_TOKEN, event_callback

    shared = slack.api.share_file("people.csv", PEOPLE)
    event = {
        "type": "message",
        "subtype": "file_share",
        "channel_type": "im",
        "channel": "DADMIN1",
        "user": ADMIN,
        "text": "import customers",
        "ts": "1700000000.000100",
        "files": [shared],
    }
    assert slack.post(event_callback(event), content_type="application/json").status_code == 200
    [download] = slack.api.wait_for("file_download")
    assert download.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    queued = slack.api.wait_for("chat.postMessage", channel="DADMIN1")[0]
    assert "Importing people.csv" in queued.args["text"], queued.args

    with chat_worker(slack.app, senders(slack.app)):
        assert wait_until(lambda: any("Import #1 of people.csv" in m.text for m in slack.api.messages("DADMIN1")))
    assert sorted(_customers(slack.app)) == [("c1", "Zoë Müller"), ("c2", "Bo Berg")]

    # Without a file, the command says how to send one.
    answer = slack.ask("/import customers", channel="C1")
    assert "nothing was attached" in answer["text"] or "nothing was attached" in str(answer["blocks"]), answer


def test_slack_sends_the_bot_token_only_to_slack_file_urls_and_ignores_a_file_alone(slack):
    import json

    from bot.adapters.slack.inbound import message_event
    from tests.slack_support import ADMIN, event_callback

    def event(text: str, url: str, ts: str) -> bytes:
        shared = {**slack.api.share_file("people.csv", PEOPLE), "url_private_download": url}
        fields = {"type": "message", "subtype": "file_share", "channel_type": "im", "channel": "DADMIN1"}
        return event_callback(fields | {"user": ADMIN, "text": text, "ts": ts, "files": [shared]})

    # A file shared without words is not a command (before files could carry one, it was ignored).
    alone = event("", f"{slack.api.url}/files-pri/F1/people.csv", "1700000000.000200")
    assert message_event(json.loads(alone)) is None
    foreign = event("import customers", "https://files.evil.example/people.csv", "1700000000.000300")
    assert slack.post(foreign, content_type="application/json").status_code == 200
    [answer] = slack.api.wait_for("chat.postMessage", channel="DADMIN1")
    # The foreign URL was not fetched: the token never left for it, and the command saw no file.
    assert "nothing was attached" in answer.args["text"], answer.args
    assert slack.api.calls("file_download") == [] and _imports(slack.app) == []


def test_finished_imports_and_their_reports_are_deleted_after_the_keep_days(app, chat):
    from datetime import timedelta

    import time_machine

    from crm_core.clock import utcnow

    admin = chat.user("Ada Admin", Role.ADMIN)
    chat.say(admin, "/import customers", files=(InboundFile("people.csv", len(PEOPLE), PEOPLE),))
    scheduling.run_due(app.session_factory, tasks=app.plugins.tasks, config=app.settings.extra)
    [row] = _imports(app)
    assert row.report is not None
    # An upload whose job has not finished (here: not run yet) goes after as long, with its file.
    chat.say(admin, "/import customers", files=(InboundFile("later.csv", len(PEOPLE), PEOPLE),))
    prune = app.plugins.jobs["imports.prune"]
    assert prune.args == {"keep_days": chat_import.KEEP_DAYS}
    for days, left in ((29, 2), (31, 0)):
        with time_machine.travel(utcnow() + timedelta(days=days), tick=False), app.uow() as uow:
            chat_import.prune(uow, chat_import.KEEP_DAYS)
        assert len(_imports(app)) == left, days
    # The customers it imported stay: only the record of the upload goes.
    assert len(_customers(app)) == 2


def test_telegram_does_not_fetch_a_file_over_the_limit(webhook_rig):
    rig, tg = webhook_rig, webhook_rig.fake
    admin = rig.staff(4242, "Ada Admin", Role.ADMIN)
    update = tg.private_document(admin, "big.csv", PEOPLE, caption="/import customers", size=chat_import.MAX_BYTES + 1)
    rig.send(update)
    assert "may be at most 10 MB" in tg.last_sent(4242).text, tg.last_sent(4242).text
    assert tg.calls_of("getFile") == [] and _imports(rig.app) == []


def test_an_import_that_keeps_failing_tells_the_admin_after_the_last_retry(app, chat, monkeypatch):
    import json
    from datetime import timedelta
    from pathlib import Path

    from crm_core.clock import utcnow
    from crm_core.models import OutboxMessage
    from crm_core.scheduling.registry import MAX_RETRIES

    admin = chat.user("Ada Admin", Role.ADMIN)
    chat.say(admin, "/import customers", files=(InboundFile("people.csv", len(PEOPLE), PEOPLE),))

    def disk_full(self, data):  # noqa: ANN001, ANN202 - the disk, outside our code, refuses the write
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    outcomes = []
    for attempt in range(MAX_RETRIES + 1):
        later = utcnow() + timedelta(hours=attempt + 1)
        outcomes += scheduling.run_due(app.session_factory, tasks=app.plugins.tasks, now=later)
        [row] = _imports(app)
        # Retried while retries are left: the upload waits, and nobody is told yet.
        if attempt < MAX_RETRIES:
            assert row.status == "queued" and row.content == PEOPLE, attempt
    assert [o.status for o in outcomes] == ["failed"] * MAX_RETRIES + ["ok"]
    assert row.status == "failed" and "something went wrong (ref " in row.error and row.content is None
    with app.uow() as uow:
        [queued] = uow.session.scalars(
            sa.select(OutboxMessage).where(
                chat_ids.is_chat(uow.session, OutboxMessage.conversation_index, admin.conversation)
            )
        )
        assert "Nothing was imported: something went wrong (ref" in json.dumps(queued.payload)
    assert _customers(app) == []
