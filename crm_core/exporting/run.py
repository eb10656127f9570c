"""One export: the list, the format and where it goes; audited as one entry (who exported what, how many)."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from crm_core import clock
from crm_core.errors import ValidationError
from crm_core.exporting import writers
from crm_core.exporting.lists import ExportFailed, listing
from crm_core.i18n import _, format_number
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
        raise ExportFailed(
            _("unknown format '{format}': choose one of {formats}", format=fmt, formats=", ".join(writers.FORMATS))
        )
    if fmt in writers.BINARY and out is None:
        raise ExportFailed(_("{format} is a binary format: give a file with --out", format=fmt))
    rows = listing(uow.session, kind, customer_filter, uow.actor.user_id)
    if out is None:
        count = _write(fmt, sys.stdout, rows.columns, rows.batches, kind)
    else:
        count = _write_file(fmt, Path(out), rows.columns, rows.batches, kind)
    _audit(uow, kind, (Path(out).name if out else "stdout"), {"rows": count, "format": fmt, "filter": customer_filter})
    return count


def _write_file(fmt: str, path: Path, columns: list[str], batches: Iterator[list[tuple[Any, ...]]], kind: str) -> int:
    partial = path.with_name(path.name + ".partial")
    # Written beside the target and renamed at the end: a failed export never leaves half a file.
    try:
        if fmt in writers.BINARY:
            with partial.open("wb") as binary:
                count = _write(fmt, binary, columns, batches, kind)
        else:
            with partial.open("w", encoding="utf-8", newline="") as text:
                count = _write(fmt, text, columns, batches, kind)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
    return count


def _audit(uow: UnitOfWork, kind: str, what: str, after: dict[str, Any]) -> None:
    uow.session.execute(
        sa.insert(AuditEntry).values(
            at=clock.utcnow(),
            actor_user_id=uow.actor.user_id,
            actor_name=uow.actor.name,
            platform=uow.actor.platform,
            action="export",
            entity_type=kind,
            entity_id=what[:64],
            after=after,
        )
    )


# What a segment can be exported as from chat: the two formats people open in a spreadsheet.
SEGMENT_FORMATS = ("xlsx", "csv")


@dataclass(frozen=True)
class SegmentExport:
    segment: str
    fmt: str
    rows: int
    # None when the segment has no customers now: nothing was written and nothing audited.
    path: Path | None


def export_segment(uow: UnitOfWork, name: str, fmt: str, directory: Path, *, max_rows: int) -> SegmentExport:
    """Write the customers of segment ``name`` (the columns of ``chatcrm export customers``) into a file in
    ``directory`` and audit it as one entry (who, which segment and filter, how many rows, which format).

    Rows stream from the database to the file, so memory stays flat; ``max_rows`` bounds the file that a
    chat platform must then carry (Telegram takes documents up to 50 MB). A segment over the cap raises
    ValidationError naming ``chatcrm export``, which has no cap, and writes nothing; so does a bad format
    or an unknown segment (NotFound). An empty segment writes and audits nothing.
    """
    from crm_core.services import segments

    if fmt not in SEGMENT_FORMATS:
        raise ValidationError(
            _("{format} is not an export format here: choose xlsx or csv", format=repr(fmt)), field="format"
        )
    segment = segments.get(uow, name)
    total = segments.count(uow, segment, uow.actor.user_id)
    if total == 0:
        return SegmentExport(segment.name, fmt, 0, None)
    if total > max_rows:
        raise ValidationError(_too_many(segment.name, segment.filter, total, max_rows), field="name")
    rows = listing(uow.session, "customers", segment.filter, uow.actor.user_id)

    def capped() -> Iterator[list[tuple[Any, ...]]]:
        # The count above and the rows here are two reads: a segment that grew past the cap in between
        # still stops at it (the partial file is removed).
        seen = 0
        for batch in rows.batches:
            seen += len(batch)
            if seen > max_rows:
                raise ValidationError(_too_many(segment.name, segment.filter, seen, max_rows), field="name")
            yield batch

    path = directory / f"segment-{segment.name}-{clock.utcnow():%Y%m%d-%H%M}.{fmt}"
    count = _write_file(fmt, path, rows.columns, capped(), "customers")
    _audit(
        uow,
        "customers",
        f"segment {segment.name}",
        {"rows": count, "format": fmt, "segment": segment.name, "filter": segment.filter},
    )
    return SegmentExport(segment.name, fmt, count, path)


def _too_many(name: str, filter_text: str, total: int, limit: int) -> str:
    return _(
        "segment {name} has {count} customers, more than the {limit} a chat export carries; "
        "export it on the server with: {command}",
        name=name,
        command=f"chatcrm export customers --filter {shlex.quote(filter_text)} --format xlsx --out {name}.xlsx",
        count=format_number(total),
        limit=format_number(limit),
    )


def _write(fmt: str, handle: Any, columns: list[str], batches: Iterator[list[tuple[Any, ...]]], kind: str) -> int:
    if fmt == "csv":
        return writers.write_csv(handle, columns, batches)
    if fmt in ("json", "jsonl"):
        return writers.write_json(handle, columns, batches, lines=fmt == "jsonl")
    if fmt == "xlsx":
        return writers.write_xlsx(handle, columns, batches, kind)
    return writers.write_parquet(handle, columns, batches)
