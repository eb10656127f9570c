"""One export: the list, the format and where it goes; audited as one entry (who exported what, how many)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from crm_core import clock
from crm_core.exporting import writers
from crm_core.exporting.lists import ExportFailed, listing
from crm_core.models import AuditEntry
from crm_core.uow import UnitOfWork


def pick_format(fmt: str | None, out: str | None) -> str:
    """The format asked for, else the one the output file's extension names, else CSV."""
    if fmt:
        return fmt
    suffix = Path(out).suffix.lower().lstrip(".") if out else ""
    return suffix if suffix in writers.FORMATS else "csv"


def export(
    uow: UnitOfWork, kind: str, *, fmt: str = "csv", out: str | None = None, customer_filter: str | None = None
) -> int:
    """Write ``kind`` to ``out`` (stdout when None, for text formats); returns the number of rows."""
    if fmt not in writers.FORMATS:
        raise ExportFailed(f"unknown format {fmt!r}: choose one of {', '.join(writers.FORMATS)}")
    if fmt in writers.BINARY and out is None:
        raise ExportFailed(f"{fmt} is a binary format: give a file with --out")
    rows = listing(uow.session, kind, customer_filter, uow.actor.user_id)
    if out is None:
        count = _write(fmt, sys.stdout, rows.columns, rows.batches, kind)
    else:
        path = Path(out)
        partial = path.with_name(path.name + ".partial")
        # Written beside the target and renamed at the end: a failed export never leaves half a file.
        try:
            if fmt in writers.BINARY:
                with partial.open("wb") as binary:
                    count = _write(fmt, binary, rows.columns, rows.batches, kind)
            else:
                with partial.open("w", encoding="utf-8", newline="") as text:
                    count = _write(fmt, text, rows.columns, rows.batches, kind)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(path)
    uow.session.execute(
        sa.insert(AuditEntry).values(
            at=clock.utcnow(),
            actor_user_id=uow.actor.user_id,
            actor_name=uow.actor.name,
            platform=uow.actor.platform,
            action="export",
            entity_type=kind,
            entity_id=(Path(out).name if out else "stdout")[:64],
            after={"rows": count, "format": fmt, "filter": customer_filter},
        )
    )
    return count


def _write(fmt: str, handle: Any, columns: list[str], batches: Iterator[list[tuple[Any, ...]]], kind: str) -> int:
    if fmt == "csv":
        return writers.write_csv(handle, columns, batches)
    if fmt in ("json", "jsonl"):
        return writers.write_json(handle, columns, batches, lines=fmt == "jsonl")
    if fmt == "xlsx":
        return writers.write_xlsx(handle, columns, batches, kind)
    return writers.write_parquet(handle, columns, batches)
