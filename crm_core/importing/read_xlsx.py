"""Excel workbooks (.xlsx), read with openpyxl in read-only mode: rows stream from the zip, so a
100,000-row sheet is never held in memory. The first non-empty row is the header."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from crm_core.i18n import _
from crm_core.importing.table import ImportFailed, Table, cell_text


def xlsx_table(path: Path, *, sheet: str | None = None) -> Table:
    import openpyxl  # only when an Excel file is imported: it is not small

    # An open file rather than the path: openpyxl refuses a path whose name does not end in .xlsx.
    handle = path.open("rb")
    try:
        workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - zipfile, XML and openpyxl errors all mean "not a workbook"
        handle.close()
        raise ImportFailed(
            _("{file} is not a readable Excel workbook ({error})", file=path.name, error=f"{type(exc).__name__}: {exc}")
        ) from None
    notes = []
    if sheet is not None:
        if sheet not in workbook.sheetnames:
            workbook.close()
            handle.close()
            raise ImportFailed(
                _(
                    "the workbook has no sheet '{sheet}'; its sheets are: {sheets}",
                    sheet=sheet,
                    sheets=", ".join(workbook.sheetnames),
                )
            )
        worksheet = workbook[sheet]
    else:
        worksheet = workbook.worksheets[0]
        if len(workbook.sheetnames) > 1:
            notes.append(_("read the first sheet, '{sheet}' (pick another with --sheet)", sheet=worksheet.title))
    cells = worksheet.iter_rows(values_only=True)
    header: list[str] = []
    header_row = 0
    for number, values in enumerate(cells, start=1):
        if any(v not in (None, "") for v in values):
            header, header_row = [cell_text(v) for v in values], number
            break
    if not header:
        workbook.close()
        handle.close()
        raise ImportFailed(_("the sheet '{sheet}' is empty", sheet=worksheet.title))
    while header and not header[-1]:
        header.pop()
    max_row = worksheet.max_row  # from the sheet's stored dimension; None when the writer left it out

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for number, values in enumerate(cells, start=header_row + 1):
                yield number, [cell_text(v) for v in values]
        finally:
            workbook.close()
            handle.close()

    total = max_row - header_row if isinstance(max_row, int) and max_row > header_row else None
    return Table(path.name, header, rows(), total, notes)
