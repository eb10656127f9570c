"""Lists in and out of chat.

- ``/export segment <name> [xlsx|csv]`` hands over a segment's customers as a spreadsheet. The file is
  built by crm_core.exporting (the columns of ``chatcrm export customers``), which also audits it.
- ``/import customers`` with an uploaded CSV or .xlsx file (admins): the adapter fetched the file
  (``Request.files``); crm_core.importing.chat keeps it and schedules the ``imports.run`` job, which
  imports it off the request path and queues a summary where the file was sent, with an *Error report*
  button (``/import report <id>``) when rows were skipped: an outbox row carries no file, so the report
  is handed over as the answer to that button.

This module only decides who may ask and how the answers read."""

from __future__ import annotations

import logging
import secrets
import tempfile
from dataclasses import replace
from datetime import time
from pathlib import Path

from bot import interactive
from bot.args import Kind, arg
from bot.context import Context
from bot.hookspecs import hookimpl
from bot.messages import Button, Destination, Field, File, Item, Outgoing, Reply, Request, Section, Tone
from bot.plugin_types import JobDefinition
from bot.roles import Permission
from bot.router import CommandGroup
from bot.settings import Settings, env_number
from crm_core import i18n
from crm_core.errors import ValidationError
from crm_core.exporting.run import SEGMENT_FORMATS, export_segment
from crm_core.i18n import N_, _, format_number, ngettext
from crm_core.importing import chat as chat_import
from crm_core.models import ChatImport, ScheduledJob
from crm_core.scheduling import Calendar, JobRun
from crm_core.scheduling.registry import MAX_RETRIES
from crm_core.uow import UnitOfWork

group = CommandGroup()
log = logging.getLogger("chatcrm.imports")

MIME = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
}


@group.command(
    "export segment",
    summary=N_("A segment's customers as a spreadsheet (xlsx or csv), sent to you privately"),
    permission=Permission.SEGMENTS_EXPORT,
    params=[
        arg("name", label=N_("Segment name"), hint="vip-de", max_length=60),
        arg("format", Kind.CHOICE, required=False, choices=SEGMENT_FORMATS, label=N_("Format")),
    ],
)
def export_segment_command(req: Request, ctx: Context) -> Reply:
    fmt = req.args.get("format") or "xlsx"
    # The rows stream into a file in a directory of our own, which goes away with the request: only the
    # finished (compressed) file is read into memory, to hand it to the platform.
    with tempfile.TemporaryDirectory(prefix="chatcrm-export-") as directory:
        done = export_segment(
            ctx.uow, req.args["name"], fmt, Path(directory), max_rows=ctx.settings.chat_export_max_rows
        )
        if done.path is None:
            return Reply(
                text=_("Segment {name} has no customers now: there is nothing to export.", name=done.segment),
                footer=_("See its filter with /segment show {name}.", name=done.segment),
                tone=Tone.WARNING,
                private=True,
            )
        content = done.path.read_bytes()
        name = done.path.name
    # Private, like every export: the file holds contact details, and a channel may have members (or
    # customers, in a shared channel) whose role may not take them away. In a direct message it lands there.
    return Reply(
        text=ngettext(
            "Segment {name}: {count} customer in {file}, sent to you privately. The export is in the audit log.",
            "Segment {name}: {count} customers in {file}, sent to you privately. The export is in the audit log.",
            done.rows,
            name=done.segment,
            count=format_number(done.rows),
            file=name,
        ),
        file=File(name=name, content=content, mime=MIME[fmt], title=_("Segment {name}", name=done.segment)),
        tone=Tone.SUCCESS,
        private=True,
    )


# -- /import customers -------------------------------------------------------------------------------


def _how_to_upload() -> str:
    return _(
        "Telegram: send the CSV or .xlsx file to the bot with the caption /import customers. "
        "Slack: upload the file in a direct message to the bot with the message import customers "
        "(without the slash: Slack runs a message starting with / as a slash command, which cannot carry a file)."
    )


@group.command(
    "import customers",
    summary=N_("Import customers from a CSV or .xlsx file sent with the command; a summary follows"),
    permission=Permission.DATA_IMPORT,
)
def import_customers(req: Request, ctx: Context) -> Reply:
    if not req.files:
        return Reply(
            text=_("Send the file with the command: nothing was attached."),
            footer=_how_to_upload(),
            tone=Tone.WARNING,
            private=True,
        )
    upload = req.files[0]
    if upload.content is None or upload.size > chat_import.MAX_BYTES:
        raise ValidationError(chat_import.too_big(upload.name, upload.size), field="file")
    row = chat_import.queue_import(
        ctx.uow,
        "customers",
        upload.name,
        upload.content,
        platform=req.origin.platform,
        conversation=req.origin.conversation,
        thread=req.origin.thread,
        language=ctx.caller.language,
    )
    return Reply(
        text=_(
            "Importing {file} as customers (import #{id}); the summary follows here when it is done.",
            file=row.file_name,
            id=row.id,
        ),
        tone=Tone.SUCCESS,
    )


@group.command(
    "import report",
    summary=N_("The error report of an import from chat: every skipped row and why, as CSV"),
    permission=Permission.DATA_IMPORT,
    params=[arg("id", Kind.INT, label=N_("Import"), hint="#12")],
)
def import_report(req: Request, ctx: Context) -> Reply:
    row = chat_import.get(ctx.uow, req.args["id"])
    if row.report is None:
        return Reply(text=_("Import #{id} skipped no rows: there is no error report.", id=row.id), private=True)
    name = chat_import.report_name(row)
    return Reply(
        text=_("The error report of import #{id}: {file}.", id=row.id, file=name),
        file=File(name=name, content=row.report, mime="text/csv", title=_("Error report of import #{id}", id=row.id)),
        private=True,
    )


def summary_reply(row: ChatImport) -> Reply:
    """What the admin reads when the import ran: the counts, the first problems, the report's button."""
    if row.status == "failed":
        return Reply(
            title=_("Import #{id} of {file}", id=row.id, file=row.file_name),
            text=_("Nothing was imported: {reason}.", reason=row.error),
            tone=Tone.ERROR,
        )
    summary = row.summary or {}
    skipped = summary.get("skipped_rows", 0)
    fields = tuple(
        Field(label, format_number(summary.get(key, 0)))
        for label, key in (
            (_("Rows read"), "rows"),
            (_("Created"), "created"),
            (_("Updated"), "updated"),
            (_("Already there"), "unchanged"),
            (_("Skipped"), "skipped_rows"),
        )
    )
    sections: tuple[Section, ...] = ()
    if summary.get("problems"):
        sections = (
            Section(
                title=_("First problems"),
                items=tuple(
                    Item(_("Row {row}", row=format_number(number)), reason) for number, reason in summary["problems"]
                ),
            ),
        )
    buttons = (Button(_("Error report"), f"/import report {row.id}"),) if row.report is not None else ()
    return Reply(
        title=_("Import #{id} of {file}", id=row.id, file=row.file_name),
        text=ngettext(
            "Done: {count} row skipped, the error report lists it.",
            "Done: {count} rows skipped, the error report lists them.",
            skipped,
            count=format_number(skipped),
        )
        if skipped
        else _("Done: every row was imported."),
        fields=fields,
        sections=sections,
        buttons=buttons,
        footer="; ".join(summary.get("notes", [])) or None,
        tone=Tone.WARNING if skipped else Tone.SUCCESS,
    )


def run_chat_import(run: JobRun) -> None:
    """The ``imports.run`` job: import the upload and queue its summary, in one transaction (a run that
    dies before the commit leaves the upload queued, and the retried run imports it once). When the last
    retry fails too, the admin is told "something went wrong (ref …)" and the upload is dropped."""
    import_id = int(run.args["import_id"])
    currency = run.config.get("CHATCRM_CURRENCY", "EUR").strip().upper() or "EUR"
    try:
        with run.uow() as uow:
            # In the admin's language: what the import finds wrong (rows, columns) is read by them.
            with i18n.use_language(_language_of(uow, import_id)):
                row = chat_import.run_import(uow, import_id, currency)
            if row is not None:
                _tell(uow, row)
    except Exception:
        if not _last_attempt(run):
            raise  # the scheduler retries it
        ref = secrets.token_hex(4).upper()
        log.exception("import #%s failed for good ref=%s", import_id, ref)
        with run.uow() as uow:
            language = _language_of(uow, import_id)
            with i18n.use_language(language):
                given_up = chat_import.give_up(uow, import_id, _("something went wrong (ref {ref})", ref=ref))
            if given_up is not None:
                _tell(uow, given_up)


def _last_attempt(run: JobRun) -> bool:
    with run.session_factory() as session:
        job = session.get(ScheduledJob, run.job_id)
        return job is None or job.failures >= MAX_RETRIES


def _language_of(uow: UnitOfWork, import_id: int) -> str:
    row = uow.session.get(ChatImport, import_id)
    return i18n.supported((row.language if row else None) or "") or "en"


def _tell(uow: UnitOfWork, row: ChatImport) -> None:
    """Queue the summary where the file was sent, in the admin's language."""
    language = i18n.supported(row.language or "") or "en"
    with i18n.use_language(language):
        reply = replace(summary_reply(row), language=language)
    to = Destination(row.platform, row.conversation, row.thread)
    interactive.enqueue(uow, [Outgoing(to, reply, key=f"import:{row.id}:summary")])


@hookimpl
def register_commands() -> list[CommandGroup]:
    return [group]


@hookimpl
def register_jobs(settings: Settings) -> list[JobDefinition]:
    return jobs(settings)


def jobs(settings: Settings) -> list[JobDefinition]:
    keep_days = int(env_number(settings.extra, "CHATCRM_IMPORT_KEEP_DAYS", chat_import.KEEP_DAYS))
    return [
        JobDefinition(chat_import.TASK, run_chat_import, "import a file uploaded in chat (/import customers)"),
        JobDefinition(
            "imports.prune",
            chat_import.prune_task,
            "delete imports from chat (and their error reports) older than CHATCRM_IMPORT_KEEP_DAYS",
            trigger=Calendar(time(3, 50)),
            args={"keep_days": keep_days},
            misfire_grace_seconds=24 * 3600,
        ),
    ]
