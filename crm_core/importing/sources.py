"""Which reader a source needs: ``--from-db`` is a query, otherwise the file's first bytes decide, not its name.

An .xlsx file saved as "customers.csv" is still a workbook; it is read as one and the user is told.
An old binary .xls cannot be read; the user is told to save it as .xlsx or CSV.
"""

from __future__ import annotations

from pathlib import Path

from crm_core.i18n import _
from crm_core.importing.read_csv import csv_table
from crm_core.importing.read_sql import sql_table
from crm_core.importing.read_xlsx import xlsx_table
from crm_core.importing.table import ImportFailed, Table

_ZIP = b"PK\x03\x04"
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the old binary .xls (and .doc) container


def open_table(
    path: str | Path | None = None,
    *,
    sep: str | None = None,
    sheet: str | None = None,
    from_db: str | None = None,
    query: str | None = None,
) -> Table:
    if from_db is not None:
        if not query:
            raise ImportFailed(_('--from-db needs --query "SELECT …"'))
        return sql_table(from_db, query)
    if path is None:
        raise ImportFailed(_('give a file (CSV or .xlsx), or --from-db URL --query "SELECT …"'))
    path = Path(path)
    if not path.is_file():
        raise ImportFailed(_("no such file: {path}", path=path))
    with path.open("rb") as handle:
        magic = handle.read(8)
    if magic.startswith(_OLE2):
        raise ImportFailed(
            _(
                "this looks like an old Excel .xls file, which cannot be read: open it in Excel or LibreOffice "
                "and save it as .xlsx or CSV"
            )
        )
    if magic.startswith(_ZIP):
        if sep:
            raise ImportFailed(
                _("this looks like an Excel file, not CSV: --sep does not apply (drop it); {file}", file=path.name)
            )
        table = xlsx_table(path, sheet=sheet)
        if path.suffix.lower() not in (".xlsx", ".xlsm"):
            table.notes.insert(
                0, _("this looks like an Excel file despite its name ({file}); read it as .xlsx", file=path.name)
            )
        return table
    if sheet:
        raise ImportFailed(_("--sheet is for Excel files; {file} is a text (CSV) file", file=path.name))
    return csv_table(path, sep=sep)
