"""Writing rows as they come: CSV, an .xlsx in openpyxl's write-only mode (rows go to a temporary file,
not a tree in memory), JSON (one streamed array, or JSON lines) and Parquet when pyarrow is installed.

Every writer takes the header and an iterator of row batches, so memory stays flat in the row count.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from crm_core.exporting.lists import ExportFailed
from crm_core.i18n import _

FORMATS = ("csv", "xlsx", "json", "jsonl", "parquet")
BINARY = {"xlsx", "parquet"}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def write_csv(out: IO[str], columns: list[str], batches: Iterator[list[tuple[Any, ...]]]) -> int:
    writer = csv.writer(out)
    writer.writerow(columns)
    count = 0
    for batch in batches:
        writer.writerows([_text(v) for v in row] for row in batch)
        count += len(batch)
    return count


def write_json(out: IO[str], columns: list[str], batches: Iterator[list[tuple[Any, ...]]], *, lines: bool) -> int:
    count = 0
    if not lines:
        out.write("[")
    for batch in batches:
        for row in batch:
            record = json.dumps({c: _json_value(v) for c, v in zip(columns, row)}, ensure_ascii=False)
            if lines:
                out.write(record + "\n")
            else:
                out.write(("\n" if count == 0 else ",\n") + record)
            count += 1
    if not lines:
        out.write("\n]\n" if count else "]\n")
    return count


def _cell(worksheet: Any, value: Any) -> Any:
    if isinstance(value, datetime):
        # Excel has no time zones: times are written in UTC without one.
        return value.replace(tzinfo=None)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and value.startswith("="):
        # openpyxl would store "=..." as a formula: a value from a customer must stay text.
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(worksheet, value=value)
        cell.data_type = "s"
        return cell
    return value


def write_xlsx(out: IO[bytes], columns: list[str], batches: Iterator[list[tuple[Any, ...]]], sheet: str) -> int:
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    worksheet = workbook.create_sheet(sheet[:31])
    worksheet.append(columns)
    count = 0
    for batch in batches:
        for row in batch:
            worksheet.append([_cell(worksheet, v) for v in row])
        count += len(batch)
    workbook.save(out)
    return count


def write_parquet(out: IO[bytes], columns: list[str], batches: Iterator[list[tuple[Any, ...]]]) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportFailed(
            _("Parquet needs pyarrow, which is not installed: pip install 'chatcrm[parquet]', or use --format csv")
        ) from None
    # Every column as text: a list's types vary (custom fields), and text loses nothing of what we store.
    schema = pa.schema([(c, pa.string()) for c in columns])
    count = 0
    with pq.ParquetWriter(out, schema) as writer:
        for batch in batches:
            data = {c: [None if r[i] is None else _text(r[i]) for r in batch] for i, c in enumerate(columns)}
            writer.write_table(pa.table(data, schema=schema))
            count += len(batch)
    return count
