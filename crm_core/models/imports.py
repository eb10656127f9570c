"""Imports started from chat: the uploaded file waits here for the job that imports it, and the outcome
(counts and the error report) stays for the summary and ``/import report``.

The upload is kept only until its import ran (``content`` is emptied then); the error report holds values
from the file's bad rows, so it is as personal as the file was.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models.base import Base, Timestamped


class ChatImport(Timestamped, Base):
    __tablename__ = "chat_imports"
    __audited__ = False

    id: Mapped[int] = mapped_column(primary_key=True)
    # What is imported: a crm_core.importing.run.KINDS key ("customers").
    kind: Mapped[str] = mapped_column(sa.String(20))
    file_name: Mapped[str] = mapped_column(sa.String(200))
    size: Mapped[int]
    # The uploaded file, until the import ran.
    content: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    # Who asked (the import runs and is audited as them), and where the summary goes.
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    requested_by: Mapped[str] = mapped_column(sa.String(200))
    platform: Mapped[str] = mapped_column(sa.String(20))
    conversation: Mapped[str] = mapped_column(sa.String(200))
    thread: Mapped[str | None] = mapped_column(sa.String(100))
    language: Mapped[str | None] = mapped_column(sa.String(8))
    # queued | done | failed
    status: Mapped[str] = mapped_column(sa.String(20), default="queued")
    # Counts: rows, created, updated, unchanged, skipped_rows, and the first problems.
    summary: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    # Why nothing was imported (columns that do not fit, a file that is not CSV or .xlsx).
    error: Mapped[str | None] = mapped_column(sa.String(1000))
    # The error report CSV (row, column, value, reason) when rows were skipped.
    report: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    finished_at: Mapped[datetime | None]
