"""Imports started from chat: an admin uploads a CSV or .xlsx file with ``/import customers``; the file is
kept in ``chat_imports`` and a one-off job (``imports.run``) imports it off the request path, as the admin,
with the same code as ``chatcrm import`` (one audit entry, upsert by external id, bad rows skipped and
listed). The outcome stays on the row for the summary and the error report.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path, PurePath

import sqlalchemy as sa

from crm_core import clock
from crm_core.actor import Actor
from crm_core.errors import NotFound, ValidationError
from crm_core.i18n import _, format_number
from crm_core.importing.run import import_table
from crm_core.importing.sources import open_table
from crm_core.importing.table import ImportFailed
from crm_core.models import ChatImport
from crm_core.scheduling import JobRun, Once, schedule
from crm_core.uow import UnitOfWork

TASK = "imports.run"
# What can be imported from chat, and the files it reads.
KINDS = ("customers",)
SUFFIXES = (".csv", ".xlsx", ".txt", ".tsv")
# The largest upload taken from chat (Telegram lets bots fetch files up to 20 MB); bigger files go
# through `chatcrm import` on the server.
MAX_BYTES = 10 * 1024 * 1024
# How many problems the summary names; the error report lists them all.
SHOWN_PROBLEMS = 5
# How long a finished import (its error report) is kept: CHATCRM_IMPORT_KEEP_DAYS.
KEEP_DAYS = 30


def too_big(name: str, size: int) -> str:
    return _(
        "{file} is {size} MB; a file imported from chat may be at most {limit} MB. "
        "Split it, or import it on the server with: chatcrm import customers FILE",
        file=name,
        size=format_number(round(size / 1024 / 1024, 1)),
        limit=format_number(MAX_BYTES // 1024 // 1024),
    )


def queue_import(
    uow: UnitOfWork,
    kind: str,
    file_name: str,
    content: bytes,
    *,
    platform: str,
    conversation: str,
    thread: str | None = None,
    language: str | None = None,
) -> ChatImport:
    """Keep the upload and schedule its import now; ValidationError (nothing kept) for a file that
    cannot be one."""
    if kind not in KINDS:
        raise ValidationError(_("only customers can be imported from chat"), field="kind")
    name = PurePath(file_name or "upload").name[:200]
    if PurePath(name).suffix.lower() not in SUFFIXES:
        raise ValidationError(_("{file} is not a CSV or .xlsx file; upload one of those", file=name), field="file")
    if len(content) > MAX_BYTES:
        raise ValidationError(too_big(name, len(content)), field="file")
    if not content.strip():
        raise ValidationError(_("{file} is empty", file=name), field="file")
    actor = uow.actor
    row = ChatImport(
        kind=kind,
        file_name=name,
        size=len(content),
        content=content,
        user_id=actor.user_id,
        requested_by=actor.name[:200],
        platform=platform,
        conversation=conversation,
        thread=thread,
        language=language,
        status="queued",
    )
    uow.session.add(row)
    uow.session.flush()
    schedule(uow, f"import:{row.id}", TASK, Once(clock.utcnow()), args={"import_id": row.id})
    return row


def run_import(uow: UnitOfWork, import_id: int, currency: str) -> ChatImport | None:
    """Import a queued upload in ``uow``'s transaction, as the admin who sent it; the row with its outcome.
    None when there is nothing to do (already imported: a retried job run)."""
    row = uow.session.get(ChatImport, import_id)
    if row is None or row.status != "queued" or row.content is None:
        return None
    # The import and its audit entry are the admin's, whoever runs the job.
    uow.act_as(Actor(user_id=row.user_id, name=row.requested_by, platform=row.platform))
    with tempfile.TemporaryDirectory(prefix="chatcrm-import-") as directory:
        path = Path(directory) / row.file_name
        path.write_bytes(row.content)
        try:
            table = open_table(path)
            with uow.session.begin_nested():
                report = import_table(uow, row.kind, table, options={"currency": currency})
        except ImportFailed as exc:
            row.status, row.error = "failed", str(exc)[:1000]
        else:
            row.status = "done"
            row.summary = {
                "rows": report.rows,
                "created": sum(report.created.values()),
                "updated": sum(report.updated.values()),
                "unchanged": sum(report.unchanged.values()),
                "skipped_rows": report.skipped_rows,
                "problems": [[p.row, p.reason] for p in report.problems[:SHOWN_PROBLEMS]],
                "notes": list(report.notes),
            }
            if report.problems:
                out = Path(directory) / "errors.csv"
                report.write_errors(out)
                row.report = out.read_bytes()
    # The upload is not kept once it is in the CRM (or refused): the report has what needs fixing.
    row.content = None
    row.finished_at = clock.utcnow()
    uow.session.flush()
    return row


def give_up(uow: UnitOfWork, import_id: int, reason: str) -> ChatImport | None:
    """Mark a queued import failed for good (its job kept failing), dropping the upload; None when it is
    not queued any more."""
    row = uow.session.get(ChatImport, import_id)
    if row is None or row.status != "queued":
        return None
    row.status, row.error, row.content, row.finished_at = "failed", reason[:1000], None, clock.utcnow()
    uow.session.flush()
    return row


def prune(uow: UnitOfWork, keep_days: int) -> int:
    """Delete imports that finished more than ``keep_days`` ago: their error reports hold values from the
    files' bad rows, personal data that is kept no longer than it helps someone fix the file. An upload
    whose job never finished (it kept failing) goes after as long, file and all."""
    cutoff = clock.utcnow() - timedelta(days=keep_days)
    stale = sa.or_(
        ChatImport.finished_at < cutoff, sa.and_(ChatImport.finished_at.is_(None), ChatImport.created_at < cutoff)
    )
    result = uow.session.execute(sa.delete(ChatImport).where(stale))
    return int(getattr(result, "rowcount", 0) or 0)


def prune_task(run: JobRun) -> None:
    with run.uow() as uow:
        prune(uow, int(run.args.get("keep_days", KEEP_DAYS)))


def get(uow: UnitOfWork, import_id: int) -> ChatImport:
    row = uow.session.get(ChatImport, import_id)
    if row is None:
        raise NotFound(_("there is no import #{id}", id=import_id))
    return row


def report_name(row: ChatImport) -> str:
    return f"{PurePath(row.file_name).stem}.errors.csv"


__all__ = ["KINDS", "MAX_BYTES", "TASK", "ChatImport", "get", "queue_import", "report_name", "run_import"]
