"""One import, whatever the source and the entity: read the table, map its columns, hand the rows to the
entity's mapper, write one audit entry; ``dry_run`` does all of it inside a savepoint that is rolled back.

The error report (row, column, value, reason) is written next to the source file when rows were
skipped, so the user can fix them in their spreadsheet and import again: re-running updates what
came in the first time (upsert by external id) and duplicates nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from crm_core import audit
from crm_core.i18n import _
from crm_core.importing import columns as column_mapping
from crm_core.importing.report import ImportReport, Progress
from crm_core.importing.rows import Mapper, Row
from crm_core.importing.table import ImportFailed, Table
from crm_core.uow import UnitOfWork

# Each entity's mapper lives in its own module, loaded when that entity is imported.
KINDS = {
    "customers": "crm_core.importing.map_customers",
    "companies": "crm_core.importing.map_companies",
    "deals": "crm_core.importing.map_deals",
    "orders": "crm_core.importing.retail_orders",
    "products": "crm_core.importing.map_products",
}
PROGRESS_EVERY = 1000


def mapper(kind: str) -> Mapper:
    if kind not in KINDS:
        raise ImportFailed(_("cannot import '{kind}': choose one of {kinds}", kind=kind, kinds=", ".join(KINDS)))
    found: Mapper = importlib.import_module(KINDS[kind]).MAPPER
    return found


def _rows(table: Table, fields: dict[str, int], report: ImportReport, progress: Progress | None) -> Iterator[Row]:
    width = len(table.header)
    names = {field: table.header[index] for field, index in fields.items()}
    for number, cells in table.rows:
        if not any(cell.strip() for cell in cells):
            continue
        report.rows += 1
        if progress and report.rows % PROGRESS_EVERY == 0:
            progress(report.rows, table.total)
        if table.strict_width and len(cells) < width:
            report.problem(number, f"has {len(cells)} fields, the header has {width}")
            continue
        values = {field: cells[index].strip() if index < len(cells) else "" for field, index in fields.items()}
        yield Row(number, values, names)


def import_table(
    uow: UnitOfWork,
    kind: str,
    table: Table,
    mapping: Mapping[str, str] | None = None,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    options: dict[str, Any] | None = None,
) -> ImportReport:
    """Import ``table`` as ``kind`` in the caller's transaction; ImportFailed (nothing written) when the
    columns do not fit. Bad rows are reported and skipped, each leaving nothing of itself behind."""
    chosen = mapper(kind)
    options = {"source_name": table.name, **(options or {})}
    report = ImportReport(notes=list(table.notes), dry_run=dry_run)
    fields = column_mapping.resolve(table, chosen.fields(uow), mapping or {}, chosen.singular)
    # Dry run: the same work in a savepoint, rolled back (events emitted inside go with it).
    savepoint = uow.session.begin_nested() if dry_run else None
    try:
        chosen.import_rows(uow, _rows(table, fields, report, progress), report, options)
        if savepoint is None:
            _audit(uow, kind, table, report)
    finally:
        if savepoint is not None:
            savepoint.rollback()
    if progress:
        progress(report.rows, report.rows)
    return report


def _audit(uow: UnitOfWork, kind: str, table: Table, report: ImportReport) -> None:
    """One entry for the import as a whole (bulk inserts bypass the per-row audit listener)."""
    audit.record(
        uow,
        "import",
        kind,
        table.name,
        {
            "source": table.name,
            "rows": report.rows,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "skipped_rows": report.skipped_rows,
        },
    )


def error_report_path(source: str | Path | None, kind: str) -> Path:
    """``people.csv`` -> ``people.errors.csv`` beside it; a query's report goes to the working directory."""
    if source is None:
        return Path(f"import-{kind}.errors.csv")
    path = Path(source)
    return path.with_name(f"{path.stem}.errors.csv")
